// SPDX-License-Identifier: MIT
/*
 * src/knitd/lifetime.c: the mapping lifetime probe, on loopback, against a
 * small STUN responder whose RESPONSE-PORT answers stop after a number of
 * them -- to the probe, exactly what a NAT that forgot the mapping looks like.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "knitd/lifetime.h"
#include "lib/evloop.h"
#include "netcheck/probe.h"
#include "stun/stun.h"

struct responder {
	int fd;
	union sockaddr_inet addr;
	int rport_answers; /* RESPONSE-PORT answers still given, -1: all */
	bool ignore_rport; /* answer to the source, as an old server would */
	bool mute;	   /* answer nothing */
	unsigned asked;
};

struct bench {
	struct evloop *loop;
	struct responder r;
	struct lifetime_result res;
	bool done;
};

static void respond(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct responder *r = arg;
	uint8_t buf[STUN_BUF_LEN], out[STUN_BUF_LEN];
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	struct stun_msg m;
	ssize_t n;
	int k;

	while ((n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &len)) >
	       0) {
		if (r->mute || stun_parse(buf, (size_t)n, &m) < 0)
			continue;
		k = stun_build_binding_response(out, sizeof(out), m.txid, &from, NULL, NULL);
		if (m.has_response_port && !r->ignore_rport) {
			r->asked++;
			if (r->rport_answers == 0)
				continue;
			if (r->rport_answers > 0)
				r->rport_answers--;
			((struct sockaddr_in *)&from)->sin_port = htons(m.response_port);
		}
		sendto(fd, out, (size_t)k, 0, (struct sockaddr *)&from, len);
		len = sizeof(from);
	}
}

static void on_done(void *arg, const struct lifetime_result *res)
{
	struct bench *b = arg;

	b->res = *res;
	b->done = true;
	evloop_stop(b->loop);
}

static const struct lifetime_ops ops = {.done = on_done};

static void run(struct bench *b, const unsigned *ladder, unsigned n)
{
	struct lifetime *lt;
	socklen_t len = sizeof(b->r.addr);

	assert_int_equal(evloop_new(&b->loop), 0);
	assert_int_equal(endpoint_parse("127.0.0.1:0", false, &b->r.addr), 0);
	b->r.fd = nc_udp_socket(AF_INET, &b->r.addr, 0);
	assert_true(b->r.fd >= 0);
	assert_int_equal(getsockname(b->r.fd, &b->r.addr.sa, &len), 0);
	assert_int_equal(evloop_add_fd(b->loop, b->r.fd, EPOLLIN, respond, &b->r), 0);
	assert_int_equal(lifetime_new(&lt, b->loop, ladder, n, &ops, b), 0);
	assert_int_equal(lifetime_start(lt, &b->r.addr), 0);
	assert_true(lifetime_running(lt));
	assert_int_equal(evloop_run(b->loop), 0);
	assert_true(b->done);
	assert_false(lifetime_running(lt));
	lifetime_free(lt);
	evloop_del_fd(b->loop, b->r.fd);
	close(b->r.fd);
	evloop_free(b->loop);
}

static const unsigned ladder[] = {50, 100, 150};

static void test_survives_every_step(void **state)
{
	struct bench b = {.r.rport_answers = -1};

	run(&b, ladder, 3);
	assert_true(b.res.valid);
	assert_true(b.res.at_least);
	assert_int_equal(b.res.idle_ms, 150);
	assert_int_equal(b.r.asked, 3);
}

static void test_expires_between_steps(void **state)
{
	struct bench b = {.r.rport_answers = 1};

	run(&b, ladder, 3);
	assert_true(b.res.valid);
	assert_false(b.res.at_least);
	assert_int_equal(b.res.idle_ms, 50);
	assert_int_equal(b.res.failed_ms, 100);
	/* A lost answer is not an expiry: it asked three times. */
	assert_int_equal(b.r.asked, 1 + 3);
}

