// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * memleak: outstanding user-space allocations of one process, by the user
 * stack that made them. Uprobes on libc's allocator: the entry probe keeps
 * the requested size per thread, the return probe records the address
 * with its size, time and stack; free (and realloc) removes it. What is
 * left in ml_allocs is what has not been freed (yet).
 * The programs' sections name their targets ("libc:malloc") for
 * `anole diag list`; memleak.c attaches them to the process's libc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "memleak.h"

const volatile __u64 targ_min_size = 0;
const volatile __u64 targ_max_size = ~0ULL;

/* thread -> size asked for, between an allocator's entry and return */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MEMLEAK_MAX_THREADS);
	__type(key, __u32);
	__type(value, __u64);
} ml_sizes SEC(".maps");

/* thread -> posix_memalign's memptr, read at its return */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MEMLEAK_MAX_THREADS);
	__type(key, __u32);
	__type(value, __u64);
} ml_memptrs SEC(".maps");

/* address -> outstanding allocation */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MEMLEAK_MAX_ALLOCS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct memleak_alloc);
} ml_allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, MEMLEAK_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MEMLEAK_STACK_DEPTH * sizeof(__u64));
} ml_stacks SEC(".maps");

__u64 ml_untracked = 0; /* allocations not recorded: ml_allocs full */

static __always_inline int alloc_enter(__u64 size)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (size < targ_min_size || size > targ_max_size)
		return 0;
	if (!diag_current_wanted())
		return 0;
	bpf_map_update_elem(&ml_sizes, &tid, &size, BPF_ANY);
	return 0;
}

static __always_inline int alloc_exit(void *ctx, __u64 addr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *size = bpf_map_lookup_elem(&ml_sizes, &tid);
	struct memleak_alloc a = {};

	if (!size)
		return 0; /* filtered out, or a nested call already recorded it */
	a.size = *size;
	bpf_map_delete_elem(&ml_sizes, &tid);
	if (!addr)
		return 0;
	a.ts = bpf_ktime_get_ns();
	a.stack_id = bpf_get_stackid(ctx, &ml_stacks, BPF_F_USER_STACK);
	if (bpf_map_update_elem(&ml_allocs, &addr, &a, BPF_ANY))
		__sync_fetch_and_add(&ml_untracked, 1);
	return 0;
}

static __always_inline int free_enter(__u64 addr)
{
	if (addr)
		bpf_map_delete_elem(&ml_allocs, &addr);
	return 0;
}

SEC("uprobe/libc:malloc")
int BPF_KPROBE(ml_malloc, size_t size) { return alloc_enter(size); }

SEC("uretprobe/libc:malloc")
int BPF_KRETPROBE(ml_malloc_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

SEC("uprobe/libc:calloc")
int BPF_KPROBE(ml_calloc, size_t nmemb, size_t size) { return alloc_enter((__u64)nmemb * size); }

SEC("uretprobe/libc:calloc")
int BPF_KRETPROBE(ml_calloc_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

/* the old block is gone (moved or resized), the new one is outstanding */
SEC("uprobe/libc:realloc")
int BPF_KPROBE(ml_realloc, void *ptr, size_t size)
{
	free_enter((__u64)ptr);
	return alloc_enter(size);
}

SEC("uretprobe/libc:realloc")
int BPF_KRETPROBE(ml_realloc_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

SEC("uprobe/libc:posix_memalign")
int BPF_KPROBE(ml_posix_memalign, void **memptr, size_t alignment, size_t size)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 p = (__u64)memptr;

	bpf_map_update_elem(&ml_memptrs, &tid, &p, BPF_ANY);
	return alloc_enter(size);
}

SEC("uretprobe/libc:posix_memalign")
int BPF_KRETPROBE(ml_posix_memalign_ret, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *memptr = bpf_map_lookup_elem(&ml_memptrs, &tid), addr = 0;

	if (!memptr)
		return 0;
	if (ret == 0)
		bpf_probe_read_user(&addr, sizeof(addr), (void *)*memptr);
	bpf_map_delete_elem(&ml_memptrs, &tid);
	return alloc_exit(ctx, addr); /* addr 0 (failed): only forgets the size */
}

SEC("uprobe/libc:aligned_alloc")
int BPF_KPROBE(ml_aligned_alloc, size_t alignment, size_t size) { return alloc_enter(size); }

SEC("uretprobe/libc:aligned_alloc")
int BPF_KRETPROBE(ml_aligned_alloc_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

SEC("uprobe/libc:memalign")
int BPF_KPROBE(ml_memalign, size_t alignment, size_t size) { return alloc_enter(size); }

SEC("uretprobe/libc:memalign")
int BPF_KRETPROBE(ml_memalign_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

SEC("uprobe/libc:valloc")
int BPF_KPROBE(ml_valloc, size_t size) { return alloc_enter(size); }

SEC("uretprobe/libc:valloc")
int BPF_KRETPROBE(ml_valloc_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

SEC("uprobe/libc:pvalloc")
int BPF_KPROBE(ml_pvalloc, size_t size) { return alloc_enter(size); }

SEC("uretprobe/libc:pvalloc")
int BPF_KRETPROBE(ml_pvalloc_ret, void *ret) { return alloc_exit(ctx, (__u64)ret); }

SEC("uprobe/libc:free")
int BPF_KPROBE(ml_free, void *ptr) { return free_enter((__u64)ptr); }

char LICENSE[] SEC("license") = "GPL";
