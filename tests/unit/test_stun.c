// SPDX-License-Identifier: MIT
/* src/stun: RFC 5769 test vectors, builders round-tripped, hostile input. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stun/stun.h"

static const uint8_t vec_txid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
				     0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

/* RFC 5769 section 2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED,
 * USERNAME, MESSAGE-INTEGRITY, FINGERPRINT). */
static const uint8_t vec_request[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,
	0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24,
	0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
	0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68,
	0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
	0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5,
	0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

/* RFC 5769 section 2.2: IPv4 response, mapped 192.0.2.1:32853. */
static const uint8_t vec_resp4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
	0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
	0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
	0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

/* RFC 5769 section 2.3: IPv6 response, mapped
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t vec_resp6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02,
	0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6,
	0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

static struct sockaddr_storage ss4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage ss6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	return ss;
}

static void assert_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	assert_int_equal(a->ss_family, b->ss_family);
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		assert_int_equal(ntohs(x->sin_port), ntohs(y->sin_port));
		assert_memory_equal(&x->sin_addr, &y->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		assert_int_equal(ntohs(x->sin6_port), ntohs(y->sin6_port));
		assert_memory_equal(&x->sin6_addr, &y->sin6_addr, 16);
	}
}

static void test_crc32(void **state)
{
	assert_int_equal(stun_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
	assert_int_equal(stun_crc32((const uint8_t *)"", 0), 0);
}

static void test_rfc5769_request(void **state)
{
	struct stun_msg m;

	assert_true(stun_is_message(vec_request, sizeof(vec_request)));
	assert_int_equal(stun_parse(vec_request, sizeof(vec_request), &m), 0);
	assert_int_equal(m.type, STUN_BINDING_REQUEST);
	assert_memory_equal(m.txid, vec_txid, 12);
	assert_true(m.has_fingerprint);
	assert_true(m.fingerprint_ok);
	assert_true(m.has_integrity);
	assert_false(m.has_mapped);
	assert_false(m.has_change);
	assert_string_equal(m.software, "STUN test client");
	/* PRIORITY (0x0024) is ICE's, comprehension-required, unknown here;
	 * ICE-CONTROLLED (0x8029) is optional and silently skipped. */
	assert_int_equal(m.n_unknown, 1);
	assert_int_equal(m.unknown[0], 0x0024);
}

static void test_rfc5769_response_ipv4(void **state)
{
	struct sockaddr_storage want = ss4("192.0.2.1", 32853);
	uint8_t out[STUN_BUF_LEN];
	struct stun_msg m;
	int n;

	assert_true(stun_is_message(vec_resp4, sizeof(vec_resp4)));
	assert_int_equal(stun_parse(vec_resp4, sizeof(vec_resp4), &m), 0);
	assert_int_equal(m.type, STUN_BINDING_SUCCESS);
	assert_memory_equal(m.txid, vec_txid, 12);
	assert_true(m.fingerprint_ok);
	assert_true(m.has_integrity);
	assert_true(m.has_mapped);
	assert_true(m.mapped_is_xor);
	assert_addr_equal(&m.mapped, &want);
	assert_string_equal(m.software, "test vector");
	assert_int_equal(m.n_unknown, 0);

	/* Our encoder writes the very same XOR-MAPPED-ADDRESS bytes. */
	n = stun_build_binding_response(out, sizeof(out), vec_txid, &want, NULL, NULL);
	assert_true(n > 0);
	assert_memory_equal(out + 20, vec_resp4 + 36, 12);
}

static void test_rfc5769_response_ipv6(void **state)
{
	struct sockaddr_storage want = ss6("2001:db8:1234:5678:11:2233:4455:6677", 32853);
	uint8_t out[STUN_BUF_LEN];
	struct stun_msg m;
	int n;

	assert_int_equal(stun_parse(vec_resp6, sizeof(vec_resp6), &m), 0);
	assert_int_equal(m.type, STUN_BINDING_SUCCESS);
	assert_true(m.fingerprint_ok);
	assert_true(m.has_mapped);
	assert_addr_equal(&m.mapped, &want);

	n = stun_build_binding_response(out, sizeof(out), vec_txid, &want, NULL, NULL);
	assert_true(n > 0);
	assert_memory_equal(out + 20, vec_resp6 + 36, 24);
}

