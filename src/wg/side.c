// SPDX-License-Identifier: MIT
/*
 * Side sockets: UDP sockets of the device besides its own, each behind its
 * own NAT mapping (the socket a birthday search won, knitd/search.c), so
 * that a path found on one carries the peer's traffic at the data plane's
 * speed.  The tx thread seals for a side path as for any other and sends
 * on the slot's socket, GSO groups and all; what a side socket receives is
 * read on the event loop in batches (recvmmsg, UDP GRO) and opened and
 * written to the TUN as relayed packets are.
 *
 * The tx thread loads a slot's fd once per batch: a removed socket is
 * closed only once that thread has begun a later batch (side_reap, from
 * the tick), and its slot is not given out again before.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "wg/device.h"
#include "wg/messages.h"
#include "wg/udp.h"

#define SIDE_RX_MSGS   8
#define SIDE_RX_BUF    65536 /* a GRO'd read */
#define SIDE_RX_ROUNDS 4     /* reads per readiness: the loop has other work */

struct side_rx {
	struct mmsghdr msgs[SIDE_RX_MSGS];
	struct iovec iovs[SIDE_RX_MSGS];
	union sockaddr_inet names[SIDE_RX_MSGS];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctrl[SIDE_RX_MSGS];
	uint8_t bufs[SIDE_RX_MSGS][SIDE_RX_BUF];
};

void side_init(struct wg_device *dev)
{
	for (unsigned i = 0; i < DEVICE_SIDE_SLOTS; i++) {
		atomic_init(&dev->side.fd[i], -1);
		dev->side.retired_fd[i] = -1;
	}
}

int device_side_add(struct wg_device *dev, int fd)
{
	if (!dev->side.rx && !(dev->side.rx = malloc(sizeof(*dev->side.rx))))
		return -ENOMEM;
	for (unsigned slot = 1; slot < DEVICE_SIDE_SLOTS; slot++) {
		if (atomic_load(&dev->side.fd[slot]) != -1)
			continue;
		udp_adopt(fd, dev->fwmark);
		atomic_store(&dev->side.fd[slot], fd);
		return (int)slot;
	}
	return -ENOSPC;
}

void device_side_remove(struct wg_device *dev, unsigned slot)
{
	int fd;

	if (slot == 0 || slot >= DEVICE_SIDE_SLOTS || atomic_load(&dev->side.fd[slot]) < 0)
		return;
	fd = atomic_exchange(&dev->side.fd[slot], SIDE_RETIRING);
	if (!dev->threads_running) {
		close(fd);
		atomic_store(&dev->side.fd[slot], -1);
		return;
	}
	/* Read after the store: a batch that loaded fd began before it. */
	dev->side.retired_epoch[slot] = atomic_load(&dev->side.tx_epoch);
	dev->side.retired_fd[slot] = fd;
	dev->side.n_retiring++;
}

void side_reap(struct wg_device *dev)
{
	uint64_t epoch;

	if (!dev->side.n_retiring)
		return;
	epoch = atomic_load(&dev->side.tx_epoch);
	for (unsigned slot = 1; slot < DEVICE_SIDE_SLOTS; slot++) {
		if (dev->side.retired_fd[slot] < 0 || epoch <= dev->side.retired_epoch[slot])
			continue;
		close(dev->side.retired_fd[slot]);
		dev->side.retired_fd[slot] = -1;
		atomic_store(&dev->side.fd[slot], -1);
		dev->side.n_retiring--;
	}
}

void side_free(struct wg_device *dev)
{
	for (unsigned slot = 1; slot < DEVICE_SIDE_SLOTS; slot++) {
		int fd = atomic_load(&dev->side.fd[slot]);
		if (fd >= 0)
			close(fd);
		if (dev->side.retired_fd[slot] >= 0)
			close(dev->side.retired_fd[slot]);
	}
	free(dev->side.rx);
	dev->side.rx = NULL;
}

int side_fd_for(struct wg_device *dev, const union sockaddr_inet *ep, union sockaddr_inet *dest)
{
	unsigned slot = endpoint_side_slot(ep);

	endpoint_side_dest(ep, dest);
	return slot < DEVICE_SIDE_SLOTS ? atomic_load(&dev->side.fd[slot]) : -1;
}

static bool is_wireguard(const uint8_t *pkt, size_t len)
{
	uint32_t type;

	if (len < 4)
		return false;
	memcpy(&type, pkt, 4);
	return le32toh(type) - 1 < MESSAGE_DATA;
}

/* One recvmmsg; the number of datagrams read. */
static int side_recv(struct side_rx *rx, int fd)
{
	for (unsigned i = 0; i < SIDE_RX_MSGS; i++)
		udp_mmsg_init(&rx->msgs[i], &rx->iovs[i], rx->bufs[i], SIDE_RX_BUF, &rx->names[i],
			      rx->ctrl[i].buf, sizeof(rx->ctrl[i].buf));
	return recvmmsg(fd, rx->msgs, SIDE_RX_MSGS, MSG_DONTWAIT, NULL);
}

void device_side_read(struct wg_device *dev, unsigned slot, side_other_fn *other, void *arg)
{
	struct side_rx *rx = dev->side.rx;
	int fd = slot < DEVICE_SIDE_SLOTS ? atomic_load(&dev->side.fd[slot]) : -1;

	for (unsigned round = 0; fd >= 0 && rx && round < SIDE_RX_ROUNDS; round++) {
		int n = side_recv(rx, fd);

		for (int i = 0; i < n; i++) {
			const struct msghdr *m = &rx->msgs[i].msg_hdr;
			size_t len = rx->msgs[i].msg_len, seg = udp_gro_size(m);
			union sockaddr_inet src;

			if (m->msg_flags & MSG_TRUNC)
				continue;
			if (!seg || seg > len)
				seg = len;
			endpoint_set_side(&src, &rx->names[i], slot);
			/* A GRO'd datagram is messages of seg bytes, the last shorter. */
			for (size_t off = 0; off < len; off += seg) {
				size_t mlen = len - off < seg ? len - off : seg;
				const uint8_t *pkt = rx->bufs[i] + off;
				if (is_wireguard(pkt, mlen)) {
					device_loop_rx_add(dev, &src, pkt, mlen);
					continue;
				}
				other(arg, pkt, mlen, &rx->names[i]);
				/* other may have removed the socket (and freed arg). */
				if (atomic_load(&dev->side.fd[slot]) != fd)
					goto out;
			}
		}
		if (n < SIDE_RX_MSGS)
			break;
	}
out:
	device_relayed_flush(dev);
}
