// SPDX-License-Identifier: MIT
/*
 * Port mapping on the event loop.  A round probes all three protocols at
 * once (PCP ANNOUNCE, NAT-PMP public address, UPnP search + description +
 * external address: none of them maps anything), then maps with the most
 * preferred protocol the gateway offers; if that MAP fails, the next one.
 * A mapping is renewed at half its lifetime; a renewal that fails is
 * retried at half the time left, and the mapping is declared lost when
 * less than MIN_LEFT_S remain.  A lost mapping or a round with no mapping
 * starts a new round later (30 s doubling to 10 min).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <natpmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "portmap/gateway.h"
#include "portmap/pcp.h"
#include "portmap/portmap.h"
#include "portmap/upnp.h"

#define XCHG_TRIES     4   /* 250 ms doubling: gives up 3.75 s after the first */
#define XCHG_FIRST_MS  250 /* RFC 6886's initial retransmission time */
#define MIN_LEFT_S     2   /* a mapping with less left is as good as lost */
#define MAX_RENEW_S    (24 * 3600)
#define BACKOFF_MIN_S  30
#define BACKOFF_MAX_S  600
#define LOST_RETRY_S   1
#define FREE_BUDGET_MS 1000

enum proto { P_PCP, P_NATPMP, P_UPNP, P_COUNT };
static const char *const proto_name[P_COUNT] = {"pcp", "nat-pmp", "upnp"};
static const unsigned proto_bit[P_COUNT] = {PORTMAP_PCP, PORTMAP_NATPMP, PORTMAP_UPNP};

enum probe_state { PROBE_PENDING, PROBE_YES, PROBE_NO };
enum op { OP_NONE, OP_PROBE, OP_MAP, OP_PUBLIC_THEN_MAP };

/* One request/response with the gateway's port 5351, retransmitted. */
struct xchg {
	enum op op;
	unsigned tries;
	struct ev_timer timer;
};

struct portmap {
	struct evloop *loop;
	struct portmap_config cfg;
	struct portmap_ops ops;
	void *arg;

	struct in_addr gw, local;
	enum probe_state probe[P_COUNT];
	bool map_failed[P_COUNT];
	bool probed_reported;

	int active; /* protocol with a mapping or a MAP in flight; -1: none */
	bool mapped;
	union sockaddr_inet external;
	uint64_t expiry_ns;
	struct ev_timer renew_timer;
	struct ev_timer round_timer;
	unsigned backoff_s;

	/* PCP */
	int pcp_fd;
	struct xchg pcp;
	struct pcp_map pcp_map; /* nonce, and the external port to ask for */
	uint8_t pcp_req[PCP_HEADER_LEN + PCP_MAP_LEN];
	size_t pcp_req_len;

	/* NAT-PMP (libnatpmp owns the socket) */
	natpmp_t pmp;
	bool pmp_open;
	struct xchg pmp_x;
	struct in_addr pmp_public;
	uint16_t pmp_port; /* external port to ask for */

	/* UPnP */
	struct upnp_worker *upnp;
	int upnp_fd;
	bool upnp_busy;
};

static void start_round(struct portmap *pm);
static void decide(struct portmap *pm);

static void schedule_round(struct portmap *pm, unsigned seconds)
{
	evloop_timer_arm(pm->loop, &pm->round_timer,
			 clock_mono_ns() + (uint64_t)seconds * NSEC_PER_SEC);
}

static void report_probed(struct portmap *pm)
{
	for (int p = 0; p < P_COUNT; p++)
		if (pm->probe[p] == PROBE_PENDING)
			return;
	if (pm->probed_reported)
		return;
	pm->probed_reported = true;
	log_info("port mapping offered by gateway pcp=%s nat-pmp=%s upnp=%s",
		 pm->probe[P_PCP] == PROBE_YES ? "yes" : "no",
		 pm->probe[P_NATPMP] == PROBE_YES ? "yes" : "no",
		 pm->probe[P_UPNP] == PROBE_YES ? "yes" : "no");
	if (pm->ops.probed)
		pm->ops.probed(pm->arg);
}

