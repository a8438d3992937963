// SPDX-License-Identifier: MIT
/*
 * knit-control serve: accepts control sessions from nodes and relays, logs
 * nodes in against the store, and keeps everyone's map current (peermap.c).
 * One thread, one event loop.  Admin commands change the store from another
 * process; a 100 ms poll of SQLite's data_version notices them.
 */
#include "knit-control/server.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/conn.h"
#include "control/netmap.h"
#include "crypto/crypto.h"
#include "knit-control/peermap.h"
#include "knit-control/store.h"
#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/evloop.h"
#include "lib/keyfile.h"
#include "lib/log.h"

#define POLL_MS		  100
#define MAX_SESSIONS	  65536
#define LOGIN_HOSTNAME_MAX 255

struct server {
	struct evloop *loop;
	struct store *store;
	struct peermap pm;
	uint8_t priv[32];
	int listen_fd;
	size_t n_sessions;
	int64_t data_version;
	int64_t change_seq;
	struct ev_timer poll;
	struct ev_timer expiry;
};

static void session_unlink(struct peermap *pm, struct session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		pm->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static void send_msg(struct session *s, json_t *msg)
{
	if (msg)
		ctl_conn_send(s->conn, msg);
	json_decref(msg);
}

static void refuse(struct session *s, const char *type, const char *why)
{
	log_warn("%s refused peer=%s error=\"%s\"", type, ctl_conn_peer_name(s->conn), why);
	send_msg(s, json_pack("{s:s,s:b,s:s}", "type", type, "ok", 0, "error", why));
	ctl_conn_finish(s->conn, why);
}

static void node_update(struct session *s, struct node_rt *r, json_t *msg)
{
	struct peermap *pm = s->pm;
	json_t *eps = json_object_get(msg, "endpoints"), *relay = json_object_get(msg, "home_relay");
	uint8_t disco[32];

	if (eps) {
		unsigned n;
		if (json_get_endpoints(eps, r->endpoints, NETMAP_MAX_ENDPOINTS, &n) == 0)
			r->n_endpoints = n;
		else
			log_warn("bad endpoints ignored node=%s peer=%s", r->n.name,
				 ctl_conn_peer_name(s->conn));
	}
	if (json_object_get(msg, "nat")) {
		struct nat_class nat;
		if (netmap_nat_from_json(json_object_get(msg, "nat"), &nat) == 0) {
			r->nat = nat;
			r->has_nat = true;
		} else {
			log_warn("bad nat class ignored node=%s peer=%s", r->n.name,
				 ctl_conn_peer_name(s->conn));
		}
	}
	if (json_is_integer(relay) && json_integer_value(relay) >= 0 &&
	    json_integer_value(relay) <= 65535)
		r->home_relay = (int)json_integer_value(relay);
	/* A node logs in before it knows the relay map: until it picks its
	 * home relay, peers reach it through the first one (which it connects
	 * to when it gets the map), not through nothing. */
	if (!r->home_relay && pm->n_relays)
		r->home_relay = pm->relays[0].id;
	if (json_get_key(msg, "disco_key", disco) == 0 &&
	    !crypto_memeq(disco, r->n.disco_key, 32) &&
	    store_node_set_disco_key(pm->store, r->n.id, disco) == 0)
		memcpy(r->n.disco_key, disco, 32);
	peermap_mark_dirty(pm, r);
}

static void attach(struct session *s, struct node_rt *r)
{
	struct session *old = r->session ? r->session : r->pending;

	if (old && old != s) {
		ctl_conn_finish(old->conn, "replaced by a newer connection");
		old->node = NULL;
		old->kind = SESSION_NEW;
	}
	r->session = r->pending = NULL;
	s->node = r;
	if (r->n.approved) {
		s->kind = SESSION_NODE;
		r->session = s;
	} else {
		s->kind = SESSION_PENDING;
		r->pending = s;
	}
}

static void login_ok(struct session *s, struct node_rt *r)
{
	struct netmap_peer self;

	json_t *m;

	node_entry(r, &self);
	m = json_pack("{s:s,s:b,s:o}", "type", "login-result", "ok", 1, "self",
		      netmap_peer_to_json(&self));
	peermap_add_prefixes(s->pm, m);
	send_msg(s, m);
}

static void login(struct server *srv, struct session *s, json_t *msg)
{
	const uint8_t *key = ctl_conn_remote_key(s->conn);
	const char *host = json_string_value(json_object_get(msg, "hostname"));
	const char *authkey = json_string_value(json_object_get(msg, "auth_key"));
	const char *why = NULL;
	struct store_node n;
	struct node_rt *r;
	char approve[96];
	int ret;

	if (s->kind != SESSION_NEW)
		return refuse(s, "login-result", "already logged in");
	if (host && strlen(host) > LOGIN_HOSTNAME_MAX)
		return refuse(s, "login-result", "hostname is too long");
	ret = store_node_register(srv->store, key, host, authkey, &n, &why);
	if (ret == -EACCES)
		return refuse(s, "login-result", why);
	if (ret)
		return refuse(s, "login-result", "control cannot store the node");
	if (store_node_expired(&n, store_now(srv->store))) {
		send_msg(s, json_pack("{s:s,s:b,s:b,s:s}", "type", "login-result", "ok", 0,
				      "expired", 1, "error",
				      "node key expired: log in again with an auth key"));
		ctl_conn_finish(s->conn, "node key expired");
		return;
	}
	r = peermap_upsert(&srv->pm, &n);
	if (!r)
		return refuse(s, "login-result", "control is out of memory");
	attach(s, r);
	/* A node may log in from another network: the NAT class it had is
	 * stale until it says otherwise (its netcheck, or this login). */
	r->has_nat = false;
	node_update(s, r, msg);
	store_node_set_last_seen(srv->store, n.id, store_now(srv->store));
	if (s->kind == SESSION_PENDING) {
		snprintf(approve, sizeof(approve), "knit-control node approve %lld",
			 (long long)n.id);
		log_info("node waits for approval node=%s id=%lld peer=%s", n.name,
			 (long long)n.id, ctl_conn_peer_name(s->conn));
		send_msg(s, json_pack("{s:s,s:b,s:b,s:I,s:s}", "type", "login-result", "ok", 0,
				      "pending", 1, "node_id", (json_int_t)n.id, "approve",
				      approve));
		return;
	}
	log_info("node logged in node=%s id=%lld ipv4=%s peer=%s", n.name, (long long)n.id,
		 n.ipv4, ctl_conn_peer_name(s->conn));
	/* Relays and peers first, then the node: by the time it connects to a
	 * relay, the relay admits it.  The flush also sends it the full map,
	 * which it reads after the login result (the order on its stream). */
	login_ok(s, r);
	peermap_flush_now(&srv->pm);
}

static void relay_hello(struct server *srv, struct session *s)
{
	struct store_relay relay;

	if (s->kind != SESSION_NEW)
		return refuse(s, "relay-result", "already said hello");
	if (store_relay_get_by_key(srv->store, ctl_conn_remote_key(s->conn), &relay) < 0)
		return refuse(s, "relay-result", "relay key not known to control");
	s->kind = SESSION_RELAY;
	log_info("relay connected relay=%lld peer=%s", (long long)relay.id,
		 ctl_conn_peer_name(s->conn));
	peermap_send_relay_full(&srv->pm, s);
}

static void on_message(struct ctl_conn *c, json_t *msg, void *arg)
{
	struct session *s = arg;
	struct server *srv = (struct server *)((char *)s->pm - offsetof(struct server, pm));
	const char *type = json_string_value(json_object_get(msg, "type"));

	if (strcmp(type, "ping") == 0)
		send_msg(s, json_pack("{s:s}", "type", "pong"));
	else if (strcmp(type, "login") == 0)
		login(srv, s, msg);
	else if (strcmp(type, "relay-hello") == 0)
		relay_hello(srv, s);
	else if (strcmp(type, "update") == 0 && s->kind == SESSION_NODE && s->node)
		node_update(s, s->node, msg);
	else
		log_debug("control message ignored type=%.32s peer=%s", type,
			  ctl_conn_peer_name(c));
}

static void on_closed(struct ctl_conn *c, const char *why, void *arg)
{
	struct session *s = arg;
	struct server *srv = (struct server *)((char *)s->pm - offsetof(struct server, pm));
	struct node_rt *r = s->node;

	if (r && (r->session == s || r->pending == s)) {
		if (r->session == s) {
			r->session = NULL;
			peermap_mark_dirty(&srv->pm, r); /* now offline */
			store_node_set_last_seen(srv->store, r->n.id, store_now(srv->store));
		}
		if (r->pending == s)
			r->pending = NULL;
		log_info("node disconnected node=%s reason=\"%s\"", r->n.name, why);
	}
	session_unlink(&srv->pm, s);
	srv->n_sessions--;
	free(s);
}

static const struct ctl_conn_ops session_ops = {
	.message = on_message,
	.closed = on_closed,
};

static void on_accept(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct server *srv = arg;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct session *s;

		if (cfd < 0)
			return; /* EAGAIN, or a transient error: the loop calls again */
		s = srv->n_sessions < MAX_SESSIONS ? calloc(1, sizeof(*s)) : NULL;
		if (!s) {
			close(cfd);
			continue;
		}
		s->pm = &srv->pm;
		if (ctl_conn_accept(&s->conn, loop, cfd, srv->priv, &session_ops, s) < 0) {
			close(cfd);
			free(s);
			continue;
		}
		s->next = srv->pm.sessions;
		if (s->next)
			s->next->prev = s;
		srv->pm.sessions = s;
		srv->n_sessions++;
	}
}

