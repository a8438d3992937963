// SPDX-License-Identifier: MIT
/*
 * knitd's netcheck (see netcheck.h).  A check is two rounds of probes on
 * netcheck/probe's engine:
 *
 *   1. From the node's socket, a Binding request to every relay's STUN
 *      server (IPv4 and IPv6 where the host resolves): reachability,
 *      latency, the mapped address, which relays are RFC 5780 servers.  At
 *      the same time two hairpin sockets of ours ask the first relay, to
 *      learn their mapped addresses.
 *   2. Against the first relay that answered with OTHER-ADDRESS (its
 *      alternate A2:P2; the map's stun_alt when given, since a relay behind
 *      a 1:1 NAT only knows its private addresses): the node's socket asks
 *      A2:P1 and A2:P2 (mapping); two fresh sockets ask A1:P1 to answer
 *      from A2:P2 and from A1:P2 (filtering); eight sockets on consecutive
 *      ports ask A1:P1 one after the other (allocation); sixteen fresh
 *      sockets each ask A1:P1 and A2:P1 at once (windowed allocation: do
 *      the ports towards one address stay in a window that moves with the
 *      address?); the hairpin sockets send to each other's mapped address.  Without such a relay,
 * mapping comes from the relays' answers alone and filtering is unknown.
 */
#include "knitd/netcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "netcheck/probe.h"
#include "portmap/portmap.h"

#define SOCK_DEVICE (-2) /* the node's own UDP socket, through the device */
#define MAX_TARGETS (2 * NETCHECK_MAX_RELAYS)
#define P1_MAX	    (MAX_TARGETS + 2)
#define WIN_SOCKETS 16 /* 16 ports a window: its width, almost surely */
#define P2_MAX	    (2 + 2 + NETCHECK_ALLOC_SOCKETS + 2 * WIN_SOCKETS + 2)
#define N_OWN_FDS   (4 + NETCHECK_ALLOC_SOCKETS + WIN_SOCKETS)
#define MS	    NSEC_PER_MSEC

/* One relay's STUN server in one family. */
struct target {
	unsigned relay; /* index in nc->relays */
	int family;
	union sockaddr_inet a1p1;
	int probe; /* in p1 */
};

struct netcheck {
	struct evloop *loop;
	struct wg_device *dev;
	struct netcheck_ops ops;
	struct nc_engine *engine;
	struct netmap_relay relays[NETCHECK_MAX_RELAYS];
	unsigned n_relays;
	struct portmap *pm, *own_pm;
	bool own_pm_failed, own_pm_probed;

	struct netcheck_result result;	 /* the last completed check */
	struct netcheck_result reported; /* what ops.changed last saw */
	bool has_reported;

	/* The check under way. */
	bool running, rerun;
	int phase;
	uint64_t start_ns;
	int family;
	struct target targets[MAX_TARGETS];
	unsigned n_targets;
	int fip_fd, fport_fd, hp_fd[2];
	int alloc_fd[NETCHECK_ALLOC_SOCKETS];
	unsigned alloc_port[NETCHECK_ALLOC_SOCKETS];
	int win_fd[WIN_SOCKETS];
	struct nc_probe p1[P1_MAX];
	size_t n_p1;
	int hp_probe[2]; /* in p1, -1: none */
	struct nc_probe p2[P2_MAX];
	size_t n_p2;
	int map_probe[2], filt_probe[2], alloc_probe, hairpin_probe[2]; /* in p2 */
	int win_probe; /* in p2: two a socket, to A1:P1 then A2:P1 */
	unsigned n_win_probes;
	union sockaddr_inet a1p1, a1p2, a2p1, a2p2;
	bool have_alt;

	struct ev_timer periodic, relays_delay, api_deadline;
	struct {
		struct api_conn *c;
		unsigned run; /* answered by the end of this run */
	} waiters[NETCHECK_MAX_WAITERS];
	unsigned n_waiters;
	unsigned run_id; /* of the current or last run */
};

static const char *ep_str(const union sockaddr_inet *ep, char buf[ENDPOINT_STRLEN])
{
	if (!ep->sa.sa_family || endpoint_format(ep, buf, ENDPOINT_STRLEN) < 0)
		snprintf(buf, ENDPOINT_STRLEN, "none");
	return buf;
}

/* --- sockets and names ------------------------------------------------------ */

static int engine_send(void *arg, int sock, const union sockaddr_inet *dst, const void *buf,
		       size_t len)
{
	struct netcheck *nc = arg;

	if (sock == SOCK_DEVICE)
		return device_send_aside(nc->dev, dst, buf, len);
	if (sendto(sock, buf, len, MSG_DONTWAIT, &dst->sa, endpoint_len(dst)) < 0)
		return -errno;
	return 0;
}

/* host (a name, an address, or an IPv6 address in brackets) and port in
 * family; names resolve with getaddrinfo, as the relay clients do. */
