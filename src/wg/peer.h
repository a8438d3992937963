/* SPDX-License-Identifier: MIT */
/*
 * A WireGuard peer: its keys, handshake, keypairs, endpoint, timer state and
 * counters.
 *
 * Who touches what:
 *  - event loop, under the device write lock: everything structural (keys,
 *    handshake, keypair slots, allowed IPs, membership in the device);
 *  - data-path threads, under the device read lock: they read keypairs and the
 *    endpoint, and update the atomics below;
 *  - endpoint: endpoint_lock (a spinlock), because the receiving thread moves
 *    it when a peer roams while the sending thread reads it.
 */
#ifndef KNIT_WG_PEER_H
#define KNIT_WG_PEER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "wg/cookie.h"
#include "wg/keypair.h"
#include "wg/noise.h"

struct wg_device;

/* Packets waiting for a session, bounded as in the Linux driver. */
#define PEER_STAGED_MAX 128

struct wg_staged_packet {
	uint16_t len;
	uint8_t data[]; /* plaintext IP packet */
};

struct wg_peer {
	struct wg_device *device;
	struct wg_peer *hash_next; /* device's public-key hash chain */
	struct wg_peer *list_next; /* device's peer list, in insertion order */
	uint8_t public_key[NOISE_PUBLIC_KEY_LEN];

	struct noise_handshake handshake;
	struct cookie_maker cookie;
	struct wg_keypairs keypairs;

	pthread_spinlock_t endpoint_lock;
	union sockaddr_inet endpoint; /* socket form (v4 mapped); family 0 = none */

	/* Timer inputs written by data-path threads (clock_mono_ns, 0 = none). */
	_Atomic uint64_t data_recv_unanswered_ns; /* first data in since we last sent */
	_Atomic uint64_t data_sent_unanswered_ns; /* first data out since we last heard */
	_Atomic uint64_t last_traversal_ns;	  /* any authenticated packet, either way */
	_Atomic uint64_t last_sent_ns;		  /* any packet we sent */
	_Atomic bool want_handshake;		  /* data path asks for a (re)key */
	_Atomic bool next_confirmed;		  /* data arrived on keypairs.next */
	_Atomic bool in_work_queue;
	struct wg_peer *work_next; /* device work list, under its work_lock */
	bool has_handshake_index;  /* handshake.local_index is in the index table */

	/* Event-loop-only timer state. */
	uint64_t handshake_sent_ns;	/* our last initiation, 0 = none pending */
	uint64_t handshake_retry_at_ns; /* when to retransmit it */
	unsigned handshake_attempts;
	uint64_t session_derived_ns;   /* for zeroing keys after 3 x reject */
	uint16_t persistent_keepalive; /* seconds, 0 = off */

	/* Staged plaintext while there is no session (event loop + TX, staged_lock). */
	pthread_mutex_t staged_lock;
	struct wg_staged_packet *staged[PEER_STAGED_MAX];
	unsigned staged_count;

	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t tx_bytes;
	_Atomic uint64_t last_handshake_wall_ns; /* CLOCK_REALTIME of the last session */
};

struct wg_peer *peer_new(struct wg_device *dev, const uint8_t public_key[NOISE_PUBLIC_KEY_LEN]);
/* Wipes and frees; the caller has unlinked it and dropped its indices. */
void peer_free(struct wg_peer *peer);

/* The first 8 base64 characters of the public key, for logs. */
#define PEER_ID_LEN 9
void peer_id(const struct wg_peer *peer, char out[PEER_ID_LEN]);

void peer_set_endpoint(struct wg_peer *peer, const union sockaddr_inet *ep);
/* Copies the endpoint; false when the peer has none. */
bool peer_get_endpoint(struct wg_peer *peer, union sockaddr_inet *out);

/* Queues a plaintext packet (copied); drops the oldest when full. */
void peer_stage_packet(struct wg_peer *peer, const uint8_t *pkt, size_t len);
/* Moves the staged packets out: returns their count, *out owns them. */
unsigned peer_take_staged(struct wg_peer *peer, struct wg_staged_packet **out, unsigned max);
void peer_drop_staged(struct wg_peer *peer);

#endif
