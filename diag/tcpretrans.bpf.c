// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * tcpretrans: one event per TCP retransmission, from tcp:tcp_retransmit_skb.
 * Three program sets, same logic: tp_btf and raw_tp read the socket through
 * CO-RE; the classic tracepoint reads the addresses the event records.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "diag_bpf.h"
#include "tcpretrans.h"

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tr_events SEC(".maps");

__u64 tr_dropped = 0;

static __always_inline struct tcpretrans_event *reserve(void)
{
	struct tcpretrans_event *e = bpf_ringbuf_reserve(&tr_events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&tr_dropped, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline int on_retrans(const struct sock *sk)
{
	struct tcpretrans_event *e;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->family = family;
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (family == AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tr_btf_retrans, const struct sock *sk)
{
	return on_retrans(sk);
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(tr_raw_retrans, const struct sock *sk)
{
	return on_retrans(sk);
}

/* The event's record: its own event in newer kernels (with `err`: the
 * host's 6.18), the class tcp_event_sk_skb in older ones (6.1). The fields read are the same; their
 * offsets come from whichever the kernel has (CO-RE), and spelling both out
 * keeps the program compiling against either kernel's vmlinux.h (a cross
 * build uses the target's: Debian 12's arm64 kernel is 6.1). */
struct trace_event_raw_tcp_retransmit_skb___new {
	__u16 sport, dport, family;
	int state;
	__u8 saddr[4], daddr[4], saddr_v6[16], daddr_v6[16];
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb___old {
	__u16 sport, dport, family;
	int state;
	__u8 saddr[4], daddr[4], saddr_v6[16], daddr_v6[16];
} __attribute__((preserve_access_index));

/* one subprogram per layout: the verifier wants constant offsets into
 * the record, which a single body choosing between two layouts would not
 * keep; the one whose type the kernel lacks is never called */
#define TR_EMIT(name, type)                                                      \
	static __noinline int name(type *ctx)                                     \
	{                                                                        \
		struct tcpretrans_event *e;                                      \
		__u16 family = ctx->family;                                      \
                                                                                 \
		if (family != AF_INET && family != AF_INET6)                     \
			return 0;                                                \
		e = reserve();                                                   \
		if (!e)                                                          \
			return 0;                                                \
		e->family = family;                                              \
		e->sport = ctx->sport;                                           \
		e->dport = ctx->dport;                                           \
		e->state = ctx->state;                                           \
		/* the addresses sit unaligned in the record: the verifier   \
		 * refuses direct word loads there, so copy them */            \
		if (family == AF_INET) {                                         \
			bpf_probe_read_kernel(e->saddr, 4, ctx->saddr);          \
			bpf_probe_read_kernel(e->daddr, 4, ctx->daddr);          \
		} else {                                                         \
			bpf_probe_read_kernel(e->saddr, 16, ctx->saddr_v6);      \
			bpf_probe_read_kernel(e->daddr, 16, ctx->daddr_v6);      \
		}                                                                \
		bpf_ringbuf_submit(e, 0);                                        \
		return 0;                                                        \
	}

TR_EMIT(tp_retrans_new, struct trace_event_raw_tcp_retransmit_skb___new)
TR_EMIT(tp_retrans_old, struct trace_event_raw_tcp_event_sk_skb___old)

SEC("tp/tcp/tcp_retransmit_skb")
int tr_tp_retrans(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___new))
		return tp_retrans_new(ctx);
	return tp_retrans_old(ctx);
}

char LICENSE[] SEC("license") = "GPL";
