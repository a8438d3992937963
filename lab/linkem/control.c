// SPDX-License-Identifier: MIT
/*
 * linkem's control socket: a UNIX seqpacket socket, mode 0600, one JSON
 * request and one JSON answer per connection.
 *
 *   {"cmd":"stats"}                                   -> counters and settings
 *   {"cmd":"set","delay_us":N,"jitter_us":N,"loss_ppm":N}  (any subset)
 *                                                     -> {"ok":true,...}
 *   anything else                                     -> {"error":"..."}
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "linkem.h"

#define MAX_CLIENTS 16
#define MAX_MSG	    4096

struct control {
	struct evloop *loop;
	struct linkem_state *st;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int clients[MAX_CLIENTS];
};

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!path || !*path || strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

static json_t *params_json(const struct lk_params *p)
{
	return json_pack("{s:f, s:f, s:f}", "delay_ms", p->delay_us / 1000.0, "jitter_ms",
			 p->jitter_us / 1000.0, "loss_pct", p->loss_ppm / 10000.0);
}

json_t *linkem_stats_json(const struct linkem_state *st)
{
	const struct lk_stats *s = &st->sched.stats;
	json_t *o = params_json(&st->sched.params);

	if (!o)
		return NULL;
	json_object_set_new(o, "queue", json_integer(st->queue));
	json_object_set_new(o, "reorder", json_boolean(st->sched.reorder));
	json_object_set_new(o, "seen", json_integer((json_int_t)s->seen));
	json_object_set_new(o, "accepted", json_integer((json_int_t)s->accepted));
	json_object_set_new(o, "delayed", json_integer((json_int_t)s->delayed));
	json_object_set_new(o, "dropped",
			    json_integer((json_int_t)(s->dropped_loss + s->dropped_overflow)));
	json_object_set_new(o, "dropped_loss", json_integer((json_int_t)s->dropped_loss));
	json_object_set_new(o, "dropped_overflow", json_integer((json_int_t)s->dropped_overflow));
	json_object_set_new(o, "queued", json_integer((json_int_t)st->sched.len));
	json_object_set_new(o, "kernel_errors", json_integer((json_int_t)st->kernel_errors));
	return o;
}

static json_t *error_json(const char *msg)
{
	return json_pack("{s:s}", "error", msg);
}

/* One optional integer field in [0, max]; 0, or -EINVAL with *why set. */
static int get_field(json_t *req, const char *key, uint32_t max, uint32_t *out, const char **why)
{
	json_t *v = json_object_get(req, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)max) {
		*why = key;
		return -EINVAL;
	}
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static json_t *handle_set(struct linkem_state *st, json_t *req)
{
	struct lk_params p = st->sched.params;
	const char *why = NULL;
	char msg[96];
	json_t *ans;

	if (get_field(req, "delay_us", LK_MAX_DELAY_US, &p.delay_us, &why) ||
	    get_field(req, "jitter_us", LK_MAX_DELAY_US, &p.jitter_us, &why) ||
	    get_field(req, "loss_ppm", LK_LOSS_FULL, &p.loss_ppm, &why)) {
		snprintf(msg, sizeof(msg), "invalid %s", why);
		return error_json(msg);
	}
	lk_sched_set_params(&st->sched, &p);
	log_info("link changed delay_ms=%.3f jitter_ms=%.3f loss_pct=%.4f", p.delay_us / 1000.0,
		 p.jitter_us / 1000.0, p.loss_ppm / 10000.0);
	ans = params_json(&p);
	if (ans)
		json_object_set_new(ans, "ok", json_true());
	return ans;
}

static json_t *handle(struct linkem_state *st, const char *msg, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr), *ans;
	const char *cmd;

	if (!req || !json_is_object(req)) {
		json_decref(req);
		return error_json("request is not a JSON object");
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (cmd && !strcmp(cmd, "stats"))
		ans = linkem_stats_json(st);
	else if (cmd && !strcmp(cmd, "set"))
		ans = handle_set(st, req);
	else
		ans = error_json("unknown cmd");
	json_decref(req);
	return ans;
}

