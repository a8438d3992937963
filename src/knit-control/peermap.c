// SPDX-License-Identifier: MIT
#include "knit-control/peermap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/log.h"

static void flush_cb(struct evloop *loop, struct ev_timer *t, void *arg);
static bool node_relay_active(const struct peermap *pm, const struct node_rt *node);

static size_t key_bucket(const struct peermap *pm, const uint8_t key[32])
{
	uint8_t digest[16];
	uint64_t h;

	/* Keyed: node keys are chosen by whoever connects. */
	blake2s(digest, sizeof(digest), pm->hash_key, sizeof(pm->hash_key), key, 32);
	memcpy(&h, digest, sizeof(h));
	return h & (pm->buckets - 1);
}

static size_t id_bucket(const struct peermap *pm, int64_t id)
{
	return ((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 20) & (pm->buckets - 1);
}

static int grow(struct peermap *pm)
{
	size_t n = pm->buckets ? pm->buckets * 2 : 1024;
	struct node_rt **bk = calloc(n, sizeof(*bk)), **bi = calloc(n, sizeof(*bi));

	if (!bk || !bi) {
		free(bk);
		free(bi);
		return -ENOMEM;
	}
	free(pm->by_key);
	free(pm->by_id);
	pm->by_key = bk;
	pm->by_id = bi;
	pm->buckets = n;
	for (struct node_rt *r = pm->all; r; r = r->all_next) {
		size_t k = key_bucket(pm, r->n.node_key), i = id_bucket(pm, r->n.id);
		r->key_next = bk[k];
		bk[k] = r;
		r->id_next = bi[i];
		bi[i] = r;
	}
	return 0;
}

static int load_node(const struct store_node *n, void *arg)
{
	struct node_rt *r = peermap_upsert(arg, n);

	if (r) {
		r->visible_sent = node_visible(arg, r);
		r->relay_sent = node_relay_active(arg, r);
	}
	return r ? 0 : -ENOMEM;
}

int peermap_init(struct peermap *pm, struct evloop *loop, struct store *store)
{
	memset(pm, 0, sizeof(*pm));
	pm->loop = loop;
	pm->store = store;
	random_bytes(pm->hash_key, sizeof(pm->hash_key));
	ev_timer_init(&pm->flush, flush_cb, pm);
	if (grow(pm) < 0 || store_node_list(store, load_node, pm) != 0)
		return -ENOMEM;
	/* Loading is not news: nobody is connected yet. */
	while (pm->dirty) {
		pm->dirty->dirty = false;
		pm->dirty = pm->dirty->dirty_next;
	}
	evloop_timer_cancel(loop, &pm->flush);
	return peermap_load_relays(pm);
}

void peermap_destroy(struct peermap *pm)
{
	struct node_rt *r = pm->all;

	while (r) {
		struct node_rt *next = r->all_next;
		free(r);
		r = next;
	}
	evloop_timer_cancel(pm->loop, &pm->flush);
	free(pm->by_key);
	free(pm->by_id);
	free(pm->relays);
	memset(pm, 0, sizeof(*pm));
}

struct node_rt *peermap_find_key(struct peermap *pm, const uint8_t key[32])
{
	for (struct node_rt *r = pm->by_key[key_bucket(pm, key)]; r; r = r->key_next)
		if (crypto_memeq(r->n.node_key, key, 32))
			return r;
	return NULL;
}

struct node_rt *peermap_find_id(struct peermap *pm, int64_t id)
{
	for (struct node_rt *r = pm->by_id[id_bucket(pm, id)]; r; r = r->id_next)
		if (r->n.id == id)
			return r;
	return NULL;
}

void peermap_mark_dirty(struct peermap *pm, struct node_rt *node)
{
	if (node->dirty)
		return;
	node->dirty = true;
	node->dirty_next = pm->dirty;
	pm->dirty = node;
	if (!ev_timer_armed(&pm->flush))
		evloop_timer_arm(pm->loop, &pm->flush,
				 clock_mono_ns() + PEERMAP_FLUSH_MS * 1000000ULL);
}

struct node_rt *peermap_upsert(struct peermap *pm, const struct store_node *n)
{
	struct node_rt *r = peermap_find_id(pm, n->id);
	size_t k, i;

	if (r) {
		r->n = *n;
		peermap_mark_dirty(pm, r);
		return r;
	}
	if (pm->count + 1 > pm->buckets && grow(pm) < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->n = *n;
	k = key_bucket(pm, n->node_key);
	i = id_bucket(pm, n->id);
	r->key_next = pm->by_key[k];
	pm->by_key[k] = r;
	r->id_next = pm->by_id[i];
	pm->by_id[i] = r;
	r->all_next = pm->all;
	if (pm->all)
		pm->all->all_prev = r;
	pm->all = r;
	pm->count++;
	peermap_mark_dirty(pm, r);
	return r;
}

static void unlink_node(struct peermap *pm, struct node_rt *r)
{
	struct node_rt **pp;

	for (pp = &pm->by_key[key_bucket(pm, r->n.node_key)]; *pp != r; pp = &(*pp)->key_next)
		;
	*pp = r->key_next;
	for (pp = &pm->by_id[id_bucket(pm, r->n.id)]; *pp != r; pp = &(*pp)->id_next)
		;
	*pp = r->id_next;
	if (r->all_prev)
		r->all_prev->all_next = r->all_next;
	else
		pm->all = r->all_next;
	if (r->all_next)
		r->all_next->all_prev = r->all_prev;
	pm->count--;
}

void peermap_reload(struct peermap *pm, int64_t id)
{
	struct store_node n;
	struct node_rt *r;
	int ret = store_node_get(pm->store, id, &n);

	if (ret == 0) {
		peermap_upsert(pm, &n);
		return;
	}
	r = peermap_find_id(pm, id);
	if (ret == -ENOENT && r) {
		r->removed = true;
		peermap_mark_dirty(pm, r);
	}
}

static int add_relay(const struct store_relay *sr, void *arg)
{
	struct peermap *pm = arg;
	struct netmap_relay *r, *grown = realloc(pm->relays, (pm->n_relays + 1) * sizeof(*r));

	if (!grown)
		return -ENOMEM;
	pm->relays = grown;
	r = &pm->relays[pm->n_relays++];
	memset(r, 0, sizeof(*r));
	r->id = (int)sr->id;
	snprintf(r->region, sizeof(r->region), "%s", sr->region);
	snprintf(r->host, sizeof(r->host), "%s", sr->host);
	r->port = sr->port;
	r->stun_port = sr->stun_port;
	snprintf(r->stun_alt, sizeof(r->stun_alt), "%s", sr->stun_alt);
	memcpy(r->key, sr->key, 32);
	return 0;
}

int peermap_load_relays(struct peermap *pm)
{
	free(pm->relays);
	pm->relays = NULL;
	pm->n_relays = 0;
	return store_relay_list(pm->store, add_relay, pm) ? -EIO : 0;
}

/* Relays admit quarantined nodes: their peers drop what they send, and they
 * get back to work at once when the quarantine ends. */
static bool node_relay_active(const struct peermap *pm, const struct node_rt *node)
{
	return !node->removed && node->n.approved &&
	       !store_node_expired(&node->n, store_now(pm->store));
}

bool node_visible(const struct peermap *pm, const struct node_rt *node)
{
	return !node->removed && node->n.approved && !node->n.quarantined &&
	       !store_node_expired(&node->n, store_now(pm->store));
}

void node_entry(const struct node_rt *node, struct netmap_peer *out)
{
	memset(out, 0, sizeof(*out));
	out->id = node->n.id;
	snprintf(out->name, sizeof(out->name), "%s", node->n.name);
	memcpy(out->node_key, node->n.node_key, 32);
	memcpy(out->disco_key, node->n.disco_key, 32);
	inet_pton(AF_INET, node->n.ipv4, &out->ipv4);
	inet_pton(AF_INET6, node->n.ipv6, &out->ipv6);
	memcpy(out->endpoints, node->endpoints, sizeof(out->endpoints));
	out->n_endpoints = node->n_endpoints;
	out->home_relay = node->home_relay;
	out->online = node->session != NULL;
	out->has_nat = node->has_nat;
	out->nat = node->nat;
}

static json_t *entry_json(const struct node_rt *node)
{
	struct netmap_peer p;

	node_entry(node, &p);
	return netmap_peer_to_json(&p);
}

static json_t *relays_json(const struct peermap *pm)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < pm->n_relays; i++)
		json_array_append_new(arr, netmap_relay_to_json(&pm->relays[i]));
	return arr;
}

