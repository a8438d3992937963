// SPDX-License-Identifier: MIT
/* wg-quick files and `set=1` bodies: what parses, and every kind of error
 * with the line it names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "lib/encoding.h"
#include "wg/wgconfig.h"

#define KEY1 "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define KEY2 "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define KEY3 "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="

static int parse(struct wg_config *c, const char *text, char *err)
{
	wg_config_init(c);
	return wgquick_parse(c, text, strlen(text), "wg0.conf", err);
}

static void test_full_file(void **state)
{
	static const char text[] = "# a comment\r\n"
				   "[Interface]\r\n"
				   "PrivateKey = " KEY1 "\r\n"
				   "ListenPort=51820\n"
				   "  Address = 10.0.0.1/24 , fd00::1/64  # trailing comment\n"
				   "mtu = 1380\n"
				   "DNS = 10.0.0.53\n"
				   "\n"
				   "[Peer]\n"
				   "PublicKey = " KEY2 "\n"
				   "PresharedKey = " KEY3 "\n"
				   "AllowedIPs = 10.0.0.2/32, fd00::2/128\n"
				   "AllowedIPs = 192.168.7.9/24\n"
				   "Endpoint = 192.0.2.1:51820\n"
				   "PersistentKeepalive = 25\n"
				   "[peer]\n"
				   "publickey = " KEY3 "\n"
				   "Endpoint = [2001:db8::1]:4500\n"
				   "PersistentKeepalive = off"; /* no final newline */
	char err[WGCONFIG_ERR_LEN] = "";
	struct wg_config c;
	uint8_t key[32];
	char pfx[PREFIX_STRLEN], ep[ENDPOINT_STRLEN];

	assert_int_equal(parse(&c, text, err), 0);
	assert_true(c.has_private_key);
	key_from_base64(key, KEY1);
	assert_memory_equal(c.private_key, key, 32);
	assert_int_equal(c.listen_port, 51820);
	assert_int_equal(c.mtu, 1380);
	assert_int_equal(c.n_addresses, 2);
	prefix_format(&c.addresses[0], pfx, sizeof(pfx));
	assert_string_equal(pfx, "10.0.0.1/24"); /* host bits kept */
	assert_int_equal(c.n_warnings, 1);
	assert_non_null(strstr(c.warnings[0], "wg0.conf:7: DNS"));
	assert_int_equal(c.n_peers, 2);
	assert_true(c.peers[0].has_preshared_key);
	assert_int_equal(c.peers[0].n_allowed_ips, 3);
	prefix_format(&c.peers[0].allowed_ips[2], pfx, sizeof(pfx));
	assert_string_equal(pfx, "192.168.7.0/24"); /* masked */
	endpoint_format(&c.peers[0].endpoint, ep, sizeof(ep));
	assert_string_equal(ep, "192.0.2.1:51820");
	assert_int_equal(c.peers[0].persistent_keepalive, 25);
	endpoint_format(&c.peers[1].endpoint, ep, sizeof(ep));
	assert_string_equal(ep, "[2001:db8::1]:4500");
	assert_int_equal(c.peers[1].persistent_keepalive, 0);
	assert_int_equal(c.peers[1].n_allowed_ips, 0);
	wg_config_free(&c);
}

static void expect_error(const char *text, const char *message)
{
	char err[WGCONFIG_ERR_LEN] = "";
	struct wg_config c;

	assert_int_equal(parse(&c, text, err), -EINVAL);
	if (!strstr(err, message)) {
		print_error("expected \"%s\" in \"%s\"\n", message, err);
		fail();
	}
	/* A secret never appears in an error. */
	assert_null(strstr(err, KEY1));
	wg_config_free(&c);
}

static void test_errors_name_their_line(void **state)
{
	expect_error("[Interface]\nPrivateKey = nope\n", "wg0.conf:2: invalid PrivateKey");
	expect_error("[Interface]\nPrivateKey = " KEY1 "x\n", "wg0.conf:2: invalid PrivateKey");
	expect_error("PrivateKey = " KEY1 "\n", "wg0.conf:1: 'PrivateKey' outside a section");
	expect_error("[Interface]\n\n# c\nFoo = 1\n",
		     "wg0.conf:4: unknown key 'Foo' in [Interface]");
	expect_error("[Interfaces]\n", "wg0.conf:1: unknown section");
	expect_error("[Interface]\nListenPort = 65536\n", "wg0.conf:2: invalid ListenPort");
	expect_error("[Interface]\nListenPort = -1\n", "wg0.conf:2: invalid ListenPort");
	expect_error("[Interface]\nMTU = 100\n", "wg0.conf:2: invalid MTU");
	expect_error("[Interface]\nAddress = 10.0.0.1/33\n", "wg0.conf:2: invalid Address");
	expect_error("[Interface]\nPrivateKey = " KEY1 "\nPrivateKey = " KEY1 "\n",
		     "wg0.conf:3: duplicate PrivateKey");
	expect_error("[Interface]\njust words\n", "wg0.conf:2: expected Key = Value");
	expect_error("[Peer]\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = " KEY2 "\n",
		     "wg0.conf:1: [Peer] without PublicKey");
	expect_error("[Peer]\nPublicKey = " KEY2 "\n[Peer]\nPublicKey = " KEY2 "\n",
		     "wg0.conf:3: a second [Peer] with the same PublicKey");
	expect_error("[Peer]\nPublicKey = " KEY2 "\nAllowedIPs = 10.0.0.0/8, banana\n",
		     "wg0.conf:3: invalid allowed IP 'banana'");
	expect_error("[Peer]\nPublicKey = " KEY2 "\nEndpoint = 1.2.3.4\n",
		     "wg0.conf:3: invalid Endpoint");
	expect_error("[Peer]\nPublicKey = " KEY2 "\nEndpoint = ::1:51820\n",
		     "wg0.conf:3: invalid Endpoint");
	expect_error("[Peer]\nPublicKey = " KEY2 "\nPersistentKeepalive = 70000\n",
		     "wg0.conf:3: invalid PersistentKeepalive");
	expect_error("[Peer]\nPublicKey = " KEY2 "\nFrob = 1\n", "wg0.conf:3: unknown key 'Frob'");
}

