// SPDX-License-Identifier: MIT
/* STUN Binding codec (see stun.h). */
#include "stun/stun.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "crypto/crypto.h"

#define ATTR_HDR_LEN	     4
#define FINGERPRINT_ATTR_LEN 8
#define FAMILY_IPV4	     0x01
#define FAMILY_IPV6	     0x02
#define SOFTWARE_NAME	     "knit"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Table-driven reflected CRC-32, the table built once; not worth another
 * library for a 4-byte checksum per packet. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t stun_crc32(const uint8_t *p, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;

	pthread_once(&crc_once, crc_table_init);
	for (size_t i = 0; i < len; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

bool stun_is_message(const uint8_t *p, size_t len)
{
	size_t body;

	if (!p || len < STUN_HEADER_LEN || (p[0] & 0xC0) != 0)
		return false;
	body = get16(p + 2);
	return (body & 3) == 0 && body == len - STUN_HEADER_LEN && get32(p + 4) == STUN_MAGIC;
}

void stun_txid_new(uint8_t txid[STUN_TXID_LEN])
{
	random_bytes(txid, STUN_TXID_LEN);
}

/* ---- building ---------------------------------------------------------- */

struct builder {
	uint8_t *out;
	size_t size;
	size_t len;
	int err;
};

static void b_start(struct builder *b, uint8_t *out, size_t size, uint16_t type,
		    const uint8_t txid[STUN_TXID_LEN])
{
	b->out = out;
	b->size = size;
	b->len = 0;
	b->err = 0;
	if (!out || !txid) {
		b->err = -EINVAL;
		return;
	}
	if (size < STUN_HEADER_LEN) {
		b->err = -ENOBUFS;
		return;
	}
	put16(out, type);
	put16(out + 2, 0);
	put32(out + 4, STUN_MAGIC);
	memcpy(out + 8, txid, STUN_TXID_LEN);
	b->len = STUN_HEADER_LEN;
}

/* Reserves an attribute of value length vlen (padded to 4, zero padding) and
 * returns a pointer to its value, or NULL with b->err set. */
static uint8_t *b_attr(struct builder *b, uint16_t type, size_t vlen)
{
	size_t padded = (vlen + 3) & ~(size_t)3;
	uint8_t *a;

	if (b->err)
		return NULL;
	if (vlen > 0xFFFF || b->size - b->len < ATTR_HDR_LEN + padded ||
	    b->len - STUN_HEADER_LEN + ATTR_HDR_LEN + padded > 0xFFFF) {
		b->err = -ENOBUFS;
		return NULL;
	}
	a = b->out + b->len;
	put16(a, type);
	put16(a + 2, (uint16_t)vlen);
	memset(a + ATTR_HDR_LEN, 0, padded);
	b->len += ATTR_HDR_LEN + padded;
	put16(b->out + 2, (uint16_t)(b->len - STUN_HEADER_LEN));
	return a + ATTR_HDR_LEN;
}

/*
 * An address attribute.  With xor, the port is XORed with the cookie's top
 * half and the address with the cookie (IPv4) or cookie || txid (IPv6).
 */
static void b_addr(struct builder *b, uint16_t type, const struct sockaddr_storage *ss, bool xor)
{
	uint8_t key[16], addr[16], *v;
	size_t alen;
	uint16_t port;
	int family;

	if (b->err)
		return;
	if (!ss) {
		b->err = -EINVAL;
		return;
	}
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		memcpy(addr, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
		family = FAMILY_IPV4;
		alen = 4;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(addr, in6->sin6_addr.s6_addr + 12, 4);
			family = FAMILY_IPV4;
			alen = 4;
		} else {
			memcpy(addr, &in6->sin6_addr, 16);
			family = FAMILY_IPV6;
			alen = 16;
		}
	} else {
		b->err = -EAFNOSUPPORT;
		return;
	}
	v = b_attr(b, type, 4 + alen);
	if (!v)
		return;
	if (xor) {
		put32(key, STUN_MAGIC);
		memcpy(key + 4, b->out + 8, STUN_TXID_LEN);
		port ^= (uint16_t)(STUN_MAGIC >> 16);
		for (size_t i = 0; i < alen; i++)
			addr[i] ^= key[i];
	}
	v[0] = 0;
	v[1] = (uint8_t)family;
	put16(v + 2, port);
	memcpy(v + 4, addr, alen);
}

static void b_software(struct builder *b)
{
	uint8_t *v = b_attr(b, STUN_ATTR_SOFTWARE, sizeof(SOFTWARE_NAME) - 1);

	if (v)
		memcpy(v, SOFTWARE_NAME, sizeof(SOFTWARE_NAME) - 1);
}

/* FINGERPRINT last: the CRC covers the header with the length that already
 * counts the FINGERPRINT attribute itself. */
static int b_finish(struct builder *b)
{
	size_t before = b->len;
	uint8_t *v = b_attr(b, STUN_ATTR_FINGERPRINT, 4);

	if (!v)
		return b->err;
	put32(v, stun_crc32(b->out, before) ^ STUN_FINGERPRINT_XOR);
	return (int)b->len;
}

int stun_build_binding_request(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
			       uint32_t change_flags)
{
	struct builder b;
	uint8_t *v;

	b_start(&b, out, size, STUN_BINDING_REQUEST, txid);
	if (change_flags & ~(STUN_CHANGE_IP | STUN_CHANGE_PORT))
		return -EINVAL;
	if (change_flags) {
		v = b_attr(&b, STUN_ATTR_CHANGE_REQUEST, 4);
		if (v)
			put32(v, change_flags);
	}
	return b_finish(&b);
}

int stun_build_binding_request_rport(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
				     uint16_t response_port)
{
	struct builder b;
	uint8_t *v;

	if (!response_port)
		return -EINVAL;
	b_start(&b, out, size, STUN_BINDING_REQUEST, txid);
	/* RFC 5780 7.5: the port, then two bytes of padding (zero). */
	v = b_attr(&b, STUN_ATTR_RESPONSE_PORT, 4);
	if (v)
		put32(v, (uint32_t)response_port << 16);
	return b_finish(&b);
}

int stun_build_binding_response(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
				const struct sockaddr_storage *mapped,
				const struct sockaddr_storage *origin,
				const struct sockaddr_storage *other)
{
	struct builder b;

	b_start(&b, out, size, STUN_BINDING_SUCCESS, txid);
	b_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, mapped, true);
	if (origin)
		b_addr(&b, STUN_ATTR_RESPONSE_ORIGIN, origin, false);
	if (other)
		b_addr(&b, STUN_ATTR_OTHER_ADDRESS, other, false);
	b_software(&b);
	return b_finish(&b);
}

