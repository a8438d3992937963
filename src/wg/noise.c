// SPDX-License-Identifier: MIT
/*
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, as WireGuard uses it (whitepaper
 * section 5.4; the Linux driver's noise.c is the reference).  Event loop only.
 */
#include "wg/noise.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "lib/clock.h"

static const char handshake_name[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char identifier_name[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
static uint8_t init_chaining_key[NOISE_HASH_LEN];
static uint8_t init_hash[NOISE_HASH_LEN];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Handshakes need few AEAD operations; a context per thread suffices. */
static __thread struct aead_ctx *handshake_aead;

static void noise_init(void)
{
	blake2s(init_chaining_key, NOISE_HASH_LEN, NULL, 0, (const uint8_t *)handshake_name,
		strlen(handshake_name));
	blake2s2(init_hash, init_chaining_key, NOISE_HASH_LEN, (const uint8_t *)identifier_name,
		 strlen(identifier_name));
}

static struct aead_ctx *aead(void)
{
	if (!handshake_aead && aead_ctx_new(&handshake_aead) < 0)
		return NULL;
	return handshake_aead;
}

/* HKDF with HMAC-BLAKE2s: up to three 32-byte outputs from ck and data. */
static void kdf(uint8_t *first, uint8_t *second, uint8_t *third, const uint8_t *data,
		size_t data_len, const uint8_t chaining_key[NOISE_HASH_LEN])
{
	uint8_t secret[NOISE_HASH_LEN], output[NOISE_HASH_LEN + 1];

	hmac_blake2s(secret, chaining_key, NOISE_HASH_LEN, data, data_len);
	output[0] = 1;
	hmac_blake2s(output, secret, NOISE_HASH_LEN, output, 1);
	memcpy(first, output, NOISE_HASH_LEN);
	if (second) {
		output[NOISE_HASH_LEN] = 2;
		hmac_blake2s(output, secret, NOISE_HASH_LEN, output, NOISE_HASH_LEN + 1);
		memcpy(second, output, NOISE_HASH_LEN);
	}
	if (third) {
		output[NOISE_HASH_LEN] = 3;
		hmac_blake2s(output, secret, NOISE_HASH_LEN, output, NOISE_HASH_LEN + 1);
		memcpy(third, output, NOISE_HASH_LEN);
	}
	memzero_explicit(secret, sizeof(secret));
	memzero_explicit(output, sizeof(output));
}

static void mix_hash(uint8_t hash[NOISE_HASH_LEN], const uint8_t *src, size_t len)
{
	blake2s2(hash, hash, NOISE_HASH_LEN, src, len);
}

/* ck, key = KDF2(ck, DH(private, public)) (key may be NULL: KDF1). */
static bool mix_dh(uint8_t chaining_key[NOISE_HASH_LEN], uint8_t *key,
		   const uint8_t private[NOISE_PUBLIC_KEY_LEN],
		   const uint8_t public[NOISE_PUBLIC_KEY_LEN])
{
	uint8_t dh[NOISE_PUBLIC_KEY_LEN];
	bool ok = x25519(dh, private, public) == 0;

	if (ok)
		kdf(chaining_key, key, NULL, dh, sizeof(dh), chaining_key);
	memzero_explicit(dh, sizeof(dh));
	return ok;
}

static bool mix_precomputed_dh(uint8_t chaining_key[NOISE_HASH_LEN], uint8_t *key,
			       const uint8_t precomputed[NOISE_PUBLIC_KEY_LEN])
{
	static const uint8_t zero[NOISE_PUBLIC_KEY_LEN];

	if (crypto_memeq(precomputed, zero, NOISE_PUBLIC_KEY_LEN))
		return false;
	kdf(chaining_key, key, NULL, precomputed, NOISE_PUBLIC_KEY_LEN, chaining_key);
	return true;
}

static void mix_psk(uint8_t chaining_key[NOISE_HASH_LEN], uint8_t hash[NOISE_HASH_LEN],
		    uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		    const uint8_t psk[NOISE_SYMMETRIC_KEY_LEN])
{
	uint8_t temp_hash[NOISE_HASH_LEN];

	kdf(chaining_key, temp_hash, key, psk, NOISE_SYMMETRIC_KEY_LEN, chaining_key);
	mix_hash(hash, temp_hash, NOISE_HASH_LEN);
	memzero_explicit(temp_hash, sizeof(temp_hash));
}

static void handshake_start(uint8_t chaining_key[NOISE_HASH_LEN], uint8_t hash[NOISE_HASH_LEN],
			    const uint8_t remote_static[NOISE_PUBLIC_KEY_LEN])
{
	pthread_once(&init_once, noise_init);
	memcpy(chaining_key, init_chaining_key, NOISE_HASH_LEN);
	memcpy(hash, init_hash, NOISE_HASH_LEN);
	mix_hash(hash, remote_static, NOISE_PUBLIC_KEY_LEN);
}

static bool message_encrypt(uint8_t *dst, const uint8_t *src, size_t len,
			    const uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
			    uint8_t hash[NOISE_HASH_LEN])
{
	static const uint8_t nonce[AEAD_NONCE_LEN];
	struct aead_ctx *ctx = aead();

	if (!ctx || aead_seal(ctx, key, nonce, hash, NOISE_HASH_LEN, src, len, dst) < 0)
		return false;
	mix_hash(hash, dst, len + NOISE_AUTHTAG_LEN);
	return true;
}

static bool message_decrypt(uint8_t *dst, const uint8_t *src, size_t len,
			    const uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
			    uint8_t hash[NOISE_HASH_LEN])
{
	static const uint8_t nonce[AEAD_NONCE_LEN];
	struct aead_ctx *ctx = aead();

	if (!ctx ||
	    aead_open(ctx, key, nonce, hash, NOISE_HASH_LEN, src, len + NOISE_AUTHTAG_LEN, dst) < 0)
		return false;
	mix_hash(hash, src, len + NOISE_AUTHTAG_LEN);
	return true;
}

static void message_ephemeral(uint8_t dst[NOISE_PUBLIC_KEY_LEN],
			      const uint8_t src[NOISE_PUBLIC_KEY_LEN],
			      uint8_t chaining_key[NOISE_HASH_LEN], uint8_t hash[NOISE_HASH_LEN])
{
	if (dst != src)
		memcpy(dst, src, NOISE_PUBLIC_KEY_LEN);
	mix_hash(hash, src, NOISE_PUBLIC_KEY_LEN);
	kdf(chaining_key, NULL, NULL, src, NOISE_PUBLIC_KEY_LEN, chaining_key);
}

void noise_tai64n_now(uint8_t out[NOISE_TIMESTAMP_LEN])
{
	uint64_t now = clock_wall_ns();
	uint64_t sec = now / NSEC_PER_SEC, nsec = now % NSEC_PER_SEC;
	uint64_t be_sec;
	uint32_t be_nsec;

	/* Round the nanoseconds down to a power of two below the initiation
	 * rate limit, so timestamps do not leak a precise clock (as Linux). */
	nsec &= ~((uint64_t)(1u << 24) - 1);
	be_sec = htobe64(0x400000000000000aULL + sec);
	be_nsec = htobe32((uint32_t)nsec);
	memcpy(out, &be_sec, 8);
	memcpy(out + 8, &be_nsec, 4);
}

void noise_handshake_precompute(struct noise_handshake *hs, const struct noise_static_identity *id)
{
	if (!id->has_identity ||
	    x25519(hs->precomputed_static_static, id->static_private, hs->remote_static) < 0)
		memzero_explicit(hs->precomputed_static_static, NOISE_PUBLIC_KEY_LEN);
}

void noise_handshake_init(struct noise_handshake *hs, const struct noise_static_identity *id,
			  const uint8_t remote_static[NOISE_PUBLIC_KEY_LEN],
			  const uint8_t psk[NOISE_SYMMETRIC_KEY_LEN])
{
	memset(hs, 0, sizeof(*hs));
	memcpy(hs->remote_static, remote_static, NOISE_PUBLIC_KEY_LEN);
	if (psk)
		memcpy(hs->preshared_key, psk, NOISE_SYMMETRIC_KEY_LEN);
	noise_handshake_precompute(hs, id);
}

void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t psk[NOISE_SYMMETRIC_KEY_LEN])
{
	memcpy(hs->preshared_key, psk, NOISE_SYMMETRIC_KEY_LEN);
}

void noise_handshake_clear(struct noise_handshake *hs)
{
	memzero_explicit(hs->ephemeral_private, NOISE_PUBLIC_KEY_LEN);
	memzero_explicit(hs->remote_ephemeral, NOISE_PUBLIC_KEY_LEN);
	memzero_explicit(hs->hash, NOISE_HASH_LEN);
	memzero_explicit(hs->chaining_key, NOISE_HASH_LEN);
	hs->remote_index = 0;
	hs->state = HANDSHAKE_ZEROED;
}

void noise_handshake_destroy(struct noise_handshake *hs)
{
	memzero_explicit(hs, sizeof(*hs));
}

int noise_handshake_create_initiation(struct message_handshake_initiation *dst,
				      struct noise_handshake *hs,
				      const struct noise_static_identity *id, uint32_t local_index)
{
	uint8_t timestamp[NOISE_TIMESTAMP_LEN], key[NOISE_SYMMETRIC_KEY_LEN];
	int ret = -EINVAL;

	if (!id->has_identity)
		return -EINVAL;
	memset(dst, 0, sizeof(*dst));
	dst->header.type = htole32(MESSAGE_HANDSHAKE_INITIATION);
	handshake_start(hs->chaining_key, hs->hash, hs->remote_static);
	/* e */
	x25519_generate(hs->ephemeral_private);
	if (x25519_public(dst->unencrypted_ephemeral, hs->ephemeral_private) < 0)
		goto out;
	message_ephemeral(dst->unencrypted_ephemeral, dst->unencrypted_ephemeral, hs->chaining_key,
			  hs->hash);
	/* es */
	if (!mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static))
		goto out;
	/* s */
	if (!message_encrypt(dst->encrypted_static, id->static_public, NOISE_PUBLIC_KEY_LEN, key,
			     hs->hash))
		goto out;
	/* ss */
	if (!mix_precomputed_dh(hs->chaining_key, key, hs->precomputed_static_static))
		goto out;
	/* {t} */
	noise_tai64n_now(timestamp);
	if (!message_encrypt(dst->encrypted_timestamp, timestamp, NOISE_TIMESTAMP_LEN, key,
			     hs->hash))
		goto out;
	dst->sender_index = htole32(local_index);
	hs->local_index = local_index;
	hs->state = HANDSHAKE_CREATED_INITIATION;
	ret = 0;
out:
	memzero_explicit(key, sizeof(key));
	if (ret < 0)
		noise_handshake_clear(hs);
	return ret;
}

