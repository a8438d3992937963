/* SPDX-License-Identifier: MIT */
/*
 * A control session that stays up: connects, reconnects after any failure
 * with exponential backoff (250 ms doubling to 10 s, ±25 % jitter, reset
 * once a session opens), and pings every 15 s so that both ends notice a
 * dead path.  Used by knitd (as a node) and by knit-relay (as a relay).
 */
#ifndef KNIT_CONTROL_CLIENT_H
#define KNIT_CONTROL_CLIENT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/evloop.h"

#define CONTROL_PING_MS	       15000
#define CONTROL_BACKOFF_MIN_MS 250
#define CONTROL_BACKOFF_MAX_MS 10000

struct control_client;

struct control_client_ops {
	/* A session is open: say who you are (login, relay-hello). */
	void (*connected)(void *arg);
	/* A message other than pong, borrowed for the call. */
	void (*message)(void *arg, json_t *msg);
	/* The session ended; a new attempt is scheduled unless stopped. */
	void (*disconnected)(void *arg, const char *why);
};

/* url: "http://HOST:PORT".  Returns 0 or -EINVAL (bad URL) / -ENOMEM. */
int control_client_new(struct control_client **out, struct evloop *loop, const char *url,
		       const uint8_t control_pub[32], const uint8_t priv[32],
		       const struct control_client_ops *ops, void *arg);
/* Stops, closes and wipes the key.  Safe from within a callback. */
void control_client_free(struct control_client *c);
/* Returns 0 or -ENOTCONN / -ENOBUFS. */
int control_client_send(struct control_client *c, json_t *msg);
#endif
