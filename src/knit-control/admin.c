// SPDX-License-Identifier: MIT
/*
 * knit-control's admin commands.  Each opens the store in --state-dir, does
 * one thing in one transaction, and says what it did.  Exit 0 on success, 1
 * when the thing cannot be done (with a message naming the database), 2 for
 * a wrong command line.  Listings take --json (fields in docs/control.md).
 */
#include "knit-control/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "control/netmap.h"
#include "crypto/crypto.h"
#include "knit-control/duration.h"
#include "knit-control/store.h"
#include "lib/encoding.h"
#include "lib/keyfile.h"
#include "lib/log.h"

#define AUTHKEY_DEFAULT_EXPIRY "24h"
#define MAX_POSITIONAL	       4

/* Options, as bits: each command lists those it accepts. */
enum {
	O_STATE_DIR = 1 << 0,
	O_JSON = 1 << 1,
	O_REUSABLE = 1 << 2,
	O_EXPIRY = 1 << 3,
	O_TAG = 1 << 4,
	O_RELAY = 1 << 5,  /* --id --region --host --port --stun-port --key [--stun-alt] */
	O_CONFIG = 1 << 6, /* --key-expiry --ipv4-prefix --ipv6-prefix */
};

struct opts {
	const char *state_dir, *expiry, *tag;
	const char *id, *region, *host, *port, *stun_port, *key, *stun_alt;
	const char *key_expiry, *ipv4_prefix, *ipv6_prefix;
	const char *pos[MAX_POSITIONAL];
	int npos;
	bool json, reusable, help;
};

static const struct optdef {
	const char *name;
	unsigned bit;
	bool is_flag; /* a bool at off in struct opts; else a const char * */
	size_t off;
} optdefs[] = {
	{"--state-dir", O_STATE_DIR, false, offsetof(struct opts, state_dir)},
	{"--json", O_JSON, true, offsetof(struct opts, json)},
	{"--reusable", O_REUSABLE, true, offsetof(struct opts, reusable)},
	{"--expiry", O_EXPIRY, false, offsetof(struct opts, expiry)},
	{"--tag", O_TAG, false, offsetof(struct opts, tag)},
	{"--id", O_RELAY, false, offsetof(struct opts, id)},
	{"--region", O_RELAY, false, offsetof(struct opts, region)},
	{"--host", O_RELAY, false, offsetof(struct opts, host)},
	{"--port", O_RELAY, false, offsetof(struct opts, port)},
	{"--stun-port", O_RELAY, false, offsetof(struct opts, stun_port)},
	{"--key", O_RELAY, false, offsetof(struct opts, key)},
	{"--stun-alt", O_RELAY, false, offsetof(struct opts, stun_alt)},
	{"--key-expiry", O_CONFIG, false, offsetof(struct opts, key_expiry)},
	{"--ipv4-prefix", O_CONFIG, false, offsetof(struct opts, ipv4_prefix)},
	{"--ipv6-prefix", O_CONFIG, false, offsetof(struct opts, ipv6_prefix)},
};

struct ctx {
	struct opts o;
	struct store *st;
	FILE *out, *err;
};

struct command {
	const char *group; /* "node", or NULL for a top-level command */
	const char *name;
	const char *args; /* positional arguments, for the usage line */
	const char *what;
	unsigned opts;
	int npos;
	int (*fn)(struct ctx *c);
};

/* --- messages ----------------------------------------------------------- */

static int fail(struct ctx *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, int status, const char *fmt, ...)
{
	va_list ap;

	fputs("knit-control: ", c->err);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
	return status;
}

/* A store error that is not the caller's "no such thing". */
static int fail_store(struct ctx *c, int ret, const char *doing)
{
	const char *why = ret == -EBUSY	   ? "the database stayed locked (is something holding it?)"
			  : ret == -EIO	   ? "database error (see the log line above)"
			  : ret == -ENOSPC ? "no free address left in the overlay prefix"
					   : strerror(-ret);

	return fail(c, ADMIN_ERROR, "%s: %s (%s)", doing, why, store_path(c->st));
}

