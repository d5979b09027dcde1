// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * profile: CPU stack sampling. A software CPU clock perf event on each CPU
 * runs this program F times a second on whatever that CPU is running; it
 * counts samples by process and by kernel and user stack. Idle (pid 0) is
 * left out.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "profile.h"

const volatile bool targ_user_only = false;
const volatile bool targ_kernel_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROFILE_MAX_ENTRIES);
	__type(key, struct profile_key);
	__type(value, __u64);
} pf_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, PROFILE_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PROFILE_STACK_DEPTH * sizeof(__u64));
} pf_stacks SEC(".maps");

__u64 pf_missed = 0; /* samples dropped: pf_counts full */

SEC("perf_event")
int pf_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), one = 1, *count;
	struct profile_key key = {};

	if (!(__u32)id || !diag_current_wanted())
		return 0;
	key.pid = id >> 32;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.kern_stack_id = targ_user_only ? -1 : bpf_get_stackid(ctx, &pf_stacks, 0);
	key.user_stack_id = targ_kernel_only ? -1 :
			    bpf_get_stackid(ctx, &pf_stacks, BPF_F_USER_STACK);
	count = bpf_map_lookup_elem(&pf_counts, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else if (bpf_map_update_elem(&pf_counts, &key, &one, BPF_NOEXIST)) {
		count = bpf_map_lookup_elem(&pf_counts, &key);
		if (count)
			__sync_fetch_and_add(count, 1);
		else
			__sync_fetch_and_add(&pf_missed, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
