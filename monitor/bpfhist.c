// SPDX-License-Identifier: Apache-2.0
/*
 * Resident eBPF latency histograms for `anole monitor`: the programs of
 * `anole diag runqlat` and `anole diag biolatency` (per disk), loaded
 * through the same hook fallback chain, kept attached for the agent's life.
 * The kernel side counts in 32-bit per-CPU slots and never clears them;
 * each update adds the difference since the last read (mod 2^32), so the
 * exported 64-bit counters stay monotonic even when a slot wraps, and
 * nothing races with the BPF programs' increments.
 */
#include "monitor.h"

#include "diag.h"
#include "biolatency.h"

#include "anole/error.h"
#include "anole/metrics.h"
#include "anole/xalloc.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* one histogram: a map key's running totals */
struct hist {
	uint32_t key;
	char name[64];          /* device label of a disk, "" for run queue */
	uint32_t *prev;         /* last per-CPU slot values, ncpu * DIAG_HIST_SLOTS */
	uint64_t counts[DIAG_HIST_SLOTS];
	uint64_t sum_us;
};

struct source {
	const struct diag_tool *tool;
	/* the cheapest way first: programs timing from stamps the kernel keeps
	 * anyway ("kernel"), then the tool's own chain ("bpf": start times kept
	 * by the programs) */
	const struct diag_variant *variants;
	int nkernel;            /* how many of variants time from kernel stamps */
	const char *what;       /* "runqueue", "block_io" */
	const char *hist_map;
	const char *sum_map;    /* per-CPU u64 sums in their own map, or NULL: */
	size_t value_size;      /* the map's value: a diag_hist first ... */
	size_t sum_off;         /* ... and, without sum_map, the u64 sum here */
	void *skel;
	char hook[16];
	const char *timing;     /* "kernel" or "bpf" */
	int hist_fd, sum_fd;
	struct hist *hists;     /* runqueue: one; block I/O: one per disk */
	size_t nhists;
};

struct monitor_bpf {
	struct source src[2];
	struct diag_variant chain[2][DIAG_MAX_VARIANTS + 1];
	int ncpu;
	void *vals;             /* lookup buffer: ncpu * the largest value, 8-byte aligned */
};

/* timing from the kernel's own stamps: see rq_si_switch, bl_kstamp_done */
static const struct diag_variant runqueue_kernel[] = {
	{ "tp_btf", { DIAG_PROG("rq_si_switch") } },
	DIAG_VARIANTS_END,
};
static const struct diag_variant block_kernel[] = {
	{ "tp_btf", { DIAG_PROG("bl_kstamp_done") } },
	DIAG_VARIANTS_END,
};

/*
 * Is the scheduler's run-queue accounting (CONFIG_SCHED_INFO) live? Before
 * Linux 5.14 it ran only with schedstats or delay accounting on; when off,
 * /proc/PID/schedstat reads "0 0 0" (this process has run at least once).
 */
static bool sched_info_live(void)
{
	unsigned long long run, wait, count = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");

	if (!f)
		return false;
	if (fscanf(f, "%llu %llu %llu", &run, &wait, &count) != 3)
		count = 0;
	fclose(f);
	return count > 0;
}

/* s->variants: kernel (if use_kernel), then the tool's chain */
static void set_chain(struct source *s, struct diag_variant *buf, size_t n,
		      const struct diag_variant *kernel, bool use_kernel)
{
	size_t i = 0;

	for (; use_kernel && kernel->hook && i + 1 < n; kernel++)
		buf[i++] = *kernel;
	s->nkernel = (int)i;
	for (const struct diag_variant *v = s->tool->variants; v->hook && i + 1 < n; v++)
		buf[i++] = *v;
	buf[i] = (struct diag_variant)DIAG_VARIANTS_END;
	s->variants = buf;
}

static int prepare(void *skel, void *arg)
{
	const struct diag_tool *t = arg;
	struct diag_opts o = { 0 };

	return t->prepare ? t->prepare(skel, &o) : 0;
}

