/* SPDX-License-Identifier: MIT */
/*
 * knit-control's store: nodes, auth keys, relays, settings and a change log,
 * in SQLite (DIR/control.db, WAL mode).  The server (`knit-control serve`) and
 * the admin commands each open their own connection; the admin commands write
 * directly and the server notices by polling store_data_version() and reading
 * store_changes_since().
 *
 * Every function returns 0 or a negative errno:
 *   -ENOENT  no such node / auth key / relay
 *   -EEXIST  a unique value (name, node key, relay id or key) is taken
 *   -EINVAL  a bad argument (name, prefix, port, ...)
 *   -EACCES  registration refused (see *why)
 *   -ENOSPC  the address prefix is full
 *   -EBUSY   the database stayed locked longer than the busy timeout
 *   -EIO     any other SQLite failure (logged once, here)
 *
 * Times are Unix seconds (wall clock: they are persisted).  A struct store is
 * one SQLite connection: use it from one thread at a time.
 */
#ifndef KNIT_CONTROL_STORE_H
#define KNIT_CONTROL_STORE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define STORE_DB_NAME		 "control.db"
#define STORE_NAME_LEN		 64  /* node names: [a-z0-9-], 1..63 chars, + NUL */
#define STORE_HOSTNAME_MAX	 255 /* longest hostname accepted at registration */
#define STORE_REGION_LEN	 64  /* relay region names, 1..63 chars, + NUL */
#define STORE_HOST_LEN		 256 /* relay host names, 1..253 chars, + NUL */
#define STORE_TAG_LEN		 64  /* auth key tags, 0..63 chars, + NUL */
#define STORE_AUTHKEY_STRLEN	 96  /* "knit-auth-<id>-<48 hex>" + NUL, with room */
#define STORE_DEFAULT_KEY_EXPIRY (180LL * 24 * 3600)
#define STORE_DEFAULT_V4_PREFIX	 "100.64.0.0/10"

struct store;

struct store_node {
	int64_t id; /* > 0, never reused */
	char name[STORE_NAME_LEN];
	uint8_t node_key[32];
	uint8_t disco_key[32];	     /* all zero until the node reports one */
	char ipv4[INET_ADDRSTRLEN];  /* "100.64.0.1" */
	char ipv6[INET6_ADDRSTRLEN]; /* "fd12:3456:789a::6440:1" */
	int64_t created;
	int64_t expires;    /* node key expiry; 0: never */
	int64_t last_seen;  /* 0: never */
	int64_t authkey_id; /* the auth key it registered with; 0: approved by hand */
	bool approved;
	bool quarantined;
};

struct store_authkey {
	int64_t id;
	char prefix[32]; /* "knit-auth-<id>": the public part, safe to show */
	char tag[STORE_TAG_LEN];
	int64_t created;
	int64_t expires; /* 0: never */
	int64_t used;	 /* nodes registered with it */
	bool reusable;
	bool revoked;
};

struct store_relay {
	int64_t id; /* chosen by the admin, 1..65535 */
	char region[STORE_REGION_LEN];
	char host[STORE_HOST_LEN];
	uint16_t port;
	uint16_t stun_port;
	/* "host:port" of the STUN server's second address and port (RFC 5780,
	 * knit-relay --stun-alt); "" when none. */
	char stun_alt[STORE_HOST_LEN + 8];
	uint8_t key[32];
};

enum store_change_kind {
	STORE_NODE_ADDED = 1,
	STORE_NODE_CHANGED,
	STORE_NODE_REMOVED,
	STORE_RELAY_CHANGED, /* a relay was added or removed; node_id is the relay id */
};

struct store_change {
	int64_t seq; /* strictly increasing, never reused */
	int64_t node_id;
	enum store_change_kind kind;
	int64_t at;
};

/* Callbacks for listings: return 0 to go on, non-zero to stop (that value is
 * then returned by the listing function).  A callback must not call into the
 * same struct store (copy what it needs; the structs are plain values). */
typedef int (*store_node_cb)(const struct store_node *node, void *arg);
typedef int (*store_authkey_cb)(const struct store_authkey *key, void *arg);
typedef int (*store_relay_cb)(const struct store_relay *relay, void *arg);
typedef int (*store_change_cb)(const struct store_change *change, void *arg);

/* --- opening ------------------------------------------------------------ */

/*
 * Opens DIR/control.db, creating DIR (mode 0700) and the database if missing,
 * and migrates the schema to the newest version.  A database written by a
 * newer knit-control is refused (-EPROTO) without being touched.  On first
 * creation the IPv4 prefix defaults to 100.64.0.0/10 and the IPv6 prefix is
 * a random ULA /48 (RFC 4193).  Errors are logged with the path.
 */
int store_open(struct store **out, const char *state_dir);
void store_close(struct store *st);
/* The database file's path, for messages. */
const char *store_path(const struct store *st);
/* The schema version this code writes, and the one the file has. */
int store_schema_version_known(void);
int store_schema_version(struct store *st, int *version);

/* Tests only: pretend the wall clock says now (0: the real clock again). */
void store_set_now(struct store *st, int64_t now);
int64_t store_now(const struct store *st);

/* --- settings ----------------------------------------------------------- */

/* Node key lifetime for new registrations and re-logins; 0: never expire. */
int store_get_key_expiry(struct store *st, int64_t *seconds);
int store_set_key_expiry(struct store *st, int64_t seconds);

/*
 * Overlay prefixes.  IPv4: at most /30 (at least 4 addresses); IPv6: at most
 * /96 (a node's IPv6 address is the prefix with its IPv4 address in the low
 * 32 bits).  Changing them is refused with -EBUSY once any node exists.
 */
