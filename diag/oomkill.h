/* SPDX-License-Identifier: Apache-2.0 */
/* oomkill: shared by oomkill.bpf.c and oomkill.c */
#ifndef ANOLE_DIAG_OOMKILL_H
#define ANOLE_DIAG_OOMKILL_H
#include "diag_common.h"

#define OOMKILL_MEM_PAGES 1
#define OOMKILL_MEM_KB 2

/* one OOM kill: the victim, and the task whose allocation triggered it */
struct oomkill_event {
	__u64 ts;           /* bpf_ktime_get_ns() */
	__u32 pid;          /* victim (tgid; the thread id with the classic tracepoint) */
	__u32 tpid;         /* triggering process */
	__u32 uid;          /* victim's uid */
	__s32 oom_score_adj;
	__u64 total_vm;     /* in has_mem's unit */
	__u64 anon_rss;
	__u64 file_rss;
	__u64 shmem_rss;
	__u32 has_mem;      /* the four above are known: OOMKILL_MEM_*, 0 if not */
	__u32 pad;
	char comm[DIAG_COMM_LEN];
	char tcomm[DIAG_COMM_LEN];
};

#endif
