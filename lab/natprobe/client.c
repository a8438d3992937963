// SPDX-License-Identifier: MIT
/*
 * natprobe client: NAT behaviour discovery after RFC 5780 section 4, against
 * a natprobe server whose primary address is A1:P1 and whose OTHER-ADDRESS
 * is A2:P2.
 *
 *   1. UDP: one socket asks A1:P1; no answer at all means UDP is blocked.
 *   2. Mapping: the same socket asks A2:P1 and A2:P2.  The mapped address is
 *      the same for all three (EIM), changes with the address only (ADM), or
 *      with the port too (ADPM).
 *   3. Port allocation: N sockets on consecutive local ports ask A1:P1 one
 *      after the other.  External port = local port for all: preserving;
 *      small steps up from one to the next: sequential; else random.
 *   4. Filtering: a fresh socket asks A1:P1 to answer from A2:P2 (EIF if the
 *      answer arrives), another asks A1:P1 to answer from A1:P2 (ADF if it
 *      arrives and the first did not; ADPF if neither does).  Each socket has
 *      talked to A1:P1 only, so no earlier packet opened the NAT for them.
 *   5. Hairpinning: two allocation sockets X and Y send to each other's
 *      mapped address; either arriving means the NAT hairpins.
 *
 * The decisions are netcheck/classify's and the probes run on netcheck/probe's
 * engine (knitd's netcheck uses both too); this file is the RFC 5780 test
 * sequence against one natprobe server, and natprobe's output.
 *
 * Every request is retransmitted (8 tries within --timeout-ms): a datagram can
 * be lost, and a NAT that installs its filtering state late (the lab's
 * conntrack helper) drops the first answers on purpose.  Steps 4 and 5 run
 * together, so a probe costs about one timeout when some answer never comes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lab/natprobe/natprobe.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "netcheck/classify.h"
#include "netcheck/probe.h"
#include "stun/stun.h"

#define MAX_ALLOC 16

/* States as natprobe has always named them. */
#define P_DONE	 NC_P_DONE
#define P_FAILED NC_P_FAILED

struct client {
	const struct client_opts *o;
	int family;
	struct evloop *loop;
	struct nc_engine *engine;
	union sockaddr_inet a1p1, a1p2, a2p1, a2p2;
	int map_fd, fip_fd, fport_fd;
	int alloc_fd[MAX_ALLOC];
	unsigned alloc_port[MAX_ALLOC];
	int nalloc;
};

struct result {
	bool udp;
	const char *mapping, *filtering, *allocation;
	bool hairpin;
	union sockaddr_inet mapped;
};

static const char *ep_str(const union sockaddr_inet *ep, char buf[ENDPOINT_STRLEN])
{
	if (endpoint_format(ep, buf, ENDPOINT_STRLEN) < 0)
		snprintf(buf, ENDPOINT_STRLEN, "?");
	return buf;
}

#define ep_set_port nc_ep_set_port
#define ep_port	    nc_ep_port

static void probe_stun(struct nc_probe *p, const char *what, int fd, const union sockaddr_inet *dst,
		       uint32_t change, const union sockaddr_inet *expect_from)
{
	nc_probe_stun(p, what, fd, dst, change, expect_from);
}

static void on_batch_done(void *arg, struct nc_probe *probes, size_t n)
{
	struct client *c = arg;

	evloop_stop(c->loop);
}

/* Runs probes until each is answered or has used its tries and timeout: the
 * engine does the work on the loop, which stops when the batch is over. */
static int run_probes(struct client *c, struct nc_probe *probes, size_t n)
{
	int ret = nc_engine_start(c->engine, probes, n);

	if (ret == 0)
		ret = evloop_run(c->loop);
	if (ret == 0 && nc_engine_busy(c->engine))
		ret = -EIO; /* the loop stopped for another reason */
	nc_engine_cancel(c->engine);
	return ret;
}

static int require(const struct nc_probe *p)
{
	char a[ENDPOINT_STRLEN];

	if (p->state == P_DONE)
		return 0;
	if (p->error_code)
		fprintf(stderr, "natprobe: %s: the server answered error %d\n", p->what,
			p->error_code);
	else if (!p->sent && p->send_err)
		fprintf(stderr, "natprobe: %s: cannot send to %s: %s\n", p->what,
			ep_str(&p->dst, a), strerror(p->send_err));
	else
		fprintf(stderr, "natprobe: %s: no answer from %s after %d tries\n", p->what,
			ep_str(&p->dst, a), p->tries);
	return -ETIMEDOUT;
}

