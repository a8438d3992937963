/* SPDX-License-Identifier: MIT */
/*
 * A hash map from 32-byte public keys to pointers: the relay's client table
 * and its admission set.  Keys are public keys, uniformly random for
 * honest parties; the hash is seeded per map anyway, so that keys chosen to
 * collide cost their chooser, not everyone.
 */
#ifndef KNIT_RELAY_KEYMAP_H
#define KNIT_RELAY_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keymap;

int keymap_new(struct keymap **out);
void keymap_free(struct keymap *m);
size_t keymap_count(const struct keymap *m);
/* NULL when absent (so values must not be NULL). */
void *keymap_get(const struct keymap *m, const uint8_t key[32]);
/* Inserts or replaces; returns 0 or -ENOMEM (the map is then unchanged). */
int keymap_put(struct keymap *m, const uint8_t key[32], void *value);
/* Removes and returns the value, or NULL when absent. */
void *keymap_del(struct keymap *m, const uint8_t key[32]);
/*
 * Calls fn for every entry; fn may delete the entry it is given (and no
 * other).  Order is unspecified.
 */
void keymap_foreach(struct keymap *m, void (*fn)(const uint8_t key[32], void *value, void *arg),
		    void *arg);

#endif
