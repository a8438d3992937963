// SPDX-License-Identifier: MIT
/*
 * ctfilter: keeps an nftables set (or map) in step with conntrack.  For
 * each new flow that matches, it adds an element built from the flow's
 * addresses and ports, optionally after an artificial delay (the seed's
 * late rule, on purpose), and deletes it when the last flow that made it
 * ends.  It replaces the seed's `conntrack -E | while read ...; nft add ...`
 * pipeline: one process, one netlink socket, one nftables context.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <nftables/libnftables.h>
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
#include "spec.h"
#include "track.h"

#define RX_BUF		(256 * 1024)
#define RCVBUF		(8 * 1024 * 1024)
#define MAX_FLOWS	65536
#define CMD_MAX		(CT_ELEM_MAX + 3 * CT_NAME_MAX + 64)
#define MAX_DELAY_MS	600000u
#define DEFAULT_REAP_MS 250

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ctfilter --set FAMILY:TABLE:SET --key FIELDS [--value FIELDS]\n"
		"                [--src PREFIX]... [--mark VALUE[/MASK]] [--snat-only]\n"
		"                [--proto udp|tcp] [--ip 4|6] [--delay-ms D] [--timeout S]\n"
		"                [--reap-ms N] [--max-flows N] [--log-level LEVEL]\n"
		"\n"
		"Follows conntrack's NEW and DESTROY events in the current network namespace.\n"
		"For each new flow that matches, adds an element to an existing nftables set\n"
		"or map (`add element FAMILY TABLE SET { KEY [: VALUE] }`), after D ms if\n"
		"--delay-ms is given; deletes it when the last flow that made it is destroyed,\n"
		"and at exit.  Runs in the foreground until SIGTERM or SIGINT; logs \"ctfilter\n"
		"ready\" once subscribed, and its counters on SIGUSR1 and at exit.\n"
		"\n"
		"A flow's fields, as conntrack sees it once the NAT chose the mapping:\n"
		"  saddr, sport              original source: the host inside\n"
		"  daddr, dport              original destination: the remote host\n"
		"  mapped-addr, mapped-port  reply destination: the NAT's external address\n"
		"                            and port for this flow\n"
		"FIELDS joins field names with dots, in the order of the set's type, e.g.\n"
		"  --key mapped-port                        EIF: any remote host may answer\n"
		"  --key daddr.mapped-port                  ADF: hosts this mapping sent to\n"
		"  --key daddr.dport.mapped-port            ADPF: exact remote endpoints\n"
		"  --key mapped-port --value saddr.sport    a map for DNAT (hairpin, EIF/ADF)\n"
		"\n"
		"  --set F:T:S        the set or map: nft family (ip, ip6, inet, bridge,\n"
		"                     netdev, arp), table and set names; it must exist\n"
		"  --key FIELDS       the element's key\n"
		"  --value FIELDS     the element's value, for a map\n"
		"  --src PREFIX       only flows whose original source is in PREFIX\n"
		"                     (repeatable, up to %d)\n"
		"  --mark V[/M]       only flows whose conntrack mark & M == V\n"
		"  --snat-only        only flows the NAT source-translated (masquerade, snat)\n"
		"  --proto P          udp (default) or tcp\n"
		"  --ip 4|6           address family of the flows (default 4)\n"
		"  --delay-ms D       add each element D ms late, 0-%u (default 0)\n"
		"  --timeout S        give each element an nftables timeout of S s (1-%u; the\n"
		"                     set needs `flags timeout`); a safety net: elements are\n"
		"                     deleted on DESTROY anyway, and traffic does not refresh\n"
		"                     the timeout (a later flow making it re-adds it)\n"
		"  --reap-ms N        list conntrack's table every N ms (default %d, 0: never);\n"
		"                     listing makes the kernel destroy expired flows at once,\n"
		"                     where its garbage collector can take tens of seconds,\n"
		"                     so elements leave within N ms of a mapping's timeout\n"
		"  --max-flows N      live flows tracked at most (default %d)\n"
		"  --log-level L      error, warn, info (default) or debug\n",
		CT_MAX_SRC, MAX_DELAY_MS, CT_MAX_TIMEOUT, DEFAULT_REAP_MS, MAX_FLOWS);
}

struct app {
	struct ct_spec spec;
	struct ct_track track;
	struct nft_ctx *nft;
	struct mnl_socket *nl;
	uint32_t portid;
	struct evloop *loop;
	struct ev_timer timer;
	struct mnl_socket *dump; /* periodic dumps make the kernel reap expired flows */
	struct ev_timer reap_timer;
	uint32_t reap_ms;
	bool dumping;
	uint32_t dump_seq;
	char *rx;
	char cmd[CMD_MAX];
	uint64_t ev_new, ev_destroy, ev_filtered, ev_bad, ev_lost;
};

