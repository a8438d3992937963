// SPDX-License-Identifier: MIT
/*
 * The primitives, over libgcrypt (see crypto.h).  HChaCha20 is the only one
 * written here: libgcrypt has ChaCha20 but not XChaCha20.
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <gcrypt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* gcry_ecc_mul_point appeared in 1.9; crypto_init checks the runtime too. */
#if GCRYPT_VERSION_NUMBER < 0x010900
#error "libgcrypt >= 1.9.0 is required"
#endif

struct aead_ctx {
	gcry_cipher_hd_t hd;
	uint8_t key[AEAD_KEY_LEN]; /* the key last set, so one session pays setkey once */
	bool has_key;
};

int crypto_init(void)
{
	static bool done;

	if (done)
		return 0;
	if (!gcry_check_version("1.9.0"))
		return -EIO;
	/* Keys live in ordinary memory and are wiped when dropped; secure memory
	 * would need mlock limits.  Leave an initialisation made elsewhere alone. */
	if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
		gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
		gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	}
	done = true;
	return 0;
}

/* --- X25519 ---------------------------------------------------------------- */

void x25519_clamp(uint8_t key[X25519_KEY_LEN])
{
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
}

int x25519(uint8_t out[X25519_KEY_LEN], const uint8_t scalar[X25519_KEY_LEN],
	   const uint8_t point[X25519_KEY_LEN])
{
	uint8_t k[X25519_KEY_LEN];
	gpg_error_t err;

	/* RFC 7748 clamps the scalar inside the function. */
	memcpy(k, scalar, sizeof(k));
	x25519_clamp(k);
	/* libgcrypt reads both little endian, as RFC 7748 does, and masks the
	 * point's top bit: the section 5.2 vectors check both. */
	err = gcry_ecc_mul_point(GCRY_ECC_CURVE25519, out, k, point);
	memzero_explicit(k, sizeof(k));
	if (err) {
		memzero_explicit(out, X25519_KEY_LEN);
		return -EINVAL;
	}
	/* A low-order point gives zero: a peer must not choose our secret. */
	return crypto_memeq(out, (const uint8_t[X25519_KEY_LEN]){0}, X25519_KEY_LEN) ? -EINVAL : 0;
}

int x25519_public(uint8_t pub[X25519_KEY_LEN], const uint8_t priv[X25519_KEY_LEN])
{
	static const uint8_t basepoint[X25519_KEY_LEN] = {9};

	return x25519(pub, priv, basepoint);
}

void x25519_generate(uint8_t priv[X25519_KEY_LEN])
{
	random_bytes(priv, X25519_KEY_LEN);
	x25519_clamp(priv);
}

/* --- ChaCha20-Poly1305 ------------------------------------------------------ */

int aead_ctx_new(struct aead_ctx **out)
{
	struct aead_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	if (gcry_cipher_open(&ctx->hd, GCRY_CIPHER_CHACHA20, GCRY_CIPHER_MODE_POLY1305, 0)) {
		free(ctx);
		return -EIO;
	}
	*out = ctx;
	return 0;
}

void aead_ctx_free(struct aead_ctx *ctx)
{
	if (!ctx)
		return;
	gcry_cipher_close(ctx->hd);
	memzero_explicit(ctx, sizeof(*ctx));
	free(ctx);
}

static int aead_begin(struct aead_ctx *ctx, const uint8_t key[AEAD_KEY_LEN],
		      const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *ad, size_t ad_len)
{
	/* Skipping setkey saves 10-30 ns of ~1250 per 1424-byte packet
	 * (bench/crypto.c); setiv, which derives the Poly1305 key, costs ~200. */
	if (!ctx->has_key || !crypto_memeq(ctx->key, key, AEAD_KEY_LEN)) {
		ctx->has_key = false;
		if (gcry_cipher_setkey(ctx->hd, key, AEAD_KEY_LEN))
			return -EIO;
		memcpy(ctx->key, key, AEAD_KEY_LEN);
		ctx->has_key = true;
	}
	/* setiv also resets Poly1305's state. */
	if (gcry_cipher_setiv(ctx->hd, nonce, AEAD_NONCE_LEN))
		return -EIO;
	if (ad_len && gcry_cipher_authenticate(ctx->hd, ad, ad_len))
		return -EIO;
	return 0;
}

