// SPDX-License-Identifier: MIT
/* knit: the command line of knit.  It drives knitd over its local socket. */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "knit/commands.h"
#include "knitd/api.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: knit [--socket PATH] COMMAND [options]\n"
		   "\n"
		   "  up       join an overlay: --control URL --control-key KEY\n"
		   "           [--auth-key KEY] [--hostname NAME]\n"
		   "  down     leave it (the node stays registered)\n"
		   "  logout   leave it and forget this node's key\n"
		   "  ip       this node's overlay addresses [-4 | -6]\n"
		   "  status   this node and its peers\n"
		   "  ping     ping a peer, showing the path each pong took\n"
		   "  netcheck what the network in front of this node does (NAT type)\n"
		   "  genkey   print a new private key (base64) to standard output\n"
		   "  pubkey   read a private key from standard input, print its public key\n"
		   "  genpsk   print a new preshared key\n"
		   "  help     this help\n"
		   "\n"
		   "Every command that talks to knitd takes --json.  The socket defaults to\n"
		   "" API_DEFAULT_SOCKET "; `knit COMMAND --help` says more.\n");
}

int main(int argc, char **argv)
{
	const char *sock = API_DEFAULT_SOCKET;
	int i = 1;

	if (i + 1 < argc && !strcmp(argv[i], "--socket")) {
		sock = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (crypto_init() < 0) {
		fprintf(stderr, "knit: libgcrypt is unusable\n");
		return 1;
	}
	if (!strcmp(argv[i], "genkey"))
		return cmd_genkey(true);
	if (!strcmp(argv[i], "genpsk"))
		return cmd_genkey(false);
	if (!strcmp(argv[i], "pubkey"))
		return cmd_pubkey();
	if (!strcmp(argv[i], "help") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[i], "up") || !strcmp(argv[i], "down") || !strcmp(argv[i], "logout") ||
	    !strcmp(argv[i], "ip") || !strcmp(argv[i], "status") || !strcmp(argv[i], "ping") ||
	    !strcmp(argv[i], "netcheck"))
		return cmd_node(sock, argc - i, argv + i);
	fprintf(stderr, "knit: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
