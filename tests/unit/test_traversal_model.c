// SPDX-License-Identifier: MIT
/*
 * src/traversal/plan.c against a model of NATs: every ordered pair of the
 * 9 RFC 4787 kinds (mapping EIM/ADM/ADPM x filtering EIF/ADF/ADPF),
 * thousands of random seeds, under two port allocations:
 *   - random: a new mapping's port at random over the whole range;
 *   - the seed's ADM (lab/lib/nat.sh, alloc=range): towards destination
 *     address a.b.c.X, ports 40000 + 100X .. 40000 + 100X + 99, a random one
 *     inside (ADM only; EIM and ADPM stay random).
 * Each side's class is what netcheck would report: the window comes from
 * the real nc_classify_window over sixteen model sockets asking the relay's
 * two STUN addresses.  For each pair the model runs hole punching and the
 * search the real traversal_plan describes, its probes aimed by the real
 * search_probe (what search.c sends), 25 ms ticks for 15 s, and checks that
 * the plan is right: punching when punching works, a search when (and only
 * when) a search within budget works, the relay when nothing can (2,000
 * seeds a pair).  The result must be the feasibility table: random 77 of 81,
 * the seed's ADM 80 of 81, plain punching 57 in both.
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

#include <cmocka.h>

#include "netcheck/classify.h"
#include "traversal/plan.h"

#define MAX_MAPS 16384
#define CT_SLOTS (1 << 16) /* open addressing, a power of two */
#define PORTS	 65536
#define SEEDS	 2000

enum alloc_kind { ALLOC_RANDOM, ALLOC_SEED_ADM };
#define SEED_BASE 40000 /* lab/lib/nat.sh's ADM_RANGE_BASE */

struct mapping {
	uint16_t int_port, ext_port;
};

/* Conntrack and the NAT's tables in one hash: key and kind. */
enum ct_kind {
	CT_MAP = 1, /* mapping key -> index in maps */
	CT_INT,	    /* (internal port, remote) -> external port: a flow */
	CT_EXT,	    /* (external port, remote): a flow, for ADPF */
	CT_ADDR,    /* (external port, remote address): for ADF */
};

struct ct_entry {
	uint64_t key;
	uint32_t val;
	uint8_t kind;
};

struct nat {
	enum nat_mapping mk;
	enum nat_filtering fk;
	enum alloc_kind alloc;
	uint32_t ip;
	struct mapping maps[MAX_MAPS];
	unsigned n_maps;
	uint16_t by_ext[PORTS]; /* ext port -> mapping index + 1 */
	struct ct_entry ct[CT_SLOTS];
	uint32_t ct_used[CT_SLOTS];
	unsigned n_ct;
	uint64_t *rng;
};

static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

static uint64_t key3(uint16_t port, uint32_t ip, uint16_t rport)
{
	return (uint64_t)port | (uint64_t)ip << 16 | (uint64_t)rport << 48;
}

static struct ct_entry *ct_slot(struct nat *n, enum ct_kind kind, uint64_t key, bool *found)
{
	uint64_t h = (key ^ (uint64_t)kind * 0x9e3779b97f4a7c15ULL) * 0xff51afd7ed558ccdULL;
	unsigned i = (unsigned)(h >> 40) & (CT_SLOTS - 1);

	for (; n->ct[i].kind; i = (i + 1) & (CT_SLOTS - 1)) {
		if (n->ct[i].kind == kind && n->ct[i].key == key) {
			*found = true;
			return &n->ct[i];
		}
	}
	*found = false;
	return n->n_ct < CT_SLOTS / 2 ? &n->ct[i] : NULL;
}

static struct ct_entry *ct_find(struct nat *n, enum ct_kind kind, uint64_t key)
{
	bool found;
	struct ct_entry *e = ct_slot(n, kind, key, &found);

	return found ? e : NULL;
}

static void ct_put(struct nat *n, enum ct_kind kind, uint64_t key, uint32_t val)
{
	bool found;
	struct ct_entry *e = ct_slot(n, kind, key, &found);

	if (!e)
		return; /* full: the model's budget is far below */
	if (!found) {
		*e = (struct ct_entry){.key = key, .kind = kind};
		n->ct_used[n->n_ct++] = (uint32_t)(e - n->ct);
	}
	e->val = val;
}

