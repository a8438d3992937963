// SPDX-License-Identifier: MIT
/*
 * knit-control's store in SQLite (see store.h).  One connection per struct
 * store; statements are prepared once, cached, and always bound.  Every
 * mutation runs in a BEGIN IMMEDIATE transaction (so two processes never
 * deadlock upgrading a read lock) that also appends to the change log.
 */
#include "knit-control/store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control/netmap.h"
#include "crypto/crypto.h"
#include "lib/encoding.h"
#include "lib/log.h"

#define BUSY_TIMEOUT_MS	   5000
#define AUTHKEY_PREFIX	   "knit-auth-"
#define AUTHKEY_SECRET_LEN 24 /* bytes; 48 hex characters in the key */
#define AUTHKEY_HASH_KEY   "knit-control authkey v1"
#define QUAD100		   0x64646464u /* 100.100.100.100: reserved, never a node's */

/*
 * The schema, one migration per version, applied in order and never edited
 * once released: a database at version N runs migrations[N..] only.
 */
static const char *const migrations[] = {
	/* 1: nodes, auth keys, relays, settings */
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value NOT NULL);"
	"CREATE TABLE authkeys ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),"
	"  tag TEXT NOT NULL DEFAULT '',"
	"  reusable INTEGER NOT NULL,"
	"  revoked INTEGER NOT NULL DEFAULT 0,"
	"  used INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL);"
	"CREATE TABLE nodes ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  node_key BLOB NOT NULL UNIQUE CHECK (length(node_key) = 32),"
	"  disco_key BLOB CHECK (disco_key IS NULL OR length(disco_key) = 32),"
	"  ipv4 TEXT NOT NULL UNIQUE,"
	"  ipv6 TEXT NOT NULL UNIQUE,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  approved INTEGER NOT NULL,"
	"  quarantined INTEGER NOT NULL DEFAULT 0,"
	"  last_seen INTEGER NOT NULL DEFAULT 0,"
	"  authkey_id INTEGER REFERENCES authkeys (id));"
	"CREATE TABLE relays ("
	"  id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65535),"
	"  region TEXT NOT NULL,"
	"  host TEXT NOT NULL,"
	"  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),"
	"  stun_port INTEGER NOT NULL CHECK (stun_port BETWEEN 1 AND 65535),"
	"  key BLOB NOT NULL UNIQUE CHECK (length(key) = 32));",
	/* 2: the change log the server follows, and name suffix counters (so
	 * that the 1000th "laptop" costs one lookup, not 999) */
	"CREATE TABLE changes ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  node_id INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  at INTEGER NOT NULL);"
	"CREATE TABLE name_suffixes (base TEXT PRIMARY KEY, next INTEGER NOT NULL);",
	/* 3: a relay's STUN alternate address and port, "" for none */
	"ALTER TABLE relays ADD COLUMN stun_alt TEXT NOT NULL DEFAULT '';",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define NODE_COLS                                                                                  \
	"id, name, node_key, disco_key, ipv4, ipv6, created, expires, last_seen, authkey_id, "     \
	"approved, quarantined"
#define AUTHKEY_COLS "id, tag, created, expires, used, reusable, revoked"
#define RELAY_COLS   "id, region, host, port, stun_port, key, stun_alt"