int noise_handshake_consume_initiation(const struct message_handshake_initiation *src,
				       const struct noise_static_identity *id,
				       noise_lookup_fn lookup, void *lookup_ctx,
				       struct noise_handshake **out)
{
	uint8_t s[NOISE_PUBLIC_KEY_LEN], e[NOISE_PUBLIC_KEY_LEN], t[NOISE_TIMESTAMP_LEN];
	uint8_t hash[NOISE_HASH_LEN], chaining_key[NOISE_HASH_LEN], key[NOISE_SYMMETRIC_KEY_LEN];
	struct noise_handshake *hs = NULL;
	uint64_t now;
	int ret = -EBADMSG;

	if (!id->has_identity)
		return -EINVAL;
	handshake_start(chaining_key, hash, id->static_public);
	/* e */
	message_ephemeral(e, src->unencrypted_ephemeral, chaining_key, hash);
	/* es */
	if (!mix_dh(chaining_key, key, id->static_private, e))
		goto out;
	/* s */
	if (!message_decrypt(s, src->encrypted_static, NOISE_PUBLIC_KEY_LEN, key, hash))
		goto out;
	hs = lookup(lookup_ctx, s);
	if (!hs) {
		ret = -ENOENT;
		goto out;
	}
	/* ss */
	if (!mix_precomputed_dh(chaining_key, key, hs->precomputed_static_static))
		goto out;
	/* {t} */
	if (!message_decrypt(t, src->encrypted_timestamp, NOISE_TIMESTAMP_LEN, key, hash))
		goto out;
	now = clock_mono_ns();
	if (memcmp(t, hs->latest_timestamp, NOISE_TIMESTAMP_LEN) <= 0) {
		ret = -EALREADY;
		goto out;
	}
	if (hs->last_initiation_consumption_ns &&
	    now - hs->last_initiation_consumption_ns < NSEC_PER_SEC / INITIATIONS_PER_SECOND) {
		ret = -EAGAIN;
		goto out;
	}
	/* Everything verified: only now does the peer's state change. */
	memcpy(hs->remote_ephemeral, e, NOISE_PUBLIC_KEY_LEN);
	memcpy(hs->latest_timestamp, t, NOISE_TIMESTAMP_LEN);
	memcpy(hs->hash, hash, NOISE_HASH_LEN);
	memcpy(hs->chaining_key, chaining_key, NOISE_HASH_LEN);
	hs->remote_index = le32toh(src->sender_index);
	hs->last_initiation_consumption_ns = now;
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	*out = hs;
	ret = 0;
out:
	memzero_explicit(key, sizeof(key));
	memzero_explicit(hash, sizeof(hash));
	memzero_explicit(chaining_key, sizeof(chaining_key));
	memzero_explicit(e, sizeof(e));
	return ret;
}

