// SPDX-License-Identifier: MIT
/*
 * src/netcheck/: the NAT behaviour decisions (mapping, filtering, port
 * allocation, hairpinning, windowed allocation) from made-up observations,
 * the "nat" object's JSON (with its window) both ways with hostile input, and the probe engine
 * against STUN servers on loopback that drop, misdirect or refuse answers.
 */
#include <arpa/inet.h>
#include <errno.h>
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

#include "control/netmap.h"
#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/evloop.h"
#include "netcheck/classify.h"
#include "netcheck/probe.h"
#include "stun/stun.h"

static union sockaddr_inet ep(const char *s)
{
	union sockaddr_inet e;

	assert_int_equal(endpoint_parse(s, false, &e), 0);
	return e;
}

static struct nc_observation obs(const char *dst, const char *mapped)
{
	return (struct nc_observation){.dst = ep(dst), .mapped = ep(mapped)};
}

/* --- mapping -------------------------------------------------------------- */

static void test_mapping_rfc5780(void **state)
{
	/* A1:P1, A2:P1, A2:P2 as natprobe and knitd ask them. */
	struct nc_observation eim[] = {obs("198.51.100.3:3478", "203.0.113.1:4000"),
				       obs("198.51.100.4:3478", "203.0.113.1:4000"),
				       obs("198.51.100.4:3479", "203.0.113.1:4000")};
	struct nc_observation adm[] = {obs("198.51.100.3:3478", "203.0.113.1:4000"),
				       obs("198.51.100.4:3478", "203.0.113.1:4001"),
				       obs("198.51.100.4:3479", "203.0.113.1:4001")};
	struct nc_observation adpm[] = {obs("198.51.100.3:3478", "203.0.113.1:4000"),
					obs("198.51.100.4:3478", "203.0.113.1:4001"),
					obs("198.51.100.4:3479", "203.0.113.1:4002")};
	/* The port alone changes the mapping, the address did not (yet). */
	struct nc_observation adpm2[] = {obs("198.51.100.3:3478", "203.0.113.1:4000"),
					 obs("198.51.100.4:3478", "203.0.113.1:4000"),
					 obs("198.51.100.4:3479", "203.0.113.1:4009")};

	assert_int_equal(nc_classify_mapping(eim, 3), NC_MAPPING_EIM);
	assert_int_equal(nc_classify_mapping(adm, 3), NC_MAPPING_ADM);
	assert_int_equal(nc_classify_mapping(adpm, 3), NC_MAPPING_ADPM);
	assert_int_equal(nc_classify_mapping(adpm2, 3), NC_MAPPING_ADPM);
}

static void test_mapping_partial(void **state)
{
	/* Two relays, no alternate port: a change cannot be pinned down. */
	struct nc_observation two_differ[] = {obs("198.51.100.2:3478", "203.0.113.1:4000"),
					      obs("198.51.100.9:3478", "203.0.113.1:5000")};
	struct nc_observation two_agree[] = {obs("198.51.100.2:3478", "203.0.113.1:4000"),
					     obs("198.51.100.9:3478", "203.0.113.1:4000")};
	/* One address, two ports that agree: address dependence untested. */
	struct nc_observation one_addr[] = {obs("198.51.100.2:3478", "203.0.113.1:4000"),
					    obs("198.51.100.2:3479", "203.0.113.1:4000")};
	/* The same destination twice, different answers (a rebinding): no
	 * pair of destinations, so nothing is known. */
	struct nc_observation same_dst[] = {obs("198.51.100.2:3478", "203.0.113.1:4000"),
					    obs("198.51.100.2:3478", "203.0.113.1:4444")};
	struct nc_observation v6[] = {obs("[2001:db8::1]:3478", "[2001:db8:1::5]:41641"),
				      obs("[2001:db8::2]:3478", "[2001:db8:1::5]:41641")};

	assert_int_equal(nc_classify_mapping(two_differ, 2), NC_MAPPING_VARIES);
	assert_int_equal(nc_classify_mapping(two_agree, 2), NC_MAPPING_EIM);
	assert_int_equal(nc_classify_mapping(one_addr, 2), NC_MAPPING_UNKNOWN);
	assert_int_equal(nc_classify_mapping(same_dst, 2), NC_MAPPING_UNKNOWN);
	assert_int_equal(nc_classify_mapping(v6, 2), NC_MAPPING_EIM);
	assert_int_equal(nc_classify_mapping(two_agree, 1), NC_MAPPING_UNKNOWN);
	assert_int_equal(nc_classify_mapping(NULL, 0), NC_MAPPING_UNKNOWN);
}