enum sql_id {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_DATA_VERSION,
	Q_SETTING_GET,
	Q_SETTING_SET,
	Q_NODE_BY_ID,
	Q_NODE_BY_KEY,
	Q_NODE_BY_NAME,
	Q_NODE_LIST,
	Q_NODE_COUNT,
	Q_NODE_NAME_TAKEN,
	Q_NODE_IPV4_TAKEN,
	Q_NODE_INSERT,
	Q_NODE_SET_APPROVED,
	Q_NODE_SET_QUARANTINED,
	Q_NODE_SET_NAME,
	Q_NODE_SET_EXPIRES,
	Q_NODE_SET_DISCO,
	Q_NODE_SET_LAST_SEEN,
	Q_NODE_RELOGIN,
	Q_NODE_DELETE,
	Q_SUFFIX_GET,
	Q_SUFFIX_SET,
	Q_AUTHKEY_INSERT,
	Q_AUTHKEY_BY_ID,
	Q_AUTHKEY_HASH,
	Q_AUTHKEY_LIST,
	Q_AUTHKEY_USE,
	Q_AUTHKEY_REVOKE,
	Q_RELAY_INSERT,
	Q_RELAY_DELETE,
	Q_RELAY_BY_ID,
	Q_RELAY_BY_KEY,
	Q_RELAY_LIST,
	Q_CHANGE_INSERT,
	Q_CHANGE_SINCE,
	Q_CHANGE_LAST,
	Q_CHANGE_PRUNE,
	Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_DATA_VERSION] = "PRAGMA data_version",
	[Q_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
	[Q_SETTING_SET] = "INSERT INTO settings (key, value) VALUES (?1, ?2) "
			  "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[Q_NODE_BY_ID] = "SELECT " NODE_COLS " FROM nodes WHERE id = ?1",
	[Q_NODE_BY_KEY] = "SELECT " NODE_COLS " FROM nodes WHERE node_key = ?1",
	[Q_NODE_BY_NAME] = "SELECT " NODE_COLS " FROM nodes WHERE name = ?1",
	[Q_NODE_LIST] = "SELECT " NODE_COLS " FROM nodes ORDER BY id",
	[Q_NODE_COUNT] = "SELECT EXISTS (SELECT 1 FROM nodes)",
	[Q_NODE_NAME_TAKEN] = "SELECT id FROM nodes WHERE name = ?1",
	[Q_NODE_IPV4_TAKEN] = "SELECT 1 FROM nodes WHERE ipv4 = ?1",
	[Q_NODE_INSERT] = "INSERT INTO nodes (name, node_key, ipv4, ipv6, created, expires, "
			  "approved, authkey_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[Q_NODE_SET_APPROVED] =
		"UPDATE nodes SET approved = ?1 WHERE id = ?2 AND approved IS NOT ?1",
	[Q_NODE_SET_QUARANTINED] = "UPDATE nodes SET quarantined = ?1 WHERE id = ?2 "
				   "AND quarantined IS NOT ?1",
	[Q_NODE_SET_NAME] = "UPDATE nodes SET name = ?1 WHERE id = ?2 AND name IS NOT ?1",
	[Q_NODE_SET_EXPIRES] = "UPDATE nodes SET expires = ?1 WHERE id = ?2 AND expires IS NOT ?1",
	[Q_NODE_SET_DISCO] = "UPDATE nodes SET disco_key = ?1 WHERE id = ?2 "
			     "AND disco_key IS NOT ?1",
	[Q_NODE_SET_LAST_SEEN] = "UPDATE nodes SET last_seen = ?1 WHERE id = ?2",
	[Q_NODE_RELOGIN] = "UPDATE nodes SET approved = 1, expires = ?1, authkey_id = ?2 "
			   "WHERE id = ?3",
	[Q_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?1",
	[Q_SUFFIX_GET] = "SELECT next FROM name_suffixes WHERE base = ?1",
	[Q_SUFFIX_SET] = "INSERT INTO name_suffixes (base, next) VALUES (?1, ?2) "
			 "ON CONFLICT (base) DO UPDATE SET next = excluded.next",
	[Q_AUTHKEY_INSERT] = "INSERT INTO authkeys (hash, tag, reusable, created, expires) "
			     "VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_AUTHKEY_BY_ID] = "SELECT " AUTHKEY_COLS " FROM authkeys WHERE id = ?1",
	[Q_AUTHKEY_HASH] = "SELECT hash FROM authkeys WHERE id = ?1",
	[Q_AUTHKEY_LIST] = "SELECT " AUTHKEY_COLS " FROM authkeys ORDER BY id",
	[Q_AUTHKEY_USE] = "UPDATE authkeys SET used = used + 1 WHERE id = ?1",
	[Q_AUTHKEY_REVOKE] = "UPDATE authkeys SET revoked = 1 WHERE id = ?1",
	[Q_RELAY_INSERT] =
		"INSERT INTO relays (" RELAY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_RELAY_DELETE] = "DELETE FROM relays WHERE id = ?1",
	[Q_RELAY_BY_ID] = "SELECT " RELAY_COLS " FROM relays WHERE id = ?1",
	[Q_RELAY_BY_KEY] = "SELECT " RELAY_COLS " FROM relays WHERE key = ?1",
	[Q_RELAY_LIST] = "SELECT " RELAY_COLS " FROM relays ORDER BY id",
	[Q_CHANGE_INSERT] = "INSERT INTO changes (node_id, kind, at) VALUES (?1, ?2, ?3)",
	[Q_CHANGE_SINCE] = "SELECT seq, node_id, kind, at FROM changes WHERE seq > ?1 ORDER BY seq",
	[Q_CHANGE_LAST] = "SELECT COALESCE(MAX(seq), 0) FROM changes",
	[Q_CHANGE_PRUNE] = "DELETE FROM changes WHERE seq <= ?1",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[Q_COUNT];
	int64_t fake_now;
	char path[PATH_MAX];
};

static const char *const change_names[] = {
	[STORE_NODE_ADDED] = "node-added",
	[STORE_NODE_CHANGED] = "node-changed",
	[STORE_NODE_REMOVED] = "node-removed",
	[STORE_RELAY_CHANGED] = "relay-changed",
};

const char *store_change_kind_name(enum store_change_kind kind)
{
	if (kind < STORE_NODE_ADDED || kind > STORE_RELAY_CHANGED)
		return "unknown";
	return change_names[kind];
}

const char *store_path(const struct store *st)
{
	return st->path;
}

int store_schema_version_known(void)
{
	return SCHEMA_VERSION;
}

void store_set_now(struct store *st, int64_t now)
{
	st->fake_now = now;
}

int64_t store_now(const struct store *st)
{
	return st->fake_now ? st->fake_now : (int64_t)time(NULL);
}

/* --- SQLite plumbing ---------------------------------------------------- */

/* Maps an SQLite result to an errno, logging what is not the caller's to
 * explain (constraint violations and locks are). */
static int sql_err(struct store *st, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_error("database stayed locked path=%s during=%s", st->path, what);
		return -EBUSY;
	case SQLITE_FULL:
		log_error("disk full path=%s during=%s", st->path, what);
		return -ENOSPC;
	default:
		log_error("database error path=%s during=%s error=%s", st->path, what,
			  sqlite3_errmsg(st->db));
		return -EIO;
	}
}

/* The cached statement for id, reset and with its bindings cleared. */
static sqlite3_stmt *q(struct store *st, enum sql_id id)
{
	sqlite3_stmt *s = st->stmts[id];
	int rc;

	if (!s) {
		rc = sqlite3_prepare_v3(st->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
					NULL);
		if (rc != SQLITE_OK) {
			log_error("cannot prepare statement path=%s sql=\"%s\" error=%s", st->path,
				  sql_text[id], sqlite3_errmsg(st->db));
			return NULL;
		}
		st->stmts[id] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
static int run(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(st, rc, what);
}

/* Runs a statement expected to give one integer: 0 and *out, -ENOENT for no row. */
static int run_int(struct store *st, sqlite3_stmt *s, const char *what, int64_t *out)
{
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, rc, what);
}

static int tx_begin(struct store *st)
{
	return run(st, q(st, Q_BEGIN), "begin");
}

static int tx_commit(struct store *st)
{
	int ret = run(st, q(st, Q_COMMIT), "commit");

	if (ret < 0 && !sqlite3_get_autocommit(st->db))
		run(st, q(st, Q_ROLLBACK), "rollback");
	return ret;
}

static void tx_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		run(st, q(st, Q_ROLLBACK), "rollback");
}

/* Ends a transaction: commit on success, roll back on error. */
static int tx_end(struct store *st, int ret)
{
	if (ret < 0) {
		tx_rollback(st);
		return ret;
	}
	return tx_commit(st);
}

static int log_change(struct store *st, int64_t id, enum store_change_kind kind)
{
	sqlite3_stmt *s = q(st, Q_CHANGE_INSERT);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, change_names[kind], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, store_now(st));
	return run(st, s, "logging a change");
}

