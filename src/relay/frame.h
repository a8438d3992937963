/* SPDX-License-Identifier: MIT */
/*
 * The relay protocol's frames (docs/protocols.md, "Relay frames"): type (1
 * byte), length (4 bytes, big endian), payload of at most
 * RELAY_MAX_PAYLOAD bytes.  Codec, the client-info proof of the node key, a
 * receive buffer that cuts a byte stream into frames, and a bounded send
 * queue.  No sockets here; the server (src/knit-relay) and the client
 * (relay/client.h) do the I/O.
 */
#ifndef KNIT_RELAY_FRAME_H
#define KNIT_RELAY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum relay_frame_type {
	RELAY_FRAME_SERVER_KEY = 1,  /* relay -> client */
	RELAY_FRAME_CLIENT_INFO = 2, /* client -> relay */
	RELAY_FRAME_SERVER_INFO = 3, /* relay -> client: admitted */
	RELAY_FRAME_SEND_PACKET = 4, /* client -> relay */
	RELAY_FRAME_RECV_PACKET = 5, /* relay -> client */
	RELAY_FRAME_KEEPALIVE = 6,
	RELAY_FRAME_PING = 7,
	RELAY_FRAME_PONG = 8,
	RELAY_FRAME_PEER_GONE = 9, /* relay -> client */
	RELAY_FRAME_CLOSE = 10,	   /* relay -> client */
};

enum relay_peer_gone_reason {
	RELAY_PEER_GONE_DISCONNECTED = 1, /* admitted, but not connected now */
	RELAY_PEER_GONE_NOT_KNOWN = 2,	  /* not a key control says is active */
};

#define RELAY_HTTP_PATH	   "/knit/relay"
#define RELAY_HTTP_UPGRADE "knit-relay"
#define RELAY_HEADER_LEN   5
#define RELAY_MAX_PAYLOAD  (65536 + 64)
#define RELAY_MAX_FRAME	   (RELAY_HEADER_LEN + RELAY_MAX_PAYLOAD)
#define RELAY_KEY_LEN	   32
/* The largest packet a send-packet or recv-packet can carry. */
#define RELAY_MAX_PACKET      (RELAY_MAX_PAYLOAD - RELAY_KEY_LEN)
#define RELAY_MAGIC	      "KNITRLY1"
#define RELAY_MAGIC_LEN	      8
#define RELAY_CHALLENGE_LEN   32
#define RELAY_NONCE_LEN	      24
#define RELAY_SERVER_KEY_LEN  (RELAY_MAGIC_LEN + RELAY_KEY_LEN + RELAY_CHALLENGE_LEN)
#define RELAY_CLIENT_INFO_LEN (RELAY_KEY_LEN + RELAY_NONCE_LEN + RELAY_CHALLENGE_LEN + 16)
#define RELAY_PING_LEN	      8
#define RELAY_PEER_GONE_LEN   (RELAY_KEY_LEN + 1)
#define RELAY_CLOSE_MAX	      256

const char *relay_frame_name(uint8_t type);

/*
 * Reads a frame header.  Returns RELAY_HEADER_LEN and sets *type and *len,
 * 0 when fewer than RELAY_HEADER_LEN bytes are there, -EMSGSIZE when the
 * length exceeds RELAY_MAX_PAYLOAD, -EPROTO for a type not in the table.
 */
int relay_frame_header_parse(const uint8_t *buf, size_t len, uint8_t *type, uint32_t *plen);
void relay_frame_header_write(uint8_t out[RELAY_HEADER_LEN], uint8_t type, uint32_t len);

/*
 * Writes a whole frame: header then payload a (alen bytes) then b (blen
 * bytes), either of which may be empty.  Returns the frame's length, or
 * -EMSGSIZE when the payload would be too long, -ENOSPC when out is too small.
 */
int relay_frame_build(uint8_t *out, size_t size, uint8_t type, const void *a, size_t alen,
		      const void *b, size_t blen);

/*
 * Checks a payload's size for its type (exact for fixed-size frames, at
 * least a key and one byte for packets, at most RELAY_CLOSE_MAX for close).
 * Returns 0 or -EBADMSG.
 */
int relay_payload_check(uint8_t type, const uint8_t *p, uint32_t len);

/* server-key: builds the payload / checks the magic and splits it. */
void relay_server_key_payload(uint8_t out[RELAY_SERVER_KEY_LEN], const uint8_t relay_pub[32],
			      const uint8_t challenge[RELAY_CHALLENGE_LEN]);
int relay_server_key_parse(const uint8_t *p, uint32_t len, uint8_t relay_pub[32],
			   uint8_t challenge[RELAY_CHALLENGE_LEN]);

