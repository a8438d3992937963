/* SPDX-License-Identifier: MIT */
/*
 * A byte buffer with a hard size limit, for text protocols and files read
 * from untrusted sources: it grows on demand up to `max` and refuses more.
 */
#ifndef KNIT_LIB_BUF_H
#define KNIT_LIB_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
	int err; /* the first failed append's error, sticky until buf_free */
};

void buf_init(struct buf *b, size_t max);
/* Wipes (explicit_bzero) and frees: buffers may have carried keys. */
void buf_free(struct buf *b);
/* Return 0, or -ENOBUFS once len would exceed max, or -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Reads a whole file of at most max bytes, NUL-terminated (not counted in len). */
int buf_read_file(struct buf *b, const char *path, size_t max);

#endif
