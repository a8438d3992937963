// SPDX-License-Identifier: MIT
/*
 * knit-relay in process (every file of src/knit-relay but main.c) with relay_clients
 * on loopback: admission, forwarding, replacement, slow clients, removal,
 * hostile connections and STUN.  The relay runs on its own loop in a thread
 * so that raw test connections may block; the relay_clients share the main
 * thread's loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "knit-relay/admission.h"
#include "knit-relay/keymap.h"
#include "knit-relay/relay.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "net/httpup.h"
#include "relay/client.h"
#include "relay/frame.h"
#include "stun/stun.h"

/* --- the relay on its own thread ----------------------------------------- */

struct server {
	struct evloop *loop;
	struct relay *relay;
	struct ev_wakeup *wakeup;
	pthread_t thread;
	uint8_t priv[32], pub[32];
	void (*fn)(struct server *s, void *arg);
	void *fn_arg;
	sem_t done;
};

static void on_wakeup(struct evloop *loop, void *arg)
{
	struct server *s = arg;

	s->fn(s, s->fn_arg);
	sem_post(&s->done);
}

static void *server_thread(void *arg)
{
	struct server *s = arg;

	evloop_run(s->loop);
	return NULL;
}

/* Runs fn on the relay's thread and waits for it. */
static void on_server(struct server *s, void (*fn)(struct server *, void *), void *arg)
{
	s->fn = fn;
	s->fn_arg = arg;
	ev_wakeup_signal(s->wakeup);
	sem_wait(&s->done);
}

static void server_start(struct server *s, const char *listen, const char *stun)
{
	struct relay_config cfg;

	relay_config_defaults(&cfg);
	assert_int_equal(endpoint_parse(listen, false, &cfg.listen), 0);
	if (stun)
		assert_int_equal(endpoint_parse(stun, false, &cfg.stun), 0);
	cfg.handshake_ms = 500;
	x25519_generate(s->priv);
	x25519_public(s->pub, s->priv);
	memcpy(cfg.priv, s->priv, 32);
	assert_int_equal(evloop_new(&s->loop), 0);
	assert_int_equal(relay_new(&s->relay, s->loop, &cfg), 0);
	assert_int_equal(evloop_add_wakeup(s->loop, on_wakeup, s, &s->wakeup), 0);
	sem_init(&s->done, 0, 0);
	assert_int_equal(pthread_create(&s->thread, NULL, server_thread, s), 0);
}

static void server_stop(struct server *s)
{
	evloop_stop(s->loop);
	pthread_join(s->thread, NULL);
	relay_free(s->relay);
	evloop_free(s->loop);
	sem_destroy(&s->done);
}

static void do_admit(struct server *s, void *key)
{
	assert_int_equal(admission_add(relay_admission(s->relay), key), 0);
}

static void do_remove(struct server *s, void *key)
{
	assert_int_equal(admission_remove(relay_admission(s->relay), key), 0);
}

static void do_stats(struct server *s, void *out)
{
	relay_get_stats(s->relay, out);
}

struct drops_query {
	const uint8_t *key;
	uint64_t drops;
};

static void do_drops(struct server *s, void *arg)
{
	struct drops_query *q = arg;

	q->drops = relay_client_drops(s->relay, q->key);
}

static struct relay_stats stats(struct server *s)
{
	struct relay_stats st;

	on_server(s, do_stats, &st);
	return st;
}

/* --- relay_clients on the test's loop ------------------------------------ */

#define MAX_RX 8192

struct node {
	const char *name;
	uint8_t priv[32], pub[32];
	struct relay_client *client;
	bool connected;
	int connects;
	char why[512];
	int rx_count;
	uint8_t last_src[32];
	char last_pkt[2048];
	size_t last_len;
	int gone_count, gone_reason;
	uint8_t gone_key[32];
};

static struct evloop *loop;
static struct server srv;

static void n_recv(void *arg, const uint8_t src[32], const uint8_t *pkt, size_t len)
{
	struct node *n = arg;

	n->rx_count++;
	memcpy(n->last_src, src, 32);
	n->last_len = len < sizeof(n->last_pkt) ? len : sizeof(n->last_pkt);
	memcpy(n->last_pkt, pkt, n->last_len);
}

static void n_gone(void *arg, const uint8_t key[32], int reason)
{
	struct node *n = arg;

	n->gone_count++;
	n->gone_reason = reason;
	memcpy(n->gone_key, key, 32);
}

static void n_state(void *arg, bool connected, const char *why)
{
	struct node *n = arg;

	n->connected = connected;
	n->connects += connected;
	snprintf(n->why, sizeof(n->why), "%s", why);
}

static const struct relay_client_ops node_ops = {n_recv, n_gone, n_state};

