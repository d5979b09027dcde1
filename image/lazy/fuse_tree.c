// SPDX-License-Identifier: Apache-2.0
/*
 * FUSE mode: serve the image's tree from its EROFS metadata with anole's
 * reader; file data comes through the lazy devices (chunk cache). Inode
 * numbers: FUSE's root (1) is the root nid, any other nid is nid + 2.
 */
#include "lazyd.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define TIMEOUT 86400.0

static struct lazyd *D(fuse_req_t req) { return fuse_req_userdata(req); }

static erofs_nid_t ino_to_nid(struct lazyd *d, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? d->img->root_nid : (erofs_nid_t)(ino - 2);
}

static fuse_ino_t nid_to_ino(struct lazyd *d, erofs_nid_t nid)
{
	return nid == d->img->root_nid ? FUSE_ROOT_ID : (fuse_ino_t)(nid + 2);
}

static void to_stat(struct lazyd *d, const struct erofs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = nid_to_ino(d, in->nid);
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_size = (off_t)in->size;
	st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	st->st_blksize = 4096;
	st->st_rdev = makedev(erofs_dev_major(in->rdev), erofs_dev_minor(in->rdev));
	st->st_mtim.tv_sec = st->st_atim.tv_sec = st->st_ctim.tv_sec = in->mtime;
	st->st_mtim.tv_nsec = st->st_atim.tv_nsec = st->st_ctim.tv_nsec = in->mtime_nsec;
}

static int get_inode(fuse_req_t req, fuse_ino_t ino, struct erofs_inode *in)
{
	struct lazyd *d = D(req);
	int ret = erofs_read_inode(d->img, ino_to_nid(d, ino), in);

	if (ret)
		fuse_reply_err(req, ret == -EFSCORRUPTED ? EIO : -ret);
	return ret;
}

