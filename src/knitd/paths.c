// SPDX-License-Identifier: MIT
#include "knitd/paths.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "crypto/crypto.h"
#include "knitd/api.h"
#include "knitd/relays.h"
#include "knitd/search.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/log.h"

#define MS 1000000ULL

/* Discovery: a burst, then spaced pings for several seconds (ms after start). */
static const unsigned schedule_ms[] = {0,   20,  50,   100,  200,  350,  500,  750,
				       1000, 1500, 2000, 3000, 4000, 5000, 6500, 8000};
#define SCHEDULE_STEPS (sizeof(schedule_ms) / sizeof(schedule_ms[0]))
#define RETRY_MIN_MS   5000
#define RETRY_MAX_MS   60000

static void peer_timer(struct evloop *loop, struct ev_timer *t, void *arg);
static void pinger_tick(struct evloop *loop, struct ev_timer *t, void *arg);

/* --- small helpers ------------------------------------------------------- */

static void peer_label(const struct peer_paths *pp, char *out, size_t size)
{
	if (pp->name[0]) {
		snprintf(out, size, "%s", pp->name);
	} else {
		char b64[KEY_BASE64_LEN + 1];
		key_to_base64(b64, pp->node_key);
		snprintf(out, size, "%.8s", b64);
	}
}

static bool is_lan(const union sockaddr_inet *ep)
{
	struct ifaddrs *ifa, *i;
	bool lan = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i && !lan; i = i->ifa_next) {
		if (!i->ifa_addr || !i->ifa_netmask || i->ifa_addr->sa_family != ep->sa.sa_family)
			continue;
		if (ep->sa.sa_family == AF_INET) {
			uint32_t a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
			uint32_t m = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
			lan = (a & m) == (ep->in.sin_addr.s_addr & m) && a != ep->in.sin_addr.s_addr;
		}
	}
	freeifaddrs(ifa);
	return lan;
}

/* fd: one of our search sockets, or -1 for the device's own socket. */
static void send_direct(struct paths *p, struct peer_paths *pp, const union sockaddr_inet *to,
			int fd, const struct disco_msg *m)
{
	uint8_t pkt[DISCO_MAX_PACKET];
	union sockaddr_inet v4;
	int n = disco_seal(pkt, sizeof(pkt), p->disco_pub, pp->shared, m);

	if (n <= 0)
		return;
	if (fd < 0) {
		device_send_aside(p->dev, to, pkt, (size_t)n);
		return;
	}
	endpoint_unmap(to, &v4);
	sendto(fd, pkt, (size_t)n, MSG_DONTWAIT, &v4.sa, endpoint_len(&v4));
}

int paths_seal_ping(struct peer_paths *pp, uint8_t *out, size_t size, const uint8_t *txid)
{
	struct disco_msg m = {.type = DISCO_PING};

	memcpy(m.txid, txid, DISCO_TXID_LEN);
	memcpy(m.node_key, pp->owner->node_pub, 32);
	return disco_seal(out, size, pp->owner->disco_pub, pp->shared, &m);
}

void paths_send_aside(struct peer_paths *pp, const union sockaddr_inet *to, const void *pkt,
		      size_t len)
{
	device_send_aside(pp->owner->dev, to, pkt, len);
}

static void send_relayed(struct paths *p, struct peer_paths *pp, int relay_id,
			 const struct disco_msg *m)
{
	uint8_t pkt[DISCO_MAX_PACKET];
	int n = disco_seal(pkt, sizeof(pkt), p->disco_pub, pp->shared, m);

	if (n > 0 && relay_id > 0)
		relays_send(p->relays, (uint16_t)relay_id, pp->node_key, pkt, (size_t)n);
}

static void send_ping_fd(struct paths *p, struct peer_paths *pp, const union sockaddr_inet *to,
			 int fd)
{
	struct pending_ping *pg = &pp->pings[pp->ping_next++ % PATHS_MAX_PINGS];
	struct disco_msg m = {.type = DISCO_PING};

	random_bytes(m.txid, sizeof(m.txid));
	memcpy(m.node_key, p->node_pub, 32);
	memcpy(pg->txid, m.txid, sizeof(m.txid));
	pg->to = *to;
	pg->sent_ns = clock_mono_ns();
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char ep[ENDPOINT_STRLEN];
		endpoint_format(to, ep, sizeof(ep));
		log_debug("disco ping peer=%s to=%s fd=%d step=%u", pp->name, ep, fd, pp->step);
	}
	if (endpoint_is_relay(to))
		send_relayed(p, pp, endpoint_relay_id(to), &m);
	else
		send_direct(p, pp, to, fd, &m);
}