static int resolve(const char *host, uint16_t port, int family, union sockaddr_inet *out)
{
	struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_DGRAM}, *res;
	char h[NETMAP_HOST_LEN];
	size_t len = strlen(host);

	if (host[0] == '[' && len > 2 && host[len - 1] == ']')
		snprintf(h, sizeof(h), "%.*s", (int)(len - 2), host + 1);
	else
		snprintf(h, sizeof(h), "%s", host);
	if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen < sizeof(*out) ? res->ai_addrlen : sizeof(*out));
	freeaddrinfo(res);
	nc_ep_set_port(out, port);
	return 0;
}

/* "host:port" (the map's stun_alt, checked by netmap) in family. */
static int resolve_host_port(const char *hp, int family, union sockaddr_inet *out)
{
	const char *colon = strrchr(hp, ':');
	char host[NETMAP_HOST_LEN];
	unsigned long port;

	if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof(host))
		return -EINVAL;
	port = strtoul(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	return resolve(host, (uint16_t)port, family, out);
}

static void close_own_sockets(struct netcheck *nc)
{
	int *fds[N_OWN_FDS] = {&nc->fip_fd, &nc->fport_fd, &nc->hp_fd[0], &nc->hp_fd[1]};

	for (int i = 0; i < NETCHECK_ALLOC_SOCKETS; i++)
		fds[4 + i] = &nc->alloc_fd[i];
	for (int i = 0; i < WIN_SOCKETS; i++)
		fds[4 + NETCHECK_ALLOC_SOCKETS + i] = &nc->win_fd[i];
	for (int i = 0; i < N_OWN_FDS; i++) {
		if (*fds[i] < 0)
			continue;
		nc_engine_unwatch_fd(nc->engine, *fds[i]);
		close(*fds[i]);
		*fds[i] = -1;
	}
}

static int open_watched(struct netcheck *nc, unsigned port)
{
	int fd = nc_udp_socket(nc->family, NULL, port);

	if (fd >= 0 && nc_engine_watch_fd(nc->engine, fd) < 0) {
		close(fd);
		return -ENOSPC;
	}
	return fd;
}

/* Eight sockets on consecutive local ports, so that preservation shows. */
static void open_alloc_sockets(struct netcheck *nc)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		unsigned base = 20000 + random_u32() % (60000 - 20000 - NETCHECK_ALLOC_SOCKETS);
		int i;

		for (i = 0; i < NETCHECK_ALLOC_SOCKETS; i++) {
			nc->alloc_fd[i] = open_watched(nc, base + (unsigned)i);
			if (nc->alloc_fd[i] < 0)
				break;
			nc->alloc_port[i] = base + (unsigned)i;
		}
		if (i == NETCHECK_ALLOC_SOCKETS)
			return;
		while (i-- > 0) {
			nc_engine_unwatch_fd(nc->engine, nc->alloc_fd[i]);
			close(nc->alloc_fd[i]);
		}
		for (i = 0; i < NETCHECK_ALLOC_SOCKETS; i++)
			nc->alloc_fd[i] = -1;
	}
	log_warn("netcheck cannot bind consecutive local ports: allocation unknown");
}

static void open_own_sockets(struct netcheck *nc)
{
	int *fds[4] = {&nc->fip_fd, &nc->fport_fd, &nc->hp_fd[0], &nc->hp_fd[1]};

	for (int i = 0; i < 4; i++)
		*fds[i] = open_watched(nc, 0);
	for (int i = 0; i < WIN_SOCKETS; i++)
		nc->win_fd[i] = open_watched(nc, 0);
	open_alloc_sockets(nc);
}

/* --- the two rounds ----------------------------------------------------------- */

static void finish(struct netcheck *nc);

static void add_targets(struct netcheck *nc)
{
	static const int families[] = {AF_INET, AF_INET6};

	nc->n_targets = 0;
	for (unsigned r = 0; r < nc->n_relays; r++) {
		for (int f = 0; f < 2; f++) {
			struct target *t = &nc->targets[nc->n_targets];
			if (resolve(nc->relays[r].host, nc->relays[r].stun_port, families[f],
				    &t->a1p1) < 0)
				continue;
			t->relay = r;
			t->family = families[f];
			nc->n_targets++;
		}
	}
}

static const struct target *first_target(const struct netcheck *nc, int family, bool answered)
{
	for (unsigned i = 0; i < nc->n_targets; i++) {
		const struct target *t = &nc->targets[i];
		if (t->family == family && (!answered || nc->p1[t->probe].state == NC_P_DONE))
			return t;
	}
	return NULL;
}