static void test_expired_at_first_step(void **state)
{
	struct bench b = {.r.rport_answers = 0};

	run(&b, ladder, 3);
	assert_true(b.res.valid);
	assert_int_equal(b.res.idle_ms, 0);
	assert_int_equal(b.res.failed_ms, 50);
}

static void test_server_without_response_port(void **state)
{
	struct bench b = {.r.rport_answers = -1, .r.ignore_rport = true};

	run(&b, ladder, 3);
	assert_false(b.res.valid);
	assert_non_null(strstr(b.res.why, "RESPONSE-PORT"));
}

static void test_silent_server(void **state)
{
	struct bench b = {.r.mute = true};

	run(&b, ladder, 3);
	assert_false(b.res.valid);
	assert_non_null(strstr(b.res.why, "did not answer"));
}

static void test_bad_ladder(void **state)
{
	static const unsigned down[] = {100, 50}, flat[] = {100, 100};
	struct lifetime *lt = NULL;
	struct evloop *loop;

	assert_int_equal(evloop_new(&loop), 0);
	assert_int_equal(lifetime_new(&lt, loop, down, 2, &ops, NULL), -EINVAL);
	assert_int_equal(lifetime_new(&lt, loop, flat, 2, &ops, NULL), -EINVAL);
	assert_int_equal(lifetime_new(&lt, loop, ladder, 0, &ops, NULL), -EINVAL);
	assert_int_equal(lifetime_new(&lt, loop, ladder, LIFETIME_MAX_STEPS + 1, &ops, NULL),
			 -EINVAL);
	assert_null(lt);
	assert_int_equal(lifetime_new(&lt, loop, NULL, 0, &ops, NULL), 0);
	assert_false(lifetime_running(lt));
	lifetime_free(lt);
	evloop_free(loop);
}

/* When the overlay measures again: not at every netcheck after a failure. */
static void test_due(void **state)
{
	struct nat_class nat = {.udp = true, .mapping = NAT_MAP_EIM, .filtering = NAT_FILTER_ADF};
	struct nat_class moved = {.udp = true, .mapping = NAT_MAP_ADPM, .filtering = NAT_FILTER_ADF};
	union sockaddr_inet stun, other;
	struct lifetime_memo m = {0};
	uint64_t t = 1000000000000ULL, retry = (uint64_t)LIFETIME_RETRY_MS * 1000000;

	(void)state;
	assert_int_equal(endpoint_parse("198.51.100.2:3478", false, &stun), 0);
	assert_int_equal(endpoint_parse("198.51.100.9:3478", false, &other), 0);
	assert_true(lifetime_due(&m, &nat, &stun, t)); /* never measured */
	m = (struct lifetime_memo){.started = true, .mapping = nat.mapping,
				   .filtering = nat.filtering, .stun = stun};
	assert_false(lifetime_due(&m, &nat, &stun, t)); /* measuring */
	m.ended = true, m.valid = true, m.ended_ns = t;
	assert_false(lifetime_due(&m, &nat, &stun, t + 10 * retry));
	assert_true(lifetime_due(&m, &moved, &stun, t)); /* another NAT */
	/* The server did not know RESPONSE-PORT: not again for the same NAT
	 * and server until the retry time, at once for another. */
	m.valid = false;
	assert_false(lifetime_due(&m, &nat, &stun, t + 60 * 1000000000ULL));
	assert_false(lifetime_due(&m, &nat, &stun, t + retry - 1));
	assert_true(lifetime_due(&m, &nat, &stun, t + retry));
	assert_true(lifetime_due(&m, &nat, &other, t + 1));
	assert_true(lifetime_due(&m, &moved, &stun, t + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_survives_every_step),
		cmocka_unit_test(test_expires_between_steps),
		cmocka_unit_test(test_expired_at_first_step),
		cmocka_unit_test(test_server_without_response_port),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_bad_ladder),
		cmocka_unit_test(test_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
