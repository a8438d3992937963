// SPDX-License-Identifier: MIT
/* The default gateway from /proc/net/route, and our address towards it. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "portmap/gateway.h"
#include "portmap/pcp.h"

#define RTF_UP_FLAG	 0x0001
#define RTF_GATEWAY_FLAG 0x0002

/* One line: "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t..." */
static bool parse_line(const char *line, uint32_t *gw, unsigned long *metric)
{
	char iface[32];
	unsigned int dst, gateway, flags, refcnt, use, mask;
	unsigned long m;

	if (sscanf(line, "%31s %x %x %x %u %u %lu %x", iface, &dst, &gateway, &flags, &refcnt, &use,
		   &m, &mask) != 8)
		return false;
	if (dst != 0 || mask != 0 ||
	    (flags & (RTF_UP_FLAG | RTF_GATEWAY_FLAG)) != (RTF_UP_FLAG | RTF_GATEWAY_FLAG))
		return false;
	if (gateway == 0)
		return false;
	/* The kernel prints the address's bytes as one host-order word:
	 * reading it back the same way restores network order in memory. */
	*gw = gateway;
	*metric = m;
	return true;
}

int gateway_parse_routes(const char *text, size_t len, struct in_addr *out)
{
	unsigned long best_metric = ULONG_MAX;
	bool found = false;
	size_t pos = 0;
	bool header = true;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char line[256];
		unsigned long metric;
		uint32_t gw;

		if (!header && n < sizeof(line)) {
			memcpy(line, text + pos, n);
			line[n] = '\0';
			if (parse_line(line, &gw, &metric) && (!found || metric < best_metric)) {
				out->s_addr = gw;
				best_metric = metric;
				found = true;
			}
		}
		header = false;
		pos += n + 1;
	}
	return found ? 0 : -ENOENT;
}

int gateway_default_v4(struct in_addr *gw)
{
	struct buf b;
	int ret;

	buf_init(&b, PORTMAP_ROUTE_MAX);
	ret = buf_read_file(&b, "/proc/net/route", PORTMAP_ROUTE_MAX);
	if (ret == 0)
		ret = gateway_parse_routes((const char *)b.data, b.len, gw);
	buf_free(&b);
	return ret;
}

int gateway_local_addr(struct in_addr gw, struct in_addr *local)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(PCP_SERVER_PORT), .sin_addr = gw};
	socklen_t sl = sizeof(sin);
	int fd, ret = 0;

	/* connect() on UDP only picks a route and source: nothing is sent. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
		ret = -errno;
	else
		*local = sin.sin_addr;
	close(fd);
	return ret;
}
