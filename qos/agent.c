// SPDX-License-Identifier: Apache-2.0
/*
 * The node agent: one lock per agent name, a knob journal (journal.c), and
 * each interval a sample of the node and the classes followed by the
 * policies, in koordlet's order (CPU suppression, idle, burst, memory,
 * eviction, I/O). Policies only ever write BE, mid and LS-burst knobs
 * through the journal, so exit, SIGTERM and the next start after a crash
 * put every one back. Each interval the metrics are written, whole and
 * atomically (rename), as <name>.prom (Prometheus text, which `anole monitor`
 * serves) and <name>.json (which `anole qos status --json` shows).
 */
#include "qos.h"

#include "anole/clock.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/metrics.h"
#include "anole/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void qos_state_path(const struct qos_ctx *x, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.%s", x->cfg.state_dir, x->cfg.name, suffix);
}

int qos_ctx_open(struct qos_ctx *x, const char *config_file)
{
	int ret;

	memset(x, 0, sizeof(*x));
	qos_config_defaults(&x->cfg);
	if ((ret = qos_config_load(&x->cfg, config_file, NULL)))
		goto fail;
	if ((ret = qos_host_detect(&x->host, x->cfg.cgroup_mode,
				   x->cfg.cgroup2_root[0] ? x->cfg.cgroup2_root : NULL)))
		goto fail;
	if ((ret = qos_config_check(&x->cfg, config_file, &x->host)))
		goto fail;
	for (int c = 0; c < QOS_NCLASSES; c++) {
		char rel[200];
		qos_own_group_rel(&x->cfg, c, rel, sizeof(rel));
		qos_group_paths(&x->host, rel, &x->own[c]);
	}
	return 0;
fail:
	qos_config_free(&x->cfg);
	return ret;
}

void qos_ctx_close(struct qos_ctx *x)
{
	qos_config_free(&x->cfg);
}

int qos_place(struct qos_ctx *x, enum qos_class_id c, pid_t pid)
{
	int ret = qos_group_create(&x->host, &x->own[c]);

	return ret ? ret : qos_group_attach(&x->own[c], pid);
}

/* --------------------------------------------------------------- lock */

static int mkdir_state(const char *dir)
{
	char p[300];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	if (mkdir(p, 0700) && errno != EEXIST)
		return anole_error(errno, "qos: cannot create the state directory %s", p);
	return 0;
}

/* The pid holding name's lock, 0 if none. */
static pid_t lock_holder(const struct qos_ctx *x)
{
	char path[400], buf[32];
	int fd;
	pid_t pid = 0;

	qos_state_path(x, "lock", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		pid = (pid_t)strtol(buf, NULL, 10);
		if (pid <= 0)
			pid = -1; /* held, pid not written yet */
	}
	close(fd);
	return pid;
}

static int take_lock(const struct qos_ctx *x, int *fd_out)
{
	char path[400], buf[32];
	int fd, ret;

	if ((ret = mkdir_state(x->cfg.state_dir)))
		return ret;
	qos_state_path(x, "lock", path, sizeof(path));
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return anole_error(errno, "qos: cannot open the lock %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (e == EWOULDBLOCK)
			return anole_error_code(EBUSY, "qos: another agent (pid %ld) is running for "
						"'%s' (lock %s)", strtol(buf, NULL, 10),
						x->cfg.name, path);
		return anole_error(e, "qos: cannot lock %s", path);
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, strlen(buf), 0) < 0) {
		close(fd);
		return anole_error(errno, "qos: cannot write %s", path);
	}
	*fd_out = fd;
	return 0;
}

int qos_restore(struct qos_ctx *x, unsigned *restored)
{
	char path[400];
	int fd, ret;

	*restored = 0;
	/* the lock: a running agent owns its knobs */
	if ((ret = take_lock(x, &fd)))
		return ret;
	qos_state_path(x, "state", path, sizeof(path));
	ret = qos_journal_restore_file(path, restored);
	close(fd);
	return ret;
}

/* ------------------------------------------------------------- sample */

struct class_sample {
	struct qos_group_counters sum;  /* over the class's groups */
	double cpu_cores;               /* over the last interval */
	struct qos_psi psi[3];          /* cpu, memory, io of anole's own group */
	bool have_psi;
};

static const char *const psi_res[3] = { "cpu", "memory", "io" };

struct agent {
	struct qos_ctx *x;
	struct qos_journal *j;
	/* the groups of each class: anole's own first, then adopted */
	struct qos_group *g[QOS_NCLASSES];
	size_t ng[QOS_NCLASSES];
	struct class_sample cls[QOS_NCLASSES], prev[QOS_NCLASSES];
	uint64_t node_busy_ns, node_total_ns;
	double node_cores, t_prev, dt;  /* dt: the last interval, s */
	uint64_t mem_total, mem_available;
	struct qos_psi node_psi[3];
	bool first;
	/* policy state */
	unsigned capacity_m;
	long be_budget_m;               /* BE CPU budget, millicpus (-1: none) */
	long formula_m;                 /* Koordinator's formula alone */
	bool use_cpuset;                /* budget as BE's cpuset.cpus, not a quota */
	char be_cpus[128];              /* the cpuset given to BE's first group */
	/* [interference]: the cap on BE's budget and what drove it */
	long cap_m;
	double ls_p99_us;               /* < 0: no fresh figure */
	uint64_t cap_decreases;
	bool mem_squeezed, io_throttled;
	double io_calm_s;               /* throttled, and LS calm this long (< 0: not calm) */
	uint64_t evictions, squeezes, throttle_onsets, burst_scalings;
	/* PSI triggers on LS's io and memory pressure (-1: none): a pass as
	 * soon as LS stalls past a policy's threshold, not at the next tick */
	int psi_trigger_fd[2];
	uint64_t triggered_passes;
	/* this pass was triggered: LS stalled at least this share (percent) of
	 * the trigger's window, by resource (cpu, memory, io) */
	double trig_share[3];
	double last_evict;
	char devices[8][16];
	unsigned ndevices;
	char last_event[256];
	/* passes made: tests count the agent's own passes, not wall time */
	uint64_t passes;
	/* the LS probe process ([probe]): one result per interval on a pipe */
	pid_t probe_pid;
	int probe_fd;
	struct qos_probe_result probe;
	bool have_probe, probe_fresh;   /* fresh: a result arrived this pass */
};

static void sample(struct agent *a)
{
	double t = anole_mono_seconds(), dt = a->first ? 0 : t - a->t_prev;
	uint64_t busy, total;

	for (int c = 0; c < QOS_NCLASSES; c++) {
		struct class_sample *s = &a->cls[c];
		a->prev[c] = *s;
		memset(&s->sum, 0, sizeof(s->sum));
		for (size_t i = 0; i < a->ng[c]; i++) {
			struct qos_group_counters gc;
			qos_group_counters(&a->x->host, &a->g[c][i], &gc);
			s->sum.cpu_usage_ns += gc.cpu_usage_ns;
			s->sum.nr_periods += gc.nr_periods;
			s->sum.nr_throttled += gc.nr_throttled;
			s->sum.throttled_ns += gc.throttled_ns;
			s->sum.mem_usage += gc.mem_usage;
			s->sum.have_cpu |= gc.have_cpu;
			s->sum.have_mem |= gc.have_mem;
		}
		s->cpu_cores = dt > 0 && s->sum.cpu_usage_ns >= a->prev[c].sum.cpu_usage_ns ?
			(double)(s->sum.cpu_usage_ns - a->prev[c].sum.cpu_usage_ns) / 1e9 / dt : 0;
		s->have_psi = true;
		for (int r = 0; r < 3; r++)
			if (qos_psi_read(a->g[c][0].psi_dir[0] ? a->g[c][0].psi_dir : "-", psi_res[r],
					 &s->psi[r]))
				s->have_psi = false;
	}
	if (!qos_node_cpu(&busy, &total)) {
		a->node_cores = dt > 0 && busy >= a->node_busy_ns ?
			(double)(busy - a->node_busy_ns) / 1e9 / dt : 0;
		a->node_busy_ns = busy;
		a->node_total_ns = total;
	}
	qos_node_mem(&a->mem_total, &a->mem_available);
	for (int r = 0; r < 3; r++)
		qos_psi_read(NULL, psi_res[r], &a->node_psi[r]);
	a->t_prev = t;
	a->dt = dt;
}

