/* SPDX-License-Identifier: MIT */
/*
 * A sealed message channel over a byte stream (TCP): the Noise IK handshake of
 * WireGuard (messages 1 and 2, zero PSK), then records of
 *
 *     length (4 bytes, big-endian) | ciphertext
 *
 * each ChaCha20-Poly1305 under that direction's session key with a nonce that
 * counts records from 0.  The stream is ordered and reliable, so there is no
 * replay window: a record that does not open is the end of the channel.
 *
 * Pure protocol state, no I/O: the caller moves the bytes (control/conn.h).
 */
#ifndef KNIT_CONTROL_CHANNEL_H
#define KNIT_CONTROL_CHANNEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "wg/noise.h"

#define CHANNEL_MAX_PLAINTEXT (1u << 20)
#define CHANNEL_RECORD_HEADER 4
#define CHANNEL_MAX_RECORD    (CHANNEL_MAX_PLAINTEXT + 16)

enum channel_state { CHANNEL_HANDSHAKE, CHANNEL_OPEN, CHANNEL_FAILED };

struct channel {
	enum channel_state state;
	bool initiator;
	struct noise_static_identity id;
	struct noise_handshake hs;
	uint8_t send_key[32];
	uint8_t recv_key[32];
	uint64_t send_n;
	uint64_t recv_n;
	uint8_t remote_static[32]; /* the peer's proven static key, once open */
	struct aead_ctx *aead;
};

/* Initiator (a node or a relay): appends the framed initiation to out. */
int channel_init_initiator(struct channel *ch, const uint8_t priv[32],
			   const uint8_t responder_pub[32], struct buf *out);
/* Responder (control): waits for an initiation from any static key. */
int channel_init_responder(struct channel *ch, const uint8_t priv[32]);
/* Wipes every key. */
void channel_destroy(struct channel *ch);

/*
 * Splits the next record off a stream buffer: returns its total length
 * (header included) with *body and *body_len set, 0 when more bytes are needed,
 * -EMSGSIZE when the announced length exceeds max.
 */
long channel_next_record(const uint8_t *buf, size_t len, size_t max, const uint8_t **body,
			 size_t *body_len);

/* A handshake record: the responder answers into out; both become OPEN.
 * Returns 0 or -EBADMSG (and the channel is FAILED). */
int channel_handshake(struct channel *ch, const uint8_t *body, size_t len, struct buf *out);
/* Appends one framed sealed record.  Returns 0, -EMSGSIZE or -ENOBUFS. */
int channel_seal(struct channel *ch, const void *plain, size_t len, struct buf *out);
/* Opens a record body in place; *plain_len is its plaintext length.
 * Returns 0 or -EBADMSG (and the channel is FAILED). */
int channel_open(struct channel *ch, uint8_t *body, size_t len, size_t *plain_len);
#endif
