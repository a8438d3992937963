/* SPDX-License-Identifier: MIT */
/* IP addresses, prefixes and UDP endpoints: parsing and printing. */
#ifndef KNIT_LIB_ADDR_H
#define KNIT_LIB_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

union sockaddr_inet {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct ip_prefix {
	int family; /* AF_INET or AF_INET6 */
	uint8_t bits;
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t bytes[16];
	} addr;
};

#define PREFIX_STRLEN	(INET6_ADDRSTRLEN + 4)
#define ENDPOINT_STRLEN (INET6_ADDRSTRLEN + 16)

/*
 * "10.0.0.1/24", "fd00::/64", or a bare address (a host prefix).  Host bits
 * are kept (an interface address needs them); prefix_mask() clears them.
 * Returns 0 or -EINVAL.
 */
int prefix_parse(const char *s, struct ip_prefix *out);
void prefix_mask(struct ip_prefix *p);
int prefix_format(const struct ip_prefix *p, char *buf, size_t len);
bool prefix_contains(const struct ip_prefix *p, int family, const void *addr);

/*
 * "192.0.2.1:51820" or "[2001:db8::1]:51820" (numeric only), or, when
 * allow_dns is true, "host.name:51820" resolved with getaddrinfo.
 * Returns 0, -EINVAL for bad syntax, -ENOENT when a name does not resolve.
 */
int endpoint_parse(const char *s, bool allow_dns, union sockaddr_inet *out);
/* "1.2.3.4:5" or "[::1]:5"; an IPv4-mapped IPv6 address prints as IPv4. */
int endpoint_format(const union sockaddr_inet *ep, char *buf, size_t len);
bool endpoint_equal(const union sockaddr_inet *a, const union sockaddr_inet *b);
socklen_t endpoint_len(const union sockaddr_inet *ep);
/* IPv4 becomes ::ffff:a.b.c.d (for a dual-stack socket); IPv6 stays. */
void endpoint_to_v6(const union sockaddr_inet *in, union sockaddr_inet *out);
/* ::ffff:a.b.c.d becomes IPv4; everything else stays. */
void endpoint_unmap(const union sockaddr_inet *in, union sockaddr_inet *out);

/*
 * A relay path is an endpoint too: family AF_KNIT_RELAY, the relay's id in
 * sin_port (host order).  It never reaches a socket call; the device hands
 * such packets to the relay client instead.  Formats as "relay:ID".
 */
#define AF_KNIT_RELAY 0xf1
void endpoint_set_relay(union sockaddr_inet *ep, uint16_t relay_id);
static inline bool endpoint_is_relay(const union sockaddr_inet *ep)
{
	return ep->sa.sa_family == AF_KNIT_RELAY;
}
static inline uint16_t endpoint_relay_id(const union sockaddr_inet *ep)
{
	return ep->in.sin_port;
}

/*
 * A path through one of the device's side sockets (a UDP socket of its own,
 * with its own NAT mapping: the one a birthday search won): family
 * AF_KNIT_SIDE, the peer's IPv4 address and port where sockaddr_in has
 * them, the socket's slot in sin6_scope_id (past sockaddr_in's end).  The
 * device sends such packets on that socket to endpoint_side_dest().
 * Formats as the address.
 */
#define AF_KNIT_SIDE 0xf2
/* to: IPv4 or IPv4-mapped. */
void endpoint_set_side(union sockaddr_inet *ep, const union sockaddr_inet *to, unsigned slot);
static inline bool endpoint_is_side(const union sockaddr_inet *ep)
{
	return ep->sa.sa_family == AF_KNIT_SIDE;
}
static inline unsigned endpoint_side_slot(const union sockaddr_inet *ep)
{
	return ep->in6.sin6_scope_id;
}
/* The IPv4 address a side endpoint sends to. */
void endpoint_side_dest(const union sockaddr_inet *ep, union sockaddr_inet *out);

#endif
