// SPDX-License-Identifier: Apache-2.0
/* anole diag offcputime: off-CPU time by thread and kernel and user stack. */
#include "diag.h"
#include "offcputime.h"
#include "offcputime.skel.h"
#include "usyms.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool opt_folded, opt_user_only, opt_kernel_only, opt_delimited;
static unsigned long long opt_min_us = 1, opt_max_us = ~0ULL;

static const struct option offcputime_longopts[] = {
	{ "folded", no_argument, NULL, 'f' },
	{ "min-block-time", required_argument, NULL, 'm' },
	{ "max-block-time", required_argument, NULL, 'M' },
	{ "user-stacks-only", no_argument, NULL, 'U' },
	{ "kernel-stacks-only", no_argument, NULL, 'K' },
	{ "delimited", no_argument, NULL, 'd' },
	{ NULL, 0, NULL, 0 },
};

static int parse_us(const char *arg, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-')
		return -EINVAL;
	return 0;
}

static int offcputime_parse(int opt, const char *arg)
{
	int ret = -EINVAL;

	switch (opt) {
	case 'f':
		opt_folded = true;
		return 0;
	case 'd':
		opt_delimited = true;
		return 0;
	case 'U':
	case 'K':
		*(opt == 'U' ? &opt_user_only : &opt_kernel_only) = true;
		if (opt_user_only && opt_kernel_only) {
			anole_error_code(EINVAL, "offcputime: -U and -K exclude each other");
			return -EINVAL;
		}
		return 0;
	case 'm':
		ret = parse_us(arg, &opt_min_us);
		break;
	case 'M':
		ret = parse_us(arg, &opt_max_us);
		break;
	}
	/* checked here, once, rather than before each hook's load */
	if (!ret && opt_min_us > opt_max_us) {
		anole_error_code(EINVAL, "offcputime: --min-block-time is above --max-block-time");
		return -EINVAL;
	}
	return ret;
}

static int offcputime_prepare(void *skel, const struct diag_opts *o)
{
	struct offcputime_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_min_us = opt_min_us;
	s->rodata->targ_max_us = opt_max_us;
	s->rodata->targ_user_only = opt_user_only;
	s->rodata->targ_kernel_only = opt_kernel_only;
	return 0;
}

static int offcputime_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	if (!o->json && !opt_folded)
		printf("Tracing off-CPU time (us) by %s stack... Hit Ctrl-C to end.\n",
		       opt_user_only ? "user" : opt_kernel_only ? "kernel" : "kernel and user");
	fflush(stdout);
	return 0;
}

struct entry {
	struct offcpu_key key;
	__u64 us;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	/* libbpf-tools order: smallest first, the heaviest stack printed last */
	if (x->us != y->us)
		return x->us < y->us ? -1 : 1;
	return x->key.tid < y->key.tid ? -1 : x->key.tid > y->key.tid;
}

/* the frames of a stack, innermost first; 0 if none */
static int read_stack(int fd, __s32 id, __u64 *ips)
{
	int n = 0;

	if (id < 0 || bpf_map_lookup_elem(fd, &id, ips))
		return 0;
	while (n < OFFCPU_STACK_DEPTH && ips[n])
		n++;
	return n;
}

/* The tracing machinery on top of the stack (the BPF program, bpf_trace_run4,
 * __bpf_trace_sched_switch): not where the task blocked. */
static int skip_tracing_frames(const struct diag_ksyms *ks, const __u64 *ips, int depth)
{
	int i = 0;

	for (; ks && i < depth; i++) {
		const struct diag_ksym *sym = diag_ksyms_search(ks, (unsigned long)ips[i]);

		if (!sym || (strncmp(sym->name, "bpf_prog_", 9) && strncmp(sym->name, "bpf_trace_run", 13) &&
			     strncmp(sym->name, "__bpf_trace_", 12) && strcmp(sym->name, "__traceiter_sched_switch")))
			break;
	}
	return i < depth ? i : 0;
}

