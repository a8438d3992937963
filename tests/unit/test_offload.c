// SPDX-License-Identifier: MIT
/* src/wg/offload.c: TSO/USO splitting, checksums and GRO coalescing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wg/offload.h"

#define HEADROOM 16
#define SEG_CAP	 2048
#define MAX_OUT	 64

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* RFC 1071 the slow way, big-endian 16-bit words. */
static uint32_t ref_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t ref_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Whether the L4 checksum of an IP packet verifies (pseudo-header included). */
static bool l4_csum_ok(const uint8_t *ip, size_t len)
{
	bool v6 = ip[0] >> 4 == 6;
	size_t iphl = v6 ? 40 : (size_t)(ip[0] & 0xf) * 4;
	uint8_t proto = v6 ? ip[6] : ip[9];
	uint32_t sum = v6 ? ref_sum(ip + 8, 32, 0) : ref_sum(ip + 12, 8, 0);

	sum += proto + (uint32_t)(len - iphl);
	return ref_fold(ref_sum(ip + iphl, len - iphl, sum)) == 0xffff;
}

static bool ip4_csum_ok(const uint8_t *ip)
{
	return ref_fold(ref_sum(ip, (size_t)(ip[0] & 0xf) * 4, 0)) == 0xffff;
}

/* A TCP super-packet: headers (with a 12-byte timestamp option) and payload
 * bytes i*7, flags as given; checksum left at the pseudo-header sum. */
static size_t make_tcp(uint8_t *p, bool v6, size_t payload, uint32_t seq, uint8_t flags)
{
	size_t iphl = v6 ? 40 : 20, thl = 32, len = iphl + thl + payload;

	memset(p, 0, iphl + thl);
	if (v6) {
		p[0] = 0x60;
		p[4] = (uint8_t)((len - 40) >> 8);
		p[5] = (uint8_t)(len - 40);
		p[6] = 6;
		p[7] = 64;
		p[23] = 1;
		p[39] = 2;
	} else {
		p[0] = 0x45;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
		p[4] = 0x12;
		p[5] = 0x34;
		p[6] = 0x40; /* DF */
		p[8] = 64;
		p[9] = 6;
		p[12] = 10, p[15] = 1;
		p[16] = 10, p[19] = 2;
	}
	uint8_t *t = p + iphl;
	t[0] = 0x1f, t[1] = 0x90; /* 8080 */
	t[2] = 0xc3, t[3] = 0x50;
	t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8);
	t[7] = (uint8_t)seq;
	t[8] = 0xaa, t[11] = 0x55; /* ack */
	t[12] = (uint8_t)((thl / 4) << 4);
	t[13] = flags;
	t[14] = 0xff;
	t[20] = 1, t[21] = 1, t[22] = 8, t[23] = 10; /* NOP NOP TS */
	t[27] = 9;
	for (size_t i = 0; i < payload; i++)
		p[iphl + thl + i] = (uint8_t)(i * 7 + seq);
	return len;
}

struct segs {
	uint8_t *mem;
	uint8_t *out[MAX_OUT];
	size_t lens[MAX_OUT];
};

static void segs_init_stride(struct segs *s, size_t stride)
{
	s->mem = calloc(MAX_OUT, stride);
	for (int i = 0; i < MAX_OUT; i++)
		s->out[i] = s->mem + (size_t)i * stride + HEADROOM;
}

static void segs_init(struct segs *s)
{
	segs_init_stride(s, SEG_CAP);
}

static void test_csum_matches_reference(void **state)
{
	uint8_t buf[1501];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 17);
	for (size_t len = 0; len <= sizeof(buf); len += 37) {
		uint16_t ours = csum_fold(csum_partial(buf, len, 0));
		uint16_t ref = ref_fold(ref_sum(buf, len, 0));
		uint8_t mem[2];
		memcpy(mem, &ours, 2); /* ours is in memory order */
		assert_int_equal(be16(mem), ref);
	}
}