static void nat_init(struct nat *n, enum nat_mapping mk, enum nat_filtering fk,
		     enum alloc_kind alloc, uint32_t ip, uint64_t *rng)
{
	for (unsigned i = 0; i < n->n_maps; i++)
		n->by_ext[n->maps[i].ext_port] = 0;
	for (unsigned i = 0; i < n->n_ct; i++)
		n->ct[n->ct_used[i]].kind = 0;
	n->n_maps = n->n_ct = 0;
	n->mk = mk, n->fk = fk, n->ip = ip, n->rng = rng;
	n->alloc = mk == NAT_MAP_ADM ? alloc : ALLOC_RANDOM;
}

static uint64_t map_key(const struct nat *n, uint16_t int_port, uint32_t dip, uint16_t dport)
{
	if (n->mk == NAT_MAP_EIM)
		return key3(int_port, 0, 0);
	if (n->mk == NAT_MAP_ADM)
		return key3(int_port, dip, 0);
	return key3(int_port, dip, dport);
}

/* A free external port for a new mapping towards dip, or -1. */
static int allocate(struct nat *n, uint32_t dip)
{
	if (n->alloc == ALLOC_SEED_ADM) {
		/* Linux's nf_nat: a random offset in the range, then the next
		 * free one. */
		unsigned base = SEED_BASE + 100 * (dip & 0xff), off = rnd(n->rng) % 100;
		for (unsigned i = 0; i < 100; i++) {
			unsigned p = base + (off + i) % 100;
			if (!n->by_ext[p])
				return (int)p;
		}
		return -1;
	}
	for (;;) {
		uint16_t p = (uint16_t)(1024 + rnd(n->rng) % (PORTS - 1024));
		if (!n->by_ext[p])
			return p;
	}
}

static void flow(struct nat *n, uint16_t int_port, uint16_t ext, uint32_t ip, uint16_t port)
{
	ct_put(n, CT_INT, key3(int_port, ip, port), ext);
	ct_put(n, CT_EXT, key3(ext, ip, port), 1);
	ct_put(n, CT_ADDR, key3(ext, ip, 0), 1);
}

/* Outbound from int_port to dip:dport (a reply too: a flow that exists
 * leaves as it came in): the external port it leaves from, -1 if dropped. */
static int nat_out(struct nat *n, uint16_t int_port, uint32_t dip, uint16_t dport)
{
	struct ct_entry *e = ct_find(n, CT_INT, key3(int_port, dip, dport));
	uint64_t mk = map_key(n, int_port, dip, dport);
	int ext;

	if (e)
		return (int)e->val;
	if ((e = ct_find(n, CT_MAP, mk))) {
		ext = n->maps[e->val].ext_port;
	} else {
		if (n->n_maps == MAX_MAPS || (ext = allocate(n, dip)) < 0)
			return -1;
		n->maps[n->n_maps] =
			(struct mapping){.int_port = int_port, .ext_port = (uint16_t)ext};
		ct_put(n, CT_MAP, mk, n->n_maps);
		n->by_ext[ext] = (uint16_t)++n->n_maps;
	}
	flow(n, int_port, (uint16_t)ext, dip, dport);
	return ext;
}

/* Inbound to ext_port from sip:sport: the internal port, or -1 when
 * dropped.  An accepted packet opens a flow: replies leave the same way. */
static int nat_in(struct nat *n, uint16_t ext_port, uint32_t sip, uint16_t sport)
{
	const struct mapping *m;
	bool ok;

	if (!n->by_ext[ext_port])
		return -1;
	m = &n->maps[n->by_ext[ext_port] - 1];
	ok = n->fk == NAT_FILTER_EIF || ct_find(n, CT_EXT, key3(ext_port, sip, sport)) ||
	     (n->fk == NAT_FILTER_ADF && ct_find(n, CT_ADDR, key3(ext_port, sip, 0)));
	if (!ok)
		return -1;
	flow(n, m->int_port, ext_port, sip, sport);
	return m->int_port;
}

