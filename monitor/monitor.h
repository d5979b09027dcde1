/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anole monitor: an always-on agent that samples /proc, cgroup counters and
 * resident eBPF latency histograms every interval and serves the latest
 * sample in Prometheus text format on GET /metrics (docs/anole-monitor.md).
 *   monitor.c  options' effect, the sampling loop, signals; /metrics is served
 *              by lib/httpd.c (libmicrohttpd) on a thread of its own
 *   procfs.c   /proc and cgroup (v2 and v1 memory/cpuacct) counters
 *   bpfhist.c  run-queue and block I/O latency histograms (diag's programs)
 */
#ifndef ANOLE_MONITOR_H
#define ANOLE_MONITOR_H
#include <stdbool.h>
#include <stdint.h>

#include "anole/strbuf.h"

struct anole_monitor_opts {
	const char *listen;      /* HOST:PORT, [IPv6]:PORT or :PORT (lib/httpd.h) */
	double interval;         /* seconds between samples */
	bool no_bpf;             /* no eBPF histograms */
	const char *hooks;       /* --hook: hooks the BPF side may use, NULL: any */
	const char *cgroup_root; /* cgroup v2 directory to export, NULL: the cgroup2 mount */
	unsigned max_cgroups;    /* cgroups exported per hierarchy */
	const char *pid_file;    /* written once serving, removed at exit */
	const char *token;       /* non-NULL: /metrics wants "Authorization: Bearer token" */
	/* --console: register with the console at this URL with this agent
	 * token, as console_name, and run the diagnoses it hands out */
	const char *console_url;
	const char *console_token;
	const char *console_name;
	const char *version;     /* reported to the console */
	const char *qos_dir;     /* *.prom files written by `anole qos run` agents, NULL:
				  * /run/anole/qos (a shared file format: monitor does
				  * not call into qos/) */
};

/* Run until SIGINT/SIGTERM/SIGHUP. ready_fd >= 0 (a daemon's parent waits
 * on it) gets "0 " once serving or "-errno message". 0 or -errno. */
int anole_monitor_run(const struct anole_monitor_opts *o, int ready_fd);

/* ----------------------------------------------------------- console_agent.c */

struct monitor_console;
/* Start heartbeating to o->console_url (a thread of its own). */
int monitor_console_start(struct monitor_console **out, const struct anole_monitor_opts *o,
			  uint16_t metrics_port);
/* Stop it, killing a diagnosis in progress (NULL: no-op). */
void monitor_console_stop(struct monitor_console *a);

/* ---------------------------------------------------------------- procfs.c */

struct monitor_procfs;
int monitor_procfs_open(struct monitor_procfs **out, const struct anole_monitor_opts *o);
void monitor_procfs_free(struct monitor_procfs *p);
/* Append the system and cgroup families to out. */
void monitor_procfs_sample(struct monitor_procfs *p, struct strbuf *out);

/* ---------------------------------------------------------------- bpfhist.c */

struct monitor_bpf;
/* Load and attach both histograms (each with its own hook fallback chain);
 * one that loads nowhere is reported and left out, -ENOTSUP if none does. */
int monitor_bpf_open(struct monitor_bpf **out, const char *hooks);
void monitor_bpf_free(struct monitor_bpf *b);
/* Fold the kernel's per-CPU counts into the running totals (often enough
 * that 32-bit per-CPU slots cannot wrap twice between two calls). */
void monitor_bpf_update(struct monitor_bpf *b);
/* Append the histogram families (and which hooks are attached). */
void monitor_bpf_format(struct monitor_bpf *b, struct strbuf *out);

#endif
