// SPDX-License-Identifier: MIT
/*
 * The whitepaper's timers (section 6), evaluated on the event loop.
 *
 * The Linux driver arms kernel timers from the packet path; here the data
 * path only stores timestamps in the peer (one store per batch), and a tick
 * on the event loop turns them into actions.  The tick is 1/50 of
 * REKEY_TIMEOUT (100 ms), far finer than any deadline it serves.
 */
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "wg/device.h"

void device_timers_init(struct wg_timers_config *t, unsigned divisor)
{
	t->rekey_timeout_ns = REKEY_TIMEOUT_MS * NSEC_PER_MSEC / divisor;
	t->jitter_max_ns = REKEY_TIMEOUT_JITTER_MAX_MS * NSEC_PER_MSEC / divisor;
	t->keepalive_ns = KEEPALIVE_TIMEOUT_MS * NSEC_PER_MSEC / divisor;
	t->rekey_after_ns = REKEY_AFTER_TIME_MS * NSEC_PER_MSEC / divisor;
	t->reject_after_ns = REJECT_AFTER_TIME_MS * NSEC_PER_MSEC / divisor;
	t->rekey_attempt_ns = REKEY_ATTEMPT_TIME_MS * NSEC_PER_MSEC / divisor;
	t->tick_ns = t->rekey_timeout_ns / 50;
	t->divisor = divisor;
}

void timers_handshake_complete(struct wg_peer *peer)
{
	peer->handshake_sent_ns = 0;
	peer->handshake_attempts = 0;
	atomic_store(&peer->last_handshake_wall_ns, clock_wall_ns());
}

static void zero_key_material(struct wg_peer *peer)
{
	struct wg_device *dev = peer->device;

	log_debug("zeroing keys of a peer idle for 3 x reject-after-time");
	pthread_rwlock_wrlock(&dev->lock);
	keypairs_clear(&peer->keypairs, &dev->index);
	if (peer->has_handshake_index) {
		index_table_remove(&dev->index, peer->handshake.local_index);
		peer->has_handshake_index = false;
	}
	pthread_rwlock_unlock(&dev->lock);
	noise_handshake_clear(&peer->handshake);
	peer->session_derived_ns = 0;
}

/* The peer refuses an initiation that follows the last one it took within
 * 1/INITIATIONS_PER_SECOND (20 ms) or within one step of the rounded
 * timestamp (2^24 ns): a resend sooner than this would be refused, and our
 * first initiation's answer no longer matches.  Both would cost 5 s. */
#define RESEND_GAP_NS (25 * 1000 * 1000ULL)

void timers_path_changed(struct wg_peer *peer)
{
	uint64_t now = clock_mono_ns();

	/* An initiation in flight went the old way and may be lost with it:
	 * send it again on the new path rather than in up to 5 s -- at once,
	 * or at the first tick the peer will take it. */
	if (!peer->handshake_sent_ns)
		return;
	if (now - peer->handshake_sent_ns >= RESEND_GAP_NS)
		send_handshake_initiation(peer, true);
	else
		peer->handshake_retry_at_ns = peer->handshake_sent_ns + RESEND_GAP_NS;
}

/* Retransmits an unanswered initiation, or gives up after 90 s of tries. */
static void tick_handshake(struct wg_peer *peer, uint64_t now)
{
	const struct wg_timers_config *t = &peer->device->timers;

	if (!peer->handshake_sent_ns || now < peer->handshake_retry_at_ns)
		return;
	if (peer->handshake_attempts + 1 >= t->rekey_attempt_ns / t->rekey_timeout_ns) {
		log_debug("handshake gave up after %u attempts", peer->handshake_attempts + 1);
		peer->handshake_sent_ns = 0;
		peer->handshake_attempts = 0;
		peer_drop_staged(peer);
		return;
	}
	peer->handshake_attempts++;
	send_handshake_initiation(peer, true);
}

static void tick_peer(struct wg_peer *peer, uint64_t now)
{
	const struct wg_timers_config *t = &peer->device->timers;
	uint64_t recv = atomic_load(&peer->data_recv_unanswered_ns);
	uint64_t sent = atomic_load(&peer->data_sent_unanswered_ns);
	uint64_t traversal = atomic_load(&peer->last_traversal_ns);

	tick_handshake(peer, now);
	/* Data came in and we sent nothing back: a keepalive tells the peer
	 * we are alive. */
	if (recv && now - recv >= t->keepalive_ns) {
		atomic_store(&peer->data_recv_unanswered_ns, 0);
		send_keepalive(peer);
	}
	/* We sent data and heard nothing for keepalive + rekey-timeout: the
	 * session may be dead, try a new handshake. */
	if (sent && now - sent >= t->keepalive_ns + t->rekey_timeout_ns) {
		atomic_store(&peer->data_sent_unanswered_ns, 0);
		send_handshake_initiation(peer, false);
	}
	if (peer->persistent_keepalive && traversal &&
	    now - traversal >= peer->persistent_keepalive * NSEC_PER_SEC / t->divisor)
		send_keepalive(peer);
	if (peer->session_derived_ns && now - peer->session_derived_ns >= 3 * t->reject_after_ns)
		zero_key_material(peer);
}

void peer_do_work(struct wg_peer *peer)
{
	struct wg_device *dev = peer->device;

	if (atomic_exchange(&peer->next_confirmed, false)) {
		struct wg_keypair *next = peer->keypairs.next;
		bool rotated;

		pthread_rwlock_wrlock(&dev->lock);
		rotated = keypairs_confirm_next(&peer->keypairs, next, &dev->index);
		pthread_rwlock_unlock(&dev->lock);
		if (rotated)
			timers_handshake_complete(peer);
		send_staged(peer);
	}
	if (atomic_exchange(&peer->want_handshake, false)) {
		struct wg_keypair *kp = peer->keypairs.current;
		uint64_t now = clock_mono_ns();

		/* Staged packets and a usable session: send them now. */
		if (kp && now - kp->birth_ns < dev->timers.reject_after_ns)
			send_staged(peer);
		send_handshake_initiation(peer, false);
	}
}

/* Closes a socket replaced by a rebind once the rx thread has left it. */
static void reap_retired_socket(struct wg_device *dev)
{
	if (dev->retired_fd >= 0 && atomic_load(&dev->rx_fd_in_use) != dev->retired_fd) {
		close(dev->retired_fd);
		dev->retired_fd = -1;
	}
}

void timers_tick(struct evloop *loop, struct ev_timer *timer, void *arg)
{
	struct wg_device *dev = arg;
	uint64_t now = clock_mono_ns();

	reap_retired_socket(dev);
	side_reap(dev);
	for (struct wg_peer *p = dev->peers; p; p = p->list_next)
		tick_peer(p, now);
	evloop_timer_arm(loop, timer, now + dev->timers.tick_ns);
}