static int start_round1(struct netcheck *nc)
{
	const struct target *first;

	add_targets(nc);
	if (!nc->n_targets)
		return -ENOENT;
	/* Classify IPv4 when a relay has an IPv4 address: that is where NATs
	 * are; IPv6 otherwise. */
	nc->family = first_target(nc, AF_INET, false) ? AF_INET : AF_INET6;
	open_own_sockets(nc);
	nc->n_p1 = 0;
	for (unsigned i = 0; i < nc->n_targets; i++) {
		struct target *t = &nc->targets[i];
		t->probe = (int)nc->n_p1;
		nc_probe_stun(&nc->p1[nc->n_p1++], "relay", SOCK_DEVICE, &t->a1p1, 0, NULL);
	}
	first = first_target(nc, nc->family, false);
	for (int i = 0; i < 2; i++) {
		nc->hp_probe[i] = -1;
		if (nc->hp_fd[i] < 0)
			continue;
		nc->hp_probe[i] = (int)nc->n_p1;
		nc_probe_stun(&nc->p1[nc->n_p1++], "hairpin socket", nc->hp_fd[i], &first->a1p1, 0,
			      NULL);
	}
	nc->phase = 1;
	return nc_engine_start(nc->engine, nc->p1, nc->n_p1);
}

/* The alternate A2:P2 of the first RFC 5780 relay that answered. */
static bool pick_alt(struct netcheck *nc)
{
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];

	for (unsigned i = 0; i < nc->n_targets; i++) {
		const struct target *t = &nc->targets[i];
		const struct nc_probe *p = &nc->p1[t->probe];
		const struct netmap_relay *r = &nc->relays[t->relay];
		union sockaddr_inet alt, same;

		if (t->family != nc->family || p->state != NC_P_DONE || !p->resp.has_other)
			continue;
		nc_ss_to_ep(&alt, &p->resp.other);
		endpoint_unmap(&alt, &alt);
		if (r->stun_alt[0] && resolve_host_port(r->stun_alt, nc->family, &alt) < 0)
			continue;
		same = alt;
		nc_ep_set_port(&same, nc_ep_port(&t->a1p1));
		if (alt.sa.sa_family != nc->family || endpoint_equal(&same, &t->a1p1) ||
		    nc_ep_port(&alt) == nc_ep_port(&t->a1p1)) {
			log_warn("relay gave an unusable alternate relay=%d primary=%s "
				 "alternate=%s",
				 r->id, ep_str(&t->a1p1, a), ep_str(&alt, b));
			continue;
		}
		nc->a1p1 = t->a1p1;
		nc->a2p2 = alt;
		nc->a2p1 = alt;
		nc_ep_set_port(&nc->a2p1, nc_ep_port(&t->a1p1));
		nc->a1p2 = t->a1p1;
		nc_ep_set_port(&nc->a1p2, nc_ep_port(&alt));
		return true;
	}
	return false;
}

static int p2_add(struct netcheck *nc)
{
	return (int)nc->n_p2++;
}

static void start_round2(struct netcheck *nc)
{
	const struct target *alloc_to;
	int i, ret;

	nc->n_p2 = 0;
	nc->map_probe[0] = nc->map_probe[1] = nc->filt_probe[0] = nc->filt_probe[1] = -1;
	nc->alloc_probe = nc->hairpin_probe[0] = nc->hairpin_probe[1] = nc->win_probe = -1;
	nc->have_alt = pick_alt(nc);
	if (nc->have_alt) {
		nc_probe_stun(&nc->p2[nc->map_probe[0] = p2_add(nc)], "mapping test to A2:P1",
			      SOCK_DEVICE, &nc->a2p1, 0, &nc->a2p1);
		nc_probe_stun(&nc->p2[nc->map_probe[1] = p2_add(nc)], "mapping test to A2:P2",
			      SOCK_DEVICE, &nc->a2p2, 0, &nc->a2p2);
		if (nc->fip_fd >= 0)
			nc_probe_stun(&nc->p2[nc->filt_probe[0] = p2_add(nc)],
				      "filtering test (change IP and port)", nc->fip_fd, &nc->a1p1,
				      STUN_CHANGE_IP | STUN_CHANGE_PORT, &nc->a2p2);
		if (nc->fport_fd >= 0)
			nc_probe_stun(&nc->p2[nc->filt_probe[1] = p2_add(nc)],
				      "filtering test (change port)", nc->fport_fd, &nc->a1p1,
				      STUN_CHANGE_PORT, &nc->a1p2);
	}
	alloc_to = nc->have_alt ? NULL : first_target(nc, nc->family, true);
	if ((nc->have_alt || alloc_to) && nc->alloc_fd[0] >= 0) {
		const union sockaddr_inet *dst = nc->have_alt ? &nc->a1p1 : &alloc_to->a1p1;
		nc->alloc_probe = (int)nc->n_p2;
		for (i = 0; i < NETCHECK_ALLOC_SOCKETS; i++) {
			struct nc_probe *p = &nc->p2[p2_add(nc)];
			nc_probe_stun(p, "port allocation test", nc->alloc_fd[i], dst, 0, NULL);
			/* One after the other, in order of local port. */
			p->after = i ? (int)(nc->n_p2 - 2) : -1;
		}
	}
	if (nc->have_alt && nc->family == AF_INET) {
		/* Interleaved, all at once: a sequential allocator's ports
		 * then overlap between the two addresses. */
		nc->win_probe = (int)nc->n_p2;
		nc->n_win_probes = 0;
		for (i = 0; i < WIN_SOCKETS; i++) {
			if (nc->win_fd[i] < 0)
				continue;
			nc->n_win_probes += 2;
			nc_probe_stun(&nc->p2[p2_add(nc)], "window test to A1:P1", nc->win_fd[i],
				      &nc->a1p1, 0, NULL);
			nc_probe_stun(&nc->p2[p2_add(nc)], "window test to A2:P1", nc->win_fd[i],
				      &nc->a2p1, 0, NULL);
		}
	}
	if (nc->hp_probe[0] >= 0 && nc->hp_probe[1] >= 0 &&
	    nc->p1[nc->hp_probe[0]].state == NC_P_DONE &&
	    nc->p1[nc->hp_probe[1]].state == NC_P_DONE) {
		union sockaddr_inet m[2];
		nc_probe_mapped(&nc->p1[nc->hp_probe[0]], &m[0]);
		nc_probe_mapped(&nc->p1[nc->hp_probe[1]], &m[1]);
		nc_probe_datagram(&nc->p2[nc->hairpin_probe[0] = p2_add(nc)], "hairpin X to Y",
				  nc->hp_fd[0], nc->hp_fd[1], &m[1]);
		nc_probe_datagram(&nc->p2[nc->hairpin_probe[1] = p2_add(nc)], "hairpin Y to X",
				  nc->hp_fd[1], nc->hp_fd[0], &m[0]);
	}
	nc->phase = 2;
	if (!nc->n_p2) {
		finish(nc); /* nothing answered in our family: nothing to refine */
		return;
	}
	ret = nc_engine_start(nc->engine, nc->p2, nc->n_p2);
	if (ret < 0) {
		log_warn("netcheck cannot start its second round error=%s", strerror(-ret));
		finish(nc);
	}
}

