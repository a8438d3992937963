// SPDX-License-Identifier: MIT
/* The event loop (see evloop.h). */
#include "lib/evloop.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/clock.h"

#define MAX_EVENTS 64

struct fd_entry {
	ev_fd_cb cb;
	void *arg;
	uint32_t generation; /* tells a stale event from a live registration */
	bool used;
};

struct ev_wakeup {
	struct ev_wakeup *next;
	int fd;
	ev_wakeup_cb cb;
	void *arg;
};

struct ev_signal {
	struct ev_signal *next;
	int fd;
	int signo;
	ev_signal_cb cb;
	void *arg;
};

struct evloop {
	int epfd;
	int stop_fd;
	_Atomic bool stopped;
	struct fd_entry *fds;
	size_t n_fds;
	struct ev_timer **heap;
	size_t heap_len, heap_cap;
	struct ev_wakeup *wakeups;
	struct ev_signal *signals;
};

/* --- timers: a binary min-heap on deadline ------------------------------- */

static void heap_swap(struct evloop *l, size_t a, size_t b)
{
	struct ev_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_index = a;
	l->heap[b]->heap_index = b;
}

static void heap_up(struct evloop *l, size_t i)
{
	while (i && l->heap[(i - 1) / 2]->deadline_ns > l->heap[i]->deadline_ns) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct evloop *l, size_t i)
{
	for (;;) {
		size_t left = 2 * i + 1, right = left + 1, min = i;
		if (left < l->heap_len && l->heap[left]->deadline_ns < l->heap[min]->deadline_ns)
			min = left;
		if (right < l->heap_len && l->heap[right]->deadline_ns < l->heap[min]->deadline_ns)
			min = right;
		if (min == i)
			return;
		heap_swap(l, i, min);
		i = min;
	}
}

void ev_timer_init(struct ev_timer *timer, ev_timer_cb cb, void *arg)
{
	timer->deadline_ns = 0;
	timer->cb = cb;
	timer->arg = arg;
	timer->heap_index = SIZE_MAX;
}

bool ev_timer_armed(const struct ev_timer *timer)
{
	return timer->heap_index != SIZE_MAX;
}

void evloop_timer_cancel(struct evloop *l, struct ev_timer *timer)
{
	size_t i = timer->heap_index;

	if (i == SIZE_MAX)
		return;
	timer->heap_index = SIZE_MAX;
	if (i == --l->heap_len)
		return;
	l->heap[i] = l->heap[l->heap_len];
	l->heap[i]->heap_index = i;
	heap_up(l, i);
	heap_down(l, l->heap[i]->heap_index);
}

void evloop_timer_arm(struct evloop *l, struct ev_timer *timer, uint64_t deadline_ns)
{
	evloop_timer_cancel(l, timer);
	if (l->heap_len == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
		struct ev_timer **heap = realloc(l->heap, cap * sizeof(*heap));
		if (!heap)
			abort(); /* a timer that silently never fires is worse */
		l->heap = heap;
		l->heap_cap = cap;
	}
	timer->deadline_ns = deadline_ns;
	timer->heap_index = l->heap_len;
	l->heap[l->heap_len++] = timer;
	heap_up(l, timer->heap_index);
}

/*
 * At most as many callbacks as timers were armed on entry: a timer re-armed
 * into the past from its own callback waits for the next pass, after fds.
 */
static void run_timers(struct evloop *l)
{
	uint64_t now = clock_mono_ns();
	size_t budget = l->heap_len;

	while (budget-- && l->heap_len && l->heap[0]->deadline_ns <= now) {
		struct ev_timer *t = l->heap[0];
		evloop_timer_cancel(l, t);
		t->cb(l, t, t->arg);
	}
}

static int next_timeout_ms(struct evloop *l)
{
	uint64_t now, wait;

	if (!l->heap_len)
		return -1;
	now = clock_mono_ns();
	if (l->heap[0]->deadline_ns <= now)
		return 0;
	/* Rounded up, so a timer never fires early. */
	wait = (l->heap[0]->deadline_ns - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC;
	return wait > 60000 ? 60000 : (int)wait;
}

/* --- file descriptors ---------------------------------------------------- */

/* The table, indexed by fd, grows by doubling but never past RLIMIT_NOFILE. */
static int fd_table_grow(struct evloop *l, int fd)
{
	size_t n = l->n_fds ? l->n_fds : 64;
	struct fd_entry *fds;
	struct rlimit rl;

	while (n <= (size_t)fd)
		n *= 2;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY && n > rl.rlim_cur)
		n = rl.rlim_cur > (rlim_t)fd ? (size_t)rl.rlim_cur : (size_t)fd + 1;
	fds = realloc(l->fds, n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	memset(fds + l->n_fds, 0, (n - l->n_fds) * sizeof(*fds));
	l->fds = fds;
	l->n_fds = n;
	return 0;
}

int evloop_add_fd(struct evloop *l, int fd, uint32_t events, ev_fd_cb cb, void *arg)
{
	struct epoll_event ev = {.events = events};
	int ret;

	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->n_fds && (ret = fd_table_grow(l, fd)) < 0)
		return ret;
	if (l->fds[fd].used)
		return -EEXIST;
	l->fds[fd].generation++;
	ev.data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)l->fds[fd].generation << 32;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->fds[fd].cb = cb;
	l->fds[fd].arg = arg;
	l->fds[fd].used = true;
	return 0;
}

