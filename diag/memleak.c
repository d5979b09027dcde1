// SPDX-License-Identifier: Apache-2.0
/* anole diag memleak: outstanding allocations of a process, by user stack. */
#include "diag.h"
#include "memleak.h"
#include "memleak.skel.h"
#include "usyms.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OPT_TOP = 'N', OPT_OLDER = 'o', OPT_MIN = 'z', OPT_MAX = 'Z' };

static unsigned long opt_top = 10;
static double opt_older_ms = 500;
static unsigned long long opt_min_size, opt_max_size = ~0ULL;
static int target_pid;           /* 0: ourselves (`anole diag list`) */
static char libc_path[PATH_MAX]; /* where the probes go */
/* Every frame of a stack taken in a return probe is a return address;
 * frames show their offset and module, as bcc's memleak does. */
#define MEMLEAK_FRAME (DIAG_USYM_RETURN_ADDR | DIAG_USYM_OFFSET)
static struct diag_usyms *syms; /* the target's, from the last report it was alive for */

static const struct option memleak_longopts[] = {
	{ "top", required_argument, NULL, OPT_TOP },
	{ "older", required_argument, NULL, OPT_OLDER },
	{ "min-size", required_argument, NULL, OPT_MIN },
	{ "max-size", required_argument, NULL, OPT_MAX },
	{ NULL, 0, NULL, 0 },
};

static int parse_ull(const char *arg, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	return errno || end == arg || *end || arg[0] == '-' ? -EINVAL : 0;
}

static int memleak_parse(int opt, const char *arg)
{
	unsigned long long v;
	char *end;

	switch (opt) {
	case OPT_TOP:
		if (parse_ull(arg, &v) || !v || v > 100000)
			return -EINVAL;
		opt_top = (unsigned long)v;
		return 0;
	case OPT_OLDER:
		errno = 0;
		opt_older_ms = strtod(arg, &end);
		return errno || end == arg || *end || !(opt_older_ms >= 0) || opt_older_ms > 1e12
			       ? -EINVAL : 0;
	case OPT_MIN:
		return parse_ull(arg, &opt_min_size);
	case OPT_MAX:
		return parse_ull(arg, &opt_max_size);
	}
	return -EINVAL;
}

/*
 * The C library PID has mapped (glibc's libc.so.6, musl's ld-musl-*.so.1),
 * else its executable (static): the file the probes go on.
 */
static int find_libc(int pid, char *out, size_t len)
{
	char path[64], line[PATH_MAX + 256];
	FILE *f;
	bool found = false, any = false;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/maps");
	f = fopen(path, "re");
	if (!f)
		return anole_error(errno, "memleak: cannot read %s", path);
	while (!found && fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/'), *base;

		any = true;
		if (!file)
			continue;
		file[strcspn(file, "\n")] = '\0';
		base = strrchr(file, '/') + 1;
		if (!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5) ||
		    !strncmp(base, "ld-musl-", 8)) {
			snprintf(out, len, "%s", file);
			found = true;
		}
	}
	fclose(f);
	if (!any)
		return anole_error_code(EINVAL, "memleak: process %d has no user-space memory "
					"(a kernel thread, or exiting)", pid);
	if (!found) {
		if (pid)
			snprintf(out, len, "/proc/%d/exe", pid);
		else
			snprintf(out, len, "/proc/self/exe");
		anole_info("memleak: no shared C library in %s: probing %s", path, out);
	}
	return 0;
}

static int memleak_prepare(void *skel, const struct diag_opts *o)
{
	struct memleak_bpf *s = skel;

	if (opt_min_size > opt_max_size) {
		anole_error_code(EINVAL, "memleak: --min-size is above --max-size");
		return -EINVAL;
	}
	static int found_err, found_for = -1;

	/* once (reported once): every load attempt probes the same file */
	if (found_for != o->pid) {
		found_for = target_pid = o->pid;
		found_err = find_libc(target_pid, libc_path, sizeof(libc_path));
	}
	if (found_err)
		return found_err;
	s->rodata->diag_filter = o->filter;
	s->rodata->targ_min_size = opt_min_size;
	s->rodata->targ_max_size = opt_max_size;
	return 0;
}

