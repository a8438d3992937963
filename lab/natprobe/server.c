// SPDX-License-Identifier: MIT
/*
 * natprobe server: one UDP socket per (address, port) pair, A1:P1 A1:P2
 * A2:P1 A2:P2.  A Binding request that arrives on (i, j) is answered from
 * (i', j'), with i' = 1 - i when CHANGE-REQUEST asks for another IP and
 * j' = 1 - j when it asks for another port (RFC 5780 section 6.1).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lab/natprobe/natprobe.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "stun/stun.h"

struct server;

struct srv_sock {
	struct server *srv;
	int fd;
	int ai, pi; /* index of its address and port */
	union sockaddr_inet local;
};

struct server {
	struct evloop *loop;
	struct srv_sock socks[2][2];
	int naddr, nport;
	unsigned long answered, ignored;
};

int udp_socket(int family, const union sockaddr_inet *addr, unsigned port)
{
	union sockaddr_inet sa;
	int fd, one = 1;

	if (addr) {
		sa = *addr;
	} else {
		memset(&sa, 0, sizeof(sa));
		sa.sa.sa_family = (sa_family_t)family;
	}
	if (family == AF_INET)
		sa.in.sin_port = htons((uint16_t)port);
	else
		sa.in6.sin6_port = htons((uint16_t)port);
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* One family per socket: an IPv6 socket must not see IPv4. */
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (bind(fd, &sa.sa, endpoint_len(&sa)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void ep_to_ss(struct sockaddr_storage *ss, const union sockaddr_inet *ep)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ep, endpoint_len(ep));
}

void ss_to_ep(union sockaddr_inet *ep, const struct sockaddr_storage *ss)
{
	memset(ep, 0, sizeof(*ep));
	if (ss->ss_family == AF_INET)
		memcpy(&ep->in, ss, sizeof(ep->in));
	else if (ss->ss_family == AF_INET6)
		memcpy(&ep->in6, ss, sizeof(ep->in6));
}

static void send_from(struct srv_sock *s, const uint8_t *msg, int len,
		      const union sockaddr_inet *to)
{
	char a[ENDPOINT_STRLEN];

	if (sendto(s->fd, msg, (size_t)len, 0, &to->sa, endpoint_len(to)) < 0) {
		endpoint_format(to, a, sizeof(a));
		log_warn("send failed to=%s err=%s", a, strerror(errno));
	}
}

static void answer(struct srv_sock *s, const struct stun_msg *req, union sockaddr_inet *from)
{
	struct server *srv = s->srv;
	bool full = srv->naddr == 2 && srv->nport == 2;
	int ai = s->ai, pi = s->pi, len;
	uint8_t out[STUN_BUF_LEN];
	struct sockaddr_storage mapped, origin, other;
	struct srv_sock *r;
	char a[ENDPOINT_STRLEN];

	if (req->n_unknown) {
		len = stun_build_error_response(
			out, sizeof(out), req->txid, 420, "Unknown Attribute", req->unknown,
			req->n_unknown < STUN_MAX_UNKNOWN ? req->n_unknown : STUN_MAX_UNKNOWN);
		if (len > 0)
			send_from(s, out, len, from);
		return;
	}
	if (req->change_flags & STUN_CHANGE_IP)
		ai = 1 - ai;
	if (req->change_flags & STUN_CHANGE_PORT)
		pi = 1 - pi;
	if (ai >= srv->naddr || pi >= srv->nport) {
		/* RFC 5780 6.1: no alternate address, so CHANGE-REQUEST is unknown. */
		static const uint16_t change[] = {STUN_ATTR_CHANGE_REQUEST};
		len = stun_build_error_response(out, sizeof(out), req->txid, 420,
						"No alternate address", change, 1);
		if (len > 0)
			send_from(s, out, len, from);
		return;
	}
	r = &srv->socks[ai][pi];
	/* RESPONSE-PORT: the answer goes to the source address, that port. */
	if (req->has_response_port && req->response_port) {
		if (from->sa.sa_family == AF_INET)
			from->in.sin_port = htons(req->response_port);
		else
			from->in6.sin6_port = htons(req->response_port);
	}
	ep_to_ss(&mapped, from);
	ep_to_ss(&origin, &r->local);
	ep_to_ss(&other, &srv->socks[1 - s->ai][1 - s->pi].local);
	len = stun_build_binding_response(out, sizeof(out), req->txid, &mapped, &origin,
					  full ? &other : NULL);
	if (len < 0) {
		log_warn("cannot build response err=%s", strerror(-len));
		return;
	}
	send_from(r, out, len, from);
	srv->answered++;
	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		endpoint_format(from, a, sizeof(a));
		log_debug("binding answered from=%s change=%u via=%d,%d", a,
			  (unsigned)req->change_flags, ai, pi);
	}
}

