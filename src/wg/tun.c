// SPDX-License-Identifier: MIT
/* TUN device (see tun.h). */
#include "wg/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

bool offload_disabled(const char *what)
{
	const char *env = getenv("KNIT_NO_OFFLOAD");
	size_t n = strlen(what);

	if (!env)
		return false;
	for (const char *p = env; *p;) {
		size_t len = strcspn(p, ",");
		if ((len == n && !strncmp(p, what, n)) || (len == 3 && !strncmp(p, "all", 3)))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* The richest set of offloads the kernel takes, from the list in order. */
static unsigned set_offloads(int fd)
{
	static const unsigned tries[] = {
		TUN_OFFLOAD_CSUM | TUN_OFFLOAD_TSO4 | TUN_OFFLOAD_TSO6 | TUN_OFFLOAD_USO4 |
			TUN_OFFLOAD_USO6,
		TUN_OFFLOAD_CSUM | TUN_OFFLOAD_TSO4 | TUN_OFFLOAD_TSO6,
		TUN_OFFLOAD_CSUM,
	};

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0)
			return tries[i];
	return 0;
}

static int open_flags(const char *name, short flags, int *ifindex)
{
	struct ifreq ifr = {0};
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = flags;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*ifindex = (int)if_nametoindex(ifr.ifr_name);
	if (!*ifindex) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int tun_open(const char *name, int *ifindex, unsigned *offloads)
{
	int fd = -EINVAL;

	*offloads = 0;
	if (strlen(name) >= IFNAMSIZ || !*name)
		return -EINVAL;
	if (!offload_disabled("tun")) {
		fd = open_flags(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, ifindex);
		if (fd >= 0) {
			*offloads = TUN_OFFLOAD_VNET_HDR | set_offloads(fd);
			return fd;
		}
	}
	/* A kernel without virtio-net headers on TUN: plain packets. */
	return open_flags(name, IFF_TUN | IFF_NO_PI, ifindex);
}

void tun_offloads_format(unsigned offloads, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{TUN_OFFLOAD_VNET_HDR, "vnet_hdr"}, {TUN_OFFLOAD_CSUM, "csum"},
		     {TUN_OFFLOAD_TSO4, "tso4"},	 {TUN_OFFLOAD_TSO6, "tso6"},
		     {TUN_OFFLOAD_USO4, "uso4"},	 {TUN_OFFLOAD_USO6, "uso6"}};
	size_t pos = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(offloads & names[i].bit))
			continue;
		int r = snprintf(buf + pos, len - pos, "%s%s", pos ? "," : "", names[i].name);
		if (r < 0 || (size_t)r >= len - pos)
			return;
		pos += (size_t)r;
	}
	if (!pos)
		snprintf(buf, len, "none");
}
