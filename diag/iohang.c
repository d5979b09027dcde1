// SPDX-License-Identifier: Apache-2.0
/* anole diag iohang: block I/O requests outstanding longer than a threshold. */
#include "diag.h"
#include "iohang.h"
#include "iohang.skel.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double opt_threshold_ms = 1000;
static const char *opt_disk;
static __u32 disk_dev;

static const struct option iohang_longopts[] = {
	{ "threshold", required_argument, NULL, 't' },
	{ "disk", required_argument, NULL, 'd' },
	{ NULL, 0, NULL, 0 },
};

static int iohang_parse(int opt, const char *arg)
{
	char *end;

	switch (opt) {
	case 't':
		errno = 0;
		opt_threshold_ms = strtod(arg, &end);
		if (errno || end == arg || *end || !(opt_threshold_ms >= 0) || opt_threshold_ms > 1e9)
			return -EINVAL;
		return 0;
	case 'd':
		opt_disk = arg;
		return diag_disk_resolve("iohang", arg, &disk_dev) ? -ENOENT : 0;
	}
	return -EINVAL;
}

static int iohang_prepare(void *skel, const struct diag_opts *o)
{
	struct iohang_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_threshold_ns = (__u64)(opt_threshold_ms * 1e6 + 0.5);
	s->rodata->targ_filter_dev = opt_disk != NULL;
	s->rodata->targ_dev = disk_dev;
	return 0;
}

/* blktrace's RWBS of a request the tp_btf/raw_tp programs saw */
static void rwbs_of(const struct iohang_req *r, char *out, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	if (r->rwbs[0]) {
		snprintf(out, n, "%.*s", (int)strnlen(r->rwbs, sizeof(r->rwbs)), r->rwbs);
		return;
	}
	if (r->opflags & IOHANG_OPF_PREFLUSH)
		strbuf_addch(&sb, 'F');
	switch (r->op) {
	case 0: strbuf_addch(&sb, 'R'); break;
	case 1: strbuf_addch(&sb, 'W'); break;
	case 2: strbuf_addch(&sb, 'F'); break;
	case 3: strbuf_addch(&sb, 'D'); break;
	case 5: strbuf_addstr(&sb, "DE"); break;
	default: strbuf_addch(&sb, 'N'); break;
	}
	if (r->opflags & IOHANG_OPF_FUA)
		strbuf_addch(&sb, 'F');
	if (r->opflags & IOHANG_OPF_RAHEAD)
		strbuf_addch(&sb, 'A');
	if (r->opflags & IOHANG_OPF_SYNC)
		strbuf_addch(&sb, 'S');
	if (r->opflags & IOHANG_OPF_META)
		strbuf_addch(&sb, 'M');
	snprintf(out, n, "%s", sb.buf);
	strbuf_release(&sb);
}

static double now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of bpf_ktime_get_ns() */
	return (double)ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One line: a request still outstanding (done_ns 0) or completed late. */
static void emit(const struct diag_opts *o, const struct iohang_req *r, double now_ns,
		 __u64 done_ns, int error)
{
	struct strbuf sb = STRBUF_INIT;
	double at_ns = done_ns ? (double)done_ns : now_ns;
	double age_ms = (at_ns - (double)r->start_ns) / 1e6;
	char disk[64], rwbs[16];

	diag_disk_name(r->dev, disk, sizeof(disk));
	rwbs_of(r, rwbs, sizeof(rwbs));
	if (o->json) {
		strbuf_addf(&sb, "{\"tool\":\"iohang\",\"time\":%.6f,\"state\":\"%s\",\"disk\":",
			    diag_ktime_to_real(o, (uint64_t)at_ns), done_ns ? "completed" : "outstanding");
		strbuf_add_json_string(&sb, disk, strlen(disk));
		strbuf_addf(&sb, ",\"dev\":\"%u:%u\",\"op\":", r->dev >> 20, r->dev & ((1u << 20) - 1));
		strbuf_add_json_string(&sb, rwbs, strlen(rwbs));
		strbuf_addf(&sb, ",\"sector\":%llu,\"bytes\":%u,\"issued\":%s,\"age_ms\":%.3f",
			    (unsigned long long)r->sector, r->bytes,
			    r->flags & IOHANG_ISSUED ? "true" : "false", age_ms);
		if (done_ns)
			strbuf_addf(&sb, ",\"error\":%d", error);
		strbuf_addf(&sb, ",\"pid\":%u,\"tid\":%u,\"comm\":", r->pid, r->tid);
		diag_json_str(&sb, r->comm, sizeof(r->comm));
		strbuf_addch(&sb, '}');
	} else {
		if (o->timestamp)
			diag_add_event_time(&sb, o, (uint64_t)at_ns);
		strbuf_addf(&sb, "%-5s %-10s %-4s %-12llu %-8u %-6s %-10.0f %-7u ",
			    done_ns ? "DONE" : "HUNG", disk, rwbs, (unsigned long long)r->sector,
			    r->bytes, r->flags & IOHANG_ISSUED ? "device" : "queue", age_ms, r->pid);
		diag_text_bytes(&sb, r->comm, strnlen(r->comm, sizeof(r->comm)));
		if (done_ns && error)
			strbuf_addf(&sb, " (error %d)", error);
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct iohang_event *e = data;

	if (size < sizeof(*e))
		return 0;
	emit(ctx, &e->req, 0, e->done_ns ? e->done_ns : 1, e->error);
	return 0;
}

static int iohang_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct iohang_bpf *s = skel;

	if (!o->json)
		printf("Tracing block I/O outstanding longer than %g ms, scanned every %g s... "
		       "Hit Ctrl-C to end.\n", opt_threshold_ms, o->interval);
	return diag_open_events(rb, bpf_map__fd(s->maps.ih_events), handle_event, o,
				"%-5s %-10s %-4s %-12s %-8s %-6s %-10s %-7s %s\n", "STATE", "DISK",
				"OP", "SECTOR", "BYTES", "AT", "AGE(ms)", "PID", "COMM");
}

