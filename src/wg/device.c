// SPDX-License-Identifier: MIT
/* The device: lifecycle, peers and configuration (see device.h). */
#include "wg/device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/netlink.h"
#include "wg/tun.h"
#include "wg/udp.h"

#define PEER_HASH_MIN 64

static uint32_t peer_hash_of(const struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	uint64_t h;

	/* Public keys are uniform; the seed keeps chains unpredictable. */
	memcpy(&h, key, sizeof(h));
	h ^= dev->peer_hash_seed;
	h *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(h >> 32) & (dev->peer_hash_size - 1);
}

struct wg_peer *device_find_peer(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	struct wg_peer *p = dev->peer_hash[peer_hash_of(dev, key)];

	while (p && memcmp(p->public_key, key, NOISE_PUBLIC_KEY_LEN))
		p = p->hash_next;
	return p;
}

static int peer_hash_grow(struct wg_device *dev)
{
	uint32_t size = dev->peer_hash_size * 2;
	struct wg_peer **table = calloc(size, sizeof(*table));

	if (!table)
		return -ENOMEM;
	free(dev->peer_hash);
	dev->peer_hash = table;
	dev->peer_hash_size = size;
	for (struct wg_peer *p = dev->peers; p; p = p->list_next) {
		uint32_t h = peer_hash_of(dev, p->public_key);
		p->hash_next = table[h];
		table[h] = p;
	}
	return 0;
}

/* Called with the write lock held. */
static struct wg_peer *device_add_peer(struct wg_device *dev,
				       const uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	struct wg_peer *peer;
	uint32_t h;

	if (dev->n_peers + 1 > dev->peer_hash_size && peer_hash_grow(dev) < 0)
		return NULL;
	peer = peer_new(dev, key);
	if (!peer)
		return NULL;
	noise_handshake_init(&peer->handshake, &dev->identity, key, NULL);
	h = peer_hash_of(dev, key);
	peer->hash_next = dev->peer_hash[h];
	dev->peer_hash[h] = peer;
	if (dev->peers_tail)
		dev->peers_tail->list_next = peer;
	else
		dev->peers = peer;
	dev->peers_tail = peer;
	dev->n_peers++;
	return peer;
}

static void work_queue_forget(struct wg_device *dev, struct wg_peer *peer)
{
	pthread_mutex_lock(&dev->work_lock);
	for (struct wg_peer **pp = &dev->work_head; *pp; pp = &(*pp)->work_next) {
		if (*pp == peer) {
			*pp = peer->work_next;
			break;
		}
	}
	pthread_mutex_unlock(&dev->work_lock);
}

/* Called with the write lock held. */
static void device_remove_peer(struct wg_device *dev, struct wg_peer *peer)
{
	struct wg_peer **pp = &dev->peer_hash[peer_hash_of(dev, peer->public_key)];
	struct wg_peer *prev = NULL;

	while (*pp != peer)
		pp = &(*pp)->hash_next;
	*pp = peer->hash_next;
	for (struct wg_peer *p = dev->peers; p != peer; p = p->list_next)
		prev = p;
	if (prev)
		prev->list_next = peer->list_next;
	else
		dev->peers = peer->list_next;
	if (dev->peers_tail == peer)
		dev->peers_tail = prev;
	dev->n_peers--;
	work_queue_forget(dev, peer);
	allowedips_remove_by_peer(&dev->allowedips, peer);
	keypairs_clear(&peer->keypairs, &dev->index);
	if (peer->has_handshake_index)
		index_table_remove(&dev->index, peer->handshake.local_index);
	peer_free(peer);
}

void device_queue_work(struct wg_device *dev, struct wg_peer *peer)
{
	if (atomic_exchange(&peer->in_work_queue, true))
		return;
	pthread_mutex_lock(&dev->work_lock);
	peer->work_next = dev->work_head;
	dev->work_head = peer;
	pthread_mutex_unlock(&dev->work_lock);
	ev_wakeup_signal(dev->wakeup);
}

#define DRAIN_BATCH	32
#define RELAY_DRAIN_MAX 256 /* packets between two releases of relay_q's ring */
/* At most this many per wake-up (about 1.5 MB, less than a relay client's
 * send queue), so that a tx thread that keeps filling relay_q cannot keep
 * the loop from flushing those queues. */
