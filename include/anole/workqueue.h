/* SPDX-License-Identifier: Apache-2.0 */
/* A fixed pool of worker threads running independent jobs. */
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
#endif
