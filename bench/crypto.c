// SPDX-License-Identifier: MIT
/*
 * Per-packet ChaCha20-Poly1305 cost of a full-MTU WireGuard data packet (1424
 * bytes of plaintext), through crypto.h and through raw libgcrypt with and
 * without a setkey per packet, to show what caching the key in aead_ctx buys,
 * and through the other implementations Debian has (OpenSSL's EVP and
 * libsodium), to show whether another library would be faster.
 * Prints GB/s of plaintext (1 GB = 1e9 bytes) and ns per packet, best of ROUNDS.
 * Built by hand, not by make:
 *
 *   gcc -std=gnu11 -D_GNU_SOURCE -Isrc -O2 -Wall -Wextra -Werror bench/crypto.c \
 *     src/crypto/crypto.c $(pkg-config --cflags --libs libgcrypt libcrypto libsodium) \
 *     -o /tmp/bench_crypto
 *   /tmp/bench_crypto [packets per round, default 200000]
 */
#include <errno.h>
#include <gcrypt.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"

#define PKT_LEN 1424
#define ROUNDS	7

static uint8_t key[AEAD_KEY_LEN], key2[AEAD_KEY_LEN];
static uint8_t buf[PKT_LEN + AEAD_TAG_LEN];
static struct aead_ctx *ctx;
static gcry_cipher_hd_t hd;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_crypto: %s failed\n", what);
	exit(1);
}

/* Each case seals one packet in place under nonce counter n. */
static void seal_layer(uint64_t n)
{
	uint8_t nonce[AEAD_NONCE_LEN];

	aead_nonce_from_counter(nonce, n);
	if (aead_seal(ctx, key, nonce, NULL, 0, buf, PKT_LEN, buf))
		die("aead_seal");
}

/* Two sessions interleaved on one context: the key cache always misses. */
static void seal_layer_two_keys(uint64_t n)
{
	uint8_t nonce[AEAD_NONCE_LEN];

	aead_nonce_from_counter(nonce, n);
	if (aead_seal(ctx, n & 1 ? key2 : key, nonce, NULL, 0, buf, PKT_LEN, buf))
		die("aead_seal");
}

static void open_layer(uint64_t n)
{
	uint8_t nonce[AEAD_NONCE_LEN];

	/* Verifying a tag that does not match costs the same as one that does. */
	aead_nonce_from_counter(nonce, n);
	if (aead_open(ctx, key, nonce, NULL, 0, buf, sizeof(buf), buf) != -EBADMSG)
		die("aead_open");
}

static void seal_raw(uint64_t n, int setkey)
{
	uint8_t nonce[AEAD_NONCE_LEN];

	aead_nonce_from_counter(nonce, n);
	if (setkey && gcry_cipher_setkey(hd, key, sizeof(key)))
		die("setkey");
	if (gcry_cipher_setiv(hd, nonce, sizeof(nonce)) ||
	    gcry_cipher_encrypt(hd, buf, PKT_LEN, NULL, 0) ||
	    gcry_cipher_gettag(hd, buf + PKT_LEN, AEAD_TAG_LEN))
		die("raw seal");
}

static void seal_raw_setkey(uint64_t n)
{
	seal_raw(n, 1);
}

static void seal_raw_nosetkey(uint64_t n)
{
	seal_raw(n, 0);
}

static EVP_CIPHER_CTX *evp;

static void seal_openssl(uint64_t n)
{
	uint8_t nonce[AEAD_NONCE_LEN];
	int len;

	aead_nonce_from_counter(nonce, n);
	if (EVP_EncryptInit_ex(evp, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(evp, buf, &len, buf, PKT_LEN) != 1 ||
	    EVP_EncryptFinal_ex(evp, buf + len, &len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(evp, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, buf + PKT_LEN) != 1)
		die("openssl seal");
}

static void seal_sodium(uint64_t n)
{
	uint8_t nonce[AEAD_NONCE_LEN];
	unsigned long long len;

	aead_nonce_from_counter(nonce, n);
	crypto_aead_chacha20poly1305_ietf_encrypt(buf, &len, buf, PKT_LEN, NULL, 0, NULL, nonce,
						  key);
}

static const struct bench_case {
	const char *name;
	void (*fn)(uint64_t n);
} cases[] = {
	{"aead_seal, key cached", seal_layer},
	{"aead_seal, two keys (setkey every call)", seal_layer_two_keys},
	{"aead_open, key cached", open_layer},
	{"raw libgcrypt seal, setkey every packet", seal_raw_setkey},
	{"raw libgcrypt seal, setkey once", seal_raw_nosetkey},
	{"OpenSSL EVP seal, key set once", seal_openssl},
	{"libsodium seal (ietf)", seal_sodium},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Rounds interleave the cases so that all of them see the same machine. */
static void run(uint64_t packets)
{
	double best[NCASES];

	for (size_t c = 0; c < NCASES; c++)
		best[c] = 1e30;
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t c = 0; c < NCASES; c++) {
			double t0 = now(), t;

			for (uint64_t i = 0; i < packets; i++)
				cases[c].fn(i);
			t = now() - t0;
			if (t < best[c])
				best[c] = t;
		}
	}
	for (size_t c = 0; c < NCASES; c++)
		printf("%-42s %6.3f GB/s %7.1f ns/packet\n", cases[c].name,
		       (double)packets * PKT_LEN / best[c] / 1e9, best[c] / (double)packets * 1e9);
}

int main(int argc, char **argv)
{
	uint64_t packets = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;

	if (!packets || crypto_init() || aead_ctx_new(&ctx) ||
	    gcry_cipher_open(&hd, GCRY_CIPHER_CHACHA20, GCRY_CIPHER_MODE_POLY1305, 0))
		die("setup");
	random_bytes(key, sizeof(key));
	random_bytes(key2, sizeof(key2));
	random_bytes(buf, sizeof(buf));
	if (gcry_cipher_setkey(hd, key, sizeof(key)))
		die("setkey");
	if (sodium_init() < 0 || !(evp = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(evp, EVP_chacha20_poly1305(), NULL, key, NULL) != 1)
		die("openssl/libsodium setup");
	printf("libgcrypt %s, %d-byte packets, %llu per round, best of %d\n",
	       gcry_check_version(NULL), PKT_LEN, (unsigned long long)packets, ROUNDS);
	run(packets);
	gcry_cipher_close(hd);
	EVP_CIPHER_CTX_free(evp);
	aead_ctx_free(ctx);
	return 0;
}
