// SPDX-License-Identifier: MIT
/*
 * knitd: the knit node daemon.  In static mode it is a complete WireGuard
 * implementation configured from a wg-quick file and by wg(8).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "lib/netlink.h"
#include "knitd/api.h"
#include "knitd/overlay.h"
#include "wg/device.h"
#include "wg/uapi.h"
#include "wg/wgconfig.h"

struct options {
	const char *ifname;
	const char *wg_config;
	const char *state_dir;
	const char *socket_path;
	long port;
	bool hide_lan;
	const char *nat_class;
	unsigned timer_divisor;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: knitd --state-dir DIR [--socket PATH] [--interface NAME] [--port N]\n"
		"       knitd --interface NAME --wg-config FILE\n"
		"\n"
		"Runs a knit node in the foreground, logging to standard error.  With\n"
		"--state-dir it is a node of an overlay that `knit up` joins; with\n"
		"--wg-config it is a static WireGuard peer.\n"
		"\n"
		"  -s, --state-dir DIR         node key (mode 0600) and prefs\n"
		"  -S, --socket PATH           local API for knit (default " API_DEFAULT_SOCKET ")\n"
		"  -p, --port N                UDP port (default 41641; 0 picks one)\n"
		"      --no-lan-candidates     offer and try no LAN addresses (to test hairpinning)\n"
		"      --nat-class CLASS       declare this node's NAT instead of measuring it:\n"
		"                              MAPPING-FILTERING (eim|adm|adpm - eif|adf|adpf),\n"
		"                              public or udp-blocked\n"
		"  -i, --interface NAME        TUN interface to create (at most 15 characters;\n"
		"                              default knit0 with --state-dir)\n"
		"  -c, --wg-config FILE        static mode: a wg-quick(8) configuration file\n"
		"                              ([Interface] PrivateKey, ListenPort, Address, MTU;\n"
		"                              [Peer] PublicKey, PresharedKey, AllowedIPs,\n"
		"                              Endpoint, PersistentKeepalive)\n"
		"  -l, --log-level LEVEL       error, warn, info (default) or debug\n"
		"      --test-timer-divisor N  divide WireGuard's protocol timers by N (tests "
		"only)\n"
		"  -h, --help                  this help\n"
		"\n"
		"While it runs, wg(8) shows and changes it: wg show NAME, wg set NAME ...\n"
		"SIGUSR1 logs what it dropped and why; SIGINT or SIGTERM stop it.\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"interface", required_argument, NULL, 'i'},
		{"state-dir", required_argument, NULL, 's'},
		{"socket", required_argument, NULL, 'S'},
		{"port", required_argument, NULL, 'p'},
		{"no-lan-candidates", no_argument, NULL, 'N'},
		{"nat-class", required_argument, NULL, 'n'},
		{"wg-config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"test-timer-divisor", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum log_level level;
	char *end;
	int c;

	o->timer_divisor = 1;
	o->port = -1;
	while ((c = getopt_long(argc, argv, "i:c:l:s:S:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->state_dir = optarg;
			break;
		case 'N':
			o->hide_lan = true;
			break;
		case 'n':
			o->nat_class = optarg;
			break;
		case 'S':
			o->socket_path = optarg;
			break;
		case 'p':
			errno = 0;
			o->port = strtol(optarg, &end, 10);
			if (errno || *end || o->port < 0 || o->port > 65535) {
				fprintf(stderr, "knitd: --port takes 0 to 65535\n");
				return 1;
			}
			break;
		case 'i':
			o->ifname = optarg;
			break;
		case 'c':
			o->wg_config = optarg;
			break;
		case 'l':
			if (log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "knitd: invalid log level '%s'\n", optarg);
				return 1;
			}
			log_set_level(level);
			break;
		case 'T':
			errno = 0;
			unsigned long d = strtoul(optarg, &end, 10);
			if (errno || *end || d < 1 || d > 1000) {
				fprintf(stderr, "knitd: --test-timer-divisor takes 1 to 1000\n");
				return 1;
			}
			o->timer_divisor = (unsigned)d;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "knitd: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (o->state_dir && o->wg_config) {
		fprintf(stderr, "knitd: --state-dir and --wg-config exclude each other\n");
		return 1;
	}
	if (o->state_dir && !o->ifname)
		o->ifname = OVERLAY_DEFAULT_IFNAME;
	if (!o->ifname) {
		fprintf(stderr, "knitd: --state-dir or --interface is required\n");
		usage(stderr);
		return 1;
	}
	if (strlen(o->ifname) >= IF_NAMESIZE) {
		fprintf(stderr, "knitd: interface name '%s' is longer than %d characters\n",
			o->ifname, IF_NAMESIZE - 1);
		return 1;
	}
	return 0;
}

/* Addresses, MTU and routes for the peers' allowed IPs, as wg-quick does. */
static void configure_interface(struct wg_device *dev, const struct wg_config *cfg)
{
	char pfx[PREFIX_STRLEN];
	int ret;

	for (size_t i = 0; i < cfg->n_addresses; i++) {
		ret = netlink_addr_add(dev->ifindex, &cfg->addresses[i]);
		prefix_format(&cfg->addresses[i], pfx, sizeof(pfx));
		if (ret < 0)
			log_error("cannot add address address=%s error=\"%s\"", pfx,
				  strerror(-ret));
	}
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct wg_peer_config *pc = &cfg->peers[i];
		for (size_t j = 0; j < pc->n_allowed_ips; j++) {
			prefix_format(&pc->allowed_ips[j], pfx, sizeof(pfx));
			if (pc->allowed_ips[j].bits == 0) {
				log_warn("not routing %s through the tunnel: a default route "
					 "needs policy routing",
					 pfx);
				continue;
			}
			ret = netlink_route_add(dev->ifindex, &pc->allowed_ips[j]);
			if (ret < 0)
				log_warn("cannot add route route=%s error=\"%s\"", pfx,
					 strerror(-ret));
		}
	}
}

