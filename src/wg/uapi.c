// SPDX-License-Identifier: MIT
/* The userspace API server (see uapi.h), on the event loop. */
#include "wg/uapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/log.h"

#define UAPI_MAX_CONNECTIONS 64
#define UAPI_MAX_RESPONSE    (64u << 20)

struct uapi_conn {
	struct uapi_server *srv;
	int fd;
	struct buf in;
	struct buf out;
	bool closing; /* close once out is flushed */
};

struct uapi_server {
	struct wg_device *dev;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct uapi_conn *conns[UAPI_MAX_CONNECTIONS];
};

static void conn_close(struct uapi_conn *c)
{
	struct uapi_server *srv = c->srv;

	for (unsigned i = 0; i < UAPI_MAX_CONNECTIONS; i++)
		if (srv->conns[i] == c)
			srv->conns[i] = NULL;
	evloop_del_fd(srv->dev->loop, c->fd);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void handle_get(struct uapi_conn *c)
{
	size_t start = c->out.len;
	int ret = device_uapi_get(c->srv->dev, &c->out);

	if (ret < 0) {
		/* Drop the partial answer; room remains for the error line. */
		c->out.len = start;
		c->out.err = 0;
		log_warn("userspace API get failed interface=%s error=\"%s\"",
			 c->srv->dev->ifname, strerror(-ret));
	}
	buf_printf(&c->out, "errno=%d\n\n", ret < 0 ? -ret : 0);
}

static void handle_set(struct uapi_conn *c, const char *body, size_t len)
{
	char err[WGCONFIG_ERR_LEN] = "";
	struct wg_config cfg;
	int ret;

	wg_config_init(&cfg);
	ret = uapi_parse_set(&cfg, body, len, err);
	if (ret == 0)
		ret = device_apply(c->srv->dev, &cfg, err, sizeof(err));
	wg_config_free(&cfg);
	if (ret < 0)
		log_warn("userspace API set refused interface=%s error=\"%s\"", c->srv->dev->ifname,
			 err);
	buf_printf(&c->out, "errno=%d\n\n", ret < 0 ? -ret : 0);
}

enum uapi_op uapi_next_request(const char *data, size_t len, size_t *req_len, const char **body,
			       size_t *body_len)
{
	const char *end = len >= 2 ? memmem(data, len, "\n\n", 2) : NULL;

	if (!end)
		return UAPI_INCOMPLETE;
	*req_len = (size_t)(end - data) + 2;
	if (*req_len == 7 && !memcmp(data, "get=1\n\n", 7))
		return UAPI_GET;
	if (*req_len >= 7 && !memcmp(data, "set=1\n", 6)) {
		*body = data + 6;
		*body_len = *req_len - 7; /* up to and including the last line's newline */
		return UAPI_SET;
	}
	return UAPI_INVALID;
}

/* Handles every complete request in c->in. */
static void process_requests(struct uapi_conn *c)
{
	const char *body = NULL;
	size_t req_len, body_len = 0;
	enum uapi_op op;

	while ((op = uapi_next_request((const char *)c->in.data, c->in.len, &req_len, &body,
				       &body_len)) != UAPI_INCOMPLETE) {
		if (op == UAPI_GET) {
			handle_get(c);
		} else if (op == UAPI_SET) {
			handle_set(c, body, body_len);
		} else {
			buf_printf(&c->out, "errno=%d\n\n", EINVAL);
			c->closing = true;
		}
		buf_consume(&c->in, req_len);
		if (c->closing)
			return;
	}
}

static void conn_flush(struct uapi_conn *c)
{
	while (c->out.len) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			c->closing = true;
			c->out.len = 0;
			break;
		}
		buf_consume(&c->out, (size_t)n);
	}
	evloop_mod_fd(c->srv->dev->loop, c->fd, c->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void on_conn(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct uapi_conn *c = arg;
	uint8_t chunk[4096];

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->closing = true;
		} else if (n > 0) {
			if (buf_append(&c->in, chunk, (size_t)n) < 0) {
				log_warn("userspace API request too large interface=%s",
					 c->srv->dev->ifname);
				buf_printf(&c->out, "errno=%d\n\n", E2BIG);
				c->closing = true;
			} else {
				process_requests(c);
			}
		}
		memzero_explicit(chunk, sizeof(chunk));
	}
	conn_flush(c);
	if (c->closing && !c->out.len)
		conn_close(c);
}

static void on_accept(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct uapi_server *srv = arg;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct uapi_conn *c;
	unsigned slot;

	if (cfd < 0)
		return;
	for (slot = 0; slot < UAPI_MAX_CONNECTIONS && srv->conns[slot]; slot++)
		;
	c = slot < UAPI_MAX_CONNECTIONS ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		close(cfd);
		return;
	}
	c->srv = srv;
	c->fd = cfd;
	buf_init(&c->in, WGCONFIG_MAX_BYTES);
	buf_init(&c->out, UAPI_MAX_RESPONSE);
	srv->conns[slot] = c;
	if (evloop_add_fd(loop, cfd, EPOLLIN, on_conn, c) < 0)
		conn_close(c);
}

/* A socket file nobody answers on is stale (a crashed knitd) and goes. */
static int claim_path(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -errno;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ret = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	close(fd);
	if (ret == 0)
		return -EADDRINUSE;
	unlink(path);
	return 0;
}

int uapi_server_new(struct uapi_server **out, struct wg_device *dev)
{
	struct uapi_server *srv = calloc(1, sizeof(*srv));
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	mode_t old_umask;
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->dev = dev;
	srv->fd = -1;
	if (snprintf(srv->path, sizeof(srv->path), UAPI_SOCKET_DIR "/%s.sock", dev->ifname) >=
	    (int)sizeof(srv->path)) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	if (mkdir(UAPI_SOCKET_DIR, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		goto fail;
	}
	if ((ret = claim_path(srv->path)) < 0)
		goto fail;
	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0) {
		ret = -errno;
		goto fail;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", srv->path);
	old_umask = umask(0077);
	ret = bind(srv->fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (ret < 0 || listen(srv->fd, 16) < 0) {
		ret = -errno;
		goto fail;
	}
	if ((ret = evloop_add_fd(dev->loop, srv->fd, EPOLLIN, on_accept, srv)) < 0)
		goto fail;
	*out = srv;
	return 0;
fail:
	log_error("cannot serve the userspace API path=%s error=\"%s\"", srv->path, strerror(-ret));
	if (srv->fd >= 0)
		close(srv->fd);
	free(srv);
	return ret;
}

void uapi_server_free(struct uapi_server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < UAPI_MAX_CONNECTIONS; i++)
		if (srv->conns[i])
			conn_close(srv->conns[i]);
	evloop_del_fd(srv->dev->loop, srv->fd);
	close(srv->fd);
	unlink(srv->path);
	free(srv);
}