/*
 * The box key: BLAKE2s-256 keyed with "knit relay v1" over X25519(priv, pub).
 * Returns 0, or -EINVAL for a low-order public key (an all-zero secret).
 */
int relay_box_key(uint8_t key[32], const uint8_t priv[32], const uint8_t pub[32]);

/* client-info: node public key, a fresh nonce, the sealed challenge. */
int relay_client_info_seal(uint8_t out[RELAY_CLIENT_INFO_LEN], const uint8_t node_priv[32],
			   const uint8_t relay_pub[32],
			   const uint8_t challenge[RELAY_CHALLENGE_LEN]);
/*
 * The relay's side: opens the box with its private key and the node key the
 * client claims, and checks that it holds this connection's challenge.
 * Returns 0 and the node key, -EBADMSG for a wrong size, -EACCES when the
 * proof fails (wrong key, wrong challenge, forged box).
 */
int relay_client_info_open(const uint8_t *p, uint32_t len, const uint8_t relay_priv[32],
			   const uint8_t challenge[RELAY_CHALLENGE_LEN], uint8_t node_pub[32]);

/* close: the reason as printable text for a log (other bytes become '?'). */
void relay_close_reason(const uint8_t *p, uint32_t len, char out[RELAY_CLOSE_MAX + 1]);

/*
 * A receive buffer that cuts a TCP byte stream into frames.  It starts small
 * and grows only as far as the frame being received needs, so idle
 * connections cost little; once a read fills all the room it was offered
 * (a busy connection: more bytes were waiting), it offers RELAY_RXBUF_BULK
 * bytes, so that one recv takes many frames instead of one or two.
 */
#define RELAY_RXBUF_BULK (128u * 1024)

struct relay_rxbuf {
	uint8_t *data;
	size_t start, end, cap;
	size_t offered; /* the room the last relay_rxbuf_space() gave */
	bool bulk;	/* a read filled it: read in bulk from now on */
};

void relay_rxbuf_init(struct relay_rxbuf *rb);
void relay_rxbuf_free(struct relay_rxbuf *rb);
/* Room to read into: *space (> 0) bytes at the returned pointer; NULL when
 * out of memory or when RELAY_RXBUF_BULK bytes are already buffered (the
 * caller drains complete frames after each read, so only a frame larger
 * than RELAY_MAX_FRAME could leave that much). */
uint8_t *relay_rxbuf_space(struct relay_rxbuf *rb, size_t *space);
void relay_rxbuf_commit(struct relay_rxbuf *rb, size_t n);
/* Copies bytes in (tests and fuzzing); 0 or -ENOBUFS. */
int relay_rxbuf_append(struct relay_rxbuf *rb, const void *data, size_t n);
/* The unread bytes, for the HTTP head before the frames. */
static inline const uint8_t *relay_rxbuf_data(const struct relay_rxbuf *rb, size_t *len)
{
	*len = rb->end - rb->start;
	return rb->data + rb->start;
}
void relay_rxbuf_consume(struct relay_rxbuf *rb, size_t n);
/*
 * The next complete frame: returns 1 with *type, *payload, *len (valid until
 * the next call on rb), 0 when more bytes are needed, or the error of
 * relay_frame_header_parse().  Payload sizes are checked by the caller with
 * relay_payload_check().
 */
int relay_rxbuf_next(struct relay_rxbuf *rb, uint8_t *type, const uint8_t **payload, uint32_t *len);

/*
 * A bounded send queue of whole frames: a frame is queued entirely or not at
 * all, so a full queue drops packets, never corrupts the stream.  A ring of
 * len bytes from head (it grows, up to max, as far as it is filled): queued
 * bytes are never moved to make room, and a flush is one send (a sendmsg of
 * two pieces when the ring wraps).
 */
struct relay_txq {
	uint8_t *data;
	size_t head, len, cap, max;
};

void relay_txq_init(struct relay_txq *q, size_t max);
void relay_txq_free(struct relay_txq *q);
/* Queues one frame; 0, -ENOBUFS when it would exceed max, -ENOMEM. */
int relay_txq_frame(struct relay_txq *q, uint8_t type, const void *a, size_t alen, const void *b,
		    size_t blen);
/* Queues raw bytes (the HTTP head before the frames); as relay_txq_frame. */
int relay_txq_bytes(struct relay_txq *q, const void *data, size_t len);
static inline bool relay_txq_empty(const struct relay_txq *q)
{
	return q->len == 0;
}
/*
 * Writes as much as the nonblocking socket takes.  Returns 0 when the queue
 * is empty, -EAGAIN when the socket is full (wait for EPOLLOUT), or -errno.
 */
int relay_txq_flush(struct relay_txq *q, int fd);

#endif
