// SPDX-License-Identifier: MIT
/*
 * Userspace offloads: the input is a virtio-net header and a packet as the
 * TUN would hand it over (a super-packet), which is split; the segments and
 * then the raw input cut into pieces are coalesced, as decrypted packets
 * from a peer would be.  Every segment must fit its buffer, every unit's
 * bytes must come from the packets given, and nothing may read or write
 * out of bounds (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg/offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP	 1500
#define MAX_SEGS 64

static void coalesce_and_check(struct gro_pkt *g, unsigned n, bool udp)
{
	struct iovec iov[MAX_SEGS];
	unsigned start[MAX_SEGS], cnt[MAX_SEGS], units, total = 0;
	size_t in = 0, out = 0;

	for (unsigned i = 0; i < n; i++)
		in += g[i].len;
	units = gro_coalesce(g, n, udp, iov, start, cnt);
	if (units > n || units == 0)
		abort();
	for (unsigned u = 0; u < units; u++) {
		if (start[u] != total || cnt[u] == 0)
			abort();
		total += cnt[u];
		for (unsigned k = 0; k < cnt[u]; k++)
			out += iov[start[u] + k].iov_len;
		if (cnt[u] > 1 && out > in + units * VNET_HDR_LEN)
			abort();
	}
	if (total != n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[MAX_SEGS][16 + CAP];
	uint8_t *out[MAX_SEGS];
	size_t lens[MAX_SEGS];
	struct gro_pkt g[MAX_SEGS];
	struct vnet_hdr h;
	int n;

	if (size < VNET_HDR_LEN)
		return 0;
	vnet_hdr_read(data, &h);
	data += VNET_HDR_LEN;
	size -= VNET_HDR_LEN;
	for (unsigned i = 0; i < MAX_SEGS; i++)
		out[i] = mem[i] + 16;
	n = offload_split(&h, data, size, out, CAP, lens, MAX_SEGS);
	if (n > MAX_SEGS)
		abort();
	for (int i = 0; i < n; i++) {
		if (lens[i] > CAP)
			abort();
		g[i] = (struct gro_pkt){.data = out[i], .len = lens[i]};
	}
	if (n > 0)
		coalesce_and_check(g, (unsigned)n, h.flags & 0x80);
	/* The raw bytes as up to 64 received packets of gso_size bytes. */
	size_t piece = h.gso_size ? h.gso_size : 1;
	unsigned k = 0;
	for (size_t off = 0; off < size && k < MAX_SEGS; off += piece, k++) {
		size_t len = size - off < piece ? size - off : piece;
		if (len > CAP)
			len = CAP;
		memcpy(out[k], data + off, len);
		g[k] = (struct gro_pkt){.data = out[k], .len = len};
	}
	if (k)
		coalesce_and_check(g, k, h.flags & 0x40);
	return 0;
}
