// SPDX-License-Identifier: MIT
/*
 * Sending: the tx thread (TUN -> seal -> UDP, a batch per iteration) and the
 * event loop's sends (handshake messages, keepalives, staged packets).
 */
#include <endian.h>
#include <errno.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "wg/device.h"
#include "wg/offload.h"
#include "wg/tun.h"
#include "wg/udp.h"

static inline void put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* Plaintext is padded to a multiple of 16, but never past the MTU. */
static size_t padded_len(size_t len, int mtu)
{
	size_t padded =
		(len + MESSAGE_PADDING_MULTIPLE - 1) & ~(size_t)(MESSAGE_PADDING_MULTIPLE - 1);

	if (mtu > 0 && len <= (size_t)mtu && padded > (size_t)mtu)
		padded = (size_t)mtu;
	return padded;
}

static bool keypair_can_send(const struct wg_device *dev, const struct wg_keypair *kp, uint64_t now)
{
	return kp && now - kp->birth_ns < dev->timers.reject_after_ns &&
	       atomic_load_explicit(&kp->sending_counter, memory_order_relaxed) <
		       REJECT_AFTER_MESSAGES;
}

/*
 * Seals pkt (plaintext at buf + MESSAGE_DATA_HEADER_LEN, len bytes, room for
 * padding and tag after it) in place.  Returns the message length, or 0 when
 * the keypair is used up.
 */
static size_t seal_data(struct wg_device *dev, struct aead_ctx *ctx, struct wg_keypair *kp,
			uint8_t *buf, size_t len)
{
	uint8_t nonce[AEAD_NONCE_LEN];
	uint64_t counter = atomic_fetch_add_explicit(&kp->sending_counter, 1, memory_order_relaxed);
	size_t plen = padded_len(len, dev->mtu);
	uint8_t *payload = buf + MESSAGE_DATA_HEADER_LEN;

	if (counter >= REJECT_AFTER_MESSAGES)
		return 0;
	memset(payload + len, 0, plen - len);
	put_le32(buf, MESSAGE_DATA);
	put_le32(buf + 4, kp->remote_index);
	put_le64(buf + 8, counter);
	aead_nonce_from_counter(nonce, counter);
	if (aead_seal(ctx, kp->sending_key, nonce, NULL, 0, payload, plen, payload) < 0)
		return 0;
	return MESSAGE_DATA_HEADER_LEN + plen + NOISE_AUTHTAG_LEN;
}

/* After sending anything authenticated to peer (data or keepalive). */
static void note_sent(struct wg_peer *peer, size_t bytes, bool data, uint64_t now)
{
	atomic_fetch_add_explicit(&peer->tx_bytes, bytes, memory_order_relaxed);
	atomic_store_explicit(&peer->last_sent_ns, now, memory_order_relaxed);
	atomic_store_explicit(&peer->last_traversal_ns, now, memory_order_relaxed);
	if (atomic_load_explicit(&peer->data_recv_unanswered_ns, memory_order_relaxed))
		atomic_store_explicit(&peer->data_recv_unanswered_ns, 0, memory_order_relaxed);
	if (data && !atomic_load_explicit(&peer->data_sent_unanswered_ns, memory_order_relaxed))
		atomic_store_explicit(&peer->data_sent_unanswered_ns, now, memory_order_relaxed);
}

/* Asks the event loop for a handshake when the current keypair is ageing. */
static void keep_key_fresh(struct wg_device *dev, struct wg_peer *peer, struct wg_keypair *kp,
			   uint64_t now)
{
	uint64_t counter = atomic_load_explicit(&kp->sending_counter, memory_order_relaxed);

	if (counter > REKEY_AFTER_MESSAGES ||
	    (kp->initiator && now - kp->birth_ns > dev->timers.rekey_after_ns)) {
		if (!atomic_exchange(&peer->want_handshake, true))
			device_queue_work(dev, peer);
	}
}