/* Step 1: does anything come back, and where is the server's other side? */
static int test_udp(struct client *c, struct result *r)
{
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];
	struct nc_probe p;

	probe_stun(&p, "udp test", c->map_fd, &c->a1p1, 0, &c->a1p1);
	if (run_probes(c, &p, 1) < 0)
		return -EIO;
	if (p.state != P_DONE) {
		/* No route, or a local rule refusing every send: not a NAT. */
		if (p.error_code || !p.sent)
			return require(&p);
		fprintf(stderr, "natprobe: no answer from %s after %d tries: UDP blocked?\n",
			ep_str(&c->a1p1, a), p.tries);
		r->udp = false;
		return 0;
	}
	r->udp = true;
	nc_probe_mapped(&p, &r->mapped);
	if (!p.resp.has_other) {
		fprintf(stderr,
			"natprobe: %s sent no OTHER-ADDRESS: not an RFC 5780 server with two "
			"addresses and two ports\n",
			ep_str(&c->a1p1, a));
		return -EPROTO;
	}
	ss_to_ep(&c->a2p2, &p.resp.other);
	if (c->a2p2.sa.sa_family != c->family || endpoint_equal(&c->a2p2, &c->a1p1) ||
	    ep_port(&c->a2p2) == ep_port(&c->a1p1)) {
		fprintf(stderr, "natprobe: %s gave an unusable OTHER-ADDRESS %s\n",
			ep_str(&c->a1p1, a), ep_str(&c->a2p2, b));
		return -EPROTO;
	}
	c->a2p1 = c->a2p2;
	ep_set_port(&c->a2p1, ep_port(&c->a1p1));
	c->a1p2 = c->a1p1;
	ep_set_port(&c->a1p2, ep_port(&c->a2p2));
	log_debug("udp passes mapped=%s other=%s", ep_str(&r->mapped, a), ep_str(&c->a2p2, b));
	return 0;
}

/* Step 2. */
static int test_mapping(struct client *c, struct result *r)
{
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN], d[ENDPOINT_STRLEN];
	union sockaddr_inet m2, m3;
	struct nc_probe p[2];

	probe_stun(&p[0], "mapping test to A2:P1", c->map_fd, &c->a2p1, 0, &c->a2p1);
	probe_stun(&p[1], "mapping test to A2:P2", c->map_fd, &c->a2p2, 0, &c->a2p2);
	if (run_probes(c, p, 2) < 0)
		return -EIO;
	if (require(&p[0]) < 0 || require(&p[1]) < 0)
		return -ETIMEDOUT;
	nc_probe_mapped(&p[0], &m2);
	nc_probe_mapped(&p[1], &m3);
	log_debug("mapping A1:P1=%s A2:P1=%s A2:P2=%s", ep_str(&r->mapped, a), ep_str(&m2, b),
		  ep_str(&m3, d));
	struct nc_observation obs[3] = {
		{.dst = c->a1p1, .mapped = r->mapped},
		{.dst = c->a2p1, .mapped = m2},
		{.dst = c->a2p2, .mapped = m3},
	};
	r->mapping = nc_mapping_name(nc_classify_mapping(obs, 3));
	return 0;
}

/* N sockets on consecutive local ports, so that preservation shows. */
static int open_alloc_sockets(struct client *c)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		unsigned base = 20000 + random_u32() % (60000 - 20000 - MAX_ALLOC);
		int i;

		for (i = 0; i < c->nalloc; i++) {
			c->alloc_fd[i] = udp_socket(c->family, NULL, base + (unsigned)i);
			if (c->alloc_fd[i] < 0)
				break;
			c->alloc_port[i] = base + (unsigned)i;
		}
		if (i == c->nalloc)
			return 0;
		while (i-- > 0) {
			close(c->alloc_fd[i]);
			c->alloc_fd[i] = -1;
		}
	}
	fprintf(stderr, "natprobe: cannot bind %d consecutive local ports\n", c->nalloc);
	return -EADDRINUSE;
}

/* Step 3: one request at a time, in order of local port. */
static int test_allocation(struct client *c, struct result *r, union sockaddr_inet *mapped)
{
	static const char *const what = "port allocation test";
	struct nc_probe p[MAX_ALLOC];
	unsigned ext[MAX_ALLOC];

	for (int i = 0; i < c->nalloc; i++) {
		probe_stun(&p[i], what, c->alloc_fd[i], &c->a1p1, 0, &c->a1p1);
		p[i].after = i - 1;
	}
	if (run_probes(c, p, (size_t)c->nalloc) < 0)
		return -EIO;
	for (int i = 0; i < c->nalloc; i++) {
		if (require(&p[i]) < 0)
			return -ETIMEDOUT;
		nc_probe_mapped(&p[i], &mapped[i]);
		ext[i] = ep_port(&mapped[i]);
		log_debug("allocation local=%u external=%u", c->alloc_port[i], ext[i]);
	}
	r->allocation =
		nc_allocation_name(nc_classify_allocation(c->alloc_port, ext, (size_t)c->nalloc));
	return 0;
}

/* Steps 4 and 5, together: the time they take is mostly waiting for what
 * does not come. */
