// SPDX-License-Identifier: Apache-2.0
/* anole diag profile: CPU stack sampling, by process and kernel and user stack. */
#include "diag.h"
#include "profile.h"
#include "profile.skel.h"
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
static unsigned long long opt_freq = 49;

static const struct option profile_longopts[] = {
	{ "folded", no_argument, NULL, 'f' },
	{ "frequency", required_argument, NULL, 'F' },
	{ "user-stacks-only", no_argument, NULL, 'U' },
	{ "kernel-stacks-only", no_argument, NULL, 'K' },
	{ "delimited", no_argument, NULL, 'd' },
	{ NULL, 0, NULL, 0 },
};

static int profile_parse(int opt, const char *arg)
{
	char *end;

	switch (opt) {
	case 'f':
		opt_folded = true;
		return 0;
	case 'U':
		opt_user_only = true;
		break;
	case 'K':
		opt_kernel_only = true;
		break;
	case 'd':
		opt_delimited = true;
		return 0;
	case 'F':
		errno = 0;
		opt_freq = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || arg[0] == '-' || !opt_freq || opt_freq > 100000)
			return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
	if (opt_user_only && opt_kernel_only) {
		anole_error_code(EINVAL, "profile: -U and -K exclude each other");
		return -EINVAL;
	}
	return 0;
}

static int profile_prepare(void *skel, const struct diag_opts *o)
{
	struct profile_bpf *s = skel;

	s->rodata->diag_filter = o->filter;
	s->rodata->targ_user_only = opt_user_only;
	s->rodata->targ_kernel_only = opt_kernel_only;
	return 0;
}

/* the sampling program goes on a CPU clock event of each CPU */
static struct diag_perf_links *profile_links;

static void *profile_open(void) { return profile_bpf__open(); }
static struct bpf_object *profile_object(void *s) { return ((struct profile_bpf *)s)->obj; }
static int profile_load(void *s) { return profile_bpf__load(s); }

static int profile_attach(void *s)
{
	return diag_perf_attach(((struct profile_bpf *)s)->progs.pf_sample, opt_freq, true,
				&profile_links);
}

static void profile_destroy(void *s)
{
	diag_perf_detach(profile_links);
	profile_links = NULL;
	profile_bpf__destroy(s);
}

static const struct diag_skel_ops profile_skel = {
	profile_open, profile_object, profile_load, profile_attach, profile_destroy,
};

static int profile_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	if (!o->json && !opt_folded)
		printf("Sampling at %llu Hz of %s by %s stack... Hit Ctrl-C to end.\n", opt_freq,
		       o->pid ? "one process" : "all processes",
		       opt_user_only ? "user" : opt_kernel_only ? "kernel" : "kernel and user");
	fflush(stdout);
	return 0;
}

struct entry {
	struct profile_key key;
	__u64 count;
};

/* one stack as printed: raw stacks differing only in addresses inside the
 * same functions are merged */
struct sample {
	__u32 pid;
	char comm[DIAG_COMM_LEN];
	bool kmiss, umiss;
	int kn, un;
	char **kname, **uname; /* innermost first */
	char *sig;             /* all of the above, to compare */
	__u64 count;
};

static int sample_sig_cmp(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;

	return strcmp(x->sig, y->sig);
}

static int sample_count_cmp(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;

	/* as libbpf-tools: the most sampled stack printed last */
	if (x->count != y->count)
		return x->count < y->count ? -1 : 1;
	return strcmp(x->sig, y->sig);
}

/* -EFAULT: no stack of that kind (user mode, kernel thread), not a loss */
static bool stack_missed(__s32 id) { return id < 0 && id != -EFAULT && id != -1; }

static void frames_json(struct strbuf *sb, const char *what, char **names, int n)
{
	strbuf_addf(sb, ",\"%s\":[", what);
	for (int i = 0; i < n; i++) {
		strbuf_addstr(sb, i ? "," : "");
		strbuf_add_json_string(sb, names[i], strlen(names[i]));
	}
	strbuf_addch(sb, ']');
}

