/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the BPF programs (diag/<tool>.bpf.c) and their user-space side:
 * only fixed-size types, no includes (the BPF side gets __u32 and friends
 * from vmlinux.h, user space from <linux/types.h>).
 */
#ifndef ANOLE_DIAG_COMMON_H
#define ANOLE_DIAG_COMMON_H

#define DIAG_COMM_LEN 16
/* log2 histograms: slot i counts values in [2^i, 2^(i+1)), slot 0 also 0 */
#define DIAG_HIST_SLOTS 27

/*
 * Task filter, a read-only global of every tool that filters tasks
 * (`const volatile struct diag_filter diag_filter`): user space sets it
 * before load, so the verifier prunes the checks that are off.
 */
struct diag_filter {
	__u32 tgid;	/* 0: any process */
	__u32 pad;
	__u64 cgroup_id; /* 0: any cgroup; else this cgroup v2 or below it */
};

struct diag_hist {
	__u32 slots[DIAG_HIST_SLOTS];
};

#endif
