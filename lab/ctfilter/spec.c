// SPDX-License-Identifier: MIT
/* What ctfilter matches and the nftables elements it writes (see spec.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

static const char *const field_names[CT_FIELD_COUNT] = {
	[CT_SADDR] = "saddr",
	[CT_SPORT] = "sport",
	[CT_DADDR] = "daddr",
	[CT_DPORT] = "dport",
	[CT_MAPPED_ADDR] = "mapped-addr",
	[CT_MAPPED_PORT] = "mapped-port",
};

static const char *const nft_families[] = {"ip", "ip6", "inet", "bridge", "netdev", "arp"};

const char *ct_field_name(enum ct_field f)
{
	return f < CT_FIELD_COUNT ? field_names[f] : "?";
}

void ct_spec_init(struct ct_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->proto = IPPROTO_UDP;
	s->ip_family = AF_INET;
}

/*
 * nft's identifiers: a letter or '_', then letters, digits, '_', '.', '/'.
 * Anything else could change the command the element is written into.
 */
static bool nft_identifier(const char *p, size_t len)
{
	size_t i;

	if (len == 0 || len > CT_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = p[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '.' || c == '/')))
			return false;
	}
	return true;
}

int ct_spec_parse_set(struct ct_spec *s, const char *arg)
{
	const char *c1 = strchr(arg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	size_t flen, i;

	if (!c1 || !c2)
		return -EINVAL;
	flen = (size_t)(c1 - arg);
	for (i = 0; i < sizeof(nft_families) / sizeof(nft_families[0]); i++)
		if (strlen(nft_families[i]) == flen && !strncmp(arg, nft_families[i], flen))
			break;
	if (i == sizeof(nft_families) / sizeof(nft_families[0]))
		return -EINVAL;
	if (!nft_identifier(c1 + 1, (size_t)(c2 - c1 - 1)) ||
	    !nft_identifier(c2 + 1, strlen(c2 + 1)))
		return -EINVAL;
	strcpy(s->family, nft_families[i]);
	memcpy(s->table, c1 + 1, (size_t)(c2 - c1 - 1));
	s->table[c2 - c1 - 1] = '\0';
	strcpy(s->set, c2 + 1);
	return 0;
}

int ct_fields_parse(const char *arg, struct ct_fields *out)
{
	struct ct_fields r = {.n = 0};
	bool seen[CT_FIELD_COUNT] = {false};
	const char *p = arg;

	for (;;) {
		const char *end = strchr(p, '.');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int f;

		for (f = 0; f < CT_FIELD_COUNT; f++)
			if (strlen(field_names[f]) == len && !strncmp(p, field_names[f], len))
				break;
		if (f == CT_FIELD_COUNT || seen[f])
			return -EINVAL;
		seen[f] = true;
		r.f[r.n++] = (enum ct_field)f;
		if (!end)
			break;
		p = end + 1;
	}
	*out = r;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int ct_spec_parse_mark(struct ct_spec *s, const char *arg)
{
	char buf[32], *slash;
	uint32_t mark, mask = UINT32_MAX;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (parse_u32(slash + 1, &mask) || mask == 0)
			return -EINVAL;
	}
	if (parse_u32(buf, &mark))
		return -EINVAL;
	s->match_mark = true;
	s->mark = mark & mask;
	s->mark_mask = mask;
	return 0;
}

int ct_spec_add_src(struct ct_spec *s, const char *arg)
{
	struct ip_prefix p;

	if (prefix_parse(arg, &p))
		return -EINVAL;
	if (s->n_src == CT_MAX_SRC)
		return -ENOSPC;
	prefix_mask(&p);
	s->src[s->n_src++] = p;
	return 0;
}

static bool has_addr(const struct ct_fields *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (f->f[i] == CT_SADDR || f->f[i] == CT_DADDR || f->f[i] == CT_MAPPED_ADDR)
			return true;
	return false;
}

int ct_spec_check(const struct ct_spec *s, const char **why)
{
	size_t i;

	if (!s->set[0]) {
		*why = "--set FAMILY:TABLE:SET is required";
		return -EINVAL;
	}
	if (!s->key.n) {
		*why = "--key FIELDS is required";
		return -EINVAL;
	}
	for (i = 0; i < s->n_src; i++) {
		if (s->src[i].family != s->ip_family) {
			*why = "a --src prefix is not of the --ip version";
			return -EINVAL;
		}
	}
	if ((has_addr(&s->key) || has_addr(&s->value)) &&
	    ((!strcmp(s->family, "ip") && s->ip_family != AF_INET) ||
	     (!strcmp(s->family, "ip6") && s->ip_family != AF_INET6))) {
		*why = "the table's family cannot hold addresses of this --ip version";
		return -EINVAL;
	}
	return 0;
}

bool ct_spec_match(const struct ct_spec *s, const struct ct_flow *f)
{
	size_t i;

	if (f->proto != s->proto || f->family != s->ip_family)
		return false;
	if (s->snat_only && !f->snat)
		return false;
	if (s->match_mark && ((f->has_mark ? f->mark : 0) & s->mark_mask) != s->mark)
		return false;
	if (!s->n_src)
		return true;
	for (i = 0; i < s->n_src; i++)
		if (prefix_contains(&s->src[i], f->family, f->saddr))
			return true;
	return false;
}

/* Appends one field's text; returns the new length or -ENOSPC. */
static int put_field(const struct ct_flow *f, enum ct_field field, char *buf, size_t len, size_t at)
{
	char addr[INET6_ADDRSTRLEN];
	const uint8_t *a = NULL;
	unsigned int port = 0;
	int n;

	switch (field) {
	case CT_SADDR:
		a = f->saddr;
		break;
	case CT_DADDR:
		a = f->daddr;
		break;
	case CT_MAPPED_ADDR:
		a = f->maddr;
		break;
	case CT_SPORT:
		port = f->sport;
		break;
	case CT_DPORT:
		port = f->dport;
		break;
	case CT_MAPPED_PORT:
		port = f->mport;
		break;
	default:
		return -EINVAL;
	}
	if (a) {
		if (!inet_ntop(f->family, a, addr, sizeof(addr)))
			return -EINVAL;
		n = snprintf(buf + at, len - at, "%s", addr);
	} else {
		n = snprintf(buf + at, len - at, "%u", port);
	}
	if (n < 0 || (size_t)n >= len - at)
		return -ENOSPC;
	return (int)(at + (size_t)n);
}

static int put_fields(const struct ct_flow *f, const struct ct_fields *fl, char *buf, size_t len,
		      size_t at)
{
	size_t i;
	int r;

	for (i = 0; i < fl->n; i++) {
		if (i) {
			if (len - at < 4)
				return -ENOSPC;
			memcpy(buf + at, " . ", 4);
			at += 3;
		}
		r = put_field(f, fl->f[i], buf, len, at);
		if (r < 0)
			return r;
		at = (size_t)r;
	}
	return (int)at;
}

int ct_element(const struct ct_spec *s, const struct ct_flow *f, bool with_value, bool with_timeout,
	       char *buf, size_t len)
{
	int at, n;

	if (len == 0)
		return -ENOSPC;
	at = put_fields(f, &s->key, buf, len, 0);
	if (at < 0)
		return at;
	if (with_timeout && s->timeout_s) {
		n = snprintf(buf + at, len - (size_t)at, " timeout %us", s->timeout_s);
		if (n < 0 || (size_t)n >= len - (size_t)at)
			return -ENOSPC;
		at += n;
	}
	if (with_value && s->value.n) {
		if (len - (size_t)at < 4)
			return -ENOSPC;
		memcpy(buf + at, " : ", 4);
		at = put_fields(f, &s->value, buf, len, (size_t)at + 3);
		if (at < 0)
			return at;
	}
	return 0;
}