int aead_seal(struct aead_ctx *ctx, const uint8_t key[AEAD_KEY_LEN],
	      const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *ad, size_t ad_len,
	      const uint8_t *in, size_t len, uint8_t *out)
{
	int ret = aead_begin(ctx, key, nonce, ad, ad_len);

	if (ret < 0)
		return ret;
	if (len &&
	    gcry_cipher_encrypt(ctx->hd, out, len, in == out ? NULL : in, in == out ? 0 : len))
		return -EIO;
	if (gcry_cipher_gettag(ctx->hd, out + len, AEAD_TAG_LEN))
		return -EIO;
	return 0;
}

int aead_open(struct aead_ctx *ctx, const uint8_t key[AEAD_KEY_LEN],
	      const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *ad, size_t ad_len,
	      const uint8_t *in, size_t len, uint8_t *out)
{
	size_t plen;
	int ret;

	if (len < AEAD_TAG_LEN)
		return -EBADMSG;
	plen = len - AEAD_TAG_LEN;
	if ((ret = aead_begin(ctx, key, nonce, ad, ad_len)) < 0)
		return ret;
	if (plen &&
	    gcry_cipher_decrypt(ctx->hd, out, plen, in == out ? NULL : in, in == out ? 0 : plen))
		return -EIO;
	if (gcry_cipher_checktag(ctx->hd, in + plen, AEAD_TAG_LEN)) {
		if (plen)
			memzero_explicit(out, plen);
		return -EBADMSG;
	}
	return 0;
}

void aead_nonce_from_counter(uint8_t nonce[AEAD_NONCE_LEN], uint64_t counter)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

/* --- XChaCha20-Poly1305 ----------------------------------------------------- */

/* clang-format off */
#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QUARTER_ROUND(a, b, c, d)                                                                  \
	do {                                                                                       \
		a += b; d ^= a; d = ROTL32(d, 16);                                                 \
		c += d; b ^= c; b = ROTL32(b, 12);                                                 \
		a += b; d ^= a; d = ROTL32(d, 8);                                                  \
		c += d; b ^= c; b = ROTL32(b, 7);                                                  \
	} while (0)
/* clang-format on */

static uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* draft-irtf-cfrg-xchacha section 2.2: ChaCha20's rounds without the final
 * addition; the output is words 0-3 and 12-15. */
void hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce[16])
{
	uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};

	for (int i = 0; i < 8; i++)
		x[4 + i] = load_le32(key + 4 * i);
	for (int i = 0; i < 4; i++)
		x[12 + i] = load_le32(nonce + 4 * i);
	for (int i = 0; i < 10; i++) {
		QUARTER_ROUND(x[0], x[4], x[8], x[12]);
		QUARTER_ROUND(x[1], x[5], x[9], x[13]);
		QUARTER_ROUND(x[2], x[6], x[10], x[14]);
		QUARTER_ROUND(x[3], x[7], x[11], x[15]);
		QUARTER_ROUND(x[0], x[5], x[10], x[15]);
		QUARTER_ROUND(x[1], x[6], x[11], x[12]);
		QUARTER_ROUND(x[2], x[7], x[8], x[13]);
		QUARTER_ROUND(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 4; i++) {
		store_le32(out + 4 * i, x[i]);
		store_le32(out + 16 + 4 * i, x[12 + i]);
	}
	memzero_explicit(x, sizeof(x));
}

static int xaead(bool seal, const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[XAEAD_NONCE_LEN],
		 const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t subkey[32], n12[AEAD_NONCE_LEN] = {0};
	struct aead_ctx *ctx;
	int ret;

	if ((ret = aead_ctx_new(&ctx)) < 0)
		return ret;
	hchacha20(subkey, key, nonce);
	memcpy(n12 + 4, nonce + 16, 8);
	ret = seal ? aead_seal(ctx, subkey, n12, ad, ad_len, in, len, out)
		   : aead_open(ctx, subkey, n12, ad, ad_len, in, len, out);
	memzero_explicit(subkey, sizeof(subkey));
	aead_ctx_free(ctx);
	return ret;
}

