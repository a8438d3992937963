// SPDX-License-Identifier: MIT
/*
 * What one thread hand-off costs on this machine: two threads ping-pong a
 * counter through two eventfds (the way a packet wakes the next thread of
 * its path: TUN reader, UDP reader, ping), ROUNDS round trips GAP_US apart
 * (the throughput benchmark's pings are 5 ms apart: the cores go idle in
 * between).  Each round trip is two wake-ups.  Measured with the threads
 * on two different CPUs, and on the same one.
 *
 * On a virtual machine, waking a thread on another virtual CPU that has
 * halted costs an inter-processor interrupt through the hypervisor; knit's
 * ping through two knitds on one machine crosses four hand-offs more than
 * the underlay's.  Prints medians in microseconds:
 *
 *   wakeup cross_cpu_rtt_us=113.2 same_cpu_rtt_us=3.3 cross_cpu_wake_us=56.6 rounds=400
 *
 * Built by `make bench`; run by bench/throughput.sh beside its ping test.
 *
 *   build/bench/wakeup [ROUNDS [GAP_US]]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/clock.h"

struct pingpong {
	int there, back; /* eventfds */
	unsigned rounds;
	int cpu;
};

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *echo(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t v;

	if (pin(pp->cpu) < 0)
		return NULL;
	for (unsigned i = 0; i < pp->rounds; i++) {
		if (read(pp->there, &v, sizeof(v)) != sizeof(v) ||
		    write(pp->back, &v, sizeof(v)) != sizeof(v))
			break;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median round trip in microseconds, the echo thread on cpu_b; < 0 on error. */
static double median_rtt_us(int cpu_a, int cpu_b, unsigned rounds, unsigned gap_us)
{
	struct pingpong pp = {.rounds = rounds, .cpu = cpu_b};
	uint64_t *rtt = calloc(rounds, sizeof(*rtt)), v = 1;
	double median = -1;
	pthread_t t;
	unsigned done = 0;

	pp.there = eventfd(0, EFD_CLOEXEC);
	pp.back = eventfd(0, EFD_CLOEXEC);
	if (!rtt || pp.there < 0 || pp.back < 0 || pin(cpu_a) < 0 ||
	    pthread_create(&t, NULL, echo, &pp) != 0)
		goto out;
	for (; done < rounds; done++) {
		uint64_t t0;

		usleep(gap_us);
		t0 = clock_mono_ns();
		if (write(pp.there, &v, sizeof(v)) != sizeof(v) ||
		    read(pp.back, &v, sizeof(v)) != sizeof(v))
			break;
		rtt[done] = clock_mono_ns() - t0;
	}
	if (done < rounds) /* let the echo thread finish its loop */
		for (unsigned i = done; i < rounds; i++)
			if (write(pp.there, &v, sizeof(v)) != sizeof(v))
				break;
	pthread_join(t, NULL);
	if (done == rounds) {
		qsort(rtt, rounds, sizeof(*rtt), cmp_u64);
		median = (double)rtt[rounds / 2] / 1000.0;
	}
out:
	if (pp.there >= 0)
		close(pp.there);
	if (pp.back >= 0)
		close(pp.back);
	free(rtt);
	return median;
}

static unsigned arg_or(int argc, char **argv, int i, unsigned def, unsigned max)
{
	char *end;
	unsigned long v;

	if (argc <= i)
		return def;
	errno = 0;
	v = strtoul(argv[i], &end, 10);
	if (errno || *end || v == 0 || v > max) {
		fprintf(stderr, "wakeup: bad argument '%s' (1 to %u)\n", argv[i], max);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	unsigned rounds = arg_or(argc, argv, 1, 400, 100000);
	unsigned gap_us = arg_or(argc, argv, 2, 5000, 1000000);
	double cross, same;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "wakeup: needs two CPUs\n");
		return 1;
	}
	cross = median_rtt_us(0, 1, rounds, gap_us);
	same = median_rtt_us(0, 0, rounds, gap_us);
	if (cross < 0 || same < 0) {
		fprintf(stderr, "wakeup: %s\n", strerror(errno ? errno : EIO));
		return 1;
	}
	printf("wakeup cross_cpu_rtt_us=%.1f same_cpu_rtt_us=%.1f cross_cpu_wake_us=%.1f "
	       "rounds=%u gap_us=%u\n",
	       cross, same, cross / 2, rounds, gap_us);
	return 0;
}
