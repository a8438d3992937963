// SPDX-License-Identifier: MIT
/* Bounded byte buffers (see buf.h). */
#include "lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->err = 0;
}

void buf_free(struct buf *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	buf_init(b, b->max);
}

/* Keeps need + 1 and cap * 2 from overflowing whatever max a caller passes. */
#define BUF_MAX_LIMIT (SIZE_MAX / 4)

/* Room for len more bytes plus a NUL, growing by doubling up to max. */
static int reserve(struct buf *b, size_t len)
{
	size_t need, cap, max = b->max < BUF_MAX_LIMIT ? b->max : BUF_MAX_LIMIT;
	uint8_t *data;

	if (len > max || b->len > max - len)
		return b->err = b->err ? b->err : -ENOBUFS;
	need = b->len + len + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > max + 1)
		cap = max + 1;
	data = malloc(cap);
	if (!data)
		return b->err = b->err ? b->err : -ENOMEM;
	if (b->data) {
		memcpy(data, b->data, b->len);
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = data;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int ret = reserve(b, len);

	if (ret < 0)
		return ret;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((ret = reserve(b, (size_t)n)) < 0)
		return ret;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

int buf_read_file(struct buf *b, const char *path, size_t max)
{
	uint8_t chunk[4096];
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; files ignore it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	b->max = max;
	b->len = 0;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if ((ret = buf_append(b, chunk, (size_t)n)) < 0) {
			ret = ret == -ENOBUFS ? -EFBIG : ret;
			goto out;
		}
	}
	if (!b->data)
		ret = buf_append(b, "", 0);
out:
	if (ret < 0 && b->data) {
		/* No half-read file (it may hold keys) is left behind. */
		explicit_bzero(b->data, b->cap);
		b->len = 0;
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	return ret;
}
