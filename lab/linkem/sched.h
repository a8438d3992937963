/* SPDX-License-Identifier: MIT */
/*
 * linkem's pure part: the link model, free of netlink and clocks so that the
 * unit tests drive it with made-up times.  A packet is dropped with
 * probability loss, otherwise it leaves after delay ± uniform jitter; unless
 * reordering is asked for, no packet leaves before the one that came before
 * it (release = max(own, previous release)), as on a real FIFO link.
 */
#ifndef KNIT_LAB_LINKEM_SCHED_H
#define KNIT_LAB_LINKEM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_LOSS_FULL	 1000000u  /* loss is kept in parts per million */
#define LK_MAX_DELAY_US	 60000000u /* 60 s: a larger delay is a typo */
#define LK_DEFAULT_QUEUE 4096u

struct lk_params {
	uint32_t delay_us;
	uint32_t jitter_us;
	uint32_t loss_ppm; /* 0 .. LK_LOSS_FULL */
};

struct lk_stats {
	uint64_t seen;		   /* packets handed to us */
	uint64_t accepted;	   /* packets let through, now or later */
	uint64_t delayed;	   /* of those, packets that waited in the queue */
	uint64_t dropped_loss;	   /* dropped by the loss draw */
	uint64_t dropped_overflow; /* dropped because the queue was full */
};

struct lk_entry {
	uint64_t release_ns;
	uint64_t seq; /* arrival order: ties leave in arrival order */
	uint32_t id;  /* the kernel's packet id */
};

struct lk_sched {
	struct lk_params params;
	struct lk_stats stats;
	bool reorder;
	uint64_t rng;
	uint64_t next_seq;
	uint64_t last_release_ns; /* release time of the latest queued packet */
	struct lk_entry *heap;	  /* min-heap on (release_ns, seq) */
	size_t len, cap;
};

enum lk_verdict {
	LK_ACCEPT_NOW,	  /* let it through at once */
	LK_QUEUED,	  /* lk_sched_pop_due() will release it */
	LK_DROP_LOSS,	  /* lost on the link */
	LK_DROP_OVERFLOW, /* the queue is full */
};

/* Returns 0 or -ENOMEM. */
int lk_sched_init(struct lk_sched *s, size_t cap, bool reorder, uint64_t seed);
void lk_sched_free(struct lk_sched *s);
/* Takes effect for packets that arrive from now on. */
void lk_sched_set_params(struct lk_sched *s, const struct lk_params *p);

/* One packet with kernel id `id` arrived at now_ns: what to do with it. */
enum lk_verdict lk_sched_packet(struct lk_sched *s, uint64_t now_ns, uint32_t id);

/* Deadline of the next release, or UINT64_MAX with nothing queued. */
uint64_t lk_sched_next_deadline(const struct lk_sched *s);

/*
 * Removes up to max packets due at now_ns, in the order they must leave,
 * into ids[]; returns how many.
 */
size_t lk_sched_pop_due(struct lk_sched *s, uint64_t now_ns, uint32_t *ids, size_t max);

/* Removes every queued packet, in release order (at exit); returns how many. */
size_t lk_sched_pop_all(struct lk_sched *s, uint32_t *ids, size_t max);

uint64_t lk_rng_next(uint64_t *state);

/*
 * Parses a non-negative decimal with at most `frac` digits after the point
 * ("2.5", "20", "0.125") into an integer scaled by 10^frac, refusing anything
 * above max, signs, exponents, spaces and empty strings.  0 or -EINVAL/-ERANGE.
 */
int lk_parse_fixed(const char *s, unsigned int frac, uint64_t max, uint64_t *out);
/* Milliseconds with up to 3 decimals into microseconds, ≤ LK_MAX_DELAY_US. */
int lk_parse_ms(const char *s, uint32_t *us);
/* A percentage with up to 4 decimals into parts per million, ≤ 100%. */
int lk_parse_percent(const char *s, uint32_t *ppm);

#endif
