// SPDX-License-Identifier: MIT
/* MAC1, MAC2 and cookie replies between a sender and a loaded receiver. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "wg/cookie.h"

static uint8_t receiver_public[32];
static struct cookie_checker checker; /* at the receiver */
static struct cookie_maker maker;     /* at the sender, for the receiver */
static struct message_handshake_initiation msg;
static union sockaddr_inet src;

static int setup(void **state)
{
	uint8_t priv[32];

	x25519_generate(priv);
	x25519_public(receiver_public, priv);
	cookie_checker_init(&checker, receiver_public);
	cookie_maker_init(&maker, receiver_public);
	random_bytes(&msg, sizeof(msg));
	msg.sender_index = 0x01020304;
	endpoint_parse("192.0.2.7:51820", false, &src);
	return 0;
}

static void test_mac1(void **state)
{
	cookie_add_macs(&maker, &msg, sizeof(msg));
	assert_int_equal(cookie_validate_packet(&checker, &msg, sizeof(msg), &src, false),
			 VALID_MAC_BUT_NO_COOKIE);
	/* mac1 covers every byte before it. */
	msg.unencrypted_ephemeral[3] ^= 1;
	assert_int_equal(cookie_validate_packet(&checker, &msg, sizeof(msg), &src, false),
			 INVALID_MAC);
	msg.unencrypted_ephemeral[3] ^= 1;
	/* A maker for someone else's key makes a mac1 we reject. */
	struct cookie_maker other;
	uint8_t other_pub[32];
	random_bytes(other_pub, 32);
	cookie_maker_init(&other, other_pub);
	cookie_add_macs(&other, &msg, sizeof(msg));
	assert_int_equal(cookie_validate_packet(&checker, &msg, sizeof(msg), &src, false),
			 INVALID_MAC);
}

static void test_cookie_round_trip(void **state)
{
	struct message_handshake_cookie reply;
	union sockaddr_inet elsewhere;

	/* Under load, a message without mac2 earns a cookie reply. */
	cookie_add_macs(&maker, &msg, sizeof(msg));
	assert_int_equal(cookie_validate_packet(&checker, &msg, sizeof(msg), &src, true),
			 VALID_MAC_BUT_NO_COOKIE);
	assert_int_equal(
		cookie_message_create(&reply, &checker, &msg, sizeof(msg), msg.sender_index, &src),
		0);
	assert_int_equal(reply.receiver_index, msg.sender_index);
	assert_int_equal(cookie_message_consume(&maker, &reply), 0);
	/* A reply is consumed once: the mac1 it answered is spent. */
	assert_int_equal(cookie_message_consume(&maker, &reply), -EINVAL);
	/* The next message carries mac2 and passes. */
	cookie_add_macs(&maker, &msg, sizeof(msg));
	assert_int_equal(cookie_validate_packet(&checker, &msg, sizeof(msg), &src, true),
			 VALID_MAC_WITH_COOKIE);
	/* The cookie is bound to the source address and port. */
	endpoint_parse("192.0.2.7:51821", false, &elsewhere);
	assert_int_equal(cookie_validate_packet(&checker, &msg, sizeof(msg), &elsewhere, true),
			 VALID_MAC_BUT_NO_COOKIE);
}

static void test_tampered_reply(void **state)
{
	struct message_handshake_cookie reply;

	cookie_add_macs(&maker, &msg, sizeof(msg));
	assert_int_equal(
		cookie_message_create(&reply, &checker, &msg, sizeof(msg), msg.sender_index, &src),
		0);
	reply.encrypted_cookie[0] ^= 1;
	assert_int_equal(cookie_message_consume(&maker, &reply), -EBADMSG);
	assert_false(maker.is_cookie_valid);
	/* Nor does a reply to a message we never sent decrypt. */
	reply.encrypted_cookie[0] ^= 1;
	msg.unencrypted_ephemeral[0] ^= 1;
	cookie_add_macs(&maker, &msg, sizeof(msg)); /* a different last mac1 */
	assert_int_equal(cookie_message_consume(&maker, &reply), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_mac1, setup),
		cmocka_unit_test_setup(test_cookie_round_trip, setup),
		cmocka_unit_test_setup(test_tampered_reply, setup),
	};

	crypto_init();
	return cmocka_run_group_tests_name("cookie", tests, NULL, NULL);
}
