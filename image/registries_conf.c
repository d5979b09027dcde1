// SPDX-License-Identifier: Apache-2.0
/*
 * containers-registries.conf(5) (registries_conf.h), read with lib/toml.c.
 * The rules are those of the containers tools (containers/image's
 * sysregistriesv2), which write and read the same files: the [[registry]]
 * with the longest matching prefix applies; its location replaces the
 * prefix in the name; mirrors are tried in order, then the location;
 * locations carry no URI scheme; a drop-in replaces the [[registry]] of
 * the same prefix. Settings anole does not use are type-checked and left
 * alone; unknown ones are reported, not fatal (newer tools add fields).
 */
#include "registries_conf.h"

#include "anole/error.h"
#include "anole/toml.h"
#include "anole/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_CONF "/etc/containers/registries.conf"
#define USER_CONF ".config/containers/registries.conf"

enum pull_from { PULL_ALL, PULL_DIGEST_ONLY, PULL_TAG_ONLY };

struct mirror_entry {
	char *location;
	bool insecure;
	enum pull_from pull;
};

struct registry_entry {
	char *prefix;                   /* never empty */
	char *location;                 /* "": the name is not rewritten */
	bool insecure, blocked, digest_only;
	struct mirror_entry *mirrors;
	size_t nmirrors, mirrors_alloc;
	char *from;                     /* "FILE:LINE" */
};

struct registries_conf {
	struct registry_entry *reg;
	size_t n, alloc;
};

/* ------------------------------------------------------------ entries */

static void entry_release(struct registry_entry *e)
{
	for (size_t i = 0; i < e->nmirrors; i++)
		free(e->mirrors[i].location);
	free(e->mirrors);
	free(e->prefix);
	free(e->location);
	free(e->from);
	memset(e, 0, sizeof(*e));
}

struct registries_conf *registries_conf_new(void)
{
	return xcalloc(1, sizeof(struct registries_conf));
}

void registries_conf_free(struct registries_conf *rc)
{
	if (!rc)
		return;
	for (size_t i = 0; i < rc->n; i++)
		entry_release(&rc->reg[i]);
	free(rc->reg);
	free(rc);
}

/* Entries of one file, merged into the configuration at the end. */
struct file_ctx {
	const char *name;
	struct registry_entry *reg;
	size_t n, alloc;
};

static int conf_error(const struct file_ctx *f, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int conf_error(const struct file_ctx *f, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return anole_error_code(EINVAL, "%s:%u: %s", f->name, line, msg);
}

static struct registry_entry *find_prefix(struct registry_entry *reg, size_t n, const char *prefix)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(reg[i].prefix, prefix))
			return &reg[i];
	return NULL;
}

/* A value of the wanted type, or an error naming its line. */
static int want_type(const struct file_ctx *f, const char *key, const struct toml_value *v,
		     enum toml_type type)
{
	if (v->type == type)
		return 0;
	return conf_error(f, v->line, "'%s' takes %s, not %s", key, toml_type_name(type),
			  toml_type_name(v->type));
}

static int want_string_array(const struct file_ctx *f, const char *key,
			     const struct toml_value *v)
{
	int ret = want_type(f, key, v, TOML_ARRAY);

	for (size_t i = 0; !ret && i < v->u.array.n; i++)
		ret = want_type(f, key, v->u.array.items[i], TOML_STRING);
	return ret;
}

/* Locations and prefixes: no URI scheme, no trailing '/'. */
static int location_value(const struct file_ctx *f, const char *key,
			  const struct toml_value *v, char **out)
{
	const char *s;
	size_t len;
	int ret = want_type(f, key, v, TOML_STRING);

	if (ret)
		return ret;
	s = v->u.string;
	if (!strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8) || strstr(s, "://"))
		return conf_error(f, v->line, "%s '%s': URI schemes are not supported (write "
				  "host[:port][/path]; insecure = true for plain HTTP)", key, s);
	len = strlen(s);
	while (len && s[len - 1] == '/')
		len--;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ')
			return conf_error(f, v->line, "%s '%s': no spaces or control characters",
					  key, s);
	*out = xstrndup(s, len);
	return 0;
}