static void node_init(struct node *n, const char *name, bool admitted)
{
	memset(n, 0, sizeof(*n));
	n->name = name;
	x25519_generate(n->priv);
	x25519_public(n->pub, n->priv);
	if (admitted)
		on_server(&srv, do_admit, n->pub);
}

static void node_start(struct node *n)
{
	assert_int_equal(relay_client_new(&n->client, loop, "127.0.0.1", relay_tcp_port(srv.relay),
					  srv.pub, n->priv, &node_ops, n),
			 0);
}

static void node_stop(struct node *n)
{
	relay_client_free(n->client);
	n->client = NULL;
}

struct waiter {
	bool (*pred)(void *);
	void *arg;
	uint64_t deadline;
	bool ok;
	struct ev_timer t;
};

static void wait_tick(struct evloop *l, struct ev_timer *t, void *arg)
{
	struct waiter *w = arg;

	if (w->pred(w->arg)) {
		w->ok = true;
		evloop_stop(l);
	} else if (clock_mono_ns() >= w->deadline) {
		evloop_stop(l);
	} else {
		evloop_timer_arm(l, t, clock_mono_ns() + 2 * NSEC_PER_MSEC);
	}
}

/* Runs the clients' loop until pred holds (true) or ms pass (false). */
static bool run_until(bool (*pred)(void *), void *arg, unsigned ms)
{
	struct waiter w = {
		.pred = pred, .arg = arg, .deadline = clock_mono_ns() + ms * NSEC_PER_MSEC};

	if (pred(arg))
		return true;
	ev_timer_init(&w.t, wait_tick, &w);
	evloop_timer_arm(loop, &w.t, 0);
	evloop_run(loop);
	evloop_timer_cancel(loop, &w.t);
	return w.ok;
}

static bool is_connected(void *arg)
{
	return ((struct node *)arg)->connected;
}

static bool is_disconnected(void *arg)
{
	return !((struct node *)arg)->connected;
}

struct count_wait {
	int *counter;
	int want;
};

static bool count_reached(void *arg)
{
	struct count_wait *c = arg;

	return *c->counter >= c->want;
}

static bool wait_count(int *counter, int want, unsigned ms)
{
	struct count_wait c = {counter, want};

	return run_until(count_reached, &c, ms);
}

struct why_wait {
	struct node *n;
	const char *text;
};

static bool why_has(void *arg)
{
	struct why_wait *w = arg;

	return strstr(w->n->why, w->text) != NULL;
}

/* Runs until the node's last state change says text. */
static bool wait_why(struct node *n, const char *text, unsigned ms)
{
	struct why_wait w = {n, text};

	return run_until(why_has, &w, ms);
}

static bool never(void *arg)
{
	return false;
}

static bool has_rtt(void *arg)
{
	return relay_client_rtt_ns(arg) > 0;
}

static void send_text(struct node *from, struct node *to, const char *text)
{
	assert_int_equal(relay_client_send(from->client, to->pub, text, strlen(text)), 0);
}

/* --- raw connections, blocking, for what a relay_client never sends ------ */

