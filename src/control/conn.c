// SPDX-License-Identifier: MIT
#include "control/conn.h"

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

#include "control/channel.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "net/httpup.h"

#define HEAD_MAX      4096
#define PATH	      "/knit/control"
#define UPGRADE	      "knit-control"
#define INPUT_MAX     (CHANNEL_MAX_RECORD + CHANNEL_RECORD_HEADER + HEAD_MAX)
#define READ_CHUNK    65536

enum phase { PHASE_CONNECTING, PHASE_HTTP, PHASE_HANDSHAKE, PHASE_OPEN, PHASE_DEAD };

struct ctl_conn {
	struct evloop *loop;
	int fd;
	bool server;
	bool close_after_flush;
	bool writable_armed;
	enum phase phase;
	struct channel ch;
	uint8_t priv[32];
	struct buf in, out;
	const struct ctl_conn_ops *ops;
	void *arg;
	char peer[INET6_ADDRSTRLEN + 8];
	char why[160];
	struct ev_timer deadline; /* handshake, then idle */
	struct ev_timer reaper;	  /* calls ops->closed and frees, from the loop */
};

static void conn_events(struct evloop *loop, int fd, uint32_t events, void *arg);

static void set_deadline(struct ctl_conn *c, unsigned ms)
{
	evloop_timer_arm(c->loop, &c->deadline, clock_mono_ns() + (uint64_t)ms * 1000000);
}

static void reap(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct ctl_conn *c = arg;

	if (c->ops->closed)
		c->ops->closed(c, c->why, c->arg);
	ctl_conn_free(c);
}