static void fmt_time(int64_t t, char *buf, size_t len, const char *zero)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0 || !gmtime_r(&tt, &tm))
		snprintf(buf, len, "%s", zero);
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Unix seconds, or null for "never". */
static json_t *json_time(int64_t t)
{
	return t ? json_integer(t) : json_null();
}

static int print_json(struct ctx *c, json_t *j)
{
	int ret;

	if (!j)
		return fail(c, ADMIN_ERROR, "out of memory");
	ret = json_dumpf(j, c->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	fputc('\n', c->out);
	return ret == 0 ? ADMIN_OK : fail(c, ADMIN_ERROR, "cannot write the output");
}

/* --- argument values ---------------------------------------------------- */

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || *s == '+' || *s == '-' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Opens the store on first use: a command checks its arguments first, so a
 * usage error never creates a state directory. */
static int need_store(struct ctx *c)
{
	int ret;

	if (c->st)
		return 0;
	ret = store_open(&c->st, c->o.state_dir);

	if (ret == 0)
		return 0;
	if (ret == -EPROTO)
		return fail(c, ADMIN_ERROR,
			    "%s/%s was written by a newer knit-control: use that version",
			    c->o.state_dir, STORE_DB_NAME);
	return fail(c, ADMIN_ERROR, "cannot open the database in %s: %s", c->o.state_dir,
		    ret == -EIO ? "see the log line above" : strerror(-ret));
}

/* A node by id, or by name when the argument is not a number. */
static int find_node(struct ctx *c, const char *arg, struct store_node *n)
{
	int64_t id;
	int ret;

	if (is_number(arg) && parse_int(arg, 1, INT64_MAX, &id) < 0)
		return fail(c, ADMIN_USAGE, "invalid node id '%.24s'", arg);
	ret = need_store(c);
	if (ret)
		return ret;
	if (is_number(arg)) {
		ret = store_node_get(c->st, id, n);
	} else {
		ret = store_node_get_by_name(c->st, arg, n);
	}
	if (ret == -ENOENT)
		return fail(c, ADMIN_ERROR, "no node %s in %s", arg, store_path(c->st));
	if (ret < 0)
		return fail_store(c, ret, "cannot read the node");
	return ADMIN_OK;
}

/* --- key ---------------------------------------------------------------- */

int control_key_load(const char *dir, uint8_t priv[32], uint8_t pub[32], bool *created)
{
	char path[PATH_MAX];
	int ret;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, CONTROL_KEY_FILE) >= sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_error("cannot create state directory path=%s error=%s", dir, strerror(-ret));
		return ret;
	}
	ret = keyfile_load_or_create(path, priv, created);
	if (ret < 0)
		return ret;
	ret = x25519_public(pub, priv);
	if (ret < 0) {
		memzero_explicit(priv, 32);
		log_error("control key is unusable path=%s", path);
	}
	return ret;
}

static int cmd_key(struct ctx *c)
{
	uint8_t priv[32], pub[32];
	char b64[KEY_BASE64_LEN + 1];
	bool created;
	int ret;

	ret = control_key_load(c->o.state_dir, priv, pub, &created);
	memzero_explicit(priv, sizeof(priv));
	if (ret < 0)
		return fail(c, ADMIN_ERROR, "cannot load or create the control key in %s: %s",
			    c->o.state_dir, strerror(-ret));
	if (created)
		fprintf(c->err, "knit-control: generated a new control key in %s/%s\n",
			c->o.state_dir, CONTROL_KEY_FILE);
	key_to_base64(b64, pub);
	if (c->o.json)
		return print_json(c, json_pack("{s:s}", "public_key", b64));
	fprintf(c->out, "%s\n", b64);
	return ADMIN_OK;
}

/* --- auth keys ---------------------------------------------------------- */

static json_t *authkey_json(const struct store_authkey *k, int64_t now)
{
	return json_pack("{s:I, s:s, s:b, s:I, s:o, s:b, s:b, s:I, s:s}", "id", (json_int_t)k->id,
			 "prefix", k->prefix, "reusable", k->reusable, "used", (json_int_t)k->used,
			 "expires", json_time(k->expires), "expired",
			 k->expires && k->expires <= now, "revoked", k->revoked, "created",
			 (json_int_t)k->created, "tag", k->tag);
}

