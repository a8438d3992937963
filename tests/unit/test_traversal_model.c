// SPDX-License-Identifier: MIT
/*
 * src/traversal/plan.c against a model of NATs: every ordered pair of the
 * 9 RFC 4787 kinds (mapping EIM/ADM/ADPM x filtering EIF/ADF/ADPF, ports
 * allocated at random over the whole range), thousands of random seeds.  For
 * each pair the model runs hole punching and the birthday search as the plan
 * describes them and checks that the plan is right: punching when punching
 * works, a search when (and only when) a search within budget works, the
 * relay when nothing can (2,000 seeds a pair and strategy).  The result must
 * be the feasibility table: 77 of 81, of which plain punching reaches 57.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "traversal/plan.h"

#define MAX_MAPS 4096
#define KEY_SLOTS 16384 /* open addressing, a power of two */
#define PORTS	 65536

struct mapping {
	uint16_t int_port;
	uint32_t dst_ip; /* ADM, ADPM: the destination it was made for */
	uint16_t dst_port;
	uint16_t ext_port;
	unsigned n_sent; /* where it has sent: the filter's memory */
	uint32_t sent_ip[8];
	uint16_t sent_port[8];
	bool sent_many; /* over 8: remember the last ones only (enough here) */
};

struct nat {
	enum nat_mapping mk;
	enum nat_filtering fk;
	uint32_t ip;
	struct mapping maps[MAX_MAPS];
	unsigned n_maps;
	int16_t by_ext[PORTS];	   /* ext port -> mapping index + 1 */
	int16_t by_key[KEY_SLOTS]; /* mapping key -> mapping index + 1 */
	uint64_t *rng;
};

static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

static void nat_init(struct nat *n, enum nat_mapping mk, enum nat_filtering fk, uint32_t ip,
		     uint64_t *rng)
{
	memset(n, 0, sizeof(*n));
	n->mk = mk, n->fk = fk, n->ip = ip, n->rng = rng;
}

static bool same_key(const struct nat *n, const struct mapping *m, uint16_t ip_port, uint32_t dip,
		     uint16_t dport)
{
	if (m->int_port != ip_port)
		return false;
	if (n->mk == NAT_MAP_EIM)
		return true;
	if (n->mk == NAT_MAP_ADM)
		return m->dst_ip == dip;
	return m->dst_ip == dip && m->dst_port == dport;
}

static void remember(struct mapping *m, uint32_t ip, uint16_t port)
{
	unsigned i = m->n_sent++ % 8;

	m->sent_ip[i] = ip, m->sent_port[i] = port;
	m->sent_many |= m->n_sent > 8;
}

static unsigned key_slot(const struct nat *n, uint16_t int_port, uint32_t dip, uint16_t dport)
{
	uint64_t h = int_port;

	if (n->mk != NAT_MAP_EIM)
		h = h * 0x9e3779b97f4a7c15ULL + dip;
	if (n->mk == NAT_MAP_ADPM)
		h = h * 0x9e3779b97f4a7c15ULL + dport;
	h *= 0xff51afd7ed558ccdULL;
	return (unsigned)(h >> 40) & (KEY_SLOTS - 1);
}

/* Outbound from int_port to dst: the external port it leaves from. */
static int nat_out(struct nat *n, uint16_t int_port, uint32_t dip, uint16_t dport)
{
	unsigned slot = key_slot(n, int_port, dip, dport);
	struct mapping *m = NULL;
	uint16_t ext;

	for (; n->by_key[slot]; slot = (slot + 1) & (KEY_SLOTS - 1)) {
		if (same_key(n, &n->maps[n->by_key[slot] - 1], int_port, dip, dport)) {
			m = &n->maps[n->by_key[slot] - 1];
			break;
		}
	}
	if (!m) {
		if (n->n_maps == MAX_MAPS)
			return -1;
		do
			ext = (uint16_t)(1024 + rnd(n->rng) % (PORTS - 1024));
		while (n->by_ext[ext]);
		m = &n->maps[n->n_maps];
		*m = (struct mapping){.int_port = int_port, .dst_ip = dip, .dst_port = dport, .ext_port = ext};
		n->by_ext[ext] = (int16_t)++n->n_maps;
		n->by_key[slot] = (int16_t)n->n_maps;
	}
	remember(m, dip, dport);
	return m->ext_port;
}

/* Inbound to ext_port from src: the internal port, or -1 when dropped.  An
 * accepted packet's source is remembered: replies leave the same way. */
