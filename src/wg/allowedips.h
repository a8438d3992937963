/* SPDX-License-Identifier: MIT */
/*
 * Cryptokey routing: a longest-prefix-match trie per address family mapping
 * allowed IPs to peers.  Outbound, the destination selects the peer; inbound,
 * a packet's source must map to the peer that sealed it.
 *
 * Not internally synchronised: the device guards it (writers on the event
 * loop, readers on data-path threads under the device's read lock).
 */
#ifndef KNIT_WG_ALLOWEDIPS_H
#define KNIT_WG_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

struct allowedips_node;

struct allowedips {
	struct allowedips_node *root4;
	struct allowedips_node *root6;
	size_t count; /* prefixes stored */
};

void allowedips_init(struct allowedips *t);
void allowedips_free(struct allowedips *t);
/* Host bits of p are ignored.  An existing identical prefix changes owner.
 * Returns 0, -EINVAL (bad family/bits) or -ENOMEM. */
int allowedips_insert(struct allowedips *t, const struct ip_prefix *p, void *peer);
/* Removes p only if it belongs to peer; returns 0 or -ENOENT. */
int allowedips_remove(struct allowedips *t, const struct ip_prefix *p, void *peer);
void allowedips_remove_by_peer(struct allowedips *t, void *peer);
/* addr: 4 bytes (AF_INET) or 16 bytes (AF_INET6), network order; NULL if none. */
void *allowedips_lookup(const struct allowedips *t, int family, const void *addr);
/* Calls cb for every stored prefix (masked) in a stable order; stops when cb
 * returns non-zero and returns that value. */
int allowedips_walk(const struct allowedips *t,
		    int (*cb)(void *ctx, const struct ip_prefix *p, void *peer), void *ctx);

#endif