static int cmd_authkey_create(struct ctx *c)
{
	const char *expiry = c->o.expiry ? c->o.expiry : AUTHKEY_DEFAULT_EXPIRY;
	char secret[STORE_AUTHKEY_STRLEN];
	struct store_authkey k;
	int64_t ttl = 0;
	json_t *j;
	int ret;

	if (strcmp(expiry, "never") && duration_parse(expiry, &ttl) < 0)
		return fail(c, ADMIN_USAGE,
			    "invalid --expiry '%s' (want e.g. 30m, 24h, 90d, or never)", expiry);
	if (c->o.tag && !store_tag_valid(c->o.tag))
		return fail(c, ADMIN_USAGE,
			    "invalid --tag '%.64s' (at most 63 of A-Z a-z 0-9 : . _ -)", c->o.tag);
	ret = need_store(c);
	if (ret)
		return ret;
	ret = store_authkey_create(c->st, c->o.reusable, ttl, c->o.tag, &k, secret);
	if (ret == -EINVAL)
		return fail(c, ADMIN_USAGE,
			    "invalid --tag '%s' (at most 63 of A-Z a-z 0-9 : . _ -)", c->o.tag);
	if (ret < 0)
		return fail_store(c, ret, "cannot create the auth key");
	if (c->o.json) {
		j = authkey_json(&k, store_now(c->st));
		if (j)
			json_object_set_new(j, "key", json_string(secret));
		ret = print_json(c, j);
	} else {
		fprintf(c->out, "%s\n", secret);
		ret = ADMIN_OK;
	}
	memzero_explicit(secret, sizeof(secret));
	return ret;
}

struct list_state {
	struct ctx *c;
	json_t *array;
	int64_t now;
};

static int authkey_row(const struct store_authkey *k, void *arg)
{
	struct list_state *ls = arg;
	char expires[32], created[32];

	if (ls->array)
		return json_array_append_new(ls->array, authkey_json(k, ls->now)) ? -ENOMEM : 0;
	fmt_time(k->expires, expires, sizeof(expires), "never");
	fmt_time(k->created, created, sizeof(created), "-");
	fprintf(ls->c->out, "%-5" PRId64 " %-16s %-8s %-5" PRId64 " %-20s %-8s %-20s %s\n", k->id,
		k->prefix, k->reusable ? "yes" : "no", k->used, expires,
		k->revoked			      ? "revoked"
		: k->expires && k->expires <= ls->now ? "expired"
		: !k->reusable && k->used	      ? "used"
						      : "valid",
		created, k->tag);
	return 0;
}

/* Returns an exit status: 0 to go on. */
static int list_begin(struct ctx *c, struct list_state *ls, const char *header)
{
	int ret = need_store(c);

	if (ret)
		return ret;
	ls->c = c;
	ls->now = store_now(c->st);
	ls->array = NULL;
	if (c->o.json) {
		ls->array = json_array();
		return ls->array ? 0 : fail(c, ADMIN_ERROR, "out of memory");
	}
	fputs(header, c->out);
	return 0;
}

static int list_end(struct ctx *c, struct list_state *ls, int ret, const char *what)
{
	if (ret < 0) {
		json_decref(ls->array);
		return fail_store(c, ret, what);
	}
	return ls->array ? print_json(c, ls->array) : ADMIN_OK;
}

static int cmd_authkey_list(struct ctx *c)
{
	struct list_state ls;
	int ret = list_begin(c, &ls,
			     "ID    PREFIX           REUSABLE USED  EXPIRES              "
			     "STATE    CREATED              TAG\n");

	if (ret)
		return ret;
	return list_end(c, &ls, store_authkey_list(c->st, authkey_row, &ls),
			"cannot list auth keys");
}

static int cmd_authkey_revoke(struct ctx *c)
{
	const char *arg = c->o.pos[0];
	struct store_authkey k;
	int64_t id;
	int ret;

	if (store_authkey_parse_id(arg, &id) < 0)
		return fail(c, ADMIN_USAGE, "invalid auth key or id '%.20s'", arg);
	ret = need_store(c);
	if (ret)
		return ret;
	ret = store_authkey_get(c->st, id, &k);
	if (!ret && !k.revoked)
		ret = store_authkey_revoke(c->st, id);
	if (ret == -ENOENT)
		return fail(c, ADMIN_ERROR, "no auth key %" PRId64 " in %s", id, store_path(c->st));
	if (ret < 0)
		return fail_store(c, ret, "cannot revoke the auth key");
	fprintf(c->out, "auth key %s %s\n", k.prefix,
		k.revoked ? "was already revoked" : "revoked");
	return ADMIN_OK;
}

