// SPDX-License-Identifier: MIT
/* src/lib/addr.c: prefixes and endpoints, good and hostile input. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/addr.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Parses, optionally masks, prints; the output must be exactly `want`. */
static void check_prefix(const char *in, bool mask, const char *want)
{
	char buf[PREFIX_STRLEN];
	struct ip_prefix p;

	assert_int_equal(prefix_parse(in, &p), 0);
	if (mask)
		prefix_mask(&p);
	assert_int_equal(prefix_format(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void test_prefix_parse_good(void **state)
{
	struct ip_prefix p;

	assert_int_equal(prefix_parse("10.0.0.1/24", &p), 0);
	assert_int_equal(p.family, AF_INET);
	assert_int_equal(p.bits, 24);
	assert_int_equal(p.addr.bytes[3], 1); /* host bits kept */
	assert_int_equal(prefix_parse("fd00::1", &p), 0);
	assert_int_equal(p.family, AF_INET6);
	assert_int_equal(p.bits, 128);
	check_prefix("10.0.0.1/24", false, "10.0.0.1/24");
	check_prefix("10.0.0.1", false, "10.0.0.1/32");
	check_prefix("0.0.0.0/0", false, "0.0.0.0/0");
	check_prefix("255.255.255.255/32", false, "255.255.255.255/32");
	check_prefix("::/0", false, "::/0");
	check_prefix("FD00:0:0::1/64", false, "fd00::1/64");
	check_prefix("::ffff:10.0.0.1/128", false, "::ffff:10.0.0.1/128");
}

static void test_prefix_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		" ",
		"/24",
		" 10.0.0.1",
		"10.0.0.1 ",
		"10.0.0.1/24 ",
		"10.0.0.1 /24",
		"10.0.0.1/ 24",
		"10.0.0.1/",
		"10.0.0.1/33",
		"10.0.0.1/-1",
		"10.0.0.1/+8",
		"10.0.0.1/0x8",
		"10.0.0.1/24/8",
		"10.0.0.1/99999999999999999999999",
		"10.0.0.256",
		"10.0.0",
		"010.0.0.1",
		"garbage",
		"::/129",
		"::/1000",
		"fd00::/64x",
		"fd00:::1",
		"1:2:3:4:5:6:7:8:9",
		"fe80::1%eth0",
		"[::1]",
		"10.0.0.1\n",
	};
	char big[512];
	struct ip_prefix p;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (prefix_parse(bad[i], &p) != -EINVAL)
			fail_msg("accepted prefix \"%s\"", bad[i]);
	}
	/* Longer than any address: refused without overflowing a local copy. */
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(prefix_parse(big, &p), -EINVAL);
	memcpy(big, "10.0.0.1/", 9);
	assert_int_equal(prefix_parse(big, &p), -EINVAL);
}

static void test_prefix_mask(void **state)
{
	check_prefix("10.1.2.3/0", true, "0.0.0.0/0");
	check_prefix("10.255.255.255/1", true, "0.0.0.0/1");
	check_prefix("200.255.255.255/1", true, "128.0.0.0/1");
	check_prefix("10.255.255.255/9", true, "10.128.0.0/9");
	check_prefix("10.1.2.3/16", true, "10.1.0.0/16");
	check_prefix("10.1.2.3/31", true, "10.1.2.2/31");
	check_prefix("10.1.2.3/32", true, "10.1.2.3/32");
	check_prefix("fd00:1:8002:3::9/33", true, "fd00:1:8000::/33");
	check_prefix("fd00:1:2:3:ffff:ffff:ffff:ffff/64", true, "fd00:1:2:3::/64");
	check_prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127", true,
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
	check_prefix("fd00::1/128", true, "fd00::1/128");
	check_prefix("ffff::1/0", true, "::/0");
}

static bool contains(const char *prefix, const char *addr)
{
	uint8_t a[16];
	struct ip_prefix p;
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(prefix_parse(prefix, &p), 0);
	assert_int_equal(inet_pton(family, addr, a), 1);
	return prefix_contains(&p, family, a);
}

