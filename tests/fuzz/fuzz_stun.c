// SPDX-License-Identifier: MIT
/* The STUN codec on any datagram: the demux check and the parser must agree,
 * never read out of bounds, and whatever parses must survive re-encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stun/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reencode(const struct stun_msg *m)
{
	uint8_t out[STUN_BUF_LEN];
	struct stun_msg again;
	int n;

	if (!m->has_mapped)
		return;
	n = stun_build_binding_response(out, sizeof(out), m->txid, &m->mapped,
					m->has_origin ? &m->origin : NULL,
					m->has_other ? &m->other : NULL);
	if (n < 0 || stun_parse(out, (size_t)n, &again) != 0 || !again.fingerprint_ok)
		abort();
	if (memcmp(again.txid, m->txid, STUN_TXID_LEN) != 0 ||
	    again.mapped.ss_family != m->mapped.ss_family)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees any overread. */
	uint8_t *p = malloc(size ? size : 1);
	struct stun_msg m;
	bool is;
	int ret;

	memcpy(p, data, size);
	is = stun_is_message(p, size);
	ret = stun_parse(p, size, &m);
	if (ret == 0 && !is)
		abort(); /* the parser accepted what the demux refuses */
	if (ret == 0) {
		if (m.fingerprint_ok != m.has_fingerprint || m.software[STUN_SOFTWARE_MAX] != '\0')
			abort();
		reencode(&m);
	}
	free(p);
	return 0;
}