#define RELAY_DRAIN_PER_WAKE 1024
/* Sealed packets waiting for the event loop to frame them for a relay:
 * 4096 are 20 ms at 2.5 Gbit/s, for a loop thread that the scheduler keeps
 * waiting on a busy machine (a drop here is a loss the inner TCP pays for). */
#define RELAY_Q_PACKETS 4096

/*
 * Packets the data path queued for the event loop: to relays (read in place
 * in the queue's ring, one lock per run of packets; relay_send queues each
 * as a frame, and the relay client writes them all with one send), and
 * aside.
 */
static void drain_queues(struct wg_device *dev)
{
	struct pktq_item items[DRAIN_BATCH]; /* 53 KiB, on the loop thread's stack */
	struct pktq_item *run;
	unsigned n, drained = 0;

	while (dev->relay_send && (n = pktq_peek(&dev->relay_q, &run, RELAY_DRAIN_MAX))) {
		for (unsigned i = 0; i < n; i++)
			dev->relay_send(dev->overlay_arg, endpoint_relay_id(&run[i].addr),
					run[i].key, run[i].data, run[i].len);
		pktq_release(&dev->relay_q, n);
		/* The relay clients send what was queued when the loop runs its
		 * timers: let it, then come back for the rest. */
		drained += n;
		if (drained >= RELAY_DRAIN_PER_WAKE) {
			ev_wakeup_signal(dev->wakeup);
			break;
		}
	}
	while (dev->aside_recv && (n = pktq_pop_batch(&dev->aside_q, items, DRAIN_BATCH)))
		for (unsigned i = 0; i < n; i++)
			dev->aside_recv(dev->overlay_arg, items[i].data, items[i].len,
					&items[i].addr);
}

static void on_wakeup(struct evloop *loop, void *arg)
{
	struct wg_device *dev = arg;
	struct wg_peer *list;

	drain_queues(dev);
	receive_handshakes(dev);
	pthread_mutex_lock(&dev->work_lock);
	list = dev->work_head;
	dev->work_head = NULL;
	for (struct wg_peer *p = list; p; p = p->work_next)
		atomic_store(&p->in_work_queue, false);
	pthread_mutex_unlock(&dev->work_lock);
	/* peer_do_work never removes peers, so the list stays valid. */
	while (list) {
		struct wg_peer *next = list->work_next;
		peer_do_work(list);
		list = next;
	}
}

int device_new(struct wg_device **out, struct evloop *loop, const char *ifname,
	       unsigned timer_divisor)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));
	pthread_rwlockattr_t attr;
	int ret = 0;

	if (!dev)
		return -ENOMEM;
	snprintf(dev->ifname, sizeof(dev->ifname), "%s", ifname ? ifname : "");
	dev->loop = loop;
	dev->mtu = WG_DEFAULT_MTU;
	dev->retired_fd = -1;
	side_init(dev);
	dev->stop_efd = -1;
	atomic_init(&dev->udp_fd, -1);
	atomic_init(&dev->udp_family, AF_INET6);
	atomic_init(&dev->rx_fd_in_use, -1);
	device_timers_init(&dev->timers, timer_divisor ? timer_divisor : 1);
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&dev->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&dev->work_lock, NULL);
	random_bytes(&dev->peer_hash_seed, sizeof(dev->peer_hash_seed));
	dev->peer_hash_size = PEER_HASH_MIN;
	dev->peer_hash = calloc(dev->peer_hash_size, sizeof(*dev->peer_hash));
	allowedips_init(&dev->allowedips);
	cookie_checker_init(&dev->cookie_checker, dev->identity.static_public);
	ev_timer_init(&dev->tick, timers_tick, dev);
	*out = dev;
	if (!dev->peer_hash || (ret = index_table_init(&dev->index)) < 0 ||
	    (ret = ratelimiter_new(&dev->ratelimiter)) < 0 ||
	    (ret = handshake_queue_new(&dev->hsq)) < 0 ||
	    (ret = aead_ctx_new(&dev->loop_aead)) < 0 ||
	    (ret = pktq_init(&dev->relay_q, RELAY_Q_PACKETS)) < 0 ||
	    (ret = pktq_init(&dev->aside_q, 256)) < 0 || (ret = relay_rx_new(dev)) < 0 ||
	    (ret = evloop_add_wakeup(loop, on_wakeup, dev, &dev->wakeup)) < 0)
		goto fail;
	dev->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->stop_efd < 0) {
		ret = -errno;
		goto fail;
	}
	if (!ifname) {
		dev->tun_fd = -1; /* detached: tests and fuzzing */
		return 0;
	}
	ret = tun_open(ifname, &dev->ifindex, &dev->tun_offloads);
	if (ret < 0) {
		log_error("cannot create TUN interface interface=%s error=\"%s\"", ifname,
			  strerror(-ret));
		goto fail;
	}
	dev->tun_fd = ret;
	char offloads[64];
	tun_offloads_format(dev->tun_offloads, offloads, sizeof(offloads));
	log_info("TUN offloads interface=%s offloads=%s", ifname, offloads);
	ret = netlink_link_set(dev->ifindex, dev->mtu, false);
	if (ret < 0)
		log_warn("cannot set MTU interface=%s mtu=%d error=\"%s\"", ifname, dev->mtu,
			 strerror(-ret));
	return 0;
