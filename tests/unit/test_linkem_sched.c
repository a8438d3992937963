// SPDX-License-Identifier: MIT
/* lab/linkem/sched.c: loss draws, delay and jitter, order, queue bound. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

/* The lab tool's pure part, compiled into this test directly. */
#include "../../lab/linkem/sched.c"

#define MS 1000000ULL

static void test_parse_ms(void **state)
{
	uint32_t us = 7;

	assert_int_equal(lk_parse_ms("20", &us), 0);
	assert_int_equal(us, 20000);
	assert_int_equal(lk_parse_ms("0.5", &us), 0);
	assert_int_equal(us, 500);
	assert_int_equal(lk_parse_ms(".125", &us), 0);
	assert_int_equal(us, 125);
	assert_int_equal(lk_parse_ms("0", &us), 0);
	assert_int_equal(us, 0);
	assert_int_equal(lk_parse_ms("60000", &us), 0);
	assert_int_equal(us, 60000000);
	us = 7;
	assert_int_equal(lk_parse_ms("60000.001", &us), -ERANGE);
	assert_int_equal(lk_parse_ms("99999999999999999999999", &us), -ERANGE);
	assert_int_equal(lk_parse_ms("20.0005", &us), -EINVAL); /* below a microsecond */
	assert_int_equal(lk_parse_ms("", &us), -EINVAL);
	assert_int_equal(lk_parse_ms(".", &us), -EINVAL);
	assert_int_equal(lk_parse_ms("5.", &us), -EINVAL);
	assert_int_equal(lk_parse_ms("-1", &us), -EINVAL);
	assert_int_equal(lk_parse_ms("+1", &us), -EINVAL);
	assert_int_equal(lk_parse_ms("1e3", &us), -EINVAL);
	assert_int_equal(lk_parse_ms(" 1", &us), -EINVAL);
	assert_int_equal(lk_parse_ms("1 ", &us), -EINVAL);
	assert_int_equal(lk_parse_ms("1.2.3", &us), -EINVAL);
	assert_int_equal(lk_parse_ms(NULL, &us), -EINVAL);
	assert_int_equal(us, 7); /* untouched on error */
}

