// SPDX-License-Identifier: MIT
/*
 * The bounded packet queue between the data-path threads and the event
 * loop: full means drop (counted), and the consumer's zero-copy side (peek
 * in place, release) hands packets out in order, contiguous runs at a time,
 * across the ring's wrap and while a producer thread keeps pushing.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wg/pktqueue.h"

static const union sockaddr_inet addr = {.in.sin_family = AF_INET};

static bool push_u32(struct pktq *q, uint32_t v)
{
	uint8_t data[100];
	bool ok;

	memset(data, (uint8_t)v, sizeof(data));
	memcpy(data, &v, sizeof(v));
	pktq_lock(q);
	ok = pktq_push_locked(q, &addr, NULL, data, sizeof(data));
	pktq_unlock(q);
	return ok;
}

static uint32_t item_u32(const struct pktq_item *it)
{
	uint32_t v;

	assert_int_equal(it->len, 100);
	memcpy(&v, it->data, sizeof(v));
	assert_int_equal(it->data[99], (uint8_t)v); /* not torn */
	return v;
}

static void test_peek_in_place_across_the_wrap(void **state)
{
	struct pktq q;
	struct pktq_item *run;

	assert_int_equal(pktq_init(&q, 4), 0);
	assert_int_equal(pktq_peek(&q, &run, 16), 0);
	for (uint32_t v = 0; v < 5; v++)
		assert_int_equal(push_u32(&q, v), v < 4); /* the fifth is dropped */
	assert_int_equal(q.dropped, 1);

	assert_int_equal(pktq_peek(&q, &run, 2), 2); /* at most max */
	assert_int_equal(pktq_peek(&q, &run, 16), 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(item_u32(&run[i]), i);
	/* Peeked but not released: still full. */
	assert_false(push_u32(&q, 99));
	pktq_release(&q, 3);
	for (uint32_t v = 4; v < 7; v++)
		assert_true(push_u32(&q, v));

	/* 3 is alone at the ring's end; 4..6 follow from its start. */
	assert_int_equal(pktq_peek(&q, &run, 16), 1);
	assert_int_equal(item_u32(&run[0]), 3);
	pktq_release(&q, 1);
	assert_int_equal(pktq_peek(&q, &run, 16), 3);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(item_u32(&run[i]), 4 + i);
	pktq_release(&q, 3);
	assert_int_equal(pktq_peek(&q, &run, 16), 0);
	pktq_destroy(&q);
}

#define PRODUCED 50000

static void *producer(void *arg)
{
	struct pktq *q = arg;

	for (uint32_t v = 0; v < PRODUCED;)
		if (push_u32(q, v))
			v++; /* retried when full: every value goes through once */
	return NULL;
}

static void test_peek_against_a_producer(void **state)
{
	struct pktq q;
	pthread_t t;
	uint32_t next = 0;

	assert_int_equal(pktq_init(&q, 64), 0);
	assert_int_equal(pthread_create(&t, NULL, producer, &q), 0);
	while (next < PRODUCED) {
		struct pktq_item *run;
		unsigned n = pktq_peek(&q, &run, 32);

		for (unsigned i = 0; i < n; i++)
			assert_int_equal(item_u32(&run[i]), next++);
		pktq_release(&q, n);
	}
	pthread_join(t, NULL);
	assert_int_equal(pktq_peek(&q, &(struct pktq_item *){NULL}, 32), 0);
	pktq_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peek_in_place_across_the_wrap),
		cmocka_unit_test(test_peek_against_a_producer),
	};

	return cmocka_run_group_tests_name("pktqueue", tests, NULL, NULL);
}
