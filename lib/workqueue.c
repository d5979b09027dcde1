// SPDX-License-Identifier: Apache-2.0
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

unsigned anole_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

struct parallel_job {
	char *items;
	size_t n, item_size;
	_Atomic size_t next;
	anole_work_fn fn;
	void *shared;
};

static void *worker(void *arg)
{
	struct parallel_job *job = arg;
	size_t i;

	while ((i = atomic_fetch_add(&job->next, 1)) < job->n)
		job->fn(job->items + i * job->item_size, job->shared);
	return NULL;
}

void anole_parallel_for(void *items, size_t n, size_t item_size, unsigned threads,
			anole_work_fn fn, void *shared)
{
	struct parallel_job job = { items, n, item_size, 0, fn, shared };
	pthread_t *tids;
	unsigned i;

	if (!threads)
		threads = anole_cpu_count();
	if (threads > n)
		threads = n ? (unsigned)n : 1;
	if (threads <= 1) {
		worker(&job);
		return;
	}
	tids = xcalloc(threads, sizeof(*tids));
	for (i = 1; i < threads; i++)
		if (pthread_create(&tids[i], NULL, worker, &job))
			tids[i] = 0; /* fewer threads: the others take its share */
	worker(&job);
	for (i = 1; i < threads; i++)
		if (tids[i])
			pthread_join(tids[i], NULL);
	free(tids);
}
