// SPDX-License-Identifier: MIT
/* PCP (RFC 6887) ANNOUNCE and MAP messages: a bounded codec. */
#include <errno.h>
#include <string.h>

#include "portmap/pcp.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void pcp_addr_from_v4(struct in6_addr *out, struct in_addr v4)
{
	memset(out, 0, sizeof(*out));
	out->s6_addr[10] = 0xff;
	out->s6_addr[11] = 0xff;
	memcpy(&out->s6_addr[12], &v4, 4);
}

bool pcp_addr_to_v4(const struct in6_addr *a, struct in_addr *out)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(a->s6_addr, prefix, sizeof(prefix)) != 0)
		return false;
	memcpy(out, &a->s6_addr[12], 4);
	return true;
}

/* The common request header (section 7.1). */
static void build_header(uint8_t *buf, uint8_t opcode, uint32_t lifetime,
			 const struct in6_addr *client)
{
	memset(buf, 0, PCP_HEADER_LEN);
	buf[0] = PCP_VERSION;
	buf[1] = opcode & 0x7f;
	put32(buf + 4, lifetime);
	memcpy(buf + 8, client->s6_addr, 16);
}

ssize_t pcp_build_announce(uint8_t *buf, size_t len, const struct in6_addr *client)
{
	if (len < PCP_HEADER_LEN)
		return -ENOSPC;
	build_header(buf, PCP_OP_ANNOUNCE, 0, client);
	return PCP_HEADER_LEN;
}

ssize_t pcp_build_map(uint8_t *buf, size_t len, const struct in6_addr *client, uint32_t lifetime,
		      const struct pcp_map *map)
{
	uint8_t *p = buf + PCP_HEADER_LEN;

	if (len < PCP_HEADER_LEN + PCP_MAP_LEN)
		return -ENOSPC;
	build_header(buf, PCP_OP_MAP, lifetime, client);
	memset(p, 0, PCP_MAP_LEN);
	memcpy(p, map->nonce, PCP_NONCE_LEN);
	p[12] = map->protocol;
	put16(p + 16, map->internal_port);
	put16(p + 18, map->external_port);
	memcpy(p + 20, map->external_addr.s6_addr, 16);
	return PCP_HEADER_LEN + PCP_MAP_LEN;
}

/* Options (section 7.3): code, reserved, length, data padded to 4 bytes. */
static int parse_options(const uint8_t *p, size_t len, unsigned *count)
{
	*count = 0;
	while (len > 0) {
		size_t body, padded;

		if (len < 4)
			return -EBADMSG;
		body = get16(p + 2);
		padded = (body + 3) & ~(size_t)3;
		if (padded > len - 4)
			return -EBADMSG;
		p += 4 + padded;
		len -= 4 + padded;
		(*count)++;
	}
	return 0;
}

int pcp_parse_response(const uint8_t *buf, size_t len, struct pcp_response *out)
{
	size_t pos = PCP_HEADER_LEN;

	memset(out, 0, sizeof(*out));
	if (len < 4 || len > PCP_MAX_MSG || !(buf[1] & PCP_RESPONSE_BIT))
		return -EBADMSG;
	out->version = buf[0];
	if (buf[0] != PCP_VERSION)
		return -EPROTONOSUPPORT; /* NAT-PMP (0) or a PCP we do not speak */
	if (len < PCP_HEADER_LEN || len % 4 != 0)
		return -EBADMSG;
	out->opcode = buf[1] & 0x7f;
	out->result = buf[3];
	out->lifetime = get32(buf + 4);
	out->epoch = get32(buf + 8);
	if (out->opcode == PCP_OP_MAP && len >= PCP_HEADER_LEN + PCP_MAP_LEN) {
		const uint8_t *p = buf + PCP_HEADER_LEN;

		memcpy(out->map.nonce, p, PCP_NONCE_LEN);
		out->map.protocol = p[12];
		out->map.internal_port = get16(p + 16);
		out->map.external_port = get16(p + 18);
		memcpy(out->map.external_addr.s6_addr, p + 20, 16);
		out->has_map = true;
		pos += PCP_MAP_LEN;
	} else if (out->opcode == PCP_OP_MAP && out->result == PCP_SUCCESS) {
		return -EBADMSG; /* a successful MAP must carry its payload */
	}
	/* An error response may echo a payload we do not know; only MAP's
	 * and ANNOUNCE's (none) are followed by options we can walk. */
	if (out->opcode != PCP_OP_MAP && out->opcode != PCP_OP_ANNOUNCE)
		return 0;
	if (out->opcode == PCP_OP_MAP && !out->has_map)
		return 0;
	return parse_options(buf + pos, len - pos, &out->n_options);
}

const char *pcp_result_name(uint8_t result)
{
	static const char *const names[] = {
		"SUCCESS",	     "UNSUPP_VERSION",	       "NOT_AUTHORIZED",
		"MALFORMED_REQUEST", "UNSUPP_OPCODE",	       "UNSUPP_OPTION",
		"MALFORMED_OPTION",  "NETWORK_FAILURE",	       "NO_RESOURCES",
		"UNSUPP_PROTOCOL",   "USER_EX_QUOTA",	       "CANNOT_PROVIDE_EXTERNAL",
		"ADDRESS_MISMATCH",  "EXCESSIVE_REMOTE_PEERS",
	};

	return result < sizeof(names) / sizeof(names[0]) ? names[result] : "unknown";
}