static int raw_connect(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(relay_tcp_port(srv.relay))};
	struct timeval tv = {.tv_sec = 3};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t len)
{
	assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads until the peer closes; returns what came (NUL-terminated) and
 * whether EOF (or a reset) came before the timeout. */
static bool raw_read_to_eof(int fd, char *out, size_t size)
{
	size_t have = 0;

	for (;;) {
		char tmp[4096];
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		if (n < 0)
			return false; /* timeout */
		if (have + (size_t)n < size) {
			memcpy(out + have, tmp, (size_t)n);
			have += (size_t)n;
		}
	}
	out[have < size ? have : size - 1] = '\0';
	return true;
}

/* Upgrade and (when priv) prove the key; leftover frames stay in rb. */
static void raw_handshake(int fd, struct relay_rxbuf *rb, const uint8_t *priv, bool expect_admit)
{
	char req[HTTPUP_BUF_LEN], up[64];
	int n = httpup_format_request(req, sizeof(req), "127.0.0.1", RELAY_HTTP_PATH,
				      RELAY_HTTP_UPGRADE);
	uint8_t type, pub[32], challenge[32], info[RELAY_CLIENT_INFO_LEN];
	const uint8_t *p;
	uint32_t len;
	int status = 0, head = 0;

	raw_send(fd, req, (size_t)n);
	relay_rxbuf_init(rb);
	while (head == 0 || relay_rxbuf_next(rb, &type, &p, &len) == 0) {
		size_t space, have;
		uint8_t *buf = relay_rxbuf_space(rb, &space);
		ssize_t r = recv(fd, buf, space, 0);
		assert_true(r > 0);
		relay_rxbuf_commit(rb, (size_t)r);
		if (!head) {
			const uint8_t *d = relay_rxbuf_data(rb, &have);
			head = httpup_parse_response(d, have, &status, up, sizeof(up));
			assert_true(head >= 0);
			if (head > 0)
				relay_rxbuf_consume(rb, (size_t)head);
		}
	}
	assert_int_equal(status, 101);
	assert_int_equal(type, RELAY_FRAME_SERVER_KEY);
	assert_int_equal(relay_server_key_parse(p, len, pub, challenge), 0);
	assert_memory_equal(pub, srv.pub, 32);
	if (!priv)
		return;
	assert_int_equal(relay_client_info_seal(info, priv, pub, challenge), 0);
	n = relay_frame_build((uint8_t *)req, sizeof(req), RELAY_FRAME_CLIENT_INFO, info,
			      sizeof(info), NULL, 0);
	raw_send(fd, req, (size_t)n);
	if (!expect_admit)
		return;
	while (relay_rxbuf_next(rb, &type, &p, &len) == 0) {
		size_t space;
		uint8_t *buf = relay_rxbuf_space(rb, &space);
		ssize_t r = recv(fd, buf, space, 0);
		assert_true(r > 0);
		relay_rxbuf_commit(rb, (size_t)r);
	}
	assert_int_equal(type, RELAY_FRAME_SERVER_INFO);
}

/* --- tests ----------------------------------------------------------------- */

static int setup(void **state)
{
	assert_int_equal(evloop_new(&loop), 0);
	memset(&srv, 0, sizeof(srv));
	server_start(&srv, "127.0.0.1:0", "127.0.0.1:0");
	return 0;
}

static int teardown(void **state)
{
	server_stop(&srv);
	evloop_free(loop);
	return 0;
}

static void test_exchange_both_ways(void **state)
{
	struct node a, b;
	char pkt[1200];

	node_init(&a, "a", true);
	node_init(&b, "b", true);
	node_start(&a);
	node_start(&b);
	assert_true(run_until(is_connected, &a, 3000));
	assert_true(run_until(is_connected, &b, 3000));
	assert_true(relay_client_connected(a.client));

	send_text(&a, &b, "hello from a");
	assert_true(wait_count(&b.rx_count, 1, 2000));
	assert_memory_equal(b.last_src, a.pub, 32);
	assert_int_equal(b.last_len, 12);
	assert_memory_equal(b.last_pkt, "hello from a", 12);
	send_text(&b, &a, "hello from b");
	assert_true(wait_count(&a.rx_count, 1, 2000));
	assert_memory_equal(a.last_src, b.pub, 32);
	assert_memory_equal(a.last_pkt, "hello from b", 12);

	/* A burst arrives whole and in order. */
	for (int i = 0; i < 300; i++) {
		memset(pkt, i & 0xff, sizeof(pkt));
		snprintf(pkt, sizeof(pkt), "%d", i);
		assert_int_equal(relay_client_send(a.client, b.pub, pkt, sizeof(pkt)), 0);
	}
	assert_true(wait_count(&b.rx_count, 301, 3000));
	assert_int_equal(b.last_len, 1200);
	assert_string_equal(b.last_pkt, "299");

	/* Throughput through the relay, one direction (a figure, not a test). */
	{
		int base = b.rx_count, total = 20000, sent = 0;
		uint64_t t0 = clock_mono_ns();
		double secs;
		while (sent < total) {
			if (relay_client_send(a.client, b.pub, pkt, sizeof(pkt)) == 0)
				sent++;
			else
				run_until(never, NULL, 1);
		}
		assert_true(wait_count(&b.rx_count, base + total, 10000));
		secs = (double)(clock_mono_ns() - t0) / 1e9;
		print_message("      relay throughput: %d packets of 1200 bytes in %.3f s: %.0f "
			      "Mbit/s\n",
			      total, secs, total * 1200.0 * 8 / secs / 1e6);
	}

	/* The relay's round trip. */
	assert_int_equal(relay_client_rtt_ping(a.client), 0);
	assert_true(run_until(has_rtt, a.client, 2000));

	/* Not connected / too big are refused at once, never blocking. */
	assert_int_equal(relay_client_send(a.client, b.pub, pkt, 0), -EMSGSIZE);
	assert_int_equal(relay_client_send(a.client, b.pub, pkt, RELAY_MAX_PACKET + 1), -EMSGSIZE);
	assert_true(stats(&srv).packets_forwarded >= 20302);
	node_stop(&a);
	node_stop(&b);
}

/* The first packets to a peer leave through the relay at once, often while
 * the client is still connecting: they wait for the admission and arrive,
 * in order, before anything sent later. */
static void test_packets_before_admission_arrive(void **state)
{
	struct node a, b;

	node_init(&a, "a", true);
	node_init(&b, "b", true);
	node_start(&b);
	assert_true(run_until(is_connected, &b, 3000));
	node_start(&a);
	assert_false(a.connected);
	send_text(&a, &b, "sent while connecting 1");
	send_text(&a, &b, "sent while connecting 2");
	assert_true(run_until(is_connected, &a, 3000));
	send_text(&a, &b, "sent after");
	assert_true(wait_count(&b.rx_count, 3, 2000));
	assert_int_equal(b.last_len, 10);
	assert_memory_equal(b.last_pkt, "sent after", 10);
	node_stop(&a);
	node_stop(&b);
}

static void test_unknown_key_refused(void **state)
{
	struct node a, u;
	struct relay_stats before = stats(&srv);

	node_init(&a, "a", true);
	node_init(&u, "unknown", false);
	node_start(&a);
	node_start(&u);
	assert_true(run_until(is_connected, &a, 3000));
	/* u proves its key but control does not know it: close, with the reason. */
	assert_true(
		wait_why(&u, "relay closed the connection: node key not known to control", 3000));
	assert_false(u.connected);
	assert_int_equal(u.connects, 0);
	assert_true(stats(&srv).not_admitted > before.not_admitted);
	assert_int_equal(relay_client_send(u.client, a.pub, "x", 1), -ENOTCONN);

	/* Packets to it: peer-gone, "not known", and nothing delivered. */
	send_text(&a, &u, "are you there");
	assert_true(wait_count(&a.gone_count, 1, 2000));
	assert_int_equal(a.gone_reason, RELAY_PEER_GONE_NOT_KNOWN);
	assert_memory_equal(a.gone_key, u.pub, 32);
	assert_int_equal(u.rx_count, 0);
	node_stop(&a);
	node_stop(&u);
}

static void test_newer_connection_replaces(void **state)
{
	struct node a, a2, b;
	struct relay_stats before = stats(&srv);

	node_init(&a, "a", true);
	node_init(&b, "b", true);
	a2 = a; /* the same key, another connection */
	a2.name = "a2";
	node_start(&a);
	node_start(&b);
	assert_true(run_until(is_connected, &a, 3000));
	assert_true(run_until(is_connected, &b, 3000));
	node_start(&a2);
	assert_true(run_until(is_connected, &a2, 3000));
	assert_true(run_until(is_disconnected, &a, 3000));
	assert_non_null(strstr(a.why, "replaced by a newer connection"));
	node_stop(&a); /* or it would come back and replace a2 in turn */
	assert_true(stats(&srv).replaced > before.replaced);

	send_text(&b, &a2, "to the newest");
	assert_true(wait_count(&a2.rx_count, 1, 2000));
	assert_memory_equal(a2.last_pkt, "to the newest", 13);
	assert_int_equal(a.rx_count, 0);
	node_stop(&a2);
	node_stop(&b);
}

struct flood {
	struct node *from, *to_slow;
	int sent, refused;
};

static void test_slow_client_does_not_block_others(void **state)
{
	struct node a, b;
	uint8_t slow_priv[32], slow_pub[32], pkt[1200];
	struct relay_rxbuf rb;
	struct drops_query q = {slow_pub, 0};
	int fd, small = 4096, sent = 0;
	uint64_t t0;

	node_init(&a, "a", true);
	node_init(&b, "b", true);
	x25519_generate(slow_priv);
	x25519_public(slow_pub, slow_priv);
	on_server(&srv, do_admit, slow_pub);
	node_start(&a);
	node_start(&b);
	assert_true(run_until(is_connected, &a, 3000));
	assert_true(run_until(is_connected, &b, 3000));

	/* An admitted client that never reads, with a tiny receive buffer. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	{
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons(relay_tcp_port(srv.relay))};
		struct timeval tv = {.tv_sec = 3};
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	raw_handshake(fd, &rb, slow_priv, true);

	/* a floods it: 16 MB, far more than the relay queues for one client. */
	memset(pkt, 0xee, sizeof(pkt));
	t0 = clock_mono_ns();
	while (sent < 14000 && clock_mono_ns() - t0 < 20 * NSEC_PER_SEC) {
		int r = relay_client_send(a.client, slow_pub, pkt, sizeof(pkt));
		if (r == 0)
			sent++;
		else
			run_until(never, NULL, 1); /* let a's queue drain */
	}
	assert_int_equal(sent, 14000);
	run_until(never, NULL, 200);

	/* Meanwhile, and after, b hears a at once. */
	t0 = clock_mono_ns();
	send_text(&a, &b, "still here");
	assert_true(wait_count(&b.rx_count, 1, 1000));
	assert_memory_equal(b.last_pkt, "still here", 10);
	send_text(&b, &a, "me too");
	assert_true(wait_count(&a.rx_count, 1, 1000));
	print_message("      round trip a->b->a while the slow client is full: %.1f ms\n",
		      (double)(clock_mono_ns() - t0) / 1e6);

	on_server(&srv, do_drops, &q);
	print_message("      packets dropped for the slow client: %llu of %d\n",
		      (unsigned long long)q.drops, sent);
	assert_true(q.drops > 0);
	assert_true(stats(&srv).packets_dropped >= q.drops);
	assert_true(a.connected && b.connected);
	relay_rxbuf_free(&rb);
	close(fd);
	node_stop(&a);
	node_stop(&b);
}

/* An admitted raw connection (blocking, reads time out after 5 s). */
static int raw_client(struct relay_rxbuf *rb, uint8_t priv[32], uint8_t pub[32])
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(relay_tcp_port(srv.relay))};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	x25519_generate(priv);
	x25519_public(pub, priv);
	on_server(&srv, do_admit, pub);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	raw_handshake(fd, rb, priv, true);
	return fd;
}

