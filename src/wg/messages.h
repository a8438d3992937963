/* SPDX-License-Identifier: MIT */
/* WireGuard's wire format (the whitepaper, section 5.4) and its constants. */
#ifndef KNIT_WG_MESSAGES_H
#define KNIT_WG_MESSAGES_H

#include <stdint.h>

#include "crypto/crypto.h"

enum {
	NOISE_PUBLIC_KEY_LEN = 32,
	NOISE_SYMMETRIC_KEY_LEN = 32,
	NOISE_TIMESTAMP_LEN = 12,
	NOISE_AUTHTAG_LEN = 16,
	NOISE_HASH_LEN = 32,
	COOKIE_LEN = 16,
	COOKIE_NONCE_LEN = 24,
};

/* Protocol constants; timers scale them (a test-only divisor). */
#define REKEY_AFTER_MESSAGES	    (1ULL << 60)
#define REJECT_AFTER_MESSAGES	    (UINT64_MAX - (1ULL << 13))
#define REKEY_TIMEOUT_MS	    5000ULL
#define REKEY_TIMEOUT_JITTER_MAX_MS 334ULL
#define KEEPALIVE_TIMEOUT_MS	    10000ULL
#define REKEY_AFTER_TIME_MS	    120000ULL
#define REJECT_AFTER_TIME_MS	    180000ULL
#define REKEY_ATTEMPT_TIME_MS	    90000ULL
#define COOKIE_SECRET_MAX_AGE_MS    120000ULL
#define COOKIE_SECRET_LATENCY_MS    5000ULL
#define INITIATIONS_PER_SECOND	    50
#define MAX_TIMER_HANDSHAKES	    (REKEY_ATTEMPT_TIME_MS / REKEY_TIMEOUT_MS)

enum message_type {
	MESSAGE_INVALID = 0,
	MESSAGE_HANDSHAKE_INITIATION = 1,
	MESSAGE_HANDSHAKE_RESPONSE = 2,
	MESSAGE_HANDSHAKE_COOKIE = 3,
	MESSAGE_DATA = 4,
};

/* The first 4 bytes of every message: type, then three zero bytes. */
struct message_header {
	uint32_t type; /* little endian */
} __attribute__((packed));

struct message_macs {
	uint8_t mac1[COOKIE_LEN];
	uint8_t mac2[COOKIE_LEN];
} __attribute__((packed));

struct message_handshake_initiation {
	struct message_header header;
	uint32_t sender_index;
	uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t encrypted_static[NOISE_PUBLIC_KEY_LEN + NOISE_AUTHTAG_LEN];
	uint8_t encrypted_timestamp[NOISE_TIMESTAMP_LEN + NOISE_AUTHTAG_LEN];
	struct message_macs macs;
} __attribute__((packed));

struct message_handshake_response {
	struct message_header header;
	uint32_t sender_index;
	uint32_t receiver_index;
	uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t encrypted_nothing[NOISE_AUTHTAG_LEN];
	struct message_macs macs;
} __attribute__((packed));

struct message_handshake_cookie {
	struct message_header header;
	uint32_t receiver_index;
	uint8_t nonce[COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[COOKIE_LEN + NOISE_AUTHTAG_LEN];
} __attribute__((packed));

struct message_data {
	struct message_header header;
	uint32_t key_idx;
	uint64_t counter; /* little endian */
	uint8_t encrypted_data[];
} __attribute__((packed));

#define MESSAGE_DATA_HEADER_LEN	 ((size_t)sizeof(struct message_data))
#define MESSAGE_PADDING_MULTIPLE 16
#define MESSAGE_MINIMUM_LENGTH	 (MESSAGE_DATA_HEADER_LEN + NOISE_AUTHTAG_LEN)

_Static_assert(sizeof(struct message_handshake_initiation) == 148, "initiation size");
_Static_assert(sizeof(struct message_handshake_response) == 92, "response size");
_Static_assert(sizeof(struct message_handshake_cookie) == 64, "cookie size");
_Static_assert(sizeof(struct message_data) == 16, "data header size");

#endif