static int open_source(struct source *s, const char *hooks)
{
	struct diag_hooks_opts ho = { .tool = s->tool->name, .only = hooks, .prepare = prepare,
				      .arg = (void *)s->tool };
	struct diag_hooks_result res;
	struct bpf_object *obj;
	struct bpf_map *hm, *sm = NULL;
	int ret = diag_hooks_open(s->tool->skel, s->variants, &ho, &s->skel, &res);

	if (ret) {
		struct strbuf sb = STRBUF_INIT;

		for (int i = 0; i < res.nnotes; i++)
			strbuf_addf(&sb, "\n  %s: %s%s%s", res.notes[i].hook ? res.notes[i].hook : "",
				    res.notes[i].what, res.notes[i].what[0] ? ": " : "",
				    res.notes[i].why);
		anole_warn("monitor: %s latency histogram: no hook loads here:%s", s->what,
			   sb.len ? sb.buf : " (none selected by --hook)");
		strbuf_release(&sb);
		s->skel = NULL;
		return ret;
	}
	snprintf(s->hook, sizeof(s->hook), "%s", s->variants[res.variant].hook);
	s->timing = res.variant < s->nkernel ? "kernel" : "bpf";
	obj = s->tool->skel->object(s->skel);
	hm = bpf_object__find_map_by_name(obj, s->hist_map);
	if (s->sum_map)
		sm = bpf_object__find_map_by_name(obj, s->sum_map);
	if (!hm || (s->sum_map && !sm) || bpf_map__value_size(hm) != s->value_size) {
		s->tool->skel->destroy(s->skel);
		s->skel = NULL;
		return anole_error_code(ENOENT, "monitor: %s: the BPF object lacks its maps",
					s->tool->name);
	}
	s->hist_fd = bpf_map__fd(hm);
	s->sum_fd = sm ? bpf_map__fd(sm) : -1; /* diag_hooks_open() logged the hook used */
	return 0;
}

int monitor_bpf_open(struct monitor_bpf **out, const char *hooks)
{
	struct monitor_bpf *b = xcalloc(1, sizeof(*b));
	int ret, attached = 0;

	diag_libbpf_log_init();
	if ((ret = diag_btf_check())) {
		free(b);
		return ret;
	}
	b->ncpu = libbpf_num_possible_cpus();
	if (b->ncpu <= 0) {
		ret = b->ncpu ? -b->ncpu : EINVAL;
		free(b);
		return anole_error(ret, "monitor: cannot count CPUs");
	}
	b->vals = xcalloc((size_t)b->ncpu, (sizeof(struct biolatency_hist) + 7) & ~(size_t)7);
	b->src[0] = (struct source){ .tool = &diag_tool_runqlat, .what = "runqueue",
				     .hist_map = "rq_hist", .sum_map = "rq_sum",
				     .value_size = sizeof(struct diag_hist) };
	b->src[1] = (struct source){ .tool = &diag_tool_biolatency, .what = "block_io",
				     .hist_map = "bl_hists",
				     .value_size = sizeof(struct biolatency_hist),
				     .sum_off = offsetof(struct biolatency_hist, sum) };
	set_chain(&b->src[0], b->chain[0], DIAG_MAX_VARIANTS + 1, runqueue_kernel, sched_info_live());
	set_chain(&b->src[1], b->chain[1], DIAG_MAX_VARIANTS + 1, block_kernel, true);
	/* one histogram per disk, as `anole diag biolatency -D` */
	diag_tool_biolatency.parse('D', NULL);
	for (int i = 0; i < 2; i++)
		if (!open_source(&b->src[i], hooks))
			attached++;
	if (!attached) {
		monitor_bpf_free(b);
		return -ENOTSUP;
	}
	*out = b;
	return 0;
}

void monitor_bpf_free(struct monitor_bpf *b)
{
	if (!b)
		return;
	for (int i = 0; i < 2; i++) {
		struct source *s = &b->src[i];

		if (s->skel)
			s->tool->skel->destroy(s->skel); /* detaches and unloads */
		for (size_t h = 0; h < s->nhists; h++)
			free(s->hists[h].prev);
		free(s->hists);
	}
	free(b->vals);
	free(b);
}