/* "uprobe/libc:malloc" -> "malloc" */
static const char *probe_function(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog), *colon = strrchr(sec, ':');

	return colon ? colon + 1 : NULL;
}

/* Attach order: free first, then the entry probes, the return probes (which
 * record) last, so that no allocation is recorded while frees are not seen. */
static int attach_pass(const struct bpf_program *prog)
{
	const char *fn = probe_function(prog);

	if (fn && !strcmp(fn, "free"))
		return 0;
	return strncmp(bpf_program__section_name(prog), "uretprobe", 9) ? 1 : 2;
}

/* The skeleton's attach would want a path in each section: these go on the
 * target's libc, for its pid only. Links are kept in the skeleton, so its
 * destroy detaches them. */
static int memleak_attach(void *skel)
{
	struct memleak_bpf *s = skel;
	struct bpf_object_skeleton *sk = s->skeleton;

	for (int n = 0; n < 3 * sk->prog_cnt; n++) {
		int pass = n / sk->prog_cnt, i = n % sk->prog_cnt;
		struct bpf_program *prog = *sk->progs[i].prog;
		const char *fn = probe_function(prog);
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = fn,
			    .retprobe = !strncmp(bpf_program__section_name(prog), "uretprobe", 9));
		struct bpf_link *link;

		if (!bpf_program__autoload(prog) || !fn || attach_pass(prog) != pass)
			continue;
		/* pid 0: ourselves (libbpf), what `anole diag list` tries */
		link = bpf_program__attach_uprobe_opts(prog, target_pid, libc_path, 0, &uo);
		if (!link) /* libbpf's warning says why; the hook chain reports it */
			return errno ? -errno : -EINVAL;
		*sk->progs[i].link = link;
	}
	return 0;
}

static void *memleak_open(void) { return memleak_bpf__open(); }
static struct bpf_object *memleak_object(void *s) { return ((struct memleak_bpf *)s)->obj; }
static int memleak_load(void *s) { return memleak_bpf__load(s); }
static void memleak_destroy(void *s) { memleak_bpf__destroy(s); }

static const struct diag_skel_ops memleak_skel = {
	memleak_open, memleak_object, memleak_load, memleak_attach, memleak_destroy,
};

static int memleak_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	if (!o->json)
		printf("Attached to %s in process %d, tracing outstanding allocations... "
		       "Hit Ctrl-C to end.\n", libc_path, o->pid);
	fflush(stdout);
	return 0;
}

struct alloc_ent {
	__u64 addr;
	struct memleak_alloc a;
};

struct stack_total {
	__s64 stack_id;
	__u64 bytes;
	__u64 count;
};

/* Every outstanding allocation, with batched lookups where the kernel has
 * them (a key-by-key walk restarts when the key it stands on is freed). */
static int read_allocs(int fd, struct alloc_ent **out, size_t *n)
{
	__u64 *keys = xcalloc(MEMLEAK_MAX_ALLOCS, sizeof(*keys));
	struct memleak_alloc *vals = xcalloc(MEMLEAK_MAX_ALLOCS, sizeof(*vals));
	__u64 in_batch = 0, out_batch = 0;
	size_t total = 0;
	bool first = true, batch_ok = true;

	while (total < MEMLEAK_MAX_ALLOCS) {
		__u32 count = (__u32)(MEMLEAK_MAX_ALLOCS - total);
		int err = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys + total,
					       vals + total, &count, NULL);

		if (err && errno != ENOENT) {
			if (first && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP))
				batch_ok = false;
			else if (errno != ENOSPC)
				anole_info("memleak: reading allocations: %s", strerror(errno));
			if (!first || !batch_ok)
				total += count;
			break;
		}
		total += count;
		if (err) /* ENOENT: that was the last batch */
			break;
		in_batch = out_batch;
		first = false;
	}
	if (!batch_ok) {
		__u64 key, next, *prev = NULL;

		total = 0;
		while (total < MEMLEAK_MAX_ALLOCS && !bpf_map_get_next_key(fd, prev, &next)) {
			key = next;
			prev = &key;
			if (!bpf_map_lookup_elem(fd, &key, &vals[total]))
				keys[total++] = key;
		}
	}
	*out = xcalloc(total ? total : 1, sizeof(**out));
	for (size_t i = 0; i < total; i++) {
		(*out)[i].addr = keys[i];
		(*out)[i].a = vals[i];
	}
	*n = total;
	free(keys);
	free(vals);
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	const struct alloc_ent *x = a, *y = b;

	return x->a.stack_id < y->a.stack_id ? -1 : x->a.stack_id > y->a.stack_id;
}

