/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The interface between the runner (runner.c: signals, hook choice, the
 * event loop; driven by cmd/diag.c, which parses the options) and each
 * tool (diag/<tool>.c + <tool>.bpf.c, listed in tools.def).
 * A tool runs alone in its process, so tools keep their settings in
 * file-scope statics, as libbpf-tools do.
 */
#ifndef ANOLE_DIAG_H
#define ANOLE_DIAG_H
#include <getopt.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "diag_common.h"
#include "trace_helpers.h"

struct ring_buffer;
struct diag_child;

/* Settings common to every tool, parsed by cmd/diag.c, used by runner.c. */
struct diag_opts {
	int pid;               /* -p: 0 for every process */
	const char *cgroup;    /* -c: cgroup v2 directory, NULL for all */
	struct diag_filter filter; /* the two above, as the BPF side sees them */
	double duration;       /* --duration: seconds, 0 to run until a signal */
	double interval;       /* histograms: INTERVAL seconds, 0 for one report at the end */
	long count;            /* histograms: COUNT reports, 0 for no limit */
	bool json;             /* --json */
	bool timestamp;        /* -T: time of each event or report */
	int verbose;           /* -v count */
	const char *hooks;     /* --hook: hooks to consider */
	double mono_to_real;   /* add to a CLOCK_MONOTONIC time (s) for the wall clock */
	struct diag_child *child; /* `-- COMMAND`: the process run (its pid is .pid), else NULL */
};

enum {
	DIAG_F_HIST = 1,   /* reports histograms: takes [INTERVAL [COUNT]] */
	DIAG_F_PID = 2,    /* honours -p */
	DIAG_F_CGROUP = 4, /* honours -c */
	/* with DIAG_F_HIST: a snapshot of the system (no BPF, skel NULL): a report
	 * at once, then every INTERVAL; without INTERVAL, one report and exit */
	DIAG_F_SNAPSHOT = 8,
	DIAG_F_COMMAND = 16, /* can run a command: TOOL [options] -- COMMAND [ARGS] */
	DIAG_F_TARGET = 32,  /* needs a process: -p PID or -- COMMAND */
};

struct diag_tool {
	const char *name;
	const char *summary;
	const char *usage;    /* "anole diag NAME [options] ...": synopsis line */
	const char *help;     /* the tool's own options, one per line */
	const char *shortopts; /* its short options (getopt syntax) */
	const struct option *longopts; /* its long options, ended by {0}; may be NULL */
	unsigned flags;
	/* DIAG_F_HIST tools that scan or report periodically by default: the
	 * INTERVAL without one (seconds); 0: one report at the end */
	double default_interval;
	const struct diag_skel_ops *skel; /* NULL: a tool without BPF (DIAG_F_SNAPSHOT) */
	const struct diag_variant *variants;
	/* Where options change the programs (biolatency -Q): the variants to run,
	 * called after the options are parsed; NULL: .variants. */
	const struct diag_variant *(*variants_for_opts)(void);
	const char *source;   /* tools without BPF: what they read, for `diag list` */
	/* A tool option: 0, or -EINVAL after printing why. */
	int (*parse)(int opt, const char *arg);
	/* Event tools taking positional arguments (e.g. runqslower's MIN_US):
	 * the i-th one; 0, or -EINVAL. NULL: they take none. */
	int (*positional)(int i, const char *arg);
	/* Before each load: set the skeleton's .rodata from o and the tool options. */
	int (*prepare)(void *skel, const struct diag_opts *o);
	/* Attached: print a header, and set *rb for event tools. */
	int (*start)(void *skel, const struct diag_opts *o, struct ring_buffer **rb);
	/* Histogram tools: print and clear what was collected (each interval, at the end). */
	int (*report)(void *skel, const struct diag_opts *o);
	/* Before detaching: final words (e.g. events lost). May be NULL. */
	void (*stop)(void *skel, const struct diag_opts *o);
};

/* every tool (tools.def): diag_tool_runqlat, ... */
#define DIAG_TOOL(name) extern const struct diag_tool diag_tool_##name;
#define DIAG_TOOL_BPF(name) DIAG_TOOL(name)
#include "tools.def"
#undef DIAG_TOOL
#undef DIAG_TOOL_BPF
/* the same, in tools.def's order, ended by NULL */
extern const struct diag_tool *const diag_tools[];
/* The tool of that name, or NULL. */
const struct diag_tool *diag_tool_find(const char *name);

/* helpers for tools */

