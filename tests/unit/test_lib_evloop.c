// SPDX-License-Identifier: MIT
/* src/lib/evloop.c: timers, fds, wake-ups, signals and stopping. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/evloop.h"

#define MS NSEC_PER_MSEC

static struct evloop *new_loop(void)
{
	struct evloop *loop = NULL;

	assert_int_equal(evloop_new(&loop), 0);
	assert_non_null(loop);
	return loop;
}

/* A safety net: no test may hang the suite. */
static void on_watchdog(struct evloop *loop, struct ev_timer *t, void *arg)
{
	*(bool *)arg = true;
	evloop_stop(loop);
}

struct fired {
	int ids[64];
	uint64_t late_ns[64];
	int n;
	int stop_after;
	bool early; /* a callback ran before its deadline */
};

struct rec_timer {
	struct ev_timer t;
	struct fired *f;
	int id;
};

static void record(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rec_timer *r = arg;
	uint64_t now = clock_mono_ns();

	assert_false(ev_timer_armed(t)); /* disarmed before its callback */
	if (now < t->deadline_ns)
		r->f->early = true;
	r->f->late_ns[r->f->n] = now - t->deadline_ns;
	r->f->ids[r->f->n++] = r->id;
	if (r->f->n == r->f->stop_after)
		evloop_stop(loop);
}

static void test_timers_fire_in_order(void **state)
{
	static const int delays_ms[] = {30, 5, 25, 1, 15, 20, 10};
	struct evloop *loop = new_loop();
	struct rec_timer r[7];
	struct fired f = {.stop_after = 7};
	uint64_t start = clock_mono_ns();

	for (int i = 0; i < 7; i++) {
		r[i].f = &f;
		r[i].id = delays_ms[i];
		ev_timer_init(&r[i].t, record, &r[i]);
		assert_false(ev_timer_armed(&r[i].t));
		evloop_timer_arm(loop, &r[i].t, start + (uint64_t)delays_ms[i] * MS + 300000);
		assert_true(ev_timer_armed(&r[i].t));
	}
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(f.n, 7);
	for (int i = 1; i < 7; i++)
		assert_true(f.ids[i - 1] < f.ids[i]);
	/* Deadlines are not whole milliseconds; rounding must still not fire early. */
	assert_false(f.early);
	assert_true(clock_mono_ns() - start >= 30 * MS);
	evloop_free(loop);
}

static void test_timer_cancel(void **state)
{
	struct evloop *loop = new_loop();
	struct rec_timer a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
	struct fired f = {.stop_after = 2};
	uint64_t now = clock_mono_ns();

	a.f = b.f = c.f = &f;
	ev_timer_init(&a.t, record, &a);
	ev_timer_init(&b.t, record, &b);
	ev_timer_init(&c.t, record, &c);
	evloop_timer_cancel(loop, &a.t); /* not armed: a no-op */
	evloop_timer_arm(loop, &a.t, now + 2 * MS);
	evloop_timer_arm(loop, &b.t, now + 4 * MS);
	evloop_timer_arm(loop, &c.t, now + 6 * MS);
	evloop_timer_cancel(loop, &b.t);
	assert_false(ev_timer_armed(&b.t));
	evloop_timer_cancel(loop, &b.t);
	assert_true(ev_timer_armed(&a.t));
	assert_true(ev_timer_armed(&c.t));
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.ids[0], 1);
	assert_int_equal(f.ids[1], 3);
	evloop_free(loop);
}

static void test_timer_rearm_moves_it(void **state)
{
	struct evloop *loop = new_loop();
	struct rec_timer a = {.id = 1}, b = {.id = 2};
	struct fired f = {.stop_after = 2};
	uint64_t now = clock_mono_ns();

	a.f = b.f = &f;
	ev_timer_init(&a.t, record, &a);
	ev_timer_init(&b.t, record, &b);
	evloop_timer_arm(loop, &a.t, now + 2 * MS);
	evloop_timer_arm(loop, &b.t, now + 10 * MS);
	/* Re-arming an armed timer moves it; it fires once, at the new time. */
	evloop_timer_arm(loop, &a.t, now + 20 * MS);
	evloop_timer_arm(loop, &b.t, now + 5 * MS);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.ids[0], 2);
	assert_int_equal(f.ids[1], 1);
	assert_true(clock_mono_ns() - now >= 20 * MS);
	evloop_free(loop);
}

struct rearm_test {
	struct ev_timer self, other, victim;
	int self_runs, other_runs, victim_runs;
};