static void test_mapping_many_relays(void **state)
{
	/* A relay with an alternate address and port plus two plain ones:
	 * ADM shows through the extra relays too. */
	struct nc_observation o[] = {obs("198.51.100.2:3478", "203.0.113.1:4000"),
				     obs("198.51.100.5:3478", "203.0.113.1:4001"),
				     obs("198.51.100.5:3479", "203.0.113.1:4001"),
				     obs("198.51.100.7:3478", "203.0.113.1:4002"),
				     obs("198.51.100.8:3478", "203.0.113.1:4003")};

	assert_int_equal(nc_classify_mapping(o, 5), NC_MAPPING_ADM);
}

/* --- filtering, allocation, hairpin ------------------------------------ */

static void test_filtering(void **state)
{
	assert_int_equal(nc_classify_filtering(true, true), NC_FILTERING_EIF);
	/* An EIF NAT answers both; the other address's answer is what counts. */
	assert_int_equal(nc_classify_filtering(true, false), NC_FILTERING_EIF);
	assert_int_equal(nc_classify_filtering(false, true), NC_FILTERING_ADF);
	assert_int_equal(nc_classify_filtering(false, false), NC_FILTERING_ADPF);
}

static void test_allocation(void **state)
{
	unsigned local[8] = {30000, 30001, 30002, 30003, 30004, 30005, 30006, 30007};
	unsigned seq[8] = {1024, 1025, 1026, 1027, 1028, 1029, 1030, 1031};
	unsigned seq_wrap[8] = {65533, 65534, 65535, 1024, 1025, 1026, 1027, 1028};
	unsigned seq_gaps[8] = {2000, 2002, 2005, 2020, 2021, 2022, 2030, 2031};
	unsigned seq_two_off[8] = {65533, 65534, 1024, 1025, 9000, 9001, 9002, 9003};
	unsigned random[8] = {40123, 1999, 61234, 33210, 10001, 52002, 27000, 45555};
	unsigned down[8] = {2007, 2006, 2005, 2004, 2003, 2002, 2001, 2000};
	unsigned one_moved[8] = {30000, 30001, 30002, 30003, 30004, 30005, 30006, 1};

	assert_int_equal(nc_classify_allocation(local, local, 8), NC_ALLOCATION_PRESERVING);
	assert_int_equal(nc_classify_allocation(local, seq, 8), NC_ALLOCATION_SEQUENTIAL);
	assert_int_equal(nc_classify_allocation(local, seq_wrap, 8), NC_ALLOCATION_SEQUENTIAL);
	assert_int_equal(nc_classify_allocation(local, seq_gaps, 8), NC_ALLOCATION_SEQUENTIAL);
	assert_int_equal(nc_classify_allocation(local, seq_two_off, 8), NC_ALLOCATION_RANDOM);
	assert_int_equal(nc_classify_allocation(local, random, 8), NC_ALLOCATION_RANDOM);
	assert_int_equal(nc_classify_allocation(local, down, 8), NC_ALLOCATION_RANDOM);
	/* One port not preserved (taken by another flow): sequential at best. */
	assert_int_equal(nc_classify_allocation(local, one_moved, 8), NC_ALLOCATION_SEQUENTIAL);
	assert_int_equal(nc_classify_allocation(local, local, 1), NC_ALLOCATION_UNKNOWN);
	assert_int_equal(nc_classify_allocation(local, seq, 2), NC_ALLOCATION_SEQUENTIAL);
}

static void test_hairpin(void **state)
{
	assert_int_equal(nc_classify_hairpin(false, false), NC_NO);
	assert_int_equal(nc_classify_hairpin(true, false), NC_YES);
	assert_int_equal(nc_classify_hairpin(false, true), NC_YES);
}

