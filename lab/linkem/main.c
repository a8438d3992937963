// SPDX-License-Identifier: MIT
/*
 * linkem: a link emulator on NFQUEUE for kernels without netem.  Packets
 * that an nftables rule sends to `queue num N` are dropped with the set loss
 * or let through after delay ± jitter, in order unless --reorder.
 *
 *   linkem --queue N [--delay-ms D] [--jitter-ms J] [--loss PCT] [--reorder]
 *          [--seed S] [--queue-len N] [--log-level L] --control PATH
 *   linkem set --control PATH [--delay-ms D] [--jitter-ms J] [--loss PCT]
 *   linkem stats --control PATH [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "linkem.h"

#define BATCH	      1024
#define MAX_QUEUE_LEN (1u << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage:\n"
		"  linkem --queue N --control PATH [--delay-ms D] [--jitter-ms J] [--loss PCT]\n"
		"         [--reorder] [--seed S] [--queue-len N] [--log-level LEVEL]\n"
		"  linkem set --control PATH [--delay-ms D] [--jitter-ms J] [--loss PCT]\n"
		"  linkem stats --control PATH [--json]\n"
		"\n"
		"Emulates a link on the packets an nftables rule `queue num N` hands over, in\n"
		"the current network namespace, until SIGTERM or SIGINT.  Each packet is dropped\n"
		"with probability PCT/100, otherwise let through D ms ± a uniform J ms after it\n"
		"arrived.  Packets leave in the order they came (a packet waits for the one\n"
		"before it) unless --reorder.  The delay applies once, where the queue rule is:\n"
		"queue one direction and a ping's round trip grows by D.\n"
		"\n"
		"  --queue N        NFQUEUE number, 0-65535\n"
		"  --delay-ms D     delay in ms, up to 3 decimals (default 0)\n"
		"  --jitter-ms J    uniform jitter in ms, D-J..D+J, floored at 0 (default 0)\n"
		"  --loss PCT       loss in percent, up to 4 decimals, 0-100 (default 0)\n"
		"  --reorder        let jitter reorder packets\n"
		"  --seed S         seed of the loss and jitter draws (default: random, logged)\n"
		"  --queue-len N    packets held at most; more are dropped and counted\n"
		"                   (default %u)\n"
		"  --control PATH   UNIX socket (mode 0600) for `set` and `stats`; it exists\n"
		"                   once the queue is bound, and is removed at exit\n"
		"  --log-level L    error, warn, info (default) or debug\n"
		"\n"
		"  set              change a running instance; the new values apply to packets\n"
		"                   that arrive from then on\n"
		"  stats            print counters: seen, accepted, delayed, dropped (loss and\n"
		"                   queue overflow), queued; --json prints one JSON object\n",
		LK_DEFAULT_QUEUE);
}

struct run {
	struct linkem_state st;
	struct evloop *loop;
	struct lq *nfq;
	int tfd;
	uint64_t armed_ns;
	uint32_t now_accept[BATCH], now_drop[BATCH];
	size_t n_accept, n_drop;
};

static void send_verdicts(struct run *r, const uint32_t *ids, size_t n, bool accept, bool in_order)
{
	int err = lq_verdict(r->nfq, ids, n, accept, in_order);

	if (err) {
		r->st.kernel_errors++;
		log_warn("verdicts not sent count=%zu error=%s", n, strerror(-err));
	}
}

static void flush_now(struct run *r)
{
	send_verdicts(r, r->now_accept, r->n_accept, true, false);
	send_verdicts(r, r->now_drop, r->n_drop, false, false);
	r->n_accept = r->n_drop = 0;
}

static void arm_timer(struct run *r)
{
	uint64_t next = lk_sched_next_deadline(&r->st.sched);
	struct itimerspec its = {0};

	if (next == r->armed_ns)
		return;
	if (next != UINT64_MAX) {
		/* Absolute and nanosecond-exact: no rounding to milliseconds. */
		its.it_value.tv_sec = (time_t)(next / NSEC_PER_SEC);
		its.it_value.tv_nsec = (long)(next % NSEC_PER_SEC);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_error("timerfd_settime failed error=%s", strerror(errno));
	r->armed_ns = next;
}

