/* SPDX-License-Identifier: Apache-2.0 */
/* iohang: shared by iohang.bpf.c and iohang.c */
#ifndef ANOLE_DIAG_IOHANG_H
#define ANOLE_DIAG_IOHANG_H
#include "diag_common.h"

#define IOHANG_MAX_INFLIGHT 16384
#define IOHANG_RWBS_LEN 10

/* in-flight request: tp_btf/raw_tp key by the request's address, classic
 * tracepoints (no request pointer) by device and sector */
struct iohang_key {
	__u64 rq;
	__u64 sector;
	__u32 dev;
	__u32 pad;
};

enum {
	IOHANG_ISSUED = 1,   /* handed to the driver (block_rq_issue) */
	IOHANG_REQUEUED = 2, /* given back by the driver, to be issued again */
};

/* request flags, as the BPF side reads them from the kernel's (whose bits vary) */
enum {
	IOHANG_OPF_PREFLUSH = 1,
	IOHANG_OPF_FUA = 2,
	IOHANG_OPF_RAHEAD = 4,
	IOHANG_OPF_SYNC = 8,
	IOHANG_OPF_META = 16,
};

struct iohang_req {
	__u64 start_ns;  /* first seen: inserted into the queue or issued */
	__u64 issue_ns;  /* last issued to the driver, 0 while queued */
	__u64 sector;
	__u64 rq_start;  /* tp_btf/raw_tp: the request's own start_time_ns, to tell
			  * a reused request from the one seen before */
	__u32 dev;       /* kernel dev_t: major << 20 | minor */
	__u32 bytes;
	__u32 pid;       /* the task that queued or issued it: tgid */
	__u32 tid;
	__u32 flags;     /* IOHANG_* */
	__u32 op;        /* tp_btf/raw_tp: REQ_OP_* */
	__u32 opflags;   /* tp_btf/raw_tp: IOHANG_OPF_* */
	/* classic tracepoint: the operation as blktrace's RWBS ("W", "RS", "FWFS") */
	char rwbs[IOHANG_RWBS_LEN];
	char comm[DIAG_COMM_LEN];
};

/* a request that completed after the threshold */
struct iohang_event {
	struct iohang_req req;
	__u64 done_ns;
	__s32 error;
	__u32 pad;
};

#endif