static void test_names(void **state)
{
	assert_string_equal(nc_mapping_name(NC_MAPPING_ADPM), "adpm");
	assert_string_equal(nc_mapping_name((enum nc_mapping)77), "unknown");
	assert_string_equal(nc_filtering_name(NC_FILTERING_ADF), "adf");
	assert_string_equal(nc_allocation_name(NC_ALLOCATION_SEQUENTIAL), "sequential");
	assert_string_equal(nc_mapping_name(NC_MAPPING_VARIES), "varies");
	assert_string_equal(nc_filtering_name(NC_FILTERING_UNKNOWN), "unknown");
	assert_string_equal(nc_allocation_name((enum nc_allocation) - 1), "unknown");
}

/* --- windowed allocation ---------------------------------------------------- */

#define WIN_N 16 /* sockets, as knitd's netcheck asks */

static uint32_t xorshift(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

static union sockaddr_inet v4(uint32_t addr, uint16_t port)
{
	union sockaddr_inet e = {.in = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(addr),
					.sin_port = htons(port)}};
	return e;
}

#define NET    0xc6336400u /* 198.51.100.0 */
#define RELAY  (NET | 2)
#define ALT    (NET | 5)
#define PUBLIC (NET | 11)

/* WIN_N sockets each ask the relay (.2:3478) and its alternate (.5:3479);
 * port(dst, i) is the NAT's answer for socket i.  Interleaved, as knitd
 * sends them. */
static size_t window_obs(struct nc_observation *o, unsigned (*port)(uint32_t, unsigned, uint64_t *),
			 uint64_t *rng)
{
	size_t n = 0;

	for (unsigned i = 0; i < WIN_N; i++) {
		o[n].dst = v4(RELAY, 3478);
		o[n].mapped = v4(PUBLIC, (uint16_t)port(RELAY, 2 * i, rng));
		n++;
		o[n].dst = v4(ALT, 3479);
		o[n].mapped = v4(PUBLIC, (uint16_t)port(ALT, 2 * i + 1, rng));
		n++;
	}
	return n;
}

/* lab/lib/nat.sh's seed ADM: a.b.c.X gets 40000 + 100X .. + 99, a random
 * free one inside. */
static unsigned seed_used[WIN_N * 2];
static unsigned seed_adm(uint32_t dst, unsigned i, uint64_t *rng)
{
	unsigned base = 40000 + 100 * (dst & 0xff), p;
	bool taken;

	do {
		p = base + xorshift(rng) % 100;
		taken = false;
		for (unsigned k = 0; k < i; k++)
			taken |= seed_used[k] == p;
	} while (taken);
	seed_used[i] = p;
	return p;
}

static unsigned random_ports(uint32_t dst, unsigned i, uint64_t *rng)
{
	return 1024 + xorshift(rng) % (65536 - 1024);
}

/* A sequential allocator: one port after the other, whatever the
 * destination. */
static unsigned sequential(uint32_t dst, unsigned i, uint64_t *rng)
{
	return 20000 + i;
}

/* An ADM whose per-address windows are 100 wide but not aligned to 100. */
static unsigned offset_adm(uint32_t dst, unsigned i, uint64_t *rng)
{
	return 40050 + 100 * (dst & 0xff) + xorshift(rng) % 100;
}

static void test_window_seed_adm(void **state)
{
	struct nc_observation o[2 * WIN_N];
	struct nat_window w;
	uint16_t start;

	/* Every seed: 100 wide, aligned, and the rule places the window
	 * towards a peer's address (.12) and towards any other. */
	for (uint64_t seed = 1; seed <= 2000; seed++) {
		uint64_t rng = seed * 0x9e3779b97f4a7c15ULL;
		size_t n = window_obs(o, seed_adm, &rng);
		assert_true(nc_classify_window(o, n, &w));
		assert_int_equal(w.width, 100);
		assert_true(w.aligned);
		assert_int_equal(nat_window_start(&w, NET | 12, &start), 0);
		assert_int_equal(start, 41200);
		assert_int_equal(nat_window_start(&w, NET | 1, &start), 0);
		assert_int_equal(start, 40100);
		assert_int_equal(nat_window_start(&w, NET | 254, &start), 0);
		assert_int_equal(start, 65400);
	}
	/* Beyond the port range: no prediction. */
	assert_int_equal(nat_window_start(&w, NET | 255 | 0x100, &start), -ERANGE);
	assert_int_equal(nat_window_start(&w, 0, &start), -ENOENT);
}