void endpoint_for_socket(const struct wg_device *dev, const union sockaddr_inet *in,
			 union sockaddr_inet *out)
{
	if (atomic_load_explicit(&dev->udp_family, memory_order_relaxed) == AF_INET)
		endpoint_unmap(in, out);
	else
		endpoint_to_v6(in, out);
}

void send_to(struct wg_device *dev, const union sockaddr_inet *ep, const void *buf, size_t len)
{
	int fd = atomic_load(&dev->udp_fd);
	union sockaddr_inet to;

	/* A relay path needs a destination key: only send_buffer_to_peer has
	 * one (a cookie reply to a relayed initiation is not sent). */
	if (endpoint_is_side(ep))
		fd = side_fd_for(dev, ep, &to);
	else
		endpoint_for_socket(dev, ep, &to);
	if (fd < 0 || endpoint_is_relay(ep))
		return;
	if (sendto(fd, buf, len, MSG_DONTWAIT, &to.sa, endpoint_len(&to)) < 0)
		atomic_fetch_add(&dev->stats.tx_errors, 1);
}

int device_send_aside(struct wg_device *dev, const union sockaddr_inet *to, const void *pkt,
		      size_t len)
{
	int fd = atomic_load(&dev->udp_fd);
	union sockaddr_inet dst;

	if (fd < 0)
		return -ENOTCONN;
	endpoint_for_socket(dev, to, &dst);
	if (sendto(fd, pkt, len, MSG_DONTWAIT, &dst.sa, endpoint_len(&dst)) < 0)
		return -errno;
	return 0;
}

void send_buffer_to_peer(struct wg_peer *peer, const void *buf, size_t len)
{
	union sockaddr_inet ep;

	if (!peer_get_endpoint(peer, &ep))
		return;
	if (endpoint_is_relay(&ep) && peer->device->relay_send) /* on the event loop */
		peer->device->relay_send(peer->device->overlay_arg, endpoint_relay_id(&ep),
					 peer->public_key, buf, len);
	else
		send_to(peer->device, &ep, buf, len);
	atomic_fetch_add(&peer->tx_bytes, len);
	atomic_store(&peer->last_sent_ns, clock_mono_ns());
}

void send_handshake_initiation(struct wg_peer *peer, bool is_retry)
{
	struct wg_device *dev = peer->device;
	struct message_handshake_initiation msg;
	uint64_t now = clock_mono_ns();
	union sockaddr_inet ep;
	uint32_t index;

	if (!dev->identity.has_identity || !peer_get_endpoint(peer, &ep))
		return;
	if (!is_retry && peer->handshake_sent_ns &&
	    now - peer->handshake_sent_ns < dev->timers.rekey_timeout_ns)
		return;
	if (!is_retry)
		peer->handshake_attempts = 0;
	pthread_rwlock_wrlock(&dev->lock);
	if (peer->has_handshake_index)
		index_table_remove(&dev->index, peer->handshake.local_index);
	peer->has_handshake_index =
		index_table_add(&dev->index, INDEX_HANDSHAKE, peer, NULL, &index) == 0;
	pthread_rwlock_unlock(&dev->lock);
	if (!peer->has_handshake_index)
		return;
	if (noise_handshake_create_initiation(&msg, &peer->handshake, &dev->identity, index) < 0)
		return;
	cookie_add_macs(&peer->cookie, &msg, sizeof(msg));
	send_buffer_to_peer(peer, &msg, sizeof(msg));
	atomic_store(&peer->last_traversal_ns, now);
	peer->handshake_sent_ns = now;
	peer->handshake_retry_at_ns = now + dev->timers.rekey_timeout_ns +
				      (uint64_t)random_u32() % (dev->timers.jitter_max_ns + 1);
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char id[PEER_ID_LEN];
		peer_id(peer, id);
		log_debug("sending handshake initiation peer=%s attempt=%u", id,
			  peer->handshake_attempts + 1);
	}
	memzero_explicit(&msg, sizeof(msg));
}

