// SPDX-License-Identifier: MIT
/* wg-quick files and `set=1` bodies (see wgconfig.h). */
#include "wg/wgconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "lib/buf.h"
#include "lib/encoding.h"

#define MAX_LINE 4096
#define MTU_MIN	 576
#define MTU_MAX	 65455 /* 65535 less the largest tunnel overhead */

void wg_config_init(struct wg_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_port = -1;
}

void wg_config_free(struct wg_config *c)
{
	for (size_t i = 0; i < c->n_peers; i++)
		free(c->peers[i].allowed_ips);
	if (c->peers)
		memzero_explicit(c->peers, c->cap_peers * sizeof(*c->peers));
	free(c->peers);
	free(c->addresses);
	for (size_t i = 0; i < c->n_warnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	bool no_dns = c->no_dns;

	memzero_explicit(c, sizeof(*c));
	c->listen_port = -1;
	c->no_dns = no_dns;
}

/* Grows *arr (of *cap elements of size sz) so that it holds n + 1. */
static int reserve(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 4;
	p = calloc(ncap, sz);
	if (!p)
		return -ENOMEM;
	if (*arr) {
		memcpy(p, *arr, n * sz);
		memzero_explicit(*arr, *cap * sz); /* peers carry preshared keys */
		free(*arr);
	}
	*arr = p;
	*cap = ncap;
	return 0;
}

struct parser {
	struct wg_config *c;
	const char *source; /* NULL for the userspace API */
	unsigned line;
	char *err;
	size_t total_allowed_ips;
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *p, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->source)
		snprintf(p->err, WGCONFIG_ERR_LEN, "%.80s:%u: %s", p->source, p->line, msg);
	else
		snprintf(p->err, WGCONFIG_ERR_LEN, "line %u: %s", p->line, msg);
	return -EINVAL;
}

static void add_warning(struct wg_config *c, const char *msg)
{
	char *copy;

	if (reserve((void **)&c->warnings, &c->cap_warnings, c->n_warnings, sizeof(char *)) < 0)
		return;
	copy = strdup(msg);
	if (copy)
		c->warnings[c->n_warnings++] = copy;
}

static void warn(struct parser *p, const char *key)
{
	char msg[WGCONFIG_ERR_LEN];

	snprintf(msg, sizeof(msg), "%.80s:%u: %.32s is not used by knitd and is ignored", p->source,
		 p->line, key);
	add_warning(p->c, msg);
}

static int parse_number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno || *end || *out > max ? -EINVAL : 0;
}

static struct wg_peer_config *new_peer(struct parser *p)
{
	struct wg_config *c = p->c;
	struct wg_peer_config *peer;

	if (c->n_peers >= WGCONFIG_MAX_PEERS) {
		fail(p, "more than %d peers", WGCONFIG_MAX_PEERS);
		return NULL;
	}
	if (reserve((void **)&c->peers, &c->cap_peers, c->n_peers, sizeof(*c->peers)) < 0) {
		fail(p, "out of memory");
		return NULL;
	}
	peer = &c->peers[c->n_peers++];
	memset(peer, 0, sizeof(*peer));
	peer->persistent_keepalive = -1;
	return peer;
}

static int add_allowed_ip(struct parser *p, struct wg_peer_config *peer, const char *s)
{
	struct ip_prefix prefix;

	if (prefix_parse(s, &prefix) < 0)
		return fail(p, "invalid allowed IP '%.64s'", s);
	if (p->total_allowed_ips >= WGCONFIG_MAX_ALLOWED_IPS)
		return fail(p, "more than %u allowed IPs", WGCONFIG_MAX_ALLOWED_IPS);
	if (reserve((void **)&peer->allowed_ips, &peer->cap_allowed_ips, peer->n_allowed_ips,
		    sizeof(prefix)) < 0)
		return fail(p, "out of memory");
	prefix_mask(&prefix);
	peer->allowed_ips[peer->n_allowed_ips++] = prefix;
	p->total_allowed_ips++;
	return 0;
}

static int add_address(struct parser *p, const char *s)
{
	struct wg_config *c = p->c;
	struct ip_prefix prefix;

	if (prefix_parse(s, &prefix) < 0)
		return fail(p, "invalid Address '%.64s'", s);
	if (c->n_addresses >= WGCONFIG_MAX_ADDRESSES)
		return fail(p, "more than %d addresses", WGCONFIG_MAX_ADDRESSES);
	if (reserve((void **)&c->addresses, &c->cap_addresses, c->n_addresses, sizeof(prefix)) < 0)
		return fail(p, "out of memory");
	c->addresses[c->n_addresses++] = prefix;
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Calls add for each comma-separated item (blank items are skipped). */
static int for_each_item(struct parser *p, char *list, void *arg,
			 int (*add)(struct parser *p, void *arg, const char *item))
{
	char *save = NULL;

	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		int ret;
		item = trim(item);
		if (*item && (ret = add(p, arg, item)) < 0)
			return ret;
	}
	return 0;
}

