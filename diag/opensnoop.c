// SPDX-License-Identifier: Apache-2.0
/* anole diag opensnoop: open(2)/openat(2)/openat2(2) calls and their result. */
#include "diag.h"
#include "opensnoop.h"
#include "opensnoop.skel.h"

#include "anole/strbuf.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static bool opt_failed;

static const struct option opensnoop_longopts[] = {
	{ "failed", no_argument, NULL, 'x' },
	{ NULL, 0, NULL, 0 },
};

static int opensnoop_parse(int opt, const char *arg)
{
	switch (opt) {
	case 'x': opt_failed = true; return 0;
	}
	return -EINVAL;
}

static int opensnoop_prepare(void *skel, const struct diag_opts *o)
{
	struct opensnoop_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_failed = opt_failed;
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct diag_opts *o = ctx;
	const struct opensnoop_event *e = data;
	struct strbuf sb = STRBUF_INIT;
	int fd = e->ret >= 0 ? e->ret : -1, err = e->ret < 0 ? -e->ret : 0;

	if (size < sizeof(*e))
		return 0;
	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"pid\":%u,\"tid\":%u,\"uid\":%u,\"comm\":",
			    diag_ktime_to_real(o, e->ts), e->pid, e->tid, e->uid);
		diag_json_str(&sb, e->comm, sizeof(e->comm));
		if (fd >= 0)
			strbuf_addf(&sb, ",\"fd\":%d,\"err\":0", fd);
		else
			strbuf_addf(&sb, ",\"fd\":null,\"err\":%d", err);
		strbuf_addf(&sb, ",\"flags\":%llu,\"path\":", (unsigned long long)e->flags);
		diag_json_str(&sb, e->path, sizeof(e->path));
		strbuf_addch(&sb, '}');
	} else {
		if (o->timestamp)
			diag_add_event_time(&sb, o, e->ts);
		size_t at;

		strbuf_addf(&sb, "%-7u ", e->pid);
		at = sb.len;
		diag_text_bytes(&sb, e->comm, strnlen(e->comm, sizeof(e->comm)));
		strbuf_addf(&sb, "%*s %3d %3d ", (int)(16 - (sb.len - at < 16 ? sb.len - at : 16)), "",
			    fd, err);
		diag_text_bytes(&sb, e->path, strnlen(e->path, sizeof(e->path)));
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
	return 0;
}

static int opensnoop_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct opensnoop_bpf *s = skel;

	return diag_open_events(rb, bpf_map__fd(s->maps.op_events), handle_event, o,
				"%-7s %-16s %3s %3s %s\n", "PID", "COMM", "FD", "ERR", "PATH");
}

static void opensnoop_stop(void *skel, const struct diag_opts *o)
{
	diag_warn_dropped("opensnoop", ((struct opensnoop_bpf *)skel)->bss->op_dropped);
}

DIAG_SKEL_OPS(opensnoop_skel, opensnoop_bpf);

/*
 * fexit first (one program, no map); the per-syscall tracepoints before the
 * raw sys_enter/sys_exit ones, which run on every syscall of the machine.
 * open(2) exists on x86 only, openat2(2) since 5.6: optional.
 */
static const struct diag_variant opensnoop_variants[] = {
	{ "fentry", { DIAG_PROG_AT("op_fexit", "do_sys_openat2") } },
	{ "kprobe", { DIAG_PROG("op_kprobe"), DIAG_PROG("op_kretprobe") } },
	{ "tracepoint", { DIAG_PROG("op_tp_openat"), DIAG_PROG("op_tp_openat_x"),
			  DIAG_OPTIONAL_PROG("op_tp_open"), DIAG_OPTIONAL_PROG("op_tp_open_x"),
			  DIAG_OPTIONAL_PROG("op_tp_openat2"), DIAG_OPTIONAL_PROG("op_tp_openat2_x") } },
	{ "raw_tp", { DIAG_PROG("op_raw_enter"), DIAG_PROG("op_raw_exit") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_opensnoop = {
	.name = "opensnoop",
	.summary = "trace open(2), openat(2) and openat2(2): process, fd or error, path",
	.usage = "anole diag opensnoop [options]",
	.help = "  -x, --failed           only failed opens\n"
,
	.shortopts = "x",
	.longopts = opensnoop_longopts,
	.flags = DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &opensnoop_skel,
	.variants = opensnoop_variants,
	.parse = opensnoop_parse,
	.prepare = opensnoop_prepare,
	.start = opensnoop_start,
	.stop = opensnoop_stop,
};