static const char *sym_name(const struct diag_ksyms *ks, __u64 ip, char *buf, size_t len)
{
	const struct diag_ksym *sym = ks ? diag_ksyms_search(ks, (unsigned long)ip) : NULL;

	if (sym)
		return sym->name;
	snprintf(buf, len, "0x%llx", (unsigned long long)ip);
	return buf;
}

static int offcputime_report(void *skel, const struct diag_opts *o)
{
	struct offcputime_bpf *s = skel;
	int cfd = bpf_map__fd(s->maps.oc_counts), sfd = bpf_map__fd(s->maps.oc_stacks);
	const struct diag_ksyms *ks = diag_ksyms_shared();
	struct offcpu_key key, next, *prev = NULL;
	struct entry *ents = xcalloc(OFFCPU_MAX_ENTRIES, sizeof(*ents));
	__u64 *ips = xcalloc(OFFCPU_STACK_DEPTH, sizeof(*ips));
	__u64 *uips = xcalloc(OFFCPU_STACK_DEPTH, sizeof(*uips));
	struct diag_usyms *us = diag_usyms_new();
	size_t n = 0;
	struct timespec ts;
	char buf[512];

	while (n < OFFCPU_MAX_ENTRIES && !bpf_map_get_next_key(cfd, prev, &next)) {
		key = next;
		ents[n].key = key;
		if (!bpf_map_lookup_elem(cfd, &key, &ents[n].us))
			n++;
		prev = &key;
	}
	/* clear: each report covers its interval */
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(cfd, &ents[i].key);
	qsort(ents, n, sizeof(*ents), entry_cmp);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!o->json && !opt_folded) {
		printf("\n");
		if (o->timestamp)
			diag_print_time(stdout);
	}
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = &ents[i];
		struct strbuf sb = STRBUF_INIT;
		int depth = read_stack(sfd, e->key.kern_stack_id, ips);
		int top = skip_tracing_frames(ks, ips, depth);
		int udepth = read_stack(sfd, e->key.user_stack_id, uips);
		/* -EFAULT: a kernel thread, which has no user stack; -1: not asked for */
		bool kmiss = !opt_user_only && e->key.kern_stack_id < 0;
		bool umiss = !opt_kernel_only && e->key.user_stack_id < 0 &&
			     e->key.user_stack_id != -EFAULT;

		if (o->json) {
			strbuf_addf(&sb, "{\"tool\":\"offcputime\",\"time\":%.6f,\"pid\":%u,\"tid\":%u,"
				    "\"comm\":", ts.tv_sec + ts.tv_nsec / 1e9, e->key.pid, e->key.tid);
			diag_json_str(&sb, e->key.comm, sizeof(e->key.comm));
			strbuf_addf(&sb, ",\"usecs\":%llu,\"kernel_stack\":[", (unsigned long long)e->us);
			for (int j = top; j < depth; j++) {
				const char *name = sym_name(ks, ips[j], buf, sizeof(buf));

				strbuf_addstr(&sb, j > top ? "," : "");
				strbuf_add_json_string(&sb, name, strlen(name));
			}
			strbuf_addstr(&sb, "],\"user_stack\":[");
			for (int j = 0; j < udepth; j++) {
				diag_usyms_name(us, e->key.pid, uips[j], j ? DIAG_USYM_RETURN_ADDR : 0,
						buf, sizeof(buf));
				strbuf_addstr(&sb, j ? "," : "");
				strbuf_add_json_string(&sb, buf, strlen(buf));
			}
			strbuf_addf(&sb, "],\"kernel_stack_missing\":%s,\"user_stack_missing\":%s}",
				    kmiss ? "true" : "false", umiss ? "true" : "false");
			diag_emit_line(&sb);
		} else if (opt_folded) {
			/* flame-graph input: comm;user outermost..innermost;kernel outermost..innermost usecs */
			diag_text_bytes(&sb, e->key.comm, strnlen(e->key.comm, sizeof(e->key.comm)));
			if (umiss)
				strbuf_addstr(&sb, ";[Missed User Stack]");
			for (int j = udepth - 1; j >= 0; j--) {
				diag_usyms_name(us, e->key.pid, uips[j], j ? DIAG_USYM_RETURN_ADDR : 0,
						buf, sizeof(buf));
				strbuf_addf(&sb, ";%s", buf);
			}
			if (opt_delimited && udepth && depth > top)
				strbuf_addstr(&sb, ";-");
			if (kmiss)
				strbuf_addstr(&sb, ";[Missed Kernel Stack]");
			for (int j = depth - 1; j >= top; j--)
				strbuf_addf(&sb, ";%s", sym_name(ks, ips[j], buf, sizeof(buf)));
			strbuf_addf(&sb, " %llu", (unsigned long long)e->us);
			diag_emit_line(&sb);
		} else {
			if (kmiss)
				printf("    [Missed Kernel Stack]\n");
			for (int j = top; j < depth; j++)
				printf("    %s\n", sym_name(ks, ips[j], buf, sizeof(buf)));
			if (opt_delimited && udepth && depth > top)
				printf("    --\n");
			if (umiss)
				printf("    [Missed User Stack]\n");
			for (int j = 0; j < udepth; j++) {
				diag_usyms_name(us, e->key.pid, uips[j], j ? DIAG_USYM_RETURN_ADDR : 0,
						buf, sizeof(buf));
				printf("    %s\n", buf);
			}
			diag_text_bytes(&sb, e->key.comm, strnlen(e->key.comm, sizeof(e->key.comm)));
			printf("    %-16s %s (%u)\n        %llu\n\n", "-", sb.buf, e->key.tid,
			       (unsigned long long)e->us);
		}
		strbuf_release(&sb);
	}
	if (o->json && !n) {
		struct strbuf sb = STRBUF_INIT;

		/* an empty report still says it ran */
		strbuf_addf(&sb, "{\"tool\":\"offcputime\",\"time\":%.6f,\"pid\":null}",
			    ts.tv_sec + ts.tv_nsec / 1e9);
		diag_emit_line(&sb);
		strbuf_release(&sb);
	}
	fflush(stdout);
	diag_usyms_free(us);
	free(uips);
	free(ips);
	free(ents);
	return 0;
}

