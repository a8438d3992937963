// SPDX-License-Identifier: MIT
/*
 * What port mapping reads off the network or the system: a PCP response
 * (any datagram from the gateway's port 5351), an SSDP answer and the URL
 * it names, and /proc/net/route's text.  Every byte string goes to all
 * three parsers; a parsed MAP payload must survive a rebuild.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portmap/gateway.h"
#include "portmap/pcp.h"
#include "portmap/upnp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcp_response r;
	char url[UPNP_URL_MAX];
	struct in_addr gw = {.s_addr = htonl(0x0a0001fe)};
	uint8_t buf[PCP_HEADER_LEN + PCP_MAP_LEN];
	char *text;

	if (pcp_parse_response(data, size, &r) == 0) {
		if (size < PCP_HEADER_LEN || size > PCP_MAX_MSG || size % 4)
			abort(); /* accepted something the RFC forbids */
		if (r.has_map) {
			struct in6_addr client;
			struct pcp_response back;

			pcp_addr_from_v4(&client, gw);
			if (pcp_build_map(buf, sizeof(buf), &client, r.lifetime, &r.map) !=
			    sizeof(buf))
				abort();
			/* A request is never taken for a response. */
			if (pcp_parse_response(buf, sizeof(buf), &back) != -EBADMSG)
				abort();
		}
	}

	if (ssdp_parse_location((const char *)data, size, url, sizeof(url)) == 0) {
		if (strlen(url) >= sizeof(url))
			abort();
		upnp_url_on_host(url, gw);
	}

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	upnp_url_on_host(text, gw);
	gateway_parse_routes(text, size, &gw);
	free(text);
	return 0;
}