static void send_json(struct session *s, json_t *msg)
{
	if (msg)
		ctl_conn_send(s->conn, msg);
	json_decref(msg);
}

void peermap_add_prefixes(struct peermap *pm, json_t *msg)
{
	struct ip_prefix v4, v6;
	char a[PREFIX_STRLEN], b[PREFIX_STRLEN];

	if (!msg || store_get_prefixes(pm->store, &v4, &v6) < 0)
		return;
	prefix_format(&v4, a, sizeof(a));
	prefix_format(&v6, b, sizeof(b));
	json_object_set_new(msg, "ipv4_prefix", json_string(a));
	json_object_set_new(msg, "ipv6_prefix", json_string(b));
}

void peermap_send_full(struct peermap *pm, struct session *s)
{
	struct node_rt *self = s->node;
	bool sees = node_visible(pm, self);
	json_t *msg = json_pack("{s:s,s:b,s:o,s:o}", "type", "map", "full", 1, "self",
				entry_json(self), "relays", relays_json(pm));
	json_t *peers = json_array();
	size_t in_chunk = 0;

	peermap_add_prefixes(pm, msg);
	for (struct node_rt *r = pm->all; sees && r && msg && peers; r = r->all_next) {
		if (r == self || !node_visible(pm, r))
			continue;
		json_array_append_new(peers, entry_json(r));
		if (++in_chunk == NETMAP_CHUNK_PEERS) {
			json_object_set_new(msg, "peers", peers);
			send_json(s, msg);
			msg = json_pack("{s:s}", "type", "map");
			peers = json_array();
			in_chunk = 0;
		}
	}
	if (msg && peers) {
		json_object_set_new(msg, "peers", peers);
		json_object_set_new(msg, "done", json_true());
		peers = NULL;
	}
	json_decref(peers);
	send_json(s, msg);
}

