/* SPDX-License-Identifier: MIT */
/*
 * knitd's local API: a UNIX stream socket (mode 0600: root's only) on which
 * `knit` sends one JSON request per connection, a line, and reads one or more
 * JSON lines back; the last answer closes the connection.  A request is at
 * most 64 KiB; anything else is answered with an error and closed.
 */
#ifndef KNIT_KNITD_API_H
#define KNIT_KNITD_API_H
#include <jansson.h>
#include <stdbool.h>

#include "lib/evloop.h"

#define API_DEFAULT_SOCKET "/run/knit/knitd.sock"
#define API_MAX_REQUEST	   (64u << 10)

struct api_server;
struct api_conn;

struct api_ops {
	/* One request, borrowed; answer now or keep c for later. */
	void (*request)(struct api_conn *c, json_t *req, void *arg);
	/* The client went away before the final answer. */
	void (*gone)(struct api_conn *c, void *arg);
};

int api_server_new(struct api_server **out, struct evloop *loop, const char *path,
		   const struct api_ops *ops, void *arg);
void api_server_free(struct api_server *s);
/* Sends one line; final closes the connection (c is then gone). */
void api_reply(struct api_conn *c, json_t *msg, bool final);
void api_reply_error(struct api_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