/* --- the outcome of an exchange ------------------------------------------ */

static void probe_done(struct portmap *pm, enum proto p, bool yes, const char *why)
{
	pm->probe[p] = yes ? PROBE_YES : PROBE_NO;
	if (!yes)
		log_debug("port mapping probe failed protocol=%s why=\"%s\"", proto_name[p], why);
	report_probed(pm);
	decide(pm);
}

static void arm_renewal(struct portmap *pm, uint64_t now, uint64_t delay_s)
{
	if (delay_s < 1)
		delay_s = 1;
	if (delay_s > MAX_RENEW_S)
		delay_s = MAX_RENEW_S;
	evloop_timer_arm(pm->loop, &pm->renew_timer, now + delay_s * NSEC_PER_SEC);
}

static void map_ok(struct portmap *pm, enum proto p, struct in_addr addr, uint16_t port,
		   uint32_t lifetime)
{
	union sockaddr_inet ext = {
		.in = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr}};
	uint64_t now = clock_mono_ns();
	bool fresh = !pm->mapped, moved = pm->mapped && !endpoint_equal(&ext, &pm->external);
	char s[ENDPOINT_STRLEN];

	pm->mapped = true;
	pm->external = ext;
	pm->backoff_s = 0;
	/* lifetime 0 is UPnP's permanent lease: check on it as if it were ours. */
	if (lifetime == 0)
		lifetime = pm->cfg.lifetime;
	pm->expiry_ns = now + (uint64_t)lifetime * NSEC_PER_SEC;
	arm_renewal(pm, now, lifetime / 2);
	endpoint_format(&ext, s, sizeof(s));
	if (fresh || moved) {
		log_info("port mapping %s protocol=%s external=%s internal_port=%u lifetime=%u",
			 fresh ? "obtained" : "changed", proto_name[p], s, pm->cfg.internal_port,
			 lifetime);
		if (pm->ops.changed)
			pm->ops.changed(pm->arg, &pm->external, proto_name[p]);
	} else {
		log_info("port mapping renewed protocol=%s external=%s lifetime=%u", proto_name[p],
			 s, lifetime);
	}
}

static void map_failed(struct portmap *pm, enum proto p, const char *why)
{
	uint64_t now = clock_mono_ns();

	if (!pm->mapped) {
		log_info("port mapping refused protocol=%s why=\"%s\"", proto_name[p], why);
		pm->map_failed[p] = true;
		pm->active = -1;
		decide(pm);
		return;
	}
	if (pm->expiry_ns > now + (uint64_t)MIN_LEFT_S * NSEC_PER_SEC) {
		uint64_t left_s = (pm->expiry_ns - now) / NSEC_PER_SEC;
		log_warn("port mapping renewal failed protocol=%s why=\"%s\" retry_in=%lus",
			 proto_name[p], why, (unsigned long)(left_s / 2));
		arm_renewal(pm, now, left_s / 2);
		return;
	}
	log_warn("port mapping lost protocol=%s why=\"%s\"", proto_name[p], why);
	pm->mapped = false;
	pm->active = -1;
	evloop_timer_cancel(pm->loop, &pm->renew_timer);
	if (pm->ops.changed)
		pm->ops.changed(pm->arg, NULL, proto_name[p]);
	schedule_round(pm, LOST_RETRY_S);
}

/* --- PCP ------------------------------------------------------------------ */

static void pcp_close(struct portmap *pm)
{
	evloop_timer_cancel(pm->loop, &pm->pcp.timer);
	if (pm->pcp_fd >= 0) {
		evloop_del_fd(pm->loop, pm->pcp_fd);
		close(pm->pcp_fd);
	}
	pm->pcp_fd = -1;
	pm->pcp.op = OP_NONE;
}

