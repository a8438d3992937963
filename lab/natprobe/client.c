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
 * Every request is retransmitted (8 tries within --timeout-ms): a datagram can
 * be lost, and a NAT that installs its filtering state late (the lab's
 * conntrack helper) drops the first answers on purpose.  Steps 4 and 5 run
 * together, so a probe costs about one timeout when some answer never comes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lab/natprobe/natprobe.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "stun/stun.h"

#define MAX_TRIES     8
#define MAX_ALLOC     16
#define MAX_PROBES    32
#define MAX_FDS	      32
#define HAIRPIN_MAGIC "natprobe-hairpin"
#define HAIRPIN_NONCE 16
#define SEQ_MAX_STEP  16

enum probe_state { P_WAITING, P_RUNNING, P_DONE, P_FAILED };

struct probe {
	const char *what; /* "A2:P1 from the mapping socket", for messages */
	int fd;		  /* sent from */
	int recv_fd;	  /* where the answer arrives */
	union sockaddr_inet dst;
	union sockaddr_inet expect_from; /* STUN: the answer's source */
	bool is_stun;
	int after; /* index of the probe that must be done first, or -1 */
	uint8_t msg[STUN_BUF_LEN];
	size_t len;

	enum probe_state state;
	int tries;
	uint64_t start_ns, next_ns;
	int send_err;	/* the last send's errno */
	int sent;	/* sends that succeeded */
	int error_code; /* a STUN error response */
	struct stun_msg resp;
	union sockaddr_inet from;
};

struct client {
	const struct client_opts *o;
	int family;
	uint64_t timeout_ns, interval_ns;
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

static void ep_set_port(union sockaddr_inet *ep, uint16_t port)
{
	if (ep->sa.sa_family == AF_INET)
		ep->in.sin_port = htons(port);
	else
		ep->in6.sin6_port = htons(port);
}

static uint16_t ep_port(const union sockaddr_inet *ep)
{
	return ntohs(ep->sa.sa_family == AF_INET ? ep->in.sin_port : ep->in6.sin6_port);
}

static void probe_stun(struct probe *p, const char *what, int fd, const union sockaddr_inet *dst,
		       uint32_t change, const union sockaddr_inet *expect_from)
{
	uint8_t txid[STUN_TXID_LEN];
	int n;

	memset(p, 0, sizeof(*p));
	p->what = what;
	p->fd = p->recv_fd = fd;
	p->dst = *dst;
	p->expect_from = *expect_from;
	p->is_stun = true;
	p->after = -1;
	stun_txid_new(txid);
	n = stun_build_binding_request(p->msg, sizeof(p->msg), txid, change);
	p->len = n > 0 ? (size_t)n : 0; /* cannot fail: the buffer is big enough */
}

static void probe_hairpin(struct probe *p, const char *what, int fd, int recv_fd,
			  const union sockaddr_inet *dst)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->fd = fd;
	p->recv_fd = recv_fd;
	p->dst = *dst;
	p->after = -1;
	memcpy(p->msg, HAIRPIN_MAGIC, sizeof(HAIRPIN_MAGIC) - 1);
	random_bytes(p->msg + sizeof(HAIRPIN_MAGIC) - 1, HAIRPIN_NONCE);
	p->len = sizeof(HAIRPIN_MAGIC) - 1 + HAIRPIN_NONCE;
}

static void probe_send(struct client *c, struct probe *p, uint64_t now)
{
	if (p->len && sendto(p->fd, p->msg, p->len, 0, &p->dst.sa, endpoint_len(&p->dst)) < 0)
		p->send_err = errno; /* e.g. EPERM from a local firewall: a lost try */
	else
		p->sent++;
	p->tries++;
	p->next_ns = now + c->interval_ns;
}

