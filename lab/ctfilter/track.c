// SPDX-License-Identifier: MIT
/* ctfilter's element bookkeeping (see track.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "track.h"

struct ct_elem {
	struct ct_elem *next;
	unsigned int refs;    /* live flows that make this element */
	unsigned int pending; /* delayed adds still queued for it */
	bool installed;
	char add[CT_ELEM_MAX];
	char del[CT_ELEM_MAX];
};

struct ct_flowrec {
	struct ct_flowrec *next;
	uint32_t id;
	struct ct_elem *e;
};

static size_t str_bucket(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % CT_BUCKETS;
}

static size_t id_bucket(uint32_t id)
{
	return (id * 2654435761u) >> 20 & (CT_BUCKETS - 1);
}

int ct_track_init(struct ct_track *t, size_t max_flows, uint64_t delay_ns, bool refresh,
		  const struct ct_track_ops *ops)
{
	memset(t, 0, sizeof(*t));
	if (!max_flows)
		return -EINVAL;
	t->pending = calloc(max_flows, sizeof(*t->pending));
	if (!t->pending)
		return -ENOMEM;
	t->max_flows = max_flows;
	t->delay_ns = delay_ns;
	t->refresh = refresh;
	t->ops = *ops;
	return 0;
}

void ct_track_free(struct ct_track *t)
{
	size_t b;

	for (b = 0; b < CT_BUCKETS; b++) {
		while (t->elems[b]) {
			struct ct_elem *e = t->elems[b];

			t->elems[b] = e->next;
			free(e);
		}
		while (t->flows[b]) {
			struct ct_flowrec *f = t->flows[b];

			t->flows[b] = f->next;
			free(f);
		}
	}
	free(t->pending);
	t->pending = NULL;
}

static struct ct_elem *elem_find(struct ct_track *t, const char *add)
{
	struct ct_elem *e;

	for (e = t->elems[str_bucket(add)]; e; e = e->next)
		if (!strcmp(e->add, add))
			return e;
	return NULL;
}

/* An element nobody needs and nobody waits for is forgotten. */
static void elem_maybe_free(struct ct_track *t, struct ct_elem *e)
{
	struct ct_elem **pp;

	if (e->refs || e->pending || e->installed)
		return;
	for (pp = &t->elems[str_bucket(e->add)]; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

static void elem_install(struct ct_track *t, struct ct_elem *e)
{
	if (e->installed && !t->refresh)
		return;
	if (t->ops.add(t->ops.arg, e->add)) {
		t->stats.add_errors++;
		return;
	}
	t->stats.added++;
	if (!e->installed)
		t->stats.elements++;
	e->installed = true;
}

static void elem_uninstall(struct ct_track *t, struct ct_elem *e)
{
	if (!e->installed)
		return;
	e->installed = false;
	t->stats.elements--;
	if (t->ops.del(t->ops.arg, e->del))
		t->stats.delete_errors++;
	else
		t->stats.deleted++;
}

static struct ct_flowrec **flow_slot(struct ct_track *t, uint32_t id)
{
	struct ct_flowrec **pp;

	for (pp = &t->flows[id_bucket(id)]; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id)
			break;
	return pp;
}

int ct_track_new(struct ct_track *t, uint64_t now_ns, uint32_t id, const char *add_text,
		 const char *del_text)
{
	struct ct_flowrec **slot = flow_slot(t, id), *f;
	struct ct_elem *e;

	if (*slot) {
		t->stats.duplicates++;
		return -EEXIST;
	}
	if (t->stats.flows >= t->max_flows || (t->delay_ns && t->p_len == t->max_flows) ||
	    strlen(add_text) >= CT_ELEM_MAX || strlen(del_text) >= CT_ELEM_MAX) {
		t->stats.full++;
		return -ENOSPC;
	}
	f = calloc(1, sizeof(*f));
	e = elem_find(t, add_text);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !f) {
			free(e);
			free(f);
			return -ENOMEM;
		}
		strcpy(e->add, add_text);
		strcpy(e->del, del_text);
		e->next = t->elems[str_bucket(add_text)];
		t->elems[str_bucket(add_text)] = e;
	} else if (!f) {
		return -ENOMEM;
	}
	f->id = id;
	f->e = e;
	*slot = f;
	e->refs++;
	t->stats.flows++;
	if (!t->delay_ns) {
		elem_install(t, e);
		return 0;
	}
	t->pending[(t->p_head + t->p_len++) % t->max_flows] =
		(struct ct_pending){.due_ns = now_ns + t->delay_ns, .e = e};
	e->pending++;
	return 0;
}

int ct_track_destroy(struct ct_track *t, uint32_t id)
{
	struct ct_flowrec **slot = flow_slot(t, id), *f = *slot;
	struct ct_elem *e;

	if (!f) {
		t->stats.unknown++;
		return -ENOENT;
	}
	*slot = f->next;
	e = f->e;
	free(f);
	t->stats.flows--;
	if (--e->refs == 0)
		elem_uninstall(t, e);
	elem_maybe_free(t, e);
	return 0;
}

uint64_t ct_track_next_deadline(const struct ct_track *t)
{
	return t->p_len ? t->pending[t->p_head].due_ns : UINT64_MAX;
}

void ct_track_run(struct ct_track *t, uint64_t now_ns)
{
	while (t->p_len && t->pending[t->p_head].due_ns <= now_ns) {
		struct ct_elem *e = t->pending[t->p_head].e;

		t->p_head = (t->p_head + 1) % t->max_flows;
		t->p_len--;
		e->pending--;
		/* A flow that ended during its delay never opened anything. */
		if (e->refs)
			elem_install(t, e);
		elem_maybe_free(t, e);
	}
}

void ct_track_remove_all(struct ct_track *t)
{
	size_t b;
	struct ct_elem *e;

	for (b = 0; b < CT_BUCKETS; b++)
		for (e = t->elems[b]; e; e = e->next)
			elem_uninstall(t, e);
}
