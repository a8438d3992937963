// SPDX-License-Identifier: MIT
/* The probe engine of NAT behaviour discovery (see probe.h). */
#include "netcheck/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"

struct nc_engine;

struct nc_watch {
	struct nc_engine *e;
	int fd; /* -1: free slot */
};

struct nc_engine {
	struct evloop *loop;
	struct nc_engine_ops ops;
	void *arg;
	uint64_t timeout_ns, interval_ns;
	struct nc_probe *probes; /* the running batch, or NULL */
	size_t n;
	struct ev_timer timer;
	struct nc_watch watch[NC_MAX_WATCHED];
};

static const char *ep_str(const union sockaddr_inet *ep, char buf[ENDPOINT_STRLEN])
{
	if (endpoint_format(ep, buf, ENDPOINT_STRLEN) < 0)
		snprintf(buf, ENDPOINT_STRLEN, "?");
	return buf;
}

uint16_t nc_ep_port(const union sockaddr_inet *ep)
{
	return ntohs(ep->sa.sa_family == AF_INET ? ep->in.sin_port : ep->in6.sin6_port);
}

void nc_ep_set_port(union sockaddr_inet *ep, uint16_t port)
{
	if (ep->sa.sa_family == AF_INET)
		ep->in.sin_port = htons(port);
	else
		ep->in6.sin6_port = htons(port);
}

void nc_ep_to_ss(struct sockaddr_storage *ss, const union sockaddr_inet *ep)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ep, endpoint_len(ep));
}

void nc_ss_to_ep(union sockaddr_inet *ep, const struct sockaddr_storage *ss)
{
	memset(ep, 0, sizeof(*ep));
	if (ss->ss_family == AF_INET)
		memcpy(&ep->in, ss, sizeof(ep->in));
	else if (ss->ss_family == AF_INET6)
		memcpy(&ep->in6, ss, sizeof(ep->in6));
}

