// SPDX-License-Identifier: Apache-2.0
/*
 * The state directory of a lazy mount and the identity of its daemon.
 *
 * The directory (BASE/mounts/<first 8 bytes of sha256(mount point)>, BASE
 * being /run/anole for root, else $XDG_RUNTIME_DIR/anole, else
 * /tmp/anole-UID) is checked from BASE down as privdir.h says: under /tmp,
 * another user could have made it first and so chosen the pid that
 * `umount` signals.
 *
 * A pid alone does not name a process for long: after the daemon dies its
 * pid is given to the next process started. So the pid file holds the pid,
 * the process's start time (field 22 of /proc/PID/stat, clock ticks after
 * boot) and the boot id; the daemon is signalled only through a pidfd taken
 * on the pid and then found to have that start time in this boot. A pid file
 * that names no such process is what a crashed daemon left: its mounts are
 * detached and the state removed, and no process is signalled.
 */
#include "lazyd.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/privdir.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *runtime_base(void)
{
	struct strbuf p = STRBUF_INIT;
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (geteuid() == 0)
		strbuf_addstr(&p, "/run/anole");
	else if (xdg && *xdg)
		strbuf_addf(&p, "%s/anole", xdg);
	else
		strbuf_addf(&p, "/tmp/anole-%u", (unsigned)geteuid());
	return strbuf_detach(&p, NULL);
}

char *lazyd_state_dir_for(const char *mnt_abs)
{
	uint8_t d[ANOLE_DIGEST_MAX];
	char hex[65];
	char *base = runtime_base();
	struct strbuf p = STRBUF_INIT;

	anole_digest(ANOLE_DIGEST_SHA256, mnt_abs, strlen(mnt_abs), d);
	anole_hex(d, 8, hex);
	strbuf_addf(&p, "%s/mounts/%s", base, hex);
	free(base);
	return strbuf_detach(&p, NULL);
}

void lazyd_fusermount_detach(const char *mnt)
{
	pid_t c = fork();

	if (c == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", mnt, (char *)NULL);
		_exit(127);
	}
	if (c > 0)
		waitpid(c, NULL, 0);
}

int lazyd_state_open(const char *state_dir, bool create)
{
	char *base = xstrdup(state_dir), *mounts, *name;
	struct stat st;
	int bfd = -1, mfd = -1, sfd;

	/* state_dir is BASE/mounts/NAME (lazyd_state_dir_for) */
	name = strrchr(base, '/');
	*name++ = '\0';
	mounts = xstrdup(base);
	*strrchr(base, '/') = '\0';
	if (!create && lstat(base, &st) < 0 && errno == ENOENT)
		sfd = -ENOENT;
	else if ((sfd = bfd = anole_privdir_open(base, create)) >= 0 &&
		 (sfd = mfd = anole_privdir_sub(bfd, base, "mounts", create)) >= 0)
		sfd = anole_privdir_sub(mfd, mounts, name, create);
	if (mfd >= 0)
		close(mfd);
	if (bfd >= 0)
		close(bfd);
	free(mounts);
	free(base);
	return sfd;
}

/* ---- identity ---- */

struct daemon_id {
	long pid;
	unsigned long long start;
	char boot[40];
};

/* Start time and state letter of pid; false if it is not there. */
static bool proc_start(long pid, unsigned long long *start, char *state)
{
	char path[64], buf[1024];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* the name (field 2) may hold anything, ')' too: fields 3.. follow the last ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	*state = p[2];
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	return sscanf(p, "%llu", start) == 1;
}

static void boot_id(char out[40])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	out[0] = '\0';
	if (f) {
		if (!fgets(out, 40, f))
			out[0] = '\0';
		fclose(f);
	}
	out[strcspn(out, "\n")] = '\0';
}

