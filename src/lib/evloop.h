/* SPDX-License-Identifier: MIT */
/*
 * A small single-threaded epoll event loop: file descriptors, one-shot
 * timers on a min-heap, signals (signalfd) and cross-thread wake-ups
 * (eventfd).  Everything but the data path runs on one loop.
 *
 * Only ev_wakeup_signal() and evloop_stop() may be called from other threads.
 */
#ifndef KNIT_LIB_EVLOOP_H
#define KNIT_LIB_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct ev_timer;
struct ev_wakeup;

typedef void (*ev_fd_cb)(struct evloop *loop, int fd, uint32_t events, void *arg);
typedef void (*ev_timer_cb)(struct evloop *loop, struct ev_timer *timer, void *arg);
typedef void (*ev_wakeup_cb)(struct evloop *loop, void *arg);
typedef void (*ev_signal_cb)(struct evloop *loop, int signo, void *arg);

/* Embedded in its owner; initialise once with ev_timer_init(). */
struct ev_timer {
	uint64_t deadline_ns; /* clock_mono_ns() time */
	ev_timer_cb cb;
	void *arg;
	size_t heap_index; /* SIZE_MAX when not armed */
};

int evloop_new(struct evloop **out);
void evloop_free(struct evloop *loop);

/* events: EPOLLIN / EPOLLOUT / ...; returns 0 or -errno. */
int evloop_add_fd(struct evloop *loop, int fd, uint32_t events, ev_fd_cb cb, void *arg);
int evloop_mod_fd(struct evloop *loop, int fd, uint32_t events);
int evloop_del_fd(struct evloop *loop, int fd);

void ev_timer_init(struct ev_timer *timer, ev_timer_cb cb, void *arg);
/* (Re)arms the timer to fire once at deadline_ns. */
void evloop_timer_arm(struct evloop *loop, struct ev_timer *timer, uint64_t deadline_ns);
void evloop_timer_cancel(struct evloop *loop, struct ev_timer *timer);
bool ev_timer_armed(const struct ev_timer *timer);

/* A wake-up another thread can signal; the callback runs on the loop. */
int evloop_add_wakeup(struct evloop *loop, ev_wakeup_cb cb, void *arg, struct ev_wakeup **out);
void ev_wakeup_signal(struct ev_wakeup *w);

/* Blocks signo for the process and delivers it on the loop. */
int evloop_add_signal(struct evloop *loop, int signo, ev_signal_cb cb, void *arg);

/* Runs until evloop_stop(); returns 0 or -errno on a fatal epoll error. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);

#endif
