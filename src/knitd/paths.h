/* SPDX-License-Identifier: MIT */
/*
 * The path manager: for every peer, find a direct UDP path through whatever
 * NATs lie between, keep it alive, and fall back to the peer's home relay
 * when it dies.  It decides; the data plane only reads the result (the
 * peer's WireGuard endpoint, set atomically).
 *
 * Discovery, as the seed learned the hard way: never one or two pings, but a
 * burst and then spaced pings for several seconds to every candidate, with
 * call-me-maybe through the relay so that the peer pings back at the same
 * time.  The first pong confirms a path; LAN beats direct beats relay, the
 * lowest round trip wins among equals.  A confirmed path is pinged every
 * half second; 2.5 s without a pong and the peer is back on the relay,
 * and discovery starts again.  Runs on the event loop.
 */
#ifndef KNIT_KNITD_PATHS_H
#define KNIT_KNITD_PATHS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/netmap.h"
#include "disco/disco.h"
#include "lib/evloop.h"
#include "traversal/plan.h"
#include "wg/device.h"

#define PATHS_MAX_CANDIDATES 32
#define PATHS_MAX_PINGS	     64
#define PATHS_HEARTBEAT_MS   500
#define PATHS_TRUST_MS	     2500 /* a pong this recent makes a path usable */
#define PATHS_SWITCH_GAIN_MS 1	  /* a trusted path is left for one this much faster */
#define PATHS_DEAD_MS	     2000 /* pings unanswered this long: back to the relay */
#define PATHS_ACTIVE_MS	     5000 /* data within this long: the peer is active */
#define PATHS_CMM_ANSWER_MS  1000 /* a call-me-maybe is answered with ours at most this often */
/* Idle peers: until the mapping lifetime is measured, and at most. */
#define PATHS_IDLE_KEEPALIVE_MS	    10000
#define PATHS_IDLE_KEEPALIVE_MAX_MS 25000
#define PATHS_REPROBE_MS     30000

struct relays;
struct api_conn;
struct search;

struct path_cand {
	union sockaddr_inet ep;
	uint64_t pong_ns; /* last pong from it, 0 = never */
	uint64_t rtt_ns;
	bool lan;
	bool learned; /* from a ping it sent us, not from control */
	int fd;	      /* a search socket of ours it answers on; -1: the device's */
};

struct pending_ping {
	uint8_t txid[DISCO_TXID_LEN];
	union sockaddr_inet to; /* a relay path when sent through a relay */
	uint64_t sent_ns;
};

struct peer_paths {
	struct paths *owner;
	struct peer_paths *next;
	uint8_t node_key[32];
	uint8_t disco_key[32];
	uint8_t shared[32]; /* disco box key */
	char name[NETMAP_NAME_LEN];
	int home_relay;
	bool online;
	struct path_cand cands[PATHS_MAX_CANDIDATES];
	unsigned n_cands;
	struct pending_ping pings[PATHS_MAX_PINGS];
	unsigned ping_next;
	int best;	   /* index into cands, -1: relay */
	unsigned step;	   /* of the discovery schedule */
	uint64_t started_ns; /* of this discovery round */
	uint64_t first_packet_ns, direct_ns; /* time to direct: since the peer (re)appeared */
	unsigned failures; /* discovery rounds without a pong, for backoff */
	uint64_t keepalive_ns;	/* last ping on the best path */
	uint64_t cmm_sent_ns;	/* our last call-me-maybe to the peer */
	uint64_t unanswered_ns; /* first ping on it since its last pong, 0: none */
	uint64_t bytes_seen, active_ns; /* the data plane's counters, when they moved */
	char reason[128];
	struct ev_timer timer;
	bool has_nat;
	struct nat_class nat; /* the peer's NAT, from its netcheck */
	struct plan plan;
	struct search *search;
	uint64_t search_retry_ns; /* no new search before */
	uint64_t search_started_ns;
	unsigned search_failures;
	struct api_conn *pinger; /* a `knit ping` waiting for pongs */
	unsigned pinger_left;
	struct ev_timer pinger_timer; /* one ping a second while it waits */
	bool pinger_stop_direct;
};

struct paths {
	struct evloop *loop;
	struct wg_device *dev;
	struct relays *relays;
	uint8_t disco_priv[32], disco_pub[32], node_pub[32];
	struct peer_paths *peers;
	bool hide_lan; /* tests: candidates without LAN addresses */
	bool has_nat;
	struct nat_class nat; /* ours, from netcheck */
	/* Our own candidates, for call-me-maybe. */
	union sockaddr_inet self[PATHS_MAX_CANDIDATES];
	unsigned n_self;
	unsigned idle_keepalive_ms; /* pings on an idle peer's direct path */
	uint64_t disco_dropped, disco_dropped_logged_ns; /* unknown or forged */
};

void paths_init(struct paths *p, struct evloop *loop, struct wg_device *dev, struct relays *relays,
		const uint8_t disco_priv[32], const uint8_t node_pub[32]);
void paths_destroy(struct paths *p);
/* Our candidates changed (interfaces, STUN, port mapping). */
void paths_set_self(struct paths *p, const union sockaddr_inet *eps, unsigned n);
/* A peer appeared or changed in the map; starts discovery when it is online. */
void paths_peer_update(struct paths *p, const struct netmap_peer *np);
void paths_peer_remove(struct paths *p, const uint8_t node_key[32]);
/* A disco packet from a UDP source, or from a relay (src is then the relay
 * path and relay_src the sender's node key, as the relay vouches). */
void paths_disco_input(struct paths *p, const uint8_t *pkt, size_t len,
		       const union sockaddr_inet *src, const uint8_t *relay_src);
/* For status: the peer's path reason, time to direct. */
const struct peer_paths *paths_find(const struct paths *p, const uint8_t node_key[32]);
/* `knit ping`: count pings, one a second, each pong reported to c; stops at
 * the first direct pong unless all is set. */
int paths_ping(struct paths *p, const uint8_t node_key[32], struct api_conn *c, unsigned count,
	       bool all);
void paths_api_gone(struct paths *p, struct api_conn *c);
/* Our NAT class (netcheck): plans are made from it and the peers'. */
void paths_set_self_nat(struct paths *p, const struct nat_class *nat);
/* Our NAT kept an idle mapping idle_ms (at_least: the probe stopped there):
 * idle peers' direct paths are pinged at half that (knitd/lifetime.h). */
void paths_set_mapping_lifetime(struct paths *p, unsigned idle_ms, bool at_least);

/* For search.c. */
int paths_seal_ping(struct peer_paths *pp, uint8_t *out, size_t size, const uint8_t *txid);
void paths_send_aside(struct peer_paths *pp, const union sockaddr_inet *to, const void *pkt,
		      size_t len);
/* A datagram on search socket fd; true when it confirmed a path there. */
bool paths_aux_input(struct peer_paths *pp, int fd, const uint8_t *pkt, size_t len,
		     const union sockaddr_inet *src);
#endif