#define BURST_FRAMES (100 * 64)
#define BURST_PKT    1400

struct burst {
	int fd;
	uint8_t dst[32];
	_Atomic bool done;
};

/* Writes BURST_FRAMES send-packet frames, 64 to a send(), as fast as TCP
 * takes them: packet i starts with i. */
static void *burst_writer(void *arg)
{
	struct burst *b = arg;
	enum { FRAME = RELAY_HEADER_LEN + 32 + BURST_PKT };
	static uint8_t buf[64 * FRAME];
	uint8_t pkt[BURST_PKT];

	memset(pkt, 0x77, sizeof(pkt));
	for (uint32_t i = 0; i < BURST_FRAMES; i += 64) {
		for (uint32_t j = 0; j < 64; j++) {
			uint32_t seq = i + j;
			memcpy(pkt, &seq, sizeof(seq));
			relay_frame_build(buf + j * FRAME, FRAME, RELAY_FRAME_SEND_PACKET, b->dst,
					  32, pkt, sizeof(pkt));
		}
		if (send(b->fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
			break;
	}
	atomic_store(&b->done, true);
	return NULL;
}

/*
 * A burst of several times a client's queue to a destination that reads as
 * fast as it can: the relay reads it in bulk and writes it on in batches.
 * Whatever the destination cannot take in time is dropped and counted (a
 * relay never stalls a source for one destination), and what arrives is
 * whole and in order.
 */
static void test_burst_crosses_in_order(void **state)
{
	struct relay_rxbuf src_rb, dst_rb;
	uint8_t src_priv[32], src_pub[32], dst_priv[32], type;
	struct burst b = {0};
	pthread_t t;
	uint32_t got = 0, next = 0;
	uint64_t dropped = 0;
	const uint8_t *p;
	uint32_t len;
	int dst_fd;

	b.fd = raw_client(&src_rb, src_priv, src_pub);
	dst_fd = raw_client(&dst_rb, dst_priv, b.dst);
	assert_int_equal(pthread_create(&t, NULL, burst_writer, &b), 0);
	for (;;) {
		size_t space;
		uint8_t *buf;
		ssize_t r;
		int ret;

		while ((ret = relay_rxbuf_next(&dst_rb, &type, &p, &len)) == 1) {
			uint32_t seq;
			if (type != RELAY_FRAME_RECV_PACKET)
				continue;
			assert_int_equal(len, 32 + BURST_PKT);
			assert_memory_equal(p, src_pub, 32);
			memcpy(&seq, p + 32, sizeof(seq));
			assert_true(seq >= next); /* gaps are drops; never reordered */
			assert_int_equal(p[32 + BURST_PKT - 1], 0x77);
			next = seq + 1;
			got++;
		}
		assert_int_equal(ret, 0);
		if (atomic_load(&b.done)) {
			dropped = stats(&srv).packets_dropped;
			if (got + dropped == BURST_FRAMES)
				break;
		}
		buf = relay_rxbuf_space(&dst_rb, &space);
		assert_non_null(buf);
		r = recv(dst_fd, buf, space, 0);
		assert_true(r > 0);
		relay_rxbuf_commit(&dst_rb, (size_t)r);
	}
	pthread_join(t, NULL);
	print_message("      burst of %d frames: %u delivered, %llu dropped\n", BURST_FRAMES, got,
		      (unsigned long long)dropped);
	assert_true(got > BURST_FRAMES / 2);
	assert_int_equal(stats(&srv).packets_forwarded, got);
	relay_rxbuf_free(&src_rb);
	relay_rxbuf_free(&dst_rb);
	close(b.fd);
	close(dst_fd);
}

static bool one_client_left(void *arg)
{
	return stats(&srv).clients == 1;
}

static void test_removal_drops_connection(void **state)
{
	struct node a, b;

	node_init(&a, "a", true);
	node_init(&b, "b", true);
	node_start(&a);
	node_start(&b);
	assert_true(run_until(is_connected, &a, 3000));
	assert_true(run_until(is_connected, &b, 3000));

	on_server(&srv, do_remove, b.pub);
	assert_true(run_until(is_disconnected, &b, 1000));
	assert_non_null(strstr(b.why, "node key removed by control"));
	/* It tries again and is refused; packets to it bounce as not known. */
	assert_true(wait_why(&b, "node key not known to control", 3000));
	assert_false(b.connected);
	send_text(&a, &b, "gone?");
	assert_true(wait_count(&a.gone_count, 1, 2000));
	assert_int_equal(a.gone_reason, RELAY_PEER_GONE_NOT_KNOWN);

	/* Admitted again: it comes back by itself. */
	on_server(&srv, do_admit, b.pub);
	assert_true(run_until(is_connected, &b, 12000));
	send_text(&a, &b, "welcome back");
	assert_true(wait_count(&b.rx_count, 1, 2000));

	/* A disconnected but admitted peer is "disconnected", not "not known". */
	node_stop(&b);
	assert_true(run_until(one_client_left, NULL, 2000));
	send_text(&a, &b, "left?");
	assert_true(wait_count(&a.gone_count, 2, 2000));
	assert_int_equal(a.gone_reason, RELAY_PEER_GONE_DISCONNECTED);
	node_stop(&a);
}

static void test_garbage_closes_only_that_connection(void **state)
{
	struct node a, b;
	struct relay_rxbuf rb;
	char out[4096];
	uint8_t g_priv[32], g_pub[32], frame[64];
	struct relay_stats before = stats(&srv);
	int fd;

	node_init(&a, "a", true);
	node_init(&b, "b", true);
	node_start(&a);
	node_start(&b);
	assert_true(run_until(is_connected, &a, 3000));
	assert_true(run_until(is_connected, &b, 3000));

	/* Garbage after an admitted upgrade. */
	x25519_generate(g_priv);
	x25519_public(g_pub, g_priv);
	on_server(&srv, do_admit, g_pub);
	fd = raw_connect();
	raw_handshake(fd, &rb, g_priv, true);
	raw_send(fd, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	assert_true(raw_read_to_eof(fd, out, sizeof(out)));
	close(fd);
	relay_rxbuf_free(&rb);

	/* A frame over the size limit, announced by its header. */
	fd = raw_connect();
	raw_handshake(fd, &rb, g_priv, true);
	relay_frame_header_write(frame, RELAY_FRAME_SEND_PACKET, RELAY_MAX_PAYLOAD + 1);
	raw_send(fd, frame, 5);
	assert_true(raw_read_to_eof(fd, out, sizeof(out)));
	close(fd);
	relay_rxbuf_free(&rb);

	/* A send-packet too short to hold a key. */
	fd = raw_connect();
	raw_handshake(fd, &rb, g_priv, true);
	raw_send(fd, frame,
		 (size_t)relay_frame_build(frame, sizeof(frame), RELAY_FRAME_SEND_PACKET, "x", 1,
					   NULL, 0));
	assert_true(raw_read_to_eof(fd, out, sizeof(out)));
	close(fd);
	relay_rxbuf_free(&rb);

	/* A proof made for another connection's challenge. */
	fd = raw_connect();
	raw_handshake(fd, &rb, NULL, false);
	{
		uint8_t info[RELAY_CLIENT_INFO_LEN], other[32] = {9};
		relay_client_info_seal(info, g_priv, srv.pub, other);
		raw_send(fd, frame, 0);
		uint8_t f[RELAY_HEADER_LEN + RELAY_CLIENT_INFO_LEN];
		relay_frame_build(f, sizeof(f), RELAY_FRAME_CLIENT_INFO, info, sizeof(info), NULL,
				  0);
		raw_send(fd, f, sizeof(f));
	}
	assert_true(raw_read_to_eof(fd, out, sizeof(out)));
	close(fd);
	relay_rxbuf_free(&rb);

	/* Not HTTP at all: a 400 and a close. */
	fd = raw_connect();
	raw_send(fd, "hello relay\r\n\r\n", 15);
	assert_true(raw_read_to_eof(fd, out, sizeof(out)));
	assert_non_null(strstr(out, "HTTP/1.1 400 "));
	close(fd);
	/* Another path: 404. */
	fd = raw_connect();
	{
		const char *req =
			"GET /x HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: knit-relay\r\n\r\n";
		raw_send(fd, req, strlen(req));
	}
	assert_true(raw_read_to_eof(fd, out, sizeof(out)));
	assert_non_null(strstr(out, "HTTP/1.1 404 "));
	close(fd);
	/* Silence: closed at the handshake deadline (500 ms here). */
	fd = raw_connect();
	{
		uint64_t t0 = clock_mono_ns();
		assert_true(raw_read_to_eof(fd, out, sizeof(out)));
		assert_true(clock_mono_ns() - t0 >= 400 * NSEC_PER_MSEC);
	}
	close(fd);

	/* The others never noticed. */
	assert_true(a.connected && b.connected);
	send_text(&a, &b, "unaffected");
	assert_true(wait_count(&b.rx_count, 1, 2000));
	struct relay_stats after = stats(&srv);
	assert_true(after.protocol_errors >= before.protocol_errors + 3);
	assert_true(after.handshake_failed >= before.handshake_failed + 4);
	node_stop(&a);
	node_stop(&b);
}

static void test_wrong_relay_key_refused(void **state)
{
	struct node a;
	uint8_t wrong[32];

	node_init(&a, "a", true);
	random_bytes(wrong, 32);
	assert_int_equal(relay_client_new(&a.client, loop, "127.0.0.1", relay_tcp_port(srv.relay),
					  wrong, a.priv, &node_ops, &a),
			 0);
	assert_true(wait_why(&a, "relay key mismatch", 3000));
	assert_int_equal(a.connects, 0);
	node_stop(&a);
}

/* One Binding request from a socket of the given family to addr:port. */
static void stun_round_trip(int family, const char *addr, uint16_t port, const char *want_mapped)
{
	struct sockaddr_storage to = {0}, local;
	socklen_t local_len = sizeof(local), to_len;
	uint8_t req[STUN_BUF_LEN], resp[STUN_BUF_LEN], txid[STUN_TXID_LEN];
	struct timeval tv = {.tv_sec = 2};
	struct stun_msg msg;
	char mapped[INET6_ADDRSTRLEN];
	int fd = socket(family, SOCK_DGRAM, 0), n;
	uint16_t mport;

	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&to;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s->sin_addr);
		to_len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&to;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s->sin6_addr);
		to_len = sizeof(*s);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	stun_txid_new(txid);
	n = stun_build_binding_request(req, sizeof(req), txid, 0);
	assert_true(n > 0);
	assert_int_equal(sendto(fd, req, (size_t)n, 0, (struct sockaddr *)&to, to_len), n);
	/* Not STUN: ignored, the socket keeps serving. */
	sendto(fd, "garbage", 7, 0, (struct sockaddr *)&to, to_len);
	n = (int)recv(fd, resp, sizeof(resp), 0);
	assert_true(n > 0);
	assert_int_equal(stun_parse(resp, (size_t)n, &msg), 0);
	assert_int_equal(msg.type, STUN_BINDING_SUCCESS);
	assert_memory_equal(msg.txid, txid, STUN_TXID_LEN);
	assert_true(msg.has_mapped && msg.mapped_is_xor);
	assert_true(msg.has_fingerprint && msg.fingerprint_ok);
	getsockname(fd, (struct sockaddr *)&local, &local_len);
	if (msg.mapped.ss_family == AF_INET) {
		struct sockaddr_in *m = (struct sockaddr_in *)&msg.mapped;
		inet_ntop(AF_INET, &m->sin_addr, mapped, sizeof(mapped));
		mport = ntohs(m->sin_port);
	} else {
		struct sockaddr_in6 *m = (struct sockaddr_in6 *)&msg.mapped;
		inet_ntop(AF_INET6, &m->sin6_addr, mapped, sizeof(mapped));
		mport = ntohs(m->sin6_port);
	}
	assert_string_equal(mapped, want_mapped);
	assert_int_equal(mport, ntohs(((struct sockaddr_in *)&local)->sin_port));
	close(fd);
}

static void test_stun(void **state)
{
	struct server s6 = {0};
	struct relay_stats st;

	stun_round_trip(AF_INET, "127.0.0.1", relay_stun_port(srv.relay), "127.0.0.1");
	st = stats(&srv);
	assert_true(st.stun_requests >= 1);
	assert_true(st.stun_invalid >= 1);

	/* [::] is dual-stack: IPv6 and IPv4 on one socket; IPv4 reported as IPv4. */
	server_start(&s6, "[::1]:0", "[::]:0");
	stun_round_trip(AF_INET6, "::1", relay_stun_port(s6.relay), "::1");
	stun_round_trip(AF_INET, "127.0.0.1", relay_stun_port(s6.relay), "127.0.0.1");
	server_stop(&s6);
}

/* --- the admission set on its own ---------------------------------------- */

struct removed_log {
	int n;
	uint8_t last[32];
};

static void on_removed(void *arg, const uint8_t key[32])
{
	struct removed_log *l = arg;

	l->n++;
	memcpy(l->last, key, 32);
}

static void test_admission_messages(void **state)
{
	struct removed_log log = {0};
	struct admission *a;
	uint8_t k[3][32];
	char b64[3][KEY_BASE64_LEN + 1], err[128], text[512];
	json_t *msg;

	for (int i = 0; i < 3; i++) {
		random_bytes(k[i], 32);
		key_to_base64(b64[i], k[i]);
	}
	assert_int_equal(admission_new(&a, on_removed, &log), 0);

	snprintf(text, sizeof(text),
		 "{\"type\":\"relay-nodes\",\"full\":true,\"keys\":[\"%s\",\"%s\"]}", b64[0],
		 b64[1]);
	msg = json_loads(text, 0, NULL);
	assert_int_equal(admission_apply_json(a, msg, err, sizeof(err)), 0);
	json_decref(msg);
	assert_true(admission_contains(a, k[0]) && admission_contains(a, k[1]));
	assert_false(admission_contains(a, k[2]));

	/* Delta: add 2, remove 0 (removed() says so). */
	snprintf(text, sizeof(text),
		 "{\"type\":\"relay-nodes\",\"add\":[\"%s\"],\"remove\":[\"%s\"]}", b64[2], b64[0]);
	msg = json_loads(text, 0, NULL);
	assert_int_equal(admission_apply_json(a, msg, err, sizeof(err)), 0);
	json_decref(msg);
	assert_false(admission_contains(a, k[0]));
	assert_true(admission_contains(a, k[2]));
	assert_int_equal(log.n, 1);
	assert_memory_equal(log.last, k[0], 32);

	/* A full set drops whoever is not in it. */
	snprintf(text, sizeof(text), "{\"type\":\"relay-nodes\",\"full\":true,\"keys\":[\"%s\"]}",
		 b64[2]);
	msg = json_loads(text, 0, NULL);
	assert_int_equal(admission_apply_json(a, msg, err, sizeof(err)), 0);
	json_decref(msg);
	assert_int_equal(admission_count(a), 1);
	assert_int_equal(log.n, 2);
	assert_memory_equal(log.last, k[1], 32);

	/* Malformed: nothing changes. */
	const char *bad[] = {
		"{\"type\":\"relay-nodez\",\"add\":[]}",
		"{\"type\":\"relay-nodes\",\"full\":true}",
		"{\"type\":\"relay-nodes\",\"full\":1,\"keys\":[]}",
		"{\"type\":\"relay-nodes\",\"add\":\"x\"}",
		"{\"type\":\"relay-nodes\",\"add\":[\"AAAA\"]}",
		"{\"type\":\"relay-nodes\",\"add\":[42]}",
		"[]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg = json_loads(bad[i], 0, NULL);
		assert_non_null(msg);
		if (admission_apply_json(a, msg, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		json_decref(msg);
	}
	snprintf(text, sizeof(text), "{\"type\":\"relay-nodes\",\"add\":[\"%s\",\"bad\"]}", b64[0]);
	msg = json_loads(text, 0, NULL);
	assert_int_equal(admission_apply_json(a, msg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "add[1]: not a base64 key");
	json_decref(msg);
	assert_false(admission_contains(a, k[0])); /* all or nothing */
	assert_int_equal(admission_count(a), 1);
	assert_int_equal(log.n, 2);
	assert_int_equal(admission_remove(a, k[0]), -ENOENT);
	admission_free(a);
}

static void test_keymap_many(void **state)
{
	struct keymap *m;
	uint8_t(*keys)[32] = malloc(5000 * 32);

	assert_int_equal(keymap_new(&m), 0);
	for (int i = 0; i < 5000; i++) {
		random_bytes(keys[i], 32);
		assert_int_equal(keymap_put(m, keys[i], &keys[i]), 0);
	}
	assert_int_equal(keymap_count(m), 5000);
	for (int i = 0; i < 5000; i++)
		assert_ptr_equal(keymap_get(m, keys[i]), &keys[i]);
	for (int i = 0; i < 5000; i += 2)
		assert_ptr_equal(keymap_del(m, keys[i]), &keys[i]);
	for (int i = 0; i < 5000; i++)
		assert_true((keymap_get(m, keys[i]) != NULL) == (i % 2 == 1));
	assert_int_equal(keymap_count(m), 2500);
	keymap_free(m);
	free(keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admission_messages),
		cmocka_unit_test(test_keymap_many),
		cmocka_unit_test_setup_teardown(test_exchange_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packets_before_admission_arrive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_connection_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_does_not_block_others, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_burst_crosses_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removal_drops_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_closes_only_that_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_relay_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stun, setup, teardown),
	};
	if (crypto_init() < 0)
		return 1;
	log_set_level(getenv("TEST_VERBOSE") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR + 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
