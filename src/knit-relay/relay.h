/* SPDX-License-Identifier: MIT */
/*
 * knit-relay's server: TCP connections that start as HTTP/1.1 Upgrade, then
 * carry relay frames (docs/protocols.md); the STUN responder on UDP.  All of
 * it runs on one event loop; nothing here blocks.
 *
 * A client proves its node key (client-info), is admitted only if the key
 * is in the admission set (admission.h, fed by control), and then sends
 * packets to other clients by node key.  Each client's send queue is
 * bounded: when it is full, packets to that client are dropped and counted,
 * and nobody else waits.
 */
#ifndef KNIT_RELAY_RELAY_H
#define KNIT_RELAY_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "knit-relay/admission.h"
#include "lib/addr.h"
#include "lib/evloop.h"

#define RELAY_DEFAULT_MAX_CONNS	   4096
#define RELAY_DEFAULT_QUEUE_BYTES  (4u << 20)
#define RELAY_DEFAULT_HANDSHAKE_MS 5000
#define RELAY_DEFAULT_KEEPALIVE_MS 30000
#define RELAY_DEFAULT_IDLE_MS	   75000
/* How long a closing connection may take to take its close frame. */
#define RELAY_LINGER_MS 2000

struct relay;

struct relay_config {
	union sockaddr_inet listen; /* TCP; port 0 picks one (tests) */
	union sockaddr_inet stun;   /* UDP; sa_family 0: no STUN responder */
	union sockaddr_inet stun_alt; /* RFC 5780 alternate; sa_family 0: none */
	uint8_t priv[32];	    /* the relay key; copied, wiped on free */
	unsigned max_conns;	    /* open TCP connections, handshakes included */
	size_t queue_bytes;	    /* each client's send queue */
	unsigned handshake_ms;	    /* accept to admitted */
	unsigned keepalive_ms;	    /* a keepalive after this long without sending */
	unsigned idle_ms;	    /* closed after this long without receiving */
};

/* Counters since start; SIGUSR1 logs them (relay_log_stats). */
struct relay_stats {
	uint64_t conns_accepted;
	uint64_t conns_refused_limit; /* over max_conns */
	uint64_t conns_open;	      /* now, handshakes included */
	uint64_t clients;	      /* now: admitted connections */
	uint64_t admitted;
	uint64_t handshake_failed;   /* bad HTTP, bad proof, timeout */
	uint64_t not_admitted;	     /* proved a key control does not know */
	uint64_t replaced;	     /* closed by a newer connection for the key */
	uint64_t removed_by_control; /* closed because control removed the key */
	uint64_t protocol_errors;    /* malformed or unexpected frames */
	uint64_t idle_timeouts;
	uint64_t packets_forwarded;
	uint64_t bytes_forwarded;
	uint64_t packets_dropped; /* destination's send queue full */
	uint64_t packets_no_peer; /* destination not connected: peer-gone */
	uint64_t stun_requests;
	uint64_t stun_invalid;
};

void relay_config_defaults(struct relay_config *cfg);

/* Binds and listens; errors are logged with the address.  0 or -errno. */
int relay_new(struct relay **out, struct evloop *loop, const struct relay_config *cfg);
/* Closes every connection and socket; wipes the key. */
void relay_free(struct relay *r);

/* The admission set, for control to fill (see admission.h). */
struct admission *relay_admission(struct relay *r);
void relay_get_stats(const struct relay *r, struct relay_stats *out);
void relay_log_stats(const struct relay *r);
/* The ports actually bound (after port 0), host order; 0 when none. */
uint16_t relay_tcp_port(const struct relay *r);
uint16_t relay_stun_port(const struct relay *r);
/* Packets dropped so far because this client's queue was full (tests). */
uint64_t relay_client_drops(const struct relay *r, const uint8_t key[32]);

/*
 * The control session, written by control's owner in control_link.c: logs
 * in to control at url (pinning control_pub) with the relay key, and feeds
 * every "relay-nodes" message to admission_apply_json(relay_admission(r)).
 * main() calls start once after relay_new() and stop before relay_free().
 */
struct relay_control;
int relay_control_start(struct relay_control **out, struct relay *r, struct evloop *loop,
			const char *url, const uint8_t control_pub[32],
			const uint8_t relay_priv[32]);
void relay_control_stop(struct relay_control *ctl);

#endif
