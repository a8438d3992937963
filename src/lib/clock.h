/* SPDX-License-Identifier: MIT */
/* Monotonic time for every timer; wall time only where a protocol needs it. */
#ifndef KNIT_LIB_CLOCK_H
#define KNIT_LIB_CLOCK_H

#include <stdint.h>

#define NSEC_PER_SEC  1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

uint64_t clock_mono_ns(void); /* CLOCK_MONOTONIC (CLOCK_BOOTTIME: counts suspend) */
uint64_t clock_wall_ns(void); /* CLOCK_REALTIME, for TAI64N and handshake times */

#endif
