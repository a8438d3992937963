// SPDX-License-Identifier: MIT
/* src/lib/buf.c: bounded buffers and bounded file reads. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"

static void test_append_limits(void **state)
{
	struct buf b;

	buf_init(&b, 10);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_append(&b, "world", 5), 0); /* exactly max */
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "helloworld", 11); /* NUL-terminated */
	assert_int_equal(buf_append(&b, "!", 1), -ENOBUFS);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.data, "helloworld");
	/* Lengths that would overflow a sum are refused, not wrapped. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -ENOBUFS);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 5), -ENOBUFS);
	assert_int_equal(b.len, 10);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 10); /* reusable with the same limit */
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(buf_append(&b, "a", 1), -ENOBUFS);
	buf_free(&b);
	buf_free(&b); /* twice is harmless */

	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "a", 1), -ENOBUFS);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_string_equal((char *)b.data, "");
	buf_free(&b);
}

static void test_unbounded_max(void **state)
{
	struct buf b;

	/* A caller passing SIZE_MAX gets a working buffer, not an overflow. */
	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -ENOBUFS);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 3), -ENOBUFS);
	assert_string_equal((char *)b.data, "abc");
	buf_free(&b);
}

static void test_growth(void **state)
{
	uint8_t chunk[777];
	struct buf b;

	buf_init(&b, 100000);
	for (int i = 0; i < 100; i++) {
		memset(chunk, i, sizeof(chunk));
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	}
	assert_int_equal(b.len, 77700);
	assert_true(b.cap > b.len);
	assert_true(b.cap <= b.max + 1);
	for (int i = 0; i < 100; i++) {
		memset(chunk, i, sizeof(chunk));
		assert_memory_equal(b.data + i * 777, chunk, sizeof(chunk));
	}
	assert_int_equal(b.data[b.len], 0);
	/* 22300 bytes left: one more than that fails and changes nothing. */
	{
		uint8_t *big = calloc(1, 22301);
		assert_non_null(big);
		assert_int_equal(buf_append(&b, big, 22301), -ENOBUFS);
		assert_int_equal(b.len, 77700);
		assert_int_equal(buf_append(&b, big, 22300), 0);
		assert_int_equal(b.len, 100000);
		free(big);
	}
	buf_free(&b);
}

static void test_printf(void **state)
{
	struct buf b;

	buf_init(&b, 16);
	assert_int_equal(buf_printf(&b, "%s=%d\n", "port", 51820), 0);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_string_equal((char *)b.data, "port=51820\n");
	assert_int_equal(b.len, 11);
	/* 6 more would be 17 > 16: refused whole, nothing half-written. */
	assert_int_equal(buf_printf(&b, "%06d", 1), -ENOBUFS);
	assert_int_equal(b.len, 11);
	assert_string_equal((char *)b.data, "port=51820\n");
	assert_int_equal(buf_printf(&b, "%05d", 7), 0);
	assert_int_equal(b.len, 16);
	assert_string_equal((char *)b.data, "port=51820\n00007");
	buf_free(&b);
}

static void test_consume(void **state)
{
	struct buf b;

	buf_init(&b, 64);
	buf_consume(&b, 5); /* nothing allocated yet */
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "line1\nline2\nrest", 16), 0);
	buf_consume(&b, 0);
	assert_int_equal(b.len, 16);
	buf_consume(&b, 6);
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.data, "line2\nrest");
	buf_consume(&b, 6);
	assert_string_equal((char *)b.data, "rest");
	/* Room freed by consuming is usable again up to max. */
	assert_int_equal(
		buf_append(&b, "0123456789012345678901234567890123456789012345678901234567", 58),
		0);
	assert_int_equal(b.len, 62);
	assert_int_equal(buf_append(&b, "abc", 3), -ENOBUFS);
	buf_consume(&b, 62);
	assert_int_equal(b.len, 0);
	assert_string_equal((char *)b.data, "");
	assert_int_equal(buf_append(&b, "xy", 2), 0);
	buf_consume(&b, 1000);
	assert_int_equal(b.len, 0);
	assert_string_equal((char *)b.data, "");
	buf_free(&b);
}