/* nft's error text, first line, for a log line. */
static const char *nft_error(struct app *a, char *buf, size_t len)
{
	const char *e = nft_ctx_get_error_buffer(a->nft);
	size_t n;

	if (!e || !*e)
		return "unknown error";
	n = strcspn(e, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(buf, e, n);
	buf[n] = '\0';
	return buf;
}

static int nft_cmd(struct app *a, const char *verb, const char *elem)
{
	int n = snprintf(a->cmd, sizeof(a->cmd), "%s element %s %s %s { %s }", verb, a->spec.family,
			 a->spec.table, a->spec.set, elem);

	if (n < 0 || (size_t)n >= sizeof(a->cmd))
		return -ENOSPC;
	return nft_run_cmd_from_buffer(a->nft, a->cmd) ? -EIO : 0;
}

static int op_add(void *arg, const char *elem)
{
	struct app *a = arg;
	char err[256];

	if (nft_cmd(a, "add", elem)) {
		log_error("element not added set=%s:%s:%s element=\"%s\" error=\"%s\"",
			  a->spec.family, a->spec.table, a->spec.set, elem,
			  nft_error(a, err, sizeof(err)));
		return -EIO;
	}
	log_info("element added set=%s:%s:%s element=\"%s\"", a->spec.family, a->spec.table,
		 a->spec.set, elem);
	return 0;
}

static int op_del(void *arg, const char *elem)
{
	struct app *a = arg;
	char err[256];

	if (nft_cmd(a, "delete", elem)) {
		/* With a timeout the kernel may have expired it first. */
		if (a->spec.timeout_s)
			log_debug("element already gone set=%s:%s:%s element=\"%s\"",
				  a->spec.family, a->spec.table, a->spec.set, elem);
		else
			log_error("element not deleted set=%s:%s:%s element=\"%s\" error=\"%s\"",
				  a->spec.family, a->spec.table, a->spec.set, elem,
				  nft_error(a, err, sizeof(err)));
		return -EIO;
	}
	log_info("element deleted set=%s:%s:%s element=\"%s\"", a->spec.family, a->spec.table,
		 a->spec.set, elem);
	return 0;
}

static void arm(struct app *a)
{
	uint64_t next = ct_track_next_deadline(&a->track);

	if (next == UINT64_MAX)
		evloop_timer_cancel(a->loop, &a->timer);
	else
		evloop_timer_arm(a->loop, &a->timer, next);
}

static void timer_cb(struct evloop *loop, struct ev_timer *timer, void *arg)
{
	struct app *a = arg;

	ct_track_run(&a->track, clock_mono_ns());
	arm(a);
}

/* The flow's fields from a parsed event; false when some are missing. */
static bool flow_from_ct(const struct nf_conntrack *ct, struct ct_flow *f)
{
	static const int need[] = {ATTR_ID,
				   ATTR_ORIG_L3PROTO,
				   ATTR_ORIG_L4PROTO,
				   ATTR_ORIG_PORT_SRC,
				   ATTR_ORIG_PORT_DST,
				   ATTR_REPL_PORT_DST};
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!nfct_attr_is_set(ct, need[i]))
			return false;
	f->id = nfct_get_attr_u32(ct, ATTR_ID);
	f->family = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
	f->proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
	f->sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
	f->dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	f->mport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_DST));
	if (f->family == AF_INET) {
		if (!nfct_attr_is_set(ct, ATTR_ORIG_IPV4_SRC) ||
		    !nfct_attr_is_set(ct, ATTR_ORIG_IPV4_DST) ||
		    !nfct_attr_is_set(ct, ATTR_REPL_IPV4_DST))
			return false;
		memcpy(f->saddr, nfct_get_attr(ct, ATTR_ORIG_IPV4_SRC), 4);
		memcpy(f->daddr, nfct_get_attr(ct, ATTR_ORIG_IPV4_DST), 4);
		memcpy(f->maddr, nfct_get_attr(ct, ATTR_REPL_IPV4_DST), 4);
	} else if (f->family == AF_INET6) {
		if (!nfct_attr_is_set(ct, ATTR_ORIG_IPV6_SRC) ||
		    !nfct_attr_is_set(ct, ATTR_ORIG_IPV6_DST) ||
		    !nfct_attr_is_set(ct, ATTR_REPL_IPV6_DST))
			return false;
		memcpy(f->saddr, nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
		memcpy(f->daddr, nfct_get_attr(ct, ATTR_ORIG_IPV6_DST), 16);
		memcpy(f->maddr, nfct_get_attr(ct, ATTR_REPL_IPV6_DST), 16);
	} else {
		return false;
	}
	if (nfct_attr_is_set(ct, ATTR_MARK)) {
		f->has_mark = true;
		f->mark = nfct_get_attr_u32(ct, ATTR_MARK);
	}
	if (nfct_attr_is_set(ct, ATTR_STATUS))
		f->snat = nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_SRC_NAT;
	return true;
}