static int add_allowed_ip_item(struct parser *p, void *peer, const char *item)
{
	return add_allowed_ip(p, peer, item);
}

static int add_address_item(struct parser *p, void *arg, const char *item)
{
	return add_address(p, item);
}

/* --- wg-quick ---------------------------------------------------------- */

enum section { SECTION_NONE, SECTION_INTERFACE, SECTION_PEER };

struct quick_state {
	enum section section;
	struct wg_peer_config *peer;
	bool has_public_key;
	unsigned peer_line;
	bool seen_listen_port, seen_fwmark, seen_mtu;
};

static int end_peer(struct parser *p, struct quick_state *q)
{
	if (q->section != SECTION_PEER)
		return 0;
	if (!q->has_public_key) {
		p->line = q->peer_line;
		return fail(p, "[Peer] without PublicKey");
	}
	for (size_t i = 0; i + 1 < p->c->n_peers; i++)
		if (!memcmp(p->c->peers[i].public_key, q->peer->public_key, NOISE_PUBLIC_KEY_LEN)) {
			p->line = q->peer_line;
			return fail(p, "a second [Peer] with the same PublicKey");
		}
	return 0;
}

static int interface_key(struct parser *p, struct quick_state *q, const char *key, char *value)
{
	struct wg_config *c = p->c;
	unsigned long v;

	if (!strcasecmp(key, "PrivateKey")) {
		if (c->has_private_key)
			return fail(p, "duplicate PrivateKey");
		if (key_from_base64(c->private_key, value) < 0)
			return fail(p, "invalid PrivateKey");
		c->has_private_key = true;
	} else if (!strcasecmp(key, "ListenPort")) {
		if (q->seen_listen_port)
			return fail(p, "duplicate ListenPort");
		if (parse_number(value, 65535, &v) < 0 || strchr(value, 'x'))
			return fail(p, "invalid ListenPort '%.32s' (0 to 65535)", value);
		c->listen_port = (int)v;
		q->seen_listen_port = true;
	} else if (!strcasecmp(key, "FwMark")) {
		if (q->seen_fwmark)
			return fail(p, "duplicate FwMark");
		if (!strcasecmp(value, "off"))
			v = 0;
		else if (parse_number(value, UINT32_MAX, &v) < 0)
			return fail(p, "invalid FwMark '%.32s'", value);
		c->has_fwmark = true;
		c->fwmark = (uint32_t)v;
		q->seen_fwmark = true;
	} else if (!strcasecmp(key, "Address")) {
		return for_each_item(p, value, NULL, add_address_item);
	} else if (!strcasecmp(key, "MTU")) {
		if (q->seen_mtu)
			return fail(p, "duplicate MTU");
		if (parse_number(value, MTU_MAX, &v) < 0 || v < MTU_MIN || strchr(value, 'x'))
			return fail(p, "invalid MTU '%.32s' (%d to %d)", value, MTU_MIN, MTU_MAX);
		c->mtu = (int)v;
		q->seen_mtu = true;
	} else if (!strcasecmp(key, "DNS") || !strcasecmp(key, "Table") ||
		   !strcasecmp(key, "PreUp") || !strcasecmp(key, "PostUp") ||
		   !strcasecmp(key, "PreDown") || !strcasecmp(key, "PostDown") ||
		   !strcasecmp(key, "SaveConfig")) {
		warn(p, key);
	} else {
		return fail(p, "unknown key '%.32s' in [Interface]", key);
	}
	return 0;
}