/* SIGUSR1: what the device dropped and why, as one log line. */
static void on_stats(struct evloop *loop, int signo, void *arg)
{
	device_log_stats(arg);
}

static void on_signal(struct evloop *loop, int signo, void *arg)
{
	log_info("stopping signal=%s", strsignal(signo));
	evloop_stop(loop);
}

static int run(const struct options *o, struct wg_config *cfg)
{
	char err[WGCONFIG_ERR_LEN] = "";
	struct uapi_server *uapi = NULL;
	struct wg_device *dev = NULL;
	struct evloop *loop = NULL;
	int ret;

	if ((ret = evloop_new(&loop)) < 0)
		goto out;
	evloop_add_signal(loop, SIGINT, on_signal, NULL);
	evloop_add_signal(loop, SIGTERM, on_signal, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((ret = device_new(&dev, loop, o->ifname, o->timer_divisor)) < 0)
		goto out;
	evloop_add_signal(loop, SIGUSR1, on_stats, dev);
	if (cfg->mtu)
		dev->mtu = cfg->mtu;
	cfg->replace_peers = true;
	if ((ret = device_apply(dev, cfg, err, sizeof(err))) < 0) {
		log_error("cannot apply configuration file=%s error=\"%s\"", o->wg_config, err);
		goto out;
	}
	if ((ret = uapi_server_new(&uapi, dev)) < 0)
		goto out;
	if ((ret = device_start(dev)) < 0)
		goto out;
	configure_interface(dev, cfg); /* routes need the link up */
	log_info("interface up interface=%s port=%u peers=%zu", dev->ifname, dev->listen_port,
		 dev->n_peers);
	ret = evloop_run(loop);
out:
	uapi_server_free(uapi);
	device_free(dev);
	evloop_free(loop);
	return ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	char err[WGCONFIG_ERR_LEN] = "";
	struct options o = {0};
	struct wg_config cfg;
	int ret;

	if (parse_options(argc, argv, &o))
		return 1;
	if (crypto_init() < 0) {
		fprintf(stderr, "knitd: libgcrypt is unusable\n");
		return 1;
	}
	if (o.state_dir) {
		struct overlay_options ov = {
			.state_dir = o.state_dir,
			.socket_path = o.socket_path ? o.socket_path : API_DEFAULT_SOCKET,
			.ifname = o.ifname,
			.port = o.port >= 0 ? (uint16_t)o.port : OVERLAY_DEFAULT_PORT,
			.timer_divisor = o.timer_divisor,
			.hide_lan = o.hide_lan,
			.nat_class = o.nat_class,
		};
		return overlay_run(&ov);
	}
	wg_config_init(&cfg);
	if (o.wg_config && wgquick_load(&cfg, o.wg_config, err) < 0) {
		fprintf(stderr, "knitd: %s\n", err);
		wg_config_free(&cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg.n_warnings; i++)
		log_warn("%s", cfg.warnings[i]);
	ret = run(&o, &cfg);
	wg_config_free(&cfg);
	return ret;
}
