// SPDX-License-Identifier: MIT
/*
 * NFQUEUE over libmnl and libnetfilter_queue's message helpers: bind one
 * queue, read packet ids (metadata only: linkem never looks at or changes a
 * packet), send verdicts, many per system call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "linkem.h"

#define RX_BUF		  (256 * 1024)
#define RCVBUF		  (16 * 1024 * 1024)
#define TX_BUF		  (64 * 1024)
#define VERDICT_MSG_SPACE 64 /* one verdict message, header included */

struct lq {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t queue;
	uint32_t seq;
	char *rx;
	char *tx;
};

static int ack_cb(const struct nlmsghdr *nlh, void *arg)
{
	return MNL_CB_OK;
}

/* Sends one configuration message and waits for the kernel's answer. */
static int send_config(struct lq *q, struct nlmsghdr *nlh)
{
	ssize_t n;
	int ret;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++q->seq;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(q->nl, q->rx, RX_BUF);
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(q->rx, (size_t)n, q->seq, q->portid, ack_cb, NULL);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

static int configure(struct lq *q, uint32_t kernel_maxlen)
{
	struct nlmsghdr *nlh;
	int err;

	nlh = nfq_nlmsg_put(q->tx, NFQNL_MSG_CONFIG, q->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	err = send_config(q, nlh);
	if (err)
		return err;

	nlh = nfq_nlmsg_put(q->tx, NFQNL_MSG_CONFIG, q->queue);
	/* Metadata is all we need: the id for the verdict. */
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, kernel_maxlen);
	/*
	 * Fail-open off: a packet the kernel cannot queue is dropped, as a full
	 * link would.  GSO off: the kernel segments before queueing, so loss
	 * and delay apply per wire packet.
	 */
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(0));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
	return send_config(q, nlh);
}

int lq_open(struct lq **out, uint16_t queue, uint32_t kernel_maxlen)
{
	struct lq *q = calloc(1, sizeof(*q));
	int one = 1, rcvbuf = RCVBUF, err;

	if (!q)
		return -ENOMEM;
	q->queue = queue;
	q->rx = malloc(RX_BUF);
	q->tx = malloc(TX_BUF);
	q->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!q->rx || !q->tx || !q->nl) {
		err = q->nl ? -ENOMEM : -errno;
		goto fail;
	}
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	q->portid = mnl_socket_get_portid(q->nl);
	/* A burst must not overflow the socket: we count drops ourselves. */
	if (setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	err = configure(q, kernel_maxlen);
	if (err)
		goto fail;
	if (fcntl(mnl_socket_get_fd(q->nl), F_SETFL, O_NONBLOCK) < 0) {
		err = -errno;
		goto fail;
	}
	*out = q;
	return 0;
fail:
	lq_close(q);
	return err;
}

void lq_close(struct lq *q)
{
	if (!q)
		return;
	if (q->nl)
		mnl_socket_close(q->nl);
	free(q->rx);
	free(q->tx);
	free(q);
}

int lq_fd(const struct lq *q)
{
	return mnl_socket_get_fd(q->nl);
}

struct rx_ctx {
	lq_packet_cb cb;
	void *arg;
};

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	struct nfqnl_msg_packet_hdr *ph;
	struct rx_ctx *ctx = data;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph)) {
		log_warn("nfqueue message without a packet header ignored");
		return MNL_CB_OK;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	ctx->cb(ntohl(ph->packet_id), ctx->arg);
	return MNL_CB_OK;
}

int lq_receive(struct lq *q, lq_packet_cb cb, void *arg)
{
	struct rx_ctx ctx = {.cb = cb, .arg = arg};
	ssize_t n;

	for (;;) {
		n = mnl_socket_recvfrom(q->nl, q->rx, RX_BUF);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0
											 : -errno;
		if (mnl_cb_run(q->rx, (size_t)n, 0, q->portid, packet_cb, &ctx) < 0)
			return -errno;
	}
}

static int flush_tx(struct lq *q, size_t len)
{
	if (len && mnl_socket_sendto(q->nl, q->tx, len) < 0)
		return -errno;
	return 0;
}

int lq_verdict(struct lq *q, const uint32_t *ids, size_t n, bool accept, bool in_order)
{
	int verdict = accept ? NF_ACCEPT : NF_DROP;
	struct nlmsghdr *nlh;
	size_t len = 0, i;
	int err;

	if (n == 0)
		return 0;
	if (in_order) {
		/* Every earlier packet of the queue has its verdict already. */
		nlh = nfq_nlmsg_put(q->tx, NFQNL_MSG_VERDICT_BATCH, q->queue);
		nfq_nlmsg_verdict_put(nlh, (int)ids[n - 1], verdict);
		return flush_tx(q, nlh->nlmsg_len);
	}
	for (i = 0; i < n; i++) {
		if (len + VERDICT_MSG_SPACE > TX_BUF) {
			err = flush_tx(q, len);
			if (err)
				return err;
			len = 0;
		}
		nlh = nfq_nlmsg_put(q->tx + len, NFQNL_MSG_VERDICT, q->queue);
		nfq_nlmsg_verdict_put(nlh, (int)ids[i], verdict);
		len += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	return flush_tx(q, len);
}