/* Seals one plaintext packet on the event loop and sends it. */
static bool send_one_sealed(struct wg_peer *peer, struct wg_keypair *kp, const uint8_t *pkt,
			    size_t len, uint64_t now)
{
	struct wg_device *dev = peer->device;
	uint8_t *buf = malloc(MESSAGE_DATA_HEADER_LEN + len + MESSAGE_PADDING_MULTIPLE +
			      NOISE_AUTHTAG_LEN);
	size_t mlen;

	if (!buf)
		return false;
	if (len)
		memcpy(buf + MESSAGE_DATA_HEADER_LEN, pkt, len);
	mlen = seal_data(dev, dev->loop_aead, kp, buf, len);
	if (mlen) {
		send_buffer_to_peer(peer, buf, mlen);
		note_sent(peer, 0, len > 0, now);
		keep_key_fresh(dev, peer, kp, now);
	}
	free(buf);
	return mlen > 0;
}

void send_staged(struct wg_peer *peer)
{
	struct wg_device *dev = peer->device;
	struct wg_staged_packet *pkts[PEER_STAGED_MAX];
	uint64_t now = clock_mono_ns();
	struct wg_keypair *kp = peer->keypairs.current;
	unsigned n;

	if (!keypair_can_send(dev, kp, now)) {
		send_handshake_initiation(peer, false);
		return;
	}
	n = peer_take_staged(peer, pkts, PEER_STAGED_MAX);
	for (unsigned i = 0; i < n; i++) {
		send_one_sealed(peer, kp, pkts[i]->data, pkts[i]->len, now);
		free(pkts[i]);
	}
}

void send_keepalive(struct wg_peer *peer)
{
	struct wg_device *dev = peer->device;
	uint64_t now = clock_mono_ns();
	struct wg_keypair *kp = peer->keypairs.current;
	bool staged;

	pthread_mutex_lock(&peer->staged_lock);
	staged = peer->staged_count > 0;
	pthread_mutex_unlock(&peer->staged_lock);
	if (staged) {
		send_staged(peer);
		return;
	}
	if (!keypair_can_send(dev, kp, now)) {
		send_handshake_initiation(peer, false);
		return;
	}
	send_one_sealed(peer, kp, NULL, 0, now);
}

/* --- the tx thread -------------------------------------------------------- */

/*
 * One batch: up to TX_MAX_READS reads from the TUN (each a packet or a
 * TSO/USO super-packet split into segments), into TX_SLOTS fixed slots with
 * a message header's room before each packet and padding and tag room after
 * it; then, under one read lock, allowed IPs, sealing in place, and grouping
 * into UDP GSO sends; then one sendmmsg for the whole batch.
 */
#define TX_SLOTS     256
#define TX_MAX_READS 64
#define TX_OVERFLOW  65536 /* a super-packet's bytes past the first slot */

struct tx_state {
	struct dp_thread c; /* first: what every data-path thread owns */
	uint8_t *slots;
	size_t slot_size; /* header + slot_cap + tag */
	size_t slot_cap;  /* plaintext bytes a slot holds, padding included */
	uint8_t *rbuf;	  /* a super-packet, contiguous: slot_cap + TX_OVERFLOW */
	uint8_t vhdr[VNET_HDR_LEN];
	bool vnet;
	bool drained; /* the last read found the TUN empty */
	int gso_fd;   /* the socket gso was probed on */
	bool gso;
	size_t lens[TX_SLOTS];
	uint8_t *segp[OFFLOAD_MAX_SEGS];
	/* Sends: one msghdr per GSO group (or per message without GSO). */
	unsigned n_groups, n_iov;
	struct mmsghdr msgs[TX_SLOTS];
	struct iovec iovs[TX_SLOTS];
	union sockaddr_inet names[TX_SLOTS];
	uint16_t group_seg[TX_SLOTS]; /* segment size; 0 once closed */
	uint16_t group_bytes[TX_SLOTS];
	unsigned group_run[TX_SLOTS];
	int group_fd[TX_SLOTS]; /* the device's socket or a side socket */
	int udp_fd;		/* the device's, for this batch */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctrl[TX_SLOTS];
	/* Sealed packets for relay paths: handed to the event loop per batch. */
	unsigned n_relayed;
	unsigned relayed[TX_SLOTS]; /* slot indices */
	size_t relayed_lens[TX_SLOTS];
	union sockaddr_inet relayed_paths[TX_SLOTS];
	uint8_t relayed_keys[TX_SLOTS][NOISE_PUBLIC_KEY_LEN];
};

