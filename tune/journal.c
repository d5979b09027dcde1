// SPDX-License-Identifier: Apache-2.0
/*
 * The journal: before a knob is first written, its old value is appended
 * to STATE/journal and fsync'd, so that whatever happens next (a crash, a
 * SIGKILL, a power cut) `anole tune rollback` can put it back. Each record
 * is one line of hex-encoded fields; a torn last line (the write that was
 * under way when the process died) was never followed by the change it
 * protects, so it is ignored.
 *
 *   anole-tune-journal 1 PURPOSE PID
 *   save DOMAIN HEX(path) present|absent HEX(old bytes)
 *   done HEX(note)
 *
 * For `file` knobs the old bytes are the file's exact contents; for kernel
 * knobs they are the value as the kernel takes it back; for `command`
 * knobs, what `PROG get` printed.
 */
#include "tune.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *state_dir_override;

const char *tune_state_dir(void)
{
	const char *env = getenv("ANOLE_TUNE_STATE");

	if (state_dir_override)
		return state_dir_override;
	return env && *env ? env : "/var/lib/anole/tune";
}

void tune_set_state_dir(const char *dir)
{
	free(state_dir_override);
	state_dir_override = dir ? xstrdup(dir) : NULL;
}

static char *state_path(const char *leaf)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%s/%s", tune_state_dir(), leaf);
	return strbuf_detach(&sb, NULL);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/* ------------------------------------------------------------- reading */

struct saved {
	enum tune_domain domain;
	char *path;
	bool present;
	struct strbuf old;
};

struct tune_journal {
	int fd;
	char *path;
	char purpose[16];
	struct saved *v;
	size_t n;
};

static void saved_free(struct saved *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		strbuf_release(&v[i].old);
	}
	free(v);
}

/* Parse a journal file; a torn last line is dropped. */
static int journal_read(const char *path, struct tune_journal_info *info, struct saved **out,
			size_t *nout)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	struct saved *v = NULL;
	size_t n = 0;
	struct strbuf tmp = STRBUF_INIT;
	int ret = 0;

	memset(info, 0, sizeof(*info));
	if (!f)
		return errno == ENOENT ? 0 : anole_error(errno, "%s", path);
	info->exists = true;
	while ((len = getline(&line, &cap, f)) > 0) {
		char *save = NULL, *f0, *f1, *f2, *f3, *f4;

		lineno++;
		if (line[len - 1] != '\n')
			break;          /* torn: the change it announced never happened */
		line[len - 1] = '\0';
		f0 = strtok_r(line, " ", &save);
		f1 = strtok_r(NULL, " ", &save);
		f2 = strtok_r(NULL, " ", &save);
		f3 = strtok_r(NULL, " ", &save);
		f4 = strtok_r(NULL, " ", &save);
		if (lineno == 1) {
			if (!f0 || strcmp(f0, "anole-tune-journal") || !f1 || strcmp(f1, "1") ||
			    !f2 || strlen(f2) >= sizeof(info->purpose) || !f3) {
				ret = anole_error_code(EINVAL, "%s: not an anole tune journal "
						       "(version 1)", path);
				break;
			}
			snprintf(info->purpose, sizeof(info->purpose), "%s", f2);
			info->pid = strtol(f3, NULL, 10);
		} else if (f0 && !strcmp(f0, "save") && f4) {
			struct saved s = { 0 };

			if (tune_domain_parse(f1, &s.domain) || !tune_hex_decode(f2, &tmp) ||
			    (strcmp(f3, "present") && strcmp(f3, "absent")) ||
			    !tune_hex_decode(f4, &s.old)) {
				strbuf_release(&s.old);
				ret = anole_error_code(EINVAL, "%s:%zu: a damaged record", path,
						       lineno);
				break;
			}
			s.path = xstrdup(tmp.buf ? tmp.buf : "");
			s.present = !strcmp(f3, "present");
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = s;
		} else if (f0 && !strcmp(f0, "done") && f1) {
			info->done = true;
			free(info->note);
			info->note = tune_hex_decode(f1, &tmp) ? xstrdup(tmp.buf ? tmp.buf : "") : NULL;
		} else {
			ret = anole_error_code(EINVAL, "%s:%zu: a damaged record", path, lineno);
			break;
		}
	}
	free(line);
	fclose(f);
	strbuf_release(&tmp);
	info->nsaved = n;
	if (ret || !out)
		saved_free(v, n);
	else {
		*out = v;
		*nout = n;
	}
	return ret;
}

