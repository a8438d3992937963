// SPDX-License-Identifier: MIT
/* The device's UDP socket (see udp.h). */
#include "wg/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "wg/tun.h"

static void set_buffers(int fd)
{
	int size = UDP_SOCKET_BUFFER;

	/* FORCE ignores rmem_max/wmem_max but needs CAP_NET_ADMIN. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

int udp_set_fwmark(int fd, uint32_t fwmark)
{
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) < 0)
		return -errno;
	return 0;
}

static int bind_socket(int family, uint16_t port)
{
	union sockaddr_inet addr = {0};
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int off = 0;

	if (fd < 0)
		return -errno;
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_addr = in6addr_any;
		addr.in6.sin6_port = htons(port);
	} else {
		addr.in.sin_family = AF_INET;
		addr.in.sin_addr.s_addr = htonl(INADDR_ANY);
		addr.in.sin_port = htons(port);
	}
	if (bind(fd, &addr.sa, endpoint_len(&addr)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

bool udp_gso_supported(int fd)
{
	int size = 0;
	socklen_t len = sizeof(size);

	return !offload_disabled("gso") && getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
}

static void enable_gro(int fd)
{
	int on = 1;

	if (!offload_disabled("gro"))
		setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)); /* optional */
}

void udp_adopt(int fd, uint32_t fwmark)
{
	set_buffers(fd);
	enable_gro(fd);
	if (fwmark)
		udp_set_fwmark(fd, fwmark);
}

void udp_mmsg_init(struct mmsghdr *m, struct iovec *iov, void *buf, size_t len,
		   union sockaddr_inet *name, void *ctrl, size_t ctrl_len)
{
	*iov = (struct iovec){.iov_base = buf, .iov_len = len};
	m->msg_hdr = (struct msghdr){
		.msg_name = name,
		.msg_namelen = sizeof(*name),
		.msg_iov = iov,
		.msg_iovlen = 1,
		.msg_control = ctrl,
		.msg_controllen = ctrl_len,
	};
}

size_t udp_gro_size(const struct msghdr *m)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR((struct msghdr *)m, cm)) {
		int size;
		if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO ||
		    cm->cmsg_len < CMSG_LEN(sizeof(size)))
			continue;
		memcpy(&size, CMSG_DATA(cm), sizeof(size));
		return size > 0 ? (size_t)size : 0;
	}
	return 0;
}

int udp_open(uint16_t port, uint32_t fwmark, uint16_t *bound_port)
{
	struct timeval timeout = {.tv_sec = 1};
	union sockaddr_inet local;
	socklen_t len = sizeof(local);
	int fd = bind_socket(AF_INET6, port);

	if (fd == -EAFNOSUPPORT)
		fd = bind_socket(AF_INET, port);
	if (fd < 0)
		return fd;
	set_buffers(fd);
	enable_gro(fd);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	if (fwmark && udp_set_fwmark(fd, fwmark) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (getsockname(fd, &local.sa, &len) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	*bound_port =
		ntohs(local.sa.sa_family == AF_INET6 ? local.in6.sin6_port : local.in.sin_port);
	return fd;
}
