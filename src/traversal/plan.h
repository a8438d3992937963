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

enum nat_mapping { NAT_MAP_UNKNOWN, NAT_MAP_EIM, NAT_MAP_ADM, NAT_MAP_ADPM };
enum nat_filtering { NAT_FILTER_UNKNOWN, NAT_FILTER_EIF, NAT_FILTER_ADF, NAT_FILTER_ADPF };

struct nat_class {
	bool udp;		  /* UDP reaches the relays at all */
	bool public_address;	  /* no NAT: an address of our own */
	bool port_mapped;	  /* NAT-PMP/PCP/UPnP gave us a public port */
	enum nat_mapping mapping;
	enum nat_filtering filtering;
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

struct plan {
	enum plan_kind kind;
	bool i_open; /* PLAN_SEARCH: I open the mappings (else I spray) */
	char reason[128];
};

/* Classes with unknown parts plan as PLAN_PUNCH (try, then relay).
 * i_am_lower breaks ties both sides must agree on (node key order). */
void traversal_plan(const struct nat_class *me, const struct nat_class *peer, bool i_am_lower,
		    struct plan *out);
const char *nat_mapping_name(enum nat_mapping m);
const char *nat_filtering_name(enum nat_filtering f);
#endif