static void send_ping(struct paths *p, struct peer_paths *pp, const union sockaddr_inet *to)
{
	send_ping_fd(p, pp, to, -1);
}

static void ping_cand(struct paths *p, struct peer_paths *pp, const struct path_cand *c)
{
	send_ping_fd(p, pp, &c->ep, c->fd);
	if (pp->best >= 0 && c == &pp->cands[pp->best]) {
		uint64_t now = clock_mono_ns();
		pp->keepalive_ns = now;
		if (!pp->unanswered_ns)
			pp->unanswered_ns = now;
	}
}

static void send_call_me_maybe(struct paths *p, struct peer_paths *pp)
{
	struct disco_msg m = {.type = DISCO_CALL_ME_MAYBE};

	for (unsigned i = 0; i < p->n_self && m.n_endpoints < DISCO_MAX_ENDPOINTS; i++)
		m.endpoints[m.n_endpoints++] = p->self[i];
	send_relayed(p, pp, pp->home_relay, &m);
	pp->cmm_sent_ns = clock_mono_ns();
}

static int add_candidate_fd(struct peer_paths *pp, const union sockaddr_inet *ep, bool learned,
			    int fd)
{
	union sockaddr_inet e;

	endpoint_unmap(ep, &e);
	if (e.sa.sa_family != AF_INET && e.sa.sa_family != AF_INET6)
		return -1;
	for (unsigned i = 0; i < pp->n_cands; i++)
		if (endpoint_equal(&pp->cands[i].ep, &e) && pp->cands[i].fd == fd)
			return (int)i;
	if (pp->n_cands == PATHS_MAX_CANDIDATES) {
		/* Full: a learned source replaces the oldest learned one. */
		for (unsigned i = 0; learned && i < pp->n_cands; i++) {
			if (pp->cands[i].learned && (int)i != pp->best) {
				pp->cands[i] = (struct path_cand){.ep = e, .learned = true, .fd = fd};
				return (int)i;
			}
		}
		return -1;
	}
	pp->cands[pp->n_cands] =
		(struct path_cand){.ep = e, .learned = learned, .lan = is_lan(&e), .fd = fd};
	return (int)pp->n_cands++;
}

static int add_candidate(struct peer_paths *pp, const union sockaddr_inet *ep, bool learned)
{
	return add_candidate_fd(pp, ep, learned, -1);
}

/* --- choosing the path -------------------------------------------------- */

static bool better(const struct path_cand *a, const struct path_cand *b)
{
	if (a->lan != b->lan)
		return a->lan;
	/* IPv6 before IPv4 when the round trips are within 10 %. */
	if (a->ep.sa.sa_family != b->ep.sa.sa_family && a->rtt_ns * 10 <= b->rtt_ns * 11 &&
	    b->rtt_ns * 10 <= a->rtt_ns * 11)
		return a->ep.sa.sa_family == AF_INET6;
	return a->rtt_ns < b->rtt_ns;
}

static void use_relay(struct paths *p, struct peer_paths *pp, const char *why)
{
	union sockaddr_inet relay;
	char who[NETMAP_NAME_LEN];

	snprintf(pp->reason, sizeof(pp->reason), "%s", why);
	if (pp->best >= 0) {
		peer_label(pp, who, sizeof(who));
		log_info("path relay peer=%s reason=\"%s\"", who, why);
	}
	pp->best = -1;
	if (pp->home_relay) {
		endpoint_set_relay(&relay, (uint16_t)pp->home_relay);
		device_set_peer_endpoint(p->dev, pp->node_key, &relay);
	}
}