static void event(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->last_event, sizeof(a->last_event), fmt, ap);
	va_end(ap);
	anole_log(ANOLE_LOG_INFO, "qos: %s", a->last_event);
}

static void knob_path(char *buf, size_t size, const struct qos_group *g, enum qos_ctrl c,
		      const char *file)
{
	snprintf(buf, size, "%s/%s", g->dir[c], file);
}

static bool knob_exists(const struct qos_group *g, enum qos_ctrl c, const char *file)
{
	char p[700];

	if (!g->dir[c][0])
		return false;
	knob_path(p, sizeof(p), g, c, file);
	return access(p, W_OK) == 0;
}

/* -------------------------------------------------------------- policies */

/* A BE group's share of the budget as its CFS quota; share < 0: no quota */
static void apply_quota_group(struct agent *a, const struct qos_group *g, long share)
{
	bool v2 = a->x->host.v2;
	char path[700], val[64], cur[64];
	uint64_t period = 100000;

	if (!g->dir[QOS_CPU][0])
		return;
	if (!v2) {
		knob_path(path, sizeof(path), g, QOS_CPU, "cpu.cfs_period_us");
		anole_read_u64(path, &period);
	} else {
		knob_path(path, sizeof(path), g, QOS_CPU, "cpu.max");
		if (anole_read_value(path, cur, sizeof(cur)) > 0 && strchr(cur, ' '))
			period = strtoull(strchr(cur, ' ') + 1, NULL, 10);
	}
	/* a configured period replaces the group's own; on v1 it is a knob of
	 * its own, written (and journaled) before the quota that depends on it */
	if (a->x->cfg.cpu_suppress.period_us && share >= 0 &&
	    period != a->x->cfg.cpu_suppress.period_us) {
		period = a->x->cfg.cpu_suppress.period_us;
		if (!v2) {
			snprintf(val, sizeof(val), "%" PRIu64, period);
			knob_path(path, sizeof(path), g, QOS_CPU, "cpu.cfs_period_us");
			qos_knob_set(a->j, path, NULL, val);
		}
	}
	/* the kernel's minimum quota is 1 ms */
	uint64_t quota = share < 0 ? 0 : (uint64_t)share * period / 1000;
	if (share >= 0 && quota < 1000)
		quota = 1000;
	knob_path(path, sizeof(path), g, QOS_CPU, v2 ? "cpu.max" : "cpu.cfs_quota_us");
	if (share < 0 && v2)
		snprintf(val, sizeof(val), "max %" PRIu64, period);
	else if (share < 0)
		snprintf(val, sizeof(val), "-1");
	else if (v2)
		snprintf(val, sizeof(val), "%" PRIu64 " %" PRIu64, quota, period);
	else
		snprintf(val, sizeof(val), "%" PRIu64, quota);
	if (anole_read_value(path, cur, sizeof(cur)) >= 0 && !strcmp(cur, val))
		return;
	qos_knob_set(a->j, path, NULL, val);
}

/* BE's budget as CFS quotas, split evenly between BE's groups */
static void apply_quota(struct agent *a, long m)
{
	for (size_t i = 0; i < a->ng[QOS_BE]; i++)
		apply_quota_group(a, &a->g[QOS_BE][i], m / (long)a->ng[QOS_BE]);
}

static int read_mask(const char *path, struct qos_cpumask *m)
{
	char buf[4096];
	int ret = anole_read_value(path, buf, sizeof(buf));

	return ret < 0 ? ret : qos_cpulist_parse(buf, m);
}

/*
 * BE's budget as whole CPUs: each BE group gets floor(its share) CPUs, at
 * least one, the highest-numbered of those its parent allows, leaving out
 * CPUs LS (or mid) is pinned to (an LS group whose cpuset is narrower than
 * the node's); when that leaves none, BE shares LS's last CPU rather than
 * none. A cut applies at once; growth is one CPU per interval, so that a
 * short lull in LS does not hand BE the whole machine for one interval.
 * A share below the group's one CPU (LS is busy) is held by a CFS quota
 * on that CPU as well; else the group has no quota. BE is never given a
 * fraction of a further CPU: a quota spanning several CPUs lets BE fill
 * them all at once until it is throttled, which is what the cpuset avoids.
 */
static void apply_cpuset(struct agent *a, long m)
{
	bool v2 = a->x->host.v2;
	struct qos_cpumask online, ls, gm;

	if (read_mask("/sys/devices/system/cpu/online", &online))
		return;
	memset(&ls, 0, sizeof(ls));
	for (int cl = QOS_LS; cl <= QOS_MID; cl++)
		for (size_t i = 0; i < a->ng[cl]; i++) {
			char path[700];
			if (!a->g[cl][i].dir[QOS_CPUSET][0])
				continue;
			knob_path(path, sizeof(path), &a->g[cl][i], QOS_CPUSET, "cpuset.cpus");
			/* v2's "" (inherit) parses as no CPUs: not pinned */
			if (read_mask(path, &gm) || !qos_cpumask_count(&gm) ||
			    qos_cpumask_count(&gm) >= qos_cpumask_count(&online))
				continue;
			for (size_t w = 0; w < sizeof(ls.w) / sizeof(ls.w[0]); w++)
				ls.w[w] |= gm.w[w];
		}
	a->be_cpus[0] = 0;
	for (size_t i = 0; i < a->ng[QOS_BE]; i++) {
		const struct qos_group *g = &a->g[QOS_BE][i];
		struct qos_cpumask allowed, cand, cur, want;
		char path[700], val[4096];
		long n = m / (long)a->ng[QOS_BE] / 1000;

		if (!knob_exists(g, QOS_CPUSET, "cpuset.cpus")) {
			/* an adopted group outside the cpuset hierarchy: still held */
			apply_quota_group(a, g, m / (long)a->ng[QOS_BE]);
			continue;
		}
		snprintf(path, sizeof(path), "%s", g->dir[QOS_CPUSET]);
		char *slash = strrchr(path, '/');
		if (slash)
			snprintf(slash, sizeof(path) - (size_t)(slash - path), "/%s",
				 v2 ? "cpuset.cpus.effective" : "cpuset.cpus");
		if (!slash || read_mask(path, &allowed) || !qos_cpumask_count(&allowed))
			allowed = online;
		for (size_t w = 0; w < sizeof(cand.w) / sizeof(cand.w[0]); w++)
			cand.w[w] = allowed.w[w] & ~ls.w[w];
		if (!qos_cpumask_count(&cand)) {
			/* LS has every CPU: BE keeps LS's last one, not none */
			memset(&cand, 0, sizeof(cand));
			for (int c = QOS_MAX_CPUS - 1; c >= 0; c--)
				if (allowed.w[c / 64] >> (c % 64) & 1) {
					cand.w[c / 64] |= UINT64_C(1) << (c % 64);
					break;
				}
		}
		knob_path(path, sizeof(path), g, QOS_CPUSET, "cpuset.cpus");
		if (read_mask(path, &cur) || !qos_cpumask_count(&cur))
			cur = allowed;
		if (n < 1)
			n = 1;
		if (n > (long)qos_cpumask_count(&cur) + 1)
			n = (long)qos_cpumask_count(&cur) + 1;
		if (n > (long)qos_cpumask_count(&cand))
			n = (long)qos_cpumask_count(&cand);
		memset(&want, 0, sizeof(want));
		for (int c = QOS_MAX_CPUS - 1; c >= 0 && n > 0; c--)
			if (cand.w[c / 64] >> (c % 64) & 1) {
				want.w[c / 64] |= UINT64_C(1) << (c % 64);
				n--;
			}
		qos_cpulist_format(&want, val, sizeof(val));
		if (!a->be_cpus[0]) /* whole ranges only, if it is long */
			qos_cpulist_format(&want, a->be_cpus, sizeof(a->be_cpus));
		long share = m / (long)a->ng[QOS_BE];
		apply_quota_group(a, g, share < (long)qos_cpumask_count(&want) * 1000 ? share : -1);
		if (!memcmp(&want, &cur, sizeof(want)))
			continue;
		if (!qos_knob_set(a->j, path, NULL, val))
			event(a, "BE %s on CPUs %s (budget %ld millicpus)", g->rel, val, m);
	}
}

