// SPDX-License-Identifier: MIT
/* Longest-prefix match by per-length hash tables (see allowedips.h). */
#include "wg/allowedips.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define LEVEL_MIN_CAPACITY 8

static struct allowedips_family *family_of(struct allowedips *t, int family)
{
	return family == AF_INET ? &t->v4 : family == AF_INET6 ? &t->v6 : NULL;
}

void allowedips_init(struct allowedips *t)
{
	memset(t, 0, sizeof(*t));
	t->v4.addr_len = 4;
	t->v6.addr_len = 16;
	random_bytes(&t->seed, sizeof(t->seed));
}

static void family_free(struct allowedips_family *f)
{
	for (unsigned i = 0; i < 129; i++) {
		if (f->levels[i])
			free(f->levels[i]->slots);
		free(f->levels[i]);
		f->levels[i] = NULL;
	}
	f->n_levels = 0;
}

void allowedips_free(struct allowedips *t)
{
	family_free(&t->v4);
	family_free(&t->v6);
	t->count = 0;
}

static void mask_key(uint8_t *out, const uint8_t *addr, unsigned len, unsigned bits)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
		out[i] = keep >= 8 ? addr[i] : (uint8_t)(addr[i] & (0xff00 >> keep));
	}
}

static uint32_t hash_key(const struct allowedips *t, const uint8_t *key, unsigned len)
{
	uint64_t h = t->seed;

	for (unsigned i = 0; i < len; i += 4) {
		uint32_t w;
		memcpy(&w, key + i, 4);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	}
	return (uint32_t)(h ^ (h >> 29));
}

static struct allowedips_entry *level_find(const struct allowedips *t,
					   const struct allowedips_level *l, const uint8_t *key,
					   unsigned len)
{
	uint32_t mask = l->capacity - 1;

	for (uint32_t i = hash_key(t, key, len) & mask;; i = (i + 1) & mask) {
		struct allowedips_entry *e = &l->slots[i];
		if (!e->peer)
			return NULL;
		if (!memcmp(e->key, key, len))
			return e;
	}
}

static void level_put(const struct allowedips *t, struct allowedips_level *l, const uint8_t *key,
		      unsigned len, void *peer)
{
	uint32_t mask = l->capacity - 1, i = hash_key(t, key, len) & mask;

	while (l->slots[i].peer)
		i = (i + 1) & mask;
	memcpy(l->slots[i].key, key, len);
	l->slots[i].peer = peer;
	l->count++;
}

static int level_grow(const struct allowedips *t, struct allowedips_level *l, unsigned len)
{
	struct allowedips_level bigger = {.capacity = l->capacity ? l->capacity * 2
								  : LEVEL_MIN_CAPACITY};

	bigger.slots = calloc(bigger.capacity, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < l->capacity; i++)
		if (l->slots[i].peer)
			level_put(t, &bigger, l->slots[i].key, len, l->slots[i].peer);
	free(l->slots);
	*l = bigger;
	return 0;
}

/* Deletes slot i by shifting later members of its probe run back (no
 * tombstones, so lookups never slow down with churn). */
