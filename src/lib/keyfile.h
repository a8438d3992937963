/* SPDX-License-Identifier: MIT */
/*
 * Private keys on disk: one base64 line (wg's format) in a file of mode 0600.
 * A key file readable by group or others is refused, as ssh does.
 */
#ifndef KNIT_LIB_KEYFILE_H
#define KNIT_LIB_KEYFILE_H
#include <stdbool.h>
#include <stdint.h>

/* Reads a private key; 0, -ENOENT, -EPERM (mode too open) or -EINVAL. */
int keyfile_load(const char *path, uint8_t priv[32]);
/* Loads the key at path, or generates one and writes it (0600, atomically by
 * rename).  *created says which.  Returns 0 or -errno; errors are logged. */
int keyfile_load_or_create(const char *path, uint8_t priv[32], bool *created);
/* Writes priv atomically with mode 0600. */
int keyfile_store(const char *path, const uint8_t priv[32]);
#endif