void ctl_conn_close(struct ctl_conn *c, const char *why)
{
	if (c->phase == PHASE_DEAD)
		return;
	c->phase = PHASE_DEAD;
	if (why != c->why)
		snprintf(c->why, sizeof(c->why), "%s", why);
	if (c->fd >= 0) {
		evloop_del_fd(c->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	evloop_timer_cancel(c->loop, &c->deadline);
	evloop_timer_arm(c->loop, &c->reaper, 0);
}

void ctl_conn_free(struct ctl_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		evloop_del_fd(c->loop, c->fd);
		close(c->fd);
	}
	evloop_timer_cancel(c->loop, &c->deadline);
	evloop_timer_cancel(c->loop, &c->reaper);
	channel_destroy(&c->ch);
	memzero_explicit(c->priv, sizeof(c->priv));
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void deadline_passed(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct ctl_conn *c = arg;

	ctl_conn_close(c, c->phase == PHASE_OPEN ? "silent for too long" : "handshake timed out");
}

static void arm_writable(struct ctl_conn *c, bool on)
{
	if (c->writable_armed == on || c->fd < 0)
		return;
	c->writable_armed = on;
	evloop_mod_fd(c->loop, c->fd, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void flush(struct ctl_conn *c)
{
	size_t done = 0;

	while (done < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + done, c->out.len - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			buf_consume(&c->out, done);
			ctl_conn_close(c, strerror(errno));
			return;
		}
		done += (size_t)n;
	}
	buf_consume(&c->out, done);
	if (c->out.len == 0 && c->close_after_flush) {
		ctl_conn_close(c, c->why[0] ? c->why : "closed");
		return;
	}
	arm_writable(c, c->out.len > 0);
}

static struct ctl_conn *conn_new(struct evloop *loop, int fd, bool server, const uint8_t priv[32],
				 const struct ctl_conn_ops *ops, void *arg)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->fd = fd;
	c->server = server;
	c->ops = ops;
	c->arg = arg;
	memcpy(c->priv, priv, 32);
	buf_init(&c->in, INPUT_MAX);
	buf_init(&c->out, CONN_MAX_OUTPUT);
	ev_timer_init(&c->deadline, deadline_passed, c);
	ev_timer_init(&c->reaper, reap, c);
	snprintf(c->peer, sizeof(c->peer), "?");
	return c;
}

static void refuse(struct ctl_conn *c, int status, const char *why)
{
	char resp[512];
	int n = httpup_format_response(resp, sizeof(resp), status, why);

	log_warn("control connection refused peer=%s error=\"%s\"", c->peer, why);
	snprintf(c->why, sizeof(c->why), "%s", why);
	if (n > 0)
		buf_append(&c->out, resp, (size_t)n);
	c->close_after_flush = true;
	c->phase = PHASE_HANDSHAKE; /* read nothing more */
	flush(c);
}

/* Returns bytes consumed, 0 for "need more", -1 when the connection closed. */
static long http_step(struct ctl_conn *c, const uint8_t *p, size_t len)
{
	char path[128], upgrade[64], resp[256];
	int status, n;

	if (c->server) {
		n = httpup_parse_request(p, len, path, sizeof(path), upgrade, sizeof(upgrade));
		if (n == 0)
			return 0;
		if (n < 0) {
			refuse(c, 400, "malformed HTTP upgrade request");
			return -1;
		}
		if (strcmp(path, PATH) != 0) {
			refuse(c, 404, "no such path (want " PATH ")");
			return -1;
		}
		if (strcasecmp(upgrade, UPGRADE) != 0) {
			refuse(c, 426, "upgrade to " UPGRADE " required");
			return -1;
		}
		int m = httpup_format_response(resp, sizeof(resp), 101, UPGRADE);
		if (m > 0)
			buf_append(&c->out, resp, (size_t)m);
		if (channel_init_responder(&c->ch, c->priv) < 0) {
			ctl_conn_close(c, "out of memory");
			return -1;
		}
	} else {
		int m = httpup_parse_response(p, len, &status, upgrade, sizeof(upgrade));
		if (m == 0)
			return 0;
		if (m < 0) {
			ctl_conn_close(c, "malformed HTTP response from control");
			return -1;
		}
		if (status != 101 || strcasecmp(upgrade, UPGRADE) != 0) {
			snprintf(c->why, sizeof(c->why), "control answered HTTP %d", status);
			ctl_conn_close(c, c->why);
			return -1;
		}
		n = m;
	}
	c->phase = PHASE_HANDSHAKE;
	return n;
}

static int deliver(struct ctl_conn *c, uint8_t *plain, size_t len)
{
	json_error_t jerr;
	json_t *msg = json_loadb((const char *)plain, len, JSON_REJECT_DUPLICATES, &jerr);
	char why[160];

	if (!msg || !json_is_object(msg) || !json_is_string(json_object_get(msg, "type"))) {
		snprintf(why, sizeof(why), "bad message: %.100s",
			 msg ? "not an object with a string \"type\"" : jerr.text);
		log_warn("control message refused peer=%s error=\"%s\"", c->peer, why);
		json_decref(msg);
		ctl_conn_close(c, why);
		return -1;
	}
	c->ops->message(c, msg, c->arg);
	json_decref(msg);
	return c->phase == PHASE_DEAD ? -1 : 0;
}

static long record_step(struct ctl_conn *c, uint8_t *p, size_t len)
{
	const uint8_t *body;
	size_t body_len, plain_len;
	long n = channel_next_record(p, len, CHANNEL_MAX_RECORD, &body, &body_len);

	if (n == 0)
		return 0;
	if (n < 0) {
		ctl_conn_close(c, "record too long");
		return -1;
	}
	if (c->phase == PHASE_HANDSHAKE) {
		if (channel_handshake(&c->ch, body, body_len, &c->out) < 0) {
			log_warn("control handshake failed peer=%s", c->peer);
			ctl_conn_close(c, c->server ? "handshake did not authenticate"
						    : "control did not prove the pinned key");
			return -1;
		}
		c->phase = PHASE_OPEN;
		set_deadline(c, CONN_IDLE_TIMEOUT_MS);
		if (c->ops->open)
			c->ops->open(c, c->arg);
		return c->phase == PHASE_DEAD ? -1 : n;
	}
	if (channel_open(&c->ch, (uint8_t *)body, body_len, &plain_len) < 0) {
		log_warn("control record did not open peer=%s", c->peer);
		ctl_conn_close(c, "record did not authenticate");
		return -1;
	}
	set_deadline(c, CONN_IDLE_TIMEOUT_MS);
	return deliver(c, (uint8_t *)body, plain_len) < 0 ? -1 : n;
}

static void process_input(struct ctl_conn *c)
{
	size_t off = 0;

	while (off < c->in.len && c->phase != PHASE_DEAD && !c->close_after_flush) {
		long n = c->phase == PHASE_HTTP ? http_step(c, c->in.data + off, c->in.len - off)
						: record_step(c, c->in.data + off, c->in.len - off);
		if (n <= 0) {
			if (n == 0 && c->phase == PHASE_HTTP && c->in.len - off >= HEAD_MAX)
				ctl_conn_close(c, "HTTP head too long");
			break;
		}
		off += (size_t)n;
	}
	if (c->phase != PHASE_DEAD)
		buf_consume(&c->in, off);
}

static void read_input(struct ctl_conn *c)
{
	for (;;) {
		uint8_t chunk[READ_CHUNK];
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ctl_conn_close(c, n == 0 ? "connection closed by peer" : strerror(errno));
			return;
		}
		if (buf_append(&c->in, chunk, (size_t)n) < 0) {
			ctl_conn_close(c, "input over limit");
			return;
		}
		process_input(c);
		if (c->phase == PHASE_DEAD || c->close_after_flush)
			return;
	}
}

static void connected(struct ctl_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		snprintf(c->why, sizeof(c->why), "cannot connect to control: %s", strerror(err));
		ctl_conn_close(c, c->why);
		return;
	}
	c->phase = PHASE_HTTP;
}