static void on_round_done(void *arg, struct nc_probe *probes, size_t n)
{
	struct netcheck *nc = arg;

	if (nc->phase == 1)
		start_round2(nc);
	else
		finish(nc);
}

/* --- the result ------------------------------------------------------------------- */

static bool done(const struct nc_probe *probes, int i)
{
	return i >= 0 && probes[i].state == NC_P_DONE;
}

static void classify_mapping(struct netcheck *nc, struct netcheck_result *r)
{
	struct nc_observation obs[MAX_TARGETS + 2];
	size_t n = 0;

	for (unsigned i = 0; i < nc->n_targets; i++) {
		const struct target *t = &nc->targets[i];
		if (t->family != nc->family || !done(nc->p1, t->probe))
			continue;
		obs[n].dst = t->a1p1;
		nc_probe_mapped(&nc->p1[t->probe], &obs[n++].mapped);
	}
	for (int i = 0; i < 2; i++) {
		if (!done(nc->p2, nc->map_probe[i]))
			continue;
		obs[n].dst = nc->p2[nc->map_probe[i]].dst;
		nc_probe_mapped(&nc->p2[nc->map_probe[i]], &obs[n++].mapped);
	}
	r->mapping = nc_classify_mapping(obs, n);
}

static void classify_filtering(struct netcheck *nc, struct netcheck_result *r)
{
	const struct nc_probe *ip = nc->filt_probe[0] >= 0 ? &nc->p2[nc->filt_probe[0]] : NULL;
	const struct nc_probe *port = nc->filt_probe[1] >= 0 ? &nc->p2[nc->filt_probe[1]] : NULL;

	r->filtering = NC_FILTERING_UNKNOWN;
	/* Both tests, and neither refused (a relay without an alternate). */
	if (!ip || !port || ip->error_code || port->error_code)
		return;
	r->filtering = nc_classify_filtering(ip->state == NC_P_DONE, port->state == NC_P_DONE);
}

static void classify_allocation(struct netcheck *nc, struct netcheck_result *r)
{
	unsigned ext[NETCHECK_ALLOC_SOCKETS];

	r->allocation = NC_ALLOCATION_UNKNOWN;
	if (nc->alloc_probe < 0)
		return;
	for (int i = 0; i < NETCHECK_ALLOC_SOCKETS; i++) {
		union sockaddr_inet m;
		if (!done(nc->p2, nc->alloc_probe + i))
			return;
		nc_probe_mapped(&nc->p2[nc->alloc_probe + i], &m);
		ext[i] = nc_ep_port(&m);
	}
	r->allocation = nc_classify_allocation(nc->alloc_port, ext, NETCHECK_ALLOC_SOCKETS);
}