static void test_window_not_windowed(void **state)
{
	struct nc_observation o[2 * WIN_N];
	struct nat_window w;

	/* Random ports over the whole range: never a window. */
	for (uint64_t seed = 1; seed <= 2000; seed++) {
		uint64_t rng = seed * 0x9e3779b97f4a7c15ULL;
		size_t n = window_obs(o, random_ports, &rng);
		assert_false(nc_classify_window(o, n, &w));
		assert_int_equal(w.width, 0);
	}
	/* Sequential: narrow, but the same window for both addresses. */
	assert_false(nc_classify_window(o, window_obs(o, sequential, NULL), &w));
	/* Too few answers towards an address, or one address only. */
	uint64_t rng = 7;
	size_t n = window_obs(o, seed_adm, &rng);
	assert_true(nc_classify_window(o, n, &w));
	assert_false(nc_classify_window(o, 2 * (NC_WINDOW_MIN_SAMPLES - 1), &w));
	for (size_t i = 1; i < n; i += 2)
		o[i] = o[i - 1];
	assert_false(nc_classify_window(o, n, &w));
	/* IPv6 answers say nothing here. */
	n = window_obs(o, seed_adm, &rng);
	for (size_t i = 0; i < n; i++)
		o[i].dst = ep("[2001:db8::1]:3478");
	assert_false(nc_classify_window(o, n, &w));
}

static void test_window_unaligned(void **state)
{
	struct nc_observation o[2 * WIN_N];
	struct nat_window w;
	uint16_t start;

	/* Windows that straddle the multiples of 100: found, not aligned, and
	 * the prediction towards .12 (centres extrapolated 10/3 of the way
	 * beyond what was seen) covers most of the real 41250..41349. */
	unsigned most = 0;
	for (uint64_t seed = 1; seed <= 2000; seed++) {
		uint64_t rng = seed * 0x9e3779b97f4a7c15ULL;
		size_t n = window_obs(o, offset_adm, &rng);
		long lo, hi;
		assert_true(nc_classify_window(o, n, &w));
		assert_false(w.aligned);
		assert_true(w.width >= 100 && w.width <= 128);
		assert_int_equal(nat_window_start(&w, NET | 12, &start), 0);
		lo = start > 41250 ? start : 41250;
		hi = start + w.width < 41350 ? start + w.width : 41350;
		assert_true(hi - lo >= 25);
		most += hi - lo >= 70;
	}
	printf("unaligned: the prediction holds 70 of the 100 ports in %u of 2000\n", most);
	assert_true(most >= 2000 * 95 / 100);
}

