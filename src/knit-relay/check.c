// SPDX-License-Identifier: MIT
/*
 * knit-relay check --server HOST:PORT --relay-key KEY [--node-key-file F]:
 * connects to a relay as a node would, with the given node key (or a fresh
 * one), and says whether the relay admits it.  Exit 0: admitted; 1: refused
 * or unreachable, with the relay's reason; 2: bad usage.
 */
#include "knit-relay/check.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/evloop.h"
#include "lib/keyfile.h"
#include "relay/client.h"

struct check {
	struct evloop *loop;
	int status;
	char why[256];
	bool decided;
};

static void on_recv(void *arg, const uint8_t src[32], const uint8_t *pkt, size_t len)
{
}

static void on_gone(void *arg, const uint8_t key[32], int reason)
{
}

static void on_state(void *arg, bool connected, const char *why)
{
	struct check *c = arg;

	if (c->decided)
		return;
	c->decided = true;
	c->status = connected ? 0 : 1;
	snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
	evloop_stop(c->loop);
}

static void timeout(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct check *c = arg;

	snprintf(c->why, sizeof(c->why), "no answer within 5 s");
	evloop_stop(loop);
}

static const struct relay_client_ops ops = {.recv = on_recv, .peer_gone = on_gone, .state = on_state};

int check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, 's'},
		{"relay-key", required_argument, NULL, 'k'},
		{"node-key-file", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *server = NULL, *relay_key = NULL, *key_file = NULL;
	uint8_t relay_pub[32], priv[32], pub[32];
	char host[256], pub64[KEY_BASE64_LEN + 1];
	struct check c = {.status = 1};
	struct relay_client *rc = NULL;
	union sockaddr_inet ep;
	struct ev_timer t;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:k:f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': server = optarg; break;
		case 'k': relay_key = optarg; break;
		case 'f': key_file = optarg; break;
		case 'h':
			printf("Usage: knit-relay check --server HOST:PORT --relay-key KEY "
			       "[--node-key-file FILE]\n\n"
			       "Connects as a node (a fresh key unless FILE is given) and says\n"
			       "whether the relay admits it.  Exit 0 admitted, 1 refused.\n");
			return 0;
		default: return 2;
		}
	}
	if (!server || !relay_key || optind != argc || endpoint_parse(server, false, &ep) < 0 ||
	    key_from_base64(relay_pub, relay_key) < 0) {
		fprintf(stderr, "knit-relay check: need --server IP:PORT and --relay-key KEY\n");
		return 2;
	}
	if (key_file ? keyfile_load(key_file, priv) < 0 : (x25519_generate(priv), 0)) {
		fprintf(stderr, "knit-relay check: cannot read a key from %s\n", key_file);
		return 2;
	}
	x25519_public(pub, priv);
	key_to_base64(pub64, pub);
	endpoint_unmap(&ep, &ep);
	if (ep.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &ep.in.sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &ep.in6.sin6_addr, host, sizeof(host));
	if (evloop_new(&c.loop) < 0 ||
	    relay_client_new(&rc, c.loop, host, ntohs(ep.in.sin_port), relay_pub, priv, &ops, &c) < 0)
		return 1;
	memzero_explicit(priv, sizeof(priv));
	ev_timer_init(&t, timeout, &c);
	evloop_timer_arm(c.loop, &t, clock_mono_ns() + 5000000000ULL);
	evloop_run(c.loop);
	evloop_timer_cancel(c.loop, &t);
	relay_client_free(rc);
	evloop_free(c.loop);
	if (c.status == 0)
		printf("admitted node_key=%s\n", pub64);
	else
		printf("refused node_key=%s reason=\"%s\"\n", pub64, c.why);
	return c.status;
}
