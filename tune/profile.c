// SPDX-License-Identifier: Apache-2.0
/*
 * Static profiles (tuned's idea, KeenTune's "expert" half): INI-like text,
 * one section per knob domain, `include=` in [main] to inherit.
 *
 *   [main]
 *   summary=what it is for
 *   include=throughput
 *   [sysctl]
 *   net.core.somaxconn=4096
 *   [command]
 *   workers=4
 *   workers.run=/etc/app/set-workers
 *
 * Applying goes through the journal (journal.c); the values applied are
 * recorded in STATE/applied so that `verify` can report drift later.
 */
#include "tune.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ANOLE_TUNE_PROFILES
#define ANOLE_TUNE_PROFILES "/usr/share/anole/tune/profiles"
#endif
#ifndef ANOLE_TUNE_PROFILES_INSTALLED
#define ANOLE_TUNE_PROFILES_INSTALLED "/usr/share/anole/tune/profiles"
#endif

#define MAX_INCLUDE_DEPTH 8

bool tune_profile_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64 || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

int tune_profile_dirs(char ***dirs, size_t *n)
{
	const char *env = getenv("ANOLE_TUNE_PROFILE_PATH");
	char **v = NULL;
	size_t cnt = 0;

	if (env && *env) {
		char *copy = xstrdup(env), *save = NULL;

		for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
			v = xrealloc(v, (cnt + 1) * sizeof(char *));
			v[cnt++] = xstrdup(d);
		}
		free(copy);
	}
	const char *fixed[] = { "/etc/anole/tune/profiles", ANOLE_TUNE_PROFILES_INSTALLED,
				ANOLE_TUNE_PROFILES };
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		bool dup = false;

		for (size_t k = 0; k < cnt; k++)
			dup |= !strcmp(v[k], fixed[i]);
		if (dup)
			continue;
		v = xrealloc(v, (cnt + 1) * sizeof(char *));
		v[cnt++] = xstrdup(fixed[i]);
	}
	*dirs = v;
	*n = cnt;
	return 0;
}

static void free_dirs(char **d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i]);
	free(d);
}

const char *tune_profile_save_dir(void)
{
	static char buf[4096];
	const char *env = getenv("ANOLE_TUNE_PROFILE_PATH");

	if (env && *env) {
		size_t n = strcspn(env, ":");

		snprintf(buf, sizeof(buf), "%.*s", (int)n, env);
		return buf;
	}
	return "/etc/anole/tune/profiles";
}

static char *find_profile(const char *name)
{
	char **dirs;
	size_t n;
	char *found = NULL;

	tune_profile_dirs(&dirs, &n);
	for (size_t i = 0; i < n && !found; i++) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addf(&sb, "%s/%s.conf", dirs[i], name);
		if (!access(sb.buf, R_OK))
			found = strbuf_detach(&sb, NULL);
		strbuf_release(&sb);
	}
	free_dirs(dirs, n);
	return found;
}

void tune_profile_free(struct tune_profile *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
		free(p->v[i].run);
		free(p->v[i].from);
	}
	free(p->v);
	free(p->name);
	free(p->summary);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

static struct tune_setting *find_setting(struct tune_profile *p, enum tune_domain d,
					 const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].domain == d && !strcmp(p->v[i].name, name))
			return &p->v[i];
	return NULL;
}

