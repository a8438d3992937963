// SPDX-License-Identifier: MIT
/*
 * The crypto layer against published vectors: RFC 7748 (X25519), RFC 8439
 * (ChaCha20-Poly1305), draft-irtf-cfrg-xchacha-03 (HChaCha20, XChaCha20-
 * Poly1305) and RFC 7693 (BLAKE2s).  Keyed BLAKE2s values are those of the
 * BLAKE2 reference testvectors/blake2s-kat.txt; BLAKE2s-128/160/224, HMAC and
 * the tag-only AEAD values were computed with Python's hashlib, hmac and
 * cryptography (independent implementations).
 */
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

static void unhex(uint8_t *out, const char *hex)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

#define assert_hex_equal(buf, hex)                                                                 \
	do {                                                                                       \
		uint8_t expect_[256];                                                              \
		unhex(expect_, hex);                                                               \
		assert_memory_equal(buf, expect_, strlen(hex) / 2);                                \
	} while (0)

static const char sunscreen[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				"only one tip for the future, sunscreen would be it.";

static void test_x25519_rfc7748(void **state)
{
	uint8_t a[32], b[32], pub[32], shared1[32], shared2[32], scalar[32], u[32], out[32];

	unhex(a, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	unhex(b, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	assert_int_equal(x25519_public(pub, a), 0);
	assert_hex_equal(pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	assert_int_equal(x25519_public(pub, b), 0);
	assert_hex_equal(pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	assert_int_equal(x25519(shared1, a, pub), 0);
	x25519_public(pub, a);
	assert_int_equal(x25519(shared2, b, pub), 0);
	assert_hex_equal(shared1,
			 "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	assert_memory_equal(shared1, shared2, 32);
	/* Section 5.2, first vector: an unclamped scalar is clamped inside. */
	unhex(scalar, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
	unhex(u, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
	assert_int_equal(x25519(out, scalar, u), 0);
	assert_hex_equal(out, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
	/* Second vector: u's top bit is set and must be masked, not reduced. */
	unhex(scalar, "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d");
	unhex(u, "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493");
	assert_int_equal(x25519(out, scalar, u), 0);
	assert_hex_equal(out, "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
}

/* RFC 7748 section 5.2's iterated test: k = X25519(k, u), u = old k, from 9. */
static void test_x25519_rfc7748_iterated(void **state)
{
	uint8_t k[32] = {9}, u[32] = {9}, t[32];

	for (int i = 1; i <= 1000; i++) {
		assert_int_equal(x25519(t, k, u), 0);
		memcpy(u, k, 32);
		memcpy(k, t, 32);
		if (i == 1)
			assert_hex_equal(
				k,
				"422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
	}
	assert_hex_equal(k, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

/* A u-coordinate >= p is taken mod p (RFC 7748 section 5): p + 9 acts as 9. */
static void test_x25519_non_canonical(void **state)
{
	uint8_t priv[32], nine[32] = {9}, p9[32], a[32], b[32];

	x25519_generate(priv);
	unhex(p9, "f6ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
	assert_int_equal(x25519_public(a, priv), 0);
	assert_int_equal(x25519(b, priv, nine), 0);
	assert_memory_equal(a, b, 32);
	assert_int_equal(x25519(b, priv, p9), 0);
	assert_memory_equal(a, b, 32);
}

/* Every point of order 1, 2, 4 or 8 (and their encodings p, p + 1) gives an
 * all-zero secret, which x25519 must refuse whatever the private key. */
static void test_x25519_low_order_rejected(void **state)
{
	static const char *const low_order[] = {
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};
	uint8_t priv[32], point[32], out[32];

	for (int round = 0; round < 4; round++) {
		x25519_generate(priv);
		assert_int_equal(priv[0] & 7, 0);
		assert_int_equal(priv[31] & 0xc0, 0x40);
		for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
			unhex(point, low_order[i]);
			memset(out, 0xaa, sizeof(out));
			assert_int_equal(x25519(out, priv, point), -EINVAL);
		}
		/* And an ordinary point is accepted with the same key. */
		unhex(point, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
		assert_int_equal(x25519(out, priv, point), 0);
	}
}

static void test_x25519_generate_differs(void **state)
{
	uint8_t a[32], b[32];

	x25519_generate(a);
	x25519_generate(b);
	assert_memory_not_equal(a, b, 32);
}

static void test_aead_rfc8439(void **state)
{
	uint8_t key[32], nonce[12], aad[12], ct[sizeof(sunscreen) - 1 + 16], pt[sizeof(sunscreen)];
	size_t len = sizeof(sunscreen) - 1;
	struct aead_ctx *ctx;

	assert_int_equal(aead_ctx_new(&ctx), 0);
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	unhex(nonce, "070000004041424344454647");
	unhex(aad, "50515253c0c1c2c3c4c5c6c7");
	assert_int_equal(aead_seal(ctx, key, nonce, aad, 12, (const uint8_t *)sunscreen, len, ct),
			 0);
	assert_hex_equal(ct, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea"
			     "45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d"
			     "778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9"
			     "de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691");
	assert_int_equal(aead_open(ctx, key, nonce, aad, 12, ct, sizeof(ct), pt), 0);
	assert_memory_equal(pt, sunscreen, len);
	/* Any flipped bit fails, and the output is wiped. */
	ct[len + 3] ^= 1;
	assert_int_equal(aead_open(ctx, key, nonce, aad, 12, ct, sizeof(ct), pt), -EBADMSG);
	ct[len + 3] ^= 1;
	ct[5] ^= 0x80;
	assert_int_equal(aead_open(ctx, key, nonce, aad, 12, ct, sizeof(ct), pt), -EBADMSG);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(pt[i], 0);
	ct[5] ^= 0x80;
	aad[0] ^= 1;
	assert_int_equal(aead_open(ctx, key, nonce, aad, 12, ct, sizeof(ct), pt), -EBADMSG);
	aead_ctx_free(ctx);
}

static void test_aead_in_place_and_empty(void **state)
{
	uint8_t key[32], other[32], nonce[12], buf[64 + 16], tag_only[16], copy[64];
	struct aead_ctx *ctx;

	assert_int_equal(aead_ctx_new(&ctx), 0);
	random_bytes(key, sizeof(key));
	random_bytes(other, sizeof(other));
	random_bytes(buf, 64);
	memcpy(copy, buf, 64);
	aead_nonce_from_counter(nonce, 0x0102030405060708ULL);
	assert_hex_equal(nonce, "000000000807060504030201");
	assert_int_equal(aead_seal(ctx, key, nonce, NULL, 0, buf, 64, buf), 0);
	assert_memory_not_equal(buf, copy, 64);
	/* A keepalive: nothing but the tag. */
	assert_int_equal(aead_seal(ctx, other, nonce, NULL, 0, NULL, 0, tag_only), 0);
	assert_int_equal(aead_open(ctx, other, nonce, NULL, 0, tag_only, 16, NULL), 0);
	/* The context must switch keys correctly between calls. */
	assert_int_equal(aead_open(ctx, key, nonce, NULL, 0, buf, sizeof(buf), buf), 0);
	assert_memory_equal(buf, copy, 64);
	assert_int_equal(aead_open(ctx, key, nonce, NULL, 0, tag_only, 15, NULL), -EBADMSG);
	assert_int_equal(aead_open(ctx, key, nonce, NULL, 0, tag_only, 0, NULL), -EBADMSG);
	/* In place with a bad tag: the plaintext must not be left behind. */
	assert_int_equal(aead_seal(ctx, key, nonce, NULL, 0, buf, 64, buf), 0);
	buf[64] ^= 1;
	assert_int_equal(aead_open(ctx, key, nonce, NULL, 0, buf, sizeof(buf), buf), -EBADMSG);
	for (int i = 0; i < 64; i++)
		assert_int_equal(buf[i], 0);
	aead_ctx_free(ctx);
}

/* The tag of an empty message (a keepalive) and one with AD only. */
static void test_aead_tag_only_vectors(void **state)
{
	uint8_t key[32], nonce[12], tag[16];
	struct aead_ctx *ctx;

	assert_int_equal(aead_ctx_new(&ctx), 0);
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	aead_nonce_from_counter(nonce, 5);
	assert_int_equal(aead_seal(ctx, key, nonce, NULL, 0, NULL, 0, tag), 0);
	assert_hex_equal(tag, "087f5df1cd4921a6ba7ccd772bcf8e9a");
	assert_int_equal(aead_seal(ctx, key, nonce, (const uint8_t *)"wg", 2, NULL, 0, tag), 0);
	assert_hex_equal(tag, "c06928141dc8c23d6074ddee5cfa0c64");
	assert_int_equal(aead_open(ctx, key, nonce, (const uint8_t *)"wg", 2, tag, 16, NULL), 0);
	assert_int_equal(aead_open(ctx, key, nonce, NULL, 0, tag, 16, NULL), -EBADMSG);
	aead_nonce_from_counter(nonce, 6);
	assert_int_equal(aead_open(ctx, key, nonce, (const uint8_t *)"wg", 2, tag, 16, NULL),
			 -EBADMSG);
	aead_ctx_free(ctx);
}

/* The context caches the last key: a key differing only in its last byte
 * must still be set, whichever order the keys come in. */
static void test_aead_key_cache(void **state)
{
	uint8_t key[32], near[32], nonce[12], a[16], b[16], c[16];
	struct aead_ctx *ctx, *fresh;

	assert_int_equal(aead_ctx_new(&ctx), 0);
	assert_int_equal(aead_ctx_new(&fresh), 0);
	random_bytes(key, sizeof(key));
	memcpy(near, key, sizeof(key));
	near[31] ^= 1;
	aead_nonce_from_counter(nonce, 1);
	assert_int_equal(aead_seal(ctx, key, nonce, NULL, 0, NULL, 0, a), 0);
	assert_int_equal(aead_seal(ctx, near, nonce, NULL, 0, NULL, 0, b), 0);
	assert_int_equal(aead_seal(fresh, near, nonce, NULL, 0, NULL, 0, c), 0);
	assert_memory_not_equal(a, b, 16);
	assert_memory_equal(b, c, 16);
	assert_int_equal(aead_seal(ctx, key, nonce, NULL, 0, NULL, 0, c), 0);
	assert_memory_equal(a, c, 16);
	assert_int_equal(aead_open(ctx, near, nonce, NULL, 0, a, 16, NULL), -EBADMSG);
	assert_int_equal(aead_open(ctx, key, nonce, NULL, 0, a, 16, NULL), 0);
	/* An all-zero key is a key like any other (the cache starts zeroed). */
	memset(key, 0, sizeof(key));
	assert_int_equal(aead_seal(ctx, key, nonce, NULL, 0, NULL, 0, a), 0);
	assert_int_equal(aead_seal(fresh, key, nonce, NULL, 0, NULL, 0, b), 0);
	assert_memory_equal(a, b, 16);
	aead_ctx_free(fresh);
	aead_ctx_free(ctx);
}

static void test_aead_nonce_layout(void **state)
{
	uint8_t nonce[12];

	memset(nonce, 0xff, sizeof(nonce));
	aead_nonce_from_counter(nonce, 0);
	assert_hex_equal(nonce, "000000000000000000000000");
	aead_nonce_from_counter(nonce, UINT64_MAX - 1);
	assert_hex_equal(nonce, "00000000feffffffffffffff");
}

static void test_hchacha20_draft(void **state)
{
	uint8_t key[32], nonce[16], out[32];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	unhex(nonce, "000000090000004a0000000031415927");
	hchacha20(out, key, nonce);
	assert_hex_equal(out, "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
}

static void test_xaead_draft(void **state)
{
	uint8_t key[32], nonce[24], aad[12], ct[sizeof(sunscreen) - 1 + 16], pt[sizeof(sunscreen)];
	size_t len = sizeof(sunscreen) - 1;

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	for (int i = 0; i < 24; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	unhex(aad, "50515253c0c1c2c3c4c5c6c7");
	assert_int_equal(xaead_seal(key, nonce, aad, 12, (const uint8_t *)sunscreen, len, ct), 0);
	assert_hex_equal(ct, "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7"
			     "f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40d"
			     "b5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da"
			     "9768812f615c68b13b52ec0875924c1c7987947deafd8780acf49");
	assert_int_equal(xaead_open(key, nonce, aad, 12, ct, sizeof(ct), pt), 0);
	assert_memory_equal(pt, sunscreen, len);
	nonce[23] ^= 1;
	assert_int_equal(xaead_open(key, nonce, aad, 12, ct, sizeof(ct), pt), -EBADMSG);
}

static void test_blake2s(void **state)
{
	uint8_t out[32], key[32], in[64];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		in[i] = (uint8_t)i;
	blake2s(out, 32, NULL, 0, (const uint8_t *)"abc", 3); /* RFC 7693 appendix B */
	assert_hex_equal(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	blake2s(out, 32, key, 32, NULL, 0);
	assert_hex_equal(out, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49");
	blake2s(out, 32, key, 32, in, 1);
	assert_hex_equal(out, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1");
	blake2s(out, 32, key, 32, in, 63);
	assert_hex_equal(out, "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd");
	blake2s(out, 32, key, 32, in, 64);
	assert_hex_equal(out, "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4");
	blake2s(out, 32, NULL, 0, NULL, 0);
	assert_hex_equal(out, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
	/* The other lengths libgcrypt has: each a distinct digest, not a prefix. */
	blake2s(out, 20, NULL, 0, (const uint8_t *)"abc", 3);
	assert_hex_equal(out, "5ae3b99be29b01834c3b508521ede60438f8de17");
	blake2s(out, 28, NULL, 0, (const uint8_t *)"abc", 3);
	assert_hex_equal(out, "0b033fc226df7abde29f67a05d3dc62cf271ef3dfea4d387407fbd55");
	blake2s(out, 16, key, 16, (const uint8_t *)"abc", 3);
	assert_hex_equal(out, "75296c2d2c0f51210b383f386bc8b1ff");
	/* WireGuard's MACs: a real 16-byte digest, not a truncation. */
	blake2s(out, 16, key, 32, (const uint8_t *)"mac1----", 8);
	assert_hex_equal(out, "009514d37a2d3cb5c78a5adf4defcb92");
	blake2s2(out, (const uint8_t *)"a", 1, (const uint8_t *)"bc", 2);
	assert_hex_equal(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	blake2s2(out, (const uint8_t *)"abc", 3, NULL, 0);
	assert_hex_equal(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	blake2s2(out, in, 63, in + 63, 1); /* split one byte before the block edge */
	assert_hex_equal(out, "56f34e8b96557e90c1f24b52d0c89d51086acf1b00f634cf1dde9233b8eaaa3e");
}

static void test_noise_constants(void **state)
{
	static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
	static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
	uint8_t ck[32], hash[32];

	blake2s(ck, 32, NULL, 0, (const uint8_t *)construction, strlen(construction));
	assert_hex_equal(ck, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	blake2s2(hash, ck, 32, (const uint8_t *)identifier, strlen(identifier));
	assert_hex_equal(hash, "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
}

static void test_hmac_blake2s(void **state)
{
	uint8_t out[32], key[100];

	for (int i = 0; i < 100; i++)
		key[i] = (uint8_t)i;
	hmac_blake2s(out, key, 32, (const uint8_t *)"WireGuard", 9);
	assert_hex_equal(out, "5415924543576b3f5ee867c94e1aab70586d33b32fae3fccd2c635b3e1d7198d");
	hmac_blake2s(out, key, 100, (const uint8_t *)"long key", 8); /* key hashed first */
	assert_hex_equal(out, "096d2dec44b647196383c466daf27592cf0c187793f83d1e9f8a19efc137d0d1");
	hmac_blake2s(out, key, 64, (const uint8_t *)"block key", 9); /* used as is */
	assert_hex_equal(out, "05fde39b7dca19d5d11a8c9dc96be6fb5c821f1fb2a0144f1e4e5f6560f63914");
	hmac_blake2s(out, NULL, 0, NULL, 0);
	assert_hex_equal(out, "eaf4bb25938f4d20e72656bbbc7a9bf63c0c18537333c35bdb67db1402661acd");
}

static void test_memeq_and_random(void **state)
{
	uint8_t a[32], b[32];

	random_bytes(a, sizeof(a));
	memcpy(b, a, sizeof(a));
	assert_true(crypto_memeq(a, b, 32));
	b[31] ^= 1;
	assert_false(crypto_memeq(a, b, 32));
	random_bytes(b, sizeof(b));
	assert_memory_not_equal(a, b, 32);
	memzero_explicit(a, sizeof(a));
	for (int i = 0; i < 32; i++)
		assert_int_equal(a[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_x25519_rfc7748_iterated),
		cmocka_unit_test(test_x25519_non_canonical),
		cmocka_unit_test(test_x25519_low_order_rejected),
		cmocka_unit_test(test_x25519_generate_differs),
		cmocka_unit_test(test_aead_rfc8439),
		cmocka_unit_test(test_aead_in_place_and_empty),
		cmocka_unit_test(test_aead_tag_only_vectors),
		cmocka_unit_test(test_aead_key_cache),
		cmocka_unit_test(test_aead_nonce_layout),
		cmocka_unit_test(test_hchacha20_draft),
		cmocka_unit_test(test_xaead_draft),
		cmocka_unit_test(test_blake2s),
		cmocka_unit_test(test_noise_constants),
		cmocka_unit_test(test_hmac_blake2s),
		cmocka_unit_test(test_memeq_and_random),
	};

	assert_int_equal(crypto_init(), 0);
	assert_int_equal(crypto_init(), 0); /* idempotent */
	return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
