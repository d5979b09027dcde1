/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF-side helpers shared by the diag tools: task filter, log2 slots.
 * Every read of kernel memory goes through CO-RE (BPF_CORE_READ), so the
 * same code serves tp_btf, raw_tp, kprobe and tracepoint programs.
 */
#ifndef ANOLE_DIAG_BPF_H
#define ANOLE_DIAG_BPF_H
#include "diag_common.h"

#define DIAG_CGROUP_MAX_DEPTH 16

const volatile struct diag_filter diag_filter = {};

/* kernels before 5.14 call it "state" (a long) */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long diag_task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* The same for a trusted (BTF) task pointer: a plain load, no helper call. */
static __always_inline long diag_task_state_btf(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___pre514 *)t)->state;
}

/* Is t in the cgroup v2 diag_filter.cgroup_id or one below it? */
static __always_inline bool diag_task_in_cgroup(struct task_struct *t)
{
	struct cgroup *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);

	for (int i = 0; i < DIAG_CGROUP_MAX_DEPTH && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == diag_filter.cgroup_id)
			return true;
		/* struct cgroup starts with its css, whose parent is the parent cgroup's */
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return false;
}

static __always_inline bool diag_task_wanted(struct task_struct *t)
{
	if (diag_filter.tgid && (__u32)BPF_CORE_READ(t, tgid) != diag_filter.tgid)
		return false;
	if (diag_filter.cgroup_id && !diag_task_in_cgroup(t))
		return false;
	return true;
}

static __always_inline bool diag_current_wanted(void)
{
	if (!diag_filter.tgid && !diag_filter.cgroup_id)
		return true;
	return diag_task_wanted((struct task_struct *)bpf_get_current_task());
}

/* before 5.17 the request pointed at its disk */
struct request___pre517 {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* The kernel dev_t (major << 20 | minor) of a block request's disk. */
static __always_inline __u32 diag_rq_dev(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(((struct request___pre517 *)0)->rq_disk))
		disk = BPF_CORE_READ((struct request___pre517 *)rq, rq_disk);
	else
		disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return (__u32)BPF_CORE_READ(disk, major) << 20 | (__u32)BPF_CORE_READ(disk, first_minor);
}

/* The same for a trusted (BTF) request pointer: plain loads, no helper calls. */
static __always_inline __u32 diag_rq_dev_btf(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(((struct request___pre517 *)0)->rq_disk))
		disk = ((struct request___pre517 *)rq)->rq_disk;
	else
		disk = rq->q->disk;
	if (!disk)
		return 0;
	return (__u32)disk->major << 20 | (__u32)disk->first_minor;
}

/* floor(log2(v)), 0 for 0 */
static __always_inline __u32 diag_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static __always_inline __u32 diag_hist_slot(__u64 v)
{
	__u32 s = diag_log2(v);

	return s < DIAG_HIST_SLOTS ? s : DIAG_HIST_SLOTS - 1;
}

#endif