/*
 * Koordinator's BE CPU suppression: budget = capacity x threshold - LS
 * usage - max(system usage, reserve), floored; LS usage counts mid as well
 * (everything but BE). The interference cap, when on, lowers it further.
 */
static void policy_cpu_suppress(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	double ls = a->cls[QOS_LS].cpu_cores + a->cls[QOS_MID].cpu_cores;
	double be = a->cls[QOS_BE].cpu_cores;
	double sys = a->node_cores - ls - be;
	double cap = a->capacity_m / 1000.0;
	double reserve = cap * c->cpu_suppress.reserve_percent / 100.0;
	double budget = cap * c->cpu_suppress.threshold_percent / 100.0 - ls -
		(sys > reserve ? sys : reserve);
	long m = (long)(budget * 1000);

	a->formula_m = m;
	if (c->interference.enabled && a->cap_m < m)
		m = a->cap_m;
	if (m < (long)c->cpu_suppress.min_millicpus)
		m = c->cpu_suppress.min_millicpus;
	a->be_budget_m = m;
	if (a->use_cpuset)
		apply_cpuset(a, m);
	else
		apply_quota(a, m);
}

/* LS's p99 for this pass, from the latency file or the probe; < 0: none */
static double ls_latency(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	char buf[64], *end;
	struct stat st;

	if (!c->interference.latency_file[0])
		return !a->probe_fresh ? -1 :
		       !c->interference.run_queue_wait && a->probe.p99_off_rq_us >= 0 ?
		       a->probe.p99_off_rq_us : a->probe.p99_us;
	/* a writer that stopped is no signal, not a good one */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (stat(c->interference.latency_file, &st) ||
	    (double)(now.tv_sec - st.st_mtim.tv_sec) * 1000 +
	    (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e6 >
	    (double)c->interference.stale_intervals * c->interval_ms)
		return -1;
	if (anole_read_value(c->interference.latency_file, buf, sizeof(buf)) <= 0)
		return -1;
	double v = strtod(buf, &end);
	if (end == buf || !isfinite(v) || v < 0)
		return -1;
	return v;
}

/*
 * Interference: LS's own latency drives a cap on BE's budget, as TCP drives
 * its window. A pass with LS's p99 over target cuts the cap to (100 -
 * decrease_percent)% of what BE was given; a pass within target adds
 * increase_millicpus, up to capacity (no cap). With no fresh figure the cap
 * stays. cpu_suppress's minimum still floors the budget.
 */
static void policy_interference(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	double p99 = ls_latency(a);

	a->ls_p99_us = p99;
	if (p99 < 0)
		return;
	if (p99 > c->interference.target_p99_us) {
		long from = a->be_budget_m > 0 && a->be_budget_m < a->cap_m ? a->be_budget_m : a->cap_m;
		long next = from * (long)(100 - c->interference.decrease_percent) / 100;
		if (next < (long)c->cpu_suppress.min_millicpus)
			next = c->cpu_suppress.min_millicpus;
		if (next < a->cap_m) {
			a->cap_decreases++;
			event(a, "LS p99 %.0f us over its target %u us: BE capped at %ld millicpus",
			      p99, c->interference.target_p99_us, next);
		}
		a->cap_m = next;
	} else if (a->cap_m < (long)a->capacity_m) {
		a->cap_m += c->interference.increase_millicpus;
		if (a->cap_m > (long)a->capacity_m)
			a->cap_m = a->capacity_m;
	}
}

static void policy_cpu_idle(struct agent *a)
{
	for (size_t i = 0; i < a->ng[QOS_BE]; i++) {
		const struct qos_group *g = &a->g[QOS_BE][i];
		char path[700], cur[16];
		if (!knob_exists(g, QOS_CPU, "cpu.idle"))
			continue;
		knob_path(path, sizeof(path), g, QOS_CPU, "cpu.idle");
		if (anole_read_value(path, cur, sizeof(cur)) >= 0 && strcmp(cur, "1"))
			qos_knob_set(a->j, path, NULL, "1");
	}
}

/*
 * CPU burst for LS groups that have a quota: the kernel's burst knob where
 * it exists (burst may not exceed the quota); else the quota itself is
 * raised 20% per throttled interval, up to quota x (1 + percent), while the
 * node is below busy_percent, and put back when it is busier.
 */
static void policy_cpu_burst(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	bool v2 = a->x->host.v2;
	bool busy = a->node_cores * 1000 >= (double)a->capacity_m * c->cpu_burst.busy_percent / 100;

	const int cls = QOS_LS;
	{
		for (size_t i = 0; i < a->ng[cls]; i++) {
			const struct qos_group *g = &a->g[cls][i];
			char qpath[700], bpath[700], cur[64], val[64];
			long long quota = -1;
			uint64_t period = 100000;

			if (!g->dir[QOS_CPU][0])
				continue;
			knob_path(qpath, sizeof(qpath), g, QOS_CPU, v2 ? "cpu.max" : "cpu.cfs_quota_us");
			if (anole_read_value(qpath, cur, sizeof(cur)) < 0)
				continue;
			if (v2) {
				if (strncmp(cur, "max", 3))
					quota = strtoll(cur, NULL, 10);
				if (strchr(cur, ' '))
					period = strtoull(strchr(cur, ' ') + 1, NULL, 10);
			} else {
				quota = strtoll(cur, NULL, 10);
			}
			if (quota <= 0)
				continue;
			const char *bfile = v2 ? "cpu.max.burst" : "cpu.cfs_burst_us";
			if (knob_exists(g, QOS_CPU, bfile)) {
				long long burst = quota * (long long)c->cpu_burst.percent / 100;
				if (burst > quota)
					burst = quota;
				knob_path(bpath, sizeof(bpath), g, QOS_CPU, bfile);
				snprintf(val, sizeof(val), "%lld", burst);
				if (anole_read_value(bpath, cur, sizeof(cur)) >= 0 && strcmp(cur, val))
					qos_knob_set(a->j, bpath, NULL, val);
				continue;
			}
			/* quota scaling */
			if (busy) {
				qos_knob_reset(a->j, qpath, NULL);
				continue;
			}
			uint64_t thr = a->cls[cls].sum.nr_throttled - a->prev[cls].sum.nr_throttled;
			if (!thr || a->first)
				continue;
			/* the ceiling from the original quota: journaled on first change */
			long long ceiling = quota + quota * (long long)c->cpu_burst.percent / 100;
			long long next = quota + quota / 5;
			if (next > ceiling)
				next = ceiling;
			if (next <= quota)
				continue;
			if (v2)
				snprintf(val, sizeof(val), "%lld %" PRIu64, next, period);
			else
				snprintf(val, sizeof(val), "%lld", next);
			if (!qos_knob_set(a->j, qpath, NULL, val))
				a->burst_scalings++;
		}
	}
}

/*
 * LS's pressure (some) in percent: the larger of the kernel's avg10 and the
 * share of the last interval, from the totals. avg10 alone lags: it is a
 * 10 s average, so a stall of half the time would take ~5 s to read 20%;
 * the interval's share reacts in one pass, avg10 keeps "calm" from coming
 * too soon after it.
 */
static double ls_psi(struct agent *a, int res)
{
	const struct class_sample *s = &a->cls[QOS_LS], *p = &a->prev[QOS_LS];
	double v;

	if (!s->have_psi)
		return 0;
	v = s->psi[res].some_avg10;
	if (p->have_psi && a->dt > 0 && s->psi[res].some_total >= p->psi[res].some_total) {
		double share = 100.0 * (double)(s->psi[res].some_total - p->psi[res].some_total) /
			(a->dt * 1e6);
		if (share > v)
			v = share > 100 ? 100 : share;
	}
	/* a trigger's window can be much shorter than the time since the last
	 * pass, over which the share above dilutes the stall */
	if (a->trig_share[res] > v)
		v = a->trig_share[res];
	return v;
}

static void policy_memory(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	bool v2 = a->x->host.v2;
	double avail = a->mem_total ? 100.0 * (double)a->mem_available / (double)a->mem_total : 100;
	bool pressure = avail < c->memory.squeeze_available_percent ||
		(a->cls[QOS_LS].have_psi && ls_psi(a, 1) >= c->memory.squeeze_psi_percent &&
		 c->memory.squeeze_psi_percent < 100);
	/* released with hysteresis so that it does not flap */
	bool relieved = avail >= c->memory.squeeze_available_percent + 2 &&
		(!a->cls[QOS_LS].have_psi || ls_psi(a, 1) < c->memory.squeeze_psi_percent / 2.0);
	const char *file = v2 ? "memory.high" : "memory.limit_in_bytes";

	for (size_t i = 0; i < a->ng[QOS_BE]; i++) {
		const struct qos_group *g = &a->g[QOS_BE][i];
		char path[700], val[64], cur[64];
		if (!knob_exists(g, QOS_MEMORY, file))
			continue;
		knob_path(path, sizeof(path), g, QOS_MEMORY, file);
		if (!pressure) {
			if (a->mem_squeezed && relieved) {
				qos_knob_reset(a->j, path, NULL);
			}
			/* the standing watermark (v2) */
			if (v2 && c->memory.high_percent && (!a->mem_squeezed || relieved)) {
				snprintf(val, sizeof(val), "%" PRIu64,
					 a->mem_total / 100 * c->memory.high_percent);
				if (anole_read_value(path, cur, sizeof(cur)) >= 0 && strcmp(cur, val))
					qos_knob_set(a->j, path, NULL, val);
			}
			continue;
		}
		struct qos_group_counters gc;
		qos_group_counters(&a->x->host, g, &gc);
		uint64_t target = gc.mem_usage / 100 * c->memory.squeeze_ratio_percent;
		uint64_t floor = 16u << 20, limit = UINT64_MAX;
		if (target < floor)
			target = floor;
		if (anole_read_value(path, cur, sizeof(cur)) >= 0 && strcmp(cur, "max"))
			limit = strtoull(cur, NULL, 10);
		if (target >= limit)
			continue;
		target &= ~(uint64_t)4095;
		snprintf(val, sizeof(val), "%" PRIu64, target);
		int ret = qos_knob_set(a->j, path, NULL, val);
		if (ret == -EBUSY && gc.mem_usage < limit) {
			/* v1 could not reclaim that much (anonymous memory, no swap):
			 * hold BE where it is; eviction is the next step */
			snprintf(val, sizeof(val), "%" PRIu64, (gc.mem_usage + 4095) & ~(uint64_t)4095);
			ret = qos_knob_set(a->j, path, NULL, val);
		}
		if (!ret && !a->mem_squeezed) {
			a->squeezes++;
			event(a, "memory pressure (available %.1f%%, LS memory PSI %.2f%%): BE %s "
			      "squeezed to %s", avail, ls_psi(a, 1), g->rel, val);
		}
	}
	if (pressure)
		a->mem_squeezed = true;
	else if (relieved)
		a->mem_squeezed = false;
}

static uint64_t rss_of(pid_t pid)
{
	char path[64], buf[128];
	unsigned long long size, rss;

	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if (anole_read_value(path, buf, sizeof(buf)) < 0 || sscanf(buf, "%llu %llu", &size, &rss) != 2)
		return 0;
	return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Kill the biggest process of BE (then mid, if BE has none); never LS. */
static void policy_evict(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	double avail = a->mem_total ? 100.0 * (double)a->mem_available / (double)a->mem_total : 100;
	double t = anole_mono_seconds();

	if (!(avail < c->evict.available_percent ||
	      (a->cls[QOS_LS].have_psi && c->evict.psi_percent < 100 &&
	       ls_psi(a, 1) >= c->evict.psi_percent)))
		return;
	if (a->last_evict && t - a->last_evict < c->evict.cooldown_ms / 1000.0)
		return;
	for (int cls = QOS_BE; cls >= QOS_MID; cls--) {
		pid_t victim = 0;
		uint64_t biggest = 0;
		for (size_t i = 0; i < a->ng[cls]; i++) {
			pid_t *pids;
			size_t n;
			if (qos_group_pids(&a->g[cls][i], &pids, &n))
				continue;
			for (size_t k = 0; k < n; k++) {
				uint64_t r = rss_of(pids[k]);
				if (pids[k] != getpid() && r >= biggest) {
					biggest = r;
					victim = pids[k];
				}
			}
			free(pids);
		}
		if (!victim)
			continue;
		if (kill(victim, SIGKILL) == 0) {
			a->evictions++;
			a->last_evict = t;
			event(a, "evicted %s pid %ld (rss %" PRIu64 " MiB): available %.1f%%, LS "
			      "memory PSI %.2f%%", qos_class_name(cls), (long)victim, biggest >> 20,
			      avail, ls_psi(a, 1));
		}
		return;
	}
}

static void find_disks(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	DIR *d;
	struct dirent *e;

	if (c->blkio.ndevices) {
		memcpy(a->devices, c->blkio.devices, sizeof(a->devices));
		a->ndevices = c->blkio.ndevices;
		return;
	}
	if (!(d = opendir("/sys/block")))
		return;
	while ((e = readdir(d)) && a->ndevices < 8) {
		char path[300], dev[32];
		if (e->d_name[0] == '.' || !strncmp(e->d_name, "loop", 4) ||
		    !strncmp(e->d_name, "ram", 3) || !strncmp(e->d_name, "zram", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dev", e->d_name);
		if (anole_read_value(path, dev, sizeof(dev)) > 0 && strlen(dev) < 16)
			snprintf(a->devices[a->ndevices++], 16, "%.15s", dev);
	}
	closedir(d);
}

static void policy_blkio(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	bool v2 = a->x->host.v2;
	double psi = ls_psi(a, 2);
	bool rising = a->cls[QOS_LS].have_psi && psi >= c->blkio.psi_percent;
	bool calm = !a->cls[QOS_LS].have_psi || psi < c->blkio.psi_percent / 2.0;
	bool lift;

	/* lifted only once LS has stayed calm for hold_ms: the throttle itself
	 * is what calms LS, so the first calm interval proves nothing */
	if (a->io_throttled && calm)  /* counted from the first calm pass */
		a->io_calm_s = a->io_calm_s < 0 ? 0 : a->io_calm_s + a->dt;
	else
		a->io_calm_s = -1;
	lift = a->io_throttled && !rising && calm && a->io_calm_s * 1000.0 >= c->blkio.hold_ms;
	if (!(rising && !a->io_throttled) && !lift)
		return;
	for (size_t i = 0; i < a->ng[QOS_BE]; i++) {
		const struct qos_group *g = &a->g[QOS_BE][i];
		char rpath[700], wpath[700], val[128];
		if (v2 ? !knob_exists(g, QOS_BLKIO, "io.max")
		       : !knob_exists(g, QOS_BLKIO, "blkio.throttle.read_bps_device"))
			continue;
		knob_path(rpath, sizeof(rpath), g, QOS_BLKIO,
			  v2 ? "io.max" : "blkio.throttle.read_bps_device");
		knob_path(wpath, sizeof(wpath), g, QOS_BLKIO, "blkio.throttle.write_bps_device");
		for (unsigned d = 0; d < a->ndevices; d++) {
			if (lift) {
				qos_knob_reset(a->j, rpath, a->devices[d]);
				if (!v2)
					qos_knob_reset(a->j, wpath, a->devices[d]);
				continue;
			}
			if (v2) {
				snprintf(val, sizeof(val), "rbps=%" PRIu64 " wbps=%" PRIu64,
					 c->blkio.read_bps, c->blkio.write_bps);
				qos_knob_set(a->j, rpath, a->devices[d], val);
			} else {
				snprintf(val, sizeof(val), "%" PRIu64, c->blkio.read_bps);
				qos_knob_set(a->j, rpath, a->devices[d], val);
				snprintf(val, sizeof(val), "%" PRIu64, c->blkio.write_bps);
				qos_knob_set(a->j, wpath, a->devices[d], val);
			}
		}
	}
	if (lift) {
		event(a, "LS I/O pressure %.2f%% for %.0f s: BE I/O throttle lifted", psi, a->io_calm_s);
	} else {
		a->throttle_onsets++;
		event(a, "LS I/O pressure %.2f%%: BE I/O throttled", psi);
	}
	a->io_throttled = !lift;
	a->io_calm_s = -1;
}

/* --------------------------------------------------------------- probe */

/*
 * The probe runs in a child process placed in LS, so that it sees what LS
 * sees (a thread of the agent could not join a v2 cgroup alone); each
 * interval it sends one result, smaller than PIPE_BUF, so writes are whole.
 * It dies with the agent, SIGKILL included (PR_SET_PDEATHSIG).
 */
static void probe_start(struct agent *a, int lock_fd)
{
	int p[2];
	pid_t pid;

	a->probe_fd = -1;
	if (pipe2(p, O_CLOEXEC))
		return;
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		sigset_t none;
		struct qos_probe_opts o = { .rate_hz = a->x->cfg.probe.rate_hz,
					    .duration_s = a->x->cfg.interval_ms / 1000.0, .work_us = 20 };
		struct qos_probe_result r;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(p[0]);
		close(lock_fd); /* the lock is the agent's alone */
		if (qos_group_attach(&a->x->own[QOS_LS], 0))
			_exit(1);
		while (getppid() != 1 && !qos_probe_run(&o, &r))
			if (write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
				break;
		_exit(0);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	a->probe_pid = pid;
	a->probe_fd = p[0];
}

static void probe_read(struct agent *a)
{
	struct qos_probe_result r;

	while (a->probe_fd >= 0 && read(a->probe_fd, &r, sizeof(r)) == (ssize_t)sizeof(r)) {
		a->probe = r;
		a->have_probe = a->probe_fresh = true;
	}
}

static void probe_stop(struct agent *a)
{
	if (a->probe_pid > 0) {
		kill(a->probe_pid, SIGKILL);
		waitpid(a->probe_pid, NULL, 0);
	}
	if (a->probe_fd >= 0)
		close(a->probe_fd);
}

/* -------------------------------------------------------------- metrics */

static unsigned cpus_in(const char *list)
{
	struct qos_cpumask m;

	return qos_cpulist_parse(list, &m) ? 0 : qos_cpumask_count(&m);
}

static void write_metrics(struct agent *a)
{
	const struct qos_config *c = &a->x->cfg;
	struct strbuf p = STRBUF_INIT, j = STRBUF_INIT, lab = STRBUF_INIT;
	char path[400];

	anole_metrics_family(&p, "anole_qos_cpu_usage_cores", "gauge",
			     "CPU used by the class over the last interval, in CPUs.");
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		strbuf_reset(&lab);
		anole_metrics_label(&lab, "agent", c->name);
		anole_metrics_label(&lab, "class", qos_class_name(cl));
		anole_metrics_double(&p, "anole_qos_cpu_usage_cores", lab.buf, a->cls[cl].cpu_cores);
	}
	anole_metrics_family(&p, "anole_qos_cpu_throttled_periods_total", "counter",
			     "CFS periods in which the class's groups were throttled.");
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		strbuf_reset(&lab);
		anole_metrics_label(&lab, "agent", c->name);
		anole_metrics_label(&lab, "class", qos_class_name(cl));
		anole_metrics_u64(&p, "anole_qos_cpu_throttled_periods_total", lab.buf,
				  a->cls[cl].sum.nr_throttled);
	}
	anole_metrics_family(&p, "anole_qos_cpu_throttled_seconds_total", "counter",
			     "Time the class's groups spent throttled.");
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		strbuf_reset(&lab);
		anole_metrics_label(&lab, "agent", c->name);
		anole_metrics_label(&lab, "class", qos_class_name(cl));
		anole_metrics_double(&p, "anole_qos_cpu_throttled_seconds_total", lab.buf,
				     (double)a->cls[cl].sum.throttled_ns / 1e9);
	}
	anole_metrics_family(&p, "anole_qos_memory_usage_bytes", "gauge",
			     "Memory charged to the class's groups.");
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		strbuf_reset(&lab);
		anole_metrics_label(&lab, "agent", c->name);
		anole_metrics_label(&lab, "class", qos_class_name(cl));
		anole_metrics_u64(&p, "anole_qos_memory_usage_bytes", lab.buf, a->cls[cl].sum.mem_usage);
	}
	anole_metrics_family(&p, "anole_qos_pressure_avg10_percent", "gauge",
			     "PSI avg10 of the class's own group (some and full).");
	for (int cl = 0; cl < QOS_NCLASSES; cl++)
		for (int r = 0; r < 3 && a->cls[cl].have_psi; r++)
			for (int k = 0; k < 2; k++) {
				strbuf_reset(&lab);
				anole_metrics_label(&lab, "agent", c->name);
				anole_metrics_label(&lab, "class", qos_class_name(cl));
				anole_metrics_label(&lab, "resource", psi_res[r]);
				anole_metrics_label(&lab, "kind", k ? "full" : "some");
				anole_metrics_double(&p, "anole_qos_pressure_avg10_percent", lab.buf,
						     k ? a->cls[cl].psi[r].full_avg10
						       : a->cls[cl].psi[r].some_avg10);
			}
	strbuf_reset(&lab);
	anole_metrics_label(&lab, "agent", c->name);
	anole_metrics_one_u64(&p, "anole_qos_be_cpu_budget_millicpus", "gauge",
			      "BE CPU suppression level: the budget of the last interval.",
			      lab.buf, a->be_budget_m > 0 ? (uint64_t)a->be_budget_m : 0);
	anole_metrics_one_u64(&p, "anole_qos_be_cpus", "gauge",
			      "CPUs in BE's cpuset (cpuset suppression; 0: quota).", lab.buf,
			      a->use_cpuset && a->be_cpus[0] ? cpus_in(a->be_cpus) : 0);
	if (c->interference.enabled) {
		anole_metrics_one_u64(&p, "anole_qos_be_cpu_cap_millicpus", "gauge",
				      "Interference cap on BE's CPU budget (capacity: no cap).",
				      lab.buf, (uint64_t)a->cap_m);
		anole_metrics_one_u64(&p, "anole_qos_be_cpu_cap_decreases_total", "counter",
				      "Passes in which LS's p99 over target cut BE's cap.", lab.buf,
				      a->cap_decreases);
		if (a->ls_p99_us >= 0) {
			anole_metrics_family(&p, "anole_qos_ls_p99_seconds", "gauge",
					     "LS p99 latency the interference policy saw.");
			anole_metrics_double(&p, "anole_qos_ls_p99_seconds", lab.buf,
					     a->ls_p99_us / 1e6);
		}
	}
	anole_metrics_one_u64(&p, "anole_qos_be_memory_squeezed", "gauge",
			      "1 while BE memory is squeezed.", lab.buf, a->mem_squeezed);
	anole_metrics_one_u64(&p, "anole_qos_be_io_throttled", "gauge",
			      "1 while BE I/O is throttled.", lab.buf, a->io_throttled);
	anole_metrics_one_u64(&p, "anole_qos_evictions_total", "counter",
			      "BE (or mid) processes killed to relieve memory.", lab.buf,
			      a->evictions);
	anole_metrics_one_u64(&p, "anole_qos_knobs_changed", "gauge",
			      "Knobs in the journal (restored at exit).", lab.buf,
			      qos_journal_count(a->j));
	if (a->have_probe) {
		static const char *const q[4] = { "50", "90", "99", "99.9" };
		const double v[4] = { a->probe.p50_us, a->probe.p90_us, a->probe.p99_us,
				      a->probe.p999_us };
		/* a gauge per percentile (not a summary: no _sum and _count of
		 * the whole run) */
		anole_metrics_family(&p, "anole_qos_ls_probe_lateness_seconds", "gauge",
				     "Wake-up lateness percentiles of the LS probe over the last interval.");
		for (int i = 0; i < 4; i++) {
			struct strbuf ql = STRBUF_INIT;
			anole_metrics_label(&ql, "agent", c->name);
			anole_metrics_label(&ql, "percentile", q[i]);
			anole_metrics_double(&p, "anole_qos_ls_probe_lateness_seconds", ql.buf,
					     v[i] / 1e6);
			strbuf_release(&ql);
		}
	}
	anole_metrics_family(&p, "anole_qos_node_cpu_usage_cores", "gauge",
			     "CPU used by the whole node over the last interval.");
	anole_metrics_double(&p, "anole_qos_node_cpu_usage_cores", lab.buf, a->node_cores);

	/* JSON for `anole qos status --json` */
	strbuf_addf(&j, "{\"pid\":%ld,\"interval_ms\":%u,\"passes\":%" PRIu64 ",\"triggered_passes\":%"
		    PRIu64 ",\"psi_triggers\":{\"io\":%s,\"memory\":%s},\"node\":{\"cpus\":%u,"
		    "\"capacity_millicpus\":%u,\"cpu_usage_cores\":%.3f,\"mem_total\":%" PRIu64
		    ",\"mem_available\":%" PRIu64 "},\"classes\":{", (long)getpid(), c->interval_ms,
		    a->passes, a->triggered_passes, a->psi_trigger_fd[0] >= 0 ? "true" : "false",
		    a->psi_trigger_fd[1] >= 0 ? "true" : "false", a->x->host.ncpus, a->capacity_m, a->node_cores, a->mem_total, a->mem_available);
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		const struct class_sample *s = &a->cls[cl];
		strbuf_addf(&j, "%s\"%s\":{\"groups\":[", cl ? "," : "", qos_class_name(cl));
		for (size_t i = 0; i < a->ng[cl]; i++) {
			strbuf_addstr(&j, i ? "," : "");
			strbuf_add_json_string(&j, a->g[cl][i].rel, strlen(a->g[cl][i].rel));
		}
		strbuf_addf(&j, "],\"cpu_usage_cores\":%.3f,\"nr_throttled\":%" PRIu64
			    ",\"throttled_seconds\":%.3f,\"memory_usage\":%" PRIu64 ",\"psi\":",
			    s->cpu_cores, s->sum.nr_throttled, (double)s->sum.throttled_ns / 1e9,
			    s->sum.mem_usage);
		if (!s->have_psi) {
			strbuf_addstr(&j, "null}");
			continue;
		}
		strbuf_addch(&j, '{');
		for (int r = 0; r < 3; r++)
			strbuf_addf(&j, "%s\"%s\":{\"some_avg10\":%.2f,\"full_avg10\":%.2f}",
				    r ? "," : "", psi_res[r], s->psi[r].some_avg10, s->psi[r].full_avg10);
		strbuf_addstr(&j, "}}");
	}
	strbuf_addf(&j, "},\"policies\":{\"cpu_suppress\":{\"enabled\":%s,\"mode\":\"%s\","
		    "\"be_budget_millicpus\":%ld,\"formula_millicpus\":%ld,\"be_cpus\":\"%s\","
		    "\"level_percent\":%.1f},\"interference\":{\"enabled\":%s,\"cap_millicpus\":%ld,"
		    "\"cap_decreases\":%" PRIu64 ",\"target_p99_us\":%u,\"ls_p99_us\":%.1f},"
		    "\"cpu_idle\":{\"enabled\":%s},\"cpu_burst\":{\"enabled\":%s,\"quota_scalings\":%"
		    PRIu64 "},\"memory\":{\"enabled\":%s,\"squeezed\":%s,\"squeezes\":%" PRIu64 "},"
		    "\"evict\":{\"enabled\":%s,\"evictions\":%" PRIu64 "},\"blkio\":{\"enabled\":%s,"
		    "\"throttled\":%s,\"onsets\":%" PRIu64 "}},\"knobs_changed\":%u,\"last_event\":",
		    c->cpu_suppress.enabled ? "true" : "false", a->use_cpuset ? "cpuset" : "quota",
		    a->be_budget_m, a->formula_m, a->be_cpus,
		    /* how hard BE is held: 0 none (the whole capacity), 100 at nothing */
		    a->be_budget_m >= 0 ? 100.0 - 100.0 * (double)a->be_budget_m / a->capacity_m : 0.0,
		    c->interference.enabled ? "true" : "false", a->cap_m, a->cap_decreases,
		    c->interference.target_p99_us, a->ls_p99_us,
		    c->cpu_idle.enabled ? "true" : "false", c->cpu_burst.enabled ? "true" : "false",
		    a->burst_scalings, c->memory.enabled ? "true" : "false",
		    a->mem_squeezed ? "true" : "false", a->squeezes,
		    c->evict.enabled ? "true" : "false", a->evictions,
		    c->blkio.enabled ? "true" : "false", a->io_throttled ? "true" : "false",
		    a->throttle_onsets, qos_journal_count(a->j));
	strbuf_add_json_string(&j, a->last_event, strlen(a->last_event));
	if (a->have_probe)
		strbuf_addf(&j, ",\"probe\":{\"samples\":%" PRIu64 ",\"p50_us\":%.1f,\"p90_us\":%.1f,"
			    "\"p99_us\":%.1f,\"p999_us\":%.1f}", a->probe.samples, a->probe.p50_us,
			    a->probe.p90_us, a->probe.p99_us, a->probe.p999_us);
	strbuf_addstr(&j, "}\n");

	struct { const char *suffix; struct strbuf *sb; } files[] = { { "prom", &p }, { "json", &j } };
	for (int f = 0; f < 2; f++) {
		char tmp[420];
		int fd;
		qos_state_path(a->x, files[f].suffix, path, sizeof(path));
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
			continue;
		/* readers see the old file or the new one, whole */
		if (write_full(fd, files[f].sb->buf, files[f].sb->len) || close(fd) ||
		    rename(tmp, path))
			unlink(tmp);
	}
	strbuf_release(&p);
	strbuf_release(&j);
	strbuf_release(&lab);
}

