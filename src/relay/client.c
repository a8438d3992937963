// SPDX-License-Identifier: MIT
/*
 * The relay client (see client.h).  States:
 *
 *   WAITING (backoff timer) -> CONNECTING (EPOLLOUT) -> UPGRADING (HTTP
 *   response) -> AUTH (server-key, then server-info) -> CONNECTED
 *
 * and back to WAITING from any of them on failure.  One timer serves every
 * state: the backoff, the handshake deadline, then keepalive and idle.
 *
 * Callbacks run user code that may free the client: `busy` counts the
 * entries into this file from the loop, and a free requested inside one is
 * carried out when the outermost returns.
 */
#include "relay/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "net/httpup.h"
#include "relay/frame.h"

enum state { WAITING, CONNECTING, UPGRADING, AUTH, CONNECTED };

struct relay_client {
	struct evloop *loop;
	const struct relay_client_ops *ops;
	void *arg;
	char host[256];
	char host_port[300]; /* for Host: and for logs */
	uint16_t port;
	uint8_t relay_pub[32];
	uint8_t node_priv[32];

	enum state state;
	int fd;
	bool want_out;
	struct relay_rxbuf rx;
	struct relay_txq tx;
	/* Packets sent while the connection was being made: the first ones
	 * to a peer (a handshake, a call-me-maybe) go through the relay at
	 * once, so they wait here for the admission, then go first. */
	struct relay_txq early;
	struct ev_timer timer, flush;
	uint64_t backoff_ms;
	uint64_t connected_ns, last_rx_ns, last_tx_ns;
	uint64_t ping_sent_ns, rtt_ns;
	uint8_t ping_data[RELAY_PING_LEN];
	struct relay_client_stats stats;

	int busy;
	bool dying;
};

static void enter(struct relay_client *c)
{
	c->busy++;
}

static void destroy(struct relay_client *c);

/* Leaves a loop entry point; true if the client was freed. */
static bool leave(struct relay_client *c)
{
	if (--c->busy == 0 && c->dying) {
		destroy(c);
		return true;
	}
	return false;
}

static void arm_ms(struct relay_client *c, uint64_t ms)
{
	evloop_timer_arm(c->loop, &c->timer, clock_mono_ns() + ms * NSEC_PER_MSEC);
}

