/* SPDX-License-Identifier: MIT */
/*
 * A bounded FIFO of packets handed from a data-path thread to the event loop
 * (or back): packets to send over a relay, and received datagrams that are
 * not WireGuard (STUN, disco).  Producers push a whole batch under one lock;
 * the event loop drains it under one lock.  Full means drop, counted.
 */
#ifndef KNIT_WG_PKTQUEUE_H
#define KNIT_WG_PKTQUEUE_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"

#define PKTQ_MAX_PACKET 1600 /* MTU-sized WireGuard message, with room */

struct pktq_item {
	union sockaddr_inet addr; /* destination or source */
	uint8_t key[32];	  /* relay: the destination node key */
	uint16_t len;
	uint8_t data[PKTQ_MAX_PACKET];
};

struct pktq {
	pthread_mutex_t lock;
	unsigned head, count, capacity;
	uint64_t dropped;
	struct pktq_item *items;
};

int pktq_init(struct pktq *q, unsigned capacity);
void pktq_destroy(struct pktq *q);
/* Between pktq_lock() and pktq_unlock(): returns false (and counts a drop)
 * when the queue is full or the packet too long. */
void pktq_lock(struct pktq *q);
void pktq_unlock(struct pktq *q);
bool pktq_push_locked(struct pktq *q, const union sockaddr_inet *addr, const uint8_t *key,
		      const void *data, size_t len);
/* Moves up to max items out (oldest first); returns how many. */
unsigned pktq_pop_batch(struct pktq *q, struct pktq_item *out, unsigned max);
/*
 * The consumer's zero-copy side, for a single consumer: the oldest items,
 * read in place.  pktq_peek returns how many (at most max) are contiguous
 * from *first; producers never touch them until pktq_release gives back
 * the first n.  The lock is taken once per call, not per item.
 */
unsigned pktq_peek(struct pktq *q, struct pktq_item **first, unsigned max);
void pktq_release(struct pktq *q, unsigned n);
#endif