int evloop_mod_fd(struct evloop *l, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	if (fd < 0 || (size_t)fd >= l->n_fds || !l->fds[fd].used)
		return -ENOENT;
	ev.data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)l->fds[fd].generation << 32;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_del_fd(struct evloop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->n_fds || !l->fds[fd].used)
		return -ENOENT;
	l->fds[fd].used = false;
	l->fds[fd].generation++; /* events already fetched for it go stale */
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

/* --- wake-ups, signals, stop -------------------------------------------- */

static void drain_eventfd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
}

static void on_wakeup_fd(struct evloop *l, int fd, uint32_t events, void *arg)
{
	struct ev_wakeup *w = arg;

	drain_eventfd(fd);
	w->cb(l, w->arg);
}

int evloop_add_wakeup(struct evloop *l, ev_wakeup_cb cb, void *arg, struct ev_wakeup **out)
{
	struct ev_wakeup *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->fd < 0) {
		ret = -errno;
		free(w);
		return ret;
	}
	w->cb = cb;
	w->arg = arg;
	if ((ret = evloop_add_fd(l, w->fd, EPOLLIN, on_wakeup_fd, w)) < 0) {
		close(w->fd);
		free(w);
		return ret;
	}
	w->next = l->wakeups;
	l->wakeups = w;
	*out = w;
	return 0;
}

void ev_wakeup_signal(struct ev_wakeup *w)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
	if (write(w->fd, &one, sizeof(one)) < 0)
		return;
}

static void on_signal_fd(struct evloop *l, int fd, uint32_t events, void *arg)
{
	struct ev_signal *s = arg;
	struct signalfd_siginfo info;

	while (read(fd, &info, sizeof(info)) == sizeof(info))
		s->cb(l, s->signo, s->arg);
}

int evloop_add_signal(struct evloop *l, int signo, ev_signal_cb cb, void *arg)
{
	struct ev_signal *s = calloc(1, sizeof(*s));
	sigset_t mask;
	int ret;

	if (!s)
		return -ENOMEM;
	sigemptyset(&mask);
	/* Threads started later inherit the mask, so call this before them. */
	if (sigaddset(&mask, signo) < 0 || pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
		free(s);
		return -EINVAL;
	}
	s->fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->fd < 0) {
		ret = -errno;
		free(s);
		return ret;
	}
	s->signo = signo;
	s->cb = cb;
	s->arg = arg;
	if ((ret = evloop_add_fd(l, s->fd, EPOLLIN, on_signal_fd, s)) < 0) {
		close(s->fd);
		free(s);
		return ret;
	}
	s->next = l->signals;
	l->signals = s;
	return 0;
}

static void on_stop_fd(struct evloop *l, int fd, uint32_t events, void *arg)
{
	drain_eventfd(fd);
}

void evloop_stop(struct evloop *l)
{
	uint64_t one = 1;

	atomic_store(&l->stopped, true);
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		return;
}

int evloop_new(struct evloop **out)
{
	struct evloop *l = calloc(1, sizeof(*l));
	int ret;

	if (!l)
		return -ENOMEM;
	l->stop_fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto fail_errno;
	l->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->stop_fd < 0)
		goto fail_errno;
	if ((ret = evloop_add_fd(l, l->stop_fd, EPOLLIN, on_stop_fd, NULL)) < 0)
		goto fail;
	*out = l;
	return 0;
fail_errno:
	ret = -errno;
fail:
	evloop_free(l);
	return ret;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	while (l->wakeups) {
		struct ev_wakeup *w = l->wakeups;
		l->wakeups = w->next;
		close(w->fd);
		free(w);
	}
	while (l->signals) {
		struct ev_signal *s = l->signals;
		l->signals = s->next;
		close(s->fd);
		free(s);
	}
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->fds);
	free(l->heap);
	free(l);
}

/*
 * A stop requested before the loop runs is honoured: run() returns at once.
 * Leaving consumes it, so a later run() needs a new stop.
 */
int evloop_run(struct evloop *l)
{
	struct epoll_event events[MAX_EVENTS];
	int ret = 0;

	while (!atomic_load(&l->stopped)) {
		int n = epoll_wait(l->epfd, events, MAX_EVENTS, next_timeout_ms(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = (int)(uint32_t)events[i].data.u64;
			uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
			struct fd_entry *e;
			if ((size_t)fd >= l->n_fds)
				continue;
			e = &l->fds[fd];
			if (!e->used || e->generation != gen)
				continue; /* removed by an earlier callback */
			e->cb(l, fd, events[i].events, e->arg);
		}
		run_timers(l);
	}
	atomic_store(&l->stopped, false);
	drain_eventfd(l->stop_fd);
	return ret;
}