static json_t *active_keys(struct peermap *pm)
{
	json_t *keys = json_array();
	char b64[KEY_BASE64_LEN + 1];

	for (struct node_rt *r = pm->all; keys && r; r = r->all_next) {
		if (!node_relay_active(pm, r))
			continue;
		key_to_base64(b64, r->n.node_key);
		json_array_append_new(keys, json_string(b64));
	}
	return keys;
}

void peermap_send_relay_full(struct peermap *pm, struct session *s)
{
	send_json(s, json_pack("{s:s,s:b,s:o}", "type", "relay-nodes", "full", 1, "keys",
			       active_keys(pm)));
}

void peermap_relays_changed(struct peermap *pm)
{
	if (peermap_load_relays(pm) < 0)
		log_error("cannot read the relay map from the store");
	pm->relays_dirty = true;
	if (!ev_timer_armed(&pm->flush))
		evloop_timer_arm(pm->loop, &pm->flush,
				 clock_mono_ns() + PEERMAP_FLUSH_MS * 1000000ULL);
}

void peermap_check_expiry(struct peermap *pm)
{
	int64_t now = store_now(pm->store);

	for (struct node_rt *r = pm->all; r; r = r->all_next)
		if (r->visible_sent && store_node_expired(&r->n, now))
			peermap_mark_dirty(pm, r);
}

/* The news of one flush, serialized once for every recipient. */
struct delta {
	json_t *changed, *removed;	     /* for nodes */
	json_t *relay_add, *relay_remove; /* for relays */
};

