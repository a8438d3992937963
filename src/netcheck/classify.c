// SPDX-License-Identifier: MIT
/* NAT behaviour decisions (see classify.h). */
#include "netcheck/classify.h"

#include <errno.h>
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

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -EINVAL;
}

#define PARSE(table, s, out)                                                                       \
	({                                                                                         \
		int i_ = name_index(table, sizeof(table) / sizeof(table[0]), s);                   \
		if (i_ >= 0)                                                                       \
			*(out) = i_;                                                               \
		i_ < 0 ? i_ : 0;                                                                   \
	})

int nc_mapping_parse(const char *s, enum nc_mapping *out)
{
	return PARSE(mapping_names, s, out);
}

int nc_filtering_parse(const char *s, enum nc_filtering *out)
{
	return PARSE(filtering_names, s, out);
}

int nc_allocation_parse(const char *s, enum nc_allocation *out)
{
	return PARSE(allocation_names, s, out);
}

static json_t *tristate_json(enum nc_tristate t)
{
	return t == NC_UNKNOWN ? json_null() : json_boolean(t == NC_YES);
}

json_t *nc_nat_to_json(const struct nc_nat *nat)
{
	json_t *pm = json_array();

	if (pm && nat->pcp)
		json_array_append_new(pm, json_string("pcp"));
	if (pm && nat->natpmp)
		json_array_append_new(pm, json_string("nat-pmp"));
	if (pm && nat->upnp)
		json_array_append_new(pm, json_string("upnp"));
	return json_pack("{s:o,s:s,s:s,s:s,s:o,s:o}", "udp", tristate_json(nat->udp), "mapping",
			 nc_mapping_name(nat->mapping), "filtering",
			 nc_filtering_name(nat->filtering), "allocation",
			 nc_allocation_name(nat->allocation), "hairpin",
			 tristate_json(nat->hairpin), "portmap", pm ? pm : json_array());
}

static int tristate_from_json(const json_t *v, enum nc_tristate *out)
{
	if (!v || json_is_null(v)) {
		*out = NC_UNKNOWN;
		return 0;
	}
	if (!json_is_boolean(v))
		return -EINVAL;
	*out = json_is_true(v) ? NC_YES : NC_NO;
	return 0;
}

/* A missing name is "unknown"; a present one must be a known string. */
static const char *name_field(const json_t *j, const char *field, bool *bad)
{
	const json_t *v = json_object_get(j, field);

	if (!v)
		return "unknown";
	if (!json_is_string(v))
		*bad = true;
	return json_string_value(v);
}

static int portmap_from_json(const json_t *arr, struct nc_nat *out)
{
	const json_t *v;
	size_t i;

	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > 8)
		return -EINVAL;
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s)
			return -EINVAL;
		if (!strcmp(s, "pcp"))
			out->pcp = true;
		else if (!strcmp(s, "nat-pmp"))
			out->natpmp = true;
		else if (!strcmp(s, "upnp"))
			out->upnp = true;
		/* A protocol this version does not know is no use to it. */
	}
	return 0;
}

int nc_nat_from_json(const json_t *j, struct nc_nat *out, const char **why)
{
	bool bad = false;
	const char *m, *f, *a;

	memset(out, 0, sizeof(*out));
	*why = "nat is not an object";
	if (!json_is_object(j))
		return -EINVAL;
	*why = "nat has a bad udp or hairpin (want true, false or null)";
	if (tristate_from_json(json_object_get(j, "udp"), &out->udp) < 0 ||
	    tristate_from_json(json_object_get(j, "hairpin"), &out->hairpin) < 0)
		return -EINVAL;
	m = name_field(j, "mapping", &bad);
	f = name_field(j, "filtering", &bad);
	a = name_field(j, "allocation", &bad);
	*why = "nat has a bad mapping, filtering or allocation";
	if (bad || nc_mapping_parse(m, &out->mapping) < 0 ||
	    nc_filtering_parse(f, &out->filtering) < 0 ||
	    nc_allocation_parse(a, &out->allocation) < 0)
		return -EINVAL;
	*why = "nat has a bad portmap (want an array of protocol names)";
	if (portmap_from_json(json_object_get(j, "portmap"), out) < 0)
		return -EINVAL;
	*why = NULL;
	return 0;
}

bool nc_nat_equal(const struct nc_nat *a, const struct nc_nat *b)
{
	return a->udp == b->udp && a->mapping == b->mapping && a->filtering == b->filtering &&
	       a->allocation == b->allocation && a->hairpin == b->hairpin && a->pcp == b->pcp &&
	       a->natpmp == b->natpmp && a->upnp == b->upnp;
}