static void set_setting(struct tune_profile *p, enum tune_domain d, const char *name,
			const char *value, const char *run, const char *from)
{
	struct tune_setting *s = find_setting(p, d, name);

	if (!s) {
		p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
		s = &p->v[p->n++];
		memset(s, 0, sizeof(*s));
		s->domain = d;
		s->name = xstrdup(name);
	}
	if (value) {
		free(s->value);
		s->value = xstrdup(value);
		free(s->from);
		s->from = xstrdup(from);
	}
	if (run) {
		free(s->run);
		s->run = xstrdup(run);
	}
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_depth(const char *name, int depth, const char **stack, struct tune_profile *out);

static int parse_into(const char *text, size_t len, const char *what, const char *name, int depth,
		      const char **stack, struct tune_profile *p)
{
	int section = -1;       /* -1: none yet, TUNE_NDOMAINS: [main] */
	unsigned lineno = 0;
	size_t off = 0;
	int ret = 0;

	while (off < len && !ret) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		char *raw, *line, *eq, *key, *val;

		lineno++;
		if (memchr(text + off, '\0', n))
			return anole_error_code(EINVAL, "%s:%u: a NUL byte", what, lineno);
		raw = xstrndup(text + off, n);
		off += n + (nl ? 1 : 0);
		line = trim(raw);
		if (!*line || *line == '#' || *line == ';') {
			free(raw);
			continue;
		}
		if (*line == '[') {
			char *end = strchr(line, ']');
			enum tune_domain d;

			if (!end || end[1]) {
				ret = anole_error_code(EINVAL, "%s:%u: a section is '[NAME]'", what,
						       lineno);
			} else {
				*end = '\0';
				if (!strcmp(line + 1, "main"))
					section = TUNE_NDOMAINS;
				else if (!tune_domain_parse(line + 1, &d))
					section = (int)d;
				else
					ret = anole_error_code(EINVAL, "%s:%u: unknown section [%s] "
							       "(main, sysctl, sysfs, cpu, debugfs, "
							       "file or command)", what, lineno,
							       line + 1);
			}
			free(raw);
			continue;
		}
		eq = strchr(line, '=');
		if (!eq || section < 0) {
			ret = anole_error_code(EINVAL, "%s:%u: expected KEY=VALUE inside a section",
					       what, lineno);
			free(raw);
			continue;
		}
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		if (!*key) {
			ret = anole_error_code(EINVAL, "%s:%u: an empty key", what, lineno);
		} else if (section == TUNE_NDOMAINS) {
			if (!strcmp(key, "summary")) {
				if (depth == 0) {
					free(p->summary);
					p->summary = xstrdup(val);
				}
			} else if (!strcmp(key, "include")) {
				char *save = NULL;

				for (char *inc = strtok_r(val, ", ", &save); inc && !ret;
				     inc = strtok_r(NULL, ", ", &save))
					ret = load_depth(inc, depth + 1, stack, p);
			} else {
				ret = anole_error_code(EINVAL, "%s:%u: unknown key '%s' in [main] "
						       "(summary, include)", what, lineno, key);
			}
		} else {
			size_t kl = strlen(key);

			if (section == TUNE_COMMAND && kl > 4 && !strcmp(key + kl - 4, ".run")) {
				key[kl - 4] = '\0';
				set_setting(p, TUNE_COMMAND, key, NULL, val, name);
			} else if (section == TUNE_FILE && key[0] != '/') {
				ret = anole_error_code(EINVAL, "%s:%u: file '%s' is not an absolute "
						       "path", what, lineno, key);
			} else if (section != TUNE_FILE && section != TUNE_COMMAND &&
				   strstr(key, "..")) {
				ret = anole_error_code(EINVAL, "%s:%u: '%s' has a '..'", what, lineno,
						       key);
			} else {
				set_setting(p, (enum tune_domain)section, key, val, NULL, name);
			}
		}
		free(raw);
	}
	return ret;
}

static int check_complete(struct tune_profile *p, const char *what)
{
	for (size_t i = 0; i < p->n; i++) {
		if (!p->v[i].value)
			return anole_error_code(EINVAL, "%s: command %s has a program (.run) but no "
						"value", what, p->v[i].name);
		if (p->v[i].domain == TUNE_COMMAND && !p->v[i].run)
			return anole_error_code(EINVAL, "%s: command %s needs %s.run=PROGRAM", what,
						p->v[i].name, p->v[i].name);
	}
	return 0;
}

int tune_profile_parse(const char *text, size_t len, const char *what, const char *name,
		       struct tune_profile *out)
{
	const char *stack[MAX_INCLUDE_DEPTH + 2] = { name };
	int ret;

	memset(out, 0, sizeof(*out));
	out->name = xstrdup(name);
	ret = parse_into(text, len, what, name, 0, stack, out);
	if (!ret)
		ret = check_complete(out, what);
	if (ret)
		tune_profile_free(out);
	return ret;
}

