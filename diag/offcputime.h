/* SPDX-License-Identifier: Apache-2.0 */
/* offcputime: shared by offcputime.bpf.c and offcputime.c */
#ifndef ANOLE_DIAG_OFFCPUTIME_H
#define ANOLE_DIAG_OFFCPUTIME_H
#include "diag_common.h"

#define OFFCPU_MAX_TASKS 10240   /* threads switched out, not yet back */
#define OFFCPU_MAX_ENTRIES 10240 /* distinct (thread, stack) totals */
#define OFFCPU_MAX_STACKS 16384  /* distinct kernel and user stacks */
#define OFFCPU_STACK_DEPTH 127   /* PERF_MAX_STACK_DEPTH */

struct offcpu_key {
	__u32 pid;  /* tgid */
	__u32 tid;
	__s32 kern_stack_id; /* < 0: no stack (error from bpf_get_stackid) */
	__s32 user_stack_id; /* < 0: none (-EFAULT: a kernel thread) */
	char comm[DIAG_COMM_LEN];
};

/* a thread switched out: when, and the stack it blocked in */
struct offcpu_start {
	__u64 ts;
	struct offcpu_key key;
};

#endif