/* --- settings ----------------------------------------------------------- */

static int setting_get_int(struct store *st, const char *key, int64_t *out)
{
	sqlite3_stmt *s = q(st, Q_SETTING_GET);

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	return run_int(st, s, key, out);
}

static int setting_get_text(struct store *st, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *s = q(st, Q_SETTING_GET);
	const unsigned char *text;
	int rc, ret = -ENOENT;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		text = sqlite3_column_text(s, 0);
		ret = text && strlen((const char *)text) < len ? 0 : -EINVAL;
		if (!ret)
			strcpy(buf, (const char *)text);
	} else if (rc != SQLITE_DONE) {
		ret = sql_err(st, rc, key);
	}
	sqlite3_reset(s);
	return ret;
}

static int setting_set_int(struct store *st, const char *key, int64_t v)
{
	sqlite3_stmt *s = q(st, Q_SETTING_SET);

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, v);
	return run(st, s, key);
}

static int setting_set_text(struct store *st, const char *key, const char *v)
{
	sqlite3_stmt *s = q(st, Q_SETTING_SET);

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, v, -1, SQLITE_STATIC);
	return run(st, s, key);
}

int store_get_key_expiry(struct store *st, int64_t *seconds)
{
	int ret = setting_get_int(st, "key_expiry", seconds);

	if (ret == -ENOENT) {
		*seconds = STORE_DEFAULT_KEY_EXPIRY;
		return 0;
	}
	return ret;
}

int store_set_key_expiry(struct store *st, int64_t seconds)
{
	if (seconds < 0 || seconds > 100LL * 366 * 24 * 3600)
		return -EINVAL;
	return setting_set_int(st, "key_expiry", seconds);
}

static bool v4_prefix_ok(const struct ip_prefix *p)
{
	return p->family == AF_INET && p->bits >= 1 && p->bits <= 30;
}

static bool v6_prefix_ok(const struct ip_prefix *p)
{
	return p->family == AF_INET6 && p->bits >= 8 && p->bits <= 96;
}

int store_get_prefixes(struct store *st, struct ip_prefix *v4, struct ip_prefix *v6)
{
	char text[PREFIX_STRLEN];
	int ret;

	ret = setting_get_text(st, "ipv4_prefix", text, sizeof(text));
	if (!ret)
		ret = prefix_parse(text, v4);
	if (!ret && !v4_prefix_ok(v4))
		ret = -EINVAL;
	if (!ret)
		ret = setting_get_text(st, "ipv6_prefix", text, sizeof(text));
	if (!ret)
		ret = prefix_parse(text, v6);
	if (!ret && !v6_prefix_ok(v6))
		ret = -EINVAL;
	if (ret == -EINVAL)
		log_error("bad overlay prefix in database path=%s", st->path);
	return ret;
}

static int prefixes_write(struct store *st, const struct ip_prefix *v4, const struct ip_prefix *v6)
{
	char t4[PREFIX_STRLEN], t6[PREFIX_STRLEN];
	struct ip_prefix m4 = *v4, m6 = *v6;
	int ret;

	prefix_mask(&m4);
	prefix_mask(&m6);
	if (prefix_format(&m4, t4, sizeof(t4)) < 0 || prefix_format(&m6, t6, sizeof(t6)) < 0)
		return -EINVAL;
	ret = setting_set_text(st, "ipv4_prefix", t4);
	if (!ret)
		ret = setting_set_text(st, "ipv6_prefix", t6);
	if (!ret)
		ret = setting_set_int(st, "next_ipv4", 1);
	return ret;
}

int store_set_prefixes(struct store *st, const struct ip_prefix *v4, const struct ip_prefix *v6)
{
	int64_t any;
	int ret;

	if (!v4_prefix_ok(v4) || !v6_prefix_ok(v6))
		return -EINVAL;
	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	ret = run_int(st, q(st, Q_NODE_COUNT), "counting nodes", &any);
	if (!ret && any)
		ret = -EBUSY; /* addresses already handed out would fall outside */
	if (!ret)
		ret = prefixes_write(st, v4, v6);
	return tx_end(st, ret);
}

/* RFC 4193: fd00::/8, then a 40-bit random global ID: fdxx:xxxx:xxxx::/48. */
static void random_ula(struct ip_prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	p->bits = 48;
	p->addr.bytes[0] = 0xfd;
	random_bytes(&p->addr.bytes[1], 5);
}

static int settings_init(struct store *st)
{
	struct ip_prefix v4, v6;
	int ret;

	if (prefix_parse(STORE_DEFAULT_V4_PREFIX, &v4) < 0)
		return -EINVAL;
	random_ula(&v6);
	ret = prefixes_write(st, &v4, &v6);
	if (!ret)
		ret = setting_set_int(st, "key_expiry", STORE_DEFAULT_KEY_EXPIRY);
	return ret;
}

/* --- opening ------------------------------------------------------------ */

static int pragma_int(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int ret;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return sql_err(st, sqlite3_errcode(st->db), sql);
	ret = run_int(st, s, sql, out);
	sqlite3_finalize(s);
	return ret;
}

int store_schema_version(struct store *st, int *version)
{
	int64_t v;
	int ret = pragma_int(st, "PRAGMA user_version", &v);

	if (!ret)
		*version = (int)v;
	return ret;
}