fail:
	if (ret == 0)
		ret = -ENOMEM;
	dev->tun_fd = -1;
	device_free(dev);
	*out = NULL;
	return ret;
}

int dp_thread_init(struct dp_thread *t, struct wg_device *dev, size_t buf_size)
{
	t->dev = dev;
	if (aead_ctx_new(&t->ctx) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < DP_BATCH; i++) {
		if (!(t->bufs[i] = malloc(buf_size))) {
			dp_thread_destroy(t);
			return -ENOMEM;
		}
	}
	return 0;
}

void dp_thread_destroy(struct dp_thread *t)
{
	for (unsigned i = 0; i < DP_BATCH; i++) {
		free(t->bufs[i]);
		t->bufs[i] = NULL;
	}
	aead_ctx_free(t->ctx);
	t->ctx = NULL;
}

int device_rebind(struct wg_device *dev, uint16_t port)
{
	uint16_t bound;
	int fd = udp_open(port, dev->fwmark, &bound);
	int old;

	if (fd < 0) {
		log_error("cannot bind UDP port=%u error=\"%s\"", port, strerror(-fd));
		return fd;
	}
	int family = AF_INET6;
	socklen_t flen = sizeof(family);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &flen);
	atomic_store(&dev->udp_family, family);
	old = atomic_exchange(&dev->udp_fd, fd);
	dev->listen_port = bound;
	if (old >= 0) {
		/* The rx thread may be blocked on it: wake it, close it once
		 * it has moved to the new socket (see timers_tick). */
		shutdown(old, SHUT_RDWR);
		if (dev->retired_fd >= 0)
			close(dev->retired_fd);
		dev->retired_fd = old;
	}
	log_info("listening port=%u", bound);
	return 0;
}

int device_start(struct wg_device *dev)
{
	int ret;

	if (atomic_load(&dev->udp_fd) < 0 && (ret = device_rebind(dev, 0)) < 0)
		return ret;
	ret = netlink_link_set(dev->ifindex, dev->mtu, true);
	if (ret < 0) {
		log_error("cannot bring interface up interface=%s error=\"%s\"", dev->ifname,
			  strerror(-ret));
		return ret;
	}
	dev->rx = rx_state_new(dev);
	dev->tx = tx_state_new(dev);
	if (!dev->rx || !dev->tx) {
		log_error("out of memory for the data-path threads");
		return -ENOMEM;
	}
	if ((ret = pthread_create(&dev->rx_thread, NULL, rx_thread_main, dev->rx)) != 0)
		return -ret;
	if ((ret = pthread_create(&dev->tx_thread, NULL, tx_thread_main, dev->tx)) != 0) {
		atomic_store(&dev->stopping, true);
		shutdown(atomic_load(&dev->udp_fd), SHUT_RDWR);
		pthread_join(dev->rx_thread, NULL);
		return -ret;
	}
	dev->threads_running = true;
	evloop_timer_arm(dev->loop, &dev->tick, clock_mono_ns() + dev->timers.tick_ns);
	/* Persistent keepalives start at once, which also starts handshakes. */
	for (struct wg_peer *p = dev->peers; p; p = p->list_next)
		if (p->persistent_keepalive)
			send_keepalive(p);
	return 0;
}

