// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's configuration: TOML (lib/toml.c), every key optional, unknown
 * keys refused (a misspelt threshold silently left at its default is worse
 * than an error). The whole file is checked, including that adopted cgroups
 * exist and that no cgroup is in two classes, before anything is changed.
 */
#include "qos.h"

#include "anole/error.h"
#include "anole/toml.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void qos_config_defaults(struct qos_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "anole.qos");
	snprintf(c->state_dir, sizeof(c->state_dir), "/run/anole/qos");
	snprintf(c->cgroup_mode, sizeof(c->cgroup_mode), "auto");
	c->interval_ms = 1000;
	c->cpu_suppress.enabled = true;
	/* koordlet's cpuSuppressThresholdPercent is 65. With BE at cpu.idle a
	 * waking LS task preempts BE, so what costs LS is not BE's CPU but the
	 * windows in which BE's quota has run out and the CPUs go idle: the
	 * shorter those, the lower LS's tail (bench/qos.sh, 5 rounds: nginx's
	 * p99 1.08x alone with this default against 1.24x at 90 % with 10 %
	 * reserved, docs/anole-qos.md). The
	 * threshold keeps the node 5 % short of saturation, where a capped VM's
	 * host stalls it (bench/host_stall.sh: none at 95 %) */
	c->cpu_suppress.threshold_percent = 95;
	c->cpu_suppress.reserve_percent = 0;
	c->cpu_suppress.min_millicpus = 100;
	snprintf(c->cpu_suppress.mode, sizeof(c->cpu_suppress.mode), "auto");
	/* with fewer, whole CPUs are too coarse: on 2 CPUs BE gets one CPU
	 * at most, 0.54 of the CPU LS leaves idle against 0.69-0.84 as a
	 * quota, though nginx's p99 was lower (bench/qos.sh, docs/anole-qos.md) */
	c->cpu_suppress.cpuset_min_cpus = 4;
	c->interference.target_p99_us = 1000;
	c->interference.decrease_percent = 50;
	c->interference.increase_millicpus = 100;
	c->interference.stale_intervals = 3;
	c->interference.run_queue_wait = false;
	c->cpu_idle.enabled = true;
	c->cpu_burst.enabled = true;
	c->cpu_burst.percent = 100;
	c->cpu_burst.busy_percent = 80;
	c->memory.enabled = true;
	c->memory.squeeze_available_percent = 10;
	c->memory.squeeze_psi_percent = 20;
	c->memory.squeeze_ratio_percent = 90;
	c->memory.high_percent = 0;
	c->evict.enabled = true;
	c->evict.available_percent = 5;
	c->evict.psi_percent = 40;
	c->evict.cooldown_ms = 5000;
	c->blkio.enabled = true;
	c->blkio.psi_percent = 20;
	c->blkio.read_bps = 10u << 20;
	c->blkio.write_bps = 10u << 20;
	/* a throttle that works takes LS's pressure down at once: lifted on
	 * the first calm interval it would flap every other interval, BE's
	 * queued I/O landing on LS each time it opens */
	c->blkio.hold_ms = 10000;
	c->probe.rate_hz = 1000;
}

void qos_config_free(struct qos_config *c)
{
	for (int i = 0; i < QOS_NCLASSES; i++) {
		free(c->adopt[i]);
		c->adopt[i] = NULL;
		c->nadopt[i] = 0;
	}
}

struct ctx {
	const char *file;
	struct qos_config *c;
};