static inline uint8_t *tx_slot(const struct tx_state *s, unsigned i)
{
	return s->slots + (size_t)i * s->slot_size;
}

static const uint8_t *inner_destination(const uint8_t *pkt, size_t len, int *family)
{
	if (len >= 20 && (pkt[0] >> 4) == 4) {
		*family = AF_INET;
		return pkt + 16;
	}
	if (len >= 40 && (pkt[0] >> 4) == 6) {
		*family = AF_INET6;
		return pkt + 24;
	}
	return NULL;
}

static void tx_drop(struct tx_state *s)
{
	atomic_fetch_add_explicit(&s->c.dev->stats.tx_errors, 1, memory_order_relaxed);
}

static void tx_flush(struct tx_state *s, unsigned used);

/* A super-packet (now contiguous in rbuf) into segments from slot *used. */
static void tx_split(struct tx_state *s, const struct vnet_hdr *h, size_t len, unsigned *used)
{
	int segs = offload_split_count(h, s->rbuf, len);

	if (segs < 0 || segs > TX_SLOTS) {
		tx_drop(s);
		return;
	}
	if (*used + (unsigned)segs > TX_SLOTS) {
		tx_flush(s, *used);
		*used = 0;
	}
	for (int i = 0; i < segs; i++)
		s->segp[i] = tx_slot(s, *used + (unsigned)i) + MESSAGE_DATA_HEADER_LEN;
	segs = offload_split(h, s->rbuf, len, s->segp, s->slot_cap - MESSAGE_PADDING_MULTIPLE,
			     &s->lens[*used], (unsigned)segs);
	if (segs < 0)
		tx_drop(s);
	else
		*used += (unsigned)segs;
}

/*
 * Reads one packet into slot *used, or a super-packet, split into slots.
 * The read lands in the slot; only what overflows it (a super-packet) lands
 * in rbuf, which then gets the slot's part too.  Returns 0, or -EAGAIN when
 * the TUN is empty (or -errno).
 */
static int tx_read_one(struct tx_state *s, unsigned *used)
{
	uint8_t *slot = tx_slot(s, *used) + MESSAGE_DATA_HEADER_LEN;
	size_t cap = s->slot_cap - MESSAGE_PADDING_MULTIPLE;
	struct iovec iov[3];
	struct vnet_hdr h = {0};
	int k = 0;
	ssize_t r;
	size_t len;

	if (s->vnet)
		iov[k++] = (struct iovec){.iov_base = s->vhdr, .iov_len = VNET_HDR_LEN};
	iov[k++] = (struct iovec){.iov_base = slot, .iov_len = cap};
	iov[k++] = (struct iovec){.iov_base = s->rbuf + cap, .iov_len = TX_OVERFLOW};
	r = readv(s->c.dev->tun_fd, iov, k);
	if (r < 0)
		return -errno;
	len = (size_t)r;
	if (s->vnet) {
		if (len < VNET_HDR_LEN)
			return 0;
		vnet_hdr_read(s->vhdr, &h);
		len -= VNET_HDR_LEN;
	}
	if ((h.gso_type & ~VNET_HDR_GSO_ECN) == VNET_HDR_GSO_NONE) {
		if (len > cap ||
		    ((h.flags & VNET_HDR_F_NEEDS_CSUM) &&
		     offload_csum_complete(slot, len, h.csum_start, h.csum_offset) < 0)) {
			tx_drop(s);
			return 0;
		}
		s->lens[(*used)++] = len;
		return 0;
	}
	memcpy(s->rbuf, slot, len < cap ? len : cap);
	tx_split(s, &h, len, used);
	return 0;
}

