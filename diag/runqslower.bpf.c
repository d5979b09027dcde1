// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * runqslower: one event per thread that waited on a run queue longer than
 * a threshold: from becoming runnable (woken, new, or preempted while still
 * runnable) to getting the CPU, with the task it took the CPU from. The same
 * clock as runqlat. Three program sets: tp_btf, raw_tp (task_structs read
 * through CO-RE), classic tracepoint (the woken and next threads are only
 * ids there; the outgoing one is the current task).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "runqslower.h"

#define TASK_RUNNING 0

const volatile __u64 targ_min_us = 10000;

/* thread id -> when it became runnable */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQSLOWER_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct runqslower_start);
} rs_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rs_events SEC(".maps");

__u64 rs_dropped = 0;

static __always_inline void enqueue(__u32 tid, bool checked)
{
	struct runqslower_start st = { .ts = bpf_ktime_get_ns(), .unchecked = !checked };

	if (tid)
		bpf_map_update_elem(&rs_start, &tid, &st, BPF_ANY);
}

static __always_inline int wake_task(struct task_struct *p)
{
	if (diag_task_wanted(p))
		enqueue(BPF_CORE_READ(p, pid), true);
	return 0;
}

/* prev: the outgoing task; next: the incoming one, or NULL with only its
 * id and comm (next_comm, in the tracepoint's record) */
static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next,
				     __u32 next_tid, const char *next_comm)
{
	struct runqslower_start *sp;
	struct runqslower_event *e;
	__u64 now, delta;

	/* preempted while runnable: it waits on the run queue from now */
	if (diag_task_state(prev) == TASK_RUNNING && diag_task_wanted(prev))
		enqueue(BPF_CORE_READ(prev, pid), true);

	sp = bpf_map_lookup_elem(&rs_start, &next_tid);
	if (!sp)
		return 0;
	now = bpf_ktime_get_ns();
	delta = (now - sp->ts) / 1000;
	if ((__s64)(now - sp->ts) < 0 || delta < targ_min_us)
		goto out;
	e = bpf_ringbuf_reserve(&rs_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&rs_dropped, 1);
		goto out;
	}
	e->ts = now;
	e->delta_us = delta;
	e->tid = next_tid;
	e->unchecked = sp->unchecked;
	e->cpu = bpf_get_smp_processor_id();
	e->prev_pid = BPF_CORE_READ(prev, tgid);
	e->prev_tid = BPF_CORE_READ(prev, pid);
	BPF_CORE_READ_STR_INTO(&e->prev_comm, prev, comm);
	if (next) {
		e->pid = BPF_CORE_READ(next, tgid);
		BPF_CORE_READ_STR_INTO(&e->comm, next, comm);
	} else {
		e->pid = 0;
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), next_comm);
	}
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&rs_start, &next_tid);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rs_btf_wakeup, struct task_struct *p)
{
	return wake_task(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rs_btf_wnew, struct task_struct *p)
{
	return wake_task(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rs_btf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, BPF_CORE_READ(next, pid), NULL);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(rs_raw_wakeup, struct task_struct *p)
{
	return wake_task(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(rs_raw_wnew, struct task_struct *p)
{
	return wake_task(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(rs_raw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, BPF_CORE_READ(next, pid), NULL);
}

/* classic tracepoints: the woken thread is an id, filtered in user space */
SEC("tp/sched/sched_wakeup")
int rs_tp_wakeup(struct trace_event_raw_sched_wakeup_template *ctx)
{
	enqueue(ctx->pid, false);
	return 0;
}

SEC("tp/sched/sched_wakeup_new")
int rs_tp_wnew(struct trace_event_raw_sched_wakeup_template *ctx)
{
	enqueue(ctx->pid, false);
	return 0;
}

SEC("tp/sched/sched_switch")
int rs_tp_switch(struct trace_event_raw_sched_switch *ctx)
{
	/* the event fires before the switch: the current task is prev */
	return on_switch((struct task_struct *)bpf_get_current_task(), NULL, ctx->next_pid,
			 ctx->next_comm);
}

char LICENSE[] SEC("license") = "GPL";
