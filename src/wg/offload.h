/* SPDX-License-Identifier: MIT */
/*
 * Offloads done in userspace, as pure functions over packet bytes:
 *  - the virtio-net header a TUN with IFF_VNET_HDR puts before each packet;
 *  - completing a partial (CHECKSUM_PARTIAL) checksum;
 *  - splitting a TSO/USO super-packet from the TUN into MTU-sized segments;
 *  - coalescing consecutive TCP segments of one flow (GRO) into one
 *    super-packet to write to the TUN.
 * Every packet here is untrusted (the kernel's super-packets are ours, but
 * the coalesced ones come from peers): lengths are checked before use and a
 * packet that does not parse is refused (split) or left alone (coalesce).
 */
#ifndef KNIT_WG_OFFLOAD_H
#define KNIT_WG_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* struct virtio_net_hdr, in host byte order (TUN's legacy default). */
#define VNET_HDR_LEN	      10
#define VNET_HDR_F_NEEDS_CSUM 1
#define VNET_HDR_GSO_NONE     0
#define VNET_HDR_GSO_TCPV4    1
#define VNET_HDR_GSO_UDP      3 /* UFO: not supported */
#define VNET_HDR_GSO_TCPV6    4
#define VNET_HDR_GSO_UDP_L4   5
#define VNET_HDR_GSO_ECN      0x80

struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

void vnet_hdr_read(const uint8_t p[VNET_HDR_LEN], struct vnet_hdr *h);
void vnet_hdr_write(uint8_t p[VNET_HDR_LEN], const struct vnet_hdr *h);

/* The Internet checksum of len bytes added to sum (not folded). */
uint64_t csum_partial(const void *data, size_t len, uint64_t sum);
/* Folds a sum to 16 bits (not inverted), in memory byte order. */
uint16_t csum_fold(uint64_t sum);

/*
 * Completes a partial checksum in place: the 16 bits at csum_start +
 * csum_offset hold the pseudo-header sum; the sum of everything from
 * csum_start to the end goes there.  Returns 0 or -EINVAL when the offsets
 * do not fit the packet.
 */
int offload_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset);

/* The most segments one super-packet may split into. */
#define OFFLOAD_MAX_SEGS 256

/*
 * Splits the packet pkt (len bytes, as read after the virtio-net header h)
 * into segments: segment i is written at out[i] (at most out_cap bytes
 * each), its length in out_lens[i].  TCP: IP lengths, IPv4 ids and header
 * checksums, sequence numbers, FIN/PSH on the last segment only, CWR on the
 * first only, full TCP checksums.  UDP (USO): UDP lengths and checksums.
 * Without GSO the packet is copied (its checksum completed if partial).
 * Returns the number of segments, or -EINVAL (malformed), -E2BIG (more than
 * max_out segments, or a segment longer than out_cap), -EPROTONOSUPPORT
 * (UFO, IPv6 extension headers).
 */
int offload_split(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, uint8_t *const *out,
		  size_t out_cap, size_t *out_lens, unsigned max_out);
/* How many segments offload_split would make (>= 1), or -errno as it. */
int offload_split_count(const struct vnet_hdr *h, const uint8_t *pkt, size_t len);

/*
 * GRO.  pkts[i].data has VNET_HDR_LEN writable bytes before it, and
 * pkts[i].len is the IP packet's own length (no padding).  gro_coalesce
 * groups the packets into units, each to be written to the TUN with one
 * writev: the first packet with a virtio-net header before it (its IP and
 * TCP headers patched in place when others were appended: lengths, IPv4
 * header checksum, PSH, the TCP checksum made partial), then the payloads
 * of the others.  Only TCP segments that Linux's own GRO would merge are
 * merged: same flow and ack, consecutive sequence numbers, same IP and TCP
 * options, ACK (and a final PSH) only, full-sized but for the last.  Order
 * is kept within a flow.  With udp (a TUN that took USO), UDP datagrams of
 * one flow and one size (the last may be shorter) are merged too, into a
 * GSO_UDP_L4 packet the kernel splits again; their IPv4 ids are not kept.
 * iov, unit_start and unit_iovcnt hold n entries
 * each.  Returns the number of units; unit k is unit_iovcnt[k] entries of
 * iov from unit_start[k].
 */
#define GRO_MAX_FLOWS 8	 /* open coalescing candidates at once */
#define GRO_MAX_SEGS  64 /* segments in one coalesced packet */

struct gro_pkt {
	uint8_t *data;
	size_t len;
	/* Scratch for gro_coalesce. */
	int32_t next;	/* the unit's next packet, -1 at its end */
	uint32_t tail;	/* the unit's last packet (head only) */
	uint32_t total; /* the unit's IP length when coalesced (head only) */
	uint32_t seq_next;
	uint16_t count;
	uint16_t hdr_len; /* IP + TCP headers; 0 when not a candidate */
	bool head;
	bool psh;
	bool udp;
};

unsigned gro_coalesce(struct gro_pkt *pkts, unsigned n, bool udp, struct iovec *iov,
		      unsigned *unit_start, unsigned *unit_iovcnt);

#endif