static int refuse_newer(struct store *st, int version)
{
	log_error("database was written by a newer knit-control path=%s schema_version=%d "
		  "known=%d",
		  st->path, version, SCHEMA_VERSION);
	return -EPROTO;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. */
static int migrate(struct store *st)
{
	char sql[64], *err = NULL;
	int version = 0, ret;

	ret = store_schema_version(st, &version);
	if (ret < 0)
		return ret;
	if (version > SCHEMA_VERSION)
		return refuse_newer(st, version);
	if (version == SCHEMA_VERSION)
		return 0;
	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	/* Another process may have migrated between our look and our lock. */
	ret = store_schema_version(st, &version);
	if (!ret && version > SCHEMA_VERSION)
		ret = refuse_newer(st, version);
	for (int v = version; !ret && v < SCHEMA_VERSION; v++) {
		if (sqlite3_exec(st->db, migrations[v], NULL, NULL, &err) != SQLITE_OK) {
			log_error("schema migration failed path=%s to_version=%d error=%s",
				  st->path, v + 1, err ? err : "?");
			ret = -EIO;
		}
		sqlite3_free(err);
		err = NULL;
	}
	if (!ret && version == 0)
		ret = settings_init(st);
	if (!ret && version != SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			ret = sql_err(st, sqlite3_errcode(st->db), "setting user_version");
	}
	if (!ret && version < SCHEMA_VERSION)
		log_info("database schema migrated path=%s from=%d to=%d", st->path, version,
			 SCHEMA_VERSION);
	return tx_end(st, ret);
}

/* The directory (0700) and an empty database file (0600: SQLite gives its
 * -wal and -shm files the mode of the database). */
static int prepare_files(const char *dir, const char *path)
{
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int ret = -errno;

		log_error("cannot create state directory path=%s error=%s", dir, strerror(-ret));
		return ret;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int ret = -errno;

		log_error("cannot open database path=%s error=%s", path, strerror(-ret));
		return ret;
	}
	close(fd);
	return 0;
}

static int configure(struct store *st)
{
	int64_t ignored;
	char mode[16] = "";
	sqlite3_stmt *s;
	int ret;

	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(st->db, 1);
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK)
		return sql_err(st, sqlite3_errcode(st->db), "journal_mode");
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	if (strcmp(mode, "wal")) {
		log_error("cannot use WAL mode path=%s journal_mode=%s", st->path, mode);
		return -EIO;
	}
	/* NORMAL is safe in WAL mode: a crash of the process loses nothing, a
	 * power cut at most the last commits; it saves an fsync per write. */
	ret = pragma_int(st, "PRAGMA synchronous = NORMAL", &ignored);
	if (ret == -ENOENT)
		ret = 0;
	if (!ret)
		ret = pragma_int(st, "PRAGMA foreign_keys = ON", &ignored);
	return ret == -ENOENT ? 0 : ret;
}

int store_open(struct store **out, const char *state_dir)
{
	struct store *st;
	int rc, ret;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	if ((size_t)snprintf(st->path, sizeof(st->path), "%s/%s", state_dir, STORE_DB_NAME) >=
	    sizeof(st->path)) {
		free(st);
		return -ENAMETOOLONG;
	}
	ret = prepare_files(state_dir, st->path);
	if (ret < 0) {
		free(st);
		return ret;
	}
	rc = sqlite3_open_v2(st->path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open database path=%s error=%s", st->path,
			  st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		store_close(st);
		return -EIO;
	}
	ret = configure(st);
	if (!ret)
		ret = migrate(st);
	if (ret < 0) {
		store_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->stmts[i]);
	sqlite3_close(st->db);
	free(st);
}

/* --- names -------------------------------------------------------------- */

bool store_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= STORE_NAME_LEN || name[0] == '-' || name[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '-'))
			return false;
	return true;
}

void store_name_sanitize(const char *hostname, char out[STORE_NAME_LEN])
{
	size_t n = 0;

	/* Up to the first dot: "laptop.example.com" is "laptop". */
	for (const char *p = hostname ? hostname : ""; *p && *p != '.' && n < STORE_NAME_LEN - 1;
	     p++) {
		char c = (char)tolower((unsigned char)*p);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (n == 0 || out[n - 1] == '-'))
			continue;
		out[n++] = c;
	}
	while (n > 0 && out[n - 1] == '-')
		n--;
	out[n] = '\0';
	if (n == 0)
		strcpy(out, "node");
}

/* 0: free, -EEXIST: taken by a node other than self (0: any). */
static int name_check(struct store *st, const char *name, int64_t self)
{
	sqlite3_stmt *s = q(st, Q_NODE_NAME_TAKEN);
	int64_t owner;
	int ret;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	ret = run_int(st, s, "looking up a name", &owner);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	return owner == self ? 0 : -EEXIST;
}

/* base, or base-N with the smallest N not yet tried for base (kept in
 * name_suffixes, so that many equal hostnames cost O(1) each). */
static int name_allocate(struct store *st, const char *hostname, char out[STORE_NAME_LEN])
{
	char base[STORE_NAME_LEN], suffix[24];
	int64_t next = 2;
	sqlite3_stmt *s;
	int ret;

	store_name_sanitize(hostname, base);
	ret = name_check(st, base, 0);
	if (ret != -EEXIST) {
		strcpy(out, base);
		return ret;
	}
	s = q(st, Q_SUFFIX_GET);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, base, -1, SQLITE_STATIC);
	ret = run_int(st, s, "reading a name suffix", &next);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (next < 2)
		next = 2;
	for (;; next++) {
		size_t slen = (size_t)snprintf(suffix, sizeof(suffix), "-%" PRId64, next);
		size_t blen = strlen(base);

		if (blen + slen >= STORE_NAME_LEN)
			blen = STORE_NAME_LEN - 1 - slen;
		while (blen > 0 && base[blen - 1] == '-')
			blen--;
		snprintf(out, STORE_NAME_LEN, "%.*s%s", (int)blen, base, suffix);
		ret = name_check(st, out, 0);
		if (ret != -EEXIST)
			break;
	}
	if (ret < 0)
		return ret;
	s = q(st, Q_SUFFIX_SET);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, base, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, next + 1);
	return run(st, s, "saving a name suffix");
}

/* --- addresses ---------------------------------------------------------- */

static bool v4_usable(uint32_t a)
{
	uint8_t last = a & 0xff;

	return last != 0 && last != 255 && a != QUAD100;
}

/*
 * The next free IPv4 address after the last one handed out (a counter in
 * settings), wrapping at the end of the prefix; each candidate costs one
 * index lookup, so a node costs O(log n) until the prefix is nearly full.
 */
