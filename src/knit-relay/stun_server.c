// SPDX-License-Identifier: MIT
/* The relay's STUN responder (see stun_server.h). */
#include "knit-relay/stun_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "stun/stun.h"

#define STUN_BATCH 64

struct stun_server;

/* One socket: address ai (0 primary, 1 alternate) and port pi, likewise. */
struct stun_sock {
	struct stun_server *srv;
	int fd;
	int ai, pi;
	union sockaddr_inet local;
};

struct stun_server {
	struct evloop *loop;
	struct stun_sock socks[2][2];
	bool rfc5780; /* an alternate address and port: four sockets */
	uint16_t port;
	struct relay_stats *stats;
};

static uint16_t ep_port(const union sockaddr_inet *ep)
{
	return ntohs(ep->sa.sa_family == AF_INET ? ep->in.sin_port : ep->in6.sin6_port);
}

static bool ep_wildcard(const union sockaddr_inet *ep)
{
	return ep->sa.sa_family == AF_INET ? ep->in.sin_addr.s_addr == htonl(INADDR_ANY)
					   : IN6_IS_ADDR_UNSPECIFIED(&ep->in6.sin6_addr);
}

int stun_server_check_alt(const union sockaddr_inet *addr, const union sockaddr_inet *alt,
			  const char **why)
{
	union sockaddr_inet a = *alt;

	*why = "the STUN address and the alternate must be of one family";
	if (addr->sa.sa_family != alt->sa.sa_family)
		return -EINVAL;
	*why = "with an alternate, the STUN address must be a specific address, not a wildcard";
	if (ep_wildcard(addr) || ep_wildcard(alt))
		return -EINVAL;
	*why = "the alternate's port must differ from the STUN port";
	if (ep_port(addr) == ep_port(alt) || !ep_port(addr) || !ep_port(alt))
		return -EINVAL;
	*why = "the alternate's address must differ from the STUN address";
	if (a.sa.sa_family == AF_INET)
		a.in.sin_port = addr->in.sin_port;
	else
		a.in6.sin6_port = addr->in6.sin6_port;
	if (endpoint_equal(&a, addr))
		return -EINVAL;
	*why = NULL;
	return 0;
}

static void send_answer(struct stun_sock *s, const uint8_t *msg, int len,
			const struct sockaddr_storage *to, socklen_t to_len)
{
	/* UDP: a full socket buffer drops the answer, as the network might. */
	sendto(s->fd, msg, (size_t)len, MSG_DONTWAIT, (const struct sockaddr *)to, to_len);
}

static void to_ss(struct sockaddr_storage *ss, const union sockaddr_inet *ep)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ep, endpoint_len(ep));
}

static void answer(struct stun_sock *in, const uint8_t *req, size_t len,
		   const struct sockaddr_storage *from, socklen_t from_len)
{
	static const uint16_t change_attr[] = {STUN_ATTR_CHANGE_REQUEST};
	struct stun_server *s = in->srv;
	uint8_t out[STUN_BUF_LEN];
	struct sockaddr_storage origin, other;
	struct stun_sock *via = in;
	struct stun_msg msg;
	int n;

	if (!stun_is_message(req, len) || stun_parse(req, len, &msg) < 0) {
		s->stats->stun_invalid++;
		return;
	}
	if (msg.type != STUN_BINDING_REQUEST)
		return; /* indications and responses get no answer */
	s->stats->stun_requests++;
	if (msg.n_unknown) {
		n = stun_build_error_response(
			out, sizeof(out), msg.txid, 420, "Unknown Attribute", msg.unknown,
			msg.n_unknown < STUN_MAX_UNKNOWN ? msg.n_unknown : STUN_MAX_UNKNOWN);
	} else if (msg.change_flags & (STUN_CHANGE_IP | STUN_CHANGE_PORT) && !s->rfc5780) {
		/* RFC 5780 6.1: no alternate address, so CHANGE-REQUEST is unknown. */
		n = stun_build_error_response(out, sizeof(out), msg.txid, 420,
					      "No alternate address", change_attr, 1);
	} else if (s->rfc5780) {
		int ai = in->ai ^ !!(msg.change_flags & STUN_CHANGE_IP);
		int pi = in->pi ^ !!(msg.change_flags & STUN_CHANGE_PORT);
		via = &s->socks[ai][pi];
		to_ss(&origin, &via->local);
		to_ss(&other, &s->socks[1 - in->ai][1 - in->pi].local);
		n = stun_build_binding_response(out, sizeof(out), msg.txid, from, &origin, &other);
	} else {
		n = stun_build_binding_response(out, sizeof(out), msg.txid, from, NULL, NULL);
	}
	if (n <= 0)
		return;
	if (msg.has_response_port && msg.response_port) {
		/* RFC 5780 7.5: to the request's source address, that port: a
		 * node asks whether another of its mappings is still open.
		 * Only the asker's own address can be reached this way. */
		struct sockaddr_storage to = *from;

		if (to.ss_family == AF_INET)
			((struct sockaddr_in *)&to)->sin_port = htons(msg.response_port);
		else
			((struct sockaddr_in6 *)&to)->sin6_port = htons(msg.response_port);
		send_answer(via, out, n, &to, from_len);
		return;
	}
	send_answer(via, out, n, from, from_len);
}

