// SPDX-License-Identifier: MIT
/* The userspace API's set=1 bodies: any bytes, parsed and freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg/wgconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[WGCONFIG_ERR_LEN];
	struct wg_config c;
	char *text = malloc(size ? size : 1);

	memcpy(text, data, size);
	wg_config_init(&c);
	if (uapi_parse_set(&c, text, size, err) < 0 && strncmp(err, "line ", 5) &&
	    strncmp(err, "request", 7))
		abort(); /* every error names its line */
	wg_config_free(&c);
	free(text);
	return 0;
}
