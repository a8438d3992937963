/* SPDX-License-Identifier: MIT */
/*
 * What control tells nodes: the entries of the network map (one per visible
 * peer, plus the node's own) and of the relay map, and their JSON form.
 * Control builds them from its store; knitd parses them from an untrusted
 * stream, so every field is checked, bounded, and an entry that fails any
 * check is refused whole with a reason.
 *
 * Messages from control to a node (all {"type": ...}):
 *   login-result  {ok, error?, pending?, approve?, self?}
 *   map           {full?, done?, self?, peers?: [peer], removed?: [node key],
 *                  relays?: [relay]}   full: replaces; a full map may come in
 *                  several messages, the last with done: true
 *   expired, removed   then the session closes
 * From a node: login {hostname, auth_key?, disco_key, endpoints, home_relay},
 *   update {endpoints?, home_relay?, disco_key?}, ping.
 * From a relay: relay-hello.  To a relay: relay-nodes {full?, keys?, add?,
 *   remove?} (base64 node keys).
 */
#ifndef KNIT_CONTROL_NETMAP_H
#define KNIT_CONTROL_NETMAP_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "traversal/plan.h"

#define NETMAP_MAX_ENDPOINTS 16
#define NETMAP_NAME_LEN	     64
#define NETMAP_HOST_LEN	     256
#define NETMAP_CHUNK_PEERS   1000 /* peers per message of a full map */

struct netmap_peer {
	int64_t id;
	char name[NETMAP_NAME_LEN];
	uint8_t node_key[32];
	uint8_t disco_key[32];
	struct in_addr ipv4;
	struct in6_addr ipv6;
	union sockaddr_inet endpoints[NETMAP_MAX_ENDPOINTS];
	unsigned n_endpoints;
	int home_relay; /* 0: none */
	bool online;
	bool has_nat;	      /* the node has run netcheck */
	struct nat_class nat; /* its NAT, as its netcheck saw it */
};

struct netmap_relay {
	int id; /* 1..65535 */
	char region[NETMAP_NAME_LEN];
	char host[NETMAP_HOST_LEN];
	uint16_t port;
	uint16_t stun_port;
	/* "host:port": a second address and port of the relay's STUN server
	 * (RFC 5780 CHANGE-REQUEST, see knit-relay --stun-alt); "" when none. */
	char stun_alt[NETMAP_HOST_LEN + 8];
	uint8_t key[32];
};

json_t *netmap_peer_to_json(const struct netmap_peer *p);
json_t *netmap_relay_to_json(const struct netmap_relay *r);
/* Return 0, or -EINVAL with why set to a static reason. */
int netmap_peer_from_json(const json_t *j, struct netmap_peer *out, const char **why);
int netmap_relay_from_json(const json_t *j, struct netmap_relay *out, const char **why);

/* A NAT class as {"udp", "public", "port_mapped", "mapping", "filtering"}. */
json_t *netmap_nat_to_json(const struct nat_class *c);
int netmap_nat_from_json(const json_t *j, struct nat_class *out);

/* "host:port" (host: letters, digits and .-:_[]; port 1..65535): 0 or
 * -EINVAL.  What a relay's stun_alt must look like. */
int netmap_host_port_valid(const char *s);

/* Small JSON helpers for untrusted objects: -EINVAL when missing or wrong. */
int json_get_key(const json_t *obj, const char *field, uint8_t key[32]);
int json_put_key(json_t *obj, const char *field, const uint8_t key[32]);
/* Endpoints: an array of at most max "ip:port" strings. */
int json_get_endpoints(const json_t *arr, union sockaddr_inet *out, unsigned max, unsigned *n);
json_t *json_endpoints(const union sockaddr_inet *eps, unsigned n);
#endif
