/* SPDX-License-Identifier: MIT */
/*
 * Port mapping: asks the local gateway to forward one UDP port from its
 * public side to ours, by PCP (RFC 6887, our own client: portmap/pcp.h),
 * NAT-PMP (RFC 6886, libnatpmp) or UPnP-IGD (miniupnpc), keeps the mapping
 * alive by renewing it at half its lifetime, and deletes it when freed.
 * The mapped external address:port is an endpoint candidate for peers.
 *
 * Everything runs on the caller's event loop and never blocks it, except
 * for UPnP: miniupnpc's HTTP calls block, so they run on one small worker
 * thread per portmap whose results come back to the loop through an eventfd
 * registered on it (what an ev_wakeup is, but removable: a portmap may be
 * freed long before its loop).
 *
 * The only host ever contacted is the IPv4 default route's gateway of the
 * network namespace the process runs in (/proc/net/route): PCP and NAT-PMP
 * on its UDP port 5351, an SSDP search sent to it by unicast (port 1900),
 * and HTTP only to URLs whose host is that gateway's literal address.
 * Every exchange is bounded: 4 tries, 250 ms doubling (gives up after
 * 3.75 s), an SSDP search of 1.5 s, miniupnpc's 3 s socket timeouts.
 */
#ifndef KNIT_PORTMAP_PORTMAP_H
#define KNIT_PORTMAP_PORTMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "lib/evloop.h"

struct portmap;

struct portmap_ops {
	/*
	 * The mapping was obtained, or its external address:port changed
	 * (external set), or it was lost and could not be renewed (external
	 * NULL).  protocol: "pcp", "nat-pmp" or "upnp".  Never called from
	 * portmap_free().  Renewals that keep the same address do not call it.
	 */
	void (*changed)(void *arg, const union sockaddr_inet *external, const char *protocol);
	/* Optional: every protocol's probe has answered (yes or no), so
	 * portmap_offered() is final for this round. */
	void (*probed)(void *arg);
};

/* Protocols, in the order they are preferred. */
#define PORTMAP_PCP    0x1u
#define PORTMAP_NATPMP 0x2u
#define PORTMAP_UPNP   0x4u
#define PORTMAP_ALL    (PORTMAP_PCP | PORTMAP_NATPMP | PORTMAP_UPNP)
/* Probe only, map with nothing (what `knit netcheck` needs). */
#define PORTMAP_PROBE_ONLY 0x8u

#define PORTMAP_DEFAULT_LIFETIME 7200 /* seconds: RFC 6886's recommendation */

struct portmap_config {
	uint16_t internal_port; /* our UDP port (knitd's socket) */
	uint32_t lifetime;	/* requested, seconds; 0: PORTMAP_DEFAULT_LIFETIME */
	unsigned protocols;	/* PORTMAP_* that may be used for the mapping; 0: all */
};

/*
 * Starts probing (PCP, NAT-PMP and UPnP at once) and maps with the first
 * that works in the order PCP, then NAT-PMP, then UPnP.  When nothing works,
 * or a mapping is lost, it tries again later (30 s doubling up to 10 min).
 * Must be called on the loop's thread.  Returns 0 or -errno.
 */
int portmap_new(struct portmap **out, struct evloop *loop, uint16_t internal_port,
		const struct portmap_ops *ops, void *arg);
int portmap_new_config(struct portmap **out, struct evloop *loop,
		       const struct portmap_config *config, const struct portmap_ops *ops,
		       void *arg);
/* Deletes the mapping at the gateway (waits 1 s at most) and frees. */
void portmap_free(struct portmap *pm);
/*
 * The network changed (an address or the default route): forget the
 * mapping without deleting it (the old gateway may be out of reach; the
 * mapping expires there), report it lost if there was one, probe again now.
 */
void portmap_restart(struct portmap *pm);
/* The mapping in force, if any; protocol may be NULL. */
bool portmap_current(const struct portmap *pm, union sockaddr_inet *external,
		     const char **protocol);
/* What the gateway offers, as far as the probes have answered. */
void portmap_offered(const struct portmap *pm, bool *pcp, bool *natpmp, bool *upnp);

#endif
