/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hook fallback chain (hooks.c): picks, at run time, the first way of
 * attaching a tool that loads and attaches on this kernel; and libbpf's
 * logging, whose first warning is a skipped hook's reason.
 */
#ifndef ANOLE_DIAG_HOOKS_H
#define ANOLE_DIAG_HOOKS_H
#include <stdbool.h>

#include "anole/strbuf.h"

struct bpf_object;

/* ------------------------------------------------------------ libbpf */

/* Route libbpf's messages to anole's log: warnings at info (shown with -v),
 * the rest and verifier logs at debug (-vv). Idempotent. */
void diag_libbpf_log_init(void);
/* The first warning libbpf printed since the last hook attempt began (one
 * line), "" if none. */
const char *diag_libbpf_last_warning(void);

/* ------------------------------------------------------------ hook fallback chain */

/*
 * A tool's BPF object holds one program set per way of hooking the kernel
 * ("variant"): fentry/fexit, kprobe/kretprobe, tp_btf, raw_tp, classic
 * tracepoint, perf_event (a sampling program, attached by the tool to a CPU
 * clock on each CPU in its skeleton ops' attach: diag_perf_attach()); user-space
 * tools: uprobe/uretprobe (SEC("uprobe/LIB:FUNC"), attached by the tool's own
 * attach op, which knows the process). The tool lists its variants in preference order; at run time
 * diag_hooks_open() checks each (cheap checks first: kernel BTF, kprobe
 * support, symbol, tracepoint, tracefs) and loads and attaches the first
 * that works, with only that variant's programs autoloaded. Optional
 * programs (e.g. a syscall this architecture lacks) are dropped alone.
 */
#define DIAG_VARIANT_MAX_PROGS 24 /* memleak: 17 uprobes on libc */
#define DIAG_MAX_VARIANTS 8
#define DIAG_MAX_NOTES 24

struct diag_hook_prog {
	const char *name;   /* program (function) name in the object */
	const char *target; /* NULL: the one in its SEC(); else set_attach_target() (fentry/fexit/tp_btf) */
	bool optional;      /* the variant works without it */
};

/* designated initialisers keep -Wextra quiet about the fields left out */
#define DIAG_PROG(n) { .name = (n) }
#define DIAG_PROG_AT(n, fn) { .name = (n), .target = (fn) }
#define DIAG_OPTIONAL_PROG(n) { .name = (n), .optional = true }
#define DIAG_VARIANTS_END { .hook = NULL }

struct diag_variant {
	const char *hook; /* "fentry", "kprobe", "tp_btf", "raw_tp", "tracepoint", "perf_event",
			   * "uprobe" */
	struct diag_hook_prog progs[DIAG_VARIANT_MAX_PROGS]; /* ended by name == NULL */
};

/* Generic handle on a bpftool skeleton (see DIAG_SKEL_OPS). */
struct diag_skel_ops {
	void *(*open)(void);
	struct bpf_object *(*object)(void *skel);
	int (*load)(void *skel);
	int (*attach)(void *skel);
	void (*destroy)(void *skel);
};

#define DIAG_SKEL_OPS(NAME, SK)                                                     \
	static void *NAME##_open(void) { return SK##__open(); }                     \
	static struct bpf_object *NAME##_object(void *s) { return ((struct SK *)s)->obj; } \
	static int NAME##_load(void *s) { return SK##__load(s); }                   \
	static int NAME##_attach(void *s) { return SK##__attach(s); }               \
	static void NAME##_destroy(void *s) { SK##__destroy(s); }                   \
	static const struct diag_skel_ops NAME = {                                  \
		NAME##_open, NAME##_object, NAME##_load, NAME##_attach, NAME##_destroy, \
	}

struct diag_hook_note {
	const char *hook;   /* variant */
	char what[96];      /* "" for the whole variant, else the program's attach point */
	char why[224];
};

struct diag_hooks_result {
	int variant;                          /* chosen, -1 if none */
	bool used[DIAG_VARIANT_MAX_PROGS];    /* its programs that are attached */
	char attach[DIAG_VARIANT_MAX_PROGS][96]; /* and where: "tp_btf/sched_switch" */
	int nnotes;                           /* variants skipped, optional programs dropped */
	struct diag_hook_note notes[DIAG_MAX_NOTES];
};

struct diag_hooks_opts {
	const char *tool;  /* name for messages */
	const char *only;  /* comma list of hook names to consider, NULL: all */
	/* Called on each freshly opened skeleton before load (set .rodata). */
	int (*prepare)(void *skel, void *arg);
	void *arg;
};

/*
 * Open, load and attach the first variant that works. On success *skel is
 * attached (free it with ops->destroy) and res says which hook is used and
 * why the others were skipped; each is logged at info level (--verbose).
 * On failure, -ENOTSUP (or the prepare callback's error) with every reason
 * in res; nothing is reported: the caller words it.
 */
int diag_hooks_open(const struct diag_skel_ops *ops, const struct diag_variant *variants,
		    const struct diag_hooks_opts *opts, void **skel, struct diag_hooks_result *res);
/* "tp_btf (sched_wakeup, sched_switch)" of a successful res; return probes
 * are "libc:malloc%return". */
void diag_hooks_describe(const struct diag_variant *variants, const struct diag_hooks_result *res,
			 struct strbuf *sb);
/* Is HOOK one of the known hook names? */
bool diag_hook_name_valid(const char *hook);
/* Is LIST (--hook: comma-separated) made of known hook names only? */
bool diag_hook_list_valid(const char *list);

#endif
