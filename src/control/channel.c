// SPDX-License-Identifier: MIT
#include "control/channel.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"

static int frame(struct buf *out, const void *body, size_t len)
{
	uint32_t be = htobe32((uint32_t)len);
	int ret = buf_append(out, &be, sizeof(be));

	return ret ? ret : buf_append(out, body, len);
}

static int set_identity(struct channel *ch, const uint8_t priv[32])
{
	memset(ch, 0, sizeof(*ch));
	if (aead_ctx_new(&ch->aead) < 0)
		return -ENOMEM;
	memcpy(ch->id.static_private, priv, 32);
	if (x25519_public(ch->id.static_public, priv) < 0) {
		channel_destroy(ch);
		return -EINVAL;
	}
	ch->id.has_identity = true;
	return 0;
}

int channel_init_initiator(struct channel *ch, const uint8_t priv[32],
			   const uint8_t responder_pub[32], struct buf *out)
{
	struct message_handshake_initiation msg;
	int ret = set_identity(ch, priv);

	if (ret)
		return ret;
	ch->initiator = true;
	noise_handshake_init(&ch->hs, &ch->id, responder_pub, NULL);
	ret = noise_handshake_create_initiation(&msg, &ch->hs, &ch->id, random_u32());
	if (ret == 0) {
		memset(&msg.macs, 0, sizeof(msg.macs)); /* TCP: no cookie mechanism */
		ret = frame(out, &msg, sizeof(msg));
	}
	memzero_explicit(&msg, sizeof(msg));
	if (ret)
		channel_destroy(ch);
	return ret;
}

int channel_init_responder(struct channel *ch, const uint8_t priv[32])
{
	return set_identity(ch, priv);
}

void channel_destroy(struct channel *ch)
{
	aead_ctx_free(ch->aead);
	noise_handshake_destroy(&ch->hs);
	memzero_explicit(ch, sizeof(*ch));
	ch->state = CHANNEL_FAILED;
}

long channel_next_record(const uint8_t *buf, size_t len, size_t max, const uint8_t **body,
			 size_t *body_len)
{
	uint32_t be;
	size_t n;

	if (len < CHANNEL_RECORD_HEADER)
		return 0;
	memcpy(&be, buf, sizeof(be));
	n = be32toh(be);
	if (n > max)
		return -EMSGSIZE;
	if (len - CHANNEL_RECORD_HEADER < n)
		return 0;
	*body = buf + CHANNEL_RECORD_HEADER;
	*body_len = n;
	return (long)(n + CHANNEL_RECORD_HEADER);
}

/* Any static key may start a session: control decides, after the handshake,
 * what the key may do.  The channel's own handshake state serves it. */
static struct noise_handshake *accept_any(void *ctx, const uint8_t remote_static[32])
{
	struct channel *ch = ctx;

	noise_handshake_init(&ch->hs, &ch->id, remote_static, NULL);
	return &ch->hs;
}

static void keys_from_session(struct channel *ch, struct noise_session_keys *k)
{
	memcpy(ch->send_key, k->sending, 32);
	memcpy(ch->recv_key, k->receiving, 32);
	memcpy(ch->remote_static, ch->hs.remote_static, 32);
	memzero_explicit(k, sizeof(*k));
	noise_handshake_destroy(&ch->hs);
	ch->state = CHANNEL_OPEN;
}

static int respond(struct channel *ch, const uint8_t *body, size_t len, struct buf *out)
{
	struct message_handshake_response resp;
	struct noise_session_keys keys;
	struct noise_handshake *hs;
	int ret;

	if (len != sizeof(struct message_handshake_initiation) ||
	    le32toh(((const struct message_header *)body)->type) != MESSAGE_HANDSHAKE_INITIATION)
		return -EBADMSG;
	ret = noise_handshake_consume_initiation((const void *)body, &ch->id, accept_any, ch, &hs);
	if (ret)
		return -EBADMSG;
	ret = noise_handshake_create_response(&resp, hs, random_u32());
	if (ret == 0)
		ret = noise_handshake_begin_session(hs, &keys);
	if (ret == 0) {
		memset(&resp.macs, 0, sizeof(resp.macs));
		ret = frame(out, &resp, sizeof(resp));
		keys_from_session(ch, &keys);
	}
	memzero_explicit(&resp, sizeof(resp));
	return ret ? -EBADMSG : 0;
}

static int finish(struct channel *ch, const uint8_t *body, size_t len)
{
	struct message_handshake_response resp;
	struct noise_session_keys keys;

	if (len != sizeof(resp))
		return -EBADMSG;
	memcpy(&resp, body, sizeof(resp));
	if (le32toh(resp.header.type) != MESSAGE_HANDSHAKE_RESPONSE ||
	    le32toh(resp.receiver_index) != ch->hs.local_index ||
	    noise_handshake_consume_response(&resp, &ch->hs, &ch->id) < 0 ||
	    noise_handshake_begin_session(&ch->hs, &keys) < 0)
		return -EBADMSG;
	keys_from_session(ch, &keys);
	return 0;
}

int channel_handshake(struct channel *ch, const uint8_t *body, size_t len, struct buf *out)
{
	int ret;

	if (ch->state != CHANNEL_HANDSHAKE)
		return -EBADMSG;
	ret = ch->initiator ? finish(ch, body, len) : respond(ch, body, len, out);
	if (ret)
		ch->state = CHANNEL_FAILED;
	return ret;
}

int channel_seal(struct channel *ch, const void *plain, size_t len, struct buf *out)
{
	static const uint8_t zero_tag[AEAD_TAG_LEN];
	uint8_t nonce[AEAD_NONCE_LEN];
	uint32_t be = htobe32((uint32_t)(len + AEAD_TAG_LEN));
	size_t at;
	int ret;

	if (ch->state != CHANNEL_OPEN)
		return -ENOTCONN;
	if (len > CHANNEL_MAX_PLAINTEXT)
		return -EMSGSIZE;
	ret = buf_append(out, &be, sizeof(be));
	at = out->len;
	if (!ret)
		ret = buf_append(out, plain, len);
	if (!ret)
		ret = buf_append(out, zero_tag, AEAD_TAG_LEN); /* room for the tag */
	if (ret)
		return ret;
	aead_nonce_from_counter(nonce, ch->send_n++);
	return aead_seal(ch->aead, ch->send_key, nonce, NULL, 0, out->data + at, len,
			 out->data + at);
}

int channel_open(struct channel *ch, uint8_t *body, size_t len, size_t *plain_len)
{
	uint8_t nonce[AEAD_NONCE_LEN];

	if (ch->state != CHANNEL_OPEN || len < AEAD_TAG_LEN)
		goto fail;
	aead_nonce_from_counter(nonce, ch->recv_n);
	if (aead_open(ch->aead, ch->recv_key, nonce, NULL, 0, body, len, body) < 0)
		goto fail;
	ch->recv_n++;
	*plain_len = len - AEAD_TAG_LEN;
	return 0;
fail:
	ch->state = CHANNEL_FAILED;
	return -EBADMSG;
}
