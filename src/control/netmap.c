// SPDX-License-Identifier: MIT
#include "control/netmap.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/encoding.h"

int json_get_key(const json_t *obj, const char *field, uint8_t key[32])
{
	const char *s = json_string_value(json_object_get(obj, field));

	return s && key_from_base64(key, s) == 0 ? 0 : -EINVAL;
}

int json_put_key(json_t *obj, const char *field, const uint8_t key[32])
{
	char b64[KEY_BASE64_LEN + 1];

	key_to_base64(b64, key);
	return json_object_set_new(obj, field, json_string(b64)) ? -ENOMEM : 0;
}

int json_get_endpoints(const json_t *arr, union sockaddr_inet *out, unsigned max, unsigned *n)
{
	size_t i;
	json_t *v;

	*n = 0;
	if (!json_is_array(arr) || json_array_size(arr) > max)
		return -EINVAL;
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		if (!s || endpoint_parse(s, false, &out[*n]) < 0)
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

json_t *json_endpoints(const union sockaddr_inet *eps, unsigned n)
{
	json_t *arr = json_array();
	char text[INET6_ADDRSTRLEN + 8];

	for (unsigned i = 0; arr && i < n; i++) {
		endpoint_format(&eps[i], text, sizeof(text));
		json_array_append_new(arr, json_string(text));
	}
	return arr;
}

/* The window, when the NAT has one: {"width", "aligned", "points": [{"address",
 * "start"}, {"address", "start"}]}. */
static json_t *window_to_json(const struct nat_window *w)
{
	json_t *points = json_array();

	for (int i = 0; points && i < 2; i++) {
		char a[INET_ADDRSTRLEN];
		struct in_addr in = {.s_addr = htonl(w->addr[i])};

		inet_ntop(AF_INET, &in, a, sizeof(a));
		json_array_append_new(points,
				      json_pack("{s:s,s:i}", "address", a, "start", w->start[i]));
	}
	return json_pack("{s:i,s:b,s:o}", "width", w->width, "aligned", w->aligned, "points",
			 points ? points : json_array());
}

json_t *netmap_nat_to_json(const struct nat_class *c)
{
	json_t *j =
		json_pack("{s:b,s:b,s:b,s:s,s:s}", "udp", c->udp, "public", c->public_address,
			  "port_mapped", c->port_mapped, "mapping", nat_mapping_name(c->mapping),
			  "filtering", nat_filtering_name(c->filtering));

	if (j && c->window.width)
		json_object_set_new(j, "window", window_to_json(&c->window));
	return j;
}

/* Absent: no window (what nodes before windows send). */
static int window_from_json(const json_t *j, struct nat_window *out)
{
	const json_t *width = json_object_get(j, "width"), *points = json_object_get(j, "points");

	memset(out, 0, sizeof(*out));
	if (!j)
		return 0;
	if (!json_is_object(j) || !json_is_integer(width) || json_integer_value(width) < 1 ||
	    json_integer_value(width) > NAT_WINDOW_MAX ||
	    !json_is_boolean(json_object_get(j, "aligned")) || !json_is_array(points) ||
	    json_array_size(points) != 2)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		const json_t *p = json_array_get(points, (size_t)i);
		const char *a = json_string_value(json_object_get(p, "address"));
		const json_t *start = json_object_get(p, "start");
		struct in_addr in;

		if (!a || inet_pton(AF_INET, a, &in) != 1 || !json_is_integer(start) ||
		    json_integer_value(start) < 1 ||
		    json_integer_value(start) + json_integer_value(width) - 1 > 65535)
			return -EINVAL;
		out->addr[i] = ntohl(in.s_addr);
		out->start[i] = (uint16_t)json_integer_value(start);
	}
	if (out->addr[0] == out->addr[1])
		return -EINVAL; /* no line through one point */
	out->width = (uint16_t)json_integer_value(width);
	out->aligned = json_is_true(json_object_get(j, "aligned"));
	return 0;
}

int netmap_nat_from_json(const json_t *j, struct nat_class *out)
{
	const char *m = json_string_value(json_object_get(j, "mapping"));
	const char *f = json_string_value(json_object_get(j, "filtering"));
	int mi = -1, fi = -1;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j) || !m || !f || !json_is_boolean(json_object_get(j, "udp")))
		return -EINVAL;
	for (int i = NAT_MAP_UNKNOWN; i <= NAT_MAP_ADPM; i++)
		if (!strcmp(m, nat_mapping_name(i)))
			mi = i;
	for (int i = NAT_FILTER_UNKNOWN; i <= NAT_FILTER_ADPF; i++)
		if (!strcmp(f, nat_filtering_name(i)))
			fi = i;
	if (mi < 0 || fi < 0 || window_from_json(json_object_get(j, "window"), &out->window) < 0) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->udp = json_is_true(json_object_get(j, "udp"));
	out->public_address = json_is_true(json_object_get(j, "public"));
	out->port_mapped = json_is_true(json_object_get(j, "port_mapped"));
	out->mapping = mi;
	out->filtering = fi;
	return 0;
}