static void level_delete(const struct allowedips *t, struct allowedips_level *l, uint32_t i,
			 unsigned len)
{
	uint32_t mask = l->capacity - 1, j = i;

	l->slots[i].peer = NULL;
	l->count--;
	for (;;) {
		j = (j + 1) & mask;
		if (!l->slots[j].peer)
			return;
		uint32_t home = hash_key(t, l->slots[j].key, len) & mask;
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if ((i <= j) ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		l->slots[i] = l->slots[j];
		l->slots[j].peer = NULL;
		i = j;
	}
}

static void order_levels(struct allowedips_family *f)
{
	f->n_levels = 0;
	for (int bits = 128; bits >= 0; bits--)
		if (f->levels[bits] && f->levels[bits]->count)
			f->order[f->n_levels++] = (uint8_t)bits;
}

int allowedips_insert(struct allowedips *t, const struct ip_prefix *p, void *peer)
{
	struct allowedips_family *f = family_of(t, p->family);
	struct allowedips_level *l;
	struct allowedips_entry *e;
	uint8_t key[16] = {0};

	if (!f || !peer || p->bits > f->addr_len * 8)
		return -EINVAL;
	mask_key(key, p->addr.bytes, f->addr_len, p->bits);
	l = f->levels[p->bits];
	if (!l) {
		l = f->levels[p->bits] = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
	}
	if (l->count && (e = level_find(t, l, key, f->addr_len))) {
		e->peer = peer;
		return 0;
	}
	if ((l->count + 1) * 2 > l->capacity && level_grow(t, l, f->addr_len) < 0)
		return -ENOMEM;
	level_put(t, l, key, f->addr_len, peer);
	t->count++;
	order_levels(f);
	return 0;
}

int allowedips_remove(struct allowedips *t, const struct ip_prefix *p, void *peer)
{
	struct allowedips_family *f = family_of(t, p->family);
	struct allowedips_level *l;
	struct allowedips_entry *e;
	uint8_t key[16] = {0};

	if (!f || p->bits > f->addr_len * 8 || !(l = f->levels[p->bits]) || !l->count)
		return -ENOENT;
	mask_key(key, p->addr.bytes, f->addr_len, p->bits);
	e = level_find(t, l, key, f->addr_len);
	if (!e || e->peer != peer)
		return -ENOENT;
	level_delete(t, l, (uint32_t)(e - l->slots), f->addr_len);
	t->count--;
	order_levels(f);
	return 0;
}

static void family_remove_peer(struct allowedips *t, struct allowedips_family *f, void *peer)
{
	for (unsigned bits = 0; bits <= f->addr_len * 8; bits++) {
		struct allowedips_level *l = f->levels[bits];
		for (uint32_t i = 0; l && i < l->capacity; i++) {
			/* A deletion may shift another entry into slot i. */
			while (l->slots[i].peer == peer) {
				level_delete(t, l, i, f->addr_len);
				t->count--;
			}
		}
	}
	order_levels(f);
}

void allowedips_remove_by_peer(struct allowedips *t, void *peer)
{
	family_remove_peer(t, &t->v4, peer);
	family_remove_peer(t, &t->v6, peer);
}

void *allowedips_lookup(const struct allowedips *t, int family, const void *addr)
{
	const struct allowedips_family *f = family == AF_INET ? &t->v4 : &t->v6;
	uint8_t key[16];

	for (unsigned i = 0; i < f->n_levels; i++) {
		const struct allowedips_level *l = f->levels[f->order[i]];
		const struct allowedips_entry *e;
		mask_key(key, addr, f->addr_len, f->order[i]);
		if ((e = level_find(t, l, key, f->addr_len)))
			return e->peer;
	}
	return NULL;
}

static int family_walk(const struct allowedips_family *f, int family,
		       int (*cb)(void *ctx, const struct ip_prefix *p, void *peer), void *ctx)
{
	for (unsigned bits = 0; bits <= f->addr_len * 8; bits++) {
		const struct allowedips_level *l = f->levels[bits];
		for (uint32_t i = 0; l && i < l->capacity; i++) {
			struct ip_prefix p = {.family = family, .bits = (uint8_t)bits};
			int ret;
			if (!l->slots[i].peer)
				continue;
			memcpy(p.addr.bytes, l->slots[i].key, f->addr_len);
			if ((ret = cb(ctx, &p, l->slots[i].peer)))
				return ret;
		}
	}
	return 0;
}

int allowedips_walk(const struct allowedips *t,
		    int (*cb)(void *ctx, const struct ip_prefix *p, void *peer), void *ctx)
{
	int ret = family_walk(&t->v4, AF_INET, cb, ctx);

	return ret ? ret : family_walk(&t->v6, AF_INET6, cb, ctx);
}
