// SPDX-License-Identifier: MIT
/* Userspace segmentation and coalescing (see offload.h). */
#include "wg/offload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_FIN	     0x01
#define TCP_PSH	     0x08
#define TCP_ACK	     0x10
#define TCP_CWR	     0x80

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void vnet_hdr_read(const uint8_t p[VNET_HDR_LEN], struct vnet_hdr *h)
{
	h->flags = p[0];
	h->gso_type = p[1];
	memcpy(&h->hdr_len, p + 2, 2);
	memcpy(&h->gso_size, p + 4, 2);
	memcpy(&h->csum_start, p + 6, 2);
	memcpy(&h->csum_offset, p + 8, 2);
}

void vnet_hdr_write(uint8_t p[VNET_HDR_LEN], const struct vnet_hdr *h)
{
	p[0] = h->flags;
	p[1] = h->gso_type;
	memcpy(p + 2, &h->hdr_len, 2);
	memcpy(p + 4, &h->gso_size, 2);
	memcpy(p + 6, &h->csum_start, 2);
	memcpy(p + 8, &h->csum_offset, 2);
}

/*
 * The one's-complement sum does not depend on byte order (RFC 1071): words
 * are added in memory order and the folded result stored the same way.
 * 32-bit words into a 64-bit accumulator cannot overflow below 16 GiB.
 */
uint64_t csum_partial(const void *data, size_t len, uint64_t sum)
{
	const uint8_t *p = data;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint32_t w[4];

	while (len >= 16) {
		memcpy(w, p, 16);
		s0 += w[0];
		s1 += w[1];
		s2 += w[2];
		s3 += w[3];
		p += 16;
		len -= 16;
	}
	sum += s0 + s1 + s2 + s3;
	while (len >= 4) {
		memcpy(w, p, 4);
		sum += w[0];
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;
		memcpy(&v, p, 2);
		sum += v;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint16_t v = 0;
		memcpy(&v, p, 1); /* the odd byte, padded with zero in memory order */
		sum += v;
	}
	return sum;
}

/* Copies len bytes and returns their sum: one pass over the payload. */
static uint64_t csum_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint32_t w[4];
	size_t done = len & ~(size_t)15;

	for (size_t i = 0; i < done; i += 16) {
		memcpy(w, src + i, 16);
		memcpy(dst + i, w, 16);
		s0 += w[0];
		s1 += w[1];
		s2 += w[2];
		s3 += w[3];
	}
	memcpy(dst + done, src + done, len - done);
	return csum_partial(src + done, len - done, s0 + s1 + s2 + s3);
}

uint16_t csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Stores ~fold(sum) at p, in memory order. */
static void csum_store(uint8_t *p, uint64_t sum)
{
	uint16_t c = (uint16_t)~csum_fold(sum);

	memcpy(p, &c, 2);
}

/* The pseudo-header sum: addresses, protocol and the L4 length. */
static uint64_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto, uint32_t l4_len)
{
	uint64_t sum = v6 ? csum_partial(ip + 8, 32, 0) : csum_partial(ip + 12, 8, 0);
	uint8_t tail[8] = {0};

	if (v6) {
		put_be32(tail, l4_len);
		tail[7] = proto;
		return csum_partial(tail, 8, sum);
	}
	tail[1] = proto;
	put_be16(tail + 2, (uint16_t)l4_len);
	return csum_partial(tail, 4, sum);
}

static void ipv4_csum(uint8_t *ip, size_t ihl)
{
	ip[10] = ip[11] = 0;
	csum_store(ip + 10, csum_partial(ip, ihl, 0));
}

int offload_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset)
{
	if ((size_t)csum_start + csum_offset + 2 > len)
		return -EINVAL;
	csum_store(pkt + csum_start + csum_offset,
		   csum_partial(pkt + csum_start, len - csum_start, 0));
	return 0;
}

/* --- splitting ----------------------------------------------------------- */

struct l34 {
	bool v6;
	uint8_t proto;
	size_t iphl, l4hl; /* header lengths */
};

