// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * nosched: tasks that keep a CPU without scheduling for longer than a
 * threshold (SysAK's nosched): long loops in the kernel without
 * cond_resched(), or a CPU hog nothing preempts. sched_switch records, per
 * CPU, when the current task was switched in; a software CPU clock perf
 * event on each CPU samples what runs: past the threshold, the sample
 * notes the task, whether it was in the kernel, and its stacks. The task's
 * next switch out (or the end of tracing) reports it, with the whole time
 * on CPU. Filters (-p/-c) apply in the sample, where the task is current,
 * so the sched_switch side needs only the incoming task's id: tp_btf,
 * raw_tp and classic tracepoint variants, same logic.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "nosched.h"

#define EFAULT 14 /* bpf_get_stackid(): no stack of that kind here */

const volatile __u64 targ_thresh_ns = 10000000;
const volatile bool targ_kernel_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nosched_run);
} ns_runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, NOSCHED_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, NOSCHED_STACK_DEPTH * sizeof(__u64));
} ns_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ns_events SEC(".maps");

__u64 ns_dropped = 0;

static __always_inline void report_run(const struct nosched_run *r, __u64 now)
{
	struct nosched_event *e = bpf_ringbuf_reserve(&ns_events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&ns_dropped, 1);
		return;
	}
	e->ts = now;
	e->duration_ns = now - r->start;
	e->cpu = bpf_get_smp_processor_id();
	e->pad = 0;
	__builtin_memcpy(&e->run, r, sizeof(e->run));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void restart_run(struct nosched_run *r, __u64 now, __u32 tid)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->start = now;
	r->tid = tid;
}

static __always_inline int on_switch(__u32 next_tid)
{
	__u32 zero = 0;
	struct nosched_run *r = bpf_map_lookup_elem(&ns_runs, &zero);
	__u64 now = bpf_ktime_get_ns();

	if (!r)
		return 0;
	/* the outgoing task was seen past the threshold: report its whole run */
	if (r->start && r->pid && (!targ_kernel_only || r->kernel_samples))
		report_run(r, now);
	restart_run(r, now, next_tid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(ns_btf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(BPF_CORE_READ(next, pid));
}

SEC("raw_tp/sched_switch")
int BPF_PROG(ns_raw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(BPF_CORE_READ(next, pid));
}

SEC("tp/sched/sched_switch")
int ns_tp_switch(struct trace_event_raw_sched_switch *ctx)
{
	return on_switch(ctx->next_pid);
}

SEC("perf_event")
int ns_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 zero = 0, tid = (__u32)id;
	struct nosched_run *r = bpf_map_lookup_elem(&ns_runs, &zero);
	__s32 kid;

	/* idle, or a task whose switch in was not seen */
	if (!r || !tid || !r->start || r->tid != tid)
		return 0;
	/* a kernel stack only exists if the sample interrupted the kernel */
	kid = -EFAULT;
	if (targ_kernel_only) {
		kid = bpf_get_stackid(ctx, &ns_stacks, 0);
		if (kid == -EFAULT) {
			/*
			 * -k counts time in the kernel without scheduling: a sample in
			 * user mode ends that stretch (reported if it was long) and
			 * starts the next. Otherwise a user-mode spinner with a few
			 * interrupts (softirqs on a loaded machine) would be reported.
			 * The stretch then starts at most one sample period early.
			 */
			if (r->pid && r->kernel_samples)
				report_run(r, now);
			restart_run(r, now, tid);
			return 0;
		}
	}
	if (now - r->start < targ_thresh_ns)
		return 0;
	if (!diag_current_wanted())
		return 0;
	if (!r->pid) {
		r->pid = id >> 32;
		bpf_get_current_comm(&r->comm, sizeof(r->comm));
		r->kern_stack_id = -1;
		r->user_stack_id = -1;
	}
	r->last_seen = now;
	if (!targ_kernel_only)
		kid = bpf_get_stackid(ctx, &ns_stacks, 0);
	if (kid >= 0) {
		r->kernel_samples++;
		r->kern_stack_id = kid;
	} else if (kid == -EFAULT) {
		r->user_samples++;
	}
	r->user_stack_id = bpf_get_stackid(ctx, &ns_stacks, BPF_F_USER_STACK);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
