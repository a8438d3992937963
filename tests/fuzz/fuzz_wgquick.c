// SPDX-License-Identifier: MIT
/* wg-quick files: any bytes, parsed and freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg/wgconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[WGCONFIG_ERR_LEN];
	struct wg_config c;
	/* Exactly size bytes, no terminator: an overread is caught. */
	char *text = malloc(size ? size : 1);

	memcpy(text, data, size);
	wg_config_init(&c);
	c.no_dns = true;
	if (wgquick_parse(&c, text, size, "fuzz.conf", err) < 0 && !strchr(err, ':'))
		abort(); /* every error names its source */
	wg_config_free(&c);
	free(text);
	return 0;
}
