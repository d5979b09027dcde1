// SPDX-License-Identifier: Apache-2.0
/* anole diag runqlat: run-queue (scheduler) latency as a log2 histogram. */
#include "diag.h"
#include "runqlat.h"
#include "runqlat.skel.h"

#include "anole/strbuf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool opt_ms, opt_per_process, opt_per_thread;

static const struct option runqlat_longopts[] = {
	{ "milliseconds", no_argument, NULL, 'm' },
	{ "pids", no_argument, NULL, 'P' },
	{ "tids", no_argument, NULL, 'L' },
	{ NULL, 0, NULL, 0 },
};

static int runqlat_parse(int opt, const char *arg)
{
	switch (opt) {
	case 'm':
		opt_ms = true;
		return 0;
	case 'P':
	case 'L':
		if (opt_per_process || opt_per_thread) {
			fprintf(stderr, "anole diag runqlat: -P and -L go alone (one of them, once)\n");
			return -EINVAL;
		}
		*(opt == 'P' ? &opt_per_process : &opt_per_thread) = true;
		return 0;
	}
	return -EINVAL;
}

static int runqlat_prepare(void *skel, const struct diag_opts *o)
{
	struct runqlat_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_ms = opt_ms;
	s->rodata->targ_per_process = opt_per_process;
	s->rodata->targ_per_thread = opt_per_thread;
	if (!opt_per_process && !opt_per_thread)
		bpf_map__set_max_entries(s->maps.rq_task_hists, 1);
	/* task storage only for the tp_btf programs, its only users */
	bpf_map__set_autocreate(s->maps.rq_task_start, bpf_program__autoload(s->progs.rq_btf_switch));
	return 0;
}

static int runqlat_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	if (!o->json)
		printf("Tracing run queue latency... Hit Ctrl-C to end.\n");
	fflush(stdout);
	return 0;
}

/* -P/-L: one histogram per process or thread, by id; each taken and cleared */
static int report_per_task(struct runqlat_bpf *s, const struct diag_opts *o, const char *unit)
{
	int fd = bpf_map__fd(s->maps.rq_task_hists);
	const char *idname = opt_per_process ? "pid" : "tid";
	size_t nkeys;
	uint32_t *keys = diag_map_keys_u32(fd, RUNQLAT_MAX_TASKS, &nkeys);
	struct strbuf sb = STRBUF_INIT;
	struct timespec ts;
	bool first = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (o->json)
		strbuf_addf(&sb, "{\"tool\":\"runqlat\",\"time\":%.6f,\"unit\":\"%s\",\"hists\":[",
			    ts.tv_sec + ts.tv_nsec / 1e9, unit);
	else {
		printf("\n");
		if (o->timestamp)
			diag_print_time(stdout);
	}
	for (size_t i = 0; i < nkeys; i++) {
		struct runqlat_task_hist th;

		/* a task may start a new histogram between lookup and delete: its
		 * first wait is lost, which a clear of a live map cannot avoid */
		if (bpf_map_lookup_elem(fd, &keys[i], &th))
			continue;
		bpf_map_delete_elem(fd, &keys[i]);
		if (o->json) {
			strbuf_addf(&sb, "%s{\"%s\":%u,\"comm\":", first ? "" : ",", idname, keys[i]);
			first = false;
			diag_json_str(&sb, th.comm, sizeof(th.comm));
			strbuf_addf(&sb, ",\"total\":%llu,\"hist\":",
				    (unsigned long long)diag_hist_total(th.hist.slots, DIAG_HIST_SLOTS));
			diag_log2_hist_json(&sb, th.hist.slots, DIAG_HIST_SLOTS);
			strbuf_addch(&sb, '}');
		} else {
			strbuf_reset(&sb);
			diag_text_bytes(&sb, th.comm, strnlen(th.comm, sizeof(th.comm)));
			printf("\n%s = %u %s\n", idname, keys[i], sb.buf);
			diag_print_log2_hist(stdout, th.hist.slots, DIAG_HIST_SLOTS, unit);
		}
	}
	if (o->json) {
		strbuf_addstr(&sb, "]}");
		diag_emit_line(&sb);
	}
	fflush(stdout);
	strbuf_release(&sb);
	free(keys);
	return 0;
}

static int runqlat_report(void *skel, const struct diag_opts *o)
{
	struct runqlat_bpf *s = skel;
	struct diag_hist h;
	const char *unit = opt_ms ? "msecs" : "usecs";
	int ret;

	if (opt_per_process || opt_per_thread)
		return report_per_task(s, o, unit);
	ret = diag_percpu_hist_take(bpf_map__fd(s->maps.rq_hist), 0, &h);
	if (ret)
		return ret;
	if (o->json) {
		struct strbuf sb = STRBUF_INIT;
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		strbuf_addf(&sb, "{\"tool\":\"runqlat\",\"time\":%.6f,\"unit\":\"%s\",\"total\":%llu,"
			    "\"hist\":", ts.tv_sec + ts.tv_nsec / 1e9, unit,
			    (unsigned long long)diag_hist_total(h.slots, DIAG_HIST_SLOTS));
		diag_log2_hist_json(&sb, h.slots, DIAG_HIST_SLOTS);
		strbuf_addch(&sb, '}');
		diag_emit_line(&sb);
		fflush(stdout);
		strbuf_release(&sb);
		return 0;
	}
	printf("\n");
	if (o->timestamp)
		diag_print_time(stdout);
	diag_print_log2_hist(stdout, h.slots, DIAG_HIST_SLOTS, unit);
	fflush(stdout);
	return 0;
}

DIAG_SKEL_OPS(runqlat_skel, runqlat_bpf);

/* tp_btf: typed arguments, cheapest; raw_tp: the same, read through CO-RE */
static const struct diag_variant runqlat_variants[] = {
	{ "tp_btf", { DIAG_PROG("rq_btf_wakeup"), DIAG_PROG("rq_btf_wnew"), DIAG_PROG("rq_btf_switch") } },
	{ "raw_tp", { DIAG_PROG("rq_raw_wakeup"), DIAG_PROG("rq_raw_wnew"), DIAG_PROG("rq_raw_switch") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_runqlat = {
	.name = "runqlat",
	.summary = "run-queue latency histogram (time runnable before running)",
	.usage = "anole diag runqlat [options] [INTERVAL [COUNT]]",
	.help = "  -m, --milliseconds     histogram in milliseconds (default: microseconds)\n"
		"  -P, --pids             a histogram per process (named after its main thread)\n"
		"  -L, --tids             a histogram per thread\n",
	.shortopts = "mPL",
	.longopts = runqlat_longopts,
	.flags = DIAG_F_HIST | DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &runqlat_skel,
	.variants = runqlat_variants,
	.parse = runqlat_parse,
	.prepare = runqlat_prepare,
	.start = runqlat_start,
	.report = runqlat_report,
};
