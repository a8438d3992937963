// SPDX-License-Identifier: MIT
/*
 * src/portmap: the PCP codec (RFC 6887), checked against an exchange
 * captured from miniupnpd 2.3.1 in the lab, and every way a response can be
 * malformed; also the other untrusted text port mapping reads: the default
 * route in /proc/net/route and SSDP answers with the URLs they name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "portmap/gateway.h"
#include "portmap/pcp.h"
#include "portmap/upnp.h"

/* Client 10.0.1.1 maps UDP 41641 for 600 s; miniupnpd answers with
 * 198.51.100.11:41641, epoch 403. */
static const uint8_t nonce[12] = {0x22, 0xe0, 0x2d, 0xc0, 0xdc, 0x4c,
				  0x47, 0x5b, 0x71, 0x90, 0x50, 0xe5};
static const uint8_t map_request[60] = {
	0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xff, 0xff, 0x0a, 0x00, 0x01, 0x01, 0x22, 0xe0, 0x2d, 0xc0, 0xdc, 0x4c,
	0x47, 0x5b, 0x71, 0x90, 0x50, 0xe5, 0x11, 0x00, 0x00, 0x00, 0xa2, 0xa9, 0xa2, 0xa9, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
static const uint8_t map_response[60] = {
	0x02, 0x81, 0x00, 0x00, 0x00, 0x00, 0x02, 0x58, 0x00, 0x00, 0x01, 0x93, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0xe0, 0x2d, 0xc0, 0xdc, 0x4c,
	0x47, 0x5b, 0x71, 0x90, 0x50, 0xe5, 0x11, 0x00, 0x00, 0x00, 0xa2, 0xa9, 0xa2, 0xa9, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xc6, 0x33, 0x64, 0x0b};
static const uint8_t announce_request[24] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					     0x00, 0x00, 0xff, 0xff, 0x0a, 0x00, 0x01, 0x01};
static const uint8_t announce_response[24] = {0x02, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					      0x00, 0x00, 0x01, 0x93, 0x00, 0x00, 0x00, 0x00,
					      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

static struct in6_addr v4mapped(const char *s)
{
	struct in_addr a;
	struct in6_addr out;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	pcp_addr_from_v4(&out, a);
	return out;
}

static void test_build_matches_capture(void **state)
{
	struct in6_addr client = v4mapped("10.0.1.1");
	struct pcp_map m = {.protocol = IPPROTO_UDP,
			    .internal_port = 41641,
			    .external_port = 41641,
			    .external_addr = v4mapped("0.0.0.0")};
	uint8_t buf[PCP_MAX_MSG];

	memcpy(m.nonce, nonce, sizeof(nonce));
	assert_int_equal(pcp_build_map(buf, sizeof(buf), &client, 600, &m), 60);
	assert_memory_equal(buf, map_request, 60);
	assert_int_equal(pcp_build_announce(buf, sizeof(buf), &client), 24);
	assert_memory_equal(buf, announce_request, 24);

	/* Too small a buffer is refused, never overrun. */
	assert_int_equal(pcp_build_map(buf, 59, &client, 600, &m), -ENOSPC);
	assert_int_equal(pcp_build_announce(buf, 23, &client), -ENOSPC);
}

static void test_parse_capture(void **state)
{
	struct pcp_response r;
	struct in_addr ext;
	char s[INET_ADDRSTRLEN];

	assert_int_equal(pcp_parse_response(map_response, sizeof(map_response), &r), 0);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.opcode, PCP_OP_MAP);
	assert_int_equal(r.result, PCP_SUCCESS);
	assert_int_equal(r.lifetime, 600);
	assert_int_equal(r.epoch, 403);
	assert_true(r.has_map);
	assert_memory_equal(r.map.nonce, nonce, sizeof(nonce));
	assert_int_equal(r.map.protocol, IPPROTO_UDP);
	assert_int_equal(r.map.internal_port, 41641);
	assert_int_equal(r.map.external_port, 41641);
	assert_true(pcp_addr_to_v4(&r.map.external_addr, &ext));
	assert_string_equal(inet_ntop(AF_INET, &ext, s, sizeof(s)), "198.51.100.11");
	assert_int_equal(r.n_options, 0);

	assert_int_equal(pcp_parse_response(announce_response, 24, &r), 0);
	assert_int_equal(r.opcode, PCP_OP_ANNOUNCE);
	assert_int_equal(r.result, PCP_SUCCESS);
	assert_false(r.has_map);
}

