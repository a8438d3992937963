/* SPDX-License-Identifier: MIT */
/*
 * Disco: the messages peers use to find a direct path, sent over the node's
 * one UDP socket (beside WireGuard and STUN) or through a relay.
 *
 *     magic "KNITD1" (6) | sender disco key (32) | nonce (24) | box
 *
 * The box is XChaCha20-Poly1305 under BLAKE2s-256(key = "knit disco v1",
 * X25519(our disco private key, their disco public key)) of
 *
 *     type (1) | payload
 *
 *   ping (1):          txid (12) | sender node key (32)
 *   pong (2):          txid (12) | the source the receiver saw (18: IPv6 or
 *                      v4-mapped address, port big-endian)
 *   call-me-maybe (3): up to DISCO_MAX_ENDPOINTS endpoints of 18 bytes
 *
 * The magic's first byte ('K', 0x4b) is neither a WireGuard type (1..4 then
 * three zero bytes) nor STUN (two top bits zero), so one look at a datagram
 * tells the three apart.  Pure functions, no I/O.
 */
#ifndef KNIT_DISCO_DISCO_H
#define KNIT_DISCO_DISCO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define DISCO_MAGIC	     "KNITD1"
#define DISCO_MAGIC_LEN	     6
#define DISCO_HEADER_LEN     (DISCO_MAGIC_LEN + 32 + 24)
#define DISCO_TAG_LEN	     16
#define DISCO_TXID_LEN	     12
#define DISCO_EP_LEN	     18
#define DISCO_MAX_ENDPOINTS  16
#define DISCO_MAX_PLAIN	     (1 + DISCO_MAX_ENDPOINTS * DISCO_EP_LEN)
#define DISCO_MAX_PACKET     (DISCO_HEADER_LEN + DISCO_MAX_PLAIN + DISCO_TAG_LEN)

enum disco_type { DISCO_PING = 1, DISCO_PONG = 2, DISCO_CALL_ME_MAYBE = 3 };

struct disco_msg {
	enum disco_type type;
	uint8_t txid[DISCO_TXID_LEN];
	uint8_t node_key[32];	 /* ping */
	union sockaddr_inet src; /* pong */
	union sockaddr_inet endpoints[DISCO_MAX_ENDPOINTS]; /* call-me-maybe */
	unsigned n_endpoints;
};

/* Cheap demultiplexing: the magic and a plausible length. */
bool disco_is_message(const uint8_t *p, size_t len);
/* The sender's disco key of a packet disco_is_message() accepted. */
const uint8_t *disco_sender(const uint8_t *p);
/* The box key for a pair of disco keys (either side computes the same). */
int disco_shared_key(uint8_t out[32], const uint8_t my_priv[32], const uint8_t their_pub[32]);

/* Seals msg from my_pub under key into out; returns the length or -errno. */
int disco_seal(uint8_t *out, size_t size, const uint8_t my_pub[32], const uint8_t key[32],
	       const struct disco_msg *msg);
/* Opens a packet under key (the sender's shared key); 0 or -EBADMSG. */
int disco_open(const uint8_t *p, size_t len, const uint8_t key[32], struct disco_msg *out);
#endif