/* Queues sealed slot i (mlen bytes) for ep, in the open GSO group if it fits. */
static void tx_queue(struct tx_state *s, unsigned i, size_t mlen, const union sockaddr_inet *ep,
		     int fd, unsigned run)
{
	unsigned g = s->n_groups;

	if (g && s->gso) {
		unsigned o = g - 1;
		struct msghdr *m = &s->msgs[o].msg_hdr;
		if (s->group_run[o] == run && s->group_seg[o] && mlen <= s->group_seg[o] &&
		    m->msg_iovlen < UDP_GSO_MAX_SEGS &&
		    s->group_bytes[o] + mlen <= UDP_GSO_MAX_BYTES) {
			s->iovs[s->n_iov++] =
				(struct iovec){.iov_base = tx_slot(s, i), .iov_len = mlen};
			m->msg_iovlen++;
			s->group_bytes[o] = (uint16_t)(s->group_bytes[o] + mlen);
			if (mlen < s->group_seg[o])
				s->group_seg[o] = 0; /* a short one ends a group */
			return;
		}
	}
	s->names[g] = *ep;
	s->group_seg[g] = (uint16_t)mlen;
	s->group_bytes[g] = (uint16_t)mlen;
	s->group_run[g] = run;
	s->group_fd[g] = fd;
	s->iovs[s->n_iov] = (struct iovec){.iov_base = tx_slot(s, i), .iov_len = mlen};
	s->msgs[g].msg_hdr = (struct msghdr){
		.msg_name = &s->names[g],
		.msg_namelen = endpoint_len(ep),
		.msg_iov = &s->iovs[s->n_iov],
		.msg_iovlen = 1,
	};
	s->n_iov++;
	s->n_groups++;
}

/* Seals the batch under the read lock, grouping messages for sending. */
static void tx_seal_batch(struct tx_state *s, unsigned n)
{
	struct wg_device *dev = s->c.dev;
	uint64_t now = clock_mono_ns();
	struct wg_peer *run_peer = NULL;
	union sockaddr_inet run_ep;
	bool run_has_ep = false;
	int run_fd = -1;
	size_t run_bytes = 0;
	unsigned run = 0;
	/* The last destination looked up: a batch is mostly one flow. */
	uint8_t last_dst[16];
	int last_family = 0;
	struct wg_peer *last_peer = NULL;

	s->n_groups = s->n_iov = 0;
	pthread_rwlock_rdlock(&dev->lock);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *pkt = tx_slot(s, i) + MESSAGE_DATA_HEADER_LEN;
		int family = 0;
		const uint8_t *dst = inner_destination(pkt, s->lens[i], &family);
		size_t alen = family == AF_INET ? 4 : 16;
		struct wg_peer *peer;
		struct wg_keypair *kp;
		size_t mlen;

		if (!dst) {
			peer = NULL;
		} else if (family == last_family && !memcmp(dst, last_dst, alen)) {
			peer = last_peer;
		} else {
			peer = allowedips_lookup(&dev->allowedips, family, dst);
			last_family = family;
			memcpy(last_dst, dst, alen);
			last_peer = peer;
		}
		if (!peer) {
			atomic_fetch_add_explicit(&dev->stats.tx_no_peer, 1, memory_order_relaxed);
			continue;
		}
		if (peer != run_peer) {
			/* Consecutive packets usually share a peer: one endpoint
			 * read and one counter update per run, not per packet. */
			if (run_peer && run_bytes)
				note_sent(run_peer, run_bytes, true, now);
			run_peer = peer;
			run_bytes = 0;
			run++;
			run_has_ep = peer_get_endpoint(peer, &run_ep);
			run_fd = s->udp_fd;
			if (run_has_ep && endpoint_is_side(&run_ep))
				run_has_ep = (run_fd = side_fd_for(dev, &run_ep, &run_ep)) >= 0;
			else
				endpoint_for_socket(dev, &run_ep, &run_ep);
		}
		kp = peer->keypairs.current;
		if (!keypair_can_send(dev, kp, now)) {
			peer_stage_packet(peer, pkt, s->lens[i]);
			if (!atomic_exchange(&peer->want_handshake, true))
				device_queue_work(dev, peer);
			continue;
		}
		if (!run_has_ep) {
			atomic_fetch_add_explicit(&dev->stats.tx_no_endpoint, 1,
						  memory_order_relaxed);
			continue;
		}
		mlen = seal_data(dev, s->c.ctx, kp, tx_slot(s, i), s->lens[i]);
		if (!mlen)
			continue;
		keep_key_fresh(dev, peer, kp, now);
		run_bytes += mlen;
		if (endpoint_is_relay(&run_ep)) {
			unsigned r = s->n_relayed++;
			s->relayed[r] = i;
			s->relayed_lens[r] = mlen;
			s->relayed_paths[r] = run_ep;
			memcpy(s->relayed_keys[r], peer->public_key, NOISE_PUBLIC_KEY_LEN);
			continue;
		}
		tx_queue(s, i, mlen, &run_ep, run_fd, run);
	}
	if (run_peer && run_bytes)
		note_sent(run_peer, run_bytes, true, now);
	pthread_rwlock_unlock(&dev->lock);
}

