// SPDX-License-Identifier: MIT
/* The replay window (see replay.h), as the Linux driver's counter_validate. */
#include "wg/replay.h"

#include <string.h>

#define WORDS (REPLAY_BITS_TOTAL / 64)

void replay_init(struct replay_counter *r)
{
	memset(r, 0, sizeof(*r));
}

bool replay_check(struct replay_counter *r, uint64_t counter, uint64_t reject_after)
{
	uint64_t index, index_current, top, bit;

	if (r->counter >= reject_after + 1 || counter >= reject_after)
		return false;
	++counter; /* so that counter 0 is distinct from "nothing seen" */
	if (REPLAY_WINDOW_SIZE + counter < r->counter)
		return false; /* too old */
	index = counter >> 6;
	if (counter > r->counter) {
		/* The window slides forward: clear the words it passes. */
		index_current = r->counter >> 6;
		top = index - index_current < WORDS ? index - index_current : WORDS;
		for (uint64_t i = 1; i <= top; i++)
			r->backtrack[(i + index_current) & (WORDS - 1)] = 0;
		r->counter = counter;
	}
	index &= WORDS - 1;
	bit = 1ULL << (counter & 63);
	if (r->backtrack[index] & bit)
		return false; /* replayed */
	r->backtrack[index] |= bit;
	return true;
}
