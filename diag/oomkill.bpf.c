// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * oomkill: one event per OOM kill, from oom:mark_victim (the victim is
 * chosen and about to get SIGKILL; the program runs in the task whose
 * allocation ran out of memory). Three program sets, same logic: tp_btf,
 * raw_tp (the victim's task_struct: its mm counters read through CO-RE),
 * classic tracepoint (the fields the event records).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "oomkill.h"

/* mm counters: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES */
#define OOM_FILEPAGES 0
#define OOM_ANONPAGES 1
#define OOM_SHMEMPAGES 3

/* before 6.2 the counters were atomics, not percpu_counters */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/* since 6.2: an array of percpu_counters; spelled out here so that the
 * program also compiles against an older kernel's vmlinux.h (a cross build
 * uses the target's: Debian 12's arm64 kernel is 6.1). The element's size
 * is the kernel's (bpf_core_type_size), not this declaration's. */
struct percpu_counter___new {
	__s64 count;
} __attribute__((preserve_access_index));

struct mm_struct___new {
	struct percpu_counter___new rss_stat[4];
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} oom_events SEC(".maps");

__u64 oom_dropped = 0;

static __always_inline __u64 rss(struct mm_struct *mm, int i)
{
	__s64 v;

	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;

		v = BPF_CORE_READ(old, rss_stat.count[i].counter);
	} else {
		__u64 off = bpf_core_field_offset(struct mm_struct___new, rss_stat) +
			    (__u64)i * bpf_core_type_size(struct percpu_counter___new) +
			    bpf_core_field_offset(struct percpu_counter___new, count);

		if (bpf_probe_read_kernel(&v, sizeof(v), (char *)mm + off))
			v = 0;
	}
	return v > 0 ? (__u64)v : 0;
}

static __always_inline struct oomkill_event *reserve(void)
{
	struct oomkill_event *e = bpf_ringbuf_reserve(&oom_events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&oom_dropped, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->tpid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->tcomm, sizeof(e->tcomm));
	return e;
}

static __always_inline int on_victim(struct task_struct *victim, uid_t uid)
{
	struct oomkill_event *e;
	struct mm_struct *mm;

	if (!diag_task_wanted(victim))
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(victim, tgid);
	e->uid = uid;
	e->oom_score_adj = BPF_CORE_READ(victim, signal, oom_score_adj);
	BPF_CORE_READ_STR_INTO(&e->comm, victim, comm);
	mm = BPF_CORE_READ(victim, mm);
	if (mm) {
		e->total_vm = BPF_CORE_READ(mm, total_vm);
		e->anon_rss = rss(mm, OOM_ANONPAGES);
		e->file_rss = rss(mm, OOM_FILEPAGES);
		e->shmem_rss = rss(mm, OOM_SHMEMPAGES);
		e->has_mem = OOMKILL_MEM_PAGES;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(oom_btf_victim, struct task_struct *task, uid_t uid)
{
	return on_victim(task, uid);
}

SEC("raw_tp/mark_victim")
int BPF_PROG(oom_raw_victim, struct task_struct *task, uid_t uid)
{
	return on_victim(task, uid);
}

/* kernels before 6.7 record only the pid */
struct trace_event_raw_mark_victim___new {
	int pid;
	u32 __data_loc_comm;
	long unsigned int total_vm;
	long unsigned int anon_rss;
	long unsigned int file_rss;
	long unsigned int shmem_rss;
	uid_t uid;
	short int oom_score_adj;
} __attribute__((preserve_access_index));

SEC("tp/oom/mark_victim")
int oom_tp_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct trace_event_raw_mark_victim___new *n = (void *)ctx;
	struct oomkill_event *e;
	__u32 pid = ctx->pid;

	/* no victim task here: -p compares the pid, -c the triggering task's
	 * cgroup (a memory cgroup's OOM is triggered from inside it) */
	if (diag_filter.tgid && pid != diag_filter.tgid)
		return 0;
	if (diag_filter.cgroup_id &&
	    !diag_task_in_cgroup((struct task_struct *)bpf_get_current_task()))
		return 0;
	e = reserve();
	if (!e)
		return 0;
	e->pid = pid;
	if (bpf_core_field_exists(n->total_vm)) {
		unsigned int off = BPF_CORE_READ(n, __data_loc_comm) & 0xFFFF;

		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), (const char *)ctx + off);
		e->total_vm = BPF_CORE_READ(n, total_vm);
		e->anon_rss = BPF_CORE_READ(n, anon_rss);
		e->file_rss = BPF_CORE_READ(n, file_rss);
		e->shmem_rss = BPF_CORE_READ(n, shmem_rss);
		e->uid = BPF_CORE_READ(n, uid);
		e->oom_score_adj = BPF_CORE_READ(n, oom_score_adj);
		e->has_mem = OOMKILL_MEM_KB; /* the event records kB */
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