static int nat_in(struct nat *n, uint16_t ext_port, uint32_t sip, uint16_t sport)
{
	struct mapping *m;
	bool ok = n->fk == NAT_FILTER_EIF;

	if (!n->by_ext[ext_port])
		return -1;
	m = &n->maps[n->by_ext[ext_port] - 1];
	for (unsigned i = 0; !ok && i < (m->n_sent < 8 ? m->n_sent : 8); i++)
		ok = m->sent_ip[i] == sip && (n->fk == NAT_FILTER_ADF || m->sent_port[i] == sport);
	if (!ok)
		return -1;
	remember(m, sip, sport);
	return m->int_port;
}

/* A reply from int_port to a source that got in: through the same mapping. */
static int nat_reply(struct nat *n, uint16_t int_port, uint32_t dip, uint16_t dport)
{
	for (unsigned i = 0; i < n->n_maps; i++) {
		struct mapping *m = &n->maps[i];
		for (unsigned j = 0; m->int_port == int_port && j < 8; j++)
			if (m->sent_ip[j] == dip && m->sent_port[j] == dport)
				return m->ext_port;
	}
	return nat_out(n, int_port, dip, dport);
}

#define STUN_IP	  0x0a000001
#define STUN_PORT 3478
#define MAIN_PORT 41641

/* Hole punching as the path manager does it: each side pings the other's
 * STUN-observed address a dozen times; a ping that gets in is answered from
 * where it landed, and its source pinged back. */
static bool punch(struct nat *a, struct nat *b)
{
	int sa = nat_out(a, MAIN_PORT, STUN_IP, STUN_PORT);
	int sb = nat_out(b, MAIN_PORT, STUN_IP, STUN_PORT);
	uint16_t a_to = (uint16_t)sb, b_to = (uint16_t)sa;

	for (int round = 0; round < 12; round++) {
		for (int side = 0; side < 2; side++) {
			struct nat *x = side ? b : a, *y = side ? a : b;
			uint16_t *to = side ? &b_to : &a_to;
			int out = nat_out(x, MAIN_PORT, y->ip, *to);
			int in = out < 0 ? -1 : nat_in(y, *to, x->ip, (uint16_t)out);
			if (in < 0)
				continue;
			/* y answers the source it saw, from where it landed ... */
			int back = nat_reply(y, (uint16_t)in, x->ip, (uint16_t)out);
			if (back >= 0 && nat_in(x, (uint16_t)out, y->ip, (uint16_t)back) >= 0)
				return true;
		}
	}
	return false;
}

/* The birthday search: the opener makes PLAN_SEARCH_SOCKETS mappings towards
 * the sprayer's known address; the sprayer sends probes to random ports of
 * the opener's address.  A probe that gets in is answered from that socket. */
static bool search(struct nat *opener, struct nat *sprayer, uint64_t *rng)
{
	int known = nat_out(sprayer, MAIN_PORT, STUN_IP, STUN_PORT);

	for (unsigned i = 0; i < PLAN_SEARCH_SOCKETS; i++)
		nat_out(opener, (uint16_t)(20000 + i), sprayer->ip, (uint16_t)known);
	for (unsigned i = 0; i < PLAN_SEARCH_PROBES; i++) {
		uint16_t port = (uint16_t)(1024 + rnd(rng) % (PORTS - 1024));
		int out = nat_out(sprayer, MAIN_PORT, opener->ip, port);
		int in = out < 0 ? -1 : nat_in(opener, port, sprayer->ip, (uint16_t)out);
		if (in < 0)
			continue;
		int back = nat_reply(opener, (uint16_t)in, sprayer->ip, (uint16_t)out);
		return back >= 0 && nat_in(sprayer, (uint16_t)out, opener->ip, (uint16_t)back) >= 0;
	}
	return false;
}

static const enum nat_mapping maps[] = {NAT_MAP_EIM, NAT_MAP_ADM, NAT_MAP_ADPM};
static const enum nat_filtering filters[] = {NAT_FILTER_EIF, NAT_FILTER_ADF, NAT_FILTER_ADPF};

static struct nat A, B;

/* Runs one strategy over seeds; returns how many succeeded. */
static unsigned trials(enum nat_mapping am, enum nat_filtering af, enum nat_mapping bm,
		       enum nat_filtering bf, int strategy, unsigned seeds)
{
	unsigned ok = 0;