/* --- nodes -------------------------------------------------------------- */

static const char *node_status(const struct store_node *n, int64_t now)
{
	if (!n->approved)
		return "pending";
	if (store_node_expired(n, now))
		return "expired";
	if (n->quarantined)
		return "quarantined";
	return "active";
}

static json_t *node_json(const struct store_node *n, int64_t now)
{
	char nk[KEY_BASE64_LEN + 1], dk[KEY_BASE64_LEN + 1];

	key_to_base64(nk, n->node_key);
	key_to_base64(dk, n->disco_key);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:b, s:b, s:b, s:o}",
			 "id", (json_int_t)n->id, "name", n->name, "status", node_status(n, now),
			 "ipv4", n->ipv4, "ipv6", n->ipv6, "node_key", nk, "disco_key",
			 key_is_zero(n->disco_key) ? json_null() : json_string(dk), "created",
			 (json_int_t)n->created, "expires", json_time(n->expires), "last_seen",
			 json_time(n->last_seen), "approved", n->approved, "quarantined",
			 n->quarantined, "expired", store_node_expired(n, now), "authkey_id",
			 n->authkey_id ? json_integer(n->authkey_id) : json_null());
}

static int node_row(const struct store_node *n, void *arg)
{
	struct list_state *ls = arg;
	char nk[KEY_BASE64_LEN + 1], seen[32], expires[32];

	if (ls->array)
		return json_array_append_new(ls->array, node_json(n, ls->now)) ? -ENOMEM : 0;
	key_to_base64(nk, n->node_key);
	fmt_time(n->last_seen, seen, sizeof(seen), "never");
	fmt_time(n->expires, expires, sizeof(expires), "never");
	fprintf(ls->c->out, "%-5" PRId64 " %-24s %-15s %-28s %-11s %-20s %-20s %.12s…\n", n->id,
		n->name, n->ipv4, n->ipv6, node_status(n, ls->now), seen, expires, nk);
	return 0;
}

static int cmd_nodes(struct ctx *c)
{
	struct list_state ls;
	int ret = list_begin(c, &ls,
			     "ID    NAME                     IPV4            IPV6                  "
			     "       STATUS      LAST-SEEN            EXPIRES              "
			     "NODE-KEY\n");

	if (ret)
		return ret;
	return list_end(c, &ls, store_node_list(c->st, node_row, &ls), "cannot list nodes");
}

/* Runs one node change and reports it. */
static int node_done(struct ctx *c, const struct store_node *n, int ret, const char *done)
{
	if (ret == -ENOENT) /* removed between our lookup and our write */
		return fail(c, ADMIN_ERROR, "no node %" PRId64 " in %s", n->id, store_path(c->st));
	if (ret < 0)
		return fail_store(c, ret, "cannot change the node");
	fprintf(c->out, "node %" PRId64 " (%s) %s\n", n->id, n->name, done);
	return ADMIN_OK;
}

static int cmd_node_approve(struct ctx *c)
{
	struct store_node n;
	int ret = find_node(c, c->o.pos[0], &n);

	if (ret)
		return ret;
	if (n.approved)
		return node_done(c, &n, 0, "was already approved");
	return node_done(c, &n, store_node_set_approved(c->st, n.id, true), "approved");
}

static int cmd_node_remove(struct ctx *c)
{
	struct store_node n;
	int ret = find_node(c, c->o.pos[0], &n);

	if (ret)
		return ret;
	return node_done(c, &n, store_node_remove(c->st, n.id), "removed");
}

static int cmd_node_expire(struct ctx *c)
{
	struct store_node n;
	int ret = find_node(c, c->o.pos[0], &n);

	if (ret)
		return ret;
	if (store_node_expired(&n, store_now(c->st)))
		return node_done(c, &n, 0, "was already expired");
	return node_done(c, &n, store_node_expire(c->st, n.id),
			 "expired: it must log in again with an auth key");
}