static void test_fingerprint_mismatch(void **state)
{
	uint8_t buf[sizeof(vec_resp4)];
	struct stun_msg m;

	/* A flipped bit in the transaction id or in any attribute value (the
	 * structure left intact) breaks FINGERPRINT: the datagram is refused. */
	static const size_t ranges[][2] = {{8, 20}, {24, 36}, {40, 48}, {52, 72}, {76, 80}};
	for (size_t r = 0; r < 5; r++) {
		for (size_t i = ranges[r][0]; i < ranges[r][1]; i++) {
			memcpy(buf, vec_resp4, sizeof(buf));
			buf[i] ^= 0x10;
			assert_int_equal(stun_parse(buf, sizeof(buf), &m), -EBADMSG);
			assert_false(m.has_mapped); /* nothing half-parsed left behind */
		}
	}
}

static void test_request_roundtrip(void **state)
{
	uint8_t txid[12], out[STUN_BUF_LEN];
	struct stun_msg m;
	int n;

	stun_txid_new(txid);
	n = stun_build_binding_request(out, sizeof(out), txid, 0);
	assert_int_equal(n, 28); /* header + FINGERPRINT */
	assert_true(stun_is_message(out, (size_t)n));
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_int_equal(m.type, STUN_BINDING_REQUEST);
	assert_memory_equal(m.txid, txid, 12);
	assert_false(m.has_change);
	assert_true(m.fingerprint_ok);

	n = stun_build_binding_request(out, sizeof(out), txid, STUN_CHANGE_IP | STUN_CHANGE_PORT);
	assert_int_equal(n, 36);
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_true(m.has_change);
	assert_int_equal(m.change_flags, STUN_CHANGE_IP | STUN_CHANGE_PORT);
	n = stun_build_binding_request(out, sizeof(out), txid, STUN_CHANGE_PORT);
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_int_equal(m.change_flags, STUN_CHANGE_PORT);

	assert_int_equal(stun_build_binding_request(out, sizeof(out), txid, 0x1), -EINVAL);
	assert_int_equal(stun_build_binding_request(NULL, 100, txid, 0), -EINVAL);
	/* Every buffer too small is refused, never overrun. */
	for (size_t s = 0; s < 36; s++)
		assert_int_equal(stun_build_binding_request(out, s, txid, STUN_CHANGE_IP),
				 -ENOBUFS);
	assert_int_equal(stun_build_binding_request(out, 36, txid, STUN_CHANGE_IP), 36);

	/* Two fresh ids differ (96 random bits). */
	uint8_t t2[12];
	stun_txid_new(t2);
	assert_memory_not_equal(txid, t2, 12);
}

static void test_response_roundtrip(void **state)
{
	struct sockaddr_storage mapped = ss6("2001:db8::7", 40000);
	struct sockaddr_storage origin = ss4("198.51.100.1", 3478);
	struct sockaddr_storage other = ss6("2001:db8::2", 3479);
	uint8_t txid[12], out[STUN_BUF_LEN];
	struct stun_msg m;
	int n;

	stun_txid_new(txid);
	n = stun_build_binding_response(out, sizeof(out), txid, &mapped, &origin, &other);
	assert_true(n > 0);
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_int_equal(m.type, STUN_BINDING_SUCCESS);
	assert_memory_equal(m.txid, txid, 12);
	assert_true(m.has_mapped && m.mapped_is_xor);
	assert_addr_equal(&m.mapped, &mapped);
	assert_true(m.has_origin);
	assert_addr_equal(&m.origin, &origin);
	assert_true(m.has_other);
	assert_addr_equal(&m.other, &other);
	assert_true(m.fingerprint_ok);
	assert_string_equal(m.software, "knit");

	for (size_t s = 0; s < (size_t)n; s++)
		assert_int_equal(
			stun_build_binding_response(out, s, txid, &mapped, &origin, &other),
			-ENOBUFS);

	/* A dual-stack socket's ::ffff:a.b.c.d goes on the wire as IPv4. */
	struct sockaddr_storage v4m = ss6("::ffff:203.0.113.9", 1234),
				v4 = ss4("203.0.113.9", 1234);
	n = stun_build_binding_response(out, sizeof(out), txid, &v4m, NULL, NULL);
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_addr_equal(&m.mapped, &v4);
	assert_false(m.has_origin);
	assert_false(m.has_other);

	struct sockaddr_storage bad = {.ss_family = AF_UNIX};
	assert_int_equal(stun_build_binding_response(out, sizeof(out), txid, &bad, NULL, NULL),
			 -EAFNOSUPPORT);
	assert_int_equal(stun_build_binding_response(out, sizeof(out), txid, NULL, NULL, NULL),
			 -EINVAL);
}