int noise_handshake_create_response(struct message_handshake_response *dst,
				    struct noise_handshake *hs, uint32_t local_index)
{
	uint8_t key[NOISE_SYMMETRIC_KEY_LEN];
	int ret = -EINVAL;

	if (hs->state != HANDSHAKE_CONSUMED_INITIATION)
		return -EINVAL;
	memset(dst, 0, sizeof(*dst));
	dst->header.type = htole32(MESSAGE_HANDSHAKE_RESPONSE);
	dst->receiver_index = htole32(hs->remote_index);
	/* e */
	x25519_generate(hs->ephemeral_private);
	if (x25519_public(dst->unencrypted_ephemeral, hs->ephemeral_private) < 0)
		goto out;
	message_ephemeral(dst->unencrypted_ephemeral, dst->unencrypted_ephemeral, hs->chaining_key,
			  hs->hash);
	/* ee */
	if (!mix_dh(hs->chaining_key, NULL, hs->ephemeral_private, hs->remote_ephemeral))
		goto out;
	/* se */
	if (!mix_dh(hs->chaining_key, NULL, hs->ephemeral_private, hs->remote_static))
		goto out;
	/* psk */
	mix_psk(hs->chaining_key, hs->hash, key, hs->preshared_key);
	/* {} */
	if (!message_encrypt(dst->encrypted_nothing, NULL, 0, key, hs->hash))
		goto out;
	dst->sender_index = htole32(local_index);
	hs->local_index = local_index;
	hs->state = HANDSHAKE_CREATED_RESPONSE;
	ret = 0;
out:
	memzero_explicit(key, sizeof(key));
	if (ret < 0)
		noise_handshake_clear(hs);
	return ret;
}