/* names of n frames, innermost first (user frames through usyms) */
static char **frame_names(const uint64_t *ips, int n, struct diag_usyms *us, __u32 pid)
{
	char **names = xcalloc((size_t)n + 1, sizeof(*names));
	char buf[512];

	for (int i = 0; i < n; i++) {
		if (us)
			diag_usyms_name(us, pid, ips[i], i ? DIAG_USYM_RETURN_ADDR : 0,
					buf, sizeof(buf));
		names[i] = xstrdup(us ? buf : diag_kframe_name(ips[i], buf, sizeof(buf)));
	}
	return names;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void sample_init(struct sample *sm, const struct entry *e, int sfd, uint64_t *ips,
			struct diag_usyms *us)
{
	struct strbuf sig = STRBUF_INIT;

	memset(sm, 0, sizeof(*sm));
	sm->pid = e->key.pid;
	memcpy(sm->comm, e->key.comm, sizeof(sm->comm));
	sm->count = e->count;
	sm->kmiss = !opt_user_only && stack_missed(e->key.kern_stack_id);
	sm->umiss = !opt_kernel_only && stack_missed(e->key.user_stack_id);
	sm->kn = diag_stack_read(sfd, e->key.kern_stack_id, ips, PROFILE_STACK_DEPTH);
	sm->kname = frame_names(ips, sm->kn, NULL, 0);
	sm->un = diag_stack_read(sfd, e->key.user_stack_id, ips, PROFILE_STACK_DEPTH);
	sm->uname = frame_names(ips, sm->un, us, e->key.pid);
	strbuf_addf(&sig, "%u %.*s %d %d", sm->pid, DIAG_COMM_LEN, sm->comm, sm->kmiss, sm->umiss);
	for (int i = 0; i < sm->kn; i++)
		strbuf_addf(&sig, "\nk%s", sm->kname[i]);
	for (int i = 0; i < sm->un; i++)
		strbuf_addf(&sig, "\nu%s", sm->uname[i]);
	sm->sig = strbuf_detach(&sig, NULL);
}

static void sample_release(struct sample *sm)
{
	free_names(sm->kname, sm->kn);
	free_names(sm->uname, sm->un);
	free(sm->sig);
}

static void print_sample(const struct diag_opts *o, const struct sample *sm, double now)
{
	struct strbuf sb = STRBUF_INIT;

	if (o->json) {
		strbuf_addf(&sb, "{\"tool\":\"profile\",\"time\":%.6f,\"pid\":%u,\"comm\":", now,
			    sm->pid);
		diag_json_str(&sb, sm->comm, sizeof(sm->comm));
		strbuf_addf(&sb, ",\"count\":%llu", (unsigned long long)sm->count);
		frames_json(&sb, "kernel_stack", sm->kname, sm->kn);
		frames_json(&sb, "user_stack", sm->uname, sm->un);
		strbuf_addf(&sb, ",\"kernel_stack_missing\":%s,\"user_stack_missing\":%s}",
			    sm->kmiss ? "true" : "false", sm->umiss ? "true" : "false");
		diag_emit_line(&sb);
	} else if (opt_folded) {
		/* flame-graph input: comm;user outermost..innermost;kernel outer..inner count */
		diag_text_bytes(&sb, sm->comm, strnlen(sm->comm, sizeof(sm->comm)));
		if (sm->umiss)
			strbuf_addstr(&sb, ";[Missed User Stack]");
		for (int j = sm->un - 1; j >= 0; j--)
			strbuf_addf(&sb, ";%s", sm->uname[j]);
		if (opt_delimited && sm->un && sm->kn)
			strbuf_addstr(&sb, ";-");
		if (sm->kmiss)
			strbuf_addstr(&sb, ";[Missed Kernel Stack]");
		for (int j = sm->kn - 1; j >= 0; j--)
			strbuf_addf(&sb, ";%s", sm->kname[j]);
		strbuf_addf(&sb, " %llu", (unsigned long long)sm->count);
		diag_emit_line(&sb);
	} else {
		/* as libbpf-tools: kernel frames, then user frames, innermost first */
		if (sm->kmiss)
			printf("    [Missed Kernel Stack]\n");
		for (int j = 0; j < sm->kn; j++)
			printf("    %s\n", sm->kname[j]);
		if (opt_delimited && sm->kn && sm->un)
			printf("    --\n");
		if (sm->umiss)
			printf("    [Missed User Stack]\n");
		for (int j = 0; j < sm->un; j++)
			printf("    %s\n", sm->uname[j]);
		diag_text_bytes(&sb, sm->comm, strnlen(sm->comm, sizeof(sm->comm)));
		printf("    %-16s %s (%u)\n        %llu\n\n", "-", sb.buf, sm->pid,
		       (unsigned long long)sm->count);
	}
	strbuf_release(&sb);
}

static int profile_report(void *skel, const struct diag_opts *o)
{
	struct profile_bpf *s = skel;
	int cfd = bpf_map__fd(s->maps.pf_counts), sfd = bpf_map__fd(s->maps.pf_stacks);
	struct profile_key key, next, *prev = NULL;
	struct entry *ents = xcalloc(PROFILE_MAX_ENTRIES, sizeof(*ents));
	uint64_t *ips = xcalloc(PROFILE_STACK_DEPTH, sizeof(*ips));
	struct diag_usyms *us = diag_usyms_new();
	struct sample *sms;
	size_t n = 0, nsm = 0;
	struct timespec ts;
	double now;

	while (n < PROFILE_MAX_ENTRIES && !bpf_map_get_next_key(cfd, prev, &next)) {
		key = next;
		ents[n].key = key;
		if (!bpf_map_lookup_elem(cfd, &key, &ents[n].count))
			n++;
		prev = &key;
	}
	/* clear: each report covers its interval */
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(cfd, &ents[i].key);
	sms = xcalloc(n + 1, sizeof(*sms));
	for (size_t i = 0; i < n; i++)
		sample_init(&sms[i], &ents[i], sfd, ips, us);
	if (n)
		qsort(sms, n, sizeof(*sms), sample_sig_cmp);
	for (size_t i = 0; i < n; i++) {
		if (nsm && !strcmp(sms[nsm - 1].sig, sms[i].sig)) {
			sms[nsm - 1].count += sms[i].count;
			sample_release(&sms[i]);
		} else {
			sms[nsm++] = sms[i];
		}
	}
	if (nsm)
		qsort(sms, nsm, sizeof(*sms), sample_count_cmp);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec + ts.tv_nsec / 1e9;
	if (!o->json && !opt_folded) {
		printf("\n");
		if (o->timestamp)
			diag_print_time(stdout);
	}
	for (size_t i = 0; i < nsm; i++) {
		print_sample(o, &sms[i], now);
		sample_release(&sms[i]);
	}
	if (o->json && !nsm) {
		struct strbuf sb = STRBUF_INIT;

		/* an empty report still says it ran */
		strbuf_addf(&sb, "{\"tool\":\"profile\",\"time\":%.6f,\"pid\":null}", now);
		diag_emit_line(&sb);
		strbuf_release(&sb);
	}
	fflush(stdout);
	diag_usyms_free(us);
	free(sms);
	free(ips);
	free(ents);
	return 0;
}

static void profile_stop(void *skel, const struct diag_opts *o)
{
	struct profile_bpf *s = skel;

	if (s->bss->pf_missed)
		anole_warn("profile: %llu samples not counted (table full)",
			   (unsigned long long)s->bss->pf_missed);
}

static const struct diag_variant profile_variants[] = {
	{ "perf_event", { DIAG_PROG("pf_sample") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_profile = {
	.name = "profile",
	.summary = "sample CPU stacks (kernel and user) at a fixed frequency",
	.usage = "anole diag profile [options] [INTERVAL [COUNT]]",
	.help = "  -F, --frequency HZ     samples a second on each CPU (49)\n"
		"  -f, --folded           folded output (comm;frame;...;frame count), for flame graphs\n"
		"  -U, --user-stacks-only   user stacks only\n"
		"  -K, --kernel-stacks-only kernel stacks only\n"
		"  -d, --delimited        a \"-\" between kernel and user frames\n",
	.shortopts = "fF:UKd",
	.longopts = profile_longopts,
	.flags = DIAG_F_HIST | DIAG_F_PID | DIAG_F_CGROUP,
	.skel = &profile_skel,
	.variants = profile_variants,
	.parse = profile_parse,
	.prepare = profile_prepare,
	.start = profile_start,
	.report = profile_report,
	.stop = profile_stop,
};
