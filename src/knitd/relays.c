// SPDX-License-Identifier: MIT
#include "knitd/relays.h"

#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"
#include "disco/disco.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "relay/client.h"
#include "stun/stun.h"

#define MS		   1000000ULL
#define RELAYS_DROP_LOG_MS 5000

static struct relay_slot *slot_by_id(struct relays *r, int id)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->slots[i].info.id == id)
			return &r->slots[i];
	return NULL;
}

static void on_recv(void *arg, const uint8_t src[32], const uint8_t *pkt, size_t len)
{
	struct relay_slot *s = arg;
	struct relays *r = s->owner;

	if (disco_is_message(pkt, len)) {
		if (r->disco_recv)
			r->disco_recv(r->disco_arg, s->info.id, src, pkt, len);
		return;
	}
	/* Batched: opened and written to the TUN together, coalesced, once
	 * this round's reads are done. */
	device_relayed_add(r->dev, (uint16_t)s->info.id, pkt, len);
}

static void on_peer_gone(void *arg, const uint8_t key[32], int reason)
{
	/* The path manager (NAT traversal) will care; the relay path stays. */
}

static void on_state(void *arg, bool connected, const char *why)
{
	struct relay_slot *s = arg;

	if (connected)
		log_info("relay connected relay=%d host=%s", s->info.id, s->info.host);
	else
		log_warn("relay disconnected relay=%d reason=\"%s\"", s->info.id, why);
}

static const struct relay_client_ops client_ops = {
	.recv = on_recv,
	.peer_gone = on_peer_gone,
	.state = on_state,
};

static struct relay_client *client_for(struct relays *r, struct relay_slot *s)
{
	if (!s->client &&
	    relay_client_new(&s->client, r->loop, s->info.host, s->info.port, s->info.key,
			     r->node_priv, &client_ops, s) < 0) {
		log_error("cannot start relay client relay=%d host=%s", s->info.id, s->info.host);
		s->client = NULL;
	}
	return s->client;
}

/* A relay connection that cannot take packets as fast as they come (its
 * socket and its queue are full) drops them: say so, at most every 5 s. */
static void note_drop(struct relay_slot *s)
{
	uint64_t now;

	s->tx_dropped++;
	now = clock_mono_ns();
	if (s->drop_logged_ns && now - s->drop_logged_ns < RELAYS_DROP_LOG_MS * MS)
		return;
	s->drop_logged_ns = now;
	log_warn("relay send queue full, packets dropped relay=%d host=%s dropped=%llu "
		 "queue_bytes=%u",
		 s->info.id, s->info.host, (unsigned long long)s->tx_dropped,
		 RELAY_CLIENT_QUEUE_BYTES);
}

void relays_send(void *arg, uint16_t relay_id, const uint8_t key[32], const uint8_t *pkt,
		 size_t len)
{
	struct relays *r = arg;
	struct relay_slot *s = slot_by_id(r, relay_id);
	struct relay_client *c = s ? client_for(r, s) : NULL;

	if (c && relay_client_send(c, key, pkt, len) == -ENOBUFS)
		note_drop(s);
}

static void send_probe(struct relays *r, struct relay_slot *s)
{
	uint8_t req[STUN_BUF_LEN];
	union sockaddr_inet to;
	char text[NETMAP_HOST_LEN + 16];
	int n;

	snprintf(text, sizeof(text), "%s:%u", s->info.host, s->info.stun_port);
	if (strchr(s->info.host, ':'))
		snprintf(text, sizeof(text), "[%s]:%u", s->info.host, s->info.stun_port);
	if (endpoint_parse(text, true, &to) < 0)
		return;
	stun_txid_new(s->txid);
	n = stun_build_binding_request(req, sizeof(req), s->txid, 0);
	if (n > 0 && device_send_aside(r->dev, &to, req, (size_t)n) == 0) {
		s->probe_sent_ns = clock_mono_ns();
		return;
	}
	s->probe_sent_ns = 0;
}

static void probe_all(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct relays *r = arg;
	uint64_t next = RELAYS_PROBE_MS;
	bool silent = false;

	for (unsigned i = 0; i < r->n; i++) {
		if (r->slots[i].probe_sent_ns)
			r->slots[i].misses++; /* the last one was never answered */
		silent |= !r->slots[i].rtt_ns;
		send_probe(r, &r->slots[i]);
	}
	/* Until every relay has answered once, ask again after 1, 2, 4, 8 and
	 * 16 s: a first answer lost would leave us without the public
	 * candidate peers punch to for the whole period. */
	if (silent && r->quick_probes < 5)
		next = 1000ULL << r->quick_probes++;
	evloop_timer_arm(loop, &r->decide, clock_mono_ns() + RELAYS_PROBE_WAIT_MS * MS);
	evloop_timer_arm(loop, t, clock_mono_ns() + next * MS);
}

