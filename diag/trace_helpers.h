/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared user-space helpers of the diag tools: log2 histograms, kernel
 * symbols, tracefs, kernel BTF, perf events; the hook fallback chain is in
 * hooks.h. Errors go through anole_error() (-errno); nothing here exits.
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

#include "hooks.h"

#endif