/* One lock and one wake-up for all of a batch's relayed packets. */
static void tx_hand_to_relays(struct tx_state *s)
{
	struct wg_device *dev = s->c.dev;

	if (!s->n_relayed)
		return;
	pktq_lock(&dev->relay_q);
	for (unsigned r = 0; r < s->n_relayed; r++)
		if (!pktq_push_locked(&dev->relay_q, &s->relayed_paths[r], s->relayed_keys[r],
				      tx_slot(s, s->relayed[r]), s->relayed_lens[r]))
			atomic_fetch_add_explicit(&dev->stats.tx_errors, 1, memory_order_relaxed);
	pktq_unlock(&dev->relay_q);
	s->n_relayed = 0;
	ev_wakeup_signal(dev->wakeup);
}

/* Gives the groups of more than one message their UDP_SEGMENT size. */
static void tx_set_segments(struct tx_state *s)
{
	for (unsigned g = 0; g < s->n_groups; g++) {
		struct msghdr *m = &s->msgs[g].msg_hdr;
		struct cmsghdr *cm;
		uint16_t seg;

		if (m->msg_iovlen < 2)
			continue;
		seg = (uint16_t)m->msg_iov[0].iov_len;
		m->msg_control = s->ctrl[g].buf;
		m->msg_controllen = sizeof(s->ctrl[g].buf);
		cm = CMSG_FIRSTHDR(m);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
	}
}

/* The messages of a GSO group the kernel refused, one datagram each. */
static void tx_send_apart(struct tx_state *s, int fd, const struct msghdr *m)
{
	for (size_t k = 0; k < m->msg_iovlen; k++)
		if (sendto(fd, m->msg_iov[k].iov_base, m->msg_iov[k].iov_len, 0, m->msg_name,
			   m->msg_namelen) < 0)
			tx_drop(s);
}

/* Sends groups [from, to), which share socket fd; a group the kernel
 * refuses is counted as errors and skipped. */