static void pcp_send(struct portmap *pm)
{
	if (send(pm->pcp_fd, pm->pcp_req, pm->pcp_req_len, 0) < 0)
		log_debug("pcp: send failed error=\"%s\"", strerror(errno));
	evloop_timer_arm(pm->loop, &pm->pcp.timer,
			 clock_mono_ns() +
				 ((uint64_t)XCHG_FIRST_MS << pm->pcp.tries) * NSEC_PER_MSEC);
	pm->pcp.tries++;
}

static void pcp_finish(struct portmap *pm, bool ok, const struct pcp_response *r, const char *why)
{
	enum op op = pm->pcp.op;
	struct in_addr ext;

	pm->pcp.op = OP_NONE;
	evloop_timer_cancel(pm->loop, &pm->pcp.timer);
	if (op == OP_PROBE) {
		probe_done(pm, P_PCP, ok, why);
	} else if (op == OP_MAP) {
		if (ok && pcp_addr_to_v4(&r->map.external_addr, &ext) && ext.s_addr &&
		    r->map.external_port && r->lifetime) {
			pm->pcp_map.external_port = r->map.external_port;
			pm->pcp_map.external_addr = r->map.external_addr;
			map_ok(pm, P_PCP, ext, r->map.external_port, r->lifetime);
		} else {
			map_failed(pm, P_PCP, ok ? "no usable external IPv4 address" : why);
		}
	}
}

/* Does this response answer what we asked?  Anything else is ignored. */
static bool pcp_matches(const struct portmap *pm, const struct pcp_response *r)
{
	if (pm->pcp.op == OP_PROBE)
		return r->opcode == PCP_OP_ANNOUNCE;
	if (r->opcode != PCP_OP_MAP)
		return false;
	if (!r->has_map)
		return r->result != PCP_SUCCESS; /* an error without payload */
	return memcmp(r->map.nonce, pm->pcp_map.nonce, PCP_NONCE_LEN) == 0 &&
	       r->map.protocol == IPPROTO_UDP && r->map.internal_port == pm->cfg.internal_port;
}

static void pcp_on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct portmap *pm = arg;
	uint8_t buf[PCP_MAX_MSG + 4];
	struct pcp_response r;

	for (int i = 0; i < 16 && pm->pcp.op != OP_NONE; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		int ret;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* ECONNREFUSED: nothing listens on 5351 (ICMP). */
			pcp_finish(pm, false, NULL, strerror(errno));
			return;
		}
		ret = pcp_parse_response(buf, n, &r);
		if (ret == -EPROTONOSUPPORT) {
			pcp_finish(pm, false, NULL,
				   "the gateway speaks another version (NAT-PMP?)");
			return;
		}
		if (ret < 0 || !pcp_matches(pm, &r)) {
			log_debug("pcp: ignored a datagram from the gateway bytes=%zd", n);
			continue;
		}
		pcp_finish(pm, r.result == PCP_SUCCESS, &r, pcp_result_name(r.result));
		return;
	}
}

static void pcp_on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct portmap *pm = arg;

	if (pm->pcp.tries >= XCHG_TRIES)
		pcp_finish(pm, false, NULL, "no answer");
	else
		pcp_send(pm);
}

