// SPDX-License-Identifier: MIT
/*
 * How knit-control scales: N nodes (in this process, each with its own key
 * and TCP session, on one event loop) log in to a knit-control serve on
 * loopback, then one node changes its endpoints and every other node must
 * hear of it.  Prints, for each N, the time for all N to hold the full map
 * and the time for one change to reach all N - 1 others.  A change costs
 * control O(N) (one delta per connected node); the full maps are N x (N - 1)
 * entries by nature of a full mesh.  Built by `make bench`; run by
 * bench/control_scale.sh, which starts the server.  Traffic: loopback only.
 *
 *   build/bench/control_scale URL CONTROL_KEY AUTH_KEY N
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "control/client.h"
#include "control/netmap.h"
#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/log.h"

struct node {
	struct bench *b;
	struct control_client *c;
	unsigned peers;	 /* distinct peers in the map */
	uint8_t *seen;	 /* by peer index */
	bool full, saw_change, logged_in;
	int index;
};

struct bench {
	struct evloop *loop;
	struct node *nodes;
	unsigned n, full, logged_in, saw_change;
	const char *auth;
	uint64_t change_at;
	uint8_t changer_key[32];
	struct ev_timer deadline;
};

static void on_connected(void *arg)
{
	struct node *nd = arg;
	char host[32];
	json_t *m;

	snprintf(host, sizeof(host), "bench-%d", nd->index);
	m = json_pack("{s:s,s:s,s:s,s:[],s:i}", "type", "login", "hostname", host, "auth_key",
		      nd->b->auth, "endpoints", "home_relay", 0);
	json_object_set_new(m, "disco_key", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
	control_client_send(nd->c, m);
	json_decref(m);
}

static void on_message(void *arg, json_t *msg)
{
	struct node *nd = arg;
	struct bench *b = nd->b;
	const char *type = json_string_value(json_object_get(msg, "type"));
	json_t *peers = json_object_get(msg, "peers"), *v;
	size_t i;

	if (!strcmp(type, "login-result") && json_is_true(json_object_get(msg, "ok")) &&
	    !nd->logged_in) {
		nd->logged_in = true;
		b->logged_in++;
	}
	if (strcmp(type, "map"))
		return;
	json_array_foreach(peers, i, v) {
		uint8_t key[32];
		if (b->change_at && !nd->saw_change && json_get_key(v, "node_key", key) == 0 &&
		    !memcmp(key, b->changer_key, 32) && json_array_size(json_object_get(v, "endpoints"))) {
			nd->saw_change = true;
			if (++b->saw_change == b->n - 1)
				evloop_stop(b->loop);
		}
	}
	json_array_foreach(peers, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		int idx = name && !strncmp(name, "bench-", 6) ? atoi(name + 6) : -1;
		if (idx >= 0 && (unsigned)idx < b->n && !nd->seen[idx]) {
			nd->seen[idx] = 1;
			nd->peers++;
		}
	}
	if (!nd->full && nd->peers == b->n - 1) {
		nd->full = true; /* it knows every other node */
		if (++b->full == b->n)
			evloop_stop(b->loop);
	}
}

static void on_disconnected(void *arg, const char *why)
{
	fprintf(stderr, "control_scale: a session ended: %s\n", why);
}

static const struct control_client_ops ops = {on_connected, on_message, on_disconnected};

static void timeout(struct evloop *loop, struct ev_timer *t, void *arg)
{
	fprintf(stderr, "control_scale: timed out\n");
	evloop_stop(loop);
}

int main(int argc, char **argv)
{
	struct rlimit rl = {65536, 65536};
	struct bench b = {0};
	uint8_t ctl[32], priv[32];
	uint64_t t0, t_login, t_change;

	if (argc != 5 || key_from_base64(ctl, argv[2]) < 0 || (b.n = (unsigned)atoi(argv[4])) < 2) {
		fprintf(stderr, "usage: control_scale URL CONTROL_KEY AUTH_KEY N\n");
		return 2;
	}
	setrlimit(RLIMIT_NOFILE, &rl);
	crypto_init();
	log_set_level(LOG_LEVEL_ERROR);
	b.auth = argv[3];
	b.nodes = calloc(b.n, sizeof(*b.nodes));
	evloop_new(&b.loop);
	ev_timer_init(&b.deadline, timeout, &b);
	evloop_timer_arm(b.loop, &b.deadline, clock_mono_ns() + 300ULL * 1000000000ULL);
	t0 = clock_mono_ns();
	for (unsigned i = 0; i < b.n; i++) {
		b.nodes[i] = (struct node){.b = &b, .index = (int)i, .seen = calloc(b.n, 1)};
		x25519_generate(priv);
		if (i == 0)
			x25519_public(b.changer_key, priv);
		if (control_client_new(&b.nodes[i].c, b.loop, argv[1], ctl, priv, &ops, &b.nodes[i]) < 0)
			return 1;
	}
	evloop_run(b.loop);
	t_login = clock_mono_ns() - t0;
	if (b.full != b.n) {
		fprintf(stderr, "control_scale: only %u of %u nodes have their map\n", b.full, b.n);
		return 1;
	}
	/* One node changes its endpoints: how long until everyone knows? */
	json_t *m = json_pack("{s:s,s:[s]}", "type", "update", "endpoints", "192.0.2.1:41641");
	b.change_at = clock_mono_ns();
	control_client_send(b.nodes[0].c, m);
	json_decref(m);
	evloop_run(b.loop);
	t_change = clock_mono_ns() - b.change_at;
	printf("{\"nodes\": %u, \"all_logged_in_with_full_map_ms\": %.1f, "
	       "\"one_change_reaches_all_ms\": %.2f, \"reached\": %u}\n",
	       b.n, t_login / 1e6, t_change / 1e6, b.saw_change);
	for (unsigned i = 0; i < b.n; i++) {
		control_client_free(b.nodes[i].c);
		free(b.nodes[i].seen);
	}
	evloop_free(b.loop);
	free(b.nodes);
	return b.saw_change == b.n - 1 ? 0 : 1;
}
