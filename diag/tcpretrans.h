/* SPDX-License-Identifier: Apache-2.0 */
/* tcpretrans: shared by tcpretrans.bpf.c and tcpretrans.c */
#ifndef ANOLE_DIAG_TCPRETRANS_H
#define ANOLE_DIAG_TCPRETRANS_H
#include "diag_common.h"

struct tcpretrans_event {
	__u64 ts;      /* bpf_ktime_get_ns() */
	__u32 pid;     /* the task running when it fired (often 0: a timer) */
	__u16 family;  /* AF_INET, AF_INET6 */
	__u16 sport;   /* host order */
	__u16 dport;   /* host order */
	__u16 pad;
	__s32 state;   /* TCP_ESTABLISHED ... (include/net/tcp_states.h) */
	__u8 saddr[16]; /* network order; the first 4 bytes for AF_INET */
	__u8 daddr[16];
	char comm[DIAG_COMM_LEN];
};

#endif