static void choose(struct paths *p, struct peer_paths *pp)
{
	uint64_t now = clock_mono_ns();
	int best = -1;
	char who[NETMAP_NAME_LEN], ep[ENDPOINT_STRLEN];

	for (unsigned i = 0; i < pp->n_cands; i++) {
		const struct path_cand *c = &pp->cands[i];
		if (!c->pong_ns || now - c->pong_ns > PATHS_TRUST_MS * MS)
			continue;
		if (best < 0 || better(c, &pp->cands[best]))
			best = (int)i;
	}
	if (best < 0 || best == pp->best)
		return;
	/* Hysteresis: a trusted path is left only for the LAN or a clearly
	 * shorter round trip (30 % and a millisecond), not for noise between
	 * two equal ones: tens of microseconds apart is the same path, and a
	 * sprayer that hit two of the opener's sockets keeps the one it took
	 * first (the opener may close the other as the search ends). */
	if (pp->best >= 0 && now - pp->cands[pp->best].pong_ns <= PATHS_TRUST_MS * MS &&
	    !(pp->cands[best].lan && !pp->cands[pp->best].lan) &&
	    (pp->cands[best].rtt_ns * 10 > pp->cands[pp->best].rtt_ns * 7 ||
	     pp->cands[best].rtt_ns + PATHS_SWITCH_GAIN_MS * MS > pp->cands[pp->best].rtt_ns))
		return;
	/* On a socket of the search, the device sends through that socket. */
	union sockaddr_inet path = pp->cands[best].ep;
	if (pp->cands[best].fd >= 0) {
		int slot = search_side_slot(pp->search, pp->cands[best].fd);
		if (slot < 0)
			return; /* a socket of the search that lost */
		endpoint_set_side(&path, &pp->cands[best].ep, (unsigned)slot);
	}
	/* A new best path: one atomic store in the data plane, no packet lost
	 * (the old path keeps delivering what is in flight). */
	pp->best = best;
	pp->reason[0] = '\0';
	pp->failures = 0;
	pp->unanswered_ns = 0;
	pp->keepalive_ns = now;
	if (!device_set_peer_endpoint(p->dev, pp->node_key, &path))
		log_warn("path not set: the device has no such peer");
	if (!pp->direct_ns)
		pp->direct_ns = now;
	peer_label(pp, who, sizeof(who));
	endpoint_format(&pp->cands[best].ep, ep, sizeof(ep));
	log_info("path direct peer=%s endpoint=%s rtt_us=%llu lan=%d after_ms=%llu", who, ep,
		 (unsigned long long)(pp->cands[best].rtt_ns / 1000), pp->cands[best].lan,
		 (unsigned long long)((now - pp->first_packet_ns) / MS));
}

/* --- the schedule -------------------------------------------------------- */

static void arm(struct paths *p, struct peer_paths *pp, uint64_t delay_ms)
{
	evloop_timer_arm(p->loop, &pp->timer, clock_mono_ns() + delay_ms * MS);
}

/* The peer's public address as its relay's STUN saw it (first in its list). */
static bool private_v4(const union sockaddr_inet *ep)
{
	uint32_t a = ntohl(ep->in.sin_addr.s_addr);

	return (a >> 24) == 10 || (a >> 20) == (172 << 4 | 1) || (a >> 16) == (192 << 8 | 168) ||
	       (a >> 22) == (100 << 2 | 1) || (a >> 24) == 127 || (a >> 16) == (169 << 8 | 254);
}

/* The peer's public IPv4 address (its relay's STUN saw it): the first
 * candidate from control that is not a private address. */
static const union sockaddr_inet *peer_public(const struct peer_paths *pp)
{
	for (unsigned i = 0; i < pp->n_cands; i++)
		if (!pp->cands[i].learned && pp->cands[i].fd < 0 &&
		    pp->cands[i].ep.sa.sa_family == AF_INET && !private_v4(&pp->cands[i].ep))
			return &pp->cands[i].ep;
	return NULL;
}

/* Ends the peer's search and forgets the candidates on its sockets, whose
 * descriptors close with it (a number must not outlive its socket). */
static void end_search(struct peer_paths *pp)
{
	unsigned kept = 0;

	if (!pp->search)
		return;
	search_free(pp->search);
	pp->search = NULL;
	if (pp->best >= 0 && pp->cands[pp->best].fd >= 0)
		pp->best = -1; /* callers only end a search while on the relay */
	for (unsigned i = 0; i < pp->n_cands; i++) {
		if (pp->cands[i].fd >= 0)
			continue;
		if ((int)i == pp->best)
			pp->best = (int)kept;
		pp->cands[kept++] = pp->cands[i];
	}
	pp->n_cands = kept;
}