static int addr_allocate(struct store *st, char v4out[INET_ADDRSTRLEN],
			 char v6out[INET6_ADDRSTRLEN])
{
	struct ip_prefix p4, p6;
	uint32_t base, size, a = 0;
	int64_t next, taken;
	struct in6_addr a6;
	struct in_addr a4;
	sqlite3_stmt *s;
	int ret;

	ret = store_get_prefixes(st, &p4, &p6);
	if (ret < 0)
		return ret;
	ret = setting_get_int(st, "next_ipv4", &next);
	if (ret == -ENOENT)
		next = 1, ret = 0;
	if (ret < 0)
		return ret;
	base = ntohl(p4.addr.v4.s_addr) & ~(uint32_t)((1ULL << (32 - p4.bits)) - 1);
	size = (uint32_t)(1ULL << (32 - p4.bits));
	for (uint32_t tries = 0;; tries++, next++) {
		if (tries >= size)
			return -ENOSPC;
		if (next < 1 || next >= (int64_t)size - 1)
			next = 1; /* neither the prefix's first nor its last address */
		a = base + (uint32_t)next;
		if (!v4_usable(a))
			continue;
		a4.s_addr = htonl(a);
		inet_ntop(AF_INET, &a4, v4out, INET_ADDRSTRLEN);
		s = q(st, Q_NODE_IPV4_TAKEN);
		if (!s)
			return -EIO;
		sqlite3_bind_text(s, 1, v4out, -1, SQLITE_STATIC);
		ret = run_int(st, s, "looking up an address", &taken);
		if (ret == -ENOENT)
			break;
		if (ret < 0)
			return ret;
	}
	/* The IPv6 address carries the IPv4 one in its low 32 bits, so it is
	 * unique whenever that is, and easy to read. */
	memcpy(&a6, &p6.addr.v6, sizeof(a6));
	for (int i = p6.bits; i < 128; i++)
		a6.s6_addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
	memcpy(&a6.s6_addr[12], &a4.s_addr, 4);
	inet_ntop(AF_INET6, &a6, v6out, INET6_ADDRSTRLEN);
	return setting_set_int(st, "next_ipv4", next + 1);
}

/* --- auth keys ---------------------------------------------------------- */

static void authkey_hash(uint8_t out[32], const char *secret_hex)
{
	blake2s(out, 32, (const uint8_t *)AUTHKEY_HASH_KEY, strlen(AUTHKEY_HASH_KEY),
		(const uint8_t *)secret_hex, strlen(secret_hex));
}

/* Parses a positive decimal id of at most 18 digits; the end in *end. */
static int parse_id(const char *s, int64_t *id, const char **end)
{
	int64_t v = 0;
	int n = 0;

	/* Count up to 19 digits, accumulate at most 18: no overflow. */
	for (; s[n] >= '0' && s[n] <= '9' && n < 19; n++)
		if (n < 18)
			v = v * 10 + (s[n] - '0');
	if (n == 0 || n > 18 || s[0] == '0' || v <= 0)
		return -EINVAL;
	*id = v;
	*end = s + n;
	return 0;
}

static bool is_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[len] == '\0';
}

/* "knit-auth-<id>-<48 hex>": the id and a pointer to the secret. */
static int authkey_split(const char *key, int64_t *id, const char **secret)
{
	const char *end;

	if (strncmp(key, AUTHKEY_PREFIX, strlen(AUTHKEY_PREFIX)))
		return -EINVAL;
	if (parse_id(key + strlen(AUTHKEY_PREFIX), id, &end) < 0 || *end != '-')
		return -EINVAL;
	if (strlen(end + 1) != 2 * AUTHKEY_SECRET_LEN ||
	    !is_lower_hex(end + 1, 2 * AUTHKEY_SECRET_LEN))
		return -EINVAL;
	*secret = end + 1;
	return 0;
}

int store_authkey_parse_id(const char *s, int64_t *id)
{
	const char *end, *secret;

	if (!strncmp(s, AUTHKEY_PREFIX, strlen(AUTHKEY_PREFIX))) {
		if (authkey_split(s, id, &secret) == 0)
			return 0;
		s += strlen(AUTHKEY_PREFIX);
	}
	if (parse_id(s, id, &end) < 0 || *end)
		return -EINVAL;
	return 0;
}

static void authkey_row(sqlite3_stmt *s, struct store_authkey *k)
{
	const unsigned char *tag = sqlite3_column_text(s, 1);

	memset(k, 0, sizeof(*k));
	k->id = sqlite3_column_int64(s, 0);
	snprintf(k->prefix, sizeof(k->prefix), AUTHKEY_PREFIX "%" PRId64, k->id);
	snprintf(k->tag, sizeof(k->tag), "%s", tag ? (const char *)tag : "");
	k->created = sqlite3_column_int64(s, 2);
	k->expires = sqlite3_column_int64(s, 3);
	k->used = sqlite3_column_int64(s, 4);
	k->reusable = sqlite3_column_int(s, 5) != 0;
	k->revoked = sqlite3_column_int(s, 6) != 0;
}

bool store_tag_valid(const char *tag)
{
	size_t len = strlen(tag);

	if (len >= STORE_TAG_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)tag[i]) && !strchr(":._-", tag[i]))
			return false;
	return true;
}

int store_authkey_create(struct store *st, bool reusable, int64_t ttl, const char *tag,
			 struct store_authkey *out, char secret[STORE_AUTHKEY_STRLEN])
{
	uint8_t raw[AUTHKEY_SECRET_LEN], hash[32];
	char hex[2 * AUTHKEY_SECRET_LEN + 1];
	int64_t now = store_now(st), id;
	sqlite3_stmt *s;
	int ret;

	if (!tag)
		tag = "";
	if (ttl < 0 || ttl > 100LL * 366 * 24 * 3600 || !store_tag_valid(tag))
		return -EINVAL;
	random_bytes(raw, sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	authkey_hash(hash, hex);
	ret = tx_begin(st);
	if (ret < 0)
		goto out;
	s = q(st, Q_AUTHKEY_INSERT);
	if (!s) {
		ret = -EIO;
	} else {
		sqlite3_bind_blob(s, 1, hash, sizeof(hash), SQLITE_STATIC);
		sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 3, reusable);
		sqlite3_bind_int64(s, 4, now);
		sqlite3_bind_int64(s, 5, ttl ? now + ttl : 0);
		ret = run(st, s, "creating an auth key");
	}
	id = sqlite3_last_insert_rowid(st->db);
	ret = tx_end(st, ret);
	if (!ret)
		ret = store_authkey_get(st, id, out);
	if (!ret)
		snprintf(secret, STORE_AUTHKEY_STRLEN, AUTHKEY_PREFIX "%" PRId64 "-%s", id, hex);
out:
	memzero_explicit(raw, sizeof(raw));
	memzero_explicit(hex, sizeof(hex));
	return ret;
}