static void on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct srv_sock *s = arg;
	/* Bigger than any datagram we accept, so a long one shows as long. */
	uint8_t buf[2048];
	union sockaddr_inet from;
	struct stun_msg m;

	for (int i = 0; i < 64; i++) {
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, &from.sa, &flen);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error for an earlier answer */
		if (stun_parse(buf, (size_t)n, &m) < 0 || m.type != STUN_BINDING_REQUEST) {
			s->srv->ignored++;
			continue;
		}
		answer(s, &m, &from);
	}
}

static void on_signal(struct evloop *loop, int signo, void *arg)
{
	evloop_stop(loop);
}

static void close_all(struct server *srv)
{
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			if (srv->socks[i][j].fd >= 0)
				close(srv->socks[i][j].fd);
	evloop_free(srv->loop);
}

static int open_sockets(struct server *srv, const struct server_opts *o)
{
	char a[ENDPOINT_STRLEN];
	int ret;

	for (int i = 0; i < o->naddr; i++) {
		for (int j = 0; j < o->nport; j++) {
			struct srv_sock *s = &srv->socks[i][j];
			s->srv = srv;
			s->ai = i;
			s->pi = j;
			s->local = o->addr[i];
			if (s->local.sa.sa_family == AF_INET)
				s->local.in.sin_port = htons((uint16_t)o->port[j]);
			else
				s->local.in6.sin6_port = htons((uint16_t)o->port[j]);
			endpoint_format(&s->local, a, sizeof(a));
			s->fd = udp_socket(s->local.sa.sa_family, &o->addr[i], o->port[j]);
			if (s->fd < 0) {
				fprintf(stderr, "natprobe: server: cannot bind %s: %s\n", a,
					strerror(-s->fd));
				return s->fd;
			}
			ret = evloop_add_fd(srv->loop, s->fd, EPOLLIN, on_readable, s);
			if (ret < 0)
				return ret;
			log_info("natprobe server listening addr=%s", a);
		}
	}
	return 0;
}

int server_run(const struct server_opts *o)
{
	struct server srv;
	int ret;

	memset(&srv, 0, sizeof(srv));
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			srv.socks[i][j].fd = -1;
	srv.naddr = o->naddr;
	srv.nport = o->nport;
	ret = evloop_new(&srv.loop);
	if (ret < 0) {
		fprintf(stderr, "natprobe: server: event loop: %s\n", strerror(-ret));
		return ret;
	}
	ret = open_sockets(&srv, o);
	if (ret == 0)
		ret = evloop_add_signal(srv.loop, SIGTERM, on_signal, NULL);
	if (ret == 0)
		ret = evloop_add_signal(srv.loop, SIGINT, on_signal, NULL);
	if (ret == 0)
		ret = evloop_run(srv.loop);
	if (ret == 0)
		log_info("natprobe server stopped answered=%lu ignored=%lu", srv.answered,
			 srv.ignored);
	close_all(&srv);
	return ret;
}
