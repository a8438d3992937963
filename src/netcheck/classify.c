// SPDX-License-Identifier: MIT
/* NAT behaviour decisions (see classify.h). */
#include "netcheck/classify.h"

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