/* Lowest RTT wins; the current home stays unless clearly beaten or gone. */
static void decide(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct relays *r = arg;
	struct relay_slot *cur = slot_by_id(r, r->home), *best = NULL;

	for (unsigned i = 0; i < r->n; i++) {
		struct relay_slot *s = &r->slots[i];
		if (s->rtt_ns && s->misses < 3 && (!best || s->rtt_ns < best->rtt_ns))
			best = s;
	}
	if (!best && !cur && r->n)
		best = &r->slots[0]; /* no STUN answer yet: any relay beats none */
	if (!best || best == cur)
		return;
	if (cur && cur->misses < 3 && cur->rtt_ns && best->rtt_ns * 10 > cur->rtt_ns * 7)
		return;
	log_info("home relay relay=%d rtt_us=%llu", best->info.id,
		 (unsigned long long)(best->rtt_ns / 1000));
	r->home = best->info.id;
	client_for(r, best); /* peers reach us there */
	r->changed(r->arg);
}

void relays_stun_input(struct relays *r, const uint8_t *pkt, size_t len,
		       const union sockaddr_inet *src)
{
	struct stun_msg m;

	if (stun_parse(pkt, len, &m) < 0 || m.type != STUN_BINDING_SUCCESS || !m.has_mapped)
		return;
	for (unsigned i = 0; i < r->n; i++) {
		struct relay_slot *s = &r->slots[i];
		union sockaddr_inet mapped;
		bool first;

		if (!s->probe_sent_ns || !crypto_memeq(s->txid, m.txid, sizeof(s->txid)))
			continue;
		first = !s->rtt_ns && !r->home;
		s->rtt_ns = clock_mono_ns() - s->probe_sent_ns;
		s->probe_sent_ns = 0;
		s->misses = 0;
		memset(&mapped, 0, sizeof(mapped));
		memcpy(&mapped, &m.mapped, sizeof(mapped));
		endpoint_unmap(&mapped, &mapped);
		if (!endpoint_equal(&mapped, &s->mapped)) {
			char ep[ENDPOINT_STRLEN];
			endpoint_format(&mapped, ep, sizeof(ep));
			log_info("public address relay=%d address=%s", s->info.id, ep);
			s->mapped = mapped;
			r->changed(r->arg);
		}
		if (first)
			decide(r->loop, &r->decide, r);
		return;
	}
}

void relays_init(struct relays *r, struct evloop *loop, struct wg_device *dev,
		 const uint8_t node_priv[32], void (*changed)(void *), void *arg)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->dev = dev;
	memcpy(r->node_priv, node_priv, 32);
	r->changed = changed;
	r->arg = arg;
	ev_timer_init(&r->probe, probe_all, r);
	ev_timer_init(&r->decide, decide, r);
}

void relays_clear(struct relays *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		relay_client_free(r->slots[i].client);
		r->slots[i].client = NULL;
	}
	r->n = 0;
	r->home = 0;
	evloop_timer_cancel(r->loop, &r->probe);
	evloop_timer_cancel(r->loop, &r->decide);
}

void relays_destroy(struct relays *r)
{
	relays_clear(r);
	memzero_explicit(r->node_priv, sizeof(r->node_priv));
}

void relays_set_map(struct relays *r, const struct netmap_relay *map, unsigned n)
{
	struct relay_slot old[RELAYS_MAX];
	unsigned n_old = r->n;

	memcpy(old, r->slots, sizeof(old));
	r->quick_probes = 0;
	if (n > RELAYS_MAX)
		n = RELAYS_MAX;
	memset(r->slots, 0, sizeof(r->slots));
	for (unsigned i = 0; i < n; i++) {
		struct relay_slot *s = &r->slots[i];
		s->info = map[i];
		s->owner = r;
		/* A client's callbacks point at its slot: it may stay only
		 * in the same slot, for the same relay. */
		for (unsigned j = i; j < n_old && j == i; j++) {
			if (old[j].client && !memcmp(&old[j].info, &map[i], sizeof(map[i]))) {
				s->client = old[j].client;
				old[j].client = NULL;
				s->rtt_ns = old[j].rtt_ns;
				s->mapped = old[j].mapped;
			}
		}
	}
	r->n = n;
	for (unsigned j = 0; j < n_old; j++)
		relay_client_free(old[j].client);
	if (!slot_by_id(r, r->home))
		r->home = 0;
	probe_all(r->loop, &r->probe, r);
	if (!r->home)
		decide(r->loop, &r->decide, r); /* a home at once; STUN refines it */
}

bool relays_connected(struct relays *r, int id)
{
	struct relay_slot *s = slot_by_id(r, id);

	return s && s->client && relay_client_connected(s->client);
}

bool relays_mapped(const struct relays *r, union sockaddr_inet *out)
{
	for (unsigned i = 0; i < r->n; i++) {
		if (r->slots[i].info.id == r->home && r->slots[i].mapped.sa.sa_family) {
			*out = r->slots[i].mapped;
			return true;
		}
	}
	return false;
}
