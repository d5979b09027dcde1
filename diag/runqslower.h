/* SPDX-License-Identifier: Apache-2.0 */
/* runqslower: shared by runqslower.bpf.c and runqslower.c */
#ifndef ANOLE_DIAG_RUNQSLOWER_H
#define ANOLE_DIAG_RUNQSLOWER_H
#include "diag_common.h"

#define RUNQSLOWER_MAX_TASKS 10240

/* a thread that became runnable and is not running yet */
struct runqslower_start {
	__u64 ts;
	/* woken through the classic tracepoint, which names the thread but
	 * not its task: -p/-c are checked in user space */
	__u32 unchecked;
	__u32 pad;
};

/* one thread that waited on a run queue longer than the threshold */
struct runqslower_event {
	__u64 ts;        /* bpf_ktime_get_ns() when it got the CPU */
	__u64 delta_us;  /* time runnable before that */
	__u32 pid;       /* its tgid; 0: unknown (classic tracepoint) */
	__u32 tid;
	__u32 prev_pid;  /* the task it took the CPU from */
	__u32 prev_tid;
	__u32 cpu;
	__u32 unchecked;
	char comm[DIAG_COMM_LEN];
	char prev_comm[DIAG_COMM_LEN];
};

#endif
