// SPDX-License-Identifier: MIT
/* src/lib/encoding.c: keys as base64 and hex, against a plain reference. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/encoding.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A textbook RFC 4648 encoder (table lookups), the reference for ours. */
static void ref_base64(char *out, const uint8_t *in, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

static void ref_hex(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[i * 2] = digits[in[i] >> 4];
		out[i * 2 + 1] = digits[in[i] & 15];
	}
	out[len * 2] = '\0';
}

/* Encodes with ours and the reference, then decodes ours back. */
static void check_roundtrip(const uint8_t key[KEY_LEN])
{
	char ours[KEY_HEX_LEN + 1], ref[KEY_HEX_LEN + 1];
	uint8_t back[KEY_LEN];

	key_to_base64(ours, key);
	ref_base64(ref, key, KEY_LEN);
	assert_int_equal(strlen(ours), KEY_BASE64_LEN);
	assert_string_equal(ours, ref);
	memset(back, 0xaa, sizeof(back));
	assert_int_equal(key_from_base64(back, ours), 0);
	assert_memory_equal(back, key, KEY_LEN);

	key_to_hex(ours, key);
	ref_hex(ref, key, KEY_LEN);
	assert_int_equal(strlen(ours), KEY_HEX_LEN);
	assert_string_equal(ours, ref);
	memset(back, 0xaa, sizeof(back));
	assert_int_equal(key_from_hex(back, ours), 0);
	assert_memory_equal(back, key, KEY_LEN);
}

static void test_known_pairs(void **state)
{
	/* Computed independently (Python's base64 and bytes.hex()). */
	static const struct {
		const char *b64, *hex;
	} pairs[] = {
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		 "0000000000000000000000000000000000000000000000000000000000000000"},
		{"//////////////////////////////////////////8=",
		 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
		{"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faA=",
		 "544d5e700a8041405c37aaceb65dce603e5267bd61775760633e4b23e5367da0"},
		{"pcQMqAXmCDFoLjhK/fR3/At5YQlgHjhz1r0/cWm00D8=",
		 "a5c40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03f"},
	};
	uint8_t a[KEY_LEN], b[KEY_LEN];
	char out[KEY_HEX_LEN + 1];

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		assert_int_equal(key_from_base64(a, pairs[i].b64), 0);
		assert_int_equal(key_from_hex(b, pairs[i].hex), 0);
		assert_memory_equal(a, b, KEY_LEN);
		key_to_base64(out, a);
		assert_string_equal(out, pairs[i].b64);
		key_to_hex(out, b);
		assert_string_equal(out, pairs[i].hex);
	}
}

static void test_roundtrips(void **state)
{
	uint8_t key[KEY_LEN];

	/* Every byte value in every position class (mod 3 for base64). */
	for (int v = 0; v < 256; v++) {
		for (int pos = 0; pos < KEY_LEN; pos++) {
			memset(key, 0, sizeof(key));
			key[pos] = (uint8_t)v;
			check_roundtrip(key);
		}
	}
	/* Each single bit, and its complement. */
	for (int bit = 0; bit < KEY_LEN * 8; bit++) {
		memset(key, 0, sizeof(key));
		key[bit / 8] = (uint8_t)(1u << (bit % 8));
		check_roundtrip(key);
		for (int i = 0; i < KEY_LEN; i++)
			key[i] = (uint8_t)~key[i];
		check_roundtrip(key);
	}
	srand(1);
	for (int r = 0; r < 2000; r++) {
		for (int i = 0; i < KEY_LEN; i++)
			key[i] = (uint8_t)rand();
		check_roundtrip(key);
	}
}

static void test_hex_accepts_upper_case(void **state)
{
	uint8_t a[KEY_LEN], b[KEY_LEN];

	assert_int_equal(
		key_from_hex(a, "A5C40CA805E60831682E384AFDF477FC0B796109601E3873D6BD3F7169B4D03F"),
		0);
	assert_int_equal(
		key_from_hex(b, "a5C40cA805e60831682E384afdf477fc0b796109601e3873d6bD3F7169b4d03f"),
		0);
	assert_memory_equal(a, b, KEY_LEN);
	assert_int_equal(a[0], 0xa5);
	assert_int_equal(a[31], 0x3f);
}

static bool in_alphabet(int c)
{
	return c && strchr(b64_alphabet, c) != NULL;
}

