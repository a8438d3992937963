/* SPDX-License-Identifier: MIT */
/*
 * Which elements should be in the set, from the flows that made them: an
 * element goes in `delay` after the first live flow that makes it (NEW), and
 * out when the last of those flows ends (DESTROY).  Two flows can make one
 * element (an EIF mapping talking to two servers), so elements are counted.
 * Pure bookkeeping: the nftables calls are the ops, time is a parameter.
 */
#ifndef KNIT_LAB_CTFILTER_TRACK_H
#define KNIT_LAB_CTFILTER_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"

struct ct_track_ops {
	/* `add element` / `delete element` with this text; 0 or -errno. */
	int (*add)(void *arg, const char *elem);
	int (*del)(void *arg, const char *elem);
	void *arg;
};

struct ct_elem;
struct ct_flowrec;

struct ct_track_stats {
	uint64_t flows;	   /* live flows that made an element */
	uint64_t elements; /* elements we put in and not yet out */
	uint64_t added;	   /* successful adds */
	uint64_t add_errors;
	uint64_t deleted;
	uint64_t delete_errors;
	uint64_t duplicates; /* NEW for a flow already known */
	uint64_t unknown;    /* DESTROY for a flow we never counted */
	uint64_t full;	     /* flows refused: max_flows reached */
};

struct ct_pending {
	uint64_t due_ns;
	struct ct_elem *e;
};

#define CT_BUCKETS 4096

struct ct_track {
	struct ct_track_ops ops;
	uint64_t delay_ns;
	bool refresh; /* add again on every flow (elements with a timeout expire) */
	size_t max_flows;
	struct ct_elem *elems[CT_BUCKETS];
	struct ct_flowrec *flows[CT_BUCKETS];
	struct ct_pending *pending; /* FIFO ring: a constant delay keeps it sorted */
	size_t p_head, p_len;
	struct ct_track_stats stats;
};

int ct_track_init(struct ct_track *t, size_t max_flows, uint64_t delay_ns, bool refresh,
		  const struct ct_track_ops *ops);
/* Frees everything without touching nftables. */
void ct_track_free(struct ct_track *t);

/*
 * Flow `id` appeared at now_ns and makes element `add_text` (deleted as
 * `del_text`).  0, -EEXIST for a flow already known, -ENOSPC when full.
 */
int ct_track_new(struct ct_track *t, uint64_t now_ns, uint32_t id, const char *add_text,
		 const char *del_text);
/* Flow `id` ended.  0, or -ENOENT for a flow we never counted. */
int ct_track_destroy(struct ct_track *t, uint32_t id);

/* When ct_track_run() has work next, or UINT64_MAX. */
uint64_t ct_track_next_deadline(const struct ct_track *t);
/* Puts in the elements whose delay is over. */
void ct_track_run(struct ct_track *t, uint64_t now_ns);
/* Takes every element we put in out again (at exit). */
void ct_track_remove_all(struct ct_track *t);

#endif
