// SPDX-License-Identifier: MIT
/* src/knit-control/store.c: knit-control's SQLite store. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "knit-control/store.h"

struct fixture {
	char root[64]; /* mkdtemp */
	char dir[96];  /* root/state: store_open creates it */
	struct store *st;
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
	strcpy(f->root, "/tmp/test_knit_control_store.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->root);
	if (store_open(&f->st, f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A distinct node key from a number (never all zero). */
static void key_n(uint8_t key[32], uint32_t n)
{
	memset(key, 0xa5, 32);
	memcpy(key, &n, sizeof(n));
}

static int64_t reg(struct store *st, uint32_t n, const char *host, const char *authkey,
		   struct store_node *out)
{
	uint8_t key[32];
	const char *why = "unset";
	int ret;

	key_n(key, n);
	ret = store_node_register(st, key, host, authkey, out, &why);
	if (ret == 0) {
		assert_null(why);
		assert_memory_equal(out->node_key, key, 32);
		return out->id;
	}
	return ret;
}

/* Runs raw SQL on the database file through a second connection. */
static void raw_sql(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_DB_NAME);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_open_creates_private_files(void **state)
{
	struct fixture *f = *state;
	char path[256];
	struct stat sb;
	int v;

	assert_int_equal(stat(f->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/control.db", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
	assert_string_equal(store_path(f->st), path);
	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, store_schema_version_known());
	assert_true(v >= 2);
}

#define KEY32_HEX "0101010101010101010101010101010101010101010101010101010101010101"

static void test_migrations(void **state)
{
	struct fixture *f = *state;
	struct ip_prefix v4a, v6a, v4b, v6b;
	struct store_node n;
	int64_t seq;
	char sql[64];
	int v;

	assert_int_equal(store_get_prefixes(f->st, &v4a, &v6a), 0);
	assert_int_equal(reg(f->st, 1, "one", NULL, &n), 1);
	/* Reopening an up-to-date database changes nothing. */
	for (int i = 0; i < 3; i++) {
		store_close(f->st);
		assert_int_equal(store_open(&f->st, f->dir), 0);
		assert_int_equal(store_schema_version(f->st, &v), 0);
		assert_int_equal(v, store_schema_version_known());
		assert_int_equal(store_get_prefixes(f->st, &v4b, &v6b), 0);
		assert_memory_equal(&v6a.addr, &v6b.addr, 16);
		assert_int_equal(store_node_get(f->st, 1, &n), 0);
		assert_string_equal(n.name, "one");
	}
	/* A database left at version 1 gets migrations 2 and 3 (and only them). */
	store_close(f->st);
	f->st = NULL;
	raw_sql(f->dir, "DROP TABLE changes; DROP TABLE name_suffixes; "
			"ALTER TABLE relays DROP COLUMN stun_alt; PRAGMA user_version = 1;");
	assert_int_equal(store_open(&f->st, f->dir), 0);
	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, store_schema_version_known());
	assert_int_equal(store_node_get(f->st, 1, &n), 0); /* version 1's data kept */
	assert_int_equal(store_changes_last(f->st, &seq), 0);
	assert_int_equal(seq, 0);
	assert_int_equal(reg(f->st, 2, "two", NULL, &n), 2);
	assert_int_equal(store_changes_last(f->st, &seq), 0);
	assert_int_equal(seq, 1);

	/* Version 2 with a relay: migration 3 keeps it, without an alternate. */
	store_close(f->st);
	f->st = NULL;
	raw_sql(f->dir, "ALTER TABLE relays DROP COLUMN stun_alt; PRAGMA user_version = 2; "
			"INSERT INTO relays (id, region, host, port, stun_port, key) VALUES "
			"(9, 'r', 'h', 1, 2, x'" KEY32_HEX "');");
	assert_int_equal(store_open(&f->st, f->dir), 0);
	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, store_schema_version_known());
	struct store_relay rl;
	assert_int_equal(store_relay_get(f->st, 9, &rl), 0);
	assert_string_equal(rl.host, "h");
	assert_string_equal(rl.stun_alt, "");

	/* A newer database is refused, and left as it is. */
	store_close(f->st);
	f->st = NULL;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d;", store_schema_version_known() + 1);
	raw_sql(f->dir, sql);
	assert_int_equal(store_open(&f->st, f->dir), -EPROTO);
	assert_null(f->st);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d;", store_schema_version_known());
	raw_sql(f->dir, sql);
	assert_int_equal(store_open(&f->st, f->dir), 0);
	assert_int_equal(store_node_get(f->st, 2, &n), 0);
}

static void test_prefixes(void **state)
{
	struct fixture *f = *state;
	struct ip_prefix v4, v6, b4, b6;
	struct store_node n;

	assert_int_equal(store_get_prefixes(f->st, &v4, &v6), 0);
	assert_int_equal(v4.family, AF_INET);
	assert_int_equal(v4.bits, 10);
	assert_int_equal(ntohl(v4.addr.v4.s_addr), 0x64400000);
	/* RFC 4193: fd, a 40-bit random global id, /48, the rest zero. */
	assert_int_equal(v6.family, AF_INET6);
	assert_int_equal(v6.bits, 48);
	assert_int_equal(v6.addr.bytes[0], 0xfd);
	for (int i = 6; i < 16; i++)
		assert_int_equal(v6.addr.bytes[i], 0);

	assert_int_equal(prefix_parse("10.99.0.0/31", &b4), 0);
	assert_int_equal(prefix_parse("fd00:1::/64", &b6), 0);
	assert_int_equal(store_set_prefixes(f->st, &b4, &b6), -EINVAL);
	assert_int_equal(prefix_parse("10.99.0.0/16", &b4), 0);
	assert_int_equal(store_set_prefixes(f->st, &b6, &b6), -EINVAL);
	assert_int_equal(prefix_parse("fd00:1::/120", &b6), 0);
	assert_int_equal(store_set_prefixes(f->st, &b4, &b6), -EINVAL);
	assert_int_equal(prefix_parse("fd00:1:2:3::/64", &b6), 0);
	assert_int_equal(store_set_prefixes(f->st, &b4, &b6), 0);
	assert_int_equal(reg(f->st, 1, "a", NULL, &n), 1);
	assert_string_equal(n.ipv4, "10.99.0.1");
	assert_string_equal(n.ipv6, "fd00:1:2:3::a63:1");
	/* Once an address is out, the prefixes are fixed. */
	assert_int_equal(store_set_prefixes(f->st, &v4, &v6), -EBUSY);
	assert_int_equal(store_get_prefixes(f->st, &v4, &v6), 0);
	assert_int_equal(v4.bits, 16);
}

static void test_ula_random_per_database(void **state)
{
	struct fixture *f = *state;
	struct ip_prefix a4, a6, b4, b6;
	struct store *other;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/other", f->root);
	assert_int_equal(store_open(&other, dir), 0);
	assert_int_equal(store_get_prefixes(f->st, &a4, &a6), 0);
	assert_int_equal(store_get_prefixes(other, &b4, &b6), 0);
	assert_memory_not_equal(&a6.addr, &b6.addr, 6); /* 2^-40 to fail by chance */
	store_close(other);
}

static void test_authkeys(void **state)
{
	struct fixture *f = *state;
	char single[STORE_AUTHKEY_STRLEN], multi[STORE_AUTHKEY_STRLEN];
	char revoked[STORE_AUTHKEY_STRLEN], shortlived[STORE_AUTHKEY_STRLEN];
	char wrong[STORE_AUTHKEY_STRLEN];
	struct store_authkey k;
	struct store_node n;
	const char *why;
	uint8_t key[32];
	int64_t now = store_now(f->st);

	assert_int_equal(store_authkey_create(f->st, false, 3600, "ci", &k, single), 0);
	assert_int_equal(k.id, 1);
	assert_string_equal(k.prefix, "knit-auth-1");
	assert_string_equal(k.tag, "ci");
	assert_false(k.reusable);
	assert_int_equal(k.used, 0);
	assert_true(k.expires >= now + 3600 && k.expires <= now + 3601);
	assert_int_equal(strncmp(single, "knit-auth-1-", 12), 0);
	assert_int_equal(strlen(single), 12 + 48);
	assert_int_equal(store_authkey_create(f->st, true, 0, NULL, &k, multi), 0);
	assert_int_equal(k.expires, 0);
	assert_int_equal(store_authkey_create(f->st, true, 3600, NULL, &k, revoked), 0);
	assert_int_equal(store_authkey_revoke(f->st, k.id), 0);
	assert_int_equal(store_authkey_create(f->st, true, 60, NULL, &k, shortlived), 0);
	assert_int_equal(store_authkey_create(f->st, false, 0, "bad tag!", &k, wrong), -EINVAL);
	assert_int_equal(store_authkey_revoke(f->st, 99), -ENOENT);

	/* Single use: the first node is approved, the second refused. */
	assert_int_equal(reg(f->st, 1, "a", single, &n), 1);
	assert_true(n.approved);
	assert_int_equal(n.authkey_id, 1);
	key_n(key, 2);
	assert_int_equal(store_node_register(f->st, key, "b", single, &n, &why), -EACCES);
	assert_string_equal(why, "auth key was already used");
	assert_int_equal(store_node_get_by_key(f->st, key, &n), -ENOENT);

	/* Reusable: many nodes, each counted. */
	for (uint32_t i = 10; i < 13; i++) {
		assert_true(reg(f->st, i, "r", multi, &n) > 0);
		assert_true(n.approved);
	}
	assert_int_equal(store_authkey_get(f->st, 2, &k), 0);
	assert_int_equal(k.used, 3);

	assert_int_equal(store_node_register(f->st, key, "b", revoked, &n, &why), -EACCES);
	assert_string_equal(why, "auth key is revoked");

	store_set_now(f->st, now + 61);
	assert_int_equal(store_node_register(f->st, key, "b", shortlived, &n, &why), -EACCES);
	assert_string_equal(why, "auth key is expired");
	store_set_now(f->st, 0);

	/* The right id with the wrong secret, and an id that does not exist. */
	strcpy(wrong, multi);
	wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == '0' ? '1' : '0';
	assert_int_equal(store_node_register(f->st, key, "b", wrong, &n, &why), -EACCES);
	assert_string_equal(why, "auth key is unknown");
	strcpy(wrong, multi);
	wrong[10] = '9'; /* knit-auth-9-<secret of key 2> */
	assert_int_equal(store_node_register(f->st, key, "b", wrong, &n, &why), -EACCES);
	assert_string_equal(why, "auth key is unknown");

	/* Garbage of every shape. */
	{
		char upper[STORE_AUTHKEY_STRLEN], longer[256];
		const char *garbage[] = {
			"hello",
			"knit-auth-",
			"knit-auth-2",
			"knit-auth-2-",
			"knit-auth-2-zz",
			"knit-auth--1-00",
			"knit-auth-02-" /* leading zero */,
			upper,
			longer,
			"knit-auth-99999999999999999999-00",
		};

		strcpy(upper, multi);
		for (char *p = upper + 12; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
		memset(longer, 'a', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		memcpy(longer, multi, strlen(multi));
		for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
			why = NULL;
			assert_int_equal(store_node_register(f->st, key, "b", garbage[i], &n, &why),
					 -EACCES);
			assert_non_null(why);
			assert_true(!strcmp(why, "auth key is malformed") ||
				    !strcmp(why, "auth key is unknown"));
		}
	}
	assert_int_equal(store_node_get_by_key(f->st, key, &n), -ENOENT);

	/* No key at all: a node waiting for approval. */
	assert_true(reg(f->st, 2, "b", NULL, &n) > 0);
	assert_false(n.approved);
	assert_int_equal(n.authkey_id, 0);
	assert_true(reg(f->st, 3, "c", "", &n) > 0);
	assert_false(n.approved);
	/* ... approved later by logging in with a valid key. */
	assert_int_equal(reg(f->st, 3, "c", multi, &n), n.id);
	assert_true(n.approved);
	assert_int_equal(n.authkey_id, 2);

	/* Parsing ids for `authkey revoke`. */
	{
		int64_t id;

		assert_int_equal(store_authkey_parse_id("7", &id), 0);
		assert_int_equal(id, 7);
		assert_int_equal(store_authkey_parse_id("knit-auth-12", &id), 0);
		assert_int_equal(id, 12);
		assert_int_equal(store_authkey_parse_id(multi, &id), 0);
		assert_int_equal(id, 2);
		assert_int_equal(store_authkey_parse_id("0", &id), -EINVAL);
		assert_int_equal(store_authkey_parse_id("x", &id), -EINVAL);
		assert_int_equal(store_authkey_parse_id("7a", &id), -EINVAL);
		assert_int_equal(store_authkey_parse_id("knit-auth-2-zz", &id), -EINVAL);
	}
}

struct authkey_seen {
	int count;
	char prefixes[8][32];
};

static int collect_authkey(const struct store_authkey *k, void *arg)
{
	struct authkey_seen *s = arg;

	if (s->count < 8)
		strcpy(s->prefixes[s->count], k->prefix);
	s->count++;
	return 0;
}

static void test_authkey_list_has_no_secret(void **state)
{
	struct fixture *f = *state;
	char secret[STORE_AUTHKEY_STRLEN], path[256], *db;
	struct authkey_seen seen = {0};
	struct store_authkey k;
	FILE *fp;
	long len;

	assert_int_equal(store_authkey_create(f->st, false, 60, NULL, &k, secret), 0);
	assert_int_equal(store_authkey_create(f->st, true, 60, NULL, &k, secret), 0);
	assert_int_equal(store_authkey_list(f->st, collect_authkey, &seen), 0);
	assert_int_equal(seen.count, 2);
	assert_string_equal(seen.prefixes[0], "knit-auth-1");
	assert_string_equal(seen.prefixes[1], "knit-auth-2");
	/* The secret is nowhere in the database files. */
	store_close(f->st);
	f->st = NULL;
	snprintf(path, sizeof(path), "%s/control.db", f->dir);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	db = malloc((size_t)len + 1);
	assert_int_equal(fread(db, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	assert_null(memmem(db, (size_t)len, secret + 12, 48));
	free(db);
	assert_int_equal(store_open(&f->st, f->dir), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct addr_set {
	size_t n;
	uint32_t *v4;
	char (*v6)[INET6_ADDRSTRLEN];
	struct ip_prefix p4, p6;
};

static int collect_addr(const struct store_node *node, void *arg)
{
	struct addr_set *s = arg;
	struct in6_addr a6;
	struct in_addr a4;

	assert_int_equal(inet_pton(AF_INET, node->ipv4, &a4), 1);
	assert_int_equal(inet_pton(AF_INET6, node->ipv6, &a6), 1);
	assert_true(prefix_contains(&s->p4, AF_INET, &a4));
	assert_true(prefix_contains(&s->p6, AF_INET6, &a6));
	s->v4[s->n] = ntohl(a4.s_addr);
	strcpy(s->v6[s->n], node->ipv6);
	s->n++;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

#define MANY  10000
#define CHUNK 1000

static void test_addresses_unique_at_scale(void **state)
{
	struct fixture *f = *state;
	struct addr_set s = {0};
	double t0, chunk_first = 0, chunk_last = 0, total;
	struct store_node n;

	t0 = now_s();
	for (uint32_t i = 0; i < MANY; i++) {
		double t = now_s();

		/* Half of them share one hostname: names must stay cheap too. */
		assert_int_equal(reg(f->st, i + 1, i % 2 ? "laptop" : NULL, NULL, &n), i + 1);
		if (i < CHUNK)
			chunk_first += now_s() - t;
		else if (i >= MANY - CHUNK)
			chunk_last += now_s() - t;
	}
	total = now_s() - t0;
	print_message("registered %d nodes in %.2f s: %.0f nodes/s; first %d %.3f s, last %d "
		      "%.3f s\n",
		      MANY, total, MANY / total, CHUNK, chunk_first, CHUNK, chunk_last);
	/* O(n) work per node would make the last thousand ~10x slower. */
	assert_true(chunk_last < 4 * chunk_first + 0.2);

	s.v4 = calloc(MANY, sizeof(*s.v4));
	s.v6 = calloc(MANY, sizeof(*s.v6));
	assert_int_equal(store_get_prefixes(f->st, &s.p4, &s.p6), 0);
	assert_int_equal(store_node_list(f->st, collect_addr, &s), 0);
	assert_int_equal(s.n, MANY);
	qsort(s.v4, s.n, sizeof(*s.v4), cmp_u32);
	qsort(s.v6, s.n, sizeof(*s.v6), cmp_str);
	for (size_t i = 0; i < s.n; i++) {
		uint8_t last = s.v4[i] & 0xff;

		assert_true(last != 0 && last != 255);
		if (i) {
			assert_true(s.v4[i] != s.v4[i - 1]);
			assert_string_not_equal(s.v6[i], s.v6[i - 1]);
		}
	}
	/* Names: "laptop", "laptop-2" ... "laptop-5000", each once. */
	assert_int_equal(store_node_get(f->st, 2, &n), 0);
	assert_string_equal(n.name, "laptop");
	assert_int_equal(store_node_get(f->st, MANY, &n), 0);
	assert_string_equal(n.name, "laptop-5000");
	assert_int_equal(store_node_get(f->st, MANY - 1, &n), 0);
	assert_string_equal(n.name, "node-5000");
	free(s.v4);
	free(s.v6);
}

static void test_prefix_full_and_quad100(void **state)
{
	struct fixture *f = *state;
	struct ip_prefix v4, v6;
	struct store_node n;
	uint8_t key[32];
	const char *why;
	int count = 0;

	assert_int_equal(prefix_parse("100.100.100.0/24", &v4), 0);
	assert_int_equal(prefix_parse("fd00:aa::/48", &v6), 0);
	assert_int_equal(store_set_prefixes(f->st, &v4, &v6), 0);
	for (uint32_t i = 1;; i++) {
		key_n(key, i);
		int ret = store_node_register(f->st, key, "x", NULL, &n, &why);

		if (ret == -ENOSPC)
			break;
		assert_int_equal(ret, 0);
		assert_string_not_equal(n.ipv4, "100.100.100.100");
		assert_string_not_equal(n.ipv4, "100.100.100.0");
		assert_string_not_equal(n.ipv4, "100.100.100.255");
		count++;
		assert_true(count <= 253);
	}
	assert_int_equal(count, 253); /* .1 to .254, less .100 */
	/* A removed node's address is handed out again only when it is free. */
	assert_int_equal(store_node_remove(f->st, 7), 0);
	key_n(key, 1000);
	assert_int_equal(store_node_register(f->st, key, "x", NULL, &n, &why), 0);
	assert_string_equal(n.ipv4, "100.100.100.7");
	assert_string_equal(n.ipv6, "fd00:aa::6464:6407");
}

static void test_stable_across_reopen(void **state)
{
	struct fixture *f = *state;
	struct store_node before[20], after;

	for (uint32_t i = 0; i < 20; i++)
		assert_true(reg(f->st, i + 1, "h", NULL, &before[i]) > 0);
	for (int round = 0; round < 2; round++) {
		store_close(f->st);
		assert_int_equal(store_open(&f->st, f->dir), 0);
		for (uint32_t i = 0; i < 20; i++) {
			assert_int_equal(reg(f->st, i + 1, "other-name", NULL, &after),
					 before[i].id);
			assert_string_equal(after.ipv4, before[i].ipv4);
			assert_string_equal(after.ipv6, before[i].ipv6);
			assert_string_equal(after.name, before[i].name);
			assert_int_equal(after.created, before[i].created);
		}
	}
	/* New nodes after a restart do not take anyone's address. */
	assert_true(reg(f->st, 100, "new", NULL, &after) > 0);
	for (int i = 0; i < 20; i++)
		assert_string_not_equal(after.ipv4, before[i].ipv4);
}

static void test_names(void **state)
{
	struct fixture *f = *state;
	char out[STORE_NAME_LEN], longname[200];
	struct store_node n;

	store_name_sanitize("My Laptop.example.com", out);
	assert_string_equal(out, "my-laptop");
	store_name_sanitize("--a__b--", out);
	assert_string_equal(out, "a-b");
	store_name_sanitize("", out);
	assert_string_equal(out, "node");
	store_name_sanitize(NULL, out);
	assert_string_equal(out, "node");
	store_name_sanitize("\xc3\xa4\xc3\xb6", out);
	assert_string_equal(out, "node");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	store_name_sanitize(longname, out);
	assert_int_equal(strlen(out), 63);
	assert_true(store_name_valid(out));
	assert_false(store_name_valid(""));
	assert_false(store_name_valid("-a"));
	assert_false(store_name_valid("a-"));
	assert_false(store_name_valid("A"));
	assert_false(store_name_valid("a.b"));
	assert_true(store_name_valid("a-1"));

	assert_true(reg(f->st, 1, "My Laptop", NULL, &n) > 0);
	assert_string_equal(n.name, "my-laptop");
	assert_true(reg(f->st, 2, "my-laptop", NULL, &n) > 0);
	assert_string_equal(n.name, "my-laptop-2");
	assert_true(reg(f->st, 3, "MY_LAPTOP", NULL, &n) > 0);
	assert_string_equal(n.name, "my-laptop-3");
	/* Someone took -4 by renaming: the next one skips it. */
	assert_int_equal(store_node_rename(f->st, 3, "my-laptop-4"), 0);
	assert_true(reg(f->st, 4, "my-laptop", NULL, &n) > 0);
	assert_string_equal(n.name, "my-laptop-5");
	/* Renames are checked. */
	assert_int_equal(store_node_rename(f->st, 4, "my-laptop"), -EEXIST);
	assert_int_equal(store_node_rename(f->st, 4, "Bad Name"), -EINVAL);
	assert_int_equal(store_node_rename(f->st, 99, "free"), -ENOENT);
	assert_int_equal(store_node_get_by_name(f->st, "my-laptop-4", &n), 0);
	assert_int_equal(n.id, 3);
	/* Long names stay within 63 characters with their suffix. */
	assert_true(reg(f->st, 5, longname, NULL, &n) > 0);
	assert_true(reg(f->st, 6, longname, NULL, &n) > 0);
	assert_int_equal(strlen(n.name), 63);
	assert_string_equal(n.name + 61, "-2");
}

struct change_log {
	int count;
	struct store_change c[16];
};

static int collect_change(const struct store_change *c, void *arg)
{
	struct change_log *l = arg;

	if (l->count < 16)
		l->c[l->count] = *c;
	l->count++;
	return 0;
}

static void expect_change(struct store *st, int64_t *seq, enum store_change_kind kind, int64_t id)
{
	struct change_log l = {0};
	int64_t last;

	assert_int_equal(store_changes_since(st, *seq, collect_change, &l, &last), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.c[0].kind, kind);
	assert_int_equal(l.c[0].node_id, id);
	assert_true(l.c[0].seq > *seq);
	assert_int_equal(last, l.c[0].seq);
	*seq = last;
}

static void expect_no_change(struct store *st, int64_t seq)
{
	struct change_log l = {0};
	int64_t last;

	assert_int_equal(store_changes_since(st, seq, collect_change, &l, &last), 0);
	assert_int_equal(l.count, 0);
	assert_int_equal(last, seq);
}

static void test_changes(void **state)
{
	struct fixture *f = *state;
	struct store_relay r = {
		.id = 1, .region = "ams", .host = "relay.example", .port = 443, .stun_port = 3478};
	struct change_log l = {0};
	struct store_node n;
	uint8_t disco[32];
	int64_t seq = 0, last;

	expect_no_change(f->st, 0);
	assert_true(reg(f->st, 1, "a", NULL, &n) > 0);
	expect_change(f->st, &seq, STORE_NODE_ADDED, 1);
	/* Logging in again is not a change. */
	assert_int_equal(reg(f->st, 1, "a", NULL, &n), 1);
	expect_no_change(f->st, seq);

	assert_int_equal(store_node_set_approved(f->st, 1, true), 0);
	expect_change(f->st, &seq, STORE_NODE_CHANGED, 1);
	assert_int_equal(store_node_set_approved(f->st, 1, true), 0); /* no-op */
	expect_no_change(f->st, seq);
	assert_int_equal(store_node_set_quarantined(f->st, 1, true), 0);
	expect_change(f->st, &seq, STORE_NODE_CHANGED, 1);
	assert_int_equal(store_node_get(f->st, 1, &n), 0);
	assert_true(n.quarantined);
	assert_int_equal(store_node_set_quarantined(f->st, 1, false), 0);
	expect_change(f->st, &seq, STORE_NODE_CHANGED, 1);
	assert_int_equal(store_node_expire(f->st, 1), 0);
	expect_change(f->st, &seq, STORE_NODE_CHANGED, 1);
	assert_int_equal(store_node_get(f->st, 1, &n), 0);
	assert_true(store_node_expired(&n, store_now(f->st)));
	assert_int_equal(store_node_rename(f->st, 1, "renamed"), 0);
	expect_change(f->st, &seq, STORE_NODE_CHANGED, 1);
	memset(disco, 7, sizeof(disco));
	assert_int_equal(store_node_set_disco_key(f->st, 1, disco), 0);
	expect_change(f->st, &seq, STORE_NODE_CHANGED, 1);
	assert_int_equal(store_node_get(f->st, 1, &n), 0);
	assert_memory_equal(n.disco_key, disco, 32);
	assert_int_equal(store_node_set_disco_key(f->st, 1, disco), 0);
	expect_no_change(f->st, seq);
	assert_int_equal(store_node_set_last_seen(f->st, 1, 12345), 0);
	expect_no_change(f->st, seq); /* documented: no change */
	assert_int_equal(store_node_get(f->st, 1, &n), 0);
	assert_int_equal(n.last_seen, 12345);

	memset(r.key, 9, sizeof(r.key));
	assert_int_equal(store_relay_add(f->st, &r), 0);
	expect_change(f->st, &seq, STORE_RELAY_CHANGED, 1);

	assert_int_equal(store_node_remove(f->st, 1), 0);
	expect_change(f->st, &seq, STORE_NODE_REMOVED, 1);
	assert_int_equal(store_node_get(f->st, 1, &n), -ENOENT);

	/* Errors change nothing. */
	assert_int_equal(store_node_remove(f->st, 1), -ENOENT);
	assert_int_equal(store_node_set_quarantined(f->st, 1, true), -ENOENT);
	assert_int_equal(store_node_set_approved(f->st, 1, true), -ENOENT);
	assert_int_equal(store_node_expire(f->st, 1), -ENOENT);
	assert_int_equal(store_node_set_last_seen(f->st, 1, 1), -ENOENT);
	expect_no_change(f->st, seq);

	/* The whole log, in order, and pruning. */
	assert_int_equal(store_changes_since(f->st, 0, collect_change, &l, &last), 0);
	assert_int_equal(l.count, 9);
	assert_int_equal(last, seq);
	for (int i = 1; i < l.count; i++)
		assert_true(l.c[i].seq > l.c[i - 1].seq);
	assert_string_equal(store_change_kind_name(l.c[0].kind), "node-added");
	assert_string_equal(store_change_kind_name(l.c[8].kind), "node-removed");
	assert_int_equal(store_prune_changes(f->st, l.c[4].seq), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_changes_since(f->st, 0, collect_change, &l, &last), 0);
	assert_int_equal(l.count, 4);
	/* Sequence numbers are never reused, even after pruning everything. */
	assert_int_equal(store_prune_changes(f->st, seq), 0);
	assert_true(reg(f->st, 2, "b", NULL, &n) > 0);
	expect_change(f->st, &seq, STORE_NODE_ADDED, n.id);
}

static void test_data_version_sees_other_writers(void **state)
{
	struct fixture *f = *state;
	struct store *other;
	int64_t v0, v1, v2, seq0, seq;
	struct change_log l = {0};
	struct store_node n;

	assert_true(reg(f->st, 1, "a", NULL, &n) > 0);
	assert_int_equal(store_open(&other, f->dir), 0);
	assert_int_equal(store_data_version(f->st, &v0), 0);
	assert_int_equal(store_changes_last(f->st, &seq0), 0);
	/* Our own writes do not move our data_version ... */
	assert_int_equal(store_node_set_quarantined(f->st, 1, true), 0);
	assert_int_equal(store_data_version(f->st, &v1), 0);
	assert_int_equal(v1, v0);
	/* ... another connection's do, and its changes are in the log. */
	assert_int_equal(store_node_set_approved(other, 1, true), 0);
	assert_int_equal(store_data_version(f->st, &v2), 0);
	assert_int_not_equal(v2, v1);
	assert_int_equal(store_changes_since(f->st, seq0, collect_change, &l, &seq), 0);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.c[1].kind, STORE_NODE_CHANGED);
	assert_int_equal(store_node_get(f->st, 1, &n), 0);
	assert_true(n.approved);
	/* Nothing new: the version stays. */
	assert_int_equal(store_data_version(f->st, &v1), 0);
	assert_int_equal(v1, v2);
	store_close(other);
}

static void test_expiry_and_relogin(void **state)
{
	struct fixture *f = *state;
	char key[STORE_AUTHKEY_STRLEN], once[STORE_AUTHKEY_STRLEN];
	int64_t now = 1700000000, ttl;
	struct store_authkey k;
	struct store_node n, again;
	uint8_t nk[32];
	const char *why;

	store_set_now(f->st, now);
	assert_int_equal(store_get_key_expiry(f->st, &ttl), 0);
	assert_int_equal(ttl, STORE_DEFAULT_KEY_EXPIRY);
	assert_int_equal(store_authkey_create(f->st, true, 0, NULL, &k, key), 0);
	assert_int_equal(store_authkey_create(f->st, false, 0, NULL, &k, once), 0);
	assert_true(reg(f->st, 1, "a", once, &n) > 0);
	assert_int_equal(n.expires, now + 180LL * 86400);
	assert_int_equal(store_set_key_expiry(f->st, 3600), 0);
	assert_int_equal(store_set_key_expiry(f->st, -1), -EINVAL);
	assert_true(reg(f->st, 2, "b", key, &n) > 0);
	assert_int_equal(n.expires, now + 3600);

	/* Past its expiry the node is still the same node, and says so. */
	store_set_now(f->st, now + 3600);
	assert_int_equal(reg(f->st, 2, "b", NULL, &again), n.id);
	assert_true(store_node_expired(&again, store_now(f->st)));
	/* A spent single-use key does not renew it; a bad key is refused. */
	key_n(nk, 2);
	assert_int_equal(store_node_register(f->st, nk, "b", once, &again, &why), -EACCES);
	assert_string_equal(why, "auth key was already used");
	assert_int_equal(store_node_register(f->st, nk, "b", "junk", &again, &why), -EACCES);
	assert_string_equal(why, "auth key is malformed");
	/* A valid key renews it: same id, same addresses, new expiry. */
	assert_int_equal(reg(f->st, 2, "b", key, &again), n.id);
	assert_false(store_node_expired(&again, store_now(f->st)));
	assert_int_equal(again.expires, now + 3600 + 3600);
	assert_string_equal(again.ipv4, n.ipv4);
	assert_string_equal(again.ipv6, n.ipv6);
	/* A node that is not expired does not spend a key by logging in. */
	assert_int_equal(store_authkey_get(f->st, 1, &k), 0);
	assert_int_equal(k.used, 2);
	assert_int_equal(reg(f->st, 2, "b", key, &again), n.id);
	assert_int_equal(store_authkey_get(f->st, 1, &k), 0);
	assert_int_equal(k.used, 2);

	/* 0: never expires. */
	assert_int_equal(store_set_key_expiry(f->st, 0), 0);
	assert_true(reg(f->st, 3, "c", key, &n) > 0);
	assert_int_equal(n.expires, 0);
	store_set_now(f->st, INT32_MAX);
	assert_false(store_node_expired(&n, store_now(f->st)));
	store_set_now(f->st, 0);

	/* A node key of zeros is refused. */
	memset(nk, 0, sizeof(nk));
	assert_int_equal(store_node_register(f->st, nk, "z", NULL, &n, &why), -EINVAL);
}

static int count_relay(const struct store_relay *r, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void test_relays(void **state)
{
	struct fixture *f = *state;
	struct store_relay r = {.id = 5,
				.region = "fra",
				.host = "10.0.0.1",
				.port = 8443,
				.stun_port = 3478},
			   got, bad;
	int count = 0;

	memset(r.key, 1, sizeof(r.key));
	assert_int_equal(store_relay_add(f->st, &r), 0);
	assert_int_equal(store_relay_add(f->st, &r), -EEXIST);
	r.id = 6;
	assert_int_equal(store_relay_add(f->st, &r), -EEXIST); /* same key */
	r.key[0] = 2;
	strcpy(r.host, "relay-2.example.net");
	assert_int_equal(store_relay_add(f->st, &r), 0);
	assert_int_equal(store_relay_get_by_key(f->st, r.key, &got), 0);
	assert_int_equal(got.id, 6);
	assert_string_equal(got.host, "relay-2.example.net");
	assert_int_equal(got.port, 8443);
	assert_int_equal(got.stun_port, 3478);
	assert_string_equal(got.region, "fra");
	assert_int_equal(store_relay_get(f->st, 5, &got), 0);
	assert_string_equal(got.host, "10.0.0.1");
	assert_string_equal(got.stun_alt, "");

	/* An RFC 5780 alternate, kept as given; a malformed one refused. */
	bad = r;
	bad.id = 8;
	bad.key[0] = 8;
	strcpy(bad.stun_alt, "[2001:db8::2]:3479");
	assert_int_equal(store_relay_add(f->st, &bad), 0);
	assert_int_equal(store_relay_get(f->st, 8, &got), 0);
	assert_string_equal(got.stun_alt, "[2001:db8::2]:3479");
	assert_int_equal(store_relay_remove(f->st, 8), 0);
	strcpy(bad.stun_alt, "10.0.0.2");
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	strcpy(bad.stun_alt, "10.0.0.2:0");
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	strcpy(bad.stun_alt, "a b:3479");
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	strcpy(bad.stun_alt, ":3479");
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);

	bad = r;
	bad.id = 0;
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	bad = r;
	bad.id = 7;
	bad.key[0] = 3;
	bad.port = 0;
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	bad.port = 1;
	strcpy(bad.host, "a host");
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	strcpy(bad.host, "h");
	strcpy(bad.region, "");
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);
	strcpy(bad.region, "r");
	memset(bad.key, 0, sizeof(bad.key));
	assert_int_equal(store_relay_add(f->st, &bad), -EINVAL);

	assert_int_equal(store_relay_list(f->st, count_relay, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_relay_remove(f->st, 5), 0);
	assert_int_equal(store_relay_remove(f->st, 5), -ENOENT);
	assert_int_equal(store_relay_get(f->st, 5, &got), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_private_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefixes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ula_random_per_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authkeys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authkey_list_has_no_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addresses_unique_at_scale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_full_and_quad100, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stable_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_version_sees_other_writers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_relogin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relays, setup, teardown),
	};

	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