static void test_parse_percent(void **state)
{
	uint32_t ppm = 7;
	uint64_t v;

	assert_int_equal(lk_parse_percent("2.5", &ppm), 0);
	assert_int_equal(ppm, 25000);
	assert_int_equal(lk_parse_percent("0.0001", &ppm), 0);
	assert_int_equal(ppm, 1);
	assert_int_equal(lk_parse_percent("100", &ppm), 0);
	assert_int_equal(ppm, LK_LOSS_FULL);
	assert_int_equal(lk_parse_percent("100.0001", &ppm), -ERANGE);
	assert_int_equal(lk_parse_percent("0.00001", &ppm), -EINVAL);
	assert_int_equal(lk_parse_percent("2,5", &ppm), -EINVAL);
	assert_int_equal(lk_parse_percent("2.5%", &ppm), -EINVAL);
	assert_int_equal(lk_parse_fixed("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(lk_parse_fixed("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(lk_parse_fixed("65536", 0, 65535, &v), -ERANGE);
}

static void test_no_delay_passes_at_once(void **state)
{
	struct lk_sched s;

	assert_int_equal(lk_sched_init(&s, 16, false, 1), 0);
	assert_int_equal(lk_sched_packet(&s, 5 * MS, 1), LK_ACCEPT_NOW);
	assert_int_equal(lk_sched_packet(&s, 5 * MS, 2), LK_ACCEPT_NOW);
	assert_true(lk_sched_next_deadline(&s) == UINT64_MAX);
	assert_int_equal(s.stats.seen, 2);
	assert_int_equal(s.stats.accepted, 2);
	assert_int_equal(s.stats.delayed, 0);
	lk_sched_free(&s);
}

static void test_delay_is_exact(void **state)
{
	struct lk_params p = {.delay_us = 20000};
	struct lk_sched s;
	uint32_t ids[4];

	assert_int_equal(lk_sched_init(&s, 16, false, 1), 0);
	lk_sched_set_params(&s, &p);
	assert_int_equal(lk_sched_packet(&s, 100 * MS, 7), LK_QUEUED);
	assert_int_equal(lk_sched_packet(&s, 101 * MS, 8), LK_QUEUED);
	assert_true(lk_sched_next_deadline(&s) == 120 * MS);
	assert_int_equal(lk_sched_pop_due(&s, 120 * MS - 1, ids, 4), 0);
	assert_int_equal(lk_sched_pop_due(&s, 120 * MS, ids, 4), 1);
	assert_int_equal(ids[0], 7);
	assert_true(lk_sched_next_deadline(&s) == 121 * MS);
	assert_int_equal(lk_sched_pop_due(&s, 200 * MS, ids, 4), 1);
	assert_int_equal(ids[0], 8);
	assert_int_equal(s.stats.delayed, 2);
	assert_int_equal(s.stats.accepted, 2);
	lk_sched_free(&s);
}

/* Runs n packets, one every gap_ns, through s; returns how many were lost. */
static uint64_t lost_of(struct lk_sched *s, uint64_t n)
{
	uint64_t i, lost = 0;

	for (i = 0; i < n; i++)
		if (lk_sched_packet(s, i, (uint32_t)i) == LK_DROP_LOSS)
			lost++;
	return lost;
}

static void test_loss_rate(void **state)
{
	struct lk_params p = {.loss_ppm = 25000};
	struct lk_sched s;
	uint64_t seed, lost;

	/* 10^6 draws: 2.5% ± 0.05% is more than 3 standard deviations wide. */
	for (seed = 1; seed <= 3; seed++) {
		assert_int_equal(lk_sched_init(&s, 16, false, seed), 0);
		lk_sched_set_params(&s, &p);
		lost = lost_of(&s, 1000000);
		assert_in_range(lost, 24500, 25500);
		assert_int_equal(s.stats.dropped_loss, lost);
		assert_int_equal(s.stats.accepted, 1000000 - lost);
		lk_sched_free(&s);
	}
	p.loss_ppm = 0;
	assert_int_equal(lk_sched_init(&s, 16, false, 9), 0);
	lk_sched_set_params(&s, &p);
	assert_int_equal(lost_of(&s, 100000), 0);
	p.loss_ppm = LK_LOSS_FULL;
	lk_sched_set_params(&s, &p);
	assert_int_equal(lost_of(&s, 100000), 100000);
	lk_sched_free(&s);
}

static void test_same_seed_same_link(void **state)
{
	struct lk_params p = {.delay_us = 1000, .jitter_us = 900, .loss_ppm = 300000};
	struct lk_sched a, b;
	uint32_t i;

	assert_int_equal(lk_sched_init(&a, 64, true, 42), 0);
	assert_int_equal(lk_sched_init(&b, 64, true, 42), 0);
	lk_sched_set_params(&a, &p);
	lk_sched_set_params(&b, &p);
	for (i = 0; i < 50; i++) {
		assert_int_equal(lk_sched_packet(&a, i * MS, i), lk_sched_packet(&b, i * MS, i));
		assert_true(lk_sched_next_deadline(&a) == lk_sched_next_deadline(&b));
	}
	lk_sched_free(&a);
	lk_sched_free(&b);
}

/*
 * Packets every 0.1 ms with 20 ms ± 15 ms: released at each deadline, they
 * must leave in arrival order, each no earlier than its own draw allows.
 * With reorder the order breaks and every delay stays within 5..35 ms.
 */
static void run_jitter(bool reorder, unsigned int *inversions, uint64_t *sum_delay_ns)
{
	struct lk_params p = {.delay_us = 20000, .jitter_us = 15000};
	uint64_t arrival[2000], now;
	uint32_t ids[64], i, last = 0;
	struct lk_sched s;
	size_t n, k, out = 0;

	*inversions = 0;
	*sum_delay_ns = 0;
	assert_int_equal(lk_sched_init(&s, 4096, reorder, 3), 0);
	lk_sched_set_params(&s, &p);
	for (i = 0; i < 2000; i++) {
		arrival[i] = i * MS / 10;
		assert_int_equal(lk_sched_packet(&s, arrival[i], i), LK_QUEUED);
	}
	while ((now = lk_sched_next_deadline(&s)) != UINT64_MAX) {
		n = lk_sched_pop_due(&s, now, ids, 64);
		assert_true(n > 0);
		for (k = 0; k < n; k++, out++) {
			uint64_t d = now - arrival[ids[k]];

			assert_true(d >= 5 * MS);
			if (reorder)
				assert_true(d <= 35 * MS);
			*sum_delay_ns += d;
			if (out && ids[k] < last)
				(*inversions)++;
			last = ids[k];
		}
	}
	assert_int_equal(out, 2000);
	assert_int_equal(s.stats.delayed, 2000);
	lk_sched_free(&s);
}

static void test_jitter_keeps_order(void **state)
{
	unsigned int inv;
	uint64_t sum;

	run_jitter(false, &inv, &sum);
	assert_int_equal(inv, 0);
	run_jitter(true, &inv, &sum);
	assert_true(inv > 100);
	/* The mean of a uniform 5..35 ms over 2000 draws: 20 ms ± 0.5 ms. */
	assert_in_range(sum / 2000, 19500 * 1000, 20500 * 1000);
}

static void test_lower_delay_waits_for_earlier(void **state)
{
	struct lk_params p = {.delay_us = 50000};
	struct lk_sched s;
	uint32_t ids[4];

	assert_int_equal(lk_sched_init(&s, 16, false, 1), 0);
	lk_sched_set_params(&s, &p);
	assert_int_equal(lk_sched_packet(&s, 0, 1), LK_QUEUED);
	p.delay_us = 10000;
	lk_sched_set_params(&s, &p);
	assert_int_equal(lk_sched_packet(&s, 1 * MS, 2), LK_QUEUED);
	p.delay_us = 0;
	lk_sched_set_params(&s, &p);
	/* Even with no delay a packet may not overtake the queue. */
	assert_int_equal(lk_sched_packet(&s, 2 * MS, 3), LK_QUEUED);
	assert_int_equal(lk_sched_pop_due(&s, 49 * MS, ids, 4), 0);
	assert_int_equal(lk_sched_pop_due(&s, 50 * MS, ids, 4), 3);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ids[2], 3);
	/* Once the queue is empty, no delay means at once again. */
	assert_int_equal(lk_sched_packet(&s, 60 * MS, 4), LK_ACCEPT_NOW);
	lk_sched_free(&s);
}

static void test_bounded_queue(void **state)
{
	struct lk_params p = {.delay_us = 10000};
	struct lk_sched s;
	uint32_t ids[8], i;

	assert_int_equal(lk_sched_init(&s, 4, false, 1), 0);
	lk_sched_set_params(&s, &p);
	for (i = 0; i < 4; i++)
		assert_int_equal(lk_sched_packet(&s, 0, i), LK_QUEUED);
	assert_int_equal(lk_sched_packet(&s, 0, 4), LK_DROP_OVERFLOW);
	assert_int_equal(lk_sched_packet(&s, 0, 5), LK_DROP_OVERFLOW);
	assert_int_equal(s.stats.dropped_overflow, 2);
	assert_int_equal(lk_sched_pop_all(&s, ids, 8), 4);
	assert_int_equal(lk_sched_packet(&s, 0, 6), LK_QUEUED);
	assert_int_equal(s.stats.seen, 7);
	lk_sched_free(&s);
	assert_int_equal(lk_sched_init(&s, 0, false, 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ms),
		cmocka_unit_test(test_parse_percent),
		cmocka_unit_test(test_no_delay_passes_at_once),
		cmocka_unit_test(test_delay_is_exact),
		cmocka_unit_test(test_loss_rate),
		cmocka_unit_test(test_same_seed_same_link),
		cmocka_unit_test(test_jitter_keeps_order),
		cmocka_unit_test(test_lower_delay_waits_for_earlier),
		cmocka_unit_test(test_bounded_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
