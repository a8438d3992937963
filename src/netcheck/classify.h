/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (RFC 4787 terms, RFC 5780 method): the decisions,
 * as pure functions of what the probes observed.  No sockets, no clock:
 * the probe engine (netcheck/probe.h) gathers the observations, natprobe and
 * knitd's netcheck feed them here, and the unit tests feed made-up ones.
 * What peers learn of a node's NAT (traversal/plan.h's struct nat_class,
 * sent through control) is made from these by knitd's netcheck.
 */
#ifndef KNIT_NETCHECK_CLASSIFY_H
#define KNIT_NETCHECK_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"
#include "traversal/plan.h"

/* Mapping: does the external address:port of one internal socket change with
 * the destination? */
enum nc_mapping {
	NC_MAPPING_UNKNOWN = 0,
	NC_MAPPING_EIM,	   /* endpoint-independent */
	NC_MAPPING_ADM,	   /* address-dependent */
	NC_MAPPING_ADPM,   /* address-and-port-dependent */
	NC_MAPPING_VARIES, /* depends on the destination, ADM or ADPM unknown */
};

/* Filtering: whose packets reach a mapping that was opened towards A:P? */
enum nc_filtering {
	NC_FILTERING_UNKNOWN = 0,
	NC_FILTERING_EIF,  /* anyone's */
	NC_FILTERING_ADF,  /* those from address A, any port */
	NC_FILTERING_ADPF, /* those from A:P only */
};

/* Port allocation: how the NAT picks the external port of a new mapping. */
enum nc_allocation {
	NC_ALLOCATION_UNKNOWN = 0,
	NC_ALLOCATION_PRESERVING, /* external port = internal port */
	NC_ALLOCATION_SEQUENTIAL, /* small steps up, one mapping after another */
	NC_ALLOCATION_RANDOM,
};

/* Hairpinning, and any other yes/no that a check may not have settled. */
enum nc_tristate { NC_UNKNOWN = 0, NC_NO, NC_YES };

/* One STUN answer: the request went to dst, the server saw it from mapped. */
struct nc_observation {
	union sockaddr_inet dst;
	union sockaddr_inet mapped;
};

/* Steps of more than this between consecutive external ports are not
 * "sequential". */
#define NC_SEQ_MAX_STEP 16

/*
 * Mapping behaviour from the answers to requests sent from ONE local socket
 * to several destinations (of one family):
 *   - two destinations of one address and different ports saw different
 *     mapped addresses: ADPM;
 *   - else two destinations of different addresses saw different ones: ADM
 *     when some pair of one address and different ports agreed (so the port
 *     does not matter), else VARIES (ADM or ADPM: cannot tell);
 *   - else all agree: EIM when at least two destination addresses were
 *     asked, else UNKNOWN (one address says nothing about address
 *     dependence).
 * RFC 5780's test is the case {A1:P1, A2:P1, A2:P2}.
 */
enum nc_mapping nc_classify_mapping(const struct nc_observation *obs, size_t n);

/*
 * Filtering behaviour from two fresh sockets that each sent one request to
 * A1:P1 only: the first asked for an answer from the other address and port
 * (A2:P2), the second from the other port (A1:P2).  changed_both and
 * changed_port: whether that answer arrived.  Only meaningful when the
 * server honours CHANGE-REQUEST (its answers come from where they should).
 */
enum nc_filtering nc_classify_filtering(bool changed_both, bool changed_port);

/*
 * Port allocation from n sockets on consecutive local ports that asked one
 * server one after the other: every external port equal to its local port:
 * PRESERVING; at least n-2 of the n-1 steps between consecutive external
 * ports in 1..NC_SEQ_MAX_STEP (one step may wrap or be taken by another
 * flow): SEQUENTIAL; else RANDOM.  Fewer than 2 sockets: UNKNOWN.
 */
enum nc_allocation nc_classify_allocation(const unsigned *local, const unsigned *external,
					  size_t n);

/* Fewer answers than this towards an address say nothing of its window. */
#define NC_WINDOW_MIN_SAMPLES 6

/*
 * Windowed allocation (traversal/plan.h's nat_window) from the answers to
 * requests that several fresh sockets each sent to two or more destination
 * addresses (IPv4), e.g. the relay's primary and alternate STUN addresses.
 * Windowed when, for at least two addresses with NC_WINDOW_MIN_SAMPLES
 * answers each, every address's ports span at most NAT_WINDOW_MAX and the
 * windows of different addresses do not overlap (they move with the
 * address; a sequential allocator's interleaved ports overlap).  The width
 * is the smallest "round" width (powers of two, 1-2-2.5-5 steps of ten)
 * that holds each address's ports in one block aligned to it (aligned),
 * unless it is wider than the estimate from the span; else that estimate:
 * the span widened by the expected gap at its ends, rounded up to such a
 * width, each window centred on what was seen.  The two best
 * observed addresses become the rule's two points.  Returns true and fills
 * *out when windowed; false leaves *out zero.
 */
bool nc_classify_window(const struct nc_observation *obs, size_t n, struct nat_window *out);

/* Hairpinning: two sockets behind the NAT sent to each other's mapped
 * address; either datagram arriving means the NAT hairpins.  Both are tried
 * so that the filtering of one side does not hide it. */
enum nc_tristate nc_classify_hairpin(bool x_to_y_arrived, bool y_to_x_arrived);

/* Names as natprobe and `knit netcheck` print them: "eim", "adm", "adpm",
 * "varies", "eif", "adf", "adpf", "preserving", "sequential", "random";
 * "unknown" for UNKNOWN. */
const char *nc_mapping_name(enum nc_mapping m);
const char *nc_filtering_name(enum nc_filtering f);
const char *nc_allocation_name(enum nc_allocation a);
#endif
