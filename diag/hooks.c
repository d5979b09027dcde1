// SPDX-License-Identifier: Apache-2.0
/*
 * The hook fallback chain (see hooks.h): which way of attaching a tool's
 * programs works on this kernel - fentry, kprobe, tp_btf, raw_tp,
 * tracepoint, perf_event, uprobe - tried in the tool's order, cheap checks
 * (BTF, kprobe support, symbols, tracefs) before any load; and libbpf's
 * messages routed to anole's log, so that a skipped hook's reason is the
 * first warning libbpf gave for it. Used by every diag tool (through
 * diag/runner.c), `anole diag list` and the monitor's histograms.
 */
#include "hooks.h"
#include "trace_helpers.h"

#include "anole/error.h"
#include "anole/xalloc.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef ENOTSUPP
#define ENOTSUPP 524 /* kernel-internal "not supported", seen by user space */
#endif
/* ================================================================ libbpf */

static char libbpf_last[256];
static bool libbpf_quiet_warnings; /* while trying variants: their reasons are summarised */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;
	enum anole_log_level lv = ANOLE_LOG_DEBUG;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && isspace((unsigned char)msg[n - 1]))
		msg[--n] = '\0';
	if (level == LIBBPF_WARN && !strchr(msg, '\n')) {
		const char *m = strncmp(msg, "libbpf: ", 8) ? msg : msg + 8;

		size_t len = strlen(m) < sizeof(libbpf_last) - 1 ? strlen(m) : sizeof(libbpf_last) - 1;

		/* the first warning since the last reset is the cause, later ones summarise */
		if (!libbpf_last[0]) {
			memcpy(libbpf_last, m, len);
			libbpf_last[len] = '\0';
		}
		if (!libbpf_quiet_warnings)
			lv = ANOLE_LOG_INFO;
	}
	/* multi-line warnings are verifier logs: only with -vv */
	anole_log(lv, "%s", msg);
	return 0;
}

void diag_libbpf_log_init(void)
{
	libbpf_set_print(libbpf_print);
}

const char *diag_libbpf_last_warning(void) { return libbpf_last; }

/* ================================================================ hook fallback chain */

enum prog_kind {
	PK_FENTRY, PK_FEXIT, PK_KPROBE, PK_KRETPROBE, PK_TP_BTF, PK_RAW_TP, PK_TP, PK_PERF_EVENT,
	PK_UPROBE, PK_URETPROBE, PK_UNKNOWN
};

static const char *const hook_names[] = { "fentry", "kprobe", "tp_btf", "raw_tp", "tracepoint",
					  "perf_event", "uprobe" };

bool diag_hook_name_valid(const char *hook)
{
	for (size_t i = 0; i < ARRAY_SIZE(hook_names); i++)
		if (!strcmp(hook, hook_names[i]))
			return true;
	return false;
}

bool diag_hook_list_valid(const char *list)
{
	char *copy = xstrdup(list), *save = NULL;
	bool ok = true;

	for (char *h = strtok_r(copy, ",", &save); h; h = strtok_r(NULL, ",", &save))
		ok &= diag_hook_name_valid(h);
	free(copy);
	return ok;
}

/* Errors of a hook family that no other target of it will escape on this
 * kernel (fentry refused, kprobes absent): remembered per process. */
static struct {
	const char *hook;
	char why[200];
} family_down[ARRAY_SIZE(hook_names)];

static const char *family_failure(const char *hook)
{
	for (size_t i = 0; i < ARRAY_SIZE(hook_names); i++)
		if (family_down[i].hook && !strcmp(family_down[i].hook, hook))
			return family_down[i].why;
	return NULL;
}

static void family_fail(const char *hook, const char *why)
{
	for (size_t i = 0; i < ARRAY_SIZE(hook_names); i++)
		if (!family_down[i].hook || !strcmp(family_down[i].hook, hook)) {
			family_down[i].hook = hook;
			snprintf(family_down[i].why, sizeof(family_down[i].why), "%s", why);
			return;
		}
}