struct tmpdir {
	char path[64];
};

static int setup_dir(void **state)
{
	struct tmpdir *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	strcpy(d->path, "/tmp/test_lib_buf.XXXXXX");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int teardown_dir(void **state)
{
	static const char *const names[] = {"file", "fifo"};
	struct tmpdir *d = *state;
	char path[128];
	int ret;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->path, names[i]);
		unlink(path);
	}
	ret = rmdir(d->path);
	free(d);
	return ret;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_read_file(void **state)
{
	struct tmpdir *d = *state;
	char path[128], fifo[128];
	static const uint8_t content[] = "0123456789\0abcdef";
	uint8_t *big;
	struct buf b;

	snprintf(path, sizeof(path), "%s/file", d->path);
	write_file(path, content, 17);
	buf_init(&b, 0);
	assert_int_equal(buf_read_file(&b, path, 17), 0);
	assert_int_equal(b.len, 17);
	assert_memory_equal(b.data, content, 17); /* NULs inside are kept */
	assert_int_equal(b.data[17], 0);
	/* A second read replaces the contents. */
	assert_int_equal(buf_read_file(&b, path, 1000), 0);
	assert_int_equal(b.len, 17);
	assert_int_equal(buf_read_file(&b, path, 16), -EFBIG);
	assert_int_equal(b.len, 0);
	buf_free(&b);

	/* Larger than one read() chunk. */
	big = malloc(100000);
	assert_non_null(big);
	for (size_t i = 0; i < 100000; i++)
		big[i] = (uint8_t)(i * 7);
	write_file(path, big, 100000);
	assert_int_equal(buf_read_file(&b, path, 100000), 0);
	assert_int_equal(b.len, 100000);
	assert_memory_equal(b.data, big, 100000);
	assert_int_equal(buf_read_file(&b, path, 99999), -EFBIG);
	buf_free(&b);
	free(big);

	write_file(path, "", 0);
	assert_int_equal(buf_read_file(&b, path, 0), 0);
	assert_int_equal(b.len, 0);
	assert_non_null(b.data);
	assert_string_equal((char *)b.data, "");
	buf_free(&b);

	snprintf(path, sizeof(path), "%s/missing", d->path);
	assert_int_equal(buf_read_file(&b, path, 100), -ENOENT);
	assert_int_equal(buf_read_file(&b, d->path, 100), -EINVAL);
	assert_int_equal(buf_read_file(&b, "/dev/null", 100), -EINVAL);
	/* A FIFO is refused at once, not waited on for a writer. */
	snprintf(fifo, sizeof(fifo), "%s/fifo", d->path);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(buf_read_file(&b, fifo, 100), -EINVAL);
	buf_free(&b);
}

/* /proc files claim size 0: the limit must hold while reading. */
static void test_read_file_growing(void **state)
{
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(buf_read_file(&b, "/proc/self/status", 16), -EFBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_read_file(&b, "/proc/self/status", 1 << 20), 0);
	assert_true(b.len > 16);
	assert_non_null(strstr((char *)b.data, "Name:"));
	buf_free(&b);
}

/* An answer built from many appends can tell afterwards that one failed. */
static void test_error_is_sticky(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_int_equal(buf_printf(&b, "%s", "12345"), 0);
	assert_int_equal(b.err, 0);
	assert_int_equal(buf_printf(&b, "%s", "6789"), -ENOBUFS);
	assert_int_equal(buf_append(&b, "x", 1), 0); /* still fits */
	assert_int_equal(b.err, -ENOBUFS);
	buf_free(&b);
	assert_int_equal(b.err, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_limits),
		cmocka_unit_test(test_error_is_sticky),
		cmocka_unit_test(test_unbounded_max),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_consume),
		cmocka_unit_test_setup_teardown(test_read_file, setup_dir, teardown_dir),
		cmocka_unit_test(test_read_file_growing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