/* Windowed allocation from the window sockets' answers (the ones that came). */
static void classify_window(struct netcheck *nc, struct netcheck_result *r)
{
	struct nc_observation obs[2 * WIN_SOCKETS];
	size_t n = 0;

	memset(&r->nat.window, 0, sizeof(r->nat.window));
	if (nc->win_probe < 0)
		return;
	for (unsigned i = 0; i < nc->n_win_probes; i++) {
		const struct nc_probe *p = &nc->p2[nc->win_probe + (int)i];
		if (!done(nc->p2, nc->win_probe + (int)i))
			continue;
		obs[n].dst = p->dst;
		nc_probe_mapped(p, &obs[n++].mapped);
	}
	nc_classify_window(obs, n, &r->nat.window);
}

static bool is_local_address(const union sockaddr_inet *a)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (!a->sa.sa_family || getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		union sockaddr_inet x;
		if (!i->ifa_addr || i->ifa_addr->sa_family != a->sa.sa_family)
			continue;
		memset(&x, 0, sizeof(x));
		memcpy(&x, i->ifa_addr, a->sa.sa_family == AF_INET ? sizeof(x.in) : sizeof(x.in6));
		nc_ep_set_port(&x, nc_ep_port(a));
		found = endpoint_equal(&x, a);
	}
	freeifaddrs(ifa);
	return found;
}

static void relay_results(struct netcheck *nc, struct netcheck_result *r)
{
	uint64_t best = 0;

	r->n_relays = nc->n_relays;
	for (unsigned i = 0; i < nc->n_relays; i++) {
		r->relays[i].id = nc->relays[i].id;
		snprintf(r->relays[i].region, sizeof(r->relays[i].region), "%s",
			 nc->relays[i].region);
	}
	for (unsigned i = 0; i < nc->n_targets; i++) {
		const struct target *t = &nc->targets[i];
		const struct nc_probe *p = &nc->p1[t->probe];
		struct netcheck_relay_result *rr = &r->relays[t->relay];
		union sockaddr_inet m;

		if (p->state != NC_P_DONE)
			continue;
		r->udp = true;
		nc_probe_mapped(p, &m);
		if (t->family == AF_INET) {
			r->ipv4 = true;
			rr->rtt_v4_ns = p->rtt_ns ? p->rtt_ns : 1;
			if (!r->mapped_v4.sa.sa_family)
				r->mapped_v4 = m;
		} else {
			r->ipv6 = true;
			rr->rtt_v6_ns = p->rtt_ns ? p->rtt_ns : 1;
			if (!r->mapped_v6.sa.sa_family)
				r->mapped_v6 = m;
		}
		rr->rfc5780 |= p->resp.has_other;
		if (!best || p->rtt_ns < best) {
			best = p->rtt_ns;
			r->home_relay = rr->id;
		}
	}
	if (nc->ops.home_relay)
		r->home_relay = nc->ops.home_relay(nc->ops.arg);
}

static void portmap_results(struct netcheck *nc, struct netcheck_result *r)
{
	struct portmap *pm = nc->pm ? nc->pm : nc->own_pm;
	union sockaddr_inet ext;

	r->portmap_known = nc->pm || nc->own_pm_probed;
	r->pcp = r->natpmp = r->upnp = false;
	if (pm && r->portmap_known)
		portmap_offered(pm, &r->pcp, &r->natpmp, &r->upnp);
	r->nat.port_mapped = nc->pm && portmap_current(nc->pm, &ext, NULL);
}

static void nat_class_of(struct netcheck_result *r)
{
	static const enum nat_mapping maps[] = {
		[NC_MAPPING_UNKNOWN] = NAT_MAP_UNKNOWN,
		[NC_MAPPING_EIM] = NAT_MAP_EIM,
		[NC_MAPPING_ADM] = NAT_MAP_ADM,
		[NC_MAPPING_ADPM] = NAT_MAP_ADPM,
		/* ADM or ADPM: the plan treats unknown as "try, then relay". */
		[NC_MAPPING_VARIES] = NAT_MAP_UNKNOWN,
	};
	static const enum nat_filtering filters[] = {
		[NC_FILTERING_UNKNOWN] = NAT_FILTER_UNKNOWN,
		[NC_FILTERING_EIF] = NAT_FILTER_EIF,
		[NC_FILTERING_ADF] = NAT_FILTER_ADF,
		[NC_FILTERING_ADPF] = NAT_FILTER_ADPF,
	};

	r->nat.udp = r->udp;
	r->nat.public_address = r->public_address;
	r->nat.mapping = maps[r->mapping];
	r->nat.filtering = filters[r->filtering];
	r->nat.addr_v4 =
		r->mapped_v4.sa.sa_family == AF_INET ? ntohl(r->mapped_v4.in.sin_addr.s_addr) : 0;
}

/* What a change must touch to be reported: not latency, not the time. */
static bool significant_equal(const struct netcheck_result *a, const struct netcheck_result *b)
{
	return a->udp == b->udp && a->ipv4 == b->ipv4 && a->ipv6 == b->ipv6 &&
	       a->mapping == b->mapping && a->filtering == b->filtering &&
	       a->allocation == b->allocation && a->hairpin == b->hairpin &&
	       a->public_address == b->public_address && a->portmap_known == b->portmap_known &&
	       a->pcp == b->pcp && a->natpmp == b->natpmp && a->upnp == b->upnp &&
	       !memcmp(&a->nat, &b->nat, sizeof(a->nat));
}

