// SPDX-License-Identifier: GPL-2.0
/*
 * How long each CPU was unable to run a waiting real-time task
 * (scripts/bench/bgp.sh, BENCHMARKS.md "Keeping up with BGP"): a thread per
 * CPU it may run on, pinned to it at SCHED_FIFO priority 50, wakes every
 * 0.5 ms and prints every wake-up that came more than 2 ms late, as
 *
 *     <CLOCK_REALTIME sec.usec at the wake-up> cpu<N> <ms late>
 *
 * (the CPU was not available to it for about that long), after a first line
 * "# stall-probe: N CPUs" once every thread runs. On a kernel without
 * full preemption a long stretch of kernel work (a routing daemon's netlink
 * batch, a softirq) holds its CPU this way: no process on that CPU, accel
 * included and whatever its priority, runs meanwhile. bgp.sh sets the lag of
 * each route against these stalls.
 *
 * Usage: stall-probe FILE   (runs until killed; exit 1 if it cannot start)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_NS 500000L
#define REPORT_NS 2000000L

static FILE *out;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static long long ns(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *probe(void *arg)
{
	long cpu = (long)arg;
	const struct timespec period = { 0, PERIOD_NS };
	long long last = ns(CLOCK_MONOTONIC);

	for (;;) {
		nanosleep(&period, NULL);
		long long now = ns(CLOCK_MONOTONIC);
		long long late = now - last - PERIOD_NS;

		if (late > REPORT_NS) {
			long long wall = ns(CLOCK_REALTIME);

			pthread_mutex_lock(&out_lock);
			fprintf(out, "%lld.%06lld cpu%ld %.3f\n", wall / 1000000000LL,
				(wall % 1000000000LL) / 1000, cpu, late / 1e6);
			fflush(out);
			pthread_mutex_unlock(&out_lock);
		}
		last = now;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	cpu_set_t allowed;
	int started = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
		perror("sched_getaffinity");
		return 1;
	}
	for (long cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		pthread_attr_t attr;
		struct sched_param prio = { .sched_priority = 50 };
		cpu_set_t set;
		pthread_t t;
		int err;

		if (!CPU_ISSET(cpu, &allowed))
			continue;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		pthread_attr_setschedparam(&attr, &prio);
		err = pthread_create(&t, &attr, probe, (void *)cpu);
		if (err) {
			fprintf(stderr, "stall-probe: cpu%ld: %s\n", cpu, strerror(err));
			return 1;
		}
		started++;
	}
	pthread_mutex_lock(&out_lock);
	fprintf(out, "# stall-probe: %d CPUs\n", started);
	fflush(out);
	pthread_mutex_unlock(&out_lock);
	pause();
	return 0;
}
