// SPDX-License-Identifier: MIT
/*
 * knit-relay's TCP side (see relay.h).  A connection goes
 *
 *   HTTP (request head) -> AUTH (server-key sent, client-info awaited)
 *        -> OPEN (admitted, in the client table) -> CLOSING -> freed
 *
 * CLOSING sends what is queued (a close frame, an HTTP error), shuts down
 * the write side and waits a little for the peer's EOF, so that the peer
 * reads the reason before the connection goes.  Connections are freed from
 * a zero-delay timer, after the loop's current batch of events: a callback
 * that closes another connection never frees memory still in use.
 */
#include "knit-relay/relay.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "knit-relay/keymap.h"
#include "knit-relay/stun_server.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "net/httpup.h"
#include "relay/frame.h"

#define ACCEPT_BATCH 64
#define READ_BATCH   8
#define READ_BUDGET  (2 * RELAY_RXBUF_BULK) /* bytes per connection per turn */

enum conn_state { CONN_HTTP, CONN_AUTH, CONN_OPEN, CONN_CLOSING, CONN_DEAD };

struct conn {
	struct relay *r;
	int fd;
	enum conn_state state;
	bool has_key;	  /* key is the proven node key */
	bool want_out;	  /* EPOLLOUT armed */
	bool dirty;	  /* on r->dirty: has queued frames to flush */
	bool shut_wr;	  /* CLOSING: write side shut down */
	bool warned_full; /* logged that its queue overflowed */
	uint8_t key[32];
	uint8_t challenge[RELAY_CHALLENGE_LEN];
	char peer[ENDPOINT_STRLEN];
	struct relay_rxbuf rx;
	struct relay_txq tx;
	struct ev_timer timer;
	uint64_t last_rx_ns, last_tx_ns;
	uint64_t drops;
	struct conn *next, *prev; /* r->conns, or r->dead once closed */
	struct conn *dirty_next;
};

struct relay {
	struct evloop *loop;
	struct relay_config cfg;
	uint8_t pub[32];
	int listen_fd;
	uint16_t tcp_port;
	struct stun_server *stun;
	struct keymap *clients; /* node key -> struct conn in CONN_OPEN */
	struct admission *admission;
	struct conn *conns, *dead, *dirty;
	struct ev_timer deferred; /* flushes dirty, frees dead */
	struct relay_stats stats;
};

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);

static const char *conn_key(const struct conn *c, char buf[KEY_BASE64_LEN + 1])
{
	if (!c->has_key)
		return "-";
	key_to_base64(buf, c->key);
	return buf;
}