static void conn_events(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct ctl_conn *c = arg;

	if (c->phase == PHASE_CONNECTING) {
		connected(c);
		if (c->phase == PHASE_DEAD)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_input(c);
	if (c->phase != PHASE_DEAD && c->fd >= 0)
		flush(c);
}

static int register_fd(struct ctl_conn *c, uint32_t events)
{
	int one = 1;

	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->writable_armed = events & EPOLLOUT;
	set_deadline(c, CONN_HANDSHAKE_TIMEOUT_MS);
	return evloop_add_fd(c->loop, c->fd, events, conn_events, c);
}

static int resolve(const char *host, uint16_t port, union sockaddr_inet *out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	char service[8];
	int ret;

	snprintf(service, sizeof(service), "%u", port);
	ret = getaddrinfo(host, service, &hints, &res);
	if (ret)
		return -EHOSTUNREACH;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen <= sizeof(*out) ? res->ai_addrlen : sizeof(*out));
	freeaddrinfo(res);
	return 0;
}

int ctl_conn_connect(struct ctl_conn **out, struct evloop *loop, const char *host, uint16_t port,
		     const uint8_t priv[32], const uint8_t control_pub[32],
		     const struct ctl_conn_ops *ops, void *arg)
{
	char req[512], host_port[300];
	union sockaddr_inet sa;
	struct ctl_conn *c;
	int fd, n, ret;

	ret = resolve(host, port, &sa);
	if (ret)
		return ret;
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	c = conn_new(loop, fd, false, priv, ops, arg);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	endpoint_format(&sa, c->peer, sizeof(c->peer));
	snprintf(host_port, sizeof(host_port), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	n = httpup_format_request(req, sizeof(req), host_port, PATH, UPGRADE);
	/* The request and the initiation go together: one round trip saved. */
	ret = n > 0 ? buf_append(&c->out, req, (size_t)n) : -EINVAL;
	if (!ret)
		ret = channel_init_initiator(&c->ch, priv, control_pub, &c->out);
	if (!ret && connect(fd, &sa.sa, endpoint_len(&sa)) < 0 && errno != EINPROGRESS)
		ret = -errno;
	if (!ret)
		ret = register_fd(c, EPOLLIN | EPOLLOUT);
	if (ret) {
		ctl_conn_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int ctl_conn_accept(struct ctl_conn **out, struct evloop *loop, int fd, const uint8_t priv[32],
		    const struct ctl_conn_ops *ops, void *arg)
{
	struct ctl_conn *c = conn_new(loop, fd, true, priv, ops, arg);
	union sockaddr_inet sa;
	socklen_t len = sizeof(sa);
	int ret;

	if (!c)
		return -ENOMEM;
	if (getpeername(fd, &sa.sa, &len) == 0)
		endpoint_format(&sa, c->peer, sizeof(c->peer));
	c->phase = PHASE_HTTP;
	ret = register_fd(c, EPOLLIN);
	if (ret) {
		c->fd = -1; /* the caller still owns fd */
		ctl_conn_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int ctl_conn_send(struct ctl_conn *c, json_t *msg)
{
	char *text;
	int ret;

	if (c->phase != PHASE_OPEN)
		return -ENOTCONN;
	text = json_dumps(msg, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	ret = ctl_conn_send_text(c, text, strlen(text));
	free(text);
	return ret;
}

void ctl_conn_finish(struct ctl_conn *c, const char *why)
{
	if (c->phase == PHASE_DEAD)
		return;
	if (why != c->why)
		snprintf(c->why, sizeof(c->why), "%s", why);
	c->close_after_flush = true;
	flush(c);
}

int ctl_conn_send_text(struct ctl_conn *c, const char *text, size_t len)
{
	int ret;

	if (c->phase != PHASE_OPEN || c->close_after_flush)
		return -ENOTCONN;
	ret = channel_seal(&c->ch, text, len, &c->out);
	if (ret == -ENOBUFS) {
		ctl_conn_close(c, "peer does not read (output over limit)");
		return ret;
	}
	if (ret == 0)
		flush(c);
	return ret;
}

const uint8_t *ctl_conn_remote_key(const struct ctl_conn *c)
{
	return c->ch.remote_static;
}

const char *ctl_conn_peer_name(const struct ctl_conn *c)
{
	return c->peer;
}