json_t *netmap_peer_to_json(const struct netmap_peer *p)
{
	char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
	json_t *j;

	inet_ntop(AF_INET, &p->ipv4, v4, sizeof(v4));
	inet_ntop(AF_INET6, &p->ipv6, v6, sizeof(v6));
	j = json_pack("{s:I,s:s,s:s,s:s,s:o,s:i,s:b}", "id", (json_int_t)p->id, "name", p->name,
		      "ipv4", v4, "ipv6", v6, "endpoints",
		      json_endpoints(p->endpoints, p->n_endpoints), "home_relay", p->home_relay,
		      "online", p->online);
	if (j && (json_put_key(j, "node_key", p->node_key) ||
		  json_put_key(j, "disco_key", p->disco_key))) {
		json_decref(j);
		j = NULL;
	}
	if (j && p->has_nat)
		json_object_set_new(j, "nat", netmap_nat_to_json(&p->nat));
	return j;
}

static int get_string(const json_t *j, const char *field, char *out, size_t size)
{
	const char *s = json_string_value(json_object_get(j, field));

	if (!s || strlen(s) >= size)
		return -EINVAL;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int get_int(const json_t *j, const char *field, json_int_t lo, json_int_t hi,
		   json_int_t *out)
{
	const json_t *v = json_object_get(j, field);

	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return -EINVAL;
	*out = json_integer_value(v);
	return 0;
}

int netmap_peer_from_json(const json_t *j, struct netmap_peer *out, const char **why)
{
	char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
	json_int_t id, relay;

	memset(out, 0, sizeof(*out));
	*why = "peer is not an object";
	if (!json_is_object(j))
		return -EINVAL;
	*why = "peer has a bad id, name or home_relay";
	if (get_int(j, "id", 1, INT64_MAX, &id) || get_string(j, "name", out->name, sizeof(out->name)) ||
	    get_int(j, "home_relay", 0, 65535, &relay))
		return -EINVAL;
	*why = "peer has a bad node or disco key";
	if (json_get_key(j, "node_key", out->node_key) || json_get_key(j, "disco_key", out->disco_key))
		return -EINVAL;
	*why = "peer has a bad address";
	if (get_string(j, "ipv4", v4, sizeof(v4)) || get_string(j, "ipv6", v6, sizeof(v6)) ||
	    inet_pton(AF_INET, v4, &out->ipv4) != 1 || inet_pton(AF_INET6, v6, &out->ipv6) != 1)
		return -EINVAL;
	*why = "peer has bad endpoints";
	if (json_get_endpoints(json_object_get(j, "endpoints"), out->endpoints,
			       NETMAP_MAX_ENDPOINTS, &out->n_endpoints))
		return -EINVAL;
	*why = "peer has a bad online flag";
	if (!json_is_boolean(json_object_get(j, "online")))
		return -EINVAL;
	out->online = json_is_true(json_object_get(j, "online"));
	*why = "peer has a bad nat class";
	if (json_object_get(j, "nat")) {
		if (netmap_nat_from_json(json_object_get(j, "nat"), &out->nat) < 0)
			return -EINVAL;
		out->has_nat = true;
	}
	out->id = id;
	out->home_relay = (int)relay;
	*why = NULL;
	return 0;
}

json_t *netmap_relay_to_json(const struct netmap_relay *r)
{
	json_t *j = json_pack("{s:i,s:s,s:s,s:i,s:i}", "id", r->id, "region", r->region, "host",
			      r->host, "port", r->port, "stun_port", r->stun_port);

	if (j && r->stun_alt[0] && json_object_set_new(j, "stun_alt", json_string(r->stun_alt))) {
		json_decref(j);
		return NULL;
	}
	if (j && json_put_key(j, "key", r->key)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

int netmap_host_port_valid(const char *s)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	char *end;
	unsigned long port;

	if (!colon || colon == s || strlen(s) >= NETMAP_HOST_LEN + 8)
		return -EINVAL;
	for (const char *c = s; c < colon; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-:_[]", *c))
			return -EINVAL;
	port = strtoul(colon + 1, &end, 10);
	return *end || colon[1] < '0' || colon[1] > '9' || port < 1 || port > 65535 ? -EINVAL : 0;
}

int netmap_relay_from_json(const json_t *j, struct netmap_relay *out, const char **why)
{
	json_int_t id, port, stun_port;

	memset(out, 0, sizeof(*out));
	*why = "relay is not an object with id, region, host, port, stun_port and key";
	if (!json_is_object(j) || get_int(j, "id", 1, 65535, &id) ||
	    get_string(j, "region", out->region, sizeof(out->region)) ||
	    get_string(j, "host", out->host, sizeof(out->host)) || !out->host[0] ||
	    get_int(j, "port", 1, 65535, &port) || get_int(j, "stun_port", 1, 65535, &stun_port) ||
	    json_get_key(j, "key", out->key))
		return -EINVAL;
	*why = "relay has a bad stun_alt (want \"host:port\")";
	if (json_object_get(j, "stun_alt") &&
	    (get_string(j, "stun_alt", out->stun_alt, sizeof(out->stun_alt)) ||
	     netmap_host_port_valid(out->stun_alt) < 0))
		return -EINVAL;
	out->id = (int)id;
	out->port = (uint16_t)port;
	out->stun_port = (uint16_t)stun_port;
	*why = NULL;
	return 0;
}