static void tree_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lazyd *d = D(req);
	struct erofs_inode dir, in;
	struct { size_t len; erofs_nid_t nid; } c = { strlen(name), 0 };
	struct fuse_entry_param e = { 0 };
	int ret;

	if (get_inode(req, parent, &dir))
		return;
	if (!S_ISDIR(dir.mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = erofs_dir_lookup(d->img, &dir, name, c.len, &c.nid, NULL);
	if (ret) {
		fuse_reply_err(req, ret == -ENOENT ? ENOENT : EIO);
		return;
	}
	if (erofs_read_inode(d->img, c.nid, &in)) {
		fuse_reply_err(req, EIO);
		return;
	}
	e.ino = nid_to_ino(d, c.nid);
	e.attr_timeout = e.entry_timeout = TIMEOUT;
	to_stat(d, &in, &e.attr);
	fuse_reply_entry(req, &e);
}

static void tree_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct erofs_inode in;
	struct stat st;

	if (get_inode(req, ino, &in))
		return;
	to_stat(D(req), &in, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void tree_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct erofs_inode in;
	char buf[4097];
	ssize_t n;

	if (get_inode(req, ino, &in))
		return;
	n = erofs_readlink(D(req)->img, &in, buf, sizeof(buf));
	if (n < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_readlink(req, buf);
}

static void tree_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct erofs_inode in;

	if (get_inode(req, ino, &in))
		return;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void tree_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct erofs_inode in;
	char *buf;
	ssize_t n;

	if (get_inode(req, ino, &in))
		return;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* one deadline for the blob reads this read makes (one per chunk) */
	lazy_cache_begin_request(D(req)->cache);
	n = erofs_pread(D(req)->img, &in, buf, size, (uint64_t)off);
	lazy_cache_end_request();
	if (n < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* A directory's entries, read once at opendir. */
struct dir_listing {
	struct dir_ent { char *name; erofs_nid_t nid; unsigned ft; } *v;
	size_t n, alloc;
};

static int list_cb(void *opaque, const char *name, size_t namelen, erofs_nid_t nid, unsigned ft)
{
	struct dir_listing *l = opaque;

	xgrow(&l->v, &l->alloc, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = (struct dir_ent){ xstrndup(name, namelen), nid, ft };
	return 0;
}

static void free_listing(struct dir_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	free(l);
}

static void tree_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_listing *l;
	struct erofs_inode in;

	if (get_inode(req, ino, &in))
		return;
	if (!S_ISDIR(in.mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	if (erofs_iterate_dir(D(req)->img, &in, list_cb, l) < 0) {
		free_listing(l);
		fuse_reply_err(req, EIO);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)l;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

static const mode_t ft_mode[] = {
	[EROFS_FT_REG_FILE] = S_IFREG, [EROFS_FT_DIR] = S_IFDIR, [EROFS_FT_CHRDEV] = S_IFCHR,
	[EROFS_FT_BLKDEV] = S_IFBLK, [EROFS_FT_FIFO] = S_IFIFO, [EROFS_FT_SOCK] = S_IFSOCK,
	[EROFS_FT_SYMLINK] = S_IFLNK,
};

static void tree_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct dir_listing *l = (struct dir_listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
		struct stat st = { 0 };
		size_t n;

		st.st_ino = nid_to_ino(D(req), l->v[i].nid);
		st.st_mode = l->v[i].ft < EROFS_FT_MAX ? ft_mode[l->v[i].ft] : 0;
		n = fuse_add_direntry(req, buf + used, size - used, l->v[i].name, &st, (off_t)i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* readdir with attributes: `ls -l` needs no lookup round trip per name */
static void tree_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			     struct fuse_file_info *fi)
{
	struct lazyd *d = D(req);
	struct dir_listing *l = (struct dir_listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
		struct fuse_entry_param e = { 0 };
		struct erofs_inode in;
		bool dots = !strcmp(l->v[i].name, ".") || !strcmp(l->v[i].name, "..");
		size_t n;

		if (!dots && !erofs_read_inode(d->img, l->v[i].nid, &in)) {
			e.ino = nid_to_ino(d, l->v[i].nid);
			e.attr_timeout = e.entry_timeout = TIMEOUT;
			to_stat(d, &in, &e.attr);
		} else {
			/* no entry (and no lookup reference) for . and .. */
			e.attr.st_ino = nid_to_ino(d, l->v[i].nid);
			e.attr.st_mode = l->v[i].ft < EROFS_FT_MAX ? ft_mode[l->v[i].ft] : 0;
		}
		n = fuse_add_direntry_plus(req, buf + used, size - used, l->v[i].name, &e,
					   (off_t)i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void tree_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	free_listing((struct dir_listing *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

struct xattr_ctx {
	const char *want;           /* getxattr: the name; listxattr: NULL */
	struct strbuf out;
	bool found;
};

static int xattr_cb(void *opaque, const char *name, const void *value, size_t len, bool shared)
{
	struct xattr_ctx *c = opaque;

	if (!c->want) {
		strbuf_add(&c->out, name, strlen(name) + 1);
		return 0;
	}
	if (strcmp(name, c->want))
		return 0;
	strbuf_add(&c->out, value, len);
	c->found = true;
	return 1;
}

static void reply_xattr(fuse_req_t req, struct xattr_ctx *c, size_t size)
{
	if (!size)
		fuse_reply_xattr(req, c->out.len);
	else if (c->out.len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, c->out.buf, c->out.len);
}

static void tree_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct xattr_ctx c = { name, STRBUF_INIT, false };
	struct erofs_inode in;

	if (get_inode(req, ino, &in))
		return;
	if (erofs_iterate_xattrs(D(req)->img, &in, xattr_cb, &c) < 0)
		fuse_reply_err(req, EIO);
	else if (!c.found)
		fuse_reply_err(req, ENODATA);
	else
		reply_xattr(req, &c, size);
	strbuf_release(&c.out);
}

static void tree_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct xattr_ctx c = { NULL, STRBUF_INIT, false };
	struct erofs_inode in;

	if (get_inode(req, ino, &in))
		return;
	if (erofs_iterate_xattrs(D(req)->img, &in, xattr_cb, &c) < 0)
		fuse_reply_err(req, EIO);
	else
		reply_xattr(req, &c, size);
	strbuf_release(&c.out);
}

static void tree_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct lazyd *d = D(req);
	struct statvfs sv = {
		.f_bsize = d->img->blksz, .f_frsize = d->img->blksz,
		.f_blocks = d->img->blocks, .f_files = d->img->inos, .f_namemax = EROFS_NAME_LEN,
		.f_flag = ST_RDONLY,
	};

	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops lazyd_tree_ops = {
	.lookup = tree_lookup,
	.getattr = tree_getattr,
	.readlink = tree_readlink,
	.open = tree_open,
	.read = tree_read,
	.opendir = tree_opendir,
	.readdir = tree_readdir,
	.readdirplus = tree_readdirplus,
	.releasedir = tree_releasedir,
	.getxattr = tree_getxattr,
	.listxattr = tree_listxattr,
	.statfs = tree_statfs,
};
