// SPDX-License-Identifier: MIT
/*
 * knit-relay: carries packets between knit nodes that have no direct path,
 * and answers STUN.  `serve` runs it; `key` prints its public key.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "knit-relay/check.h"
#include "knit-relay/relay.h"
#include "knit-relay/stun_server.h"
#include "lib/encoding.h"
#include "lib/evloop.h"
#include "lib/keyfile.h"
#include "lib/log.h"
#include "net/httpup.h"

#define KEY_FILE "relay.key"

struct options {
	const char *listen, *stun, *stun_alt, *control_url, *control_key, *state_dir;
	uint8_t control_pub[32];
	struct relay_config cfg;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: knit-relay serve --listen ADDR:PORT --stun ADDR:PORT --control URL\n"
		"                        --control-key KEY --state-dir DIR [options]\n"
		"       knit-relay key --state-dir DIR\n"
		"       knit-relay check --server HOST:PORT --relay-key KEY [--node-key-file F]\n"
		"\n"
		"serve: relays packets between the nodes control admits, over TCP (HTTP/1.1\n"
		"Upgrade to knit-relay), and answers STUN Binding requests on UDP.\n"
		"key: prints the relay's public key (generated in DIR/" KEY_FILE " on first use).\n"
		"\n"
		"  --listen ADDR:PORT      TCP address, e.g. [::]:443 (IPv4 and IPv6) or "
		"192.0.2.1:443\n"
		"  --stun ADDR:PORT        UDP address for STUN, e.g. [::]:3478\n"
		"  --stun-alt ADDR:PORT    a second address and port of this host: STUN then\n"
		"                          answers RFC 5780 CHANGE-REQUEST and sends\n"
		"                          OTHER-ADDRESS (nodes classify NAT filtering);\n"
		"                          --stun must then be a specific address\n"
		"  --control URL           control server, http://HOST:PORT\n"
		"  --control-key KEY       control's public key (base64), pinned\n"
		"  --state-dir DIR         where the relay key lives (created 0700)\n"
		"  --max-conns N           open TCP connections (default %u)\n"
		"  --queue-bytes N         each client's send queue (default %u)\n"
		"  --log-level LEVEL       error, warn, info (default) or debug\n"
		"  -h, --help              this help\n"
		"\n"
		"SIGUSR1 logs the counters; SIGINT or SIGTERM stop it.\n",
		RELAY_DEFAULT_MAX_CONNS, RELAY_DEFAULT_QUEUE_BYTES);
}

static int parse_number(const char *opt, const char *s, unsigned long min, unsigned long max,
			unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out < min || *out > max) {
		fprintf(stderr, "knit-relay: %s: '%s' is not a number in %lu..%lu\n", opt, s, min,
			max);
		return -EINVAL;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'L'},
		{"stun", required_argument, NULL, 'S'},
		{"stun-alt", required_argument, NULL, 'A'},
		{"control", required_argument, NULL, 'C'},
		{"control-key", required_argument, NULL, 'K'},
		{"state-dir", required_argument, NULL, 'd'},
		{"max-conns", required_argument, NULL, 'm'},
		{"queue-bytes", required_argument, NULL, 'q'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum log_level level;
	unsigned long n;
	int c;

	relay_config_defaults(&o->cfg);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'L':
			o->listen = optarg;
			break;
		case 'S':
			o->stun = optarg;
			break;
		case 'A':
			o->stun_alt = optarg;
			break;
		case 'C':
			o->control_url = optarg;
			break;
		case 'K':
			o->control_key = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'm':
			if (parse_number("--max-conns", optarg, 1, 1000000, &n) < 0)
				return -EINVAL;
			o->cfg.max_conns = (unsigned)n;
			break;
		case 'q':
			if (parse_number("--queue-bytes", optarg, 65536 + 128, 1ul << 30, &n) < 0)
				return -EINVAL;
			o->cfg.queue_bytes = n;
			break;
		case 'l':
			if (log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "knit-relay: invalid log level '%s'\n", optarg);
				return -EINVAL;
			}
			log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "knit-relay: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->state_dir) {
		fprintf(stderr, "knit-relay: --state-dir DIR is required\n");
		return -EINVAL;
	}
	return 0;
}

/* Everything serve needs, checked before anything is opened. */
static int check_serve_options(struct options *o)
{
	const char *why;
	char host[256];
	uint16_t port;

	if (!o->listen || !o->stun || !o->control_url || !o->control_key) {
		fprintf(stderr, "knit-relay: serve needs --listen, --stun, --control and "
				"--control-key (see --help)\n");
		return -EINVAL;
	}
	if (endpoint_parse(o->listen, false, &o->cfg.listen) < 0) {
		fprintf(stderr, "knit-relay: --listen: '%s' is not ADDR:PORT\n", o->listen);
		return -EINVAL;
	}
	if (endpoint_parse(o->stun, false, &o->cfg.stun) < 0) {
		fprintf(stderr, "knit-relay: --stun: '%s' is not ADDR:PORT\n", o->stun);
		return -EINVAL;
	}
	if (o->stun_alt && endpoint_parse(o->stun_alt, false, &o->cfg.stun_alt) < 0) {
		fprintf(stderr, "knit-relay: --stun-alt: '%s' is not ADDR:PORT\n", o->stun_alt);
		return -EINVAL;
	}
	if (o->stun_alt && stun_server_check_alt(&o->cfg.stun, &o->cfg.stun_alt, &why) < 0) {
		fprintf(stderr, "knit-relay: --stun-alt: %s\n", why);
		return -EINVAL;
	}
	if (httpup_parse_url(o->control_url, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "knit-relay: --control: '%s' is not http://HOST:PORT\n",
			o->control_url);
		return -EINVAL;
	}
	if (key_from_base64(o->control_pub, o->control_key) < 0) {
		fprintf(stderr, "knit-relay: --control-key: not a base64 public key\n");
		return -EINVAL;
	}
	return 0;
}