/* Split SEC("kind/target") into its kind and target. */
static enum prog_kind parse_section(const char *sec, const char **target)
{
	static const struct {
		const char *prefix;
		enum prog_kind kind;
	} kinds[] = {
		{ "fentry", PK_FENTRY }, { "fexit", PK_FEXIT },
		{ "kprobe", PK_KPROBE }, { "kretprobe", PK_KRETPROBE },
		{ "tp_btf", PK_TP_BTF },
		{ "raw_tp", PK_RAW_TP }, { "raw_tracepoint", PK_RAW_TP },
		{ "tp", PK_TP }, { "tracepoint", PK_TP },
		{ "perf_event", PK_PERF_EVENT },
		{ "uprobe", PK_UPROBE }, { "uretprobe", PK_URETPROBE },
	};
	size_t n = strcspn(sec, "/");

	/* "kind/target", or a bare "kind" whose target set_attach_target() gives */
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strlen(kinds[i].prefix) == n && !strncmp(sec, kinds[i].prefix, n)) {
			*target = sec[n] ? sec + n + 1 : "";
			/* attached by the tool to a CPU clock event on each CPU */
			if (kinds[i].kind == PK_PERF_EVENT)
				*target = "cpu-clock";
			return kinds[i].kind;
		}
	*target = sec;
	return PK_UNKNOWN;
}

static bool uprobes_supported(void)
{
	const char *tfs;
	char path[256];

	if (!access("/sys/bus/event_source/devices/uprobe/type", F_OK))
		return true;
	if (diag_tracefs_ensure(&tfs))
		return false;
	snprintf(path, sizeof(path), "%s/uprobe_events", tfs);
	return !access(path, F_OK);
}

static bool kprobes_supported(void)
{
	const char *tfs;
	char path[256];

	if (!access("/sys/bus/event_source/devices/kprobe/type", F_OK))
		return true;
	/* older kernels: the legacy kprobe_events interface of tracefs */
	if (diag_tracefs_ensure(&tfs))
		return false;
	snprintf(path, sizeof(path), "%s/kprobe_events", tfs);
	return !access(path, F_OK);
}

