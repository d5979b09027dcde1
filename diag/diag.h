/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The interface between `anole diag` (cmd/diag.c: options, hook choice,
 * the event loop, signals) and each tool (diag/<tool>.c + <tool>.bpf.c).
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

/* Settings common to every tool, parsed by cmd/diag.c. */
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
};

enum {
	DIAG_F_HIST = 1,   /* reports histograms: takes [INTERVAL [COUNT]] */
	DIAG_F_PID = 2,    /* honours -p */
	DIAG_F_CGROUP = 4, /* honours -c */
};

struct diag_tool {
	const char *name;
	const char *summary;
	const char *usage;    /* "anole diag NAME [options] ...": synopsis line */
	const char *help;     /* the tool's own options, one per line */
	const char *shortopts; /* its short options (getopt syntax) */
	const struct option *longopts; /* its long options, ended by {0}; may be NULL */
	unsigned flags;
	const struct diag_skel_ops *skel;
	const struct diag_variant *variants;
	/* A tool option: 0, or -EINVAL after printing why. */
	int (*parse)(int opt, const char *arg);
	/* Before each load: set the skeleton's .rodata from o and the tool options. */
	int (*prepare)(void *skel, const struct diag_opts *o);
	/* Attached: print a header, and set *rb for event tools. */
	int (*start)(void *skel, const struct diag_opts *o, struct ring_buffer **rb);
	/* Histogram tools: print and clear what was collected (each interval, at the end). */
	int (*report)(void *skel, const struct diag_opts *o);
	/* Before detaching: final words (e.g. events lost). May be NULL. */
	void (*stop)(void *skel, const struct diag_opts *o);
};

extern const struct diag_tool diag_tool_runqlat;
extern const struct diag_tool diag_tool_execsnoop;
extern const struct diag_tool diag_tool_opensnoop;
extern const struct diag_tool diag_tool_biolatency;
extern const struct diag_tool diag_tool_offcputime;
extern const struct diag_tool diag_tool_oomkill;
extern const struct diag_tool diag_tool_tcpretrans;
extern const struct diag_tool diag_tool_tcpstates;

/* helpers for tools */

/* Wall-clock seconds of a bpf_ktime_get_ns() value. */
double diag_ktime_to_real(const struct diag_opts *o, uint64_t ns);
/* "HH:MM:SS" of now, for interval headers. */
void diag_print_time(FILE *f);
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
/* Write sb and a newline to stdout (flushed after each batch of events). */
void diag_emit_line(struct strbuf *sb);

/* A snoop tool's event stream: its ring buffer and, in text mode, the
 * column header (after a TIME column with -T). 0 or -errno. */
int diag_open_events(struct ring_buffer **rb, int map_fd,
		     int (*fn)(void *ctx, void *data, size_t size),
		     const struct diag_opts *o, const char *header_fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Warn, at exit, about events the BPF side could not hand over. */
void diag_warn_dropped(const char *tool, unsigned long long dropped);

#endif
