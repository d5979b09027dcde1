// SPDX-License-Identifier: Apache-2.0
/* anole diag oomkill: every OOM kill, its victim and the task that triggered it. */
#include "diag.h"
#include "oomkill.h"
#include "oomkill.skel.h"

#include "anole/strbuf.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long page_kb;

static int oomkill_prepare(void *skel, const struct diag_opts *o)
{
	struct oomkill_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	return 0;
}

static void comm_text(struct strbuf *sb, const char *comm)
{
	diag_text_bytes(sb, comm, strnlen(comm, DIAG_COMM_LEN));
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct diag_opts *o = ctx;
	const struct oomkill_event *e = data;
	struct strbuf sb = STRBUF_INIT;
	unsigned long long kb;

	if (size < sizeof(*e))
		return 0;
	kb = e->has_mem == OOMKILL_MEM_KB ? 1 : page_kb;
	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"pid\":%u,\"comm\":", diag_ktime_to_real(o, e->ts), e->pid);
		diag_json_str(&sb, e->comm, sizeof(e->comm));
		strbuf_addf(&sb, ",\"trigger_pid\":%u,\"trigger_comm\":", e->tpid);
		diag_json_str(&sb, e->tcomm, sizeof(e->tcomm));
		if (e->has_mem)
			strbuf_addf(&sb, ",\"uid\":%u,\"oom_score_adj\":%d,\"total_vm_kb\":%llu,"
				    "\"anon_rss_kb\":%llu,\"file_rss_kb\":%llu,\"shmem_rss_kb\":%llu}",
				    e->uid, e->oom_score_adj,
				    (unsigned long long)e->total_vm * kb,
				    (unsigned long long)e->anon_rss * kb,
				    (unsigned long long)e->file_rss * kb,
				    (unsigned long long)e->shmem_rss * kb);
		else
			strbuf_addstr(&sb, "}");
	} else {
		if (o->timestamp)
			diag_add_event_time(&sb, o, e->ts);
		strbuf_addf(&sb, "Triggered by PID %u (\"", e->tpid);
		comm_text(&sb, e->tcomm);
		strbuf_addf(&sb, "\"), OOM kill of PID %u (\"", e->pid);
		comm_text(&sb, e->comm);
		strbuf_addstr(&sb, "\")");
		if (e->has_mem)
			strbuf_addf(&sb, ", total-vm %llukB, anon-rss %llukB, file-rss %llukB, "
				    "shmem-rss %llukB, uid %u, oom_score_adj %d",
				    (unsigned long long)e->total_vm * kb,
				    (unsigned long long)e->anon_rss * kb,
				    (unsigned long long)e->file_rss * kb,
				    (unsigned long long)e->shmem_rss * kb, e->uid, e->oom_score_adj);
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
	return 0;
}

static int oomkill_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct oomkill_bpf *s = skel;
	long ps = sysconf(_SC_PAGESIZE);

	page_kb = ps > 0 ? (unsigned long long)ps / 1024 : 4;
	*rb = ring_buffer__new(bpf_map__fd(s->maps.oom_events), handle_event, (void *)o, NULL);
	if (!*rb)
		return errno ? -errno : -ENOMEM;
	if (!o->json)
		printf("Tracing OOM kills... Hit Ctrl-C to end.\n");
	fflush(stdout);
	return 0;
}

static void oomkill_stop(void *skel, const struct diag_opts *o)
{
	struct oomkill_bpf *s = skel;

	diag_warn_dropped("oomkill", s->bss->oom_dropped);
}

DIAG_SKEL_OPS(oomkill_skel, oomkill_bpf);

static const struct diag_variant oomkill_variants[] = {
	{ "tp_btf", { DIAG_PROG("oom_btf_victim") } },
	{ "raw_tp", { DIAG_PROG("oom_raw_victim") } },
	{ "tracepoint", { DIAG_PROG("oom_tp_victim") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_oomkill = {
	.name = "oomkill",
	.summary = "trace OOM kills: victim, memory, and the task that triggered it",
	.usage = "anole diag oomkill [options]",
	.help = "  (-p PID: kills of that process; -c CGROUP: of tasks in it)\n",
	.flags = DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &oomkill_skel,
	.variants = oomkill_variants,
	.prepare = oomkill_prepare,
	.start = oomkill_start,
	.stop = oomkill_stop,
};
