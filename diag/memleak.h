/* SPDX-License-Identifier: Apache-2.0 */
/* memleak: shared by memleak.bpf.c and memleak.c */
#ifndef ANOLE_DIAG_MEMLEAK_H
#define ANOLE_DIAG_MEMLEAK_H
#include "diag_common.h"

#define MEMLEAK_MAX_ALLOCS 262144 /* outstanding allocations tracked */
#define MEMLEAK_MAX_STACKS 10240  /* distinct user stacks */
#define MEMLEAK_STACK_DEPTH 127   /* PERF_MAX_STACK_DEPTH */
#define MEMLEAK_MAX_THREADS 10240 /* threads inside an allocator call at once */

/* an outstanding allocation, by address */
struct memleak_alloc {
	__u64 size;
	__u64 ts;        /* bpf_ktime_get_ns() when allocated */
	__s64 stack_id;  /* user stack; < 0: none (error of bpf_get_stackid) */
};

#endif
