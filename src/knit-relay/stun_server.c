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

struct stun_server {
	struct evloop *loop;
	int fd;
	uint16_t port;
	struct relay_stats *stats;
};

static void answer(struct stun_server *s, const uint8_t *req, size_t len,
		   const struct sockaddr_storage *from, socklen_t from_len)
{
	uint8_t out[STUN_BUF_LEN];
	struct stun_msg msg;
	int n;

	if (!stun_is_message(req, len) || stun_parse(req, len, &msg) < 0) {
		s->stats->stun_invalid++;
		return;
	}
	if (msg.type != STUN_BINDING_REQUEST)
		return; /* indications and responses get no answer */
	s->stats->stun_requests++;
	if (msg.n_unknown)
		n = stun_build_error_response(
			out, sizeof(out), msg.txid, 420, "Unknown Attribute", msg.unknown,
			msg.n_unknown < STUN_MAX_UNKNOWN ? msg.n_unknown : STUN_MAX_UNKNOWN);
	else
		n = stun_build_binding_response(out, sizeof(out), msg.txid, from, NULL, NULL);
	if (n < 0)
		return;
	/* UDP: a full socket buffer drops the answer, as the network might. */
	sendto(s->fd, out, (size_t)n, MSG_DONTWAIT, (const struct sockaddr *)from, from_len);
}

static void on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct stun_server *s = arg;

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

int stun_server_new(struct stun_server **out, struct evloop *loop, const union sockaddr_inet *addr,
		    struct relay_stats *stats)
{
	struct stun_server *s = calloc(1, sizeof(*s));
	char text[ENDPOINT_STRLEN];
	union sockaddr_inet bound;
	socklen_t len = sizeof(bound);
	int v6only, ret;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->stats = stats;
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
	    getsockname(s->fd, &bound.sa, &len) < 0) {
		ret = -errno;
		goto fail;
	}
	s->port = ntohs(bound.sa.sa_family == AF_INET ? bound.in.sin_port : bound.in6.sin6_port);
	ret = evloop_add_fd(loop, s->fd, EPOLLIN, on_readable, s);
	if (ret < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	log_error("relay cannot serve STUN address=%s: %s", text, strerror(-ret));
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return ret;
}

void stun_server_free(struct stun_server *s)
{
	if (!s)
		return;
	evloop_del_fd(s->loop, s->fd);
	close(s->fd);
	free(s);
}

uint16_t stun_server_port(const struct stun_server *s)
{
	return s->port;
}