static int cmd_node_rename(struct ctx *c)
{
	const char *name = c->o.pos[1];
	struct store_node n;
	char done[STORE_NAME_LEN + 16];
	int ret;

	if (!store_name_valid(name))
		return fail(c, ADMIN_USAGE,
			    "invalid name '%.64s': use a-z, 0-9 and '-', at most %d characters, "
			    "not starting or ending with '-'",
			    name, STORE_NAME_LEN - 1);
	ret = find_node(c, c->o.pos[0], &n);
	if (ret)
		return ret;
	ret = store_node_rename(c->st, n.id, name);
	if (ret == -EEXIST)
		return fail(c, ADMIN_ERROR, "another node is already named %s in %s", name,
			    store_path(c->st));
	snprintf(done, sizeof(done), "renamed to %s", name);
	return node_done(c, &n, ret, done);
}

static int cmd_node_quarantine(struct ctx *c)
{
	const char *v = c->o.pos[1];
	struct store_node n;
	bool on;
	int ret;

	if (!strcmp(v, "on"))
		on = true;
	else if (!strcmp(v, "off"))
		on = false;
	else
		return fail(c, ADMIN_USAGE, "node quarantine: want on or off, not '%.16s'", v);
	ret = find_node(c, c->o.pos[0], &n);
	if (ret)
		return ret;
	return node_done(c, &n, store_node_set_quarantined(c->st, n.id, on),
			 on ? "quarantined: it sees no one and no one accepts its packets"
			    : "out of quarantine");
}

/* --- relays ------------------------------------------------------------- */

static json_t *relay_json(const struct store_relay *r)
{
	char key[KEY_BASE64_LEN + 1];

	json_t *j;

	key_to_base64(key, r->key);
	j = json_pack("{s:I, s:s, s:s, s:i, s:i, s:s}", "id", (json_int_t)r->id, "region",
		      r->region, "host", r->host, "port", (int)r->port, "stun_port",
		      (int)r->stun_port, "key", key);
	if (j && r->stun_alt[0])
		json_object_set_new(j, "stun_alt", json_string(r->stun_alt));
	return j;
}

static int relay_row(const struct store_relay *r, void *arg)
{
	struct list_state *ls = arg;
	char key[KEY_BASE64_LEN + 1];

	if (ls->array)
		return json_array_append_new(ls->array, relay_json(r)) ? -ENOMEM : 0;
	key_to_base64(key, r->key);
	fprintf(ls->c->out, "%-5" PRId64 " %-16s %-30s %-5u %-9u %s%s%s\n", r->id, r->region,
		r->host, r->port, r->stun_port, key, r->stun_alt[0] ? "  stun-alt " : "",
		r->stun_alt);
	return 0;
}

static int cmd_relays(struct ctx *c)
{
	struct list_state ls;
	int ret = list_begin(c, &ls,
			     "ID    REGION           HOST                           PORT  "
			     "STUN-PORT KEY\n");

	if (ret)
		return ret;
	return list_end(c, &ls, store_relay_list(c->st, relay_row, &ls), "cannot list relays");
}

