// SPDX-License-Identifier: MIT
/* src/lib: addresses, key encodings, bounded buffers and the event loop. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/evloop.h"

static void roundtrip_prefix(const char *in, const char *out)
{
	char buf[PREFIX_STRLEN];
	struct ip_prefix p;

	assert_int_equal(prefix_parse(in, &p), 0);
	prefix_mask(&p);
	assert_int_equal(prefix_format(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, out);
}

static void test_prefixes(void **state)
{
	struct ip_prefix p;
	uint8_t a4[4] = {10, 1, 2, 3}, b4[4] = {10, 1, 3, 3};

	roundtrip_prefix("10.1.2.3/16", "10.1.0.0/16");
	roundtrip_prefix("10.1.2.3", "10.1.2.3/32");
	roundtrip_prefix("fd00:1:8002:3::9/33", "fd00:1:8000::/33");
	roundtrip_prefix("::/0", "::/0");
	roundtrip_prefix("10.255.255.255/9", "10.128.0.0/9");
	const char *bad[] = {"",	"/8",	     "10.0.0.1/33", "10.0.0.1/",   "10.0.0.1/a",
			     "::1/129", "10.0.0.1 ", "1.2.3",	    "10.0.0.1/8x", "10.0.0.1/-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(prefix_parse(bad[i], &p), -EINVAL);
	prefix_parse("10.1.2.0/23", &p);
	assert_true(prefix_contains(&p, AF_INET, a4));
	assert_true(prefix_contains(&p, AF_INET, b4));
	prefix_parse("10.1.2.0/24", &p);
	assert_false(prefix_contains(&p, AF_INET, b4));
	assert_false(prefix_contains(&p, AF_INET6, b4));
}

static void test_endpoints(void **state)
{
	union sockaddr_inet a, b, m;
	char buf[ENDPOINT_STRLEN];

	assert_int_equal(endpoint_parse("192.0.2.1:51820", false, &a), 0);
	assert_int_equal(endpoint_format(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.1:51820");
	/* The dual-stack socket's form prints and compares as IPv4. */
	endpoint_to_v6(&a, &m);
	assert_int_equal(m.sa.sa_family, AF_INET6);
	endpoint_format(&m, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:51820");
	assert_true(endpoint_equal(&a, &m));
	assert_int_equal(endpoint_parse("[2001:db8::1]:1", false, &b), 0);
	endpoint_format(&b, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8::1]:1");
	assert_false(endpoint_equal(&a, &b));
	assert_int_equal(endpoint_parse("192.0.2.1:51821", false, &b), 0);
	assert_false(endpoint_equal(&a, &b));
	const char *bad[] = {"192.0.2.1", "192.0.2.1:", "192.0.2.1:65536", "::1:5",  "[::1]5",
			     "[::1]",	  ":5",		"[zz::1]:5",	   "host:5", "1.2.3.4:5x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(endpoint_parse(bad[i], false, &a), -EINVAL);
	assert_int_equal(endpoint_parse("localhost:5", true, &a), 0);
}

static void test_keys(void **state)
{
	/* RFC 4648-style: a known key in both encodings. */
	static const char b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	uint8_t key[32], back[32];
	char out[65];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	key_to_base64(out, key);
	assert_string_equal(out, b64);
	key_to_hex(out, key);
	assert_string_equal(out, hex);
	assert_int_equal(key_from_base64(back, b64), 0);
	assert_memory_equal(back, key, 32);
	assert_int_equal(
		key_from_hex(back,
			     "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"),
		0);
	assert_memory_equal(back, key, 32);
	/* Every byte value survives both encodings. */
	for (int r = 0; r < 256; r++) {
		memset(key, r, 32);
		key[r % 32] = (uint8_t)(255 - r);
		key_to_base64(out, key);
		assert_int_equal(key_from_base64(back, out), 0);
		assert_memory_equal(back, key, 32);
		key_to_hex(out, key);
		assert_int_equal(key_from_hex(back, out), 0);
		assert_memory_equal(back, key, 32);
	}
	assert_int_equal(key_from_base64(back, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh="),
			 -EINVAL);
	assert_int_equal(key_from_base64(back, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!="),
			 -EINVAL);
	/* The last character's unused bits must be zero. */
	assert_int_equal(key_from_base64(back, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="),
			 -EINVAL);
	assert_int_equal(
		key_from_hex(back,
			     "0g0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
		-EINVAL);
	assert_int_equal(key_from_hex(back, "00"), -EINVAL);
	memset(key, 0, 32);
	assert_true(key_is_zero(key));
	key[31] = 1;
	assert_false(key_is_zero(key));
}

static void test_buf_limits(void **state)
{
	struct buf b;
	char path[] = "/tmp/knit-test-XXXXXX";
	int fd;

	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_printf(&b, "%d", 12345), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.data, "hello12345");
	assert_int_equal(buf_append(&b, "!", 1), -ENOBUFS);
	assert_int_equal(buf_printf(&b, "x"), -ENOBUFS);
	buf_consume(&b, 5);
	assert_string_equal((char *)b.data, "12345");
	buf_free(&b);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef", 16), 16);
	close(fd);
	buf_init(&b, 0);
	assert_int_equal(buf_read_file(&b, path, 8), -EFBIG);
	assert_int_equal(buf_read_file(&b, path, 16), 0);
	assert_int_equal(b.len, 16);
	buf_free(&b);
	assert_int_equal(buf_read_file(&b, "/tmp", 16), -EINVAL);
	unlink(path);
}

/* --- event loop ----------------------------------------------------------- */

static int order[8], n_order;

static void record(struct evloop *loop, struct ev_timer *t, void *arg)
{
	order[n_order++] = (int)(intptr_t)arg;
	if (n_order == 3)
		evloop_stop(loop);
}

static void test_timers_fire_in_order(void **state)
{
	struct evloop *loop;
	struct ev_timer t1, t2, t3, t4;
	uint64_t now = clock_mono_ns(), start = now;

	assert_int_equal(evloop_new(&loop), 0);
	n_order = 0;
	ev_timer_init(&t1, record, (void *)1);
	ev_timer_init(&t2, record, (void *)2);
	ev_timer_init(&t3, record, (void *)3);
	ev_timer_init(&t4, record, (void *)4);
	evloop_timer_arm(loop, &t3, now + 30 * NSEC_PER_MSEC);
	evloop_timer_arm(loop, &t1, now + 10 * NSEC_PER_MSEC);
	evloop_timer_arm(loop, &t4, now + 15 * NSEC_PER_MSEC);
	evloop_timer_arm(loop, &t2, now + 20 * NSEC_PER_MSEC);
	evloop_timer_cancel(loop, &t4);
	assert_false(ev_timer_armed(&t4));
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(n_order, 3);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 3);
	/* Never early. */
	assert_true(clock_mono_ns() - start >= 30 * NSEC_PER_MSEC);
	evloop_free(loop);
}

static int rearms;

static void rearm_self(struct evloop *loop, struct ev_timer *t, void *arg)
{
	if (++rearms < 5)
		evloop_timer_arm(loop, t, clock_mono_ns() + NSEC_PER_MSEC);
	else
		evloop_stop(loop);
}

static void test_timer_rearms_itself(void **state)
{
	struct evloop *loop;
	struct ev_timer t;

	assert_int_equal(evloop_new(&loop), 0);
	rearms = 0;
	ev_timer_init(&t, rearm_self, NULL);
	evloop_timer_arm(loop, &t, clock_mono_ns());
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(rearms, 5);
	evloop_free(loop);
}

struct fd_test {
	int pipes[2][2];
	int calls[2];
};

/* Each pipe's callback deletes the other pipe: in one epoll batch the
 * second callback must not run for the deleted fd. */
static void on_pipe(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct fd_test *t = arg;
	int which = fd == t->pipes[0][0] ? 0 : 1;

	t->calls[which]++;
	evloop_del_fd(loop, t->pipes[!which][0]);
	evloop_del_fd(loop, fd);
	evloop_stop(loop);
}

static void test_fd_deleted_in_same_batch(void **state)
{
	struct evloop *loop;
	struct fd_test t = {0};

	assert_int_equal(evloop_new(&loop), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(t.pipes[i]), 0);
		assert_int_equal(write(t.pipes[i][1], "x", 1), 1);
		assert_int_equal(evloop_add_fd(loop, t.pipes[i][0], EPOLLIN, on_pipe, &t), 0);
	}
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(t.calls[0] + t.calls[1], 1);
	for (int i = 0; i < 2; i++) {
		close(t.pipes[i][0]);
		close(t.pipes[i][1]);
	}
	evloop_free(loop);
}

static int woken;

static void on_wake(struct evloop *loop, void *arg)
{
	woken++;
	evloop_stop(loop);
}

static void *signal_later(void *arg)
{
	usleep(20000);
	ev_wakeup_signal(arg);
	return NULL;
}

static void test_wakeup_from_thread(void **state)
{
	struct evloop *loop;
	struct ev_wakeup *w;
	pthread_t thread;

	assert_int_equal(evloop_new(&loop), 0);
	assert_int_equal(evloop_add_wakeup(loop, on_wake, NULL, &w), 0);
	woken = 0;
	pthread_create(&thread, NULL, signal_later, w);
	assert_int_equal(evloop_run(loop), 0);
	pthread_join(thread, NULL);
	assert_int_equal(woken, 1);
	evloop_free(loop);
}

static void *stop_later(void *arg)
{
	usleep(20000);
	evloop_stop(arg);
	return NULL;
}

static void test_stop_from_thread(void **state)
{
	struct evloop *loop;
	pthread_t thread;

	assert_int_equal(evloop_new(&loop), 0);
	pthread_create(&thread, NULL, stop_later, loop);
	assert_int_equal(evloop_run(loop), 0);
	pthread_join(thread, NULL);
	evloop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_buf_limits),
		cmocka_unit_test(test_timers_fire_in_order),
		cmocka_unit_test(test_timer_rearms_itself),
		cmocka_unit_test(test_fd_deleted_in_same_batch),
		cmocka_unit_test(test_wakeup_from_thread),
		cmocka_unit_test(test_stop_from_thread),
	};

	return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
