/* SPDX-License-Identifier: MIT */
/* linkem's parts that talk to the kernel and to its control socket. */
#ifndef KNIT_LAB_LINKEM_LINKEM_H
#define KNIT_LAB_LINKEM_LINKEM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched.h"

struct evloop;
struct lq;

/*
 * Binds NFQUEUE number `queue` in the current network namespace, metadata
 * only, fail-open off, the kernel's own queue limited to kernel_maxlen.
 * Returns 0 or -errno (-EPERM: another process holds the queue).
 */
int lq_open(struct lq **out, uint16_t queue, uint32_t kernel_maxlen);
void lq_close(struct lq *q);
int lq_fd(const struct lq *q);

typedef void (*lq_packet_cb)(uint32_t id, void *arg);
/* Reads every packet waiting on the socket; calls cb for each.  0 or -errno. */
int lq_receive(struct lq *q, lq_packet_cb cb, void *arg);
/*
 * Verdicts for ids[0..n), which must be in the kernel's queue order when
 * `in_order` (then one batch verdict covers them all); otherwise one verdict
 * message each, sent together.  0 or -errno.
 */
int lq_verdict(struct lq *q, const uint32_t *ids, size_t n, bool accept, bool in_order);

/* The running instance's state, as the control socket exposes it. */
struct linkem_state {
	struct lk_sched sched;
	uint16_t queue;
	uint64_t kernel_errors; /* verdicts or reads the kernel refused */
};

/* Builds the JSON answer to "stats". */
json_t *linkem_stats_json(const struct linkem_state *st);

struct control;
/* Listens on a UNIX seqpacket socket at path, mode 0600. 0 or -errno. */
int control_listen(struct control **out, struct evloop *loop, const char *path,
		   struct linkem_state *st);
void control_close(struct control *c);

/*
 * Client side: sends one JSON request to the instance at path and returns its
 * JSON answer (the caller frees it).  0 or -errno; errors are printed.
 */
int control_request(const char *path, json_t *req, json_t **answer);

#endif
