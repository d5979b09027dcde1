// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * runqlat: time from a task becoming runnable (woken, new, or preempted
 * while still runnable) to it running, as a log2 histogram.
 * Two program sets, same logic: tp_btf (BTF-typed arguments) and raw_tp.
 * tp_btf keeps each task's enqueue time in task-local storage, a pointer
 * away from the task (the hot path: every wakeup and context switch);
 * raw_tp, whose task pointers the verifier cannot trust, in a hash map.
 * A third, for `anole monitor`, reads the scheduler's own queueing stamp
 * (rq_si_switch, below).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "runqlat.h"

#define TASK_RUNNING 0

const volatile bool targ_ms = false;
const volatile bool targ_per_process = false; /* -P */
const volatile bool targ_per_thread = false;  /* -L */

/* the task -> time it became runnable (0: not waiting), for tp_btf; not
 * created when the raw_tp programs run (runqlat.c), so kernels without
 * task storage (before 5.11) still load those */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} rq_task_start SEC(".maps");

/* thread id -> time it became runnable, for raw_tp */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQLAT_MAX_TASKS);
	__type(key, __u32);
	__type(value, __u64);
} rq_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct diag_hist);
} rq_hist SEC(".maps");

/* -P/-L: process or thread id -> its histogram (shared by the CPUs, so
 * atomic adds); one entry when unused (runqlat.c) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQLAT_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct runqlat_task_hist);
} rq_task_hists SEC(".maps");

/* sum of the latencies (same unit), for `anole monitor`'s histogram _sum */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rq_sum SEC(".maps");

/*
 * tls: the task pointer is trusted (tp_btf): fields are plain loads (no
 * probe-read helper) and task storage can be used. `now`: a timestamp the
 * caller already took, or 0.
 */
static __always_inline int enqueue(struct task_struct *p, bool tls, __u64 now)
{
	__u32 tid = tls ? p->pid : BPF_CORE_READ(p, pid);
	__u64 *tsp;

	if (!tid || !diag_task_wanted(p))
		return 0;
	if (!now)
		now = bpf_ktime_get_ns();
	if (tls) {
		tsp = bpf_task_storage_get(&rq_task_start, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (tsp)
			*tsp = now;
	} else {
		bpf_map_update_elem(&rq_start, &tid, &now, BPF_ANY);
	}
	return 0;
}

/* -P/-L: a wait (in the histogram's unit) of task t into its own histogram */
static __always_inline void record_task(__u64 delta, struct task_struct *t)
{
	__u32 key = targ_per_process ? BPF_CORE_READ(t, tgid) : BPF_CORE_READ(t, pid);
	struct runqlat_task_hist *th = bpf_map_lookup_elem(&rq_task_hists, &key);

	if (!th) {
		struct runqlat_task_hist fresh = {};

		/* a process is named after its main thread, as ps shows it */
		if (targ_per_process)
			BPF_CORE_READ_STR_INTO(&fresh.comm, t, group_leader, comm);
		else
			BPF_CORE_READ_STR_INTO(&fresh.comm, t, comm);
		bpf_map_update_elem(&rq_task_hists, &key, &fresh, BPF_NOEXIST);
		th = bpf_map_lookup_elem(&rq_task_hists, &key);
		if (!th)
			return;
	}
	__sync_fetch_and_add(&th->hist.slots[diag_hist_slot(delta)], 1);
}

/* task t waited delta ns: into the histogram and the sum */
static __always_inline void record(__u64 delta, struct task_struct *t)
{
	__u32 zero = 0;
	struct diag_hist *h;
	__u64 *sum;

	delta /= targ_ms ? 1000000 : 1000;
	if (targ_per_process || targ_per_thread) {
		record_task(delta, t);
		return;
	}
	h = bpf_map_lookup_elem(&rq_hist, &zero);
	if (h)
		h->slots[diag_hist_slot(delta)]++;
	sum = bpf_map_lookup_elem(&rq_sum, &zero);
	if (sum)
		*sum += delta;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool tls)
{
	__u32 tid;
	__u64 *tsp, delta, now = bpf_ktime_get_ns();

	/* preempted while runnable: it waits on the run queue from now */
	if ((tls ? diag_task_state_btf(prev) : diag_task_state(prev)) == TASK_RUNNING)
		enqueue(prev, tls, now);

	if (tls) {
		tsp = bpf_task_storage_get(&rq_task_start, next, 0, 0);
		if (!tsp || !*tsp)
			return 0;
		delta = now - *tsp;
		*tsp = 0;
	} else {
		tid = BPF_CORE_READ(next, pid);
		tsp = bpf_map_lookup_elem(&rq_start, &tid);
		if (!tsp)
			return 0;
		delta = now - *tsp;
		bpf_map_delete_elem(&rq_start, &tid);
	}
	if ((__s64)delta < 0)
		return 0;
	record(delta, next);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rq_btf_wakeup, struct task_struct *p)
{
	return enqueue(p, true, 0);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rq_btf_wnew, struct task_struct *p)
{
	return enqueue(p, true, 0);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rq_btf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, true);
}

/*
 * The always-on variant (`anole monitor`): the scheduler's own run-queue
 * accounting (CONFIG_SCHED_INFO) stamps each task when it is queued
 * (sched_info.last_queued, in the clock of the run queue it waits on) and
 * clears the stamp only after this tracepoint, when the task starts to run.
 * So one program, on the switch alone, with no map of start times and no
 * clock read of its own: the wait is this run queue's clock (updated by
 * __schedule() just before) minus the stamp. The wakeup programs and their
 * task storage are not needed. A wait split by a load-balancing migration
 * counts only its part on the CPU that runs the task (the kernel adds the
 * rest to run_delay).
 * The run queue is reached from the task: every task, whatever its class,
 * points at its CPU's CFS run queue, and that at its rq, with group
 * scheduling (CONFIG_FAIR_GROUP_SCHED, which the cgroup cpu controller
 * needs); the per-CPU `runqueues` symbol would need CONFIG_KALLSYMS_ALL.
 * Fails to load, and the next variant is used, where these fields are
 * missing; user space checks the accounting is live (/proc/self/schedstat).
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(rq_si_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 queued = next->sched_info.last_queued, delta;

	if (!queued || !diag_task_wanted(next))
		return 0;
	delta = next->se.cfs_rq->rq->clock - queued;
	if ((__s64)delta < 0)
		return 0;
	record(delta, next);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(rq_raw_wakeup, struct task_struct *p)
{
	return enqueue(p, false, 0);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(rq_raw_wnew, struct task_struct *p)
{
	return enqueue(p, false, 0);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(rq_raw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, false);
}

char LICENSE[] SEC("license") = "GPL";
