// SPDX-License-Identifier: MIT
/* Handshake rate limiting per source. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "wg/ratelimiter.h"

static union sockaddr_inet ep(const char *s)
{
	union sockaddr_inet e;

	assert_int_equal(endpoint_parse(s, false, &e), 0);
	return e;
}

static int burst(struct ratelimiter *r, const union sockaddr_inet *src, uint64_t now, int tries)
{
	int allowed = 0;

	for (int i = 0; i < tries; i++)
		allowed += ratelimiter_allow(r, src, now);
	return allowed;
}

static void test_burst_then_refill(void **state)
{
	struct ratelimiter *r;
	union sockaddr_inet a = ep("192.0.2.1:1"), b = ep("192.0.2.2:1");
	uint64_t t = 10 * NSEC_PER_SEC;

	assert_int_equal(ratelimiter_new(&r), 0);
	assert_int_equal(burst(r, &a, t, 100), RATELIMITER_PACKETS_BURSTABLE);
	/* Another source has its own bucket. */
	assert_int_equal(burst(r, &b, t, 100), RATELIMITER_PACKETS_BURSTABLE);
	/* One packet's worth of time later, exactly one more. */
	t += NSEC_PER_SEC / RATELIMITER_PACKETS_PER_SECOND;
	assert_int_equal(burst(r, &a, t, 100), 1);
	/* Over a long time, no more than the burst at once. */
	t += 60 * NSEC_PER_SEC;
	assert_int_equal(burst(r, &a, t, 100), RATELIMITER_PACKETS_BURSTABLE);
	ratelimiter_free(r);
}

static void test_ipv6_slash64_is_one_source(void **state)
{
	struct ratelimiter *r;
	union sockaddr_inet a = ep("[2001:db8:1:2::1]:1"), b = ep("[2001:db8:1:2::ffff]:9"),
			    c = ep("[2001:db8:1:3::1]:1");
	uint64_t t = NSEC_PER_SEC;

	assert_int_equal(ratelimiter_new(&r), 0);
	assert_int_equal(burst(r, &a, t, 3), 3);
	assert_int_equal(burst(r, &b, t, 100), RATELIMITER_PACKETS_BURSTABLE - 3);
	assert_int_equal(burst(r, &c, t, 100), RATELIMITER_PACKETS_BURSTABLE);
	ratelimiter_free(r);
}

static void test_table_full_fails_closed_then_recovers(void **state)
{
	struct ratelimiter *r;
	union sockaddr_inet e = ep("10.0.0.0:1");
	uint64_t t = NSEC_PER_SEC;

	assert_int_equal(ratelimiter_new(&r), 0);
	for (uint32_t i = 0; i < RATELIMITER_MAX_ENTRIES; i++) {
		e.in.sin_addr.s_addr = htonl(0x0a000000 + i);
		assert_true(ratelimiter_allow(r, &e, t));
	}
	e.in.sin_addr.s_addr = htonl(0x0b000000);
	assert_false(ratelimiter_allow(r, &e, t));
	/* Idle entries are reclaimed after a second. */
	assert_true(ratelimiter_allow(r, &e, t + 2 * NSEC_PER_SEC));
	ratelimiter_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refill),
		cmocka_unit_test(test_ipv6_slash64_is_one_source),
		cmocka_unit_test(test_table_full_fails_closed_then_recovers),
	};

	crypto_init();
	return cmocka_run_group_tests_name("ratelimiter", tests, NULL, NULL);
}
