// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * biolatency: block I/O latency from issue to the device to completion, as
 * a log2 histogram, for all disks or one (-d), per disk with -D.
 * Program sets: tp_btf and raw_tp on block_rq_issue/block_rq_complete (the
 * request itself is the key), classic tracepoints (device + sector).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "biolatency.h"


const volatile bool targ_ms = false;
const volatile bool targ_per_disk = false;
const volatile __u32 targ_dev = 0; /* kernel dev_t (major << 20 | minor), 0: all */
const volatile bool targ_filter_dev = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BIOLATENCY_MAX_INFLIGHT);
	__type(key, struct biolatency_key);
	__type(value, __u64);
} bl_start SEC(".maps");

/* dev (0 unless -D) -> histogram */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BIOLATENCY_MAX_DISKS);
	__type(key, __u32);
	__type(value, struct biolatency_hist);
} bl_hists SEC(".maps");

static __always_inline int issue(struct biolatency_key *k)
{
	__u64 now;

	if (targ_filter_dev && k->dev != targ_dev)
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&bl_start, k, &now, BPF_ANY);
	return 0;
}

/* a latency of delta ns on disk dev (used only for -D) into its histogram */
static __always_inline int record(__u64 delta, __u32 dev)
{
	static const struct biolatency_hist zero;
	__u32 hkey = targ_per_disk ? dev : 0;
	struct biolatency_hist *h;

	if ((__s64)delta < 0)
		return 0;
	delta /= targ_ms ? 1000000 : 1000;
	h = bpf_map_lookup_elem(&bl_hists, &hkey);
	if (!h) {
		bpf_map_update_elem(&bl_hists, &hkey, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&bl_hists, &hkey);
		if (!h)
			return 0;
	}
	h->hist.slots[diag_hist_slot(delta)]++;
	h->sum += delta;
	return 0;
}

/* dev: the request's disk, needed only for -D (and -d, in the key) */
static __always_inline int complete(struct biolatency_key *k, __u32 dev)
{
	__u64 *tsp = bpf_map_lookup_elem(&bl_start, k), delta;

	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&bl_start, k);
	return record(delta, dev);
}

/* btf: rq is a trusted pointer (tp_btf): plain loads instead of probe reads */
static __always_inline int rq_event(struct request *rq, bool done, bool btf)
{
	/* the request's address identifies it; its disk (several reads through
	 * the request) is looked up only when a filter or -D needs it */
	__u32 dev = targ_filter_dev || (done && targ_per_disk) ?
		    (btf ? diag_rq_dev_btf(rq) : diag_rq_dev(rq)) : 0;
	struct biolatency_key k = { .rq = (__u64)rq, .dev = targ_filter_dev ? dev : 0 };

	return done ? complete(&k, dev) : issue(&k);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(bl_btf_issue, struct request *rq)
{
	return rq_event(rq, false, true);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(bl_btf_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_event(rq, true, true);
}

/*
 * From the request's start (`anole monitor`, and -Q): the block layer stamps
 * each request it accounts in /proc/diskstats (iostats on, or an I/O
 * scheduler) with start_time_ns, on CLOCK_MONOTONIC as bpf_ktime_get_ns(),
 * when the request is set up, before it is queued. Timing from that stamp
 * needs only the completion, and no map of start times: the latency is the
 * one /proc/diskstats adds up per request (its milliseconds reading and
 * writing, iostat's await): queueing and device. Requests without the
 * stamp are skipped; a partial completion (a part of the bytes) is not the
 * request's end, and waits for the last one.
 */
static __always_inline int kstamp_done(__u64 start, __u32 left, unsigned int nr_bytes,
				       struct request *rq, bool btf)
{
	__u32 dev = 0;

	if (!start || nr_bytes < left)
		return 0;
	if (targ_filter_dev || targ_per_disk)
		dev = btf ? diag_rq_dev_btf(rq) : diag_rq_dev(rq);
	if (targ_filter_dev && dev != targ_dev)
		return 0;
	return record(bpf_ktime_get_ns() - start, dev);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(bl_kstamp_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return kstamp_done(rq->start_time_ns, rq->__data_len, nr_bytes, rq, true);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(bl_kstamp_raw_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return kstamp_done(BPF_CORE_READ(rq, start_time_ns), BPF_CORE_READ(rq, __data_len),
			   nr_bytes, rq, false);
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(bl_raw_issue, struct request *rq)
{
	return rq_event(rq, false, false);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(bl_raw_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_event(rq, true, false);
}

SEC("tp/block/block_rq_issue")
int bl_tp_issue(struct trace_event_raw_block_rq *ctx)
{
	struct biolatency_key k = { .sector = ctx->sector, .dev = ctx->dev };

	return issue(&k);
}

SEC("tp/block/block_rq_complete")
int bl_tp_done(struct trace_event_raw_block_rq_completion *ctx)
{
	struct biolatency_key k = { .sector = ctx->sector, .dev = ctx->dev };

	return complete(&k, ctx->dev);
}

char LICENSE[] SEC("license") = "GPL";
