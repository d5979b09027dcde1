/* SPDX-License-Identifier: Apache-2.0 */
/* profile: shared by profile.bpf.c and profile.c */
#ifndef ANOLE_DIAG_PROFILE_H
#define ANOLE_DIAG_PROFILE_H
#include "diag_common.h"

#define PROFILE_MAX_ENTRIES 10240 /* distinct (process, stacks) counts */
#define PROFILE_MAX_STACKS 16384  /* distinct stacks, kernel and user */
#define PROFILE_STACK_DEPTH 127   /* PERF_MAX_STACK_DEPTH */

struct profile_key {
	__u32 pid;            /* tgid */
	__s32 kern_stack_id;  /* < 0: none (-EFAULT: sampled in user mode) */
	__s32 user_stack_id;  /* < 0: none (-EFAULT: a kernel thread) */
	__u32 pad;
	char comm[DIAG_COMM_LEN];
};

#endif
