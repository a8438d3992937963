/* SPDX-License-Identifier: MIT */
/* The TUN interface the device reads plaintext packets from and writes to. */
#ifndef KNIT_WG_TUN_H
#define KNIT_WG_TUN_H

/* Creates (or attaches to) TUN interface name, non-blocking, no packet info
 * header.  Returns the fd or -errno; *ifindex receives its index. */
int tun_open(const char *name, int *ifindex);

#endif