static void offcputime_stop(void *skel, const struct diag_opts *o)
{
	struct offcputime_bpf *s = skel;

	if (s->bss->oc_missed)
		anole_warn("offcputime: %llu off-CPU periods not counted (table full)",
			   (unsigned long long)s->bss->oc_missed);
	if (s->bss->oc_start_missed)
		anole_warn("offcputime: %llu off-CPU periods not counted (start table full)",
			   (unsigned long long)s->bss->oc_start_missed);
	if (s->bss->oc_lost)
		anole_warn("offcputime: %llu off-CPU periods lost: the kernel reported a thread's "
			   "switch-out but not its switch-in", (unsigned long long)s->bss->oc_lost);
}

DIAG_SKEL_OPS(offcputime_skel, offcputime_bpf);

static const struct diag_variant offcputime_variants[] = {
	{ "tp_btf", { DIAG_PROG("oc_btf_switch") } },
	{ "raw_tp", { DIAG_PROG("oc_raw_switch") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_offcputime = {
	.name = "offcputime",
	.summary = "off-CPU time by thread and kernel and user stack (blocked, sleeping, preempted)",
	.usage = "anole diag offcputime [options] [INTERVAL [COUNT]]",
	.help = "  -f, --folded           folded output (comm;frame;...;frame usecs), for flame graphs\n"
		"  -m, --min-block-time US  count off-CPU periods of at least US microseconds (1)\n"
		"  -M, --max-block-time US  and at most US microseconds (no limit)\n"
		"  -U, --user-stacks-only   user stacks only\n"
		"  -K, --kernel-stacks-only kernel stacks only\n"
		"  -d, --delimited        a \"-\" between kernel and user frames\n",
	.shortopts = "fm:M:UKd",
	.longopts = offcputime_longopts,
	.flags = DIAG_F_HIST | DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &offcputime_skel,
	.variants = offcputime_variants,
	.parse = offcputime_parse,
	.prepare = offcputime_prepare,
	.start = offcputime_start,
	.report = offcputime_report,
	.stop = offcputime_stop,
};