int lazyd_state_write_pid(const char *state_dir)
{
	struct daemon_id id = { .pid = (long)getpid() };
	struct strbuf path = STRBUF_INIT;
	char text[128], st;
	int fd, ret = 0;

	if (!proc_start(id.pid, &id.start, &st))
		return anole_error_code(EIO, "cannot read /proc/%ld/stat", id.pid);
	boot_id(id.boot);
	snprintf(text, sizeof(text), "%ld %llu %s\n", id.pid, id.start, id.boot);
	/* written whole under a temporary name: a reader never sees half */
	strbuf_addf(&path, "%s/pid.tmp", state_dir);
	fd = open(path.buf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		ret = anole_error(errno, "cannot write %s", path.buf);
	if (fd >= 0)
		close(fd);
	if (!ret) {
		struct strbuf to = STRBUF_INIT;

		strbuf_addf(&to, "%s/pid", state_dir);
		if (rename(path.buf, to.buf) < 0)
			ret = anole_error(errno, "cannot rename %s", path.buf);
		strbuf_release(&to);
	}
	strbuf_release(&path);
	return ret;
}

static int read_id(int sfd, const char *state_dir, struct daemon_id *id)
{
	char buf[160];
	ssize_t n;
	int fd = anole_privdir_file(sfd, state_dir, "pid", O_RDONLY);

	memset(id, 0, sizeof(*id));
	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "%ld %llu %39s", &id->pid, &id->start, id->boot) != 3 || id->pid <= 0)
		return -EINVAL;         /* an old or broken pid file: it names nobody for sure */
	return 0;
}

static bool exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

int lazyd_daemon_open(int sfd, const char *state_dir, long *pid)
{
	struct daemon_id id;
	unsigned long long start;
	char boot[40], st;
	int pidfd, ret = read_id(sfd, state_dir, &id);

	*pid = id.pid;
	if (ret == -EINVAL)
		return -ESRCH;
	if (ret)
		return ret;
	boot_id(boot);
	if (strcmp(boot, id.boot))
		return -ESRCH;          /* from before a reboot */
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)id.pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? -ESRCH : anole_error(errno, "pidfd_open(%ld)", id.pid);
	/* the pidfd holds the process it was taken on: if that one still runs
	 * after /proc was read, /proc showed that one */
	if (!proc_start(id.pid, &start, &st) || start != id.start || st == 'Z' || st == 'X' ||
	    exited(pidfd)) {
		close(pidfd);
		return -ESRCH;
	}
	return pidfd;
}

int lazyd_daemon_stop(int pidfd, long pid, const char *mnt, unsigned wait_ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
		return anole_error(errno, "cannot signal the daemon of %s (pid %ld)", mnt, pid);
	while (poll(&p, 1, (int)wait_ms) < 0 && errno == EINTR)
		;
	if (!exited(pidfd))
		return anole_error_code(ETIMEDOUT, "the daemon of %s (pid %ld) did not stop within "
					"%u s", mnt, pid, wait_ms / 1000);
	return 0;
}

/* ---- what a dead daemon left ---- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The filesystem type of the topmost mount at path; false if none. */
static bool mount_type_at(const char *path, char *type, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *save, *tok, *mp = NULL, *sep = strstr(line, " - ");
		int field = 0;

		if (!sep)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
			if (++field == 5)
				mp = tok;
		if (!mp)
			continue;
		unescape(mp);
		if (strcmp(mp, path))
			continue;
		tok = strtok_r(sep + 3, " ", &save);
		if (tok) {
			snprintf(type, size, "%s", tok);
			found = true;          /* keep going: the last one is on top */
		}
	}
	free(line);
	fclose(f);
	return found;
}

static void detach(const char *path, bool erofs_too)
{
	char type[64];

	if (!mount_type_at(path, type, sizeof(type)))
		return;
	if (strcmp(type, "fuse.anole") && !(erofs_too && !strcmp(type, "erofs"))) {
		anole_warn("%s is a %s mount, not one of anole's: left alone", path, type);
		return;
	}
	if (umount2(path, MNT_DETACH) == 0) {
		anole_info("detached %s (%s)", path, type);
		return;
	}
	if (errno == EPERM) {   /* a user's FUSE mount */
		lazyd_fusermount_detach(path);
		return;
	}
	anole_warn("cannot detach %s: %s", path, strerror(errno));
}

void lazyd_clean_stale(const char *mnt, const char *state_dir, long pid)
{
	static const char *const files[] = { "pid", "pid.tmp", "ctl.sock", "mountpoint" };
	struct strbuf p = STRBUF_INIT;

	anole_warn("the daemon of %s (pid %ld) is gone: detaching what it left (its log: %s/log)",
		   mnt, pid, state_dir);
	detach(mnt, true);              /* the tree first: it reads the blobs */
	strbuf_addf(&p, "%s/blobs", state_dir);
	detach(p.buf, false);
	rmdir(p.buf);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		strbuf_reset(&p);
		strbuf_addf(&p, "%s/%s", state_dir, files[i]);
		unlink(p.buf);
	}
	strbuf_release(&p);
}