int store_authkey_get(struct store *st, int64_t id, struct store_authkey *out)
{
	sqlite3_stmt *s = q(st, Q_AUTHKEY_BY_ID);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		authkey_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, rc, "reading an auth key");
}

int store_authkey_list(struct store *st, store_authkey_cb cb, void *arg)
{
	sqlite3_stmt *s = q(st, Q_AUTHKEY_LIST);
	struct store_authkey k;
	int rc, ret = 0;

	if (!s)
		return -EIO;
	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		authkey_row(s, &k);
		ret = cb(&k, arg);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sql_err(st, rc, "listing auth keys");
	sqlite3_reset(s);
	return ret;
}

int store_authkey_revoke(struct store *st, int64_t id)
{
	sqlite3_stmt *s = q(st, Q_AUTHKEY_REVOKE);
	int ret;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	ret = run(st, s, "revoking an auth key");
	if (!ret && sqlite3_changes(st->db) == 0)
		ret = -ENOENT;
	return ret;
}

/* Checks an auth key inside the caller's transaction and spends one use of
 * it.  -EACCES with *why when it is refused. */
static int authkey_spend(struct store *st, const char *key, int64_t *id, const char **why)
{
	uint8_t want[32], *have;
	struct store_authkey k;
	const char *secret;
	sqlite3_stmt *s;
	bool match;
	int rc, ret;

	if (strlen(key) >= STORE_AUTHKEY_STRLEN || authkey_split(key, id, &secret) < 0) {
		*why = "auth key is malformed";
		return -EACCES;
	}
	s = q(st, Q_AUTHKEY_HASH);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, *id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return sql_err(st, rc, "reading an auth key");
		*why = "auth key is unknown";
		return -EACCES;
	}
	authkey_hash(want, secret);
	have = (uint8_t *)sqlite3_column_blob(s, 0);
	match = have && sqlite3_column_bytes(s, 0) == 32 && crypto_memeq(have, want, 32);
	sqlite3_reset(s);
	if (!match) {
		*why = "auth key is unknown";
		return -EACCES;
	}
	ret = store_authkey_get(st, *id, &k);
	if (ret < 0)
		return ret;
	if (k.revoked)
		*why = "auth key is revoked";
	else if (k.expires && k.expires <= store_now(st))
		*why = "auth key is expired";
	else if (!k.reusable && k.used > 0)
		*why = "auth key was already used";
	else
		*why = NULL;
	if (*why)
		return -EACCES;
	s = q(st, Q_AUTHKEY_USE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, *id);
	return run(st, s, "spending an auth key");
}

/* --- nodes -------------------------------------------------------------- */

static void node_row(sqlite3_stmt *s, struct store_node *n)
{
	const unsigned char *t;

	memset(n, 0, sizeof(*n));
	n->id = sqlite3_column_int64(s, 0);
	t = sqlite3_column_text(s, 1);
	snprintf(n->name, sizeof(n->name), "%s", t ? (const char *)t : "");
	if (sqlite3_column_bytes(s, 2) == 32)
		memcpy(n->node_key, sqlite3_column_blob(s, 2), 32);
	if (sqlite3_column_type(s, 3) == SQLITE_BLOB && sqlite3_column_bytes(s, 3) == 32)
		memcpy(n->disco_key, sqlite3_column_blob(s, 3), 32);
	t = sqlite3_column_text(s, 4);
	snprintf(n->ipv4, sizeof(n->ipv4), "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(s, 5);
	snprintf(n->ipv6, sizeof(n->ipv6), "%s", t ? (const char *)t : "");
	n->created = sqlite3_column_int64(s, 6);
	n->expires = sqlite3_column_int64(s, 7);
	n->last_seen = sqlite3_column_int64(s, 8);
	n->authkey_id = sqlite3_column_int64(s, 9);
	n->approved = sqlite3_column_int(s, 10) != 0;
	n->quarantined = sqlite3_column_int(s, 11) != 0;
}

static int node_fetch(struct store *st, sqlite3_stmt *s, struct store_node *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		node_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, rc, "reading a node");
}

int store_node_get(struct store *st, int64_t id, struct store_node *out)
{
	sqlite3_stmt *s = q(st, Q_NODE_BY_ID);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	return node_fetch(st, s, out);
}

int store_node_get_by_key(struct store *st, const uint8_t node_key[32], struct store_node *out)
{
	sqlite3_stmt *s = q(st, Q_NODE_BY_KEY);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, node_key, 32, SQLITE_STATIC);
	return node_fetch(st, s, out);
}

int store_node_get_by_name(struct store *st, const char *name, struct store_node *out)
{
	sqlite3_stmt *s = q(st, Q_NODE_BY_NAME);

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	return node_fetch(st, s, out);
}

int store_node_list(struct store *st, store_node_cb cb, void *arg)
{
	sqlite3_stmt *s = q(st, Q_NODE_LIST);
	struct store_node n;
	int rc, ret = 0;

	if (!s)
		return -EIO;
	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		node_row(s, &n);
		ret = cb(&n, arg);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sql_err(st, rc, "listing nodes");
	sqlite3_reset(s);
	return ret;
}

bool store_node_expired(const struct store_node *node, int64_t now)
{
	return node->expires != 0 && node->expires <= now;
}

static int expiry_from_now(struct store *st, int64_t *expires)
{
	int64_t ttl;
	int ret = store_get_key_expiry(st, &ttl);

	if (!ret)
		*expires = ttl ? store_now(st) + ttl : 0;
	return ret;
}