/* --------------------------------------------------------------- loop */

static void remove_metrics(const struct qos_ctx *x)
{
	char path[400];

	qos_state_path(x, "prom", path, sizeof(path));
	unlink(path);
	qos_state_path(x, "json", path, sizeof(path));
	unlink(path);
}

/*
 * A PSI trigger ("some STALL_US WINDOW_US" written to a pressure file, then
 * poll() for POLLPRI) wakes the agent within the window once LS has stalled
 * for a policy's threshold share of it. The policies still decide on their
 * own reading (ls_psi: the stall share since the last pass), so a trigger
 * only brings the pass forward: the blkio and memory policies react in
 * a fraction of the trigger's window (0.5 s, or 2 s without
 * CAP_SYS_RESOURCE) instead of up to an interval, which is most of an
 * I/O burst's damage to LS. Not available (no PSI, an old kernel, a
 * threshold of 0 or 100): the agent ticks as before.
 */
static int psi_trigger_open(const struct agent *a, const char *resource, unsigned percent)
{
	/* the kernel's smallest window; without CAP_SYS_RESOURCE (root in a
	 * container or sandbox) windows must be multiples of 2 s */
	static const unsigned window_us[] = { 500000, 2000000 };
	const char *dir = a->g[QOS_LS][0].psi_dir;
	char path[600], spec[64];
	int fd, err = 0;

	if (!dir[0] || percent == 0 || percent >= 100)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.pressure", dir, resource);
	for (size_t i = 0; i < sizeof(window_us) / sizeof(window_us[0]); i++) {
		if ((fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
			return -1;
		snprintf(spec, sizeof(spec), "some %u %u", window_us[i] / 100 * percent, window_us[i]);
		if (write(fd, spec, strlen(spec) + 1) >= 0)
			return fd;
		err = errno;
		close(fd);
		if (err != EINVAL)
			break;
	}
	anole_warn("qos: no PSI trigger on %s (%s): LS pressure is read every interval only",
		   path, strerror(err));
	return -1;
}

/*
 * Before BE's group moved to the top of the tree it was /<name>/be. An
 * agent upgraded in place moves what that group still holds into the new
 * one (left there, those tasks would run at full weight beside LS) and
 * removes it. Nothing else can be there: adopted groups may not lie in
 * /<name>.
 */
static void move_old_be(const struct qos_ctx *x)
{
	struct qos_group old;
	const char *all_dirs[QOS_NCTRL + 1], *dirs[QOS_NCTRL + 1];
	char rel[300];
	pid_t *all = NULL;
	size_t nall = 0, alloc = 0, moved = 0;
	int n = 0;

	snprintf(rel, sizeof(rel), "/%s/be", x->cfg.name);
	qos_group_paths(&x->host, rel, &old);
	for (int i = 0, nd = qos_group_dirs(&old, all_dirs); i < nd; i++) {
		struct stat st;

		if (!stat(all_dirs[i], &st) && S_ISDIR(st.st_mode))
			dirs[n++] = all_dirs[i];
	}
	if (!n)
		return;
	/* v1: a process is in the group of each hierarchy; gather them all
	 * first, then move each once */
	for (int i = 0; i < n; i++) {
		pid_t *pids;
		size_t np;

		if (qos_dir_pids(dirs[i], &pids, &np))
			continue;
		for (size_t k = 0; k < np; k++) {
			bool seen = false;

			for (size_t j = 0; j < nall && !seen; j++)
				seen = all[j] == pids[k];
			if (!seen) {
				xgrow(&all, &alloc, nall + 1, sizeof(*all));
				all[nall++] = pids[k];
			}
		}
		free(pids);
	}
	/* a process gone in between is no longer there to move */
	for (size_t k = 0; k < nall; k++)
		moved += !qos_group_attach(&x->own[QOS_BE], all[k]);
	free(all);
	for (int i = 0; i < n; i++)
		if (rmdir(dirs[i]) && errno != ENOENT)
			anole_warn("qos: cannot remove the old BE group %s: %s", dirs[i],
				   strerror(errno));
	anole_info("qos: the old BE group %s moved to %s (%zu process(es))", rel,
		   x->own[QOS_BE].rel, moved);
}

int qos_agent_run(struct qos_ctx *x, int ready_fd)
{
	struct agent a = { .x = x, .first = true, .be_budget_m = -1, .probe_fd = -1,
			   .psi_trigger_fd = { -1, -1 }, .io_calm_s = -1 };
	const struct qos_config *c = &x->cfg;
	char path[400];
	sigset_t set, old;
	int lock_fd = -1, sig_fd = -1, ret;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);

	if ((ret = take_lock(x, &lock_fd)))
		goto out;
	qos_state_path(x, "state", path, sizeof(path));
	/* restores what a crashed agent left first */
	if ((ret = qos_journal_open(&a.j, path)))
		goto out;
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		if ((ret = qos_group_create(&x->host, &x->own[cl])))
			goto out;
		a.g[cl] = xcalloc(1 + c->nadopt[cl], sizeof(struct qos_group));
		a.g[cl][0] = x->own[cl];
		a.ng[cl] = 1;
		for (size_t i = 0; i < c->nadopt[cl]; i++) {
			qos_group_paths(&x->host, c->adopt[cl][i].rel, &a.g[cl][a.ng[cl]]);
			a.g[cl][a.ng[cl]].adopted = true;
			a.g[cl][a.ng[cl]++].line = c->adopt[cl][i].line;
		}
	}
	move_old_be(x);
	a.capacity_m = c->cpu_suppress.capacity_millicpus ? c->cpu_suppress.capacity_millicpus
		: x->host.ncpus * 1000;
	a.cap_m = a.capacity_m;
	a.ls_p99_us = -1;
	{
		bool have = x->host.v2 ? x->host.v2_ctrl[QOS_CPUSET] : x->host.v1_root[QOS_CPUSET][0];
		const char *mode = c->cpu_suppress.mode;
		if (!strcmp(mode, "cpuset") && !have) {
			ret = anole_error_code(ENOENT, "qos: cpu_suppress.mode = \"cpuset\", but the "
					       "kernel has no cpuset controller here");
			goto out;
		}
		a.use_cpuset = !strcmp(mode, "cpuset") ||
			(!strcmp(mode, "auto") && have && x->host.ncpus >= c->cpu_suppress.cpuset_min_cpus);
	}
	find_disks(&a);
	sample(&a);
	anole_info("qos: agent '%s' running (pid %ld, cgroup %s, every %u ms, BE CPU budget "
		   "as %s)", c->name, (long)getpid(), x->host.v2 ? "v2" : "v1", c->interval_ms,
		   a.use_cpuset ? "a cpuset" : "a CFS quota");
	anole_daemon_notify(ready_fd, 0);
	ready_fd = -1;
	/* after the notification: the probe must not hold the daemon's pipe */
	if (c->probe.enabled)
		probe_start(&a, lock_fd);
	/* the first pass at once: cpu.idle and the memory and I/O policies need
	 * no usage rates (the first budget counts no usage yet and is corrected
	 * one interval later); then every interval */
	if ((sig_fd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		ret = anole_error_code(errno, "qos: signalfd: %s", strerror(errno));
		goto out;
	}
	if (c->blkio.enabled)
		a.psi_trigger_fd[0] = psi_trigger_open(&a, "io", c->blkio.psi_percent);
	if (c->memory.enabled)
		a.psi_trigger_fd[1] = psi_trigger_open(&a, "memory", c->memory.squeeze_psi_percent);
	for (double next = anole_mono_seconds();;) {
		/* a tick every interval_ms; a trigger brings a pass forward and
		 * the next tick is one interval after it */
		struct pollfd pf[3] = { { .fd = sig_fd, .events = POLLIN },
					{ .fd = a.psi_trigger_fd[0], .events = POLLPRI },
					{ .fd = a.psi_trigger_fd[1], .events = POLLPRI } };
		double wait_s = next - anole_mono_seconds();
		int n = 0;
		if (!a.first && wait_s > 0)
			n = poll(pf, 3, (int)ceil(wait_s * 1000));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = anole_error_code(errno, "qos: poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && (pf[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				anole_info("qos: %s, restoring %u knob(s)", strsignal((int)si.ssi_signo),
					   qos_journal_count(a.j));
				break;
			}
		}
		bool triggered = false;
		for (int k = 1; n > 0 && k < 3; k++) {
			if (pf[k].revents & POLLPRI) {
				triggered = true;
				if (k == 1)
					a.trig_share[2] = c->blkio.psi_percent;
				else
					a.trig_share[1] = c->memory.squeeze_psi_percent;
			}
			if (pf[k].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				/* LS's group went away: back to ticking */
				close(a.psi_trigger_fd[k - 1]);
				a.psi_trigger_fd[k - 1] = -1;
			}
		}
		if (n > 0 && !triggered)
			continue;
		if (triggered)
			a.triggered_passes++;
		next = anole_mono_seconds() + c->interval_ms / 1000.0;
		if (!a.first)
			sample(&a);
		probe_read(&a);
		if (c->cpu_idle.enabled)
			policy_cpu_idle(&a);
		if (c->interference.enabled)
			policy_interference(&a);
		if (c->cpu_suppress.enabled)
			policy_cpu_suppress(&a);
		if (c->cpu_burst.enabled)
			policy_cpu_burst(&a);
		if (c->memory.enabled)
			policy_memory(&a);
		if (c->evict.enabled)
			policy_evict(&a);
		if (c->blkio.enabled)
			policy_blkio(&a);
		a.probe_fresh = false;
		memset(a.trig_share, 0, sizeof(a.trig_share));
		a.passes++;
		write_metrics(&a);
		a.first = false;
	}
