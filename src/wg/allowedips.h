/* SPDX-License-Identifier: MIT */
/*
 * Cryptokey routing: longest-prefix match from allowed IPs to peers.
 * Outbound, the destination selects the peer; inbound, a packet's source must
 * map to the peer that sealed it.
 *
 * One open-addressing hash table per prefix length in use; a lookup probes
 * the lengths from longest to shortest.  Real configurations use few lengths
 * (/32, /24, /128, /64 …), so a lookup is a few hash probes instead of a walk
 * of up to 128 trie levels.
 *
 * Not internally synchronised: the device guards it (writers on the event
 * loop, readers on data-path threads under the device's read lock).
 */
#ifndef KNIT_WG_ALLOWEDIPS_H
#define KNIT_WG_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

struct allowedips_entry {
	uint8_t key[16]; /* masked address, network order */
	void *peer;	 /* NULL: empty slot */
};

struct allowedips_level {
	uint32_t count;
	uint32_t capacity; /* power of two */
	struct allowedips_entry *slots;
};

struct allowedips_family {
	struct allowedips_level *levels[129]; /* by prefix length */
	uint8_t order[129];		      /* lengths in use, longest first */
	unsigned n_levels;
	unsigned addr_len; /* 4 or 16 */
};

struct allowedips {
	struct allowedips_family v4;
	struct allowedips_family v6;
	size_t count; /* prefixes stored */
	uint64_t seed;
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
/* Calls cb for every stored prefix (masked): IPv4 then IPv6, shortest first;
 * stops when cb returns non-zero and returns that value. */
int allowedips_walk(const struct allowedips *t,
		    int (*cb)(void *ctx, const struct ip_prefix *p, void *peer), void *ctx);

#endif