static void drop_client(struct control *c, int fd)
{
	int i;

	evloop_del_fd(c->loop, fd);
	close(fd);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i] == fd)
			c->clients[i] = -1;
}

static void client_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct control *c = arg;
	char buf[MAX_MSG];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	json_t *ans;
	char *out;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(c, fd);
		return;
	}
	ans = (size_t)n > sizeof(buf) ? error_json("request too long")
				      : handle(c->st, buf, (size_t)n);
	out = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
	if (out && send(fd, out, strlen(out), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_warn("control answer not sent error=%s", strerror(errno));
	free(out);
	json_decref(ans);
	drop_client(c, fd);
}

static void listen_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct control *c = arg;
	int cfd, i;

	for (;;) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		for (i = 0; i < MAX_CLIENTS && c->clients[i] >= 0; i++)
			;
		if (i == MAX_CLIENTS || evloop_add_fd(loop, cfd, EPOLLIN, client_cb, c) < 0) {
			close(cfd);
			continue;
		}
		c->clients[i] = cfd;
	}
}

/* A socket file left by a dead instance is removed; a live one is not. */
static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, err = 0;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		err = -EADDRINUSE;
	else if (errno == ECONNREFUSED && unlink(sa->sun_path) < 0)
		err = -errno;
	close(fd);
	return err;
}

int control_listen(struct control **out, struct evloop *loop, const char *path,
		   struct linkem_state *st)
{
	struct sockaddr_un sa;
	struct control *c;
	mode_t old;
	int err, i;

	err = make_addr(path, &sa);
	if (err)
		return err;
	err = clear_stale(&sa);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->st = st;
	c->fd = -1;
	for (i = 0; i < MAX_CLIENTS; i++)
		c->clients[i] = -1;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		goto fail_errno;
	old = umask(0177); /* the file is born 0600 */
	err = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (err < 0)
		goto fail_errno;
	strcpy(c->path, path);
	if (chmod(path, 0600) < 0 || listen(c->fd, MAX_CLIENTS) < 0)
		goto fail_errno;
	err = evloop_add_fd(loop, c->fd, EPOLLIN, listen_cb, c);
	if (err)
		goto fail;
	*out = c;
	return 0;
fail_errno:
	err = -errno;
fail:
	control_close(c);
	return err;
}

void control_close(struct control *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i] >= 0)
			drop_client(c, c->clients[i]);
	if (c->fd >= 0) {
		evloop_del_fd(c->loop, c->fd);
		close(c->fd);
	}
	if (c->path[0])
		unlink(c->path);
	free(c);
}

int control_request(const char *path, json_t *req, json_t **answer)
{
	struct sockaddr_un sa;
	struct pollfd pfd;
	char buf[MAX_MSG];
	json_error_t jerr;
	char *msg = NULL;
	ssize_t n;
	int fd = -1, err;

	err = make_addr(path, &sa);
	if (err) {
		fprintf(stderr, "linkem: control path %s: too long or empty\n", path);
		return err;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		fprintf(stderr, "linkem: cannot reach the instance at %s: %s\n", path,
			strerror(-err));
		goto out;
	}
	msg = json_dumps(req, JSON_COMPACT);
	if (!msg || send(fd, msg, strlen(msg), MSG_NOSIGNAL) < 0) {
		err = msg ? -errno : -ENOMEM;
		fprintf(stderr, "linkem: cannot send to %s: %s\n", path, strerror(-err));
		goto out;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 3000) <= 0) {
		err = -ETIMEDOUT;
		fprintf(stderr, "linkem: no answer from %s within 3 s\n", path);
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		err = n < 0 ? -errno : -ECONNRESET;
		fprintf(stderr, "linkem: no answer from %s: %s\n", path, strerror(-err));
		goto out;
	}
	*answer = json_loadb(buf, (size_t)n, 0, &jerr);
	if (!*answer || !json_is_object(*answer)) {
		json_decref(*answer);
		*answer = NULL;
		err = -EPROTO;
		fprintf(stderr, "linkem: malformed answer from %s\n", path);
	}
out:
	free(msg);
	if (fd >= 0)
		close(fd);
	return err;
}