static void test_base64_rejects(void **state)
{
	static const char good[] = "VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faA=";
	static const char *const bad[] = {
		"",
		"=",
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faA",	 /* no pad */
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2fa=",	 /* short */
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faA==", /* long */
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faAA",	 /* 'A' for '=' */
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2fa==",	 /* two pads */
		" VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faA=",
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI+U2faA= ",
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI-U2faA=", /* URL-safe alphabet */
		"VE1ecAqAQUBcN6rOtl3OYD5SZ71hd1dgYz5LI_U2faA=",
		"VE1ecAqAQUBcN6rO=l3OYD5SZ71hd1dgYz5LI+U2faA=", /* pad inside */
		"544d5e700a8041405c37aaceb65dce603e5267bd61775760633e4b23e5367da0",
	};
	uint8_t key[KEY_LEN];
	char s[KEY_BASE64_LEN + 1];

	assert_int_equal(key_from_base64(key, good), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (key_from_base64(key, bad[i]) != -EINVAL)
			fail_msg("accepted base64 \"%s\"", bad[i]);
	}
	/* Every byte in every position: accepted only from the alphabet. */
	for (int pos = 0; pos < KEY_BASE64_LEN - 1; pos++) {
		for (int c = 1; c < 256; c++) {
			int want;
			memcpy(s, good, sizeof(s));
			s[pos] = (char)c;
			want = in_alphabet(c) ? 0 : -EINVAL;
			/* The last character carries 4 bits and 2 unused ones. */
			if (pos == KEY_BASE64_LEN - 2 && want == 0 &&
			    (strchr(b64_alphabet, c) - b64_alphabet) % 4)
				want = -EINVAL;
			if (key_from_base64(key, s) != want)
				fail_msg("position %d byte 0x%02x: expected %d", pos, c, want);
		}
	}
}

static void test_base64_nonzero_unused_bits(void **state)
{
	uint8_t key[KEY_LEN];

	/* "8=" ends the all-ones key; "9=", "+=", "/=" set an unused bit; "0=" does not. */
	assert_int_equal(key_from_base64(key, "//////////////////////////////////////////8="), 0);
	assert_int_equal(key_from_base64(key, "//////////////////////////////////////////9="),
			 -EINVAL);
	assert_int_equal(key_from_base64(key, "//////////////////////////////////////////+="),
			 -EINVAL);
	assert_int_equal(key_from_base64(key, "///////////////////////////////////////////="),
			 -EINVAL);
	assert_int_equal(key_from_base64(key, "//////////////////////////////////////////0="), 0);
	assert_int_equal(key[31], 0xfd);
	assert_int_equal(key_from_base64(key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="),
			 -EINVAL);
	assert_int_equal(key_from_base64(key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="), 0);
	assert_int_equal(key[31], 0x01);
}

static void test_hex_rejects(void **state)
{
	static const char good[] =
		"a5c40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03f";
	static const char *const bad[] = {
		"",
		"a5c40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03",
		"a5c40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03f0",
		"a5c40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03f ",
		"0xc40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03f",
		"pcQMqAXmCDFoLjhK/fR3/At5YQlgHjhz1r0/cWm00D8=",
	};
	uint8_t key[KEY_LEN];
	char s[KEY_HEX_LEN + 1];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (key_from_hex(key, bad[i]) != -EINVAL)
			fail_msg("accepted hex \"%s\"", bad[i]);
	}
	for (int pos = 0; pos < KEY_HEX_LEN; pos++) {
		for (int c = 1; c < 256; c++) {
			bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
				  (c >= 'A' && c <= 'F');
			memcpy(s, good, sizeof(s));
			s[pos] = (char)c;
			if (key_from_hex(key, s) != (ok ? 0 : -EINVAL))
				fail_msg("position %d byte 0x%02x", pos, c);
		}
	}
}

static void test_rejected_decode_leaves_no_key(void **state)
{
	uint8_t key[KEY_LEN], zero[KEY_LEN] = {0};

	/* A bad character at the end must not leave the first 31 bytes behind. */
	assert_int_equal(key_from_base64(key, "pcQMqAXmCDFoLjhK/fR3/At5YQlgHjhz1r0/cWm00D!="),
			 -EINVAL);
	assert_memory_equal(key, zero, KEY_LEN);
	assert_int_equal(
		key_from_hex(key,
			     "a5c40ca805e60831682e384afdf477fc0b796109601e3873d6bd3f7169b4d03g"),
		-EINVAL);
	assert_memory_equal(key, zero, KEY_LEN);
}

static void test_key_is_zero(void **state)
{
	uint8_t key[KEY_LEN] = {0};

	assert_true(key_is_zero(key));
	for (int i = 0; i < KEY_LEN; i++) {
		key[i] = 0x80;
		assert_false(key_is_zero(key));
		key[i] = 0;
	}
	assert_true(key_is_zero(key));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_pairs),
		cmocka_unit_test(test_roundtrips),
		cmocka_unit_test(test_hex_accepts_upper_case),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_base64_nonzero_unused_bits),
		cmocka_unit_test(test_hex_rejects),
		cmocka_unit_test(test_rejected_decode_leaves_no_key),
		cmocka_unit_test(test_key_is_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