/* The lab's addresses: the relay's STUN on .2:3478 and its alternate on
 * .5:3479, the two routers' public addresses .11 and .12. */
#define NET	    0xc6336400u /* 198.51.100.0 */
#define STUN1_IP    (NET | 2)
#define STUN1_PORT  3478
#define STUN2_IP    (NET | 5)
#define STUN2_PORT  3479
#define MAIN_PORT   41641
#define OWN_PORT    20000 /* a search's own sockets: 20000, 20001, ... */
#define CHECK_PORT  30000 /* netcheck's window sockets */
#define WIN_SOCKETS 16

/* What netcheck reports of this NAT: its kind, its address, and the window
 * measured as knitd's netcheck does it. */
static struct nat_class netcheck(struct nat *n)
{
	struct nat_class c = {.udp = true, .mapping = n->mk, .filtering = n->fk, .addr_v4 = n->ip};
	struct nc_observation obs[2 * WIN_SOCKETS];
	size_t k = 0;

	for (unsigned i = 0; i < WIN_SOCKETS; i++) {
		for (int j = 0; j < 2; j++) {
			uint32_t ip = j ? STUN2_IP : STUN1_IP;
			uint16_t port = j ? STUN2_PORT : STUN1_PORT;
			int ext = nat_out(n, (uint16_t)(CHECK_PORT + i), ip, port);
			if (ext < 0)
				continue;
			obs[k].dst.in = (struct sockaddr_in){.sin_family = AF_INET,
							     .sin_addr.s_addr = htonl(ip),
							     .sin_port = htons(port)};
			obs[k++].mapped.in = (struct sockaddr_in){.sin_family = AF_INET,
								  .sin_addr.s_addr = htonl(n->ip),
								  .sin_port = htons((uint16_t)ext)};
		}
	}
	nc_classify_window(obs, k, &c.window);
	return c;
}

/* One packet from x's int_port to y's port: true when it gets in and the
 * answer (from where it landed, to where it came from) gets back. */
static bool deliver(struct nat *x, uint16_t int_port, struct nat *y, uint16_t port)
{
	int out = nat_out(x, int_port, y->ip, port), in, back;

	if (out < 0 || (in = nat_in(y, port, x->ip, (uint16_t)out)) < 0)
		return false;
	back = nat_out(y, (uint16_t)in, x->ip, (uint16_t)out);
	return back >= 0 && nat_in(x, (uint16_t)out, y->ip, (uint16_t)back) >= 0;
}

/* Hole punching as the path manager does it: each side pings the other's
 * STUN-observed address a dozen times. */
static bool punch(struct nat *a, struct nat *b)
{
	int sa = nat_out(a, MAIN_PORT, STUN1_IP, STUN1_PORT);
	int sb = nat_out(b, MAIN_PORT, STUN1_IP, STUN1_PORT);

	for (int round = 0; round < 12; round++)
		if (deliver(a, MAIN_PORT, b, (uint16_t)sb) ||
		    deliver(b, MAIN_PORT, a, (uint16_t)sa))
			return true;
	return false;
}

struct side {
	struct nat *nat, *peer;
	struct plan plan;
	uint16_t known; /* the peer's STUN-observed port */
	unsigned sent;
};

#define TICK_MS	       25
#define REOPEN_MS      2000
#define SPRAY_DELAY_MS 300

/* search.c's tick for one side at ms since the start; true on a hit. */
static bool side_tick(struct side *s, unsigned ms, uint64_t *rng)
{
	const struct plan *p = &s->plan;
	unsigned since, due;

	if (p->role == SEARCH_OPEN) {
		if (ms % REOPEN_MS)
			return false;
		for (unsigned i = 0; i < p->sockets; i++)
			if (deliver(s->nat, (uint16_t)(OWN_PORT + i), s->peer, s->known))
				return true;
		return false;
	}
	if (p->role == SEARCH_SPRAY && ms < SPRAY_DELAY_MS)
		return false;
	since = p->role == SEARCH_SPRAY ? ms - SPRAY_DELAY_MS : ms;
	due = p->rate * since / 1000 + 1;
	for (; s->sent < due && s->sent < p->probes; s->sent++) {
		unsigned sock;
		uint16_t port = search_probe(p, s->sent, rnd(rng), &sock);
		uint16_t from =
			p->role == SEARCH_OPEN_SWEEP ? (uint16_t)(OWN_PORT + sock) : MAIN_PORT;
		if (deliver(s->nat, from, s->peer, port))
			return true;
	}
	return false;
}

