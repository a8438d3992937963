// SPDX-License-Identifier: MIT
/*
 * knit up/down/logout/ip/status/ping/netcheck: one JSON request to knitd's
 * socket, one or more JSON lines back (up may first say that the node waits
 * for approval).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "knit/commands.h"
#include "lib/buf.h"
#include "lib/clock.h"

#define ANSWER_MAX (16u << 20)

struct node_opts {
	bool json;
	bool only4, only6;
	const char *control, *control_key, *auth_key, *hostname;
	const char *peer;
	long timeout_s, count;
	bool all;
};

static int connect_knitd(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "knit: socket path too long: %s\n", path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	fprintf(stderr, "knit: cannot reach knitd at %s: %s (is knitd --state-dir running?)\n",
		path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Reads one line (without the newline) into out; false at EOF or timeout. */
static bool read_line(int fd, struct buf *in, char **line, uint64_t deadline_ns)
{
	for (;;) {
		uint8_t *nl = in->len ? memchr(in->data, '\n', in->len) : NULL;
		char chunk[4096];
		ssize_t n;
		if (nl) {
			*line = strndup((char *)in->data, (size_t)(nl - in->data));
			buf_consume(in, (size_t)(nl - in->data) + 1);
			return *line != NULL;
		}
		if (deadline_ns) {
			uint64_t now = clock_mono_ns();
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (now >= deadline_ns ||
			    poll(&p, 1, (int)((deadline_ns - now) / 1000000 + 1)) <= 0)
				return false;
		}
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0 || buf_append(in, chunk, (size_t)n) < 0)
			return false;
	}
}

static void print_human(const char *cmd, json_t *a, const struct node_opts *o);

static int request(const char *sock, json_t *req, const char *cmd, const struct node_opts *o)
{
	char *text = json_dumps(req, JSON_COMPACT), *line = NULL;
	uint64_t deadline = o->timeout_s ? clock_mono_ns() + o->timeout_s * 1000000000ULL : 0;
	int fd = connect_knitd(sock), ret = 1;
	struct buf in;

	buf_init(&in, ANSWER_MAX);
	if (fd < 0 || !text)
		goto out;
	size_t len = strlen(text);
	text[len] = '\n';
	if (write(fd, text, len + 1) != (ssize_t)(len + 1)) {
		fprintf(stderr, "knit: cannot send to knitd: %s\n", strerror(errno));
		goto out;
	}
	while (read_line(fd, &in, &line, deadline)) {
		json_t *a = json_loads(line, 0, NULL);
		bool final = json_is_boolean(json_object_get(a, "ok"));
		if (!a) {
			fprintf(stderr, "knit: knitd answered something that is not JSON\n");
			break;
		}
		if (o->json) {
			puts(line);
			fflush(stdout);
		} else {
			print_human(cmd, a, o);
		}
		if (final)
			ret = json_is_true(json_object_get(a, "ok")) ? 0 : 1;
		json_decref(a);
		free(line);
		line = NULL;
		if (final)
			goto out;
	}
	if (deadline && clock_mono_ns() >= deadline)
		fprintf(stderr, "knit: %s: no answer within %ld s (knit status says more)\n", cmd,
			o->timeout_s);
	else
		fprintf(stderr, "knit: knitd closed the connection without an answer\n");
out:
	free(line);
	free(text);
	buf_free(&in);
	if (fd >= 0)
		close(fd);
	return ret;
}

static const char *str(json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));

	return s ? s : "";
}

