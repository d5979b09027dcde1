// SPDX-License-Identifier: Apache-2.0
/*
 * What the kernel has and the class groups. On a v1 host (this project's
 * machine: cpu, cpuacct, memory and blkio each on a v1 hierarchy, cgroup2
 * mounted with no controllers) a class group is one directory per
 * controller plus a mirrored cgroup2 directory, which carries the group's
 * PSI files (v1 has none); a task placed in the class joins all of them.
 * On a v2 host it is one directory.
 */
#include "qos.h"

#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const class_names[QOS_NCLASSES] = { "ls", "mid", "be" };
static const char *const ctrl_names[QOS_NCTRL] = { "cpu", "cpuacct", "memory", "blkio",
						     "cpuset" };
/* v2 names of the controllers ("io" for blkio; cpuacct is part of cpu) */
static const char *const v2_ctrl_names[QOS_NCTRL] = { "cpu", "cpu", "memory", "io",
							"cpuset" };

const char *qos_class_name(enum qos_class_id c)
{
	return c < QOS_NCLASSES ? class_names[c] : "?";
}

int qos_class_parse(const char *s, enum qos_class_id *out)
{
	for (int c = 0; c < QOS_NCLASSES; c++)
		if (!strcmp(s, class_names[c])) {
			*out = c;
			return 0;
		}
	return anole_error_code(EINVAL, "unknown class '%s' (ls, mid or be)", s);
}

static bool has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *p = list; p && *p;) {
		const char *e = p + strcspn(p, ", \n");
		if ((size_t)(e - p) == n && !memcmp(p, tok, n))
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

/* mountinfo escapes spaces etc. as \ooo */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

int qos_host_detect(struct qos_host *h, const char *mode, const char *v2_root)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], buf[512];
	bool any_v1 = false;

	memset(h, 0, sizeof(*h));
	if (!f)
		return anole_error(errno, "qos: cannot read /proc/self/mountinfo");
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts ... - fstype source superopts */
		char *sep = strstr(line, " - "), *fields[6] = { 0 }, *save = NULL, *p = line;
		char fstype[32], source[256], superopts[1024];

		if (!sep)
			continue;
		*sep = 0;
		for (int i = 0; i < 5; i++, p = NULL)
			if (!(fields[i] = strtok_r(p, " ", &save)))
				break;
		if (!fields[4] || sscanf(sep + 3, "%31s %255s %1023s", fstype, source, superopts) != 3)
			continue;
		unescape(fields[4]);
		if (!strcmp(fstype, "cgroup2")) {
			if (!h->v2_root[0] && strlen(fields[4]) < sizeof(h->v2_root))
				snprintf(h->v2_root, sizeof(h->v2_root), "%s", fields[4]);
		} else if (!strcmp(fstype, "cgroup")) {
			for (int c = 0; c < QOS_NCTRL; c++)
				if (has_token(superopts, ctrl_names[c]) && !h->v1_root[c][0] &&
				    strlen(fields[4]) < sizeof(h->v1_root[c])) {
					snprintf(h->v1_root[c], sizeof(h->v1_root[c]), "%s", fields[4]);
					any_v1 = true;
				}
		}
	}
	fclose(f);
	if (v2_root && *v2_root) {
		struct stat st;
		if (stat(v2_root, &st) || !S_ISDIR(st.st_mode))
			return anole_error_code(ENOENT, "qos: cgroup2 root %s is not a directory",
						v2_root);
		snprintf(h->v2_root, sizeof(h->v2_root), "%s", v2_root);
	}
	if (h->v2_root[0]) {
		snprintf(buf, sizeof(buf), "%s/cgroup.controllers", h->v2_root);
		char ctl[512];
		if (anole_read_value(buf, ctl, sizeof(ctl)) >= 0)
			for (int c = 0; c < QOS_NCTRL; c++)
				h->v2_ctrl[c] = has_token(ctl, v2_ctrl_names[c]);
	}
	if (!mode || !strcmp(mode, "auto"))
		/* v2 when the cpu controller is on cgroup2 or nothing is on v1 */
		h->v2 = h->v2_root[0] && (h->v2_ctrl[QOS_CPU] || !any_v1);
	else if (!strcmp(mode, "v2"))
		h->v2 = true;
	else if (!strcmp(mode, "v1"))
		h->v2 = false;
	else
		return anole_error_code(EINVAL, "qos: cgroup mode '%s': want auto, v1 or v2", mode);
	if (h->v2 && !h->v2_root[0])
		return anole_error_code(ENOENT, "qos: cgroup v2 wanted, but no cgroup2 is mounted");
	if (!h->v2 && !any_v1)
		return anole_error_code(ENOENT, "qos: cgroup v1 wanted, but no v1 controller is mounted");
	h->psi = access("/proc/pressure/cpu", R_OK) == 0;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	h->ncpus = n > 0 ? (unsigned)n : 1;
	return 0;
}