int tune_journal_status(struct tune_journal_info *info)
{
	char *path = state_path("journal");
	int ret = journal_read(path, info, NULL, NULL);

	free(path);
	return ret;
}

void tune_journal_info_free(struct tune_journal_info *info)
{
	free(info->note);
	info->note = NULL;
}

/* Put the saved values back, newest first; every one is tried. */
static int restore(struct saved *v, size_t n)
{
	int first = 0;

	for (size_t i = n; i-- > 0;) {
		struct tune_target t = { v[i].domain, v[i].path };
		int ret;

		if (v[i].domain == TUNE_FILE) {
			if (!v[i].present)
				ret = unlink(v[i].path) && errno != ENOENT ? -errno : 0;
			else
				ret = anole_write_whole(v[i].path, v[i].old.buf ? v[i].old.buf : "",
						       v[i].old.len, true, true);
			if (ret)
				ret = anole_error(-ret, "rollback: file %s", v[i].path);
		} else {
			ret = tune_target_set(&t, v[i].old.buf ? v[i].old.buf : "");
			if (ret)
				anole_error_code(-ret, "rollback: %s %s could not be restored to '%s'",
						 tune_domain_name(v[i].domain), v[i].path,
						 v[i].old.buf ? v[i].old.buf : "");
		}
		if (ret && !first)
			first = ret;
	}
	return first;
}

int tune_rollback(void)
{
	char *path = state_path("journal"), *applied = state_path("applied");
	struct tune_journal_info info;
	struct saved *v = NULL;
	size_t n = 0;
	int ret = journal_read(path, &info, &v, &n);

	if (!ret && info.exists) {
		if (info.pid > 0 && info.pid != getpid() && !kill((pid_t)info.pid, 0) &&
		    !strcmp(info.purpose, "search"))
			anole_warn("the search that wrote the journal (pid %ld) seems to be running; "
				   "restoring anyway", info.pid);
		ret = restore(v, n);
		if (!ret) {
			if (unlink(path) && errno != ENOENT)
				ret = anole_error(errno, "%s", path);
			unlink(applied);
			fsync_dir(tune_state_dir());
			if (!ret)
				ret = (int)n;
		} else {
			anole_error_code(-ret, "rollback incomplete: the journal %s is kept (run "
					 "`anole tune rollback` again, or `anole tune accept` to drop "
					 "it)", path);
		}
	}
	saved_free(v, n);
	tune_journal_info_free(&info);
	free(path);
	free(applied);
	return ret;
}

int tune_accept(void)
{
	char *path = state_path("journal");
	int ret = 0;

	if (unlink(path) && errno != ENOENT)
		ret = anole_error(errno, "%s", path);
	else
		fsync_dir(tune_state_dir());
	free(path);
	return ret;
}

/* ------------------------------------------------------------- writing */

static int append_line(struct tune_journal *j, const struct strbuf *sb)
{
	int ret = write_full(j->fd, sb->buf, sb->len);

	if (ret)
		return anole_error(-ret, "%s", j->path);
	if (fdatasync(j->fd))
		return anole_error(errno, "%s: fdatasync", j->path);
	return 0;
}

