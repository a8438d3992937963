// SPDX-License-Identifier: MIT
/* The relay protocol's frames (see frame.h). */
#include "relay/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "crypto/crypto.h"

#define BOX_LABEL     "knit relay v1"
#define RXBUF_INITIAL 4096
#define TXQ_INITIAL   4096
/* A busy connection's buffer (see relay_rxbuf_space): many frames per
 * read, and always a whole frame with the start of the next one. */
#define RXBUF_MAX RELAY_RXBUF_BULK
_Static_assert(RELAY_RXBUF_BULK >= RELAY_MAX_FRAME + RXBUF_INITIAL,
	       "the bulk buffer holds the largest frame and the start of the next");

static const char *const frame_names[] = {
	[RELAY_FRAME_SERVER_KEY] = "server-key",
	[RELAY_FRAME_CLIENT_INFO] = "client-info",
	[RELAY_FRAME_SERVER_INFO] = "server-info",
	[RELAY_FRAME_SEND_PACKET] = "send-packet",
	[RELAY_FRAME_RECV_PACKET] = "recv-packet",
	[RELAY_FRAME_KEEPALIVE] = "keepalive",
	[RELAY_FRAME_PING] = "ping",
	[RELAY_FRAME_PONG] = "pong",
	[RELAY_FRAME_PEER_GONE] = "peer-gone",
	[RELAY_FRAME_CLOSE] = "close",
};

const char *relay_frame_name(uint8_t type)
{
	if (type < sizeof(frame_names) / sizeof(frame_names[0]) && frame_names[type])
		return frame_names[type];
	return "unknown";
}