static bool file_exists(const char *dir, const char *name)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

void qos_host_describe(const struct qos_host *h, struct strbuf *out, bool json)
{
	/* the knobs the policies use, looked up in the root groups */
	const char *cpu = h->v2 ? h->v2_root : h->v1_root[QOS_CPU];
	const char *mem = h->v2 ? h->v2_root : h->v1_root[QOS_MEMORY];
	bool cpu_ok = h->v2 ? h->v2_ctrl[QOS_CPU] : cpu[0] != 0;
	bool mem_ok = h->v2 ? h->v2_ctrl[QOS_MEMORY] : mem[0] != 0;
	bool io_ok = h->v2 ? h->v2_ctrl[QOS_BLKIO] : h->v1_root[QOS_BLKIO][0] != 0;
	/* knobs a root group lacks exist in child groups: look at the kernel's
	 * own first-level groups too, else assume by version */
	bool idle = cpu_ok && (file_exists(cpu, "cpu.idle") || h->v2);
	bool burst = cpu_ok && file_exists(cpu, h->v2 ? "cpu.max.burst" : "cpu.cfs_burst_us");
	bool v2_high = h->v2 && mem_ok;
	bool cpuset_ok = h->v2 ? h->v2_ctrl[QOS_CPUSET] : h->v1_root[QOS_CPUSET][0] != 0;

	if (h->v2 && cpu_ok && !burst)
		burst = true; /* cpu.max.burst is absent from the root group only */
	if (json) {
		strbuf_addf(out, "\"cgroup\":\"%s\",\"cgroup2_root\":", h->v2 ? "v2" : "v1");
		strbuf_add_json_string(out, h->v2_root, strlen(h->v2_root));
		strbuf_addstr(out, ",\"v1_roots\":{");
		for (int c = 0; c < QOS_NCTRL; c++) {
			strbuf_addf(out, "%s\"%s\":", c ? "," : "", ctrl_names[c]);
			strbuf_add_json_string(out, h->v1_root[c], strlen(h->v1_root[c]));
		}
		strbuf_addf(out, "},\"cpus\":%u,\"psi\":%s,\"knobs\":{\"cpu_quota\":%s,"
			    "\"cpu_idle\":%s,\"cpu_burst\":%s,\"memory_limit\":%s,"
			    "\"memory_high\":%s,\"io_throttle\":%s,\"cpuset\":%s}",
			    h->ncpus, h->psi ? "true" : "false", cpu_ok ? "true" : "false",
			    idle ? "true" : "false", burst ? "true" : "false",
			    mem_ok ? "true" : "false", v2_high ? "true" : "false",
			    io_ok ? "true" : "false", cpuset_ok ? "true" : "false");
		return;
	}
	strbuf_addf(out, "cgroup:        %s\n", h->v2 ? "v2" : "v1");
	if (!h->v2)
		for (int c = 0; c < QOS_NCTRL; c++)
			strbuf_addf(out, "  %-8s     %s\n", ctrl_names[c],
				    h->v1_root[c][0] ? h->v1_root[c] : "(not mounted)");
	strbuf_addf(out, "cgroup2:       %s%s\n", h->v2_root[0] ? h->v2_root : "(not mounted)",
		    !h->v2 && h->v2_root[0] ? " (PSI of mirrored groups)" : "");
	strbuf_addf(out, "cpus:          %u\n", h->ncpus);
	strbuf_addf(out, "psi:           %s\n", h->psi ? "yes" : "no (CONFIG_PSI / psi=1)");
	strbuf_addf(out, "cpu quota:     %s\n", cpu_ok ? (h->v2 ? "cpu.max" : "cpu.cfs_quota_us") : "no");
	strbuf_addf(out, "cpu idle:      %s\n", idle ? "cpu.idle" : "no");
	strbuf_addf(out, "cpu burst:     %s\n", burst ? (h->v2 ? "cpu.max.burst" : "cpu.cfs_burst_us")
		    : (cpu_ok ? "no (quota scaling on throttling instead)" : "no"));
	strbuf_addf(out, "memory:        %s\n", !mem_ok ? "no" : h->v2 ? "memory.high, memory.max"
		    : "memory.limit_in_bytes (temporary squeeze)");
	strbuf_addf(out, "cpuset:        %s\n", cpuset_ok ? "cpuset.cpus" : "no");
	strbuf_addf(out, "io throttle:   %s\n", !io_ok ? "no" : h->v2 ? "io.max" :
		    "blkio.throttle.{read,write}_bps_device");
}

