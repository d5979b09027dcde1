/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anole qos: the colocation node agent (docs/anole-qos.md). Latency-
 * sensitive work (LS) and batch work (BE; "mid" sits between) each live in
 * a cgroup subtree anole owns, plus cgroups adopted from the configuration;
 * the agent drives the kernel's knobs on them every interval.
 *   cgroup.c   what the kernel has (v1 controllers, v2, PSI), class groups,
 *              placing tasks, reading counters
 *   journal.c  every knob's original value, journaled to a state file before
 *              the first change, so that exit, SIGTERM and the next start
 *              after a crash put each one back byte for byte
 *   config.c   the TOML configuration (lib/toml.c), checked whole before
 *              anything is changed
 *   agent.c    the lock, the loop and the policies, metrics and status files
 *   probe.c    a wake-up latency probe
 */
#ifndef ANOLE_QOS_H
#define ANOLE_QOS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "anole/strbuf.h"

/* ------------------------------------------------------------- cgroup.c */

enum qos_class_id { QOS_LS, QOS_MID, QOS_BE, QOS_NCLASSES };
const char *qos_class_name(enum qos_class_id c);
int qos_class_parse(const char *s, enum qos_class_id *out);

/* the v1 controllers anole uses; v2 has them all in one tree */
enum qos_ctrl { QOS_CPU, QOS_CPUACCT, QOS_MEMORY, QOS_BLKIO, QOS_CPUSET, QOS_NCTRL };

struct qos_host {
	bool v2;                        /* knobs on a cgroup2 tree */
	char v1_root[QOS_NCTRL][256];   /* v1 mount of each controller, "" if none */
	char v2_root[256];              /* the cgroup2 mount ("" if none): knobs in
					 * v2 mode, PSI (mirrored groups) in v1 mode */
	bool psi;                       /* /proc/pressure and per-group PSI */
	bool v2_ctrl[QOS_NCTRL];        /* v2: controller in the root's cgroup.controllers */
	unsigned ncpus;                 /* online CPUs */
};

/* Look at /proc/self/mountinfo. mode: "auto", "v1" or "v2"; v2_root non-NULL
 * overrides the cgroup2 mount (e.g. a test mount). */
int qos_host_detect(struct qos_host *h, const char *mode, const char *v2_root);
/* What the kernel has, as JSON object members (no braces) or text lines. */
void qos_host_describe(const struct qos_host *h, struct strbuf *out, bool json);

/*
 * One cgroup of a class: rel is its path below each hierarchy's root
 * ("/anole.qos/be" or an adopted "/docker/abc"). dir[] is its directory per
 * v1 controller (in v2 mode all are the v2 directory), psi_dir where its
 * pressure files are ("" if none).
 */
struct qos_group {
	char rel[256];
	char dir[QOS_NCTRL][512];
	char psi_dir[512];
	bool adopted;
	unsigned line;                  /* configuration line that adopted it */
};

void qos_group_paths(const struct qos_host *h, const char *rel, struct qos_group *g);
/* The directory has the controller (v1: exists under its mount). */
bool qos_group_has(const struct qos_group *g, enum qos_ctrl c);
/* Create anole's own group (and the mirrored v2 group for PSI in v1 mode). */
int qos_group_create(const struct qos_host *h, struct qos_group *g);
/* g's distinct directories: each hierarchy's (v1 may share one between
 * controllers) and the mirrored PSI one; their number. */
int qos_group_dirs(const struct qos_group *g, const char *dirs[QOS_NCTRL + 1]);
/* The processes in one cgroup directory (cgroup.procs). */
int qos_dir_pids(const char *dir, pid_t **pids, size_t *n);
/* Move pid (0: the caller) into every hierarchy's directory of g. */
int qos_group_attach(const struct qos_group *g, pid_t pid);
/* The pids in the group (cgroup.procs of its cpu, else memory directory). */
int qos_group_pids(const struct qos_group *g, pid_t **pids, size_t *n);