static void test_nat_json_window(void **state)
{
	struct nat_class c = {.udp = true,
			      .mapping = NAT_MAP_ADM,
			      .filtering = NAT_FILTER_ADPF,
			      .window = {.width = 100,
					 .aligned = true,
					 .addr = {RELAY, ALT},
					 .start = {40200, 40500}},
			      .addr_v4 = PUBLIC},
			 back;
	json_t *j = netmap_nat_to_json(&c), *old;
	char *text;

	assert_non_null(j);
	text = json_dumps(json_object_get(j, "window"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text,
			    "{\"aligned\":true,\"points\":[{\"address\":\"198.51.100.2\","
			    "\"start\":40200},{\"address\":\"198.51.100.5\",\"start\":40500}],"
			    "\"width\":100}");
	free(text);
	assert_int_equal(netmap_nat_from_json(j, &back), 0);
	/* Our own address is not shared: the peer's is its endpoint. */
	c.addr_v4 = 0;
	assert_memory_equal(&back, &c, sizeof(c));
	/* Without a window: no field, and an old node's class reads as
	 * before (no window). */
	old = json_pack("{s:b,s:b,s:b,s:s,s:s}", "udp", 1, "public", 0, "port_mapped", 0, "mapping",
			"adm", "filtering", "adpf");
	assert_int_equal(netmap_nat_from_json(old, &back), 0);
	assert_int_equal(back.window.width, 0);
	assert_int_equal(back.mapping, NAT_MAP_ADM);
	json_decref(old);
	c.window.width = 0;
	old = netmap_nat_to_json(&c);
	assert_null(json_object_get(old, "window"));
	json_decref(old);

	/* Hostile windows: the class is refused whole. */
	static const char *const bad[] = {
		"{\"width\":0,\"aligned\":true,\"points\":[]}",
		"{\"width\":513,\"aligned\":true,\"points\":[{\"address\":\"1.2.3.4\",\"start\":1},"
		"{\"address\":\"1.2.3.5\",\"start\":2}]}",
		"{\"width\":100,\"aligned\":1,\"points\":[{\"address\":\"1.2.3.4\",\"start\":1},"
		"{\"address\":\"1.2.3.5\",\"start\":2}]}",
		"{\"width\":100,\"aligned\":true,\"points\":[{\"address\":\"1.2.3.4\",\"start\":1}]"
		"}",
		"{\"width\":100,\"aligned\":true,\"points\":[{\"address\":\"1.2.3.4\",\"start\":1},"
		"{\"address\":\"1.2.3.4\",\"start\":2}]}",
		"{\"width\":100,\"aligned\":true,\"points\":[{\"address\":\"::1\",\"start\":1},"
		"{\"address\":\"1.2.3.5\",\"start\":2}]}",
		"{\"width\":100,\"aligned\":true,\"points\":[{\"address\":\"1.2.3.4\",\"start\":"
		"65500},"
		"{\"address\":\"1.2.3.5\",\"start\":2}]}",
		"{\"width\":100,\"aligned\":true,\"points\":[{\"address\":\"1.2.3.4\",\"start\":0},"
		"{\"address\":\"1.2.3.5\",\"start\":2}]}",
		"{\"width\":100,\"aligned\":true,\"points\":[{\"address\":\"1.2.3.4\",\"start\":"
		"\"1\"},"
		"{\"address\":\"1.2.3.5\",\"start\":2}]}",
		"[]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *w = json_loads(bad[i], 0, NULL);
		assert_non_null(w);
		json_object_set_new(j, "window", w);
		assert_int_equal(netmap_nat_from_json(j, &back), -EINVAL);
		assert_int_equal(back.window.width, 0);
	}
	json_decref(j);
}

/* --- the probe engine, against STUN servers on loopback ------------------ */

struct server {
	int fd;
	union sockaddr_inet addr;
	int drop;	    /* requests to ignore first */
	int answer_from_fd; /* -1: itself; else answers leave from there */
	bool refuse;	    /* answer 420 */
	int requests;
	struct server *alt_server; /* CHANGE-REQUEST answers leave from it */
};

static void server_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct server *s = arg;
	uint8_t buf[1500], out[STUN_BUF_LEN];
	union sockaddr_inet from;
	struct sockaddr_storage mapped;
	struct stun_msg m;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, &from.sa, &flen);
	int len, out_fd = s->fd;

	if (n < 0 || stun_parse(buf, (size_t)n, &m) < 0 || m.type != STUN_BINDING_REQUEST)
		return;
	s->requests++;
	if (s->drop > 0) {
		s->drop--;
		return;
	}
	nc_ep_to_ss(&mapped, &from);
	if (s->refuse)
		len = stun_build_error_response(out, sizeof(out), m.txid, 420, "no", NULL, 0);
	else
		len = stun_build_binding_response(out, sizeof(out), m.txid, &mapped, NULL, NULL);
	assert_true(len > 0);
	if (m.change_flags && s->alt_server)
		out_fd = s->alt_server->fd;
	if (s->answer_from_fd >= 0)
		out_fd = s->answer_from_fd;
	sendto(out_fd, out, (size_t)len, 0, &from.sa, endpoint_len(&from));
}