void qos_group_paths(const struct qos_host *h, const char *rel, struct qos_group *g)
{
	const char *r = rel[0] == '/' ? rel + 1 : rel;

	memset(g, 0, sizeof(*g));
	snprintf(g->rel, sizeof(g->rel), "/%s", r);
	for (int c = 0; c < QOS_NCTRL; c++) {
		/* v2: one directory for all (cpuacct is its cpu.stat); a knob of a
		 * controller the tree lacks is simply absent */
		const char *root = h->v2 ? h->v2_root : h->v1_root[c];
		if (root[0])
			snprintf(g->dir[c], sizeof(g->dir[c]), "%s%s%s", root, *r ? "/" : "", r);
	}
	if (h->v2_root[0] && h->psi)
		snprintf(g->psi_dir, sizeof(g->psi_dir), "%s%s%s", h->v2_root, *r ? "/" : "", r);
}

bool qos_group_has(const struct qos_group *g, enum qos_ctrl c)
{
	struct stat st;

	return g->dir[c][0] && !stat(g->dir[c], &st) && S_ISDIR(st.st_mode);
}

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int r = mkdir(path, 0755);
		*p = '/';
		if (r && errno != EEXIST)
			return -errno;
	}
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * A new v1 cpuset group has no CPUs and no memory nodes, and a task cannot
 * join it (ENOSPC): give each level below the root that has none its
 * parent's, as cgroup.clone_children would. v2 groups inherit by themselves.
 */
static int cpuset_fill(const char *root, const char *dir)
{
	static const char *const files[2] = { "cpuset.cpus", "cpuset.mems" };
	size_t rootlen = strlen(root);
	char path[600], parent[600], val[512];

	if (strncmp(dir, root, rootlen) || dir[rootlen] != '/')
		return 0;
	for (const char *p = dir + rootlen + 1;; p++) {
		if (*p && *p != '/')
			continue;
		size_t n = (size_t)(p - dir);
		const char *slash = memrchr(dir, '/', n);
		for (int f = 0; f < 2; f++) {
			snprintf(path, sizeof(path), "%.*s/%s", (int)n, dir, files[f]);
			if (anole_read_value(path, val, sizeof(val)) < 0 || val[0])
				continue;
			snprintf(parent, sizeof(parent), "%.*s/%s", (int)(slash - dir), dir, files[f]);
			int ret = anole_read_value(parent, val, sizeof(val));
			if (ret >= 0)
				ret = anole_write_value(path, val);
			if (ret < 0)
				return anole_error(-ret, "qos: cannot give %s its parent's %s", path,
						   files[f]);
		}
		if (!*p)
			return 0;
	}
}

