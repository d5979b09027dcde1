// SPDX-License-Identifier: Apache-2.0
/* anole diag biolatency: block I/O latency (issue to completion) histogram. */
#include "diag.h"
#include "biolatency.h"
#include "biolatency.skel.h"

#include "anole/error.h"
#include "anole/strbuf.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool opt_ms, opt_per_disk, opt_queued;
static const char *opt_disk;
static __u32 disk_dev;

static const struct option biolatency_longopts[] = {
	{ "milliseconds", no_argument, NULL, 'm' },
	{ "disks", no_argument, NULL, 'D' },
	{ "disk", required_argument, NULL, 'd' },
	{ "queued", no_argument, NULL, 'Q' },
	{ NULL, 0, NULL, 0 },
};

static int biolatency_parse(int opt, const char *arg)
{
	switch (opt) {
	case 'm': opt_ms = true; return 0;
	case 'D': opt_per_disk = true; return 0;
	case 'Q': opt_queued = true; return 0;
	case 'd':
		opt_disk = arg;
		return diag_disk_resolve("biolatency", arg, &disk_dev) ? -ENOENT : 0;
	}
	return -EINVAL;
}

static int biolatency_prepare(void *skel, const struct diag_opts *o)
{
	struct biolatency_bpf *s = skel;

	s->rodata->targ_ms = opt_ms;
	s->rodata->targ_per_disk = opt_per_disk;
	s->rodata->targ_filter_dev = opt_disk != NULL;
	s->rodata->targ_dev = disk_dev;
	return 0;
}

static int biolatency_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	if (!o->json)
		printf("Tracing block device I/O... Hit Ctrl-C to end.\n");
	fflush(stdout);
	return 0;
}

static int biolatency_report(void *skel, const struct diag_opts *o)
{
	struct biolatency_bpf *s = skel;
	int fd = bpf_map__fd(s->maps.bl_hists);
	const char *unit = opt_ms ? "msecs" : "usecs";
	size_t nkeys;
	uint32_t *keys = diag_map_keys_u32(fd, BIOLATENCY_MAX_DISKS, &nkeys);
	struct strbuf sb = STRBUF_INIT;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!o->json) {
		printf("\n");
		if (o->timestamp)
			diag_print_time(stdout);
	}
	if (o->json) {
		strbuf_addf(&sb, "{\"tool\":\"biolatency\",\"time\":%.6f,\"unit\":\"%s\",\"hists\":[",
			    ts.tv_sec + ts.tv_nsec / 1e9, unit);
	}
	for (size_t i = 0; i < nkeys; i++) {
		struct diag_hist h;
		char name[64] = "";
		int ret = diag_percpu_hist_take_sized(fd, keys[i], sizeof(struct biolatency_hist), &h);

		if (ret) {
			strbuf_release(&sb);
			free(keys);
			return ret;
		}
		/* clear by deleting: disks that go quiet drop out of the next report */
		bpf_map_delete_elem(fd, &keys[i]);
		if (opt_per_disk)
			diag_disk_name(keys[i], name, sizeof(name));
		else if (opt_disk)
			snprintf(name, sizeof(name), "%s", opt_disk);
		if (o->json) {
			strbuf_addstr(&sb, i ? ",{" : "{");
			if (name[0]) {
				strbuf_addstr(&sb, "\"disk\":");
				strbuf_add_json_string(&sb, name, strlen(name));
				strbuf_addch(&sb, ',');
			}
			strbuf_addf(&sb, "\"total\":%llu,\"hist\":",
				    (unsigned long long)diag_hist_total(h.slots, DIAG_HIST_SLOTS));
			diag_log2_hist_json(&sb, h.slots, DIAG_HIST_SLOTS);
			strbuf_addch(&sb, '}');
		} else {
			if (opt_per_disk)
				printf("\ndisk = %s\n", name);
			diag_print_log2_hist(stdout, h.slots, DIAG_HIST_SLOTS, unit);
		}
	}
	if (o->json) {
		strbuf_addstr(&sb, "]}");
		diag_emit_line(&sb);
		fflush(stdout);
	}
	strbuf_release(&sb);
	free(keys);
	fflush(stdout);
	return 0;
}

DIAG_SKEL_OPS(biolatency_skel, biolatency_bpf);

static const struct diag_variant biolatency_variants[] = {
	{ "tp_btf", { DIAG_PROG("bl_btf_issue"), DIAG_PROG("bl_btf_done") } },
	{ "raw_tp", { DIAG_PROG("bl_raw_issue"), DIAG_PROG("bl_raw_done") } },
	{ "tracepoint", { DIAG_PROG("bl_tp_issue"), DIAG_PROG("bl_tp_done") } },
	DIAG_VARIANTS_END,
};

/* -Q: from the request's start (kernel stamp); classic tracepoints lack the request */
static const struct diag_variant biolatency_queued_variants[] = {
	{ "tp_btf", { DIAG_PROG("bl_kstamp_done") } },
	{ "raw_tp", { DIAG_PROG("bl_kstamp_raw_done") } },
	DIAG_VARIANTS_END,
};

static const struct diag_variant *biolatency_variants_for_opts(void)
{
	return opt_queued ? biolatency_queued_variants : biolatency_variants;
}

const struct diag_tool diag_tool_biolatency = {
	.name = "biolatency",
	.summary = "block I/O latency histogram, issue to completion",
	.usage = "anole diag biolatency [options] [INTERVAL [COUNT]]",
	.help = "  -m, --milliseconds     histogram in milliseconds (default: microseconds)\n"
		"  -D, --disks            one histogram per disk\n"
		"  -d, --disk DISK        only this disk (sda, loop0, /dev/nvme0n1)\n"
		"  -Q, --queued           from the request's start, queueing included (as\n"
		"                         /proc/diskstats and iostat's await count it; disks\n"
		"                         with iostats off and no I/O scheduler show nothing)\n"
		"  (no -p/-c: requests complete outside the task that issued them)\n",
	.shortopts = "mDd:Q",
	.longopts = biolatency_longopts,
	.flags = DIAG_F_HIST,
	.skel = &biolatency_skel,
	.variants = biolatency_variants,
	.variants_for_opts = biolatency_variants_for_opts,
	.parse = biolatency_parse,
	.prepare = biolatency_prepare,
	.start = biolatency_start,
	.report = biolatency_report,
};