static void test_prefix_contains(void **state)
{
	struct ip_prefix p;
	uint8_t a[16] = {0};

	assert_true(contains("10.1.2.0/23", "10.1.2.0"));
	assert_true(contains("10.1.2.0/23", "10.1.3.255"));
	assert_false(contains("10.1.2.0/23", "10.1.4.0"));
	assert_false(contains("10.1.2.0/23", "10.1.1.255"));
	/* Host bits in the prefix do not matter. */
	assert_true(contains("10.1.2.77/24", "10.1.2.1"));
	assert_true(contains("0.0.0.0/0", "255.255.255.255"));
	assert_true(contains("10.0.0.1/32", "10.0.0.1"));
	assert_false(contains("10.0.0.1/32", "10.0.0.0"));
	assert_true(contains("10.0.0.0/31", "10.0.0.1"));
	assert_false(contains("10.0.0.0/31", "10.0.0.2"));
	assert_true(contains("fd00:1::/64", "fd00:1::ffff:1"));
	assert_true(contains("fd00:1::/64", "fd00:1:0:0:ffff:ffff:ffff:ffff"));
	assert_false(contains("fd00:1::/64", "fd00:1:0:1::"));
	assert_true(contains("fd00::/7", "fdff::1"));
	assert_true(contains("fd00::/7", "fc00::1"));
	assert_false(contains("fd00::/7", "fe00::1"));
	assert_true(contains("::/0", "2001:db8::1"));
	assert_true(contains("::1/128", "::1"));
	assert_false(contains("::1/128", "::2"));
	/* The families never mix, even for mapped addresses. */
	assert_false(contains("::ffff:10.0.0.0/104", "10.0.0.1"));
	assert_int_equal(prefix_parse("0.0.0.0/0", &p), 0);
	assert_false(prefix_contains(&p, AF_INET6, a));
	/* A corrupt length must not read past the address. */
	p.bits = 200;
	assert_false(prefix_contains(&p, AF_INET, a));
}

static void test_prefix_format_small_buffer(void **state)
{
	char buf[8];
	struct ip_prefix p;

	assert_int_equal(prefix_parse("192.168.100.200/24", &p), 0);
	assert_int_equal(prefix_format(&p, buf, sizeof(buf)), -ENOSPC);
	p.family = AF_UNIX;
	assert_int_equal(prefix_format(&p, buf, sizeof(buf)), -EINVAL);
}

static void check_endpoint(const char *in, const char *want)
{
	char buf[ENDPOINT_STRLEN];
	union sockaddr_inet ep, again;

	if (endpoint_parse(in, false, &ep) != 0)
		fail_msg("refused endpoint \"%s\"", in);
	assert_int_equal(endpoint_format(&ep, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
	/* What we print, we parse back to the same endpoint. */
	assert_int_equal(endpoint_parse(buf, false, &again), 0);
	assert_true(endpoint_equal(&ep, &again));
}

static void test_endpoint_parse_good(void **state)
{
	union sockaddr_inet ep;

	assert_int_equal(endpoint_parse("192.0.2.1:51820", false, &ep), 0);
	assert_int_equal(ep.sa.sa_family, AF_INET);
	assert_int_equal(ntohs(ep.in.sin_port), 51820);
	assert_int_equal(ntohl(ep.in.sin_addr.s_addr), 0xc0000201);
	assert_int_equal(endpoint_parse("[2001:db8::1]:443", false, &ep), 0);
	assert_int_equal(ep.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(ep.in6.sin6_port), 443);
	assert_int_equal(ep.in6.sin6_addr.s6_addr[15], 1);
	assert_int_equal(ep.in6.sin6_scope_id, 0);
	check_endpoint("192.0.2.1:51820", "192.0.2.1:51820");
	check_endpoint("0.0.0.0:0", "0.0.0.0:0");
	check_endpoint("255.255.255.255:65535", "255.255.255.255:65535");
	check_endpoint("[::1]:51820", "[::1]:51820");
	check_endpoint("[2001:DB8:0::1]:1", "[2001:db8::1]:1");
	check_endpoint("[fe80::1%7]:51820", "[fe80::1%7]:51820");
	check_endpoint("[::ffff:192.0.2.1]:5", "192.0.2.1:5");
}

static void test_endpoint_scope_by_name(void **state)
{
	union sockaddr_inet ep;
	unsigned lo = if_nametoindex("lo");

	if (!lo)
		skip();
	assert_int_equal(endpoint_parse("[fe80::1%lo]:51820", false, &ep), 0);
	assert_int_equal(ep.in6.sin6_scope_id, lo);
	assert_int_equal(ntohs(ep.in6.sin6_port), 51820);
	assert_int_equal(endpoint_parse("[fe80::1%no-such-if0]:1", false, &ep), -EINVAL);
}

static void test_endpoint_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		":",
		":5",
		"192.0.2.1",
		"192.0.2.1:",
		"192.0.2.1:65536",
		"192.0.2.1:99999999999999999999999",
		"192.0.2.1:-1",
		"192.0.2.1:+5",
		"192.0.2.1: 5",
		"192.0.2.1:5 ",
		" 192.0.2.1:5",
		"192.0.2.1:5x",
		"192.0.2.1:0x10",
		"192.0.2:5",
		"192.0.2.256:5",
		"::1:5",
		"::1",
		"[::1]",
		"[::1]:",
		"[::1]5",
		"[::1]:5:6",
		"[::1:5",
		"::1]:5",
		"[]:5",
		"[zz::1]:5",
		"[192.0.2.1]:5",
		"[fe80::1%]:5",
		"[[::1]]:5",
		"host.example:5",
		"localhost:5",
	};
	union sockaddr_inet ep;
	char big[600];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (endpoint_parse(bad[i], false, &ep) != -EINVAL)
			fail_msg("accepted endpoint \"%s\"", bad[i]);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + sizeof(big) - 4, ":51", 3);
	assert_int_equal(endpoint_parse(big, true, &ep), -EINVAL);
	big[0] = '[';
	memcpy(big + sizeof(big) - 5, "]:51", 4);
	assert_int_equal(endpoint_parse(big, false, &ep), -EINVAL);
}

