// SPDX-License-Identifier: MIT
/* Keypair slots and the index table (see keypair.h). */
#include "wg/keypair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define INDEX_INITIAL_CAPACITY 64

static uint32_t index_hash(uint32_t index)
{
	/* Indices are random already; a multiply spreads low-entropy tests. */
	return index * 2654435761u;
}

int index_table_init(struct wg_index_table *t)
{
	t->slots = calloc(INDEX_INITIAL_CAPACITY, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->capacity = INDEX_INITIAL_CAPACITY;
	t->used = t->dirty = 0;
	return 0;
}

void index_table_free(struct wg_index_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static struct wg_index_entry *slot_find(const struct wg_index_table *t, uint32_t index)
{
	uint32_t mask = t->capacity - 1;

	for (uint32_t i = index_hash(index) & mask;; i = (i + 1) & mask) {
		struct wg_index_entry *e = &t->slots[i];

		if (e->kind == INDEX_NONE)
			return NULL;
		if (e->kind != INDEX_TOMBSTONE && e->index == index)
			return e;
	}
}

static void slot_put(struct wg_index_table *t, const struct wg_index_entry *entry)
{
	uint32_t mask = t->capacity - 1;
	uint32_t i = index_hash(entry->index) & mask;

	while (t->slots[i].kind != INDEX_NONE && t->slots[i].kind != INDEX_TOMBSTONE)
		i = (i + 1) & mask;
	if (t->slots[i].kind == INDEX_NONE)
		t->dirty++;
	t->slots[i] = *entry;
	t->used++;
}

/* Keeps the load (with tombstones) under 1/2 so probes stay short. */
static int table_rehash(struct wg_index_table *t)
{
	uint32_t capacity = t->capacity;
	struct wg_index_entry *old = t->slots;

	while ((t->used + 1) * 4 > capacity)
		capacity *= 2;
	if (capacity > (1u << 30))
		return -ENOSPC;
	t->slots = calloc(capacity, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	uint32_t old_capacity = t->capacity;
	t->capacity = capacity;
	t->used = t->dirty = 0;
	for (uint32_t i = 0; i < old_capacity; i++)
		if (old[i].kind != INDEX_NONE && old[i].kind != INDEX_TOMBSTONE)
			slot_put(t, &old[i]);
	free(old);
	return 0;
}

int index_table_add(struct wg_index_table *t, enum wg_index_kind kind, struct wg_peer *peer,
		    struct wg_keypair *kp, uint32_t *out)
{
	struct wg_index_entry e = {.kind = kind, .peer = peer, .keypair = kp};
	int ret;

	if ((t->dirty + 1) * 2 > t->capacity && (ret = table_rehash(t)) < 0)
		return ret;
	do
		e.index = random_u32();
	while (slot_find(t, e.index));
	slot_put(t, &e);
	*out = e.index;
	return 0;
}

void index_table_remove(struct wg_index_table *t, uint32_t index)
{
	struct wg_index_entry *e = slot_find(t, index);

	if (!e)
		return;
	e->kind = INDEX_TOMBSTONE;
	e->peer = NULL;
	e->keypair = NULL;
	t->used--;
}

int index_table_set_keypair(struct wg_index_table *t, uint32_t index, struct wg_keypair *kp)
{
	struct wg_index_entry *e = slot_find(t, index);

	if (!e)
		return -ENOENT;
	e->kind = INDEX_KEYPAIR;
	e->keypair = kp;
	return 0;
}

const struct wg_index_entry *index_table_find(const struct wg_index_table *t, uint32_t index)
{
	return slot_find(t, index);
}

struct wg_keypair *keypair_new(const struct noise_session_keys *keys, struct wg_peer *peer,
			       uint64_t now_ns)
{
	struct wg_keypair *kp = calloc(1, sizeof(*kp));

	if (!kp)
		return NULL;
	memcpy(kp->sending_key, keys->sending, sizeof(kp->sending_key));
	memcpy(kp->receiving_key, keys->receiving, sizeof(kp->receiving_key));
	atomic_init(&kp->sending_counter, 0);
	replay_init(&kp->replay);
	kp->birth_ns = now_ns;
	kp->local_index = keys->local_index;
	kp->remote_index = keys->remote_index;
	kp->initiator = keys->initiator;
	kp->peer = peer;
	return kp;
}

void keypair_free(struct wg_keypair *kp, struct wg_index_table *t)
{
	if (!kp)
		return;
	if (t)
		index_table_remove(t, kp->local_index);
	memzero_explicit(kp, sizeof(*kp));
	free(kp);
}

void keypairs_add(struct wg_keypairs *kps, struct wg_keypair *kp, struct wg_index_table *t)
{
	if (kp->initiator) {
		/* Confirmed by the response: usable at once.  A pending next
		 * becomes previous (still accepted), else current does. */
		if (kps->next) {
			keypair_free(kps->previous, t);
			kps->previous = kps->next;
			kps->next = NULL;
			keypair_free(kps->current, t);
		} else {
			keypair_free(kps->previous, t);
			kps->previous = kps->current;
		}
		kps->current = kp;
	} else {
		/* A responder may not send with it until the initiator has
		 * used it: it waits in next. */
		keypair_free(kps->next, t);
		kps->next = kp;
		keypair_free(kps->previous, t);
		kps->previous = NULL;
	}
}

bool keypairs_confirm_next(struct wg_keypairs *kps, struct wg_keypair *kp, struct wg_index_table *t)
{
	if (!kp || kps->next != kp)
		return false;
	keypair_free(kps->previous, t);
	kps->previous = kps->current;
	kps->current = kp;
	kps->next = NULL;
	return true;
}

void keypairs_clear(struct wg_keypairs *kps, struct wg_index_table *t)
{
	keypair_free(kps->current, t);
	keypair_free(kps->previous, t);
	keypair_free(kps->next, t);
	kps->current = kps->previous = kps->next = NULL;
}
