/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anole monitor: an always-on agent that samples /proc, cgroup counters and
 * resident eBPF latency histograms every interval and serves the latest
 * sample in Prometheus text format on GET /metrics (docs/anole-monitor.md).
 *   monitor.c  options' effect, the poll loop (sampling timer, HTTP, signals)
 *   procfs.c   /proc and cgroup (v2 and v1 memory/cpuacct) counters
 *   bpfhist.c  run-queue and block I/O latency histograms (diag's programs)
 *   httpd.c    a small non-blocking HTTP/1.x server for /metrics
 */
#ifndef ANOLE_MONITOR_H
#define ANOLE_MONITOR_H
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "anole/strbuf.h"

struct anole_monitor_opts {
	const char *listen;      /* HOST:PORT (IPv4, or [IPv6]:PORT) */
	double interval;         /* seconds between samples */
	bool no_bpf;             /* no eBPF histograms */
	const char *hooks;       /* --hook: hooks the BPF side may use, NULL: any */
	const char *cgroup_root; /* cgroup v2 directory to export, NULL: the cgroup2 mount */
	unsigned max_cgroups;    /* cgroups exported per hierarchy */
	const char *pid_file;    /* written once serving, removed at exit */
};

/* Run until SIGINT/SIGTERM/SIGHUP. ready_fd >= 0 (a daemon's parent waits
 * on it) gets "0 " once serving or "-errno message". 0 or -errno. */
int anole_monitor_run(const struct anole_monitor_opts *o, int ready_fd);

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

/* ---------------------------------------------------------------- httpd.c */

/* An immutable, reference-counted response body shared by clients. */
struct monitor_body {
	unsigned refs;
	size_t len;
	char data[];
};
struct monitor_body *monitor_body_new(const struct strbuf *sb);
void monitor_body_put(struct monitor_body *b);

struct monitor_httpd;
/* Listen on HOST:PORT (SO_REUSEADDR). 0 or a reported -errno. */
int monitor_httpd_open(struct monitor_httpd **out, const char *addr);
void monitor_httpd_free(struct monitor_httpd *h);
/* What /metrics answers from now on (takes a reference). */
void monitor_httpd_set_body(struct monitor_httpd *h, struct monitor_body *b);
/* Fill pfd (room for MONITOR_HTTPD_MAX_FDS) with the fds to watch; returns
 * how many, and lowers *timeout_ms to the next client deadline. */
#define MONITOR_HTTPD_MAX_CLIENTS 64
#define MONITOR_HTTPD_MAX_FDS (MONITOR_HTTPD_MAX_CLIENTS + 1)
int monitor_httpd_pollfds(struct monitor_httpd *h, struct pollfd *pfd, int *timeout_ms);
/* Handle what poll() reported on those n fds. */
void monitor_httpd_handle(struct monitor_httpd *h, const struct pollfd *pfd, int n);
/* Requests answered (each status counted), for the agent's own metrics. */
struct monitor_httpd_stats {
	uint64_t requests;   /* complete requests answered */
	uint64_t not_found;  /* of which 404 */
	uint64_t bad;        /* 400/405/431 */
};
void monitor_httpd_stats(const struct monitor_httpd *h, struct monitor_httpd_stats *st);

#endif
