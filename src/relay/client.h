/* SPDX-License-Identifier: MIT */
/*
 * A connection to one relay, kept up: knitd holds one per relay it uses, on
 * its event loop thread.  It connects (nonblocking), upgrades, proves the
 * node key, and from then on sends and receives packets by node key.  Any
 * failure closes the connection and schedules another attempt with
 * exponential backoff (100 ms doubling to 10 s, with jitter; reset after a
 * connection that lasted RELAY_CLIENT_STABLE_MS).  Nothing here blocks,
 * except resolving a host that is a name rather than an address
 * (getaddrinfo), once per attempt.
 *
 * Everything must be called from the loop's thread.  Callbacks may call
 * relay_client_send() and relay_client_free() on this client.
 */
#ifndef KNIT_RELAY_CLIENT_H
#define KNIT_RELAY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/evloop.h"

#define RELAY_CLIENT_QUEUE_BYTES    (2048u * 1024)
#define RELAY_CLIENT_EARLY_BYTES    (64u * 1024) /* sent before the admission */
#define RELAY_CLIENT_BACKOFF_MIN_MS 100
#define RELAY_CLIENT_BACKOFF_MAX_MS 10000
#define RELAY_CLIENT_HANDSHAKE_MS   10000 /* connect + upgrade + proof */
#define RELAY_CLIENT_KEEPALIVE_MS   30000
#define RELAY_CLIENT_IDLE_MS	    75000 /* the relay sends every 30 s */
#define RELAY_CLIENT_STABLE_MS	    10000

struct relay_client;

struct relay_client_ops {
	/* A packet from src (a node key), borrowed for the call. */
	void (*recv)(void *arg, const uint8_t src[32], const uint8_t *pkt, size_t len);
	/* The relay could not deliver to key: RELAY_PEER_GONE_DISCONNECTED
	 * (admitted, not connected) or RELAY_PEER_GONE_NOT_KNOWN. */
	void (*peer_gone)(void *arg, const uint8_t key[32], int reason);
	/* connected: admitted by the relay; !connected: the connection (or an
	 * attempt) ended, and why: "node key not known to control", "relay key
	 * mismatch", "connection refused", ...  Called on every failed attempt. */
	void (*state)(void *arg, bool connected, const char *why);
};

/*
 * host: an IPv4 or IPv6 address (no brackets) or a name; port: TCP port.
 * relay_pub is pinned: a relay that presents another key is refused.
 * node_priv is copied (and wiped on free).  The first attempt starts from
 * the loop, not from this call.  Returns 0, -EINVAL or -ENOMEM.
 */
int relay_client_new(struct relay_client **out, struct evloop *loop, const char *host,
		     uint16_t port, const uint8_t relay_pub[32], const uint8_t node_priv[32],
		     const struct relay_client_ops *ops, void *arg);
/* Closes, cancels everything, wipes the key.  NULL is fine. */
void relay_client_free(struct relay_client *c);

/*
 * Queues one packet for dst; it is written when the loop next runs its
 * timers, or, while the connection is being made, once the relay admitted
 * us (at most RELAY_CLIENT_EARLY_BYTES wait; a failed attempt drops them).
 * Returns 0, -ENOTCONN (waiting to retry after a failure), -ENOBUFS (queue
 * full: the packet is dropped), -EMSGSIZE (empty or over RELAY_MAX_PACKET).
 */
int relay_client_send(struct relay_client *c, const uint8_t dst[32], const void *pkt, size_t len);
bool relay_client_connected(const struct relay_client *c);

/* Sends a ping; relay_client_rtt_ns() gives the round trip once the pong
 * is back (0 before).  Returns 0, -ENOTCONN or -ENOBUFS. */
int relay_client_rtt_ping(struct relay_client *c);
uint64_t relay_client_rtt_ns(const struct relay_client *c);

/* Counters: packets sent to and received from the relay, and send
 * attempts refused because the queue was full. */
struct relay_client_stats {
	uint64_t tx_packets, rx_packets, tx_dropped, connects, disconnects;
};
void relay_client_get_stats(const struct relay_client *c, struct relay_client_stats *out);

#endif
