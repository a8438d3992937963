// SPDX-License-Identifier: MIT
/* knit genkey, genpsk, pubkey: key commands that behave like wg(8)'s. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "knit/commands.h"
#include "lib/encoding.h"

/* wg(8) warns when a key is about to land in a file others can read. */
static void warn_if_world_readable(void)
{
	struct stat st;

	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO))
		fprintf(stderr, "Warning: writing to world accessible file.\n"
				"Consider setting the umask to 077 and trying again.\n");
}

static int print_key(const uint8_t key[KEY_LEN])
{
	char b64[KEY_BASE64_LEN + 1];

	key_to_base64(b64, key);
	puts(b64);
	memzero_explicit(b64, sizeof(b64));
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_genkey(bool clamp)
{
	uint8_t key[KEY_LEN];
	int ret;

	warn_if_world_readable();
	if (clamp)
		x25519_generate(key);
	else
		random_bytes(key, sizeof(key));
	ret = print_key(key);
	memzero_explicit(key, sizeof(key));
	return ret;
}

int cmd_pubkey(void)
{
	char line[KEY_BASE64_LEN + 3];
	uint8_t priv[KEY_LEN], pub[KEY_LEN];
	size_t n = fread(line, 1, sizeof(line) - 1, stdin);
	int ret = 1;

	line[n] = '\0';
	while (n && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	if (!feof(stdin) && n == sizeof(line) - 1) {
		fprintf(stderr, "knit: pubkey: too much input on standard input\n");
	} else if (key_from_base64(priv, line) < 0) {
		fprintf(stderr, "knit: pubkey: invalid private key on standard input\n");
	} else {
		x25519_clamp(priv);
		ret = x25519_public(pub, priv) == 0 ? print_key(pub) : 1;
	}
	memzero_explicit(line, sizeof(line));
	memzero_explicit(priv, sizeof(priv));
	return ret;
}

