// SPDX-License-Identifier: MIT
/* The index table and the keypair slot rules of the whitepaper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "wg/keypair.h"

static struct wg_keypair *make_keypair(struct wg_index_table *t, bool initiator)
{
	struct noise_session_keys keys = {.initiator = initiator, .remote_index = 7};
	struct wg_keypair *kp;

	random_bytes(keys.sending, sizeof(keys.sending));
	random_bytes(keys.receiving, sizeof(keys.receiving));
	assert_int_equal(index_table_add(t, INDEX_HANDSHAKE, NULL, NULL, &keys.local_index), 0);
	kp = keypair_new(&keys, NULL, 1);
	assert_non_null(kp);
	assert_int_equal(index_table_set_keypair(t, kp->local_index, kp), 0);
	return kp;
}

static void test_index_table_many(void **state)
{
	struct wg_index_table t;
	enum { N = 5000 };
	uint32_t *idx = calloc(N, sizeof(*idx));

	assert_int_equal(index_table_init(&t), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(index_table_add(&t, INDEX_HANDSHAKE, (void *)(uintptr_t)(i + 1),
						 NULL, &idx[i]),
				 0);
	assert_int_equal(t.used, N);
	for (int i = 0; i < N; i++) {
		const struct wg_index_entry *e = index_table_find(&t, idx[i]);
		assert_non_null(e);
		assert_ptr_equal(e->peer, (void *)(uintptr_t)(i + 1));
	}
	/* Remove every other one; the rest must still be found past tombstones. */
	for (int i = 0; i < N; i += 2)
		index_table_remove(&t, idx[i]);
	for (int i = 0; i < N; i++) {
		const struct wg_index_entry *e = index_table_find(&t, idx[i]);
		if (i % 2)
			assert_non_null(e);
		else
			assert_null(e);
	}
	/* Churn: tombstones are reclaimed, the table does not grow. */
	uint32_t capacity = t.capacity;
	for (int round = 0; round < 20000; round++) {
		uint32_t x;
		assert_int_equal(index_table_add(&t, INDEX_HANDSHAKE, NULL, NULL, &x), 0);
		index_table_remove(&t, x);
	}
	assert_int_equal(t.used, N / 2);
	assert_int_equal(t.capacity, capacity);
	assert_true(t.dirty * 2 <= t.capacity);
	index_table_free(&t);
	free(idx);
}

static void test_initiator_rotation(void **state)
{
	struct wg_index_table t;
	struct wg_keypairs kps = {0};

	assert_int_equal(index_table_init(&t), 0);
	struct wg_keypair *a = make_keypair(&t, true);
	uint32_t a_idx = a->local_index;
	keypairs_add(&kps, a, &t);
	assert_ptr_equal(kps.current, a);
	assert_null(kps.previous);

	struct wg_keypair *b = make_keypair(&t, true);
	keypairs_add(&kps, b, &t);
	assert_ptr_equal(kps.current, b);
	assert_ptr_equal(kps.previous, a); /* still accepted on receipt */

	struct wg_keypair *c = make_keypair(&t, true);
	keypairs_add(&kps, c, &t);
	assert_ptr_equal(kps.current, c);
	assert_ptr_equal(kps.previous, b);
	assert_null(index_table_find(&t, a_idx)); /* a is gone with its index */
	keypairs_clear(&kps, &t);
	assert_int_equal(t.used, 0);
	index_table_free(&t);
}

static void test_responder_waits_for_confirmation(void **state)
{
	struct wg_index_table t;
	struct wg_keypairs kps = {0};

	assert_int_equal(index_table_init(&t), 0);
	struct wg_keypair *cur = make_keypair(&t, true);
	keypairs_add(&kps, cur, &t);
	struct wg_keypair *n = make_keypair(&t, false);
	keypairs_add(&kps, n, &t);
	/* Not usable for sending until the initiator has used it. */
	assert_ptr_equal(kps.current, cur);
	assert_ptr_equal(kps.next, n);
	assert_false(keypairs_confirm_next(&kps, cur, &t));
	assert_true(keypairs_confirm_next(&kps, n, &t));
	assert_ptr_equal(kps.current, n);
	assert_ptr_equal(kps.previous, cur);
	assert_null(kps.next);
	assert_false(keypairs_confirm_next(&kps, n, &t));
	keypairs_clear(&kps, &t);
	assert_int_equal(t.used, 0);
	index_table_free(&t);
}

static void test_initiator_after_pending_next(void **state)
{
	struct wg_index_table t;
	struct wg_keypairs kps = {0};

	assert_int_equal(index_table_init(&t), 0);
	struct wg_keypair *cur = make_keypair(&t, true);
	keypairs_add(&kps, cur, &t);
	struct wg_keypair *n = make_keypair(&t, false);
	keypairs_add(&kps, n, &t);
	/* Both sides initiated at once: our own completes while next waits.
	 * The pending next becomes previous, so its packets still arrive. */
	struct wg_keypair *mine = make_keypair(&t, true);
	keypairs_add(&kps, mine, &t);
	assert_ptr_equal(kps.current, mine);
	assert_ptr_equal(kps.previous, n);
	assert_null(kps.next);
	keypairs_clear(&kps, &t);
	assert_int_equal(t.used, 0);
	index_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_table_many),
		cmocka_unit_test(test_initiator_rotation),
		cmocka_unit_test(test_responder_waits_for_confirmation),
		cmocka_unit_test(test_initiator_after_pending_next),
	};

	crypto_init();
	return cmocka_run_group_tests_name("keypair", tests, NULL, NULL);
}
