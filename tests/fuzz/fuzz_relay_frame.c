// SPDX-License-Identifier: MIT
/* Relay frames as a connection receives them: the first byte picks a read
 * size, the rest is the stream, cut into frames and each payload checked
 * and parsed as the relay and the client do. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "relay/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void payload(uint8_t type, const uint8_t *p, uint32_t len)
{
	static const uint8_t relay_priv[32] = {1, 2, 3}, challenge[32] = {4};
	uint8_t key[32], ch[32];
	char text[RELAY_CLOSE_MAX + 1];

	if (relay_payload_check(type, p, len) < 0)
		return;
	switch (type) {
	case RELAY_FRAME_SERVER_KEY:
		relay_server_key_parse(p, len, key, ch);
		break;
	case RELAY_FRAME_CLIENT_INFO:
		if (relay_client_info_open(p, len, relay_priv, challenge, key) == 0)
			abort(); /* nobody can prove a key without the challenge */
		break;
	case RELAY_FRAME_CLOSE:
		relay_close_reason(p, len, text);
		if (strlen(text) != len)
			abort();
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct relay_rxbuf rb;
	size_t chunk, off;

	if (!init) {
		crypto_init();
		init = true;
	}
	if (size < 1)
		return 0;
	chunk = (size_t)data[0] * 64 + 1;
	data++;
	size--;
	relay_rxbuf_init(&rb);
	/* As a connection reads: at most `chunk` bytes, and never more than the
	 * buffer offers, then every complete frame. */
	for (off = 0; off < size;) {
		size_t n = size - off < chunk ? size - off : chunk, space;
		uint8_t type, *dst = relay_rxbuf_space(&rb, &space);
		const uint8_t *p;
		uint32_t len;
		int r;

		if (!dst || !space)
			abort(); /* frames are drained after each read: always room */
		n = n < space ? n : space;
		memcpy(dst, data + off, n);
		relay_rxbuf_commit(&rb, n);
		off += n;
		while ((r = relay_rxbuf_next(&rb, &type, &p, &len)) == 1) {
			if (len > RELAY_MAX_PAYLOAD)
				abort();
			payload(type, p, len);
		}
		if (r < 0)
			break; /* the connection would close */
	}
	relay_rxbuf_free(&rb);
	return 0;
}