/* A known node logging in again: an auth key only matters if it needs one. */
static int node_relogin(struct store *st, struct store_node *n, const char *authkey,
			const char **why)
{
	int64_t key_id, expires;
	sqlite3_stmt *s;
	int ret;

	if (!authkey || !*authkey || (n->approved && !store_node_expired(n, store_now(st))))
		return 0;
	ret = authkey_spend(st, authkey, &key_id, why);
	if (!ret)
		ret = expiry_from_now(st, &expires);
	if (ret < 0)
		return ret;
	s = q(st, Q_NODE_RELOGIN);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, expires);
	sqlite3_bind_int64(s, 2, key_id);
	sqlite3_bind_int64(s, 3, n->id);
	ret = run(st, s, "renewing a node");
	if (!ret)
		ret = log_change(st, n->id, STORE_NODE_CHANGED);
	if (!ret)
		ret = store_node_get(st, n->id, n);
	return ret;
}

static int node_create(struct store *st, const uint8_t node_key[32], const char *hostname,
		       const char *authkey, struct store_node *out, const char **why)
{
	char name[STORE_NAME_LEN], v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
	int64_t key_id = 0, expires, id;
	bool approved = authkey && *authkey;
	sqlite3_stmt *s;
	int ret = 0;

	if (approved)
		ret = authkey_spend(st, authkey, &key_id, why);
	if (!ret)
		ret = expiry_from_now(st, &expires);
	if (!ret)
		ret = name_allocate(st, hostname, name);
	if (!ret)
		ret = addr_allocate(st, v4, v6);
	if (ret < 0)
		return ret;
	s = q(st, Q_NODE_INSERT);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, node_key, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, v4, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, v6, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, store_now(st));
	sqlite3_bind_int64(s, 6, expires);
	sqlite3_bind_int(s, 7, approved);
	if (key_id)
		sqlite3_bind_int64(s, 8, key_id);
	else
		sqlite3_bind_null(s, 8);
	ret = run(st, s, "adding a node");
	if (ret == -EEXIST) {
		log_error("unique constraint failed adding a node path=%s error=%s", st->path,
			  sqlite3_errmsg(st->db));
		ret = -EIO; /* we checked name and address: this is a bug */
	}
	if (ret < 0)
		return ret;
	id = sqlite3_last_insert_rowid(st->db);
	ret = log_change(st, id, STORE_NODE_ADDED);
	if (!ret)
		ret = store_node_get(st, id, out);
	return ret;
}

int store_node_register(struct store *st, const uint8_t node_key[32], const char *hostname,
			const char *authkey, struct store_node *out, const char **why)
{
	int ret;

	*why = NULL;
	if (key_is_zero(node_key))
		return -EINVAL;
	if (hostname && strlen(hostname) > STORE_HOSTNAME_MAX)
		return -EINVAL;
	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	ret = store_node_get_by_key(st, node_key, out);
	if (ret == 0)
		ret = node_relogin(st, out, authkey, why);
	else if (ret == -ENOENT)
		ret = node_create(st, node_key, hostname, authkey, out, why);
	return tx_end(st, ret);
}

/* One node update: param 1 the value (bound by bind), param 2 the id.  The
 * UPDATEs only match when the value changes, so a no-op logs nothing. */
struct node_value {
	enum { V_INT, V_TEXT, V_BLOB } type;
	int64_t i;
	const void *p;
};

static int node_update(struct store *st, enum sql_id sql, int64_t id, struct node_value v, bool log)
{
	struct store_node n;
	sqlite3_stmt *s;
	int ret;

	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	ret = store_node_get(st, id, &n);
	s = ret ? NULL : q(st, sql);
	if (!ret && !s)
		ret = -EIO;
	if (!ret) {
		if (v.type == V_INT)
			sqlite3_bind_int64(s, 1, v.i);
		else if (v.type == V_TEXT)
			sqlite3_bind_text(s, 1, v.p, -1, SQLITE_STATIC);
		else
			sqlite3_bind_blob(s, 1, v.p, 32, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, id);
		ret = run(st, s, "updating a node");
	}
	if (!ret && log && sqlite3_changes(st->db) > 0)
		ret = log_change(st, id, STORE_NODE_CHANGED);
	return tx_end(st, ret);
}

int store_node_set_approved(struct store *st, int64_t id, bool approved)
{
	return node_update(st, Q_NODE_SET_APPROVED, id, (struct node_value){V_INT, approved, NULL},
			   true);
}

int store_node_set_quarantined(struct store *st, int64_t id, bool quarantined)
{
	return node_update(st, Q_NODE_SET_QUARANTINED, id,
			   (struct node_value){V_INT, quarantined, NULL}, true);
}

int store_node_rename(struct store *st, int64_t id, const char *name)
{
	if (!store_name_valid(name))
		return -EINVAL;
	/* The UNIQUE constraint answers -EEXIST for a name another node has. */
	return node_update(st, Q_NODE_SET_NAME, id, (struct node_value){V_TEXT, 0, name}, true);
}

int store_node_set_expires(struct store *st, int64_t id, int64_t expires)
{
	if (expires < 0)
		return -EINVAL;
	return node_update(st, Q_NODE_SET_EXPIRES, id, (struct node_value){V_INT, expires, NULL},
			   true);
}

int store_node_expire(struct store *st, int64_t id)
{
	return store_node_set_expires(st, id, store_now(st));
}

int store_node_set_disco_key(struct store *st, int64_t id, const uint8_t disco_key[32])
{
	return node_update(st, Q_NODE_SET_DISCO, id, (struct node_value){V_BLOB, 0, disco_key},
			   true);
}

int store_node_set_last_seen(struct store *st, int64_t id, int64_t when)
{
	return node_update(st, Q_NODE_SET_LAST_SEEN, id, (struct node_value){V_INT, when, NULL},
			   false);
}

int store_node_remove(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	int ret;

	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	s = q(st, Q_NODE_DELETE);
	if (!s) {
		ret = -EIO;
	} else {
		sqlite3_bind_int64(s, 1, id);
		ret = run(st, s, "removing a node");
	}
	if (!ret && sqlite3_changes(st->db) == 0)
		ret = -ENOENT;
	if (!ret)
		ret = log_change(st, id, STORE_NODE_REMOVED);
	return tx_end(st, ret);
}