/* Parses the IP and L4 headers of a super-packet of gso_type. */
static int parse_l34(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, struct l34 *l)
{
	uint8_t want;

	switch (h->gso_type & ~VNET_HDR_GSO_ECN) {
	case VNET_HDR_GSO_TCPV4:
	case VNET_HDR_GSO_TCPV6:
		want = IPPROTO_TCP_;
		break;
	case VNET_HDR_GSO_UDP_L4:
		want = IPPROTO_UDP_;
		break;
	case VNET_HDR_GSO_UDP:
		return -EPROTONOSUPPORT;
	default:
		return -EINVAL;
	}
	if (len < 20)
		return -EINVAL;
	if (pkt[0] >> 4 == 4) {
		l->v6 = false;
		l->iphl = (size_t)(pkt[0] & 0xf) * 4;
		l->proto = pkt[9];
		if (l->iphl < 20 || (pkt[6] & 0x3f) || pkt[7]) /* fragments: never */
			return -EINVAL;
	} else if (pkt[0] >> 4 == 6) {
		l->v6 = true;
		l->iphl = 40;
		l->proto = pkt[6]; /* extension headers are not supported */
	} else {
		return -EINVAL;
	}
	if ((h->gso_type & ~VNET_HDR_GSO_ECN) == VNET_HDR_GSO_TCPV4 && l->v6)
		return -EINVAL;
	if ((h->gso_type & ~VNET_HDR_GSO_ECN) == VNET_HDR_GSO_TCPV6 && !l->v6)
		return -EINVAL;
	if (l->proto != want)
		return l->v6 ? -EPROTONOSUPPORT : -EINVAL;
	if (len < l->iphl + 8)
		return -EINVAL;
	if (want == IPPROTO_TCP_) {
		if (len < l->iphl + 20)
			return -EINVAL;
		l->l4hl = (size_t)(pkt[l->iphl + 12] >> 4) * 4;
		if (l->l4hl < 20)
			return -EINVAL;
	} else {
		l->l4hl = 8;
	}
	if (l->iphl + l->l4hl > len)
		return -EINVAL;
	return 0;
}

int offload_split_count(const struct vnet_hdr *h, const uint8_t *pkt, size_t len)
{
	struct l34 l;
	size_t payload, segs;
	int ret;

	if ((h->gso_type & ~VNET_HDR_GSO_ECN) == VNET_HDR_GSO_NONE)
		return 1;
	if ((ret = parse_l34(h, pkt, len, &l)) < 0)
		return ret;
	if (!h->gso_size)
		return -EINVAL;
	payload = len - l.iphl - l.l4hl;
	segs = payload ? (payload + h->gso_size - 1) / h->gso_size : 1;
	if (segs > OFFLOAD_MAX_SEGS)
		return -E2BIG;
	return (int)segs;
}

static int copy_whole(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, uint8_t *out,
		      size_t out_cap, size_t *out_len)
{
	if (len > out_cap)
		return -E2BIG;
	memcpy(out, pkt, len);
	*out_len = len;
	if ((h->flags & VNET_HDR_F_NEEDS_CSUM) &&
	    offload_csum_complete(out, len, h->csum_start, h->csum_offset) < 0)
		return -EINVAL;
	return 1;
}

int offload_split(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, uint8_t *const *out,
		  size_t out_cap, size_t *out_lens, unsigned max_out)
{
	int segs = offload_split_count(h, pkt, len);
	size_t hl, payload, off;
	struct l34 l;
	uint16_t id = 0;
	uint32_t seq = 0;

	if (segs < 0)
		return segs;
	if ((unsigned)segs > max_out)
		return -E2BIG;
	if ((h->gso_type & ~VNET_HDR_GSO_ECN) == VNET_HDR_GSO_NONE)
		return copy_whole(h, pkt, len, out[0], out_cap, out_lens);
	parse_l34(h, pkt, len, &l); /* cannot fail: the count parsed it */
	hl = l.iphl + l.l4hl;
	payload = len - hl;
	if (hl + (payload < h->gso_size ? payload : h->gso_size) > out_cap)
		return -E2BIG;
	if (!l.v6)
		id = get_be16(pkt + 4);
	if (l.proto == IPPROTO_TCP_)
		seq = get_be32(pkt + l.iphl + 4);
	off = 0;
	for (int i = 0; i < segs; i++) {
		size_t seg = payload - off < h->gso_size ? payload - off : h->gso_size;
		size_t total = hl + seg;
		uint8_t *o = out[i], *l4 = o + l.iphl;
		bool last = i == segs - 1;

		uint64_t payload_sum;

		memcpy(o, pkt, hl);
		payload_sum = csum_copy(o + hl, pkt + hl + off, seg);
		if (l.v6) {
			put_be16(o + 4, (uint16_t)(total - 40));
		} else {
			put_be16(o + 2, (uint16_t)total);
			put_be16(o + 4, (uint16_t)(id + i));
			ipv4_csum(o, l.iphl);
		}
		if (l.proto == IPPROTO_TCP_) {
			put_be32(l4 + 4, seq + (uint32_t)off);
			if (!last)
				l4[13] &= (uint8_t) ~(TCP_FIN | TCP_PSH);
			if (i)
				l4[13] &= (uint8_t)~TCP_CWR;
			l4[16] = l4[17] = 0;
			/* The payload starts 4-aligned within the segment: its
			 * sum adds to the header's. */
			csum_store(
				l4 + 16,
				csum_partial(l4, l.l4hl,
					     payload_sum + pseudo_sum(o, l.v6, IPPROTO_TCP_,
								      (uint32_t)(total - l.iphl))));
		} else {
			uint16_t c;
			put_be16(l4 + 4, (uint16_t)(total - l.iphl));
			l4[6] = l4[7] = 0;
			c = (uint16_t)~csum_fold(
				csum_partial(l4, l.l4hl,
					     payload_sum + pseudo_sum(o, l.v6, IPPROTO_UDP_,
								      (uint32_t)(total - l.iphl))));
			if (!c)
				c = 0xffff; /* zero means "no checksum" in UDP */
			memcpy(l4 + 6, &c, 2);
		}
		out_lens[i] = total;
		off += seg;
	}
	return segs;
}