/* Re-arms itself, arms another timer and cancels a third one that is due. */
static void on_self(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rearm_test *rt = arg;

	evloop_timer_cancel(loop, &rt->victim);
	if (++rt->self_runs < 5)
		evloop_timer_arm(loop, t, clock_mono_ns() + MS);
	else
		evloop_timer_arm(loop, &rt->other, clock_mono_ns() + MS);
}

static void on_other(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rearm_test *rt = arg;

	rt->other_runs++;
	evloop_stop(loop);
}

static void on_victim(struct evloop *loop, struct ev_timer *t, void *arg)
{
	((struct rearm_test *)arg)->victim_runs++;
}

static void test_timer_rearm_from_callback(void **state)
{
	struct evloop *loop = new_loop();
	struct rearm_test rt = {0};
	uint64_t now = clock_mono_ns();

	ev_timer_init(&rt.self, on_self, &rt);
	ev_timer_init(&rt.other, on_other, &rt);
	ev_timer_init(&rt.victim, on_victim, &rt);
	/* Both due in the same pass; self runs first and cancels the victim. */
	evloop_timer_arm(loop, &rt.self, now - 2);
	evloop_timer_arm(loop, &rt.victim, now - 1);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(rt.self_runs, 5);
	assert_int_equal(rt.other_runs, 1);
	assert_int_equal(rt.victim_runs, 0);
	assert_false(ev_timer_armed(&rt.self));
	assert_false(ev_timer_armed(&rt.victim));
	evloop_free(loop);
}

#define N_HEAP 500

struct heap_test {
	struct ev_timer t[N_HEAP];
	bool cancelled[N_HEAP];
	int fired[N_HEAP];
	uint64_t last_deadline;
	int n_fired, disorder;
};

static void on_heap_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct heap_test *h = arg;

	if (t->deadline_ns < h->last_deadline)
		h->disorder++;
	h->last_deadline = t->deadline_ns;
	h->fired[t - h->t]++;
	h->n_fired++;
}

/* Random arms, re-arms and cancels: the heap still yields deadline order. */
static void test_timer_heap_stress(void **state)
{
	struct evloop *loop = new_loop();
	struct heap_test *h = calloc(1, sizeof(*h));
	struct ev_timer stop;
	bool watchdog = false;
	uint64_t now = clock_mono_ns();
	int expect = N_HEAP;

	assert_non_null(h);
	srand(7);
	for (int i = 0; i < N_HEAP; i++) {
		ev_timer_init(&h->t[i], on_heap_timer, h);
		evloop_timer_arm(loop, &h->t[i], now - 1000000 + (uint64_t)(rand() % 1000) * 1000);
	}
	for (int round = 0; round < 3000; round++) {
		int i = rand() % N_HEAP;
		if (rand() % 3 == 0) {
			if (!h->cancelled[i])
				expect--;
			h->cancelled[i] = true;
			evloop_timer_cancel(loop, &h->t[i]);
		} else {
			if (h->cancelled[i])
				expect++;
			h->cancelled[i] = false;
			evloop_timer_arm(loop, &h->t[i],
					 now - 1000000 + (uint64_t)(rand() % 1000) * 1000);
		}
	}
	ev_timer_init(&stop, on_watchdog, &watchdog);
	evloop_timer_arm(loop, &stop, now + 5 * MS);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(h->n_fired, expect);
	assert_int_equal(h->disorder, 0);
	for (int i = 0; i < N_HEAP; i++) {
		assert_int_equal(h->fired[i], h->cancelled[i] ? 0 : 1);
		assert_false(ev_timer_armed(&h->t[i]));
	}
	free(h);
	evloop_free(loop);
}

struct starve_test {
	struct ev_timer t;
	int pipe[2];
	long timer_runs;
	bool fd_ran;
};

static void on_busy_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct starve_test *st = arg;

	/* The fd becomes ready only once the timer already spins. */
	if (!st->timer_runs)
		assert_int_equal(write(st->pipe[1], "x", 1), 1);
	/* Always due again; capped so a broken loop fails instead of hanging. */
	if (++st->timer_runs < 1000000 && !st->fd_ran)
		evloop_timer_arm(loop, t, 0);
}

static void on_starved_fd(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct starve_test *st = arg;

	st->fd_ran = true;
	evloop_stop(loop);
}