static void on_new(struct app *a, const struct ct_flow *f)
{
	char add[CT_ELEM_MAX], del[CT_ELEM_MAX];
	int err;

	a->ev_new++;
	if (!ct_spec_match(&a->spec, f)) {
		a->ev_filtered++;
		return;
	}
	if (ct_element(&a->spec, f, true, true, add, sizeof(add)) ||
	    ct_element(&a->spec, f, false, false, del, sizeof(del))) {
		a->ev_bad++;
		return;
	}
	log_debug("flow new id=%u element=\"%s\"", f->id, add);
	err = ct_track_new(&a->track, clock_mono_ns(), f->id, add, del);
	if (err == -ENOSPC)
		log_warn("flow not tracked: --max-flows reached id=%u", f->id);
	else if (err == -ENOMEM)
		log_error("out of memory");
	arm(a);
}

static int event_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct app *a = arg;
	struct nf_conntrack *ct = nfct_new();
	uint8_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	struct ct_flow f;

	if (!ct)
		return MNL_CB_OK;
	if (nfct_nlmsg_parse(nlh, ct) < 0 || !flow_from_ct(ct, &f)) {
		a->ev_bad++;
	} else if (type == IPCTNL_MSG_CT_NEW && (nlh->nlmsg_flags & NLM_F_CREATE)) {
		on_new(a, &f);
	} else if (type == IPCTNL_MSG_CT_DELETE) {
		a->ev_destroy++;
		if (ct_track_destroy(&a->track, f.id) == 0)
			log_debug("flow destroyed id=%u", f.id);
	}
	nfct_destroy(ct);
	return MNL_CB_OK;
}

static void netlink_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct app *a = arg;
	ssize_t n;

	for (;;) {
		n = mnl_socket_recvfrom(a->nl, a->rx, RX_BUF);
		if (n < 0) {
			if (errno == ENOBUFS) {
				a->ev_lost++;
				log_warn("conntrack events lost: the socket overflowed, "
					 "elements may be missing or stale");
				continue;
			}
			if (errno != EAGAIN && errno != EINTR)
				log_error("conntrack socket error=%s", strerror(errno));
			return;
		}
		mnl_cb_run(a->rx, (size_t)n, 0, 0, event_cb, a);
	}
}

/* Starts a dump of conntrack's table; its answer is read and thrown away. */
static void reap_cb(struct evloop *loop, struct ev_timer *timer, void *arg)
{
	struct app *a = arg;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	evloop_timer_arm(loop, &a->reap_timer, clock_mono_ns() + a->reap_ms * NSEC_PER_MSEC);
	if (a->dumping)
		return;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++a->dump_seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)a->spec.ip_family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	if (mnl_socket_sendto(a->dump, nlh, nlh->nlmsg_len) < 0)
		log_warn("conntrack dump not sent error=%s", strerror(errno));
	else
		a->dumping = true;
}

static int dump_discard_cb(const struct nlmsghdr *nlh, void *arg)
{
	return MNL_CB_OK;
}

static void dump_read_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct app *a = arg;
	ssize_t n;
	int ret;

	for (;;) {
		n = mnl_socket_recvfrom(a->dump, a->rx, RX_BUF);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				log_warn("conntrack dump failed error=%s", strerror(errno));
				a->dumping = false;
			}
			return;
		}
		ret = mnl_cb_run(a->rx, (size_t)n, a->dump_seq, mnl_socket_get_portid(a->dump),
				 dump_discard_cb, NULL);
		if (ret <= 0)
			a->dumping = false; /* NLMSG_DONE, or an error */
	}
}

