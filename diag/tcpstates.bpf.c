// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * tcpstates: one event per TCP state change, from sock:inet_sock_set_state,
 * with the time spent in the state left. Three program sets, same logic:
 * tp_btf and raw_tp (socket read through CO-RE), classic tracepoint (the
 * fields the event records).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "diag_bpf.h"
#include "tcpstates.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_CLOSE 7

const volatile __u16 targ_sport = 0;
const volatile __u16 targ_dport = 0;

/* socket -> when it entered its current state */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TCPSTATES_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} ts_since SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ts_events SEC(".maps");

__u64 ts_dropped = 0;

/* e has family, ports and addresses set: filter, time, send */
static __always_inline int finish(struct tcpstates_event *e, __u64 skaddr, int oldstate, int newstate)
{
	__u64 now = bpf_ktime_get_ns(), *since;

	if ((targ_sport && e->sport != targ_sport) || (targ_dport && e->dport != targ_dport)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	since = bpf_map_lookup_elem(&ts_since, &skaddr);
	e->delta_us = since && now > *since ? (now - *since) / 1000 : 0;
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&ts_since, &skaddr);
	else
		bpf_map_update_elem(&ts_since, &skaddr, &now, BPF_ANY);
	e->skaddr = skaddr;
	e->ts = now;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->oldstate = oldstate;
	e->newstate = newstate;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline struct tcpstates_event *reserve(void)
{
	struct tcpstates_event *e = bpf_ringbuf_reserve(&ts_events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&ts_dropped, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	return e;
}

static __always_inline int on_state(const struct sock *sk, int oldstate, int newstate)
{
	struct tcpstates_event *e;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->family = family;
	/* as the tracepoint records it: inet_sport, 0 until the port is bound */
	e->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	return finish(e, (__u64)sk, oldstate, newstate);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(ts_btf_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(ts_raw_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

SEC("tp/sock/inet_sock_set_state")
int ts_tp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct tcpstates_event *e;
	__u16 family = ctx->family;

	if (ctx->protocol != IPPROTO_TCP || (family != AF_INET && family != AF_INET6))
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->family = family;
	e->sport = ctx->sport;
	e->dport = ctx->dport;
	/* unaligned in the record: copied, not loaded directly */
	if (family == AF_INET) {
		bpf_probe_read_kernel(e->saddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e->daddr, 4, ctx->daddr);
	} else {
		bpf_probe_read_kernel(e->saddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e->daddr, 16, ctx->daddr_v6);
	}
	return finish(e, (__u64)ctx->skaddr, ctx->oldstate, ctx->newstate);
}

char LICENSE[] SEC("license") = "GPL";