static void make_plan(struct paths *p, struct peer_paths *pp)
{
	struct plan old = pp->plan;
	char who[NETMAP_NAME_LEN];

	if (!p->has_nat || !pp->has_nat) {
		pp->plan = (struct plan){.kind = PLAN_PUNCH};
		snprintf(pp->plan.reason, sizeof(pp->plan.reason), "hole punching");
	} else {
		traversal_plan(&p->nat, &pp->nat, memcmp(p->node_pub, pp->node_key, 32) < 0,
			       &pp->plan);
	}
	if (memcmp(&old, &pp->plan, sizeof(old))) {
		peer_label(pp, who, sizeof(who));
		log_info("plan peer=%s plan=\"%s\"", who, pp->plan.reason);
		/* A search under the old plan (another role) cannot meet the
		 * peer's: drop it, the new plan starts its own. */
		if (search_running(pp->search)) {
			end_search(pp);
			pp->search_retry_ns = 0;
		}
	}
}

static void maybe_search(struct paths *p, struct peer_paths *pp, bool asked)
{
	const union sockaddr_inet *target = peer_public(pp);
	uint64_t now = clock_mono_ns();

	if (pp->plan.kind != PLAN_SEARCH || pp->best >= 0 || !target || search_running(pp->search))
		return;
	/* The peer asking (its call-me-maybe when it starts a search) overrides
	 * our backoff, once our last search is 20 s old: both sides must
	 * search at the same time. */
	if (now < pp->search_retry_ns && !(asked && now - pp->search_started_ns > 20000 * MS))
		return;
	end_search(pp);
	if (search_start(&pp->search, pp, pp->plan.i_open, target) == 0) {
		pp->search_started_ns = now;
		pp->search_retry_ns =
			now + (30000ULL << (pp->search_failures < 3 ? pp->search_failures : 3)) * MS;
		send_call_me_maybe(p, pp); /* the peer searches now too */
	}
}

/* tell_peer: send call-me-maybe, so that the peer pings us too.  Never in
 * answer to the peer's ping, and in answer to its call-me-maybe only when
 * we sent none for a second (it carries our candidates, sooner than
 * control's next delta): two nodes on a relay would bounce call-me-maybe
 * between them without end (30 % of a core in each knitd and in the relay,
 * and a flood of pings whose pongs no longer matched a pending ping). */
static void start_discovery(struct paths *p, struct peer_paths *pp, bool tell_peer)
{
	make_plan(p, pp);
	if (!pp->online || !pp->n_cands) {
		snprintf(pp->reason, sizeof(pp->reason), "%s",
			 !pp->online ? "peer offline" : "peer has no endpoints");
		return;
	}
	pp->step = 0;
	pp->started_ns = clock_mono_ns();
	if (pp->best < 0)
		snprintf(pp->reason, sizeof(pp->reason), "%s",
			 pp->plan.kind == PLAN_RELAY ? pp->plan.reason : "looking for a direct path");
	if (tell_peer)
		send_call_me_maybe(p, pp);
	maybe_search(p, pp, false);
	arm(p, pp, 0);
}


static void ping_all(struct paths *p, struct peer_paths *pp)
{
	/* A pair that cannot be direct sends no probe beyond its LAN. */
	for (unsigned i = 0; i < pp->n_cands; i++)
		if (pp->plan.kind != PLAN_RELAY || pp->cands[i].lan)
			ping_cand(p, pp, &pp->cands[i]);
}

/* Data moved either way in the last PATHS_ACTIVE_MS. */
static bool peer_active(struct paths *p, struct peer_paths *pp, uint64_t now)
{
	struct wg_peer *wp = device_find_peer(p->dev, pp->node_key);
	uint64_t bytes;

	if (!wp)
		return false;
	bytes = atomic_load_explicit(&wp->rx_bytes, memory_order_relaxed) +
		atomic_load_explicit(&wp->tx_bytes, memory_order_relaxed);
	if (bytes != pp->bytes_seen) {
		pp->bytes_seen = bytes;
		pp->active_ns = now;
	}
	return pp->active_ns && now - pp->active_ns < PATHS_ACTIVE_MS * MS;
}

/* While data flows, the best path is pinged every 500 ms, so that a dead
 * path is left within PATHS_DEAD_MS and a half; while the peer is idle,
 * just often enough that our NAT keeps the mapping (half the lifetime the
 * probe measured); after a ping goes unanswered, every 500 ms again.  Now
 * and then, while data flows, every candidate is pinged for a better path. */
static void keepalive(struct paths *p, struct peer_paths *pp, uint64_t now)
{
	bool active = peer_active(p, pp, now);
	uint64_t every = active || pp->unanswered_ns ? PATHS_HEARTBEAT_MS : p->idle_keepalive_ms;

	if (active && now - pp->started_ns > PATHS_REPROBE_MS * MS) {
		pp->started_ns = now;
		ping_all(p, pp);
	} else if (now - pp->keepalive_ns >= every * MS) {
		ping_cand(p, pp, &pp->cands[pp->best]);
	}
}