static void test_csum_complete(void **state)
{
	uint8_t pkt[200];
	size_t len = make_tcp(pkt, false, 100, 1000, 0x18);
	uint32_t ps = ref_sum(pkt + 12, 8, 0) + 6 + (uint32_t)(len - 20);
	uint16_t partial = ref_fold(ps);

	pkt[36] = (uint8_t)(partial >> 8), pkt[37] = (uint8_t)partial;
	assert_int_equal(offload_csum_complete(pkt, len, 20, 16), 0);
	assert_true(l4_csum_ok(pkt, len));
	assert_int_equal(offload_csum_complete(pkt, len, 20, (uint16_t)(len - 21)), -EINVAL);
	assert_int_equal(offload_csum_complete(pkt, len, (uint16_t)len, 0), -EINVAL);
}

static void check_tcp_split(bool v6)
{
	static uint8_t pkt[70000];
	struct segs s;
	size_t iphl = v6 ? 40 : 20, hl = iphl + 32, mss = 1368, payload = 60000;
	size_t len = make_tcp(pkt, v6, payload, 0xfffff000, 0x80 | 0x18 | 0x01); /* CWR PSH FIN */
	struct vnet_hdr h = {.flags = VNET_HDR_F_NEEDS_CSUM,
			     .gso_type = v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4,
			     .hdr_len = (uint16_t)hl,
			     .gso_size = (uint16_t)mss,
			     .csum_start = (uint16_t)iphl,
			     .csum_offset = 16};
	int n, want = (int)((payload + mss - 1) / mss);
	size_t off = 0;

	segs_init(&s);
	assert_int_equal(offload_split_count(&h, pkt, len), want);
	n = offload_split(&h, pkt, len, s.out, SEG_CAP - HEADROOM, s.lens, MAX_OUT);
	assert_int_equal(n, want);
	for (int i = 0; i < n; i++) {
		uint8_t *o = s.out[i], *t = o + iphl;
		size_t seg = i < n - 1 ? mss : payload - mss * (size_t)(n - 1);
		bool last = i == n - 1;

		assert_int_equal(s.lens[i], hl + seg);
		if (v6) {
			assert_int_equal(be16(o + 4), hl + seg - 40);
		} else {
			assert_int_equal(be16(o + 2), hl + seg);
			assert_int_equal(be16(o + 4), (uint16_t)(0x1234 + i));
			assert_true(ip4_csum_ok(o));
		}
		assert_int_equal(be32(t + 4), (uint32_t)(0xfffff000u + off)); /* wraps */
		assert_int_equal(t[13] & 0x01, last ? 0x01 : 0);
		assert_int_equal(t[13] & 0x08, last ? 0x08 : 0);
		assert_int_equal(t[13] & 0x80, i == 0 ? 0x80 : 0);
		assert_int_equal(t[13] & 0x10, 0x10);
		assert_true(l4_csum_ok(o, s.lens[i]));
		assert_memory_equal(o + hl, pkt + hl + off, seg);
		off += seg;
	}
	assert_int_equal(off, payload);
	free(s.mem);
}

static void test_split_tcp4(void **state)
{
	check_tcp_split(false);
}

static void test_split_tcp6(void **state)
{
	check_tcp_split(true);
}

static void test_split_udp4(void **state)
{
	uint8_t pkt[5000] = {0};
	struct segs s;
	size_t payload = 4000, len = 28 + payload;
	struct vnet_hdr h = {.gso_type = VNET_HDR_GSO_UDP_L4, .gso_size = 1200};

	pkt[0] = 0x45, pkt[2] = (uint8_t)(len >> 8), pkt[3] = (uint8_t)len, pkt[8] = 64,
	pkt[9] = 17;
	pkt[12] = 10, pkt[15] = 1, pkt[16] = 10, pkt[19] = 2;
	pkt[20] = 0x12, pkt[22] = 0x13, pkt[24] = (uint8_t)((len - 20) >> 8),
	pkt[25] = (uint8_t)(len - 20);
	for (size_t i = 0; i < payload; i++)
		pkt[28 + i] = (uint8_t)(i * 3);
	segs_init(&s);
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP - HEADROOM, s.lens, MAX_OUT),
			 4);
	for (int i = 0; i < 4; i++) {
		size_t seg = i < 3 ? 1200 : 400;
		assert_int_equal(s.lens[i], 28 + seg);
		assert_int_equal(be16(s.out[i] + 2), 28 + seg);
		assert_int_equal(be16(s.out[i] + 24), 8 + seg);
		assert_true(ip4_csum_ok(s.out[i]));
		assert_true(l4_csum_ok(s.out[i], s.lens[i]));
		assert_memory_equal(s.out[i] + 28, pkt + 28 + 1200 * i, seg);
	}
	free(s.mem);
}

