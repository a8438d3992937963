// SPDX-License-Identifier: MIT
/*
 * src/knit-relay/stun_server.c: the relay's STUN responder, plain and with
 * an alternate address and port (RFC 5780), on loopback (127.0.0.1 and
 * 127.0.0.2), asked by netcheck's probe engine as knitd asks it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "knit-relay/stun_server.h"
#include "lib/clock.h"
#include "lib/evloop.h"
#include "netcheck/probe.h"
#include "stun/stun.h"

static union sockaddr_inet ep(const char *s)
{
	union sockaddr_inet e;

	assert_int_equal(endpoint_parse(s, false, &e), 0);
	return e;
}

struct bench {
	struct evloop *loop;
	struct nc_engine *e;
	struct stun_server *srv;
	struct relay_stats stats;
	int client;
	union sockaddr_inet a1p1, a1p2, a2p1, a2p2;
};

static void done(void *arg, struct nc_probe *p, size_t n)
{
	evloop_stop(((struct bench *)arg)->loop);
}

/* A server on free ports: 127.0.0.1:P1 and, with alt, 127.0.0.2:P2. */
static void bench_up(struct bench *b, bool alt)
{
	static const struct nc_engine_ops ops = {.done = done};
	char text[64];
	int ret = -1;

	memset(b, 0, sizeof(*b));
	assert_int_equal(evloop_new(&b->loop), 0);
	for (int attempt = 0; attempt < 50 && ret < 0; attempt++) {
		unsigned p1 = 20000 + random_u32() % 40000, p2 = p1 + 1;
		snprintf(text, sizeof(text), "127.0.0.1:%u", p1);
		b->a1p1 = ep(text);
		snprintf(text, sizeof(text), "127.0.0.1:%u", p2);
		b->a1p2 = ep(text);
		snprintf(text, sizeof(text), "127.0.0.2:%u", p1);
		b->a2p1 = ep(text);
		snprintf(text, sizeof(text), "127.0.0.2:%u", p2);
		b->a2p2 = ep(text);
		ret = stun_server_new(&b->srv, b->loop, &b->a1p1, alt ? &b->a2p2 : NULL, &b->stats);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(stun_server_port(b->srv), nc_ep_port(&b->a1p1));
	assert_int_equal(nc_engine_new(&b->e, b->loop, 400, &ops, b), 0);
	b->client = nc_udp_socket(AF_INET, NULL, 0);
	assert_true(b->client >= 0);
	assert_int_equal(nc_engine_watch_fd(b->e, b->client), 0);
}

static void bench_run(struct bench *b, struct nc_probe *p, size_t n)
{
	assert_int_equal(nc_engine_start(b->e, p, n), 0);
	assert_int_equal(evloop_run(b->loop), 0);
}

static void bench_down(struct bench *b)
{
	nc_engine_free(b->e);
	stun_server_free(b->srv);
	close(b->client);
	evloop_free(b->loop);
}

static union sockaddr_inet ss_ep(const struct sockaddr_storage *ss)
{
	union sockaddr_inet e;

	nc_ss_to_ep(&e, ss);
	return e;
}

static void test_rfc5780(void **state)
{
	struct bench b;
	struct nc_probe p[5];
	union sockaddr_inet o;

	bench_up(&b, true);
	nc_probe_stun(&p[0], "plain", b.client, &b.a1p1, 0, &b.a1p1);
	nc_probe_stun(&p[1], "change both", b.client, &b.a1p1, STUN_CHANGE_IP | STUN_CHANGE_PORT,
		      &b.a2p2);
	nc_probe_stun(&p[2], "change port", b.client, &b.a1p1, STUN_CHANGE_PORT, &b.a1p2);
	nc_probe_stun(&p[3], "change ip", b.client, &b.a1p1, STUN_CHANGE_IP, &b.a2p1);
	/* The other corners answer too, each naming its opposite. */
	nc_probe_stun(&p[4], "to A2:P1", b.client, &b.a2p1, 0, &b.a2p1);
	bench_run(&b, p, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(p[i].state, NC_P_DONE);
		assert_true(p[i].resp.has_other && p[i].resp.has_origin);
		o = ss_ep(&p[i].resp.origin);
		assert_true(endpoint_equal(&o, &p[i].expect_from));
	}
	o = ss_ep(&p[0].resp.other);
	assert_true(endpoint_equal(&o, &b.a2p2));
	o = ss_ep(&p[4].resp.other);
	assert_true(endpoint_equal(&o, &b.a1p2));
	assert_int_equal(b.stats.stun_requests, 5);
	bench_down(&b);
}

static void test_plain_refuses_change(void **state)
{
	struct bench b;
	struct nc_probe p[2];

	bench_up(&b, false);
	nc_probe_stun(&p[0], "plain", b.client, &b.a1p1, 0, &b.a1p1);
	nc_probe_stun(&p[1], "change port", b.client, &b.a1p1, STUN_CHANGE_PORT, NULL);
	bench_run(&b, p, 2);
	assert_int_equal(p[0].state, NC_P_DONE);
	assert_false(p[0].resp.has_other); /* not an RFC 5780 server */
	assert_int_equal(p[1].state, NC_P_FAILED);
	assert_int_equal(p[1].error_code, 420);
	bench_down(&b);
}

static void test_check_alt(void **state)
{
	union sockaddr_inet a = ep("192.0.2.1:3478");
	union sockaddr_inet ok = ep("192.0.2.2:3479"), same_port = ep("192.0.2.2:3478"),
			    same_addr = ep("192.0.2.1:3479"), v6 = ep("[2001:db8::2]:3479"),
			    wild = ep("0.0.0.0:3478");
	struct relay_stats stats = {0};
	struct stun_server *s = NULL;
	struct evloop *loop;
	const char *why;

	assert_int_equal(stun_server_check_alt(&a, &ok, &why), 0);
	assert_int_equal(stun_server_check_alt(&a, &same_port, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(stun_server_check_alt(&a, &same_addr, &why), -EINVAL);
	assert_int_equal(stun_server_check_alt(&a, &v6, &why), -EINVAL);
	assert_int_equal(stun_server_check_alt(&wild, &ok, &why), -EINVAL);
	assert_int_equal(evloop_new(&loop), 0);
	assert_int_equal(stun_server_new(&s, loop, &wild, &ok, &stats), -EINVAL);
	assert_null(s);
	evloop_free(loop);
}

static void stop_loop(struct evloop *loop, struct ev_timer *t, void *arg)
{
	evloop_stop(loop);
}

/* RESPONSE-PORT: asked from one socket, the answer goes to the other port
 * at the asker's address (how knitd measures its mapping's lifetime). */
static void test_response_port(void **state)
{
	struct bench b;
	struct ev_timer t;
	union sockaddr_inet xa;
	socklen_t len = sizeof(xa);
	uint8_t txid[STUN_TXID_LEN], msg[STUN_BUF_LEN];
	struct stun_msg m;
	int x = nc_udp_socket(AF_INET, NULL, 0), n;

	bench_up(&b, false);
	assert_true(x >= 0);
	assert_int_equal(getsockname(x, &xa.sa, &len), 0);
	stun_txid_new(txid);
	n = stun_build_binding_request_rport(msg, sizeof(msg), txid, nc_ep_port(&xa));
	assert_true(n > 0);
	assert_int_equal(sendto(b.client, msg, (size_t)n, 0, &b.a1p1.sa, endpoint_len(&b.a1p1)), n);
	ev_timer_init(&t, stop_loop, NULL);
	evloop_timer_arm(b.loop, &t, clock_mono_ns() + 200000000ULL);
	assert_int_equal(evloop_run(b.loop), 0);
	n = (int)recv(x, msg, sizeof(msg), MSG_DONTWAIT);
	assert_true(n > 0);
	assert_int_equal(stun_parse(msg, (size_t)n, &m), 0);
	assert_int_equal(m.type, STUN_BINDING_SUCCESS);
	assert_memory_equal(m.txid, txid, STUN_TXID_LEN);
	/* Nothing to the asker itself. */
	assert_true(recv(b.client, msg, sizeof(msg), MSG_DONTWAIT) < 0);
	assert_int_equal(stun_build_binding_request_rport(msg, sizeof(msg), txid, 0), -EINVAL);
	close(x);
	bench_down(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5780),
		cmocka_unit_test(test_plain_refuses_change),
		cmocka_unit_test(test_check_alt),
		cmocka_unit_test(test_response_port),
	};

	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
