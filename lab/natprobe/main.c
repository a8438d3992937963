// SPDX-License-Identifier: MIT
/* natprobe: the command line (see natprobe.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab/natprobe/natprobe.h"
#include "lib/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: natprobe server --addr A1 [--addr A2] --port P1 [--port P2] [--verbose]\n"
		"       natprobe client --server A1:P1 [--json] [--timeout-ms N] [--verbose]\n"
		"\n"
		"server  answers STUN Binding requests on every (address, port) pair with\n"
		"        XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS, and honours\n"
		"        RFC 5780 CHANGE-REQUEST (needs two addresses and two ports).\n"
		"        Runs in the foreground until SIGTERM or SIGINT.\n"
		"client  classifies the NAT in front of it (RFC 5780 section 4) against a\n"
		"        natprobe server, and prints one \"key: value\" line per property:\n"
		"          udp: true|false\n"
		"          mapping: eim|adm|adpm\n"
		"          filtering: eif|adf|adpf\n"
		"          allocation: preserving|sequential|random\n"
		"          hairpin: true|false\n"
		"          mapped: IP:PORT\n"
		"        or with --json one object with these keys.  When the server never\n"
		"        answers, udp is false, the other properties are null (JSON) or\n"
		"        \"none\", and the exit status is still 0: that is a classification.\n"
		"        --timeout-ms N: how long to wait for one answer (default 2000);\n"
		"        each request is sent up to 8 times within it.\n"
		"\n"
		"Exit status: 0 classified / server stopped cleanly, 1 error.\n");
}

static int parse_port(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 65535)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_addr(const char *s, union sockaddr_inet *out)
{
	char buf[ENDPOINT_STRLEN];

	/* An address alone: reuse the endpoint parser with a dummy port. */
	if (strchr(s, ':'))
		snprintf(buf, sizeof(buf), "[%s]:1", s);
	else
		snprintf(buf, sizeof(buf), "%s:1", s);
	return endpoint_parse(buf, false, out);
}

static const struct option server_options[] = {
	{"addr", required_argument, NULL, 'a'},
	{"port", required_argument, NULL, 'p'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int cmd_server(int argc, char **argv)
{
	struct server_opts o;
	int c;

	memset(&o, 0, sizeof(o));
	log_set_level(LOG_LEVEL_INFO);
	while ((c = getopt_long(argc, argv, "a:p:vh", server_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (o.naddr == 2 || parse_addr(optarg, &o.addr[o.naddr]) < 0) {
				fprintf(stderr, "natprobe: server: bad or third --addr '%s'\n",
					optarg);
				return 1;
			}
			o.naddr++;
			break;
		case 'p':
			if (o.nport == 2 || parse_port(optarg, &o.port[o.nport]) < 0) {
				fprintf(stderr, "natprobe: server: bad or third --port '%s'\n",
					optarg);
				return 1;
			}
			o.nport++;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || o.naddr == 0 || o.nport == 0) {
		fprintf(stderr, "natprobe: server: needs --addr and --port (see --help)\n");
		return 1;
	}
	if (o.naddr == 2 && o.addr[0].sa.sa_family != o.addr[1].sa.sa_family) {
		fprintf(stderr, "natprobe: server: both --addr must be of one family\n");
		return 1;
	}
	if ((o.naddr == 2 && endpoint_equal(&o.addr[0], &o.addr[1])) ||
	    (o.nport == 2 && o.port[0] == o.port[1])) {
		fprintf(stderr, "natprobe: server: the two addresses and ports must differ\n");
		return 1;
	}
	return server_run(&o) < 0 ? 1 : 0;
}

static const struct option client_options[] = {
	{"server", required_argument, NULL, 's'},
	{"json", no_argument, NULL, 'j'},
	{"timeout-ms", required_argument, NULL, 't'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int cmd_client(int argc, char **argv)
{
	struct client_opts o = {.timeout_ms = 2000, .sockets = 8};
	bool have_server = false;
	char *end;
	int c, ret;

	while ((c = getopt_long(argc, argv, "s:jt:vh", client_options, NULL)) != -1) {
		switch (c) {
		case 's':
			ret = endpoint_parse(optarg, true, &o.server);
			if (ret < 0) {
				fprintf(stderr, "natprobe: client: bad --server '%s': %s\n", optarg,
					ret == -ENOENT ? "name does not resolve"
						       : "want IP:PORT or [IPv6]:PORT");
				return 1;
			}
			have_server = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 't':
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 80 || v > 60000) {
				fprintf(stderr, "natprobe: client: --timeout-ms wants 80..60000\n");
				return 1;
			}
			o.timeout_ms = (unsigned)v;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || !have_server) {
		fprintf(stderr, "natprobe: client: needs --server A1:P1 (see --help)\n");
		return 1;
	}
	return client_run(&o) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	log_set_level(LOG_LEVEL_WARN);
	if (!strcmp(argv[1], "server"))
		return cmd_server(argc - 1, argv + 1);
	if (!strcmp(argv[1], "client"))
		return cmd_client(argc - 1, argv + 1);
	fprintf(stderr, "natprobe: unknown command '%s' (see --help)\n", argv[1]);
	return 1;
}
