// SPDX-License-Identifier: Apache-2.0
#include "anole/clock.h"
#include "anole/progress.h"
#include "anole/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct anole_progress {
	char title[64];
	const char *unit;
	uint64_t total;
	_Atomic uint64_t done;
	pthread_mutex_t lock;
	struct timespec start;
	double last_draw;
	int drawn;
};

static bool quiet;

void anole_progress_set_quiet(bool q) { quiet = q; }

static void human(char *out, size_t n, uint64_t v, const char *unit)
{
	static const char *sfx[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int i = 0;

	if (strcmp(unit, "B")) {
		snprintf(out, n, "%llu%s%s", (unsigned long long)v, *unit ? " " : "", unit);
		return;
	}
	while (d >= 1024 && i < 4) {
		d /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", d, sfx[i]);
}

static void draw(struct anole_progress *p, int final)
{
	char a[32], b[32];
	uint64_t done = atomic_load(&p->done);

	human(a, sizeof(a), done, p->unit);
	if (p->total) {
		human(b, sizeof(b), p->total, p->unit);
		fprintf(stderr, "\r%s: %3u%% (%s / %s)%s", p->title,
			(unsigned)(done >= p->total ? 100 : done * 100 / p->total), a, b,
			final ? ", done.\n" : "\033[K");
	} else {
		fprintf(stderr, "\r%s: %s%s", p->title, a, final ? ", done.\n" : "\033[K");
	}
	fflush(stderr);
	p->drawn = 1;
}

struct anole_progress *anole_progress_start(const char *title, uint64_t total,
					     const char *unit)
{
	struct anole_progress *p;

	if (quiet || !isatty(STDERR_FILENO))
		return NULL;
	p = xcalloc(1, sizeof(*p));
	snprintf(p->title, sizeof(p->title), "%s", title);
	p->unit = unit ? unit : "";
	p->total = total;
	pthread_mutex_init(&p->lock, NULL);
	p->last_draw = anole_mono_seconds();
	return p;
}

static void maybe_draw(struct anole_progress *p)
{
	double t = anole_mono_seconds();

	if (t - p->last_draw < 0.1 || pthread_mutex_trylock(&p->lock))
		return;
	p->last_draw = t;
	draw(p, 0);
	pthread_mutex_unlock(&p->lock);
}

void anole_progress_add(struct anole_progress *p, uint64_t n)
{
	if (!p)
		return;
	atomic_fetch_add(&p->done, n);
	maybe_draw(p);
}

void anole_progress_set(struct anole_progress *p, uint64_t done)
{
	if (!p)
		return;
	atomic_store(&p->done, done);
	maybe_draw(p);
}

void anole_progress_done(struct anole_progress *p)
{
	if (!p)
		return;
	if (p->drawn)
		draw(p, 1);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
