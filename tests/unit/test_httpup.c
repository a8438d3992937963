// SPDX-License-Identifier: MIT
/* src/net/httpup.c: the HTTP/1.1 Upgrade heads of control and relay. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/httpup.h"

#define REQ                                                                                        \
	"GET /knit/relay HTTP/1.1\r\nHost: 192.0.2.1:443\r\nUpgrade: knit-relay\r\n"               \
	"Connection: Upgrade\r\n\r\n"

static int parse_req(const char *s, char *path, char *upgrade)
{
	return httpup_parse_request((const uint8_t *)s, strlen(s), path, 64, upgrade, 32);
}

static void test_request_roundtrip(void **state)
{
	char buf[HTTPUP_BUF_LEN], path[64], up[32];
	int n = httpup_format_request(buf, sizeof(buf), "192.0.2.1:443", "/knit/relay",
				      "knit-relay");

	assert_int_equal(n, strlen(REQ));
	assert_string_equal(buf, REQ);
	assert_int_equal(parse_req(buf, path, up), n);
	assert_string_equal(path, "/knit/relay");
	assert_string_equal(up, "knit-relay");
}

static void test_request_consumes_only_the_head(void **state)
{
	char path[64], up[32];
	const char *s = REQ "\x02\x00\x00\x00\x68garbage";
	size_t len = strlen(REQ) + 12;

	/* Frames that follow the head are not part of it. */
	assert_int_equal(httpup_parse_request((const uint8_t *)s, len, path, 64, up, 32),
			 strlen(REQ));
}

static void test_request_incomplete_at_every_length(void **state)
{
	char path[64], up[32];

	for (size_t i = 0; i < strlen(REQ); i++)
		assert_int_equal(httpup_parse_request((const uint8_t *)REQ, i, path, 64, up, 32),
				 0);
}

static void test_request_variants_accepted(void **state)
{
	char path[64], up[32];

	/* Case-insensitive names, token lists, bare LF, whitespace around values. */
	assert_true(parse_req("GET /x HTTP/1.1\nhOsT: a\nCONNECTION:  keep-alive , UPGRADE \n"
			      "upgrade:\tknit-control \n\n",
			      path, up) > 0);
	assert_string_equal(path, "/x");
	assert_string_equal(up, "knit-control");
	/* No Host is tolerated: the relay does not route by name. */
	assert_true(parse_req("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: u\r\n\r\n", path,
			      up) > 0);
}

static void test_request_malformed(void **state)
{
	char path[64], up[32];
	const char *bad[] = {
		"POST /knit/relay HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		"GET /knit/relay HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		"GET /knit/relay HTTP/1.1\r\nUpgrade: x\r\n\r\n", /* no Connection */
		"GET /knit/relay HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: x\r\n\r\n",
		"GET /knit/relay HTTP/1.1\r\nConnection: upgraded\r\nUpgrade: x\r\n\r\n",
		"GET /knit/relay HTTP/1.1\r\nConnection: Upgrade\r\n\r\n", /* no Upgrade */
		"GET /knit/relay HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade:\r\n\r\n",
		"GET /knit/relay HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: a\r\nUpgrade: "
		"b\r\n\r\n",
		"GET  /knit/relay HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		"GET knit HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		"GET / x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nBad Name: 1\r\nUpgrade: x\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nnocolon\r\nUpgrade: x\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\ry\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: \x80\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		/* Path or upgrade longer than the caller's buffer. */
		"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
		"HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: "
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse_req(bad[i], path, up);
		if (r != -EINVAL)
			fail_msg("case %zu: %d", i, r);
	}
	/* A NUL inside a line. */
	assert_int_equal(httpup_parse_request((const uint8_t *)"GET /\0 HTTP/1.1\r\n\r\n", 19, path,
					      64, up, 32),
			 -EINVAL);
}

#define HEAD_START "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\nX: "

static void test_request_size_limit(void **state)
{
	char path[64], up[32];
	size_t n = HTTPUP_MAX_HEAD + 100;
	char *big = malloc(n);

	/* Headers that never end: refused at 4096 bytes, not earlier. */
	memset(big, 'a', n);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(
		httpup_parse_request((uint8_t *)big, HTTPUP_MAX_HEAD - 1, path, 64, up, 32), 0);
	assert_int_equal(httpup_parse_request((uint8_t *)big, HTTPUP_MAX_HEAD, path, 64, up, 32),
			 -EMSGSIZE);
	assert_int_equal(httpup_parse_request((uint8_t *)big, n, path, 64, up, 32), -EMSGSIZE);

	/* A head of exactly 4096 bytes is accepted. */
	memset(big, 'a', n);
	memcpy(big, HEAD_START, strlen(HEAD_START));
	memcpy(big + HTTPUP_MAX_HEAD - 4, "\r\n\r\n", 4);
	assert_int_equal(httpup_parse_request((uint8_t *)big, n, path, 64, up, 32),
			 HTTPUP_MAX_HEAD);
	/* One byte more is not. */
	memset(big, 'a', n);
	memcpy(big, HEAD_START, strlen(HEAD_START));
	memcpy(big + HTTPUP_MAX_HEAD - 3, "\r\n\r\n", 4);
	assert_int_equal(httpup_parse_request((uint8_t *)big, n, path, 64, up, 32), -EMSGSIZE);
	free(big);
}

