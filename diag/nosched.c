// SPDX-License-Identifier: Apache-2.0
/* anole diag nosched: tasks that keep a CPU without scheduling past a threshold. */
#include "diag.h"
#include "nosched.h"
#include "nosched.skel.h"
#include "usyms.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double opt_thresh_ms = 10;
static bool opt_kernel_only;

static const struct option nosched_longopts[] = {
	{ "threshold", required_argument, NULL, 't' },
	{ "kernel-only", no_argument, NULL, 'k' },
	{ NULL, 0, NULL, 0 },
};

static int nosched_parse(int opt, const char *arg)
{
	char *end;

	switch (opt) {
	case 't':
		errno = 0;
		opt_thresh_ms = strtod(arg, &end);
		if (errno || end == arg || *end || isnan(opt_thresh_ms) || opt_thresh_ms < 1 ||
		    opt_thresh_ms > 3600e3)
			return -EINVAL;
		return 0;
	case 'k':
		opt_kernel_only = true;
		return 0;
	}
	return -EINVAL;
}

static __u64 thresh_ns(void) { return (__u64)(opt_thresh_ms * 1e6); }

/* samples four times per threshold, between 1 ms and 250 ms apart */
static __u64 sample_period_ns(void)
{
	__u64 p = thresh_ns() / 4;

	return p < 1000000 ? 1000000 : p > 250000000 ? 250000000 : p;
}

static int nosched_prepare(void *skel, const struct diag_opts *o)
{
	struct nosched_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_thresh_ns = thresh_ns();
	s->rodata->targ_kernel_only = opt_kernel_only;
	return 0;
}

/* the sampling program goes on a CPU clock event of each CPU */
static struct diag_perf_links *nosched_links;

static void *nosched_open(void) { return nosched_bpf__open(); }
static struct bpf_object *nosched_object(void *s) { return ((struct nosched_bpf *)s)->obj; }
static int nosched_load(void *s) { return nosched_bpf__load(s); }

static int nosched_attach(void *skel)
{
	struct nosched_bpf *s = skel;
	int ret = nosched_bpf__attach(s);

	return ret ? ret : diag_perf_attach(s->progs.ns_sample, sample_period_ns(), false,
					    &nosched_links);
}

static void nosched_destroy(void *s)
{
	diag_perf_detach(nosched_links);
	nosched_links = NULL;
	nosched_bpf__destroy(s);
}

static const struct diag_skel_ops nosched_skel = {
	nosched_open, nosched_object, nosched_load, nosched_attach, nosched_destroy,
};

static int stacks_fd = -1;

static const char *mode_name(const struct nosched_run *r)
{
	return r->kernel_samples && r->user_samples ? "kernel+user" :
	       r->kernel_samples ? "kernel" : "user";
}

static void print_run(const struct diag_opts *o, const struct nosched_run *r, __u64 ts,
		      __u64 duration_ns, __u32 cpu, bool ongoing)
{
	uint64_t *ips = xcalloc(NOSCHED_STACK_DEPTH, sizeof(*ips));
	struct diag_usyms *us = diag_usyms_new();
	struct strbuf sb = STRBUF_INIT;
	char buf[512];
	int n;

	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"pid\":%u,\"tid\":%u,\"comm\":",
			    diag_ktime_to_real(o, ts), r->pid, r->tid);
		diag_json_str(&sb, r->comm, sizeof(r->comm));
		strbuf_addf(&sb, ",\"cpu\":%u,\"ms\":%.3f,\"mode\":\"%s\",\"kernel_samples\":%u,"
			    "\"user_samples\":%u,\"ongoing\":%s,\"kernel_stack\":[", cpu,
			    duration_ns / 1e6, mode_name(r), r->kernel_samples, r->user_samples,
			    ongoing ? "true" : "false");
		n = diag_stack_read(stacks_fd, r->kern_stack_id, ips, NOSCHED_STACK_DEPTH);
		for (int i = 0; i < n; i++) {
			const char *name = diag_kframe_name(ips[i], buf, sizeof(buf));

			strbuf_addstr(&sb, i ? "," : "");
			strbuf_add_json_string(&sb, name, strlen(name));
		}
		strbuf_addstr(&sb, "],\"user_stack\":[");
		n = diag_stack_read(stacks_fd, r->user_stack_id, ips, NOSCHED_STACK_DEPTH);
		for (int i = 0; i < n; i++) {
			diag_usyms_name(us, r->pid, ips[i], i ? DIAG_USYM_RETURN_ADDR : 0,
					buf, sizeof(buf));
			strbuf_addstr(&sb, i ? "," : "");
			strbuf_add_json_string(&sb, buf, strlen(buf));
		}
		strbuf_addstr(&sb, "]}");
		diag_emit_line(&sb);
	} else {
		size_t at;

		if (o->timestamp)
			diag_add_event_time(&sb, o, ts);
		at = sb.len;
		diag_text_bytes(&sb, r->comm, strnlen(r->comm, sizeof(r->comm)));
		strbuf_addf(&sb, "%*s %-7u %-7u %-4u %12.3f %s%s",
			    (int)(16 - (sb.len - at < 16 ? sb.len - at : 16)), "", r->pid, r->tid, cpu,
			    duration_ns / 1e6, mode_name(r), ongoing ? " (still running)" : "");
		diag_emit_line(&sb);
		/* the stacks of the latest sample past the threshold, kernel first */
		n = diag_stack_read(stacks_fd, r->kern_stack_id, ips, NOSCHED_STACK_DEPTH);
		for (int i = 0; i < n; i++)
			printf("    %s\n", diag_kframe_name(ips[i], buf, sizeof(buf)));
		n = diag_stack_read(stacks_fd, r->user_stack_id, ips, NOSCHED_STACK_DEPTH);
		for (int i = 0; i < n; i++) {
			diag_usyms_name(us, r->pid, ips[i], i ? DIAG_USYM_RETURN_ADDR : 0,
					buf, sizeof(buf));
			printf("    %s\n", buf);
		}
	}
	strbuf_release(&sb);
	diag_usyms_free(us);
	free(ips);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct nosched_event *e = data;

	if (size < sizeof(*e))
		return 0;
	print_run(ctx, &e->run, e->ts, e->duration_ns, e->cpu, false);
	return 0;
}

