// SPDX-License-Identifier: MIT
#include "traversal/plan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *nat_mapping_name(enum nat_mapping m)
{
	static const char *const names[] = {"unknown", "eim", "adm", "adpm"};

	return m <= NAT_MAP_ADPM ? names[m] : "?";
}

const char *nat_filtering_name(enum nat_filtering f)
{
	static const char *const names[] = {"unknown", "eif", "adf", "adpf"};

	return f <= NAT_FILTER_ADPF ? names[f] : "?";
}

/* What the other side sees: a public address or a port mapping is an
 * endpoint-independent mapping that lets everything in. */
static struct nat_class effective(const struct nat_class *c)
{
	struct nat_class e = *c;

	if (c->public_address || c->port_mapped) {
		e.mapping = NAT_MAP_EIM;
		e.filtering = NAT_FILTER_EIF;
	}
	return e;
}

static bool known(const struct nat_class *c)
{
	return c->mapping != NAT_MAP_UNKNOWN && c->filtering != NAT_FILTER_UNKNOWN;
}

/*
 * Reachable by plain punching: a packet to the mapping STUN saw gets in, and
 * the reply leaves through it.  With EIF that is any packet, whatever the
 * mapping; with EIM and ADF, any packet from an address it has pinged (its
 * one mapping is the STUN one).
 */
static bool easy(const struct nat_class *c)
{
	return c->filtering == NAT_FILTER_EIF ||
	       (c->mapping == NAT_MAP_EIM && c->filtering == NAT_FILTER_ADF);
}

/* floor(a / b) for b > 0, whatever the sign of a. */
static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* a / b to the nearest integer, b != 0. */
static int64_t round_div(int64_t a, int64_t b)
{
	if (b < 0)
		a = -a, b = -b;
	return floor_div(2 * a + b, 2 * b);
}

int nat_window_start(const struct nat_window *w, uint32_t addr, uint16_t *start)
{
	int64_t da, dd, s;

	if (!w->width || w->width > NAT_WINDOW_MAX || w->addr[0] == w->addr[1] || !addr)
		return -ENOENT;
	da = (int64_t)addr - w->addr[0];
	dd = (int64_t)w->addr[1] - w->addr[0];
	/* start[0] + da * slope, the slope (start[1] - start[0]) / dd. */
	s = round_div((int64_t)w->start[0] * dd + da * ((int64_t)w->start[1] - w->start[0]), dd);
	if (w->aligned)
		s = round_div(s, w->width) * w->width;
	if (s < 1 || s + w->width - 1 > 65535)
		return -ERANGE;
	*start = (uint16_t)s;
	return 0;
}

uint16_t search_probe(const struct plan *p, unsigned i, uint32_t r, unsigned *sock)
{
	uint32_t n = p->n ? p->n : 1;

	*sock = 0;
	switch (p->role) {
	case SEARCH_OPEN_SWEEP:
		/* Each socket in turn pings every port of the window: each
		 * (socket, port) is a fresh mapping of a per-destination NAT. */
		*sock = p->sockets ? (i / n) % p->sockets : 0;
		return (uint16_t)(p->lo + i % n);
	case SEARCH_SWEEP:
		return (uint16_t)(p->lo + i % n);
	case SEARCH_SPRAY:
		/* A range the budget covers is swept (no port twice before all
		 * had one); a wider one is sampled at random. */
		return (uint16_t)(p->lo + (n <= p->probes ? i % n : r % n));
	case SEARCH_OPEN:
		break;
	}
	return p->lo;
}

/* A non-EIM mapping whose ports toward an address can be predicted. */
static bool windowed(const struct nat_class *c)
{
	return c->mapping == NAT_MAP_ADM && c->window.width;
}

static void aim_full_range(struct plan *out)
{
	out->lo = 1024;
	out->n = 65536 - 1024;
}

/* Both sides non-EIM and ADPF: a probe pair (a, b) works when A sent a->b
 * and B sent b->a.  Only a side whose window the other can aim at makes
 * that likely within the budget.  False: nothing can. */
