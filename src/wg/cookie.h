/* SPDX-License-Identifier: MIT */
/*
 * MAC1/MAC2 and cookie replies (whitepaper section 5.4.4 and 5.4.7): the
 * defence against handshake floods.  Runs on the event loop only.
 */
#ifndef KNIT_WG_COOKIE_H
#define KNIT_WG_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"
#include "wg/messages.h"

/* Ours: checks the macs of messages sent to us; makes cookie replies. */
struct cookie_checker {
	uint8_t secret[NOISE_HASH_LEN];
	uint64_t secret_birth_ns; /* clock_mono_ns(); 0 = never */
	uint8_t message_mac1_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t cookie_encryption_key[NOISE_SYMMETRIC_KEY_LEN];
};

/* Per peer: adds macs to messages we send it; consumes its cookie replies. */
struct cookie_maker {
	uint8_t mac1_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t cookie_decryption_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t cookie[COOKIE_LEN];
	uint64_t cookie_birth_ns;
	bool is_cookie_valid;
	bool have_sent_mac1;
	uint8_t last_mac1_sent[COOKIE_LEN];
};

enum cookie_mac_state {
	INVALID_MAC,
	VALID_MAC_BUT_NO_COOKIE,
	VALID_MAC_WITH_COOKIE,
};

/* our_public: our static public key (all zero when we have none yet). */
void cookie_checker_init(struct cookie_checker *c, const uint8_t our_public[NOISE_PUBLIC_KEY_LEN]);
/* peer_public: that peer's static public key. */
void cookie_maker_init(struct cookie_maker *m, const uint8_t peer_public[NOISE_PUBLIC_KEY_LEN]);

/*
 * msg is a whole handshake initiation or response (len bytes, the macs are
 * its last 32).  check_cookie: the caller is under load and wants MAC2 too.
 */
enum cookie_mac_state cookie_validate_packet(struct cookie_checker *c, const void *msg, size_t len,
					     const union sockaddr_inet *src, bool check_cookie);
/* Fills mac1 and, while a cookie is fresh, mac2 of a message we send. */
void cookie_add_macs(struct cookie_maker *m, void *msg, size_t len);

/* A cookie reply to msg (which came from src with sender index `index`). */
int cookie_message_create(struct message_handshake_cookie *dst, struct cookie_checker *c,
			  const void *msg, size_t len, uint32_t index,
			  const union sockaddr_inet *src);
/* Returns 0, or -EBADMSG when it does not decrypt, -EINVAL when unexpected. */
int cookie_message_consume(struct cookie_maker *m, const struct message_handshake_cookie *src);

#endif
