// SPDX-License-Identifier: Apache-2.0
/*
 * Cache maintenance: list blobs and evict the least recently used ones that
 * no daemon holds (a daemon keeps a shared flock on CACHE/<hex>/lock).
 */
#include "anole/lazy.h"
#include "anole/error.h"
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

	return fstatat(dfd, name, &st, 0) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void read_entry(int dfd, struct lazy_cache_entry *e)
{
	struct stat st;
	int fd;

	e->bytes = disk_usage(dfd, "data") + disk_usage(dfd, "map");
	if (fstatat(dfd, "map", &st, 0) == 0) {
		e->last_used = st.st_mtim.tv_sec;
		fd = openat(dfd, "map", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			uint8_t buf[4096];
			ssize_t n;

			while ((n = read(fd, buf, sizeof(buf))) > 0)
				for (ssize_t i = 0; i < n; i++)
					e->chunks_present += (uint64_t)__builtin_popcount(buf[i]);
			close(fd);
		}
	}
	fd = openat(dfd, "lock", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		e->in_use = flock(fd, LOCK_EX | LOCK_NB) < 0;
		close(fd);
	}
}

int lazy_cache_list(const char *dir, struct lazy_cache_entry **out, size_t *n)
{
	size_t alloc = 0;
	struct dirent *d;
	DIR *dp = opendir(dir);

	*out = NULL;
	*n = 0;
	if (!dp)
		return errno == ENOENT ? 0 : anole_error(errno, "cannot read cache %s", dir);
	while ((d = readdir(dp))) {
		struct lazy_cache_entry e = { 0 };
		int dfd;

		if (!is_hex64(d->d_name))
			continue;
		dfd = openat(dirfd(dp), d->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		memcpy(e.hex, d->d_name, 65);
		read_entry(dfd, &e);
		close(dfd);
		xgrow(out, &alloc, *n + 1, sizeof(**out));
		(*out)[(*n)++] = e;
	}
	closedir(dp);
	return 0;
}

static int cmp_lru(const void *a, const void *b)
{
	const struct lazy_cache_entry *x = a, *y = b;

	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	return strcmp(x->hex, y->hex);
}

/* Remove one blob's directory if nobody holds it (checked under the lock). */
static int evict(const char *dir, const char *hex)
{
	struct strbuf p = STRBUF_INIT;
	int dfd, lfd, ret = 0;

	strbuf_addf(&p, "%s/%s", dir, hex);
	dfd = open(p.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		strbuf_release(&p);
		return -errno;
	}
	lfd = openat(dfd, "lock", O_RDWR | O_CLOEXEC);
	if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		ret = -EBUSY;
	} else {
		unlinkat(dfd, "data", 0);
		unlinkat(dfd, "map", 0);
		unlinkat(dfd, "lock", 0);
		if (rmdir(p.buf) < 0)
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
	int ret = lazy_cache_list(dir, &v, &n);

	*freed = 0;
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++)
		total += v[i].bytes;
	qsort(v, n, sizeof(*v), cmp_lru);
	for (size_t i = 0; i < n && total > max_bytes; i++) {
		if (v[i].in_use || evict(dir, v[i].hex))
			continue;
		total -= v[i].bytes;
		*freed += v[i].bytes;
		evicted++;
	}
	free(v);
	return evicted;
}
