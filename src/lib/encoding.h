/* SPDX-License-Identifier: MIT */
/*
 * Keys as text: base64 (wg's format, 44 characters for 32 bytes) and hex (the
 * userspace API).  Decoding of keys runs in constant time, as in wg(8).
 */
#ifndef KNIT_LIB_ENCODING_H
#define KNIT_LIB_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_LEN	       32
#define KEY_BASE64_LEN 44 /* without the NUL */
#define KEY_HEX_LEN    64 /* without the NUL */

/* out must hold KEY_BASE64_LEN + 1 / KEY_HEX_LEN + 1 bytes. */
void key_to_base64(char *out, const uint8_t key[KEY_LEN]);
void key_to_hex(char *out, const uint8_t key[KEY_LEN]);
/* Whole-string decode; return 0 or -EINVAL (wrong length or alphabet). */
int key_from_base64(uint8_t key[KEY_LEN], const char *s);
int key_from_hex(uint8_t key[KEY_LEN], const char *s);
bool key_is_zero(const uint8_t key[KEY_LEN]);

#endif