static void on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct stun_sock *s = arg;

	for (int i = 0; i < STUN_BATCH; i++) {
		uint8_t buf[1500];
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &from_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN, or an ICMP error from an earlier send */
		}
		answer(s, buf, (size_t)n, &from, from_len);
	}
}

/* Binds one socket of the server at addr; 0 or -errno, logged. */
static int open_sock(struct stun_server *srv, struct stun_sock *s, const union sockaddr_inet *addr)
{
	char text[ENDPOINT_STRLEN];
	socklen_t len = sizeof(s->local);
	int v6only, ret;

	s->srv = srv;
	endpoint_format(addr, text, sizeof(text));
	s->fd = socket(addr->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (addr->sa.sa_family == AF_INET6) {
		v6only = !IN6_IS_ADDR_UNSPECIFIED(&addr->in6.sin6_addr);
		setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	}
	if (bind(s->fd, &addr->sa, endpoint_len(addr)) < 0 ||
	    getsockname(s->fd, &s->local.sa, &len) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = evloop_add_fd(srv->loop, s->fd, EPOLLIN, on_readable, s);
	if (ret == 0)
		return 0;
fail:
	log_error("relay cannot serve STUN address=%s: %s", text, strerror(-ret));
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	return ret;
}

/* A1:P2 and A2:P1: one corner's address with the other's port. */
static union sockaddr_inet corner(const union sockaddr_inet *addr_of,
				  const union sockaddr_inet *port_of)
{
	union sockaddr_inet c = *addr_of;

	if (c.sa.sa_family == AF_INET)
		c.in.sin_port = port_of->in.sin_port;
	else
		c.in6.sin6_port = port_of->in6.sin6_port;
	return c;
}

int stun_server_new(struct stun_server **out, struct evloop *loop, const union sockaddr_inet *addr,
		    const union sockaddr_inet *alt, struct relay_stats *stats)
{
	struct stun_server *s = calloc(1, sizeof(*s));
	const char *why;
	int ret;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->stats = stats;
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			s->socks[i][j] = (struct stun_sock){.srv = s, .fd = -1, .ai = i, .pi = j};
	s->rfc5780 = alt && alt->sa.sa_family;
	if (s->rfc5780 && stun_server_check_alt(addr, alt, &why) < 0) {
		log_error("relay cannot serve STUN: %s", why);
		free(s);
		return -EINVAL;
	}
	ret = open_sock(s, &s->socks[0][0], addr);
	if (ret == 0 && s->rfc5780) {
		union sockaddr_inet a1p2 = corner(addr, alt), a2p1 = corner(alt, addr);
		ret = open_sock(s, &s->socks[1][1], alt);
		if (ret == 0)
			ret = open_sock(s, &s->socks[0][1], &a1p2);
		if (ret == 0)
			ret = open_sock(s, &s->socks[1][0], &a2p1);
	}
	if (ret < 0) {
		stun_server_free(s);
		return ret;
	}
	s->port = ep_port(&s->socks[0][0].local);
	if (s->rfc5780) {
		char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];
		endpoint_format(&s->socks[0][0].local, a, sizeof(a));
		endpoint_format(&s->socks[1][1].local, b, sizeof(b));
		log_info("relay STUN answers CHANGE-REQUEST primary=%s alternate=%s", a, b);
	}
	*out = s;
	return 0;
}

void stun_server_free(struct stun_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 2; j++) {
			if (s->socks[i][j].fd < 0)
				continue;
			evloop_del_fd(s->loop, s->socks[i][j].fd);
			close(s->socks[i][j].fd);
		}
	}
	free(s);
}

uint16_t stun_server_port(const struct stun_server *s)
{
	return s->port;
}
