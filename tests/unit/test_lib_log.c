// SPDX-License-Identifier: MIT
/* src/lib/log.c and clock.c: line format, level filter, threads, clocks. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/log.h"

/* stderr goes to a temporary file while a test logs. */
struct capture {
	int saved;
	int fd;
	char text[4 << 20];
	size_t len;
};

static void capture_start(struct capture *c)
{
	char path[] = "/tmp/test_lib_log.XXXXXX";

	c->fd = mkstemp(path);
	assert_true(c->fd >= 0);
	unlink(path);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_APPEND), 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

static void capture_stop(struct capture *c)
{
	ssize_t n;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	assert_int_equal(lseek(c->fd, 0, SEEK_SET), 0);
	n = read(c->fd, c->text, sizeof(c->text) - 1);
	close(c->fd);
	assert_true(n >= 0);
	c->len = (size_t)n;
	c->text[c->len] = '\0';
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void compile_line(regex_t *re, const char *level, const char *msg)
{
	char pattern[256];

	snprintf(pattern, sizeof(pattern),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z %s %s$", level,
		 msg);
	assert_int_equal(regcomp(re, pattern, REG_EXTENDED | REG_NOSUB), 0);
}

static bool line_matches(const char *line, const char *level, const char *msg)
{
	regex_t re;
	bool ok;

	compile_line(&re, level, msg);
	ok = regexec(&re, line, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static void test_format_and_levels(void **state)
{
	struct capture *c = malloc(sizeof(*c));
	char *save, *line;

	assert_non_null(c);
	assert_int_equal(log_get_level(), LOG_LEVEL_INFO); /* the default */
	capture_start(c);
	log_info("interface up interface=%s port=%u", "wg0", 51820);
	log_debug("hidden at info");
	log_warn("careful");
	log_error("broken error=%d", -5);
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("shown at debug");
	log_set_level(LOG_LEVEL_ERROR);
	log_warn("hidden at error");
	log_info("hidden at error");
	log_error("still shown");
	log_set_level(LOG_LEVEL_INFO);
	capture_stop(c);

	assert_int_equal(count_lines(c->text), 5);
	assert_null(strstr(c->text, "hidden"));
	line = strtok_r(c->text, "\n", &save);
	assert_true(line_matches(line, "INFO", "interface up interface=wg0 port=51820"));
	line = strtok_r(NULL, "\n", &save);
	assert_true(line_matches(line, "WARN", "careful"));
	line = strtok_r(NULL, "\n", &save);
	assert_true(line_matches(line, "ERROR", "broken error=-5"));
	line = strtok_r(NULL, "\n", &save);
	assert_true(line_matches(line, "DEBUG", "shown at debug"));
	line = strtok_r(NULL, "\n", &save);
	assert_true(line_matches(line, "ERROR", "still shown"));
	free(c);
}

/* The timestamp is UTC wall time, to the millisecond. */
static void test_timestamp_is_utc_now(void **state)
{
	struct capture *c = malloc(sizeof(*c));
	struct tm tm = {0};
	uint64_t before = clock_wall_ns() / NSEC_PER_MSEC, after, stamp;
	int ms;

	assert_non_null(c);
	capture_start(c);
	log_info("tick");
	capture_stop(c);
	after = clock_wall_ns() / NSEC_PER_MSEC;
	assert_int_equal(sscanf(c->text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
				&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
			 7);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	stamp = (uint64_t)timegm(&tm) * 1000 + (uint64_t)ms;
	assert_true(stamp >= before && stamp <= after);
	free(c);
}

static void test_hostile_messages(void **state)
{
	struct capture *c = malloc(sizeof(*c));
	char *huge = malloc(5000);

	assert_non_null(c);
	assert_non_null(huge);
	memset(huge, 'A', 4999);
	huge[4999] = '\0';
	capture_start(c);
	/* Peer-supplied text cannot forge a second line or send escapes. */
	log_info("name=%s", "evil\nINFO forged\r\x1b[31m");
	log_info("%s", huge);
	log_info("%s", "");
	capture_stop(c);
	assert_int_equal(count_lines(c->text), 3);
	assert_non_null(strstr(c->text, " INFO name=evil?INFO forged??[31m\n"));
	assert_null(strchr(c->text, '\x1b'));
	{
		/* The long one is cut to a bounded line, still ending in a newline. */
		char *second = strchr(c->text, '\n') + 1;
		char *end = strchr(second, '\n');
		assert_true(end - second < 1024);
		assert_true(end - second > 900);
		assert_true(line_matches(strtok(end + 1, "\n"), "INFO", ""));
	}
	free(huge);
	free(c);
}

static void *log_many(void *arg)
{
	for (int i = 0; i < 500; i++)
		log_info("thread=%ld seq=%d padding=%0200d", (long)(intptr_t)arg, i, 0);
	return NULL;
}

/* Lines from concurrent threads never interleave. */
static void test_threads(void **state)
{
	struct capture *c = malloc(sizeof(*c));
	pthread_t threads[8];
	int lines = 0, seen[8] = {0};
	char *save, *line;
	regex_t re;

	assert_non_null(c);
	compile_line(&re, "INFO", "thread=[0-7] seq=[0-9]+ padding=0{200}");
	capture_start(c);
	for (long i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, log_many, (void *)(intptr_t)i),
				 0);
	for (int i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	capture_stop(c);
	for (line = strtok_r(c->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long t;
		int seq;
		assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
		assert_int_equal(sscanf(strstr(line, "thread="), "thread=%ld seq=%d", &t, &seq), 2);
		assert_int_equal(seq, seen[t]++); /* in order within a thread */
		lines++;
	}
	assert_int_equal(lines, 8 * 500);
	regfree(&re);
	free(c);
}

static void test_parse_level(void **state)
{
	static const struct {
		const char *name;
		enum log_level level;
	} good[] = {
		{"error", LOG_LEVEL_ERROR},
		{"warn", LOG_LEVEL_WARN},
		{"info", LOG_LEVEL_INFO},
		{"debug", LOG_LEVEL_DEBUG},
	};
	static const char *const bad[] = {"", "verbose", "info ", "debug2", "inf", "3"};
	enum log_level level = LOG_LEVEL_WARN;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(log_parse_level(good[i].name, &level), 0);
		assert_int_equal(level, good[i].level);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		level = LOG_LEVEL_WARN;
		assert_int_equal(log_parse_level(bad[i], &level), -EINVAL);
		assert_int_equal(level, LOG_LEVEL_WARN);
	}
}

static void test_clocks(void **state)
{
	struct timespec ts;
	uint64_t a, b, wall;

	a = clock_mono_ns();
	usleep(2000);
	b = clock_mono_ns();
	assert_true(b - a >= 2 * NSEC_PER_MSEC);
	assert_true(b - a < 2 * NSEC_PER_SEC);
	for (int i = 0; i < 1000; i++) {
		b = clock_mono_ns();
		assert_true(b >= a);
		a = b;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_true((uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec >= a);
	wall = clock_wall_ns();
	assert_true(wall / NSEC_PER_SEC >= (uint64_t)time(NULL) - 1);
	assert_true(wall / NSEC_PER_SEC <= (uint64_t)time(NULL));
	assert_true(wall > 1700000000ULL * NSEC_PER_SEC); /* after 2023 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_levels),
		cmocka_unit_test(test_timestamp_is_utc_now),
		cmocka_unit_test(test_hostile_messages),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_parse_level),
		cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
