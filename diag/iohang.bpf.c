// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * iohang: block I/O requests outstanding for long. A request enters the
 * in-flight table when it is queued (block_rq_insert) or issued to the
 * driver (block_rq_issue), whichever comes first, with the task doing it;
 * it leaves at block_rq_complete, or when merged into another request.
 * User space scans the table every
 * interval, so a request that never completes is still seen while it
 * hangs; one that completes after the threshold is also sent as an event.
 * Program sets: tp_btf and raw_tp (the request is the key), classic
 * tracepoints (device + sector).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "diag_bpf.h"
#include "iohang.h"

#define REQ_OP_MASK 0xff /* REQ_OP_BITS is 8 */

const volatile __u64 targ_threshold_ns = 1000000000ULL;
const volatile __u32 targ_dev = 0; /* kernel dev_t, 0: all */
const volatile bool targ_filter_dev = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOHANG_MAX_INFLIGHT);
	__type(key, struct iohang_key);
	__type(value, struct iohang_req);
} ih_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ih_events SEC(".maps");

__u64 ih_dropped = 0;  /* completion events the ring buffer had no room for */
__u64 ih_untracked = 0; /* requests not tracked: table full */

/* 1 << the bit of a request flag on this kernel, 0 if it has no such flag */
#define REQ_BIT(name) \
	(bpf_core_enum_value_exists(enum req_flag_bits, name) ? \
	 1u << bpf_core_enum_value(enum req_flag_bits, name) : 0)

static __always_inline void rq_op(struct request *rq, struct iohang_req *r)
{
	__u32 opf = BPF_CORE_READ(rq, cmd_flags);

	r->op = opf & REQ_OP_MASK;
	r->opflags = (opf & REQ_BIT(__REQ_PREFLUSH) ? IOHANG_OPF_PREFLUSH : 0) |
		     (opf & REQ_BIT(__REQ_FUA) ? IOHANG_OPF_FUA : 0) |
		     (opf & REQ_BIT(__REQ_RAHEAD) ? IOHANG_OPF_RAHEAD : 0) |
		     (opf & REQ_BIT(__REQ_SYNC) ? IOHANG_OPF_SYNC : 0) |
		     (opf & REQ_BIT(__REQ_META) ? IOHANG_OPF_META : 0);
}

/*
 * Queued or issued. A request is queued once and issued once per life,
 * except after a requeue: an entry already issued and not requeued, or
 * (tp_btf/raw_tp) of another start time, is a stale one (a completion not
 * seen) and starts afresh.
 */
