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

/* Listens on UAPI_SOCKET_DIR/IFNAME.sock (mode 0600) on the device's loop. */
int uapi_server_new(struct uapi_server **out, struct wg_device *dev);
/* Closes every connection and removes the socket file. */
void uapi_server_free(struct uapi_server *srv);

#endif
