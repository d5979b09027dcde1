// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * runqlat: time from a task becoming runnable (woken, new, or preempted
 * while still runnable) to it running, as a log2 histogram.
 * Two program sets, same logic: tp_btf (BTF-typed arguments) and raw_tp.
 * tp_btf keeps each task's enqueue time in task-local storage, a pointer
 * away from the task (the hot path: every wakeup and context switch);
 * raw_tp, whose task pointers the verifier cannot trust, in a hash map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "runqlat.h"

#define TASK_RUNNING 0

const volatile bool targ_ms = false;

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

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool tls)
{
	__u32 tid, zero = 0;
	__u64 *tsp, delta, now = bpf_ktime_get_ns();
	struct diag_hist *h;
	__u64 *sum;

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
	delta /= targ_ms ? 1000000 : 1000;
	h = bpf_map_lookup_elem(&rq_hist, &zero);
	if (h)
		h->slots[diag_hist_slot(delta)]++;
	sum = bpf_map_lookup_elem(&rq_sum, &zero);
	if (sum)
		*sum += delta;
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
