/* SPDX-License-Identifier: MIT */
/*
 * knit-control's live view: every node of the store in memory, who is
 * connected, and the deltas that keep every node's and relay's copy current.
 *
 * A change marks its node dirty; a flush (within 50 ms) sends each connected
 * node one message with every dirty entry, and each relay the keys that
 * became active or inactive.  A change costs O(connected nodes), never
 * O(nodes²).  Everything runs on the server's one event loop thread.
 */
#ifndef KNIT_CONTROL_PEERMAP_H
#define KNIT_CONTROL_PEERMAP_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/conn.h"
#include "control/netmap.h"
#include "knit-control/store.h"
#include "lib/evloop.h"

#define PEERMAP_FLUSH_MS 50

struct session;

struct node_rt {
	struct store_node n;
	struct node_rt *key_next, *id_next; /* hash chains */
	struct node_rt *all_prev, *all_next;
	struct node_rt *dirty_next;
	struct session *session; /* the logged-in session, or NULL */
	struct session *pending; /* a session waiting for approval, or NULL */
	union sockaddr_inet endpoints[NETMAP_MAX_ENDPOINTS];
	unsigned n_endpoints;
	int home_relay;
	bool has_nat;
	struct nat_class nat; /* what its netcheck saw, passed on to peers */
	bool dirty;
	bool removed;	   /* gone from the store: announce, then free */
	bool visible_sent; /* peers were last told it exists */
	bool relay_sent;   /* relays were last told to admit it */
};

enum session_kind { SESSION_NEW, SESSION_PENDING, SESSION_NODE, SESSION_RELAY };

struct session {
	struct peermap *pm;
	struct ctl_conn *conn;
	enum session_kind kind;
	struct node_rt *node; /* PENDING and NODE */
	struct session *prev, *next;
};

struct peermap {
	struct evloop *loop;
	struct store *store;
	struct node_rt **by_key, **by_id;
	size_t buckets, count;
	uint8_t hash_key[16];
	struct node_rt *all;
	struct node_rt *dirty;
	struct ev_timer flush;
	struct session *sessions; /* every connection */
	struct netmap_relay *relays;
	size_t n_relays;
	bool relays_dirty;
};

int peermap_init(struct peermap *pm, struct evloop *loop, struct store *store);
void peermap_destroy(struct peermap *pm);

struct node_rt *peermap_find_key(struct peermap *pm, const uint8_t key[32]);
struct node_rt *peermap_find_id(struct peermap *pm, int64_t id);
/* Inserts or refreshes the node from its store row; marks it dirty. */
struct node_rt *peermap_upsert(struct peermap *pm, const struct store_node *n);
/* Reloads node id from the store (a change another process made). */
void peermap_reload(struct peermap *pm, int64_t id);
int peermap_load_relays(struct peermap *pm);
void peermap_mark_dirty(struct peermap *pm, struct node_rt *node);
/* Sends the pending deltas now (a login: relays must admit the node before
 * it hears that it may use them). */
void peermap_flush_now(struct peermap *pm);

/* Approved, not expired, not quarantined: sees and is seen. */
bool node_visible(const struct peermap *pm, const struct node_rt *node);
void node_entry(const struct node_rt *node, struct netmap_peer *out);

/* Sends the session's node its self entry, every visible peer (in chunks) and
 * the relay map. */
void peermap_send_full(struct peermap *pm, struct session *s);
/* Adds the overlay prefixes (ipv4_prefix, ipv6_prefix) to a message. */
void peermap_add_prefixes(struct peermap *pm, json_t *msg);
/* Sends a relay every active node key. */
void peermap_send_relay_full(struct peermap *pm, struct session *s);
/* Rereads the relay map and sends it to every node. */
void peermap_relays_changed(struct peermap *pm);
/* Expired nodes that were visible become dirty (called every second). */
void peermap_check_expiry(struct peermap *pm);
#endif
