// SPDX-License-Identifier: MIT
/*
 * Handshake messages as the event loop receives them: checked by MAC1 (the
 * harness computes a valid one, so the fuzzer reaches Noise), then consumed
 * as an initiation, a response (to an initiation in flight) or a cookie reply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "wg/cookie.h"
#include "wg/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct noise_static_identity us, them;
static struct noise_handshake hs; /* ours, with them */
static struct cookie_checker checker;
static struct cookie_maker maker; /* ours, for them */

static struct noise_handshake *lookup(void *ctx, const uint8_t key[32])
{
	return memcmp(key, them.static_public, 32) ? NULL : &hs;
}

static void setup(void)
{
	crypto_init();
	x25519_generate(us.static_private);
	x25519_public(us.static_public, us.static_private);
	us.has_identity = true;
	x25519_generate(them.static_private);
	x25519_public(them.static_public, them.static_private);
	them.has_identity = true;
	cookie_checker_init(&checker, us.static_public);
	cookie_maker_init(&maker, them.static_public);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union sockaddr_inet src = {.in.sin_family = AF_INET, .in.sin_port = 1};
	struct noise_handshake *found;
	struct cookie_maker their_maker;

	if (!us.has_identity)
		setup();
	if (size < 1)
		return 0;
	cookie_maker_init(&their_maker, us.static_public);
	if (data[0] % 3 == 0 && size - 1 == sizeof(struct message_handshake_initiation)) {
		struct message_handshake_initiation m;
		memcpy(&m, data + 1, sizeof(m));
		cookie_add_macs(&their_maker, &m, sizeof(m));
		if (cookie_validate_packet(&checker, &m, sizeof(m), &src, data[1] & 1) ==
		    INVALID_MAC)
			abort(); /* a mac1 we computed must pass */
		hs.last_initiation_consumption_ns = 0;
		noise_handshake_init(&hs, &us, them.static_public, NULL);
		noise_handshake_consume_initiation(&m, &us, lookup, NULL, &found);
	} else if (data[0] % 3 == 1 && size - 1 == sizeof(struct message_handshake_response)) {
		struct message_handshake_response m;
		struct message_handshake_initiation init;
		noise_handshake_init(&hs, &us, them.static_public, NULL);
		noise_handshake_create_initiation(&init, &hs, &us, 1);
		memcpy(&m, data + 1, sizeof(m));
		cookie_add_macs(&their_maker, &m, sizeof(m));
		cookie_validate_packet(&checker, &m, sizeof(m), &src, true);
		noise_handshake_consume_response(&m, &hs, &us);
	} else if (data[0] % 3 == 2 && size - 1 == sizeof(struct message_handshake_cookie)) {
		struct message_handshake_cookie m;
		struct message_handshake_initiation init = {0};
		memcpy(&m, data + 1, sizeof(m));
		cookie_add_macs(&maker, &init, sizeof(init));
		cookie_message_consume(&maker, &m);
	}
	return 0;
}