/* Counters of a group; missing ones are 0 with have_* false. */
struct qos_group_counters {
	uint64_t cpu_usage_ns, nr_periods, nr_throttled, throttled_ns;
	uint64_t mem_usage;
	bool have_cpu, have_mem;
};
void qos_group_counters(const struct qos_host *h, const struct qos_group *g,
			struct qos_group_counters *c);
/* PSI avg10 (percent) and total (µs) of resource ("cpu", "memory", "io") in
 * dir ("" or NULL: /proc/pressure). -ENOENT when it has none. */
struct qos_psi { double some_avg10, full_avg10; uint64_t some_total, full_total; };
int qos_psi_read(const char *dir, const char *resource, struct qos_psi *p);

/* CPU lists ("0-3,8"): a bitmap of QOS_MAX_CPUS; parse refuses what it
 * cannot hold */
#define QOS_MAX_CPUS 1024
struct qos_cpumask { uint64_t w[QOS_MAX_CPUS / 64]; };
int qos_cpulist_parse(const char *s, struct qos_cpumask *m);
void qos_cpulist_format(const struct qos_cpumask *m, char *buf, size_t size);
unsigned qos_cpumask_count(const struct qos_cpumask *m);
/* node counters from /proc */
int qos_node_cpu(uint64_t *busy_ns, uint64_t *total_ns);
int qos_node_mem(uint64_t *total, uint64_t *available);

/* ------------------------------------------------------------ journal.c */

/*
 * A knob is a cgroup file, or one device's line of a per-device file
 * (blkio.throttle.*, io.max): dev "MAJ:MIN", NULL for a whole file.
 * qos_knob_set journals the original value (fsync'd) before its first write.
 */
struct qos_journal;
/* Open path's journal for a new run: an existing one (a crash) is restored
 * first. */
int qos_journal_open(struct qos_journal **out, const char *path);
int qos_knob_set(struct qos_journal *j, const char *path, const char *dev,
		 const char *value);
/* Put one knob back (nothing if it was never changed). */
int qos_knob_reset(struct qos_journal *j, const char *path, const char *dev);
/* Put every knob back, newest first; remove the state file. Then free. */
int qos_journal_close(struct qos_journal *j);
/* Restore from a state file left behind (none: 0, *restored 0). */
int qos_journal_restore_file(const char *path, unsigned *restored);
unsigned qos_journal_count(const struct qos_journal *j);

/* ------------------------------------------------------------- config.c */

struct qos_config {
	char name[64];                  /* anole owns /<name>/{ls,mid} and /<name>-be */
	char state_dir[256];
	char cgroup_mode[8];            /* auto, v1, v2 */
	char cgroup2_root[256];         /* "" : the cgroup2 mount */
	unsigned interval_ms;
	/* adopted cgroups per class (relative paths) */
	struct qos_adopt { char rel[256]; unsigned line; } *adopt[QOS_NCLASSES];
	size_t nadopt[QOS_NCLASSES];

