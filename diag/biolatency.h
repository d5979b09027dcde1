/* SPDX-License-Identifier: Apache-2.0 */
/* biolatency: shared by biolatency.bpf.c and biolatency.c */
#ifndef ANOLE_DIAG_BIOLATENCY_H
#define ANOLE_DIAG_BIOLATENCY_H
#include "diag_common.h"

#define BIOLATENCY_MAX_INFLIGHT 10240
#define BIOLATENCY_MAX_DISKS 256

/* in-flight request: tp_btf/raw_tp key by the request's address, classic
 * tracepoints (no request pointer) by device and sector */
struct biolatency_key {
	__u64 rq;
	__u64 sector;
	__u32 dev;
	__u32 pad;
};

/* a disk's histogram and the sum of its latencies (for `anole monitor`'s
 * _sum), one per-CPU value: one map lookup per completion */
struct biolatency_hist {
	struct diag_hist hist;
	__u32 pad;
	__u64 sum;
};

#endif
