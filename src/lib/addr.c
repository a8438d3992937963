// SPDX-License-Identifier: MIT
/* Addresses, prefixes and endpoints (see addr.h). */
#include "lib/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

/* A decimal number 0..max, the whole string. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int prefix_parse(const char *s, struct ip_prefix *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long bits;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, &out->addr.v4) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &out->addr.v6) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	bits = out->family == AF_INET ? 32 : 128;
	if (slash && parse_uint(slash + 1, bits, &bits) < 0)
		return -EINVAL;
	out->bits = (uint8_t)bits;
	return 0;
}

void prefix_mask(struct ip_prefix *p)
{
	unsigned total = family_bits(p->family) / 8;

	for (unsigned i = 0; i < total; i++) {
		unsigned keep = p->bits > i * 8 ? p->bits - i * 8 : 0;
		if (keep < 8)
			p->addr.bytes[i] &= (uint8_t)(0xff00 >> keep);
	}
}

int prefix_format(const struct ip_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->family, p->addr.bytes, addr, sizeof(addr)))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, "%s/%u", addr, p->bits) >= len)
		return -ENOSPC;
	return 0;
}

bool prefix_contains(const struct ip_prefix *p, int family, const void *addr)
{
	const uint8_t *a = addr;
	unsigned full = p->bits / 8, rest = p->bits % 8;

	/* A prefix not made by prefix_parse() must not make us read past addr. */
	if (family != p->family || p->bits > family_bits(family))
		return false;
	if (memcmp(a, p->addr.bytes, full))
		return false;
	return !rest || !((a[full] ^ p->addr.bytes[full]) & (uint8_t)(0xff00 >> rest));
}

/* A label inet_aton() reads as a number: decimal, octal or 0x-hex. */
static bool numeric_label(const char *s, size_t len)
{
	size_t i;
	bool hex = len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

	for (i = hex ? 2 : 0; i < len; i++) {
		char c = s[i];
		bool digit = c >= '0' && c <= '9';
		if (!digit && !(hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))))
			return false;
	}
	return len > 0;
}

/*
 * getaddrinfo() is lenient: inet_aton() takes "1.2.3", "0x7f.1" or trailing
 * blanks.  Only host names made of letters, digits, '-', '.' and '_', with at
 * least one label that is not a number, reach it.
 */
static bool valid_hostname(const char *host)
{
	const char *label = host;
	bool all_numeric = true;

	for (const char *c = host;; c++) {
		if (*c == '.' || *c == '\0') {
			all_numeric &= numeric_label(label, (size_t)(c - label));
			if (!*c)
				break;
			label = c + 1;
			continue;
		}
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
			return false;
	}
	return *host && !all_numeric;
}

static int resolve(const char *host, uint16_t port, union sockaddr_inet *out)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
	struct addrinfo *res;

	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen <= sizeof(*out) ? res->ai_addrlen : sizeof(*out));
	freeaddrinfo(res);
	if (out->sa.sa_family == AF_INET)
		out->in.sin_port = htons(port);
	else if (out->sa.sa_family == AF_INET6)
		out->in6.sin6_port = htons(port);
	else
		return -ENOENT;
	return 0;
}

int endpoint_parse(const char *s, bool allow_dns, union sockaddr_inet *out)
{
	char host[256];
	const char *colon, *hstart = s;
	size_t hlen;
	unsigned long port;

	memset(out, 0, sizeof(*out));
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hstart = s + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	if (hlen == 0 || hlen >= sizeof(host) || parse_uint(colon + 1, 65535, &port) < 0)
		return -EINVAL;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	if (*s == '[') {
		char *pct = strchr(host, '%');
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons((uint16_t)port);
		if (pct) {
			*pct = '\0';
			out->in6.sin6_scope_id = if_nametoindex(pct + 1);
			if (!out->in6.sin6_scope_id) {
				unsigned long id;
				if (parse_uint(pct + 1, UINT32_MAX, &id) < 0)
					return -EINVAL;
				out->in6.sin6_scope_id = (uint32_t)id;
			}
		}
		return inet_pton(AF_INET6, host, &out->in6.sin6_addr) == 1 ? 0 : -EINVAL;
	}
	if (inet_pton(AF_INET, host, &out->in.sin_addr) == 1) {
		out->in.sin_family = AF_INET;
		out->in.sin_port = htons((uint16_t)port);
		return 0;
	}
	if (!allow_dns || !valid_hostname(host))
		return -EINVAL;
	return resolve(host, (uint16_t)port, out);
}