static int cmd_relay_add(struct ctx *c)
{
	const struct opts *o = &c->o;
	struct store_relay r = {0};
	int64_t v;
	int ret;

	if (!o->id || !o->region || !o->host || !o->port || !o->stun_port || !o->key)
		return fail(c, ADMIN_USAGE,
			    "relay add needs --id, --region, --host, --port, "
			    "--stun-port and --key");
	if (parse_int(o->id, 1, 65535, &r.id) < 0)
		return fail(c, ADMIN_USAGE, "invalid --id '%.16s' (1..65535)", o->id);
	if (parse_int(o->port, 1, 65535, &v) < 0)
		return fail(c, ADMIN_USAGE, "invalid --port '%.16s' (1..65535)", o->port);
	r.port = (uint16_t)v;
	if (parse_int(o->stun_port, 1, 65535, &v) < 0)
		return fail(c, ADMIN_USAGE, "invalid --stun-port '%.16s' (1..65535)", o->stun_port);
	r.stun_port = (uint16_t)v;
	if (key_from_base64(r.key, o->key) < 0 || key_is_zero(r.key))
		return fail(c, ADMIN_USAGE, "invalid --key: want the relay's public key in base64");
	if (strlen(o->region) >= sizeof(r.region) || strlen(o->host) >= sizeof(r.host))
		return fail(c, ADMIN_USAGE, "--region or --host is too long");
	if (o->stun_alt && netmap_host_port_valid(o->stun_alt) < 0)
		return fail(c, ADMIN_USAGE,
			    "invalid --stun-alt '%.64s': want HOST:PORT, the relay's second STUN "
			    "address and port (knit-relay --stun-alt)",
			    o->stun_alt);
	strcpy(r.region, o->region);
	strcpy(r.host, o->host);
	if (o->stun_alt)
		strcpy(r.stun_alt, o->stun_alt); /* bounded: netmap_host_port_valid */
	ret = need_store(c);
	if (ret)
		return ret;
	ret = store_relay_add(c->st, &r);
	if (ret == -EINVAL)
		return fail(c, ADMIN_USAGE,
			    "invalid relay: --region must be printable without spaces, --host "
			    "a host name or address");
	if (ret == -EEXIST)
		return fail(c, ADMIN_ERROR,
			    "a relay with id %" PRId64 " or that key is already in %s", r.id,
			    store_path(c->st));
	if (ret < 0)
		return fail_store(c, ret, "cannot add the relay");
	fprintf(c->out, "relay %" PRId64 " (%s, %s:%u) added\n", r.id, r.region, r.host, r.port);
	return ADMIN_OK;
}

static int cmd_relay_remove(struct ctx *c)
{
	int64_t id;
	int ret;

	if (parse_int(c->o.pos[0], 1, 65535, &id) < 0)
		return fail(c, ADMIN_USAGE, "invalid relay id '%.16s' (1..65535)", c->o.pos[0]);
	ret = need_store(c);
	if (ret)
		return ret;
	ret = store_relay_remove(c->st, id);
	if (ret == -ENOENT)
		return fail(c, ADMIN_ERROR, "no relay %" PRId64 " in %s", id, store_path(c->st));
	if (ret < 0)
		return fail_store(c, ret, "cannot remove the relay");
	fprintf(c->out, "relay %" PRId64 " removed\n", id);
	return ADMIN_OK;
}

/* --- settings ----------------------------------------------------------- */

static int config_show(struct ctx *c)
{
	char p4[PREFIX_STRLEN], p6[PREFIX_STRLEN], ttl[32];
	struct ip_prefix v4, v6;
	int64_t expiry;
	int ret;

	ret = store_get_key_expiry(c->st, &expiry);
	if (!ret)
		ret = store_get_prefixes(c->st, &v4, &v6);
	if (ret < 0)
		return fail_store(c, ret, "cannot read the settings");
	prefix_format(&v4, p4, sizeof(p4));
	prefix_format(&v6, p6, sizeof(p6));
	if (c->o.json)
		return print_json(c, json_pack("{s:o, s:s, s:s}", "key_expiry",
					       expiry ? json_integer(expiry) : json_null(),
					       "ipv4_prefix", p4, "ipv6_prefix", p6));
	if (expiry)
		duration_format(expiry, ttl, sizeof(ttl));
	else
		strcpy(ttl, "never");
	fprintf(c->out, "key-expiry   %s\nipv4-prefix  %s\nipv6-prefix  %s\n", ttl, p4, p6);
	return ADMIN_OK;
}

