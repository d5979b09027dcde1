// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * opensnoop: open(2), openat(2) and openat2(2) with their result.
 * Program sets, in the order user space tries them:
 *   fexit   do_sys_openat2 (set by user space), path and result in one place;
 *   kprobe  do_sys_openat2 + kretprobe;
 *   tracepoint syscalls:sys_enter/exit_{openat,open,openat2};
 *   raw_tp  sys_enter/sys_exit, every syscall filtered by number (no tracefs).
 * Entries save the user's path pointer; the path is read at return, when the
 * kernel has faulted it in.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "opensnoop.h"

#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_openat 257
#else /* the generic syscall table: arm64, riscv, loongarch */
#define NR_open -1
#define NR_openat 56
#endif
#define NR_openat2 437

const volatile bool targ_failed = false;

struct open_args {
	__u64 fname; /* user pointer */
	__u64 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OPENSNOOP_MAX_INFLIGHT);
	__type(key, __u32);
	__type(value, struct open_args);
} op_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} op_events SEC(".maps");

__u64 op_dropped = 0;

static __always_inline int emit(const char *fname, __u64 flags, long ret)
{
	struct opensnoop_event *e;
	__u64 id;

	if (targ_failed && ret >= 0)
		return 0;
	e = bpf_ringbuf_reserve(&op_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&op_dropped, 1);
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	e->ts = bpf_ktime_get_ns();
	e->flags = flags;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ret = (__s32)ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), fname) < 0)
		e->path[0] = '\0';
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int enter(__u64 fname, __u64 flags)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args a = { fname, flags };

	if (!diag_current_wanted())
		return 0;
	bpf_map_update_elem(&op_start, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int leave(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&op_start, &tid);

	if (!a)
		return 0;
	emit((const char *)a->fname, a->flags, ret);
	bpf_map_delete_elem(&op_start, &tid);
	return 0;
}

/* ---- fexit: the target function is set at run time (set_attach_target) */

SEC("fexit")
int BPF_PROG(op_fexit, int dfd, const char *filename, struct open_how *how, long ret)
{
	if (!diag_current_wanted())
		return 0;
	return emit(filename, BPF_CORE_READ(how, flags), ret);
}

/* ---- kprobe */

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(op_kprobe, int dfd, const char *filename, struct open_how *how)
{
	return enter((__u64)filename, BPF_CORE_READ(how, flags));
}

SEC("kretprobe/do_sys_openat2")
int BPF_KRETPROBE(op_kretprobe, long ret)
{
	return leave(ret);
}

/* ---- classic tracepoints */

SEC("tp/syscalls/sys_enter_openat")
int op_tp_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[1], ctx->args[2]);
}

SEC("tp/syscalls/sys_exit_openat")
int op_tp_openat_x(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tp/syscalls/sys_enter_open")
int op_tp_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1]);
}

SEC("tp/syscalls/sys_exit_open")
int op_tp_open_x(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

static __always_inline __u64 how_flags(__u64 uhow)
{
	__u64 flags = 0;

	bpf_probe_read_user(&flags, sizeof(flags), (const void *)uhow); /* open_how.flags */
	return flags;
}

SEC("tp/syscalls/sys_enter_openat2")
int op_tp_openat2(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[1], how_flags(ctx->args[2]));
}

SEC("tp/syscalls/sys_exit_openat2")
int op_tp_openat2_x(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

/* ---- raw tracepoints on every syscall */

SEC("raw_tp/sys_enter")
int BPF_PROG(op_raw_enter, struct pt_regs *regs, long id)
{
	if (id == NR_openat)
		return enter(PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs));
	if (id == NR_open)
		return enter(PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs));
	if (id == NR_openat2)
		return enter(PT_REGS_PARM2_CORE_SYSCALL(regs),
			     how_flags(PT_REGS_PARM3_CORE_SYSCALL(regs)));
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(op_raw_exit, struct pt_regs *regs, long ret)
{
	return leave(ret);
}

char LICENSE[] SEC("license") = "GPL";