static int load_depth(const char *name, int depth, const char **stack, struct tune_profile *out)
{
	struct strbuf sb = STRBUF_INIT;
	char *path;
	int ret;

	if (!tune_profile_name_valid(name))
		return anole_error_code(EINVAL, "'%s' is not a profile name (letters, digits, "
					"'.', '_', '-')", name);
	if (depth > MAX_INCLUDE_DEPTH)
		return anole_error_code(ELOOP, "profile %s: includes nest deeper than %d", name,
					MAX_INCLUDE_DEPTH);
	for (int i = 0; i < depth; i++)
		if (!strcmp(stack[i], name))
			return anole_error_code(ELOOP, "profile %s includes itself (through %s)",
						name, stack[depth - 1]);
	stack[depth] = name;
	path = find_profile(name);
	if (!path)
		return anole_error_code(ENOENT, "no profile '%s' (`anole tune profile list`)", name);
	if ((ret = anole_read_file(path, 1 << 20, &sb))) {
		ret = anole_error(-ret, "%s", path);
		strbuf_release(&sb);
		free(path);
		return ret;
	}
	if (depth == 0) {
		free(out->path);
		out->path = xstrdup(path);
	}
	ret = parse_into(sb.buf ? sb.buf : "", sb.len, path, name, depth, stack, out);
	strbuf_release(&sb);
	free(path);
	return ret;
}

int tune_profile_load(const char *name, struct tune_profile *out)
{
	const char *stack[MAX_INCLUDE_DEPTH + 2] = { NULL };
	int ret;

	memset(out, 0, sizeof(*out));
	out->name = xstrdup(name);
	ret = load_depth(name, 0, stack, out);
	if (!ret)
		ret = check_complete(out, name);
	if (ret)
		tune_profile_free(out);
	return ret;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct tune_profile_entry *)a)->name,
		      ((const struct tune_profile_entry *)b)->name);
}

int tune_profile_list(struct tune_profile_entry **list, size_t *n)
{
	char **dirs;
	size_t nd, cnt = 0;
	struct tune_profile_entry *v = NULL;

	tune_profile_dirs(&dirs, &nd);
	for (size_t i = 0; i < nd; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			char *name;
			bool dup = false;
			struct tune_profile p;

			if (l < 6 || strcmp(e->d_name + l - 5, ".conf"))
				continue;
			name = xstrndup(e->d_name, l - 5);
			for (size_t k = 0; k < cnt; k++)
				dup |= !strcmp(v[k].name, name);
			if (dup || !tune_profile_name_valid(name)) {
				free(name);
				continue;
			}
			v = xrealloc(v, (cnt + 1) * sizeof(*v));
			v[cnt].name = name;
			v[cnt].summary = NULL;
			v[cnt].path = NULL;
			if (!tune_profile_load(name, &p)) {
				v[cnt].summary = p.summary ? xstrdup(p.summary) : NULL;
				v[cnt].path = xstrdup(p.path);
				tune_profile_free(&p);
			}
			cnt++;
		}
		closedir(d);
	}
	free_dirs(dirs, nd);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_entry);
	*list = v;
	*n = cnt;
	return 0;
}

void tune_profile_list_free(struct tune_profile_entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		free(list[i].summary);
		free(list[i].path);
	}
	free(list);
}

void tune_apply_report_release(struct tune_apply_report *rep)
{
	strbuf_release(&rep->missing_names);
}

/* STATE/applied: what `verify` compares with. */
static int write_applied(const char *names, const struct strbuf *sets)
{
	struct strbuf sb = STRBUF_INIT, path = STRBUF_INIT;
	int ret;

	strbuf_addf(&path, "%s/applied", tune_state_dir());
	strbuf_addstr(&sb, "profiles ");
	tune_hex_add(&sb, names, strlen(names));
	strbuf_addch(&sb, '\n');
	strbuf_add(&sb, sets->buf ? sets->buf : "", sets->len);
	ret = tune_write_output(path.buf, sb.buf, sb.len);
	strbuf_release(&sb);
	strbuf_release(&path);
	return ret;
}