int noise_handshake_consume_response(const struct message_handshake_response *src,
				     struct noise_handshake *hs,
				     const struct noise_static_identity *id)
{
	uint8_t e[NOISE_PUBLIC_KEY_LEN], key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t hash[NOISE_HASH_LEN], chaining_key[NOISE_HASH_LEN];
	int ret = -EBADMSG;

	if (!id->has_identity || hs->state != HANDSHAKE_CREATED_INITIATION)
		return -EINVAL;
	memcpy(hash, hs->hash, NOISE_HASH_LEN);
	memcpy(chaining_key, hs->chaining_key, NOISE_HASH_LEN);
	/* e */
	message_ephemeral(e, src->unencrypted_ephemeral, chaining_key, hash);
	/* ee */
	if (!mix_dh(chaining_key, NULL, hs->ephemeral_private, e))
		goto out;
	/* se */
	if (!mix_dh(chaining_key, NULL, id->static_private, e))
		goto out;
	/* psk */
	mix_psk(chaining_key, hash, key, hs->preshared_key);
	/* {} */
	if (!message_decrypt(NULL, src->encrypted_nothing, 0, key, hash))
		goto out;
	memcpy(hs->remote_ephemeral, e, NOISE_PUBLIC_KEY_LEN);
	memcpy(hs->hash, hash, NOISE_HASH_LEN);
	memcpy(hs->chaining_key, chaining_key, NOISE_HASH_LEN);
	hs->remote_index = le32toh(src->sender_index);
	hs->state = HANDSHAKE_CONSUMED_RESPONSE;
	ret = 0;
out:
	memzero_explicit(key, sizeof(key));
	memzero_explicit(hash, sizeof(hash));
	memzero_explicit(chaining_key, sizeof(chaining_key));
	memzero_explicit(e, sizeof(e));
	return ret;
}

int noise_handshake_begin_session(struct noise_handshake *hs, struct noise_session_keys *keys)
{
	if (hs->state == HANDSHAKE_CREATED_RESPONSE)
		keys->initiator = false;
	else if (hs->state == HANDSHAKE_CONSUMED_RESPONSE)
		keys->initiator = true;
	else
		return -EINVAL;
	if (keys->initiator)
		kdf(keys->sending, keys->receiving, NULL, NULL, 0, hs->chaining_key);
	else
		kdf(keys->receiving, keys->sending, NULL, NULL, 0, hs->chaining_key);
	keys->local_index = hs->local_index;
	keys->remote_index = hs->remote_index;
	noise_handshake_clear(hs);
	return 0;
}