/* Both sides search at once, each as its plan says; the time of the first
 * hit in ms, or -1 when nothing within PLAN_SEARCH_SECONDS. */
static int search(struct nat *a, const struct plan *pa, struct nat *b, const struct plan *pb,
		  uint64_t *rng)
{
	struct side sa = {.nat = a, .peer = b, .plan = *pa},
		    sb = {.nat = b, .peer = a, .plan = *pb};

	sa.known = (uint16_t)nat_out(b, MAIN_PORT, STUN1_IP, STUN1_PORT);
	sb.known = (uint16_t)nat_out(a, MAIN_PORT, STUN1_IP, STUN1_PORT);
	for (unsigned ms = 0; ms <= PLAN_SEARCH_SECONDS * 1000; ms += TICK_MS) {
		/* Who goes first in a tick alternates: neither is always late. */
		struct side *first = (ms / TICK_MS) % 2 ? &sb : &sa,
			    *second = first == &sa ? &sb : &sa;
		if (side_tick(first, ms, rng) || side_tick(second, ms, rng))
			return (int)ms;
	}
	return -1;
}

static const enum nat_mapping maps[] = {NAT_MAP_EIM, NAT_MAP_ADM, NAT_MAP_ADPM};
static const enum nat_filtering filters[] = {NAT_FILTER_EIF, NAT_FILTER_ADF, NAT_FILTER_ADPF};
static const char *const role_names[] = {"open", "spray", "sweep", "open-sweep"};

static struct nat A, B;

/* The classic roles, whatever the classes: x opens, y sprays at random over
 * the whole range; or both spray the whole range with the window budget. */
static struct plan classic(bool open)
{
	return (struct plan){.kind = PLAN_SEARCH,
			     .i_open = open,
			     .role = open ? SEARCH_OPEN : SEARCH_SPRAY,
			     .lo = 1024,
			     .n = 65536 - 1024,
			     .sockets = open ? PLAN_SEARCH_SOCKETS : 0,
			     .probes = PLAN_SEARCH_PROBES,
			     .rate = PLAN_SEARCH_RATE};
}

static struct plan wide_spray(void)
{
	struct plan p = classic(false);

	p.probes = PLAN_WINDOW_PROBES, p.rate = PLAN_WINDOW_RATE;
	return p;
}

enum strategy { ST_PUNCH, ST_PLAN, ST_A_OPENS, ST_B_OPENS, ST_BOTH_SPRAY };

struct cell {
	unsigned ok, plan_changed, ms[SEEDS];
	struct plan pa, pb;
};

static int cmp_unsigned(const void *x, const void *y)
{
	unsigned a = *(const unsigned *)x, b = *(const unsigned *)y;

	return a < b ? -1 : a > b;
}

/* Runs one strategy over the seeds: how many succeeded (times in c->ms).
 * Each seed's classes come from the model netcheck, and its plans from the
 * real traversal_plan. */