static void test_split_refuses_malformed(void **state)
{
	uint8_t pkt[3000];
	struct segs s;
	size_t len = make_tcp(pkt, false, 2000, 1, 0x10);
	struct vnet_hdr h = {.gso_type = VNET_HDR_GSO_TCPV4, .gso_size = 1000};

	segs_init(&s);
	assert_int_equal(offload_split(&h, pkt, 30, s.out, SEG_CAP, s.lens, MAX_OUT), -EINVAL);
	h.gso_size = 0;
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT), -EINVAL);
	h.gso_size = 1000;
	h.gso_type = VNET_HDR_GSO_UDP;
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT),
			 -EPROTONOSUPPORT);
	h.gso_type = VNET_HDR_GSO_TCPV6; /* an IPv4 packet */
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT), -EINVAL);
	h.gso_type = 77;
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT), -EINVAL);
	h.gso_type = VNET_HDR_GSO_TCPV4;
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, 1), -E2BIG);
	assert_int_equal(offload_split(&h, pkt, len, s.out, 500, s.lens, MAX_OUT), -E2BIG);
	h.gso_size = 1;
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT), -E2BIG);
	h.gso_size = 1000;
	pkt[20 + 12] = 0x40; /* TCP data offset 16 bytes */
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT), -EINVAL);
	pkt[20 + 12] = 0x80;
	pkt[6] = 0x20; /* more fragments */
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP, s.lens, MAX_OUT), -EINVAL);
	free(s.mem);
}

/* Segments a super-packet, then coalesces the segments back. */
static void check_roundtrip(bool v6)
{
	static uint8_t pkt[70000], flat[70000];
	struct segs s;
	size_t iphl = v6 ? 40 : 20, hl = iphl + 32, payload = 40 * 1368 + 100;
	size_t len = make_tcp(pkt, v6, payload, 5000, 0x18);
	struct vnet_hdr h = {.gso_type = v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4,
			     .gso_size = 1368};
	struct gro_pkt g[MAX_OUT];
	struct iovec iov[MAX_OUT];
	unsigned start[MAX_OUT], cnt[MAX_OUT], units;
	struct vnet_hdr v;
	size_t flen = 0;
	int n;

	segs_init(&s);
	n = offload_split(&h, pkt, len, s.out, SEG_CAP - HEADROOM, s.lens, MAX_OUT);
	assert_int_equal(n, 41);
	for (int i = 0; i < n; i++)
		g[i] = (struct gro_pkt){.data = s.out[i], .len = s.lens[i]};
	units = gro_coalesce(g, (unsigned)n, false, iov, start, cnt);
	assert_int_equal(units, 1);
	assert_int_equal(cnt[0], 41);
	for (unsigned i = 0; i < cnt[0]; i++) {
		memcpy(flat + flen, iov[i].iov_base, iov[i].iov_len);
		flen += iov[i].iov_len;
	}
	assert_int_equal(flen, VNET_HDR_LEN + len);
	vnet_hdr_read(flat, &v);
	assert_int_equal(v.flags, VNET_HDR_F_NEEDS_CSUM);
	assert_int_equal(v.gso_type, h.gso_type);
	assert_int_equal(v.gso_size, 1368);
	assert_int_equal(v.hdr_len, hl);
	assert_int_equal(v.csum_start, iphl);
	assert_int_equal(v.csum_offset, 16);
	uint8_t *c = flat + VNET_HDR_LEN;
	if (!v6) {
		assert_int_equal(be16(c + 2), len);
		assert_true(ip4_csum_ok(c));
	} else {
		assert_int_equal(be16(c + 4), len - 40);
	}
	assert_int_equal(be32(c + iphl + 4), 5000);
	assert_int_equal(c[iphl + 13], 0x18); /* the last segment's PSH */
	assert_memory_equal(c + hl, pkt + hl, payload);
	/* The partial checksum completes to a valid one. */
	assert_int_equal(offload_csum_complete(c, len, v.csum_start, v.csum_offset), 0);
	assert_true(l4_csum_ok(c, len));
	free(s.mem);
}