static void test_endpoint_dns(void **state)
{
	union sockaddr_inet ep;

	assert_int_equal(endpoint_parse("localhost:51820", true, &ep), 0);
	assert_true(ep.sa.sa_family == AF_INET || ep.sa.sa_family == AF_INET6);
	if (ep.sa.sa_family == AF_INET)
		assert_int_equal(ntohs(ep.in.sin_port), 51820);
	else
		assert_int_equal(ntohs(ep.in6.sin6_port), 51820);
	/* Numbers still parse numerically with DNS allowed. */
	assert_int_equal(endpoint_parse("192.0.2.1:7", true, &ep), 0);
	assert_int_equal(ntohl(ep.in.sin_addr.s_addr), 0xc0000201);
	/* inet_aton() forms and odd characters never reach the resolver. */
	assert_int_equal(endpoint_parse("1.2.3:5", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("127.1:5", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("0x7f.1:5", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("1.2.3.4 :5", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("local host:5", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("localhost\n:5", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("localhost:", true, &ep), -EINVAL);
	assert_int_equal(endpoint_parse("localhost:65536", true, &ep), -EINVAL);
	/* RFC 6761: .invalid never resolves. */
	assert_int_equal(endpoint_parse("no-such-host.invalid:5", true, &ep), -ENOENT);
}

static void test_endpoint_format(void **state)
{
	union sockaddr_inet ep = {0};
	char buf[ENDPOINT_STRLEN], tiny[6];

	assert_int_equal(endpoint_format(&ep, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "(none)");
	assert_int_equal(endpoint_parse("192.0.2.1:51820", false, &ep), 0);
	assert_int_equal(endpoint_format(&ep, tiny, sizeof(tiny)), -ENOSPC);
	assert_int_equal(
		endpoint_parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535", false,
			       &ep),
		0);
	assert_int_equal(endpoint_format(&ep, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535");
}

static void test_endpoint_mapping(void **state)
{
	union sockaddr_inet v4, v6, back, in_place;
	char buf[ENDPOINT_STRLEN];

	assert_int_equal(endpoint_parse("192.0.2.1:51820", false, &v4), 0);
	endpoint_to_v6(&v4, &v6);
	assert_int_equal(v6.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(v6.in6.sin6_port), 51820);
	assert_true(IN6_IS_ADDR_V4MAPPED(&v6.in6.sin6_addr));
	assert_memory_equal(v6.in6.sin6_addr.s6_addr + 12, &v4.in.sin_addr, 4);
	assert_int_equal(endpoint_format(&v6, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.1:51820");
	endpoint_unmap(&v6, &back);
	assert_int_equal(back.sa.sa_family, AF_INET);
	assert_int_equal(back.in.sin_addr.s_addr, v4.in.sin_addr.s_addr);
	assert_int_equal(back.in.sin_port, v4.in.sin_port);
	/* Both work in place. */
	in_place = v4;
	endpoint_to_v6(&in_place, &in_place);
	assert_true(IN6_IS_ADDR_V4MAPPED(&in_place.in6.sin6_addr));
	endpoint_unmap(&in_place, &in_place);
	assert_int_equal(in_place.sa.sa_family, AF_INET);
	assert_int_equal(in_place.in.sin_addr.s_addr, v4.in.sin_addr.s_addr);
	/* A real IPv6 address is left alone by both. */
	assert_int_equal(endpoint_parse("[2001:db8::1]:5", false, &v6), 0);
	endpoint_unmap(&v6, &back);
	assert_int_equal(back.sa.sa_family, AF_INET6);
	endpoint_to_v6(&v6, &back);
	assert_memory_equal(&back.in6.sin6_addr, &v6.in6.sin6_addr, 16);
	assert_int_equal(endpoint_len(&v4), sizeof(struct sockaddr_in));
	assert_int_equal(endpoint_len(&v6), sizeof(struct sockaddr_in6));
}

static void test_endpoint_equal(void **state)
{
	union sockaddr_inet a, b, mapped, c, d;

	assert_int_equal(endpoint_parse("192.0.2.1:51820", false, &a), 0);
	assert_int_equal(endpoint_parse("[::ffff:192.0.2.1]:51820", false, &mapped), 0);
	assert_true(endpoint_equal(&a, &mapped));
	assert_true(endpoint_equal(&mapped, &a));
	assert_true(endpoint_equal(&a, &a));
	assert_int_equal(endpoint_parse("192.0.2.1:51821", false, &b), 0);
	assert_false(endpoint_equal(&a, &b));
	assert_int_equal(endpoint_parse("192.0.2.2:51820", false, &b), 0);
	assert_false(endpoint_equal(&a, &b));
	assert_int_equal(endpoint_parse("[::ffff:192.0.2.1]:51821", false, &b), 0);
	assert_false(endpoint_equal(&a, &b));
	/* ::c000:201 (v4-compatible, not mapped) is a different address. */
	assert_int_equal(endpoint_parse("[::192.0.2.1]:51820", false, &b), 0);
	assert_false(endpoint_equal(&a, &b));
	assert_int_equal(endpoint_parse("[fe80::1]:5", false, &c), 0);
	assert_int_equal(endpoint_parse("[fe80::1%2]:5", false, &d), 0);
	assert_false(endpoint_equal(&c, &d));
	assert_int_equal(endpoint_parse("[fe80::1%3]:5", false, &c), 0);
	assert_false(endpoint_equal(&c, &d));
	assert_int_equal(endpoint_parse("[fe80:0::1%2]:5", false, &c), 0);
	assert_true(endpoint_equal(&c, &d));
	assert_int_equal(endpoint_parse("[fe80::1%2]:6", false, &c), 0);
	assert_false(endpoint_equal(&c, &d));
	assert_int_equal(endpoint_parse("[fe80::2%2]:5", false, &c), 0);
	assert_false(endpoint_equal(&c, &d));
	assert_false(endpoint_equal(&a, &d));
	/* Flow info is not part of the identity. */
	c = d;
	c.in6.sin6_flowinfo = htonl(1234);
	assert_true(endpoint_equal(&c, &d));
}

/* A side path: the peer's address through one of the device's own
 * sockets.  The same address on another socket, or on the device's, is
 * another path; it sends to the plain IPv4 address. */
static void test_endpoint_side(void **state)
{
	union sockaddr_inet to, side, other, dest;
	char buf[ENDPOINT_STRLEN];

	(void)state;
	assert_int_equal(endpoint_parse("198.51.100.7:40123", false, &to), 0);
	endpoint_to_v6(&to, &to); /* the device keeps endpoints v4-mapped */
	endpoint_set_side(&side, &to, 5);
	assert_true(endpoint_is_side(&side));
	assert_false(endpoint_is_relay(&side));
	assert_int_equal(endpoint_side_slot(&side), 5);
	assert_int_equal(endpoint_format(&side, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.7:40123");
	endpoint_side_dest(&side, &dest);
	assert_int_equal(dest.sa.sa_family, AF_INET);
	assert_true(endpoint_equal(&dest, &to));
	assert_false(endpoint_equal(&side, &to));
	endpoint_set_side(&other, &to, 6);
	assert_false(endpoint_equal(&side, &other));
	endpoint_set_side(&other, &dest, 5);
	assert_true(endpoint_equal(&side, &other));
	/* The device stores endpoints through endpoint_to_v6: a side path
	 * stays one. */
	endpoint_to_v6(&side, &other);
	assert_true(endpoint_is_side(&other));
	assert_true(endpoint_equal(&side, &other));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_parse_good),
		cmocka_unit_test(test_prefix_parse_bad),
		cmocka_unit_test(test_prefix_mask),
		cmocka_unit_test(test_prefix_contains),
		cmocka_unit_test(test_prefix_format_small_buffer),
		cmocka_unit_test(test_endpoint_parse_good),
		cmocka_unit_test(test_endpoint_side),
		cmocka_unit_test(test_endpoint_scope_by_name),
		cmocka_unit_test(test_endpoint_parse_bad),
		cmocka_unit_test(test_endpoint_dns),
		cmocka_unit_test(test_endpoint_format),
		cmocka_unit_test(test_endpoint_mapping),
		cmocka_unit_test(test_endpoint_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