static void release_due(struct run *r)
{
	uint32_t ids[BATCH];
	size_t n;

	while ((n = lk_sched_pop_due(&r->st.sched, clock_mono_ns(), ids, BATCH)) > 0)
		send_verdicts(r, ids, n, true, !r->st.sched.reorder);
	arm_timer(r);
}

static void on_packet(uint32_t id, void *arg)
{
	struct run *r = arg;

	switch (lk_sched_packet(&r->st.sched, clock_mono_ns(), id)) {
	case LK_ACCEPT_NOW:
		r->now_accept[r->n_accept++] = id;
		break;
	case LK_DROP_LOSS:
	case LK_DROP_OVERFLOW:
		r->now_drop[r->n_drop++] = id;
		break;
	case LK_QUEUED:
		break;
	}
	if (r->n_accept == BATCH || r->n_drop == BATCH)
		flush_now(r);
}

static void nfq_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct run *r = arg;
	int err = lq_receive(r->nfq, on_packet, r);

	flush_now(r);
	if (err) {
		r->st.kernel_errors++;
		log_warn("nfqueue read failed error=%s", strerror(-err));
	}
	release_due(r);
}

static void timer_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct run *r = arg;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_warn("timerfd read failed error=%s", strerror(errno));
	r->armed_ns = UINT64_MAX;
	release_due(r);
}

static void signal_cb(struct evloop *loop, int signo, void *arg)
{
	evloop_stop(loop);
}

struct run_opts {
	long queue;
	struct lk_params params;
	bool reorder;
	bool have_seed;
	uint64_t seed;
	uint32_t queue_len;
	const char *control;
};

static int run(const struct run_opts *o)
{
	struct control *ctl = NULL;
	struct run r = {.tfd = -1, .armed_ns = UINT64_MAX};
	uint32_t ids[BATCH];
	size_t n;
	int err;

	/* Timer slack would add up to 50 µs to every release. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	r.st.queue = (uint16_t)o->queue;
	err = lk_sched_init(&r.st.sched, o->queue_len, o->reorder, o->seed);
	if (err) {
		fprintf(stderr, "linkem: out of memory\n");
		return 1;
	}
	lk_sched_set_params(&r.st.sched, &o->params);
	err = evloop_new(&r.loop);
	if (err)
		goto fail_msg;
	r.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r.tfd < 0) {
		err = -errno;
		goto fail_msg;
	}
	err = lq_open(&r.nfq, r.st.queue, o->queue_len + BATCH * 4);
	if (err) {
		fprintf(stderr, "linkem: cannot bind NFQUEUE %u: %s%s\n", r.st.queue,
			strerror(-err),
			/* The kernel says EPERM when another socket has the queue. */
			err == -EPERM ? " (another process holds this queue, or no CAP_NET_ADMIN)"
				      : "");
		goto out;
	}
	err = evloop_add_signal(r.loop, SIGTERM, signal_cb, &r);
	if (!err)
		err = evloop_add_signal(r.loop, SIGINT, signal_cb, &r);
	if (!err)
		err = evloop_add_fd(r.loop, lq_fd(r.nfq), EPOLLIN, nfq_cb, &r);
	if (!err)
		err = evloop_add_fd(r.loop, r.tfd, EPOLLIN, timer_cb, &r);
	if (err)
		goto fail_msg;
	err = control_listen(&ctl, r.loop, o->control, &r.st);
	if (err) {
		fprintf(stderr, "linkem: control socket %s: %s%s\n", o->control, strerror(-err),
			err == -EADDRINUSE ? " (an instance is running there)"
			: err == -EEXIST   ? " (a file that is not a socket is in the way)"
					   : "");
		goto out;
	}
	log_info("linkem ready queue=%u delay_ms=%.3f jitter_ms=%.3f loss_pct=%.4f reorder=%s "
		 "seed=%" PRIu64 " control=%s",
		 r.st.queue, o->params.delay_us / 1000.0, o->params.jitter_us / 1000.0,
		 o->params.loss_ppm / 10000.0, o->reorder ? "yes" : "no", o->seed, o->control);
	err = evloop_run(r.loop);
	if (err)
		goto fail_msg;
	/* Packets in flight when the link is stopped are delivered, not lost. */
	while ((n = lk_sched_pop_all(&r.st.sched, ids, BATCH)) > 0)
		send_verdicts(&r, ids, n, true, !r.st.sched.reorder);
	log_info("linkem stopped seen=%" PRIu64 " accepted=%" PRIu64 " delayed=%" PRIu64
		 " dropped_loss=%" PRIu64 " dropped_overflow=%" PRIu64,
		 r.st.sched.stats.seen, r.st.sched.stats.accepted, r.st.sched.stats.delayed,
		 r.st.sched.stats.dropped_loss, r.st.sched.stats.dropped_overflow);
	goto out;