static __always_inline struct iohang_req *seen(struct iohang_key *k, bool issue, __u64 rq_start)
{
	struct iohang_req *r = bpf_map_lookup_elem(&ih_inflight, k), fresh = {};
	__u64 now = bpf_ktime_get_ns();
	__u64 id;

	if (r && r->rq_start == rq_start) {
		if (!(r->flags & IOHANG_ISSUED) || (r->flags & IOHANG_REQUEUED)) {
			if (issue) {
				r->issue_ns = now;
				r->flags = IOHANG_ISSUED;
			}
			return NULL; /* the caller has nothing to fill in */
		}
	}
	if (targ_filter_dev && k->dev != targ_dev)
		return NULL;
	if (!diag_current_wanted())
		return NULL;
	id = bpf_get_current_pid_tgid();
	fresh.start_ns = now;
	fresh.issue_ns = issue ? now : 0;
	fresh.flags = issue ? IOHANG_ISSUED : 0;
	fresh.dev = k->dev;
	fresh.rq_start = rq_start;
	fresh.pid = id >> 32;
	fresh.tid = (__u32)id;
	bpf_get_current_comm(&fresh.comm, sizeof(fresh.comm));
	if (bpf_map_update_elem(&ih_inflight, k, &fresh, BPF_ANY)) {
		__sync_fetch_and_add(&ih_untracked, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&ih_inflight, k);
}

static __always_inline void requeued(struct iohang_key *k)
{
	struct iohang_req *r = bpf_map_lookup_elem(&ih_inflight, k);

	if (r) {
		r->flags |= IOHANG_REQUEUED;
		r->issue_ns = 0;
	}
}

static __always_inline void completed(struct iohang_key *k, int error)
{
	struct iohang_req *r = bpf_map_lookup_elem(&ih_inflight, k);
	struct iohang_event *e;
	__u64 now = bpf_ktime_get_ns();

	if (!r)
		return;
	if (now - r->start_ns >= targ_threshold_ns) {
		e = bpf_ringbuf_reserve(&ih_events, sizeof(*e), 0);
		if (e) {
			e->req = *r;
			e->done_ns = now;
			e->error = error;
			e->pad = 0;
			bpf_ringbuf_submit(e, 0);
		} else {
			__sync_fetch_and_add(&ih_dropped, 1);
		}
	}
	bpf_map_delete_elem(&ih_inflight, k);
}

static __always_inline int rq_seen(struct request *rq, bool issue)
{
	struct iohang_key k = { .rq = (__u64)rq, .dev = diag_rq_dev(rq) };
	__u64 rq_start = bpf_core_field_exists(rq->start_time_ns) ? BPF_CORE_READ(rq, start_time_ns) : 0;
	struct iohang_req *r = seen(&k, issue, rq_start);

	if (r) {
		r->sector = BPF_CORE_READ(rq, __sector);
		r->bytes = BPF_CORE_READ(rq, __data_len);
		rq_op(rq, r);
	}
	return 0;
}

static __always_inline int rq_requeue(struct request *rq)
{
	struct iohang_key k = { .rq = (__u64)rq, .dev = diag_rq_dev(rq) };

	requeued(&k);
	return 0;
}

/* merged into another request, which carries its I/O on */
static __always_inline int rq_merged(struct request *rq)
{
	struct iohang_key k = { .rq = (__u64)rq, .dev = diag_rq_dev(rq) };

	bpf_map_delete_elem(&ih_inflight, &k);
	return 0;
}

static __always_inline int rq_done(struct request *rq, int error)
{
	struct iohang_key k = { .rq = (__u64)rq, .dev = diag_rq_dev(rq) };

	completed(&k, error);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(ih_btf_insert, struct request *rq) { return rq_seen(rq, false); }

SEC("tp_btf/block_rq_issue")
int BPF_PROG(ih_btf_issue, struct request *rq) { return rq_seen(rq, true); }

SEC("tp_btf/block_rq_requeue")
int BPF_PROG(ih_btf_requeue, struct request *rq) { return rq_requeue(rq); }

SEC("tp_btf/block_rq_merge")
int BPF_PROG(ih_btf_merge, struct request *rq) { return rq_merged(rq); }

SEC("tp_btf/block_rq_complete")
int BPF_PROG(ih_btf_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_done(rq, error);
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(ih_raw_insert, struct request *rq) { return rq_seen(rq, false); }

SEC("raw_tp/block_rq_issue")
int BPF_PROG(ih_raw_issue, struct request *rq) { return rq_seen(rq, true); }

SEC("raw_tp/block_rq_requeue")
int BPF_PROG(ih_raw_requeue, struct request *rq) { return rq_requeue(rq); }

SEC("raw_tp/block_rq_merge")
int BPF_PROG(ih_raw_merge, struct request *rq) { return rq_merged(rq); }

SEC("raw_tp/block_rq_complete")
int BPF_PROG(ih_raw_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_done(rq, error);
}

static __always_inline int tp_seen(struct trace_event_raw_block_rq *ctx, bool issue)
{
	struct iohang_key k = { .sector = ctx->sector, .dev = ctx->dev };
	struct iohang_req *r = seen(&k, issue, 0);

	if (r) {
		r->sector = ctx->sector;
		r->bytes = ctx->bytes;
		bpf_probe_read_kernel_str(r->rwbs, sizeof(r->rwbs), ctx->rwbs);
	}
	return 0;
}

SEC("tp/block/block_rq_insert")
int ih_tp_insert(struct trace_event_raw_block_rq *ctx) { return tp_seen(ctx, false); }

SEC("tp/block/block_rq_issue")
int ih_tp_issue(struct trace_event_raw_block_rq *ctx) { return tp_seen(ctx, true); }

SEC("tp/block/block_rq_requeue")
int ih_tp_requeue(struct trace_event_raw_block_rq_requeue *ctx)
{
	struct iohang_key k = { .sector = ctx->sector, .dev = ctx->dev };

	requeued(&k);
	return 0;
}

SEC("tp/block/block_rq_merge")
int ih_tp_merge(struct trace_event_raw_block_rq *ctx)
{
	struct iohang_key k = { .sector = ctx->sector, .dev = ctx->dev };

	bpf_map_delete_elem(&ih_inflight, &k);
	return 0;
}

/* a bio joined a queued request at its front: the request now starts there */
SEC("tp/block/block_bio_frontmerge")
int ih_tp_frontmerge(struct trace_event_raw_block_bio *ctx)
{
	struct iohang_key old = { .sector = ctx->sector + ctx->nr_sector, .dev = ctx->dev };
	struct iohang_key k = { .sector = ctx->sector, .dev = ctx->dev };
	struct iohang_req *r = bpf_map_lookup_elem(&ih_inflight, &old), moved;

	if (!r)
		return 0;
	moved = *r;
	moved.sector = ctx->sector;
	bpf_map_delete_elem(&ih_inflight, &old);
	bpf_map_update_elem(&ih_inflight, &k, &moved, BPF_ANY);
	return 0;
}

SEC("tp/block/block_rq_complete")
int ih_tp_done(struct trace_event_raw_block_rq_completion *ctx)
{
	/* issue reports a request without a start (a flush) at sector 0,
	 * completion at (sector_t)-1 */
	struct iohang_key k = { .sector = ctx->sector == (__u64)-1 ? 0 : ctx->sector,
				.dev = ctx->dev };

	completed(&k, ctx->error);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
