/* SPDX-License-Identifier: MIT */
/*
 * STUN (RFC 8489) Binding messages over UDP, IPv4 and IPv6, with the RFC 5780
 * attributes that NAT behaviour discovery needs (CHANGE-REQUEST,
 * RESPONSE-ORIGIN, OTHER-ADDRESS, RESPONSE-PORT).  A pure codec: no sockets.
 *
 * Everything parsed here comes off the network and is untrusted: every length
 * is checked against the datagram, unknown comprehension-optional attributes
 * are skipped, and anything malformed is refused with -EBADMSG.
 */
#ifndef KNIT_STUN_STUN_H
#define KNIT_STUN_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_MAGIC	0x2112A442u
#define STUN_HEADER_LEN 20
#define STUN_TXID_LEN	12
/* Enough for any message this codec builds (a response with three IPv6
 * addresses, SOFTWARE and FINGERPRINT is 136 bytes). */
#define STUN_BUF_LEN 512

/* Message types (method Binding = 1, with the class bits). */
#define STUN_BINDING_REQUEST	0x0001
#define STUN_BINDING_INDICATION 0x0011
#define STUN_BINDING_SUCCESS	0x0101
#define STUN_BINDING_ERROR	0x0111

/* Attribute types. */
#define STUN_ATTR_MAPPED_ADDRESS	   0x0001
#define STUN_ATTR_CHANGE_REQUEST	   0x0003
#define STUN_ATTR_USERNAME		   0x0006
#define STUN_ATTR_MESSAGE_INTEGRITY	   0x0008
#define STUN_ATTR_ERROR_CODE		   0x0009
#define STUN_ATTR_UNKNOWN_ATTRIBUTES	   0x000A
#define STUN_ATTR_REALM			   0x0014
#define STUN_ATTR_NONCE			   0x0015
#define STUN_ATTR_MESSAGE_INTEGRITY_SHA256 0x001C
#define STUN_ATTR_USERHASH		   0x001E
#define STUN_ATTR_XOR_MAPPED_ADDRESS	   0x0020
#define STUN_ATTR_PADDING		   0x0026
#define STUN_ATTR_RESPONSE_PORT		   0x0027
#define STUN_ATTR_SOFTWARE		   0x8022
#define STUN_ATTR_FINGERPRINT		   0x8028
#define STUN_ATTR_RESPONSE_ORIGIN	   0x802B
#define STUN_ATTR_OTHER_ADDRESS		   0x802C

/* CHANGE-REQUEST flags (RFC 5780 section 7.2). */
#define STUN_CHANGE_IP	 0x04u
#define STUN_CHANGE_PORT 0x02u

#define STUN_FINGERPRINT_XOR 0x5354554eu
#define STUN_MAX_UNKNOWN     8
#define STUN_SOFTWARE_MAX    128 /* bytes, RFC 8489 section 14.14 */

struct stun_msg {
	uint16_t type; /* STUN_BINDING_* or any other method/class */
	uint8_t txid[STUN_TXID_LEN];

	/* From XOR-MAPPED-ADDRESS if present, else from MAPPED-ADDRESS. */
	bool has_mapped;
	bool mapped_is_xor;
	struct sockaddr_storage mapped;

	bool has_change; /* CHANGE-REQUEST present (flags may be 0) */
	uint32_t change_flags;
	bool has_origin; /* RESPONSE-ORIGIN */
	struct sockaddr_storage origin;
	bool has_other; /* OTHER-ADDRESS */
	struct sockaddr_storage other;
	bool has_response_port;
	uint16_t response_port; /* host order */

	int error_code;	    /* ERROR-CODE as 300..699, or 0 */
	bool has_integrity; /* MESSAGE-INTEGRITY(-SHA256) seen, not checked */
	bool has_fingerprint;
	bool fingerprint_ok;		      /* FINGERPRINT present and valid */
	char software[STUN_SOFTWARE_MAX + 1]; /* "" when absent; NUL-free copy */

	/* Comprehension-required attributes (type < 0x8000) this codec does not
	 * know.  RFC 8489: a request with any gets a 420 error, a response with
	 * any is discarded.  Only the first STUN_MAX_UNKNOWN are kept; n_unknown
	 * counts them all. */
	size_t n_unknown;
	uint16_t unknown[STUN_MAX_UNKNOWN];
};

/*
 * Cheap demultiplexing check, for a socket shared with WireGuard and disco:
 * at least a header, the two top bits zero, the magic cookie, and a length
 * that is a multiple of 4 and equals the rest of the datagram.
 */
bool stun_is_message(const uint8_t *p, size_t len);

/*
 * A Binding request with CHANGE-REQUEST when change_flags (STUN_CHANGE_*) is
 * not 0, and FINGERPRINT.  Returns the length written or -ENOBUFS / -EINVAL.
 */
int stun_build_binding_request(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
			       uint32_t change_flags);

/*
 * A Binding request with RESPONSE-PORT (RFC 5780 7.5): the server answers to
 * the request's source address at response_port (not 0), which is how a
 * node learns whether another of its mappings is still open.
 */
int stun_build_binding_request_rport(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
				     uint16_t response_port);

/*
 * A Binding success response: XOR-MAPPED-ADDRESS = mapped (the request's
 * source), RESPONSE-ORIGIN = origin and OTHER-ADDRESS = other when not NULL,
 * SOFTWARE and FINGERPRINT.  IPv4-mapped IPv6 addresses (from a dual-stack
 * socket) are written as IPv4.  Returns the length or -ENOBUFS /
 * -EAFNOSUPPORT / -EINVAL.
 */
int stun_build_binding_response(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
				const struct sockaddr_storage *mapped,
				const struct sockaddr_storage *origin,
				const struct sockaddr_storage *other);

/*
 * A Binding error response: ERROR-CODE (code 300..699, reason of at most 127
 * bytes, may be NULL), UNKNOWN-ATTRIBUTES when n_unknown > 0 (for 420), and
 * FINGERPRINT.  Returns the length or -ENOBUFS / -EINVAL.
 */
int stun_build_error_response(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_LEN],
			      int code, const char *reason, const uint16_t *unknown,
			      size_t n_unknown);

/*
 * Parses one datagram.  Returns 0 and fills *out, or -EBADMSG when it is not
 * STUN or is malformed: bad header, an attribute running past the end, an
 * address attribute of the wrong size, FINGERPRINT not last or not matching.
 * Only the first of repeated attributes counts; attributes after
 * MESSAGE-INTEGRITY other than FINGERPRINT are ignored (RFC 8489 14.5).
 */
int stun_parse(const uint8_t *p, size_t len, struct stun_msg *out);

/* A fresh random transaction id (crypto-quality randomness). */
void stun_txid_new(uint8_t txid[STUN_TXID_LEN]);

/* CRC-32 (ISO-HDLC, as zlib's), what FINGERPRINT is made of. */
uint32_t stun_crc32(const uint8_t *p, size_t len);

#endif