/* --- relays ------------------------------------------------------------- */

static bool relay_valid(const struct store_relay *r)
{
	size_t rl = strnlen(r->region, sizeof(r->region));
	size_t hl = strnlen(r->host, sizeof(r->host));

	if (r->id < 1 || r->id > 65535 || rl == 0 || rl >= sizeof(r->region) || hl == 0 ||
	    hl > 253 || r->port == 0 || r->stun_port == 0 || key_is_zero(r->key))
		return false;
	if (strnlen(r->stun_alt, sizeof(r->stun_alt)) == sizeof(r->stun_alt) ||
	    (r->stun_alt[0] && netmap_host_port_valid(r->stun_alt) < 0))
		return false;
	for (size_t i = 0; i < rl; i++)
		if (!isgraph((unsigned char)r->region[i]))
			return false;
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)r->host[i]) && !strchr(".-:_[]", r->host[i]))
			return false;
	return true;
}

int store_relay_add(struct store *st, const struct store_relay *relay)
{
	sqlite3_stmt *s;
	int ret;

	if (!relay_valid(relay))
		return -EINVAL;
	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	s = q(st, Q_RELAY_INSERT);
	if (!s) {
		ret = -EIO;
	} else {
		sqlite3_bind_int64(s, 1, relay->id);
		sqlite3_bind_text(s, 2, relay->region, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, relay->host, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, relay->port);
		sqlite3_bind_int(s, 5, relay->stun_port);
		sqlite3_bind_blob(s, 6, relay->key, 32, SQLITE_STATIC);
		sqlite3_bind_text(s, 7, relay->stun_alt, -1, SQLITE_STATIC);
		ret = run(st, s, "adding a relay");
	}
	if (!ret)
		ret = log_change(st, relay->id, STORE_RELAY_CHANGED);
	return tx_end(st, ret);
}

int store_relay_remove(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	int ret;

	ret = tx_begin(st);
	if (ret < 0)
		return ret;
	s = q(st, Q_RELAY_DELETE);
	if (!s) {
		ret = -EIO;
	} else {
		sqlite3_bind_int64(s, 1, id);
		ret = run(st, s, "removing a relay");
	}
	if (!ret && sqlite3_changes(st->db) == 0)
		ret = -ENOENT;
	if (!ret)
		ret = log_change(st, id, STORE_RELAY_CHANGED);
	return tx_end(st, ret);
}

static void relay_row(sqlite3_stmt *s, struct store_relay *r)
{
	const unsigned char *t;

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	t = sqlite3_column_text(s, 1);
	snprintf(r->region, sizeof(r->region), "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(s, 2);
	snprintf(r->host, sizeof(r->host), "%s", t ? (const char *)t : "");
	r->port = (uint16_t)sqlite3_column_int(s, 3);
	r->stun_port = (uint16_t)sqlite3_column_int(s, 4);
	if (sqlite3_column_bytes(s, 5) == 32)
		memcpy(r->key, sqlite3_column_blob(s, 5), 32);
	t = sqlite3_column_text(s, 6);
	snprintf(r->stun_alt, sizeof(r->stun_alt), "%s", t ? (const char *)t : "");
}

static int relay_fetch(struct store *st, sqlite3_stmt *s, struct store_relay *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		relay_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, rc, "reading a relay");
}

int store_relay_get(struct store *st, int64_t id, struct store_relay *out)
{
	sqlite3_stmt *s = q(st, Q_RELAY_BY_ID);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	return relay_fetch(st, s, out);
}

int store_relay_get_by_key(struct store *st, const uint8_t key[32], struct store_relay *out)
{
	sqlite3_stmt *s = q(st, Q_RELAY_BY_KEY);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, key, 32, SQLITE_STATIC);
	return relay_fetch(st, s, out);
}

int store_relay_list(struct store *st, store_relay_cb cb, void *arg)
{
	sqlite3_stmt *s = q(st, Q_RELAY_LIST);
	struct store_relay r;
	int rc, ret = 0;

	if (!s)
		return -EIO;
	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		relay_row(s, &r);
		ret = cb(&r, arg);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sql_err(st, rc, "listing relays");
	sqlite3_reset(s);
	return ret;
}

/* --- changes ------------------------------------------------------------ */

static int change_kind_parse(const char *name, enum store_change_kind *kind)
{
	for (int k = STORE_NODE_ADDED; k <= STORE_RELAY_CHANGED; k++) {
		if (!strcmp(name, change_names[k])) {
			*kind = (enum store_change_kind)k;
			return 0;
		}
	}
	return -EINVAL;
}

int store_changes_since(struct store *st, int64_t after, store_change_cb cb, void *arg,
			int64_t *last)
{
	sqlite3_stmt *s = q(st, Q_CHANGE_SINCE);
	struct store_change c;
	const unsigned char *kind;
	int rc, ret = 0;

	if (last)
		*last = after;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, after);
	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&c, 0, sizeof(c));
		c.seq = sqlite3_column_int64(s, 0);
		c.node_id = sqlite3_column_int64(s, 1);
		c.at = sqlite3_column_int64(s, 3);
		kind = sqlite3_column_text(s, 2);
		if (last)
			*last = c.seq;
		if (!kind || change_kind_parse((const char *)kind, &c.kind) < 0) {
			/* Written by a newer version: skip it rather than stall. */
			log_warn("unknown change kind path=%s seq=%" PRId64, st->path, c.seq);
			continue;
		}
		ret = cb(&c, arg);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sql_err(st, rc, "reading changes");
	sqlite3_reset(s);
	return ret;
}

int store_changes_last(struct store *st, int64_t *seq)
{
	return run_int(st, q(st, Q_CHANGE_LAST), "reading the last change", seq);
}

int store_prune_changes(struct store *st, int64_t upto)
{
	sqlite3_stmt *s = q(st, Q_CHANGE_PRUNE);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, upto);
	return run(st, s, "pruning changes");
}

int store_data_version(struct store *st, int64_t *version)
{
	return run_int(st, q(st, Q_DATA_VERSION), "reading data_version", version);
}
