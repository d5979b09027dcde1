// SPDX-License-Identifier: Apache-2.0
/* anole diag runqslower: threads that waited on a run queue longer than MIN_US. */
#include "diag.h"
#include "runqslower.h"
#include "runqslower.skel.h"

#include "anole/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long opt_min_us = 10000;

static int runqslower_positional(int i, const char *arg)
{
	char *end;

	if (i > 0)
		return -EINVAL;
	errno = 0;
	opt_min_us = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-')
		return -EINVAL;
	return 0;
}

static int runqslower_prepare(void *skel, const struct diag_opts *o)
{
	struct runqslower_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_min_us = opt_min_us;
	return 0;
}

static void comm_column(struct strbuf *sb, const char *comm)
{
	size_t at = sb->len;

	diag_text_bytes(sb, comm, strnlen(comm, DIAG_COMM_LEN));
	strbuf_addf(sb, "%*s", (int)(16 - (sb->len - at < 16 ? sb->len - at : 16)), "");
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct diag_opts *o = ctx;
	const struct runqslower_event *e = data;
	struct strbuf sb = STRBUF_INIT;
	__u32 pid = e->pid;

	if (size < sizeof(*e))
		return 0;
	/* woken through the classic tracepoint: -p/-c not checked yet */
	if (e->unchecked || !pid) {
		__u32 tgid;

		if (!diag_thread_wanted(o, e->tid, &tgid))
			return 0;
		if (!pid)
			pid = tgid;
	}
	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"comm\":", diag_ktime_to_real(o, e->ts));
		diag_json_str(&sb, e->comm, sizeof(e->comm));
		if (pid)
			strbuf_addf(&sb, ",\"pid\":%u", pid);
		else
			strbuf_addstr(&sb, ",\"pid\":null");
		strbuf_addf(&sb, ",\"tid\":%u,\"lat_us\":%llu,\"cpu\":%u,\"prev_comm\":", e->tid,
			    (unsigned long long)e->delta_us, e->cpu);
		diag_json_str(&sb, e->prev_comm, sizeof(e->prev_comm));
		strbuf_addf(&sb, ",\"prev_pid\":%u,\"prev_tid\":%u}", e->prev_pid, e->prev_tid);
	} else {
		if (o->timestamp)
			diag_add_event_time(&sb, o, e->ts);
		comm_column(&sb, e->comm);
		strbuf_addf(&sb, " %-7u %14llu ", e->tid, (unsigned long long)e->delta_us);
		comm_column(&sb, e->prev_comm);
		strbuf_addf(&sb, " %u", e->prev_tid);
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
	return 0;
}

static int runqslower_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct runqslower_bpf *s = skel;

	if (!o->json)
		printf("Tracing run queue latency higher than %llu us\n", opt_min_us);
	/* libbpf-tools' columns, with -P's previous task always on */
	return diag_open_events(rb, bpf_map__fd(s->maps.rs_events), handle_event, o,
				"%-16s %-7s %14s %-16s %s\n", "COMM", "TID", "LAT(us)",
				"PREV COMM", "PREV TID");
}

static void runqslower_stop(void *skel, const struct diag_opts *o)
{
	diag_warn_dropped("runqslower", ((struct runqslower_bpf *)skel)->bss->rs_dropped);
}

DIAG_SKEL_OPS(runqslower_skel, runqslower_bpf);

static const struct diag_variant runqslower_variants[] = {
	{ "tp_btf", { DIAG_PROG("rs_btf_wakeup"), DIAG_PROG("rs_btf_wnew"), DIAG_PROG("rs_btf_switch") } },
	{ "raw_tp", { DIAG_PROG("rs_raw_wakeup"), DIAG_PROG("rs_raw_wnew"), DIAG_PROG("rs_raw_switch") } },
	{ "tracepoint", { DIAG_PROG("rs_tp_wakeup"), DIAG_PROG("rs_tp_wnew"), DIAG_PROG("rs_tp_switch") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_runqslower = {
	.name = "runqslower",
	.summary = "trace threads that waited on a run queue longer than MIN_US",
	.usage = "anole diag runqslower [options] [MIN_US]",
	.help = "  MIN_US                 report waits of at least MIN_US microseconds (10000)\n",
	.flags = DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &runqslower_skel,
	.variants = runqslower_variants,
	.positional = runqslower_positional,
	.prepare = runqslower_prepare,
	.start = runqslower_start,
	.stop = runqslower_stop,
};
