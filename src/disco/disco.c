// SPDX-License-Identifier: MIT
#include "disco/disco.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"

#define BOX_KEY_LABEL "knit disco v1"

bool disco_is_message(const uint8_t *p, size_t len)
{
	return len >= DISCO_HEADER_LEN + 1 + DISCO_TAG_LEN && len <= DISCO_MAX_PACKET &&
	       !memcmp(p, DISCO_MAGIC, DISCO_MAGIC_LEN);
}

const uint8_t *disco_sender(const uint8_t *p)
{
	return p + DISCO_MAGIC_LEN;
}

int disco_shared_key(uint8_t out[32], const uint8_t my_priv[32], const uint8_t their_pub[32])
{
	uint8_t dh[32];
	int ret = x25519(dh, my_priv, their_pub);

	if (ret == 0)
		blake2s(out, 32, (const uint8_t *)BOX_KEY_LABEL, strlen(BOX_KEY_LABEL), dh,
			sizeof(dh));
	memzero_explicit(dh, sizeof(dh));
	return ret;
}

static void put_endpoint(uint8_t *p, const union sockaddr_inet *ep)
{
	union sockaddr_inet v6;

	endpoint_to_v6(ep, &v6);
	memcpy(p, &v6.in6.sin6_addr, 16);
	memcpy(p + 16, &v6.in6.sin6_port, 2); /* already big-endian */
}

static void get_endpoint(const uint8_t *p, union sockaddr_inet *ep)
{
	union sockaddr_inet v6 = {0};

	v6.in6.sin6_family = AF_INET6;
	memcpy(&v6.in6.sin6_addr, p, 16);
	memcpy(&v6.in6.sin6_port, p + 16, 2);
	endpoint_unmap(&v6, ep);
}

static size_t encode(uint8_t *plain, const struct disco_msg *m)
{
	size_t n = 1;

	plain[0] = (uint8_t)m->type;
	switch (m->type) {
	case DISCO_PING:
		memcpy(plain + n, m->txid, DISCO_TXID_LEN);
		memcpy(plain + n + DISCO_TXID_LEN, m->node_key, 32);
		return n + DISCO_TXID_LEN + 32;
	case DISCO_PONG:
		memcpy(plain + n, m->txid, DISCO_TXID_LEN);
		put_endpoint(plain + n + DISCO_TXID_LEN, &m->src);
		return n + DISCO_TXID_LEN + DISCO_EP_LEN;
	case DISCO_CALL_ME_MAYBE:
		for (unsigned i = 0; i < m->n_endpoints && i < DISCO_MAX_ENDPOINTS; i++, n += DISCO_EP_LEN)
			put_endpoint(plain + n, &m->endpoints[i]);
		return n;
	}
	return 0;
}

int disco_seal(uint8_t *out, size_t size, const uint8_t my_pub[32], const uint8_t key[32],
	       const struct disco_msg *msg)
{
	uint8_t plain[DISCO_MAX_PLAIN];
	size_t n = encode(plain, msg);

	if (!n)
		return -EINVAL;
	if (size < DISCO_HEADER_LEN + n + DISCO_TAG_LEN)
		return -ENOBUFS;
	memcpy(out, DISCO_MAGIC, DISCO_MAGIC_LEN);
	memcpy(out + DISCO_MAGIC_LEN, my_pub, 32);
	random_bytes(out + DISCO_MAGIC_LEN + 32, 24);
	/* The header is authenticated too: nobody can swap the sender key. */
	if (xaead_seal(key, out + DISCO_MAGIC_LEN + 32, out, DISCO_MAGIC_LEN + 32, plain, n,
		       out + DISCO_HEADER_LEN) < 0)
		return -EIO;
	return (int)(DISCO_HEADER_LEN + n + DISCO_TAG_LEN);
}

static int decode(const uint8_t *plain, size_t n, struct disco_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (n < 1)
		return -EBADMSG;
	m->type = plain[0];
	plain++, n--;
	switch (m->type) {
	case DISCO_PING:
		if (n != DISCO_TXID_LEN + 32)
			return -EBADMSG;
		memcpy(m->txid, plain, DISCO_TXID_LEN);
		memcpy(m->node_key, plain + DISCO_TXID_LEN, 32);
		return 0;
	case DISCO_PONG:
		if (n != DISCO_TXID_LEN + DISCO_EP_LEN)
			return -EBADMSG;
		memcpy(m->txid, plain, DISCO_TXID_LEN);
		get_endpoint(plain + DISCO_TXID_LEN, &m->src);
		return 0;
	case DISCO_CALL_ME_MAYBE:
		if (n % DISCO_EP_LEN || n / DISCO_EP_LEN > DISCO_MAX_ENDPOINTS)
			return -EBADMSG;
		for (; n; n -= DISCO_EP_LEN, plain += DISCO_EP_LEN)
			get_endpoint(plain, &m->endpoints[m->n_endpoints++]);
		return 0;
	}
	return -EBADMSG;
}

int disco_open(const uint8_t *p, size_t len, const uint8_t key[32], struct disco_msg *out)
{
	uint8_t plain[DISCO_MAX_PLAIN];
	size_t n;

	if (!disco_is_message(p, len))
		return -EBADMSG;
	n = len - DISCO_HEADER_LEN - DISCO_TAG_LEN;
	if (n > sizeof(plain) ||
	    xaead_open(key, p + DISCO_MAGIC_LEN + 32, p, DISCO_MAGIC_LEN + 32,
		       p + DISCO_HEADER_LEN, len - DISCO_HEADER_LEN, plain) < 0)
		return -EBADMSG;
	return decode(plain, n, out);
}