int xaead_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[XAEAD_NONCE_LEN],
	       const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	return xaead(true, key, nonce, ad, ad_len, in, len, out);
}

int xaead_open(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[XAEAD_NONCE_LEN],
	       const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	return xaead(false, key, nonce, ad, ad_len, in, len, out);
}

/* --- BLAKE2s and HMAC --------------------------------------------------------- */

/* The digest length is a BLAKE2s parameter, not a truncation, so only the
 * lengths libgcrypt has as algorithms work: 16 (WireGuard's MACs), 20, 28, 32. */
static int blake2s_algo(size_t out_len)
{
	switch (out_len) {
	case 16:
		return GCRY_MD_BLAKE2S_128;
	case 20:
		return GCRY_MD_BLAKE2S_160;
	case 28:
		return GCRY_MD_BLAKE2S_224;
	case 32:
		return GCRY_MD_BLAKE2S_256;
	}
	return 0;
}

/* A bad length is a programming error and a hash has no error path: abort
 * rather than hand back an unwritten digest. */
static void blake2s_parts(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len,
			  const uint8_t *const parts[], const size_t lens[], unsigned n)
{
	int algo = blake2s_algo(out_len);
	const uint8_t *digest;
	gcry_md_hd_t hd;

	if (!algo || key_len > BLAKE2S_MAX_KEY_LEN || gcry_md_open(&hd, algo, 0))
		abort();
	if (key_len && gcry_md_setkey(hd, key, key_len))
		abort();
	for (unsigned i = 0; i < n; i++)
		if (lens[i])
			gcry_md_write(hd, parts[i], lens[i]);
	digest = gcry_md_read(hd, algo);
	if (!digest)
		abort();
	memcpy(out, digest, out_len);
	gcry_md_close(hd); /* wipes the key and the state */
}

void blake2s(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len, const uint8_t *in,
	     size_t in_len)
{
	blake2s_parts(out, out_len, key, key_len, (const uint8_t *const[]){in},
		      (const size_t[]){in_len}, 1);
}

void blake2s2(uint8_t out[BLAKE2S_HASH_LEN], const uint8_t *a, size_t a_len, const uint8_t *b,
	      size_t b_len)
{
	blake2s_parts(out, BLAKE2S_HASH_LEN, NULL, 0, (const uint8_t *const[]){a, b},
		      (const size_t[]){a_len, b_len}, 2);
}

void hmac_blake2s(uint8_t out[BLAKE2S_HASH_LEN], const uint8_t *key, size_t key_len,
		  const uint8_t *in, size_t in_len)
{
	uint8_t k[BLAKE2S_BLOCK_LEN] = {0}, pad[BLAKE2S_BLOCK_LEN], inner[BLAKE2S_HASH_LEN];

	if (key_len > BLAKE2S_BLOCK_LEN)
		blake2s(k, BLAKE2S_HASH_LEN, NULL, 0, key, key_len);
	else if (key_len) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(k, key, key_len);
	for (int i = 0; i < BLAKE2S_BLOCK_LEN; i++)
		pad[i] = k[i] ^ 0x36;
	blake2s2(inner, pad, sizeof(pad), in, in_len);
	for (int i = 0; i < BLAKE2S_BLOCK_LEN; i++)
		pad[i] = k[i] ^ 0x5c;
	blake2s2(out, pad, sizeof(pad), inner, sizeof(inner));
	memzero_explicit(k, sizeof(k));
	memzero_explicit(pad, sizeof(pad));
	memzero_explicit(inner, sizeof(inner));
}

/* --- randomness and comparisons ------------------------------------------------ */

void random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* no randomness, no keys */
		}
		p += n;
		len -= (size_t)n;
	}
}

uint32_t random_u32(void)
{
	uint32_t v;

	random_bytes(&v, sizeof(v));
	return v;
}

bool crypto_memeq(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

void memzero_explicit(void *buf, size_t len)
{
	explicit_bzero(buf, len);
}
