/* SPDX-License-Identifier: MIT */
/* Durations as people type them: "30s", "30m", "24h", "90d", "2w", "1h30m". */
#ifndef KNIT_CONTROL_DURATION_H
#define KNIT_CONTROL_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define DURATION_MAX (100LL * 366 * 24 * 3600) /* a century is plenty */

/*
 * One or more <digits><unit> terms, unit one of s m h d w, summed: "1h30m".
 * The total must be positive.  Returns 0, -EINVAL (syntax, zero) or -ERANGE
 * (longer than DURATION_MAX).
 */
int duration_parse(const char *s, int64_t *seconds);
/* The shortest exact form with the largest units: 86400 -> "1d", 5400 ->
 * "1h30m", 0 -> "0s".  Returns 0 or -ENOBUFS. */
int duration_format(int64_t seconds, char *buf, size_t len);

#endif