static bool plan_window_search(const struct nat_class *me, const struct nat_class *peer,
			       const struct nat_class *me_in, struct plan *out)
{
	uint16_t lo;
	bool peer_win = windowed(peer) && nat_window_start(&peer->window, me_in->addr_v4, &lo) == 0;

	out->probes = PLAN_WINDOW_PROBES;
	out->rate = PLAN_WINDOW_RATE;
	if (peer_win) {
		out->lo = lo;
		out->n = peer->window.width;
	}
	if (peer_win && windowed(me)) {
		/* Both windows known: each side's one mapping towards the
		 * other is in it, so sweeping both meets for sure. */
		out->role = SEARCH_SWEEP;
		snprintf(out->reason, sizeof(out->reason),
			 "window search (sweeping the peer's %u-port window)", (unsigned)out->n);
	} else if (peer_win) {
		/* The peer's port is one of n; ours is anywhere: many fresh
		 * mappings of ours each aimed at the window, for the peer's
		 * random probes to find one aimed at its own mapping. */
		out->role = SEARCH_OPEN_SWEEP;
		out->sockets = PLAN_WINDOW_PROBES / out->n;
		if (out->sockets > PLAN_SEARCH_SOCKETS)
			out->sockets = PLAN_SEARCH_SOCKETS;
		out->probes = out->sockets * out->n;
		out->i_open = true;
		snprintf(out->reason, sizeof(out->reason),
			 "window search (%u sockets aiming at the peer's %u-port window)",
			 out->sockets, (unsigned)out->n);
	} else if (windowed(me) && !windowed(peer)) {
		/* Our port is one of our window's, which the peer aims at:
		 * spray its whole range from our socket. */
		out->role = SEARCH_SPRAY;
		aim_full_range(out);
		snprintf(out->reason, sizeof(out->reason),
			 "window search (spraying the peer's ports from our window)");
	} else {
		return false;
	}
	return true;
}

void traversal_plan(const struct nat_class *me_in, const struct nat_class *peer_in, bool i_am_lower,
		    struct plan *out)
{
	struct nat_class me = effective(me_in), peer = effective(peer_in);
	uint16_t lo;

	memset(out, 0, sizeof(*out));
	if (!me.udp || !peer.udp) {
		out->kind = PLAN_RELAY;
		snprintf(out->reason, sizeof(out->reason), "UDP is blocked %s",
			 !me.udp ? "here" : "at the peer");
		return;
	}
	if (!known(&me) || !known(&peer) || easy(&me) || easy(&peer) ||
	    (me.mapping == NAT_MAP_EIM && peer.mapping == NAT_MAP_EIM)) {
		out->kind = PLAN_PUNCH;
		snprintf(out->reason, sizeof(out->reason), "hole punching");
		return;
	}
	out->kind = PLAN_SEARCH;
	/* At least one side's port is unknown and no side lets strangers in. */
	if (me.mapping != NAT_MAP_EIM && peer.mapping != NAT_MAP_EIM &&
	    me.filtering == NAT_FILTER_ADPF && peer.filtering == NAT_FILTER_ADPF) {
		if (plan_window_search(&me, &peer, me_in, out))
			return;
		memset(out, 0, sizeof(*out));
		out->kind = PLAN_RELAY;
		snprintf(out->reason, sizeof(out->reason),
			 "both NATs map per destination with unpredictable ports and filter by "
			 "address and port");
		return;
	}
	/* The side that opens many mappings is one whose port nobody knows and
	 * whose filter lets the other side's probes in once it has sent to
	 * them: a non-EIM side that does not filter by port, or, facing an
	 * EIM-ADPF side, the non-EIM side (it sends to the known port). */
	if (me.mapping == NAT_MAP_EIM || peer.mapping == NAT_MAP_EIM)
		out->i_open = me.mapping != NAT_MAP_EIM;
	else if ((me.filtering == NAT_FILTER_ADPF) != (peer.filtering == NAT_FILTER_ADPF))
		out->i_open = me.filtering != NAT_FILTER_ADPF;
	else
		out->i_open = i_am_lower;
	if (out->i_open) {
		out->role = SEARCH_OPEN;
		out->sockets = PLAN_SEARCH_SOCKETS;
		snprintf(out->reason, sizeof(out->reason), "birthday search (opening mappings)");
		return;
	}
	out->role = SEARCH_SPRAY;
	out->probes = PLAN_SEARCH_PROBES;
	out->rate = PLAN_SEARCH_RATE;
	/* The opener's mappings towards us are in its window, when it has
	 * one: aim there, not at the whole range. */
	if (windowed(&peer) && nat_window_start(&peer.window, me_in->addr_v4, &lo) == 0) {
		out->lo = lo;
		out->n = peer.window.width;
		snprintf(out->reason, sizeof(out->reason),
			 "birthday search (spraying probes at the peer's %u-port window)",
			 (unsigned)out->n);
		return;
	}
	aim_full_range(out);
	snprintf(out->reason, sizeof(out->reason), "birthday search (spraying probes)");
}