/* Shows the settings, or changes those given. */
static int cmd_config(struct ctx *c)
{
	const struct opts *o = &c->o;
	struct ip_prefix v4, v6, cur4, cur6;
	int64_t expiry = 0;
	int ret;

	if (o->key_expiry && strcmp(o->key_expiry, "never") &&
	    duration_parse(o->key_expiry, &expiry) < 0)
		return fail(c, ADMIN_USAGE,
			    "invalid --key-expiry '%.32s' (want e.g. 90d, or never)",
			    o->key_expiry);
	if (o->ipv4_prefix && (prefix_parse(o->ipv4_prefix, &v4) < 0 || v4.family != AF_INET))
		return fail(c, ADMIN_USAGE, "invalid --ipv4-prefix '%.48s'", o->ipv4_prefix);
	if (o->ipv6_prefix && (prefix_parse(o->ipv6_prefix, &v6) < 0 || v6.family != AF_INET6))
		return fail(c, ADMIN_USAGE, "invalid --ipv6-prefix '%.48s'", o->ipv6_prefix);
	ret = need_store(c);
	if (ret)
		return ret;
	if (o->key_expiry) {
		ret = store_set_key_expiry(c->st, expiry);
		if (ret < 0)
			return fail_store(c, ret, "cannot set the key expiry");
	}
	if (o->ipv4_prefix || o->ipv6_prefix) {
		ret = store_get_prefixes(c->st, &cur4, &cur6);
		if (ret < 0)
			return fail_store(c, ret, "cannot read the prefixes");
		ret = store_set_prefixes(c->st, o->ipv4_prefix ? &v4 : &cur4,
					 o->ipv6_prefix ? &v6 : &cur6);
		if (ret == -EINVAL)
			return fail(c, ADMIN_USAGE,
				    "prefix too small: IPv4 at most /30, IPv6 at most /96");
		if (ret == -EBUSY)
			return fail(c, ADMIN_ERROR,
				    "nodes already have addresses in %s: the prefixes can only be "
				    "changed before the first node joins",
				    store_path(c->st));
		if (ret < 0)
			return fail_store(c, ret, "cannot set the prefixes");
	}
	return config_show(c);
}

/* --- dispatch ----------------------------------------------------------- */

#define S O_STATE_DIR
static const struct command commands[] = {
	{NULL, "key", "", "print the control public key (created on first use)", S | O_JSON, 0,
	 cmd_key},
	{"authkey", "create", "[--reusable] [--expiry 24h|never] [--tag T]",
	 "create a pre-auth key and print it (only this once)",
	 S | O_JSON | O_REUSABLE | O_EXPIRY | O_TAG, 0, cmd_authkey_create},
	{"authkey", "list", "", "list auth keys (never their secrets)", S | O_JSON, 0,
	 cmd_authkey_list},
	{"authkey", "revoke", "ID|KEY", "revoke an auth key", S, 1, cmd_authkey_revoke},
	{NULL, "nodes", "", "list nodes", S | O_JSON, 0, cmd_nodes},
	{"node", "approve", "ID|NAME", "approve a node waiting to join", S, 1, cmd_node_approve},
	{"node", "remove", "ID|NAME", "remove a node: it is cut off at once", S, 1,
	 cmd_node_remove},
	{"node", "expire", "ID|NAME", "expire a node's key: it must log in again", S, 1,
	 cmd_node_expire},
	{"node", "rename", "ID|NAME NEWNAME", "rename a node", S, 2, cmd_node_rename},
	{"node", "quarantine", "ID|NAME on|off", "isolate a node, or stop isolating it", S, 2,
	 cmd_node_quarantine},
	{"relay", "add",
	 "--id N --region NAME --host H --port P --stun-port S --key KEY [--stun-alt H:P]",
	 "declare a relay", S | O_RELAY, 0, cmd_relay_add},
	{"relay", "remove", "ID", "remove a relay", S, 1, cmd_relay_remove},
	{NULL, "relays", "", "list relays", S | O_JSON, 0, cmd_relays},
	{NULL, "config", "[--key-expiry 180d|never] [--ipv4-prefix P] [--ipv6-prefix P]",
	 "show the settings, or change them (prefixes: before the first node)",
	 S | O_JSON | O_CONFIG, 0, cmd_config},
};
#undef S
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void command_usage(FILE *f, const struct command *cmd)
{
	fprintf(f, "Usage: knit-control %s%s%s %s%s[--state-dir DIR]%s\n  %s\n",
		cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->name, cmd->args,
		*cmd->args ? " " : "", cmd->opts & O_JSON ? " [--json]" : "", cmd->what);
	fprintf(f, "  --state-dir DIR  where control.db and control.key are (default %s)\n",
		CONTROL_DEFAULT_STATE_DIR);
	if (cmd->opts & O_JSON)
		fprintf(f, "  --json           machine-readable output (see docs/control.md)\n");
}