int stun_build_error_response(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
			      int code, const char *reason, const uint16_t *unknown,
			      size_t n_unknown)
{
	size_t rlen = reason ? strnlen(reason, 128) : 0;
	struct builder b;
	uint8_t *v;

	if (code < 300 || code > 699 || rlen > 127 || (n_unknown && !unknown) || n_unknown > 64)
		return -EINVAL;
	b_start(&b, out, size, STUN_BINDING_ERROR, txid);
	v = b_attr(&b, STUN_ATTR_ERROR_CODE, 4 + rlen);
	if (v) {
		v[2] = (uint8_t)(code / 100);
		v[3] = (uint8_t)(code % 100);
		if (rlen)
			memcpy(v + 4, reason, rlen);
	}
	if (n_unknown) {
		v = b_attr(&b, STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n_unknown);
		for (size_t i = 0; v && i < n_unknown; i++)
			put16(v + 2 * i, unknown[i]);
	}
	return b_finish(&b);
}

/* ---- parsing ----------------------------------------------------------- */

static int parse_addr(const uint8_t *v, size_t vlen, const uint8_t *hdr, bool xor,
		      struct sockaddr_storage *out)
{
	uint8_t key[16], addr[16];
	uint16_t port;
	size_t alen;

	if (vlen < 4)
		return -EBADMSG;
	if (v[1] == FAMILY_IPV4)
		alen = 4;
	else if (v[1] == FAMILY_IPV6)
		alen = 16;
	else
		return -EBADMSG;
	if (vlen != 4 + alen)
		return -EBADMSG;
	port = get16(v + 2);
	memcpy(addr, v + 4, alen);
	if (xor) {
		/* hdr + 4 is the cookie followed by the transaction id. */
		memcpy(key, hdr + 4, 16);
		port ^= (uint16_t)(STUN_MAGIC >> 16);
		for (size_t i = 0; i < alen; i++)
			addr[i] ^= key[i];
	}
	memset(out, 0, sizeof(*out));
	if (alen == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, addr, 16);
	}
	return 0;
}

/* What the attribute loop remembers besides *out. */
struct parse_state {
	bool seen_xor, seen_mapped, seen_change, seen_origin, seen_other, seen_rport;
	bool seen_error, seen_software;
	struct sockaddr_storage plain_mapped;
};

static int parse_error_code(const uint8_t *v, size_t vlen, int *code)
{
	int cls, num;

	if (vlen < 4)
		return -EBADMSG;
	cls = v[2] & 0x07;
	num = v[3];
	if (cls < 3 || cls > 6 || num > 99)
		return -EBADMSG;
	*code = cls * 100 + num;
	return 0;
}

static void copy_software(const uint8_t *v, size_t vlen, char *dst)
{
	size_t n = vlen < STUN_SOFTWARE_MAX ? vlen : STUN_SOFTWARE_MAX, j = 0;

	/* Printable ASCII only: it may end up in a log line. */
	for (size_t i = 0; i < n; i++)
		dst[j++] = v[i] >= 0x20 && v[i] < 0x7F ? (char)v[i] : '?';
	dst[j] = '\0';
}