static int bool_value(const struct file_ctx *f, const char *key, const struct toml_value *v,
		      bool *out)
{
	int ret = want_type(f, key, v, TOML_BOOL);

	if (!ret)
		*out = v->u.boolean;
	return ret;
}

static int read_mirror(const struct file_ctx *f, struct registry_entry *e,
		       const struct toml_value *t)
{
	struct mirror_entry m = { 0 };
	const struct toml_value *loc = NULL;
	int ret = 0;

	if (t->type != TOML_TABLE)
		return conf_error(f, t->line, "a mirror is a table ([[registry.mirror]])");
	for (size_t i = 0; !ret && i < t->u.table.n; i++) {
		const char *k = t->u.table.kv[i].key;
		const struct toml_value *v = t->u.table.kv[i].value;

		if (!strcmp(k, "location")) {
			loc = v;
			ret = location_value(f, "location", v, &m.location);
		} else if (!strcmp(k, "insecure")) {
			ret = bool_value(f, k, v, &m.insecure);
		} else if (!strcmp(k, "pull-from-mirror")) {
			ret = want_type(f, k, v, TOML_STRING);
			if (ret)
				break;
			if (!strcmp(v->u.string, "digest-only"))
				m.pull = PULL_DIGEST_ONLY;
			else if (!strcmp(v->u.string, "tag-only"))
				m.pull = PULL_TAG_ONLY;
			else if (*v->u.string && strcmp(v->u.string, "all"))
				ret = conf_error(f, v->line, "pull-from-mirror '%s': want all, "
						 "digest-only or tag-only", v->u.string);
			else
				continue;
			if (!ret && e->digest_only)
				ret = conf_error(f, v->line, "pull-from-mirror is not allowed with "
						 "mirror-by-digest-only on the registry");
		} else {
			anole_warn("%s:%u: unknown mirror setting '%s' ignored", f->name, v->line, k);
		}
	}
	if (!ret && (!loc || !*m.location))
		ret = conf_error(f, t->line, "a mirror without a location");
	if (ret) {
		free(m.location);
		return ret;
	}
	xgrow(&e->mirrors, &e->mirrors_alloc, e->nmirrors + 1, sizeof(*e->mirrors));
	e->mirrors[e->nmirrors++] = m;
	return 0;
}

static bool valid_wildcard(const char *prefix)
{
	return !strncmp(prefix, "*.", 2) && prefix[2] && !strpbrk(prefix + 1, "*/:@");
}

