// SPDX-License-Identifier: Apache-2.0
/* anole diag execsnoop: every successful exec, with its arguments. */
#include "diag.h"
#include "execsnoop.h"
#include "execsnoop.skel.h"

#include "anole/strbuf.h"

#include <errno.h>
#include <string.h>
#include <time.h>


static int execsnoop_prepare(void *skel, const struct diag_opts *o)
{
	struct execsnoop_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	/* -p matches the process or its parent: done by the tool, not the filter */
	s->rodata->diag_filter.tgid = 0;
	s->rodata->targ_tgid_or_parent = (__u32)o->pid;
	return 0;
}

/* argv as text: arguments joined by spaces, escaped (diag_text_bytes) */
static void args_text(struct strbuf *sb, const struct execsnoop_event *e)
{
	__u32 i = 0;

	while (i < e->args_len) {
		size_t n = strnlen(e->args + i, e->args_len - i);

		if (i)
			strbuf_addch(sb, ' ');
		diag_text_bytes(sb, e->args + i, n);
		i += (__u32)n + 1;
	}
	if (e->args_full > e->args_len)
		strbuf_addstr(sb, " ...");
}

static void args_json(struct strbuf *sb, const struct execsnoop_event *e)
{
	__u32 i = 0;
	bool first = true;

	strbuf_addch(sb, '[');
	while (i < e->args_len) {
		size_t n = strnlen(e->args + i, e->args_len - i);

		strbuf_addstr(sb, first ? "" : ",");
		diag_json_bytes(sb, e->args + i, n);
		first = false;
		i += (__u32)n + 1;
	}
	strbuf_addch(sb, ']');
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct diag_opts *o = ctx;
	const struct execsnoop_event *e = data;
	struct strbuf sb = STRBUF_INIT;

	if (size < sizeof(*e))
		return 0;
	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"pid\":%u,\"ppid\":%u,\"uid\":%u,\"comm\":",
			    diag_ktime_to_real(o, e->ts), e->pid, e->ppid, e->uid);
		diag_json_str(&sb, e->comm, sizeof(e->comm));
		strbuf_addstr(&sb, ",\"filename\":");
		diag_json_str(&sb, e->filename, sizeof(e->filename));
		strbuf_addstr(&sb, ",\"args\":");
		args_json(&sb, e);
		strbuf_addf(&sb, ",\"args_truncated\":%s}", e->args_full > e->args_len ? "true" : "false");
	} else {
		if (o->timestamp)
			diag_add_event_time(&sb, o, e->ts);
		size_t at = sb.len;

		diag_text_bytes(&sb, e->comm, strnlen(e->comm, sizeof(e->comm)));
		strbuf_addf(&sb, "%*s %-7u %-7u ", (int)(16 - (sb.len - at < 16 ? sb.len - at : 16)), "",
			    e->pid, e->ppid);
		at = sb.len;
		diag_text_bytes(&sb, e->filename, strnlen(e->filename, sizeof(e->filename)));
		strbuf_addf(&sb, "%*s ", (int)(24 - (sb.len - at < 24 ? sb.len - at : 24)), "");
		args_text(&sb, e);
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
	return 0;
}

static int execsnoop_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct execsnoop_bpf *s = skel;

	return diag_open_events(rb, bpf_map__fd(s->maps.ex_events), handle_event, o,
				"%-16s %-7s %-7s %-24s %s\n", "PCOMM", "PID", "PPID", "FILENAME", "ARGS");
}

static void execsnoop_stop(void *skel, const struct diag_opts *o)
{
	diag_warn_dropped("execsnoop", ((struct execsnoop_bpf *)skel)->bss->ex_dropped);
}

DIAG_SKEL_OPS(execsnoop_skel, execsnoop_bpf);

static const struct diag_variant execsnoop_variants[] = {
	{ "tp_btf", { DIAG_PROG("ex_btf_exec") } },
	{ "raw_tp", { DIAG_PROG("ex_raw_exec") } },
	{ "tracepoint", { DIAG_PROG("ex_tp_exec") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_execsnoop = {
	.name = "execsnoop",
	.summary = "trace successful execs: process, parent, program and arguments",
	.usage = "anole diag execsnoop [options]",
	.help = "  (-p PID matches execs by PID or by its children)\n",
	.flags = DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &execsnoop_skel,
	.variants = execsnoop_variants,
	.prepare = execsnoop_prepare,
	.start = execsnoop_start,
	.stop = execsnoop_stop,
};
