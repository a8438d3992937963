/* SPDX-License-Identifier: MIT */
/* The TUN interface the device reads plaintext packets from and writes to. */
#ifndef KNIT_WG_TUN_H
#define KNIT_WG_TUN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * What the TUN was opened with (tun_open's *offloads): TUN_OFFLOAD_VNET_HDR
 * means every read and write carries a virtio-net header (offload.h); the
 * other bits are the TUN_F_* flags the kernel accepted from TUNSETOFFLOAD,
 * i.e. the super-packets and partial checksums reads may return.
 */
#define TUN_OFFLOAD_CSUM     0x01 /* TUN_F_CSUM */
#define TUN_OFFLOAD_TSO4     0x02 /* TUN_F_TSO4 */
#define TUN_OFFLOAD_TSO6     0x04 /* TUN_F_TSO6 */
#define TUN_OFFLOAD_USO4     0x20 /* TUN_F_USO4 (Linux 6.2) */
#define TUN_OFFLOAD_USO6     0x40 /* TUN_F_USO6 */
#define TUN_OFFLOAD_VNET_HDR 0x10000

/*
 * Creates (or attaches to) TUN interface name, non-blocking, no packet info
 * header, with a virtio-net header and the most offloads the kernel accepts
 * (checksum, TSO4/6, USO4/6; then without USO; then checksum only; then
 * none).  KNIT_NO_OFFLOAD (in the environment) containing "tun" opens it
 * plain, as before offloads.  Returns the fd or -errno; *ifindex receives its
 * index, *offloads what was enabled.
 */
int tun_open(const char *name, int *ifindex, unsigned *offloads);
/* Writes "vnet_hdr,csum,tso4,..." (or "none") for logs. */
void tun_offloads_format(unsigned offloads, char *buf, size_t len);
/* Whether the comma-separated KNIT_NO_OFFLOAD lists what (or "all"). */
bool offload_disabled(const char *what);

#endif