static void test_hostile_text(void **state)
{
	char err[WGCONFIG_ERR_LEN];
	struct wg_config c;
	char *big = malloc(10000);
	static const char nul[] = "[Interface]\nListenPort = 1\0\n";

	memset(big, 'a', 9999);
	big[9999] = '\0';
	expect_error(big, "wg0.conf:1: line longer than 4096");
	wg_config_init(&c);
	assert_int_equal(wgquick_parse(&c, nul, sizeof(nul) - 1, "wg0.conf", err), -EINVAL);
	assert_non_null(strstr(err, "wg0.conf:2: NUL byte"));
	wg_config_free(&c);
	free(big);
}

static void test_load_missing_file(void **state)
{
	char err[WGCONFIG_ERR_LEN];
	struct wg_config c;

	wg_config_init(&c);
	assert_int_equal(wgquick_load(&c, "/nonexistent/wg9.conf", err), -EINVAL);
	assert_string_equal(err, "/nonexistent/wg9.conf: No such file or directory");
	wg_config_free(&c);
}

static void test_uapi_set(void **state)
{
	char hex1[65], hex2[65], body[1024], err[WGCONFIG_ERR_LEN] = "";
	uint8_t k1[32], k2[32];
	struct wg_config c;

	key_from_base64(k1, KEY1);
	key_from_base64(k2, KEY2);
	key_to_hex(hex1, k1);
	key_to_hex(hex2, k2);
	/* As wg(8) sends it. */
	snprintf(body, sizeof(body),
		 "private_key=%s\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n"
		 "public_key=%s\npreshared_key=%s\nendpoint=[::1]:51820\n"
		 "persistent_keepalive_interval=25\nreplace_allowed_ips=true\n"
		 "allowed_ip=10.0.0.2/32\nallowed_ip=fd00::/64\nprotocol_version=1\n"
		 "public_key=%s\nremove=true\n",
		 hex1, hex2, hex1, hex1);
	wg_config_init(&c);
	assert_int_equal(uapi_parse_set(&c, body, strlen(body), err), 0);
	assert_true(c.has_private_key);
	assert_memory_equal(c.private_key, k1, 32);
	assert_int_equal(c.listen_port, 51820);
	assert_true(c.has_fwmark);
	assert_true(c.replace_peers);
	assert_int_equal(c.n_peers, 2);
	assert_memory_equal(c.peers[0].public_key, k2, 32);
	assert_true(c.peers[0].replace_allowed_ips);
	assert_int_equal(c.peers[0].n_allowed_ips, 2);
	assert_int_equal(c.peers[0].persistent_keepalive, 25);
	assert_true(c.peers[1].remove);
	wg_config_free(&c);
}

static void expect_uapi_error(const char *body, int ret, const char *message)
{
	char err[WGCONFIG_ERR_LEN] = "";
	struct wg_config c;

	wg_config_init(&c);
	assert_int_equal(uapi_parse_set(&c, body, strlen(body), err), ret);
	if (!strstr(err, message)) {
		print_error("expected \"%s\" in \"%s\"\n", message, err);
		fail();
	}
	wg_config_free(&c);
}

static void test_uapi_errors(void **state)
{
	expect_uapi_error("listen_port=1\nbogus=1\n", -EINVAL, "line 2: unknown key 'bogus'");
	expect_uapi_error("private_key=zz\n", -EINVAL, "line 1: invalid private_key");
	expect_uapi_error("endpoint=1.2.3.4:5\n", -EINVAL, "line 1: unknown key 'endpoint'");
	expect_uapi_error("public_key="
			  "0000000000000000000000000000000000000000000000000000000000000000"
			  "\nprotocol_version=2\n",
			  -EPROTO, "line 2: unsupported protocol_version");
	expect_uapi_error("public_key="
			  "0000000000000000000000000000000000000000000000000000000000000000"
			  "\nendpoint=host.example:1\n",
			  -EINVAL, "line 2: invalid endpoint");
	expect_uapi_error("replace_peers=yes\n", -EINVAL, "line 1: invalid replace_peers");
	expect_uapi_error("listen_port=1\n\nlisten_port=2\n", -EINVAL, "line 2: empty line");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),    cmocka_unit_test(test_errors_name_their_line),
		cmocka_unit_test(test_hostile_text), cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_uapi_set),     cmocka_unit_test(test_uapi_errors),
	};

	crypto_init();
	return cmocka_run_group_tests_name("wgconfig", tests, NULL, NULL);
}