/* --- coalescing ---------------------------------------------------------- */

/*
 * Marks p a candidate (hdr_len set) when it is a TCP segment GRO may merge,
 * or (with udp) a UDP datagram.
 */
static void gro_classify(struct gro_pkt *p, bool udp)
{
	const uint8_t *d = p->data;
	size_t iphl, thl;
	uint8_t flags, proto;

	p->hdr_len = 0;
	if (p->len >= 28 && d[0] == 0x45) { /* IPv4 without options */
		iphl = 20;
		proto = d[9];
		if (get_be16(d + 2) != p->len || (d[6] & 0x3f) || d[7])
			return;
	} else if (p->len >= 48 && d[0] >> 4 == 6) {
		iphl = 40;
		proto = d[6];
		if ((size_t)get_be16(d + 4) + 40 != p->len)
			return;
	} else {
		return;
	}
	p->udp = proto == IPPROTO_UDP_;
	if (p->udp) {
		/* Its own length must be the packet's; one without payload
		 * stays alone. */
		if (udp && get_be16(d + iphl + 4) == p->len - iphl && p->len > iphl + 8)
			p->hdr_len = (uint16_t)(iphl + 8);
		return;
	}
	if (proto != IPPROTO_TCP_ || p->len < iphl + 20)
		return;
	thl = (size_t)(d[iphl + 12] >> 4) * 4;
	flags = d[iphl + 13];
	if (thl < 20 || iphl + thl >= p->len || (flags != TCP_ACK && flags != (TCP_ACK | TCP_PSH)))
		return;
	p->hdr_len = (uint16_t)(iphl + thl);
	p->psh = flags & TCP_PSH;
}

static size_t gro_iphl(const struct gro_pkt *p)
{
	return p->data[0] >> 4 == 4 ? 20 : 40;
}

static bool gro_same_flow(const struct gro_pkt *a, const struct gro_pkt *b)
{
	size_t iphl = gro_iphl(a);

	if ((a->data[0] >> 4) != (b->data[0] >> 4) || a->udp != b->udp)
		return false;
	if (iphl == 20)
		return !memcmp(a->data + 12, b->data + 12, 8) &&
		       !memcmp(a->data + 20, b->data + 20, 4);
	return !memcmp(a->data + 8, b->data + 8, 32) && !memcmp(a->data + 40, b->data + 40, 4);
}

/* Whether p (same flow) continues the unit headed by h. */
static bool gro_can_append(const struct gro_pkt *h, const struct gro_pkt *p)
{
	const uint8_t *a = h->data, *b = p->data;
	size_t iphl = gro_iphl(h), seg = h->len - h->hdr_len, pl = p->len - p->hdr_len;

	if (h->hdr_len != p->hdr_len || h->count >= GRO_MAX_SEGS || pl > seg ||
	    h->total + pl > 65535)
		return false;
	if (iphl == 20) {
		/* TOS, DF and TTL must agree (ECN marks end a unit). */
		if (a[1] != b[1] || a[6] != b[6] || a[8] != b[8])
			return false;
	} else if (memcmp(a, b, 4) || a[7] != b[7]) { /* class, flow label, hop limit */
		return false;
	}
	if (h->udp)
		return true;
	if (get_be32(b + iphl + 4) != h->seq_next)
		return false;
	/* Same ack and the same options, byte for byte, as Linux requires. */
	return !memcmp(a + iphl + 8, b + iphl + 8, 4) &&
	       !memcmp(a + iphl + 20, b + iphl + 20, h->hdr_len - iphl - 20);
}