int tune_journal_begin(const char *purpose, struct tune_journal **out)
{
	struct tune_journal *j;
	struct strbuf sb = STRBUF_INIT;
	int ret;

	*out = NULL;
	if ((ret = tune_mkdir_p(tune_state_dir(), 0700)))
		return anole_error(-ret, "state directory %s", tune_state_dir());
	j = xcalloc(1, sizeof(*j));
	j->path = state_path("journal");
	snprintf(j->purpose, sizeof(j->purpose), "%s", purpose);
	for (int attempt = 0; ; attempt++) {
		struct tune_journal_info info;

		j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
		if (j->fd >= 0)
			break;
		if (errno != EEXIST || attempt) {
			ret = anole_error(errno, "%s", j->path);
			goto fail;
		}
		if ((ret = tune_journal_status(&info)))
			goto fail;
		/* switching profiles: the applied one goes first, as tuned does */
		if (!strcmp(purpose, "profile") && !strcmp(info.purpose, "profile") && info.done) {
			tune_journal_info_free(&info);
			if ((ret = tune_rollback()) < 0)
				goto fail;
			continue;
		}
		if (info.pid > 0 && !kill((pid_t)info.pid, 0) && (pid_t)info.pid != getpid())
			ret = anole_error_code(EBUSY, "another anole tune (%s, pid %ld) holds the "
					       "journal %s", info.purpose, info.pid, j->path);
		else if (!strcmp(info.purpose, "profile") && info.done)
			ret = anole_error_code(EBUSY, "profile %s is applied: `anole tune profile "
					       "rollback` to undo it or `anole tune accept` to keep "
					       "it, then try again", info.note ? info.note : "?");
		else
			ret = anole_error_code(EBUSY, "a %s (pid %ld) left its journal %s with %zu "
					       "saved value%s: run `anole tune rollback` to restore "
					       "them, or `anole tune accept` to keep the values as "
					       "they are now", info.purpose, info.pid, j->path,
					       info.nsaved, info.nsaved == 1 ? "" : "s");
		tune_journal_info_free(&info);
		goto fail;
	}
	strbuf_addf(&sb, "anole-tune-journal 1 %s %ld\n", purpose, (long)getpid());
	if ((ret = append_line(j, &sb)) || (ret = fsync_dir(tune_state_dir()))) {
		close(j->fd);
		unlink(j->path);
		goto fail;
	}
	strbuf_release(&sb);
	*out = j;
	return 0;
fail:
	strbuf_release(&sb);
	free(j->path);
	free(j);
	return ret;
}

int tune_journal_set(struct tune_journal *j, const struct tune_target *t, const char *value)
{
	bool seen = false;

	for (size_t i = 0; i < j->n && !seen; i++)
		seen = j->v[i].domain == t->domain && !strcmp(j->v[i].path, t->path);
	if (!seen) {
		struct saved s = { t->domain, NULL, true, STRBUF_INIT };
		struct strbuf line = STRBUF_INIT;
		int ret = 0;

		if (t->domain == TUNE_FILE) {
			ret = anole_read_file(t->path, SIZE_MAX, &s.old);
			if (ret == -ENOENT) {
				s.present = false;
				ret = 0;
			} else if (ret) {
				ret = anole_error(-ret, "%s", t->path);
			}
		} else {
			char *old;

			ret = tune_target_get(t, &old);
			if (!ret) {
				strbuf_addstr(&s.old, old);
				free(old);
			}
		}
		if (ret) {
			strbuf_release(&s.old);
			return ret;
		}
		strbuf_addf(&line, "save %s ", tune_domain_name(t->domain));
		tune_hex_add(&line, t->path, strlen(t->path));
		strbuf_addf(&line, " %s ", s.present ? "present" : "absent");
		tune_hex_add(&line, s.old.buf, s.old.len);
		strbuf_addch(&line, '\n');
		ret = append_line(j, &line);
		strbuf_release(&line);
		if (ret) {
			strbuf_release(&s.old);
			return ret;
		}
		s.path = xstrdup(t->path);
		j->v = xrealloc(j->v, (j->n + 1) * sizeof(*j->v));
		j->v[j->n++] = s;
	}
	return tune_target_set(t, value);
}

int tune_journal_done(struct tune_journal *j, const char *note)
{
	struct strbuf line = STRBUF_INIT;
	int ret;

	strbuf_addstr(&line, "done ");
	tune_hex_add(&line, note, strlen(note));
	strbuf_addch(&line, '\n');
	ret = append_line(j, &line);
	strbuf_release(&line);
	return ret;
}

int tune_journal_rollback(struct tune_journal *j)
{
	int ret = restore(j->v, j->n);

	if (!ret) {
		if (unlink(j->path) && errno != ENOENT)
			ret = anole_error(errno, "%s", j->path);
		fsync_dir(tune_state_dir());
	} else {
		anole_error_code(-ret, "rollback incomplete: the journal %s is kept", j->path);
	}
	return ret;
}

int tune_journal_restore(struct tune_journal *j)
{
	return restore(j->v, j->n);
}

void tune_journal_close(struct tune_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	saved_free(j->v, j->n);
	free(j->path);
	free(j);
}