	struct {
		bool enabled;
		unsigned threshold_percent;     /* of capacity BE+LS+system may use */
		unsigned reserve_percent;       /* system reserve, of capacity */
		unsigned min_millicpus;         /* BE floor */
		unsigned capacity_millicpus;    /* 0: online CPUs */
		char mode[8];                   /* auto, quota, cpuset */
		unsigned cpuset_min_cpus;       /* auto: cpuset from this many CPUs */
		unsigned period_us;             /* BE's CFS period; 0: the group's own */
	} cpu_suppress;
	/* interference-driven BE CPU cap: multiplicative decrease while LS's
	 * p99 is over target, additive increase while it is within */
	struct {
		bool enabled;
		unsigned target_p99_us;
		char latency_file[256];         /* "": the [probe]'s p99 */
		unsigned decrease_percent;      /* cap x (100 - this) / 100 per miss */
		unsigned increase_millicpus;    /* per interval within target */
		unsigned stale_intervals;       /* older file: no signal */
		bool run_queue_wait;            /* probe: count its run-queue waits */
	} interference;
	struct { bool enabled; } cpu_idle;
	struct {
		bool enabled;
		unsigned percent;               /* burst = quota x percent / 100 */
		unsigned busy_percent;          /* node busier: no quota scaling */
	} cpu_burst;
	struct {
		bool enabled;
		unsigned squeeze_available_percent; /* node MemAvailable below: squeeze */
		unsigned squeeze_psi_percent;   /* LS memory PSI some avg10 above: squeeze */
		unsigned squeeze_ratio_percent; /* new limit = BE usage x ratio */
		unsigned high_percent;          /* v2 memory.high of BE, of MemTotal (0: none) */
	} memory;
	struct {
		bool enabled;
		unsigned available_percent;     /* node MemAvailable below: evict */
		unsigned psi_percent;           /* LS memory PSI some avg10 above: evict */
		unsigned cooldown_ms;           /* between two evictions */
	} evict;
	struct {
		bool enabled;
		unsigned psi_percent;           /* LS io PSI some avg10 above: throttle BE */
		uint64_t read_bps, write_bps;
		unsigned hold_ms;               /* lifted only after LS was calm this long */
		char devices[8][16];            /* MAJ:MIN; none: every disk */
		unsigned ndevices;
	} blkio;
	struct {
		bool enabled;                   /* a probe process in LS, default off */
		unsigned rate_hz;
	} probe;
};

void qos_config_defaults(struct qos_config *c);
/* Parse file (NULL: defaults only); an error names the line. */
int qos_config_load(struct qos_config *c, const char *file, const struct qos_host *h);
/* The same from text (name: for messages; fuzz/fuzz_qos_config.c). */
int qos_config_parse_text(struct qos_config *c, const char *name, const char *text, size_t len);
/* Check it against the host (adopted cgroups exist, none in two classes).
 * Neither changes anything on the system. */
int qos_config_check(struct qos_config *c, const char *file, const struct qos_host *h);
/*
 * The cgroup (from each hierarchy's root) anole owns for class c: LS and
 * mid below /<name>, BE beside it as /<name>-be.
 */
void qos_own_group_rel(const struct qos_config *c, enum qos_class_id cl, char *buf, size_t size);
void qos_config_free(struct qos_config *c);

/* -------------------------------------------------------------- agent.c */

struct qos_ctx {
	struct qos_config cfg;
	struct qos_host host;
	struct qos_group own[QOS_NCLASSES];     /* anole's groups */
};

/* Load the configuration and detect the host (status, exec, attach, run). */
int qos_ctx_open(struct qos_ctx *x, const char *config_file);
void qos_ctx_close(struct qos_ctx *x);
/* Create the class group and move pid (0: the caller) there. */
int qos_place(struct qos_ctx *x, enum qos_class_id c, pid_t pid);
/* Run the agent until SIGTERM/SIGINT/SIGHUP; ready_fd as anole_daemon_notify. */
int qos_agent_run(struct qos_ctx *x, int ready_fd);
/* `anole qos restore`: refuses while an agent runs. *restored: knobs. */
int qos_restore(struct qos_ctx *x, unsigned *restored);
/* Host, groups, agent (pid, last metrics) as JSON or text. */
int qos_status(struct qos_ctx *x, struct strbuf *out, bool json);
/* the state directory's files */
void qos_state_path(const struct qos_ctx *x, const char *suffix, char *buf, size_t size);

/* -------------------------------------------------------------- probe.c */

struct qos_probe_opts { double rate_hz, duration_s; unsigned work_us; };
struct qos_probe_result {
	uint64_t samples, missed;
	double p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
	/* the p99 of lateness less the probe's own wait on a run queue
	 * (schedstat run_delay): what is left when LS waiting behind other
	 * runnable tasks is taken out; -1 where the kernel has no schedstat */
	double p99_off_rq_us;
};
int qos_probe_run(const struct qos_probe_opts *o, struct qos_probe_result *r);
#endif