static void trials(int i, int j, enum alloc_kind alloc, enum strategy st, struct cell *c)
{
	c->ok = c->plan_changed = 0;
	for (unsigned s = 1; s <= SEEDS; s++) {
		uint64_t rng = 0x9e3779b97f4a7c15ULL * s + (uint64_t)st * 7 + alloc;
		struct nat_class ca, cb;
		struct plan pa, pb, x, y;
		int ms = -1;

		nat_init(&A, maps[i / 3], filters[i % 3], alloc, NET | 11, &rng);
		nat_init(&B, maps[j / 3], filters[j % 3], alloc, NET | 12, &rng);
		ca = netcheck(&A);
		cb = netcheck(&B);
		traversal_plan(&ca, &cb, true, &pa);
		traversal_plan(&cb, &ca, false, &pb);
		if (s == 1)
			c->pa = pa, c->pb = pb;
		c->plan_changed +=
			memcmp(&pa, &c->pa, sizeof(pa)) || memcmp(&pb, &c->pb, sizeof(pb));
		switch (st) {
		case ST_PUNCH:
			ms = punch(&A, &B) ? 0 : -1;
			break;
		case ST_PLAN:
			ms = search(&A, &pa, &B, &pb, &rng);
			break;
		case ST_A_OPENS:
		case ST_B_OPENS:
			x = classic(st == ST_A_OPENS), y = classic(st != ST_A_OPENS);
			ms = search(&A, &x, &B, &y, &rng);
			break;
		case ST_BOTH_SPRAY:
			x = wide_spray(), y = wide_spray();
			ms = search(&A, &x, &B, &y, &rng);
			break;
		}
		if (ms >= 0)
			c->ms[c->ok++] = (unsigned)ms;
	}
	qsort(c->ms, c->ok, sizeof(c->ms[0]), cmp_unsigned);
}

static const char *kind_name(enum plan_kind k)
{
	return k == PLAN_PUNCH ? "punch" : k == PLAN_SEARCH ? "search" : "relay";
}

/* The 9x9 table under one allocation: the direct and punch-only counts. */
static void matrix(enum alloc_kind alloc, unsigned *direct, unsigned *punch_cells)
{
	static struct cell punch_c, plan_c, other;
	unsigned relay = 0, search_cells = 0;

	*direct = *punch_cells = 0;
	for (int i = 0; i < 9; i++) {
		for (int j = 0; j < 9; j++) {
			const struct plan *pa = &punch_c.pa, *pb = &punch_c.pb;
			char a[16], b[16];

			trials(i, j, alloc, ST_PUNCH, &punch_c);
			snprintf(a, sizeof(a), "%s-%s", nat_mapping_name(maps[i / 3]),
				 nat_filtering_name(filters[i % 3]));
			snprintf(b, sizeof(b), "%s-%s", nat_mapping_name(maps[j / 3]),
				 nat_filtering_name(filters[j % 3]));
			/* Every seed's classes give the same plan, and both
			 * sides agree on what to do and on their roles. */
			assert_int_equal(punch_c.plan_changed, 0);
			assert_int_equal(pa->kind, pb->kind);
			printf("%-9s x %-9s: plan %-6s punch %4u/%u", a, b, kind_name(pa->kind),
			       punch_c.ok, SEEDS);
			switch (pa->kind) {
			case PLAN_PUNCH:
				assert_int_equal(punch_c.ok, SEEDS); /* always */
				(*punch_cells)++;
				printf("\n");
				break;
			case PLAN_SEARCH:
				if (pa->role == SEARCH_SWEEP)
					assert_int_equal(pb->role, SEARCH_SWEEP);
				else
					assert_true(pa->i_open != pb->i_open);
				trials(i, j, alloc, ST_PLAN, &plan_c);
				printf(", search %s/%s %4u/%u, ms median %u worst %u\n",
				       role_names[pa->role], role_names[pb->role], plan_c.ok, SEEDS,
				       plan_c.ok ? plan_c.ms[plan_c.ok / 2] : 0,
				       plan_c.ok ? plan_c.ms[plan_c.ok - 1] : 0);
				/* Punching is not enough, the planned search is
				 * (>= 97 % within the budget). */
				assert_true(punch_c.ok < SEEDS / 10);
				assert_true(plan_c.ok >= SEEDS * 97 / 100);
				search_cells++;
				break;
			case PLAN_RELAY: {
				/* Nothing works within any budget: punching, either
				 * classic search, both spraying the wide budget. */
				unsigned sum = punch_c.ok;
				for (enum strategy st = ST_A_OPENS; st <= ST_BOTH_SPRAY; st++) {
					trials(i, j, alloc, st, &other);
					sum += other.ok;
				}
				printf(", anything %u/%u\n", sum, SEEDS);
				assert_true(sum <= SEEDS / 50);
				relay++;
				break;
			}
			}
			*direct += pa->kind != PLAN_RELAY;
		}
	}
	printf("%s: direct %u of 81 (punch %u, search %u), relay %u\n",
	       alloc == ALLOC_RANDOM ? "random" : "seed ADM", *direct, *punch_cells, search_cells,
	       relay);
}

