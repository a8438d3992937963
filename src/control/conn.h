/* SPDX-License-Identifier: MIT */
/*
 * One control connection on the event loop, either side: TCP, the HTTP/1.1
 * Upgrade to "knit-control", the Noise channel (control/channel.h), then
 * sealed JSON objects each way.  Input is untrusted: a head over 4 KiB, a
 * record over 1 MiB, a record that does not open, JSON that is not an object
 * with a string "type", a stalled handshake or a silent peer closes the
 * connection with a logged reason; output is bounded the same way.
 */
#ifndef KNIT_CONTROL_CONN_H
#define KNIT_CONTROL_CONN_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/evloop.h"

#define CONN_HANDSHAKE_TIMEOUT_MS 10000
#define CONN_IDLE_TIMEOUT_MS	  45000 /* clients ping every 15 s */
#define CONN_MAX_OUTPUT		  (64u << 20)

struct ctl_conn;

struct ctl_conn_ops {
	/* The channel is open; ctl_conn_remote_key() is proven. */
	void (*open)(struct ctl_conn *c, void *arg);
	/* One message, borrowed for the call. */
	void (*message)(struct ctl_conn *c, json_t *msg, void *arg);
	/* The connection is gone (why says so); c is freed after this returns
	 * and must not be used again.  Not called after ctl_conn_free(). */
	void (*closed)(struct ctl_conn *c, const char *why, void *arg);
};

/* Client: connects to host:port (numeric or a name, resolved once, blocking),
 * pinning the control key.  Progress and failure come through ops. */
int ctl_conn_connect(struct ctl_conn **out, struct evloop *loop, const char *host, uint16_t port,
		     const uint8_t priv[32], const uint8_t control_pub[32],
		     const struct ctl_conn_ops *ops, void *arg);
/* Server: takes an accepted, connected socket. */
int ctl_conn_accept(struct ctl_conn **out, struct evloop *loop, int fd, const uint8_t priv[32],
		    const struct ctl_conn_ops *ops, void *arg);

/* Seals msg and queues it.  Returns 0, -ENOTCONN before the channel is open,
 * or -ENOBUFS when the peer does not read (the connection is then closed). */
int ctl_conn_send(struct ctl_conn *c, json_t *msg);
/* Queues already-serialized JSON (one text for many recipients). */
int ctl_conn_send_text(struct ctl_conn *c, const char *text, size_t len);
/* Sends what is queued, then closes with why (a refusal's last words). */
void ctl_conn_finish(struct ctl_conn *c, const char *why);
/* Closes with a reason (ops->closed is called, later, from the loop). */
void ctl_conn_close(struct ctl_conn *c, const char *why);
/* Closes without calling ops->closed and frees at once. */
void ctl_conn_free(struct ctl_conn *c);

const uint8_t *ctl_conn_remote_key(const struct ctl_conn *c);
/* "ip:port" of the other end, for logs. */
const char *ctl_conn_peer_name(const struct ctl_conn *c);
#endif
