/* SPDX-License-Identifier: Apache-2.0 */
/* opensnoop: shared by opensnoop.bpf.c and opensnoop.c */
#ifndef ANOLE_DIAG_OPENSNOOP_H
#define ANOLE_DIAG_OPENSNOOP_H
#include "diag_common.h"

#define OPENSNOOP_PATH_LEN 512
#define OPENSNOOP_MAX_INFLIGHT 10240

struct opensnoop_event {
	__u64 ts;     /* bpf_ktime_get_ns() at return */
	__u64 flags;  /* open flags */
	__u32 pid;    /* tgid */
	__u32 tid;
	__u32 uid;
	__s32 ret;    /* fd, or -errno */
	char comm[DIAG_COMM_LEN];
	char path[OPENSNOOP_PATH_LEN];
};

#endif