/* Does datagram buf, from `from`, answer probe p? */
static bool probe_matches(struct probe *p, const uint8_t *buf, size_t n,
			  const union sockaddr_inet *from)
{
	struct stun_msg m;
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];

	if (!p->is_stun)
		return n == p->len && memcmp(buf, p->msg, n) == 0;
	if (stun_parse(buf, n, &m) < 0 || memcmp(m.txid, p->msg + 8, STUN_TXID_LEN) != 0)
		return false;
	if (m.type == STUN_BINDING_ERROR) {
		p->error_code = m.error_code ? m.error_code : 400;
		return true;
	}
	if (m.type != STUN_BINDING_SUCCESS || !m.has_mapped)
		return false;
	/* A server that ignored CHANGE-REQUEST must not pass for an open NAT. */
	if (!endpoint_equal(from, &p->expect_from)) {
		log_warn("answer from an unexpected source probe=\"%s\" from=%s expected=%s",
			 p->what, ep_str(from, a), ep_str(&p->expect_from, b));
		return false;
	}
	p->resp = m;
	return true;
}

static void dispatch(struct probe *probes, size_t n, int fd)
{
	uint8_t buf[2048];
	union sockaddr_inet from;

	/* Bounded: the poll loop comes back for whatever is left. */
	for (int k = 0; k < 256; k++) {
		socklen_t flen = sizeof(from);
		ssize_t len = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &from.sa, &flen);
		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue; /* an ICMP error queued on the socket: keep reading */
		}
		for (size_t i = 0; i < n; i++) {
			struct probe *p = &probes[i];
			if (p->state != P_RUNNING || p->recv_fd != fd ||
			    !probe_matches(p, buf, (size_t)len, &from))
				continue;
			p->from = from;
			p->state = p->error_code ? P_FAILED : P_DONE;
			break;
		}
	}
}

/* Advances every probe's state; returns the next time to wake, or 0 when all
 * have settled. */
static uint64_t advance(struct client *c, struct probe *probes, size_t n, uint64_t now)
{
	uint64_t wake = 0;

	for (size_t i = 0; i < n; i++) {
		struct probe *p = &probes[i];
		uint64_t t;

		if (p->state == P_WAITING) {
			if (p->after >= 0 && probes[p->after].state == P_FAILED)
				p->state = P_FAILED;
			if (p->after >= 0 && probes[p->after].state != P_DONE)
				continue;
			p->state = P_RUNNING;
			p->start_ns = now;
			p->next_ns = now;
		}
		if (p->state != P_RUNNING)
			continue;
		if (p->tries < MAX_TRIES && now >= p->next_ns)
			probe_send(c, p, now);
		if (p->tries >= MAX_TRIES && now >= p->start_ns + c->timeout_ns) {
			p->state = P_FAILED;
			continue;
		}
		t = p->tries < MAX_TRIES ? p->next_ns : p->start_ns + c->timeout_ns;
		if (!wake || t < wake)
			wake = t;
	}
	return wake;
}

static bool any_waiting(const struct probe *probes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (probes[i].state == P_WAITING || probes[i].state == P_RUNNING)
			return true;
	return false;
}

/* Runs probes until each is answered or has used its tries and timeout. */
static int run_probes(struct client *c, struct probe *probes, size_t n)
{
	struct pollfd pfd[MAX_FDS];
	size_t nfd = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < nfd && pfd[j].fd != probes[i].recv_fd; j++)
			;
		if (j == nfd && nfd < MAX_FDS)
			pfd[nfd++] = (struct pollfd){.fd = probes[i].recv_fd, .events = POLLIN};
	}
	for (;;) {
		uint64_t now = clock_mono_ns(), wake = advance(c, probes, n, now);
		int ms;

		if (!wake && !any_waiting(probes, n))
			return 0;
		ms = wake > now ? (int)((wake - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC) : 0;
		if (poll(pfd, nfd, ms) < 0 && errno != EINTR)
			return -errno;
		for (size_t j = 0; j < nfd; j++)
			if (pfd[j].revents & (POLLIN | POLLERR))
				dispatch(probes, n, pfd[j].fd);
	}
}

