/* SPDX-License-Identifier: MIT */
/*
 * A WireGuard device: identity, peers, cryptokey routing, the UDP socket and
 * the TUN interface, and the threads that move packets between them.
 *
 * Threads:
 *  - the event loop (the caller's): handshakes, timers, configuration, the
 *    userspace API.  It is the only writer of structural state.
 *  - tx: TUN -> allowed IPs -> peer -> seal -> UDP, a batch at a time;
 *  - rx: UDP -> open -> allowed-IPs check -> TUN, a batch at a time;
 *    handshake messages are handed to the event loop through a bounded queue.
 *
 * `lock` is a writer-preferring rwlock: data-path threads hold it for reading
 * once per batch; the event loop takes it for writing only for the short
 * moments it changes what they read (peers, keypair slots, indices, allowed
 * IPs).  Noise computations happen outside it.
 */
#ifndef KNIT_WG_DEVICE_H
#define KNIT_WG_DEVICE_H

#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/evloop.h"
#include "wg/allowedips.h"
#include "wg/cookie.h"
#include "wg/keypair.h"
#include "wg/noise.h"
#include "wg/peer.h"
#include "wg/pktqueue.h"
#include "wg/ratelimiter.h"
#include "wg/wgconfig.h"

#define WG_DEFAULT_MTU 1420

/* Protocol times, divided by a test-only divisor. */
struct wg_timers_config {
	uint64_t rekey_timeout_ns;
	uint64_t jitter_max_ns;
	uint64_t keepalive_ns;
	uint64_t rekey_after_ns;
	uint64_t reject_after_ns;
	uint64_t rekey_attempt_ns;
	uint64_t tick_ns;
	unsigned divisor;
};

struct wg_handshake_queue; /* receive.c */

struct wg_device_stats {
	_Atomic uint64_t rx_invalid; /* unparseable, unknown index, bad tag */
	_Atomic uint64_t rx_replayed;
	_Atomic uint64_t rx_not_allowed; /* inner source not allowed for the peer */
	_Atomic uint64_t rx_handshake_dropped;
	_Atomic uint64_t tx_no_peer; /* no allowed IP matched */
	_Atomic uint64_t tx_no_endpoint;
	_Atomic uint64_t tx_errors;
};

/*
 * Side sockets (side.c): UDP sockets of the device besides its own, each
 * behind its own NAT mapping, named by AF_KNIT_SIDE endpoints (lib/addr.h).
 * fd[slot] is -1 when free, SIDE_RETIRING while a removed socket waits
 * for the tx thread to begin a batch after retired_epoch[slot].
 */
#define DEVICE_SIDE_SLOTS 256
#define SIDE_RETIRING	  (-2)
struct side_sockets {
	_Atomic int fd[DEVICE_SIDE_SLOTS]; /* slot 0 is never used */
	int retired_fd[DEVICE_SIDE_SLOTS];
	uint64_t retired_epoch[DEVICE_SIDE_SLOTS];
	unsigned n_retiring;
	_Atomic uint64_t tx_epoch; /* the tx thread's batches begun */
	struct side_rx *rx;	   /* read buffers, from the first side socket */
};

struct wg_device {
	char ifname[IF_NAMESIZE];
	struct evloop *loop;
	pthread_rwlock_t lock;

	struct noise_static_identity identity;
	struct cookie_checker cookie_checker;
	struct ratelimiter *ratelimiter;

	struct wg_peer **peer_hash; /* by public key */
	uint32_t peer_hash_size;
	uint64_t peer_hash_seed;
	struct wg_peer *peers; /* list, insertion order */
	struct wg_peer *peers_tail;
	size_t n_peers;

	struct wg_index_table index;
	struct allowedips allowedips;

	/* UDP: a dual-stack socket. The data path loads udp_fd once per batch. */
	_Atomic int udp_fd;
	_Atomic int udp_family; /* AF_INET6 (dual stack), or AF_INET without IPv6 */
	_Atomic int rx_fd_in_use; /* what the rx thread may be blocked on */
	int retired_fd;		  /* closed once rx has moved off it */
	uint16_t listen_port;
	uint32_t fwmark;
	struct side_sockets side;

	int tun_fd;
	unsigned tun_offloads; /* TUN_OFFLOAD_* (tun.h): set before the threads start */
	int ifindex;
	int mtu;

