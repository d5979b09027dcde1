// SPDX-License-Identifier: Apache-2.0
/*
 * Private directories (see privdir.h): the checks ssh makes of ~/.ssh, for
 * directories a privileged daemon writes to and reads trusted bytes from.
 * Without them, a user who can create a name in the directory (or in one
 * above it) before the daemon does could point it at a file of root's
 * (the daemon writes there), or keep a writable file the daemon reads after
 * verifying it.
 */
#include "anole/privdir.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int refuse(const char *fmt, const char *path, const char *name)
{
	if (name)
		return anole_error_code(EPERM, fmt, path, "/", name);
	return anole_error_code(EPERM, fmt, path, "", "");
}

/* The entry's own checks: type, owner, mode, links. */
static int check_entry(const struct stat *st, const char *path, const char *name, bool dir)
{
	unsigned me = (unsigned)geteuid();

	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		return refuse(dir ? "%s%s%s is not a directory: refusing to use it" :
			      "%s%s%s is not a regular file: refusing to use it (remove it)",
			      path, name);
	if ((unsigned)st->st_uid != me)
		return anole_error_code(EPERM, "%s%s%s is owned by uid %u, not by uid %u that runs "
					"anole: refusing to use it (remove it, or chown it to uid %u)",
					path, name ? "/" : "", name ? name : "",
					(unsigned)st->st_uid, me, me);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return anole_error_code(EPERM, "%s%s%s is writable by %s (mode %04o): refusing to "
					"use it (chmod go-w it)", path, name ? "/" : "",
					name ? name : "",
					st->st_mode & S_IWOTH ? "others" : "its group",
					(unsigned)(st->st_mode & 07777));
	if (!dir && st->st_nlink != 1)
		return anole_error_code(EPERM, "%s%s%s has %lu hard links: refusing to use it "
					"(another name may be changed under anole; remove it)",
					path, name ? "/" : "", name ? name : "",
					(unsigned long)st->st_nlink);
	return 0;
}

/*
 * Every directory above real (an absolute path without symbolic links):
 * whoever can write in one of them could rename ours away and put theirs in
 * its place; a sticky directory lets nobody rename what is not theirs.
 */
static int check_ancestors(const char *real, const char *path)
{
	char *p = xstrdup(real);
	unsigned me = (unsigned)geteuid();
	int ret = 0;

	for (char *slash = strrchr(p, '/'); slash && !ret; slash = strrchr(p, '/')) {
		struct stat st;

		if (slash == p)
			slash[1] = '\0';        /* "/" itself, then stop */
		else
			*slash = '\0';
		if (stat(p, &st) < 0) {
			ret = anole_error(errno, "cannot check %s (above %s)", p, path);
			break;
		}
		if (st.st_uid != 0 && (unsigned)st.st_uid != me)
			ret = anole_error_code(EPERM, "%s: the directory %s above it is owned by uid "
					       "%u, who could replace it: refusing to use it (use a "
					       "directory below ones only root or uid %u own)",
					       path, p, (unsigned)st.st_uid, me);
		else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
			ret = anole_error_code(EPERM, "%s: the directory %s above it is writable by "
					       "%s (mode %04o), who could replace it: refusing to use "
					       "it", path, p,
					       st.st_mode & S_IWOTH ? "others" : "its group",
					       (unsigned)(st.st_mode & 07777));
		if (slash == p)
			break;
	}
	free(p);
	return ret;
}

static int mkdir_parents(const char *path)
{
	char *p = xstrdup(path);
	int ret = 0;

	for (char *s = p + 1; *s && !ret; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			ret = anole_error(errno, "cannot create %s", p);
		*s = '/';
	}
	if (!ret && mkdir(p, 0700) < 0 && errno != EEXIST)
		ret = anole_error(errno, "cannot create %s", p);
	free(p);
	return ret;
}

int anole_privdir_open(const char *path, bool create)
{
	struct stat lst, st, rst;
	char *name = xstrdup(path), *real = NULL;
	size_t n = strlen(name);
	int fd = -1, ret;

	while (n > 1 && name[n - 1] == '/')    /* lstat of "dir/" would follow it */
		name[--n] = '\0';
	ret = create ? mkdir_parents(name) : 0;
	if (!ret && lstat(name, &lst) < 0)
		ret = anole_error(errno, "cannot use %s", path);
	if (!ret && S_ISLNK(lst.st_mode) && lst.st_uid != 0 && lst.st_uid != geteuid())
		ret = anole_error_code(EPERM, "%s is a symbolic link made by uid %u: refusing to "
				       "follow it (remove it)", path, (unsigned)lst.st_uid);
	if (!ret && (fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		ret = anole_error(errno, "cannot open %s", path);
	if (!ret && fstat(fd, &st) < 0)
		ret = anole_error(errno, "cannot stat %s", path);
	if (!ret)
		ret = check_entry(&st, path, NULL, true);
	if (!ret && !(real = realpath(name, NULL)))
		ret = anole_error(errno, "cannot resolve %s", path);
	if (!ret)
		ret = check_ancestors(real, path);
	/* what was checked by path is what is open */
	if (!ret && (stat(real, &rst) < 0 || rst.st_dev != st.st_dev || rst.st_ino != st.st_ino))
		ret = anole_error_code(EAGAIN, "%s changed while it was being checked", path);
	free(real);
	free(name);
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

/* Why openat with O_NOFOLLOW failed on name, as an error. */
static int open_error(int dirfd, const char *dir_path, const char *name, int err)
{
	struct stat st;

	if ((err == ELOOP || err == ENOTDIR) &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		return anole_error_code(EPERM, "%s/%s is a symbolic link (made by uid %u): refusing "
					"to follow it (remove it)", dir_path, name,
					(unsigned)st.st_uid);
	return anole_error(err, "cannot open %s/%s", dir_path, name);
}

int anole_privdir_sub(int dirfd, const char *dir_path, const char *name, bool create)
{
	struct stat st;
	int fd, ret;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return anole_error_code(EINVAL, "%s: bad directory name '%s'", dir_path, name);
	if (create && mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return anole_error(errno, "cannot create %s/%s", dir_path, name);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && !create ? -ENOENT : open_error(dirfd, dir_path, name, errno);
	ret = fstat(fd, &st) < 0 ? anole_error(errno, "cannot stat %s/%s", dir_path, name) :
	      check_entry(&st, dir_path, name, true);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int anole_privdir_file(int dirfd, const char *dir_path, const char *name, int flags)
{
	bool trunc = flags & O_TRUNC;
	struct stat st;
	int fd, ret;

	if (!*name || strchr(name, '/'))
		return anole_error_code(EINVAL, "%s: bad file name '%s'", dir_path, name);
	/* O_NONBLOCK: a FIFO put there must not hang the open; O_TRUNC only
	 * after the checks (the file may be someone else's) */
	fd = openat(dirfd, name, (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == ENOENT && !(flags & O_CREAT) ? -ENOENT :
		       open_error(dirfd, dir_path, name, errno);
	ret = fstat(fd, &st) < 0 ? anole_error(errno, "cannot stat %s/%s", dir_path, name) :
	      check_entry(&st, dir_path, name, false);
	if (!ret && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		ret = anole_error(errno, "%s/%s", dir_path, name);
	if (!ret && trunc && ftruncate(fd, 0) < 0)
		ret = anole_error(errno, "cannot truncate %s/%s", dir_path, name);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}