static void test_parse_errors_and_versions(void **state)
{
	uint8_t buf[PCP_MAX_MSG + 8];
	struct pcp_response r;

	/* A NAT-PMP-only server answers a PCP request with version 0 and
	 * UNSUPP_VERSION (RFC 6887 section 9). */
	const uint8_t natpmp[8] = {0x00, 0x81, 0x00, 0x01, 0x00, 0x00, 0x01, 0x93};
	assert_int_equal(pcp_parse_response(natpmp, sizeof(natpmp), &r), -EPROTONOSUPPORT);
	assert_int_equal(r.version, 0);

	/* An error MAP response still parses, with its result. */
	memcpy(buf, map_response, 60);
	buf[3] = PCP_NO_RESOURCES;
	assert_int_equal(pcp_parse_response(buf, 60, &r), 0);
	assert_int_equal(r.result, PCP_NO_RESOURCES);
	assert_string_equal(pcp_result_name(r.result), "NO_RESOURCES");
	assert_string_equal(pcp_result_name(200), "unknown");
	/* ... also without a payload, but a success needs one. */
	assert_int_equal(pcp_parse_response(buf, 24, &r), 0);
	assert_false(r.has_map);
	buf[3] = PCP_SUCCESS;
	assert_int_equal(pcp_parse_response(buf, 24, &r), -EBADMSG);

	/* Requests, short, ragged or oversized datagrams are refused. */
	assert_int_equal(pcp_parse_response(map_request, 60, &r), -EBADMSG);
	assert_int_equal(pcp_parse_response(map_response, 3, &r), -EBADMSG);
	assert_int_equal(pcp_parse_response(map_response, 20, &r), -EBADMSG);
	assert_int_equal(pcp_parse_response(map_response, 58, &r), -EBADMSG);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, map_response, 60);
	assert_int_equal(pcp_parse_response(buf, PCP_MAX_MSG + 4, &r), -EBADMSG);
}

static void test_parse_options(void **state)
{
	uint8_t buf[PCP_MAX_MSG];
	struct pcp_response r;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, map_response, 60);
	/* THIRD_PARTY (code 1, 16 bytes) and PREFER_FAILURE (2, empty). */
	buf[60] = 1;
	buf[63] = 16;
	buf[80] = 2;
	assert_int_equal(pcp_parse_response(buf, 84, &r), 0);
	assert_int_equal(r.n_options, 2);
	/* A body padded to 4: length 5 takes 8 bytes, the next option
	 * (empty) starts at 72. */
	buf[63] = 5;
	assert_int_equal(pcp_parse_response(buf, 76, &r), 0);
	assert_int_equal(r.n_options, 2);
	assert_int_equal(pcp_parse_response(buf, 72, &r), 0);
	assert_int_equal(r.n_options, 1);
	/* A length running past the datagram, by one byte or by 64 KiB. */
	buf[63] = 13;
	assert_int_equal(pcp_parse_response(buf, 76, &r), -EBADMSG);
	buf[62] = 0xff;
	buf[63] = 0xff;
	assert_int_equal(pcp_parse_response(buf, 84, &r), -EBADMSG);
	/* A truncated option header cannot happen: lengths are multiples of 4,
	 * and an option header is 4 bytes. */
}

static void test_v4_mapping(void **state)
{
	struct in6_addr a = v4mapped("198.51.100.11"), b;
	struct in_addr out;

	assert_true(pcp_addr_to_v4(&a, &out));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &b), 1);
	assert_false(pcp_addr_to_v4(&b, &out));
}

static const char routes[] =
	"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	"eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
	"eth0\t00000000\tFE01000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
	"eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

