// SPDX-License-Identifier: MIT
#include "traversal/plan.h"

#include <stdio.h>

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

void traversal_plan(const struct nat_class *me_in, const struct nat_class *peer_in,
		    bool i_am_lower, struct plan *out)
{
	struct nat_class me = effective(me_in), peer = effective(peer_in);

	out->i_open = false;
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
	/* At least one side's port is unknown and no side lets strangers in. */
	if (me.mapping != NAT_MAP_EIM && peer.mapping != NAT_MAP_EIM &&
	    me.filtering == NAT_FILTER_ADPF && peer.filtering == NAT_FILTER_ADPF) {
		out->kind = PLAN_RELAY;
		snprintf(out->reason, sizeof(out->reason),
			 "both NATs map per destination and filter by address and port");
		return;
	}
	out->kind = PLAN_SEARCH;
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
	snprintf(out->reason, sizeof(out->reason), "birthday search (%s)",
		 out->i_open ? "opening mappings" : "spraying probes");
}
