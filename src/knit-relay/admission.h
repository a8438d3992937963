/* SPDX-License-Identifier: MIT */
/*
 * The node keys a relay admits: the "active" set that control sends.  The
 * relay checks it when a client proves its key; a key leaving the set drops
 * that key's connection at once (through the removed callback).
 *
 * Control's messages map onto it one to one:
 *   {"type":"relay-nodes","full":true,"keys":["base64",...]}  admission_replace
 *   {"type":"relay-nodes","add":[...],"remove":[...]}          admission_add/remove
 * and admission_apply_json() takes either message as it comes.
 */
#ifndef KNIT_RELAY_ADMISSION_H
#define KNIT_RELAY_ADMISSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMISSION_MAX_KEYS (1u << 20)

struct admission;

/* Called once for each key that leaves the set (removed or not in a new
 * full set), after it has left. */
typedef void (*admission_removed_fn)(void *arg, const uint8_t key[32]);

int admission_new(struct admission **out, admission_removed_fn removed, void *arg);
void admission_free(struct admission *a);

bool admission_contains(const struct admission *a, const uint8_t key[32]);
size_t admission_count(const struct admission *a);
/* 0 (also when already there), -ENOSPC beyond ADMISSION_MAX_KEYS, -ENOMEM. */
int admission_add(struct admission *a, const uint8_t key[32]);
/* 0 when it was there (removed() is called), -ENOENT when it was not. */
int admission_remove(struct admission *a, const uint8_t key[32]);
/*
 * The whole set becomes keys[0..n): removed() for each key not in it any
 * more.  All or nothing: on -ENOMEM / -ENOSPC the set is unchanged.
 */
int admission_replace(struct admission *a, const uint8_t (*keys)[32], size_t n);

/*
 * Applies one "relay-nodes" message from control.  Every key is checked
 * before anything changes; a malformed message changes nothing and returns
 * -EINVAL with a reason in err (e.g. "keys[3]: not a base64 key").
 */
int admission_apply_json(struct admission *a, const json_t *msg, char *err, size_t err_size);

#endif
