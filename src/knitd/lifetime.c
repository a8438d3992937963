// SPDX-License-Identifier: MIT
#include "knitd/lifetime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "netcheck/probe.h"
#include "stun/stun.h"

#define MS	    1000000ULL
#define WARM_GAP_MS 2500 /* conntrack's stream timeout starts after 2 s */
#define RETRY_MS    500	 /* a request unanswered this long is sent again */
#define TRIES	    3	 /* a lost datagram must not read as an expiry */

static const unsigned default_ladder[] = {2000, 5000, 10000, 20000, 40000, 80000, 120000};

enum phase { IDLE, WARM1, WARM2, SILENT, ASK, DONE };
enum { X, Y };

struct lifetime {
	struct evloop *loop;
	const struct lifetime_ops *ops;
	void *arg;
	unsigned ladder[LIFETIME_MAX_STEPS], n;
	union sockaddr_inet stun;
	int fd[2];	      /* [X] the measured mapping, [Y] the asker */
	uint16_t mapped_port; /* X's port as the server saw it */
	enum phase phase;
	unsigned step, tries;
	uint8_t txid[STUN_TXID_LEN];
	struct ev_timer timer;
	struct lifetime_result res;
};

static void close_socks(struct lifetime *lt)
{
	for (int i = X; i <= Y; i++) {
		if (lt->fd[i] >= 0) {
			evloop_del_fd(lt->loop, lt->fd[i]);
			close(lt->fd[i]);
		}
		lt->fd[i] = -1;
	}
}

static void finish(struct lifetime *lt, const char *why)
{
	lt->phase = DONE;
	evloop_timer_cancel(lt->loop, &lt->timer);
	close_socks(lt);
	lt->res.valid = !why;
	if (why)
		snprintf(lt->res.why, sizeof(lt->res.why), "%s", why);
	lt->ops->done(lt->arg, &lt->res);
}

static void send_request(struct lifetime *lt)
{
	uint8_t msg[STUN_BUF_LEN];
	bool ask = lt->phase == ASK;
	int n;

	if (lt->tries++ == 0)
		stun_txid_new(lt->txid);
	n = ask ? stun_build_binding_request_rport(msg, sizeof(msg), lt->txid, lt->mapped_port)
		: stun_build_binding_request(msg, sizeof(msg), lt->txid, 0);
	if (n > 0)
		sendto(lt->fd[ask ? Y : X], msg, (size_t)n, MSG_DONTWAIT, &lt->stun.sa,
		       endpoint_len(&lt->stun));
	evloop_timer_arm(lt->loop, &lt->timer, clock_mono_ns() + RETRY_MS * MS);
}

static void enter(struct lifetime *lt, enum phase ph, uint64_t after_ms)
{
	lt->phase = ph;
	lt->tries = 0;
	if (after_ms)
		evloop_timer_arm(lt->loop, &lt->timer, clock_mono_ns() + after_ms * MS);
	else
		send_request(lt);
}

/* The mapping answered after a silence of ladder[step]: try a longer one. */
static void survived(struct lifetime *lt)
{
	lt->res.idle_ms = lt->ladder[lt->step];
	if (++lt->step == lt->n) {
		lt->res.at_least = true;
		finish(lt, NULL);
		return;
	}
	enter(lt, SILENT, lt->ladder[lt->step]);
}

static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct lifetime *lt = arg;

	switch (lt->phase) {
	case SILENT:
		enter(lt, ASK, 0);
		return;
	case WARM2:
		if (lt->tries == 0) { /* the 2.5 s gap is over */
			send_request(lt);
			return;
		}
		/* fall through */
	case WARM1:
	case ASK:
		if (lt->tries < TRIES) {
			send_request(lt);
			return;
		}
		if (lt->phase == ASK) { /* the mapping is gone */
			lt->res.failed_ms = lt->ladder[lt->step];
			finish(lt, NULL);
		} else {
			finish(lt, "the STUN server did not answer");
		}
		return;
	default:
		return;
	}
}