struct found {
	struct iohang_key key;
	struct iohang_req req;
};

static int key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct found *)a)->key, &((const struct found *)b)->key,
		      sizeof(struct iohang_key));
}

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	/* oldest first */
	return x->req.start_ns < y->req.start_ns ? -1 : x->req.start_ns > y->req.start_ns;
}

/* 1 for a request the kernel counts as a write in /sys/block/X/inflight
 * (op_is_write: odd REQ_OP), 0 for a read, -1 if unknown */
static int req_dir(const struct iohang_req *r)
{
	if (!r->rwbs[0])
		return r->op & 1;
	if (strpbrk(r->rwbs, "WD"))
		return 1;
	return strpbrk(r->rwbs, "RF") ? 0 : -1;
}

/* The disk's requests issued to its driver, by direction; -1 if unknown. */
static void disk_inflight(__u32 dev, long inflight[2])
{
	char name[64], path[128];
	FILE *f;

	inflight[0] = inflight[1] = -1;
	diag_disk_name(dev, name, sizeof(name));
	if (strchr(name, ':')) /* no such disk now */
		return;
	snprintf(path, sizeof(path), "/sys/class/block/%s/inflight", name);
	if (!(f = fopen(path, "re")))
		return;
	if (fscanf(f, "%ld %ld", &inflight[0], &inflight[1]) != 2)
		inflight[0] = inflight[1] = -1;
	fclose(f);
}

/*
 * A completion the BPF side missed leaves an entry that would hang forever
 * (a classic tracepoint program is skipped while another BPF program runs
 * on that CPU, as when the completion interrupt lands in one). An entry
 * issued in a direction in which its disk has nothing in flight is such a
 * one: it goes, unprinted.
 */
static bool stale(int fd, const struct found *f, __u32 *last_dev, long inflight[2])
{
	int dir = req_dir(&f->req);
	struct iohang_req now;

	if (!(f->req.flags & IOHANG_ISSUED) || dir < 0)
		return false;
	if (*last_dev != f->req.dev) {
		disk_inflight(f->req.dev, inflight);
		*last_dev = f->req.dev;
	}
	if (inflight[dir] != 0)
		return false;
	/* unless it was replaced meanwhile by a new request of that key */
	if (!bpf_map_lookup_elem(fd, &f->key, &now) && now.start_ns == f->req.start_ns)
		bpf_map_delete_elem(fd, &f->key);
	anole_debug("iohang: dropped a request of %u:%u at sector %llu: its completion was "
		    "missed (nothing in flight)", f->req.dev >> 20, f->req.dev & ((1u << 20) - 1),
		    (unsigned long long)f->req.sector);
	return true;
}

static int dev_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct found *)a)->req.dev, y = ((const struct found *)b)->req.dev;

	return x < y ? -1 : x > y;
}

