/* SPDX-License-Identifier: MIT */
/*
 * The primitives of WireGuard's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, as a
 * thin layer over libgcrypt (the fastest per-packet AEAD measured here).
 * Nothing here is written by hand except HChaCha20, which libgcrypt lacks.
 *
 * Thread safety: every function is safe to call from any thread, except that
 * one struct aead_ctx must be used by one thread at a time (one per thread).
 */
#ifndef KNIT_CRYPTO_CRYPTO_H
#define KNIT_CRYPTO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X25519_KEY_LEN	    32
#define AEAD_KEY_LEN	    32
#define AEAD_NONCE_LEN	    12
#define AEAD_TAG_LEN	    16
#define XAEAD_NONCE_LEN	    24
#define BLAKE2S_HASH_LEN    32
#define BLAKE2S_BLOCK_LEN   64
#define BLAKE2S_MAX_KEY_LEN 32

/* Once, before threads start.  Returns 0 or -EIO if libgcrypt is unusable. */
int crypto_init(void);

/* X25519 (RFC 7748).  Returns -EINVAL when the shared secret is all zero. */
int x25519(uint8_t out[X25519_KEY_LEN], const uint8_t scalar[X25519_KEY_LEN],
	   const uint8_t point[X25519_KEY_LEN]);
int x25519_public(uint8_t pub[X25519_KEY_LEN], const uint8_t priv[X25519_KEY_LEN]);
void x25519_clamp(uint8_t key[X25519_KEY_LEN]);
/* A fresh clamped private key. */
void x25519_generate(uint8_t priv[X25519_KEY_LEN]);

/* ChaCha20-Poly1305 (RFC 8439); a per-thread context holding a cipher handle. */
struct aead_ctx;
int aead_ctx_new(struct aead_ctx **out);
void aead_ctx_free(struct aead_ctx *ctx);

/* out receives len + AEAD_TAG_LEN bytes; out == in is allowed. */
int aead_seal(struct aead_ctx *ctx, const uint8_t key[AEAD_KEY_LEN],
	      const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *ad, size_t ad_len,
	      const uint8_t *in, size_t len, uint8_t *out);
/* in holds len bytes including the tag; out receives len - AEAD_TAG_LEN bytes.
 * Returns 0, or -EBADMSG when authentication fails (out is then zeroed). */
int aead_open(struct aead_ctx *ctx, const uint8_t key[AEAD_KEY_LEN],
	      const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *ad, size_t ad_len,
	      const uint8_t *in, size_t len, uint8_t *out);
/* WireGuard's nonce: 4 zero bytes then the 64-bit counter, little endian. */
void aead_nonce_from_counter(uint8_t nonce[AEAD_NONCE_LEN], uint64_t counter);

/* XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), for cookie replies. */
int xaead_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[XAEAD_NONCE_LEN],
	       const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len, uint8_t *out);
int xaead_open(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[XAEAD_NONCE_LEN],
	       const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len, uint8_t *out);
void hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce[16]);

/* BLAKE2s (RFC 7693), optional key of 0..32 bytes.  out_len must be 16, 20, 28
 * or 32 (the digest length is hashed in; libgcrypt has only these); others abort. */
void blake2s(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len, const uint8_t *in,
	     size_t in_len);
/* BLAKE2s over the concatenation of two inputs (Noise's HASH(a || b)). */
void blake2s2(uint8_t out[BLAKE2S_HASH_LEN], const uint8_t *a, size_t a_len, const uint8_t *b,
	      size_t b_len);
/* HMAC-BLAKE2s (RFC 2104 with BLAKE2s-256), as Noise's HKDF uses. */
void hmac_blake2s(uint8_t out[BLAKE2S_HASH_LEN], const uint8_t *key, size_t key_len,
		  const uint8_t *in, size_t in_len);

void random_bytes(void *buf, size_t len);
uint32_t random_u32(void);
/* Constant-time equality. */
bool crypto_memeq(const void *a, const void *b, size_t len);
/* Zeroing that the compiler may not remove. */
void memzero_explicit(void *buf, size_t len);

#endif
