// SPDX-License-Identifier: MIT
/* MAC1, MAC2 and cookie replies (see cookie.h; whitepaper section 5.4.4). */
#include "wg/cookie.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "lib/clock.h"

static const char label_mac1[] = "mac1----";
static const char label_cookie[] = "cookie--";

static void precompute_key(uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
			   const uint8_t pubkey[NOISE_PUBLIC_KEY_LEN], const char label[8])
{
	blake2s2(key, (const uint8_t *)label, 8, pubkey, NOISE_PUBLIC_KEY_LEN);
}

void cookie_checker_init(struct cookie_checker *c, const uint8_t our_public[NOISE_PUBLIC_KEY_LEN])
{
	memset(c, 0, sizeof(*c));
	precompute_key(c->message_mac1_key, our_public, label_mac1);
	precompute_key(c->cookie_encryption_key, our_public, label_cookie);
}

void cookie_maker_init(struct cookie_maker *m, const uint8_t peer_public[NOISE_PUBLIC_KEY_LEN])
{
	memset(m, 0, sizeof(*m));
	precompute_key(m->mac1_key, peer_public, label_mac1);
	precompute_key(m->cookie_decryption_key, peer_public, label_cookie);
}

/* mac1 covers the message up to mac1; mac2 up to mac2. */
static void compute_mac1(uint8_t mac1[COOKIE_LEN], const uint8_t *msg, size_t len,
			 const uint8_t key[NOISE_SYMMETRIC_KEY_LEN])
{
	blake2s(mac1, COOKIE_LEN, key, NOISE_SYMMETRIC_KEY_LEN, msg,
		len - sizeof(struct message_macs));
}

static void compute_mac2(uint8_t mac2[COOKIE_LEN], const uint8_t *msg, size_t len,
			 const uint8_t cookie[COOKIE_LEN])
{
	blake2s(mac2, COOKIE_LEN, cookie, COOKIE_LEN, msg, len - COOKIE_LEN);
}

/* The cookie for a source: a MAC of its address and port under a secret
 * that changes every two minutes. */
static void make_cookie(uint8_t cookie[COOKIE_LEN], struct cookie_checker *c,
			const union sockaddr_inet *src)
{
	uint64_t now = clock_mono_ns();
	union sockaddr_inet s;
	uint8_t data[18];
	size_t len;

	if (!c->secret_birth_ns ||
	    now - c->secret_birth_ns > COOKIE_SECRET_MAX_AGE_MS * NSEC_PER_MSEC) {
		random_bytes(c->secret, sizeof(c->secret));
		c->secret_birth_ns = now;
	}
	endpoint_unmap(src, &s);
	if (s.sa.sa_family == AF_INET || endpoint_is_side(&s)) { /* same layout */
		memcpy(data, &s.in.sin_addr, 4);
		memcpy(data + 4, &s.in.sin_port, 2);
		len = 6;
	} else {
		memcpy(data, &s.in6.sin6_addr, 16);
		memcpy(data + 16, &s.in6.sin6_port, 2);
		len = 18;
	}
	blake2s(cookie, COOKIE_LEN, c->secret, sizeof(c->secret), data, len);
}

enum cookie_mac_state cookie_validate_packet(struct cookie_checker *c, const void *msg, size_t len,
					     const union sockaddr_inet *src, bool check_cookie)
{
	const struct message_macs *macs =
		(const struct message_macs *)((const uint8_t *)msg + len - sizeof(*macs));
	uint8_t computed[COOKIE_LEN], cookie[COOKIE_LEN];

	if (len < sizeof(*macs) + sizeof(struct message_header))
		return INVALID_MAC;
	compute_mac1(computed, msg, len, c->message_mac1_key);
	if (!crypto_memeq(computed, macs->mac1, COOKIE_LEN))
		return INVALID_MAC;
	if (!check_cookie)
		return VALID_MAC_BUT_NO_COOKIE;
	make_cookie(cookie, c, src);
	compute_mac2(computed, msg, len, cookie);
	memzero_explicit(cookie, sizeof(cookie));
	if (!crypto_memeq(computed, macs->mac2, COOKIE_LEN))
		return VALID_MAC_BUT_NO_COOKIE;
	return VALID_MAC_WITH_COOKIE;
}

void cookie_add_macs(struct cookie_maker *m, void *msg, size_t len)
{
	struct message_macs *macs = (struct message_macs *)((uint8_t *)msg + len - sizeof(*macs));
	uint64_t fresh = (COOKIE_SECRET_MAX_AGE_MS - COOKIE_SECRET_LATENCY_MS) * NSEC_PER_MSEC;

	compute_mac1(macs->mac1, msg, len, m->mac1_key);
	memcpy(m->last_mac1_sent, macs->mac1, COOKIE_LEN);
	m->have_sent_mac1 = true;
	if (m->is_cookie_valid && clock_mono_ns() - m->cookie_birth_ns <= fresh)
		compute_mac2(macs->mac2, msg, len, m->cookie);
	else
		memset(macs->mac2, 0, COOKIE_LEN);
}

int cookie_message_create(struct message_handshake_cookie *dst, struct cookie_checker *c,
			  const void *msg, size_t len, uint32_t index,
			  const union sockaddr_inet *src)
{
	const struct message_macs *macs =
		(const struct message_macs *)((const uint8_t *)msg + len - sizeof(*macs));
	uint8_t cookie[COOKIE_LEN];
	int ret;

	dst->header.type = htole32(MESSAGE_HANDSHAKE_COOKIE);
	dst->receiver_index = index; /* already little endian, from the message */
	random_bytes(dst->nonce, COOKIE_NONCE_LEN);
	make_cookie(cookie, c, src);
	ret = xaead_seal(c->cookie_encryption_key, dst->nonce, macs->mac1, COOKIE_LEN, cookie,
			 COOKIE_LEN, dst->encrypted_cookie);
	memzero_explicit(cookie, sizeof(cookie));
	return ret;
}

int cookie_message_consume(struct cookie_maker *m, const struct message_handshake_cookie *src)
{
	uint8_t cookie[COOKIE_LEN];

	if (!m->have_sent_mac1)
		return -EINVAL;
	if (xaead_open(m->cookie_decryption_key, src->nonce, m->last_mac1_sent, COOKIE_LEN,
		       src->encrypted_cookie, sizeof(src->encrypted_cookie), cookie) < 0)
		return -EBADMSG;
	memcpy(m->cookie, cookie, COOKIE_LEN);
	m->cookie_birth_ns = clock_mono_ns();
	m->is_cookie_valid = true;
	m->have_sent_mac1 = false;
	memzero_explicit(cookie, sizeof(cookie));
	return 0;
}