/* A timer that keeps re-arming itself into the past must not starve fds. */
static void test_timer_cannot_starve_fds(void **state)
{
	struct evloop *loop = new_loop();
	struct starve_test st = {0};

	assert_int_equal(pipe(st.pipe), 0);
	ev_timer_init(&st.t, on_busy_timer, &st);
	evloop_timer_arm(loop, &st.t, 0);
	assert_int_equal(evloop_add_fd(loop, st.pipe[0], EPOLLIN, on_starved_fd, &st), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_true(st.fd_ran);
	assert_true(st.timer_runs < 1000);
	evloop_del_fd(loop, st.pipe[0]);
	close(st.pipe[0]);
	close(st.pipe[1]);
	evloop_free(loop);
}

struct pipe_test {
	int p[2];
	int reads, writes;
	char got[8];
	uint32_t last_events;
};

static void on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct pipe_test *pt = arg;
	ssize_t n;

	pt->last_events = events;
	n = read(fd, pt->got, sizeof(pt->got) - 1);
	assert_true(n > 0);
	pt->got[n] = '\0';
	pt->reads++;
	evloop_stop(loop);
}

static void on_writable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct pipe_test *pt = arg;

	assert_true(events & EPOLLOUT);
	pt->writes++;
	assert_int_equal(write(fd, "hi", 2), 2);
	/* Readiness stays until we stop asking: switch interest off. */
	assert_int_equal(evloop_mod_fd(loop, fd, 0), 0);
}

