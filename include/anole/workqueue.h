/* SPDX-License-Identifier: Apache-2.0 */
/* Worker threads running independent jobs: a batch at a time, or a pool. */
#ifndef ANOLE_WORKQUEUE_H
#define ANOLE_WORKQUEUE_H
#include <stddef.h>

struct anole_workqueue;

typedef void (*anole_work_fn)(void *item, void *shared);

/* Number of online CPUs (at least 1). */
unsigned anole_cpu_count(void);

/*
 * Run fn(items[i], shared) for i in [0, n) on `threads` threads (0 = one per
 * CPU) and wait for all of them. Items are handed out in index order.
 */
void anole_parallel_for(void *items, size_t n, size_t item_size, unsigned threads,
			anole_work_fn fn, void *shared);

/*
 * A pool of `threads` workers (0 = one per CPU) taking jobs in the order
 * they are added. Completion is the job's business (a flag it sets under
 * its caller's lock): the pool knows nothing of results or order of
 * finishing. If no thread could be started, add runs the job itself.
 */
struct anole_workqueue *anole_workqueue_new(unsigned threads);
unsigned anole_workqueue_threads(const struct anole_workqueue *wq);
void anole_workqueue_add(struct anole_workqueue *wq, anole_work_fn fn, void *item, void *shared);
/* Run what is queued, then stop the workers and free the pool (NULL: no-op). */
void anole_workqueue_free(struct anole_workqueue *wq);
#endif