int relay_frame_header_parse(const uint8_t *buf, size_t len, uint8_t *type, uint32_t *plen)
{
	uint32_t n;

	if (len < RELAY_HEADER_LEN)
		return 0;
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (n > RELAY_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (buf[0] < RELAY_FRAME_SERVER_KEY || buf[0] > RELAY_FRAME_CLOSE)
		return -EPROTO;
	*type = buf[0];
	*plen = n;
	return RELAY_HEADER_LEN;
}

void relay_frame_header_write(uint8_t out[RELAY_HEADER_LEN], uint8_t type, uint32_t len)
{
	out[0] = type;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int relay_frame_build(uint8_t *out, size_t size, uint8_t type, const void *a, size_t alen,
		      const void *b, size_t blen)
{
	if (alen > RELAY_MAX_PAYLOAD || blen > RELAY_MAX_PAYLOAD - alen)
		return -EMSGSIZE;
	if (size < RELAY_HEADER_LEN + alen + blen)
		return -ENOSPC;
	relay_frame_header_write(out, type, (uint32_t)(alen + blen));
	if (alen)
		memcpy(out + RELAY_HEADER_LEN, a, alen);
	if (blen)
		memcpy(out + RELAY_HEADER_LEN + alen, b, blen);
	return (int)(RELAY_HEADER_LEN + alen + blen);
}

int relay_payload_check(uint8_t type, const uint8_t *p, uint32_t len)
{
	switch (type) {
	case RELAY_FRAME_SERVER_KEY:
		return len == RELAY_SERVER_KEY_LEN ? 0 : -EBADMSG;
	case RELAY_FRAME_CLIENT_INFO:
		return len == RELAY_CLIENT_INFO_LEN ? 0 : -EBADMSG;
	case RELAY_FRAME_SERVER_INFO:
	case RELAY_FRAME_KEEPALIVE:
		return len == 0 ? 0 : -EBADMSG;
	case RELAY_FRAME_SEND_PACKET:
	case RELAY_FRAME_RECV_PACKET:
		return len > RELAY_KEY_LEN ? 0 : -EBADMSG;
	case RELAY_FRAME_PING:
	case RELAY_FRAME_PONG:
		return len == RELAY_PING_LEN ? 0 : -EBADMSG;
	case RELAY_FRAME_PEER_GONE:
		return len == RELAY_PEER_GONE_LEN ? 0 : -EBADMSG;
	case RELAY_FRAME_CLOSE:
		return len <= RELAY_CLOSE_MAX ? 0 : -EBADMSG;
	default:
		return -EBADMSG;
	}
}

void relay_server_key_payload(uint8_t out[RELAY_SERVER_KEY_LEN], const uint8_t relay_pub[32],
			      const uint8_t challenge[RELAY_CHALLENGE_LEN])
{
	memcpy(out, RELAY_MAGIC, RELAY_MAGIC_LEN);
	memcpy(out + RELAY_MAGIC_LEN, relay_pub, RELAY_KEY_LEN);
	memcpy(out + RELAY_MAGIC_LEN + RELAY_KEY_LEN, challenge, RELAY_CHALLENGE_LEN);
}

int relay_server_key_parse(const uint8_t *p, uint32_t len, uint8_t relay_pub[32],
			   uint8_t challenge[RELAY_CHALLENGE_LEN])
{
	if (len != RELAY_SERVER_KEY_LEN || memcmp(p, RELAY_MAGIC, RELAY_MAGIC_LEN) != 0)
		return -EBADMSG;
	memcpy(relay_pub, p + RELAY_MAGIC_LEN, RELAY_KEY_LEN);
	memcpy(challenge, p + RELAY_MAGIC_LEN + RELAY_KEY_LEN, RELAY_CHALLENGE_LEN);
	return 0;
}

int relay_box_key(uint8_t key[32], const uint8_t priv[32], const uint8_t pub[32])
{
	uint8_t shared[X25519_KEY_LEN];
	int ret = x25519(shared, priv, pub);

	if (ret == 0)
		blake2s(key, BLAKE2S_HASH_LEN, (const uint8_t *)BOX_LABEL, strlen(BOX_LABEL),
			shared, sizeof(shared));
	memzero_explicit(shared, sizeof(shared));
	return ret;
}

int relay_client_info_seal(uint8_t out[RELAY_CLIENT_INFO_LEN], const uint8_t node_priv[32],
			   const uint8_t relay_pub[32],
			   const uint8_t challenge[RELAY_CHALLENGE_LEN])
{
	uint8_t key[32];
	int ret = x25519_public(out, node_priv);

	if (ret < 0)
		return ret;
	ret = relay_box_key(key, node_priv, relay_pub);
	if (ret < 0)
		return ret;
	random_bytes(out + RELAY_KEY_LEN, RELAY_NONCE_LEN);
	ret = xaead_seal(key, out + RELAY_KEY_LEN, NULL, 0, challenge, RELAY_CHALLENGE_LEN,
			 out + RELAY_KEY_LEN + RELAY_NONCE_LEN);
	memzero_explicit(key, sizeof(key));
	return ret;
}

int relay_client_info_open(const uint8_t *p, uint32_t len, const uint8_t relay_priv[32],
			   const uint8_t challenge[RELAY_CHALLENGE_LEN], uint8_t node_pub[32])
{
	uint8_t key[32], got[RELAY_CHALLENGE_LEN];
	int ret;

	if (len != RELAY_CLIENT_INFO_LEN)
		return -EBADMSG;
	if (relay_box_key(key, relay_priv, p) < 0)
		return -EACCES;
	ret = xaead_open(key, p + RELAY_KEY_LEN, NULL, 0, p + RELAY_KEY_LEN + RELAY_NONCE_LEN,
			 RELAY_CHALLENGE_LEN + 16, got);
	memzero_explicit(key, sizeof(key));
	if (ret < 0 || !crypto_memeq(got, challenge, RELAY_CHALLENGE_LEN))
		return -EACCES;
	memcpy(node_pub, p, RELAY_KEY_LEN);
	return 0;
}

void relay_close_reason(const uint8_t *p, uint32_t len, char out[RELAY_CLOSE_MAX + 1])
{
	if (len > RELAY_CLOSE_MAX)
		len = RELAY_CLOSE_MAX;
	/* UTF-8 beyond ASCII is shown as '?': this text goes to logs. */
	for (uint32_t i = 0; i < len; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[len] = '\0';
}

/* --- receive buffer ------------------------------------------------------ */

void relay_rxbuf_init(struct relay_rxbuf *rb)
{
	memset(rb, 0, sizeof(*rb));
}

void relay_rxbuf_free(struct relay_rxbuf *rb)
{
	free(rb->data);
	relay_rxbuf_init(rb);
}

/*
 * Room for `need` bytes from the unread start, and always for one more byte
 * than is buffered: moves the unread bytes down first, then grows.
 */
static int rxbuf_reserve(struct relay_rxbuf *rb, size_t need)
{
	size_t have = rb->end - rb->start, cap;
	uint8_t *d;

	if (need <= have)
		need = have + 1;
	if (rb->cap - rb->start >= need)
		return 0;
	if (rb->start) {
		memmove(rb->data, rb->data + rb->start, have);
		rb->start = 0;
		rb->end = have;
		if (rb->cap >= need)
			return 0;
	}
	cap = rb->cap ? rb->cap : RXBUF_INITIAL;
	while (cap < need)
		cap *= 2;
	if (cap > RXBUF_MAX)
		cap = RXBUF_MAX;
	if (cap < need)
		return -ENOBUFS;
	d = realloc(rb->data, cap);
	if (!d)
		return -ENOMEM;
	rb->data = d;
	rb->cap = cap;
	return 0;
}

/* How much the frame at the front needs in all (at least a header). */
static size_t rxbuf_wanted(const struct relay_rxbuf *rb)
{
	size_t have = rb->end - rb->start;
	uint8_t type;
	uint32_t len;

	if (relay_frame_header_parse(rb->data + rb->start, have, &type, &len) > 0)
		return RELAY_HEADER_LEN + len;
	return RELAY_HEADER_LEN;
}

uint8_t *relay_rxbuf_space(struct relay_rxbuf *rb, size_t *space)
{
	size_t need = rb->data ? rxbuf_wanted(rb) : RELAY_HEADER_LEN;

	/* A read that filled what was offered means more is waiting: offer
	 * the bulk size, so that one read takes many frames. */
	if (rb->bulk && need < RELAY_RXBUF_BULK)
		need = RELAY_RXBUF_BULK;
	if (rxbuf_reserve(rb, need) < 0)
		return NULL;
	*space = rb->cap - rb->end;
	rb->offered = *space;
	return rb->data + rb->end;
}

void relay_rxbuf_commit(struct relay_rxbuf *rb, size_t n)
{
	if (n && n == rb->offered)
		rb->bulk = true;
	rb->offered = 0;
	rb->end += n;
}

int relay_rxbuf_append(struct relay_rxbuf *rb, const void *data, size_t n)
{
	while (n) {
		size_t space;
		uint8_t *p = relay_rxbuf_space(rb, &space);
		if (!p)
			return -ENOBUFS;
		if (space > n)
			space = n;
		memcpy(p, data, space);
		relay_rxbuf_commit(rb, space);
		data = (const uint8_t *)data + space;
		n -= space;
	}
	return 0;
}

void relay_rxbuf_consume(struct relay_rxbuf *rb, size_t n)
{
	rb->start += n;
	if (rb->start == rb->end)
		rb->start = rb->end = 0;
}

int relay_rxbuf_next(struct relay_rxbuf *rb, uint8_t *type, const uint8_t **payload, uint32_t *len)
{
	size_t have = rb->end - rb->start;
	int ret;

	if (!rb->data)
		return 0;
	ret = relay_frame_header_parse(rb->data + rb->start, have, type, len);
	if (ret <= 0)
		return ret;
	if (have < RELAY_HEADER_LEN + (size_t)*len)
		return 0;
	*payload = rb->data + rb->start + RELAY_HEADER_LEN;
	/* Consumed now; the bytes stay put until the next space() or append(). */
	rb->start += RELAY_HEADER_LEN + *len;
	return 1;
}

/* --- send queue ---------------------------------------------------------- */

void relay_txq_init(struct relay_txq *q, size_t max)
{
	memset(q, 0, sizeof(*q));
	q->max = max;
}

void relay_txq_free(struct relay_txq *q)
{
	free(q->data);
	relay_txq_init(q, q->max);
}

/*
 * Room for n more bytes, within max.  The queue is a ring: bytes sent free
 * room at once, and nothing queued is ever moved, except when the ring
 * grows (a few times in a connection's life: the capacity doubles up to
 * max).
 */
static int txq_reserve(struct relay_txq *q, size_t n)
{
	size_t cap, first;
	uint8_t *d;

	if (n > q->max || q->len > q->max - n)
		return -ENOBUFS;
	if (q->len + n <= q->cap)
		return 0;
	cap = q->cap ? q->cap : TXQ_INITIAL;
	while (cap < q->len + n)
		cap *= 2;
	if (cap > q->max)
		cap = q->max;
	d = malloc(cap);
	if (!d)
		return -ENOMEM;
	/* Unwrapped into the new ring, from its start. */
	first = q->len < q->cap - q->head ? q->len : q->cap - q->head;
	if (q->len) {
		memcpy(d, q->data + q->head, first);
		memcpy(d + first, q->data, q->len - first);
	}
	free(q->data);
	q->data = d;
	q->cap = cap;
	q->head = 0;
	return 0;
}

/* Appends n bytes (room reserved), wrapping at the ring's end. */
static void txq_put(struct relay_txq *q, const void *src, size_t n)
{
	size_t tail = (q->head + q->len) % q->cap, first = q->cap - tail;

	if (!n)
		return;
	if (first > n)
		first = n;
	memcpy(q->data + tail, src, first);
	memcpy(q->data, (const uint8_t *)src + first, n - first);
	q->len += n;
}

int relay_txq_frame(struct relay_txq *q, uint8_t type, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	uint8_t hdr[RELAY_HEADER_LEN];
	int ret;

	if (alen > RELAY_MAX_PAYLOAD || blen > RELAY_MAX_PAYLOAD - alen)
		return -EMSGSIZE;
	ret = txq_reserve(q, RELAY_HEADER_LEN + alen + blen);
	if (ret < 0)
		return ret;
	relay_frame_header_write(hdr, type, (uint32_t)(alen + blen));
	txq_put(q, hdr, sizeof(hdr));
	txq_put(q, a, alen);
	txq_put(q, b, blen);
	return 0;
}

int relay_txq_bytes(struct relay_txq *q, const void *data, size_t len)
{
	int ret = txq_reserve(q, len);

	if (ret < 0)
		return ret;
	txq_put(q, data, len);
	return 0;
}

/* Whatever is queued goes in one syscall: two pieces when the ring wraps. */
int relay_txq_flush(struct relay_txq *q, int fd)
{
	while (q->len) {
		size_t first = q->cap - q->head < q->len ? q->cap - q->head : q->len;
		struct iovec iov[2] = {{.iov_base = q->data + q->head, .iov_len = first},
				       {.iov_base = q->data, .iov_len = q->len - first}};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = q->len > first ? 2 : 1};
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		q->head = (q->head + (size_t)n) % q->cap;
		q->len -= (size_t)n;
	}
	q->head = 0;
	return 0;
}
