/* SPDX-License-Identifier: Apache-2.0 */
/* execsnoop: shared by execsnoop.bpf.c and execsnoop.c */
#ifndef ANOLE_DIAG_EXECSNOOP_H
#define ANOLE_DIAG_EXECSNOOP_H
#include "diag_common.h"

#define EXECSNOOP_PATH_LEN 256
#define EXECSNOOP_ARGS_LEN 2048 /* a power of two: the BPF side masks with it */

struct execsnoop_event {
	__u64 ts;        /* bpf_ktime_get_ns() */
	__u32 pid;       /* tgid */
	__u32 ppid;
	__u32 uid;
	__u32 args_len;  /* bytes of args, NUL-separated argv */
	__u32 args_full; /* argv's size in the process (> args_len: truncated) */
	__u32 pad;
	char comm[DIAG_COMM_LEN];
	char filename[EXECSNOOP_PATH_LEN];
	char args[EXECSNOOP_ARGS_LEN];
};

#endif
