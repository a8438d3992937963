// SPDX-License-Identifier: MIT
/* lab/ctfilter: option parsing, flow matching, element text, bookkeeping. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The lab tool's pure parts, compiled into this test directly. */
#include "../../lab/ctfilter/spec.c"
#include "../../lab/ctfilter/track.c"

#define MS 1000000ULL

static struct ct_flow v4_flow(void)
{
	struct ct_flow f = {.id = 1, .family = AF_INET, .proto = IPPROTO_UDP};

	inet_pton(AF_INET, "10.0.1.2", f.saddr);
	inet_pton(AF_INET, "192.0.2.2", f.daddr);
	inet_pton(AF_INET, "198.51.100.1", f.maddr);
	f.sport = 5000;
	f.dport = 3478;
	f.mport = 40000;
	f.snat = true;
	return f;
}

static void test_parse_set(void **state)
{
	struct ct_spec s;
	char long_name[80];

	ct_spec_init(&s);
	assert_int_equal(ct_spec_parse_set(&s, "inet:lab:adf"), 0);
	assert_string_equal(s.family, "inet");
	assert_string_equal(s.table, "lab");
	assert_string_equal(s.set, "adf");
	assert_int_equal(ct_spec_parse_set(&s, "ip:nat_1:eif.v2"), 0);
	assert_string_equal(s.set, "eif.v2");
	assert_int_equal(ct_spec_parse_set(&s, "lab:adf"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ipx:lab:adf"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "i:lab:adf"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip::adf"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip:lab:"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip:1lab:x"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip:lab:x y"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip:lab:x}"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip:lab:a:b"), -EINVAL);
	assert_int_equal(ct_spec_parse_set(&s, "ip:lab:\"x\""), -EINVAL);
	/* Names of 64 characters pass, 65 do not. */
	memcpy(long_name, "ip:", 3);
	memset(long_name + 3, 'a', 64);
	strcpy(long_name + 67, ":s");
	assert_int_equal(ct_spec_parse_set(&s, long_name), 0);
	assert_int_equal(strlen(s.table), 64);
	assert_int_equal(ct_spec_parse_set(&s, "ip:nat_1:eif.v2"), 0);
	memset(long_name + 3, 'a', 65);
	strcpy(long_name + 68, ":s");
	assert_int_equal(ct_spec_parse_set(&s, long_name), -EINVAL);
	assert_string_equal(s.set, "eif.v2"); /* unchanged by refusals */
}

static void test_parse_fields(void **state)
{
	struct ct_fields f;

	assert_int_equal(ct_fields_parse("daddr.mapped-port", &f), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.f[0], CT_DADDR);
	assert_int_equal(f.f[1], CT_MAPPED_PORT);
	assert_int_equal(ct_fields_parse("saddr.sport.daddr.dport.mapped-addr.mapped-port", &f), 0);
	assert_int_equal(f.n, 6);
	assert_int_equal(ct_fields_parse("", &f), -EINVAL);
	assert_int_equal(ct_fields_parse(".", &f), -EINVAL);
	assert_int_equal(ct_fields_parse("daddr.", &f), -EINVAL);
	assert_int_equal(ct_fields_parse(".daddr", &f), -EINVAL);
	assert_int_equal(ct_fields_parse("sport.sport", &f), -EINVAL);
	assert_int_equal(ct_fields_parse("port", &f), -EINVAL);
	assert_int_equal(ct_fields_parse("mapped", &f), -EINVAL);
	assert_int_equal(ct_fields_parse("daddrx", &f), -EINVAL);
}

static void test_parse_mark_and_src(void **state)
{
	struct ct_spec s;
	const char *why;
	int i;

	ct_spec_init(&s);
	assert_int_equal(ct_spec_parse_mark(&s, "0x10/0xf0"), 0);
	assert_true(s.match_mark);
	assert_int_equal(s.mark, 0x10);
	assert_int_equal(s.mark_mask, 0xf0);
	assert_int_equal(ct_spec_parse_mark(&s, "17"), 0);
	assert_int_equal(s.mark, 17);
	assert_int_equal(s.mark_mask, UINT32_MAX);
	assert_int_equal(ct_spec_parse_mark(&s, "x"), -EINVAL);
	assert_int_equal(ct_spec_parse_mark(&s, "1/0"), -EINVAL);
	assert_int_equal(ct_spec_parse_mark(&s, "-1"), -EINVAL);
	assert_int_equal(ct_spec_parse_mark(&s, "0x100000000"), -EINVAL);
	assert_int_equal(ct_spec_parse_mark(&s, "1/"), -EINVAL);

	assert_int_equal(ct_spec_add_src(&s, "10.0.1.7/24"), 0);
	assert_int_equal(ct_spec_add_src(&s, "10.0.1.0/33"), -EINVAL);
	assert_int_equal(ct_spec_add_src(&s, "nonsense"), -EINVAL);
	for (i = 1; i < CT_MAX_SRC; i++)
		assert_int_equal(ct_spec_add_src(&s, "10.9.0.0/16"), 0);
	assert_int_equal(ct_spec_add_src(&s, "10.9.0.0/16"), -ENOSPC);

	ct_spec_init(&s);
	assert_int_equal(ct_spec_check(&s, &why), -EINVAL);
	assert_string_equal(why, "--set FAMILY:TABLE:SET is required");
	assert_int_equal(ct_spec_parse_set(&s, "ip6:lab:adf"), 0);
	assert_int_equal(ct_spec_check(&s, &why), -EINVAL);
	assert_string_equal(why, "--key FIELDS is required");
	assert_int_equal(ct_fields_parse("daddr", &s.key), 0);
	assert_int_equal(ct_spec_check(&s, &why), -EINVAL); /* IPv4 into an ip6 table */
	s.ip_family = AF_INET6;
	assert_int_equal(ct_spec_check(&s, &why), 0);
	assert_int_equal(ct_spec_add_src(&s, "10.0.0.0/8"), 0);
	assert_int_equal(ct_spec_check(&s, &why), -EINVAL);
	assert_string_equal(why, "a --src prefix is not of the --ip version");
}

static void test_match(void **state)
{
	struct ct_spec s;
	struct ct_flow f = v4_flow();

	ct_spec_init(&s);
	assert_true(ct_spec_match(&s, &f));
	f.proto = IPPROTO_TCP;
	assert_false(ct_spec_match(&s, &f));
	s.proto = IPPROTO_TCP;
	assert_true(ct_spec_match(&s, &f));
	f = v4_flow();
	s.proto = IPPROTO_UDP;
	s.ip_family = AF_INET6;
	assert_false(ct_spec_match(&s, &f));
	s.ip_family = AF_INET;

	assert_int_equal(ct_spec_add_src(&s, "10.0.2.0/24"), 0);
	assert_false(ct_spec_match(&s, &f));
	assert_int_equal(ct_spec_add_src(&s, "10.0.0.0/16"), 0);
	assert_true(ct_spec_match(&s, &f)); /* any prefix will do */

	s.snat_only = true;
	f.snat = false;
	assert_false(ct_spec_match(&s, &f));
	f.snat = true;
	assert_true(ct_spec_match(&s, &f));

	assert_int_equal(ct_spec_parse_mark(&s, "0x10/0xf0"), 0);
	assert_false(ct_spec_match(&s, &f)); /* no mark: 0 */
	f.has_mark = true;
	f.mark = 0x1f;
	assert_true(ct_spec_match(&s, &f));
	f.mark = 0x20;
	assert_false(ct_spec_match(&s, &f));
}

static void test_element_text(void **state)
{
	struct ct_spec s;
	struct ct_flow f = v4_flow(), g = {.family = AF_INET6, .proto = IPPROTO_UDP};
	char buf[CT_ELEM_MAX];

	ct_spec_init(&s);
	assert_int_equal(ct_fields_parse("daddr.mapped-port", &s.key), 0);
	assert_int_equal(ct_element(&s, &f, true, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.2 . 40000");
	s.timeout_s = 30;
	assert_int_equal(ct_element(&s, &f, true, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.2 . 40000 timeout 30s");

	assert_int_equal(ct_fields_parse("mapped-port", &s.key), 0);
	assert_int_equal(ct_fields_parse("saddr.sport", &s.value), 0);
	assert_int_equal(ct_element(&s, &f, true, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "40000 timeout 30s : 10.0.1.2 . 5000");
	assert_int_equal(ct_element(&s, &f, false, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "40000"); /* what delete takes */

	assert_int_equal(ct_fields_parse("mapped-addr.dport", &s.key), 0);
	s.value.n = 0;
	s.timeout_s = 0;
	assert_int_equal(ct_element(&s, &f, true, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.1 . 3478");

	inet_pton(AF_INET6, "2001:db8::1", g.saddr);
	g.sport = 1;
	assert_int_equal(ct_fields_parse("saddr.sport", &s.key), 0);
	assert_int_equal(ct_element(&s, &g, true, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2001:db8::1 . 1");

	assert_int_equal(ct_element(&s, &g, true, true, buf, 8), -ENOSPC);
	assert_int_equal(ct_element(&s, &g, true, true, buf, 0), -ENOSPC);
}

/* Fake nftables: records what was added and deleted. */
struct fake {
	int adds, dels;
	char last_add[CT_ELEM_MAX], last_del[CT_ELEM_MAX];
	bool fail_add;
};

static int fake_add(void *arg, const char *elem)
{
	struct fake *f = arg;

	if (f->fail_add)
		return -EIO;
	f->adds++;
	strcpy(f->last_add, elem);
	return 0;
}

static int fake_del(void *arg, const char *elem)
{
	struct fake *f = arg;

	f->dels++;
	strcpy(f->last_del, elem);
	return 0;
}

static void track_setup(struct ct_track *t, struct fake *f, uint64_t delay, bool refresh,
			size_t max)
{
	struct ct_track_ops ops = {.add = fake_add, .del = fake_del, .arg = f};

	memset(f, 0, sizeof(*f));
	assert_int_equal(ct_track_init(t, max, delay, refresh, &ops), 0);
}

static void test_track_counts_flows(void **state)
{
	struct ct_track t;
	struct fake f;

	track_setup(&t, &f, 0, false, 16);
	assert_int_equal(ct_track_new(&t, 0, 1, "40000 : 10.0.1.2 . 5000", "40000"), 0);
	assert_int_equal(f.adds, 1);
	assert_string_equal(f.last_add, "40000 : 10.0.1.2 . 5000");
	/* A second flow on the same mapping: one element, counted twice. */
	assert_int_equal(ct_track_new(&t, 0, 2, "40000 : 10.0.1.2 . 5000", "40000"), 0);
	assert_int_equal(f.adds, 1);
	assert_int_equal(ct_track_new(&t, 0, 2, "40000 : 10.0.1.2 . 5000", "40000"), -EEXIST);
	assert_int_equal(t.stats.flows, 2);
	assert_int_equal(t.stats.elements, 1);
	assert_int_equal(ct_track_destroy(&t, 1), 0);
	assert_int_equal(f.dels, 0);
	assert_int_equal(ct_track_destroy(&t, 1), -ENOENT);
	assert_int_equal(ct_track_destroy(&t, 2), 0);
	assert_int_equal(f.dels, 1);
	assert_string_equal(f.last_del, "40000");
	assert_int_equal(t.stats.elements, 0);
	assert_int_equal(t.stats.flows, 0);
	/* Gone for good: a new flow adds it again. */
	assert_int_equal(ct_track_new(&t, 0, 3, "40000 : 10.0.1.2 . 5000", "40000"), 0);
	assert_int_equal(f.adds, 2);
	ct_track_remove_all(&t);
	assert_int_equal(f.dels, 2);
	ct_track_free(&t);
}

static void test_track_delay(void **state)
{
	struct ct_track t;
	struct fake f;

	track_setup(&t, &f, 500 * MS, false, 16);
	assert_int_equal(ct_track_new(&t, 1000 * MS, 7, "a", "a"), 0);
	assert_int_equal(f.adds, 0);
	assert_true(ct_track_next_deadline(&t) == 1500 * MS);
	ct_track_run(&t, 1500 * MS - 1);
	assert_int_equal(f.adds, 0);
	ct_track_run(&t, 1500 * MS);
	assert_int_equal(f.adds, 1);
	assert_true(ct_track_next_deadline(&t) == UINT64_MAX);

	/* A flow destroyed during its delay never opens anything. */
	assert_int_equal(ct_track_new(&t, 2000 * MS, 8, "b", "b"), 0);
	assert_int_equal(ct_track_destroy(&t, 8), 0);
	ct_track_run(&t, 3000 * MS);
	assert_int_equal(f.adds, 1);
	assert_int_equal(f.dels, 0);

	/* Two flows of one element during the delay: one add at the first's time. */
	assert_int_equal(ct_track_new(&t, 4000 * MS, 9, "c", "c"), 0);
	assert_int_equal(ct_track_new(&t, 4100 * MS, 10, "c", "c"), 0);
	ct_track_run(&t, 4500 * MS);
	assert_int_equal(f.adds, 2);
	ct_track_run(&t, 4600 * MS);
	assert_int_equal(f.adds, 2);
	ct_track_free(&t); /* leaves nothing behind (ASan) */
}

static void test_track_refresh_and_failures(void **state)
{
	struct ct_track t;
	struct fake f;

	/* With element timeouts, every flow adds again: the kernel may have expired it. */
	track_setup(&t, &f, 0, true, 16);
	assert_int_equal(ct_track_new(&t, 0, 1, "a", "a"), 0);
	assert_int_equal(ct_track_new(&t, 0, 2, "a", "a"), 0);
	assert_int_equal(f.adds, 2);
	assert_int_equal(t.stats.elements, 1);
	ct_track_free(&t);

	/* An element nftables refused is not deleted later. */
	track_setup(&t, &f, 0, false, 16);
	f.fail_add = true;
	assert_int_equal(ct_track_new(&t, 0, 1, "a", "a"), 0);
	assert_int_equal(t.stats.add_errors, 1);
	assert_int_equal(ct_track_destroy(&t, 1), 0);
	assert_int_equal(f.dels, 0);
	ct_track_free(&t);

	/* Bounded: past max_flows, flows are refused and counted. */
	track_setup(&t, &f, 0, false, 2);
	assert_int_equal(ct_track_new(&t, 0, 1, "a", "a"), 0);
	assert_int_equal(ct_track_new(&t, 0, 2, "b", "b"), 0);
	assert_int_equal(ct_track_new(&t, 0, 3, "c", "c"), -ENOSPC);
	assert_int_equal(t.stats.full, 1);
	assert_int_equal(ct_track_destroy(&t, 1), 0);
	assert_int_equal(ct_track_new(&t, 0, 3, "c", "c"), 0);
	ct_track_free(&t);

	/* Bounded with a delay: churn during the delay cannot overflow the queue. */
	track_setup(&t, &f, 100 * MS, false, 2);
	assert_int_equal(ct_track_new(&t, 0, 1, "a", "a"), 0);
	assert_int_equal(ct_track_destroy(&t, 1), 0);
	assert_int_equal(ct_track_new(&t, 0, 2, "b", "b"), 0);
	assert_int_equal(ct_track_destroy(&t, 2), 0);
	assert_int_equal(ct_track_new(&t, 0, 3, "c", "c"), -ENOSPC);
	ct_track_run(&t, 100 * MS);
	assert_int_equal(f.adds, 0);
	assert_int_equal(ct_track_new(&t, 100 * MS, 3, "c", "c"), 0);
	ct_track_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_set),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_mark_and_src),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_element_text),
		cmocka_unit_test(test_track_counts_flows),
		cmocka_unit_test(test_track_delay),
		cmocka_unit_test(test_track_refresh_and_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
