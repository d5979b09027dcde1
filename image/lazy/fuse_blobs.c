// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel mode: a read-only FUSE directory with one file per blob, named by
 * its hex digest, whose contents are the blob's uncompressed view. The
 * kernel's EROFS reads them as its extra devices (direct I/O: no page
 * cache and no readahead of their own); every read lands in the chunk cache.
 */
#include "lazyd.h"
#include "anole/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <string.h>
#include <sys/stat.h>

#define TIMEOUT 86400.0         /* the tree never changes while mounted */

static struct lazyd *D(fuse_req_t req) { return fuse_req_userdata(req); }

static bool blob_of(struct lazyd *d, fuse_ino_t ino, struct lazy_blob **b)
{
	if (ino < 2 || ino - 2 >= d->ndevblobs)
		return false;
	*b = d->devblobs[ino - 2];
	return true;
}

static void fill_attr(struct lazyd *d, fuse_ino_t ino, struct stat *st)
{
	struct lazy_blob *b;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = 0;
	st->st_gid = 0;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return;
	}
	if (blob_of(d, ino, &b)) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)lazy_blob_size(b);
		st->st_blocks = (blkcnt_t)((lazy_blob_size(b) + 511) / 512);
	}
}

static void blobs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lazyd *d = D(req);
	struct fuse_entry_param e = { 0 };

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	for (unsigned i = 0; i < d->ndevblobs; i++) {
		if (strcmp(name, lazy_blob_info(d->devblobs[i])->hex))
			continue;
		e.ino = i + 2;
		e.attr_timeout = e.entry_timeout = TIMEOUT;
		fill_attr(d, e.ino, &e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	fuse_reply_err(req, ENOENT);
}

static void blobs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lazyd *d = D(req);
	struct lazy_blob *b;
	struct stat st;

	if (ino != FUSE_ROOT_ID && !blob_of(d, ino, &b)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(d, ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void blobs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lazy_blob *b;

	if (!blob_of(D(req), ino, &b)) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/*
	 * Direct I/O: the kernel's EROFS asks exactly for the blocks its files
	 * need (with the readahead of each file it serves), and we fetch the
	 * fetch units holding those, no more. Through the page cache, the blob
	 * file's own readahead would ask for the neighbouring chunks too (other
	 * files), and keep a second copy of every page.
	 */
	fi->direct_io = 1;
	atomic_fetch_add(&D(req)->open_files, 1);
	fuse_reply_open(req, fi);
}

static void blobs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	atomic_fetch_sub(&D(req)->open_files, 1);
	fuse_reply_err(req, 0);
}

static void blobs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct lazy_blob *b;
	uint64_t total;
	int ret;

	if (!blob_of(D(req), ino, &b)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	total = lazy_blob_size(b);
	if (off < 0 || (uint64_t)off >= total) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > total - (uint64_t)off)
		size = (size_t)(total - (uint64_t)off);
	ret = lazyd_reader_prepare(lazyd_reader(D(req), (unsigned)(ino - 2)), size, (uint64_t)off);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	{
		/* verified bytes go from the cache file to the kernel (splice
		 * when the kernel allows it: no copy through this process) */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
		bv.buf[0].fd = lazy_blob_data_fd(b);
		bv.buf[0].pos = off;
		ret = fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		if (ret)
			anole_debug("fuse reply of %zu bytes failed: %s", size, strerror(-ret));
	}
}

static void blobs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* large requests, few round trips; splice when available */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/*
	 * Blob files are opened for direct I/O (blobs_open): no readahead on
	 * them, and a read of EROFS reaches us as one request, up to max_pages
	 * of it, which libfuse sizes from max_write: allow 1 MiB.
	 */
	conn->max_write = 1u << 20;
}

static void blobs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	struct lazyd *d = D(req);
	char *buf;
	size_t used = 0;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = calloc(1, size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t i = off; i < (off_t)d->ndevblobs + 2; i++) {
		struct stat st = { 0 };
		const char *name = i == 0 ? "." : i == 1 ? ".." : lazy_blob_info(d->devblobs[i - 2])->hex;
		size_t n;

		st.st_ino = i < 2 ? FUSE_ROOT_ID : (fuse_ino_t)i;
		st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void blobs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };

	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops lazyd_blob_ops = {
	.init = blobs_init,
	.lookup = blobs_lookup,
	.getattr = blobs_getattr,
	.open = blobs_open,
	.release = blobs_release,
	.read = blobs_read,
	.readdir = blobs_readdir,
	.statfs = blobs_statfs,
};