static int err_at(const struct ctx *x, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int err_at(const struct ctx *x, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return anole_error_code(EINVAL, "%s:%u: %s", x->file, line, msg);
}

/* A key of one table: what it is and where its value goes. */
enum kind { K_BOOL, K_UINT, K_U64, K_STR };
struct key {
	const char *name;
	enum kind kind;
	void *dst;
	size_t size;            /* K_STR: buffer size */
	uint64_t min, max;      /* K_UINT, K_U64 */
};

static int read_keys(const struct ctx *x, const struct toml_value *t, const char *table,
		     const struct key *keys, size_t nkeys, const char *const *skip)
{
	for (size_t i = 0; i < t->u.table.n; i++) {
		const char *k = t->u.table.kv[i].key;
		const struct toml_value *v = t->u.table.kv[i].value;
		const struct key *key = NULL;
		bool skipped = false;

		for (const char *const *s = skip; s && *s; s++)
			skipped |= !strcmp(*s, k);
		if (skipped)
			continue;
		for (size_t j = 0; j < nkeys; j++)
			if (!strcmp(keys[j].name, k))
				key = &keys[j];
		if (!key)
			return err_at(x, v->line, "unknown setting '%s%s%s'", table ? table : "",
				      table ? "." : "", k);
		switch (key->kind) {
		case K_BOOL:
			if (v->type != TOML_BOOL)
				return err_at(x, v->line, "'%s' takes true or false", k);
			*(bool *)key->dst = v->u.boolean;
			break;
		case K_UINT:
		case K_U64:
			if (v->type != TOML_INTEGER)
				return err_at(x, v->line, "'%s' takes an integer", k);
			if (v->u.integer < 0 || (uint64_t)v->u.integer < key->min ||
			    (uint64_t)v->u.integer > key->max)
				return err_at(x, v->line, "'%s' = %lld is out of range (%llu..%llu)", k,
					      (long long)v->u.integer, (unsigned long long)key->min,
					      (unsigned long long)key->max);
			if (key->kind == K_UINT)
				*(unsigned *)key->dst = (unsigned)v->u.integer;
			else
				*(uint64_t *)key->dst = (uint64_t)v->u.integer;
			break;
		case K_STR:
			if (v->type != TOML_STRING)
				return err_at(x, v->line, "'%s' takes a string", k);
			if (strlen(v->u.string) >= key->size)
				return err_at(x, v->line, "'%s' is too long", k);
			snprintf(key->dst, key->size, "%s", v->u.string);
			break;
		}
	}
	return 0;
}

#define U(n, field, lo, hi) { n, K_UINT, &(field), 0, lo, hi }
#define B(n, field) { n, K_BOOL, &(field), 0, 0, 0 }
#define S(n, field) { n, K_STR, (field), sizeof(field), 0, 0 }

static const struct toml_value *table(const struct ctx *x, const struct toml_value *root,
				      const char *name, int *ret)
{
	const struct toml_value *t = toml_get(root, name);

	if (t && t->type != TOML_TABLE)
		*ret = err_at(x, t->line, "'%s' is a table ([%s])", name, name);
	return t && t->type == TOML_TABLE ? t : NULL;
}

static int read_class(const struct ctx *x, const struct toml_value *root, enum qos_class_id id)
{
	static const char *const cls_skip[] = { "cgroups", NULL };
	int ret = 0;
	const struct toml_value *t = table(x, root, qos_class_name(id), &ret), *list;

	if (ret || !t)
		return ret;
	if ((ret = read_keys(x, t, qos_class_name(id), NULL, 0, cls_skip)))
		return ret;
	if (!(list = toml_get(t, "cgroups")))
		return 0;
	if (list->type != TOML_ARRAY)
		return err_at(x, list->line, "'cgroups' is a list of cgroup paths");
	for (size_t i = 0; i < list->u.array.n; i++) {
		const struct toml_value *v = list->u.array.items[i];
		struct qos_adopt *a;
		if (v->type != TOML_STRING || v->u.string[0] != '/' ||
		    strlen(v->u.string) >= sizeof(a->rel) || strstr(v->u.string, "/..") ||
		    strstr(v->u.string, "//"))
			return err_at(x, v->line, "a cgroup is a path from the hierarchy's root "
				      "(\"/docker/abc\")");
		xgrow(&x->c->adopt[id], &(size_t){ x->c->nadopt[id] },
		      x->c->nadopt[id] + 1, sizeof(*a));
		a = &x->c->adopt[id][x->c->nadopt[id]++];
		snprintf(a->rel, sizeof(a->rel), "%s", v->u.string);
		/* "/a/" and "/a" are one cgroup */
		size_t n = strlen(a->rel);
		while (n > 1 && a->rel[n - 1] == '/')
			a->rel[--n] = 0;
		a->line = v->line;
	}
	return 0;
}

static bool nested(const char *a, const char *b)
{
	size_t n = strlen(a);

	return !strcmp(a, b) || (!strncmp(a, b, n) && (b[n] == '/' || n == 1));
}

void qos_own_group_rel(const struct qos_config *c, enum qos_class_id cl, char *buf, size_t size)
{
	/*
	 * cpu.idle makes a group idle only among its siblings. Below /<name>,
	 * BE would be idle against anole's LS but compete at full weight with
	 * everything beside /<name>: system services and, above all, LS
	 * cgroups adopted from a container runtime, which live elsewhere. At
	 * the top, it yields to all of them.
	 */
	if (cl == QOS_BE)
		snprintf(buf, size, "/%s-be", c->name);
	else
		snprintf(buf, size, "/%s/%s", c->name, qos_class_name(cl));
}

/* Checks against the host: adopted groups exist, none is in two classes. */
static int check(const struct ctx *x, const struct qos_host *h)
{
	struct qos_config *c = x->c;
	char own[300];

	for (int a = 0; a < QOS_NCLASSES; a++)
		for (size_t i = 0; i < c->nadopt[a]; i++) {
			const struct qos_adopt *p = &c->adopt[a][i];
			struct qos_group g;

			if (!strcmp(p->rel, "/"))
				return err_at(x, p->line, "the root cgroup cannot be adopted");
			snprintf(own, sizeof(own), "/%s", c->name);
			if (nested(p->rel, own) || nested(own, p->rel))
				return err_at(x, p->line, "cgroup %s overlaps anole's own subtree %s",
					      p->rel, own);
			qos_own_group_rel(c, QOS_BE, own, sizeof(own));
			if (nested(p->rel, own) || nested(own, p->rel))
				return err_at(x, p->line, "cgroup %s overlaps anole's own BE group %s",
					      p->rel, own);
			qos_group_paths(h, p->rel, &g);
			for (int k = 0; k < QOS_NCTRL; k++) {
				if (!g.dir[k][0] || k == QOS_BLKIO || k == QOS_CPUACCT || k == QOS_CPUSET)
					continue;
				if (!qos_group_has(&g, k))
					return err_at(x, p->line, "cgroup %s does not exist (no %s)",
						      p->rel, g.dir[k]);
			}
			for (int b = 0; b < QOS_NCLASSES; b++)
				for (size_t j = 0; j < c->nadopt[b]; j++) {
					const struct qos_adopt *q = &c->adopt[b][j];
					if (q == p || (b == a && j < i))
						continue;
					if (b == a && !strcmp(p->rel, q->rel))
						return err_at(x, q->line, "cgroup %s is listed twice "
							      "(also line %u)", q->rel, p->line);
					if (b != a && (nested(p->rel, q->rel) || nested(q->rel, p->rel)))
						return err_at(x, q->line > p->line ? q->line : p->line,
							      "cgroup %s (%s, line %u) and %s (%s, line %u) "
							      "put one cgroup in two classes", p->rel,
							      qos_class_name(a), p->line, q->rel,
							      qos_class_name(b), q->line);
				}
		}
	return 0;
}

static int parse(const struct ctx *x, const struct toml_value *root)
{
	struct qos_config *c = x->c;
	static const char *const top_skip[] = { "ls", "mid", "be", "cpu_suppress", "cpu_idle",
		"cpu_burst", "memory", "evict", "blkio", "probe", "interference", NULL };
	const struct key top[] = {
		S("name", c->name), S("state_dir", c->state_dir), S("cgroup_mode", c->cgroup_mode),
		S("cgroup2_root", c->cgroup2_root), U("interval_ms", c->interval_ms, 10, 3600000),
	};
	const struct key cpu_suppress[] = {
		B("enabled", c->cpu_suppress.enabled),
		U("threshold_percent", c->cpu_suppress.threshold_percent, 1, 100),
		U("reserve_percent", c->cpu_suppress.reserve_percent, 0, 100),
		U("min_millicpus", c->cpu_suppress.min_millicpus, 10, 1 << 20),
		U("capacity_millicpus", c->cpu_suppress.capacity_millicpus, 0, 1 << 20),
		S("mode", c->cpu_suppress.mode),
		U("cpuset_min_cpus", c->cpu_suppress.cpuset_min_cpus, 1, QOS_MAX_CPUS),
		/* the kernel's bounds for a CFS period */
		U("period_us", c->cpu_suppress.period_us, 1000, 1000000),
	};
	const struct key interference[] = {
		B("enabled", c->interference.enabled),
		U("target_p99_us", c->interference.target_p99_us, 1, 60000000),
		S("latency_file", c->interference.latency_file),
		U("decrease_percent", c->interference.decrease_percent, 1, 90),
		U("increase_millicpus", c->interference.increase_millicpus, 1, 1 << 20),
		U("stale_intervals", c->interference.stale_intervals, 1, 1000),
		B("run_queue_wait", c->interference.run_queue_wait),
	};
	const struct key cpu_idle[] = { B("enabled", c->cpu_idle.enabled) };
	const struct key cpu_burst[] = {
		B("enabled", c->cpu_burst.enabled), U("percent", c->cpu_burst.percent, 0, 1000),
		U("busy_percent", c->cpu_burst.busy_percent, 1, 100),
	};
	const struct key memory[] = {
		B("enabled", c->memory.enabled),
		U("squeeze_available_percent", c->memory.squeeze_available_percent, 0, 100),
		U("squeeze_psi_percent", c->memory.squeeze_psi_percent, 0, 100),
		U("squeeze_ratio_percent", c->memory.squeeze_ratio_percent, 10, 100),
		U("high_percent", c->memory.high_percent, 0, 100),
	};
	const struct key evict[] = {
		B("enabled", c->evict.enabled),
		U("available_percent", c->evict.available_percent, 0, 100),
		U("psi_percent", c->evict.psi_percent, 0, 100),
		U("cooldown_ms", c->evict.cooldown_ms, 0, 3600000),
	};
	static const char *const blkio_skip[] = { "devices", NULL };
	const struct key blkio[] = {
		B("enabled", c->blkio.enabled), U("psi_percent", c->blkio.psi_percent, 0, 100),
		{ "read_bps", K_U64, &c->blkio.read_bps, 0, 4096, UINT64_C(1) << 50 },
		{ "write_bps", K_U64, &c->blkio.write_bps, 0, 4096, UINT64_C(1) << 50 },
		U("hold_ms", c->blkio.hold_ms, 0, 3600000),
	};
	const struct key probe[] = {
		B("enabled", c->probe.enabled), U("rate_hz", c->probe.rate_hz, 1, 10000),
	};
	/* each table's key count from its array, so a new key cannot be left out */
#define KEYS(k) k, sizeof(k) / sizeof((k)[0])
	struct { const char *name; const struct key *k; size_t n; const char *const *skip; } tabs[] = {
		{ "probe", KEYS(probe), NULL },
		{ "cpu_suppress", KEYS(cpu_suppress), NULL }, { "cpu_idle", KEYS(cpu_idle), NULL },
		{ "interference", KEYS(interference), NULL },
		{ "cpu_burst", KEYS(cpu_burst), NULL }, { "memory", KEYS(memory), NULL },
		{ "evict", KEYS(evict), NULL }, { "blkio", KEYS(blkio), blkio_skip },
	};
#undef KEYS
	int ret = read_keys(x, root, NULL, top, sizeof(top) / sizeof(top[0]), top_skip);

	for (size_t i = 0; !ret && i < sizeof(tabs) / sizeof(tabs[0]); i++) {
		const struct toml_value *t = table(x, root, tabs[i].name, &ret);
		if (t && !ret)
			ret = read_keys(x, t, tabs[i].name, tabs[i].k, tabs[i].n, tabs[i].skip);
	}
	for (int i = 0; !ret && i < QOS_NCLASSES; i++)
		ret = read_class(x, root, i);
	if (ret)
		return ret;
	const struct toml_value *v = toml_get(root, "name");
	for (const char *p = c->name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("._-", *p))
			return err_at(x, v ? v->line : 0, "name '%s': letters, digits, '.', '_' "
				      "and '-' only", c->name);
	if (!c->name[0] || c->name[0] == '.')
		return err_at(x, v ? v->line : 0, "name must not be empty or start with '.'");
	/* /<name>-be is the BE group of the agent named <name> */
	size_t nlen = strlen(c->name);
	if (nlen > 3 && !strcmp(c->name + nlen - 3, "-be"))
		return err_at(x, v ? v->line : 0, "name '%s' ends in '-be': /%s is the BE group of "
			      "an agent named '%.*s'", c->name, c->name, (int)(nlen - 3), c->name);
	if ((v = toml_get(root, "cgroup_mode")) && strcmp(c->cgroup_mode, "auto") &&
	    strcmp(c->cgroup_mode, "v1") && strcmp(c->cgroup_mode, "v2"))
		return err_at(x, v->line, "cgroup_mode '%s': want auto, v1 or v2", c->cgroup_mode);
	const struct toml_value *cs = toml_get(root, "cpu_suppress");
	if (cs && (v = toml_get(cs, "mode")) && strcmp(c->cpu_suppress.mode, "auto") &&
	    strcmp(c->cpu_suppress.mode, "quota") && strcmp(c->cpu_suppress.mode, "cpuset"))
		return err_at(x, v->line, "cpu_suppress.mode '%s': want auto, quota or cpuset",
			      c->cpu_suppress.mode);
	/* writing a quota refills BE's runtime and restarts its period (the
	 * kernel's tg_set_cfs_bandwidth), and the agent may write one every
	 * interval: a period longer than half of it would never throttle BE */
	if (cs && (v = toml_get(cs, "period_us")) &&
	    (uint64_t)c->cpu_suppress.period_us * 2 > (uint64_t)c->interval_ms * 1000)
		return err_at(x, v->line, "cpu_suppress.period_us %u is over half of "
			      "interval_ms (%u ms): each quota write restarts the period, so "
			      "BE would never be held", c->cpu_suppress.period_us, c->interval_ms);
	const struct toml_value *it = toml_get(root, "interference");
	if (it && (v = toml_get(it, "latency_file")) && c->interference.latency_file[0] &&
	    c->interference.latency_file[0] != '/')
		return err_at(x, v->line, "interference.latency_file must be an absolute path");
	if (c->interference.enabled && !c->interference.latency_file[0] && !c->probe.enabled)
		return err_at(x, it && (v = toml_get(it, "enabled")) ? v->line : 0,
			      "interference needs an LS latency: [probe] enabled = true, or "
			      "interference.latency_file");
	if (c->interference.enabled && !c->cpu_suppress.enabled)
		return err_at(x, it && (v = toml_get(it, "enabled")) ? v->line : 0,
			      "interference caps cpu_suppress's budget: [cpu_suppress] must be on");
	if ((v = toml_get(root, "state_dir")) && c->state_dir[0] != '/')
		return err_at(x, v->line, "state_dir must be an absolute path");
	const struct toml_value *bt = toml_get(root, "blkio"), *devs;
	if (bt && (devs = toml_get(bt, "devices"))) {
		if (devs->type != TOML_ARRAY || devs->u.array.n > 8)
			return err_at(x, devs->line, "'devices' is a list of at most 8 "
				      "\"MAJOR:MINOR\" strings");
		for (size_t i = 0; i < devs->u.array.n; i++) {
			const struct toml_value *d = devs->u.array.items[i];
			unsigned ma, mi;
			char tail;
			if (d->type != TOML_STRING ||
			    sscanf(d->u.string, "%u:%u%c", &ma, &mi, &tail) != 2)
				return err_at(x, d->line, "a device is \"MAJOR:MINOR\"");
			snprintf(c->blkio.devices[c->blkio.ndevices++], 16, "%u:%u", ma, mi);
		}
	}
	if (c->evict.available_percent > c->memory.squeeze_available_percent &&
	    c->memory.enabled && c->evict.enabled) {
		v = bt = toml_get(root, "evict");
		v = bt ? toml_get(bt, "available_percent") : NULL;
		anole_warn("%s:%u: evict.available_percent is above memory.squeeze_available_percent:"
			   " BE is evicted before it is squeezed", x->file, v ? v->line : 0);
	}
	return 0;
}

int qos_config_parse_text(struct qos_config *c, const char *name, const char *text, size_t len)
{
	struct ctx x = { .file = name, .c = c };
	struct toml_value *root;
	char err[256];
	int ret;

	root = toml_parse(text, len, err, sizeof(err));
	if (!root)
		return anole_error_code(EINVAL, "%s:%s", name,
					err + (strncmp(err, "line ", 5) ? 0 : 5));
	ret = parse(&x, root);
	toml_free(root);
	return ret;
}

int qos_config_load(struct qos_config *c, const char *file, const struct qos_host *h)
{
	struct stat st;
	char *text;
	int fd, ret;

	(void)h;
	if (!file)
		return 0;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return anole_error(errno, "qos: cannot open the configuration %s", file);
	if (fstat(fd, &st) || st.st_size > TOML_MAX_INPUT) {
		close(fd);
		return anole_error_code(EFBIG, "qos: %s is too big", file);
	}
	text = xmalloc((size_t)st.st_size + 1);
	ssize_t n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(text);
		return anole_error(n < 0 ? errno : EIO, "qos: cannot read %s", file);
	}
	ret = qos_config_parse_text(c, file, text, (size_t)n);
	free(text);
	return ret;
}

int qos_config_check(struct qos_config *c, const char *file, const struct qos_host *h)
{
	struct ctx x = { .file = file ? file : "(defaults)", .c = c };

	return check(&x, h);
}