static int parse_attr(const uint8_t *hdr, uint16_t type, const uint8_t *v, size_t vlen,
		      struct parse_state *st, struct stun_msg *out)
{
	switch (type) {
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
		if (st->seen_xor)
			return 0;
		st->seen_xor = true;
		return parse_addr(v, vlen, hdr, true, &out->mapped);
	case STUN_ATTR_MAPPED_ADDRESS:
		if (st->seen_mapped)
			return 0;
		st->seen_mapped = true;
		return parse_addr(v, vlen, hdr, false, &st->plain_mapped);
	case STUN_ATTR_RESPONSE_ORIGIN:
		if (st->seen_origin)
			return 0;
		st->seen_origin = out->has_origin = true;
		return parse_addr(v, vlen, hdr, false, &out->origin);
	case STUN_ATTR_OTHER_ADDRESS:
		if (st->seen_other)
			return 0;
		st->seen_other = out->has_other = true;
		return parse_addr(v, vlen, hdr, false, &out->other);
	case STUN_ATTR_CHANGE_REQUEST:
		if (st->seen_change)
			return 0;
		if (vlen != 4)
			return -EBADMSG;
		st->seen_change = out->has_change = true;
		out->change_flags = get32(v) & (STUN_CHANGE_IP | STUN_CHANGE_PORT);
		return 0;
	case STUN_ATTR_RESPONSE_PORT:
		if (st->seen_rport)
			return 0;
		if (vlen != 4)
			return -EBADMSG;
		st->seen_rport = out->has_response_port = true;
		out->response_port = get16(v);
		return 0;
	case STUN_ATTR_ERROR_CODE:
		if (st->seen_error)
			return 0;
		st->seen_error = true;
		return parse_error_code(v, vlen, &out->error_code);
	case STUN_ATTR_SOFTWARE:
		if (!st->seen_software)
			copy_software(v, vlen, out->software);
		st->seen_software = true;
		return 0;
	case STUN_ATTR_MESSAGE_INTEGRITY:
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
		out->has_integrity = true;
		return 0;
	/* Known, carried but not interpreted by a Binding-only codec. */
	case STUN_ATTR_USERNAME:
	case STUN_ATTR_REALM:
	case STUN_ATTR_NONCE:
	case STUN_ATTR_USERHASH:
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
	case STUN_ATTR_PADDING:
		return 0;
	default:
		if (type < 0x8000) {
			if (out->n_unknown < STUN_MAX_UNKNOWN)
				out->unknown[out->n_unknown] = type;
			out->n_unknown++;
		}
		return 0;
	}
}

static int parse_attrs(const uint8_t *p, size_t len, struct stun_msg *out)
{
	struct parse_state st = {0};
	size_t off = STUN_HEADER_LEN;
	bool after_integrity = false;
	int ret;

	out->type = get16(p);
	memcpy(out->txid, p + 8, STUN_TXID_LEN);

	while (off < len) {
		uint16_t type, vlen;
		size_t padded;

		if (len - off < ATTR_HDR_LEN)
			return -EBADMSG;
		type = get16(p + off);
		vlen = get16(p + off + 2);
		padded = ((size_t)vlen + 3) & ~(size_t)3;
		if (len - off - ATTR_HDR_LEN < padded)
			return -EBADMSG;
		if (type == STUN_ATTR_FINGERPRINT) {
			if (vlen != 4 || off + FINGERPRINT_ATTR_LEN != len)
				return -EBADMSG;
			if (get32(p + off + 4) != (stun_crc32(p, off) ^ STUN_FINGERPRINT_XOR))
				return -EBADMSG;
			out->has_fingerprint = out->fingerprint_ok = true;
		} else if (!after_integrity || type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256) {
			ret = parse_attr(p, type, p + off + ATTR_HDR_LEN, vlen, &st, out);
			if (ret < 0)
				return ret;
			if (type == STUN_ATTR_MESSAGE_INTEGRITY ||
			    type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
				after_integrity = true;
		}
		off += ATTR_HDR_LEN + padded;
	}

	if (st.seen_xor) {
		out->has_mapped = out->mapped_is_xor = true;
	} else if (st.seen_mapped) {
		out->has_mapped = true;
		out->mapped = st.plain_mapped;
	}
	return 0;
}

int stun_parse(const uint8_t *p, size_t len, struct stun_msg *out)
{
	int ret;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!stun_is_message(p, len))
		return -EBADMSG;
	ret = parse_attrs(p, len, out);
	if (ret < 0) /* nothing half-parsed for a careless caller */
		memset(out, 0, sizeof(*out));
	return ret;
}