static void test_random_allocation(void **state)
{
	unsigned direct, punch_cells;

	matrix(ALLOC_RANDOM, &direct, &punch_cells);
	assert_int_equal(direct, 77);
	/* Punching alone reaches what the reference system reached. */
	assert_int_equal(punch_cells, 57);
}

static void test_seed_adm_allocation(void **state)
{
	unsigned direct, punch_cells;

	matrix(ALLOC_SEED_ADM, &direct, &punch_cells);
	/* Only ADPM-ADPF with itself stays on the relay. */
	assert_int_equal(direct, 80);
	assert_int_equal(punch_cells, 57);
}

/* The model netcheck of a seed ADM finds its 100-port window, and the rule
 * predicts the window towards a peer's address; random ports have none. */
static void test_model_windows(void **state)
{
	uint64_t rng = 42;
	struct nat_class c;
	uint16_t start;

	nat_init(&A, NAT_MAP_ADM, NAT_FILTER_ADPF, ALLOC_SEED_ADM, NET | 11, &rng);
	c = netcheck(&A);
	assert_int_equal(c.window.width, 100);
	assert_true(c.window.aligned);
	assert_int_equal(nat_window_start(&c.window, NET | 12, &start), 0);
	assert_int_equal(start, SEED_BASE + 100 * 12);
	assert_int_equal(nat_window_start(&c.window, NET | 254, &start), 0);
	assert_int_equal(start, SEED_BASE + 100 * 254);
	nat_init(&A, NAT_MAP_ADM, NAT_FILTER_ADPF, ALLOC_RANDOM, NET | 11, &rng);
	c = netcheck(&A);
	assert_int_equal(c.window.width, 0);
	assert_int_equal(nat_window_start(&c.window, NET | 12, &start), -ENOENT);
}

static void test_blocked_public_and_mapped(void **state)
{
	struct nat_class blocked = {.udp = false}, hard = {.udp = true,
							   .mapping = NAT_MAP_ADPM,
							   .filtering = NAT_FILTER_ADPF};
	struct nat_class pub = {.udp = true, .public_address = true}, mapped = hard;
	struct nat_class win = {.udp = true,
				.mapping = NAT_MAP_ADM,
				.filtering = NAT_FILTER_ADPF,
				.window = {.width = 100,
					   .aligned = true,
					   .addr = {NET | 2, NET | 5},
					   .start = {40200, 40500}},
				.addr_v4 = NET | 11};
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
	/* A windowed ADM facing the hardest NAT: the hard side aims many
	 * sockets at the window towards its own address (.12 here). */
	hard.addr_v4 = NET | 12;
	traversal_plan(&hard, &win, true, &p);
	assert_int_equal(p.kind, PLAN_SEARCH);
	assert_int_equal(p.role, SEARCH_OPEN_SWEEP);
	assert_int_equal(p.lo, 41200);
	assert_int_equal(p.n, 100);
	assert_int_equal(p.sockets * p.n, p.probes);
	assert_true(p.probes <= PLAN_WINDOW_PROBES && p.sockets <= PLAN_SEARCH_SOCKETS);
	assert_non_null(strstr(p.reason, "window"));
	traversal_plan(&win, &hard, false, &p);
	assert_int_equal(p.role, SEARCH_SPRAY);
	assert_int_equal(p.n, 65536 - 1024);
	/* Without its own address a node cannot place the peer's window. */
	hard.addr_v4 = 0;
	traversal_plan(&hard, &win, true, &p);
	assert_int_equal(p.kind, PLAN_RELAY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_windows),
		cmocka_unit_test(test_blocked_public_and_mapped),
		cmocka_unit_test(test_random_allocation),
		cmocka_unit_test(test_seed_adm_allocation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
