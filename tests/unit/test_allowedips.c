// SPDX-License-Identifier: MIT
/* Cryptokey routing: fixed cases, and thousands of random prefixes checked
 * against a naive longest-prefix scan. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "wg/allowedips.h"

#define A ((void *)1)
#define B ((void *)2)
#define C ((void *)3)

static void insert(struct allowedips *t, const char *s, void *peer)
{
	struct ip_prefix p;

	assert_int_equal(prefix_parse(s, &p), 0);
	assert_int_equal(allowedips_insert(t, &p, peer), 0);
}

static void *lookup(struct allowedips *t, const char *addr)
{
	struct ip_prefix p;

	assert_int_equal(prefix_parse(addr, &p), 0);
	return allowedips_lookup(t, p.family, p.addr.bytes);
}

static void test_longest_prefix_wins(void **state)
{
	struct allowedips t;

	allowedips_init(&t);
	insert(&t, "10.0.0.0/8", A);
	insert(&t, "10.1.0.0/16", B);
	insert(&t, "10.1.2.3/32", C);
	insert(&t, "fd00::/8", A);
	insert(&t, "fd00:1::/32", B);
	assert_ptr_equal(lookup(&t, "10.9.9.9"), A);
	assert_ptr_equal(lookup(&t, "10.1.9.9"), B);
	assert_ptr_equal(lookup(&t, "10.1.2.3"), C);
	assert_ptr_equal(lookup(&t, "10.1.2.4"), B);
	assert_null(lookup(&t, "11.0.0.1"));
	assert_ptr_equal(lookup(&t, "fd00:1::5"), B);
	assert_ptr_equal(lookup(&t, "fd01::5"), A);
	assert_null(lookup(&t, "fe80::1"));
	/* Host bits are ignored; an identical prefix changes owner. */
	insert(&t, "10.1.77.77/16", C);
	assert_ptr_equal(lookup(&t, "10.1.9.9"), C);
	assert_int_equal(t.count, 5);
	/* A default route catches the rest of one family only. */
	insert(&t, "0.0.0.0/0", B);
	assert_ptr_equal(lookup(&t, "11.0.0.1"), B);
	assert_null(lookup(&t, "fe80::1"));
	allowedips_free(&t);
}

static void test_remove(void **state)
{
	struct allowedips t;
	struct ip_prefix p;

	allowedips_init(&t);
	insert(&t, "10.0.0.0/8", A);
	insert(&t, "10.1.0.0/16", B);
	prefix_parse("10.1.0.0/16", &p);
	assert_int_equal(allowedips_remove(&t, &p, A), -ENOENT); /* not A's */
	assert_int_equal(allowedips_remove(&t, &p, B), 0);
	assert_ptr_equal(lookup(&t, "10.1.9.9"), A);
	allowedips_remove_by_peer(&t, A);
	assert_null(lookup(&t, "10.1.9.9"));
	assert_int_equal(t.count, 0);
	allowedips_free(&t);
}

struct ref_entry {
	struct ip_prefix p;
	void *peer;
};

static void *ref_lookup(const struct ref_entry *r, size_t n, int family, const uint8_t *addr)
{
	int best = -1;
	void *peer = NULL;

	for (size_t i = 0; i < n; i++)
		if (r[i].peer && r[i].p.bits > best && prefix_contains(&r[i].p, family, addr)) {
			best = r[i].p.bits;
			peer = r[i].peer;
		}
	return peer;
}

static int count_cb(void *ctx, const struct ip_prefix *p, void *peer)
{
	(*(size_t *)ctx)++;
	return 0;
}

static void test_random_against_naive(void **state)
{
	enum { N = 3000, LOOKUPS = 20000 };
	struct ref_entry *ref = calloc(N, sizeof(*ref));
	struct allowedips t;
	size_t n = 0, walked = 0;

	srand(42);
	allowedips_init(&t);
	for (int i = 0; i < N; i++) {
		struct ip_prefix p = {.family = (rand() & 1) ? AF_INET : AF_INET6};
		unsigned len = p.family == AF_INET ? 4 : 16;
		/* Few distinct leading bytes, so prefixes overlap a lot. */
		for (unsigned j = 0; j < len; j++)
			p.addr.bytes[j] = (uint8_t)(j < 2 ? rand() % 4 : rand());
		p.bits = (uint8_t)(rand() % (len * 8 + 1));
		prefix_mask(&p);
		void *peer = (void *)(uintptr_t)(1 + rand() % 50);
		assert_int_equal(allowedips_insert(&t, &p, peer), 0);
		size_t k;
		for (k = 0; k < n; k++)
			if (ref[k].p.family == p.family && ref[k].p.bits == p.bits &&
			    !memcmp(ref[k].p.addr.bytes, p.addr.bytes, len))
				break;
		ref[k] = (struct ref_entry){p, peer};
		if (k == n)
			n++;
	}
	assert_int_equal(t.count, n);
	allowedips_walk(&t, count_cb, &walked);
	assert_int_equal(walked, n);
	/* Remove a third of the owners, then compare many lookups. */
	for (uintptr_t peer = 1; peer <= 50; peer += 3) {
		allowedips_remove_by_peer(&t, (void *)peer);
		for (size_t k = 0; k < n; k++)
			if (ref[k].peer == (void *)peer)
				ref[k].peer = NULL;
	}
	for (int i = 0; i < LOOKUPS; i++) {
		int family = (rand() & 1) ? AF_INET : AF_INET6;
		uint8_t addr[16];
		for (unsigned j = 0; j < 16; j++)
			addr[j] = (uint8_t)(j < 2 ? rand() % 4 : rand());
		/* Half the lookups land inside a stored prefix. */
		if (i & 1) {
			const struct ref_entry *r = &ref[rand() % n];
			if (r->p.family == family)
				memcpy(addr, r->p.addr.bytes, r->p.bits / 8);
		}
		assert_ptr_equal(allowedips_lookup(&t, family, addr),
				 ref_lookup(ref, n, family, addr));
	}
	allowedips_free(&t);
	free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_prefix_wins),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_random_against_naive),
	};

	crypto_init();
	return cmocka_run_group_tests_name("allowedips", tests, NULL, NULL);
}
