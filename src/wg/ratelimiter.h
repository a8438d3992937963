/* SPDX-License-Identifier: MIT */
/*
 * Per-source-address token buckets for handshake messages under load
 * (as the Linux driver's ratelimiter.c): a bounded table, old entries
 * expire, IPv6 sources are grouped by /64.
 */
#ifndef KNIT_WG_RATELIMITER_H
#define KNIT_WG_RATELIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"

#define RATELIMITER_PACKETS_PER_SECOND 20
#define RATELIMITER_PACKETS_BURSTABLE  5
#define RATELIMITER_MAX_ENTRIES	       8192

struct ratelimiter;

int ratelimiter_new(struct ratelimiter **out);
void ratelimiter_free(struct ratelimiter *r);
/* True when a packet from src may pass now (now_ns from clock_mono_ns()). */
bool ratelimiter_allow(struct ratelimiter *r, const union sockaddr_inet *src, uint64_t now_ns);

#endif
