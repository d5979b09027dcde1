// SPDX-License-Identifier: Apache-2.0
/*
 * The LS latency probe: a thread that sleeps to absolute deadlines at a
 * fixed rate (clock_nanosleep TIMER_ABSTIME on CLOCK_MONOTONIC) and does a
 * little work each time it wakes, as a request handler would. What it
 * records is the wake-up lateness, now - deadline: the time a runnable LS
 * task waited for a CPU (run-queue delay behind BE, a slow idle exit,
 * throttling), which is what colocation interference looks like. Deadlines
 * stay on the fixed grid, so a late wake-up does not hide the next one
 * (no coordinated omission); deadlines already past when the loop gets
 * there are counted as missed, each with its own lateness.
 */
#include "qos.h"

#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	/* nearest rank */
	size_t k = (size_t)ceil(p / 100.0 * (double)n);
	return n ? (double)v[k ? k - 1 : 0] / 1000.0 : 0;
}

int qos_probe_run(const struct qos_probe_opts *o, struct qos_probe_result *r)
{
	uint64_t period, n, *lat;
	struct timespec t;
	volatile uint64_t sink = 0;
	double sum = 0;

	memset(r, 0, sizeof(*r));
	if (!(o->rate_hz > 0 && o->rate_hz <= 100000))
		return anole_error_code(EINVAL, "probe: rate %g Hz is out of range (0..100000]",
					o->rate_hz);
	if (!(o->duration_s > 0 && o->duration_s <= 86400))
		return anole_error_code(EINVAL, "probe: duration %g s is out of range (0..86400]",
					o->duration_s);
	period = (uint64_t)(1e9 / o->rate_hz);
	n = (uint64_t)(o->rate_hz * o->duration_s);
	if (n < 1)
		n = 1;
	if (n > 50000000)
		return anole_error_code(EINVAL, "probe: rate x duration is over 5e7 samples");
	lat = xmalloc(n * sizeof(*lat));
	clock_gettime(CLOCK_MONOTONIC, &t);
	uint64_t deadline = ts_ns(&t) + period;
	for (uint64_t i = 0; i < n; i++, deadline += period) {
		struct timespec d = { (time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR)
			;
		clock_gettime(CLOCK_MONOTONIC, &t);
		uint64_t now = ts_ns(&t);
		lat[i] = now > deadline ? now - deadline : 0;
		if (now > deadline + period)
			r->missed++;
		sum += (double)lat[i];
		/* the work: a fixed amount of computation, not a fixed time */
		for (unsigned k = 0; k < o->work_us * 100u; k++)
			sink = sink * 6364136223846793005ull + k;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	r->samples = n;
	r->p50_us = pct(lat, n, 50);
	r->p90_us = pct(lat, n, 90);
	r->p99_us = pct(lat, n, 99);
	r->p999_us = pct(lat, n, 99.9);
	r->max_us = (double)lat[n - 1] / 1000.0;
	r->mean_us = sum / (double)n / 1000.0;
	free(lat);
	return 0;
}