int qos_group_create(const struct qos_host *h, struct qos_group *g)
{
	char dirs[QOS_NCTRL + 1][512];
	int n = 0;

	for (int c = 0; c < QOS_NCTRL; c++)
		if (g->dir[c][0])
			snprintf(dirs[n++], sizeof(dirs[0]), "%s", g->dir[c]);
	if (g->psi_dir[0])
		snprintf(dirs[n++], sizeof(dirs[0]), "%s", g->psi_dir);
	for (int i = 0; i < n; i++) {
		int ret = mkdir_p(dirs[i]);
		if (ret)
			return anole_error(-ret, "qos: cannot create cgroup %s", dirs[i]);
	}
	if (!h->v2 && g->dir[QOS_CPUSET][0]) {
		int ret = cpuset_fill(h->v1_root[QOS_CPUSET], g->dir[QOS_CPUSET]);
		if (ret)
			return ret;
	}
	if (h->v2) {
		/* let the class groups have the controllers the kernel offers: the
		 * parent (anole's own subtree) enables them for its children */
		char parent[512], sc[600], want[64] = "";
		snprintf(parent, sizeof(parent), "%s", g->dir[QOS_CPU]);
		char *slash = strrchr(parent, '/');
		if (slash && slash > parent + strlen(h->v2_root)) {
			*slash = 0;
			for (int c = 0; c < QOS_NCTRL; c++)
				if (h->v2_ctrl[c] && c != QOS_CPUACCT) {
					strcat(want, want[0] ? " +" : "+");
					strcat(want, v2_ctrl_names[c]);
				}
			snprintf(sc, sizeof(sc), "%s/cgroup.subtree_control", parent);
			if (want[0] && anole_write_value(sc, want))
				anole_warn("qos: cannot enable '%s' in %s (are they enabled in the "
					   "groups above?)", want, sc);
		}
	}
	return 0;
}

int qos_group_dirs(const struct qos_group *g, const char *dirs[QOS_NCTRL + 1])
{
	int n = 0;

	for (int c = 0; c <= QOS_NCTRL; c++) {
		const char *d = c < QOS_NCTRL ? g->dir[c] : g->psi_dir;
		bool dup = false;

		for (int i = 0; i < n; i++)
			dup |= !strcmp(dirs[i], d);
		if (d[0] && !dup)
			dirs[n++] = d;
	}
	return n;
}

int qos_group_attach(const struct qos_group *g, pid_t pid)
{
	char path[600], val[32];
	const char *dirs[QOS_NCTRL + 1];
	int n = qos_group_dirs(g, dirs);

	snprintf(val, sizeof(val), "%ld", (long)(pid ? pid : getpid()));
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", dirs[i]);
		int ret = anole_write_value(path, val);
		if (ret)
			return anole_error(-ret, "qos: cannot move pid %s into %s", val, dirs[i]);
	}
	return 0;
}

int qos_group_pids(const struct qos_group *g, pid_t **pids, size_t *n)
{
	return qos_dir_pids(g->dir[QOS_CPU][0] ? g->dir[QOS_CPU] : g->dir[QOS_MEMORY], pids, n);
}

int qos_dir_pids(const char *d, pid_t **pids, size_t *n)
{
	char path[600], line[32];
	size_t alloc = 0;
	FILE *f;

	*pids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/cgroup.procs", d);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		long v = strtol(line, NULL, 10);
		if (v <= 0)
			continue;
		xgrow(pids, &alloc, *n + 1, sizeof(**pids));
		(*pids)[(*n)++] = (pid_t)v;
	}
	fclose(f);
	return 0;
}

