// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * execsnoop: one event per successful exec, from sched_process_exec (the
 * new program is in place: its argv is on the new stack, its comm set).
 * Three program sets, same logic: tp_btf, raw_tp, classic tracepoint.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "execsnoop.h"

/* -p: the process or its parent (a shell's commands are its children) */
const volatile __u32 targ_tgid_or_parent = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ex_events SEC(".maps");

__u64 ex_dropped = 0;

static __always_inline int on_exec(struct task_struct *task, const char *kfilename)
{
	struct execsnoop_event *e;
	struct mm_struct *mm;
	unsigned long start, end;
	__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
	__u32 pid = BPF_CORE_READ(task, tgid);
	__u64 len;

	if (targ_tgid_or_parent && pid != targ_tgid_or_parent && ppid != targ_tgid_or_parent)
		return 0;
	if (!diag_task_wanted(task))
		return 0;
	e = bpf_ringbuf_reserve(&ex_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&ex_dropped, 1);
		return 0;
	}
	e->ts = bpf_ktime_get_ns();
	e->pid = pid;
	e->ppid = ppid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), kfilename) < 0)
		e->filename[0] = '\0';

	mm = BPF_CORE_READ(task, mm);
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
	len = end > start ? end - start : 0;
	e->args_full = (__u32)len;
	if (len > EXECSNOOP_ARGS_LEN - 1)
		len = EXECSNOOP_ARGS_LEN - 1;
	/* keep the bound visible to the verifier whatever clang makes of the above */
	asm volatile("%[len] &= %[mask]" : [len] "+r"(len) : [mask] "i"(EXECSNOOP_ARGS_LEN - 1));
	if (bpf_probe_read_user(e->args, len, (const void *)start))
		len = 0;
	e->args_len = (__u32)len;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ex_btf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, BPF_CORE_READ(bprm, filename));
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(ex_raw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, BPF_CORE_READ(bprm, filename));
}

SEC("tp/sched/sched_process_exec")
int ex_tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	/* the filename is stored in the event record: __data_loc is offset | len << 16 */
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;

	return on_exec((struct task_struct *)bpf_get_current_task(), (const char *)ctx + off);
}

char LICENSE[] SEC("license") = "GPL";