	for (unsigned s = 1; s <= seeds; s++) {
		uint64_t rng = 0x9e3779b97f4a7c15ULL * s + (uint64_t)strategy;
		nat_init(&A, am, af, 0xc6336401, &rng);
		nat_init(&B, bm, bf, 0xc6336402, &rng);
		if (strategy == 0)
			ok += punch(&A, &B);
		else if (strategy == 1)
			ok += search(&A, &B, &rng); /* A opens */
		else
			ok += search(&B, &A, &rng); /* B opens */
	}
	return ok;
}

static void test_plans_agree_with_the_model(void **state)
{
	unsigned direct = 0, relay = 0, punch_cells = 0, search_cells = 0;

	for (int i = 0; i < 9; i++) {
		for (int j = 0; j < 9; j++) {
			struct nat_class a = {.udp = true, .mapping = maps[i / 3], .filtering = filters[i % 3]};
			struct nat_class b = {.udp = true, .mapping = maps[j / 3], .filtering = filters[j % 3]};
			struct plan pa, pb;
			unsigned n_punch, n_open_a, n_open_b;
			const unsigned seeds = 2000;

			traversal_plan(&a, &b, true, &pa);
			traversal_plan(&b, &a, false, &pb);
			/* Both sides agree on what to do, and on their roles. */
			assert_int_equal(pa.kind, pb.kind);
			if (pa.kind == PLAN_SEARCH)
				assert_true(pa.i_open != pb.i_open);
			n_punch = trials(a.mapping, a.filtering, b.mapping, b.filtering, 0, seeds);
			n_open_a = trials(a.mapping, a.filtering, b.mapping, b.filtering, 1, seeds);
			n_open_b = trials(a.mapping, a.filtering, b.mapping, b.filtering, 2, seeds);
			printf("%s-%s x %s-%s: plan %s, punch %u/%u, search A opens %u, B opens %u\n",
			       nat_mapping_name(a.mapping), nat_filtering_name(a.filtering),
			       nat_mapping_name(b.mapping), nat_filtering_name(b.filtering),
			       pa.kind == PLAN_PUNCH ? "punch" : pa.kind == PLAN_SEARCH ? "search" : "relay",
			       n_punch, seeds, n_open_a, n_open_b);
			switch (pa.kind) {
			case PLAN_PUNCH:
				assert_int_equal(n_punch, seeds); /* always */
				punch_cells++;
				break;
			case PLAN_SEARCH:
				/* Punching is not enough, the planned search is
				 * (≥ 97 % within the budget). */
				assert_true(n_punch < seeds / 10);
				assert_true((pa.i_open ? n_open_a : n_open_b) >= seeds * 97 / 100);
				search_cells++;
				break;
			case PLAN_RELAY:
				/* Nothing works within any budget. */
				assert_true(n_punch + n_open_a + n_open_b <= seeds / 50);
				relay++;
				break;
			}
			direct += pa.kind != PLAN_RELAY;
		}
	}
	printf("direct %u of 81 (punch %u, search %u), relay %u\n", direct, punch_cells,
	       search_cells, relay);
	assert_int_equal(direct, 77);
	assert_int_equal(relay, 4);
	/* Punching alone reaches what the reference system reached. */
	assert_int_equal(punch_cells, 57);
}

static void test_blocked_public_and_mapped(void **state)
{
	struct nat_class blocked = {.udp = false}, hard = {.udp = true, .mapping = NAT_MAP_ADPM,
							   .filtering = NAT_FILTER_ADPF};
	struct nat_class pub = {.udp = true, .public_address = true}, mapped = hard;
	struct plan p;

	traversal_plan(&blocked, &hard, true, &p);
	assert_int_equal(p.kind, PLAN_RELAY);
	assert_non_null(strstr(p.reason, "UDP is blocked here"));
	traversal_plan(&hard, &hard, true, &p);
	assert_int_equal(p.kind, PLAN_RELAY);
	assert_non_null(strstr(p.reason, "both NATs"));
	/* A public address, or a port mapping, makes even the hardest NAT easy. */
	traversal_plan(&hard, &pub, true, &p);
	assert_int_equal(p.kind, PLAN_PUNCH);
	mapped.port_mapped = true;
	traversal_plan(&hard, &mapped, true, &p);
	assert_int_equal(p.kind, PLAN_PUNCH);
	/* Not knowing is no reason to give up: punch, then relay. */
	struct nat_class unknown = {.udp = true};
	traversal_plan(&hard, &unknown, true, &p);
	assert_int_equal(p.kind, PLAN_PUNCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plans_agree_with_the_model),
		cmocka_unit_test(test_blocked_public_and_mapped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
