// SPDX-License-Identifier: MIT
/* src/knit-control/admin.c and duration.c: knit-control's admin commands. */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "knit-control/admin.h"
#include "knit-control/duration.h"
#include "knit-control/store.h"

static void test_duration_parse(void **state)
{
	static const struct {
		const char *s;
		int ret;
		int64_t v;
	} cases[] = {
		{"30s", 0, 30},
		{"30m", 0, 1800},
		{"24h", 0, 86400},
		{"90d", 0, 90 * 86400},
		{"2w", 0, 14 * 86400},
		{"1h30m", 0, 5400},
		{"1d1s", 0, 86401},
		{"0h1m", 0, 60},
		{"", -EINVAL, 0},
		{"0s", -EINVAL, 0},
		{"24", -EINVAL, 0},
		{"h", -EINVAL, 0},
		{"24H", -EINVAL, 0},
		{"1.5h", -EINVAL, 0},
		{"-1h", -EINVAL, 0},
		{" 1h", -EINVAL, 0},
		{"1h ", -EINVAL, 0},
		{"1y", -EINVAL, 0},
		{"36600d", 0, 36600LL * 86400},
		{"36601d", -ERANGE, 0},
		{"99999999999999999999999s", -ERANGE, 0},
		{"9223372036854775807w", -ERANGE, 0},
		{"36500d36500d", -ERANGE, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = -1;
		int ret = duration_parse(cases[i].s, &v);

		if (ret != cases[i].ret)
			fail_msg("duration_parse(\"%s\") = %d, want %d", cases[i].s, ret,
				 cases[i].ret);
		if (ret == 0)
			assert_int_equal(v, cases[i].v);
		else
			assert_int_equal(v, -1); /* untouched on error */
	}
	assert_int_equal(duration_parse(NULL, &(int64_t){0}), -EINVAL);
}

static void test_duration_format(void **state)
{
	char buf[32];

	assert_int_equal(duration_format(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "0s");
	assert_int_equal(duration_format(86400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1d");
	assert_int_equal(duration_format(5400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1h30m");
	assert_int_equal(duration_format(90 * 86400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "90d");
	assert_int_equal(duration_format(14 * 86400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2w");
	assert_int_equal(duration_format(86401, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1d1s");
	assert_int_equal(duration_format(5400, buf, 4), -ENOBUFS);
	/* Round trip. */
	for (int64_t v = 1; v < 3 * 86400; v += 977) {
		int64_t back;

		assert_int_equal(duration_format(v, buf, sizeof(buf)), 0);
		assert_int_equal(duration_parse(buf, &back), 0);
		assert_int_equal(back, v);
	}
}

struct fixture {
	char root[64];
	char dir[96];
	char out[65536], err[4096];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->root, "/tmp/test_knit_control_admin.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Runs "knit-control <words> --state-dir DIR"; words split on spaces. */
static int run(struct fixture *f, const char *fmt, ...)
{
	char line[1024], *argv[32], *save = NULL, *w;
	FILE *out = fmemopen(f->out, sizeof(f->out) - 1, "w");
	FILE *err = fmemopen(f->err, sizeof(f->err) - 1, "w");
	int argc = 0, rc;
	va_list ap;

	assert_non_null(out);
	assert_non_null(err);
	memset(f->out, 0, sizeof(f->out));
	memset(f->err, 0, sizeof(f->err));
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (w = strtok_r(line, " ", &save); w && argc < 28; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc++] = "--state-dir";
	argv[argc++] = f->dir;
	argv[argc] = NULL;
	rc = admin_run(argc, argv, out, err);
	fclose(out);
	fclose(err);
	return rc;
}

static json_t *out_json(struct fixture *f)
{
	json_error_t e;
	json_t *j = json_loads(f->out, 0, &e);

	if (!j)
		fail_msg("not JSON (%s): %s", e.text, f->out);
	return j;
}

static struct store *open_store(struct fixture *f)
{
	struct store *st;

	assert_int_equal(store_open(&st, f->dir), 0);
	return st;
}

static void register_node(struct fixture *f, uint8_t n, const char *host, const char *authkey)
{
	struct store *st = open_store(f);
	struct store_node node;
	const char *why;
	uint8_t key[32];

	memset(key, n, sizeof(key));
	assert_int_equal(store_node_register(st, key, host, authkey, &node, &why), 0);
	store_close(st);
}

static void test_usage_errors(void **state)
{
	struct fixture *f = *state;
	char *argv[] = {"frobnicate", NULL};

	assert_int_equal(admin_run(0, argv, stdout, stderr), ADMIN_USAGE);
	assert_int_equal(run(f, "frobnicate"), ADMIN_USAGE);
	assert_string_equal(
		f->err, "knit-control: unknown command 'frobnicate' (see knit-control --help)\n");
	assert_int_equal(run(f, "node"), ADMIN_USAGE);
	assert_non_null(strstr(f->err, "node approve ID|NAME"));
	assert_int_equal(run(f, "node frob 1"), ADMIN_USAGE);
	assert_int_equal(run(f, "nodes --bogus"), ADMIN_USAGE);
	assert_string_equal(f->err, "knit-control: unknown option '--bogus' (see --help)\n");
	assert_int_equal(run(f, "nodes extra"), ADMIN_USAGE);
	assert_int_equal(run(f, "node approve"), ADMIN_USAGE);
	assert_string_equal(f->err, "knit-control: node approve needs ID|NAME (see --help)\n");
	assert_int_equal(run(f, "node approve 1 2"), ADMIN_USAGE);
	assert_int_equal(run(f, "node approve 1 --json"), ADMIN_USAGE); /* not a listing */
	assert_int_equal(run(f, "nodes --json=yes"), ADMIN_USAGE);
	assert_int_equal(run(f, "authkey create --expiry"), ADMIN_USAGE);
	assert_int_equal(run(f, "authkey create --expiry 5x"), ADMIN_USAGE);
	assert_non_null(strstr(f->err, "invalid --expiry '5x'"));
	assert_int_equal(run(f, "authkey create --expiry 0s"), ADMIN_USAGE);
	assert_int_equal(run(f, "authkey create --tag a/b"), ADMIN_USAGE);
	assert_int_equal(run(f, "authkey revoke bogus"), ADMIN_USAGE);
	assert_int_equal(run(f, "node quarantine 1 maybe"), ADMIN_USAGE);
	assert_int_equal(run(f, "node rename 1 Bad_Name"), ADMIN_USAGE);
	assert_int_equal(run(f, "node approve 99999999999999999999"), ADMIN_USAGE);
	assert_int_equal(run(f, "relay remove 0"), ADMIN_USAGE);
	assert_int_equal(run(f, "relay add --id 1"), ADMIN_USAGE);
	/* Nothing above touched the state directory... */
	assert_int_equal(access(f->dir, F_OK), -1);
	/* ... and --help anywhere prints the command's usage and succeeds. */
	assert_int_equal(run(f, "node approve --help"), ADMIN_OK);
	assert_non_null(strstr(f->out, "Usage: knit-control node approve ID|NAME"));
	assert_int_equal(run(f, "nodes --help"), ADMIN_OK);
	assert_non_null(strstr(f->out, "--json"));
	assert_int_equal(run(f, "node --help"), ADMIN_OK);
	assert_non_null(strstr(f->out, "node quarantine ID|NAME on|off"));
	assert_int_equal(run(f, "relay add --help"), ADMIN_OK);
	assert_non_null(strstr(f->out, "--stun-port"));
	assert_int_equal(access(f->dir, F_OK), -1);
}

static void test_not_found_messages(void **state)
{
	struct fixture *f = *state;
	char want[256];

	assert_int_equal(run(f, "node approve 7"), ADMIN_ERROR);
	snprintf(want, sizeof(want), "knit-control: no node 7 in %s/control.db\n", f->dir);
	assert_string_equal(f->err, want);
	assert_int_equal(run(f, "node remove ghost"), ADMIN_ERROR);
	snprintf(want, sizeof(want), "knit-control: no node ghost in %s/control.db\n", f->dir);
	assert_string_equal(f->err, want);
	assert_int_equal(run(f, "authkey revoke 3"), ADMIN_ERROR);
	snprintf(want, sizeof(want), "knit-control: no auth key 3 in %s/control.db\n", f->dir);
	assert_string_equal(f->err, want);
	assert_int_equal(run(f, "relay remove 9"), ADMIN_ERROR);
	snprintf(want, sizeof(want), "knit-control: no relay 9 in %s/control.db\n", f->dir);
	assert_string_equal(f->err, want);
	assert_int_equal(run(f, "nodes --json"), ADMIN_OK);
	assert_string_equal(f->out, "[]\n");
}

static void test_newer_database_refused(void **state)
{
	struct fixture *f = *state;
	char path[256], sql[64];
	sqlite3 *db;

	store_close(open_store(f));
	snprintf(path, sizeof(path), "%s/control.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version_known() + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(run(f, "nodes"), ADMIN_ERROR);
	assert_non_null(strstr(f->err, "was written by a newer knit-control"));
}

static void test_key(void **state)
{
	struct fixture *f = *state;
	char first[128], path[256];
	uint8_t priv[32], pub[32];
	struct stat sb;
	bool created;

	assert_int_equal(run(f, "key"), ADMIN_OK);
	assert_int_equal(strlen(f->out), 45);
	assert_non_null(strstr(f->err, "generated a new control key"));
	strcpy(first, f->out);
	snprintf(path, sizeof(path), "%s/control.key", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(f->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	/* The same key every time, and the same one serve loads. */
	assert_int_equal(run(f, "key"), ADMIN_OK);
	assert_string_equal(f->out, first);
	assert_string_equal(f->err, "");
	assert_int_equal(control_key_load(f->dir, priv, pub, &created), 0);
	assert_false(created);
	assert_int_equal(run(f, "key --json"), ADMIN_OK);
	{
		json_t *j = out_json(f);
		char line[64];

		snprintf(line, sizeof(line), "%s\n",
			 json_string_value(json_object_get(j, "public_key")));
		assert_string_equal(line, first);
		json_decref(j);
	}
	/* A key file others can read is refused, not used. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(run(f, "key"), ADMIN_ERROR);
	assert_non_null(strstr(f->err, "cannot load or create the control key"));
	assert_string_equal(f->out, "");
}

static void test_authkeys(void **state)
{
	struct fixture *f = *state;
	char key[128], want[256];
	json_t *j, *k;

	assert_int_equal(run(f, "authkey create"), ADMIN_OK);
	assert_int_equal(strncmp(f->out, "knit-auth-1-", 12), 0);
	assert_int_equal(run(f, "authkey create --reusable --expiry 90d --tag ci --json"),
			 ADMIN_OK);
	j = out_json(f);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "prefix")), "knit-auth-2");
	assert_true(json_is_true(json_object_get(j, "reusable")));
	assert_string_equal(json_string_value(json_object_get(j, "tag")), "ci");
	assert_int_equal(json_integer_value(json_object_get(j, "expires")) -
				 json_integer_value(json_object_get(j, "created")),
			 90 * 86400);
	snprintf(key, sizeof(key), "%s", json_string_value(json_object_get(j, "key")));
	json_decref(j);
	assert_int_equal(run(f, "authkey create --expiry never --json"), ADMIN_OK);
	j = out_json(f);
	assert_true(json_is_null(json_object_get(j, "expires")));
	json_decref(j);

	/* The printed key works, twice (reusable), and the list counts it. */
	register_node(f, 1, "a", key);
	register_node(f, 2, "b", key);
	assert_int_equal(run(f, "authkey list --json"), ADMIN_OK);
	j = out_json(f);
	assert_int_equal(json_array_size(j), 3);
	k = json_array_get(j, 1);
	assert_int_equal(json_integer_value(json_object_get(k, "used")), 2);
	assert_true(json_is_false(json_object_get(k, "revoked")));
	assert_true(json_is_false(json_object_get(k, "expired")));
	assert_null(json_object_get(k, "key")); /* never the secret */
	assert_null(strstr(f->out, key + 12));
	json_decref(j);
	assert_int_equal(run(f, "authkey list"), ADMIN_OK);
	assert_non_null(strstr(f->out, "knit-auth-2"));
	assert_null(strstr(f->out, key + 12));

	/* Revoke by whole key, then by prefix (already revoked), then by id. */
	assert_int_equal(run(f, "authkey revoke %s", key), ADMIN_OK);
	assert_string_equal(f->out, "auth key knit-auth-2 revoked\n");
	assert_int_equal(run(f, "authkey revoke knit-auth-2"), ADMIN_OK);
	assert_string_equal(f->out, "auth key knit-auth-2 was already revoked\n");
	assert_int_equal(run(f, "authkey revoke 1"), ADMIN_OK);
	assert_int_equal(run(f, "authkey list --json"), ADMIN_OK);
	j = out_json(f);
	assert_true(json_is_true(json_object_get(json_array_get(j, 0), "revoked")));
	assert_true(json_is_true(json_object_get(json_array_get(j, 1), "revoked")));
	assert_true(json_is_false(json_object_get(json_array_get(j, 2), "revoked")));
	json_decref(j);
	{
		struct store *st = open_store(f);
		struct store_node n;
		const char *why;
		uint8_t nk[32];

		memset(nk, 3, sizeof(nk));
		assert_int_equal(store_node_register(st, nk, "c", key, &n, &why), -EACCES);
		assert_string_equal(why, "auth key is revoked");
		store_close(st);
	}
	snprintf(want, sizeof(want), "knit-auth-4-%048d", 0);
	assert_int_equal(run(f, "authkey revoke %s", want), ADMIN_ERROR);
}

/* The node with the given id in a `nodes --json` listing. */
static json_t *node_in(json_t *list, int64_t id)
{
	size_t i;
	json_t *n;

	json_array_foreach(list, i, n)
	{
		if (json_integer_value(json_object_get(n, "id")) == id)
			return n;
	}
	return NULL;
}

static const char *node_field(struct fixture *f, int64_t id, const char *field, char *buf,
			      size_t len)
{
	json_t *j, *n, *v;

	assert_int_equal(run(f, "nodes --json"), ADMIN_OK);
	j = out_json(f);
	n = node_in(j, id);
	if (!n) {
		json_decref(j);
		return NULL;
	}
	v = json_object_get(n, field);
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_null(v))
		snprintf(buf, len, "null");
	else
		snprintf(buf, len, "(missing)");
	json_decref(j);
	return buf;
}

static void test_nodes(void **state)
{
	static const char *const fields[] = {
		"id",	    "name",	   "status",  "ipv4",	    "ipv6",
		"node_key", "disco_key",   "created", "expires",    "last_seen",
		"approved", "quarantined", "expired", "authkey_id",
	};
	struct fixture *f = *state;
	char buf[128], want[256];
	json_t *j, *n;

	register_node(f, 1, "alpha", NULL);
	register_node(f, 2, "Beta.example.com", NULL);
	assert_int_equal(run(f, "nodes --json"), ADMIN_OK);
	j = out_json(f);
	assert_int_equal(json_array_size(j), 2);
	n = json_array_get(j, 0);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!json_object_get(n, fields[i]))
			fail_msg("nodes --json lacks %s", fields[i]);
	assert_int_equal(json_object_size(n), sizeof(fields) / sizeof(fields[0]));
	assert_string_equal(json_string_value(json_object_get(n, "name")), "alpha");
	assert_string_equal(json_string_value(json_object_get(n, "status")), "pending");
	assert_string_equal(json_string_value(json_object_get(n, "ipv4")), "100.64.0.1");
	assert_string_equal(json_string_value(json_object_get(n, "node_key")),
			    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
	assert_true(json_is_null(json_object_get(n, "disco_key")));
	assert_true(json_is_null(json_object_get(n, "last_seen")));
	assert_true(json_is_null(json_object_get(n, "authkey_id")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "name")),
			    "beta");
	json_decref(j);

	assert_int_equal(run(f, "nodes"), ADMIN_OK);
	assert_non_null(strstr(f->out, "NAME"));
	assert_non_null(strstr(f->out, "alpha"));
	assert_non_null(strstr(f->out, "100.64.0.2"));

	/* approve, by id and by name */
	assert_int_equal(run(f, "node approve 1"), ADMIN_OK);
	assert_string_equal(f->out, "node 1 (alpha) approved\n");
	assert_string_equal(node_field(f, 1, "status", buf, sizeof(buf)), "active");
	assert_int_equal(run(f, "node approve alpha"), ADMIN_OK);
	assert_string_equal(f->out, "node 1 (alpha) was already approved\n");
	assert_int_equal(run(f, "node approve beta"), ADMIN_OK);
	assert_string_equal(node_field(f, 2, "approved", buf, sizeof(buf)), "true");

	/* quarantine on and off */
	assert_int_equal(run(f, "node quarantine 2 on"), ADMIN_OK);
	assert_string_equal(node_field(f, 2, "status", buf, sizeof(buf)), "quarantined");
	assert_string_equal(node_field(f, 2, "quarantined", buf, sizeof(buf)), "true");
	assert_int_equal(run(f, "node quarantine beta off"), ADMIN_OK);
	assert_string_equal(node_field(f, 2, "status", buf, sizeof(buf)), "active");

	/* rename: checked, unique */
	assert_int_equal(run(f, "node rename 2 alpha"), ADMIN_ERROR);
	snprintf(want, sizeof(want), "knit-control: another node is already named alpha in %s/%s\n",
		 f->dir, STORE_DB_NAME);
	assert_string_equal(f->err, want);
	assert_int_equal(run(f, "node rename 2 gamma-2"), ADMIN_OK);
	assert_string_equal(f->out, "node 2 (beta) renamed to gamma-2\n");
	assert_string_equal(node_field(f, 2, "name", buf, sizeof(buf)), "gamma-2");

	/* expire */
	assert_int_equal(run(f, "node expire gamma-2"), ADMIN_OK);
	assert_string_equal(node_field(f, 2, "status", buf, sizeof(buf)), "expired");
	assert_string_equal(node_field(f, 2, "expired", buf, sizeof(buf)), "true");
	assert_int_equal(run(f, "node expire 2"), ADMIN_OK);
	assert_string_equal(f->out, "node 2 (gamma-2) was already expired\n");

	/* remove: gone, and a second remove is an error */
	assert_int_equal(run(f, "node remove 1"), ADMIN_OK);
	assert_string_equal(f->out, "node 1 (alpha) removed\n");
	assert_null(node_field(f, 1, "name", buf, sizeof(buf)));
	assert_int_equal(run(f, "node remove 1"), ADMIN_ERROR);

	/* Every change above is in the log for a running server to see. */
	{
		struct store *st = open_store(f);
		int64_t seq;

		assert_int_equal(store_changes_last(st, &seq), 0);
		/* 2 added, 2 approved, 2 quarantine, 1 rename, 1 expire, 1 remove */
		assert_int_equal(seq, 9);
		store_close(st);
	}
}

static void test_relays(void **state)
{
	struct fixture *f = *state;
	const char *key = "xKlaSSf1WIo17C3MjS89pNayFM9WTZTYcy8YJHLxbiY=";
	const char *key2 = "mFbuWtmyHtkWHHfQkxg/M+JNWJSGMLYq4x+B2YKu6no=";
	json_t *j, *r;

	assert_int_equal(run(f,
			     "relay add --id 1 --region ams --host 10.0.0.1 --port 443 "
			     "--stun-port 3478 --key %s",
			     key),
			 ADMIN_OK);
	assert_string_equal(f->out, "relay 1 (ams, 10.0.0.1:443) added\n");
	assert_int_equal(run(f,
			     "relay add --id=2 --region=fra --host=relay.example --port=8443 "
			     "--stun-port=3478 --key=%s",
			     key2),
			 ADMIN_OK);
	/* Taken id, taken key, bad values. */
	assert_int_equal(run(f,
			     "relay add --id 1 --region x --host h --port 1 --stun-port 1 "
			     "--key %s",
			     key2),
			 ADMIN_ERROR);
	assert_int_equal(run(f,
			     "relay add --id 3 --region x --host h --port 1 --stun-port 1 "
			     "--key %s",
			     key),
			 ADMIN_ERROR);
	assert_int_equal(run(f,
			     "relay add --id 3 --region x --host h --port 65536 --stun-port 1 "
			     "--key %s",
			     key),
			 ADMIN_USAGE);
	assert_int_equal(run(f, "relay add --id 3 --region x --host h --port 1 --stun-port 1 "
				"--key notakey"),
			 ADMIN_USAGE);
	assert_int_equal(run(f,
			     "relay add --id 3 --region x --host h/x --port 1 --stun-port 1 "
			     "--key %s",
			     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="),
			 ADMIN_USAGE);

	assert_int_equal(run(f, "relays --json"), ADMIN_OK);
	j = out_json(f);
	assert_int_equal(json_array_size(j), 2);
	r = json_array_get(j, 1);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
	assert_string_equal(json_string_value(json_object_get(r, "region")), "fra");
	assert_string_equal(json_string_value(json_object_get(r, "host")), "relay.example");
	assert_int_equal(json_integer_value(json_object_get(r, "port")), 8443);
	assert_int_equal(json_integer_value(json_object_get(r, "stun_port")), 3478);
	assert_string_equal(json_string_value(json_object_get(r, "key")), key2);
	json_decref(j);

	assert_int_equal(run(f, "relay remove 1"), ADMIN_OK);
	assert_string_equal(f->out, "relay 1 removed\n");
	assert_int_equal(run(f, "relays"), ADMIN_OK);
	assert_null(strstr(f->out, "ams"));
	assert_non_null(strstr(f->out, "relay.example"));
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	struct store_node n;
	struct store *st;
	json_t *j;

	assert_int_equal(run(f, "config --key-expiry 3x"), ADMIN_USAGE);
	assert_int_equal(run(f, "config --ipv4-prefix fd00::/64"), ADMIN_USAGE);
	assert_int_equal(run(f, "config --ipv6-prefix 10.0.0.0/8"), ADMIN_USAGE);
	assert_int_equal(access(f->dir, F_OK), -1);
	assert_int_equal(run(f, "config --json"), ADMIN_OK);
	j = out_json(f);
	assert_int_equal(json_integer_value(json_object_get(j, "key_expiry")), 180 * 86400);
	assert_string_equal(json_string_value(json_object_get(j, "ipv4_prefix")), "100.64.0.0/10");
	assert_int_equal(strncmp(json_string_value(json_object_get(j, "ipv6_prefix")), "fd", 2), 0);
	json_decref(j);
	assert_int_equal(run(f, "config"), ADMIN_OK);
	assert_non_null(strstr(f->out, "key-expiry   180d\n"));

	/* New settings apply to the next node. */
	assert_int_equal(run(f, "config --key-expiry 1h --ipv4-prefix 10.77.0.0/16 "
				"--ipv6-prefix fd00:77::/64 --json"),
			 ADMIN_OK);
	j = out_json(f);
	assert_int_equal(json_integer_value(json_object_get(j, "key_expiry")), 3600);
	json_decref(j);
	assert_int_equal(run(f, "config --ipv6-prefix fd00:77::/120"), ADMIN_USAGE);
	register_node(f, 1, "a", NULL);
	st = open_store(f);
	assert_int_equal(store_node_get(st, 1, &n), 0);
	assert_string_equal(n.ipv4, "10.77.0.1");
	assert_string_equal(n.ipv6, "fd00:77::a4d:1");
	assert_int_equal(n.expires - n.created, 3600);
	store_close(st);
	/* Once a node has addresses, the prefixes stay. */
	assert_int_equal(run(f, "config --ipv4-prefix 10.88.0.0/16"), ADMIN_ERROR);
	assert_non_null(strstr(f->err, "before the first node joins"));
	assert_int_equal(run(f, "config --key-expiry never --json"), ADMIN_OK);
	j = out_json(f);
	assert_true(json_is_null(json_object_get(j, "key_expiry")));
	assert_string_equal(json_string_value(json_object_get(j, "ipv4_prefix")), "10.77.0.0/16");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_database_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authkeys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
	};

	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
