/* SPDX-License-Identifier: MIT */
/*
 * The Noise_IKpsk2 handshake of WireGuard (whitepaper section 5.4): message
 * creation and consumption, and the derivation of transport keys.  Pure
 * protocol state, no I/O; runs on the event loop only, so it takes no locks.
 * MAC1/MAC2 are added and checked by cookie.h, not here.
 */
#ifndef KNIT_WG_NOISE_H
#define KNIT_WG_NOISE_H

#include <stdbool.h>
#include <stdint.h>

#include "wg/messages.h"

struct noise_static_identity {
	uint8_t static_public[NOISE_PUBLIC_KEY_LEN];
	uint8_t static_private[NOISE_PUBLIC_KEY_LEN];
	bool has_identity;
};

enum noise_handshake_state {
	HANDSHAKE_ZEROED,
	HANDSHAKE_CREATED_INITIATION,
	HANDSHAKE_CONSUMED_INITIATION,
	HANDSHAKE_CREATED_RESPONSE,
	HANDSHAKE_CONSUMED_RESPONSE,
};

/* One per peer. */
struct noise_handshake {
	enum noise_handshake_state state;
	uint64_t last_initiation_consumption_ns; /* clock_mono_ns(); flood limit */
	uint32_t local_index;
	uint32_t remote_index;
	uint8_t remote_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t remote_ephemeral[NOISE_PUBLIC_KEY_LEN];
	/* DH(our static, their static); all zero when that DH is invalid. */
	uint8_t precomputed_static_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t ephemeral_private[NOISE_PUBLIC_KEY_LEN];
	uint8_t preshared_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t hash[NOISE_HASH_LEN];
	uint8_t chaining_key[NOISE_HASH_LEN];
	/* Greatest TAI64N timestamp accepted from this peer (replay defence). */
	uint8_t latest_timestamp[NOISE_TIMESTAMP_LEN];
};

/* Transport keys of one session, as noise_handshake_begin_session() gives them. */
struct noise_session_keys {
	uint8_t sending[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t receiving[NOISE_SYMMETRIC_KEY_LEN];
	uint32_t local_index;
	uint32_t remote_index;
	bool initiator;
};

/* psk may be NULL (all zero). Precomputes DH(static, remote static). */
void noise_handshake_init(struct noise_handshake *hs, const struct noise_static_identity *id,
			  const uint8_t remote_static[NOISE_PUBLIC_KEY_LEN],
			  const uint8_t psk[NOISE_SYMMETRIC_KEY_LEN]);
/* After the local private key changed. */
void noise_handshake_precompute(struct noise_handshake *hs, const struct noise_static_identity *id);
void noise_handshake_set_psk(struct noise_handshake *hs,
			     const uint8_t psk[NOISE_SYMMETRIC_KEY_LEN]);
/* Wipes ephemeral state and returns to HANDSHAKE_ZEROED (keeps keys, timestamp). */
void noise_handshake_clear(struct noise_handshake *hs);
/* Wipes everything (peer removal). */
void noise_handshake_destroy(struct noise_handshake *hs);

/* Initiator: fills everything but macs.  Returns 0 or -errno. */
int noise_handshake_create_initiation(struct message_handshake_initiation *dst,
				      struct noise_handshake *hs,
				      const struct noise_static_identity *id, uint32_t local_index);

/* Finds the handshake of the peer with this static key, or NULL. */
typedef struct noise_handshake *(*noise_lookup_fn)(
	void *ctx, const uint8_t remote_static[NOISE_PUBLIC_KEY_LEN]);

/*
 * Responder: decrypts the initiator's static key, finds its peer with lookup,
 * checks the timestamp is newer than any before and that initiations do not
 * arrive faster than INITIATIONS_PER_SECOND.  On success *out is the peer's
 * handshake, now HANDSHAKE_CONSUMED_INITIATION.  Returns 0, -ENOENT (unknown
 * peer), -EBADMSG (does not authenticate), -EALREADY (replayed timestamp),
 * -EAGAIN (flood).
 */
int noise_handshake_consume_initiation(const struct message_handshake_initiation *src,
				       const struct noise_static_identity *id,
				       noise_lookup_fn lookup, void *lookup_ctx,
				       struct noise_handshake **out);

/* Responder: after consume_initiation.  Fills everything but macs. */
int noise_handshake_create_response(struct message_handshake_response *dst,
				    struct noise_handshake *hs, uint32_t local_index);

/*
 * Initiator: hs is the handshake whose local_index equals the response's
 * receiver_index (the caller looks that up).  Returns 0 or -EBADMSG / -EINVAL.
 */
int noise_handshake_consume_response(const struct message_handshake_response *src,
				     struct noise_handshake *hs,
				     const struct noise_static_identity *id);

/*
 * After CREATED_RESPONSE (responder) or CONSUMED_RESPONSE (initiator):
 * derives the transport keys and clears the handshake's ephemeral state.
 * Returns 0 or -EINVAL in any other state.
 */
int noise_handshake_begin_session(struct noise_handshake *hs, struct noise_session_keys *keys);

/* TAI64N of the wall clock now (12 bytes, big endian), as initiations carry. */
void noise_tai64n_now(uint8_t out[NOISE_TIMESTAMP_LEN]);

#endif