static void test_response_101(void **state)
{
	char buf[HTTPUP_BUF_LEN], up[32];
	int status = 0, n = httpup_format_response(buf, sizeof(buf), 101, "knit-relay");

	assert_true(n > 0);
	assert_string_equal(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: knit-relay\r\n"
				 "Connection: Upgrade\r\n\r\n");
	assert_int_equal(httpup_parse_response((uint8_t *)buf, n, &status, up, sizeof(up)), n);
	assert_int_equal(status, 101);
	assert_string_equal(up, "knit-relay");
	for (int i = 0; i < n; i++)
		assert_int_equal(httpup_parse_response((uint8_t *)buf, i, &status, up, sizeof(up)),
				 0);
}

static void test_response_error(void **state)
{
	char buf[HTTPUP_BUF_LEN], up[32];
	int status = 0, n = httpup_format_response(buf, sizeof(buf), 404, "no such service");
	const char *body;

	assert_true(n > 0);
	body = strstr(buf, "\r\n\r\n") + 4;
	assert_string_equal(body, "no such service\n");
	assert_non_null(strstr(buf, "Content-Length: 16\r\n"));
	assert_int_equal(httpup_parse_response((uint8_t *)buf, n, &status, up, sizeof(up)),
			 body - buf);
	assert_int_equal(status, 404);
	assert_string_equal(up, "");
	assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
	n = httpup_format_response(buf, sizeof(buf), 426, "use Upgrade: knit-relay");
	assert_non_null(strstr(buf, "HTTP/1.1 426 Upgrade Required\r\n"));
}

static void test_response_malformed(void **state)
{
	char up[32];
	int status = -1;
	const char *bad[] = {
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/1.0 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 1O1 Switching\r\n\r\n",
		"HTTP/1.1 099 x\r\n\r\n",
		"HTTP/1.1 600 x\r\n\r\n",
		"HTTP/1.1 2000 x\r\n\r\n",
		"HTTP/1.1 200x\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = httpup_parse_response((const uint8_t *)bad[i], strlen(bad[i]), &status, up,
					      sizeof(up));
		if (r != -EINVAL)
			fail_msg("case %zu: %d", i, r);
	}
	assert_int_equal(status, -1); /* untouched on error */
	assert_true(httpup_parse_response((const uint8_t *)"HTTP/1.1 200\r\n\r\n", 16, &status, up,
					  sizeof(up)) == 16);
	assert_int_equal(status, 200);
}

static void test_format_refuses(void **state)
{
	char buf[HTTPUP_BUF_LEN];

	assert_int_equal(httpup_format_request(buf, sizeof(buf), "h:1", "/x", "a\r\nX: y"),
			 -EINVAL);
	assert_int_equal(httpup_format_request(buf, sizeof(buf), "h:1", "x", "a"), -EINVAL);
	assert_int_equal(httpup_format_request(buf, sizeof(buf), "", "/x", "a"), -EINVAL);
	assert_int_equal(httpup_format_request(buf, sizeof(buf), "h 1", "/x", "a"), -EINVAL);
	assert_int_equal(httpup_format_request(buf, 20, "h:1", "/x", "a"), -ENOSPC);
	assert_int_equal(httpup_format_response(buf, sizeof(buf), 101, "a b"), -EINVAL);
	assert_int_equal(httpup_format_response(buf, sizeof(buf), 200, "ok"), -EINVAL);
	assert_int_equal(httpup_format_response(buf, sizeof(buf), 400, "two\nlines"), -EINVAL);
	assert_int_equal(httpup_format_response(buf, 30, 400, "bad"), -ENOSPC);
}

static void test_url(void **state)
{
	char host[64];
	uint16_t port = 0;

	assert_int_equal(httpup_parse_url("http://192.0.2.1:8443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "192.0.2.1");
	assert_int_equal(port, 8443);
	assert_int_equal(httpup_parse_url("http://[2001:db8::1]:1/", host, sizeof(host), &port), 0);
	assert_string_equal(host, "2001:db8::1");
	assert_int_equal(port, 1);
	assert_int_equal(
		httpup_parse_url("HTTP://control.example-1.net", host, sizeof(host), &port), 0);
	assert_string_equal(host, "control.example-1.net");
	assert_int_equal(port, 80);
	assert_int_equal(httpup_parse_url("http://[::1]", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);

	const char *bad[] = {
		"https://a:1",
		"http://",
		"http://:80",
		"http://a:0",
		"http://a:65536",
		"http://a:",
		"http://a:80x",
		"http://a:80/path",
		"http://u@a:80",
		"http://[::1",
		"http://[::1]x",
		"http://[zz::1]:80",
		"http://1.2.3.999:80",
		"http://-a.b:80",
		"http://a_b:80",
		"http://a..b:80",
		"http://a.b-:80",
		"ftp://a:1",
		"http://a:1:2",
		"a:1",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (httpup_parse_url(bad[i], host, sizeof(host), &port) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
	assert_int_equal(httpup_parse_url(NULL, host, sizeof(host), &port), -EINVAL);
	/* A host that does not fit the caller's buffer. */
	assert_int_equal(httpup_parse_url("http://abcdefgh:1", host, 8, &port), -EINVAL);
	assert_int_equal(httpup_parse_url("http://abcdefg:1", host, 8, &port), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_request_consumes_only_the_head),
		cmocka_unit_test(test_request_incomplete_at_every_length),
		cmocka_unit_test(test_request_variants_accepted),
		cmocka_unit_test(test_request_malformed),
		cmocka_unit_test(test_request_size_limit),
		cmocka_unit_test(test_response_101),
		cmocka_unit_test(test_response_error),
		cmocka_unit_test(test_response_malformed),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
