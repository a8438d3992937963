/* SPDX-License-Identifier: MIT */
/* The device's UDP socket: one dual-stack socket for IPv4 and IPv6. */
#ifndef KNIT_WG_UDP_H
#define KNIT_WG_UDP_H

#include <stdint.h>

#define UDP_SOCKET_BUFFER (8 << 20)

/*
 * Binds [::]:port (0 = any) with IPV6_V6ONLY off, falling back to an IPv4
 * socket where IPv6 is unavailable.  8 MiB buffers (forced when allowed), a
 * 1 s receive timeout so the receiving thread notices shutdown.  Returns the
 * fd, or -errno; *bound_port is the port actually bound.
 */
int udp_open(uint16_t port, uint32_t fwmark, uint16_t *bound_port);
int udp_set_fwmark(int fd, uint32_t fwmark);

#endif