static int apply_change(const struct store_change *ch, void *arg)
{
	struct server *srv = arg;

	if (ch->kind == STORE_RELAY_CHANGED)
		peermap_relays_changed(&srv->pm);
	else
		peermap_reload(&srv->pm, ch->node_id);
	return 0;
}

static void poll_store(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct server *srv = arg;
	int64_t v;

	if (store_data_version(srv->store, &v) == 0 && v != srv->data_version) {
		srv->data_version = v;
		store_changes_since(srv->store, srv->change_seq, apply_change, srv,
				    &srv->change_seq);
	}
	evloop_timer_arm(loop, t, clock_mono_ns() + POLL_MS * 1000000ULL);
}

static void check_expiry(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct server *srv = arg;

	peermap_check_expiry(&srv->pm);
	evloop_timer_arm(loop, t, clock_mono_ns() + 1000000000ULL);
}

static int listen_on(const char *spec)
{
	union sockaddr_inet sa;
	int fd, one = 1;

	if (endpoint_parse(spec, false, &sa) < 0) {
		log_error("bad --listen address=%s (want IP:PORT or [IPv6]:PORT)", spec);
		return -EINVAL;
	}
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, &sa.sa, endpoint_len(&sa)) < 0 || listen(fd, 1024) < 0) {
		int err = errno;
		log_error("cannot listen address=%s error=%s", spec, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static void stop(struct evloop *loop, int signo, void *arg)
{
	evloop_stop(loop);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: knit-control serve --listen ADDR:PORT --state-dir DIR [options]\n"
		   "\n"
		   "Runs the control server in the foreground, logging to standard error.\n"
		   "\n"
		   "  -L, --listen ADDR:PORT  TCP address for nodes and relays (e.g. 0.0.0.0:8080)\n"
		   "  -d, --state-dir DIR     keeps control.key (mode 0600) and control.db\n"
		   "      --db URL            the store: sqlite (the default, DIR/control.db)\n"
		   "  -l, --log-level LEVEL   error, warn, info (default) or debug\n"
		   "  -h, --help              this help\n"
		   "\n"
		   "On first start it creates the control key and prints its public half;\n"
		   "`knit-control key` prints it again.  SIGINT or SIGTERM stop it.\n");
}

struct serve_options {
	const char *listen;
	const char *state_dir;
	const char *db;
};

static int parse_options(int argc, char **argv, struct serve_options *o)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'L'},
		{"state-dir", required_argument, NULL, 'd'},
		{"db", required_argument, NULL, 'D'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum log_level level;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "L:d:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'L': o->listen = optarg; break;
		case 'd': o->state_dir = optarg; break;
		case 'D': o->db = optarg; break;
		case 'l':
			if (log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "knit-control: bad --log-level %s\n", optarg);
				return 2;
			}
			log_set_level(level);
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !o->listen || !o->state_dir) {
		usage(stderr);
		return 2;
	}
	if (o->db && strcmp(o->db, "sqlite") != 0) {
		fprintf(stderr, "knit-control: --db %s: only \"sqlite\" is supported\n", o->db);
		return 2;
	}
	return 0;
}