fail_msg:
	fprintf(stderr, "linkem: %s\n", strerror(-err));
out:
	control_close(ctl);
	lq_close(r.nfq);
	if (r.tfd >= 0)
		close(r.tfd);
	evloop_free(r.loop);
	lk_sched_free(&r.st.sched);
	return err ? 1 : 0;
}

enum {
	OPT_QUEUE = 256,
	OPT_DELAY,
	OPT_JITTER,
	OPT_LOSS,
	OPT_REORDER,
	OPT_SEED,
	OPT_QUEUE_LEN,
	OPT_CONTROL,
	OPT_LOG_LEVEL,
	OPT_JSON,
	OPT_HELP,
};

static const struct option long_opts[] = {
	{"queue", required_argument, NULL, OPT_QUEUE},
	{"delay-ms", required_argument, NULL, OPT_DELAY},
	{"jitter-ms", required_argument, NULL, OPT_JITTER},
	{"loss", required_argument, NULL, OPT_LOSS},
	{"reorder", no_argument, NULL, OPT_REORDER},
	{"seed", required_argument, NULL, OPT_SEED},
	{"queue-len", required_argument, NULL, OPT_QUEUE_LEN},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* Which options each mode takes. */
enum mode { MODE_RUN, MODE_SET, MODE_STATS };

static bool allowed(enum mode m, int opt)
{
	switch (opt) {
	case OPT_CONTROL:
	case OPT_HELP:
		return true;
	case OPT_DELAY:
	case OPT_JITTER:
	case OPT_LOSS:
		return m != MODE_STATS;
	case OPT_JSON:
		return m == MODE_STATS;
	default:
		return m == MODE_RUN;
	}
}

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "linkem: invalid %s '%s': %s\n", opt, val, want);
	return 2;
}

