// SPDX-License-Identifier: MIT
/* A chained hash map keyed by public keys (see keymap.h). */
#include "knit-relay/keymap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

struct entry {
	struct entry *next;
	void *value;
	uint8_t key[32];
};

struct keymap {
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t count;
	uint64_t seed[4];
};

int keymap_new(struct keymap **out)
{
	struct keymap *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->n_buckets = 64;
	m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return -ENOMEM;
	}
	random_bytes(m->seed, sizeof(m->seed));
	*out = m;
	return 0;
}

void keymap_free(struct keymap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct entry *e = m->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

size_t keymap_count(const struct keymap *m)
{
	return m->count;
}

/* Seeded multiply-xorshift over the key's four words: cheap, and not
 * predictable without the seed. */
static size_t hash(const struct keymap *m, const uint8_t key[32])
{
	uint64_t h = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t w;
		memcpy(&w, key + 8 * i, 8);
		h ^= w ^ m->seed[i];
		h *= 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return (size_t)(h & (m->n_buckets - 1));
}

static struct entry **find(const struct keymap *m, const uint8_t key[32])
{
	struct entry **pp = &m->buckets[hash(m, key)];

	while (*pp && memcmp((*pp)->key, key, 32) != 0)
		pp = &(*pp)->next;
	return pp;
}

void *keymap_get(const struct keymap *m, const uint8_t key[32])
{
	struct entry *e = *find(m, key);

	return e ? e->value : NULL;
}

static void grow(struct keymap *m)
{
	size_t old_n = m->n_buckets;
	struct entry **old = m->buckets, **b = calloc(old_n * 2, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	m->buckets = b;
	m->n_buckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct entry *e = old[i], *next;
		for (; e; e = next) {
			size_t h = hash(m, e->key);
			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(old);
}

int keymap_put(struct keymap *m, const uint8_t key[32], void *value)
{
	struct entry **pp = find(m, key), *e;

	if (*pp) {
		(*pp)->value = value;
		return 0;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, 32);
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++m->count > m->n_buckets)
		grow(m);
	return 0;
}

void *keymap_del(struct keymap *m, const uint8_t key[32])
{
	struct entry **pp = find(m, key), *e = *pp;
	void *value;

	if (!e)
		return NULL;
	*pp = e->next;
	value = e->value;
	free(e);
	m->count--;
	return value;
}

void keymap_foreach(struct keymap *m, void (*fn)(const uint8_t key[32], void *value, void *arg),
		    void *arg)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct entry *e = m->buckets[i], *next;
		for (; e; e = next) {
			next = e->next; /* fn may delete e */
			fn(e->key, e->value, arg);
		}
	}
}
