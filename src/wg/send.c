// SPDX-License-Identifier: MIT
/*
 * Sending: the tx thread (TUN -> seal -> UDP, a batch per iteration) and the
 * event loop's sends (handshake messages, keepalives, staged packets).
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "wg/device.h"

#define TX_BATCH    DP_BATCH
#define TX_BUF_SIZE (MESSAGE_DATA_HEADER_LEN + 65535 + NOISE_AUTHTAG_LEN + MESSAGE_PADDING_MULTIPLE)

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
	if (fd < 0 || endpoint_is_relay(ep))
		return;
	endpoint_for_socket(dev, ep, &to);
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

struct tx_state {
	struct dp_thread c; /* first: what every data-path thread owns */
	size_t lens[TX_BATCH];
	struct mmsghdr msgs[TX_BATCH];
	struct iovec iovs[TX_BATCH];
	union sockaddr_inet names[TX_BATCH];
	/* Sealed packets for relay paths: handed to the event loop per batch. */
	unsigned n_relayed;
	unsigned relayed[TX_BATCH]; /* indices into c.bufs */
	size_t relayed_lens[TX_BATCH];
	union sockaddr_inet relayed_paths[TX_BATCH];
	uint8_t relayed_keys[TX_BATCH][NOISE_PUBLIC_KEY_LEN];
};

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

/* Reads up to TX_BATCH packets; returns how many (0 when idle or stopping). */
static unsigned tx_read_batch(struct tx_state *s)
{
	struct wg_device *dev = s->c.dev;
	struct pollfd pfd[2] = {{.fd = dev->tun_fd, .events = POLLIN},
				{.fd = dev->stop_efd, .events = POLLIN}};
	unsigned n = 0;

	if (poll(pfd, 2, 1000) <= 0 || (pfd[1].revents & POLLIN))
		return 0;
	while (n < TX_BATCH) {
		ssize_t r = read(dev->tun_fd, s->c.bufs[n] + MESSAGE_DATA_HEADER_LEN, 65535);
		if (r <= 0)
			break;
		s->lens[n++] = (size_t)r;
	}
	return n;
}

/* Seals the batch under the read lock; returns the messages to send. */
static unsigned tx_seal_batch(struct tx_state *s, unsigned n)
{
	struct wg_device *dev = s->c.dev;
	uint64_t now = clock_mono_ns();
	struct wg_peer *run_peer = NULL;
	union sockaddr_inet run_ep;
	bool run_has_ep = false;
	size_t run_bytes = 0;
	unsigned out = 0;

	pthread_rwlock_rdlock(&dev->lock);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *pkt = s->c.bufs[i] + MESSAGE_DATA_HEADER_LEN;
		int family;
		const uint8_t *dst = inner_destination(pkt, s->lens[i], &family);
		struct wg_peer *peer =
			dst ? allowedips_lookup(&dev->allowedips, family, dst) : NULL;
		struct wg_keypair *kp;
		size_t mlen;

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
			run_has_ep = peer_get_endpoint(peer, &run_ep);
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
		mlen = seal_data(dev, s->c.ctx, kp, s->c.bufs[i], s->lens[i]);
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
		s->names[out] = run_ep;
		s->iovs[out] = (struct iovec){.iov_base = s->c.bufs[i], .iov_len = mlen};
		s->msgs[out].msg_hdr = (struct msghdr){
			.msg_name = &s->names[out],
			.msg_namelen = endpoint_len(&run_ep),
			.msg_iov = &s->iovs[out],
			.msg_iovlen = 1,
		};
		out++;
	}
	if (run_peer && run_bytes)
		note_sent(run_peer, run_bytes, true, now);
	pthread_rwlock_unlock(&dev->lock);
	return out;
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
				      s->c.bufs[s->relayed[r]], s->relayed_lens[r]))
			atomic_fetch_add_explicit(&dev->stats.tx_errors, 1, memory_order_relaxed);
	pktq_unlock(&dev->relay_q);
	s->n_relayed = 0;
	ev_wakeup_signal(dev->wakeup);
}

static void tx_send_batch(struct tx_state *s, unsigned n)
{
	tx_hand_to_relays(s);
	int fd = atomic_load(&s->c.dev->udp_fd);
	unsigned sent = 0;

	while (sent < n && fd >= 0) {
		int r = sendmmsg(fd, s->msgs + sent, n - sent, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* Unreachable destination and the like: skip that one. */
			atomic_fetch_add(&s->c.dev->stats.tx_errors, 1);
			sent++;
			continue;
		}
		sent += (unsigned)r;
	}
}

struct tx_state *tx_state_new(struct wg_device *dev)
{
	struct tx_state *s = calloc(1, sizeof(*s));

	if (s && dp_thread_init(&s->c, dev, TX_BUF_SIZE) < 0) {
		free(s);
		s = NULL;
	}
	return s;
}

void tx_state_free(struct tx_state *s)
{
	if (s)
		dp_thread_destroy(&s->c);
	free(s);
}

void *tx_thread_main(void *arg)
{
	struct tx_state *s = arg;

	while (!atomic_load(&s->c.dev->stopping)) {
		unsigned n = tx_read_batch(s);
		if (n)
			tx_send_batch(s, tx_seal_batch(s, n));
	}
	return NULL;
}