int nc_udp_socket(int family, const union sockaddr_inet *addr, unsigned port)
{
	union sockaddr_inet sa;
	int fd, one = 1;

	if (addr) {
		sa = *addr;
	} else {
		memset(&sa, 0, sizeof(sa));
		sa.sa.sa_family = (sa_family_t)family;
	}
	nc_ep_set_port(&sa, (uint16_t)port);
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* One family per socket: an IPv6 socket must not see IPv4. */
	if ((family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, &sa.sa, endpoint_len(&sa)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void nc_probe_mapped(const struct nc_probe *p, union sockaddr_inet *out)
{
	nc_ss_to_ep(out, &p->resp.mapped);
	endpoint_unmap(out, out);
}

void nc_probe_stun(struct nc_probe *p, const char *what, int sock, const union sockaddr_inet *dst,
		   uint32_t change, const union sockaddr_inet *expect_from)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->sock = p->recv_sock = sock;
	p->dst = *dst;
	if (expect_from)
		p->expect_from = *expect_from;
	p->is_stun = true;
	p->change = change;
	p->after = -1;
	/* The base transaction id; each try rewrites its last byte. */
	random_bytes(p->msg + 8, STUN_TXID_LEN);
}

void nc_probe_datagram(struct nc_probe *p, const char *what, int sock, int recv_sock,
		       const union sockaddr_inet *dst)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->sock = sock;
	p->recv_sock = recv_sock;
	p->dst = *dst;
	p->after = -1;
	memcpy(p->msg, NC_HAIRPIN_MAGIC, sizeof(NC_HAIRPIN_MAGIC) - 1);
	random_bytes(p->msg + sizeof(NC_HAIRPIN_MAGIC) - 1,
		     NC_HAIRPIN_LEN - (sizeof(NC_HAIRPIN_MAGIC) - 1));
	p->len = NC_HAIRPIN_LEN;
}

static int default_send(int sock, const union sockaddr_inet *dst, const void *buf, size_t len)
{
	if (sendto(sock, buf, len, MSG_DONTWAIT, &dst->sa, endpoint_len(dst)) < 0)
		return -errno;
	return 0;
}

/* One try: a STUN request gets the try's transaction id. */
static void probe_send(struct nc_engine *e, struct nc_probe *p, uint64_t now)
{
	int ret = 0;

	if (p->is_stun) {
		uint8_t txid[STUN_TXID_LEN];
		int n;

		memcpy(txid, p->msg + 8, STUN_TXID_LEN);
		txid[STUN_TXID_LEN - 1] = (uint8_t)p->tries;
		n = stun_build_binding_request(p->msg, sizeof(p->msg), txid, p->change);
		p->len = n > 0 ? (size_t)n : 0; /* cannot fail: the buffer is big enough */
	}
	if (p->len)
		ret = e->ops.send ? e->ops.send(e->arg, p->sock, &p->dst, p->msg, p->len)
				  : default_send(p->sock, &p->dst, p->msg, p->len);
	if (ret < 0)
		p->send_err = -ret; /* e.g. EPERM from a local firewall: a lost try */
	else
		p->sent++;
	p->sent_ns[p->tries] = now;
	p->tries++;
	p->next_ns = now + e->interval_ns;
	/* No route or no such family here: more tries cannot help. */
	if (!p->sent && (ret == -ENETUNREACH || ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL))
		p->state = NC_P_FAILED;
}

/* Does datagram buf, from `from`, answer probe p? */
static bool probe_matches(struct nc_probe *p, const uint8_t *buf, size_t n,
			  const union sockaddr_inet *from, uint64_t now)
{
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];
	struct stun_msg m;
	unsigned try;

	if (!p->is_stun)
		return n == p->len && !memcmp(buf, p->msg, n);
	if (!stun_is_message(buf, n) || stun_parse(buf, n, &m) < 0 ||
	    memcmp(m.txid, p->msg + 8, STUN_TXID_LEN - 1) != 0)
		return false;
	try = m.txid[STUN_TXID_LEN - 1];
	if (try >= (unsigned)p->tries)
		return false; /* never sent: not an answer of ours */
	if (m.type == STUN_BINDING_ERROR) {
		p->error_code = m.error_code ? m.error_code : 400;
		return true;
	}
	if (m.type != STUN_BINDING_SUCCESS || !m.has_mapped || m.n_unknown)
		return false;
	if (p->expect_from.sa.sa_family && !endpoint_equal(from, &p->expect_from)) {
		log_warn("answer from an unexpected source probe=\"%s\" from=%s expected=%s",
			 p->what, ep_str(from, a), ep_str(&p->expect_from, b));
		return false;
	}
	p->resp = m;
	p->rtt_ns = now - p->sent_ns[try];
	return true;
}

static void settle_soon(struct nc_engine *e)
{
	evloop_timer_arm(e->loop, &e->timer, clock_mono_ns());
}

bool nc_engine_input(struct nc_engine *e, int sock, const uint8_t *buf, size_t len,
		     const union sockaddr_inet *from)
{
	union sockaddr_inet src;
	uint64_t now = clock_mono_ns();

	if (!e->probes)
		return false;
	endpoint_unmap(from, &src);
	for (size_t i = 0; i < e->n; i++) {
		struct nc_probe *p = &e->probes[i];

		if (p->state != NC_P_RUNNING || p->recv_sock != sock ||
		    !probe_matches(p, buf, len, &src, now))
			continue;
		p->from = src;
		p->state = p->error_code ? NC_P_FAILED : NC_P_DONE;
		settle_soon(e); /* successors may start, the batch may be over */
		return true;
	}
	return false;
}

/* Advances every probe; returns the next time to wake, or 0 when all have
 * settled. */
static uint64_t advance(struct nc_engine *e, uint64_t now)
{
	uint64_t wake = 0;
	bool pending = false;

	for (size_t i = 0; i < e->n; i++) {
		struct nc_probe *p = &e->probes[i];
		uint64_t t;

		if (p->state == NC_P_WAITING) {
			enum nc_probe_state before = e->probes[p->after].state;
			if (before == NC_P_FAILED)
				p->state = NC_P_FAILED;
			if (before != NC_P_DONE) {
				pending |= p->state == NC_P_WAITING;
				continue;
			}
			p->state = NC_P_RUNNING;
			p->start_ns = now;
			p->next_ns = now;
		}
		if (p->state != NC_P_RUNNING)
			continue;
		if (p->tries < NC_MAX_TRIES && now >= p->next_ns)
			probe_send(e, p, now);
		if (p->state != NC_P_RUNNING)
			continue;
		if (p->tries >= NC_MAX_TRIES && now >= p->start_ns + e->timeout_ns) {
			p->state = NC_P_FAILED;
			continue;
		}
		t = p->tries < NC_MAX_TRIES ? p->next_ns : p->start_ns + e->timeout_ns;
		if (!wake || t < wake)
			wake = t;
	}
	/* A waiting probe whose predecessor runs needs no wake of its own. */
	if (!wake && pending)
		wake = now + e->interval_ns; /* cannot happen: a safety net */
	return wake;
}

