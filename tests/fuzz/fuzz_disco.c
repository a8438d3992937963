// SPDX-License-Identifier: MIT
/* Disco packets from anyone: the demux check, then opening under a fixed
 * key, so that the decoder behind the AEAD is reached too (the input's
 * tail is sealed here when it does not open as it is). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "disco/disco.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = {1, 2, 3};
	uint8_t pkt[DISCO_MAX_PACKET + 64];
	struct disco_msg m;
	size_t n;

	disco_is_message(data, size);
	disco_open(data, size, key, &m);
	/* Seal arbitrary plaintext so the decoder sees it. */
	if (size < 1 || size > DISCO_MAX_PLAIN)
		return 0;
	memcpy(pkt, DISCO_MAGIC, DISCO_MAGIC_LEN);
	memset(pkt + DISCO_MAGIC_LEN, 0, 56);
	xaead_seal(key, pkt + DISCO_MAGIC_LEN + 32, pkt, DISCO_MAGIC_LEN + 32, data, size,
		   pkt + DISCO_HEADER_LEN);
	n = DISCO_HEADER_LEN + size + DISCO_TAG_LEN;
	if (disco_open(pkt, n, key, &m) == 0 && m.type == DISCO_CALL_ME_MAYBE &&
	    m.n_endpoints > DISCO_MAX_ENDPOINTS)
		abort();
	return 0;
}