void device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	atomic_store(&dev->stopping, true);
	if (dev->threads_running) {
		uint64_t one = 1;
		int fd = atomic_load(&dev->udp_fd);

		if (write(dev->stop_efd, &one, sizeof(one)) < 0)
			log_warn("cannot wake the tx thread: %s", strerror(errno));
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		pthread_join(dev->tx_thread, NULL);
		pthread_join(dev->rx_thread, NULL);
	}
	rx_state_free(dev->rx);
	tx_state_free(dev->tx);
	if (dev->loop)
		evloop_timer_cancel(dev->loop, &dev->tick);
	while (dev->peers)
		device_remove_peer(dev, dev->peers);
	free(dev->peer_hash);
	allowedips_free(&dev->allowedips);
	index_table_free(&dev->index);
	ratelimiter_free(dev->ratelimiter);
	handshake_queue_free(dev->hsq);
	aead_ctx_free(dev->loop_aead);
	pktq_destroy(&dev->relay_q);
	pktq_destroy(&dev->aside_q);
	relay_rx_free(dev);
	if (atomic_load(&dev->udp_fd) >= 0)
		close(atomic_load(&dev->udp_fd));
	if (dev->retired_fd >= 0)
		close(dev->retired_fd);
	side_free(dev);
	if (dev->tun_fd >= 0)
		close(dev->tun_fd); /* a non-persistent TUN disappears with it */
	if (dev->stop_efd >= 0)
		close(dev->stop_efd);
	pthread_rwlock_destroy(&dev->lock);
	pthread_mutex_destroy(&dev->work_lock);
	memzero_explicit(dev, sizeof(*dev));
	free(dev);
}

/* --- configuration ------------------------------------------------------ */

static void set_private_key(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	struct wg_peer *same;

	if (key_is_zero(key)) {
		memzero_explicit(&dev->identity, sizeof(dev->identity));
	} else {
		memcpy(dev->identity.static_private, key, NOISE_PUBLIC_KEY_LEN);
		x25519_clamp(dev->identity.static_private);
		dev->identity.has_identity = x25519_public(dev->identity.static_public,
							   dev->identity.static_private) == 0;
	}
	cookie_checker_init(&dev->cookie_checker, dev->identity.static_public);
	/* A peer with our own public key makes no sense (as in Linux). */
	same = dev->identity.has_identity ? device_find_peer(dev, dev->identity.static_public)
					  : NULL;
	if (same)
		device_remove_peer(dev, same);
	for (struct wg_peer *p = dev->peers; p; p = p->list_next) {
		noise_handshake_precompute(&p->handshake, &dev->identity);
		keypairs_clear(&p->keypairs, &dev->index);
		if (p->has_handshake_index) {
			index_table_remove(&dev->index, p->handshake.local_index);
			p->has_handshake_index = false;
		}
		noise_handshake_clear(&p->handshake);
	}
}