/* Cheap checks before loading: 0, or why the program cannot attach here. */
static int precheck(enum prog_kind kind, const char *target, char *why, size_t n)
{
	char name[256];
	const char *slash, *tfs;
	int ret;

	switch (kind) {
	case PK_FENTRY:
	case PK_FEXIT:
		if (!diag_btf_available())
			return snprintf(why, n, "no kernel BTF"), -ENOENT;
		if (!diag_btf_has(target, BTF_KIND_FUNC))
			return snprintf(why, n, "function %s is not in the kernel BTF (inlined, "
					"renamed or absent)", target), -ENOENT;
		return 0;
	case PK_KPROBE:
	case PK_KRETPROBE:
		if (!kprobes_supported())
			return snprintf(why, n, "this kernel has no kprobes (no kprobe PMU, no "
					"kprobe_events: CONFIG_KPROBES is off)"), -EOPNOTSUPP;
		if (diag_ksyms_shared() && !diag_ksyms_find(diag_ksyms_shared(), target))
			return snprintf(why, n, "function %s is not in /proc/kallsyms", target),
			       -ENOENT;
		return 0;
	case PK_TP_BTF:
		if (!diag_btf_available())
			return snprintf(why, n, "no kernel BTF"), -ENOENT;
		snprintf(name, sizeof(name), "btf_trace_%s", target);
		if (!diag_btf_has(name, BTF_KIND_TYPEDEF))
			return snprintf(why, n, "tracepoint %s is not in the kernel BTF", target),
			       -ENOENT;
		return 0;
	case PK_RAW_TP:
		if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL) == 0)
			return snprintf(why, n, "raw tracepoint programs are not supported"),
			       -EOPNOTSUPP;
		snprintf(name, sizeof(name), "btf_trace_%s", target);
		if (diag_btf_available() && !diag_btf_has(name, BTF_KIND_TYPEDEF))
			return snprintf(why, n, "tracepoint %s does not exist", target), -ENOENT;
		return 0;
	case PK_TP:
		if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, NULL) == 0)
			return snprintf(why, n, "tracepoint programs are not supported"),
			       -EOPNOTSUPP;
		if ((ret = diag_tracefs_ensure(&tfs)))
			return snprintf(why, n, "tracefs is not mounted and mounting it at "
					"/sys/kernel/tracing failed: %s", strerror(-ret)), ret;
		slash = strchr(target, '/');
		if (!slash)
			return snprintf(why, n, "bad tracepoint name %s", target), -EINVAL;
		snprintf(name, sizeof(name), "%s/events/%.*s/%s/id", tfs, (int)(slash - target),
			 target, slash + 1);
		if (access(name, F_OK))
			return snprintf(why, n, "tracepoint %.*s:%s does not exist",
					(int)(slash - target), target, slash + 1), -ENOENT;
		return 0;
	case PK_PERF_EVENT: {
		int fd;

		if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_PERF_EVENT, NULL) == 0)
			return snprintf(why, n, "perf_event programs are not supported"),
			       -EOPNOTSUPP;
		fd = diag_perf_clock_open(0, 1000000, false);
		if (fd < 0)
			return snprintf(why, n, "cannot open a software CPU clock perf event: %s "
					"(see kernel.perf_event_paranoid)", strerror(-fd)), fd;
		close(fd);
		return 0;
	}
	case PK_UPROBE:
	case PK_URETPROBE:
		/* the target (library, function) is the tool's attach op's to find */
		if (!uprobes_supported())
			return snprintf(why, n, "this kernel has no uprobes (no uprobe PMU, no "
					"uprobe_events: CONFIG_UPROBES is off)"), -EOPNOTSUPP;
		return 0;
	default:
		return snprintf(why, n, "unknown program kind"), -EINVAL;
	}
}

