/* SPDX-License-Identifier: MIT */
/*
 * knitd's netcheck: what the network in front of this node does, measured
 * against the relays' STUN servers (RFC 5780 method, netcheck/'s decisions).
 *
 *   - UDP reachable, over IPv4 and/or IPv6; the address the relays see;
 *   - mapping behaviour (EIM/ADM/ADPM) of the node's OWN UDP socket, the one
 *     WireGuard, disco and STUN share and that peers punch: its requests go
 *     out through device_send_aside() and the answers come back through the
 *     device's aside queue to netcheck_stun_input();
 *   - filtering (EIF/ADF/ADPF), from two fresh sockets of its own that ask a
 *     relay with an RFC 5780 alternate (knit-relay --stun-alt) to answer
 *     from its other address and/or port; "unknown" without such a relay;
 *   - port allocation (preserving/sequential/random), from 8 sockets of its
 *     own on consecutive local ports; hairpinning, from 2 more;
 *   - latency to each relay (one STUN round trip), the home relay;
 *   - port-mapping protocols the gateway offers (src/portmap: the portmap
 *     given with netcheck_set_portmap(), or a probe-only one of its own).
 *
 * A check takes two rounds of probes, each bounded by NETCHECK_PROBE_MS
 * (8 tries each): about 1 s when some answer is meant not to come (a NAT
 * that filters), a few milliseconds more otherwise.  It runs when the relay
 * map arrives or changes, every NETCHECK_INTERVAL_S, and on `knit netcheck`.
 * The result's nat (traversal/plan.h) is what peers plan with: ops.changed
 * reports it whenever it differs from the last one reported.
 *
 * Every function but netcheck_new takes a NULL netcheck (none started) and
 * does nothing (netcheck_api answers an error).
 *
 * Everything runs on the event loop.  Answers are untrusted datagrams: the
 * probe engine parses them with the bounds-checked codec and accepts only
 * answers to its own transaction ids, from the expected source.
 */
#ifndef KNIT_KNITD_NETCHECK_H
#define KNIT_KNITD_NETCHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/netmap.h"
#include "knitd/api.h"
#include "lib/addr.h"
#include "lib/evloop.h"
#include "netcheck/classify.h"
#include "traversal/plan.h"
#include "wg/device.h"

#define NETCHECK_INTERVAL_S	 300
#define NETCHECK_PROBE_MS	 1000 /* one round of probes, all tries */
#define NETCHECK_API_WAIT_MS	 5000 /* `knit netcheck` waits this long at most */
#define NETCHECK_MAX_RELAYS	 16   /* relays probed (the first of the map) */
#define NETCHECK_ALLOC_SOCKETS	 8
#define NETCHECK_MAX_WAITERS	 16
#define NETCHECK_RELAYS_DELAY_MS 200 /* a map may come in several messages */

struct portmap;
struct netcheck;

struct netcheck_relay_result {
	int id;
	char region[NETMAP_NAME_LEN];
	uint64_t rtt_v4_ns, rtt_v6_ns; /* one STUN round trip; 0: no answer */
	bool rfc5780;		       /* answered with OTHER-ADDRESS */
};

struct netcheck_result {
	bool valid; /* a check has completed */
	uint64_t at_wall_ns, duration_ns;
	bool udp, ipv4, ipv6; /* a relay answered at all, over IPv4, over IPv6 */
	union sockaddr_inet mapped_v4, mapped_v6; /* as the relays saw us; family 0: none */
	int family; /* of the classification below: AF_INET, or AF_INET6 without IPv4 */
	enum nc_mapping mapping;
	enum nc_filtering filtering; /* UNKNOWN without a relay with an alternate */
	enum nc_allocation allocation;
	enum nc_tristate hairpin;
	bool public_address; /* the mapped address is one of this host's */
	bool portmap_known;  /* the gateway's answers are in */
	bool pcp, natpmp, upnp;
	int home_relay; /* 0: none */
	struct netcheck_relay_result relays[NETCHECK_MAX_RELAYS];
	unsigned n_relays;
	/* What peers plan with (sent to control as "nat"). */
	struct nat_class nat;
};

struct netcheck_ops {
	/* The result of a check differs from the last one reported in what
	 * peers need (nat) or in udp/ipv4/ipv6/hairpin/allocation/port
	 * mapping.  Latency alone does not call it.  May be NULL. */
	void (*changed)(void *arg, const struct netcheck_result *r);
	/* The home relay as the relay manager chose it; NULL: the lowest
	 * latency of this check. */
	int (*home_relay)(void *arg);
	void *arg;
};

/* ops is copied. 0 or -errno. */
int netcheck_new(struct netcheck **out, struct evloop *loop, struct wg_device *dev,
		 const struct netcheck_ops *ops);
/* Answers every waiting `knit netcheck` with an error, closes its sockets. */
void netcheck_free(struct netcheck *nc);
/* The relay map (control's); a check follows shortly when it changed. */
void netcheck_set_relays(struct netcheck *nc, const struct netmap_relay *map, unsigned n);
/* The node's own portmap (it maps and renews), whose offers and mapping the
 * result reports; without one netcheck probes with one of its own.  NULL
 * takes it back (call before freeing it). */
void netcheck_set_portmap(struct netcheck *nc, struct portmap *pm);
/* Starts a check now (one runs already: another follows it).  0, or
 * -ENOENT without relays. */
int netcheck_run(struct netcheck *nc);
/* The last completed check (valid false before the first). */
const struct netcheck_result *netcheck_result(const struct netcheck *nc);
/* A STUN datagram from the node's UDP socket (the aside queue): true when it
 * answered one of netcheck's probes and was consumed; false leaves it to
 * the next owner (relays_stun_input). */
bool netcheck_stun_input(struct netcheck *nc, const uint8_t *pkt, size_t len,
			 const union sockaddr_inet *src);
/* `knit netcheck`: runs a check and answers c with its result when done
 * ({"ok": true, ...netcheck_result_json...}), or after NETCHECK_API_WAIT_MS
 * with the last result marked "stale": true (an error if there is none). */
void netcheck_api(struct netcheck *nc, struct api_conn *c);
/* c went away before its answer (api_ops.gone). */
void netcheck_api_gone(struct netcheck *nc, struct api_conn *c);
/* The result as `knit netcheck --json` prints it. */
json_t *netcheck_result_json(const struct netcheck_result *r);

#endif