/* Called with the write lock held; returns whether to send a keepalive. */
static int apply_peer(struct wg_device *dev, const struct wg_peer_config *pc, bool *keepalive,
		      char *err, size_t err_len)
{
	struct wg_peer *peer = device_find_peer(dev, pc->public_key);

	*keepalive = false;
	if (pc->remove) {
		if (peer)
			device_remove_peer(dev, peer);
		return 0;
	}
	if (!peer && pc->update_only)
		return 0;
	if (dev->identity.has_identity &&
	    !memcmp(pc->public_key, dev->identity.static_public, NOISE_PUBLIC_KEY_LEN))
		return 0; /* our own key: silently ignored, as Linux does */
	if (!peer) {
		peer = device_add_peer(dev, pc->public_key);
		if (!peer) {
			snprintf(err, err_len, "out of memory adding a peer");
			return -ENOMEM;
		}
	}
	if (pc->has_preshared_key)
		noise_handshake_set_psk(&peer->handshake, pc->preshared_key);
	if (pc->has_endpoint)
		peer_set_endpoint(peer, &pc->endpoint);
	if (pc->persistent_keepalive >= 0) {
		bool was_off = !peer->persistent_keepalive;
		peer->persistent_keepalive = (uint16_t)pc->persistent_keepalive;
		*keepalive = was_off && peer->persistent_keepalive && dev->threads_running;
	}
	if (pc->replace_allowed_ips)
		allowedips_remove_by_peer(&dev->allowedips, peer);
	for (size_t i = 0; i < pc->n_allowed_ips; i++) {
		int ret = allowedips_insert(&dev->allowedips, &pc->allowed_ips[i], peer);
		if (ret < 0) {
			snprintf(err, err_len, "cannot add allowed IP: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

bool device_set_peer_endpoint(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN],
			      const union sockaddr_inet *ep)
{
	struct wg_peer *peer = device_find_peer(dev, key);
	union sockaddr_inet old;

	if (!peer)
		return false;
	if (peer_get_endpoint(peer, &old) && endpoint_equal(&old, ep))
		return true;
	peer_set_endpoint(peer, ep);
	timers_path_changed(peer);
	return true;
}

void device_peer_reset_session(struct wg_device *dev, const uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	struct wg_peer *peer = device_find_peer(dev, key);

	if (!peer)
		return;
	pthread_rwlock_wrlock(&dev->lock);
	keypairs_clear(&peer->keypairs, &dev->index);
	if (peer->has_handshake_index) {
		index_table_remove(&dev->index, peer->handshake.local_index);
		peer->has_handshake_index = false;
	}
	noise_handshake_clear(&peer->handshake);
	pthread_rwlock_unlock(&dev->lock);
	peer->handshake_sent_ns = 0;
}

int device_apply(struct wg_device *dev, const struct wg_config *cfg, char *err, size_t err_len)
{
	struct wg_peer **keepalive = NULL;
	size_t n_keepalive = 0;
	int ret = 0;

	if (cfg->listen_port >= 0 &&
	    (cfg->listen_port != dev->listen_port || atomic_load(&dev->udp_fd) < 0)) {
		ret = device_rebind(dev, (uint16_t)cfg->listen_port);
		if (ret < 0) {
			snprintf(err, err_len, "cannot listen on port %d: %s", cfg->listen_port,
				 strerror(-ret));
			return ret;
		}
	}
	if (cfg->has_fwmark) {
		dev->fwmark = cfg->fwmark;
		if (atomic_load(&dev->udp_fd) >= 0)
			udp_set_fwmark(atomic_load(&dev->udp_fd), cfg->fwmark);
	}
	if (cfg->n_peers)
		keepalive = calloc(cfg->n_peers, sizeof(*keepalive));
	pthread_rwlock_wrlock(&dev->lock);
	if (cfg->has_private_key)
		set_private_key(dev, cfg->private_key);
	if (cfg->replace_peers)
		while (dev->peers)
			device_remove_peer(dev, dev->peers);
	for (size_t i = 0; i < cfg->n_peers && ret == 0; i++) {
		bool ka = false;
		ret = apply_peer(dev, &cfg->peers[i], &ka, err, err_len);
		if (ka && keepalive)
			keepalive[n_keepalive++] = device_find_peer(dev, cfg->peers[i].public_key);
	}
	pthread_rwlock_unlock(&dev->lock);
	for (size_t i = 0; i < n_keepalive; i++)
		if (keepalive[i])
			send_keepalive(keepalive[i]);
	free(keepalive);
	return ret;
}

/* --- the userspace API's get ---------------------------------------------- */

struct owned_prefix {
	struct wg_peer *peer;
	struct ip_prefix prefix;
	size_t order;
};

struct prefix_list {
	struct owned_prefix *items;
	size_t n;
};

static int collect_prefix(void *ctx, const struct ip_prefix *p, void *peer)
{
	struct prefix_list *l = ctx;

	l->items[l->n] = (struct owned_prefix){.peer = peer, .prefix = *p, .order = l->n};
	l->n++;
	return 0;
}

static int cmp_owned(const void *a, const void *b)
{
	const struct owned_prefix *x = a, *y = b;

	if (x->peer != y->peer)
		return (uintptr_t)x->peer < (uintptr_t)y->peer ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void format_peer(struct buf *out, struct wg_peer *p, const struct prefix_list *l)
{
	char hex[KEY_HEX_LEN + 1], ep[ENDPOINT_STRLEN];
	union sockaddr_inet endpoint;
	uint64_t wall = atomic_load(&p->last_handshake_wall_ns);
	struct owned_prefix key = {.peer = p};
	size_t lo = 0, hi = l->n;

	key_to_hex(hex, p->public_key);
	buf_printf(out, "public_key=%s\n", hex);
	key_to_hex(hex, p->handshake.preshared_key);
	buf_printf(out, "preshared_key=%s\n", hex);
	memzero_explicit(hex, sizeof(hex));
	buf_printf(out, "protocol_version=1\n");
	/* A relay path is knit's own; wg(8) knows only IP endpoints. */
	if (peer_get_endpoint(p, &endpoint) && !endpoint_is_relay(&endpoint) &&
	    endpoint_format(&endpoint, ep, sizeof(ep)) == 0)
		buf_printf(out, "endpoint=%s\n", ep);
	buf_printf(out, "last_handshake_time_sec=%llu\nlast_handshake_time_nsec=%llu\n",
		   (unsigned long long)(wall / NSEC_PER_SEC),
		   (unsigned long long)(wall % NSEC_PER_SEC));
	buf_printf(out, "tx_bytes=%llu\nrx_bytes=%llu\n",
		   (unsigned long long)atomic_load(&p->tx_bytes),
		   (unsigned long long)atomic_load(&p->rx_bytes));
	buf_printf(out, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	/* Binary search for this peer's run in the sorted list. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)l->items[mid].peer < (uintptr_t)key.peer)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < l->n && l->items[lo].peer == p; lo++) {
		char pfx[PREFIX_STRLEN];
		prefix_format(&l->items[lo].prefix, pfx, sizeof(pfx));
		buf_printf(out, "allowed_ip=%s\n", pfx);
	}
}

int device_uapi_get(struct wg_device *dev, struct buf *out)
{
	struct prefix_list l = {0};
	char hex[KEY_HEX_LEN + 1];

	/* The event loop is the only writer: reading needs no lock. */
	if (dev->allowedips.count) {
		l.items = calloc(dev->allowedips.count, sizeof(*l.items));
		if (!l.items)
			return -ENOMEM;
		allowedips_walk(&dev->allowedips, collect_prefix, &l);
		qsort(l.items, l.n, sizeof(*l.items), cmp_owned);
	}
	if (dev->identity.has_identity) {
		key_to_hex(hex, dev->identity.static_private);
		buf_printf(out, "private_key=%s\n", hex);
		memzero_explicit(hex, sizeof(hex));
	}
	buf_printf(out, "listen_port=%u\n", dev->listen_port);
	if (dev->fwmark)
		buf_printf(out, "fwmark=%u\n", dev->fwmark);
	for (struct wg_peer *p = dev->peers; p; p = p->list_next)
		format_peer(out, p, &l);
	free(l.items);
	return out->err; /* an answer cut short is an error, not a smaller answer */
}

void device_log_stats(struct wg_device *dev)
{
	struct wg_device_stats *st = &dev->stats;

	log_info("stats rx_invalid=%llu rx_replayed=%llu rx_not_allowed=%llu "
		 "rx_handshake_dropped=%llu tx_no_peer=%llu tx_no_endpoint=%llu tx_errors=%llu",
		 (unsigned long long)atomic_load(&st->rx_invalid),
		 (unsigned long long)atomic_load(&st->rx_replayed),
		 (unsigned long long)atomic_load(&st->rx_not_allowed),
		 (unsigned long long)atomic_load(&st->rx_handshake_dropped),
		 (unsigned long long)atomic_load(&st->tx_no_peer),
		 (unsigned long long)atomic_load(&st->tx_no_endpoint),
		 (unsigned long long)atomic_load(&st->tx_errors));
}