static void print_status(json_t *a)
{
	json_t *self = json_object_get(a, "self"), *peers = json_object_get(a, "peers"), *p;
	time_t now = time(NULL);
	size_t i;

	printf("state: %s%s%s\n", str(a, "backend_state"), *str(a, "error") ? "  error: " : "",
	       str(a, "error"));
	printf("%-15s %-20s self  home relay %lld\n", str(self, "ipv4"), str(self, "name"),
	       (long long)json_integer_value(json_object_get(self, "home_relay")));
	json_array_foreach(peers, i, p) {
		long long hs = json_integer_value(json_object_get(p, "last_handshake"));
		char path[64];
		if (!strcmp(str(p, "path"), "relay"))
			snprintf(path, sizeof(path), "relay %lld",
				 (long long)json_integer_value(json_object_get(p, "relay")));
		else if (!strcmp(str(p, "path"), "direct"))
			snprintf(path, sizeof(path), "direct %s", str(p, "endpoint"));
		else
			snprintf(path, sizeof(path), "-");
		printf("%-15s %-20s %-7s %-24s rx %lld tx %lld", str(p, "ipv4"), str(p, "name"),
		       json_is_true(json_object_get(p, "online")) ? "online" : "offline", path,
		       (long long)json_integer_value(json_object_get(p, "rx_bytes")),
		       (long long)json_integer_value(json_object_get(p, "tx_bytes")));
		if (hs)
			printf("  handshake %llds ago", (long long)(now - hs));
		putchar('\n');
	}
}

static const char *yes_no(json_t *v)
{
	return json_is_null(v) || !v ? "unknown" : json_is_true(v) ? "yes" : "no";
}

static void print_netcheck(json_t *a)
{
	json_t *pm = json_object_get(a, "portmap"), *relays = json_object_get(a, "relays"), *r;
	size_t i;

	if (json_is_true(json_object_get(a, "stale")))
		printf("(the check did not finish in time: the last result)\n");
	printf("UDP:          %s (IPv4 %s, IPv6 %s)\n", yes_no(json_object_get(a, "udp")),
	       yes_no(json_object_get(a, "ipv4")), yes_no(json_object_get(a, "ipv6")));
	if (*str(a, "mapped_v4"))
		printf("address:      %s\n", str(a, "mapped_v4"));
	if (*str(a, "mapped_v6"))
		printf("address v6:   %s\n", str(a, "mapped_v6"));
	printf("mapping:      %s\n", str(a, "mapping"));
	printf("filtering:    %s\n", str(a, "filtering"));
	printf("allocation:   %s\n", str(a, "allocation"));
	printf("hairpin:      %s\n", yes_no(json_object_get(a, "hairpin")));
	printf("public:       %s\n", yes_no(json_object_get(a, "public_address")));
	if (json_is_object(pm))
		printf("port mapping: PCP %s, NAT-PMP %s, UPnP %s\n",
		       yes_no(json_object_get(pm, "pcp")), yes_no(json_object_get(pm, "nat_pmp")),
		       yes_no(json_object_get(pm, "upnp")));
	else
		printf("port mapping: unknown (the gateway has not answered yet)\n");
	printf("home relay:   %lld\n",
	       (long long)json_integer_value(json_object_get(a, "home_relay")));
	json_array_foreach(relays, i, r) {
		json_t *v4 = json_object_get(r, "latency_us"),
		       *v6 = json_object_get(r, "latency_v6_us");
		printf("relay %-6lld %-16s",
		       (long long)json_integer_value(json_object_get(r, "id")), str(r, "region"));
		if (json_is_integer(v4))
			printf(" IPv4 %.2f ms", (double)json_integer_value(v4) / 1000);
		if (json_is_integer(v6))
			printf(" IPv6 %.2f ms", (double)json_integer_value(v6) / 1000);
		if (!json_is_integer(v4) && !json_is_integer(v6))
			printf(" no answer");
		printf("\n");
	}
}

static void print_human(const char *cmd, json_t *a, const struct node_opts *o)
{
	if (json_is_false(json_object_get(a, "ok"))) {
		fprintf(stderr, "knit: %s: %s\n", cmd, str(a, "error"));
	} else if (json_is_true(json_object_get(a, "pending"))) {
		printf("This node waits for the control server's admin to approve it:\n"
		       "    %s\n",
		       str(a, "approve"));
		fflush(stdout);
	} else if (json_is_true(json_object_get(a, "pong"))) {
		printf("pong from %s via %s in %.2f ms\n", o->peer, str(a, "endpoint"),
		       json_real_value(json_object_get(a, "rtt_ms")));
		fflush(stdout);
	} else if (!strcmp(cmd, "ping")) {
		if (!json_is_true(json_object_get(a, "direct")))
			printf("no direct path yet (knit status says why)\n");
	} else if (json_is_true(json_object_get(a, "progress"))) {
		fprintf(stderr, "knit: %s: still trying: %s\n", cmd, str(a, "error"));
	} else if (!strcmp(cmd, "ip")) {
		if (!o->only6)
			puts(str(a, "ipv4"));
		if (!o->only4)
			puts(str(a, "ipv6"));
	} else if (!strcmp(cmd, "status")) {
		print_status(a);
	} else if (!strcmp(cmd, "netcheck")) {
		print_netcheck(a);
	} else if (!strcmp(cmd, "up")) {
		printf("Logged in as %s\n", str(a, "name"));
	}
}

