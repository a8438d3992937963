// SPDX-License-Identifier: MIT
/* What knit-control reads from a new TCP connection after the HTTP head:
 * records, a handshake from anyone, then records that must open.  Any bytes
 * must end in a refusal, never a crash or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/channel.h"
#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t priv[32] = {0x48, 1, 2, 3, 4, 5, 6, 7};
	uint8_t *copy = malloc(size ? size : 1);
	struct channel ch;
	struct buf out;
	size_t off = 0;

	if (!copy || channel_init_responder(&ch, priv) < 0)
		abort();
	memcpy(copy, data, size);
	buf_init(&out, 1 << 16);
	while (off < size && ch.state != CHANNEL_FAILED) {
		const uint8_t *body;
		size_t len, plain;
		long n = channel_next_record(copy + off, size - off, CHANNEL_MAX_RECORD, &body, &len);
		if (n <= 0)
			break;
		if ((size_t)n > size - off || body + len > copy + size)
			abort(); /* the framing may never point past the input */
		if (ch.state == CHANNEL_HANDSHAKE)
			channel_handshake(&ch, body, len, &out);
		else
			channel_open(&ch, (uint8_t *)body, len, &plain);
		off += (size_t)n;
	}
	channel_destroy(&ch);
	buf_free(&out);
	free(copy);
	return 0;
}