static int read_registry(struct file_ctx *f, const struct toml_value *t)
{
	struct registry_entry e = { 0 };
	const struct toml_value *mirrors = NULL;
	char from[64];
	int ret = 0;

	if (t->type != TOML_TABLE)
		return conf_error(f, t->line, "a registry is a table ([[registry]])");
	/* mirror-by-digest-only first: mirrors are checked against it */
	if (toml_get(t, "mirror-by-digest-only"))
		ret = bool_value(f, "mirror-by-digest-only", toml_get(t, "mirror-by-digest-only"),
				 &e.digest_only);
	for (size_t i = 0; !ret && i < t->u.table.n; i++) {
		const char *k = t->u.table.kv[i].key;
		const struct toml_value *v = t->u.table.kv[i].value;

		if (!strcmp(k, "prefix"))
			ret = location_value(f, k, v, &e.prefix);
		else if (!strcmp(k, "location"))
			ret = location_value(f, k, v, &e.location);
		else if (!strcmp(k, "insecure"))
			ret = bool_value(f, k, v, &e.insecure);
		else if (!strcmp(k, "blocked"))
			ret = bool_value(f, k, v, &e.blocked);
		else if (!strcmp(k, "mirror"))
			ret = want_type(f, k, mirrors = v, TOML_ARRAY);
		else if (strcmp(k, "mirror-by-digest-only"))
			anole_warn("%s:%u: unknown registry setting '%s' ignored", f->name, v->line,
				   k);
	}
	for (size_t i = 0; !ret && mirrors && i < mirrors->u.array.n; i++)
		ret = read_mirror(f, &e, mirrors->u.array.items[i]);
	if (!ret && (!e.prefix || !*e.prefix)) {
		free(e.prefix);
		e.prefix = e.location ? xstrdup(e.location) : NULL;
		if (!e.prefix || !*e.prefix)
			ret = conf_error(f, t->line, "a [[registry]] needs a location or a prefix");
	}
	if (!ret && strchr(e.prefix, '*') && !valid_wildcard(e.prefix))
		ret = conf_error(f, t->line, "prefix '%s': a wildcard is only allowed as "
				 "*.example.com", e.prefix);
	if (!ret && !e.location)
		e.location = xstrdup("");
	if (!ret && find_prefix(f->reg, f->n, e.prefix))
		ret = conf_error(f, t->line, "registry prefix '%s' is defined twice (also on line "
				 "%s)", e.prefix, strrchr(find_prefix(f->reg, f->n, e.prefix)->from,
							  ':') + 1);
	if (ret) {
		entry_release(&e);
		return ret;
	}
	snprintf(from, sizeof(from), ":%u", t->line);
	e.from = xmalloc(strlen(f->name) + strlen(from) + 1);
	sprintf(e.from, "%s%s", f->name, from);
	xgrow(&f->reg, &f->alloc, f->n + 1, sizeof(*f->reg));
	f->reg[f->n++] = e;
	return 0;
}

/* Version 1: [registries.insecure] / [registries.block] registries = [...] */
static int read_v1(struct file_ctx *f, const struct toml_value *t)
{
	static const char *const lists[] = { "search", "insecure", "block" };
	int ret = want_type(f, "registries", t, TOML_TABLE);

	for (size_t l = 0; !ret && l < ARRAY_SIZE(lists); l++) {
		const struct toml_value *sect = toml_get(t, lists[l]), *names;

		if (!sect)
			continue;
		ret = want_type(f, lists[l], sect, TOML_TABLE);
		names = ret ? NULL : toml_get(sect, "registries");
		if (!names)
			continue;
		ret = want_string_array(f, "registries", names);
		for (size_t i = 0; !ret && l > 0 && i < names->u.array.n; i++) {
			const struct toml_value *v = names->u.array.items[i];
			struct registry_entry *e;
			char *loc;

			ret = location_value(f, "registry", v, &loc);
			if (ret)
				break;
			e = find_prefix(f->reg, f->n, loc);
			if (!e) {
				char from[32];

				xgrow(&f->reg, &f->alloc, f->n + 1, sizeof(*f->reg));
				e = &f->reg[f->n++];
				memset(e, 0, sizeof(*e));
				e->prefix = xstrdup(loc);
				e->location = xstrdup(loc);
				snprintf(from, sizeof(from), ":%u", v->line);
				e->from = xmalloc(strlen(f->name) + strlen(from) + 1);
				sprintf(e->from, "%s%s", f->name, from);
			}
			free(loc);
			if (l == 1)
				e->insecure = true;
			else
				e->blocked = true;
		}
	}
	return ret;
}

