// SPDX-License-Identifier: MIT
/* TUN device (see tun.h). */
#include "wg/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int tun_open(const char *name, int *ifindex)
{
	struct ifreq ifr = {0};
	int fd, err;

	if (strlen(name) >= IFNAMSIZ || !*name)
		return -EINVAL;
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
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