static void test_default_gateway(void **state)
{
	struct in_addr gw;
	char s[INET_ADDRSTRLEN];

	/* The default route with the lowest metric: 10.0.1.254 via eth0. */
	assert_int_equal(gateway_parse_routes(routes, strlen(routes), &gw), 0);
	assert_string_equal(inet_ntop(AF_INET, &gw, s, sizeof(s)), "10.0.1.254");

	/* No default route, a down one, garbage, an empty file. */
	const char *none = "Iface\tDestination\n"
			   "eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
			   "eth0\t00000000\tFE01000A\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"
			   "\x01\x02 garbage\n\n";
	assert_int_equal(gateway_parse_routes(none, strlen(none), &gw), -ENOENT);
	assert_int_equal(gateway_parse_routes("", 0, &gw), -ENOENT);
	/* The header line alone never counts, even when it parses. */
	const char *hdr = "eth0\t00000000\tFE01000A\t0003\t0\t0\t0\t00000000\n";
	assert_int_equal(gateway_parse_routes(hdr, strlen(hdr), &gw), -ENOENT);
}

static void test_ssdp(void **state)
{
	struct in_addr gw, other;
	char msg[SSDP_MSG_MAX], url[UPNP_URL_MAX];
	const char *answer = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n"
			     "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
			     "Location:   http://10.0.1.254:5000/rootDesc.xml \r\n\r\n";

	inet_pton(AF_INET, "10.0.1.254", &gw);
	inet_pton(AF_INET, "10.0.1.253", &other);
	assert_true(ssdp_build_msearch(msg, sizeof(msg), gw, 1) > 0);
	assert_non_null(strstr(msg, "HOST: 10.0.1.254:1900\r\n"));
	assert_non_null(strstr(msg, "InternetGatewayDevice:1\r\n\r\n"));
	assert_int_equal(ssdp_build_msearch(msg, 20, gw, 1), -ENOSPC);

	assert_int_equal(ssdp_parse_location(answer, strlen(answer), url, sizeof(url)), 0);
	assert_string_equal(url, "http://10.0.1.254:5000/rootDesc.xml");
	assert_int_equal(ssdp_parse_location("HTTP/1.1 200 OK\r\n\r\n", 19, url, sizeof(url)),
			 -ENOENT);
	assert_int_equal(ssdp_parse_location("LOCATION: \r\n", 12, url, sizeof(url)), -EBADMSG);
	assert_int_equal(ssdp_parse_location("LOCATION: http://a b/\r\n", 23, url, sizeof(url)),
			 -EBADMSG);
	assert_int_equal(ssdp_parse_location(answer, strlen(answer), url, 20), -EBADMSG);

	/* Only the gateway's literal address: never a name, never another host. */
	assert_true(upnp_url_on_host("http://10.0.1.254:5000/rootDesc.xml", gw));
	assert_true(upnp_url_on_host("http://10.0.1.254/ctl", gw));
	assert_true(upnp_url_on_host("HTTP://10.0.1.254:80", gw));
	assert_false(upnp_url_on_host("http://10.0.1.253:5000/rootDesc.xml", gw));
	assert_false(upnp_url_on_host("http://10.0.1.254:5000/x", other));
	assert_false(upnp_url_on_host("http://router.lan:5000/rootDesc.xml", gw));
	assert_false(upnp_url_on_host("http://10.0.1.254.evil.example/x", gw));
	assert_false(upnp_url_on_host("https://10.0.1.254/x", gw));
	assert_false(upnp_url_on_host("http://10.0.1.254:0/x", gw));
	assert_false(upnp_url_on_host("http://10.0.1.254:99999/x", gw));
	assert_false(upnp_url_on_host("http://10.0.1.254:80@10.9.9.9/x", gw));
	assert_false(upnp_url_on_host("http://[::1]:80/x", gw));
	assert_false(upnp_url_on_host(NULL, gw));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_matches_capture),
		cmocka_unit_test(test_parse_capture),
		cmocka_unit_test(test_parse_errors_and_versions),
		cmocka_unit_test(test_parse_options),
		cmocka_unit_test(test_v4_mapping),
		cmocka_unit_test(test_default_gateway),
		cmocka_unit_test(test_ssdp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
