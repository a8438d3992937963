/* SPDX-License-Identifier: MIT */
/*
 * Transport keypairs and the table that maps our 32-bit indices to them.
 *
 * A peer has three slots, as in the whitepaper and the Linux driver:
 * `current` (used to send), `previous` (still accepted on receipt, so that
 * packets in flight across a rekey are not lost) and `next` (a responder's
 * fresh keypair, promoted to current by the first data packet it receives).
 *
 * Locking: slots and the index table change only on the event loop under the
 * device's write lock; data-path threads read them under the read lock.  A
 * keypair's sending counter is atomic (data path and event loop both send);
 * its replay window belongs to the receiving thread.
 */
#ifndef KNIT_WG_KEYPAIR_H
#define KNIT_WG_KEYPAIR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "wg/noise.h"
#include "wg/replay.h"

struct wg_peer;

struct wg_keypair {
	uint8_t sending_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t receiving_key[NOISE_SYMMETRIC_KEY_LEN];
	_Atomic uint64_t sending_counter;
	struct replay_counter replay; /* receiving thread only */
	uint64_t birth_ns;
	uint32_t local_index;
	uint32_t remote_index;
	bool initiator;
	struct wg_peer *peer;
};

struct wg_keypairs {
	struct wg_keypair *current;
	struct wg_keypair *previous;
	struct wg_keypair *next;
};

/* What an index names: a keypair, or a handshake in progress. */
enum wg_index_kind { INDEX_NONE, INDEX_KEYPAIR, INDEX_HANDSHAKE, INDEX_TOMBSTONE };

struct wg_index_entry {
	uint32_t index;
	enum wg_index_kind kind;
	struct wg_peer *peer;
	struct wg_keypair *keypair; /* INDEX_KEYPAIR only */
};

/* Open addressing with linear probing, power-of-two capacity, tombstones. */
struct wg_index_table {
	struct wg_index_entry *slots;
	uint32_t capacity;
	uint32_t used;	/* live entries */
	uint32_t dirty; /* live + tombstones */
};

int index_table_init(struct wg_index_table *t);
void index_table_free(struct wg_index_table *t);
/* Picks a fresh random index, stores the entry, returns the index via *out. */
int index_table_add(struct wg_index_table *t, enum wg_index_kind kind, struct wg_peer *peer,
		    struct wg_keypair *kp, uint32_t *out);
void index_table_remove(struct wg_index_table *t, uint32_t index);
/* A handshake's index becomes its keypair's (as the session begins). */
int index_table_set_keypair(struct wg_index_table *t, uint32_t index, struct wg_keypair *kp);
const struct wg_index_entry *index_table_find(const struct wg_index_table *t, uint32_t index);

/* A keypair from a finished handshake; NULL on allocation failure. */
struct wg_keypair *keypair_new(const struct noise_session_keys *keys, struct wg_peer *peer,
			       uint64_t now_ns);
/* Wipes and frees, and drops its index. NULL is fine. */
void keypair_free(struct wg_keypair *kp, struct wg_index_table *t);

/* Installs a new keypair by the rules of the Linux driver's add_new_keypair. */
void keypairs_add(struct wg_keypairs *kps, struct wg_keypair *kp, struct wg_index_table *t);
/* The first data packet arrived on `next`: it becomes current.  Returns
 * true if a rotation happened. */
bool keypairs_confirm_next(struct wg_keypairs *kps, struct wg_keypair *kp,
			   struct wg_index_table *t);
void keypairs_clear(struct wg_keypairs *kps, struct wg_index_table *t);

#endif