int registries_conf_add(struct registries_conf *rc, const char *text, size_t len,
			const char *name)
{
	struct file_ctx f = { .name = name };
	struct toml_value *root;
	const struct toml_value *regs = NULL, *v1 = NULL;
	char err[256];
	int ret = 0;

	root = toml_parse(text, len, err, sizeof(err));
	if (!root) {
		unsigned line;
		int at = 0;

		/* "line N: ..." as "FILE:N: ...", like the reader's own errors */
		if (sscanf(err, "line %u: %n", &line, &at) == 1 && at > 0)
			return conf_error(&f, line, "%s", err + at);
		return anole_error_code(EINVAL, "%s: %s", name, err);
	}
	for (size_t i = 0; !ret && i < root->u.table.n; i++) {
		const char *k = root->u.table.kv[i].key;
		const struct toml_value *v = root->u.table.kv[i].value;

		if (!strcmp(k, "registry"))
			ret = want_type(&f, k, regs = v, TOML_ARRAY);
		else if (!strcmp(k, "registries"))
			v1 = v;
		else if (!strcmp(k, "unqualified-search-registries") ||
			 !strcmp(k, "credential-helpers"))
			ret = want_string_array(&f, k, v);
		else if (!strcmp(k, "short-name-mode"))
			ret = want_type(&f, k, v, TOML_STRING);
		else if (!strcmp(k, "aliases"))
			ret = want_type(&f, k, v, TOML_TABLE);
		else
			anole_warn("%s:%u: unknown setting '%s' ignored", name, v->line, k);
	}
	if (!ret && v1 && regs)
		ret = conf_error(&f, v1->line, "[registries] (version 1) and [[registry]] "
				 "(version 2) cannot be mixed");
	for (size_t i = 0; !ret && regs && i < regs->u.array.n; i++)
		ret = read_registry(&f, regs->u.array.items[i]);
	if (!ret && v1)
		ret = read_v1(&f, v1);
	if (!ret) {
		/* merge: the same prefix replaces, others are added */
		for (size_t i = 0; i < f.n; i++) {
			struct registry_entry *old = find_prefix(rc->reg, rc->n, f.reg[i].prefix);

			if (old) {
				entry_release(old);
				*old = f.reg[i];
			} else {
				xgrow(&rc->reg, &rc->alloc, rc->n + 1, sizeof(*rc->reg));
				rc->reg[rc->n++] = f.reg[i];
			}
		}
		f.n = 0;
	}
	for (size_t i = 0; i < f.n; i++)
		entry_release(&f.reg[i]);
	free(f.reg);
	toml_free(root);
	return ret;
}

/* ------------------------------------------------------------ files */

static int add_file(struct registries_conf *rc, const char *path, bool must_exist)
{
	struct stat st;
	char *text;
	ssize_t got;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return anole_error(errno, "cannot open the registries configuration %s", path);
	}
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {    /* /dev/null: no settings */
		close(fd);
		return anole_error_code(EINVAL, "%s is a directory, not a registries.conf", path);
	}
	if ((uint64_t)st.st_size > TOML_MAX_INPUT) {
		close(fd);
		return anole_error_code(EFBIG, "%s: larger than %u bytes", path, TOML_MAX_INPUT);
	}
	text = xmalloc((size_t)st.st_size + 1);
	got = pread(fd, text, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		free(text);
		return anole_error(got < 0 ? errno : EIO, "cannot read %s", path);
	}
	ret = registries_conf_add(rc, text, (size_t)st.st_size, path);
	free(text);
	return ret;
}

static int conf_file_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

