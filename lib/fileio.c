// SPDX-License-Identifier: Apache-2.0
#include "anole/fileio.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int copy_by_reading(int in_fd, uint64_t in_off, int out_fd, uint64_t out_off,
			   uint64_t len)
{
	size_t bufsz = len < (1u << 20) ? (size_t)len : (1u << 20);
	char *buf = xmalloc(bufsz ? bufsz : 1);
	int ret = 0;

	while (len && !ret) {
		size_t n = len < bufsz ? (size_t)len : bufsz;

		ret = pread_full(in_fd, buf, n, in_off);
		if (!ret)
			ret = pwrite_full(out_fd, buf, n, out_off);
		in_off += n;
		out_off += n;
		len -= n;
	}
	free(buf);
	return ret;
}

int anole_copy_range(int in_fd, uint64_t in_off, int out_fd, uint64_t out_off, uint64_t len)
{
	while (len) {
		loff_t ioff = (loff_t)in_off, ooff = (loff_t)out_off;
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t got = copy_file_range(in_fd, &ioff, out_fd, &ooff, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP || errno == EBADF)
				return copy_by_reading(in_fd, in_off, out_fd, out_off, len);
			return -errno;
		}
		if (got == 0)
			return -ENODATA;
		in_off += (uint64_t)got;
		out_off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	return 0;
}

int anole_digest_file(int fd, uint64_t len, unsigned alg, uint8_t out[32])
{
	struct anole_digest_ctx *ctx = anole_digest_new((enum anole_digest_alg)alg);
	size_t bufsz = 1u << 20;
	uint8_t *buf = xmalloc(bufsz);
	uint64_t off = 0;
	int ret = ctx ? 0 : -ENOMEM;

	while (!ret && off < len) {
		size_t n = len - off < bufsz ? (size_t)(len - off) : bufsz;

		ret = pread_full(fd, buf, n, off);
		if (!ret)
			ret = anole_digest_update(ctx, buf, n);
		off += n;
	}
	if (!ret)
		ret = anole_digest_final(ctx, out);
	anole_digest_free(ctx);
	free(buf);
	return ret;
}

/*
 * Temp files still open are removed at exit, so that an error path that
 * returns early, or a fatal signal turned into exit by the command, never
 * leaves a half-written file behind.
 */
#define MAX_PENDING 64
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static char *pending[MAX_PENDING];
static int atexit_done;

static void remove_pending(void)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending[i])
			unlink(pending[i]);
}

/* Only async-signal-safe calls: unlink, then die of the same signal. */
static void remove_pending_on_signal(int sig)
{
	remove_pending();
	signal(sig, SIG_DFL);
	raise(sig);
}

void anole_output_cleanup_on_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], remove_pending_on_signal);
}