static int pcp_open(struct portmap *pm)
{
	struct sockaddr_in gw = {
		.sin_family = AF_INET, .sin_port = htons(PCP_SERVER_PORT), .sin_addr = pm->gw};
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Connected: the kernel drops datagrams from anyone but the gateway. */
	if (connect(fd, (struct sockaddr *)&gw, sizeof(gw)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if ((ret = evloop_add_fd(pm->loop, fd, EPOLLIN, pcp_on_readable, pm)) < 0) {
		close(fd);
		return ret;
	}
	pm->pcp_fd = fd;
	return 0;
}

static void pcp_start(struct portmap *pm, enum op op, uint32_t lifetime)
{
	struct in6_addr client;
	ssize_t n;

	pcp_addr_from_v4(&client, pm->local);
	if (op == OP_PROBE)
		n = pcp_build_announce(pm->pcp_req, sizeof(pm->pcp_req), &client);
	else
		n = pcp_build_map(pm->pcp_req, sizeof(pm->pcp_req), &client, lifetime,
				  &pm->pcp_map);
	if (n < 0 || (pm->pcp_fd < 0 && pcp_open(pm) < 0)) {
		pm->pcp.op = op;
		pcp_finish(pm, false, NULL, "cannot open a socket");
		return;
	}
	pm->pcp_req_len = n;
	pm->pcp.op = op;
	pm->pcp.tries = 0;
	pcp_send(pm);
}

/* --- NAT-PMP (libnatpmp) ---------------------------------------------------- */

static void pmp_close(struct portmap *pm)
{
	evloop_timer_cancel(pm->loop, &pm->pmp_x.timer);
	if (pm->pmp_open) {
		evloop_del_fd(pm->loop, pm->pmp.s);
		closenatpmp(&pm->pmp);
	}
	pm->pmp_open = false;
	pm->pmp_x.op = OP_NONE;
}

static int pmp_send(struct portmap *pm)
{
	int r;

	if (pm->pmp_x.op == OP_PUBLIC_THEN_MAP || pm->pmp_x.op == OP_PROBE)
		r = sendpublicaddressrequest(&pm->pmp);
	else
		r = sendnewportmappingrequest(&pm->pmp, NATPMP_PROTOCOL_UDP, pm->cfg.internal_port,
					      pm->pmp_port, pm->cfg.lifetime);
	/* Our own retransmission schedule, not libnatpmp's 9 tries. */
	evloop_timer_arm(pm->loop, &pm->pmp_x.timer,
			 clock_mono_ns() +
				 ((uint64_t)XCHG_FIRST_MS << pm->pmp_x.tries) * NSEC_PER_MSEC);
	pm->pmp_x.tries++;
	return r < 0 ? r : 0;
}

static void pmp_finish(struct portmap *pm, bool ok, const natpmpresp_t *r, const char *why)
{
	enum op op = pm->pmp_x.op;

	pm->pmp_x.op = OP_NONE;
	evloop_timer_cancel(pm->loop, &pm->pmp_x.timer);
	if (op == OP_PROBE) {
		if (ok)
			pm->pmp_public = r->pnu.publicaddress.addr;
		probe_done(pm, P_NATPMP, ok, why);
		return;
	}
	if (op == OP_PUBLIC_THEN_MAP && ok) {
		/* The address first (a mapping response has only the port). */
		pm->pmp_public = r->pnu.publicaddress.addr;
		pm->pmp_x.op = OP_MAP;
		pm->pmp_x.tries = 0;
		pmp_send(pm);
		return;
	}
	if (ok && r->pnu.newportmapping.mappedpublicport && r->pnu.newportmapping.lifetime) {
		pm->pmp_port = r->pnu.newportmapping.mappedpublicport;
		map_ok(pm, P_NATPMP, pm->pmp_public, r->pnu.newportmapping.mappedpublicport,
		       r->pnu.newportmapping.lifetime);
	} else {
		map_failed(pm, P_NATPMP, ok ? "no external port or lifetime" : why);
	}
}

/*
 * libnatpmp reads a 16-byte buffer without checking how much arrived: look
 * at the datagram's real length first and drop the ones too short for
 * what it would read (8 bytes for an error, 12 or 16 for a success).
 */
static bool pmp_datagram_ok(int fd)
{
	uint8_t b[16];
	ssize_t n = recv(fd, b, sizeof(b), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
	size_t need;

	if (n < 0)
		return true; /* let libnatpmp see the error */
	if (n >= 8 && (b[2] || b[3]))
		need = 8;
	else
		need = n >= 2 && b[1] == 128 ? 12 : 16;
	if ((size_t)n >= need)
		return true;
	recv(fd, b, sizeof(b), MSG_DONTWAIT);
	log_debug("nat-pmp: ignored a short datagram bytes=%zd", n);
	return false;
}

static void pmp_on_readable(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct portmap *pm = arg;

	for (int i = 0; i < 16 && pm->pmp_x.op != OP_NONE; i++) {
		bool want_public = pm->pmp_x.op != OP_MAP;
		natpmpresp_t r;
		int ret;

		if (!pmp_datagram_ok(fd))
			continue;
		ret = readnatpmpresponseorretry(&pm->pmp, &r);
		if (ret == NATPMP_TRYAGAIN)
			return;
		if (ret < 0) {
			char why[48];
			snprintf(why, sizeof(why), "libnatpmp error %d", ret);
			pmp_finish(pm, false, NULL,
				   ret == NATPMP_ERR_NOGATEWAYSUPPORT ? "no NAT-PMP server" : why);
			return;
		}
		if (want_public ? r.type != NATPMP_RESPTYPE_PUBLICADDRESS
				: (r.type != NATPMP_RESPTYPE_UDPPORTMAPPING ||
				   r.pnu.newportmapping.privateport != pm->cfg.internal_port)) {
			/* An answer to an earlier request: ours is still pending. */
			pm->pmp.has_pending_request = 1;
			continue;
		}
		pmp_finish(pm, true, &r, NULL);
		return;
	}
}

static void pmp_on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct portmap *pm = arg;

	if (pm->pmp_x.tries >= XCHG_TRIES)
		pmp_finish(pm, false, NULL, "no answer");
	else
		pmp_send(pm);
}

static void pmp_start(struct portmap *pm, enum op op)
{
	pm->pmp_x.op = op;
	pm->pmp_x.tries = 0;
	if (!pm->pmp_open) {
		/* Forced gateway: ours, not libnatpmp's own guess. */
		if (initnatpmp(&pm->pmp, 1, pm->gw.s_addr) < 0) {
			pmp_finish(pm, false, NULL, "cannot open a socket");
			return;
		}
		if (evloop_add_fd(pm->loop, pm->pmp.s, EPOLLIN, pmp_on_readable, pm) < 0) {
			closenatpmp(&pm->pmp);
			pmp_finish(pm, false, NULL, "cannot watch the socket");
			return;
		}
		pm->pmp_open = true;
	}
	if (pmp_send(pm) < 0)
		log_debug("nat-pmp: send failed");
}

/* --- UPnP (worker thread) ----------------------------------------------------- */

static void upnp_on_result(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct portmap *pm = arg;
	struct upnp_result r;

	if (!upnp_worker_result(pm->upnp, &r))
		return;
	pm->upnp_busy = false;
	/* A MAP result nobody waits for any more (portmap_restart() came in
	 * between) still says whether the gateway speaks UPnP. */
	if (r.cmd == UPNP_CMD_MAP && pm->active != P_UPNP) {
		if (pm->probe[P_UPNP] == PROBE_PENDING)
			probe_done(pm, P_UPNP, r.err == 0, r.why);
		return;
	}
	if (r.cmd == UPNP_CMD_PROBE) {
		probe_done(pm, P_UPNP, r.err == 0, r.why);
	} else if (r.err == 0) {
		map_ok(pm, P_UPNP, r.external_addr, r.external_port, r.lifetime);
	} else {
		map_failed(pm, P_UPNP, r.why);
	}
}

static void upnp_start(struct portmap *pm, enum upnp_cmd cmd)
{
	struct upnp_request req = {.cmd = cmd,
				   .gw = pm->gw,
				   .local = pm->local,
				   .internal_port = pm->cfg.internal_port,
				   .lifetime = pm->cfg.lifetime};

	if (!pm->upnp) {
		if (upnp_worker_new(&pm->upnp, &pm->upnp_fd) < 0) {
			pm->upnp = NULL;
			goto fail;
		}
		if (evloop_add_fd(pm->loop, pm->upnp_fd, EPOLLIN, upnp_on_result, pm) < 0) {
			upnp_worker_stop(pm->upnp, 0);
			pm->upnp = NULL;
			goto fail;
		}
	}
	/* Busy with an earlier probe: its answer serves this round too. */
	if (pm->upnp_busy && cmd == UPNP_CMD_PROBE)
		return;
	if (upnp_worker_submit(pm->upnp, &req) < 0)
		goto fail;
	pm->upnp_busy = true;
	return;
fail:
	if (cmd == UPNP_CMD_PROBE)
		probe_done(pm, P_UPNP, false, "cannot start the UPnP worker");
	else
		map_failed(pm, P_UPNP, "UPnP worker busy or absent");
}

/* --- rounds, decisions, renewals ------------------------------------------------ */

static void start_map(struct portmap *pm, enum proto p)
{
	pm->active = p;
	switch (p) {
	case P_PCP:
		pcp_start(pm, OP_MAP, pm->cfg.lifetime);
		break;
	case P_NATPMP:
		pmp_start(pm, OP_PUBLIC_THEN_MAP);
		break;
	default:
		upnp_start(pm, UPNP_CMD_MAP);
		break;
	}
}

static void decide(struct portmap *pm)
{
	bool all_done = true;

	if (pm->active >= 0)
		return;
	for (int p = 0; p < P_COUNT; p++) {
		if (pm->probe[p] == PROBE_PENDING)
			all_done = false;
		if (!(pm->cfg.protocols & proto_bit[p]) || pm->map_failed[p])
			continue;
		if (pm->probe[p] == PROBE_PENDING)
			return; /* a preferred protocol has not answered yet */
		if (pm->probe[p] == PROBE_YES) {
			start_map(pm, p);
			return;
		}
	}
	if (!all_done || !(pm->cfg.protocols & PORTMAP_ALL))
		return; /* still probing, or probing is all we were asked */
	pm->backoff_s = pm->backoff_s ? pm->backoff_s * 2 : BACKOFF_MIN_S;
	if (pm->backoff_s > BACKOFF_MAX_S)
		pm->backoff_s = BACKOFF_MAX_S;
	log_info("no port mapping; trying again later in=%us", pm->backoff_s);
	schedule_round(pm, pm->backoff_s);
}

static void on_renew(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct portmap *pm = arg;

	if (!pm->mapped || pm->active < 0)
		return;
	switch (pm->active) {
	case P_PCP:
		pcp_start(pm, OP_MAP, pm->cfg.lifetime);
		break;
	case P_NATPMP:
		pmp_start(pm, OP_PUBLIC_THEN_MAP);
		break;
	default:
		upnp_start(pm, UPNP_CMD_MAP);
		break;
	}
}

static void on_round(struct evloop *loop, struct ev_timer *t, void *arg)
{
	start_round(arg);
}

static void start_round(struct portmap *pm)
{
	char gw[INET_ADDRSTRLEN];
	int ret;

	pcp_close(pm);
	pmp_close(pm);
	pm->active = -1;
	pm->probed_reported = false;
	for (int p = 0; p < P_COUNT; p++) {
		pm->probe[p] = PROBE_PENDING;
		pm->map_failed[p] = false;
	}
	/* A fresh nonce per round; the port we would like is ours. */
	random_bytes(pm->pcp_map.nonce, PCP_NONCE_LEN);
	pm->pcp_map.protocol = IPPROTO_UDP;
	pm->pcp_map.internal_port = pm->cfg.internal_port;
	pm->pcp_map.external_port = pm->cfg.internal_port;
	pcp_addr_from_v4(&pm->pcp_map.external_addr, (struct in_addr){0});
	pm->pmp_port = pm->cfg.internal_port;

	ret = gateway_default_v4(&pm->gw);
	if (ret == 0)
		ret = gateway_local_addr(pm->gw, &pm->local);
	if (ret < 0) {
		log_info("port mapping: no IPv4 default gateway error=\"%s\"", strerror(-ret));
		for (int p = 0; p < P_COUNT; p++)
			pm->probe[p] = PROBE_NO;
		report_probed(pm);
		decide(pm);
		return;
	}
	inet_ntop(AF_INET, &pm->gw, gw, sizeof(gw));
	log_info("port mapping: probing gateway=%s", gw);
	pcp_start(pm, OP_PROBE, 0);
	pmp_start(pm, OP_PROBE);
	upnp_start(pm, UPNP_CMD_PROBE);
}

/* --- the API ------------------------------------------------------------------ */

int portmap_new_config(struct portmap **out, struct evloop *loop,
		       const struct portmap_config *config, const struct portmap_ops *ops,
		       void *arg)
{
	struct portmap *pm;

	if (!config->internal_port)
		return -EINVAL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->loop = loop;
	pm->cfg = *config;
	if (!pm->cfg.lifetime)
		pm->cfg.lifetime = PORTMAP_DEFAULT_LIFETIME;
	if (!pm->cfg.protocols)
		pm->cfg.protocols = PORTMAP_ALL;
	if (ops)
		pm->ops = *ops;
	pm->arg = arg;
	pm->pcp_fd = -1;
	pm->upnp_fd = -1;
	pm->active = -1;
	ev_timer_init(&pm->pcp.timer, pcp_on_timer, pm);
	ev_timer_init(&pm->pmp_x.timer, pmp_on_timer, pm);
	ev_timer_init(&pm->renew_timer, on_renew, pm);
	ev_timer_init(&pm->round_timer, on_round, pm);
	*out = pm;
	start_round(pm);
	return 0;
}

int portmap_new(struct portmap **out, struct evloop *loop, uint16_t internal_port,
		const struct portmap_ops *ops, void *arg)
{
	struct portmap_config c = {.internal_port = internal_port};

	return portmap_new_config(out, loop, &c, ops, arg);
}

/* Waits for a datagram on fd for wait_ms, cut short by deadline_ns. */
static bool wait_readable(int fd, uint64_t deadline_ns, uint64_t wait_ms)
{
	uint64_t now = clock_mono_ns(), until = now + wait_ms * NSEC_PER_MSEC;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (until > deadline_ns)
		until = deadline_ns;
	if (now >= until)
		return false;
	return poll(&p, 1, (int)((until - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC)) > 0;
}

/* A MAP with lifetime 0 and the same nonce (RFC 6887 section 15), tried
 * until answered or the deadline: blocking, portmap_free() only. */
static void pcp_delete(struct portmap *pm, uint64_t deadline_ns)
{
	struct in6_addr client;
	uint8_t buf[PCP_MAX_MSG + 4];
	ssize_t len;

	if (pm->pcp_fd < 0)
		return;
	pcp_addr_from_v4(&client, pm->local);
	len = pcp_build_map(pm->pcp_req, sizeof(pm->pcp_req), &client, 0, &pm->pcp_map);
	if (len < 0)
		return;
	for (unsigned t = 0; t < XCHG_TRIES && clock_mono_ns() < deadline_ns; t++) {
		send(pm->pcp_fd, pm->pcp_req, len, 0);
		while (wait_readable(pm->pcp_fd, deadline_ns, (uint64_t)XCHG_FIRST_MS << t)) {
			struct pcp_response r;
			ssize_t n = recv(pm->pcp_fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return;
			if (n > 0 && pcp_parse_response(buf, n, &r) == 0 && r.has_map &&
			    r.opcode == PCP_OP_MAP &&
			    !memcmp(r.map.nonce, pm->pcp_map.nonce, PCP_NONCE_LEN)) {
				log_info("port mapping deleted protocol=pcp result=%s",
					 pcp_result_name(r.result));
				return;
			}
		}
	}
	log_warn("port mapping delete unanswered protocol=pcp");
}

/* RFC 6886 section 3.4: lifetime 0 and external port 0 delete. */
static void pmp_delete(struct portmap *pm, uint64_t deadline_ns)
{
	if (!pm->pmp_open)
		return;
	for (unsigned t = 0; t < XCHG_TRIES && clock_mono_ns() < deadline_ns; t++) {
		if (sendnewportmappingrequest(&pm->pmp, NATPMP_PROTOCOL_UDP, pm->cfg.internal_port,
					      0, 0) < 0)
			return;
		while (wait_readable(pm->pmp.s, deadline_ns, (uint64_t)XCHG_FIRST_MS << t)) {
			natpmpresp_t r;
			int ret;

			if (!pmp_datagram_ok(pm->pmp.s))
				continue;
			ret = readnatpmpresponseorretry(&pm->pmp, &r);
			if (ret == NATPMP_TRYAGAIN)
				continue;
			if (ret < 0) {
				log_warn("port mapping delete failed protocol=nat-pmp error=%d",
					 ret);
				return;
			}
			if (r.type == NATPMP_RESPTYPE_UDPPORTMAPPING &&
			    r.pnu.newportmapping.privateport == pm->cfg.internal_port) {
				log_info("port mapping deleted protocol=nat-pmp");
				return;
			}
			pm->pmp.has_pending_request = 1;
		}
	}
	log_warn("port mapping delete unanswered protocol=nat-pmp");
}

void portmap_free(struct portmap *pm)
{
	uint64_t deadline;

	if (!pm)
		return;
	deadline = clock_mono_ns() + FREE_BUDGET_MS * NSEC_PER_MSEC;
	evloop_timer_cancel(pm->loop, &pm->renew_timer);
	evloop_timer_cancel(pm->loop, &pm->round_timer);
	evloop_timer_cancel(pm->loop, &pm->pcp.timer);
	evloop_timer_cancel(pm->loop, &pm->pmp_x.timer);
	/* A MAP in flight may have been granted: delete it too. */
	if (pm->active == P_PCP)
		pcp_delete(pm, deadline);
	else if (pm->active == P_NATPMP)
		pmp_delete(pm, deadline);
	pcp_close(pm);
	pmp_close(pm);
	if (pm->upnp) {
		evloop_del_fd(pm->loop, pm->upnp_fd);
		upnp_worker_stop(pm->upnp, deadline);
	}
	free(pm);
}

void portmap_restart(struct portmap *pm)
{
	bool had = pm->mapped;
	const char *name = pm->active >= 0 ? proto_name[pm->active] : "none";

	evloop_timer_cancel(pm->loop, &pm->renew_timer);
	evloop_timer_cancel(pm->loop, &pm->round_timer);
	pm->mapped = false;
	pm->backoff_s = 0;
	log_info("port mapping: network changed, probing again");
	if (had && pm->ops.changed)
		pm->ops.changed(pm->arg, NULL, name);
	start_round(pm);
}

bool portmap_current(const struct portmap *pm, union sockaddr_inet *external, const char **protocol)
{
	if (!pm->mapped)
		return false;
	if (external)
		*external = pm->external;
	if (protocol)
		*protocol = proto_name[pm->active];
	return true;
}

void portmap_offered(const struct portmap *pm, bool *pcp, bool *natpmp, bool *upnp)
{
	if (pcp)
		*pcp = pm->probe[P_PCP] == PROBE_YES;
	if (natpmp)
		*natpmp = pm->probe[P_NATPMP] == PROBE_YES;
	if (upnp)
		*upnp = pm->probe[P_UPNP] == PROBE_YES;
}