static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct nc_engine *e = arg;
	struct nc_probe *probes = e->probes;
	size_t n = e->n;
	uint64_t wake;

	if (!probes)
		return;
	wake = advance(e, clock_mono_ns());
	if (wake) {
		evloop_timer_arm(loop, t, wake);
		return;
	}
	e->probes = NULL;
	e->n = 0;
	if (e->ops.done)
		e->ops.done(e->arg, probes, n); /* may start the next batch */
}

int nc_engine_start(struct nc_engine *e, struct nc_probe *probes, size_t n)
{
	if (e->probes)
		return -EBUSY;
	if (!n || n > NC_MAX_PROBES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		/* Only earlier probes may come first: no cycle can form. */
		if (probes[i].after >= (int)i)
			return -EINVAL;
		probes[i].state = probes[i].after >= 0 ? NC_P_WAITING : NC_P_RUNNING;
		probes[i].start_ns = probes[i].next_ns = clock_mono_ns();
	}
	e->probes = probes;
	e->n = n;
	settle_soon(e);
	return 0;
}

bool nc_engine_busy(const struct nc_engine *e)
{
	return e->probes != NULL;
}

void nc_engine_cancel(struct nc_engine *e)
{
	e->probes = NULL;
	e->n = 0;
	evloop_timer_cancel(e->loop, &e->timer);
}

static void on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct nc_watch *w = arg;
	uint8_t buf[2048];
	union sockaddr_inet from;

	/* Bounded: the loop comes back for whatever is left. */
	for (int k = 0; k < 64 && w->fd == fd; k++) {
		socklen_t flen = sizeof(from);
		ssize_t len = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &from.sa, &flen);

		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue; /* an ICMP error queued on the socket: keep reading */
		}
		nc_engine_input(w->e, fd, buf, (size_t)len, &from);
	}
}

int nc_engine_watch_fd(struct nc_engine *e, int fd)
{
	for (size_t i = 0; i < NC_MAX_WATCHED; i++) {
		struct nc_watch *w = &e->watch[i];
		int ret;

		if (w->fd >= 0)
			continue;
		ret = evloop_add_fd(e->loop, fd, EPOLLIN, on_readable, w);
		if (ret < 0)
			return ret;
		w->fd = fd;
		return 0;
	}
	return -ENOSPC;
}

void nc_engine_unwatch_fd(struct nc_engine *e, int fd)
{
	for (size_t i = 0; i < NC_MAX_WATCHED; i++) {
		if (e->watch[i].fd == fd) {
			evloop_del_fd(e->loop, fd);
			e->watch[i].fd = -1;
		}
	}
}

int nc_engine_new(struct nc_engine **out, struct evloop *loop, unsigned timeout_ms,
		  const struct nc_engine_ops *ops, void *arg)
{
	struct nc_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	if (timeout_ms < NC_MAX_TRIES)
		timeout_ms = NC_MAX_TRIES;
	e->loop = loop;
	e->ops = *ops;
	e->arg = arg;
	e->timeout_ns = (uint64_t)timeout_ms * NSEC_PER_MSEC;
	e->interval_ns = e->timeout_ns / NC_MAX_TRIES;
	ev_timer_init(&e->timer, on_timer, e);
	for (size_t i = 0; i < NC_MAX_WATCHED; i++) {
		e->watch[i].e = e;
		e->watch[i].fd = -1;
	}
	*out = e;
	return 0;
}

void nc_engine_free(struct nc_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < NC_MAX_WATCHED; i++)
		if (e->watch[i].fd >= 0)
			evloop_del_fd(e->loop, e->watch[i].fd);
	evloop_timer_cancel(e->loop, &e->timer);
	free(e);
}