/* "key value" lines (cpu.stat, memory.stat) */
static bool stat_key(const char *text, const char *key, uint64_t *v)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p;) {
		if (!strncmp(p, key, n) && p[n] == ' ') {
			*v = strtoull(p + n + 1, NULL, 10);
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

void qos_group_counters(const struct qos_host *h, const struct qos_group *g,
			struct qos_group_counters *c)
{
	char path[600], buf[2048];
	uint64_t v;

	memset(c, 0, sizeof(*c));
	if (h->v2) {
		snprintf(path, sizeof(path), "%s/cpu.stat", g->dir[QOS_CPU]);
		if (anole_read_value(path, buf, sizeof(buf)) >= 0 && stat_key(buf, "usage_usec", &v)) {
			c->have_cpu = true;
			c->cpu_usage_ns = v * 1000;
			if (stat_key(buf, "nr_periods", &v))
				c->nr_periods = v;
			if (stat_key(buf, "nr_throttled", &v))
				c->nr_throttled = v;
			if (stat_key(buf, "throttled_usec", &v))
				c->throttled_ns = v * 1000;
		}
		snprintf(path, sizeof(path), "%s/memory.current", g->dir[QOS_MEMORY]);
		c->have_mem = !anole_read_u64(path, &c->mem_usage);
		return;
	}
	snprintf(path, sizeof(path), "%s/cpuacct.usage", g->dir[QOS_CPUACCT]);
	c->have_cpu = g->dir[QOS_CPUACCT][0] && !anole_read_u64(path, &c->cpu_usage_ns);
	snprintf(path, sizeof(path), "%s/cpu.stat", g->dir[QOS_CPU]);
	if (g->dir[QOS_CPU][0] && anole_read_value(path, buf, sizeof(buf)) >= 0) {
		if (stat_key(buf, "nr_periods", &v))
			c->nr_periods = v;
		if (stat_key(buf, "nr_throttled", &v))
			c->nr_throttled = v;
		if (stat_key(buf, "throttled_time", &v))
			c->throttled_ns = v;
	}
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", g->dir[QOS_MEMORY]);
	c->have_mem = g->dir[QOS_MEMORY][0] && !anole_read_u64(path, &c->mem_usage);
}

int qos_psi_read(const char *dir, const char *resource, struct qos_psi *p)
{
	char path[600], buf[512];
	int ret;

	memset(p, 0, sizeof(*p));
	if (dir && *dir)
		snprintf(path, sizeof(path), "%s/%s.pressure", dir, resource);
	else
		snprintf(path, sizeof(path), "/proc/pressure/%s", resource);
	if ((ret = anole_read_value(path, buf, sizeof(buf))) < 0)
		return ret;
	for (char *l = buf; l && *l;) {
		double a10;
		unsigned long long total;
		char kind[8];
		if (sscanf(l, "%7s avg10=%lf avg60=%*f avg300=%*f total=%llu", kind, &a10,
			   &total) == 3) {
			if (!strcmp(kind, "some")) {
				p->some_avg10 = a10;
				p->some_total = total;
			} else if (!strcmp(kind, "full")) {
				p->full_avg10 = a10;
				p->full_total = total;
			}
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return 0;
}

int qos_cpulist_parse(const char *s, struct qos_cpumask *m)
{
	memset(m, 0, sizeof(*m));
	while (*s == ' ' || *s == '\n')
		s++;
	while (*s) {
		char *end;
		unsigned long lo, hi;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		lo = hi = strtoul(s, &end, 10);
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (lo > hi || hi >= QOS_MAX_CPUS)
			return -ERANGE;
		for (unsigned long c = lo; c <= hi; c++)
			m->w[c / 64] |= UINT64_C(1) << (c % 64);
		s = end;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
		else
			break;
	}
	return 0;
}

static bool cpu_in(const struct qos_cpumask *m, unsigned c)
{
	return m->w[c / 64] >> (c % 64) & 1;
}

void qos_cpulist_format(const struct qos_cpumask *m, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (unsigned c = 0; c < QOS_MAX_CPUS; c++) {
		if (!cpu_in(m, c))
			continue;
		unsigned e = c;
		while (e + 1 < QOS_MAX_CPUS && cpu_in(m, e + 1))
			e++;
		int k = e > c ? snprintf(buf + n, size - n, "%s%u-%u", n ? "," : "", c, e)
			      : snprintf(buf + n, size - n, "%s%u", n ? "," : "", c);
		if (k < 0 || (size_t)k >= size - n) {
			buf[n] = 0; /* whole ranges only */
			return;
		}
		n += (size_t)k;
		c = e;
	}
}

unsigned qos_cpumask_count(const struct qos_cpumask *m)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(m->w) / sizeof(m->w[0]); i++)
		n += (unsigned)__builtin_popcountll(m->w[i]);
	return n;
}

int qos_node_cpu(uint64_t *busy_ns, uint64_t *total_ns)
{
	char buf[512];
	unsigned long long v[10] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	int ret = anole_read_value("/proc/stat", buf, sizeof(buf));

	if (ret < 0)
		return ret;
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7]) < 8)
		return -EINVAL;
	/* busy: all but idle and iowait; guest time is inside user already */
	uint64_t total = 0, busy;
	for (int i = 0; i < 8; i++)
		total += v[i];
	busy = total - v[3] - v[4];
	*busy_ns = busy * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
	*total_ns = total * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
	return 0;
}

int qos_node_mem(uint64_t *total, uint64_t *available)
{
	char buf[4096];
	int ret = anole_read_value("/proc/meminfo", buf, sizeof(buf));
	char *p;

	if (ret < 0)
		return ret;
	if (!(p = strstr(buf, "MemTotal:")))
		return -EINVAL;
	*total = strtoull(p + 9, NULL, 10) * 1024;
	if (!(p = strstr(buf, "MemAvailable:")))
		return -EINVAL;
	*available = strtoull(p + 13, NULL, 10) * 1024;
	return 0;
}