static int start_reaping(struct app *a)
{
	int err;

	a->dump = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!a->dump)
		return -errno;
	if (mnl_socket_bind(a->dump, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	err = evloop_add_fd(a->loop, mnl_socket_get_fd(a->dump), EPOLLIN, dump_read_cb, a);
	if (err)
		return err;
	ev_timer_init(&a->reap_timer, reap_cb, a);
	evloop_timer_arm(a->loop, &a->reap_timer, clock_mono_ns() + a->reap_ms * NSEC_PER_MSEC);
	return 0;
}

static void log_counters(struct app *a)
{
	const struct ct_track_stats *s = &a->track.stats;

	log_info("ctfilter counters events_new=%" PRIu64 " events_destroy=%" PRIu64
		 " filtered=%" PRIu64 " malformed=%" PRIu64 " lost=%" PRIu64 " flows=%" PRIu64
		 " elements=%" PRIu64 " added=%" PRIu64 " add_errors=%" PRIu64 " deleted=%" PRIu64
		 " delete_errors=%" PRIu64,
		 a->ev_new, a->ev_destroy, a->ev_filtered, a->ev_bad, a->ev_lost, s->flows,
		 s->elements, s->added, s->add_errors, s->deleted, s->delete_errors);
}

static void signal_cb(struct evloop *loop, int signo, void *arg)
{
	if (signo == SIGUSR1)
		log_counters(arg);
	else
		evloop_stop(loop);
}

static int subscribe(struct app *a)
{
	int rcvbuf = RCVBUF;

	a->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!a->nl)
		return -errno;
	if (mnl_socket_bind(a->nl, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_DESTROY,
			    MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	if (setsockopt(mnl_socket_get_fd(a->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(a->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	a->portid = mnl_socket_get_portid(a->nl);
	return 0;
}

/* The set must exist before the first flow, or every add would fail. */
static int check_set(struct app *a)
{
	char err[256];
	int n = snprintf(a->cmd, sizeof(a->cmd), "list %s %s %s %s",
			 a->spec.value.n ? "map" : "set", a->spec.family, a->spec.table,
			 a->spec.set);

	if (n < 0 || (size_t)n >= sizeof(a->cmd))
		return -ENOSPC;
	if (nft_run_cmd_from_buffer(a->nft, a->cmd)) {
		fprintf(stderr, "ctfilter: %s %s %s %s: %s\n", a->spec.value.n ? "map" : "set",
			a->spec.family, a->spec.table, a->spec.set, nft_error(a, err, sizeof(err)));
		return -ENOENT;
	}
	return 0;
}

static int run(struct app *a, size_t max_flows)
{
	struct ct_track_ops ops = {.add = op_add, .del = op_del, .arg = a};
	int err;

	err = ct_track_init(&a->track, max_flows, (uint64_t)a->spec.delay_ms * NSEC_PER_MSEC,
			    a->spec.timeout_s != 0, &ops);
	if (err)
		goto fail_msg;
	a->rx = malloc(RX_BUF);
	a->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!a->rx || !a->nft) {
		err = -ENOMEM;
		goto fail_msg;
	}
	nft_ctx_buffer_output(a->nft);
	nft_ctx_buffer_error(a->nft);
	err = check_set(a);
	if (err)
		goto out;
	err = evloop_new(&a->loop);
	if (err)
		goto fail_msg;
	ev_timer_init(&a->timer, timer_cb, a);
	err = subscribe(a);
	if (err) {
		fprintf(stderr, "ctfilter: cannot subscribe to conntrack events: %s\n",
			strerror(-err));
		goto out;
	}
	err = evloop_add_fd(a->loop, mnl_socket_get_fd(a->nl), EPOLLIN, netlink_cb, a);
	if (!err)
		err = evloop_add_signal(a->loop, SIGTERM, signal_cb, a);
	if (!err)
		err = evloop_add_signal(a->loop, SIGINT, signal_cb, a);
	if (!err)
		err = evloop_add_signal(a->loop, SIGUSR1, signal_cb, a);
	if (!err && a->reap_ms)
		err = start_reaping(a);
	if (err)
		goto fail_msg;
	log_info("ctfilter ready set=%s:%s:%s delay_ms=%u timeout_s=%u", a->spec.family,
		 a->spec.table, a->spec.set, a->spec.delay_ms, a->spec.timeout_s);
	err = evloop_run(a->loop);
	if (err)
		goto fail_msg;
	ct_track_remove_all(&a->track);
	log_counters(a);
	goto out;
fail_msg:
	fprintf(stderr, "ctfilter: %s\n", strerror(-err));
out:
	if (a->nl)
		mnl_socket_close(a->nl);
	if (a->dump)
		mnl_socket_close(a->dump);
	evloop_free(a->loop);
	if (a->nft)
		nft_ctx_free(a->nft);
	free(a->rx);
	ct_track_free(&a->track);
	return err ? 1 : 0;
}

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "ctfilter: invalid %s '%s': %s\n", opt, val, want);
	return 2;
}

/* A decimal in [lo, hi]. */
static int parse_range(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"set", required_argument, NULL, 's'},
		{"key", required_argument, NULL, 'k'},
		{"value", required_argument, NULL, 'v'},
		{"src", required_argument, NULL, 'S'},
		{"mark", required_argument, NULL, 'm'},
		{"snat-only", no_argument, NULL, 'n'},
		{"proto", required_argument, NULL, 'p'},
		{"ip", required_argument, NULL, 'i'},
		{"delay-ms", required_argument, NULL, 'd'},
		{"timeout", required_argument, NULL, 't'},
		{"max-flows", required_argument, NULL, 'F'},
		{"reap-ms", required_argument, NULL, 'r'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct app a; /* large (hash tables): not on the stack */
	uint32_t max_flows = MAX_FLOWS, v;
	enum log_level level;
	const char *why;
	int opt;

	ct_spec_init(&a.spec);
	a.reap_ms = DEFAULT_REAP_MS;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (ct_spec_parse_set(&a.spec, optarg))
				return bad("--set", optarg,
					   "FAMILY:TABLE:SET, e.g. inet:lab:adf (names: letters, "
					   "digits, _ . /)");
			break;
		case 'k':
		case 'v':
			if (ct_fields_parse(optarg, opt == 'k' ? &a.spec.key : &a.spec.value))
				return bad(opt == 'k' ? "--key" : "--value", optarg,
					   "field names joined by dots, each once: saddr, sport, "
					   "daddr, dport, mapped-addr, mapped-port");
			break;
		case 'S':
			switch (ct_spec_add_src(&a.spec, optarg)) {
			case 0:
				break;
			case -ENOSPC:
				return bad("--src", optarg, "too many prefixes");
			default:
				return bad("--src", optarg, "an address prefix, e.g. 10.0.1.0/24");
			}
			break;
		case 'm':
			if (ct_spec_parse_mark(&a.spec, optarg))
				return bad("--mark", optarg, "VALUE or VALUE/MASK, e.g. 0x10/0xff");
			break;
		case 'n':
			a.spec.snat_only = true;
			break;
		case 'p':
			if (!strcmp(optarg, "udp"))
				a.spec.proto = IPPROTO_UDP;
			else if (!strcmp(optarg, "tcp"))
				a.spec.proto = IPPROTO_TCP;
			else
				return bad("--proto", optarg, "udp or tcp");
			break;
		case 'i':
			if (!strcmp(optarg, "4"))
				a.spec.ip_family = AF_INET;
			else if (!strcmp(optarg, "6"))
				a.spec.ip_family = AF_INET6;
			else
				return bad("--ip", optarg, "4 or 6");
			break;
		case 'd':
			if (parse_range(optarg, 0, MAX_DELAY_MS, &a.spec.delay_ms))
				return bad("--delay-ms", optarg, "whole ms, 0-600000");
			break;
		case 't':
			if (parse_range(optarg, 1, CT_MAX_TIMEOUT, &a.spec.timeout_s))
				return bad("--timeout", optarg, "whole seconds, 1-86400");
			break;
		case 'F':
			if (parse_range(optarg, 1, 1 << 22, &v))
				return bad("--max-flows", optarg, "1-4194304");
			max_flows = v;
			break;
		case 'r':
			if (parse_range(optarg, 0, 60000, &a.reap_ms))
				return bad("--reap-ms", optarg, "whole ms, 0-60000");
			break;
		case 'l':
			if (log_parse_level(optarg, &level))
				return bad("--log-level", optarg, "error, warn, info or debug");
			log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ctfilter: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (ct_spec_check(&a.spec, &why)) {
		fprintf(stderr, "ctfilter: %s (see --help)\n", why);
		return 2;
	}
	return run(&a, max_flows);
}
