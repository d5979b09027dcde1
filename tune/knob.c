// SPDX-License-Identifier: Apache-2.0
/*
 * Knobs: the parameter file, where a knob lives on this kernel, and reading
 * and writing its value. Changes go through the journal (journal.c); this
 * file never decides whether a change is allowed.
 */
#include "tune.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const domain_names[TUNE_NDOMAINS] = {
	"sysctl", "sysfs", "cpu", "debugfs", "file", "command",
};

const char *tune_domain_name(enum tune_domain d)
{
	return d < TUNE_NDOMAINS ? domain_names[d] : "?";
}

int tune_domain_parse(const char *s, enum tune_domain *d)
{
	for (int i = 0; i < TUNE_NDOMAINS; i++)
		if (!strcmp(s, domain_names[i])) {
			*d = (enum tune_domain)i;
			return 0;
		}
	return -EINVAL;
}

/* ------------------------------------------------------- parameter file */

static void param_free(struct tune_param *p)
{
	free(p->name);
	for (size_t i = 0; i < p->nchoices; i++)
		free(p->choices[i]);
	free(p->choices);
	free(p->dflt);
	free(p->run);
	memset(p, 0, sizeof(*p));
}

void tune_params_free(struct tune_params *p)
{
	for (size_t i = 0; i < p->n; i++)
		param_free(&p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* Split off the next whitespace-separated token; NULL at the end. */
static char *next_token(char **s)
{
	char *p = *s, *start;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return NULL;
	start = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = '\0';
	*s = p;
	return start;
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !*end && !errno && isfinite(*out);
}

static bool parse_int(const char *s, double *out)
{
	char *end;
	long long v;

	if (!*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	/* a double holds every integer up to 2^53; 2^50 leaves the unit
	 * position's round trip (v -> u -> v) exact */
	if (*end || errno || v > (1LL << 50) || v < -(1LL << 50))
		return false;
	*out = (double)v;
	return true;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 4096)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* The value's unit position; -EINVAL if it is not one of the parameter's. */
int tune_param_unit(const struct tune_param *p, const char *value, double *u)
{
	double v;

	if (p->type == TUNE_ENUM) {
		for (size_t i = 0; i < p->nchoices; i++)
			if (!strcmp(p->choices[i], value)) {
				*u = p->nchoices > 1 ? (i + 0.5) / p->nchoices : 0.5;
				return 0;
			}
		return -EINVAL;
	}
	if (!(p->type == TUNE_INT ? parse_int(value, &v) : parse_double(value, &v)))
		return -EINVAL;
	if (v < p->lo || v > p->hi)
		return -ERANGE;
	*u = p->hi > p->lo ? (v - p->lo) / (p->hi - p->lo) : 0.5;
	return 0;
}

char *tune_param_value(const struct tune_param *p, double u)
{
	struct strbuf sb = STRBUF_INIT;
	double v, step;

	if (!(u >= 0))
		u = 0;
	if (u > 1)
		u = 1;
	if (p->type == TUNE_ENUM) {
		/* equal-width cells, so that every choice is as likely */
		size_t i = (size_t)(u * p->nchoices);

		if (i >= p->nchoices)
			i = p->nchoices - 1;
		return xstrdup(p->choices[i]);
	}
	v = p->lo + u * (p->hi - p->lo);
	step = p->step > 0 ? p->step : (p->type == TUNE_INT ? 1 : 0);
	if (step > 0) {
		v = p->lo + floor((v - p->lo) / step + 0.5) * step;
		while (v > p->hi)
			v -= step;
	}
	if (p->type == TUNE_INT)
		strbuf_addf(&sb, "%lld", (long long)llround(v));
	else {
		/* short, unless rounding to 6 digits leaves the range */
		double back;

		if (v < p->lo)
			v = p->lo;
		if (v > p->hi)  /* lo + 1 * (hi - lo) may round above hi */
			v = p->hi;
		strbuf_addf(&sb, "%.6g", v);
		back = strtod(sb.buf, NULL);
		if (back < p->lo || back > p->hi) {
			strbuf_reset(&sb);
			strbuf_addf(&sb, "%.17g", v);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static int parse_line(char *line, unsigned lineno, const char *what, struct tune_param *p)
{
	char *s = line, *tok, *type, *spec;

	memset(p, 0, sizeof(*p));
	p->line = lineno;
	tok = next_token(&s);
	if (tune_domain_parse(tok, &p->domain))
		return anole_error_code(EINVAL, "%s:%u: unknown domain '%s' (sysctl, sysfs, cpu, "
					"debugfs, file or command)", what, lineno, tok);
	tok = next_token(&s);
	if (!tok || !valid_name(tok))
		return anole_error_code(EINVAL, "%s:%u: %s: a name is missing or has control "
					"characters", what, lineno, domain_names[p->domain]);
	if (p->domain == TUNE_FILE && tok[0] != '/')
		return anole_error_code(EINVAL, "%s:%u: file knob '%s' is not an absolute path",
					what, lineno, tok);
	if (strstr(tok, "..") && p->domain != TUNE_COMMAND && p->domain != TUNE_FILE)
		return anole_error_code(EINVAL, "%s:%u: '%s' has a '..'", what, lineno, tok);
	p->name = xstrdup(tok);
	type = next_token(&s);
	spec = next_token(&s);
	if (!type || !spec)
		return anole_error_code(EINVAL, "%s:%u: %s %s: expected 'int LO..HI', 'float LO..HI' "
					"or 'enum A,B,...'", what, lineno, domain_names[p->domain],
					p->name);
	if (!strcmp(type, "int") || !strcmp(type, "float")) {
		char *dots = strstr(spec, "..");
		bool isint = type[0] == 'i';

		p->type = isint ? TUNE_INT : TUNE_FLOAT;
		if (!dots)
			return anole_error_code(EINVAL, "%s:%u: %s: range '%s' is not LO..HI", what,
						lineno, p->name, spec);
		*dots = '\0';
		if (!(isint ? parse_int(spec, &p->lo) : parse_double(spec, &p->lo)) ||
		    !(isint ? parse_int(dots + 2, &p->hi) : parse_double(dots + 2, &p->hi)))
			return anole_error_code(EINVAL, "%s:%u: %s: range '%s..%s' does not hold two "
						"%s numbers", what, lineno, p->name, spec, dots + 2,
						isint ? "integer" : "finite");
		if (p->lo >= p->hi)
			return anole_error_code(EINVAL, "%s:%u: %s: empty range %s..%s (LO must be "
						"below HI)", what, lineno, p->name, spec, dots + 2);
	} else if (!strcmp(type, "enum")) {
		char *save = NULL;

		p->type = TUNE_ENUM;
		for (char *c = strtok_r(spec, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
			for (size_t i = 0; i < p->nchoices; i++)
				if (!strcmp(p->choices[i], c))
					return anole_error_code(EINVAL, "%s:%u: %s: choice '%s' is "
								"given twice", what, lineno,
								p->name, c);
			if (p->nchoices >= 1024)
				return anole_error_code(EINVAL, "%s:%u: %s: more than 1024 choices",
							what, lineno, p->name);
			p->choices = xrealloc(p->choices, (p->nchoices + 1) * sizeof(char *));
			p->choices[p->nchoices++] = xstrdup(c);
		}
		if (p->nchoices < 2)
			return anole_error_code(EINVAL, "%s:%u: %s: empty range: an enum needs two "
						"choices or more", what, lineno, p->name);
	} else {
		return anole_error_code(EINVAL, "%s:%u: %s: unknown type '%s' (int, float or enum)",
					what, lineno, p->name, type);
	}
	while ((tok = next_token(&s))) {
		if (!strcmp(tok, "step") && p->type != TUNE_ENUM) {
			char *v = next_token(&s);

			if (!v || !(p->type == TUNE_INT ? parse_int(v, &p->step) : parse_double(v, &p->step)) ||
			    p->step <= 0)
				return anole_error_code(EINVAL, "%s:%u: %s: step needs a positive "
							"number", what, lineno, p->name);
			if (p->step > p->hi - p->lo)
				return anole_error_code(EINVAL, "%s:%u: %s: empty range: step %s is "
							"wider than the range", what, lineno,
							p->name, v);
		} else if (!strcmp(tok, "default")) {
			char *v = next_token(&s);
			double u;

			if (!v)
				return anole_error_code(EINVAL, "%s:%u: %s: default needs a value",
							what, lineno, p->name);
			if (tune_param_unit(p, v, &u))
				return anole_error_code(EINVAL, "%s:%u: %s: default '%s' is outside "
							"its range", what, lineno, p->name, v);
			free(p->dflt);
			p->dflt = xstrdup(v);
		} else if (!strcmp(tok, "run") && p->domain == TUNE_COMMAND) {
			while (*s == ' ' || *s == '\t')
				s++;
			if (!*s)
				return anole_error_code(EINVAL, "%s:%u: %s: run needs a program",
							what, lineno, p->name);
			p->run = xstrdup(s);
			break;
		} else {
			return anole_error_code(EINVAL, "%s:%u: %s: unexpected '%s' (step S, default "
						"V%s)", what, lineno, p->name, tok,
						p->domain == TUNE_COMMAND ? ", run PROGRAM" : "");
		}
	}
	if (p->domain == TUNE_COMMAND && !p->run)
		return anole_error_code(EINVAL, "%s:%u: command knob %s needs 'run PROGRAM' at the "
					"end of the line", what, lineno, p->name);
	return 0;
}

int tune_params_parse(const char *text, size_t len, const char *what, struct tune_params *out)
{
	struct tune_params ps = { NULL, 0 };
	unsigned lineno = 0;
	size_t off = 0;
	int ret = 0;

	out->v = NULL;
	out->n = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		char *line, *hash, *p;
		struct tune_param param;

		lineno++;
		if (memchr(text + off, '\0', n)) {
			ret = anole_error_code(EINVAL, "%s:%u: a NUL byte", what, lineno);
			goto fail;
		}
		line = xstrndup(text + off, n);
		off += n + (nl ? 1 : 0);
		/* a comment ends the line, except inside a command knob's program */
		hash = strchr(line, '#');
		if (hash && (!strstr(line, " run ") || hash < strstr(line, " run ")))
			*hash = '\0';
		for (p = line + strlen(line); p > line && isspace((unsigned char)p[-1]); p--)
			p[-1] = '\0';
		p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p) {
			free(line);
			continue;
		}
		ret = parse_line(p, lineno, what, &param);
		free(line);
		if (ret) {
			param_free(&param);
			goto fail;
		}
		for (size_t i = 0; i < ps.n; i++)
			if (ps.v[i].domain == param.domain && !strcmp(ps.v[i].name, param.name)) {
				ret = anole_error_code(EINVAL, "%s:%u: %s %s is already on line %u",
						       what, lineno, domain_names[param.domain],
						       param.name, ps.v[i].line);
				param_free(&param);
				goto fail;
			}
		if (ps.n >= TUNE_MAX_PARAMS) {
			ret = anole_error_code(EINVAL, "%s:%u: more than %d parameters", what, lineno,
					       TUNE_MAX_PARAMS);
			param_free(&param);
			goto fail;
		}
		ps.v = xrealloc(ps.v, (ps.n + 1) * sizeof(*ps.v));
		ps.v[ps.n++] = param;
	}
	if (!ps.n) {
		ret = anole_error_code(EINVAL, "%s: no parameters", what);
		goto fail;
	}
	*out = ps;
	return 0;
fail:
	tune_params_free(&ps);
	return ret;
}

int tune_params_load(const char *path, struct tune_params *out)
{
	struct strbuf sb = STRBUF_INIT;
	int ret = anole_read_file(path, 1 << 20, &sb);

	if (ret) {
		strbuf_release(&sb);
		return anole_error(-ret, "%s", path);
	}
	ret = tune_params_parse(sb.buf ? sb.buf : "", sb.len, path, out);
	strbuf_release(&sb);
	return ret;
}

/* ----------------------------------------------------------- resolving */

/*
 * Scheduler tunables that left /proc/sys for debugfs in 5.13 (and
 * min_granularity_ns, renamed base_slice_ns by EEVDF in 6.6). Each row: the
 * sysctl, then its debugfs names, newest last.
 */
static const char *const sched_moved[][3] = {
	{ "kernel/sched_min_granularity_ns", "sched/min_granularity_ns", "sched/base_slice_ns" },
	{ "kernel/sched_latency_ns", "sched/latency_ns", NULL },
	{ "kernel/sched_wakeup_granularity_ns", "sched/wakeup_granularity_ns", NULL },
	{ "kernel/sched_migration_cost_ns", "sched/migration_cost_ns", NULL },
	{ "kernel/sched_nr_migrate", "sched/nr_migrate", NULL },
	{ "kernel/sched_tunable_scaling", "sched/tunable_scaling", NULL },
	{ "kernel/numa_balancing_scan_delay_ms", "sched/numa_balancing/scan_delay_ms", NULL },
	{ "kernel/numa_balancing_scan_period_min_ms", "sched/numa_balancing/scan_period_min_ms", NULL },
	{ "kernel/numa_balancing_scan_period_max_ms", "sched/numa_balancing/scan_period_max_ms", NULL },
	{ "kernel/numa_balancing_scan_size_mb", "sched/numa_balancing/scan_size_mb", NULL },
};

static const char *root_proc_sys = "/proc/sys/";
static const char *root_sys = "/sys/";
static const char *root_debug = "/sys/kernel/debug/";

static void add_target(struct tune_target **t, size_t *n, enum tune_domain d, const char *path)
{
	*t = xrealloc(*t, (*n + 1) * sizeof(**t));
	(*t)[*n].domain = d;
	(*t)[*n].path = xstrdup(path);
	(*n)++;
}

void tune_targets_free(struct tune_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].path);
	free(t);
}

static bool is_file(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode);
}

/* sysctl names: dots are separators, slashes are accepted too */
static char *sysctl_rel(const char *name)
{
	char *rel = xstrdup(name);

	if (!strchr(rel, '/'))
		for (char *p = rel; *p; p++)
			if (*p == '.')
				*p = '/';
	return rel;
}

/* debugfs under kernel lockdown: the files are there, but opening one is
 * EPERM even for root; such a knob is not on this kernel for tune's use */
static bool debugfs_denied(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EPERM || errno == EACCES;
}

static int resolve_glob(const char *root, const char *rel, enum tune_domain d,
			struct tune_target **t, size_t *n)
{
	struct strbuf sb = STRBUF_INIT;
	glob_t g;

	while (*rel == '/')
		rel++;
	strbuf_addf(&sb, "%s%s", root, rel);
	if (!glob(sb.buf, GLOB_NOSORT, NULL, &g)) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (is_file(g.gl_pathv[i]) &&
			    (d != TUNE_DEBUGFS || !debugfs_denied(g.gl_pathv[i])))
				add_target(t, n, d, g.gl_pathv[i]);
		globfree(&g);
	}
	strbuf_release(&sb);
	return *n ? 0 : -ENOENT;
}

int tune_resolve(enum tune_domain domain, const char *name, const char *run,
		 struct tune_target **targets, size_t *n)
{
	struct tune_target *t = NULL;
	size_t cnt = 0;
	int ret = -ENOENT;

	*targets = NULL;
	*n = 0;
	switch (domain) {
	case TUNE_SYSCTL: {
		char *rel = sysctl_rel(name);

		if (!strstr(rel, "..") && !strchr(rel, '*'))
			ret = resolve_glob(root_proc_sys, rel, TUNE_SYSCTL, &t, &cnt);
		for (size_t i = 0; ret && i < ARRAY_SIZE(sched_moved); i++)
			if (!strcmp(rel, sched_moved[i][0]))
				for (int k = 2; ret && k >= 1; k--)
					if (sched_moved[i][k])
						ret = resolve_glob(root_debug, sched_moved[i][k],
								   TUNE_DEBUGFS, &t, &cnt);
		free(rel);
		break;
	}
	case TUNE_DEBUGFS:
		ret = strstr(name, "..") ? -EINVAL : resolve_glob(root_debug, name, TUNE_DEBUGFS,
								  &t, &cnt);
		/* older kernels: the sysctl it was before 5.13 */
		for (size_t i = 0; ret == -ENOENT && i < ARRAY_SIZE(sched_moved); i++)
			for (int k = 1; k <= 2; k++)
				if (sched_moved[i][k] && !strcmp(name, sched_moved[i][k]))
					ret = resolve_glob(root_proc_sys, sched_moved[i][0],
							   TUNE_SYSCTL, &t, &cnt);
		break;
	case TUNE_SYSFS:
		if (!strncmp(name, "/sys/", 5))
			name += 5;
		ret = strstr(name, "..") ? -EINVAL : resolve_glob(root_sys, name, TUNE_SYSFS,
								  &t, &cnt);
		break;
	case TUNE_CPU: {
		struct strbuf rel = STRBUF_INIT;
		const char *file = !strcmp(name, "governor") ? "scaling_governor" : name;

		if (strchr(file, '/') || strchr(file, '*') || strstr(file, "..")) {
			ret = -EINVAL;
			break;
		}
		strbuf_addf(&rel, "devices/system/cpu/cpu[0-9]*/cpufreq/%s", file);
		ret = resolve_glob(root_sys, rel.buf, TUNE_CPU, &t, &cnt);
		strbuf_release(&rel);
		break;
	}
	case TUNE_FILE: {
		/* the file may be absent (it is created, and removed on rollback),
		 * but its directory must be there */
		char *dir = xstrdup(name), *slash = strrchr(dir, '/');
		struct stat st;

		if (name[0] != '/') {
			ret = -EINVAL;
		} else {
			if (slash)
				slash[slash == dir ? 1 : 0] = '\0';
			ret = !stat(dir, &st) && S_ISDIR(st.st_mode) ? 0 : -ENOENT;
			if (!ret)
				add_target(&t, &cnt, TUNE_FILE, name);
		}
		free(dir);
		break;
	}
	case TUNE_COMMAND:
		if (!run || !*run) {
			ret = -EINVAL;
			break;
		}
		add_target(&t, &cnt, TUNE_COMMAND, run);
		ret = 0;
		break;
	default:
		ret = -EINVAL;
	}
	if (ret) {
		tune_targets_free(t, cnt);
		return ret;
	}
	*targets = t;
	*n = cnt;
	return 0;
}

/* One of a moved scheduler knob's debugfs files is there but cannot be
 * opened, even by root: the kernel is locked down. */
static bool moved_knob_denied(size_t i)
{
	for (int k = 1; k < 3; k++) {
		char path[300];

		if (!sched_moved[i][k])
			continue;
		snprintf(path, sizeof(path), "%s%s", root_debug, sched_moved[i][k]);
		if (is_file(path) && debugfs_denied(path))
			return true;
	}
	return false;
}

const char *tune_missing_hint(enum tune_domain domain, const char *name)
{
	char *rel = sysctl_rel(name);
	bool moved = false, denied = false;

	for (size_t i = 0; i < ARRAY_SIZE(sched_moved); i++)
		for (int k = 0; k < 3; k++)
			if (sched_moved[i][k] && !strcmp(domain == TUNE_SYSCTL ? rel : name,
							  sched_moved[i][k]) &&
			    (domain == TUNE_SYSCTL || domain == TUNE_DEBUGFS)) {
				moved = true;
				/* the knob's own file: sched/debug may be readable
				 * where the knobs beside it are not */
				denied = denied || moved_knob_denied(i);
			}
	free(rel);
	if (denied)
		return " (a scheduler knob: in debugfs since 5.13, which this kernel does not "
		       "let even root open: lockdown)";
	if (moved)
		return access(root_debug, X_OK) || !is_file("/sys/kernel/debug/sched/debug") ?
		       " (a scheduler knob: in debugfs since 5.13, and debugfs is not mounted "
		       "at /sys/kernel/debug)" :
		       " (a scheduler knob: neither in /proc/sys nor in debugfs here)";
	if (domain == TUNE_CPU)
		return " (no cpufreq driver)";
	return "";
}

/* ------------------------------------------------------- values */

/* `sh -c 'PROG "$@"' sh ARGS...`: stdout captured (up to 64 KiB). */
static int run_program(const char *prog, const char *a1, const char *a2, struct strbuf *out)
{
	int pfd[2], status;
	pid_t pid;
	char buf[4096];
	struct strbuf script = STRBUF_INIT;

	if (pipe2(pfd, O_CLOEXEC))
		return anole_error(errno, "pipe");
	strbuf_addf(&script, "%s \"$@\"", prog);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		strbuf_release(&script);
		return anole_error(errno, "fork");
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		execl("/bin/sh", "sh", "-c", script.buf, "sh", a1, a2, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	strbuf_release(&script);
	for (;;) {
		ssize_t r = read(pfd[0], buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out && out->len < 65536)
			strbuf_add(out, buf, (size_t)r);
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return anole_error(errno, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return anole_error_code(EIO, "command knob: `%s %s%s%s` failed (%s %d)", prog, a1,
					a2 ? " " : "", a2 ? a2 : "",
					WIFEXITED(status) ? "exit status" : "signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 0;
}

static void chomp(struct strbuf *sb)
{
	while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == ' '))
		strbuf_setlen(sb, sb->len - 1);
}

/* "always [madvise] never" -> "madvise": the selection, as it is written back */
static void bracket_selection(struct strbuf *sb)
{
	char *open = sb->buf ? strchr(sb->buf, '[') : NULL;
	char *close_ = open ? strchr(open, ']') : NULL;

	if (open && close_ && !memchr(open + 1, ' ', (size_t)(close_ - open - 1))) {
		size_t n = (size_t)(close_ - open - 1);

		memmove(sb->buf, open + 1, n);
		strbuf_setlen(sb, n);
	}
}

int tune_target_get(const struct tune_target *t, char **value)
{
	struct strbuf sb = STRBUF_INIT;
	int ret;

	*value = NULL;
	if (t->domain == TUNE_COMMAND) {
		ret = run_program(t->path, "get", NULL, &sb);
	} else {
		ret = anole_read_file(t->path, 1 << 20, &sb);
		if (ret)
			ret = anole_error(-ret, "%s", t->path);
	}
	if (ret) {
		strbuf_release(&sb);
		return ret;
	}
	chomp(&sb);
	if (t->domain == TUNE_SYSFS || t->domain == TUNE_CPU || t->domain == TUNE_DEBUGFS)
		bracket_selection(&sb);
	*value = strbuf_detach(&sb, NULL);
	return 0;
}

int tune_write_output(const char *path, const char *data, size_t len)
{
	struct anole_output out;
	int ret = anole_output_open(&out, path);

	if (ret)
		return ret;
	ret = write_full(out.fd, data, len);
	if (ret) {
		anole_error(-ret, "%s", path);
		anole_output_abort(&out);
		return ret;
	}
	return anole_output_commit(&out);
}

int tune_mkdir_p(const char *dir, mode_t mode)
{
	char *d = xstrdup(dir);
	int ret = 0;

	for (char *p = d + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(d, mode) && errno != EEXIST) {
				ret = -errno;
				break;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	free(d);
	return ret;
}

int tune_target_set(const struct tune_target *t, const char *value)
{
	struct strbuf sb = STRBUF_INIT;
	int ret;

	if (t->domain == TUNE_COMMAND)
		return run_program(t->path, "set", value, NULL);
	strbuf_addstr(&sb, value);
	strbuf_addch(&sb, '\n');
	ret = anole_write_whole(t->path, sb.buf, sb.len, t->domain == TUNE_FILE, t->domain == TUNE_FILE);
	strbuf_release(&sb);
	if (ret)
		return anole_error(-ret, "%s %s: writing '%s'", tune_domain_name(t->domain),
				   t->path, value);
	return 0;
}

bool tune_value_same(const char *a, const char *b)
{
	for (;;) {
		bool sa = isspace((unsigned char)*a), sb = isspace((unsigned char)*b);

		if (sa || sb) {
			if (!(sa && sb))
				return false;
			while (isspace((unsigned char)*a))
				a++;
			while (isspace((unsigned char)*b))
				b++;
			continue;
		}
		if (*a != *b)
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

/* ------------------------------------------------------- hex fields */

void tune_hex_add(struct strbuf *sb, const char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	if (!n)
		strbuf_addch(sb, '-');
	for (size_t i = 0; i < n; i++) {
		strbuf_addch(sb, digits[(unsigned char)p[i] >> 4]);
		strbuf_addch(sb, digits[(unsigned char)p[i] & 15]);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode HEX (or "-" for empty) into sb; false if malformed. */
bool tune_hex_decode(const char *s, struct strbuf *sb)
{
	size_t n = strlen(s);

	strbuf_reset(sb);
	if (!strcmp(s, "-"))
		return true;
	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		strbuf_addch(sb, (char)(hi << 4 | lo));
	}
	return true;
}

