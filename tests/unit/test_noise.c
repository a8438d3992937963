// SPDX-License-Identifier: MIT
/* The Noise_IKpsk2 handshake between two in-process identities. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "wg/noise.h"

struct side {
	struct noise_static_identity id;
	struct noise_handshake hs; /* its handshake with the other side */
};

static struct side alice, bob;

static struct noise_handshake *lookup_bob_peer(void *ctx, const uint8_t key[32])
{
	/* Bob knows one peer: alice. */
	return !memcmp(key, alice.id.static_public, 32) ? &bob.hs : NULL;
}

static void make_identity(struct noise_static_identity *id)
{
	x25519_generate(id->static_private);
	assert_int_equal(x25519_public(id->static_public, id->static_private), 0);
	id->has_identity = true;
}

static int setup(void **state)
{
	make_identity(&alice.id);
	make_identity(&bob.id);
	noise_handshake_init(&alice.hs, &alice.id, bob.id.static_public, NULL);
	noise_handshake_init(&bob.hs, &bob.id, alice.id.static_public, NULL);
	return 0;
}

/* A whole handshake; returns the first failing step's error. */
static int handshake(struct noise_session_keys *ka, struct noise_session_keys *kb)
{
	struct message_handshake_initiation init;
	struct message_handshake_response resp;
	struct noise_handshake *found;
	int ret;

	if ((ret = noise_handshake_create_initiation(&init, &alice.hs, &alice.id, 0x1111)) < 0)
		return ret;
	if ((ret = noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL,
						      &found)) < 0)
		return ret;
	assert_ptr_equal(found, &bob.hs);
	if ((ret = noise_handshake_create_response(&resp, &bob.hs, 0x2222)) < 0)
		return ret;
	if ((ret = noise_handshake_consume_response(&resp, &alice.hs, &alice.id)) < 0)
		return ret;
	assert_int_equal(noise_handshake_begin_session(&alice.hs, ka), 0);
	assert_int_equal(noise_handshake_begin_session(&bob.hs, kb), 0);
	return 0;
}

static void test_keys_agree(void **state)
{
	struct noise_session_keys ka, kb;
	uint8_t nonce[12], msg[5 + 16], out[5];
	struct aead_ctx *ctx;

	assert_int_equal(handshake(&ka, &kb), 0);
	assert_true(ka.initiator);
	assert_false(kb.initiator);
	assert_memory_equal(ka.sending, kb.receiving, 32);
	assert_memory_equal(ka.receiving, kb.sending, 32);
	assert_memory_not_equal(ka.sending, ka.receiving, 32);
	assert_int_equal(ka.local_index, 0x1111);
	assert_int_equal(ka.remote_index, 0x2222);
	assert_int_equal(kb.local_index, 0x2222);
	assert_int_equal(kb.remote_index, 0x1111);
	/* The ephemeral state is gone once the session begins. */
	assert_int_equal(alice.hs.state, HANDSHAKE_ZEROED);
	assert_int_equal(bob.hs.state, HANDSHAKE_ZEROED);
	for (int i = 0; i < 32; i++)
		assert_int_equal(alice.hs.chaining_key[i] | alice.hs.ephemeral_private[i], 0);
	/* Transport: what alice seals, bob opens. */
	assert_int_equal(aead_ctx_new(&ctx), 0);
	aead_nonce_from_counter(nonce, 0);
	assert_int_equal(
		aead_seal(ctx, ka.sending, nonce, NULL, 0, (const uint8_t *)"hello", 5, msg), 0);
	assert_int_equal(aead_open(ctx, kb.receiving, nonce, NULL, 0, msg, sizeof(msg), out), 0);
	assert_memory_equal(out, "hello", 5);
	aead_ctx_free(ctx);
}

static void test_fresh_keys_each_time(void **state)
{
	struct noise_session_keys k1, k2, kb;

	assert_int_equal(handshake(&k1, &kb), 0);
	/* A newer timestamp (16 ms granules) and past the flood limit. */
	usleep(20000);
	bob.hs.last_initiation_consumption_ns = 0;
	assert_int_equal(handshake(&k2, &kb), 0);
	assert_memory_not_equal(k1.sending, k2.sending, 32);
}

static void test_psk(void **state)
{
	struct noise_session_keys ka, kb;
	uint8_t psk[32], other[32];

	random_bytes(psk, 32);
	random_bytes(other, 32);
	noise_handshake_set_psk(&alice.hs, psk);
	noise_handshake_set_psk(&bob.hs, psk);
	assert_int_equal(handshake(&ka, &kb), 0);
	assert_memory_equal(ka.sending, kb.receiving, 32);
	/* Mismatched: the response does not authenticate. */
	noise_handshake_set_psk(&bob.hs, other);
	usleep(20000);
	bob.hs.last_initiation_consumption_ns = 0;
	assert_int_equal(handshake(&ka, &kb), -EBADMSG);
	assert_int_equal(alice.hs.state, HANDSHAKE_CREATED_INITIATION); /* unchanged */
}