static int start(struct server *srv, const struct serve_options *o)
{
	char path[4096], pub64[KEY_BASE64_LEN + 1];
	uint8_t pub[32];
	bool created;

	if (store_open(&srv->store, o->state_dir) < 0)
		return -EIO;
	snprintf(path, sizeof(path), "%s/control.key", o->state_dir);
	if (keyfile_load_or_create(path, srv->priv, &created) < 0)
		return -EIO;
	x25519_public(pub, srv->priv);
	key_to_base64(pub64, pub);
	if (created) {
		printf("control key: %s\n", pub64);
		fflush(stdout);
	}
	log_info("control key key=%s", pub64);
	if (evloop_new(&srv->loop) < 0 || peermap_init(&srv->pm, srv->loop, srv->store) < 0)
		return -ENOMEM;
	store_changes_last(srv->store, &srv->change_seq);
	store_data_version(srv->store, &srv->data_version);
	srv->listen_fd = listen_on(o->listen);
	if (srv->listen_fd < 0)
		return srv->listen_fd;
	evloop_add_fd(srv->loop, srv->listen_fd, EPOLLIN, on_accept, srv);
	evloop_add_signal(srv->loop, SIGINT, stop, srv);
	evloop_add_signal(srv->loop, SIGTERM, stop, srv);
	signal(SIGPIPE, SIG_IGN);
	ev_timer_init(&srv->poll, poll_store, srv);
	ev_timer_init(&srv->expiry, check_expiry, srv);
	evloop_timer_arm(srv->loop, &srv->poll, 0);
	evloop_timer_arm(srv->loop, &srv->expiry, 0);
	log_info("control listening address=%s nodes=%zu relays=%zu", o->listen, srv->pm.count,
		 srv->pm.n_relays);
	return 0;
}

static void shutdown_server(struct server *srv)
{
	while (srv->pm.sessions) {
		struct session *s = srv->pm.sessions;
		srv->pm.sessions = s->next;
		ctl_conn_free(s->conn);
		free(s);
	}
	if (srv->loop) {
		evloop_timer_cancel(srv->loop, &srv->poll);
		evloop_timer_cancel(srv->loop, &srv->expiry);
		peermap_destroy(&srv->pm);
	}
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	evloop_free(srv->loop);
	store_close(srv->store);
	memzero_explicit(srv->priv, sizeof(srv->priv));
}

int serve_main(int argc, char **argv)
{
	struct serve_options o = {0};
	struct server srv = {.listen_fd = -1};
	int ret = parse_options(argc, argv, &o);

	if (ret)
		return ret;
	if (crypto_init() < 0)
		return 1;
	ret = start(&srv, &o);
	if (ret == 0)
		ret = evloop_run(srv.loop);
	shutdown_server(&srv);
	return ret ? 1 : 0;
}