static void test_gro_roundtrip4(void **state)
{
	check_roundtrip(false);
}

static void test_gro_roundtrip6(void **state)
{
	check_roundtrip(true);
}

static unsigned coalesce_udp(struct segs *s, size_t *lens, unsigned n, unsigned *cnt, bool udp)
{
	struct gro_pkt g[MAX_OUT];
	struct iovec iov[MAX_OUT];
	unsigned start[MAX_OUT];

	for (unsigned i = 0; i < n; i++)
		g[i] = (struct gro_pkt){.data = s->out[i], .len = lens[i]};
	return gro_coalesce(g, n, udp, iov, start, cnt);
}

static unsigned coalesce(struct segs *s, size_t *lens, unsigned n, unsigned *cnt)
{
	return coalesce_udp(s, lens, n, cnt, false);
}

static void test_gro_keeps_apart(void **state)
{
	struct segs s;
	size_t lens[8];
	unsigned cnt[8];

	segs_init(&s);
	/* Two flows interleaved: two units of two. */
	lens[0] = make_tcp(s.out[0], false, 1000, 0, 0x10);
	lens[1] = make_tcp(s.out[1], false, 1000, 0, 0x10);
	s.out[1][20 + 1] = 0x91; /* other source port */
	lens[2] = make_tcp(s.out[2], false, 1000, 1000, 0x10);
	lens[3] = make_tcp(s.out[3], false, 1000, 1000, 0x10);
	s.out[3][20 + 1] = 0x91;
	assert_int_equal(coalesce(&s, lens, 4, cnt), 2);
	assert_int_equal(cnt[0], 2);
	assert_int_equal(cnt[1], 2);
	/* A gap in sequence numbers. */
	lens[0] = make_tcp(s.out[0], false, 1000, 0, 0x10);
	lens[1] = make_tcp(s.out[1], false, 1000, 2000, 0x10);
	assert_int_equal(coalesce(&s, lens, 2, cnt), 2);
	/* A different ack. */
	lens[1] = make_tcp(s.out[1], false, 1000, 1000, 0x10);
	s.out[1][20 + 11] = 0x56;
	assert_int_equal(coalesce(&s, lens, 2, cnt), 2);
	/* PSH ends a unit; a short segment too; a SYN never joins. */
	lens[0] = make_tcp(s.out[0], false, 1000, 0, 0x18);
	lens[1] = make_tcp(s.out[1], false, 1000, 1000, 0x10);
	assert_int_equal(coalesce(&s, lens, 2, cnt), 2);
	lens[0] = make_tcp(s.out[0], false, 1000, 0, 0x10);
	lens[1] = make_tcp(s.out[1], false, 500, 1000, 0x10);
	lens[2] = make_tcp(s.out[2], false, 500, 1500, 0x10);
	assert_int_equal(coalesce(&s, lens, 3, cnt), 2);
	assert_int_equal(cnt[0], 2);
	lens[1] = make_tcp(s.out[1], false, 1000, 1000, 0x12);
	assert_int_equal(coalesce(&s, lens, 2, cnt), 2);
	/* A UDP packet passes alone with an empty header. */
	lens[0] = make_tcp(s.out[0], false, 1000, 0, 0x10);
	s.out[0][9] = 17;
	assert_int_equal(coalesce(&s, lens, 1, cnt), 1);
	for (int i = 0; i < VNET_HDR_LEN; i++)
		assert_int_equal(s.out[0][i - VNET_HDR_LEN], 0);
	free(s.mem);
	/* Never past 65535 bytes of IP packet. */
	segs_init_stride(&s, 10000);
	for (unsigned i = 0; i < 8; i++)
		lens[i] = make_tcp(s.out[i], false, 9000, 9000 * i, 0x10);
	assert_int_equal(coalesce(&s, lens, 8, cnt), 2);
	assert_int_equal(cnt[0], 7);
	free(s.mem);
}