void admin_usage(FILE *f)
{
	char line[128];

	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *cmd = &commands[i];

		snprintf(line, sizeof(line), "%s%s%s %s", cmd->group ? cmd->group : "",
			 cmd->group ? " " : "", cmd->name, cmd->args);
		if (strlen(line) > 34)
			fprintf(f, "  %s\n  %-34s %s\n", line, "", cmd->what);
		else
			fprintf(f, "  %-34s %s\n", line, cmd->what);
	}
}

static void group_usage(FILE *f, const char *group)
{
	fprintf(f, "Usage: knit-control %s COMMAND ... [--state-dir DIR]\n", group);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].group && !strcmp(commands[i].group, group))
			fprintf(f, "  %s %s %s\n      %s\n", group, commands[i].name,
				commands[i].args, commands[i].what);
}

bool admin_has_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(name, commands[i].group ? commands[i].group : commands[i].name))
			return true;
	return false;
}

/* Fills o from args; returns 0 or an exit status for a usage error. */
static int parse_opts(struct ctx *c, const struct command *cmd, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		const struct optdef *d = NULL;
		size_t nlen;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			c->o.help = true;
			return 0;
		}
		if (strncmp(a, "--", 2) || !strcmp(a, "--")) {
			if (c->o.npos >= cmd->npos)
				return fail(c, ADMIN_USAGE,
					    "unexpected argument '%.40s' (see --help)", a);
			c->o.pos[c->o.npos++] = a;
			continue;
		}
		eq = strchr(a, '=');
		nlen = eq ? (size_t)(eq - a) : strlen(a);
		for (size_t k = 0; k < sizeof(optdefs) / sizeof(optdefs[0]); k++)
			if (strlen(optdefs[k].name) == nlen && !strncmp(a, optdefs[k].name, nlen) &&
			    (cmd->opts & optdefs[k].bit))
				d = &optdefs[k];
		if (!d)
			return fail(c, ADMIN_USAGE, "unknown option '%.*s' (see --help)", (int)nlen,
				    a);
		if (d->is_flag) {
			if (eq)
				return fail(c, ADMIN_USAGE, "%s takes no value", d->name);
			*(bool *)((char *)&c->o + d->off) = true;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return fail(c, ADMIN_USAGE, "%s needs a value", d->name);
		*(const char **)((char *)&c->o + d->off) = val;
	}
	if (c->o.npos < cmd->npos)
		return fail(c, ADMIN_USAGE, "%s%s%s needs %s (see --help)",
			    cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->name,
			    cmd->args);
	if (!*c->o.state_dir)
		return fail(c, ADMIN_USAGE, "--state-dir must not be empty");
	return 0;
}

static const struct command *find_command(const char *group, const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *cmd = &commands[i];

		if (cmd->group ? group && name && !strcmp(cmd->group, group) &&
					 !strcmp(cmd->name, name)
			       : !strcmp(cmd->name, group))
			return cmd;
	}
	return NULL;
}

int admin_run(int argc, char **argv, FILE *out, FILE *err)
{
	struct ctx c = {.out = out, .err = err};
	const struct command *cmd;
	int ret, skip;

	c.o.state_dir = CONTROL_DEFAULT_STATE_DIR;
	if (argc < 1)
		return fail(&c, ADMIN_USAGE, "no command (see knit-control --help)");
	cmd = find_command(argv[0], argc > 1 ? argv[1] : NULL);
	if (!cmd) {
		if (!admin_has_command(argv[0]))
			return fail(&c, ADMIN_USAGE,
				    "unknown command '%.40s' (see knit-control "
				    "--help)",
				    argv[0]);
		if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			group_usage(out, argv[0]);
			return ADMIN_OK;
		}
		group_usage(err, argv[0]);
		return ADMIN_USAGE;
	}
	skip = cmd->group ? 2 : 1;
	ret = parse_opts(&c, cmd, argc - skip, argv + skip);
	if (ret)
		return ret;
	if (c.o.help) {
		command_usage(out, cmd);
		return ADMIN_OK;
	}
	ret = cmd->fn(&c);
	store_close(c.st);
	if (fflush(out) != 0 && ret == ADMIN_OK)
		ret = fail(&c, ADMIN_ERROR, "cannot write the output");
	return ret;
}
