// SPDX-License-Identifier: MIT
#include "knit-control/duration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
	char unit;
	int64_t seconds;
} units[] = {
	{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1},
};

static int64_t unit_seconds(char c)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (units[i].unit == c)
			return units[i].seconds;
	return 0;
}

int duration_parse(const char *s, int64_t *seconds)
{
	int64_t total = 0;

	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		int64_t n = 0, mult;
		int digits = 0;

		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			if (n > DURATION_MAX)
				return -ERANGE; /* stop before n * 10 can overflow */
			n = n * 10 + (*s - '0');
		}
		if (digits == 0)
			return -EINVAL;
		mult = unit_seconds(*s);
		if (!mult)
			return -EINVAL;
		s++;
		if (n > DURATION_MAX / mult || total + n * mult > DURATION_MAX)
			return -ERANGE;
		total += n * mult;
	}
	if (total == 0)
		return -EINVAL;
	*seconds = total;
	return 0;
}

int duration_format(int64_t seconds, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	if (seconds <= 0)
		return snprintf(buf, len, "0s") < (int)len ? 0 : -ENOBUFS;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && seconds; i++) {
		int64_t n = seconds / units[i].seconds;
		int w;

		/* Weeks only when exact: "90d" reads better than "12w6d". */
		if (!n || (units[i].unit == 'w' && seconds % units[i].seconds))
			continue;
		w = snprintf(buf + off, len - off, "%lld%c", (long long)n, units[i].unit);
		if (w < 0 || (size_t)w >= len - off)
			return -ENOBUFS;
		off += (size_t)w;
		seconds -= n * units[i].seconds;
	}
	return 0;
}