static int bytes_cmp(const void *a, const void *b)
{
	const struct stack_total *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->count > y->count ? -1 : x->count < y->count;
}

static double mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int memleak_report(void *skel, const struct diag_opts *o)
{
	struct memleak_bpf *s = skel;
	int sfd = bpf_map__fd(s->maps.ml_stacks);
	struct alloc_ent *ents;
	struct stack_total *tot;
	size_t n, ntot = 0;
	__u64 *ips = xcalloc(MEMLEAK_STACK_DEPTH, sizeof(*ips));
	__u64 all_bytes = 0, all_count = 0;
	double cutoff = mono_ns() - opt_older_ms * 1e6;
	struct strbuf sb = STRBUF_INIT;
	struct timespec ts;
	char frame[512];

	read_allocs(bpf_map__fd(s->maps.ml_allocs), &ents, &n);
	/* the modules now (dlopen since the last report); the old ones once it is gone */
	if (!syms)
		syms = diag_usyms_new();
	diag_usyms_load(syms, (uint32_t)o->pid);

	/* by stack: sort by id, then sum runs */
	if (n)
		qsort(ents, n, sizeof(*ents), id_cmp);
	tot = xcalloc(n ? n : 1, sizeof(*tot));
	for (size_t i = 0; i < n; i++) {
		const struct memleak_alloc *a = &ents[i].a;

		if ((double)a->ts > cutoff)
			continue; /* younger than --older: likely still in use */
		if (!ntot || tot[ntot - 1].stack_id != a->stack_id)
			tot[ntot++] = (struct stack_total){ .stack_id = a->stack_id };
		tot[ntot - 1].bytes += a->size;
		tot[ntot - 1].count++;
		all_bytes += a->size;
		all_count++;
	}
	if (ntot)
		qsort(tot, ntot, sizeof(*tot), bytes_cmp);
	clock_gettime(CLOCK_REALTIME, &ts);

	if (o->json) {
		strbuf_addf(&sb, "{\"tool\":\"memleak\",\"time\":%.6f,\"pid\":%d,"
			    "\"outstanding_bytes\":%llu,\"outstanding_allocations\":%llu,\"stacks\":[",
			    ts.tv_sec + ts.tv_nsec / 1e9, o->pid, (unsigned long long)all_bytes,
			    (unsigned long long)all_count);
	} else {
		struct tm tm;
		char buf[16];
		time_t t = ts.tv_sec;

		localtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
		printf("[%s] Top %zu stacks with outstanding allocations (%llu bytes in %llu "
		       "allocations, older than %g ms):\n", buf, ntot < opt_top ? ntot : opt_top,
		       (unsigned long long)all_bytes, (unsigned long long)all_count, opt_older_ms);
	}
	for (size_t i = 0; i < ntot && i < opt_top; i++) {
		const struct stack_total *st = &tot[i];
		__s32 id = (__s32)st->stack_id;
		int depth = 0;

		memset(ips, 0, MEMLEAK_STACK_DEPTH * sizeof(*ips));
		if (st->stack_id >= 0 && !bpf_map_lookup_elem(sfd, &id, ips))
			while (depth < MEMLEAK_STACK_DEPTH && ips[depth])
				depth++;
		if (o->json) {
			strbuf_addf(&sb, "%s{\"bytes\":%llu,\"allocations\":%llu,\"stack\":[",
				    i ? "," : "", (unsigned long long)st->bytes,
				    (unsigned long long)st->count);
			for (int j = 0; j < depth; j++) {
				diag_usyms_name(syms, (uint32_t)o->pid, ips[j], MEMLEAK_FRAME, frame,
						sizeof(frame));
				strbuf_addstr(&sb, j ? "," : "");
				diag_json_str(&sb, frame, sizeof(frame));
			}
			strbuf_addf(&sb, "],\"stack_missing\":%s}", depth ? "false" : "true");
			continue;
		}
		printf("\t%llu bytes in %llu allocations from stack\n",
		       (unsigned long long)st->bytes, (unsigned long long)st->count);
		if (!depth)
			printf("\t\t[missing user stack]\n");
		for (int j = 0; j < depth; j++) {
			diag_usyms_name(syms, (uint32_t)o->pid, ips[j], MEMLEAK_FRAME, frame,
					sizeof(frame));
			strbuf_reset(&sb);
			diag_text_bytes(&sb, frame, strlen(frame));
			printf("\t\t%d [<%016llx>] %s\n", j, (unsigned long long)ips[j], sb.buf);
		}
	}
	if (o->json) {
		strbuf_addstr(&sb, "]}");
		diag_emit_line(&sb);
	}
	fflush(stdout);
	strbuf_release(&sb);
	free(tot);
	free(ents);
	free(ips);
	return 0;
}

