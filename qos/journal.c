// SPDX-License-Identifier: Apache-2.0
/*
 * The knob journal. Before the agent first writes a knob it appends the
 * knob's original value to the state file and fsyncs it; only then does it
 * write. So whatever kills the agent (SIGKILL mid-squeeze, a crash, a power
 * cut of the agent's host process), the state file names every knob that
 * may differ from what it was, and the next start or `anole qos restore`
 * writes each back, newest first. Restoring is idempotent: a restore killed
 * half-way is simply run again.
 *
 * Format: a first line "anole-qos-state 1", then one line per knob:
 *   HEXPATH SP (HEXDEV | "-") SP HEXORIG LF
 * hex so that any byte of a path or value survives; a torn last line (a
 * crash while appending, before the knob was written) is ignored.
 */
#include "qos.h"

#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "anole-qos-state 1\n"
#define STATE_MAX (4u << 20)

struct knob {
	char *path, *dev, *orig;
	bool changed;          /* differs from orig as far as we know */
};

struct qos_journal {
	char *path;
	int fd;
	struct knob *k;
	size_t n, alloc;
};

/* A v2 io.max line without limits is how a device's rule is removed. */
#define IO_MAX_NONE "rbps=max wbps=max riops=max wiops=max"

static bool is_io_max(const char *path)
{
	const char *b = strrchr(path, '/');
	return !strcmp(b ? b + 1 : path, "io.max");
}

/* The original of one device's line in a per-device file. */
static int read_dev_orig(const char *path, const char *dev, char **orig)
{
	char buf[8192];
	size_t dl = strlen(dev);
	int ret = anole_read_value(path, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	for (char *l = buf; l && *l;) {
		char *e = strchr(l, '\n');
		if (e)
			*e = 0;
		if (!strncmp(l, dev, dl) && l[dl] == ' ') {
			*orig = xstrdup(l + dl + 1);
			return 0;
		}
		l = e ? e + 1 : NULL;
	}
	/* v1 blkio.throttle.*: 0 removes the rule */
	*orig = xstrdup(is_io_max(path) ? IO_MAX_NONE : "0");
	return 0;
}

static void add_hex(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s; s++) {
		strbuf_addch(sb, hex[(unsigned char)*s >> 4]);
		strbuf_addch(sb, hex[(unsigned char)*s & 15]);
	}
}

static char *from_hex(const char *s, size_t n)
{
	char *out;

	if (n % 2)
		return NULL;
	out = xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n; i += 2) {
		int hi = s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10;
		int lo = s[i + 1] <= '9' ? s[i + 1] - '0' : s[i + 1] - 'a' + 10;
		if (hi < 0 || hi > 15 || lo < 0 || lo > 15 || !isxdigit((unsigned char)s[i]) ||
		    !isxdigit((unsigned char)s[i + 1]) || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[i / 2] = (char)(hi << 4 | lo);
	}
	out[n / 2] = 0;
	return out;
}

static int write_knob(const char *path, const char *dev, const char *value)
{
	char buf[512];

	if (dev) {
		snprintf(buf, sizeof(buf), "%s %s", dev, value);
		value = buf;
	}
	return anole_write_value(path, value);
}

/* Write every knob of a state file's text back, newest first. */
static int restore_text(const char *name, char *text, size_t len, unsigned *restored)
{
	struct knob *k = NULL;
	size_t n = 0, alloc = 0;
	int ret = 0;

	*restored = 0;
	if (len < strlen(STATE_MAGIC) || memcmp(text, STATE_MAGIC, strlen(STATE_MAGIC)))
		return anole_error_code(EINVAL, "qos: %s is not an anole qos state file", name);
	for (char *l = text + strlen(STATE_MAGIC); l < text + len;) {
		char *e = memchr(l, '\n', (size_t)(text + len - l));
		if (!e)
			break; /* torn last line: that knob was never written */
		*e = 0;
		char *s1 = strchr(l, ' '), *s2 = s1 ? strchr(s1 + 1, ' ') : NULL;
		struct knob kn = { 0 };
		if (s2) {
			kn.path = from_hex(l, (size_t)(s1 - l));
			bool no_dev = s2 - s1 == 2 && s1[1] == '-';
			kn.dev = no_dev ? NULL : from_hex(s1 + 1, (size_t)(s2 - s1 - 1));
			kn.orig = from_hex(s2 + 1, strlen(s2 + 1));
			if (!no_dev && !kn.dev)
				s2 = NULL;
		}
		if (!s2 || !kn.path || !kn.orig || kn.path[0] != '/') {
			free(kn.path);
			free(kn.dev);
			free(kn.orig);
			for (size_t i = 0; i < n; i++) {
				free(k[i].path);
				free(k[i].dev);
				free(k[i].orig);
			}
			free(k);
			return anole_error_code(EINVAL, "qos: %s: a damaged line (nothing restored)",
						name);
		}
		xgrow(&k, &alloc, n + 1, sizeof(*k));
		k[n++] = kn;
		l = e + 1;
	}
	for (size_t i = n; i-- > 0;) {
		int r = write_knob(k[i].path, k[i].dev, k[i].orig);
		/* a group removed since has nothing left to restore */
		if (r && r != -ENOENT && !ret)
			ret = anole_error(-r, "qos: cannot restore %s%s%s to '%s'", k[i].path,
					  k[i].dev ? " " : "", k[i].dev ? k[i].dev : "", k[i].orig);
		else if (!r)
			(*restored)++;
	}
	for (size_t i = 0; i < n; i++) {
		free(k[i].path);
		free(k[i].dev);
		free(k[i].orig);
	}
	free(k);
	return ret;
}