static void test_replay_and_flood(void **state)
{
	struct message_handshake_initiation init;
	struct noise_handshake *found;

	assert_int_equal(noise_handshake_create_initiation(&init, &alice.hs, &alice.id, 1), 0);
	assert_int_equal(
		noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL, &found),
		0);
	/* The same message again: its timestamp is not newer. */
	bob.hs.last_initiation_consumption_ns = 0;
	assert_int_equal(
		noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL, &found),
		-EALREADY);
	/* A new initiation at once: faster than INITIATIONS_PER_SECOND allows. */
	memset(bob.hs.latest_timestamp, 0, sizeof(bob.hs.latest_timestamp));
	assert_int_equal(noise_handshake_create_initiation(&init, &alice.hs, &alice.id, 2), 0);
	assert_int_equal(
		noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL, &found),
		0);
	memset(bob.hs.latest_timestamp, 0, sizeof(bob.hs.latest_timestamp));
	assert_int_equal(
		noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL, &found),
		-EAGAIN);
}

static void test_unknown_peer(void **state)
{
	struct message_handshake_initiation init;
	struct noise_static_identity mallory;
	struct noise_handshake hs, *found;

	make_identity(&mallory);
	noise_handshake_init(&hs, &mallory, bob.id.static_public, NULL);
	assert_int_equal(noise_handshake_create_initiation(&init, &hs, &mallory, 9), 0);
	assert_int_equal(
		noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL, &found),
		-ENOENT);
}

static void test_tampering_fails_everywhere(void **state)
{
	struct message_handshake_initiation init, bad;
	struct message_handshake_response resp, badr;
	struct noise_handshake *found, saved;

	bob.hs.last_initiation_consumption_ns = 0;
	assert_int_equal(noise_handshake_create_initiation(&init, &alice.hs, &alice.id, 1), 0);
	/* Flip each byte of the authenticated part: every change is caught
	 * (the index and macs are not covered by Noise). */
	for (size_t i = offsetof(struct message_handshake_initiation, unencrypted_ephemeral);
	     i < offsetof(struct message_handshake_initiation, macs); i++) {
		bad = init;
		((uint8_t *)&bad)[i] ^= 0x40;
		assert_int_not_equal(noise_handshake_consume_initiation(
					     &bad, &bob.id, lookup_bob_peer, NULL, &found),
				     0);
	}
	assert_int_equal(
		noise_handshake_consume_initiation(&init, &bob.id, lookup_bob_peer, NULL, &found),
		0);
	assert_int_equal(noise_handshake_create_response(&resp, &bob.hs, 7), 0);
	saved = alice.hs;
	for (size_t i = offsetof(struct message_handshake_response, unencrypted_ephemeral);
	     i < offsetof(struct message_handshake_response, macs); i++) {
		badr = resp;
		((uint8_t *)&badr)[i] ^= 0x01;
		assert_int_not_equal(noise_handshake_consume_response(&badr, &alice.hs, &alice.id),
				     0);
		assert_memory_equal(&alice.hs, &saved, sizeof(saved)); /* nothing committed */
	}
	assert_int_equal(noise_handshake_consume_response(&resp, &alice.hs, &alice.id), 0);
	/* A response is taken once. */
	assert_int_equal(noise_handshake_consume_response(&resp, &alice.hs, &alice.id), -EINVAL);
}

static void test_wrong_states(void **state)
{
	struct message_handshake_response resp;
	struct noise_session_keys keys;
	struct noise_handshake fresh;

	noise_handshake_init(&fresh, &bob.id, alice.id.static_public, NULL);
	assert_int_equal(noise_handshake_create_response(&resp, &fresh, 1), -EINVAL);
	assert_int_equal(noise_handshake_begin_session(&fresh, &keys), -EINVAL);
	/* Without our private key nothing is created. */
	struct noise_static_identity none = {0};
	struct message_handshake_initiation init;
	assert_int_equal(noise_handshake_create_initiation(&init, &fresh, &none, 1), -EINVAL);
}

static void test_tai64n_increases(void **state)
{
	uint8_t a[12], b[12];

	noise_tai64n_now(a);
	assert_int_equal(a[0], 0x40); /* 2^62 + seconds */
	usleep(40000);
	noise_tai64n_now(b);
	assert_true(memcmp(b, a, 12) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_keys_agree, setup),
		cmocka_unit_test_setup(test_fresh_keys_each_time, setup),
		cmocka_unit_test_setup(test_psk, setup),
		cmocka_unit_test_setup(test_replay_and_flood, setup),
		cmocka_unit_test_setup(test_unknown_peer, setup),
		cmocka_unit_test_setup(test_tampering_fails_everywhere, setup),
		cmocka_unit_test_setup(test_wrong_states, setup),
		cmocka_unit_test(test_tai64n_increases),
	};

	crypto_init();
	return cmocka_run_group_tests_name("noise", tests, NULL, NULL);
}