static int test_filtering_hairpin(struct client *c, struct result *r,
				  const union sockaddr_inet *mapped)
{
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];
	struct nc_probe p[4];

	probe_stun(&p[0], "filtering test (change IP and port)", c->fip_fd, &c->a1p1,
		   STUN_CHANGE_IP | STUN_CHANGE_PORT, &c->a2p2);
	probe_stun(&p[1], "filtering test (change port)", c->fport_fd, &c->a1p1, STUN_CHANGE_PORT,
		   &c->a1p2);
	nc_probe_datagram(&p[2], "hairpin X to Y", c->alloc_fd[0], c->alloc_fd[1], &mapped[1]);
	nc_probe_datagram(&p[3], "hairpin Y to X", c->alloc_fd[1], c->alloc_fd[0], &mapped[0]);
	if (run_probes(c, p, 4) < 0)
		return -EIO;
	if (p[0].error_code || p[1].error_code)
		return require(p[0].error_code ? &p[0] : &p[1]);
	r->filtering = nc_filtering_name(
		nc_classify_filtering(p[0].state == P_DONE, p[1].state == P_DONE));
	r->hairpin = nc_classify_hairpin(p[2].state == P_DONE, p[3].state == P_DONE) == NC_YES;
	for (int i = 2; i < 4; i++)
		if (p[i].state == P_DONE)
			log_debug("hairpin arrived probe=\"%s\" source=%s sender_mapped=%s",
				  p[i].what, ep_str(&p[i].from, a),
				  ep_str(&mapped[i == 2 ? 0 : 1], b));
	return 0;
}

static void print_result(const struct client *c, const struct result *r)
{
	char m[ENDPOINT_STRLEN];

	if (!r->udp) {
		if (c->o->json)
			printf("{\"udp\":false,\"mapping\":null,\"filtering\":null,"
			       "\"allocation\":null,\"hairpin\":false,\"mapped\":null}\n");
		else
			printf("udp: false\nmapping: none\nfiltering: none\nallocation: none\n"
			       "hairpin: false\nmapped: none\n");
		return;
	}
	ep_str(&r->mapped, m);
	if (c->o->json)
		printf("{\"udp\":true,\"mapping\":\"%s\",\"filtering\":\"%s\",\"allocation\":"
		       "\"%s\",\"hairpin\":%s,\"mapped\":\"%s\"}\n",
		       r->mapping, r->filtering, r->allocation, r->hairpin ? "true" : "false", m);
	else
		printf("udp: true\nmapping: %s\nfiltering: %s\nallocation: %s\nhairpin: %s\n"
		       "mapped: %s\n",
		       r->mapping, r->filtering, r->allocation, r->hairpin ? "true" : "false", m);
}

static int open_sockets(struct client *c)
{
	int *fds[] = {&c->map_fd, &c->fip_fd, &c->fport_fd};
	int ret;

	for (size_t i = 0; i < 3; i++) {
		*fds[i] = udp_socket(c->family, NULL, 0);
		if (*fds[i] < 0) {
			fprintf(stderr, "natprobe: cannot open a UDP socket: %s\n",
				strerror(-*fds[i]));
			return *fds[i];
		}
	}
	ret = open_alloc_sockets(c);
	/* The engine reads every socket on the loop. */
	for (size_t i = 0; ret == 0 && i < 3; i++)
		ret = nc_engine_watch_fd(c->engine, *fds[i]);
	for (int i = 0; ret == 0 && i < c->nalloc; i++)
		ret = nc_engine_watch_fd(c->engine, c->alloc_fd[i]);
	if (ret < 0)
		fprintf(stderr, "natprobe: cannot watch the sockets: %s\n", strerror(-ret));
	return ret;
}

static void close_sockets(struct client *c)
{
	int fds[] = {c->map_fd, c->fip_fd, c->fport_fd};

	nc_engine_free(c->engine);
	evloop_free(c->loop);
	for (size_t i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (int i = 0; i < c->nalloc; i++)
		if (c->alloc_fd[i] >= 0)
			close(c->alloc_fd[i]);
}

int client_run(const struct client_opts *o)
{
	union sockaddr_inet mapped[MAX_ALLOC];
	struct result r = {0};
	struct client c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.family = o->server.sa.sa_family;
	c.a1p1 = o->server;
	c.nalloc = o->sockets < 2 ? 2 : o->sockets > MAX_ALLOC ? MAX_ALLOC : o->sockets;
	c.map_fd = c.fip_fd = c.fport_fd = -1;
	for (int i = 0; i < MAX_ALLOC; i++)
		c.alloc_fd[i] = -1;

	static const struct nc_engine_ops ops = {.done = on_batch_done};
	ret = evloop_new(&c.loop);
	if (ret == 0)
		ret = nc_engine_new(&c.engine, c.loop, o->timeout_ms, &ops, &c);
	if (ret < 0)
		fprintf(stderr, "natprobe: cannot set up the event loop: %s\n", strerror(-ret));
	if (ret == 0)
		ret = open_sockets(&c);
	if (ret == 0)
		ret = test_udp(&c, &r);
	if (ret == 0 && r.udp)
		ret = test_mapping(&c, &r);
	if (ret == 0 && r.udp)
		ret = test_allocation(&c, &r, mapped);
	if (ret == 0 && r.udp)
		ret = test_filtering_hairpin(&c, &r, mapped);
	close_sockets(&c);
	if (ret < 0)
		return ret;
	print_result(&c, &r);
	return fflush(stdout) == 0 ? 0 : -EIO;
}