int qos_journal_restore_file(const char *path, unsigned *restored)
{
	struct stat st;
	char *text;
	int fd, ret;

	*restored = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : anole_error(errno, "qos: cannot open %s", path);
	if (fstat(fd, &st) || st.st_size > STATE_MAX) {
		close(fd);
		return anole_error_code(EFBIG, "qos: %s is too big for a state file", path);
	}
	text = xmalloc((size_t)st.st_size + 1);
	ret = pread_full(fd, text, (size_t)st.st_size, 0);
	close(fd);
	if (!ret) {
		text[st.st_size] = 0;
		ret = restore_text(path, text, (size_t)st.st_size, restored);
	} else {
		ret = anole_error(-ret, "qos: cannot read %s", path);
	}
	free(text);
	/* removed only once every knob is back: a failed restore is retried */
	if (!ret && unlink(path))
		ret = anole_error(errno, "qos: cannot remove %s", path);
	if (!ret && *restored)
		anole_info("qos: restored %u knob(s) from %s", *restored, path);
	return ret;
}

int qos_journal_open(struct qos_journal **out, const char *path)
{
	struct qos_journal *j;
	unsigned restored;
	int ret = qos_journal_restore_file(path, &restored);

	if (ret)
		return ret;
	if (restored)
		anole_warn("qos: a previous agent did not stop cleanly; %u knob(s) restored from %s",
			   restored, path);
	j = xcalloc(1, sizeof(*j));
	j->path = xstrdup(path);
	j->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		ret = anole_error(errno, "qos: cannot create the state file %s", path);
		free(j->path);
		free(j);
		return ret;
	}
	if ((ret = write_full(j->fd, STATE_MAGIC, strlen(STATE_MAGIC))) || fsync(j->fd)) {
		ret = anole_error(ret ? -ret : errno, "qos: cannot write %s", path);
		close(j->fd);
		unlink(path);
		free(j->path);
		free(j);
		return ret;
	}
	*out = j;
	return 0;
}

static struct knob *find(struct qos_journal *j, const char *path, const char *dev)
{
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->k[i].path, path) &&
		    (dev ? j->k[i].dev && !strcmp(j->k[i].dev, dev) : !j->k[i].dev))
			return &j->k[i];
	return NULL;
}

int qos_knob_set(struct qos_journal *j, const char *path, const char *dev, const char *value)
{
	struct knob *k = find(j, path, dev);
	int ret;

	if (!k) {
		char buf[4096], *orig = NULL;
		struct strbuf line = STRBUF_INIT;

		if (dev)
			ret = read_dev_orig(path, dev, &orig);
		else if ((ret = anole_read_value(path, buf, sizeof(buf))) >= 0)
			orig = xstrdup(buf), ret = 0;
		if (ret)
			return anole_error(-ret, "qos: cannot read %s", path);
		add_hex(&line, path);
		strbuf_addch(&line, ' ');
		if (dev)
			add_hex(&line, dev);
		else
			strbuf_addch(&line, '-');
		strbuf_addch(&line, ' ');
		add_hex(&line, orig);
		strbuf_addch(&line, '\n');
		/* durable before the knob changes: that is the whole point */
		ret = write_full(j->fd, line.buf, line.len);
		if (!ret && fsync(j->fd))
			ret = -errno;
		strbuf_release(&line);
		if (ret) {
			free(orig);
			return anole_error(-ret, "qos: cannot journal %s in %s", path, j->path);
		}
		xgrow(&j->k, &j->alloc, j->n + 1, sizeof(*j->k));
		k = &j->k[j->n++];
		k->path = xstrdup(path);
		k->dev = dev ? xstrdup(dev) : NULL;
		k->orig = orig;
	}
	ret = write_knob(path, dev, value);
	if (ret)
		return anole_error(-ret, "qos: cannot write '%s%s%s' to %s", dev ? dev : "",
				   dev ? " " : "", value, path);
	k->changed = true;
	return 0;
}

int qos_knob_reset(struct qos_journal *j, const char *path, const char *dev)
{
	struct knob *k = find(j, path, dev);
	int ret;

	if (!k || !k->changed)
		return 0;
	ret = write_knob(path, dev, k->orig);
	if (ret)
		return anole_error(-ret, "qos: cannot restore %s to '%s'", path, k->orig);
	k->changed = false;
	return 0;
}

unsigned qos_journal_count(const struct qos_journal *j)
{
	return j ? (unsigned)j->n : 0;
}

int qos_journal_close(struct qos_journal *j)
{
	int ret = 0;

	if (!j)
		return 0;
	/* written back in any case (changed or not): byte-exact originals */
	for (size_t i = j->n; i-- > 0;) {
		int r = write_knob(j->k[i].path, j->k[i].dev, j->k[i].orig);
		if (r && r != -ENOENT && !ret)
			ret = anole_error(-r, "qos: cannot restore %s to '%s'", j->k[i].path,
					  j->k[i].orig);
	}
	close(j->fd);
	/* kept when something failed: the next start tries again */
	if (!ret)
		unlink(j->path);
	for (size_t i = 0; i < j->n; i++) {
		free(j->k[i].path);
		free(j->k[i].dev);
		free(j->k[i].orig);
	}
	free(j->k);
	free(j->path);
	free(j);
	return ret;
}