static void tx_send_groups(struct tx_state *s, int fd, unsigned from, unsigned to)
{
	unsigned sent = from;

	while (sent < to && fd >= 0) {
		int r = sendmmsg(fd, s->msgs + sent, to - sent, 0);
		if (r >= 0) {
			sent += (unsigned)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (s->msgs[sent].msg_hdr.msg_controllen && (errno == EIO || errno == EINVAL)) {
			/* The route's device cannot take GSO: never again on
			 * this socket; this group goes apart. */
			log_warn("UDP GSO refused, sending datagrams one by one error=\"%s\"",
				 strerror(errno));
			s->gso = false;
			tx_send_apart(s, fd, &s->msgs[sent].msg_hdr);
		} else {
			/* Unreachable destination and the like: skip that one. */
			atomic_fetch_add_explicit(&s->c.dev->stats.tx_errors,
						  s->msgs[sent].msg_hdr.msg_iovlen,
						  memory_order_relaxed);
		}
		sent++;
	}
}

/* One sendmmsg per run of groups on the same socket (almost always one). */
static void tx_send_batch(struct tx_state *s)
{
	unsigned from = 0, n = s->n_groups;

	tx_hand_to_relays(s);
	tx_set_segments(s);
	while (from < n) {
		unsigned to = from + 1;
		while (to < n && s->group_fd[to] == s->group_fd[from])
			to++;
		tx_send_groups(s, s->group_fd[from], from, to);
		from = to;
	}
}

static void tx_flush(struct tx_state *s, unsigned used)
{
	int fd = atomic_load(&s->c.dev->udp_fd);

	if (fd != s->gso_fd) {
		s->gso_fd = fd;
		s->gso = fd >= 0 && udp_gso_supported(fd);
	}
	s->udp_fd = fd;
	tx_seal_batch(s, used);
	tx_send_batch(s);
}

struct tx_state *tx_state_new(struct wg_device *dev)
{
	struct tx_state *s = calloc(1, sizeof(*s));
	size_t mtu = dev->mtu > 0 ? (size_t)dev->mtu : WG_DEFAULT_MTU;

	if (!s)
		return NULL;
	/* Slots hold an MTU-sized packet with its padding (dp_thread's own
	 * buffers go unused but for its cipher context). */
	s->slot_cap =
		((mtu + MESSAGE_PADDING_MULTIPLE - 1) & ~(size_t)(MESSAGE_PADDING_MULTIPLE - 1)) +
		MESSAGE_PADDING_MULTIPLE;
	s->slot_size =
		(MESSAGE_DATA_HEADER_LEN + s->slot_cap + NOISE_AUTHTAG_LEN + 63) & ~(size_t)63;
	s->vnet = dev->tun_offloads & TUN_OFFLOAD_VNET_HDR;
	s->gso_fd = -1;
	s->slots = aligned_alloc(64, s->slot_size * TX_SLOTS);
	s->rbuf = malloc(s->slot_cap + TX_OVERFLOW);
	if (!s->slots || !s->rbuf || dp_thread_init(&s->c, dev, 64) < 0) {
		free(s->slots);
		free(s->rbuf);
		free(s);
		return NULL;
	}
	return s;
}

void tx_state_free(struct tx_state *s)
{
	if (!s)
		return;
	dp_thread_destroy(&s->c);
	free(s->slots);
	free(s->rbuf);
	free(s);
}

/*
 * Reads until the TUN is empty or the slots are full, then sends.  poll()
 * only when the TUN was found empty (by the last batch's final read, or by
 * this one's first): under load a batch is its reads and one sendmmsg, and
 * waking from idle costs one poll, not an extra read.
 */
static void tx_batch(struct tx_state *s)
{
	struct wg_device *dev = s->c.dev;
	struct pollfd pfd[2] = {{.fd = dev->tun_fd, .events = POLLIN},
				{.fd = dev->stop_efd, .events = POLLIN}};
	unsigned used = 0, reads = 0;
	int r = -EAGAIN;

	atomic_fetch_add(&dev->side.tx_epoch, 1); /* side.c: what may be closed */
	if (!s->drained)
		r = tx_read_one(s, &used);
	if (r < 0) {
		if (poll(pfd, 2, 1000) <= 0 || (pfd[1].revents & POLLIN))
			return;
	} else {
		reads++;
	}
	s->drained = false;
	for (; reads < TX_MAX_READS && used < TX_SLOTS; reads++) {
		if (tx_read_one(s, &used) < 0) {
			s->drained = true;
			break;
		}
	}
	if (used)
		tx_flush(s, used);
}

void *tx_thread_main(void *arg)
{
	struct tx_state *s = arg;

	while (!atomic_load(&s->c.dev->stopping))
		tx_batch(s);
	return NULL;
}