out:
	probe_stop(&a);
	for (int k = 0; k < 2; k++)
		if (a.psi_trigger_fd[k] >= 0)
			close(a.psi_trigger_fd[k]);
	if (sig_fd >= 0)
		close(sig_fd);
	if (a.j) {
		int r = qos_journal_close(a.j);
		if (!ret)
			ret = r;
	}
	remove_metrics(x);
	/* failed before running: the parent reports the error */
	anole_daemon_notify(ready_fd, ret);
	for (int cl = 0; cl < QOS_NCLASSES; cl++)
		free(a.g[cl]);
	if (lock_fd >= 0)
		close(lock_fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/* -------------------------------------------------------------- status */

int qos_status(struct qos_ctx *x, struct strbuf *out, bool json)
{
	pid_t holder = lock_holder(x);
	char path[400], *metrics = NULL;

	if (holder > 0) {
		qos_state_path(x, "json", path, sizeof(path));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			struct stat st;
			if (!fstat(fd, &st) && st.st_size > 0 && st.st_size < (1 << 20)) {
				metrics = xcalloc(1, (size_t)st.st_size + 1);
				if (pread_full(fd, metrics, (size_t)st.st_size, 0)) {
					free(metrics);
					metrics = NULL;
				} else {
					size_t n = strlen(metrics);
					while (n && metrics[n - 1] == '\n')
						metrics[--n] = 0;
				}
			}
			close(fd);
		}
	}
	if (json) {
		strbuf_addstr(out, "{\"name\":");
		strbuf_add_json_string(out, x->cfg.name, strlen(x->cfg.name));
		strbuf_addch(out, ',');
		qos_host_describe(&x->host, out, true);
		strbuf_addstr(out, ",\"classes\":{");
		for (int cl = 0; cl < QOS_NCLASSES; cl++) {
			strbuf_addf(out, "%s\"%s\":{\"group\":", cl ? "," : "", qos_class_name(cl));
			strbuf_add_json_string(out, x->own[cl].rel, strlen(x->own[cl].rel));
			strbuf_addf(out, ",\"exists\":%s,\"adopted\":[",
				    qos_group_has(&x->own[cl], x->host.v2 ? QOS_CPU : QOS_MEMORY) ||
				    qos_group_has(&x->own[cl], QOS_CPU) ? "true" : "false");
			for (size_t i = 0; i < x->cfg.nadopt[cl]; i++) {
				strbuf_addstr(out, i ? "," : "");
				strbuf_add_json_string(out, x->cfg.adopt[cl][i].rel,
						       strlen(x->cfg.adopt[cl][i].rel));
			}
			strbuf_addstr(out, "]}");
		}
		strbuf_addf(out, "},\"agent\":{\"running\":%s,\"pid\":%ld,\"metrics\":%s}}\n",
			    holder ? "true" : "false", (long)(holder > 0 ? holder : 0),
			    metrics ? metrics : "null");
		free(metrics);
		return 0;
	}
	qos_host_describe(&x->host, out, false);
	for (int cl = 0; cl < QOS_NCLASSES; cl++) {
		strbuf_addf(out, "class %-4s     %s%s\n", qos_class_name(cl), x->own[cl].rel,
			    qos_group_has(&x->own[cl], QOS_CPU) || qos_group_has(&x->own[cl], QOS_MEMORY)
			    ? "" : " (not created yet)");
		for (size_t i = 0; i < x->cfg.nadopt[cl]; i++)
			strbuf_addf(out, "  adopted      %s\n", x->cfg.adopt[cl][i].rel);
	}
	if (holder)
		strbuf_addf(out, "agent:         running (pid %ld)\n", (long)holder);
	else
		strbuf_addstr(out, "agent:         not running\n");
	if (metrics) {
		strbuf_addstr(out, "metrics:       ");
		strbuf_addstr(out, metrics);
		strbuf_addch(out, '\n');
	}
	free(metrics);
	return 0;
}
