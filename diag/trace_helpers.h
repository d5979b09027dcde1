/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared user-space helpers of the diag tools: log2 histograms, kernel
 * symbols, tracefs, kernel BTF, libbpf logging, and the hook fallback chain
 * that picks, at run time, the first way of attaching a tool that loads and
 * attaches on this kernel. Errors go through anole_error() (-errno); nothing
 * here exits.
 */
#ifndef ANOLE_DIAG_TRACE_HELPERS_H
#define ANOLE_DIAG_TRACE_HELPERS_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "anole/strbuf.h"

struct bpf_object;
struct bpf_program;

/* ------------------------------------------------------------ histograms */

/*
 * Print a log2 histogram the way bcc's libbpf-tools do:
 *      usecs               : count    distribution
 *          0 -> 1          : 5        |****                                    |
 * Slot i counts values in [2^i, 2^(i+1)), slot 0 also counts 0. Rows stop
 * at the last non-empty slot; nothing is printed if every slot is empty.
 */
void diag_print_log2_hist(FILE *f, const unsigned int *vals, int nvals, const char *unit);
/* Append [{"low":0,"high":1,"count":5},...] up to the last non-empty slot. */
void diag_log2_hist_json(struct strbuf *sb, const unsigned int *vals, int nvals);
/* Sum of the slots. */
uint64_t diag_hist_total(const unsigned int *vals, int nvals);

/* ------------------------------------------------------------ kernel symbols */

struct diag_ksym {
	unsigned long addr;
	const char *name;
	const char *module; /* NULL for the kernel itself */
};

struct diag_ksyms;

/* Read /proc/kallsyms (addresses are 0 without CAP_SYSLOG: -EPERM then). */
int diag_ksyms_load(struct diag_ksyms **out);
void diag_ksyms_free(struct diag_ksyms *ks);
/* The symbol containing addr (the last one at or below it), or NULL. */
const struct diag_ksym *diag_ksyms_search(const struct diag_ksyms *ks, unsigned long addr);
/* The first symbol of that name, or NULL. */
const struct diag_ksym *diag_ksyms_find(const struct diag_ksyms *ks, const char *name);
/* Process-wide copy, loaded on first use; NULL if unreadable. */
const struct diag_ksyms *diag_ksyms_shared(void);

/* ------------------------------------------------------------ tracefs */

/* Where tracefs is mounted (/sys/kernel/tracing or the debugfs one), or NULL. */
const char *diag_tracefs_path(void);
/* Same, mounting tracefs at /sys/kernel/tracing when it is nowhere; -errno
 * (not reported) if that fails. The mount stays after exit, as systemd's. */
int diag_tracefs_ensure(const char **path);
/* Does tracefs list events/CAT/NAME (mounting tracefs if needed)? */
bool diag_tracepoint_exists(const char *cat, const char *name);

/* ------------------------------------------------------------ kernel BTF */

/* 0 if the kernel's BTF can be loaded, else a reported error saying so. */
int diag_btf_check(void);
/* Same, silently. */
bool diag_btf_available(void);
/* Does the kernel BTF hold a type of this kind (BTF_KIND_*) and name? */
bool diag_btf_has(const char *name, int kind);

/* ------------------------------------------------------------ processes, cgroups */

/* 0 if PID exists, else a reported -ESRCH. */
int diag_pid_check(int pid);
/* The id of a cgroup v2 directory (what BPF sees as kn->id), reported errors. */
int diag_cgroup_id(const char *path, uint64_t *id);

/* ------------------------------------------------------------ libbpf */

/* Route libbpf's messages to anole's log: warnings at info (shown with -v),
 * the rest and verifier logs at debug (-vv). Idempotent. */
void diag_libbpf_log_init(void);
/* The first warning libbpf printed since the last hook attempt began (one
 * line), "" if none. */
const char *diag_libbpf_last_warning(void);

/* ------------------------------------------------------------ perf events */

/* A software CPU clock perf event on one CPU (all tasks): a sample every
 * RATE ns, or RATE times a second if FREQ. Its fd, or -errno (-ENODEV:
 * an offline CPU). */
int diag_perf_clock_open(int cpu, uint64_t rate, bool freq);

/* SEC("perf_event") programs have no automatic attach: these attach one to
 * a CPU clock event on every online CPU, and detach it (closing the events). */
struct diag_perf_links;
int diag_perf_attach(struct bpf_program *prog, uint64_t rate, bool freq,
		     struct diag_perf_links **out);
void diag_perf_detach(struct diag_perf_links *pl);

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

#endif
