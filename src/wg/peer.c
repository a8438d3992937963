// SPDX-License-Identifier: MIT
/* Peer allocation, endpoint and staged packets (see peer.h). */
#include "wg/peer.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "lib/encoding.h"

struct wg_peer *peer_new(struct wg_device *dev, const uint8_t public_key[NOISE_PUBLIC_KEY_LEN])
{
	struct wg_peer *peer = calloc(1, sizeof(*peer));

	if (!peer)
		return NULL;
	peer->device = dev;
	memcpy(peer->public_key, public_key, NOISE_PUBLIC_KEY_LEN);
	pthread_spin_init(&peer->endpoint_lock, PTHREAD_PROCESS_PRIVATE);
	pthread_mutex_init(&peer->staged_lock, NULL);
	cookie_maker_init(&peer->cookie, public_key);
	return peer;
}

void peer_free(struct wg_peer *peer)
{
	if (!peer)
		return;
	peer_drop_staged(peer);
	noise_handshake_destroy(&peer->handshake);
	pthread_spin_destroy(&peer->endpoint_lock);
	pthread_mutex_destroy(&peer->staged_lock);
	memzero_explicit(peer, sizeof(*peer));
	free(peer);
}

void peer_id(const struct wg_peer *peer, char out[PEER_ID_LEN])
{
	char b64[KEY_BASE64_LEN + 1];

	key_to_base64(b64, peer->public_key);
	memcpy(out, b64, PEER_ID_LEN - 1);
	out[PEER_ID_LEN - 1] = '\0';
}

void peer_set_endpoint(struct wg_peer *peer, const union sockaddr_inet *ep)
{
	pthread_spin_lock(&peer->endpoint_lock);
	endpoint_to_v6(ep, &peer->endpoint);
	pthread_spin_unlock(&peer->endpoint_lock);
}

bool peer_get_endpoint(struct wg_peer *peer, union sockaddr_inet *out)
{
	pthread_spin_lock(&peer->endpoint_lock);
	*out = peer->endpoint;
	pthread_spin_unlock(&peer->endpoint_lock);
	return out->sa.sa_family != 0;
}

void peer_stage_packet(struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	struct wg_staged_packet *sp = malloc(sizeof(*sp) + len);

	if (!sp || len > UINT16_MAX) {
		free(sp);
		return;
	}
	sp->len = (uint16_t)len;
	memcpy(sp->data, pkt, len);
	pthread_mutex_lock(&peer->staged_lock);
	if (peer->staged_count == PEER_STAGED_MAX) {
		free(peer->staged[0]);
		memmove(peer->staged, peer->staged + 1, (PEER_STAGED_MAX - 1) * sizeof(sp));
		peer->staged_count--;
	}
	peer->staged[peer->staged_count++] = sp;
	pthread_mutex_unlock(&peer->staged_lock);
}

unsigned peer_take_staged(struct wg_peer *peer, struct wg_staged_packet **out, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&peer->staged_lock);
	n = peer->staged_count < max ? peer->staged_count : max;
	memcpy(out, peer->staged, n * sizeof(*out));
	memmove(peer->staged, peer->staged + n, (peer->staged_count - n) * sizeof(*out));
	peer->staged_count -= n;
	pthread_mutex_unlock(&peer->staged_lock);
	return n;
}

void peer_drop_staged(struct wg_peer *peer)
{
	pthread_mutex_lock(&peer->staged_lock);
	for (unsigned i = 0; i < peer->staged_count; i++)
		free(peer->staged[i]);
	peer->staged_count = 0;
	pthread_mutex_unlock(&peer->staged_lock);
}
