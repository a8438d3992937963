// SPDX-License-Identifier: MIT
/* The userspace API's request framing, then each set body's parser: any
 * bytes on the socket, as a connection would buffer them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg/uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1), err[WGCONFIG_ERR_LEN];
	size_t pos = 0, req_len, body_len;
	const char *body;
	enum uapi_op op;

	memcpy(text, data, size);
	while ((op = uapi_next_request(text + pos, size - pos, &req_len, &body, &body_len)) !=
	       UAPI_INCOMPLETE) {
		if (req_len < 2 || req_len > size - pos)
			abort();
		if (op == UAPI_SET) {
			struct wg_config c;
			if (body < text + pos || body + body_len > text + pos + req_len)
				abort();
			wg_config_init(&c);
			uapi_parse_set(&c, body, body_len, err);
			wg_config_free(&c);
		}
		pos += req_len;
	}
	free(text);
	return 0;
}