static void peer_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct peer_paths *pp = arg;
	struct paths *p = pp->owner;
	uint64_t now = clock_mono_ns();

	if (pp->best >= 0 && pp->unanswered_ns && now - pp->unanswered_ns >= PATHS_DEAD_MS * MS) {
		use_relay(p, pp, "direct path stopped answering");
		start_discovery(p, pp, true);
		return;
	}
	if (pp->step < SCHEDULE_STEPS) {
		ping_all(p, pp);
		if (pp->step == 6)
			send_call_me_maybe(p, pp); /* in case the first crossed a restart */
		pp->step++;
		if (pp->step < SCHEDULE_STEPS) {
			arm(p, pp, schedule_ms[pp->step] - schedule_ms[pp->step - 1]);
			return;
		}
	}
	if (pp->best >= 0) {
		keepalive(p, pp, now);
		arm(p, pp, PATHS_HEARTBEAT_MS);
		return;
	}
	/* No direct path this round: stay on the relay, retry later. */
	unsigned backoff = RETRY_MIN_MS << (pp->failures < 4 ? pp->failures : 4);
	pp->failures++;
	if (pp->plan.kind == PLAN_RELAY)
		snprintf(pp->reason, sizeof(pp->reason), "%s", pp->plan.reason);
	else
		snprintf(pp->reason, sizeof(pp->reason), "no pong from %u candidates%s (retry in %u s)",
			 pp->n_cands, pp->plan.kind == PLAN_SEARCH ? " nor the birthday search" : "",
			 (backoff > RETRY_MAX_MS ? RETRY_MAX_MS : backoff) / 1000);
	if (pp->search && !search_running(pp->search) && search_winner_fd(pp->search) < 0)
		pp->search_failures++;
	evloop_timer_arm(loop, t, now + (uint64_t)(backoff > RETRY_MAX_MS ? RETRY_MAX_MS : backoff) * MS);
	pp->step = 0;
	pp->started_ns = now + (uint64_t)backoff * MS;
}

/* --- peers ----------------------------------------------------------------- */

static struct peer_paths *find(const struct paths *p, const uint8_t key[32])
{
	for (struct peer_paths *pp = p->peers; pp; pp = pp->next)
		if (!memcmp(pp->node_key, key, 32))
			return pp;
	return NULL;
}

static struct peer_paths *find_disco(const struct paths *p, const uint8_t key[32])
{
	for (struct peer_paths *pp = p->peers; pp; pp = pp->next)
		if (crypto_memeq(pp->disco_key, key, 32))
			return pp;
	return NULL;
}

const struct peer_paths *paths_find(const struct paths *p, const uint8_t node_key[32])
{
	return find(p, node_key);
}

void paths_peer_update(struct paths *p, const struct netmap_peer *np)
{
	struct peer_paths *pp = find(p, np->node_key);
	bool fresh = !pp;

	if (!pp) {
		pp = calloc(1, sizeof(*pp));
		if (!pp)
			return;
		pp->owner = p;
		memcpy(pp->node_key, np->node_key, 32);
		pp->best = -1;
		ev_timer_init(&pp->timer, peer_timer, pp);
		ev_timer_init(&pp->pinger_timer, pinger_tick, pp);
		pp->next = p->peers;
		p->peers = pp;
	}
	if (fresh || memcmp(pp->disco_key, np->disco_key, 32)) {
		/* A new disco key: a restarted peer, every old path is void. */
		char b64[KEY_BASE64_LEN + 1];
		key_to_base64(b64, np->disco_key);
		log_info("peer disco key peer=%s disco_key=%.8s", np->name, b64);
		memcpy(pp->disco_key, np->disco_key, 32);
		disco_shared_key(pp->shared, p->disco_priv, pp->disco_key);
		pp->n_cands = 0;
		pp->best = -1;
		pp->failures = 0;
		pp->first_packet_ns = clock_mono_ns(); /* time to direct counts from here */
		pp->direct_ns = 0;
		fresh = true;
	}
	snprintf(pp->name, sizeof(pp->name), "%s", np->name);
	pp->home_relay = np->home_relay;
	pp->online = np->online;
	/* Control clears a node's class when it logs in again: a class left
	 * from its last run (another NAT, maybe) must not plan this one. */
	if (np->has_nat != pp->has_nat ||
	    (np->has_nat && memcmp(&pp->nat, &np->nat, sizeof(np->nat)))) {
		pp->has_nat = np->has_nat;
		pp->nat = np->nat;
		fresh = true; /* a new plan */
	}
	for (unsigned i = 0; i < np->n_endpoints; i++) {
		if (p->hide_lan && is_lan(&np->endpoints[i]))
			continue;
		add_candidate(pp, &np->endpoints[i], false);
	}
	if (pp->best < 0)
		use_relay(p, pp, pp->online ? "looking for a direct path" : "peer offline");
	if (fresh || (pp->best < 0 && !ev_timer_armed(&pp->timer)))
		start_discovery(p, pp, true);
}

