// SPDX-License-Identifier: MIT
/*
 * The receive path: any datagram, as the rx thread hands it over.  Mode 1
 * seals the input with a live session's key first, so that the fuzzer reaches
 * past authentication: the replay window, the inner IP header checks and
 * cryptokey routing.  Each datagram also goes through the check a side
 * socket's first WireGuard gets (device_datagram_from_peer).
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "wg/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wg_device *dev;
static struct wg_keypair *kp;
static struct aead_ctx *ctx;

static void setup(void)
{
	static struct evloop *loop;
	struct noise_session_keys keys = {.initiator = true, .remote_index = 1};
	struct wg_config cfg;
	struct wg_peer_config *pc;
	char err[WGCONFIG_ERR_LEN];
	struct wg_peer *peer;

	log_set_level(LOG_LEVEL_ERROR);
	if (crypto_init() < 0 || evloop_new(&loop) < 0 || device_new(&dev, loop, NULL, 1) < 0 ||
	    aead_ctx_new(&ctx) < 0)
		abort();
	wg_config_init(&cfg);
	cfg.has_private_key = true;
	x25519_generate(cfg.private_key);
	cfg.peers = pc = calloc(1, sizeof(*pc));
	cfg.n_peers = cfg.cap_peers = 1;
	x25519_generate(pc->public_key); /* any 32 bytes name a peer */
	pc->persistent_keepalive = -1;
	pc->allowed_ips = calloc(2, sizeof(*pc->allowed_ips));
	pc->n_allowed_ips = pc->cap_allowed_ips = 2;
	if (prefix_parse("10.0.0.2/32", &pc->allowed_ips[0]) < 0 ||
	    prefix_parse("fd00::2/128", &pc->allowed_ips[1]) < 0 ||
	    device_apply(dev, &cfg, err, sizeof(err)) < 0)
		abort();
	peer = device_find_peer(dev, pc->public_key);
	wg_config_free(&cfg);
	memset(keys.sending, 0x11, sizeof(keys.sending));
	memset(keys.receiving, 0x22, sizeof(keys.receiving));
	if (index_table_add(&dev->index, INDEX_KEYPAIR, peer, NULL, &keys.local_index) < 0)
		abort();
	kp = keypair_new(&keys, peer, clock_mono_ns());
	index_table_set_keypair(&dev->index, kp->local_index, kp);
	keypairs_add(&peer->keypairs, kp, &dev->index);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union sockaddr_inet src = {.in.sin_family = AF_INET, .in.sin_port = htons(51820)};
	uint8_t nonce[AEAD_NONCE_LEN];
	uint8_t *msg, *plain;
	size_t len, plen;
	bool wake = false;
	uint64_t counter;

	if (!dev)
		setup();
	if (size < 1)
		return 0;
	src.in.sin_addr.s_addr = htonl(0xc0000201);
	if (data[0] & 1) {
		if (size < 9)
			return 0;
		/* A data message sealed with the session's key. */
		memcpy(&counter, data + 1, sizeof(counter));
		counter = le64toh(counter);
		len = MESSAGE_DATA_HEADER_LEN + (size - 9) + NOISE_AUTHTAG_LEN;
		msg = malloc(len);
		uint32_t type = htole32(MESSAGE_DATA), idx = htole32(kp->local_index);
		uint64_t le = htole64(counter);
		memcpy(msg, &type, 4);
		memcpy(msg + 4, &idx, 4);
		memcpy(msg + 8, &le, 8);
		aead_nonce_from_counter(nonce, counter);
		aead_seal(ctx, kp->receiving_key, nonce, NULL, 0, data + 9, size - 9,
			  msg + MESSAGE_DATA_HEADER_LEN);
	} else {
		len = size - 1;
		msg = malloc(len ? len : 1);
		memcpy(msg, data + 1, len);
	}
	/* What makes a socket of the birthday search the peer's path: a
	 * message sealed with the session's key is the peer's, whatever its
	 * content (when a side socket's read holds it); nothing else changes. */
	bool mine = device_datagram_from_peer(dev, kp->peer->public_key, msg, len, &src);
	if ((data[0] & 1) && len <= PKTQ_MAX_PACKET && !mine)
		abort();
	struct rx_batch b;

	receive_batch_begin(&b, ctx, clock_mono_ns());
	pthread_rwlock_rdlock(&dev->lock);
	plen = receive_datagram(dev, &b, msg, len, &src, &plain);
	wake = b.wake;
	b.wake = false; /* drained by hand below, no event loop runs here */
	receive_batch_end(dev, &b);
	pthread_rwlock_unlock(&dev->lock);
	if (plen) {
		/* What is delivered lies inside the message and is a whole IP packet. */
		if (plain < msg || plain + plen > msg + len ||
		    (plain[0] >> 4 != 4 && plain[0] >> 4 != 6))
			abort();
	}
	if (wake)
		receive_handshakes(dev);
	free(msg);
	return 0;
}
