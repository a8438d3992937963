// SPDX-License-Identifier: MIT
/*
 * Receiving: the rx thread (UDP -> open -> allowed-IPs check -> TUN, a batch
 * per iteration), and the event loop's processing of the handshake messages
 * the rx thread queues for it.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "wg/device.h"
#include "wg/offload.h"
#include "wg/tun.h"
#include "wg/udp.h"

#define RX_BATCH     DP_BATCH
#define RX_BUF_SIZE  65536
#define HSQ_CAPACITY 1024
/* Past this depth the device is under load and demands cookies (Linux: /8). */
#define HSQ_UNDER_LOAD (HSQ_CAPACITY / 8)

struct queued_handshake {
	union sockaddr_inet src;
	uint16_t len;
	uint8_t data[sizeof(struct message_handshake_initiation)];
};

struct wg_handshake_queue {
	pthread_mutex_t lock;
	unsigned head, count;
	struct queued_handshake items[HSQ_CAPACITY];
};

int handshake_queue_new(struct wg_handshake_queue **out)
{
	struct wg_handshake_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	return 0;
}

void handshake_queue_free(struct wg_handshake_queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static bool handshake_queue_push(struct wg_handshake_queue *q, const uint8_t *data, size_t len,
				 const union sockaddr_inet *src)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	ok = q->count < HSQ_CAPACITY;
	if (ok) {
		struct queued_handshake *h = &q->items[(q->head + q->count) % HSQ_CAPACITY];
		h->src = *src;
		h->len = (uint16_t)len;
		memcpy(h->data, data, len);
		q->count++;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

static bool handshake_queue_pop(struct wg_handshake_queue *q, struct queued_handshake *out,
				unsigned *depth)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	ok = q->count > 0;
	if (ok) {
		*depth = q->count;
		*out = q->items[q->head];
		q->head = (q->head + 1) % HSQ_CAPACITY;
		q->count--;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

static inline uint32_t get_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t get_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* After any authenticated packet from peer. */
static void note_received(struct wg_peer *peer, size_t bytes, uint64_t now)
{
	atomic_fetch_add_explicit(&peer->rx_bytes, bytes, memory_order_relaxed);
	atomic_store_explicit(&peer->last_traversal_ns, now, memory_order_relaxed);
	if (atomic_load_explicit(&peer->data_sent_unanswered_ns, memory_order_relaxed))
		atomic_store_explicit(&peer->data_sent_unanswered_ns, 0, memory_order_relaxed);
}

/*
 * Roaming: an authenticated packet moves the peer's endpoint to its source,
 * unless it came through a relay.  Which relay path a peer is reached by
 * (its home relay, not ours) is the overlay's decision, not the packet's,
 * except when the peer has no path yet.
 */
static void learn_endpoint(struct wg_peer *peer, const union sockaddr_inet *src)
{
	union sockaddr_inet cur;

	/* With no path at all, the way the packet came is better than none. */
	if (!endpoint_is_relay(src) || !peer_get_endpoint(peer, &cur))
		peer_set_endpoint(peer, src);
}

/* --- handshake messages, on the event loop ------------------------------- */

static struct noise_handshake *lookup_handshake(void *ctx, const uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	struct wg_peer *peer = device_find_peer(ctx, key);

	return peer ? &peer->handshake : NULL;
}

/* Applies the cookie rules; returns true when the message may be processed. */
static bool handshake_admitted(struct wg_device *dev, const struct queued_handshake *h,
			       bool under_load, uint32_t sender_index)
{
	enum cookie_mac_state state;

	/* A relay admits only nodes control knows, and a cookie cannot be sent
	 * back through it without the sender's key: no cookie round. */
	if (endpoint_is_relay(&h->src))
		under_load = false;
	state = cookie_validate_packet(&dev->cookie_checker, h->data, h->len, &h->src, under_load);

	if (state == INVALID_MAC) {
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
		return false;
	}
	if (!under_load)
		return true;
	if (state == VALID_MAC_WITH_COOKIE)
		return ratelimiter_allow(dev->ratelimiter, &h->src, clock_mono_ns());
	/* Under load, an unproven source gets a cookie instead of our work. */
	struct message_handshake_cookie reply;
	if (cookie_message_create(&reply, &dev->cookie_checker, h->data, h->len, sender_index,
				  &h->src) == 0)
		send_to(dev, &h->src, &reply, sizeof(reply));
	return false;
}

/* Installs the session keys of a finished handshake as a keypair. */
static struct wg_keypair *begin_session(struct wg_peer *peer)
{
	struct wg_device *dev = peer->device;
	struct noise_session_keys keys;
	struct wg_keypair *kp;
	uint64_t now = clock_mono_ns();

	if (noise_handshake_begin_session(&peer->handshake, &keys) < 0)
		return NULL;
	kp = keypair_new(&keys, peer, now);
	memzero_explicit(&keys, sizeof(keys));
	if (!kp)
		return NULL;
	pthread_rwlock_wrlock(&dev->lock);
	/* The handshake's index now names the keypair. */
	index_table_set_keypair(&dev->index, kp->local_index, kp);
	peer->has_handshake_index = false;
	keypairs_add(&peer->keypairs, kp, &dev->index);
	pthread_rwlock_unlock(&dev->lock);
	peer->session_derived_ns = now;
	return kp;
}

static void handle_initiation(struct wg_device *dev, const struct queued_handshake *h,
			      bool under_load)
{
	const struct message_handshake_initiation *msg = (const void *)h->data;
	struct message_handshake_response resp;
	struct noise_handshake *hs;
	struct wg_peer *peer;
	uint32_t index;
	int ret;

	if (!handshake_admitted(dev, h, under_load, msg->sender_index))
		return;
	ret = noise_handshake_consume_initiation(msg, &dev->identity, lookup_handshake, dev, &hs);
	if (ret < 0) {
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
		char ep[ENDPOINT_STRLEN];
		endpoint_format(&h->src, ep, sizeof(ep));
		log_debug("invalid handshake initiation from=%s error=\"%s\"", ep, strerror(-ret));
		return;
	}
	peer = (struct wg_peer *)((char *)hs - offsetof(struct wg_peer, handshake));
	learn_endpoint(peer, &h->src);
	note_received(peer, h->len, clock_mono_ns());

	pthread_rwlock_wrlock(&dev->lock);
	if (peer->has_handshake_index)
		index_table_remove(&dev->index, peer->handshake.local_index);
	peer->has_handshake_index =
		index_table_add(&dev->index, INDEX_HANDSHAKE, peer, NULL, &index) == 0;
	pthread_rwlock_unlock(&dev->lock);
	if (!peer->has_handshake_index)
		return;
	if (noise_handshake_create_response(&resp, hs, index) < 0)
		return;
	cookie_add_macs(&peer->cookie, &resp, sizeof(resp));
	if (!begin_session(peer))
		return;
	send_buffer_to_peer(peer, &resp, sizeof(resp));
	atomic_store(&peer->last_traversal_ns, clock_mono_ns());
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char id[PEER_ID_LEN];
		peer_id(peer, id);
		log_debug("answered handshake initiation peer=%s", id);
	}
}

static void handle_response(struct wg_device *dev, const struct queued_handshake *h,
			    bool under_load)
{
	const struct message_handshake_response *msg = (const void *)h->data;
	const struct wg_index_entry *e;
	struct wg_peer *peer;

	if (!handshake_admitted(dev, h, under_load, msg->sender_index))
		return;
	e = index_table_find(&dev->index, le32toh(msg->receiver_index));
	if (!e || e->kind != INDEX_HANDSHAKE ||
	    noise_handshake_consume_response(msg, &e->peer->handshake, &dev->identity) < 0) {
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
		return;
	}
	peer = e->peer;
	learn_endpoint(peer, &h->src);
	note_received(peer, h->len, clock_mono_ns());
	if (!begin_session(peer))
		return;
	timers_handshake_complete(peer);
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char id[PEER_ID_LEN];
		peer_id(peer, id);
		log_debug("handshake completed peer=%s", id);
	}
	/* Confirm the session to the responder at once: staged data, or a
	 * keepalive when there is none. */
	send_keepalive(peer);
}

static void handle_cookie(struct wg_device *dev, const struct queued_handshake *h)
{
	const struct message_handshake_cookie *msg = (const void *)h->data;
	const struct wg_index_entry *e =
		index_table_find(&dev->index, le32toh(msg->receiver_index));

	/* The retransmit timer sends the next initiation with mac2. */
	if (!e || cookie_message_consume(&e->peer->cookie, msg) < 0)
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
}

/* Drains the queue the rx thread fills. Runs on the event loop. */
void receive_handshakes(struct wg_device *dev)
{
	struct queued_handshake h;
	unsigned depth;

	while (handshake_queue_pop(dev->hsq, &h, &depth)) {
		uint64_t now = clock_mono_ns();
		bool under_load = depth >= HSQ_UNDER_LOAD;

		/* Stay wary for a second after the load falls, as Linux does. */
		if (under_load)
			dev->last_under_load_ns = now;
		else if (dev->last_under_load_ns)
			under_load = now - dev->last_under_load_ns < NSEC_PER_SEC;
		switch (get_le32(h.data)) {
		case MESSAGE_HANDSHAKE_INITIATION:
			handle_initiation(dev, &h, under_load);
			break;
		case MESSAGE_HANDSHAKE_RESPONSE:
			handle_response(dev, &h, under_load);
			break;
		case MESSAGE_HANDSHAKE_COOKIE:
			handle_cookie(dev, &h);
			break;
		}
		memzero_explicit(&h, sizeof(h));
	}
}

/* --- the rx thread --------------------------------------------------------- */

/*
 * A batch: one recvmmsg of up to RX_BATCH datagrams, each possibly several
 * WireGuard messages of one size from one source (UDP GRO), opened in place
 * under one read lock; then the plaintext packets, coalesced (TCP GRO) when
 * the TUN takes virtio-net headers, written with one writev per unit.
 */
#define RX_MAX_PKTS (RX_BATCH * 64) /* UDP GRO merges at most 64 datagrams */

/* Plaintext packets on their way to the TUN, and the room to coalesce them. */
struct tun_batch {
	bool vnet;
	bool coalesce;	   /* off once the TUN refused a coalesced packet */
	bool coalesce_udp; /* the TUN took USO: it takes GSO_UDP_L4 writes */
	unsigned n_pkts;
	struct gro_pkt *pkts; /* each with VNET_HDR_LEN writable bytes before it */
	struct iovec *out;
	unsigned *unit_start;
	unsigned *unit_iovcnt;
};

static void tun_batch_init(struct tun_batch *t, const struct wg_device *dev, struct gro_pkt *pkts,
			   struct iovec *out, unsigned *unit_start, unsigned *unit_iovcnt)
{
	*t = (struct tun_batch){
		.vnet = dev->tun_offloads & TUN_OFFLOAD_VNET_HDR,
		.coalesce = true,
		.coalesce_udp = (dev->tun_offloads & (TUN_OFFLOAD_USO4 | TUN_OFFLOAD_USO6)) ==
				(TUN_OFFLOAD_USO4 | TUN_OFFLOAD_USO6),
		.pkts = pkts,
		.out = out,
		.unit_start = unit_start,
		.unit_iovcnt = unit_iovcnt,
	};
}

struct rx_state {
	struct dp_thread c; /* first: what every data-path thread owns */
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iovs[RX_BATCH];
	union sockaddr_inet names[RX_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctrl[RX_BATCH];
	struct tun_batch tb;
	struct gro_pkt pkts[RX_MAX_PKTS]; /* plaintext to write to the TUN */
	struct iovec out[RX_MAX_PKTS];
	unsigned unit_start[RX_MAX_PKTS];
	unsigned unit_iovcnt[RX_MAX_PKTS];
};

static size_t message_expected_len(uint32_t type)
{
	switch (type) {
	case MESSAGE_HANDSHAKE_INITIATION:
		return sizeof(struct message_handshake_initiation);
	case MESSAGE_HANDSHAKE_RESPONSE:
		return sizeof(struct message_handshake_response);
	case MESSAGE_HANDSHAKE_COOKIE:
		return sizeof(struct message_handshake_cookie);
	}
	return 0;
}

/*
 * The inner packet's real length (its header's, without padding) when it is
 * a well-formed IPv4 or IPv6 packet whose source the peer may use; else 0.
 */
static size_t inner_admitted(struct wg_device *dev, struct wg_peer *peer, const uint8_t *pkt,
			     size_t len)
{
	size_t real;
	int family;
	const uint8_t *src;

	if (len >= 20 && (pkt[0] >> 4) == 4) {
		real = ((size_t)pkt[2] << 8) | pkt[3];
		family = AF_INET;
		src = pkt + 12;
		if (real < 20 || (size_t)(pkt[0] & 0xf) * 4 < 20)
			return 0;
	} else if (len >= 40 && (pkt[0] >> 4) == 6) {
		real = 40 + (((size_t)pkt[4] << 8) | pkt[5]);
		family = AF_INET6;
		src = pkt + 8;
	} else {
		return 0;
	}
	if (real > len)
		return 0;
	if (allowedips_lookup(&dev->allowedips, family, src) != peer) {
		atomic_fetch_add_explicit(&dev->stats.rx_not_allowed, 1, memory_order_relaxed);
		return 0;
	}
	return real;
}

void receive_batch_begin(struct rx_batch *b, struct aead_ctx *ctx, uint64_t now)
{
	*b = (struct rx_batch){.ctx = ctx, .now = now};
}

static void run_flush(struct rx_batch *b)
{
	if (b->peer && b->bytes)
		note_received(b->peer, b->bytes, b->now);
	b->bytes = 0;
}

void receive_batch_end(struct wg_device *dev, struct rx_batch *b)
{
	run_flush(b);
	b->peer = NULL;
	if (b->wake)
		ev_wakeup_signal(dev->wakeup);
}

/* An authenticated packet from peer at src: a new run checks for roaming. */
static void run_account(struct rx_batch *b, struct wg_peer *peer, const union sockaddr_inet *src,
			size_t len)
{
	union sockaddr_inet cur;

	/* Byte-equal is equal (the common case, a run of one source); only
	 * when the bytes differ does the exact comparison decide. */
	if (peer != b->peer ||
	    (memcmp(&b->src, src, sizeof(*src)) && !endpoint_equal(&b->src, src))) {
		run_flush(b);
		b->peer = peer;
		b->src = *src;
		if (!peer_get_endpoint(peer, &cur) || !endpoint_equal(&cur, src))
			learn_endpoint(peer, src); /* roaming */
	}
	b->bytes += len;
}

/* Opens one data message in place; returns the plaintext length to deliver. */
static size_t rx_data(struct wg_device *dev, struct rx_batch *b, uint8_t *msg, size_t len,
		      const union sockaddr_inet *src, uint8_t **plain)
{
	uint64_t now = b->now;
	const struct wg_index_entry *e;
	struct wg_keypair *kp;
	struct wg_peer *peer;
	uint8_t nonce[AEAD_NONCE_LEN];
	uint64_t counter;
	size_t plen = len - MESSAGE_DATA_HEADER_LEN - NOISE_AUTHTAG_LEN;

	e = index_table_find(&dev->index, get_le32(msg + 4));
	if (!e || e->kind != INDEX_KEYPAIR) {
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
		return 0;
	}
	kp = e->keypair;
	peer = kp->peer;
	if (now - kp->birth_ns >= dev->timers.reject_after_ns)
		return 0;
	counter = get_le64(msg + 8);
	aead_nonce_from_counter(nonce, counter);
	*plain = msg + MESSAGE_DATA_HEADER_LEN;
	if (aead_open(b->ctx, kp->receiving_key, nonce, NULL, 0, *plain,
		      len - MESSAGE_DATA_HEADER_LEN, *plain) < 0) {
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
		return 0;
	}
	if (!replay_check(&kp->replay, counter, REJECT_AFTER_MESSAGES)) {
		atomic_fetch_add_explicit(&dev->stats.rx_replayed, 1, memory_order_relaxed);
		return 0;
	}
	/* Authenticated: from here on the packet speaks for the peer. */
	if (kp == peer->keypairs.next && !atomic_exchange(&peer->next_confirmed, true))
		device_queue_work(dev, peer);
	run_account(b, peer, src, len);
	if (kp->initiator &&
	    now - kp->birth_ns > dev->timers.reject_after_ns - dev->timers.keepalive_ns -
					 dev->timers.rekey_timeout_ns &&
	    !atomic_exchange(&peer->want_handshake, true))
		device_queue_work(dev, peer);
	if (plen == 0)
		return 0; /* keepalive */
	if (!atomic_load_explicit(&peer->data_recv_unanswered_ns, memory_order_relaxed))
		atomic_store_explicit(&peer->data_recv_unanswered_ns, now, memory_order_relaxed);
	return inner_admitted(dev, peer, *plain, plen);
}

size_t receive_datagram(struct wg_device *dev, struct rx_batch *b, uint8_t *msg, size_t len,
			const union sockaddr_inet *src, uint8_t **plain)
{
	uint32_t type;

	if (len < 4)
		goto invalid;
	type = get_le32(msg);
	if (type - 1 > MESSAGE_DATA - 1 && dev->aside_match && dev->aside_match(msg, len)) {
		pktq_lock(&dev->aside_q);
		b->wake |= pktq_push_locked(&dev->aside_q, src, NULL, msg, len);
		pktq_unlock(&dev->aside_q);
		return 0;
	}
	if (type == MESSAGE_DATA && len >= MESSAGE_MINIMUM_LENGTH)
		return rx_data(dev, b, msg, len, src, plain);
	if (len != message_expected_len(type))
		goto invalid;
	if (handshake_queue_push(dev->hsq, msg, len, src))
		b->wake = true;
	else
		atomic_fetch_add_explicit(&dev->stats.rx_handshake_dropped, 1,
					  memory_order_relaxed);
	return 0;
invalid:
	atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
	return 0;
}

bool device_datagram_from_peer(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN],
			       const uint8_t *pkt, size_t len, const union sockaddr_inet *src)
{
	uint8_t scratch[PKTQ_MAX_PACKET], nonce[AEAD_NONCE_LEN];
	const struct wg_index_entry *e;
	uint32_t type;
	bool ok = false;

	if (len < 4 || len > sizeof(scratch))
		return false;
	type = get_le32(pkt);
	if (type == MESSAGE_HANDSHAKE_INITIATION || type == MESSAGE_HANDSHAKE_RESPONSE)
		return len == message_expected_len(type) &&
		       cookie_validate_packet(&dev->cookie_checker, pkt, len, src, false) !=
			       INVALID_MAC;
	if (type != MESSAGE_DATA || len < MESSAGE_MINIMUM_LENGTH)
		return false;
	pthread_rwlock_rdlock(&dev->lock);
	e = index_table_find(&dev->index, get_le32(pkt + 4));
	if (e && e->kind == INDEX_KEYPAIR && !memcmp(e->keypair->peer->public_key, key, 32)) {
		aead_nonce_from_counter(nonce, get_le64(pkt + 8));
		ok = aead_open(dev->loop_aead, e->keypair->receiving_key, nonce, NULL, 0,
			       pkt + MESSAGE_DATA_HEADER_LEN, len - MESSAGE_DATA_HEADER_LEN,
			       scratch) == 0;
	}
	pthread_rwlock_unlock(&dev->lock);
	memzero_explicit(scratch, sizeof(scratch));
	return ok;
}

/* Processes a received batch under the read lock, collecting plaintext. */
static void rx_process_batch(struct rx_state *s, unsigned n)
{
	struct wg_device *dev = s->c.dev;
	struct rx_batch b;

	s->tb.n_pkts = 0;
	receive_batch_begin(&b, s->c.ctx, clock_mono_ns());
	pthread_rwlock_rdlock(&dev->lock);
	for (unsigned i = 0; i < n; i++) {
		const struct msghdr *m = &s->msgs[i].msg_hdr;
		size_t len = s->msgs[i].msg_len, seg = udp_gro_size(m);

		if (m->msg_flags & MSG_TRUNC)
			continue;
		if (!seg || seg > len)
			seg = len;
		/* A GRO'd datagram is messages of seg bytes, the last shorter. */
		for (size_t off = 0; off < len && s->tb.n_pkts < RX_MAX_PKTS; off += seg) {
			size_t mlen = len - off < seg ? len - off : seg;
			uint8_t *plain;
			size_t plen = receive_datagram(dev, &b, s->c.bufs[i] + off, mlen,
						       &s->names[i], &plain);
			if (plen)
				s->pkts[s->tb.n_pkts++] =
					(struct gro_pkt){.data = plain, .len = plen};
		}
	}
	receive_batch_end(dev, &b);
	pthread_rwlock_unlock(&dev->lock);
}

/* Writes the batch's plaintext to the TUN: coalesced units, or one by one. */
static void tun_batch_write(struct wg_device *dev, struct tun_batch *t)
{
	unsigned units;

	if (!t->vnet) {
		for (unsigned i = 0; i < t->n_pkts; i++)
			if (write(dev->tun_fd, t->pkts[i].data, t->pkts[i].len) < 0)
				atomic_fetch_add(&dev->stats.tx_errors, 1);
		return;
	}
	if (!t->coalesce) {
		for (unsigned i = 0; i < t->n_pkts; i++) {
			uint8_t *p = t->pkts[i].data - VNET_HDR_LEN;
			memset(p, 0, VNET_HDR_LEN);
			if (write(dev->tun_fd, p, t->pkts[i].len + VNET_HDR_LEN) < 0)
				atomic_fetch_add(&dev->stats.tx_errors, 1);
		}
		return;
	}
	units = gro_coalesce(t->pkts, t->n_pkts, t->coalesce_udp, t->out, t->unit_start,
			     t->unit_iovcnt);
	for (unsigned u = 0; u < units; u++) {
		if (writev(dev->tun_fd, t->out + t->unit_start[u], (int)t->unit_iovcnt[u]) >= 0)
			continue;
		atomic_fetch_add(&dev->stats.tx_errors, t->unit_iovcnt[u]);
		if (errno == EINVAL && t->unit_iovcnt[u] > 1) {
			log_warn("the TUN refused a coalesced packet; writing packets one by one");
			t->coalesce = false;
		}
	}
}

struct rx_state *rx_state_new(struct wg_device *dev)
{
	struct rx_state *s = calloc(1, sizeof(*s));

	if (s && dp_thread_init(&s->c, dev, RX_BUF_SIZE) < 0) {
		free(s);
		s = NULL;
	}
	if (s)
		tun_batch_init(&s->tb, dev, s->pkts, s->out, s->unit_start, s->unit_iovcnt);
	return s;
}

void rx_state_free(struct rx_state *s)
{
	if (s)
		dp_thread_destroy(&s->c);
	free(s);
}

void *rx_thread_main(void *arg)
{
	struct rx_state *s = arg;
	struct wg_device *dev = s->c.dev;

	while (!atomic_load(&dev->stopping)) {
		int fd = atomic_load(&dev->udp_fd);
		int n;

		atomic_store(&dev->rx_fd_in_use, fd);
		for (unsigned i = 0; i < RX_BATCH; i++)
			udp_mmsg_init(&s->msgs[i], &s->iovs[i], s->c.bufs[i], RX_BUF_SIZE,
				      &s->names[i], s->ctrl[i].buf, sizeof(s->ctrl[i].buf));
		/* Blocks for the first message, then takes what is queued. */
		n = recvmmsg(fd, s->msgs, RX_BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue; /* timeout, shutdown for a rebind, or EINTR */
		rx_process_batch(s, (unsigned)n);
		tun_batch_write(dev, &s->tb);
	}
	atomic_store(&dev->rx_fd_in_use, -1);
	return NULL;
}

/* --- packets relays delivered, on the event loop ----------------------------- */

/*
 * Relayed messages arrive as frames on the event loop, many per read.  They
 * are copied into a batch and processed together when it is full or when
 * the loop runs its timers (after the reads of this round): opened under one
 * read lock, then written to the TUN as the rx thread writes, coalesced.
 */
#define RELAY_RX_BATCH RX_BATCH

struct relay_rx {
	struct wg_device *dev;
	struct ev_timer flush;
	unsigned n;
	union sockaddr_inet src[RELAY_RX_BATCH]; /* a relay or a side path */
	uint16_t len[RELAY_RX_BATCH];
	struct tun_batch tb;
	struct gro_pkt pkts[RELAY_RX_BATCH];
	struct iovec out[RELAY_RX_BATCH];
	unsigned unit_start[RELAY_RX_BATCH];
	unsigned unit_iovcnt[RELAY_RX_BATCH];
	uint8_t bufs[RELAY_RX_BATCH][PKTQ_MAX_PACKET];
};

static void relay_rx_on_flush(struct evloop *loop, struct ev_timer *t, void *arg)
{
	device_relayed_flush(arg);
}

int relay_rx_new(struct wg_device *dev)
{
	struct relay_rx *rx = calloc(1, sizeof(*rx));

	if (!rx)
		return -ENOMEM;
	rx->dev = dev;
	ev_timer_init(&rx->flush, relay_rx_on_flush, dev);
	dev->relay_rx = rx;
	return 0;
}

void relay_rx_free(struct wg_device *dev)
{
	struct relay_rx *rx = dev->relay_rx;

	if (!rx)
		return;
	if (dev->loop)
		evloop_timer_cancel(dev->loop, &rx->flush);
	memzero_explicit(rx, sizeof(*rx)); /* plaintext was decrypted in place */
	free(rx);
	dev->relay_rx = NULL;
}

void device_relayed_add(struct wg_device *dev, uint16_t relay_id, const uint8_t *pkt, size_t len)
{
	union sockaddr_inet src;

	endpoint_set_relay(&src, relay_id);
	device_loop_rx_add(dev, &src, pkt, len);
}

void device_loop_rx_add(struct wg_device *dev, const union sockaddr_inet *src, const uint8_t *pkt,
			size_t len)
{
	struct relay_rx *rx = dev->relay_rx;

	if (len > PKTQ_MAX_PACKET) {
		atomic_fetch_add_explicit(&dev->stats.rx_invalid, 1, memory_order_relaxed);
		return;
	}
	memcpy(rx->bufs[rx->n], pkt, len);
	rx->len[rx->n] = (uint16_t)len;
	rx->src[rx->n] = *src;
	if (++rx->n == RELAY_RX_BATCH)
		device_relayed_flush(dev);
	else if (!ev_timer_armed(&rx->flush))
		evloop_timer_arm(dev->loop, &rx->flush, 0);
}

void device_relayed_flush(struct wg_device *dev)
{
	struct relay_rx *rx = dev->relay_rx;
	struct rx_batch b;

	if (!rx->n)
		return;
	evloop_timer_cancel(dev->loop, &rx->flush);
	/* The TUN's offloads are known only once it is open. */
	if (!rx->tb.pkts)
		tun_batch_init(&rx->tb, dev, rx->pkts, rx->out, rx->unit_start, rx->unit_iovcnt);
	rx->tb.n_pkts = 0;
	receive_batch_begin(&b, dev->loop_aead, clock_mono_ns());
	pthread_rwlock_rdlock(&dev->lock);
	for (unsigned i = 0; i < rx->n; i++) {
		uint8_t *plain;
		size_t plen;

		plen = receive_datagram(dev, &b, rx->bufs[i], rx->len[i], &rx->src[i], &plain);
		if (plen)
			rx->pkts[rx->tb.n_pkts++] = (struct gro_pkt){.data = plain, .len = plen};
	}
	receive_batch_end(dev, &b);
	pthread_rwlock_unlock(&dev->lock);
	rx->n = 0;
	if (dev->tun_fd >= 0)
		tun_batch_write(dev, &rx->tb);
}

void device_receive_relayed(struct wg_device *dev, uint16_t relay_id, const uint8_t *pkt,
			    size_t len)
{
	device_relayed_add(dev, relay_id, pkt, len);
	device_relayed_flush(dev);
}
