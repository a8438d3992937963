// SPDX-License-Identifier: MIT
/*
 * Token buckets per source for handshakes under load (see ratelimiter.h).
 * A fixed open-addressing table: when it is full, new sources are refused
 * (fail closed, as Linux), and entries idle for a second are reclaimed.
 */
#include "wg/ratelimiter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "lib/clock.h"

#define TABLE_SIZE  (RATELIMITER_MAX_ENTRIES * 2) /* load at most 1/2 */
#define PACKET_COST (NSEC_PER_SEC / RATELIMITER_PACKETS_PER_SECOND)
#define TOKEN_MAX   (PACKET_COST * RATELIMITER_PACKETS_BURSTABLE)
#define IDLE_NS	    NSEC_PER_SEC

struct bucket {
	uint8_t key[9]; /* family byte + IPv4 address or IPv6 /64 */
	bool used;
	uint64_t tokens; /* nanoseconds of credit */
	uint64_t last_ns;
};

struct ratelimiter {
	uint64_t seed;
	uint64_t last_gc_ns;
	unsigned count;
	struct bucket table[TABLE_SIZE];
};

int ratelimiter_new(struct ratelimiter **out)
{
	struct ratelimiter *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	random_bytes(&r->seed, sizeof(r->seed));
	*out = r;
	return 0;
}

void ratelimiter_free(struct ratelimiter *r)
{
	free(r);
}

static void source_key(uint8_t key[9], const union sockaddr_inet *src)
{
	union sockaddr_inet s;

	memset(key, 0, 9);
	endpoint_unmap(src, &s);
	if (s.sa.sa_family == AF_INET || endpoint_is_side(&s)) { /* same layout */
		key[0] = 4;
		memcpy(key + 1, &s.in.sin_addr, 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, &s.in6.sin6_addr, 8); /* a /64 is one source */
	}
}

/* Keyed with a secret seed so a sender cannot aim for collisions. */
static uint32_t slot_of(const struct ratelimiter *r, const uint8_t key[9])
{
	uint64_t h = r->seed, w;

	memcpy(&w, key + 1, 8);
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	h = (h ^ key[0] ^ (h >> 31)) * 0xbf58476d1ce4e5b9ULL;
	return (uint32_t)(h >> 32) % TABLE_SIZE;
}

/* Rebuilds the table without entries idle for a second (their buckets
 * would be full again anyway). */
static void collect_garbage(struct ratelimiter *r, uint64_t now)
{
	struct bucket *old = malloc(sizeof(r->table));

	if (!old)
		return;
	memcpy(old, r->table, sizeof(r->table));
	memset(r->table, 0, sizeof(r->table));
	r->count = 0;
	for (unsigned i = 0; i < TABLE_SIZE; i++) {
		uint32_t j;
		if (!old[i].used || now - old[i].last_ns >= IDLE_NS)
			continue;
		for (j = slot_of(r, old[i].key); r->table[j].used; j = (j + 1) % TABLE_SIZE)
			;
		r->table[j] = old[i];
		r->count++;
	}
	free(old);
	r->last_gc_ns = now;
}

bool ratelimiter_allow(struct ratelimiter *r, const union sockaddr_inet *src, uint64_t now_ns)
{
	uint8_t key[9];
	struct bucket *b;
	uint32_t i;

	if (now_ns - r->last_gc_ns >= NSEC_PER_SEC)
		collect_garbage(r, now_ns);
	source_key(key, src);
	for (i = slot_of(r, key); r->table[i].used; i = (i + 1) % TABLE_SIZE) {
		b = &r->table[i];
		if (memcmp(b->key, key, sizeof(key)))
			continue;
		b->tokens += now_ns - b->last_ns;
		if (b->tokens > TOKEN_MAX)
			b->tokens = TOKEN_MAX;
		b->last_ns = now_ns;
		if (b->tokens < PACKET_COST)
			return false;
		b->tokens -= PACKET_COST;
		return true;
	}
	if (r->count >= RATELIMITER_MAX_ENTRIES)
		return false;
	b = &r->table[i];
	memcpy(b->key, key, sizeof(key));
	b->used = true;
	b->tokens = TOKEN_MAX - PACKET_COST;
	b->last_ns = now_ns;
	r->count++;
	return true;
}