/* The scan: every request in flight for longer than the threshold. */
static int iohang_report(void *skel, const struct diag_opts *o)
{
	struct iohang_bpf *s = skel;
	int fd = bpf_map__fd(s->maps.ih_inflight);
	struct iohang_key key, next, *prev = NULL;
	struct found *hung = NULL;
	size_t n = 0, cap = 0, kept = 0;
	double now = now_mono_ns(), threshold_ns = opt_threshold_ms * 1e6;
	__u32 last_dev = ~0u;
	long inflight[2] = { -1, -1 };

	for (size_t seen = 0; seen < IOHANG_MAX_INFLIGHT * 2 && !bpf_map_get_next_key(fd, prev, &next);
	     seen++) {
		struct iohang_req r;

		key = next;
		prev = &key;
		/* completed meanwhile: gone, skip */
		if (bpf_map_lookup_elem(fd, &key, &r) || !r.start_ns)
			continue;
		if (now - (double)r.start_ns < threshold_ns)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			hung = xrealloc(hung, cap * sizeof(*hung));
		}
		hung[n].key = key;
		hung[n++].req = r;
	}
	/* the walk restarts when the key it stands on goes: once each */
	if (n)
		qsort(hung, n, sizeof(*hung), key_cmp);
	for (size_t i = 0; i < n; i++)
		if (!kept || key_cmp(&hung[kept - 1], &hung[i]))
			hung[kept++] = hung[i];
	n = kept;
	kept = 0;
	if (n)
		qsort(hung, n, sizeof(*hung), dev_cmp);
	for (size_t i = 0; i < n; i++)
		if (!stale(fd, &hung[i], &last_dev, inflight))
			hung[kept++] = hung[i];
	n = kept;
	if (n)
		qsort(hung, n, sizeof(*hung), found_cmp);
	for (size_t i = 0; i < n; i++)
		emit(o, &hung[i].req, now, 0, 0);
	fflush(stdout);
	free(hung);
	return 0;
}

/* Runs of the programs the kernel skipped: a classic tracepoint program is
 * not run while another BPF program runs on that CPU. */
static unsigned long long recursion_misses(struct iohang_bpf *s)
{
	struct bpf_program *prog;
	unsigned long long n = 0;

	bpf_object__for_each_program(prog, s->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_program__fd(prog) >= 0 &&
		    !bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			n += info.recursion_misses;
	}
	return n;
}

static void iohang_stop(void *skel, const struct diag_opts *o)
{
	struct iohang_bpf *s = skel;
	unsigned long long missed = recursion_misses(s);

	if (missed)
		anole_warn("iohang: the kernel skipped %llu runs of its programs (another BPF "
			   "program was running on that CPU): a request whose completion was "
			   "missed shows as hung until its disk has nothing in flight", missed);

	diag_warn_dropped("iohang", s->bss->ih_dropped);
	if (s->bss->ih_untracked)
		anole_warn("iohang: %llu requests not tracked (more than %d in flight)",
			   (unsigned long long)s->bss->ih_untracked, IOHANG_MAX_INFLIGHT);
}

DIAG_SKEL_OPS(iohang_skel, iohang_bpf);

static const struct diag_variant iohang_variants[] = {
	{ "tp_btf", { DIAG_PROG("ih_btf_insert"), DIAG_PROG("ih_btf_issue"),
		      DIAG_OPTIONAL_PROG("ih_btf_requeue"), DIAG_OPTIONAL_PROG("ih_btf_merge"),
		      DIAG_PROG("ih_btf_done") } },
	{ "raw_tp", { DIAG_PROG("ih_raw_insert"), DIAG_PROG("ih_raw_issue"),
		      DIAG_OPTIONAL_PROG("ih_raw_requeue"), DIAG_OPTIONAL_PROG("ih_raw_merge"),
		      DIAG_PROG("ih_raw_done") } },
	{ "tracepoint", { DIAG_PROG("ih_tp_insert"), DIAG_PROG("ih_tp_issue"),
			  DIAG_OPTIONAL_PROG("ih_tp_requeue"), DIAG_OPTIONAL_PROG("ih_tp_merge"),
			  DIAG_OPTIONAL_PROG("ih_tp_frontmerge"), DIAG_PROG("ih_tp_done") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_iohang = {
	.name = "iohang",
	.summary = "block I/O requests outstanding past a threshold, stalled ones included",
	.usage = "anole diag iohang [options] [INTERVAL [COUNT]]",
	.help = "  -t, --threshold MS     report requests outstanding for at least MS\n"
		"                         milliseconds (default 1000)\n"
		"  -d, --disk DISK        only this disk (sda, loop0, /dev/nvme0n1)\n"
		"  INTERVAL               scan the requests in flight every INTERVAL seconds\n"
		"                         (default 1); COUNT: that many scans\n"
		"  (-p/-c: requests queued or issued by those tasks; writeback is the\n"
		"  kernel's flusher threads)\n",
	.shortopts = "t:d:",
	.longopts = iohang_longopts,
	.flags = DIAG_F_HIST | DIAG_F_PID | DIAG_F_CGROUP,
	.default_interval = 1,
	.skel = &iohang_skel,
	.variants = iohang_variants,
	.parse = iohang_parse,
	.prepare = iohang_prepare,
	.start = iohang_start,
	.report = iohang_report,
	.stop = iohang_stop,
};