static void on_answer(struct lifetime *lt, int fd, const struct stun_msg *m)
{
	union sockaddr_inet mapped;

	if (fd == lt->fd[Y]) {
		/* Answered to the asker, not to the port it named. */
		if (lt->phase == ASK)
			finish(lt, "the STUN server ignores RESPONSE-PORT");
		return;
	}
	switch (lt->phase) {
	case WARM1:
	case WARM2:
		if (!m->has_mapped)
			return;
		nc_ss_to_ep(&mapped, &m->mapped);
		lt->mapped_port = nc_ep_port(&mapped);
		if (lt->phase == WARM1)
			enter(lt, WARM2, WARM_GAP_MS);
		else
			enter(lt, SILENT, lt->ladder[0]);
		return;
	case ASK:
		survived(lt);
		return;
	default:
		return;
	}
}

static void on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct lifetime *lt = arg;
	uint8_t buf[STUN_BUF_LEN];
	struct stun_msg m;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error: a retry copes */
		if (lt->phase == DONE || lt->phase == IDLE || !stun_is_message(buf, (size_t)n) ||
		    stun_parse(buf, (size_t)n, &m) < 0 || m.type != STUN_BINDING_SUCCESS ||
		    memcmp(m.txid, lt->txid, STUN_TXID_LEN))
			continue; /* stale, or not ours */
		on_answer(lt, fd, &m);
		if (lt->phase == DONE)
			return; /* the sockets are closed */
	}
}

int lifetime_new(struct lifetime **out, struct evloop *loop, const unsigned *ladder_ms, unsigned n,
		 const struct lifetime_ops *ops, void *arg)
{
	struct lifetime *lt;

	if (!ladder_ms)
		ladder_ms = default_ladder, n = sizeof(default_ladder) / sizeof(default_ladder[0]);
	if (!n || n > LIFETIME_MAX_STEPS)
		return -EINVAL;
	for (unsigned i = 1; i < n; i++)
		if (ladder_ms[i] <= ladder_ms[i - 1])
			return -EINVAL;
	lt = calloc(1, sizeof(*lt));
	if (!lt)
		return -ENOMEM;
	lt->loop = loop, lt->ops = ops, lt->arg = arg;
	memcpy(lt->ladder, ladder_ms, n * sizeof(*ladder_ms));
	lt->n = n;
	lt->fd[X] = lt->fd[Y] = -1;
	ev_timer_init(&lt->timer, on_timer, lt);
	*out = lt;
	return 0;
}

int lifetime_start(struct lifetime *lt, const union sockaddr_inet *stun)
{
	int ret;

	evloop_timer_cancel(lt->loop, &lt->timer);
	close_socks(lt);
	memset(&lt->res, 0, sizeof(lt->res));
	lt->phase = IDLE;
	lt->step = 0;
	endpoint_unmap(stun, &lt->stun);
	for (int i = X; i <= Y; i++) {
		ret = nc_udp_socket(lt->stun.sa.sa_family, NULL, 0);
		if (ret >= 0) {
			lt->fd[i] = ret;
			ret = evloop_add_fd(lt->loop, ret, EPOLLIN, on_readable, lt);
		}
		if (ret < 0) {
			close_socks(lt);
			return ret;
		}
	}
	enter(lt, WARM1, 0);
	return 0;
}

bool lifetime_running(const struct lifetime *lt)
{
	return lt && lt->phase != IDLE && lt->phase != DONE;
}

void lifetime_free(struct lifetime *lt)
{
	if (!lt)
		return;
	evloop_timer_cancel(lt->loop, &lt->timer);
	close_socks(lt);
	free(lt);
}

bool lifetime_due(const struct lifetime_memo *m, const struct nat_class *nat,
		  const union sockaddr_inet *stun, uint64_t now_ns)
{
	if (!m->started || m->mapping != nat->mapping || m->filtering != nat->filtering)
		return true;
	if (!m->ended || m->valid)
		return false; /* measuring, or measured this NAT */
	return !endpoint_equal(&m->stun, stun) ||
	       now_ns - m->ended_ns >= (uint64_t)LIFETIME_RETRY_MS * 1000000;
}