static void peer_paths_free(struct peer_paths *pp)
{
	evloop_timer_cancel(pp->owner->loop, &pp->timer);
	evloop_timer_cancel(pp->owner->loop, &pp->pinger_timer);
	search_free(pp->search);
	if (pp->pinger)
		api_reply_error(pp->pinger, "peer left the map");
	memzero_explicit(pp->shared, sizeof(pp->shared));
	free(pp);
}

void paths_peer_remove(struct paths *p, const uint8_t node_key[32])
{
	struct peer_paths **pp = &p->peers;

	while (*pp && memcmp((*pp)->node_key, node_key, 32))
		pp = &(*pp)->next;
	if (*pp) {
		struct peer_paths *victim = *pp;
		*pp = victim->next;
		peer_paths_free(victim);
	}
}

/* --- disco input ----------------------------------------------------------- */

static void report_pong(struct peer_paths *pp, const union sockaddr_inet *from, uint64_t rtt)
{
	char ep[ENDPOINT_STRLEN];
	bool direct = !endpoint_is_relay(from);

	if (!pp->pinger)
		return;
	endpoint_format(from, ep, sizeof(ep));
	api_reply(pp->pinger,
		  json_pack("{s:b,s:s,s:s,s:f}", "pong", 1, "path", direct ? "direct" : "relay",
			    "endpoint", ep, "rtt_ms", (double)rtt / 1e6),
		  false);
	if (--pp->pinger_left == 0 || (direct && pp->pinger_stop_direct)) {
		api_reply(pp->pinger, json_pack("{s:b,s:b}", "ok", 1, "direct", direct), true);
		pp->pinger = NULL;
		evloop_timer_cancel(pp->owner->loop, &pp->pinger_timer);
	}
}

static void on_pong(struct paths *p, struct peer_paths *pp, const struct disco_msg *m,
		    const union sockaddr_inet *src, int fd)
{
	uint64_t now = clock_mono_ns();

	/* A spray probe that landed: src is the opener's mapping. */
	if (pp->search && !endpoint_is_relay(src) &&
	    crypto_memeq(m->txid, search_txid(pp->search), DISCO_TXID_LEN)) {
		int c = add_candidate_fd(pp, src, true, fd);
		if (c >= 0) {
			pp->cands[c].pong_ns = now;
			pp->cands[c].rtt_ns = 1;
			choose(p, pp);
			ping_cand(p, pp, &pp->cands[c]); /* a real round trip soon */
		}
		return;
	}
	for (unsigned i = 0; i < PATHS_MAX_PINGS; i++) {
		struct pending_ping *pg = &pp->pings[i];
		int c;
		if (!pg->sent_ns || !crypto_memeq(pg->txid, m->txid, DISCO_TXID_LEN))
			continue;
		pg->sent_ns = now - pg->sent_ns; /* now the RTT */
		report_pong(pp, &pg->to, pg->sent_ns);
		if (!endpoint_is_relay(&pg->to) && !endpoint_is_relay(src) &&
		    (c = add_candidate_fd(pp, &pg->to, false, fd)) >= 0) {
			pp->cands[c].pong_ns = now;
			pp->cands[c].rtt_ns = pg->sent_ns;
			if (c == pp->best)
				pp->unanswered_ns = 0; /* the path answers */
			choose(p, pp);
		}
		memset(pg, 0, sizeof(*pg));
		return;
	}
}

