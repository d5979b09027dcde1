// SPDX-License-Identifier: Apache-2.0
#include "anole/fileio.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

	if (fsync(out->fd) < 0)
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