/* A USO super-packet split, then merged back when the TUN takes USO. */
static void test_gro_udp(void **state)
{
	static uint8_t pkt[5000], flat[6000];
	struct segs s;
	size_t payload = 4000, len = 28 + payload, flen = 0;
	struct vnet_hdr h = {.gso_type = VNET_HDR_GSO_UDP_L4, .gso_size = 1200}, v;
	struct gro_pkt g[8];
	struct iovec iov[8];
	unsigned start[8], cnt[8];

	memset(pkt, 0, 28);
	pkt[0] = 0x45, pkt[2] = (uint8_t)(len >> 8), pkt[3] = (uint8_t)len, pkt[8] = 64,
	pkt[9] = 17;
	pkt[12] = 10, pkt[15] = 1, pkt[16] = 10, pkt[19] = 2;
	pkt[20] = 0x12, pkt[22] = 0x13, pkt[24] = (uint8_t)((len - 20) >> 8),
	pkt[25] = (uint8_t)(len - 20);
	for (size_t i = 0; i < payload; i++)
		pkt[28 + i] = (uint8_t)(i * 5);
	segs_init(&s);
	assert_int_equal(offload_split(&h, pkt, len, s.out, SEG_CAP - HEADROOM, s.lens, MAX_OUT),
			 4);
	/* Without USO on the TUN each datagram stays alone. */
	assert_int_equal(coalesce_udp(&s, s.lens, 4, cnt, false), 4);
	for (int i = 0; i < 4; i++)
		g[i] = (struct gro_pkt){.data = s.out[i], .len = s.lens[i]};
	assert_int_equal(gro_coalesce(g, 4, true, iov, start, cnt), 1);
	assert_int_equal(cnt[0], 4);
	for (unsigned i = 0; i < cnt[0]; i++) {
		memcpy(flat + flen, iov[i].iov_base, iov[i].iov_len);
		flen += iov[i].iov_len;
	}
	assert_int_equal(flen, VNET_HDR_LEN + len);
	vnet_hdr_read(flat, &v);
	assert_int_equal(v.gso_type, VNET_HDR_GSO_UDP_L4);
	assert_int_equal(v.gso_size, 1200);
	assert_int_equal(v.hdr_len, 28);
	assert_int_equal(v.csum_start, 20);
	assert_int_equal(v.csum_offset, 6);
	uint8_t *c = flat + VNET_HDR_LEN;
	assert_int_equal(be16(c + 2), len);
	assert_int_equal(be16(c + 24), len - 20);
	assert_true(ip4_csum_ok(c));
	assert_memory_equal(c + 28, pkt + 28, payload);
	assert_int_equal(offload_csum_complete(c, len, v.csum_start, v.csum_offset), 0);
	assert_true(l4_csum_ok(c, len));
	free(s.mem);
}

/* TCP and UDP between the same addresses and ports are different flows: a
 * UDP datagram between two TCP segments does not split them. */
static void test_gro_protocols_apart(void **state)
{
	struct segs s;
	size_t lens[3];
	unsigned cnt[3];

	segs_init(&s);
	lens[0] = make_tcp(s.out[0], false, 1000, 0x04080000 - 1000, 0x10);
	/* Its UDP length field (the sequence number's top half) is right. */
	lens[1] = make_tcp(s.out[1], false, 1000, 0x04080000, 0x10);
	s.out[1][9] = 17;
	lens[2] = make_tcp(s.out[2], false, 1000, 0x04080000, 0x10);
	assert_int_equal(coalesce_udp(&s, lens, 3, cnt, true), 2);
	assert_int_equal(cnt[0], 2);
	assert_int_equal(cnt[1], 1);
	free(s.mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_matches_reference),
		cmocka_unit_test(test_csum_complete),
		cmocka_unit_test(test_split_tcp4),
		cmocka_unit_test(test_split_tcp6),
		cmocka_unit_test(test_split_udp4),
		cmocka_unit_test(test_split_refuses_malformed),
		cmocka_unit_test(test_gro_roundtrip4),
		cmocka_unit_test(test_gro_roundtrip6),
		cmocka_unit_test(test_gro_keeps_apart),
		cmocka_unit_test(test_gro_udp),
		cmocka_unit_test(test_gro_protocols_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