static int peer_key(struct parser *p, struct quick_state *q, const char *key, char *value)
{
	struct wg_peer_config *peer = q->peer;
	unsigned long v;
	int ret;

	if (!strcasecmp(key, "PublicKey")) {
		if (q->has_public_key)
			return fail(p, "duplicate PublicKey");
		if (key_from_base64(peer->public_key, value) < 0)
			return fail(p, "invalid PublicKey");
		q->has_public_key = true;
	} else if (!strcasecmp(key, "PresharedKey")) {
		if (peer->has_preshared_key)
			return fail(p, "duplicate PresharedKey");
		if (key_from_base64(peer->preshared_key, value) < 0)
			return fail(p, "invalid PresharedKey");
		peer->has_preshared_key = true;
	} else if (!strcasecmp(key, "AllowedIPs")) {
		return for_each_item(p, value, peer, add_allowed_ip_item);
	} else if (!strcasecmp(key, "Endpoint")) {
		if (peer->has_endpoint)
			return fail(p, "duplicate Endpoint");
		ret = endpoint_parse(value, !p->c->no_dns, &peer->endpoint);
		if (ret == -ENOENT)
			return fail(p, "cannot resolve the host of Endpoint '%.64s'", value);
		if (ret < 0)
			return fail(p, "invalid Endpoint '%.64s' (host:port or [IPv6]:port)",
				    value);
		peer->has_endpoint = true;
	} else if (!strcasecmp(key, "PersistentKeepalive")) {
		if (peer->persistent_keepalive >= 0)
			return fail(p, "duplicate PersistentKeepalive");
		if (!strcasecmp(value, "off"))
			v = 0;
		else if (parse_number(value, 65535, &v) < 0 || strchr(value, 'x'))
			return fail(p, "invalid PersistentKeepalive '%.32s' (0 to 65535 or off)",
				    value);
		peer->persistent_keepalive = (int)v;
	} else {
		return fail(p, "unknown key '%.32s' in [Peer]", key);
	}
	return 0;
}

static int quick_line(struct parser *p, struct quick_state *q, char *line)
{
	char *hash = strchr(line, '#'), *eq, *key, *value;
	int ret;

	if (hash)
		*hash = '\0';
	line = trim(line);
	if (!*line)
		return 0;
	if (*line == '[') {
		if ((ret = end_peer(p, q)) < 0)
			return ret;
		if (!strcasecmp(line, "[Interface]")) {
			q->section = SECTION_INTERFACE;
		} else if (!strcasecmp(line, "[Peer]")) {
			q->section = SECTION_PEER;
			q->has_public_key = false;
			q->peer_line = p->line;
			if (!(q->peer = new_peer(p)))
				return -EINVAL;
		} else {
			return fail(p, "unknown section '%.32s'", line);
		}
		return 0;
	}
	eq = strchr(line, '=');
	if (!eq)
		return fail(p, "expected Key = Value");
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*key)
		return fail(p, "expected Key = Value");
	if (q->section == SECTION_NONE)
		return fail(p, "'%.32s' outside a section", key);
	if (q->section == SECTION_INTERFACE)
		return interface_key(p, q, key, value);
	return peer_key(p, q, key, value);
}

/*
 * Calls fn for each line of text (NUL-terminated copy, wiped afterwards: lines
 * carry keys), counting lines in p->line.  Lines are bounded; NUL bytes and,
 * unless allow_empty, empty lines are errors.
 */
static int for_each_line(struct parser *p, const char *text, size_t len, bool allow_empty,
			 int (*fn)(struct parser *p, void *arg, char *line), void *arg)
{
	char line[MAX_LINE + 1];
	size_t pos = 0;
	int ret;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		p->line++;
		if (n > MAX_LINE)
			return fail(p, "line longer than %d characters", MAX_LINE);
		if (memchr(text + pos, '\0', n))
			return fail(p, "NUL byte in text");
		if (!n && !allow_empty)
			return fail(p, "empty line");
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl ? 1 : 0);
		ret = fn(p, arg, line);
		memzero_explicit(line, sizeof(line));
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int quick_line_cb(struct parser *p, void *q, char *line)
{
	return quick_line(p, q, line);
}

int wgquick_parse(struct wg_config *out, const char *text, size_t len, const char *source,
		  char err[WGCONFIG_ERR_LEN])
{
	struct parser p = {.c = out, .source = source, .err = err};
	struct quick_state q = {.section = SECTION_NONE};
	int ret;

	if (len > WGCONFIG_MAX_BYTES) {
		snprintf(err, WGCONFIG_ERR_LEN, "%.180s: larger than %u bytes", source,
			 WGCONFIG_MAX_BYTES);
		return -EINVAL;
	}
	if ((ret = for_each_line(&p, text, len, true, quick_line_cb, &q)) < 0)
		return ret;
	p.line++;
	return end_peer(&p, &q);
}