static void add_note(struct diag_hooks_result *res, const char *hook, const char *what,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_note(struct diag_hooks_result *res, const char *hook, const char *what,
		     const char *fmt, ...)
{
	struct diag_hook_note *nt;
	va_list ap;

	if (res->nnotes >= DIAG_MAX_NOTES)
		return;
	nt = &res->notes[res->nnotes++];
	nt->hook = hook;
	snprintf(nt->what, sizeof(nt->what), "%s", what ? what : "");
	va_start(ap, fmt);
	vsnprintf(nt->why, sizeof(nt->why), fmt, ap);
	va_end(ap);
}

static bool hook_selected(const char *only, const char *hook)
{
	size_t n = strlen(hook);

	if (!only)
		return true;
	for (const char *p = only; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && !strncmp(p, hook, n))
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

struct attempt {
	const struct diag_skel_ops *ops;
	const struct diag_variant *v;
	const struct diag_hooks_opts *opts;
	char where[DIAG_VARIANT_MAX_PROGS][96]; /* attach point of each program */
	char why[224];
};

static void stage_failed(struct attempt *a, const char *stage, int err)
{
	if (libbpf_last[0])
		snprintf(a->why, sizeof(a->why), "%s failed: %.200s", stage, libbpf_last);
	else
		snprintf(a->why, sizeof(a->why), "%s failed: %s", stage, strerror(-err));
}

/* Open a fresh skeleton with exactly the programs of mask autoloaded,
 * prepare, load and attach it. 0 and *skel, or -errno and a->why. */
static int attempt_load(struct attempt *a, unsigned mask, void **skel)
{
	const struct diag_variant *v = a->v;
	struct bpf_object *obj;
	struct bpf_program *prog;
	void *s;
	int ret;

	*skel = NULL;
	errno = 0;
	s = a->ops->open();
	if (!s) {
		ret = errno ? -errno : -ENOMEM;
		snprintf(a->why, sizeof(a->why), "cannot open the BPF object: %s", strerror(-ret));
		return ret;
	}
	obj = a->ops->object(s);
	bpf_object__for_each_program(prog, obj)
		bpf_program__set_autoload(prog, false);
	for (int i = 0; v->progs[i].name; i++) {
		if (!(mask & (1u << i)))
			continue;
		prog = bpf_object__find_program_by_name(obj, v->progs[i].name);
		bpf_program__set_autoload(prog, true);
		if (v->progs[i].target &&
		    (ret = bpf_program__set_attach_target(prog, 0, v->progs[i].target))) {
			snprintf(a->why, sizeof(a->why), "%s: cannot target %s: %s", a->where[i],
				 v->progs[i].target, strerror(-ret));
			goto fail;
		}
	}
	if (a->opts->prepare && (ret = a->opts->prepare(s, a->opts->arg))) {
		snprintf(a->why, sizeof(a->why), "cannot set the tool up: %s", strerror(-ret));
		a->ops->destroy(s);
		return ret;
	}
	libbpf_last[0] = '\0';
	if ((ret = a->ops->load(s))) {
		stage_failed(a, "load", ret);
		goto fail;
	}
	if ((ret = a->ops->attach(s))) {
		stage_failed(a, "attach", ret);
		goto fail;
	}
	*skel = s;
	return 0;
fail:
	a->ops->destroy(s);
	return ret;
}

int diag_hooks_open(const struct diag_skel_ops *ops, const struct diag_variant *variants,
		    const struct diag_hooks_opts *opts, void **skel, struct diag_hooks_result *res)
{
	const char *tool = opts->tool ? opts->tool : "diag";
	bool saved_quiet = libbpf_quiet_warnings;
	int last_err = -ENOTSUP;

	memset(res, 0, sizeof(*res));
	res->variant = -1;
	*skel = NULL;
	diag_libbpf_log_init();
	libbpf_quiet_warnings = true;

	for (int vi = 0; vi < DIAG_MAX_VARIANTS && variants[vi].hook; vi++) {
		const struct diag_variant *v = &variants[vi];
		struct attempt a = { .ops = ops, .v = v, .opts = opts };
		unsigned required = 0, optional = 0, ok_opt = 0;
		const char *down;
		bool skip = false;
		void *s = NULL, *probe;
		int ret;

		if (!hook_selected(opts->only, v->hook))
			continue;
		if ((down = family_failure(v->hook))) {
			add_note(res, v->hook, NULL, "%s", down);
			anole_info("%s: skipped %s: %s", tool, v->hook, down);
			continue;
		}

		/* the attach points, from the programs' sections (one throwaway open) */
		probe = ops->open();
		if (!probe) {
			add_note(res, v->hook, NULL, "cannot open the BPF object");
			continue;
		}
		for (int i = 0; v->progs[i].name; i++) {
			struct bpf_program *prog =
				bpf_object__find_program_by_name(ops->object(probe), v->progs[i].name);
			const char *target;
			enum prog_kind kind;
			char why[200];

			if (!prog) {
				snprintf(a.where[i], sizeof(a.where[i]), "%s", v->progs[i].name);
				add_note(res, v->hook, a.where[i], "no such program in the object");
				skip = true;
				break;
			}
			kind = parse_section(bpf_program__section_name(prog), &target);
			if (v->progs[i].target)
				target = v->progs[i].target;
			snprintf(a.where[i], sizeof(a.where[i]), "%.*s/%s",
				 (int)strcspn(bpf_program__section_name(prog), "/"),
				 bpf_program__section_name(prog), target);
			if (precheck(kind, target, why, sizeof(why))) {
				if (!v->progs[i].optional) {
					add_note(res, v->hook, a.where[i], "%s", why);
					anole_info("%s: skipped %s: %s: %s", tool, v->hook, a.where[i], why);
					skip = true;
					break;
				}
				add_note(res, v->hook, a.where[i], "%s", why);
				anole_info("%s: %s: without optional %s: %s", tool, v->hook, a.where[i],
					   why);
				continue;
			}
			if (v->progs[i].optional)
				optional |= 1u << i;
			else
				required |= 1u << i;
		}
		ops->destroy(probe);
		if (skip)
			continue;
		if (!(required | optional)) {
			add_note(res, v->hook, NULL, "none of its programs can attach here");
			anole_info("%s: skipped %s: none of its programs can attach here", tool, v->hook);
			continue;
		}

		ret = attempt_load(&a, required | optional, &s);
		if (ret && optional && required) {
			/* find the optional programs that spoil the load */
			ret = attempt_load(&a, required, &s);
			if (!ret) {
				ops->destroy(s);
				s = NULL;
				for (int i = 0; v->progs[i].name; i++) {
					if (!(optional & (1u << i)))
						continue;
					if (!attempt_load(&a, required | (1u << i), &probe)) {
						ops->destroy(probe);
						ok_opt |= 1u << i;
					} else {
						add_note(res, v->hook, a.where[i], "%s", a.why);
						anole_info("%s: %s: without optional %s: %s", tool,
							   v->hook, a.where[i], a.why);
					}
				}
				optional = ok_opt;
				ret = attempt_load(&a, required | optional, &s);
			}
		}
		if (ret) {
			last_err = ret;
			add_note(res, v->hook, NULL, "%s", a.why);
			anole_info("%s: skipped %s: %s", tool, v->hook, a.why);
			/* refused as a kind, not for this target: spare later tries */
			if ((!strcmp(v->hook, "fentry") || !strcmp(v->hook, "kprobe")) &&
			    (ret == -EPERM || ret == -EOPNOTSUPP || ret == -ENOTSUPP) &&
			    !strncmp(a.why, "load", 4)) {
				char why[200];

				snprintf(why, sizeof(why), "%s programs do not load on this kernel "
					 "(%s on an earlier try)", v->hook, strerror(-ret));
				family_fail(v->hook, why);
			}
			continue;
		}

		res->variant = vi;
		for (int i = 0; v->progs[i].name; i++) {
			res->used[i] = (required | optional) & (1u << i);
			if (res->used[i])
				snprintf(res->attach[i], sizeof(res->attach[i]), "%s", a.where[i]);
		}
		*skel = s;
		libbpf_quiet_warnings = saved_quiet;
		if (anole_log_get_level() >= ANOLE_LOG_INFO) {
			struct strbuf sb = STRBUF_INIT;

			diag_hooks_describe(variants, res, &sb);
			anole_info("%s: using %s", tool, sb.buf);
			strbuf_release(&sb);
		}
		return 0;
	}
	libbpf_quiet_warnings = saved_quiet;
	return last_err == -ENOTSUP || last_err >= 0 ? -ENOTSUP : last_err;
}

void diag_hooks_describe(const struct diag_variant *variants, const struct diag_hooks_result *res,
			 struct strbuf *sb)
{
	const struct diag_variant *v;
	bool first = true;

	if (res->variant < 0) {
		strbuf_addstr(sb, "none");
		return;
	}
	v = &variants[res->variant];
	strbuf_addf(sb, "%s (", v->hook);
	for (int i = 0; v->progs[i].name; i++) {
		const char *w = res->attach[i], *slash = strchr(w, '/'), *p;

		if (!res->used[i])
			continue;
		strbuf_addstr(sb, first ? "" : ", ");
		/* "tp/syscalls/sys_enter_openat" -> "syscalls:sys_enter_openat" */
		for (p = slash ? slash + 1 : w; *p; p++)
			strbuf_addch(sb, *p == '/' ? ':' : *p);
		if (!strncmp(w, "uretprobe/", 10))
			strbuf_addstr(sb, "%return");
		first = false;
	}
	strbuf_addch(sb, ')');
}
