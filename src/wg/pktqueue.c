// SPDX-License-Identifier: MIT
#include "wg/pktqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int pktq_init(struct pktq *q, unsigned capacity)
{
	memset(q, 0, sizeof(*q));
	q->items = calloc(capacity, sizeof(*q->items));
	if (!q->items)
		return -ENOMEM;
	q->capacity = capacity;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

void pktq_destroy(struct pktq *q)
{
	if (!q->items)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q->items);
	memset(q, 0, sizeof(*q));
}

void pktq_lock(struct pktq *q)
{
	pthread_mutex_lock(&q->lock);
}

void pktq_unlock(struct pktq *q)
{
	pthread_mutex_unlock(&q->lock);
}

bool pktq_push_locked(struct pktq *q, const union sockaddr_inet *addr, const uint8_t *key,
		      const void *data, size_t len)
{
	struct pktq_item *it;

	if (q->count == q->capacity || len > PKTQ_MAX_PACKET) {
		q->dropped++;
		return false;
	}
	it = &q->items[(q->head + q->count) % q->capacity];
	it->addr = *addr;
	if (key)
		memcpy(it->key, key, sizeof(it->key));
	it->len = (uint16_t)len;
	memcpy(it->data, data, len);
	q->count++;
	return true;
}

unsigned pktq_pop_batch(struct pktq *q, struct pktq_item *out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&q->lock);
	while (n < max && q->count) {
		struct pktq_item *it = &q->items[q->head];
		out[n].addr = it->addr;
		memcpy(out[n].key, it->key, sizeof(it->key));
		out[n].len = it->len;
		memcpy(out[n].data, it->data, it->len);
		q->head = (q->head + 1) % q->capacity;
		q->count--;
		n++;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

unsigned pktq_peek(struct pktq *q, struct pktq_item **first, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&q->lock);
	n = q->count;
	/* Contiguous: up to the end of the ring; the rest comes next call. */
	if (n > q->capacity - q->head)
		n = q->capacity - q->head;
	*first = &q->items[q->head];
	pthread_mutex_unlock(&q->lock);
	return n < max ? n : max;
}

void pktq_release(struct pktq *q, unsigned n)
{
	pthread_mutex_lock(&q->lock);
	if (n > q->count)
		n = q->count;
	q->head = (q->head + n) % q->capacity;
	q->count -= n;
	pthread_mutex_unlock(&q->lock);
}
