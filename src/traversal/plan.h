/* SPDX-License-Identifier: MIT */
/*
 * Which pairs of NATs can have a direct path, and how: the feasibility
 * analysis of shared/REFERENCE.md as code.  Given the NAT class of each side
 * (from netcheck, shared through control), the plan says whether plain hole
 * punching suffices, whether a birthday search can succeed (and which side
 * opens many mappings while the other sprays probes), or whether the pair
 * cannot be direct and should stay on the relay without sending a probe.
 *
 * The one fact behind it: once a NAT accepts an inbound packet on a mapping,
 * replies to that packet's source leave through the same mapping.  A packet
 * from A to B's address and port p gets in when p is one of B's mappings and
 * B's filtering is EIF, or ADF and B sent to A's address from that mapping,
 * or ADPF and B sent to exactly A's source address and port.
 */
#ifndef KNIT_TRAVERSAL_PLAN_H
#define KNIT_TRAVERSAL_PLAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nat_mapping { NAT_MAP_UNKNOWN, NAT_MAP_EIM, NAT_MAP_ADM, NAT_MAP_ADPM };
enum nat_filtering { NAT_FILTER_UNKNOWN, NAT_FILTER_EIF, NAT_FILTER_ADF, NAT_FILTER_ADPF };

/* Windows wider than this are no help: as good as random. */
#define NAT_WINDOW_MAX 512

/*
 * Windowed allocation (netcheck, netcheck/classify.h): the ports of the
 * mappings a NAT makes towards one destination address all lie in a window
 * of width ports, and the window moves with the address (the seed's ADM:
 * 100 ports per destination, a random one inside).  Two observed windows
 * (towards the relay's primary and alternate addresses) give the rule: the
 * window towards address d starts at start[0] + (d - addr[0]) *
 * (start[1] - start[0]) / (addr[1] - addr[0]), rounded to a multiple of
 * width when aligned.  width 0: no window known.
 */
struct nat_window {
	uint16_t width;
	bool aligned;	  /* windows start at multiples of width */
	uint32_t addr[2]; /* IPv4 addresses, host order */
	uint16_t start[2];
};

struct nat_class {
	bool udp;	     /* UDP reaches the relays at all */
	bool public_address; /* no NAT: an address of our own */
	bool port_mapped;    /* NAT-PMP/PCP/UPnP gave us a public port */
	enum nat_mapping mapping;
	enum nat_filtering filtering;
	struct nat_window window; /* shared through control */
	/* Our own public IPv4 address (host order) as netcheck saw it, 0:
	 * unknown.  Not shared (a peer's is its endpoint): it is where the
	 * peer's window is predicted towards. */
	uint32_t addr_v4;
};

enum plan_kind {
	PLAN_PUNCH,  /* both ping every candidate: enough */
	PLAN_SEARCH, /* a birthday search: one side opens, the other sprays */
	PLAN_RELAY,  /* no direct path can exist: don't send a probe */
};

#define PLAN_SEARCH_SOCKETS 256	 /* mappings the opening side creates */
#define PLAN_SEARCH_PROBES  2048 /* probes the spraying side sends at most */
#define PLAN_SEARCH_RATE    400	 /* probes a second */
#define PLAN_SEARCH_SECONDS 15
/* The searches between two ADPF sides (one of them windowed): each side's
 * probes, so that A's sprays times B's guesses at A's window give about
 * 5.6 expected hits over a 100-port window (99.6 %; see traversal.md). */
#define PLAN_WINDOW_PROBES 6000
#define PLAN_WINDOW_RATE   800

/* A side's part in a search. */
enum search_role {
	SEARCH_OPEN,	   /* PLAN_SEARCH_SOCKETS sockets ping the peer's known endpoint */
	SEARCH_SPRAY,	   /* the node's socket pings ports of the peer, from its range */
	SEARCH_SWEEP,	   /* the node's socket pings every port of the peer's window */
	SEARCH_OPEN_SWEEP, /* sockets of our own each ping every port of the peer's window */
};

struct plan {
	enum plan_kind kind;
	bool i_open; /* PLAN_SEARCH: I open sockets of my own (else my node's socket sends) */
	enum search_role role;
	/* Probes aim at ports lo .. lo + n - 1 of the peer's public address:
	 * the peer's predicted window towards us, or 1024..65535. */
	uint16_t lo;
	uint32_t n;
	unsigned sockets; /* of our own: SEARCH_OPEN, SEARCH_OPEN_SWEEP */
	unsigned probes;  /* at most, SEARCH_OPEN's pings aside */
	unsigned rate;	  /* probes a second */
	char reason[128];
};

/* Classes with unknown parts plan as PLAN_PUNCH (try, then relay).  A
 * window (nat_window) of the peer is predicted towards me->addr_v4.
 * i_am_lower breaks ties both sides must agree on (node key order). */
void traversal_plan(const struct nat_class *me, const struct nat_class *peer, bool i_am_lower,
		    struct plan *out);
/*
 * Probe number i (from 0) of a search under plan p: the port of the peer's
 * address it goes to, and in *sock the socket it leaves from (an index below
 * p->sockets; 0 when the node's socket sends).  r: a fresh random number.
 * search.c and the NAT model of the unit tests both aim with it.
 */
uint16_t search_probe(const struct plan *p, unsigned i, uint32_t r, unsigned *sock);
/* The first port of c's window towards addr (IPv4, host order): 0, or
 * -ENOENT without a window, -ERANGE when the prediction leaves 1..65535. */
int nat_window_start(const struct nat_window *w, uint32_t addr, uint16_t *start);
const char *nat_mapping_name(enum nat_mapping m);
const char *nat_filtering_name(enum nat_filtering f);
#endif
