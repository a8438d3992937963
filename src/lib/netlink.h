/* SPDX-License-Identifier: MIT */
/* Interface configuration over rtnetlink (libmnl): what `ip` would do. */
#ifndef KNIT_LIB_NETLINK_H
#define KNIT_LIB_NETLINK_H

#include <stdbool.h>

#include "lib/addr.h"

/* Sets the MTU (when mtu > 0) and the administrative state. */
int netlink_link_set(int ifindex, int mtu, bool up);
/* Adds an address (prefix keeps its host bits); -EEXIST is success. */
int netlink_addr_add(int ifindex, const struct ip_prefix *p);
/* Adds a route to the (masked) prefix through the interface. */
/* Removes an address; one that is not there is not an error. */
int netlink_addr_del(int ifindex, const struct ip_prefix *p);
int netlink_route_add(int ifindex, const struct ip_prefix *p);
/* Deletes the link (for interfaces that outlive their fd). */
int netlink_link_del(int ifindex);

#endif