void endpoint_unmap(const union sockaddr_inet *in, union sockaddr_inet *out)
{
	if (in->sa.sa_family == AF_INET6 &&
	    !memcmp(in->in6.sin6_addr.s6_addr, v4_mapped_prefix, sizeof(v4_mapped_prefix))) {
		union sockaddr_inet v4 = {0};
		v4.in.sin_family = AF_INET;
		v4.in.sin_port = in->in6.sin6_port;
		memcpy(&v4.in.sin_addr, in->in6.sin6_addr.s6_addr + 12, 4);
		*out = v4;
		return;
	}
	if (out != in)
		*out = *in;
}

void endpoint_to_v6(const union sockaddr_inet *in, union sockaddr_inet *out)
{
	if (in->sa.sa_family == AF_INET) {
		union sockaddr_inet v6 = {0};
		v6.in6.sin6_family = AF_INET6;
		v6.in6.sin6_port = in->in.sin_port;
		memcpy(v6.in6.sin6_addr.s6_addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(v6.in6.sin6_addr.s6_addr + 12, &in->in.sin_addr, 4);
		*out = v6;
		return;
	}
	if (out != in)
		*out = *in;
}

int endpoint_format(const union sockaddr_inet *ep, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	union sockaddr_inet u;
	int n;

	endpoint_unmap(ep, &u);
	if (u.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &u.in.sin_addr, addr, sizeof(addr));
		n = snprintf(buf, len, "%s:%u", addr, ntohs(u.in.sin_port));
	} else if (u.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &u.in6.sin6_addr, addr, sizeof(addr));
		if (u.in6.sin6_scope_id)
			n = snprintf(buf, len, "[%s%%%u]:%u", addr, u.in6.sin6_scope_id,
				     ntohs(u.in6.sin6_port));
		else
			n = snprintf(buf, len, "[%s]:%u", addr, ntohs(u.in6.sin6_port));
	} else if (u.sa.sa_family == AF_KNIT_RELAY) {
		n = snprintf(buf, len, "relay:%u", endpoint_relay_id(&u));
	} else if (u.sa.sa_family == AF_KNIT_SIDE) {
		inet_ntop(AF_INET, &u.in.sin_addr, addr, sizeof(addr));
		n = snprintf(buf, len, "%s:%u", addr, ntohs(u.in.sin_port));
	} else {
		n = snprintf(buf, len, "(none)");
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

bool endpoint_equal(const union sockaddr_inet *a, const union sockaddr_inet *b)
{
	union sockaddr_inet x, y;

	endpoint_unmap(a, &x);
	endpoint_unmap(b, &y);
	if (x.sa.sa_family != y.sa.sa_family)
		return false;
	if (x.sa.sa_family == AF_INET)
		return x.in.sin_port == y.in.sin_port &&
		       x.in.sin_addr.s_addr == y.in.sin_addr.s_addr;
	if (x.sa.sa_family == AF_INET6)
		return x.in6.sin6_port == y.in6.sin6_port &&
		       x.in6.sin6_scope_id == y.in6.sin6_scope_id &&
		       !memcmp(&x.in6.sin6_addr, &y.in6.sin6_addr, sizeof(x.in6.sin6_addr));
	if (x.sa.sa_family == AF_KNIT_RELAY)
		return endpoint_relay_id(&x) == endpoint_relay_id(&y);
	if (x.sa.sa_family == AF_KNIT_SIDE)
		return x.in.sin_port == y.in.sin_port &&
		       x.in.sin_addr.s_addr == y.in.sin_addr.s_addr &&
		       endpoint_side_slot(&x) == endpoint_side_slot(&y);
	return x.sa.sa_family == 0;
}

void endpoint_set_relay(union sockaddr_inet *ep, uint16_t relay_id)
{
	memset(ep, 0, sizeof(*ep));
	ep->sa.sa_family = AF_KNIT_RELAY;
	ep->in.sin_port = relay_id;
}

void endpoint_set_side(union sockaddr_inet *ep, const union sockaddr_inet *to, unsigned slot)
{
	union sockaddr_inet v4;

	endpoint_unmap(to, &v4);
	memset(ep, 0, sizeof(*ep));
	ep->sa.sa_family = AF_KNIT_SIDE;
	ep->in.sin_port = v4.in.sin_port;
	ep->in.sin_addr = v4.in.sin_addr;
	ep->in6.sin6_scope_id = slot;
}

void endpoint_side_dest(const union sockaddr_inet *ep, union sockaddr_inet *out)
{
	union sockaddr_inet v4 = {0};

	v4.in.sin_family = AF_INET;
	v4.in.sin_port = ep->in.sin_port;
	v4.in.sin_addr = ep->in.sin_addr;
	*out = v4;
}

socklen_t endpoint_len(const union sockaddr_inet *ep)
{
	return ep->sa.sa_family == AF_INET ? sizeof(ep->in) : sizeof(ep->in6);
}