static void server_open(struct evloop *loop, struct server *s)
{
	socklen_t len = sizeof(s->addr);

	memset(s, 0, sizeof(*s));
	s->answer_from_fd = -1;
	s->addr = ep("127.0.0.1:1");
	s->fd = nc_udp_socket(AF_INET, &s->addr, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(getsockname(s->fd, &s->addr.sa, &len), 0);
	assert_int_equal(evloop_add_fd(loop, s->fd, EPOLLIN, server_readable, s), 0);
}

struct bench {
	struct evloop *loop;
	struct nc_engine *e;
	int client;
	int done_calls;
	int sends;
};

static void bench_done(void *arg, struct nc_probe *probes, size_t n)
{
	struct bench *b = arg;

	b->done_calls++;
	evloop_stop(b->loop);
}

static int counting_send(void *arg, int sock, const union sockaddr_inet *dst, const void *buf,
			 size_t len)
{
	struct bench *b = arg;

	b->sends++;
	if (sendto(sock, buf, len, 0, &dst->sa, endpoint_len(dst)) < 0)
		return -errno;
	return 0;
}

static void bench_up(struct bench *b, unsigned timeout_ms)
{
	static const struct nc_engine_ops ops = {.send = counting_send, .done = bench_done};

	memset(b, 0, sizeof(*b));
	assert_int_equal(evloop_new(&b->loop), 0);
	assert_int_equal(nc_engine_new(&b->e, b->loop, timeout_ms, &ops, b), 0);
	b->client = nc_udp_socket(AF_INET, NULL, 0);
	assert_true(b->client >= 0);
	assert_int_equal(nc_engine_watch_fd(b->e, b->client), 0);
}

static void bench_run(struct bench *b, struct nc_probe *p, size_t n)
{
	assert_int_equal(nc_engine_start(b->e, p, n), 0);
	assert_int_equal(nc_engine_start(b->e, p, n), -EBUSY);
	assert_int_equal(evloop_run(b->loop), 0);
	assert_false(nc_engine_busy(b->e));
}

static void bench_down(struct bench *b, struct server *servers, size_t n)
{
	nc_engine_free(b->e);
	close(b->client);
	for (size_t i = 0; i < n; i++)
		close(servers[i].fd);
	evloop_free(b->loop);
}

static void test_engine_answers_and_retries(void **state)
{
	struct server s[2];
	struct bench b;
	struct nc_probe p[3];
	union sockaddr_inet me, m;
	socklen_t len = sizeof(me);
	uint64_t t0;

	bench_up(&b, 800);
	server_open(b.loop, &s[0]);
	server_open(b.loop, &s[1]);
	s[1].drop = 3; /* the 4th try is answered */
	assert_int_equal(getsockname(b.client, &me.sa, &len), 0);
	me.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* bound to the wildcard */
	nc_probe_stun(&p[0], "first", b.client, &s[0].addr, 0, &s[0].addr);
	nc_probe_stun(&p[1], "lossy", b.client, &s[1].addr, 0, NULL);
	/* Runs only once the first is done. */
	nc_probe_stun(&p[2], "after", b.client, &s[0].addr, 0, NULL);
	p[2].after = 0;
	t0 = clock_mono_ns();
	bench_run(&b, p, 3);
	assert_int_equal(b.done_calls, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(p[i].state, NC_P_DONE);
	nc_probe_mapped(&p[0], &m);
	assert_true(endpoint_equal(&m, &me));
	assert_int_equal(p[0].tries, 1);
	assert_int_equal(p[1].tries, 4);
	assert_int_equal(s[1].requests, 4);
	assert_true(p[2].start_ns >= p[0].start_ns);
	/* The round trip is that of the answered try, not from the first. */
	assert_true(p[1].rtt_ns < 50 * NSEC_PER_MSEC);
	assert_true(p[1].rtt_ns > 0);
	/* The 4th try leaves 3 intervals (of 100 ms) after the first. */
	assert_true(clock_mono_ns() - t0 >= 290 * NSEC_PER_MSEC);
	assert_int_equal(b.sends, 6);
	bench_down(&b, s, 2);
}

static void test_engine_timeouts_and_refusals(void **state)
{
	struct server s[3];
	struct bench b;
	struct nc_probe p[4];
	uint64_t t0;

	bench_up(&b, 400);
	server_open(b.loop, &s[0]);
	server_open(b.loop, &s[1]);
	server_open(b.loop, &s[2]);
	s[0].drop = 1000; /* never answers */
	s[1].refuse = true;
	s[2].answer_from_fd = s[0].fd; /* answers from the wrong address */
	nc_probe_stun(&p[0], "silent", b.client, &s[0].addr, 0, NULL);
	nc_probe_stun(&p[1], "refused", b.client, &s[1].addr, 0, NULL);
	nc_probe_stun(&p[2], "misdirected", b.client, &s[2].addr, 0, &s[2].addr);
	nc_probe_stun(&p[3], "after a failure", b.client, &s[2].addr, 0, NULL);
	p[3].after = 0;
	t0 = clock_mono_ns();
	bench_run(&b, p, 4);
	assert_int_equal(p[0].state, NC_P_FAILED);
	assert_int_equal(p[0].tries, NC_MAX_TRIES);
	assert_int_equal(p[0].sent, NC_MAX_TRIES);
	assert_int_equal(p[1].state, NC_P_FAILED);
	assert_int_equal(p[1].error_code, 420);
	assert_int_equal(p[2].state, NC_P_FAILED);
	assert_int_equal(p[2].error_code, 0);
	assert_int_equal(p[3].state, NC_P_FAILED);
	assert_int_equal(p[3].tries, 0); /* never sent */
	/* Settled one timeout after the start, not later. */
	assert_true(clock_mono_ns() - t0 >= 400 * NSEC_PER_MSEC);
	assert_true(clock_mono_ns() - t0 < 700 * NSEC_PER_MSEC);
	bench_down(&b, s, 3);
}

static void test_engine_change_request_and_datagram(void **state)
{
	struct server s[2];
	struct bench b;
	struct nc_probe p[3];
	union sockaddr_inet y_addr;
	socklen_t len = sizeof(y_addr);
	int y;

	bench_up(&b, 400);
	server_open(b.loop, &s[0]);
	server_open(b.loop, &s[1]);
	s[0].alt_server = &s[1];
	y = nc_udp_socket(AF_INET, NULL, 0);
	assert_true(y >= 0);
	assert_int_equal(nc_engine_watch_fd(b.e, y), 0);
	assert_int_equal(getsockname(y, &y_addr.sa, &len), 0);
	y_addr.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	nc_probe_stun(&p[0], "change", b.client, &s[0].addr, STUN_CHANGE_PORT, &s[1].addr);
	/* A wrong expectation: the answer comes from s[1], not s[0]. */
	nc_probe_stun(&p[1], "change, wrong source", y, &s[0].addr, STUN_CHANGE_PORT, &s[0].addr);
	nc_probe_datagram(&p[2], "x to y", b.client, y, &y_addr);
	bench_run(&b, p, 3);
	assert_int_equal(p[0].state, NC_P_DONE);
	assert_true(endpoint_equal(&p[0].from, &s[1].addr));
	assert_int_equal(p[1].state, NC_P_FAILED);
	assert_int_equal(p[2].state, NC_P_DONE);
	/* A stale answer after the batch is not consumed. */
	uint8_t junk[20] = {0};
	assert_false(nc_engine_input(b.e, b.client, junk, sizeof(junk), &s[0].addr));
	nc_engine_unwatch_fd(b.e, y);
	close(y);
	bench_down(&b, s, 2);
}

static void test_engine_rejects_bad_batches(void **state)
{
	struct bench b;
	struct nc_probe p[2];
	union sockaddr_inet d = ep("127.0.0.1:9");

	bench_up(&b, 100);
	nc_probe_stun(&p[0], "a", b.client, &d, 0, NULL);
	nc_probe_stun(&p[1], "b", b.client, &d, 0, NULL);
	p[1].after = 1; /* itself */
	assert_int_equal(nc_engine_start(b.e, p, 2), -EINVAL);
	p[0].after = 1; /* a later probe */
	p[1].after = -1;
	assert_int_equal(nc_engine_start(b.e, p, 2), -EINVAL);
	assert_int_equal(nc_engine_start(b.e, p, 0), -EINVAL);
	assert_false(nc_engine_busy(b.e));
	/* Cancel: no done call ever. */
	p[0].after = -1;
	assert_int_equal(nc_engine_start(b.e, p, 2), 0);
	nc_engine_cancel(b.e);
	assert_false(nc_engine_busy(b.e));
	assert_int_equal(b.done_calls, 0);
	nc_engine_free(b.e);
	close(b.client);
	evloop_free(b.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping_rfc5780),
		cmocka_unit_test(test_mapping_partial),
		cmocka_unit_test(test_mapping_many_relays),
		cmocka_unit_test(test_filtering),
		cmocka_unit_test(test_allocation),
		cmocka_unit_test(test_hairpin),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_window_seed_adm),
		cmocka_unit_test(test_window_not_windowed),
		cmocka_unit_test(test_window_unaligned),
		cmocka_unit_test(test_nat_json_window),
		cmocka_unit_test(test_engine_answers_and_retries),
		cmocka_unit_test(test_engine_timeouts_and_refusals),
		cmocka_unit_test(test_engine_change_request_and_datagram),
		cmocka_unit_test(test_engine_rejects_bad_batches),
	};

	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