/* Patches the head of a coalesced unit and writes its virtio-net header. */
static void gro_finish(struct gro_pkt *h)
{
	uint8_t *d = h->data;
	size_t iphl = gro_iphl(h);
	struct vnet_hdr v = {0};

	if (h->count > 1) {
		uint16_t c;
		if (iphl == 20) {
			put_be16(d + 2, (uint16_t)h->total);
			ipv4_csum(d, 20);
		} else {
			put_be16(d + 4, (uint16_t)(h->total - 40));
		}
		if (h->psh)
			d[iphl + 13] |= TCP_PSH;
		if (h->udp)
			put_be16(d + iphl + 4, (uint16_t)(h->total - iphl));
		/* A partial checksum: the kernel trusts it (the AEAD did the
		 * checking), as Linux's WireGuard marks what it decrypts. */
		c = csum_fold(pseudo_sum(d, iphl == 40, h->udp ? IPPROTO_UDP_ : IPPROTO_TCP_,
					 h->total - (uint32_t)iphl));
		v.csum_offset = h->udp ? 6 : 16;
		memcpy(d + iphl + v.csum_offset, &c, 2);
		v.flags = VNET_HDR_F_NEEDS_CSUM;
		v.gso_type = h->udp	  ? VNET_HDR_GSO_UDP_L4
			     : iphl == 20 ? VNET_HDR_GSO_TCPV4
					  : VNET_HDR_GSO_TCPV6;
		v.hdr_len = h->hdr_len;
		v.gso_size = (uint16_t)(h->len - h->hdr_len);
		v.csum_start = (uint16_t)iphl;
	}
	vnet_hdr_write(d - VNET_HDR_LEN, &v);
}

static void gro_close(uint32_t *open, unsigned *n_open, unsigned k)
{
	memmove(open + k, open + k + 1, (*n_open - k - 1) * sizeof(*open));
	(*n_open)--;
}

unsigned gro_coalesce(struct gro_pkt *pkts, unsigned n, bool udp, struct iovec *iov,
		      unsigned *unit_start, unsigned *unit_iovcnt)
{
	uint32_t open[GRO_MAX_FLOWS];
	unsigned n_open = 0, units = 0, n_iov = 0;

	for (unsigned i = 0; i < n; i++) {
		struct gro_pkt *p = &pkts[i];
		bool opens;

		p->next = -1;
		p->tail = i;
		p->total = (uint32_t)p->len;
		p->count = 1;
		p->head = true;
		gro_classify(p, udp);
		if (!p->hdr_len)
			continue;
		if (!p->udp)
			p->seq_next = get_be32(p->data + gro_iphl(p) + 4) +
				      (uint32_t)(p->len - p->hdr_len);
		opens = !p->psh;
		for (unsigned k = 0; k < n_open; k++) {
			struct gro_pkt *h = &pkts[open[k]];
			if (!gro_same_flow(h, p))
				continue;
			if (gro_can_append(h, p)) {
				size_t pl = p->len - p->hdr_len;
				pkts[h->tail].next = (int32_t)i;
				h->tail = i;
				h->total += (uint32_t)pl;
				h->seq_next += (uint32_t)pl; /* TCP only */
				h->count++;
				h->psh = p->psh;
				p->head = false;
				opens = false;
				/* A short or pushed segment ends the unit. */
				if (p->psh || pl < h->len - h->hdr_len)
					gro_close(open, &n_open, k);
			} else {
				gro_close(open, &n_open, k);
			}
			break;
		}
		if (opens) {
			if (n_open == GRO_MAX_FLOWS)
				gro_close(open, &n_open, 0);
			open[n_open++] = i;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct gro_pkt *h = &pkts[i];
		if (!h->head)
			continue;
		gro_finish(h);
		unit_start[units] = n_iov;
		iov[n_iov++] = (struct iovec){.iov_base = h->data - VNET_HDR_LEN,
					      .iov_len = h->len + VNET_HDR_LEN};
		for (int32_t j = h->next; j >= 0; j = pkts[j].next)
			iov[n_iov++] = (struct iovec){.iov_base = pkts[j].data + pkts[j].hdr_len,
						      .iov_len = pkts[j].len - pkts[j].hdr_len};
		unit_iovcnt[units] = n_iov - unit_start[units];
		units++;
	}
	return units;
}
