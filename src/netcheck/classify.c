// SPDX-License-Identifier: MIT
/* NAT behaviour decisions (see classify.h). */
#include "netcheck/classify.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static bool same_address(const union sockaddr_inet *a, const union sockaddr_inet *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr));
	return false;
}

enum nc_mapping nc_classify_mapping(const struct nc_observation *obs, size_t n)
{
	bool port_agreed = false, port_differs = false, addr_differs = false, two_addrs = false;

	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			bool same = endpoint_equal(&obs[i].mapped, &obs[j].mapped);

			if (endpoint_equal(&obs[i].dst, &obs[j].dst))
				continue; /* the same destination twice says nothing */
			if (same_address(&obs[i].dst, &obs[j].dst)) {
				port_agreed |= same;
				port_differs |= !same;
			} else {
				two_addrs = true;
				addr_differs |= !same;
			}
		}
	}
	if (port_differs)
		return NC_MAPPING_ADPM;
	if (addr_differs)
		return port_agreed ? NC_MAPPING_ADM : NC_MAPPING_VARIES;
	return two_addrs ? NC_MAPPING_EIM : NC_MAPPING_UNKNOWN;
}

enum nc_filtering nc_classify_filtering(bool changed_both, bool changed_port)
{
	if (changed_both)
		return NC_FILTERING_EIF;
	return changed_port ? NC_FILTERING_ADF : NC_FILTERING_ADPF;
}

enum nc_allocation nc_classify_allocation(const unsigned *local, const unsigned *external, size_t n)
{
	size_t preserved = 0, small_steps = 0;

	if (n < 2)
		return NC_ALLOCATION_UNKNOWN;
	for (size_t i = 0; i < n; i++)
		preserved += external[i] == local[i];
	if (preserved == n)
		return NC_ALLOCATION_PRESERVING;
	/* Allow one step out of range: the allocator may wrap around its range,
	 * or another flow may have taken a port in between. */
	for (size_t i = 0; i + 1 < n; i++) {
		long d = (long)external[i + 1] - (long)external[i];
		small_steps += d >= 1 && d <= NC_SEQ_MAX_STEP;
	}
	return small_steps + 2 >= n ? NC_ALLOCATION_SEQUENTIAL : NC_ALLOCATION_RANDOM;
}

#define WINDOW_ADDRS 4

struct window_obs {
	uint32_t addr; /* host order */
	unsigned lo, hi, count;
	long start;
};

static size_t window_group(const struct nc_observation *obs, size_t n, struct window_obs *g)
{
	size_t ng = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t a;
		unsigned port;
		size_t k;

		if (obs[i].dst.sa.sa_family != AF_INET || obs[i].mapped.sa.sa_family != AF_INET)
			continue;
		a = ntohl(obs[i].dst.in.sin_addr.s_addr);
		port = ntohs(obs[i].mapped.in.sin_port);
		for (k = 0; k < ng && g[k].addr != a; k++)
			;
		if (k == ng) {
			if (ng == WINDOW_ADDRS)
				continue;
			g[ng++] = (struct window_obs){.addr = a, .lo = port, .hi = port};
		}
		g[k].lo = port < g[k].lo ? port : g[k].lo;
		g[k].hi = port > g[k].hi ? port : g[k].hi;
		g[k].count++;
	}
	return ng;
}

static const unsigned window_widths[] = {8,   10,  16,	20,  25,  32,  50, 64,
					 100, 128, 200, 250, 256, 500, 512};

/* The smallest round width holding every group in one aligned block. */
static unsigned aligned_width(const struct window_obs *g, size_t ng, unsigned span)
{
	for (size_t w = 0; w < sizeof(window_widths) / sizeof(window_widths[0]); w++) {
		unsigned width = window_widths[w];
		size_t k;

		if (width < span || width > NAT_WINDOW_MAX)
			continue;
		for (k = 0; k < ng && g[k].lo / width == g[k].hi / width; k++)
			;
		if (k == ng)
			return width;
	}
	return 0;
}

/* k uniform samples span about (k - 1) / (k + 1) of their window. */
static unsigned centred_width(unsigned span, unsigned k)
{
	unsigned want = (span * (k + 1) + k - 2) / (k - 1);

	for (size_t w = 0; w < sizeof(window_widths) / sizeof(window_widths[0]); w++)
		if (window_widths[w] >= want && window_widths[w] <= NAT_WINDOW_MAX)
			return window_widths[w];
	return 0;
}

bool nc_classify_window(const struct nc_observation *obs, size_t n, struct nat_window *out)
{
	struct window_obs all[WINDOW_ADDRS], g[WINDOW_ADDRS];
	size_t ng_all = window_group(obs, n, all), ng = 0;
	unsigned span = 0, fewest = ~0u, width, centred;
	bool aligned;

	memset(out, 0, sizeof(*out));
	for (size_t k = 0; k < ng_all; k++) {
		if (all[k].count < NC_WINDOW_MIN_SAMPLES)
			continue;
		g[ng] = all[k];
		span = g[ng].hi - g[ng].lo + 1 > span ? g[ng].hi - g[ng].lo + 1 : span;
		fewest = g[ng].count < fewest ? g[ng].count : fewest;
		ng++;
	}
	if (ng < 2 || span > NAT_WINDOW_MAX)
		return false;
	/* An aligned width beyond what the ports span is a coincidence of
	 * wide blocks (250 holds two 100-port windows that straddle the
	 * hundreds), not the NAT's: then the centred estimate. */
	centred = centred_width(span, fewest);
	width = aligned_width(g, ng, span);
	aligned = width && (!centred || width <= centred);
	if (!aligned)
		width = centred;
	if (!width)
		return false;
	for (size_t k = 0; k < ng; k++) {
		g[k].start = aligned ? (long)(g[k].lo / width * width)
				     : (long)(g[k].lo + g[k].hi) / 2 - (long)width / 2;
		if (g[k].start < 1 || g[k].start + width - 1 > 65535)
			return false;
	}
	/* The window must move with the address: no two overlap. */
	for (size_t i = 0; i < ng; i++)
		for (size_t j = i + 1; j < ng; j++)
			if (labs(g[i].start - g[j].start) < (long)width)
				return false;
	/* The rule's two points: the best observed windows. */
	for (size_t i = 0; i < 2; i++) {
		size_t best = i;
		for (size_t k = i + 1; k < ng; k++)
			if (g[k].count > g[best].count)
				best = k;
		struct window_obs t = g[i];
		g[i] = g[best];
		g[best] = t;
		out->addr[i] = g[i].addr;
		out->start[i] = (uint16_t)g[i].start;
	}
	out->width = (uint16_t)width;
	out->aligned = aligned;
	return true;
}

enum nc_tristate nc_classify_hairpin(bool x_to_y_arrived, bool y_to_x_arrived)
{
	return x_to_y_arrived || y_to_x_arrived ? NC_YES : NC_NO;
}

static const char *const mapping_names[] = {"unknown", "eim", "adm", "adpm", "varies"};
static const char *const filtering_names[] = {"unknown", "eif", "adf", "adpf"};
static const char *const allocation_names[] = {"unknown", "preserving", "sequential", "random"};

#define NAME(table, v) ((unsigned)(v) < sizeof(table) / sizeof(table[0]) ? table[v] : "unknown")

const char *nc_mapping_name(enum nc_mapping m)
{
	return NAME(mapping_names, m);
}

const char *nc_filtering_name(enum nc_filtering f)
{
	return NAME(filtering_names, f);
}

const char *nc_allocation_name(enum nc_allocation a)
{
	return NAME(allocation_names, a);
}
