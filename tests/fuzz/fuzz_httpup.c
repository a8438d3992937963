// SPDX-License-Identifier: MIT
/* HTTP Upgrade heads, request and response, and URLs: any bytes off a TCP
 * connection or a command line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[256], up[64], host[256];
	uint16_t port;
	int status, n;
	char *url;

	n = httpup_parse_request(data, size, path, sizeof(path), up, sizeof(up));
	if (n > 0 && ((size_t)n > size || n > HTTPUP_MAX_HEAD || strlen(path) >= sizeof(path) ||
		      path[0] != '/' || !up[0]))
		abort();
	n = httpup_parse_response(data, size, &status, up, sizeof(up));
	if (n > 0 && ((size_t)n > size || n > HTTPUP_MAX_HEAD || status < 100 || status > 599))
		abort();
	url = malloc(size + 1);
	memcpy(url, data, size);
	url[size] = '\0';
	if (httpup_parse_url(url, host, sizeof(host), &port) == 0 && (!host[0] || !port))
		abort();
	free(url);
	return 0;
}
