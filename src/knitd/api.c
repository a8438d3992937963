// SPDX-License-Identifier: MIT
#include "knitd/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"

struct api_conn {
	struct api_server *srv;
	int fd;
	struct buf in;
	bool answered; /* the request was handed over */
	struct api_conn *next, *prev;
};

struct api_server {
	struct evloop *loop;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct api_ops *ops;
	void *arg;
	struct api_conn *conns;
};

static void conn_free(struct api_conn *c, bool notify)
{
	struct api_server *s = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	evloop_del_fd(s->loop, c->fd);
	close(c->fd);
	buf_free(&c->in);
	if (notify && c->answered && s->ops->gone)
		s->ops->gone(c, s->arg);
	free(c);
}

void api_reply(struct api_conn *c, json_t *msg, bool final)
{
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;

	/* Answers are small; a client that does not read them loses them. */
	if (text) {
		size_t len = strlen(text);
		text[len] = '\n';
		if (send(c->fd, text, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("api answer lost error=%s", strerror(errno));
	}
	free(text);
	json_decref(msg);
	if (final)
		conn_free(c, false);
}

void api_reply_error(struct api_conn *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	api_reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", why), true);
}

static void conn_input(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct api_conn *c = arg;
	struct api_server *s = c->srv;
	char chunk[4096], *nl;
	json_error_t jerr;
	json_t *req;
	ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_free(c, true);
		return;
	}
	if (c->answered)
		return; /* one request per connection; ignore the rest */
	if (buf_append(&c->in, chunk, (size_t)n) < 0) {
		api_reply_error(c, "request longer than %u bytes", API_MAX_REQUEST);
		return;
	}
	nl = memchr(c->in.data, '\n', c->in.len);
	if (!nl)
		return;
	req = json_loadb((const char *)c->in.data, (size_t)(nl - (char *)c->in.data),
			 JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
		json_decref(req);
		api_reply_error(c, "request is not a JSON object with a \"cmd\"");
		return;
	}
	c->answered = true;
	s->ops->request(c, req, s->arg);
	json_decref(req);
}

static void on_accept(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct api_server *s = arg;
	int cfd;

	while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct api_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->srv = s;
		c->fd = cfd;
		buf_init(&c->in, API_MAX_REQUEST);
		if (evloop_add_fd(loop, cfd, EPOLLIN, conn_input, c) < 0) {
			close(cfd);
			buf_free(&c->in);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (c->next)
			c->next->prev = c;
		s->conns = c;
	}
}

static void make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0755);
	}
}

int api_server_new(struct api_server **out, struct evloop *loop, const char *path,
		   const struct api_ops *ops, void *arg)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct api_server *s;
	mode_t old;
	int ret;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("API socket path too long path=%s", path);
		return -ENAMETOOLONG;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->ops = ops;
	s->arg = arg;
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	make_parent(path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(path); /* a stale socket of an earlier run */
	old = umask(077);
	ret = s->fd < 0 || bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
			      listen(s->fd, 64) < 0
		      ? -errno
		      : 0;
	umask(old);
	if (!ret)
		ret = evloop_add_fd(loop, s->fd, EPOLLIN, on_accept, s);
	if (ret) {
		log_error("cannot listen on API socket path=%s error=%s", path, strerror(-ret));
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void api_server_free(struct api_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_free(s->conns, false);
	evloop_del_fd(s->loop, s->fd);
	close(s->fd);
	unlink(s->path);
	free(s);
}