static void test_error_response(void **state)
{
	static const uint16_t unk[] = {0x0024, 0x7777, 0x0042};
	uint8_t txid[12] = {1}, out[STUN_BUF_LEN];
	struct stun_msg m;
	int n;

	n = stun_build_error_response(out, sizeof(out), txid, 420, "Unknown Attribute", unk, 3);
	assert_true(n > 0);
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_int_equal(m.type, STUN_BINDING_ERROR);
	assert_int_equal(m.error_code, 420);
	assert_true(m.fingerprint_ok);
	assert_int_equal(stun_build_error_response(out, sizeof(out), txid, 200, NULL, NULL, 0),
			 -EINVAL);
	n = stun_build_error_response(out, sizeof(out), txid, 400, NULL, NULL, 0);
	assert_int_equal(stun_parse(out, (size_t)n, &m), 0);
	assert_int_equal(m.error_code, 400);
}

static void test_plain_mapped_address(void **state)
{
	/* An RFC 3489 server's answer: MAPPED-ADDRESS only, no FINGERPRINT.
	 * Then the same with XOR-MAPPED-ADDRESS too, which wins. */
	uint8_t msg[] = {0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42, 1,  2,	   3,
			 4,    5,    6,	   7,	 8,    9,    10,   11,	 12, 0x00, 0x01,
			 0x00, 0x08, 0x00, 0x01, 0x0d, 0x96, 10,   0,	 0,  1};
	struct sockaddr_storage want = ss4("10.0.0.1", 3478);
	struct stun_msg m;

	assert_int_equal(stun_parse(msg, sizeof(msg), &m), 0);
	assert_true(m.has_mapped);
	assert_false(m.mapped_is_xor);
	assert_false(m.has_fingerprint);
	assert_false(m.fingerprint_ok);
	assert_addr_equal(&m.mapped, &want);
}