static void dev_label(uint32_t dev, char *out, size_t n)
{
	char path[64], link[256];
	ssize_t len;

	snprintf(out, n, "%u:%u", dev >> 20, dev & ((1u << 20) - 1));
	snprintf(path, sizeof(path), "/sys/dev/block/%s", out);
	len = readlink(path, link, sizeof(link) - 1);
	if (len > 0) {
		link[len] = '\0';
		snprintf(out, n, "%.*s", (int)(n - 1), strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
	}
}

static struct hist *find_hist(struct monitor_bpf *b, struct source *s, uint32_t key)
{
	struct hist *h;

	for (size_t i = 0; i < s->nhists; i++)
		if (s->hists[i].key == key)
			return &s->hists[i];
	if (s->nhists >= BIOLATENCY_MAX_DISKS)
		return NULL;
	s->hists = xrealloc(s->hists, (s->nhists + 1) * sizeof(*s->hists));
	h = &s->hists[s->nhists++];
	memset(h, 0, sizeof(*h));
	h->key = key;
	h->prev = xcalloc((size_t)b->ncpu * DIAG_HIST_SLOTS, sizeof(*h->prev));
	if (s == &b->src[1])
		dev_label(key, h->name, sizeof(h->name));
	return h;
}

static void update_key(struct monitor_bpf *b, struct source *s, uint32_t key)
{
	/* the kernel hands per-CPU values out 8-byte aligned, one per possible CPU */
	size_t stride = (s->value_size + 7) & ~(size_t)7;
	uint64_t *sums = b->vals, sum = 0, one;
	struct hist *h;

	if (!(h = find_hist(b, s, key)) || bpf_map_lookup_elem(s->hist_fd, &key, b->vals))
		return;
	for (int c = 0; c < b->ncpu; c++) {
		const char *val = (const char *)b->vals + (size_t)c * stride;
		const struct diag_hist *v = (const void *)val;
		uint32_t *prev = h->prev + (size_t)c * DIAG_HIST_SLOTS;

		for (int i = 0; i < DIAG_HIST_SLOTS; i++) {
			h->counts[i] += (uint32_t)(v->slots[i] - prev[i]);
			prev[i] = v->slots[i];
		}
		if (!s->sum_map) {
			memcpy(&one, val + s->sum_off, sizeof(one));
			sum += one;
		}
	}
	if (!s->sum_map) {
		h->sum_us = sum;
		return;
	}
	if (bpf_map_lookup_elem(s->sum_fd, &key, b->vals))
		return;
	for (int c = 0; c < b->ncpu; c++)
		sum += sums[c];
	h->sum_us = sum;
}

void monitor_bpf_update(struct monitor_bpf *b)
{
	for (int i = 0; i < 2; i++) {
		struct source *s = &b->src[i];
		uint32_t key, prev_key, *prev = NULL;

		if (!s->skel)
			continue;
		if (i == 0) {
			update_key(b, s, 0);
			continue;
		}
		while (!bpf_map_get_next_key(s->hist_fd, prev, &key)) {
			update_key(b, s, key);
			prev_key = key;
			prev = &prev_key;
		}
	}
}

void monitor_bpf_format(struct monitor_bpf *b, struct strbuf *out)
{
	struct strbuf labels = STRBUF_INIT;
	struct source *rq = &b->src[0], *bio = &b->src[1];

	anole_metrics_family(out, "anole_monitor_bpf_attached", "gauge",
			     "1 for each eBPF histogram attached, with the hook it uses and whose "
			     "start times it reads (kernel: the kernel's own stamps; bpf: its own).");
	for (int i = 0; i < 2; i++) {
		if (!b->src[i].skel)
			continue;
		strbuf_reset(&labels);
		anole_metrics_label(&labels, "histogram", b->src[i].what);
		anole_metrics_label(&labels, "hook", b->src[i].hook);
		anole_metrics_label(&labels, "timing", b->src[i].timing);
		anole_metrics_u64(out, "anole_monitor_bpf_attached", labels.buf, 1);
	}
	if (rq->skel) {
		anole_metrics_family(out, "anole_runqueue_latency_seconds", "histogram",
				     "Time tasks waited runnable on a run queue before running (eBPF).");
		if (rq->nhists)
			anole_metrics_log2_histogram(out, "anole_runqueue_latency_seconds", "",
						     rq->hists[0].counts, DIAG_HIST_SLOTS, 1e-6,
						     (double)rq->hists[0].sum_us / 1e6);
	}
	if (bio->skel && bio->nhists) {
		anole_metrics_family(out, "anole_block_io_latency_seconds", "histogram",
				     "Block I/O latency per disk (eBPF): with timing=kernel from the request's "
				     "start (queueing and device, as /proc/diskstats accounts it), "
				     "with timing=bpf from its issue to the device.");
		for (size_t i = 0; i < bio->nhists; i++) {
			strbuf_reset(&labels);
			anole_metrics_label(&labels, "device", bio->hists[i].name);
			anole_metrics_log2_histogram(out, "anole_block_io_latency_seconds", labels.buf,
						     bio->hists[i].counts, DIAG_HIST_SLOTS, 1e-6,
						     (double)bio->hists[i].sum_us / 1e6);
		}
	}
	strbuf_release(&labels);
}