static void report(struct netcheck *nc)
{
	if (!nc->result.valid ||
	    (nc->has_reported && significant_equal(&nc->result, &nc->reported)))
		return;
	nc->reported = nc->result;
	nc->has_reported = true;
	log_info("netcheck udp=%d ipv4=%d ipv6=%d mapping=%s filtering=%s allocation=%s "
		 "window=%u hairpin=%s public=%d",
		 nc->result.udp, nc->result.ipv4, nc->result.ipv6,
		 nc_mapping_name(nc->result.mapping), nc_filtering_name(nc->result.filtering),
		 nc_allocation_name(nc->result.allocation), nc->result.nat.window.width,
		 nc->result.hairpin == NC_UNKNOWN ? "unknown"
		 : nc->result.hairpin == NC_YES	  ? "yes"
						  : "no",
		 nc->result.public_address);
	if (nc->ops.changed)
		nc->ops.changed(nc->ops.arg, &nc->result);
}

static void answer_waiters(struct netcheck *nc, bool stale);

static void finish(struct netcheck *nc)
{
	struct netcheck_result r;

	memset(&r, 0, sizeof(r));
	r.valid = true;
	r.at_wall_ns = clock_wall_ns();
	r.duration_ns = clock_mono_ns() - nc->start_ns;
	r.family = nc->family;
	relay_results(nc, &r);
	classify_mapping(nc, &r);
	classify_filtering(nc, &r);
	classify_allocation(nc, &r);
	classify_window(nc, &r);
	r.hairpin = nc->hairpin_probe[0] >= 0
			    ? nc_classify_hairpin(done(nc->p2, nc->hairpin_probe[0]),
						  done(nc->p2, nc->hairpin_probe[1]))
			    : NC_UNKNOWN;
	r.public_address = is_local_address(nc->family == AF_INET ? &r.mapped_v4 : &r.mapped_v6);
	portmap_results(nc, &r);
	nat_class_of(&r);
	close_own_sockets(nc);
	nc->result = r;
	nc->running = false;
	log_debug("netcheck done duration_ms=%llu", (unsigned long long)(r.duration_ns / MS));
	report(nc);
	answer_waiters(nc, false);
	if (nc->rerun) {
		nc->rerun = false;
		netcheck_run(nc);
	}
}

/* --- runs ------------------------------------------------------------------------ */

static void on_own_portmap_probed(void *arg)
{
	struct netcheck *nc = arg;

	nc->own_pm_probed = true;
	if (!nc->result.valid || nc->pm)
		return;
	portmap_results(nc, &nc->result);
	nat_class_of(&nc->result);
	report(nc);
}

static void ensure_portmap(struct netcheck *nc)
{
	static const struct portmap_ops ops = {.probed = on_own_portmap_probed};
	struct portmap_config cfg = {.internal_port = nc->dev->listen_port,
				     .protocols = PORTMAP_PROBE_ONLY};

	if (nc->pm || nc->own_pm_failed)
		return;
	if (nc->own_pm) {
		portmap_restart(nc->own_pm); /* fresh offers for this check */
		return;
	}
	if (portmap_new_config(&nc->own_pm, nc->loop, &cfg, &ops, nc) < 0) {
		log_info("netcheck cannot probe for port mapping: no gateway?");
		nc->own_pm = NULL;
		nc->own_pm_failed = true;
	}
}

int netcheck_run(struct netcheck *nc)
{
	int ret;

	if (!nc || !nc->n_relays)
		return -ENOENT;
	if (nc->running) {
		nc->rerun = true;
		return 0;
	}
	evloop_timer_arm(nc->loop, &nc->periodic,
			 clock_mono_ns() + (uint64_t)NETCHECK_INTERVAL_S * NSEC_PER_SEC);
	ensure_portmap(nc);
	nc->running = true;
	nc->run_id++;
	nc->start_ns = clock_mono_ns();
	ret = start_round1(nc);
	if (ret < 0) {
		log_warn("netcheck cannot start error=%s", strerror(-ret));
		nc->running = false;
		close_own_sockets(nc);
		memset(&nc->result, 0, sizeof(nc->result));
		nc->result.valid = true; /* no relay resolves: nothing answers */
		nc->result.at_wall_ns = clock_wall_ns();
		answer_waiters(nc, false);
		return ret;
	}
	return 0;
}

static void on_periodic(struct evloop *loop, struct ev_timer *t, void *arg)
{
	netcheck_run(arg);
}

static void on_relays_delay(struct evloop *loop, struct ev_timer *t, void *arg)
{
	netcheck_run(arg);
}

