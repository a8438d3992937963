/* SPDX-License-Identifier: MIT */
/* The device's UDP socket: one dual-stack socket for IPv4 and IPv6. */
#ifndef KNIT_WG_UDP_H
#define KNIT_WG_UDP_H

#include <stdbool.h>
#include <stddef.h>
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

/*
 * UDP GSO and GRO.  udp_open turns UDP_GRO on where the kernel has it (and
 * KNIT_NO_OFFLOAD does not list "gro"): a read may then return several
 * equal-sized datagrams from one source at once, their size in a UDP_GRO
 * control message.  udp_gso_supported says whether sends on fd may carry a
 * UDP_SEGMENT control message ("gso" in KNIT_NO_OFFLOAD says no).
 */
bool udp_gso_supported(int fd);
/* A socket the device did not open (a side socket) set up as its own is:
 * 8 MiB buffers, UDP GRO, the fwmark. */
void udp_adopt(int fd, uint32_t fwmark);
struct msghdr;
struct mmsghdr;
struct iovec;
union sockaddr_inet;
/* Readies m for one datagram of up to len bytes into buf: its source into
 * name, its control messages (UDP_GRO's segment size) into ctrl. */
void udp_mmsg_init(struct mmsghdr *m, struct iovec *iov, void *buf, size_t len,
		   union sockaddr_inet *name, void *ctrl, size_t ctrl_len);
/* The segment size of a GRO'd datagram (its UDP_GRO control message), or 0. */
size_t udp_gro_size(const struct msghdr *m);
/* The most datagrams one UDP_SEGMENT send may carry (the kernel's
 * UDP_MAX_SEGMENTS; 64 in older kernels, so 64). */
#define UDP_GSO_MAX_SEGS  64
#define UDP_GSO_MAX_BYTES 65000

#endif
