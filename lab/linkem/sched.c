// SPDX-License-Identifier: MIT
/* The link model of linkem: loss draw, delay with jitter, release queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

/* splitmix64: tiny, fast, and good enough for loss and jitter draws. */
uint64_t lk_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias worth the name (n < 2^32). */
static uint64_t rng_below(uint64_t *state, uint64_t n)
{
	return ((lk_rng_next(state) >> 32) * n) >> 32;
}

int lk_sched_init(struct lk_sched *s, size_t cap, bool reorder, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	if (cap == 0)
		return -EINVAL;
	s->heap = calloc(cap, sizeof(*s->heap));
	if (!s->heap)
		return -ENOMEM;
	s->cap = cap;
	s->reorder = reorder;
	s->rng = seed;
	return 0;
}

void lk_sched_free(struct lk_sched *s)
{
	free(s->heap);
	s->heap = NULL;
	s->len = s->cap = 0;
}

void lk_sched_set_params(struct lk_sched *s, const struct lk_params *p)
{
	s->params = *p;
}

static bool entry_before(const struct lk_entry *a, const struct lk_entry *b)
{
	if (a->release_ns != b->release_ns)
		return a->release_ns < b->release_ns;
	return a->seq < b->seq;
}

static void heap_swap(struct lk_entry *h, size_t i, size_t j)
{
	struct lk_entry t = h[i];

	h[i] = h[j];
	h[j] = t;
}

static void heap_push(struct lk_sched *s, struct lk_entry e)
{
	size_t i = s->len++;

	s->heap[i] = e;
	while (i > 0 && entry_before(&s->heap[i], &s->heap[(i - 1) / 2])) {
		heap_swap(s->heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct lk_entry heap_pop(struct lk_sched *s)
{
	struct lk_entry top = s->heap[0];
	size_t i = 0;

	s->heap[0] = s->heap[--s->len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->len && entry_before(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->len && entry_before(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(s->heap, i, m);
		i = m;
	}
	return top;
}

/* Delay ± jitter in nanoseconds, never below zero. */
static uint64_t draw_delay_ns(struct lk_sched *s)
{
	int64_t us = s->params.delay_us;

	if (s->params.jitter_us)
		us += (int64_t)rng_below(&s->rng, 2ULL * s->params.jitter_us + 1) -
		      s->params.jitter_us;
	return us > 0 ? (uint64_t)us * 1000 : 0;
}

enum lk_verdict lk_sched_packet(struct lk_sched *s, uint64_t now_ns, uint32_t id)
{
	uint64_t release;

	s->stats.seen++;
	if (s->params.loss_ppm && (s->params.loss_ppm >= LK_LOSS_FULL ||
				   rng_below(&s->rng, LK_LOSS_FULL) < s->params.loss_ppm)) {
		s->stats.dropped_loss++;
		return LK_DROP_LOSS;
	}
	release = now_ns + draw_delay_ns(s);
	/* Order is kept by never releasing before the previous packet. */
	if (!s->reorder && s->len && release < s->last_release_ns)
		release = s->last_release_ns;
	if (release <= now_ns && s->len == 0) {
		s->stats.accepted++;
		return LK_ACCEPT_NOW;
	}
	if (s->len == s->cap) {
		s->stats.dropped_overflow++;
		return LK_DROP_OVERFLOW;
	}
	heap_push(s, (struct lk_entry){.release_ns = release, .seq = s->next_seq++, .id = id});
	if (release > s->last_release_ns || s->len == 1)
		s->last_release_ns = release;
	return LK_QUEUED;
}

uint64_t lk_sched_next_deadline(const struct lk_sched *s)
{
	return s->len ? s->heap[0].release_ns : UINT64_MAX;
}

size_t lk_sched_pop_due(struct lk_sched *s, uint64_t now_ns, uint32_t *ids, size_t max)
{
	size_t n = 0;

	while (n < max && s->len && s->heap[0].release_ns <= now_ns) {
		ids[n++] = heap_pop(s).id;
		s->stats.accepted++;
		s->stats.delayed++;
	}
	return n;
}

size_t lk_sched_pop_all(struct lk_sched *s, uint32_t *ids, size_t max)
{
	return lk_sched_pop_due(s, UINT64_MAX, ids, max);
}

int lk_parse_fixed(const char *s, unsigned int frac, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int digits = 0, after = 0;
	bool point = false;

	if (!s || !*s || frac > 9)
		return -EINVAL;
	for (; *s; s++) {
		if (*s == '.' && !point) {
			point = true;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (point && ++after > frac)
			return -EINVAL;
		if (v > UINT64_MAX / 10 ||
		    (v == UINT64_MAX / 10 && (uint64_t)(*s - '0') > UINT64_MAX % 10))
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
		digits++;
	}
	if (!digits || (point && !after))
		return -EINVAL;
	for (; after < frac; after++) {
		if (v > UINT64_MAX / 10)
			return -ERANGE;
		v *= 10;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int lk_parse_ms(const char *s, uint32_t *us)
{
	uint64_t v;
	int err = lk_parse_fixed(s, 3, LK_MAX_DELAY_US, &v);

	if (!err)
		*us = (uint32_t)v;
	return err;
}

int lk_parse_percent(const char *s, uint32_t *ppm)
{
	uint64_t v;
	int err = lk_parse_fixed(s, 4, LK_LOSS_FULL, &v);

	if (!err)
		*ppm = (uint32_t)v;
	return err;
}