static int require(const struct probe *p)
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
	struct probe p;

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
	ss_to_ep(&r->mapped, &p.resp.mapped);
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
	struct probe p[2];

	probe_stun(&p[0], "mapping test to A2:P1", c->map_fd, &c->a2p1, 0, &c->a2p1);
	probe_stun(&p[1], "mapping test to A2:P2", c->map_fd, &c->a2p2, 0, &c->a2p2);
	if (run_probes(c, p, 2) < 0)
		return -EIO;
	if (require(&p[0]) < 0 || require(&p[1]) < 0)
		return -ETIMEDOUT;
	ss_to_ep(&m2, &p[0].resp.mapped);
	ss_to_ep(&m3, &p[1].resp.mapped);
	log_debug("mapping A1:P1=%s A2:P1=%s A2:P2=%s", ep_str(&r->mapped, a), ep_str(&m2, b),
		  ep_str(&m3, d));
	if (!endpoint_equal(&m2, &m3))
		r->mapping = "adpm";
	else if (!endpoint_equal(&r->mapped, &m2))
		r->mapping = "adm";
	else
		r->mapping = "eim";
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

static const char *classify_allocation(const unsigned *local, const unsigned *ext, int n)
{
	int preserved = 0, small_steps = 0;

	for (int i = 0; i < n; i++)
		preserved += ext[i] == local[i];
	if (preserved == n)
		return "preserving";
	/* Allow one step out of range: the allocator may wrap around its range,
	 * or another flow may have taken a port in between. */
	for (int i = 0; i + 1 < n; i++) {
		int d = (int)ext[i + 1] - (int)ext[i];
		small_steps += d >= 1 && d <= SEQ_MAX_STEP;
	}
	return small_steps >= n - 2 ? "sequential" : "random";
}

/* Step 3: one request at a time, in order of local port. */
static int test_allocation(struct client *c, struct result *r, union sockaddr_inet *mapped)
{
	static const char *const what = "port allocation test";
	struct probe p[MAX_ALLOC];
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
		ss_to_ep(&mapped[i], &p[i].resp.mapped);
		ext[i] = ep_port(&mapped[i]);
		log_debug("allocation local=%u external=%u", c->alloc_port[i], ext[i]);
	}
	r->allocation = classify_allocation(c->alloc_port, ext, c->nalloc);
	return 0;
}

/* Steps 4 and 5, together: the time they take is mostly waiting for what
 * does not come. */
static int test_filtering_hairpin(struct client *c, struct result *r,
				  const union sockaddr_inet *mapped)
{
	char a[ENDPOINT_STRLEN], b[ENDPOINT_STRLEN];
	struct probe p[4];

	probe_stun(&p[0], "filtering test (change IP and port)", c->fip_fd, &c->a1p1,
		   STUN_CHANGE_IP | STUN_CHANGE_PORT, &c->a2p2);
	probe_stun(&p[1], "filtering test (change port)", c->fport_fd, &c->a1p1, STUN_CHANGE_PORT,
		   &c->a1p2);
	probe_hairpin(&p[2], "hairpin X to Y", c->alloc_fd[0], c->alloc_fd[1], &mapped[1]);
	probe_hairpin(&p[3], "hairpin Y to X", c->alloc_fd[1], c->alloc_fd[0], &mapped[0]);
	if (run_probes(c, p, 4) < 0)
		return -EIO;
	if (p[0].error_code || p[1].error_code)
		return require(p[0].error_code ? &p[0] : &p[1]);
	r->filtering = p[0].state == P_DONE ? "eif" : p[1].state == P_DONE ? "adf" : "adpf";
	r->hairpin = p[2].state == P_DONE || p[3].state == P_DONE;
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

	for (size_t i = 0; i < 3; i++) {
		*fds[i] = udp_socket(c->family, NULL, 0);
		if (*fds[i] < 0) {
			fprintf(stderr, "natprobe: cannot open a UDP socket: %s\n",
				strerror(-*fds[i]));
			return *fds[i];
		}
	}
	return open_alloc_sockets(c);
}

static void close_sockets(struct client *c)
{
	int fds[] = {c->map_fd, c->fip_fd, c->fport_fd};

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
	c.timeout_ns = (uint64_t)o->timeout_ms * NSEC_PER_MSEC;
	c.interval_ns = c.timeout_ns / MAX_TRIES;
	c.nalloc = o->sockets < 2 ? 2 : o->sockets > MAX_ALLOC ? MAX_ALLOC : o->sockets;
	c.map_fd = c.fip_fd = c.fport_fd = -1;
	for (int i = 0; i < MAX_ALLOC; i++)
		c.alloc_fd[i] = -1;

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
