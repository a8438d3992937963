// SPDX-License-Identifier: MIT
/*
 * Key encodings (see encoding.h).  Decoding runs in constant time, without
 * table lookups indexed by secret characters, as wireguard-tools' encoding.c.
 */
#include "lib/encoding.h"

#include <errno.h>
#include <string.h>

static char encode_6(uint8_t v)
{
	/* Branch-free: A-Z a-z 0-9 + / */
	int x = v;
	x += 'A';
	x += ((25 - (int)v) >> 8) & 6;
	x -= ((51 - (int)v) >> 8) & 75;
	x -= ((61 - (int)v) >> 8) & 15;
	x += ((62 - (int)v) >> 8) & 3;
	return (char)x;
}

void key_to_base64(char *out, const uint8_t key[KEY_LEN])
{
	unsigned i;

	for (i = 0; i < KEY_LEN / 3; i++) {
		const uint8_t *k = key + i * 3;
		out[i * 4 + 0] = encode_6(k[0] >> 2);
		out[i * 4 + 1] = encode_6(((k[0] << 4) | (k[1] >> 4)) & 63);
		out[i * 4 + 2] = encode_6(((k[1] << 2) | (k[2] >> 6)) & 63);
		out[i * 4 + 3] = encode_6(k[2] & 63);
	}
	out[i * 4 + 0] = encode_6(key[i * 3 + 0] >> 2);
	out[i * 4 + 1] = encode_6(((key[i * 3 + 0] << 4) | (key[i * 3 + 1] >> 4)) & 63);
	out[i * 4 + 2] = encode_6((key[i * 3 + 1] << 2) & 63);
	out[i * 4 + 3] = '=';
	out[KEY_BASE64_LEN] = '\0';
}

/* The 6-bit value of c, or -1; no branches on c. */
static int decode_6(char ch)
{
	int c = (unsigned char)ch, ret = -1;

	ret += (((('A' - 1) - c) & (c - ('Z' + 1))) >> 8) & (c - 64);
	ret += (((('a' - 1) - c) & (c - ('z' + 1))) >> 8) & (c - 70);
	ret += (((('0' - 1) - c) & (c - ('9' + 1))) >> 8) & (c + 5);
	ret += ((('+' - 1 - c) & (c - ('+' + 1))) >> 8) & 63;
	ret += ((('/' - 1 - c) & (c - ('/' + 1))) >> 8) & 64;
	return ret;
}

/* Decodes n (3 or 4) characters into a 24-bit group; flags bad characters. */
static uint32_t decode_group(const char *s, unsigned n, volatile uint8_t *bad)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < n; i++) {
		int d = decode_6(s[i]);
		*bad |= (uint8_t)((d >> 8) & 1);
		v |= (uint32_t)(d & 63) << (18 - 6 * i);
	}
	return v;
}

int key_from_base64(uint8_t key[KEY_LEN], const char *s)
{
	volatile uint8_t bad = 0;
	unsigned i;
	uint32_t v;

	if (strlen(s) != KEY_BASE64_LEN || s[KEY_BASE64_LEN - 1] != '=')
		return -EINVAL;
	for (i = 0; i < KEY_LEN / 3; i++) {
		v = decode_group(s + i * 4, 4, &bad);
		key[i * 3 + 0] = (uint8_t)(v >> 16);
		key[i * 3 + 1] = (uint8_t)(v >> 8);
		key[i * 3 + 2] = (uint8_t)v;
	}
	v = decode_group(s + i * 4, 3, &bad);
	bad |= (uint8_t)((v & 0xff) != 0); /* unused low bits must be zero */
	key[i * 3 + 0] = (uint8_t)(v >> 16);
	key[i * 3 + 1] = (uint8_t)(v >> 8);
	if (bad) {
		explicit_bzero(key, KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

void key_to_hex(char *out, const uint8_t key[KEY_LEN])
{
	for (unsigned i = 0; i < KEY_LEN; i++) {
		/* Branch-free nibble to [0-9a-f]. */
		int hi = key[i] >> 4, lo = key[i] & 15;
		out[i * 2] = (char)(87 + hi + (((hi - 10) >> 8) & ~38));
		out[i * 2 + 1] = (char)(87 + lo + (((lo - 10) >> 8) & ~38));
	}
	out[KEY_HEX_LEN] = '\0';
}

int key_from_hex(uint8_t key[KEY_LEN], const char *s)
{
	volatile uint8_t bad = 0;

	if (strlen(s) != KEY_HEX_LEN)
		return -EINVAL;
	for (unsigned i = 0; i < KEY_HEX_LEN; i += 2) {
		uint8_t byte = 0;
		for (unsigned j = 0; j < 2; j++) {
			int c = (unsigned char)s[i + j];
			int c_num = c ^ 48, c_num0 = (c_num - 10) >> 8;
			int c_alpha = (c & ~32) - 55,
			    c_alpha0 = ((c_alpha - 10) ^ (c_alpha - 16)) >> 8;
			/* The masks are -1 for a hex digit, so +1 is 0 then, 1 otherwise. */
			bad |= (uint8_t)((c_num0 | c_alpha0) + 1);
			byte = (uint8_t)((byte << 4) | ((c_num0 & c_num) | (c_alpha0 & c_alpha)));
		}
		key[i / 2] = byte;
	}
	if (bad) {
		explicit_bzero(key, KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

bool key_is_zero(const uint8_t key[KEY_LEN])
{
	volatile uint8_t acc = 0;

	for (unsigned i = 0; i < KEY_LEN; i++)
		acc |= key[i];
	return acc == 0;
}
