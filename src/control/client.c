// SPDX-License-Identifier: MIT
#include "control/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/conn.h"
#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "net/httpup.h"

struct control_client {
	struct evloop *loop;
	char host[256];
	uint16_t port;
	uint8_t control_pub[32];
	uint8_t priv[32];
	const struct control_client_ops *ops;
	void *arg;
	struct ctl_conn *conn;
	bool open;
	unsigned backoff_ms;
	struct ev_timer retry;
	struct ev_timer ping;
	/* Freed from within a callback, while the connection is still on the
	 * stack: the free finishes from the loop, on this timer. */
	bool in_callback;
	bool stopping;
	struct ev_timer deferred_free;
};

static const struct ctl_conn_ops conn_ops;

static void schedule_retry(struct control_client *c)
{
	unsigned ms = c->backoff_ms;
	unsigned jitter = ms / 2 ? random_u32() % (ms / 2) : 0;

	ms = ms - ms / 4 + jitter; /* ±25 % */
	evloop_timer_arm(c->loop, &c->retry, clock_mono_ns() + (uint64_t)ms * 1000000);
	c->backoff_ms = c->backoff_ms * 2 > CONTROL_BACKOFF_MAX_MS ? CONTROL_BACKOFF_MAX_MS
								  : c->backoff_ms * 2;
}

static void try_connect(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct control_client *c = arg;
	int ret = ctl_conn_connect(&c->conn, c->loop, c->host, c->port, c->priv, c->control_pub,
				   &conn_ops, c);

	if (ret < 0) {
		c->conn = NULL;
		log_warn("cannot reach control host=%s port=%u error=%s", c->host, c->port,
			 strerror(-ret));
		schedule_retry(c);
	}
}

static void send_ping(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct control_client *c = arg;
	json_t *ping = json_pack("{s:s}", "type", "ping");

	if (ping && c->conn && c->open)
		ctl_conn_send(c->conn, ping);
	json_decref(ping);
	evloop_timer_arm(loop, t, clock_mono_ns() + (uint64_t)CONTROL_PING_MS * 1000000);
}

static void finish_callback(struct control_client *c)
{
	c->in_callback = false;
}

static void free_now(struct evloop *loop, struct ev_timer *t, void *arg)
{
	control_client_free(arg);
}

static void on_open(struct ctl_conn *conn, void *arg)
{
	struct control_client *c = arg;

	c->open = true;
	c->backoff_ms = CONTROL_BACKOFF_MIN_MS;
	evloop_timer_arm(c->loop, &c->ping,
			 clock_mono_ns() + (uint64_t)CONTROL_PING_MS * 1000000);
	c->in_callback = true;
	c->ops->connected(c->arg);
	finish_callback(c);
}

static void on_message(struct ctl_conn *conn, json_t *msg, void *arg)
{
	struct control_client *c = arg;

	if (strcmp(json_string_value(json_object_get(msg, "type")), "pong") == 0)
		return;
	c->in_callback = true;
	c->ops->message(c->arg, msg);
	finish_callback(c);
}

static void on_closed(struct ctl_conn *conn, const char *why, void *arg)
{
	struct control_client *c = arg;

	c->conn = NULL;
	c->open = false;
	evloop_timer_cancel(c->loop, &c->ping);
	if (c->stopping)
		return;
	schedule_retry(c);
	c->in_callback = true;
	c->ops->disconnected(c->arg, why);
	finish_callback(c);
}

static const struct ctl_conn_ops conn_ops = {
	.open = on_open,
	.message = on_message,
	.closed = on_closed,
};

int control_client_new(struct control_client **out, struct evloop *loop, const char *url,
		       const uint8_t control_pub[32], const uint8_t priv[32],
		       const struct control_client_ops *ops, void *arg)
{
	struct control_client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (httpup_parse_url(url, c->host, sizeof(c->host), &c->port) < 0) {
		free(c);
		return -EINVAL;
	}
	c->loop = loop;
	memcpy(c->control_pub, control_pub, 32);
	memcpy(c->priv, priv, 32);
	c->ops = ops;
	c->arg = arg;
	c->backoff_ms = CONTROL_BACKOFF_MIN_MS;
	ev_timer_init(&c->retry, try_connect, c);
	ev_timer_init(&c->ping, send_ping, c);
	ev_timer_init(&c->deferred_free, free_now, c);
	evloop_timer_arm(loop, &c->retry, 0);
	*out = c;
	return 0;
}

void control_client_free(struct control_client *c)
{
	if (!c)
		return;
	if (c->in_callback) {
		c->stopping = true;
		if (c->conn)
			ctl_conn_close(c->conn, "client stopped");
		evloop_timer_arm(c->loop, &c->deferred_free, 0);
		return;
	}
	evloop_timer_cancel(c->loop, &c->deferred_free);
	evloop_timer_cancel(c->loop, &c->retry);
	evloop_timer_cancel(c->loop, &c->ping);
	ctl_conn_free(c->conn);
	memzero_explicit(c->priv, sizeof(c->priv));
	free(c);
}

int control_client_send(struct control_client *c, json_t *msg)
{
	if (!c->conn || !c->open)
		return -ENOTCONN;
	return ctl_conn_send(c->conn, msg);
}