static void track(char *path, int add)
{
	pthread_mutex_lock(&pending_lock);
	if (!atexit_done) {
		atexit(remove_pending);
		atexit_done = 1;
	}
	for (int i = 0; i < MAX_PENDING; i++) {
		if (add && !pending[i]) {
			pending[i] = path;
			break;
		}
		if (!add && pending[i] == path) {
			pending[i] = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&pending_lock);
}

int anole_output_open(struct anole_output *out, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = slash ? slash + 1 : path;
	size_t n = dirlen + strlen(base) + 16;

	out->no_sync = false;
	out->path = xstrdup(path);
	out->tmp_path = xmalloc(n);
	memcpy(out->tmp_path, path, dirlen);
	snprintf(out->tmp_path + dirlen, n - dirlen, ".%s.XXXXXX", base);
	out->fd = mkostemp(out->tmp_path, O_CLOEXEC);
	if (out->fd < 0) {
		int err = errno;

		free(out->path);
		free(out->tmp_path);
		out->path = out->tmp_path = NULL;
		return anole_error(err, "cannot create output next to %s", path);
	}
	fchmod(out->fd, 0644);
	track(out->tmp_path, 1);
	return 0;
}

int anole_output_commit(struct anole_output *out)
{
	int ret = 0;

	if (!out->no_sync && fsync(out->fd) < 0)
		ret = anole_error(errno, "cannot flush %s", out->tmp_path);
	if (close(out->fd) < 0 && !ret)
		ret = anole_error(errno, "cannot close %s", out->tmp_path);
	out->fd = -1;
	if (!ret && rename(out->tmp_path, out->path) < 0)
		ret = anole_error(errno, "cannot rename %s to %s", out->tmp_path, out->path);
	if (ret)
		unlink(out->tmp_path);
	track(out->tmp_path, 0);
	free(out->tmp_path);
	free(out->path);
	out->tmp_path = out->path = NULL;
	return ret;
}

void anole_output_rename_target(struct anole_output *out, const char *path)
{
	free(out->path);
	out->path = xstrdup(path);
}

void anole_output_abort(struct anole_output *out)
{
	if (!out->tmp_path)
		return;
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
	unlink(out->tmp_path);
	track(out->tmp_path, 0);
	free(out->tmp_path);
	free(out->path);
	out->tmp_path = out->path = NULL;
}

int anole_temp_dir(const char *prefix, char **path)
{
	const char *base = getenv("TMPDIR");
	size_t n = strlen(base && *base ? base : "/var/tmp") + strlen(prefix) + 16;
	char *dir = xmalloc(n);

	snprintf(dir, n, "%s/%s.XXXXXX", base && *base ? base : "/var/tmp", prefix);
	if (!mkdtemp(dir)) {
		int ret = anole_error(errno, "cannot create a temporary directory %s", dir);

		free(dir);
		*path = NULL;
		return ret;
	}
	*path = dir;
	return 0;
}

/*
 * Depth first, by path, never following symbolic links, and staying on the
 * tree's file system: a directory on another device (something mounted
 * there) is left alone, and so its parent stays too. Only directories are
 * compared: on overlayfs (a container's /var/tmp, an anole OS's /var) a
 * file reports its layer's device, not the mount's, and nftw's FTW_MOUNT
 * skipped every file there. A directory's names are read before any of
 * them is removed, and no descriptor is held across the recursion.
 */
static int remove_in(struct strbuf *path, dev_t dev, int ret)
{
	struct strbuf names = STRBUF_INIT;
	size_t base = path->len;
	struct dirent *de;
	DIR *d = opendir(path->buf);

	if (!d)
		return ret ? ret : anole_error(errno, "cannot read %s", path->buf);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strbuf_add(&names, de->d_name, strlen(de->d_name) + 1);
	closedir(d);
	for (size_t off = 0; off < names.len; off += strlen(names.buf + off) + 1) {
		struct stat st;
		int err = 0;

		strbuf_setlen(path, base);
		strbuf_addf(path, "/%s", names.buf + off);
		if (lstat(path->buf, &st) < 0)
			err = errno;
		else if (!S_ISDIR(st.st_mode))
			err = unlink(path->buf) < 0 ? errno : 0;
		else if (st.st_dev != dev)
			err = EBUSY;    /* a mount point: not ours to empty */
		else {
			ret = remove_in(path, dev, ret);
			err = rmdir(path->buf) < 0 ? errno : 0;
		}
		if (err && err != ENOENT && !ret)
			ret = anole_error(err, "cannot remove %s", path->buf);
	}
	strbuf_setlen(path, base);
	strbuf_release(&names);
	return ret;
}

int anole_remove_tree(const char *path)
{
	struct strbuf p = STRBUF_INIT;
	struct stat st;
	int ret = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : anole_error(errno, "cannot remove %s", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? anole_error(errno, "cannot remove %s", path) : 0;
	strbuf_addstr(&p, path);
	ret = remove_in(&p, st.st_dev, 0);
	if (rmdir(path) < 0 && errno != ENOENT && !ret)
		ret = anole_error(errno, "cannot remove %s", path);
	strbuf_release(&p);
	return ret;
}

int anole_read_value(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	return (int)n;
}

int anole_read_u64(const char *path, uint64_t *v)
{
	char buf[64], *end;
	int ret = anole_read_value(path, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno || end == buf ? -EINVAL : 0;
}

int anole_write_whole(const char *path, const void *data, size_t len, bool create, bool sync)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	size_t off = 0;
	int ret = 0;

	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t w = write(fd, (const char *)data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ret = -errno;
			break;
		}
		off += (size_t)w;
	}
	/* EINVAL, EROFS: /proc and /sys files have no fsync */
	if (!ret && sync && fsync(fd) && errno != EINVAL && errno != EROFS)
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

int anole_write_value(const char *path, const char *value)
{
	return *value ? anole_write_whole(path, value, strlen(value), false, false)
		      : anole_write_whole(path, "\n", 1, false, false);
}

int anole_read_file(const char *path, size_t max, struct strbuf *sb)
{
	size_t start = sb->len;
	/* opened without waiting for a FIFO's writer, then read blocking: a
	 * pipe's content is read whole, and a FIFO nobody writes to reads as
	 * empty instead of blocking its reader forever */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int fl = fd < 0 ? -1 : fcntl(fd, F_GETFL);

	if (fd < 0)
		return -errno;
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	for (;;) {
		ssize_t r;

		strbuf_grow(sb, 4096);
		r = read(fd, sb->buf + sb->len, sb->alloc - sb->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? -errno : 0;

			close(fd);
			sb->buf[sb->len] = '\0';
			return err;
		}
		if (sb->len - start + (size_t)r > max) {
			close(fd);
			strbuf_setlen(sb, start);
			return -EFBIG;
		}
		strbuf_setlen(sb, sb->len + (size_t)r);
	}
}