/* Wall-clock seconds of a bpf_ktime_get_ns() value. */
double diag_ktime_to_real(const struct diag_opts *o, uint64_t ns);
/* "HH:MM:SS" of now, for interval headers. */
void diag_print_time(FILE *f);
/* The keys (u32) of a hash map, at most max, sorted; an array to free
 * (NULL when there are none), *n of them. */
uint32_t *diag_map_keys_u32(int map_fd, size_t max, size_t *n);
/* Sum a per-CPU array slot holding a struct diag_hist into *out and zero it. */
int diag_percpu_hist_take(int map_fd, uint32_t key, struct diag_hist *out);
/* Same, of values of value_size bytes that begin with a struct diag_hist. */
int diag_percpu_hist_take_sized(int map_fd, uint32_t key, size_t value_size,
				struct diag_hist *out);
/* Append a JSON string of n raw bytes: valid UTF-8 as is, other bytes as
 * \u00XX (read as Latin-1), so the output stays valid JSON. */
void diag_json_bytes(struct strbuf *sb, const char *s, size_t n);
/* Same, of a NUL-terminated buffer of at most n bytes. */
void diag_json_str(struct strbuf *sb, const char *s, size_t n);
/* Text: valid UTF-8 as is, controls, backslash and other bytes as \xNN. */
void diag_text_bytes(struct strbuf *sb, const char *s, size_t n);
/* "ESTABLISHED", "SYN_SENT"... of a TCP state (include/net/tcp_states.h). */
const char *diag_tcp_state_name(int state);
/* The text of an IPv4 (family 2, 4 bytes) or IPv6 (family 10) address. */
void diag_inet_addr(char *buf, size_t len, int family, const uint8_t *addr);
/* A disk name (sda, loop0, /dev/loop0; a partition means its disk) as the
 * kernel's dev_t (major << 20 | minor); errors reported, prefixed by tool. */
int diag_disk_resolve(const char *tool, const char *name, __u32 *dev);
/* The /sys/class/block name of a kernel dev_t, else "MAJ:MIN". */
void diag_disk_name(__u32 dev, char *out, size_t n);
/* Write sb and a newline to stdout (flushed after each batch of events). */
void diag_emit_line(struct strbuf *sb);

/* A snoop tool's event stream: its ring buffer and, in text mode, the
 * column header (after a TIME column with -T). 0 or -errno. */
int diag_open_events(struct ring_buffer **rb, int map_fd,
		     int (*fn)(void *ctx, void *data, size_t size),
		     const struct diag_opts *o, const char *header_fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* "HH:MM:SS " of a bpf_ktime_get_ns() time, for a -T column. */
void diag_add_event_time(struct strbuf *sb, const struct diag_opts *o, uint64_t ns);
/* Does thread TID pass -p and -c, as /proc shows it now? For events whose
 * task the BPF side could not check. *tgid: its process, 0 if it is gone
 * (then it passes only when there is no filter). */
bool diag_thread_wanted(const struct diag_opts *o, uint32_t tid, uint32_t *tgid);
/* The frames of stack ID in a BPF stack trace map, innermost first: how
 * many (at most max), 0 if none (ID < 0, or the stack was replaced). */
int diag_stack_read(int map_fd, int32_t id, uint64_t *ips, int max);
/* A kernel frame's function name from /proc/kallsyms, else "0xADDR" in buf. */
const char *diag_kframe_name(uint64_t ip, char *buf, size_t len);
/*
 * `-- COMMAND` (diag_child.c): forked at once but held before exec until
 * released, so a tool attaches to its pid before it runs; traced only so
 * that it stops at exit with its memory (maps) still readable.
 */
struct diag_child {
	const char *name;
	int pid;
	int release_fd, status_fd; /* to let it exec; its exec error, if any */
	bool traced;   /* seized: stops at exit */
	bool exiting;  /* stopped at exit, or gone */
	bool at_exit;  /* stopped at exit now */
	bool reaped;
	int status;    /* wait status, once reaped */
};
/* Fork it, held; 0 or a reported -errno. */
int diag_child_spawn(struct diag_child *c, char **argv);
/* Let it exec: 0, or a reported error (exec failed). */
int diag_child_release(struct diag_child *c);
/* Handle what happened to it (non-blocking; after SIGCHLD): true once it
 * is stopped at its exit or gone. Signals sent to it are delivered. */
bool diag_child_poll(struct diag_child *c);
/* Let it finish exiting, or end it (SIGTERM, SIGKILL after 2 s) if it
 * still runs; reap it. */
void diag_child_finish(struct diag_child *c);

/* Warn, at exit, about events the BPF side could not hand over. */
void diag_warn_dropped(const char *tool, unsigned long long dropped);

#endif