static int parse(int argc, char **argv, struct node_opts *o)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"control", required_argument, NULL, 'c'},
		{"control-key", required_argument, NULL, 'k'},
		{"auth-key", required_argument, NULL, 'a'},
		{"hostname", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"count", required_argument, NULL, 'C'},
		{"all", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "46h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': o->json = true; break;
		case '4': o->only4 = true; break;
		case '6': o->only6 = true; break;
		case 'c': o->control = optarg; break;
		case 'k': o->control_key = optarg; break;
		case 'a': o->auth_key = optarg; break;
		case 'n': o->hostname = optarg; break;
		case 'A': o->all = true; break;
		case 'C':
			o->count = strtol(optarg, &end, 10);
			if (*end || o->count < 1 || o->count > 999) {
				fprintf(stderr, "knit: --count takes 1 to 999\n");
				return 2;
			}
			break;
		case 't':
			o->timeout_s = strtol(optarg, &end, 10);
			if (*end || o->timeout_s < 0) {
				fprintf(stderr, "knit: --timeout takes seconds\n");
				return 2;
			}
			break;
		case 'h':
			printf("Usage: knit up --control URL --control-key KEY [--auth-key KEY]\n"
			       "               [--hostname NAME] [--timeout SECONDS] [--json]\n"
			       "       knit down|logout|status [--json]\n"
			       "       knit ip [-4|-6] [--json]\n"
			       "       knit netcheck [--json]\n"
			       "           what the network in front of this node does: UDP,\n"
			       "           NAT mapping and filtering, port allocation, hairpin,\n"
			       "           port mapping, latency to each relay\n"
			       "       knit ping PEER [--count N] [--all] [--json]\n"
			       "           pings through the relay until a direct path answers\n"
			       "           (--all: all N pings); PEER is a name or an address\n");
			exit(0);
		default: return 2;
		}
	}
	if (!strcmp(argv[0], "ping") && optind + 1 == argc)
		o->peer = argv[optind++];
	if (optind != argc) {
		fprintf(stderr, "knit: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

int cmd_node(const char *sock, int argc, char **argv)
{
	struct node_opts o = {0};
	const char *cmd = argv[0];
	json_t *req;
	int ret = parse(argc, argv, &o);

	if (ret)
		return ret;
	req = json_pack("{s:s}", "cmd", cmd);
	if (!strcmp(cmd, "up")) {
		if (!o.control || !o.control_key) {
			fprintf(stderr, "knit: up needs --control URL and --control-key KEY\n");
			json_decref(req);
			return 2;
		}
		json_object_set_new(req, "control", json_string(o.control));
		json_object_set_new(req, "control_key", json_string(o.control_key));
		if (o.auth_key)
			json_object_set_new(req, "auth_key", json_string(o.auth_key));
		if (o.hostname)
			json_object_set_new(req, "hostname", json_string(o.hostname));
	} else if (!strcmp(cmd, "ping")) {
		if (!o.peer) {
			fprintf(stderr, "knit: ping needs a PEER (a name or an address)\n");
			json_decref(req);
			return 2;
		}
		json_object_set_new(req, "peer", json_string(o.peer));
		json_object_set_new(req, "count", json_integer(o.count ? o.count : 10));
		json_object_set_new(req, "all", json_boolean(o.all));
		if (!o.timeout_s)
			o.timeout_s = (o.count ? o.count : 10) + 5;
	} else if (!o.timeout_s) {
		o.timeout_s = 10;
	}
	ret = request(sock, req, cmd, &o);
	json_decref(req);
	return ret;
}