static void memleak_stop(void *skel, const struct diag_opts *o)
{
	struct memleak_bpf *s = skel;

	if (s->bss->ml_untracked)
		anole_warn("memleak: %llu allocations not tracked (more than %d outstanding)",
			   (unsigned long long)s->bss->ml_untracked, MEMLEAK_MAX_ALLOCS);
	diag_usyms_free(syms);
	syms = NULL;
}

static const struct diag_variant memleak_variants[] = {
	{ "uprobe", {
		DIAG_PROG("ml_malloc"), DIAG_PROG("ml_malloc_ret"),
		DIAG_PROG("ml_free"),
		DIAG_PROG("ml_calloc"), DIAG_PROG("ml_calloc_ret"),
		DIAG_PROG("ml_realloc"), DIAG_PROG("ml_realloc_ret"),
		DIAG_OPTIONAL_PROG("ml_posix_memalign"), DIAG_OPTIONAL_PROG("ml_posix_memalign_ret"),
		DIAG_OPTIONAL_PROG("ml_aligned_alloc"), DIAG_OPTIONAL_PROG("ml_aligned_alloc_ret"),
		DIAG_OPTIONAL_PROG("ml_memalign"), DIAG_OPTIONAL_PROG("ml_memalign_ret"),
		DIAG_OPTIONAL_PROG("ml_valloc"), DIAG_OPTIONAL_PROG("ml_valloc_ret"),
		DIAG_OPTIONAL_PROG("ml_pvalloc"), DIAG_OPTIONAL_PROG("ml_pvalloc_ret"),
	} },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_memleak = {
	.name = "memleak",
	.summary = "outstanding (not freed) allocations of a process, by user stack",
	.usage = "anole diag memleak [options] -p PID [INTERVAL [COUNT]]\n"
		 "       anole diag memleak [options] [INTERVAL [COUNT]] -- COMMAND [ARGS...]",
	.help = "  -p PID or -- COMMAND   the process to trace (required): a running one, or\n"
		"                         COMMAND, started once the probes are attached; the\n"
		"                         run ends when it exits, with a last report\n"
		"      --top N            print the N stacks with the most bytes outstanding (10)\n"
		"  -o, --older MS         count allocations older than MS milliseconds (500)\n"
		"  -z, --min-size BYTES   only allocations of at least BYTES\n"
		"  -Z, --max-size BYTES   and at most BYTES\n"
		"  INTERVAL               report every INTERVAL seconds (default 5); COUNT:\n"
		"                         that many reports\n",
	.shortopts = "o:z:Z:",
	.longopts = memleak_longopts,
	.flags = DIAG_F_HIST | DIAG_F_PID | DIAG_F_COMMAND | DIAG_F_TARGET,
	.default_interval = 5,
	.skel = &memleak_skel,
	.variants = memleak_variants,
	.parse = memleak_parse,
	.prepare = memleak_prepare,
	.start = memleak_start,
	.report = memleak_report,
	.stop = memleak_stop,
};