static int print_stats(json_t *ans, bool as_json)
{
	const char *keys[] = {"seen",	      "accepted",	  "delayed", "dropped",
			      "dropped_loss", "dropped_overflow", "queued",  "kernel_errors"};
	size_t i;

	if (as_json) {
		char *s = json_dumps(ans, JSON_COMPACT);

		if (!s)
			return 1;
		puts(s);
		free(s);
		return 0;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		printf("%s: %" JSON_INTEGER_FORMAT "\n", keys[i],
		       json_integer_value(json_object_get(ans, keys[i])));
	printf("delay_ms: %.3f\njitter_ms: %.3f\nloss_pct: %.4f\nreorder: %s\n",
	       json_real_value(json_object_get(ans, "delay_ms")),
	       json_real_value(json_object_get(ans, "jitter_ms")),
	       json_real_value(json_object_get(ans, "loss_pct")),
	       json_is_true(json_object_get(ans, "reorder")) ? "yes" : "no");
	return 0;
}

static int client(enum mode m, const char *control, json_t *req, bool as_json)
{
	json_t *ans = NULL;
	const char *e;
	int rc;

	if (control_request(control, req, &ans))
		return 1;
	e = json_string_value(json_object_get(ans, "error"));
	if (e) {
		fprintf(stderr, "linkem: the instance at %s refused: %s\n", control, e);
		rc = 1;
	} else if (m == MODE_STATS) {
		rc = print_stats(ans, as_json);
	} else {
		printf("delay_ms: %.3f\njitter_ms: %.3f\nloss_pct: %.4f\n",
		       json_real_value(json_object_get(ans, "delay_ms")),
		       json_real_value(json_object_get(ans, "jitter_ms")),
		       json_real_value(json_object_get(ans, "loss_pct")));
		rc = 0;
	}
	json_decref(ans);
	return rc;
}

int main(int argc, char **argv)
{
	struct run_opts o = {.queue = -1, .queue_len = LK_DEFAULT_QUEUE};
	enum mode m = MODE_RUN;
	bool as_json = false;
	json_t *req;
	uint64_t v;
	int opt, rc;

	if (argc > 1 && !strcmp(argv[1], "set"))
		m = MODE_SET;
	else if (argc > 1 && !strcmp(argv[1], "stats"))
		m = MODE_STATS;
	if (m != MODE_RUN) {
		argv++;
		argc--;
	}
	req = json_pack("{s:s}", "cmd", m == MODE_STATS ? "stats" : "set");
	if (!req)
		return 1;
	rc = 0;
	while (!rc && (opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		if (opt == 'h')
			opt = OPT_HELP;
		if (opt == '?') {
			usage(stderr);
			rc = 2;
			break;
		}
		if (!allowed(m, opt)) {
			fprintf(stderr, "linkem: %s does not take %s\n",
				m == MODE_RUN ? "linkem" : argv[0], argv[optind - 1]);
			rc = 2;
			break;
		}
		switch (opt) {
		case OPT_HELP:
			usage(stdout);
			json_decref(req);
			return 0;
		case OPT_QUEUE:
			if (lk_parse_fixed(optarg, 0, 65535, &v))
				rc = bad("--queue", optarg, "a number 0-65535");
			o.queue = (long)v;
			break;
		case OPT_DELAY:
			if (lk_parse_ms(optarg, &o.params.delay_us))
				rc = bad("--delay-ms", optarg, "ms, 0-60000, up to 3 decimals");
			json_object_set_new(req, "delay_us", json_integer(o.params.delay_us));
			break;
		case OPT_JITTER:
			if (lk_parse_ms(optarg, &o.params.jitter_us))
				rc = bad("--jitter-ms", optarg, "ms, 0-60000, up to 3 decimals");
			json_object_set_new(req, "jitter_us", json_integer(o.params.jitter_us));
			break;
		case OPT_LOSS:
			if (lk_parse_percent(optarg, &o.params.loss_ppm))
				rc = bad("--loss", optarg, "percent, 0-100, up to 4 decimals");
			json_object_set_new(req, "loss_ppm", json_integer(o.params.loss_ppm));
			break;
		case OPT_REORDER:
			o.reorder = true;
			break;
		case OPT_SEED:
			if (lk_parse_fixed(optarg, 0, UINT64_MAX, &o.seed))
				rc = bad("--seed", optarg, "a non-negative integer");
			o.have_seed = true;
			break;
		case OPT_QUEUE_LEN:
			if (lk_parse_fixed(optarg, 0, MAX_QUEUE_LEN, &v) || v == 0)
				rc = bad("--queue-len", optarg, "a number 1-1048576");
			o.queue_len = (uint32_t)v;
			break;
		case OPT_CONTROL:
			o.control = optarg;
			break;
		case OPT_LOG_LEVEL: {
			enum log_level l;

			if (log_parse_level(optarg, &l))
				rc = bad("--log-level", optarg, "error, warn, info or debug");
			else
				log_set_level(l);
			break;
		}
		case OPT_JSON:
			as_json = true;
			break;
		}
	}
	if (!rc && optind < argc) {
		fprintf(stderr, "linkem: unexpected argument '%s'\n", argv[optind]);
		rc = 2;
	}
	if (!rc && !o.control) {
		fprintf(stderr, "linkem: --control PATH is required\n");
		rc = 2;
	}
	if (!rc && m == MODE_RUN && o.queue < 0) {
		fprintf(stderr, "linkem: --queue N is required\n");
		rc = 2;
	}
	if (!rc && m == MODE_SET && json_object_size(req) == 1) {
		fprintf(stderr, "linkem: set needs --delay-ms, --jitter-ms or --loss\n");
		rc = 2;
	}
	if (rc) {
		json_decref(req);
		return rc;
	}
	if (m != MODE_RUN) {
		rc = client(m, o.control, req, as_json);
		json_decref(req);
		return rc;
	}
	json_decref(req);
	if (!o.have_seed && getrandom(&o.seed, sizeof(o.seed), 0) != sizeof(o.seed))
		o.seed = clock_wall_ns() ^ (uint64_t)getpid();
	return run(&o);
}