static void test_attribute_rules(void **state)
{
	uint8_t txid[12] = {9, 9, 9}, out[STUN_BUF_LEN], msg[STUN_BUF_LEN];
	struct sockaddr_storage mapped = ss4("192.0.2.44", 5555);
	struct stun_msg m;
	int n;

	n = stun_build_binding_response(out, sizeof(out), txid, &mapped, NULL, NULL);
	assert_true(n > 28);
	/* Insert a comprehension-optional unknown (0xC001, 5 bytes + pad) and a
	 * second XOR-MAPPED-ADDRESS with another address before the original
	 * attributes: the unknown one is skipped, and the first XOR-MAPPED wins. */
	size_t body = (size_t)n - 8 - 20; /* attributes without FINGERPRINT */
	uint8_t extra[] = {0xC0, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0};
	memcpy(msg, out, 20);
	memcpy(msg + 20, extra, sizeof(extra));
	memcpy(msg + 20 + sizeof(extra), out + 20, body);
	size_t len = 20 + sizeof(extra) + body;
	memcpy(msg + len, out + 20, 12); /* a duplicate XOR-MAPPED, ignored */
	msg[len + 11] ^= 0xFF;
	len += 12;
	msg[2] = (uint8_t)((len - 20) >> 8);
	msg[3] = (uint8_t)(len - 20);
	assert_int_equal(stun_parse(msg, len, &m), 0);
	assert_addr_equal(&m.mapped, &mapped);
	assert_int_equal(m.n_unknown, 0);
	assert_false(m.has_fingerprint);

	/* FINGERPRINT that is not the last attribute: not STUN. */
	memcpy(msg, out, (size_t)n);
	memcpy(msg + n, extra, sizeof(extra));
	len = (size_t)n + sizeof(extra);
	msg[2] = (uint8_t)((len - 20) >> 8);
	msg[3] = (uint8_t)(len - 20);
	assert_int_equal(stun_parse(msg, len, &m), -EBADMSG);

	/* Without FINGERPRINT it parses; then an IPv6 family in an 8-byte
	 * address attribute, and an unknown family, are refused. */
	memcpy(msg, out, (size_t)n - 8);
	msg[2] = 0;
	msg[3] = (uint8_t)(n - 8 - 20);
	assert_int_equal(stun_parse(msg, (size_t)n - 8, &m), 0);
	assert_addr_equal(&m.mapped, &mapped);
	msg[20 + 5] = 0x02;
	assert_int_equal(stun_parse(msg, (size_t)n - 8, &m), -EBADMSG);
	msg[20 + 5] = 0x03;
	assert_int_equal(stun_parse(msg, (size_t)n - 8, &m), -EBADMSG);
}

static void test_truncation_and_garbage(void **state)
{
	uint8_t buf[sizeof(vec_resp6)];
	struct stun_msg m;

	/* Every prefix is refused, and cheaply by stun_is_message. */
	for (size_t len = 0; len < sizeof(vec_resp6); len++) {
		assert_false(stun_is_message(vec_resp6, len));
		assert_int_equal(stun_parse(vec_resp6, len, &m), -EBADMSG);
	}
	/* Header length running past the datagram, or not a multiple of 4. */
	memcpy(buf, vec_resp6, sizeof(buf));
	buf[3] += 4;
	assert_false(stun_is_message(buf, sizeof(buf)));
	buf[3] -= 2;
	assert_false(stun_is_message(buf, sizeof(buf)));
	/* A WireGuard handshake initiation: type 1, three zero bytes. */
	memset(buf, 0, sizeof(buf));
	buf[0] = 1;
	assert_false(stun_is_message(buf, 148 < sizeof(buf) ? 148 : sizeof(buf)));
	/* Top bits set (e.g. a disco or RTP packet) or a wrong cookie. */
	memcpy(buf, vec_resp4, sizeof(vec_resp4));
	buf[0] |= 0x80;
	assert_false(stun_is_message(buf, sizeof(vec_resp4)));
	memcpy(buf, vec_resp4, sizeof(vec_resp4));
	buf[7] ^= 1;
	assert_false(stun_is_message(buf, sizeof(vec_resp4)));
	assert_false(stun_is_message(NULL, 20));

	/* An attribute whose length runs past the message. */
	uint8_t msg[] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1,  2,
			 3,    4,    5,	   6,	 7,    8,    9,	   10,	 11, 12,
			 0x80, 0x22, 0x00, 0x05, 'k',  'n',  'i',  't'};
	assert_true(stun_is_message(msg, sizeof(msg)));
	assert_int_equal(stun_parse(msg, sizeof(msg), &m), -EBADMSG);
	msg[23] = 4;
	assert_int_equal(stun_parse(msg, sizeof(msg), &m), 0);
	assert_string_equal(m.software, "knit");
	assert_int_equal(stun_parse(msg, sizeof(msg), NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_response_ipv4),
		cmocka_unit_test(test_rfc5769_response_ipv6),
		cmocka_unit_test(test_fingerprint_mismatch),
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_response_roundtrip),
		cmocka_unit_test(test_error_response),
		cmocka_unit_test(test_plain_mapped_address),
		cmocka_unit_test(test_attribute_rules),
		cmocka_unit_test(test_truncation_and_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