static int load_key(const char *dir, uint8_t priv[32])
{
	char path[PATH_MAX];
	bool created;
	int ret;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "knit-relay: cannot create %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/" KEY_FILE, dir) >= sizeof(path))
		return -ENAMETOOLONG;
	ret = keyfile_load_or_create(path, priv, &created);
	if (ret == 0 && created)
		log_info("relay key generated path=%s", path);
	return ret;
}

static int cmd_key(struct options *o)
{
	uint8_t priv[32], pub[32];
	char text[KEY_BASE64_LEN + 1];
	int ret = load_key(o->state_dir, priv);

	if (ret == 0)
		ret = x25519_public(pub, priv);
	memzero_explicit(priv, sizeof(priv));
	if (ret < 0)
		return 1;
	key_to_base64(text, pub);
	printf("%s\n", text);
	return 0;
}

static void on_stop(struct evloop *loop, int signo, void *arg)
{
	log_info("relay stopping signal=%d", signo);
	evloop_stop(loop);
}

static void on_usr1(struct evloop *loop, int signo, void *arg)
{
	relay_log_stats(arg);
}

static int cmd_serve(struct options *o)
{
	struct relay_control *ctl = NULL;
	struct evloop *loop = NULL;
	struct relay *r = NULL;
	int ret;

	if (check_serve_options(o) < 0)
		return 2;
	if (load_key(o->state_dir, o->cfg.priv) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	ret = evloop_new(&loop);
	if (ret == 0)
		ret = relay_new(&r, loop, &o->cfg);
	/* The control session fills the admission set (control_link.c). */
	if (ret == 0)
		ret = relay_control_start(&ctl, r, loop, o->control_url, o->control_pub,
					  o->cfg.priv);
	memzero_explicit(o->cfg.priv, sizeof(o->cfg.priv)); /* the relay has its copy */
	if (ret == 0)
		ret = evloop_add_signal(loop, SIGINT, on_stop, NULL);
	if (ret == 0)
		ret = evloop_add_signal(loop, SIGTERM, on_stop, NULL);
	if (ret == 0)
		ret = evloop_add_signal(loop, SIGUSR1, on_usr1, r);
	if (ret == 0)
		ret = evloop_run(loop);
	relay_control_stop(ctl);
	if (r)
		relay_log_stats(r);
	relay_free(r);
	evloop_free(loop);
	return ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	const char *cmd;

	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "check") == 0)
		return crypto_init() < 0 ? 1 : check_main(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "key") != 0) {
		fprintf(stderr, "knit-relay: unknown command '%s' (serve, key)\n", cmd);
		return 2;
	}
	if (crypto_init() < 0)
		return 1;
	if (parse_options(argc - 1, argv + 1, &o) < 0)
		return 2;
	return strcmp(cmd, "key") == 0 ? cmd_key(&o) : cmd_serve(&o);
}