static void on_ping(struct paths *p, struct peer_paths *pp, const struct disco_msg *m,
		    const union sockaddr_inet *src, int fd)
{
	struct disco_msg pong = {.type = DISCO_PONG, .src = *src};

	memcpy(pong.txid, m->txid, DISCO_TXID_LEN);
	if (endpoint_is_relay(src)) {
		send_relayed(p, pp, endpoint_relay_id(src), &pong);
		return;
	}
	send_direct(p, pp, src, fd, &pong);
	/* Its NAT just showed us a source that reaches us: ping it back, which
	 * also opens our NAT towards it. */
	int c = add_candidate_fd(pp, src, true, fd);
	if (c >= 0 && c != pp->best)
		ping_cand(p, pp, &pp->cands[c]);
	if (!ev_timer_armed(&pp->timer) || (pp->best < 0 && pp->step >= SCHEDULE_STEPS))
		start_discovery(p, pp, false);
}

static struct peer_paths *disco_input(struct paths *p, const uint8_t *pkt, size_t len,
				      const union sockaddr_inet *src, const uint8_t *relay_src,
				      int fd, enum disco_type *type)
{
	struct peer_paths *pp = find_disco(p, disco_sender(pkt));
	struct disco_msg m;

	if (!pp || disco_open(pkt, len, pp->shared, &m) < 0) {
		/* Not a peer of ours, or forged, or a key we have not heard of
		 * yet: dropped, and said once in a while (a key that stays
		 * unknown is a map that went wrong). */
		uint64_t now = clock_mono_ns();
		p->disco_dropped++;
		if (now - p->disco_dropped_logged_ns > 5000 * MS) {
			char ep[ENDPOINT_STRLEN], b64[KEY_BASE64_LEN + 1];
			endpoint_format(src, ep, sizeof(ep));
			key_to_base64(b64, disco_sender(pkt));
			log_info("disco dropped from=%s disco_key=%.8s why=\"%s\" dropped=%llu", ep,
				 b64, pp ? "does not open" : "unknown disco key",
				 (unsigned long long)p->disco_dropped);
			p->disco_dropped_logged_ns = now;
		}
		return NULL;
	}
	*type = m.type;
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char ep[ENDPOINT_STRLEN];
		endpoint_format(src, ep, sizeof(ep));
		log_debug("disco in peer=%s type=%d from=%s", pp->name, m.type, ep);
	}
	/* Through a relay, the relay vouches for the sender's node key. */
	if (relay_src && memcmp(relay_src, pp->node_key, 32))
		return NULL;
	switch (m.type) {
	case DISCO_PING:
		if (memcmp(m.node_key, pp->node_key, 32))
			return NULL;
		on_ping(p, pp, &m, src, fd);
		break;
	case DISCO_PONG:
		on_pong(p, pp, &m, src, fd);
		break;
	case DISCO_CALL_ME_MAYBE:
		for (unsigned i = 0; i < m.n_endpoints; i++)
			if (!(p->hide_lan && is_lan(&m.endpoints[i])))
				add_candidate(pp, &m.endpoints[i], false);
		/* The peer is pinging us now: a burst from us too, so that one
		 * of ours crosses one of its (without a call-me-maybe back),
		 * and a search with it if the plan says so. */
		if (pp->best < 0) {
			start_discovery(p, pp,
					clock_mono_ns() - pp->cmm_sent_ns > PATHS_CMM_ANSWER_MS * MS);
			maybe_search(p, pp, true);
		}
		break;
	}
	return pp;
}

void paths_disco_input(struct paths *p, const uint8_t *pkt, size_t len,
		       const union sockaddr_inet *src, const uint8_t *relay_src)
{
	enum disco_type type;

	disco_input(p, pkt, len, src, relay_src, -1, &type);
}

bool paths_aux_input(struct peer_paths *pp, int fd, const uint8_t *pkt, size_t len,
		     const union sockaddr_inet *src)
{
	struct paths *p = pp->owner;
	union sockaddr_inet from;
	enum disco_type type;

	endpoint_unmap(src, &from);
	if (!disco_is_message(pkt, len)) {
		/* WireGuard on a socket of the search: the peer took the path
		 * there, and the device reads that socket from now on; but
		 * one forged datagram must not pick the search's socket. */
		union sockaddr_inet side;
		int slot = device_datagram_from_peer(p->dev, pp->node_key, pkt, len, &from)
				   ? search_side_slot(pp->search, fd)
				   : -1;
		if (slot > 0) {
			endpoint_set_side(&side, &from, (unsigned)slot);
			device_loop_rx_add(p->dev, &side, pkt, len);
			device_relayed_flush(p->dev);
		}
		return false;
	}
	if (disco_input(p, pkt, len, &from, NULL, fd, &type) != pp)
		return false;
	return pp->best >= 0 && pp->cands[pp->best].fd == fd;
}