static void set_out(struct relay_client *c, bool on)
{
	if (c->fd < 0 || c->want_out == on)
		return;
	c->want_out = on;
	evloop_mod_fd(c->loop, c->fd, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void close_socket(struct relay_client *c)
{
	if (c->fd >= 0) {
		evloop_del_fd(c->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	c->want_out = false;
	relay_rxbuf_free(&c->rx);
	relay_txq_free(&c->tx);
	relay_txq_free(&c->early);
	relay_txq_init(&c->early, RELAY_CLIENT_EARLY_BYTES);
	evloop_timer_cancel(c->loop, &c->flush);
}

/* Ends this connection or attempt and schedules the next one. */
static void fail(struct relay_client *c, const char *why)
{
	bool was_connected = c->state == CONNECTED;
	uint64_t delay;

	close_socket(c);
	if (was_connected) {
		c->stats.disconnects++;
		/* A connection that held resets the backoff; one that flaps
		 * (replaced at once, say) keeps growing it. */
		if (clock_mono_ns() - c->connected_ns >= RELAY_CLIENT_STABLE_MS * NSEC_PER_MSEC)
			c->backoff_ms = 0;
		log_info("relay connection lost relay=%s reason=\"%s\"", c->host_port, why);
	} else {
		log_debug("relay connection attempt failed relay=%s reason=\"%s\"", c->host_port,
			  why);
	}
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : RELAY_CLIENT_BACKOFF_MIN_MS;
	if (c->backoff_ms > RELAY_CLIENT_BACKOFF_MAX_MS)
		c->backoff_ms = RELAY_CLIENT_BACKOFF_MAX_MS;
	/* Jitter: somewhere in [d/2, d], so that clients cut off together do
	 * not come back together. */
	delay = c->backoff_ms / 2 + random_u32() % (c->backoff_ms / 2 + 1);
	c->state = WAITING;
	arm_ms(c, delay);
	if (c->ops->state)
		c->ops->state(c->arg, false, why);
}

static void schedule_flush(struct relay_client *c)
{
	if (!ev_timer_armed(&c->flush) && !c->want_out)
		evloop_timer_arm(c->loop, &c->flush, 0);
}

static int queue_frame(struct relay_client *c, uint8_t type, const void *a, size_t alen,
		       const void *b, size_t blen)
{
	int ret = relay_txq_frame(&c->tx, type, a, alen, b, blen);

	/* last_tx_ns is stamped by the flush: no clock read per packet. */
	if (ret == 0)
		schedule_flush(c);
	return ret;
}

static void flush_now(struct relay_client *c)
{
	int ret;

	if (c->fd < 0 || c->state == CONNECTING)
		return;
	if (!relay_txq_empty(&c->tx))
		c->last_tx_ns = clock_mono_ns();
	ret = relay_txq_flush(&c->tx, c->fd);
	if (ret == -EAGAIN) {
		set_out(c, true);
	} else if (ret < 0) {
		char why[128];
		snprintf(why, sizeof(why), "write failed: %s", strerror(-ret));
		fail(c, why);
	} else {
		set_out(c, false);
	}
}

/* --- the handshake ------------------------------------------------------- */

static void handle_upgrade(struct relay_client *c)
{
	char upgrade[64], why[160];
	size_t len;
	const uint8_t *data = relay_rxbuf_data(&c->rx, &len);
	int status = 0, n = httpup_parse_response(data, len, &status, upgrade, sizeof(upgrade));

	if (n == 0)
		return;
	if (n < 0)
		return fail(c, "relay sent a malformed HTTP response");
	if (status != 101) {
		snprintf(why, sizeof(why), "relay refused the upgrade: HTTP status %d", status);
		return fail(c, why);
	}
	if (strcasecmp(upgrade, RELAY_HTTP_UPGRADE) != 0)
		return fail(c, "relay upgraded to another protocol");
	relay_rxbuf_consume(&c->rx, (size_t)n);
	c->state = AUTH;
}

static int handle_server_key(struct relay_client *c, const uint8_t *p, uint32_t len)
{
	uint8_t pub[32], challenge[RELAY_CHALLENGE_LEN], info[RELAY_CLIENT_INFO_LEN];

	if (relay_server_key_parse(p, len, pub, challenge) < 0) {
		fail(c, "relay sent a malformed server-key");
		return -EBADMSG;
	}
	if (!crypto_memeq(pub, c->relay_pub, 32)) {
		fail(c, "relay key mismatch: not the relay the relay map names");
		return -EACCES;
	}
	if (relay_client_info_seal(info, c->node_priv, c->relay_pub, challenge) < 0 ||
	    queue_frame(c, RELAY_FRAME_CLIENT_INFO, info, sizeof(info), NULL, 0) < 0) {
		fail(c, "cannot build client-info");
		return -EINVAL;
	}
	return 0;
}

/* The packets that waited for the admission, first in the queue. */
static void send_early(struct relay_client *c)
{
	struct relay_txq *e = &c->early;
	size_t first = e->cap - e->head < e->len ? e->cap - e->head : e->len;

	if (e->len && (relay_txq_bytes(&c->tx, e->data + e->head, first) < 0 ||
		       (e->len > first && relay_txq_bytes(&c->tx, e->data, e->len - first) < 0)))
		c->stats.tx_dropped++; /* the queue is far larger than early's: never */
	relay_txq_free(e);
	relay_txq_init(e, RELAY_CLIENT_EARLY_BYTES);
	schedule_flush(c);
}

static void connected(struct relay_client *c)
{
	send_early(c);
	c->state = CONNECTED;
	c->connected_ns = clock_mono_ns();
	c->stats.connects++;
	arm_ms(c, RELAY_CLIENT_KEEPALIVE_MS);
	log_info("relay connected relay=%s", c->host_port);
	if (c->ops->state)
		c->ops->state(c->arg, true, "admitted");
}

/* --- frames -------------------------------------------------------------- */

/* One frame; < 0 when the connection was failed (or the client freed). */
static int handle_frame(struct relay_client *c, uint8_t type, const uint8_t *p, uint32_t len)
{
	char reason[RELAY_CLOSE_MAX + 1], why[RELAY_CLOSE_MAX + 64];

	if (relay_payload_check(type, p, len) < 0) {
		snprintf(why, sizeof(why), "relay sent a malformed %s frame",
			 relay_frame_name(type));
		fail(c, why);
		return -EBADMSG;
	}
	switch (type) {
	case RELAY_FRAME_CLOSE:
		relay_close_reason(p, len, reason);
		snprintf(why, sizeof(why), "relay closed the connection: %s", reason);
		fail(c, why);
		return -ECONNRESET;
	case RELAY_FRAME_SERVER_KEY:
		if (c->state != AUTH)
			break;
		return handle_server_key(c, p, len);
	case RELAY_FRAME_SERVER_INFO:
		if (c->state != AUTH)
			break;
		connected(c);
		return c->dying || c->state != CONNECTED ? -ECANCELED : 0;
	case RELAY_FRAME_RECV_PACKET:
		if (c->state != CONNECTED)
			break;
		c->stats.rx_packets++;
		if (c->ops->recv)
			c->ops->recv(c->arg, p, p + 32, len - 32);
		return c->dying || c->state != CONNECTED ? -ECANCELED : 0;
	case RELAY_FRAME_PEER_GONE:
		if (c->state != CONNECTED)
			break;
		if (c->ops->peer_gone)
			c->ops->peer_gone(c->arg, p, p[32]);
		return c->dying || c->state != CONNECTED ? -ECANCELED : 0;
	case RELAY_FRAME_PING:
		queue_frame(c, RELAY_FRAME_PONG, p, len, NULL, 0);
		return 0;
	case RELAY_FRAME_PONG:
		if (c->ping_sent_ns && memcmp(p, c->ping_data, RELAY_PING_LEN) == 0) {
			c->rtt_ns = clock_mono_ns() - c->ping_sent_ns;
			c->ping_sent_ns = 0;
		}
		return 0;
	case RELAY_FRAME_KEEPALIVE:
		return 0;
	default:
		break;
	}
	snprintf(why, sizeof(why), "relay sent an unexpected %s frame", relay_frame_name(type));
	fail(c, why);
	return -EPROTO;
}

static int process_input(struct relay_client *c)
{
	uint8_t type;
	const uint8_t *p;
	uint32_t len;
	int ret;

	if (c->state == UPGRADING) {
		handle_upgrade(c);
		if (c->state != AUTH)
			return c->state == UPGRADING ? 0 : -EPROTO;
	}
	for (;;) {
		ret = relay_rxbuf_next(&c->rx, &type, &p, &len);
		if (ret == 0)
			return 0;
		if (ret < 0) {
			fail(c, ret == -EMSGSIZE ? "relay sent a frame over the size limit"
						 : "relay sent a frame of unknown type");
			return ret;
		}
		ret = handle_frame(c, type, p, len);
		if (ret < 0)
			return ret;
	}
}

/* --- I/O ----------------------------------------------------------------- */

static void finish_connect(struct relay_client *c)
{
	char req[HTTPUP_BUF_LEN], why[128];
	int err = 0, n;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		snprintf(why, sizeof(why), "connect failed: %s", strerror(err));
		return fail(c, why);
	}
	n = httpup_format_request(req, sizeof(req), c->host_port, RELAY_HTTP_PATH,
				  RELAY_HTTP_UPGRADE);
	if (n < 0 || relay_txq_bytes(&c->tx, req, (size_t)n) < 0)
		return fail(c, "cannot build the upgrade request");
	c->state = UPGRADING;
	set_out(c, false);
	flush_now(c);
}

static void read_input(struct relay_client *c)
{
	char why[128];

	for (int i = 0; i < 8 && c->fd >= 0 && !c->dying; i++) {
		size_t space;
		uint8_t *buf = relay_rxbuf_space(&c->rx, &space);
		ssize_t n;

		if (!buf)
			return fail(c, "out of memory for the receive buffer");
		n = recv(c->fd, buf, space, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			snprintf(why, sizeof(why), "read failed: %s", strerror(errno));
			return fail(c, why);
		}
		if (n == 0)
			return fail(c, "relay closed the connection");
		c->last_rx_ns = clock_mono_ns();
		relay_rxbuf_commit(&c->rx, (size_t)n);
		if (process_input(c) < 0)
			return;
	}
}

static void on_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct relay_client *c = arg;

	enter(c);
	if (c->state == CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			finish_connect(c);
	} else {
		if (events & EPOLLOUT)
			flush_now(c);
		if (c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			read_input(c);
	}
	leave(c);
}

static int resolve(struct relay_client *c, union sockaddr_inet *addr)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *res;
	char port[8];
	int ret;

	snprintf(port, sizeof(port), "%u", c->port);
	ret = getaddrinfo(c->host, port, &hints, &res);
	if (ret == EAI_NONAME) {
		hints.ai_flags = 0;
		ret = getaddrinfo(c->host, port, &hints, &res);
	}
	if (ret != 0)
		return -ENOENT;
	memset(addr, 0, sizeof(*addr));
	memcpy(addr, res->ai_addr,
	       res->ai_addrlen < sizeof(*addr) ? res->ai_addrlen : sizeof(*addr));
	freeaddrinfo(res);
	return 0;
}

static void start_connect(struct relay_client *c)
{
	union sockaddr_inet addr;
	char why[128];
	int one = 1;

	if (resolve(c, &addr) < 0)
		return fail(c, "cannot resolve the relay's host");
	c->fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		return fail(c, why);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	relay_rxbuf_init(&c->rx);
	relay_txq_init(&c->tx, RELAY_CLIENT_QUEUE_BYTES);
	c->state = CONNECTING;
	c->ping_sent_ns = 0;
	if (connect(c->fd, &addr.sa, endpoint_len(&addr)) < 0 && errno != EINPROGRESS) {
		snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
		return fail(c, why);
	}
	if (evloop_add_fd(c->loop, c->fd, EPOLLIN | EPOLLOUT, on_io, c) < 0) {
		close(c->fd);
		c->fd = -1;
		return fail(c, "cannot watch the socket");
	}
	c->want_out = true;
	c->last_rx_ns = c->last_tx_ns = clock_mono_ns();
	arm_ms(c, RELAY_CLIENT_HANDSHAKE_MS);
}

static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct relay_client *c = arg;
	uint64_t now = clock_mono_ns(), idle_at, keepalive_at;

	enter(c);
	switch (c->state) {
	case WAITING:
		start_connect(c);
		break;
	case CONNECTING:
	case UPGRADING:
	case AUTH:
		fail(c, "relay handshake timed out");
		break;
	case CONNECTED:
		idle_at = c->last_rx_ns + RELAY_CLIENT_IDLE_MS * NSEC_PER_MSEC;
		if (now >= idle_at) {
			fail(c, "relay silent for too long");
			break;
		}
		keepalive_at = c->last_tx_ns + RELAY_CLIENT_KEEPALIVE_MS * NSEC_PER_MSEC;
		if (now >= keepalive_at) {
			queue_frame(c, RELAY_FRAME_KEEPALIVE, NULL, 0, NULL, 0);
			keepalive_at = now + RELAY_CLIENT_KEEPALIVE_MS * NSEC_PER_MSEC;
		}
		evloop_timer_arm(loop, t, idle_at < keepalive_at ? idle_at : keepalive_at);
		break;
	}
	leave(c);
}

static void on_flush(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct relay_client *c = arg;

	enter(c);
	flush_now(c);
	leave(c);
}

/* --- the API ------------------------------------------------------------- */

int relay_client_new(struct relay_client **out, struct evloop *loop, const char *host,
		     uint16_t port, const uint8_t relay_pub[32], const uint8_t node_priv[32],
		     const struct relay_client_ops *ops, void *arg)
{
	struct relay_client *c;

	if (!host || !*host || strlen(host) >= sizeof(c->host) || !port || !ops)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ops = ops;
	c->arg = arg;
	c->port = port;
	c->fd = -1;
	snprintf(c->host, sizeof(c->host), "%s", host);
	snprintf(c->host_port, sizeof(c->host_port), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
		 port);
	memcpy(c->relay_pub, relay_pub, 32);
	memcpy(c->node_priv, node_priv, 32);
	relay_rxbuf_init(&c->rx);
	relay_txq_init(&c->tx, RELAY_CLIENT_QUEUE_BYTES);
	relay_txq_init(&c->early, RELAY_CLIENT_EARLY_BYTES);
	ev_timer_init(&c->timer, on_timer, c);
	ev_timer_init(&c->flush, on_flush, c);
	c->state = WAITING;
	evloop_timer_arm(loop, &c->timer, 0);
	*out = c;
	return 0;
}

static void destroy(struct relay_client *c)
{
	close_socket(c);
	evloop_timer_cancel(c->loop, &c->timer);
	memzero_explicit(c->node_priv, sizeof(c->node_priv));
	free(c);
}

void relay_client_free(struct relay_client *c)
{
	if (!c)
		return;
	if (c->busy) {
		/* Inside one of our callbacks: stop everything now, free on the
		 * way out. */
		close_socket(c);
		evloop_timer_cancel(c->loop, &c->timer);
		c->state = WAITING;
		c->dying = true;
		return;
	}
	destroy(c);
}

int relay_client_send(struct relay_client *c, const uint8_t dst[32], const void *pkt, size_t len)
{
	int ret;

	if (c->dying || (c->state == WAITING && c->backoff_ms))
		return -ENOTCONN; /* not before a retry: the packet would be stale */
	if (!len || len > RELAY_MAX_PACKET)
		return -EMSGSIZE;
	if (c->state != CONNECTED)
		ret = relay_txq_frame(&c->early, RELAY_FRAME_SEND_PACKET, dst, 32, pkt, len);
	else
		ret = queue_frame(c, RELAY_FRAME_SEND_PACKET, dst, 32, pkt, len);
	if (ret < 0) {
		c->stats.tx_dropped++;
		return ret == -EMSGSIZE ? ret : -ENOBUFS;
	}
	c->stats.tx_packets++;
	return 0;
}

bool relay_client_connected(const struct relay_client *c)
{
	return c && c->state == CONNECTED && !c->dying;
}

int relay_client_rtt_ping(struct relay_client *c)
{
	if (c->state != CONNECTED || c->dying)
		return -ENOTCONN;
	random_bytes(c->ping_data, sizeof(c->ping_data));
	if (queue_frame(c, RELAY_FRAME_PING, c->ping_data, sizeof(c->ping_data), NULL, 0) < 0)
		return -ENOBUFS;
	c->ping_sent_ns = clock_mono_ns();
	return 0;
}

uint64_t relay_client_rtt_ns(const struct relay_client *c)
{
	return c->rtt_ns;
}

void relay_client_get_stats(const struct relay_client *c, struct relay_client_stats *out)
{
	*out = c->stats;
}