int store_get_prefixes(struct store *st, struct ip_prefix *v4, struct ip_prefix *v6);
int store_set_prefixes(struct store *st, const struct ip_prefix *v4, const struct ip_prefix *v6);

/* --- nodes -------------------------------------------------------------- */

/*
 * A node logs in with its node key, hostname and, optionally, an auth key.
 *  - Known key: returns that node, addresses unchanged.  If the node is
 *    expired (or not yet approved) and authkey is a valid key, the key is
 *    spent, the node approved and its expiry extended; an invalid authkey is
 *    refused.  Otherwise the authkey is ignored (not spent).  The caller
 *    checks out->expires / approved / quarantined.
 *  - New key with a valid authkey: a new approved node.
 *  - New key without authkey (NULL or ""): a new node, not approved (waits
 *    for `knit-control node approve`).
 *  - An invalid authkey: -EACCES and *why is one of "auth key is malformed",
 *    "auth key is unknown", "auth key is revoked", "auth key is expired",
 *    "auth key was already used" (static strings).
 * hostname is sanitized into a unique name; NULL or empty gives "node".
 */
int store_node_register(struct store *st, const uint8_t node_key[32], const char *hostname,
			const char *authkey, struct store_node *out, const char **why);
int store_node_get(struct store *st, int64_t id, struct store_node *out);
int store_node_get_by_key(struct store *st, const uint8_t node_key[32], struct store_node *out);
int store_node_get_by_name(struct store *st, const char *name, struct store_node *out);
/* In id order. */
int store_node_list(struct store *st, store_node_cb cb, void *arg);
/* True when the node's key has expired at time now. */
bool store_node_expired(const struct store_node *node, int64_t now);

/* Each of these logs a node-changed change (remove: node-removed) in the
 * same transaction; -ENOENT when the node does not exist.  Setting a value
 * a node already has changes nothing and logs nothing. */
int store_node_set_approved(struct store *st, int64_t id, bool approved);
int store_node_set_quarantined(struct store *st, int64_t id, bool quarantined);
/* name must already be valid ([a-z0-9-], 1..63, no leading/trailing '-'):
 * -EINVAL otherwise, -EEXIST when another node has it. */
int store_node_rename(struct store *st, int64_t id, const char *name);
/* expires: Unix time, 0 for never.  `node expire` is store_node_expire():
 * expires = now. */
int store_node_set_expires(struct store *st, int64_t id, int64_t expires);
int store_node_expire(struct store *st, int64_t id);
int store_node_set_disco_key(struct store *st, int64_t id, const uint8_t disco_key[32]);
int store_node_remove(struct store *st, int64_t id);
/* Logs no change (it would wake every peer for nothing). */
int store_node_set_last_seen(struct store *st, int64_t id, int64_t when);

/* Name rules, shared with the CLI. */
bool store_name_valid(const char *name);
/* Lowercases, maps anything outside [a-z0-9-] to '-', collapses and trims
 * '-', truncates to 63; an empty result becomes "node".  out: STORE_NAME_LEN. */
void store_name_sanitize(const char *hostname, char out[STORE_NAME_LEN]);

/* --- auth keys ---------------------------------------------------------- */

/*
 * Creates an auth key valid for ttl seconds (0: never expires).  The whole
 * key ("knit-auth-<id>-<secret>") is written to secret once and only a hash of
 * it is stored.  tag may be NULL; at most 63 chars of [A-Za-z0-9:._-].
 */
int store_authkey_create(struct store *st, bool reusable, int64_t ttl, const char *tag,
			 struct store_authkey *out, char secret[STORE_AUTHKEY_STRLEN]);
/* The tag rule of store_authkey_create(). */
bool store_tag_valid(const char *tag);
int store_authkey_get(struct store *st, int64_t id, struct store_authkey *out);
/* Accepts an id ("7"), a prefix ("knit-auth-7") or a whole key; -EINVAL for
 * anything else.  Does not check the secret (only the admin calls it). */
int store_authkey_parse_id(const char *s, int64_t *id);
int store_authkey_list(struct store *st, store_authkey_cb cb, void *arg);
int store_authkey_revoke(struct store *st, int64_t id);

/* --- relays ------------------------------------------------------------- */

/* -EEXIST if the id or the key is taken, -EINVAL for a bad field.  Logs a
 * relay-changed change. */
int store_relay_add(struct store *st, const struct store_relay *relay);
int store_relay_remove(struct store *st, int64_t id);
int store_relay_get(struct store *st, int64_t id, struct store_relay *out);
int store_relay_get_by_key(struct store *st, const uint8_t key[32], struct store_relay *out);
int store_relay_list(struct store *st, store_relay_cb cb, void *arg);

/* --- changes ------------------------------------------------------------ */

/* Every change with seq > after, in order.  *last (may be NULL) receives the
 * seq of the last one delivered, or after if none. */
int store_changes_since(struct store *st, int64_t after, store_change_cb cb, void *arg,
			int64_t *last);
/* The newest seq (0 if the log is empty): where a freshly started server begins. */
int store_changes_last(struct store *st, int64_t *seq);
/* Deletes changes with seq <= upto. */
int store_prune_changes(struct store *st, int64_t upto);
/* PRAGMA data_version: changes when another connection committed a write
 * (not when this one did).  Cheap: no disk access. */
int store_data_version(struct store *st, int64_t *version);
const char *store_change_kind_name(enum store_change_kind kind);

#endif