void paths_set_self_nat(struct paths *p, const struct nat_class *nat)
{
	if (p->has_nat && !memcmp(&p->nat, nat, sizeof(*nat)))
		return;
	p->has_nat = true;
	p->nat = *nat;
	for (struct peer_paths *pp = p->peers; pp; pp = pp->next)
		if (pp->best < 0)
			start_discovery(p, pp, true);
}

void paths_set_mapping_lifetime(struct paths *p, unsigned idle_ms, bool at_least)
{
	unsigned every = idle_ms / 2;

	/* A lifetime is at least what the mapping survived: keep it alive at
	 * half that, never more often than the heartbeat and never less than
	 * every 25 s (a NAT that kept it for two minutes may still forget it
	 * sooner under load). */
	if (every < PATHS_HEARTBEAT_MS)
		every = PATHS_HEARTBEAT_MS;
	if (every > PATHS_IDLE_KEEPALIVE_MAX_MS)
		every = PATHS_IDLE_KEEPALIVE_MAX_MS;
	p->idle_keepalive_ms = every;
	log_info("idle keepalive every_ms=%u mapping_survived_ms=%u%s", every, idle_ms,
		 at_least ? " (or longer)" : "");
}

/* --- knit ping -------------------------------------------------------------- */

/* Through the best path there is: direct if confirmed, else the relay. */
static void ping_once(struct paths *p, struct peer_paths *pp)
{
	union sockaddr_inet relay;

	endpoint_set_relay(&relay, (uint16_t)pp->home_relay);
	if (pp->best >= 0)
		ping_cand(p, pp, &pp->cands[pp->best]);
	else
		send_ping(p, pp, &relay);
}

static void pinger_tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct peer_paths *pp = arg;

	if (!pp->pinger)
		return;
	ping_once(pp->owner, pp);
	evloop_timer_arm(loop, t, clock_mono_ns() + 1000 * MS);
}

int paths_ping(struct paths *p, const uint8_t node_key[32], struct api_conn *c, unsigned count,
	       bool all)
{
	struct peer_paths *pp = find(p, node_key);

	if (!pp)
		return -ENOENT;
	if (pp->pinger)
		return -EBUSY;
	pp->pinger = c;
	pp->pinger_left = count;
	pp->pinger_stop_direct = !all;
	/* One ping a second on the best path; discovery pings answer the
	 * pinger too, so the first direct pong shows as soon as there is one. */
	pinger_tick(p->loop, &pp->pinger_timer, pp);
	if (pp->best < 0)
		start_discovery(p, pp, true);
	return 0;
}

void paths_api_gone(struct paths *p, struct api_conn *c)
{
	for (struct peer_paths *pp = p->peers; pp; pp = pp->next)
		if (pp->pinger == c)
			pp->pinger = NULL;
}

/* --- setup ----------------------------------------------------------------- */

void paths_init(struct paths *p, struct evloop *loop, struct wg_device *dev, struct relays *relays,
		const uint8_t disco_priv[32], const uint8_t node_pub[32])
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->dev = dev;
	p->relays = relays;
	memcpy(p->disco_priv, disco_priv, 32);
	x25519_public(p->disco_pub, disco_priv);
	memcpy(p->node_pub, node_pub, 32);
	char b64[KEY_BASE64_LEN + 1];
	key_to_base64(b64, p->disco_pub);
	log_info("disco key=%.8s", b64);
	p->idle_keepalive_ms = PATHS_IDLE_KEEPALIVE_MS;
}

void paths_destroy(struct paths *p)
{
	while (p->peers) {
		struct peer_paths *pp = p->peers;
		p->peers = pp->next;
		peer_paths_free(pp);
	}
	memzero_explicit(p->disco_priv, sizeof(p->disco_priv));
}

void paths_set_self(struct paths *p, const union sockaddr_inet *eps, unsigned n)
{
	bool changed;

	n = n < PATHS_MAX_CANDIDATES ? n : PATHS_MAX_CANDIDATES;
	changed = n != p->n_self || memcmp(p->self, eps, n * sizeof(*eps));
	p->n_self = n;
	memcpy(p->self, eps, n * sizeof(*eps));
	if (!changed)
		return;
	/* A new candidate (the relay's STUN just answered, a port mapping):
	 * peers still looking for a path hear it now through the relay,
	 * not at control's next delta. */
	for (struct peer_paths *pp = p->peers; pp; pp = pp->next)
		if (pp->online && pp->best < 0)
			send_call_me_maybe(p, pp);
}
