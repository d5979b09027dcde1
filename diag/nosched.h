/* SPDX-License-Identifier: Apache-2.0 */
/* nosched: shared by nosched.bpf.c and nosched.c */
#ifndef ANOLE_DIAG_NOSCHED_H
#define ANOLE_DIAG_NOSCHED_H
#include "diag_common.h"

#define NOSCHED_MAX_STACKS 4096
#define NOSCHED_STACK_DEPTH 127

/* what a CPU runs since its last context switch (one per CPU) */
struct nosched_run {
	__u64 start;          /* bpf_ktime_get_ns() of the switch; 0: not seen yet */
	__u64 last_seen;      /* the latest sample that found it past the threshold */
	__u32 tid;            /* the task switched in */
	__u32 pid;            /* its tgid, from a sample (0 until one) */
	__u32 kernel_samples; /* samples past the threshold that found it in the kernel */
	__u32 user_samples;   /* ... in user mode */
	__s32 kern_stack_id;  /* of the latest kernel-mode sample past the threshold */
	__s32 user_stack_id;  /* of the latest sample past the threshold */
	char comm[DIAG_COMM_LEN];
};

/* a task that ran longer than the threshold without a context switch */
struct nosched_event {
	__u64 ts;             /* when it was switched out */
	__u64 duration_ns;    /* on CPU, from its switch in to its switch out */
	__u32 cpu;
	__u32 pad;
	struct nosched_run run;
};

#endif