bool netcheck_stun_input(struct netcheck *nc, const uint8_t *pkt, size_t len,
			 const union sockaddr_inet *src)
{
	return nc && nc->running && nc_engine_input(nc->engine, SOCK_DEVICE, pkt, len, src);
}

void netcheck_set_relays(struct netcheck *nc, const struct netmap_relay *map, unsigned n)
{
	if (!nc)
		return;
	if (n > NETCHECK_MAX_RELAYS)
		n = NETCHECK_MAX_RELAYS;
	if (n == nc->n_relays && (!n || !memcmp(nc->relays, map, n * sizeof(*map))))
		return;
	memset(nc->relays, 0, sizeof(nc->relays));
	if (n)
		memcpy(nc->relays, map, n * sizeof(*map));
	nc->n_relays = n;
	if (n)
		evloop_timer_arm(nc->loop, &nc->relays_delay,
				 clock_mono_ns() + NETCHECK_RELAYS_DELAY_MS * MS);
	else
		evloop_timer_cancel(nc->loop, &nc->relays_delay);
}

void netcheck_set_portmap(struct netcheck *nc, struct portmap *pm)
{
	if (!nc)
		return;
	nc->pm = pm;
	if (pm && nc->own_pm) {
		portmap_free(nc->own_pm);
		nc->own_pm = NULL;
		nc->own_pm_probed = false;
	}
}

const struct netcheck_result *netcheck_result(const struct netcheck *nc)
{
	static const struct netcheck_result none;

	return nc ? &nc->result : &none;
}

/* --- `knit netcheck` --------------------------------------------------------------- */

static json_t *endpoint_json(const union sockaddr_inet *ep)
{
	char text[ENDPOINT_STRLEN];

	if (!ep->sa.sa_family || endpoint_format(ep, text, sizeof(text)) < 0)
		return json_null();
	return json_string(text);
}

static json_t *tristate_json(enum nc_tristate t)
{
	return t == NC_UNKNOWN ? json_null() : json_boolean(t == NC_YES);
}

/* Microseconds, an integer: exact, and no float noise in the JSON. */
static json_t *rtt_json(uint64_t ns)
{
	return ns ? json_integer((json_int_t)(ns / 1000 ? ns / 1000 : 1)) : json_null();
}

/* The window and its prediction rule, or null: not windowed (or not
 * checked). */
static json_t *port_window_json(const struct nat_window *w)
{
	char a[INET_ADDRSTRLEN], rule[160];
	struct in_addr in = {.s_addr = htonl(w->addr[0])};
	double step;
	json_t *j, *nat;

	if (!w->width)
		return json_null();
	step = ((double)w->start[1] - w->start[0]) / ((double)w->addr[1] - w->addr[0]);
	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(rule, sizeof(rule), "start(d) = %u + %g * (d - %s)%s", w->start[0], step, a,
		 w->aligned ? ", rounded to a multiple of the width" : ", rounded");
	nat = netmap_nat_to_json(&(struct nat_class){.window = *w});
	j = json_pack("{s:i,s:b,s:O,s:f,s:s}", "width", w->width, "aligned", w->aligned, "observed",
		      json_object_get(json_object_get(nat, "window"), "points"), "step_per_address",
		      step, "rule", rule);
	json_decref(nat);
	return j ? j : json_null();
}

json_t *netcheck_result_json(const struct netcheck_result *r)
{
	json_t *relays = json_array(), *portmap, *j;

	for (unsigned i = 0; relays && i < r->n_relays; i++) {
		const struct netcheck_relay_result *rr = &r->relays[i];
		json_array_append_new(relays,
				      json_pack("{s:i,s:s,s:o,s:o,s:b}", "id", rr->id, "region",
						rr->region, "latency_us", rtt_json(rr->rtt_v4_ns),
						"latency_v6_us", rtt_json(rr->rtt_v6_ns), "rfc5780",
						rr->rfc5780));
	}
	portmap = r->portmap_known ? json_pack("{s:b,s:b,s:b}", "pcp", r->pcp, "nat_pmp", r->natpmp,
					       "upnp", r->upnp)
				   : json_null();
	j = json_pack("{s:b,s:b,s:b,s:o,s:o,s:s,s:s,s:s,s:o,s:b,s:o,s:i,s:o,s:I,s:I,s:o}", "udp",
		      r->udp, "ipv4", r->ipv4, "ipv6", r->ipv6, "mapped_v4",
		      endpoint_json(&r->mapped_v4), "mapped_v6", endpoint_json(&r->mapped_v6),
		      "mapping", nc_mapping_name(r->mapping), "filtering",
		      nc_filtering_name(r->filtering), "allocation",
		      nc_allocation_name(r->allocation), "hairpin", tristate_json(r->hairpin),
		      "public_address", r->public_address, "portmap", portmap, "home_relay",
		      r->home_relay, "relays", relays ? relays : json_array(), "checked_at",
		      (json_int_t)(r->at_wall_ns / NSEC_PER_SEC), "duration_ms",
		      (json_int_t)(r->duration_ns / MS), "nat", netmap_nat_to_json(&r->nat));
	if (j)
		json_object_set_new(j, "port_window", port_window_json(&r->nat.window));
	return j;
}

