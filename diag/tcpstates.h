/* SPDX-License-Identifier: Apache-2.0 */
/* tcpstates: shared by tcpstates.bpf.c and tcpstates.c */
#ifndef ANOLE_DIAG_TCPSTATES_H
#define ANOLE_DIAG_TCPSTATES_H
#include "diag_common.h"

#define TCPSTATES_MAX_SOCKS 10240

struct tcpstates_event {
	__u64 skaddr;   /* the socket's kernel address: one connection's events */
	__u64 ts;       /* bpf_ktime_get_ns() */
	__u64 delta_us; /* time in oldstate (0: not seen entering it) */
	__u32 pid;      /* the task running when it changed */
	__u16 family;   /* AF_INET, AF_INET6 */
	__u16 sport;    /* host order */
	__u16 dport;    /* host order */
	__u16 pad;
	__s32 oldstate;
	__s32 newstate;
	__u32 pad2;
	__u8 saddr[16]; /* network order; the first 4 bytes for AF_INET */
	__u8 daddr[16];
	char comm[DIAG_COMM_LEN];
};

#endif
