// SPDX-License-Identifier: Apache-2.0
/*
 * Worker threads. anole_parallel_for runs a known array of jobs and waits;
 * a workqueue is a pool that outlives its jobs, for producers that learn
 * their jobs one at a time (a tar stream cut into chunks) and cannot wait
 * for a whole batch before handing out the next job.
 */
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <pthread.h>
#include <stdbool.h>
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

/* ---- a pool ---- */

struct wq_task {
	anole_work_fn fn;
	void *item, *shared;
};

struct anole_workqueue {
	pthread_mutex_t lock;
	pthread_cond_t more;        /* a task was queued, or the pool closes */
	struct wq_task *ring;       /* FIFO: head .. head + count - 1, modulo cap */
	size_t head, count, cap;
	bool closing;
	pthread_t *tids;
	unsigned nthreads;
};

static void *pool_worker(void *arg)
{
	struct anole_workqueue *wq = arg;

	pthread_mutex_lock(&wq->lock);
	for (;;) {
		struct wq_task t;

		while (!wq->count && !wq->closing)
			pthread_cond_wait(&wq->more, &wq->lock);
		if (!wq->count)
			break;      /* closing and drained */
		t = wq->ring[wq->head];
		wq->head = (wq->head + 1) % wq->cap;
		wq->count--;
		pthread_mutex_unlock(&wq->lock);
		t.fn(t.item, t.shared);
		pthread_mutex_lock(&wq->lock);
	}
	pthread_mutex_unlock(&wq->lock);
	return NULL;
}

struct anole_workqueue *anole_workqueue_new(unsigned threads)
{
	struct anole_workqueue *wq = xcalloc(1, sizeof(*wq));

	if (!threads)
		threads = anole_cpu_count();
	pthread_mutex_init(&wq->lock, NULL);
	pthread_cond_init(&wq->more, NULL);
	wq->cap = 16;
	wq->ring = xcalloc(wq->cap, sizeof(*wq->ring));
	wq->tids = xcalloc(threads, sizeof(*wq->tids));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&wq->tids[wq->nthreads], NULL, pool_worker, wq))
			break;      /* fewer threads; with none, add runs jobs itself */
		wq->nthreads++;
	}
	return wq;
}

unsigned anole_workqueue_threads(const struct anole_workqueue *wq)
{
	return wq->nthreads;
}

void anole_workqueue_add(struct anole_workqueue *wq, anole_work_fn fn, void *item, void *shared)
{
	if (!wq->nthreads) {
		fn(item, shared);
		return;
	}
	pthread_mutex_lock(&wq->lock);
	if (wq->count == wq->cap) {
		struct wq_task *ring = xcalloc(wq->cap * 2, sizeof(*ring));

		for (size_t i = 0; i < wq->count; i++)
			ring[i] = wq->ring[(wq->head + i) % wq->cap];
		free(wq->ring);
		wq->ring = ring;
		wq->head = 0;
		wq->cap *= 2;
	}
	wq->ring[(wq->head + wq->count) % wq->cap] = (struct wq_task){ fn, item, shared };
	wq->count++;
	pthread_cond_signal(&wq->more);
	pthread_mutex_unlock(&wq->lock);
}

void anole_workqueue_free(struct anole_workqueue *wq)
{
	if (!wq)
		return;
	pthread_mutex_lock(&wq->lock);
	wq->closing = true;
	pthread_cond_broadcast(&wq->more);
	pthread_mutex_unlock(&wq->lock);
	for (unsigned i = 0; i < wq->nthreads; i++)
		pthread_join(wq->tids[i], NULL);
	pthread_cond_destroy(&wq->more);
	pthread_mutex_destroy(&wq->lock);
	free(wq->tids);
	free(wq->ring);
	free(wq);
}