#define conn_log(level, c, fmt, ...)                                                               \
	do {                                                                                       \
		char k_[KEY_BASE64_LEN + 1];                                                       \
		log_msg(level, fmt " peer=%s key=%s", ##__VA_ARGS__, (c)->peer, conn_key(c, k_));  \
	} while (0)

static void schedule_deferred(struct relay *r)
{
	if (!ev_timer_armed(&r->deferred))
		evloop_timer_arm(r->loop, &r->deferred, 0);
}

static void mark_dirty(struct conn *c)
{
	if (c->dirty || c->state == CONN_DEAD)
		return;
	c->dirty = true;
	c->dirty_next = c->r->dirty;
	c->r->dirty = c;
	schedule_deferred(c->r);
}

/* Queues a frame for c; a full queue drops it (returns -ENOBUFS). */
static int conn_queue(struct conn *c, uint8_t type, const void *a, size_t alen, const void *b,
		      size_t blen)
{
	int ret = relay_txq_frame(&c->tx, type, a, alen, b, blen);

	if (ret == 0) {
		c->last_tx_ns = clock_mono_ns();
		mark_dirty(c);
	}
	return ret;
}

static void set_out(struct conn *c, bool on)
{
	if (c->want_out == on)
		return;
	c->want_out = on;
	evloop_mod_fd(c->r->loop, c->fd, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void arm_timer_ms(struct conn *c, unsigned ms)
{
	evloop_timer_arm(c->r->loop, &c->timer, clock_mono_ns() + (uint64_t)ms * NSEC_PER_MSEC);
}

/* Sends the queued bytes, then the reason, then goes. */
static void conn_closing(struct conn *c, const char *reason)
{
	struct relay *r = c->r;

	if (c->state == CONN_CLOSING || c->state == CONN_DEAD)
		return;
	if (c->state == CONN_OPEN && keymap_get(r->clients, c->key) == c) {
		keymap_del(r->clients, c->key);
		r->stats.clients--;
	}
	if (reason)
		conn_queue(c, RELAY_FRAME_CLOSE, reason, strlen(reason), NULL, 0);
	c->state = CONN_CLOSING;
	arm_timer_ms(c, RELAY_LINGER_MS);
	mark_dirty(c);
}

/* An HTTP error answer, then closing. */
static void conn_http_error(struct conn *c, int status, const char *text)
{
	char resp[HTTPUP_BUF_LEN];
	int n = httpup_format_response(resp, sizeof(resp), status, text);

	c->r->stats.handshake_failed++;
	conn_log(LOG_LEVEL_WARN, c, "relay upgrade refused status=%d reason=\"%s\"", status, text);
	if (n > 0)
		relay_txq_bytes(&c->tx, resp, (size_t)n);
	conn_closing(c, NULL);
}

/* --- the handshake ------------------------------------------------------- */

static void handle_upgrade(struct conn *c)
{
	struct relay *r = c->r;
	char path[64], upgrade[64], resp[HTTPUP_BUF_LEN];
	uint8_t payload[RELAY_SERVER_KEY_LEN];
	size_t len;
	const uint8_t *data = relay_rxbuf_data(&c->rx, &len);
	int n = httpup_parse_request(data, len, path, sizeof(path), upgrade, sizeof(upgrade));

	if (n == 0)
		return;
	if (n == -EMSGSIZE)
		return conn_http_error(c, 431, "request head over 4096 bytes");
	if (n < 0)
		return conn_http_error(c, 400, "not an HTTP/1.1 Upgrade request");
	relay_rxbuf_consume(&c->rx, (size_t)n);
	if (strcmp(path, RELAY_HTTP_PATH) != 0)
		return conn_http_error(c, 404, "no such service: use " RELAY_HTTP_PATH);
	if (strcasecmp(upgrade, RELAY_HTTP_UPGRADE) != 0)
		return conn_http_error(c, 426, "upgrade to " RELAY_HTTP_UPGRADE);

	n = httpup_format_response(resp, sizeof(resp), 101, RELAY_HTTP_UPGRADE);
	random_bytes(c->challenge, sizeof(c->challenge));
	relay_server_key_payload(payload, r->pub, c->challenge);
	if (n < 0 || relay_txq_bytes(&c->tx, resp, (size_t)n) < 0 ||
	    conn_queue(c, RELAY_FRAME_SERVER_KEY, payload, sizeof(payload), NULL, 0) < 0)
		return conn_closing(c, NULL);
	c->state = CONN_AUTH;
}

static void admit(struct conn *c)
{
	struct relay *r = c->r;
	struct conn *old = keymap_get(r->clients, c->key);

	if (old) {
		r->stats.replaced++;
		conn_log(LOG_LEVEL_INFO, old,
			 "relay client replaced by a newer connection new_peer=%s", c->peer);
		conn_closing(old, "replaced by a newer connection");
	}
	if (keymap_put(r->clients, c->key, c) < 0) {
		conn_log(LOG_LEVEL_ERROR, c, "relay client table full (out of memory)");
		return conn_closing(c, "relay out of memory");
	}
	r->stats.clients++;
	r->stats.admitted++;
	c->state = CONN_OPEN;
	conn_queue(c, RELAY_FRAME_SERVER_INFO, NULL, 0, NULL, 0);
	arm_timer_ms(c,
		     r->cfg.keepalive_ms < r->cfg.idle_ms ? r->cfg.keepalive_ms : r->cfg.idle_ms);
	conn_log(LOG_LEVEL_INFO, c, "relay client admitted");
}

static int handle_client_info(struct conn *c, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct relay *r = c->r;
	uint8_t claimed[32];
	int ret;

	if (type != RELAY_FRAME_CLIENT_INFO) {
		r->stats.handshake_failed++;
		conn_log(LOG_LEVEL_ERROR, c, "relay expected client-info got=%s",
			 relay_frame_name(type));
		return -EPROTO;
	}
	ret = relay_client_info_open(p, len, r->cfg.priv, c->challenge, claimed);
	if (ret < 0) {
		r->stats.handshake_failed++;
		if (len >= 32) {
			memcpy(c->key, p, 32); /* for the log line: who it claimed to be */
			c->has_key = true;
		}
		conn_log(LOG_LEVEL_ERROR, c, "relay client-info refused: %s",
			 ret == -EACCES ? "proof of the node key failed" : "malformed");
		c->has_key = false;
		return ret;
	}
	memcpy(c->key, claimed, 32);
	c->has_key = true;
	if (!admission_contains(r->admission, c->key)) {
		r->stats.not_admitted++;
		conn_log(LOG_LEVEL_WARN, c, "relay refused a node key not known to control");
		conn_closing(c, "node key not known to control");
		return 0;
	}
	admit(c);
	return 0;
}

/* --- frames of admitted clients ------------------------------------------ */

static void forward(struct conn *src, const uint8_t *p, uint32_t len)
{
	struct relay *r = src->r;
	struct conn *dst = keymap_get(r->clients, p);
	uint8_t gone[RELAY_PEER_GONE_LEN];

	if (!dst) {
		r->stats.packets_no_peer++;
		memcpy(gone, p, 32);
		gone[32] = admission_contains(r->admission, p) ? RELAY_PEER_GONE_DISCONNECTED
							       : RELAY_PEER_GONE_NOT_KNOWN;
		conn_queue(src, RELAY_FRAME_PEER_GONE, gone, sizeof(gone), NULL, 0);
		return;
	}
	/* conn_queue without its clock read: the time of this read will do. */
	if (relay_txq_frame(&dst->tx, RELAY_FRAME_RECV_PACKET, src->key, 32, p + 32, len - 32) <
	    0) {
		r->stats.packets_dropped++;
		dst->drops++;
		if (!dst->warned_full) {
			dst->warned_full = true;
			conn_log(LOG_LEVEL_WARN, dst,
				 "relay client is not reading: its queue is full, packets to it "
				 "are dropped queue_bytes=%zu",
				 dst->tx.len);
		}
		return;
	}
	dst->last_tx_ns = src->last_rx_ns;
	r->stats.packets_forwarded++;
	r->stats.bytes_forwarded += len - 32;
	/* One send per destination per round of reads, unless the sources'
	 * reads in this round would fill its queue first. */
	if (dst->tx.len >= r->cfg.queue_bytes / 2 && !dst->want_out)
		conn_flush(dst);
	else
		mark_dirty(dst);
}

static int handle_frame(struct conn *c, uint8_t type, const uint8_t *p, uint32_t len)
{
	if (relay_payload_check(type, p, len) < 0) {
		c->r->stats.protocol_errors++;
		conn_log(LOG_LEVEL_ERROR, c, "relay malformed frame type=%s len=%u",
			 relay_frame_name(type), len);
		return -EBADMSG;
	}
	if (c->state == CONN_AUTH)
		return handle_client_info(c, type, p, len);
	switch (type) {
	case RELAY_FRAME_SEND_PACKET:
		forward(c, p, len);
		return 0;
	case RELAY_FRAME_KEEPALIVE:
	case RELAY_FRAME_PONG:
		return 0;
	case RELAY_FRAME_PING:
		conn_queue(c, RELAY_FRAME_PONG, p, len, NULL, 0);
		return 0;
	default:
		c->r->stats.protocol_errors++;
		conn_log(LOG_LEVEL_ERROR, c, "relay unexpected frame from a client type=%s",
			 relay_frame_name(type));
		return -EPROTO;
	}
}

/* Everything complete in the receive buffer; < 0 closes the connection. */
static int process_input(struct conn *c)
{
	uint8_t type;
	const uint8_t *p;
	uint32_t len;
	int ret;

	if (c->state == CONN_HTTP)
		handle_upgrade(c);
	while (c->state == CONN_AUTH || c->state == CONN_OPEN) {
		ret = relay_rxbuf_next(&c->rx, &type, &p, &len);
		if (ret == 0)
			return 0;
		if (ret < 0) {
			c->r->stats.protocol_errors++;
			conn_log(LOG_LEVEL_ERROR, c, "relay bad frame header: %s",
				 ret == -EMSGSIZE ? "length over 65600" : "unknown type");
			return ret;
		}
		ret = handle_frame(c, type, p, len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* --- I/O ----------------------------------------------------------------- */

static void conn_flush(struct conn *c)
{
	int ret = relay_txq_flush(&c->tx, c->fd);

	if (ret == -EAGAIN) {
		set_out(c, true);
		return;
	}
	if (ret < 0) {
		conn_log(LOG_LEVEL_INFO, c, "relay connection write failed: %s", strerror(-ret));
		conn_close(c);
		return;
	}
	set_out(c, false);
	if (c->state == CONN_CLOSING && !c->shut_wr) {
		/* All sent: tell the peer, and wait (briefly) for its EOF so
		 * that it reads the reason before anything is reset. */
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
}

static void conn_read(struct conn *c)
{
	size_t taken = 0;

	/* A turn's share: a busy source gets two bulk reads, then the loop
	 * moves on to the others (epoll reports it again next turn). */
	for (int i = 0; i < READ_BATCH && c->state != CONN_DEAD && taken < READ_BUDGET; i++) {
		size_t space;
		uint8_t *buf = relay_rxbuf_space(&c->rx, &space);
		ssize_t n;

		if (!buf) {
			conn_log(LOG_LEVEL_ERROR, c, "relay out of memory for a receive buffer");
			return conn_close(c);
		}
		n = recv(c->fd, buf, space, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_log(LOG_LEVEL_INFO, c, "relay connection read failed: %s",
				 strerror(errno));
			return conn_close(c);
		}
		if (n == 0) {
			if (c->state == CONN_OPEN)
				conn_log(LOG_LEVEL_INFO, c, "relay client disconnected");
			else if (c->state != CONN_CLOSING)
				conn_log(LOG_LEVEL_INFO, c, "relay connection closed in handshake");
			return conn_close(c);
		}
		c->last_rx_ns = clock_mono_ns();
		taken += (size_t)n;
		if (c->state == CONN_CLOSING)
			continue; /* draining until EOF: not committed, so dropped */
		relay_rxbuf_commit(&c->rx, (size_t)n);
		if (process_input(c) < 0)
			return conn_close(c);
	}
}

static void conn_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->state != CONN_DEAD && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_read(c);
}

static void conn_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->r;
	uint64_t now = clock_mono_ns(), idle_at, keepalive_at, next;

	switch (c->state) {
	case CONN_HTTP:
	case CONN_AUTH:
		r->stats.handshake_failed++;
		conn_log(LOG_LEVEL_WARN, c, "relay handshake not finished in time timeout_ms=%u",
			 r->cfg.handshake_ms);
		return conn_close(c);
	case CONN_CLOSING:
		return conn_close(c);
	case CONN_OPEN:
		break;
	case CONN_DEAD:
		return;
	}
	idle_at = c->last_rx_ns + (uint64_t)r->cfg.idle_ms * NSEC_PER_MSEC;
	if (now >= idle_at) {
		r->stats.idle_timeouts++;
		conn_log(LOG_LEVEL_INFO, c, "relay client idle, closing idle_ms=%u",
			 r->cfg.idle_ms);
		return conn_closing(c, "idle timeout");
	}
	keepalive_at = c->last_tx_ns + (uint64_t)r->cfg.keepalive_ms * NSEC_PER_MSEC;
	if (now >= keepalive_at) {
		conn_queue(c, RELAY_FRAME_KEEPALIVE, NULL, 0, NULL, 0);
		keepalive_at = c->last_tx_ns + (uint64_t)r->cfg.keepalive_ms * NSEC_PER_MSEC;
	}
	next = idle_at < keepalive_at ? idle_at : keepalive_at;
	evloop_timer_arm(loop, t, next);
}

/* Unlinks and closes now; the memory goes in the deferred pass. */
static void conn_close(struct conn *c)
{
	struct relay *r = c->r;

	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_OPEN && keymap_get(r->clients, c->key) == c) {
		keymap_del(r->clients, c->key);
		r->stats.clients--;
	}
	c->state = CONN_DEAD;
	evloop_timer_cancel(r->loop, &c->timer);
	evloop_del_fd(r->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	r->stats.conns_open--;
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = r->dead;
	r->dead = c;
	schedule_deferred(r);
}

static void conn_free(struct conn *c)
{
	relay_rxbuf_free(&c->rx);
	relay_txq_free(&c->tx);
	memzero_explicit(c->challenge, sizeof(c->challenge));
	free(c);
}

static void deferred(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct relay *r = arg;

	while (r->dirty) {
		struct conn *c = r->dirty;
		r->dirty = c->dirty_next;
		c->dirty = false;
		if (c->state != CONN_DEAD)
			conn_flush(c);
	}
	while (r->dead) {
		struct conn *c = r->dead;
		r->dead = c->next;
		conn_free(c);
	}
}

/* --- accepting ----------------------------------------------------------- */

static void conn_new(struct relay *r, int fd, const union sockaddr_inet *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->r = r;
	c->fd = fd;
	c->state = CONN_HTTP;
	endpoint_format(peer, c->peer, sizeof(c->peer));
	relay_rxbuf_init(&c->rx);
	relay_txq_init(&c->tx, r->cfg.queue_bytes);
	ev_timer_init(&c->timer, conn_timer, c);
	c->last_rx_ns = c->last_tx_ns = clock_mono_ns();
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (evloop_add_fd(r->loop, fd, EPOLLIN, conn_io, c) < 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	r->stats.conns_open++;
	r->stats.conns_accepted++;
	arm_timer_ms(c, r->cfg.handshake_ms);
	log_debug("relay connection accepted peer=%s", c->peer);
}

static void on_accept(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct relay *r = arg;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		union sockaddr_inet peer;
		socklen_t len = sizeof(peer);
		int cfd = accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("relay accept failed: %s", strerror(errno));
			return;
		}
		if (r->stats.conns_open >= r->cfg.max_conns) {
			char p[ENDPOINT_STRLEN];
			/* Closing at once keeps a level-triggered listener quiet. */
			endpoint_format(&peer, p, sizeof(p));
			if (r->stats.conns_refused_limit++ % 1000 == 0)
				log_warn("relay connection refused: limit reached peer=%s "
					 "max_conns=%u",
					 p, r->cfg.max_conns);
			close(cfd);
			continue;
		}
		conn_new(r, cfd, &peer);
	}
}

static int listen_on(const union sockaddr_inet *addr, uint16_t *port)
{
	int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0, ret;
	union sockaddr_inet bound;
	socklen_t len = sizeof(bound);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&addr->in6.sin6_addr)) /* [::]: IPv4 too */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, &addr->sa, endpoint_len(addr)) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, &bound.sa, &len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*port = ntohs(bound.sa.sa_family == AF_INET ? bound.in.sin_port : bound.in6.sin6_port);
	return fd;
}

/* --- the relay ----------------------------------------------------------- */

/* Control took a key away: its connection goes now. */
static void on_key_removed(void *arg, const uint8_t key[32])
{
	struct relay *r = arg;
	struct conn *c = keymap_get(r->clients, key);

	if (!c)
		return;
	r->stats.removed_by_control++;
	conn_log(LOG_LEVEL_INFO, c, "relay client removed by control");
	conn_closing(c, "node key removed by control");
}

void relay_config_defaults(struct relay_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_conns = RELAY_DEFAULT_MAX_CONNS;
	cfg->queue_bytes = RELAY_DEFAULT_QUEUE_BYTES;
	cfg->handshake_ms = RELAY_DEFAULT_HANDSHAKE_MS;
	cfg->keepalive_ms = RELAY_DEFAULT_KEEPALIVE_MS;
	cfg->idle_ms = RELAY_DEFAULT_IDLE_MS;
}

int relay_new(struct relay **out, struct evloop *loop, const struct relay_config *cfg)
{
	struct relay *r = calloc(1, sizeof(*r));
	char addr[ENDPOINT_STRLEN], k[KEY_BASE64_LEN + 1];
	int ret;

	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->cfg = *cfg;
	r->listen_fd = -1;
	/* A queue must hold at least one frame of the largest size. */
	if (r->cfg.queue_bytes < RELAY_MAX_FRAME)
		r->cfg.queue_bytes = RELAY_MAX_FRAME;
	ev_timer_init(&r->deferred, deferred, r);
	ret = x25519_public(r->pub, r->cfg.priv);
	if (ret == 0)
		ret = keymap_new(&r->clients);
	if (ret == 0)
		ret = admission_new(&r->admission, on_key_removed, r);
	if (ret < 0)
		goto fail;
	endpoint_format(&cfg->listen, addr, sizeof(addr));
	ret = listen_on(&cfg->listen, &r->tcp_port);
	if (ret < 0) {
		log_error("relay cannot listen on TCP address=%s: %s", addr, strerror(-ret));
		goto fail;
	}
	r->listen_fd = ret;
	ret = evloop_add_fd(loop, r->listen_fd, EPOLLIN, on_accept, r);
	if (ret < 0)
		goto fail;
	if (cfg->stun.sa.sa_family) {
		ret = stun_server_new(&r->stun, loop, &cfg->stun, &cfg->stun_alt, &r->stats);
		if (ret < 0)
			goto fail;
	}
	key_to_base64(k, r->pub);
	log_info("relay listening address=%s port=%u stun_port=%u key=%s", addr, r->tcp_port,
		 relay_stun_port(r), k);
	*out = r;
	return 0;
fail:
	relay_free(r);
	return ret;
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	while (r->conns)
		conn_close(r->conns);
	r->dirty = NULL;
	deferred(r->loop, &r->deferred, r);
	evloop_timer_cancel(r->loop, &r->deferred);
	if (r->listen_fd >= 0) {
		evloop_del_fd(r->loop, r->listen_fd);
		close(r->listen_fd);
	}
	stun_server_free(r->stun);
	admission_free(r->admission);
	keymap_free(r->clients);
	memzero_explicit(r->cfg.priv, sizeof(r->cfg.priv));
	free(r);
}

struct admission *relay_admission(struct relay *r)
{
	return r->admission;
}

void relay_get_stats(const struct relay *r, struct relay_stats *out)
{
	*out = r->stats;
}

uint16_t relay_tcp_port(const struct relay *r)
{
	return r->tcp_port;
}

uint16_t relay_stun_port(const struct relay *r)
{
	return r->stun ? stun_server_port(r->stun) : 0;
}

uint64_t relay_client_drops(const struct relay *r, const uint8_t key[32])
{
	const struct conn *c = keymap_get(r->clients, key);

	return c ? c->drops : 0;
}

void relay_log_stats(const struct relay *r)
{
	const struct relay_stats *s = &r->stats;

	log_info("relay stats conns_open=%llu clients=%llu accepted=%llu refused_limit=%llu "
		 "admitted=%llu handshake_failed=%llu not_admitted=%llu replaced=%llu "
		 "removed_by_control=%llu protocol_errors=%llu idle_timeouts=%llu "
		 "packets_forwarded=%llu bytes_forwarded=%llu packets_dropped=%llu "
		 "packets_no_peer=%llu stun_requests=%llu stun_invalid=%llu admission_keys=%zu",
		 (unsigned long long)s->conns_open, (unsigned long long)s->clients,
		 (unsigned long long)s->conns_accepted, (unsigned long long)s->conns_refused_limit,
		 (unsigned long long)s->admitted, (unsigned long long)s->handshake_failed,
		 (unsigned long long)s->not_admitted, (unsigned long long)s->replaced,
		 (unsigned long long)s->removed_by_control, (unsigned long long)s->protocol_errors,
		 (unsigned long long)s->idle_timeouts, (unsigned long long)s->packets_forwarded,
		 (unsigned long long)s->bytes_forwarded, (unsigned long long)s->packets_dropped,
		 (unsigned long long)s->packets_no_peer, (unsigned long long)s->stun_requests,
		 (unsigned long long)s->stun_invalid, admission_count(r->admission));
}
