// SPDX-License-Identifier: Apache-2.0
/*
 * Cache maintenance: list blobs and evict the least recently used ones that
 * no daemon holds (a daemon keeps a shared flock on CACHE/<hex>/lock).
 * Everything is opened relative to the checked cache directory, without
 * following symbolic links: gc runs as root on a cache others must not
 * be able to steer it out of.
 */
#include "anole/lazy.h"
#include "anole/error.h"
#include "anole/privdir.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_hex64(const char *s)
{
	size_t n = strlen(s);

	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static uint64_t disk_usage(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) ?
	       (uint64_t)st.st_blocks * 512 : 0;
}

static void read_entry(int dfd, const char *path, struct lazy_cache_entry *e)
{
	struct stat st;
	int fd;

	e->bytes = disk_usage(dfd, "data") + disk_usage(dfd, "map");
	fd = anole_privdir_file(dfd, path, "map", O_RDONLY);
	if (fd >= 0) {
		uint8_t buf[4096];
		ssize_t n;

		if (fstat(fd, &st) == 0)
			e->last_used = st.st_mtim.tv_sec;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n; i++)
				e->chunks_present += (uint64_t)__builtin_popcount(buf[i]);
		close(fd);
	}
	fd = anole_privdir_file(dfd, path, "lock", O_RDWR);
	if (fd >= 0) {
		e->in_use = flock(fd, LOCK_EX | LOCK_NB) < 0;
		close(fd);
	}
}

/*
 * The cache directory is checked as the daemon checks it (privdir.h), and
 * each blob's directory too: one that fails is left alone (its error is
 * logged), never read or removed.
 */
static int list_fd(const char *dir, int cfd, struct lazy_cache_entry **out, size_t *n)
{
	size_t alloc = 0;
	struct dirent *d;
	int lfd = dup(cfd);
	DIR *dp = lfd < 0 ? NULL : fdopendir(lfd);

	*out = NULL;
	*n = 0;
	if (!dp) {
		if (lfd >= 0)
			close(lfd);
		return anole_error(errno, "cannot read cache %s", dir);
	}
	while ((d = readdir(dp))) {
		struct lazy_cache_entry e = { 0 };
		struct strbuf path = STRBUF_INIT;
		int dfd;

		if (!is_hex64(d->d_name))
			continue;
		strbuf_addf(&path, "%s/%s", dir, d->d_name);
		dfd = anole_privdir_sub(cfd, dir, d->d_name, false);
		if (dfd >= 0) {
			memcpy(e.hex, d->d_name, 65);
			read_entry(dfd, path.buf, &e);
			close(dfd);
			xgrow(out, &alloc, *n + 1, sizeof(**out));
			(*out)[(*n)++] = e;
		}
		strbuf_release(&path);
	}
	closedir(dp);
	return 0;
}

static int open_cache(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0 && errno == ENOENT)
		return -ENOENT;         /* nothing cached yet */
	return anole_privdir_open(dir, false);
}

int lazy_cache_list(const char *dir, struct lazy_cache_entry **out, size_t *n)
{
	int cfd = open_cache(dir), ret;

	*out = NULL;
	*n = 0;
	if (cfd == -ENOENT)
		return 0;
	if (cfd < 0)
		return cfd;
	ret = list_fd(dir, cfd, out, n);
	close(cfd);
	return ret;
}

static int cmp_lru(const void *a, const void *b)
{
	const struct lazy_cache_entry *x = a, *y = b;

	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	return strcmp(x->hex, y->hex);
}

/* Remove one blob's directory if nobody holds it (checked under the lock). */
static int evict(int cfd, const char *dir, const char *hex)
{
	struct strbuf p = STRBUF_INIT;
	int dfd, lfd, ret = 0;

	strbuf_addf(&p, "%s/%s", dir, hex);
	dfd = anole_privdir_sub(cfd, dir, hex, false);
	if (dfd < 0) {
		strbuf_release(&p);
		return dfd;
	}
	lfd = anole_privdir_file(dfd, p.buf, "lock", O_RDWR);
	if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		ret = -EBUSY;
	} else if (lfd < 0 && lfd != -ENOENT) {
		ret = lfd;              /* not ours to remove */
	} else {
		unlinkat(dfd, "data", 0);
		unlinkat(dfd, "map", 0);
		unlinkat(dfd, "lock", 0);
		if (unlinkat(cfd, hex, AT_REMOVEDIR) < 0)
			ret = -errno;
	}
	if (lfd >= 0)
		close(lfd);
	close(dfd);
	strbuf_release(&p);
	return ret;
}

int lazy_cache_gc(const char *dir, uint64_t max_bytes, uint64_t *freed)
{
	struct lazy_cache_entry *v;
	uint64_t total = 0;
	size_t n;
	int evicted = 0;
	int cfd = open_cache(dir), ret;

	*freed = 0;
	if (cfd == -ENOENT)
		return 0;
	if (cfd < 0)
		return cfd;
	ret = list_fd(dir, cfd, &v, &n);
	if (ret) {
		close(cfd);
		return ret;
	}
	for (size_t i = 0; i < n; i++)
		total += v[i].bytes;
	qsort(v, n, sizeof(*v), cmp_lru);
	for (size_t i = 0; i < n && total > max_bytes; i++) {
		if (v[i].in_use || evict(cfd, dir, v[i].hex))
			continue;
		total -= v[i].bytes;
		*freed += v[i].bytes;
		evicted++;
	}
	free(v);
	close(cfd);
	return evicted;
}
