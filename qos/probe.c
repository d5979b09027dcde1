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
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* The run_delay field of a schedstat file: 0, or -1 when unreadable. */
static int run_delay(int fd, uint64_t *ns)
{
	char buf[96];
	ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
	unsigned long long on_cpu, wait;

	if (got <= 0)
		return -1;
	buf[got] = 0;
	if (sscanf(buf, "%llu %llu", &on_cpu, &wait) != 2)
		return -1;
	*ns = wait;
	return 0;
}

/*
 * The probe's run-queue wait as time goes: (time, run_delay) marks taken at
 * each wake-up and each sleep, the last RQ_MARKS of them. Between two marks
 * the waits are taken to come last, ending at the later one, as a wait for
 * a CPU ends when the task gets it.
 */
#define RQ_MARKS 64
struct rq_marks {
	uint64_t t[RQ_MARKS], rq[RQ_MARKS];
	unsigned n, head; /* head: the next slot */
};

static void rq_mark(struct rq_marks *m, uint64_t t, uint64_t rq)
{
	m->t[m->head] = t;
	m->rq[m->head] = rq;
	m->head = (m->head + 1) % RQ_MARKS;
	if (m->n < RQ_MARKS)
		m->n++;
}

/* run_delay at time x: at or before the oldest mark, the oldest's */
static uint64_t rq_at(const struct rq_marks *m, uint64_t x)
{
	unsigned later = (m->head + RQ_MARKS - 1) % RQ_MARKS;

	for (unsigned k = 1; k < m->n; k++) {
		unsigned earlier = (later + RQ_MARKS - 1) % RQ_MARKS;

		if (m->t[earlier] <= x) {
			uint64_t waited = m->rq[later] - m->rq[earlier];
			uint64_t after = m->t[later] > x ? m->t[later] - x : 0;

			return m->rq[later] - (waited < after ? waited : after);
		}
		later = earlier;
	}
	return m->rq[later];
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
	/* the thread's run-queue wait so far (schedstat's second field, ns),
	 * marked at each wake-up and sleep: the part of its lateness spent
	 * runnable behind other tasks */
	int sfd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	struct rq_marks m = { 0 };
	uint64_t rq0 = 0, *off_rq = NULL;
	if (sfd >= 0 && run_delay(sfd, &rq0)) {
		close(sfd);
		sfd = -1;
	}
	if (sfd >= 0)
		off_rq = xmalloc(n * sizeof(*off_rq));
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (off_rq)
		rq_mark(&m, ts_ns(&t), rq0);
	uint64_t deadline = ts_ns(&t) + period;
	for (uint64_t i = 0; i < n; i++, deadline += period) {
		struct timespec d = { (time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR)
			;
		clock_gettime(CLOCK_MONOTONIC, &t);
		uint64_t now = ts_ns(&t);
		lat[i] = now > deadline ? now - deadline : 0;
		if (off_rq) {
			/* a failed read keeps the last figure: run_delay only grows */
			uint64_t rq = m.rq[(m.head + RQ_MARKS - 1) % RQ_MARKS];

			run_delay(sfd, &rq);
			rq_mark(&m, now, rq);
			uint64_t waited = rq - rq_at(&m, deadline);
			off_rq[i] = lat[i] > waited ? lat[i] - waited : 0;
		}
		if (now > deadline + period)
			r->missed++;
		sum += (double)lat[i];
		/* the work: a fixed amount of computation, not a fixed time */
		for (unsigned k = 0; k < o->work_us * 100u; k++)
			sink = sink * 6364136223846793005ull + k;
		if (off_rq) {
			uint64_t rq = m.rq[(m.head + RQ_MARKS - 1) % RQ_MARKS];

			clock_gettime(CLOCK_MONOTONIC, &t);
			run_delay(sfd, &rq);
			rq_mark(&m, ts_ns(&t), rq);
		}
	}
	r->p99_off_rq_us = -1;
	if (off_rq) {
		qsort(off_rq, n, sizeof(*off_rq), cmp_u64);
		r->p99_off_rq_us = pct(off_rq, n, 99);
		free(off_rq);
		close(sfd);
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