static void answer(struct netcheck *nc, struct api_conn *c, bool stale)
{
	json_t *j;

	if (!nc->result.valid)
		return api_reply_error(c, "netcheck did not finish within %u s",
				       NETCHECK_API_WAIT_MS / 1000);
	j = netcheck_result_json(&nc->result);
	if (!j)
		return api_reply_error(c, "out of memory");
	json_object_set_new(j, "ok", json_true());
	json_object_set_new(j, "stale", json_boolean(stale));
	api_reply(c, j, true);
}

/* Those whose run is over (all of them when stale: the deadline passed). */
static void answer_waiters(struct netcheck *nc, bool stale)
{
	unsigned i = 0;

	while (i < nc->n_waiters) {
		if (!stale && nc->waiters[i].run > nc->run_id) { /* wants the next run */
			i++;
			continue;
		}
		answer(nc, nc->waiters[i].c, stale);
		nc->waiters[i] = nc->waiters[--nc->n_waiters];
	}
	if (!nc->n_waiters)
		evloop_timer_cancel(nc->loop, &nc->api_deadline);
}

static void on_api_deadline(struct evloop *loop, struct ev_timer *t, void *arg)
{
	answer_waiters(arg, true);
}

void netcheck_api(struct netcheck *nc, struct api_conn *c)
{
	if (!nc)
		return api_reply_error(c, "netcheck is not running in this knitd");
	if (!nc->n_relays)
		return api_reply_error(c, "no relays to check against: is this node up "
					  "(knit up) and has control sent its relay map?");
	if (nc->n_waiters == NETCHECK_MAX_WAITERS)
		return api_reply_error(c, "too many knit netcheck commands waiting");
	if (!ev_timer_armed(&nc->api_deadline))
		evloop_timer_arm(nc->loop, &nc->api_deadline,
				 clock_mono_ns() + NETCHECK_API_WAIT_MS * MS);
	/* A fresh check: the next run, unless one has just begun. */
	nc->waiters[nc->n_waiters].c = c;
	nc->waiters[nc->n_waiters++].run = nc->running && clock_mono_ns() - nc->start_ns <= 100 * MS
						   ? nc->run_id
						   : nc->run_id + 1;
	if (!nc->running || nc->waiters[nc->n_waiters - 1].run > nc->run_id)
		netcheck_run(nc); /* now, or right after the one under way */
}

void netcheck_api_gone(struct netcheck *nc, struct api_conn *c)
{
	for (unsigned i = 0; nc && i < nc->n_waiters; i++) {
		if (nc->waiters[i].c == c) {
			nc->waiters[i] = nc->waiters[--nc->n_waiters];
			return;
		}
	}
}

/* --- life ------------------------------------------------------------------------- */

int netcheck_new(struct netcheck **out, struct evloop *loop, struct wg_device *dev,
		 const struct netcheck_ops *ops)
{
	static const struct nc_engine_ops engine_ops = {.send = engine_send, .done = on_round_done};
	struct netcheck *nc = calloc(1, sizeof(*nc));
	int ret;

	if (!nc)
		return -ENOMEM;
	nc->loop = loop;
	nc->dev = dev;
	if (ops)
		nc->ops = *ops;
	nc->fip_fd = nc->fport_fd = nc->hp_fd[0] = nc->hp_fd[1] = -1;
	for (int i = 0; i < NETCHECK_ALLOC_SOCKETS; i++)
		nc->alloc_fd[i] = -1;
	for (int i = 0; i < WIN_SOCKETS; i++)
		nc->win_fd[i] = -1;
	ev_timer_init(&nc->periodic, on_periodic, nc);
	ev_timer_init(&nc->relays_delay, on_relays_delay, nc);
	ev_timer_init(&nc->api_deadline, on_api_deadline, nc);
	ret = nc_engine_new(&nc->engine, loop, NETCHECK_PROBE_MS, &engine_ops, nc);
	if (ret < 0) {
		free(nc);
		return ret;
	}
	*out = nc;
	return 0;
}

void netcheck_free(struct netcheck *nc)
{
	if (!nc)
		return;
	for (unsigned i = 0; i < nc->n_waiters; i++)
		api_reply_error(nc->waiters[i].c, "knitd is stopping");
	nc->n_waiters = 0;
	nc_engine_cancel(nc->engine);
	close_own_sockets(nc);
	nc_engine_free(nc->engine);
	portmap_free(nc->own_pm);
	evloop_timer_cancel(nc->loop, &nc->periodic);
	evloop_timer_cancel(nc->loop, &nc->relays_delay);
	evloop_timer_cancel(nc->loop, &nc->api_deadline);
	free(nc);
}