/* The *.conf files of dir, in name order. */
static int add_dropins(struct registries_conf *rc, const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, conf_file_filter, alphasort), ret = 0;

	if (n < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 :
		       anole_error(errno, "cannot read %s", dir);
	for (int i = 0; i < n; i++) {
		if (!ret) {
			char *p = xmalloc(strlen(dir) + strlen(names[i]->d_name) + 2);

			sprintf(p, "%s/%s", dir, names[i]->d_name);
			ret = add_file(rc, p, false);
			free(p);
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int registries_conf_load(struct registries_conf **out, const char *path)
{
	struct registries_conf *rc = registries_conf_new();
	const char *env = getenv("CONTAINERS_REGISTRIES_CONF"), *home = getenv("HOME");
	char *main_file = NULL, *dropins;
	int ret;

	*out = NULL;
	if (path || (env && *env)) {
		ret = add_file(rc, path ? path : env, true);
		goto done;
	}
	if (home && *home) {
		main_file = xmalloc(strlen(home) + sizeof(USER_CONF) + 2);
		sprintf(main_file, "%s/%s", home, USER_CONF);
		if (access(main_file, F_OK) != 0) {
			free(main_file);
			main_file = NULL;
		}
	}
	if (!main_file)
		main_file = xstrdup(SYSTEM_CONF);
	ret = add_file(rc, main_file, false);
	dropins = xmalloc(strlen(main_file) + 3);
	sprintf(dropins, "%s.d", main_file);
	if (!ret)
		ret = add_dropins(rc, dropins);
	free(dropins);
	free(main_file);
done:
	if (ret) {
		registries_conf_free(rc);
		return ret;
	}
	*out = rc;
	return 0;
}

/* ------------------------------------------------------------ resolving */

/* How much of name the prefix covers (its length), or 0. */
static size_t match_prefix(const char *prefix, const char *name)
{
	size_t plen = strlen(prefix), hlen = strcspn(name, "/");

	if (!strncmp(prefix, "*.", 2)) {
		/* *.example.com: any subdomain of example.com, any port */
		size_t nlen = strcspn(name, "/:"), slen = plen - 1;

		if (nlen > slen && !strncasecmp(name + nlen - slen, prefix + 1, slen))
			return hlen;
		return 0;
	}
	if (strncmp(name, prefix, plen))
		return 0;
	return name[plen] == '\0' || name[plen] == '/' ? plen : 0;
}

static char *rewrite(const char *location, const char *name, size_t covered)
{
	char *out;

	if (!*location)
		return xstrdup(name);
	out = xmalloc(strlen(location) + strlen(name + covered) + 1);
	sprintf(out, "%s%s", location, name + covered);
	return out;
}

static int check_rewrite(const struct registry_entry *e, const char *what, const char *location,
			 const char *result, const char *name)
{
	const char *slash = strchr(result, '/');

	if (slash && slash != result && slash[1])
		return 0;
	return anole_error_code(EINVAL, "%s: %s '%s' gives '%s' for %s, with no repository",
				e->from, what, location, result, name);
}

int registries_conf_resolve(const struct registries_conf *rc, const char *name,
			    struct registry_plan *plan)
{
	const struct registry_entry *best = NULL;
	size_t best_len = 0, covered = 0;
	int ret;

	memset(plan, 0, sizeof(*plan));
	for (size_t i = 0; rc && i < rc->n; i++) {
		size_t c = match_prefix(rc->reg[i].prefix, name);
		size_t plen = strlen(rc->reg[i].prefix);

		if (c && plen > best_len) {
			best = &rc->reg[i];
			best_len = plen;
			covered = c;
		}
	}
	if (!best) {
		plan->origin = xstrdup(name);
		return 0;
	}
	plan->from = xstrdup(best->from);
	plan->blocked = best->blocked;
	plan->insecure = best->insecure;
	plan->origin = rewrite(best->location, name, covered);
	ret = check_rewrite(best, "location", best->location, plan->origin, name);
	if (!ret && best->nmirrors)
		plan->mirrors = xcalloc(best->nmirrors, sizeof(*plan->mirrors));
	for (size_t i = 0; !ret && i < best->nmirrors; i++) {
		const struct mirror_entry *m = &best->mirrors[i];
		struct registry_mirror *pm = &plan->mirrors[plan->nmirrors++];

		pm->name = rewrite(m->location, name, covered);
		pm->insecure = m->insecure;
		pm->tags = !best->digest_only && m->pull != PULL_DIGEST_ONLY;
		pm->digests = m->pull != PULL_TAG_ONLY;
		ret = check_rewrite(best, "mirror", m->location, pm->name, name);
	}
	if (ret)
		registry_plan_release(plan);
	return ret;
}

void registry_plan_release(struct registry_plan *plan)
{
	for (size_t i = 0; i < plan->nmirrors; i++)
		free(plan->mirrors[i].name);
	free(plan->mirrors);
	free(plan->origin);
	free(plan->from);
	memset(plan, 0, sizeof(*plan));
}
