// SPDX-License-Identifier: MIT
/* src/disco/disco.c: disco messages, sealed between two disco keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "disco/disco.h"

struct two {
	uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], ab[32], ba[32];
};

static void keys(struct two *t)
{
	x25519_generate(t->a_priv);
	x25519_generate(t->b_priv);
	x25519_public(t->a_pub, t->a_priv);
	x25519_public(t->b_pub, t->b_priv);
	assert_int_equal(disco_shared_key(t->ab, t->a_priv, t->b_pub), 0);
	assert_int_equal(disco_shared_key(t->ba, t->b_priv, t->a_pub), 0);
}

static void test_shared_key_is_symmetric(void **state)
{
	struct two t;

	keys(&t);
	assert_memory_equal(t.ab, t.ba, 32);
}

static void test_every_type_round_trips(void **state)
{
	uint8_t pkt[DISCO_MAX_PACKET];
	struct disco_msg m = {.type = DISCO_PING}, got;
	struct two t;
	int n;

	keys(&t);
	memset(m.txid, 7, sizeof(m.txid));
	memset(m.node_key, 9, sizeof(m.node_key));
	n = disco_seal(pkt, sizeof(pkt), t.a_pub, t.ab, &m);
	assert_true(n > 0);
	assert_true(disco_is_message(pkt, (size_t)n));
	assert_memory_equal(disco_sender(pkt), t.a_pub, 32);
	assert_int_equal(disco_open(pkt, (size_t)n, t.ba, &got), 0);
	assert_int_equal(got.type, DISCO_PING);
	assert_memory_equal(got.txid, m.txid, DISCO_TXID_LEN);
	assert_memory_equal(got.node_key, m.node_key, 32);

	m = (struct disco_msg){.type = DISCO_PONG};
	assert_int_equal(endpoint_parse("198.51.100.7:41641", false, &m.src), 0);
	n = disco_seal(pkt, sizeof(pkt), t.b_pub, t.ba, &m);
	assert_int_equal(disco_open(pkt, (size_t)n, t.ab, &got), 0);
	assert_true(endpoint_equal(&got.src, &m.src));
	assert_int_equal(got.src.sa.sa_family, AF_INET); /* v4 stays v4 */

	m = (struct disco_msg){.type = DISCO_CALL_ME_MAYBE, .n_endpoints = DISCO_MAX_ENDPOINTS};
	for (unsigned i = 0; i < DISCO_MAX_ENDPOINTS; i++) {
		char s[64];
		snprintf(s, sizeof(s), i % 2 ? "[2001:db8::%u]:%u" : "10.0.0.%u:%u", i + 1, 1000 + i);
		assert_int_equal(endpoint_parse(s, false, &m.endpoints[i]), 0);
	}
	n = disco_seal(pkt, sizeof(pkt), t.a_pub, t.ab, &m);
	assert_int_equal(n, DISCO_MAX_PACKET);
	assert_int_equal(disco_open(pkt, (size_t)n, t.ba, &got), 0);
	assert_int_equal(got.n_endpoints, DISCO_MAX_ENDPOINTS);
	for (unsigned i = 0; i < DISCO_MAX_ENDPOINTS; i++)
		assert_true(endpoint_equal(&got.endpoints[i], &m.endpoints[i]));
}

static void test_forgeries_fail(void **state)
{
	uint8_t pkt[DISCO_MAX_PACKET], other[32], wrong[32];
	struct disco_msg m = {.type = DISCO_PING}, got;
	struct two t;
	int n;

	keys(&t);
	n = disco_seal(pkt, sizeof(pkt), t.a_pub, t.ab, &m);
	for (int i = 0; i < n; i++) {
		pkt[i] ^= 0x40;
		/* Any flipped bit: not disco any more, or does not open. */
		assert_int_not_equal(disco_open(pkt, (size_t)n, t.ba, &got), 0);
		pkt[i] ^= 0x40;
	}
	/* A third party's key does not open it. */
	x25519_generate(other);
	assert_int_equal(disco_shared_key(wrong, other, t.a_pub), 0);
	assert_int_equal(disco_open(pkt, (size_t)n, wrong, &got), -EBADMSG);
	/* Truncated and overlong packets are not disco. */
	assert_false(disco_is_message(pkt, DISCO_HEADER_LEN + DISCO_TAG_LEN));
	assert_false(disco_is_message(pkt, DISCO_MAX_PACKET + 1));
	/* WireGuard and STUN never look like disco. */
	uint8_t wg[148] = {1, 0, 0, 0}, stun[20] = {0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42};
	assert_false(disco_is_message(wg, sizeof(wg)));
	assert_false(disco_is_message(stun, sizeof(stun)));
	/* A buffer too small is refused, not overrun. */
	assert_int_equal(disco_seal(pkt, 40, t.a_pub, t.ab, &m), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_key_is_symmetric),
		cmocka_unit_test(test_every_type_round_trips),
		cmocka_unit_test(test_forgeries_fail),
	};

	crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
