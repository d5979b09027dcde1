// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * offcputime: time threads spend off CPU (blocked, sleeping, preempted),
 * summed by thread and the kernel and user stacks it switched out in. At
 * sched_switch the program runs on the outgoing task, so
 * bpf_get_stackid() there is where it blocked; the time is added when the
 * task is switched in again. Two program sets, same logic: tp_btf, raw_tp.
 *
 * The kernel does not report every switch-in: on the 6.18 VM this was
 * written on, about 1 in 1000 switch-outs came for a thread whose last
 * switch-out had no switch-in after it (seen by bpftrace too, with no
 * recursion misses). The period in between is lost; oc_lost counts them so
 * the report can say so, and the stale start is replaced.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "offcputime.h"

const volatile __u64 targ_min_us = 1;
const volatile __u64 targ_max_us = ~0ULL;
const volatile bool targ_user_only = false;
const volatile bool targ_kernel_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OFFCPU_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct offcpu_start);
} oc_start SEC(".maps");

/* offcpu_key -> microseconds off CPU */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OFFCPU_MAX_ENTRIES);
	__type(key, struct offcpu_key);
	__type(value, __u64);
} oc_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, OFFCPU_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, OFFCPU_STACK_DEPTH * sizeof(__u64));
} oc_stacks SEC(".maps");

__u64 oc_missed = 0;       /* totals dropped: oc_counts full */
__u64 oc_lost = 0;         /* periods lost: a switch-in the kernel did not report */
__u64 oc_start_missed = 0; /* switch-outs not recorded: oc_start full */

#ifndef TASK_DEAD
#define TASK_DEAD 0x80
#endif

static __always_inline int on_switch(void *ctx, struct task_struct *prev, struct task_struct *next)
{
	struct offcpu_start *sp, st = {};
	__u32 tid = BPF_CORE_READ(prev, pid);
	__u64 now = bpf_ktime_get_ns(), delta, *total;

	if (tid && (diag_task_state(prev) & TASK_DEAD)) {
		/* its last switch-out: nothing comes back, so keep no start */
		bpf_map_delete_elem(&oc_start, &tid);
	} else if (tid && diag_task_wanted(prev)) {
		st.ts = now;
		st.key.pid = BPF_CORE_READ(prev, tgid);
		st.key.tid = tid;
		st.key.kern_stack_id = targ_user_only ? -1 : bpf_get_stackid(ctx, &oc_stacks, 0);
		st.key.user_stack_id = targ_kernel_only ? -1 :
				       bpf_get_stackid(ctx, &oc_stacks, BPF_F_USER_STACK);
		BPF_CORE_READ_STR_INTO(&st.key.comm, prev, comm);
		if (bpf_map_update_elem(&oc_start, &tid, &st, BPF_NOEXIST)) {
			/* a start already there: its switch-in was not reported */
			if (bpf_map_lookup_elem(&oc_start, &tid))
				__sync_fetch_and_add(&oc_lost, 1);
			if (bpf_map_update_elem(&oc_start, &tid, &st, BPF_ANY))
				__sync_fetch_and_add(&oc_start_missed, 1);
		}
	}

	tid = BPF_CORE_READ(next, pid);
	sp = bpf_map_lookup_elem(&oc_start, &tid);
	if (!sp)
		return 0;
	delta = now - sp->ts;
	if ((__s64)delta < 0)
		goto out;
	delta /= 1000;
	if (delta < targ_min_us || delta > targ_max_us)
		goto out;
	total = bpf_map_lookup_elem(&oc_counts, &sp->key);
	if (total) {
		__sync_fetch_and_add(total, delta);
	} else if (bpf_map_update_elem(&oc_counts, &sp->key, &delta, BPF_NOEXIST)) {
		total = bpf_map_lookup_elem(&oc_counts, &sp->key);
		if (total)
			__sync_fetch_and_add(total, delta);
		else
			__sync_fetch_and_add(&oc_missed, 1);
	}
out:
	bpf_map_delete_elem(&oc_start, &tid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(oc_btf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(oc_raw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}

char LICENSE[] SEC("license") = "GPL";
