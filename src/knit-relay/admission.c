// SPDX-License-Identifier: MIT
/* The relay's set of admitted node keys (see admission.h). */
#include "knit-relay/admission.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knit-relay/keymap.h"
#include "lib/encoding.h"

/* The value of every entry: keymap values must not be NULL. */
static char present;

struct admission {
	struct keymap *keys; /* values: &present */
	admission_removed_fn removed;
	void *arg;
};

int admission_new(struct admission **out, admission_removed_fn removed, void *arg)
{
	struct admission *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	if (keymap_new(&a->keys) < 0) {
		free(a);
		return -ENOMEM;
	}
	a->removed = removed;
	a->arg = arg;
	*out = a;
	return 0;
}

void admission_free(struct admission *a)
{
	if (!a)
		return;
	keymap_free(a->keys);
	free(a);
}

bool admission_contains(const struct admission *a, const uint8_t key[32])
{
	return keymap_get(a->keys, key) != NULL;
}

size_t admission_count(const struct admission *a)
{
	return keymap_count(a->keys);
}

int admission_add(struct admission *a, const uint8_t key[32])
{
	if (admission_contains(a, key))
		return 0;
	if (keymap_count(a->keys) >= ADMISSION_MAX_KEYS)
		return -ENOSPC;
	return keymap_put(a->keys, key, &present);
}

int admission_remove(struct admission *a, const uint8_t key[32])
{
	uint8_t k[32];

	if (!keymap_del(a->keys, key))
		return -ENOENT;
	memcpy(k, key, 32); /* key may point into the caller's data we change */
	if (a->removed)
		a->removed(a->arg, k);
	return 0;
}

struct replace_ctx {
	struct admission *a;
	struct keymap *next;
};

static void drop_if_gone(const uint8_t key[32], void *value, void *arg)
{
	struct replace_ctx *ctx = arg;
	uint8_t k[32];

	if (keymap_get(ctx->next, key))
		return;
	memcpy(k, key, 32); /* the entry is freed by the deletion */
	keymap_del(ctx->a->keys, k);
	if (ctx->a->removed)
		ctx->a->removed(ctx->a->arg, k);
}

int admission_replace(struct admission *a, const uint8_t (*keys)[32], size_t n)
{
	struct replace_ctx ctx = {.a = a};
	struct keymap *old;
	int ret;

	if (n > ADMISSION_MAX_KEYS)
		return -ENOSPC;
	ret = keymap_new(&ctx.next);
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = keymap_put(ctx.next, keys[i], &present);
	if (ret < 0) {
		keymap_free(ctx.next);
		return ret;
	}
	/* Removals first, from the old map, so that removed() sees the set
	 * without the key; then the new map takes over. */
	keymap_foreach(a->keys, drop_if_gone, &ctx);
	old = a->keys;
	a->keys = ctx.next;
	keymap_free(old);
	return 0;
}

/* Decodes a JSON array of base64 keys into a fresh array. */
static int decode_keys(const json_t *arr, const char *name, uint8_t (**out)[32], size_t *n,
		       char *err, size_t err_size)
{
	size_t i, len;
	json_t *v;

	*out = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr)) {
		snprintf(err, err_size, "%s: not an array", name);
		return -EINVAL;
	}
	len = json_array_size(arr);
	if (len > ADMISSION_MAX_KEYS) {
		snprintf(err, err_size, "%s: more than %u keys", name, ADMISSION_MAX_KEYS);
		return -EINVAL;
	}
	*out = calloc(len ? len : 1, 32);
	if (!*out)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || key_from_base64((*out)[i], json_string_value(v)) < 0) {
			snprintf(err, err_size, "%s[%zu]: not a base64 key", name, i);
			free(*out);
			*out = NULL;
			return -EINVAL;
		}
	}
	*n = len;
	return 0;
}

int admission_apply_json(struct admission *a, const json_t *msg, char *err, size_t err_size)
{
	const json_t *type = json_object_get(msg, "type"), *full = json_object_get(msg, "full");
	uint8_t(*keys)[32] = NULL, (*add)[32] = NULL, (*del)[32] = NULL;
	size_t n_keys, n_add, n_del;
	int ret;

	snprintf(err, err_size, "ok");
	if (!json_is_object(msg) || !json_is_string(type) ||
	    strcmp(json_string_value(type), "relay-nodes") != 0) {
		snprintf(err, err_size, "not a relay-nodes message");
		return -EINVAL;
	}
	if (full && !json_is_boolean(full)) {
		snprintf(err, err_size, "full: not a boolean");
		return -EINVAL;
	}
	if (json_is_true(full)) {
		if (!json_object_get(msg, "keys")) {
			snprintf(err, err_size, "full set without keys");
			return -EINVAL;
		}
		ret = decode_keys(json_object_get(msg, "keys"), "keys", &keys, &n_keys, err,
				  err_size);
		if (ret == 0)
			ret = admission_replace(a, (const uint8_t(*)[32])keys, n_keys);
		free(keys);
		return ret;
	}
	ret = decode_keys(json_object_get(msg, "add"), "add", &add, &n_add, err, err_size);
	if (ret == 0)
		ret = decode_keys(json_object_get(msg, "remove"), "remove", &del, &n_del, err,
				  err_size);
	if (ret == 0 && keymap_count(a->keys) + n_add > ADMISSION_MAX_KEYS + n_del) {
		snprintf(err, err_size, "more than %u keys", ADMISSION_MAX_KEYS);
		ret = -ENOSPC;
	}
	/* Removals first: a key both removed and added ends up admitted. */
	for (size_t i = 0; ret == 0 && i < n_del; i++)
		admission_remove(a, del[i]);
	for (size_t i = 0; ret == 0 && i < n_add; i++)
		ret = admission_add(a, add[i]);
	free(add);
	free(del);
	return ret;
}
