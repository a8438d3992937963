// SPDX-License-Identifier: MIT
/*
 * portmapctl: the port mapping module (src/portmap) by hand.  It binds the
 * UDP port as knitd would, asks the gateway for a mapping of it, prints
 * what it got and every datagram that arrives, and deletes the mapping
 * when it stops.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "portmap/portmap.h"

struct ctl {
	struct evloop *loop;
	struct portmap *pm;
	bool exit_after_probe;
	struct ev_timer hold;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: portmapctl --port P [--protocol pcp|nat-pmp|upnp] [--lifetime S]\n"
		   "                  [--hold S] [--offered] [--no-listen] [--verbose]\n"
		   "\n"
		   "Maps UDP port P at the default gateway (PCP, then NAT-PMP, then UPnP-IGD,\n"
		   "or only --protocol), renews it at half its lifetime (--lifetime S asks\n"
		   "for S seconds, default 7200) and deletes it on exit: after --hold S\n"
		   "seconds, or on SIGINT/SIGTERM; SIGHUP probes again, as after a network\n"
		   "change (portmap_restart).  It binds UDP port P itself, as knitd\n"
		   "does, and prints each datagram that arrives (--no-listen: it does not).\n"
		   "--offered: print what the gateway offers once every probe has answered,\n"
		   "and exit without mapping.  Lines on standard output:\n"
		   "  offered pcp=yes|no nat-pmp=yes|no upnp=yes|no\n"
		   "  mapped protocol=PROTO external=IP:PORT\n"
		   "  lost protocol=PROTO\n"
		   "  received from=IP:PORT bytes=N data=TEXT\n"
		   "  stopped delete_ms=N\n"
		   "Logs (renewals included) go to standard error.\n"
		   "Exit status: 0, or 1 on a usage or setup error.\n");
}

static void on_changed(void *arg, const union sockaddr_inet *ext, const char *protocol)
{
	char s[ENDPOINT_STRLEN];

	if (!ext) {
		printf("lost protocol=%s\n", protocol);
		return;
	}
	endpoint_format(ext, s, sizeof(s));
	printf("mapped protocol=%s external=%s\n", protocol, s);
}

static void on_probed(void *arg)
{
	struct ctl *c = arg;
	bool pcp, pmp, upnp;

	portmap_offered(c->pm, &pcp, &pmp, &upnp);
	printf("offered pcp=%s nat-pmp=%s upnp=%s\n", pcp ? "yes" : "no", pmp ? "yes" : "no",
	       upnp ? "yes" : "no");
	if (c->exit_after_probe)
		evloop_stop(c->loop);
}

static void on_datagram(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	char buf[512], from_s[ENDPOINT_STRLEN];
	union sockaddr_inet from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT, &from.sa, &fl);

	if (n < 0)
		return;
	/* Printable text only: the data comes from anyone on the internet. */
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '.';
	buf[n] = '\0';
	endpoint_format(&from, from_s, sizeof(from_s));
	printf("received from=%s bytes=%zd data=%s\n", from_s, n, buf);
}

static void on_signal(struct evloop *loop, int signo, void *arg)
{
	struct ctl *c = arg;

	/* SIGHUP: what knitd does when its network changes. */
	if (signo == SIGHUP && c->pm)
		portmap_restart(c->pm);
	else
		evloop_stop(loop);
}

static void on_hold(struct evloop *loop, struct ev_timer *t, void *arg)
{
	evloop_stop(loop);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end || *out == 0 || *out > max ? -EINVAL : 0;
}

static int listen_udp(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static const struct option options[] = {
	{"port", required_argument, NULL, 'p'},
	{"protocol", required_argument, NULL, 'P'},
	{"lifetime", required_argument, NULL, 'l'},
	{"hold", required_argument, NULL, 'H'},
	{"offered", no_argument, NULL, 'o'},
	{"no-listen", no_argument, NULL, 'n'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	struct portmap_config cfg = {0};
	struct portmap_ops ops = {.changed = on_changed, .probed = on_probed};
	struct ctl c = {0};
	unsigned long v, hold = 0;
	bool listen = true;
	int opt, fd = -1, ret;
	uint64_t t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_LEVEL_INFO);
	while ((opt = getopt_long(argc, argv, "hv", options, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_uint(optarg, 65535, &v) < 0)
				goto bad;
			cfg.internal_port = (uint16_t)v;
			break;
		case 'P':
			if (!strcmp(optarg, "pcp"))
				cfg.protocols = PORTMAP_PCP;
			else if (!strcmp(optarg, "nat-pmp"))
				cfg.protocols = PORTMAP_NATPMP;
			else if (!strcmp(optarg, "upnp"))
				cfg.protocols = PORTMAP_UPNP;
			else
				goto bad;
			break;
		case 'l':
			if (parse_uint(optarg, 0xffffffffUL, &v) < 0)
				goto bad;
			cfg.lifetime = (uint32_t)v;
			break;
		case 'H':
			if (parse_uint(optarg, 86400 * 365, &hold) < 0)
				goto bad;
			break;
		case 'o':
			c.exit_after_probe = true;
			break;
		case 'n':
			listen = false;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || !cfg.internal_port)
		goto bad;

	if ((ret = evloop_new(&c.loop)) < 0) {
		fprintf(stderr, "portmapctl: event loop: %s\n", strerror(-ret));
		return 1;
	}
	/* Signals before any thread (the UPnP worker) starts. */
	evloop_add_signal(c.loop, SIGINT, on_signal, &c);
	evloop_add_signal(c.loop, SIGTERM, on_signal, &c);
	evloop_add_signal(c.loop, SIGHUP, on_signal, &c);
	if (listen && !c.exit_after_probe) {
		fd = listen_udp(cfg.internal_port);
		if (fd < 0 || evloop_add_fd(c.loop, fd, EPOLLIN, on_datagram, &c) < 0) {
			fprintf(stderr, "portmapctl: cannot bind UDP port %u: %s\n",
				cfg.internal_port, strerror(fd < 0 ? -fd : EINVAL));
			return 1;
		}
	}
	if (hold) {
		ev_timer_init(&c.hold, on_hold, &c);
		evloop_timer_arm(c.loop, &c.hold, clock_mono_ns() + hold * NSEC_PER_SEC);
	}
	if (c.exit_after_probe)
		cfg.protocols = PORTMAP_PROBE_ONLY;
	if ((ret = portmap_new_config(&c.pm, c.loop, &cfg, &ops, &c)) < 0) {
		fprintf(stderr, "portmapctl: %s\n", strerror(-ret));
		return 1;
	}
	evloop_run(c.loop);
	t0 = clock_mono_ns();
	portmap_free(c.pm);
	printf("stopped delete_ms=%llu\n",
	       (unsigned long long)((clock_mono_ns() - t0) / NSEC_PER_MSEC));
	if (fd >= 0)
		close(fd);
	evloop_free(c.loop);
	return 0;
bad:
	usage(stderr);
	return 1;
}