static int nosched_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct nosched_bpf *s = skel;

	stacks_fd = bpf_map__fd(s->maps.ns_stacks);
	if (!o->json)
		printf("Tracing tasks on a CPU for more than %.3f ms without scheduling%s... "
		       "Hit Ctrl-C to end.\n", opt_thresh_ms, opt_kernel_only ? " (in the kernel)" : "");
	return diag_open_events(rb, bpf_map__fd(s->maps.ns_events), handle_event, o,
				"%-16s %-7s %-7s %-4s %12s %s\n", "COMM", "PID", "TID", "CPU",
				"ON-CPU(ms)", "MODE");
}

/* Tasks still on their CPU past the threshold when tracing ends. */
static void nosched_stop(void *skel, const struct diag_opts *o)
{
	struct nosched_bpf *s = skel;
	int ncpu = libbpf_num_possible_cpus();
	size_t stride = (sizeof(struct nosched_run) + 7) & ~(size_t)7;
	__u32 zero = 0;
	struct timespec now;
	char *vals;

	diag_warn_dropped("nosched", s->bss->ns_dropped);
	if (ncpu <= 0)
		return;
	vals = xcalloc((size_t)ncpu, stride);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!bpf_map_lookup_elem(bpf_map__fd(s->maps.ns_runs), &zero, vals))
		for (int c = 0; c < ncpu; c++) {
			const struct nosched_run *r = (const void *)(vals + (size_t)c * stride);
			__u64 ns = (__u64)now.tv_sec * 1000000000ULL + (__u64)now.tv_nsec;

			if (r->start && r->pid && ns > r->start &&
			    (!opt_kernel_only || r->kernel_samples))
				print_run(o, r, ns, ns - r->start, (__u32)c, true);
		}
	fflush(stdout);
	free(vals);
}

static const struct diag_variant nosched_variants[] = {
	{ "tp_btf", { DIAG_PROG("ns_btf_switch"), DIAG_PROG("ns_sample") } },
	{ "raw_tp", { DIAG_PROG("ns_raw_switch"), DIAG_PROG("ns_sample") } },
	{ "tracepoint", { DIAG_PROG("ns_tp_switch"), DIAG_PROG("ns_sample") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_nosched = {
	.name = "nosched",
	.summary = "trace tasks that keep a CPU without scheduling longer than a threshold",
	.usage = "anole diag nosched [options]",
	.help = "  -t, --threshold MS     report runs of more than MS milliseconds (10)\n"
		"  -k, --kernel-only      only runs caught in the kernel (SysAK's nosched)\n",
	.shortopts = "t:k",
	.longopts = nosched_longopts,
	.flags = DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &nosched_skel,
	.variants = nosched_variants,
	.parse = nosched_parse,
	.prepare = nosched_prepare,
	.start = nosched_start,
	.stop = nosched_stop,
};
