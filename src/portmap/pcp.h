/* SPDX-License-Identifier: MIT */
/*
 * PCP (RFC 6887) requests and responses for the two opcodes a client needs:
 * ANNOUNCE (does the gateway speak PCP at all?) and MAP (an inbound mapping
 * of one UDP port).  A pure codec: no sockets.
 *
 * Responses come off the network and are untrusted: the length must be a
 * multiple of 4 and at most PCP_MAX_MSG, the opcode payload must fit, and
 * every option header and body is checked against the datagram.  Anything
 * else is refused with -EBADMSG.
 */
#ifndef KNIT_PORTMAP_PCP_H
#define KNIT_PORTMAP_PCP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCP_SERVER_PORT	 5351
#define PCP_VERSION	 2
#define PCP_MAX_MSG	 1100 /* RFC 6887 section 7 */
#define PCP_HEADER_LEN	 24
#define PCP_MAP_LEN	 36 /* the MAP opcode's payload */
#define PCP_NONCE_LEN	 12
#define PCP_RESPONSE_BIT 0x80

#define PCP_OP_ANNOUNCE 0
#define PCP_OP_MAP	1

/* Result codes (RFC 6887 section 7.4). */
#define PCP_SUCCESS		    0
#define PCP_UNSUPP_VERSION	    1
#define PCP_NOT_AUTHORIZED	    2
#define PCP_MALFORMED_REQUEST	    3
#define PCP_UNSUPP_OPCODE	    4
#define PCP_UNSUPP_OPTION	    5
#define PCP_MALFORMED_OPTION	    6
#define PCP_NETWORK_FAILURE	    7
#define PCP_NO_RESOURCES	    8
#define PCP_UNSUPP_PROTOCOL	    9
#define PCP_USER_EX_QUOTA	    10
#define PCP_CANNOT_PROVIDE_EXTERNAL 11
#define PCP_ADDRESS_MISMATCH	    12
#define PCP_EXCESSIVE_REMOTE_PEERS  13

/* The MAP payload, in requests and responses. */
struct pcp_map {
	uint8_t nonce[PCP_NONCE_LEN];
	uint8_t protocol; /* IPPROTO_UDP */
	uint16_t internal_port;
	uint16_t external_port;	       /* suggested (request) or assigned (response) */
	struct in6_addr external_addr; /* IPv4 as ::ffff:a.b.c.d */
};

struct pcp_response {
	uint8_t version;
	uint8_t opcode; /* without the response bit */
	uint8_t result; /* PCP_SUCCESS or an error */
	uint32_t lifetime;
	uint32_t epoch;
	bool has_map; /* opcode MAP: map holds the payload */
	struct pcp_map map;
	unsigned n_options; /* options seen (their contents are not used) */
};

/* IPv4 address <-> IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
void pcp_addr_from_v4(struct in6_addr *out, struct in_addr v4);
bool pcp_addr_to_v4(const struct in6_addr *a, struct in_addr *out);

/*
 * Build a request into buf (at least PCP_HEADER_LEN + PCP_MAP_LEN bytes for
 * MAP, PCP_HEADER_LEN for ANNOUNCE).  client is the address the request is
 * sent from.  Returns the length, or -ENOSPC when buf is too small.
 */
ssize_t pcp_build_announce(uint8_t *buf, size_t len, const struct in6_addr *client);
ssize_t pcp_build_map(uint8_t *buf, size_t len, const struct in6_addr *client, uint32_t lifetime,
		      const struct pcp_map *map);

/*
 * Parse a response.  Returns 0 (out filled; out->result may be an error),
 * -EPROTONOSUPPORT when the server answered with another version (a NAT-PMP
 * only server answers version 0; out->version says which), or -EBADMSG for
 * anything malformed, too short, too long, or a request.
 */
int pcp_parse_response(const uint8_t *buf, size_t len, struct pcp_response *out);

/* "SUCCESS", "NOT_AUTHORIZED", ..., or "unknown". */
const char *pcp_result_name(uint8_t result);

#endif
