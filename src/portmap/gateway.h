/* SPDX-License-Identifier: MIT */
/*
 * The one host port mapping may talk to: the IPv4 default route's gateway
 * of the network namespace the process runs in, from /proc/net/route.
 */
#ifndef KNIT_PORTMAP_GATEWAY_H
#define KNIT_PORTMAP_GATEWAY_H

#include <netinet/in.h>
#include <stddef.h>

#define PORTMAP_ROUTE_MAX (256 * 1024) /* bytes of /proc/net/route read */

/*
 * The gateway of the default route (destination and mask 0, flags UP and
 * GATEWAY) with the lowest metric, from /proc/net/route's text.  Lines that
 * do not parse are skipped.  Returns 0 or -ENOENT when there is none.
 */
int gateway_parse_routes(const char *text, size_t len, struct in_addr *gw);
/* The same, read from /proc/net/route.  0, -ENOENT or -errno. */
int gateway_default_v4(struct in_addr *gw);
/* The address this host sends to gw:port from (a connected UDP socket). */
int gateway_local_addr(struct in_addr gw, struct in_addr *local);

#endif
