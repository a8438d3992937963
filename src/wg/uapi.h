/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's cross-platform userspace API (wireguard.com/xplatform) on
 * /var/run/wireguard/NAME.sock, so that wg(8) can show and set knitd.
 */
#ifndef KNIT_WG_UAPI_H
#define KNIT_WG_UAPI_H

#include "wg/device.h"

#define UAPI_SOCKET_DIR "/var/run/wireguard"

struct uapi_server;

enum uapi_op { UAPI_INCOMPLETE, UAPI_GET, UAPI_SET, UAPI_INVALID };

/*
 * Frames the next request in data[0..len): "get=1\n\n", or "set=1\n" then
 * key=value lines then a blank line.  Returns UAPI_INCOMPLETE until a blank
 * line arrives; otherwise *req_len is the request's length and, for a set,
 * *body and *body_len its lines (each ending in a newline).
 */
enum uapi_op uapi_next_request(const char *data, size_t len, size_t *req_len, const char **body,
			       size_t *body_len);

/* Listens on UAPI_SOCKET_DIR/IFNAME.sock (mode 0600) on the device's loop. */
int uapi_server_new(struct uapi_server **out, struct wg_device *dev);
/* Closes every connection and removes the socket file. */
void uapi_server_free(struct uapi_server *srv);

#endif