int wgquick_load(struct wg_config *out, const char *path, char err[WGCONFIG_ERR_LEN])
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct buf b;
	struct stat st;
	int ret;

	buf_init(&b, WGCONFIG_MAX_BYTES);
	ret = buf_read_file(&b, path, WGCONFIG_MAX_BYTES);
	if (ret < 0) {
		snprintf(err, WGCONFIG_ERR_LEN, "%.180s: %s", path,
			 ret == -EFBIG ? "larger than 4 MiB" : strerror(-ret));
		buf_free(&b);
		return -EINVAL;
	}
	ret = wgquick_parse(out, (const char *)b.data, b.len, base, err);
	buf_free(&b);
	if (ret == 0 && out->has_private_key && stat(path, &st) == 0 && (st.st_mode & 0077)) {
		char msg[WGCONFIG_ERR_LEN];
		snprintf(msg, sizeof(msg),
			 "%.180s: is readable by others but holds a private key (chmod 600)", path);
		add_warning(out, msg);
	}
	return ret;
}

/* --- the userspace API's set ------------------------------------------- */

static bool is_true(const char *v)
{
	return !strcmp(v, "true");
}

static int uapi_peer_key(struct parser *p, struct wg_peer_config *peer, const char *key,
			 const char *value)
{
	unsigned long v;

	if (!strcmp(key, "remove")) {
		if (!is_true(value))
			return fail(p, "invalid remove");
		peer->remove = true;
	} else if (!strcmp(key, "update_only")) {
		if (!is_true(value))
			return fail(p, "invalid update_only");
		peer->update_only = true;
	} else if (!strcmp(key, "preshared_key")) {
		if (key_from_hex(peer->preshared_key, value) < 0)
			return fail(p, "invalid preshared_key");
		peer->has_preshared_key = true;
	} else if (!strcmp(key, "endpoint")) {
		if (endpoint_parse(value, false, &peer->endpoint) < 0)
			return fail(p, "invalid endpoint '%.64s'", value);
		peer->has_endpoint = true;
	} else if (!strcmp(key, "persistent_keepalive_interval")) {
		if (parse_number(value, 65535, &v) < 0 || strchr(value, 'x'))
			return fail(p, "invalid persistent_keepalive_interval");
		peer->persistent_keepalive = (int)v;
	} else if (!strcmp(key, "replace_allowed_ips")) {
		if (!is_true(value))
			return fail(p, "invalid replace_allowed_ips");
		peer->replace_allowed_ips = true;
	} else if (!strcmp(key, "allowed_ip")) {
		return add_allowed_ip(p, peer, value);
	} else if (!strcmp(key, "protocol_version")) {
		if (strcmp(value, "1")) {
			fail(p, "unsupported protocol_version");
			return -EPROTO;
		}
	} else {
		return fail(p, "unknown key '%.32s'", key);
	}
	return 0;
}

static int uapi_line(struct parser *p, struct wg_peer_config **peer, char *line)
{
	struct wg_config *c = p->c;
	char *eq = strchr(line, '='), *key = line, *value;
	unsigned long v;

	if (!eq)
		return fail(p, "expected key=value");
	*eq = '\0';
	value = eq + 1;
	if (!strcmp(key, "public_key")) {
		if (!(*peer = new_peer(p)))
			return -EINVAL;
		if (key_from_hex((*peer)->public_key, value) < 0)
			return fail(p, "invalid public_key");
		return 0;
	}
	if (*peer)
		return uapi_peer_key(p, *peer, key, value);
	if (!strcmp(key, "private_key")) {
		if (key_from_hex(c->private_key, value) < 0)
			return fail(p, "invalid private_key");
		c->has_private_key = true;
	} else if (!strcmp(key, "listen_port")) {
		if (parse_number(value, 65535, &v) < 0 || strchr(value, 'x'))
			return fail(p, "invalid listen_port");
		c->listen_port = (int)v;
	} else if (!strcmp(key, "fwmark")) {
		if (parse_number(value, UINT32_MAX, &v) < 0)
			return fail(p, "invalid fwmark");
		c->has_fwmark = true;
		c->fwmark = (uint32_t)v;
	} else if (!strcmp(key, "replace_peers")) {
		if (!is_true(value))
			return fail(p, "invalid replace_peers");
		c->replace_peers = true;
	} else {
		return fail(p, "unknown key '%.32s'", key);
	}
	return 0;
}

static int uapi_line_cb(struct parser *p, void *peer, char *line)
{
	return uapi_line(p, peer, line);
}

int uapi_parse_set(struct wg_config *out, const char *text, size_t len, char err[WGCONFIG_ERR_LEN])
{
	struct parser p = {.c = out, .err = err};
	struct wg_peer_config *peer = NULL;

	if (len > WGCONFIG_MAX_BYTES) {
		snprintf(err, WGCONFIG_ERR_LEN, "request larger than %u bytes", WGCONFIG_MAX_BYTES);
		return -EINVAL;
	}
	return for_each_line(&p, text, len, false, uapi_line_cb, &peer);
}