	pthread_t rx_thread;
	pthread_t tx_thread;
	struct rx_state *rx;
	struct tx_state *tx;
	bool threads_running;
	_Atomic bool stopping;
	int stop_efd; /* wakes the tx thread's poll */

	struct ev_timer tick;
	struct ev_wakeup *wakeup;
	struct wg_handshake_queue *hsq;
	pthread_mutex_t work_lock;
	struct wg_peer *work_head;
	struct aead_ctx *loop_aead;
	uint64_t last_under_load_ns;

	struct wg_timers_config timers;
	struct wg_device_stats stats;
	/* Overlay mode (knitd with control): set before device_start, then
	 * read-only.  Packets to a peer whose endpoint is a relay path go
	 * through relay_q to relay_send on the event loop; received datagrams
	 * that aside_match claims (STUN, disco) go through aside_q to
	 * aside_recv on the event loop. */
	void (*relay_send)(void *arg, uint16_t relay_id, const uint8_t key[32],
			   const uint8_t *pkt, size_t len);
	bool (*aside_match)(const uint8_t *pkt, size_t len);
	void (*aside_recv)(void *arg, const uint8_t *pkt, size_t len,
			   const union sockaddr_inet *src);
	void *overlay_arg;
	struct pktq relay_q;
	struct pktq aside_q;
	struct relay_rx *relay_rx; /* receive.c: relayed packets being batched */
};

/* Creates the TUN interface ifname (none when ifname is NULL: a detached
 * device for tests).  timer_divisor is 1 except in tests. */
int device_new(struct wg_device **out, struct evloop *loop, const char *ifname,
	       unsigned timer_divisor);
/* Stops the threads, removes the interface, wipes every key. */
void device_free(struct wg_device *dev);
/* Starts the data-path threads and the timer tick. */
int device_start(struct wg_device *dev);

/* Applies a parsed configuration (wg-quick file or `set=1`).  Returns 0 or
 * -errno with err set. */
int device_apply(struct wg_device *dev, const struct wg_config *cfg, char *err, size_t err_len);
/* The path the data plane uses for a peer (a direct endpoint or a relay
 * path), as the path manager decides it.  Event loop only.  False when there
 * is no such peer. */
bool device_set_peer_endpoint(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN],
			      const union sockaddr_inet *ep);
/* Forgets the peer's session (it restarted): the next packet to it starts a
 * handshake at once instead of after a timeout.  Event loop only. */
void device_peer_reset_session(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN]);
/* The `get=1` answer, without the final errno line. */
int device_uapi_get(struct wg_device *dev, struct buf *out);
/* What the device dropped and why, as one log line (knitd's SIGUSR1). */
void device_log_stats(struct wg_device *dev);

/*
 * A packet a relay delivered (on the event loop): processed as if it had come
 * from the relay path relay_id, and delivered to the TUN at once.
 */
void device_receive_relayed(struct wg_device *dev, uint16_t relay_id, const uint8_t *pkt,
			    size_t len);
/*
 * The same for a batch (event loop only): the packet is copied into the
 * device's relayed batch, which is opened under one lock and written to the
 * TUN coalesced (as the rx thread writes) when it holds RX_BATCH packets,
 * when device_relayed_flush() is called, or else when the loop next runs
 * its timers.  Order is kept.
 */
void device_relayed_add(struct wg_device *dev, uint16_t relay_id, const uint8_t *pkt, size_t len);
/* The same for a packet that came from src (a side path). */
void device_loop_rx_add(struct wg_device *dev, const union sockaddr_inet *src, const uint8_t *pkt,
			size_t len);
void device_relayed_flush(struct wg_device *dev);

/*
 * Side sockets (event loop only).  device_side_add gives the device a UDP
 * socket of its own (IPv4); the device owns it from then on and returns
 * its slot (for endpoint_set_side), or -ENOSPC.  device_side_remove stops
 * sending on it and closes it once the tx thread cannot be using it.
 * device_side_read reads what it holds, a few batches at most: WireGuard
 * is opened and written to the TUN as relayed packets are, anything else
 * (disco) goes to other with its source.
 */
int device_side_add(struct wg_device *dev, int fd);
/* Whether a datagram from a socket the device does not read yet is
 * WireGuard from the peer with this key: a data message that opens with one
 * of its session keys (into scratch: nothing counted, nothing replayed), or
 * a handshake message whose MAC1 is right.  What makes a socket of the
 * birthday search the peer's path: one forged datagram must not. */
