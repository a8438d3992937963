/* SPDX-License-Identifier: MIT */
/*
 * knitd's relays: one relay client per relay in use (our home relay, where
 * peers reach us, and the home relays of peers we send to), and the choice
 * of home relay: the lowest STUN round trip through the node's own UDP
 * socket, changed only when another is clearly better (under 70 % of the
 * current one) or the current one stops answering.
 */
#ifndef KNIT_KNITD_RELAYS_H
#define KNIT_KNITD_RELAYS_H
#include <stdbool.h>
#include <stdint.h>

#include "control/netmap.h"
#include "lib/evloop.h"
#include "wg/device.h"

#define RELAYS_MAX	     64
#define RELAYS_PROBE_MS	     20000
#define RELAYS_PROBE_WAIT_MS 1000

struct relay_client;

struct relay_slot {
	struct netmap_relay info;
	struct relay_client *client; /* NULL until used */
	uint8_t txid[12];	     /* outstanding STUN probe */
	uint64_t probe_sent_ns;
	uint64_t rtt_ns;	    /* last measured, 0 = none */
	unsigned misses;	    /* probes in a row without an answer */
	union sockaddr_inet mapped; /* what the relay's STUN saw */
	uint64_t tx_dropped;	    /* its send queue was full */
	uint64_t drop_logged_ns;    /* the last warning about it */
	struct relays *owner;
};

struct relays {
	struct evloop *loop;
	struct wg_device *dev;
	uint8_t node_priv[32];
	struct relay_slot slots[RELAYS_MAX];
	unsigned n;
	int home; /* relay id, 0 = none */
	unsigned quick_probes; /* STUN rounds sooner than RELAYS_PROBE_MS */
	struct ev_timer probe;
	struct ev_timer decide;
	/* Called when the home relay or the STUN-observed address changes. */
	void (*changed)(void *arg);
	void *arg;
	/* Disco packets that arrive through a relay. */
	void (*disco_recv)(void *arg, int relay_id, const uint8_t src[32], const uint8_t *pkt,
			   size_t len);
	void *disco_arg;
};

void relays_init(struct relays *r, struct evloop *loop, struct wg_device *dev,
		 const uint8_t node_priv[32], void (*changed)(void *), void *arg);
void relays_destroy(struct relays *r);
/* Replaces the relay map; keeps clients of relays that stay. */
void relays_set_map(struct relays *r, const struct netmap_relay *map, unsigned n);
/* The device's relay_send: to a peer through relay id. */
void relays_send(void *arg, uint16_t relay_id, const uint8_t key[32], const uint8_t *pkt,
		 size_t len);
/* A STUN datagram the device set aside. */
void relays_stun_input(struct relays *r, const uint8_t *pkt, size_t len,
		       const union sockaddr_inet *src);
/* Drops every connection (knit down). */
void relays_clear(struct relays *r);
bool relays_connected(struct relays *r, int id);
/* The STUN-observed address of our socket, if any relay answered. */
bool relays_mapped(const struct relays *r, union sockaddr_inet *out);
#endif