static void collect(struct peermap *pm, struct node_rt *r, struct delta *d)
{
	bool visible = node_visible(pm, r);
	char b64[KEY_BASE64_LEN + 1];

	key_to_base64(b64, r->n.node_key);
	if (visible)
		json_array_append_new(d->changed, entry_json(r));
	else if (r->visible_sent)
		json_array_append_new(d->removed, json_string(b64));
	if (node_relay_active(pm, r) && !r->relay_sent)
		json_array_append_new(d->relay_add, json_string(b64));
	else if (!node_relay_active(pm, r) && r->relay_sent)
		json_array_append_new(d->relay_remove, json_string(b64));
}

static char *dump(json_t *msg)
{
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;

	json_decref(msg);
	return text;
}

static void broadcast(struct peermap *pm, struct delta *d)
{
	char *to_nodes = NULL, *to_relays = NULL;

	if (json_array_size(d->changed) || json_array_size(d->removed) || pm->relays_dirty) {
		json_t *m = json_pack("{s:s,s:O,s:O}", "type", "map", "peers", d->changed,
				      "removed", d->removed);
		if (m && pm->relays_dirty)
			json_object_set_new(m, "relays", relays_json(pm));
		to_nodes = dump(m);
	}
	if (json_array_size(d->relay_add) || json_array_size(d->relay_remove))
		to_relays = dump(json_pack("{s:s,s:O,s:O}", "type", "relay-nodes", "add",
					   d->relay_add, "remove", d->relay_remove));
	for (struct session *s = pm->sessions; s; s = s->next) {
		const char *text = NULL;
		if (s->kind == SESSION_NODE && !s->node->dirty && node_visible(pm, s->node))
			text = to_nodes;
		else if (s->kind == SESSION_RELAY)
			text = to_relays;
		if (text)
			ctl_conn_send_text(s->conn, text, strlen(text));
	}
	free(to_nodes);
	free(to_relays);
}

/* What a dirty node's own session learns: it was cut off, or its own view. */
static void tell_self(struct peermap *pm, struct node_rt *r)
{
	struct session *s = r->session ? r->session : r->pending;
	const char *end = NULL;

	if (!s)
		return;
	if (r->removed)
		end = "removed";
	else if (store_node_expired(&r->n, store_now(pm->store)))
		end = "expired";
	if (end) {
		send_json(s, json_pack("{s:s}", "type", end));
		ctl_conn_finish(s->conn, end);
		s->node = NULL;
		s->kind = SESSION_NEW;
		r->session = r->pending = NULL;
		return;
	}
	if (s->kind == SESSION_PENDING && r->n.approved) {
		s->kind = SESSION_NODE;
		r->pending = NULL;
		r->session = s;
		json_t *m = json_pack("{s:s,s:b,s:o}", "type", "login-result", "ok", 1, "self",
				      entry_json(r));
		peermap_add_prefixes(pm, m);
		send_json(s, m);
	}
	if (s->kind == SESSION_NODE)
		peermap_send_full(pm, s); /* O(n) for this one node */
}

void peermap_flush_now(struct peermap *pm)
{
	evloop_timer_cancel(pm->loop, &pm->flush);
	flush_cb(pm->loop, &pm->flush, pm);
}

static void flush_cb(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct peermap *pm = arg;
	struct delta d = {json_array(), json_array(), json_array(), json_array()};
	struct node_rt *r, *next;

	for (r = pm->dirty; r; r = r->dirty_next)
		collect(pm, r, &d);
	broadcast(pm, &d);
	for (r = pm->dirty; r; r = next) {
		next = r->dirty_next;
		r->dirty = false;
		r->visible_sent = node_visible(pm, r);
		r->relay_sent = node_relay_active(pm, r);
		tell_self(pm, r);
		if (r->removed) {
			unlink_node(pm, r);
			free(r);
		}
	}
	pm->dirty = NULL;
	pm->relays_dirty = false;
	json_decref(d.changed);
	json_decref(d.removed);
	json_decref(d.relay_add);
	json_decref(d.relay_remove);
}