static void test_fd_readiness(void **state)
{
	struct evloop *loop = new_loop();
	struct pipe_test pt = {0};

	assert_int_equal(pipe2(pt.p, O_NONBLOCK), 0);
	assert_int_equal(evloop_add_fd(loop, pt.p[0], EPOLLIN, on_readable, &pt), 0);
	assert_int_equal(evloop_add_fd(loop, pt.p[1], 0, on_writable, &pt), 0);
	assert_int_equal(evloop_add_fd(loop, pt.p[0], EPOLLIN, on_readable, &pt), -EEXIST);
	/* Ask for writability: the write end's callback writes, the read end reads. */
	assert_int_equal(evloop_mod_fd(loop, pt.p[1], EPOLLOUT), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(pt.writes, 1);
	assert_int_equal(pt.reads, 1);
	assert_true(pt.last_events & EPOLLIN);
	assert_string_equal(pt.got, "hi");

	/* A deleted fd gets no callbacks, even when readable. */
	assert_int_equal(evloop_del_fd(loop, pt.p[0]), 0);
	assert_int_equal(write(pt.p[1], "x", 1), 1);
	{
		struct ev_timer wd;
		bool fired = false;
		ev_timer_init(&wd, on_watchdog, &fired);
		evloop_timer_arm(loop, &wd, clock_mono_ns() + 20 * MS);
		assert_int_equal(evloop_run(loop), 0);
		assert_true(fired);
	}
	assert_int_equal(pt.reads, 1);
	/* And can be added again. */
	assert_int_equal(evloop_add_fd(loop, pt.p[0], EPOLLIN, on_readable, &pt), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(pt.reads, 2);
	assert_string_equal(pt.got, "x");
	close(pt.p[0]);
	close(pt.p[1]);
	evloop_free(loop);
}

static void never_called(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	fail_msg("callback for fd %d", fd);
}

static void test_fd_errors_and_big_fds(void **state)
{
	struct evloop *loop = new_loop();
	int p[2], big;

	assert_int_equal(evloop_add_fd(loop, -1, EPOLLIN, never_called, NULL), -EBADF);
	assert_int_equal(evloop_mod_fd(loop, -1, EPOLLIN), -ENOENT);
	assert_int_equal(evloop_del_fd(loop, -1), -ENOENT);
	assert_int_equal(evloop_mod_fd(loop, 100000, EPOLLIN), -ENOENT);
	assert_int_equal(evloop_del_fd(loop, 100000), -ENOENT);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(evloop_del_fd(loop, p[0]), -ENOENT);
	/* A regular file cannot be polled: the error comes back, no entry remains. */
	{
		int fd = open("/proc/self/exe", O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(evloop_add_fd(loop, fd, EPOLLIN, never_called, NULL), -EPERM);
		assert_int_equal(evloop_del_fd(loop, fd), -ENOENT);
		close(fd);
	}
	/* The table grows to a high fd number. */
	big = fcntl(p[0], F_DUPFD_CLOEXEC, 900);
	assert_true(big >= 900);
	assert_int_equal(evloop_add_fd(loop, big, EPOLLIN, never_called, NULL), 0);
	assert_int_equal(evloop_mod_fd(loop, big, EPOLLIN | EPOLLET), 0);
	assert_int_equal(evloop_del_fd(loop, big), 0);
	assert_int_equal(evloop_del_fd(loop, big), -ENOENT);
	close(big);
	close(p[0]);
	close(p[1]);
	evloop_free(loop);
}

struct batch_test {
	int a[2], b[2];
	int a_calls, b_calls, new_calls;
};

static void on_new_fd(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	((struct batch_test *)arg)->new_calls++;
}

static void on_batch_b(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	((struct batch_test *)arg)->b_calls++;
}

/*
 * Deletes b, closes it and registers a fresh pipe under b's number: b's event,
 * already fetched in this batch, must reach neither b nor the newcomer.
 */
static void on_batch_a(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct batch_test *bt = arg;
	char c;
	int np[2];

	bt->a_calls++;
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(evloop_del_fd(loop, bt->b[0]), 0);
	assert_int_equal(pipe(np), 0);
	/* dup2 closes the old read end and reuses its number. */
	assert_int_equal(dup2(np[0], bt->b[0]), bt->b[0]);
	close(np[0]);
	close(bt->b[1]);
	bt->b[1] = np[1]; /* empty: the new read end is not readable */
	assert_int_equal(evloop_add_fd(loop, bt->b[0], EPOLLIN, on_new_fd, bt), 0);
}

static void test_fd_deleted_in_same_batch(void **state)
{
	struct evloop *loop = new_loop();
	struct batch_test bt = {0};
	struct ev_timer wd;
	bool fired = false;

	assert_int_equal(pipe(bt.a), 0);
	assert_int_equal(pipe(bt.b), 0);
	assert_int_equal(write(bt.a[1], "x", 1), 1);
	assert_int_equal(write(bt.b[1], "x", 1), 1);
	/* Both ready when added, so epoll reports them in one batch, a first. */
	assert_int_equal(evloop_add_fd(loop, bt.a[0], EPOLLIN, on_batch_a, &bt), 0);
	assert_int_equal(evloop_add_fd(loop, bt.b[0], EPOLLIN, on_batch_b, &bt), 0);
	ev_timer_init(&wd, on_watchdog, &fired);
	evloop_timer_arm(loop, &wd, clock_mono_ns() + 30 * MS);
	assert_int_equal(evloop_run(loop), 0);
	assert_true(fired);
	assert_int_equal(bt.a_calls, 1);
	assert_int_equal(bt.b_calls, 0);
	assert_int_equal(bt.new_calls, 0);
	close(bt.a[0]);
	close(bt.a[1]);
	close(bt.b[0]);
	close(bt.b[1]);
	evloop_free(loop);
}

struct mutual_test {
	int p[2][2];
	int calls[2];
};

/* Each pipe's callback deletes the other: in one batch only one may run. */
static void on_mutual(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct mutual_test *t = arg;
	int which = fd == t->p[0][0] ? 0 : 1;

	t->calls[which]++;
	assert_int_equal(evloop_del_fd(loop, t->p[!which][0]), 0);
	assert_int_equal(evloop_del_fd(loop, fd), 0);
	evloop_stop(loop);
}

static void test_fd_mutual_delete(void **state)
{
	struct evloop *loop = new_loop();
	struct mutual_test t = {0};

	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(t.p[i]), 0);
		assert_int_equal(write(t.p[i][1], "x", 1), 1);
		assert_int_equal(evloop_add_fd(loop, t.p[i][0], EPOLLIN, on_mutual, &t), 0);
	}
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(t.calls[0] + t.calls[1], 1);
	for (int i = 0; i < 2; i++) {
		close(t.p[i][0]);
		close(t.p[i][1]);
	}
	evloop_free(loop);
}

struct wake_test {
	struct ev_wakeup *w;
	int calls;
	int signals_per_thread;
};

static void on_wake(struct evloop *loop, void *arg)
{
	struct wake_test *wt = arg;

	wt->calls++;
	evloop_stop(loop);
}

static void *signal_later(void *arg)
{
	struct wake_test *wt = arg;

	usleep(20000);
	for (int i = 0; i < wt->signals_per_thread; i++)
		ev_wakeup_signal(wt->w);
	return NULL;
}

static void test_wakeup_from_thread(void **state)
{
	struct evloop *loop = new_loop();
	struct wake_test wt = {.signals_per_thread = 1000};
	pthread_t threads[4];
	uint64_t start = clock_mono_ns();

	assert_int_equal(evloop_add_wakeup(loop, on_wake, &wt, &wt.w), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, signal_later, &wt), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_true(clock_mono_ns() - start >= 15 * MS); /* it waited for the signal */
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	assert_true(wt.calls >= 1);
	evloop_free(loop);
}

static void test_wakeup_coalesces(void **state)
{
	struct evloop *loop = new_loop();
	struct wake_test wt = {0}, other = {0};
	struct ev_wakeup *w2;

	assert_int_equal(evloop_add_wakeup(loop, on_wake, &wt, &wt.w), 0);
	assert_int_equal(evloop_add_wakeup(loop, on_wake, &other, &w2), 0);
	for (int i = 0; i < 100; i++)
		ev_wakeup_signal(wt.w);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(wt.calls, 1);
	assert_int_equal(other.calls, 0);
	/* Drained: a second run waits for a new signal (here the other one). */
	ev_wakeup_signal(w2);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(wt.calls, 1);
	assert_int_equal(other.calls, 1);
	evloop_free(loop); /* frees both wake-ups */
}

static void *stop_later(void *arg)
{
	usleep(20000);
	evloop_stop(arg);
	return NULL;
}

static void test_stop_from_thread(void **state)
{
	struct evloop *loop = new_loop();
	struct ev_timer wd;
	bool watchdog = false;
	pthread_t thread;
	uint64_t start = clock_mono_ns();

	ev_timer_init(&wd, on_watchdog, &watchdog);
	evloop_timer_arm(loop, &wd, start + 5000 * MS);
	assert_int_equal(pthread_create(&thread, NULL, stop_later, loop), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_false(watchdog);
	assert_true(clock_mono_ns() - start >= 15 * MS);
	pthread_join(thread, NULL);
	evloop_free(loop);
}

static void test_stop_before_run(void **state)
{
	struct evloop *loop = new_loop();
	struct ev_timer wd;
	bool watchdog = false;

	ev_timer_init(&wd, on_watchdog, &watchdog);
	evloop_timer_arm(loop, &wd, clock_mono_ns() + 5000 * MS);
	evloop_stop(loop);
	assert_int_equal(evloop_run(loop), 0);
	assert_false(watchdog);
	/* The stop was used up: the next run lasts until the next stop. */
	evloop_timer_arm(loop, &wd, clock_mono_ns() + 10 * MS);
	assert_int_equal(evloop_run(loop), 0);
	assert_true(watchdog);
	evloop_free(loop);
}

static int got_signo, signal_calls;

static void on_sig(struct evloop *loop, int signo, void *arg)
{
	got_signo = signo;
	signal_calls++;
	evloop_stop(loop);
}

static void test_signal(void **state)
{
	struct evloop *loop = new_loop();
	struct ev_timer wd;
	bool watchdog = false;
	sigset_t blocked;

	assert_int_equal(evloop_add_signal(loop, 0, on_sig, NULL), -EINVAL);
	assert_int_equal(evloop_add_signal(loop, 1000, on_sig, NULL), -EINVAL);
	assert_int_equal(evloop_add_signal(loop, SIGUSR2, on_sig, NULL), 0);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &blocked), 0);
	assert_true(sigismember(&blocked, SIGUSR2));
	ev_timer_init(&wd, on_watchdog, &watchdog);
	evloop_timer_arm(loop, &wd, clock_mono_ns() + 5000 * MS);
	/* Blocked, so it waits for the signalfd instead of killing us. */
	assert_int_equal(raise(SIGUSR2), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_false(watchdog);
	assert_int_equal(got_signo, SIGUSR2);
	assert_int_equal(signal_calls, 1);
	evloop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_order),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_rearm_moves_it),
		cmocka_unit_test(test_timer_rearm_from_callback),
		cmocka_unit_test(test_timer_heap_stress),
		cmocka_unit_test(test_timer_cannot_starve_fds),
		cmocka_unit_test(test_fd_readiness),
		cmocka_unit_test(test_fd_errors_and_big_fds),
		cmocka_unit_test(test_fd_deleted_in_same_batch),
		cmocka_unit_test(test_fd_mutual_delete),
		cmocka_unit_test(test_wakeup_from_thread),
		cmocka_unit_test(test_wakeup_coalesces),
		cmocka_unit_test(test_stop_from_thread),
		cmocka_unit_test(test_stop_before_run),
		cmocka_unit_test(test_signal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