int tune_profile_apply(char **names, size_t n, struct tune_apply_report *rep)
{
	struct tune_profile merged = { 0 };
	struct tune_journal *j;
	struct strbuf note = STRBUF_INIT, sets = STRBUF_INIT;
	int ret = 0;

	memset(rep, 0, sizeof(*rep));
	/* several profiles merge left to right, as tuned's "a b" does; all of
	 * them are parsed before anything changes */
	for (size_t i = 0; i < n; i++) {
		struct tune_profile p;

		if ((ret = tune_profile_load(names[i], &p)))
			goto out;
		for (size_t k = 0; k < p.n; k++)
			set_setting(&merged, p.v[k].domain, p.v[k].name, p.v[k].value, p.v[k].run,
				    p.v[k].from);
		strbuf_addf(&note, "%s%s", i ? " " : "", names[i]);
		tune_profile_free(&p);
	}
	if ((ret = tune_journal_begin("profile", &j)))
		goto out;
	for (size_t i = 0; i < merged.n; i++) {
		struct tune_setting *s = &merged.v[i];
		struct tune_target *t;
		size_t nt;
		int r = tune_resolve(s->domain, s->name, s->run, &t, &nt);

		if (r == -ENOENT) {
			anole_warn("profile %s: %s %s is not on this kernel: skipped%s", s->from,
				   tune_domain_name(s->domain), s->name,
				   tune_missing_hint(s->domain, s->name));
			strbuf_addf(&rep->missing_names, "%s %s\n", tune_domain_name(s->domain),
				    s->name);
			rep->missing++;
			continue;
		}
		if (r) {
			anole_error_code(-r, "profile %s: %s %s: not a valid knob name", s->from,
					 tune_domain_name(s->domain), s->name);
			rep->failed++;
			continue;
		}
		for (size_t k = 0; k < nt; k++) {
			if (tune_journal_set(j, &t[k], s->value)) {
				rep->failed++;
				continue;
			}
			rep->applied++;
			strbuf_addf(&sets, "set %s ", tune_domain_name(t[k].domain));
			tune_hex_add(&sets, t[k].path, strlen(t[k].path));
			strbuf_addch(&sets, ' ');
			tune_hex_add(&sets, s->value, strlen(s->value));
			strbuf_addch(&sets, '\n');
		}
		tune_targets_free(t, nt);
	}
	ret = tune_journal_done(j, note.buf);
	if (!ret)
		ret = write_applied(note.buf, &sets);
	tune_journal_close(j);
	if (!ret && rep->failed)
		ret = anole_error_code(EIO, "%zu knob%s could not be set (`anole tune profile "
				       "rollback` undoes the rest)", rep->failed,
				       rep->failed == 1 ? "" : "s");
out:
	tune_profile_free(&merged);
	strbuf_release(&note);
	strbuf_release(&sets);
	return ret;
}

void tune_drift_free(struct tune_drift *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].path);
		free(d[i].expected);
		free(d[i].actual);
	}
	free(d);
}

int tune_profile_verify(char **applied_names, struct tune_drift **drift, size_t *ndrift,
			size_t *nchecked)
{
	struct strbuf path = STRBUF_INIT, a = STRBUF_INIT, b = STRBUF_INIT;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int ret = 0;

	*drift = NULL;
	*ndrift = 0;
	*nchecked = 0;
	*applied_names = NULL;
	strbuf_addf(&path, "%s/applied", tune_state_dir());
	f = fopen(path.buf, "re");
	if (!f) {
		ret = errno == ENOENT ? anole_error_code(ENOENT, "no profile is applied (%s)",
							 path.buf)
				      : anole_error(errno, "%s", path.buf);
		strbuf_release(&path);
		return ret;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *save = NULL, *f0, *f1, *f2, *f3;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		f0 = strtok_r(line, " ", &save);
		f1 = strtok_r(NULL, " ", &save);
		f2 = strtok_r(NULL, " ", &save);
		f3 = strtok_r(NULL, " ", &save);
		if (f0 && !strcmp(f0, "profiles") && f1 && tune_hex_decode(f1, &a)) {
			free(*applied_names);
			*applied_names = xstrdup(a.buf ? a.buf : "");
		} else if (f0 && !strcmp(f0, "set") && f3) {
			struct tune_target t;
			char *now = NULL;

			if (tune_domain_parse(f1, &t.domain) || !tune_hex_decode(f2, &a) ||
			    !tune_hex_decode(f3, &b)) {
				ret = anole_error_code(EINVAL, "%s: a damaged record", path.buf);
				break;
			}
			t.path = a.buf ? a.buf : (char *)"";
			(*nchecked)++;
			if (tune_target_get(&t, &now) || !tune_value_same(now, b.buf ? b.buf : "")) {
				*drift = xrealloc(*drift, (*ndrift + 1) * sizeof(**drift));
				(*drift)[*ndrift].domain = t.domain;
				(*drift)[*ndrift].path = xstrdup(t.path);
				(*drift)[*ndrift].expected = xstrdup(b.buf ? b.buf : "");
				(*drift)[*ndrift].actual = now;
				(*ndrift)++;
			} else {
				free(now);
			}
		} else {
			ret = anole_error_code(EINVAL, "%s: a damaged record", path.buf);
			break;
		}
	}
	free(line);
	fclose(f);
	strbuf_release(&path);
	strbuf_release(&a);
	strbuf_release(&b);
	return ret;
}
