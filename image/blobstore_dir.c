// SPDX-License-Identifier: Apache-2.0
/*
 * Directory blob stores: DIR/<hex>, or DIR/blobs/sha256/<hex> when DIR is
 * an OCI image layout (DIR/oci-layout exists). Puts copy the file through a
 * temporary file, checking the digest on the way, and rename it into place.
 */
#include "blobstore_impl.h"

#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (1u << 20)

struct dir_store {
	char *dir;
	bool oci;
};

static char *dir_blob_path(const struct anole_blobstore *bs, const char *digest)
{
	const struct dir_store *d = bs->backend;
	char *p = xmalloc(strlen(d->dir) + 96);

	if (d->oci)
		sprintf(p, "%s/blobs/sha256/%s", d->dir, digest + 7);
	else
		sprintf(p, "%s/%s", d->dir, digest + 7);
	return p;
}

static int dir_read(struct bs_call *c, const char *digest, uint64_t off, void *buf, size_t len)
{
	char *path = dir_blob_path(c->bs, digest);
	int fd, ret;

	bs_count(&c->bs->n_requests, 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = errno == ENOENT ?
		      bs_fail(c, -ENOENT, "blob %s not found: %s does not exist", digest, path) :
		      bs_fail(c, errno, "cannot open %s: %s", path, strerror(errno));
		free(path);
		return ret;
	}
	ret = pread_full(fd, buf, len, off);
	if (ret == -ENODATA)
		ret = bs_fail(c, -ERANGE, "%s: bytes %" PRIu64 "-%" PRIu64 " are beyond the "
			      "end of the blob", path, off, off + len - 1);
	else if (ret)
		ret = bs_fail(c, ret, "cannot read %s: %s", path, strerror(-ret));
	else
		bs_count(&c->bs->n_bytes, len);
	close(fd);
	free(path);
	return ret;
}

static int dir_size(struct bs_call *c, const char *digest, uint64_t *size)
{
	char *path = dir_blob_path(c->bs, digest);
	struct stat st;
	int ret = 0;

	bs_count(&c->bs->n_requests, 1);
	if (stat(path, &st) < 0)
		ret = errno == ENOENT ?
		      bs_fail(c, -ENOENT, "blob %s not found: %s does not exist", digest, path) :
		      bs_fail(c, errno, "cannot stat %s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		ret = bs_fail(c, -EIO, "%s is not a regular file", path);
	else
		*size = (uint64_t)st.st_size;
	free(path);
	return ret;
}

static int mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int ret = 0;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			ret = anole_error(errno, "cannot create %s", p);
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return ret;
}

/* Copy size bytes of fd to out, hashing them; 0 when their SHA-256 is digest. */
static int copy_checked(int fd, uint64_t size, struct anole_output *out, const char *src,
			const char *digest)
{
	struct anole_digest_ctx *ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
	uint8_t *buf = xmalloc(COPY_BUF), md[ANOLE_DIGEST_MAX];
	uint64_t off = 0;
	char hex[65];
	int ret = ctx ? 0 : anole_error_code(ENOMEM, "cannot start a digest");

	while (!ret && off < size) {
		size_t n = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;

		ret = pread_full(fd, buf, n, off);
		if (ret) {
			ret = anole_error(-ret, "cannot read %s", src);
			break;
		}
		anole_digest_update(ctx, buf, n);
		ret = write_full(out->fd, buf, n);
		if (ret)
			ret = anole_error(-ret, "cannot write %s", out->tmp_path);
		off += n;
	}
	if (!ret && !(ret = anole_digest_final(ctx, md))) {
		anole_hex(md, 32, hex);
		if (strcmp(hex, digest + 7))
			ret = anole_error_code(EBADMSG, "%s does not match %s (its sha256 is %s)",
					       src, digest, hex);
	}
	anole_digest_free(ctx);
	free(buf);
	return ret;
}

static int dir_put(struct anole_blobstore *bs, const char *digest, int fd, uint64_t size,
		   const char *src)
{
	char *path = dir_blob_path(bs, digest), *slash = strrchr(path, '/');
	struct anole_output out;
	struct stat st;
	int ret;

	bs_count(&bs->n_requests, 1);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size) {
		free(path);
		return 1;
	}
	*slash = '\0';
	ret = mkdir_p(path);
	*slash = '/';
	if (ret || (ret = anole_output_open(&out, path))) {
		free(path);
		return ret;
	}
	ret = copy_checked(fd, size, &out, src, digest);
	if (ret)
		anole_output_abort(&out);
	else if (!(ret = anole_output_commit(&out)))
		bs_count(&bs->n_bytes_sent, size);
	free(path);
	return ret;
}

static void dir_close(struct anole_blobstore *bs)
{
	struct dir_store *d = bs->backend;

	if (d)
		free(d->dir);
	free(d);
}

static const struct blobstore_ops dir_ops = {
	.kind = "dir",
	.read = dir_read,
	.size = dir_size,
	.put = dir_put,
	.close = dir_close,
};

int blobstore_dir_open(struct anole_blobstore *bs, const char *path)
{
	struct dir_store *d;
	struct stat st;
	char *layout;
	size_t len = strlen(path);

	if (!len)
		return anole_error_code(EINVAL, "blob store: empty directory name");
	d = xcalloc(1, sizeof(*d));
	bs->ops = &dir_ops;
	bs->backend = d;
	while (len > 1 && path[len - 1] == '/')
		len--;
	d->dir = xstrndup(path, len);
	if (stat(d->dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return anole_error(ENOTDIR, "blob store %s", d->dir);
	layout = xmalloc(len + 16);
	sprintf(layout, "%s/oci-layout", d->dir);
	d->oci = access(layout, F_OK) == 0;
	free(layout);
	bs_add_source(bs, d->dir, false, NULL);
	return 0;
}