bool device_datagram_from_peer(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN],
			       const uint8_t *pkt, size_t len, const union sockaddr_inet *src);
void device_side_remove(struct wg_device *dev, unsigned slot);
typedef void side_other_fn(void *arg, const uint8_t *pkt, size_t len,
			   const union sockaddr_inet *src);
void device_side_read(struct wg_device *dev, unsigned slot, side_other_fn *other, void *arg);
/* Sends a datagram that is not WireGuard (STUN, disco) from the device's
 * socket.  Returns 0 or -errno. */
int device_send_aside(struct wg_device *dev, const union sockaddr_inet *to, const void *pkt,
		      size_t len);

/* Internal, between device.c, send.c, receive.c and timers.c. */
struct wg_peer *device_find_peer(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN]);
void device_queue_work(struct wg_device *dev, struct wg_peer *peer);
void device_timers_init(struct wg_timers_config *t, unsigned divisor);
/* What every data-path thread owns, allocated before it starts. */
#define DP_BATCH 64
struct dp_thread {
	struct wg_device *dev;
	struct aead_ctx *ctx;
	uint8_t *bufs[DP_BATCH];
};
int dp_thread_init(struct dp_thread *t, struct wg_device *dev, size_t buf_size);
void dp_thread_destroy(struct dp_thread *t);
int device_rebind(struct wg_device *dev, uint16_t port);
/* side.c */
void side_init(struct wg_device *dev);
void side_reap(struct wg_device *dev); /* from the tick */
void side_free(struct wg_device *dev);
/* The socket a side endpoint sends on (or -1) and its destination. */
int side_fd_for(struct wg_device *dev, const union sockaddr_inet *ep, union sockaddr_inet *dest);

/* send.c */
struct tx_state;
struct tx_state *tx_state_new(struct wg_device *dev);
void tx_state_free(struct tx_state *s);
void *tx_thread_main(void *tx_state);
void send_handshake_initiation(struct wg_peer *peer, bool is_retry);
void send_keepalive(struct wg_peer *peer);
void send_staged(struct wg_peer *peer);
void send_buffer_to_peer(struct wg_peer *peer, const void *buf, size_t len);
/* An endpoint in the form the socket takes (v4-mapped on a dual-stack one). */
void endpoint_for_socket(const struct wg_device *dev, const union sockaddr_inet *in,
			 union sockaddr_inet *out);
void send_to(struct wg_device *dev, const union sockaddr_inet *ep, const void *buf, size_t len);

/* receive.c */
int handshake_queue_new(struct wg_handshake_queue **out);
void handshake_queue_free(struct wg_handshake_queue *q);
struct rx_state;
struct rx_state *rx_state_new(struct wg_device *dev);
void rx_state_free(struct rx_state *s);
void *rx_thread_main(void *rx_state);
void receive_handshakes(struct wg_device *dev);
int relay_rx_new(struct wg_device *dev);
void relay_rx_free(struct wg_device *dev);
/*
 * One batch of received datagrams.  Consecutive packets from one peer and
 * source form a run: the endpoint is checked and the peer's counters updated
 * once per run, not per packet.
 */
struct rx_batch {
	struct aead_ctx *ctx;
	uint64_t now;
	bool wake; /* handshakes were queued for the event loop */
	struct wg_peer *peer;
	union sockaddr_inet src;
	size_t bytes;
};

void receive_batch_begin(struct rx_batch *b, struct aead_ctx *ctx, uint64_t now);
/*
 * Classifies and processes one datagram (under the read lock): queues a
 * handshake message, or opens a data message in place.  Returns the length of
 * the plaintext packet to deliver at *plain, 0 when there is none.
 */
size_t receive_datagram(struct wg_device *dev, struct rx_batch *b, uint8_t *msg, size_t len,
			const union sockaddr_inet *src, uint8_t **plain);
/* Flushes the last run (under the read lock) and wakes the event loop if needed. */
void receive_batch_end(struct wg_device *dev, struct rx_batch *b);

/* timers.c */
void timers_tick(struct evloop *loop, struct ev_timer *timer, void *arg);
void timers_handshake_complete(struct wg_peer *peer);
void timers_path_changed(struct wg_peer *peer);
void peer_do_work(struct wg_peer *peer);

#endif
