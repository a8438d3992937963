// SPDX-License-Identifier: MIT
/* The replay window: the Linux driver's counter selftest, and its edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wg/messages.h"
#include "wg/replay.h"

static struct replay_counter r;

#define T(n, v) assert_int_equal(replay_check(&r, (n), REJECT_AFTER_MESSAGES), (v))

static void test_linux_selftest_sequence(void **state)
{
	replay_init(&r);
	T(0, true);
	T(1, true);
	T(1, false);
	T(9, true);
	T(8, true);
	T(7, true);
	T(7, false);
	T(REPLAY_WINDOW_SIZE, true);
	T(REPLAY_WINDOW_SIZE + 1, true);
	T(REPLAY_WINDOW_SIZE + 1, false);
	T(REPLAY_WINDOW_SIZE + 10, true); /* window now starts past 9 */
	T(9, false);			  /* left the window */
	T(REPLAY_WINDOW_SIZE + 9, true);
	T(REPLAY_WINDOW_SIZE + 8, true);
	T(10, true); /* still inside */
	T(9, false);
	T(REPLAY_WINDOW_SIZE + 7, true);
	T(11, true);
	T(REPLAY_WINDOW_SIZE + 7, false);
	T(REPLAY_WINDOW_SIZE + 8, false);
	T(REPLAY_WINDOW_SIZE + 9, false);
	T(REPLAY_WINDOW_SIZE + 10, false);
}

static void test_reject_after(void **state)
{
	replay_init(&r);
	T(REJECT_AFTER_MESSAGES, false);
	T(REJECT_AFTER_MESSAGES - 1, true);
	T(REJECT_AFTER_MESSAGES - 1, false);
	T(REJECT_AFTER_MESSAGES - 2, true);
	T(REJECT_AFTER_MESSAGES + 1, false);
}

static void test_every_order_within_window(void **state)
{
	replay_init(&r);
	/* Backwards from the top of the window: all new, once. */
	for (uint64_t i = REPLAY_WINDOW_SIZE; i-- > 0;)
		T(i, true);
	for (uint64_t i = 0; i < REPLAY_WINDOW_SIZE; i++)
		T(i, false);
	/* A big jump clears the whole bitmap. */
	T(1000000, true);
	for (uint64_t i = 1000000 - REPLAY_WINDOW_SIZE + 1; i < 1000000; i++)
		T(i, true);
	T(1000000 - REPLAY_WINDOW_SIZE - 1, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux_selftest_sequence),
		cmocka_unit_test(test_reject_after),
		cmocka_unit_test(test_every_order_within_window),
	};

	return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
