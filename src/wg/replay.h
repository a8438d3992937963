/* SPDX-License-Identifier: MIT */
/*
 * The receive counter and its sliding replay window (RFC 6479, as in the
 * Linux driver: 8192 bits, a window of 8128 messages).  One per keypair,
 * touched only by the receiving thread.
 */
#ifndef KNIT_WG_REPLAY_H
#define KNIT_WG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define REPLAY_BITS_TOTAL  8192
#define REPLAY_WINDOW_SIZE (REPLAY_BITS_TOTAL - 64)

struct replay_counter {
	uint64_t counter; /* next expected counter: greatest seen + 1 */
	uint64_t backtrack[REPLAY_BITS_TOTAL / 64];
};

void replay_init(struct replay_counter *r);
/*
 * Call only after the packet authenticated.  True (and records it) when
 * counter is new, inside the window and below `reject_after`.
 */
bool replay_check(struct replay_counter *r, uint64_t counter, uint64_t reject_after);

#endif
