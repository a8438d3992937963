/* SPDX-License-Identifier: MIT */
/*
 * ctfilter's pure part: which conntrack flows count, and the nftables
 * element a flow makes.  Free of netlink so the unit tests drive it.
 *
 * A flow leaving through the NAT, as conntrack sees it after the NAT chose
 * the mapping:
 *   original  saddr:sport -> daddr:dport          (inside host -> remote)
 *   reply     daddr:dport -> mapped-addr:mapped-port
 */
#ifndef KNIT_LAB_CTFILTER_SPEC_H
#define KNIT_LAB_CTFILTER_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

enum ct_field {
	CT_SADDR,
	CT_SPORT,
	CT_DADDR,
	CT_DPORT,
	CT_MAPPED_ADDR,
	CT_MAPPED_PORT,
	CT_FIELD_COUNT,
};

#define CT_MAX_FIELDS  CT_FIELD_COUNT
#define CT_MAX_SRC     16
#define CT_NAME_MAX    64
#define CT_ELEM_MAX    256 /* longest element text: 6 IPv6 fields fit */
#define CT_MAX_TIMEOUT 86400u

struct ct_fields {
	enum ct_field f[CT_MAX_FIELDS];
	size_t n;
};

struct ct_flow {
	uint32_t id; /* conntrack's id of the flow */
	int family;  /* AF_INET or AF_INET6 */
	uint8_t proto;
	uint8_t saddr[16], daddr[16], maddr[16];
	uint16_t sport, dport, mport; /* host order */
	uint32_t mark;
	bool has_mark;
	bool snat; /* conntrack's IPS_SRC_NAT */
};

struct ct_spec {
	char family[8]; /* nft family of the table: ip, ip6, inet, ... */
	char table[CT_NAME_MAX + 1];
	char set[CT_NAME_MAX + 1];
	struct ct_fields key, value; /* value.n == 0: a set, not a map */
	uint8_t proto;		     /* IPPROTO_UDP (default) or IPPROTO_TCP */
	int ip_family;		     /* AF_INET (default) or AF_INET6 */
	struct ip_prefix src[CT_MAX_SRC];
	size_t n_src;
	bool match_mark;
	uint32_t mark, mark_mask;
	bool snat_only;
	uint32_t delay_ms;
	uint32_t timeout_s; /* 0: no element timeout */
};

/* Defaults: UDP, IPv4, no filter, no delay, no timeout. */
void ct_spec_init(struct ct_spec *s);
/* "inet:lab:adf" into family, table and set.  0 or -EINVAL. */
int ct_spec_parse_set(struct ct_spec *s, const char *arg);
/* "daddr.mapped-port": field names joined by dots, each at most once. */
int ct_fields_parse(const char *arg, struct ct_fields *out);
/* "0x10", "16" or "0x10/0xff".  0 or -EINVAL. */
int ct_spec_parse_mark(struct ct_spec *s, const char *arg);
/* Adds one --src prefix; -ENOSPC past CT_MAX_SRC, -EINVAL if malformed. */
int ct_spec_add_src(struct ct_spec *s, const char *arg);
/* Checks the whole spec once every option is in; *why names the problem. */
int ct_spec_check(const struct ct_spec *s, const char **why);

/* Does this flow count (protocol, address family, --src, --mark, --snat-only)? */
bool ct_spec_match(const struct ct_spec *s, const struct ct_flow *f);

/*
 * The element's text as nft's grammar wants it inside `{ }`: the key, and
 * for a map " : " and the value.  key_only leaves the value out (what
 * `delete element` takes).  with_timeout appends " timeout Ns" to the key
 * when the spec has one.  0 or -ENOSPC.
 */
int ct_element(const struct ct_spec *s, const struct ct_flow *f, bool with_value, bool with_timeout,
	       char *buf, size_t len);

const char *ct_field_name(enum ct_field f);

#endif
