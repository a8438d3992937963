// SPDX-License-Identifier: MIT
/* knit-control: the coordination server (`serve`) and its admin commands. */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "knit-control/admin.h"
#include "knit-control/server.h"
#include "lib/log.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: knit-control COMMAND [ARGS...] [--state-dir DIR]\n"
		   "\n"
		   "  serve --listen ADDR:PORT   run the coordination server (see serve --help)\n");
	admin_usage(f);
	fprintf(f,
		"\n"
		"Every command takes --state-dir DIR (default %s) and --help;\n"
		"every listing takes --json.  Exit status: 0 done, 1 failed, 2 bad usage.\n",
		CONTROL_DEFAULT_STATE_DIR);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return ADMIN_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return ADMIN_OK;
	}
	if (crypto_init() < 0) {
		fprintf(stderr, "knit-control: libgcrypt is unusable\n");
		return ADMIN_ERROR;
	}
	if (!strcmp(argv[1], "serve"))
		return serve_main(argc - 1, argv + 1);
	/* A one-shot command reports its own errors; only warnings and errors
	 * from the layers below are worth a log line. */
	log_set_level(LOG_LEVEL_WARN);
	return admin_run(argc - 1, argv + 1, stdout, stderr);
}
