// SPDX-License-Identifier: Apache-2.0
/*
 * `anole image unpack`: extract an image into an empty directory.
 *
 * Safety: every file is created relative to a directory fd that we opened
 * ourselves with O_NOFOLLOW|O_DIRECTORY, names are validated (no "/", ".",
 * ".."), files are created with O_EXCL and nodes with *at() calls that do
 * not follow symlinks. Only one directory fd is held at a time: descending
 * opens the child, ascending opens ".." and checks it is the directory we
 * left (device and inode), so depth is not limited by the fd limit.
 *
 * Metadata order per inode: data, owner, xattrs (chown clears
 * security.capability), mode (chown clears setuid), times. Directories get
 * theirs when left, i.e. after their contents, deepest first.
 */
#include "reader/internal.h"

#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/hashmap.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define UP_BUF_SIZE (1u << 20)
#define UP_ZERO_BLOCK 4096u     /* all-zero runs of this size become holes */

/* An inode met before: a hard link's first path, or a directory entered */
struct seen_nid {
	erofs_nid_t nid;
	char *path;             /* relative to dest; NULL for directories */
};

struct up_entry {
	char *name;
	erofs_nid_t nid;
};

struct up_frame {
	struct erofs_inode inode;
	struct up_entry *ents;
	size_t nents, next;
	dev_t dev;
	ino_t ino;
	size_t pathlen;         /* length of up->path before this directory */
};

struct up {
	struct erofs_image *img;
	const struct anole_unpack_opts *opts;
	int rootfd, curfd;
	bool chown;
	struct up_frame *frames;
	size_t nframes, frames_alloc;
	struct strbuf path;     /* of the current directory, relative to dest */
	struct anole_hashmap links, dirs;      /* nid -> struct seen_nid */
	uint8_t *buf;
	struct anole_progress *progress;
};

/* ------------------------------------------------------------ nid map */

static bool seen_eq(const void *entry, const void *key)
{
	return ((const struct seen_nid *)entry)->nid == *(const erofs_nid_t *)key;
}

static struct seen_nid *seen_find(struct anole_hashmap *map, erofs_nid_t nid)
{
	return anole_hashmap_get(map, anole_hash_u64(nid), &nid);
}

static void seen_add(struct anole_hashmap *map, erofs_nid_t nid, char *path)
{
	struct seen_nid *e = xmalloc(sizeof(*e));

	*e = (struct seen_nid){ .nid = nid, .path = path };
	anole_hashmap_put(map, anole_hash_u64(nid), e);
}

static void seen_free(struct anole_hashmap *map)
{
	struct seen_nid *e;
	size_t pos = 0;

	while ((e = anole_hashmap_next(map, &pos))) {
		free(e->path);
		free(e);
	}
	anole_hashmap_free(map);
}

/* ------------------------------------------------------------ messages */

static void entry_path(struct up *up, const char *name, struct strbuf *out)
{
	strbuf_addch(out, '/');
	if (up->path.len)
		strbuf_add(out, up->path.buf, up->path.len);
	if (name) {
		if (up->path.len)
			strbuf_addch(out, '/');
		strbuf_addstr(out, name);
	}
}

/* A problem in the image, found by the reader (message in img->errmsg);
 * err is a positive errno (-ret of the reader's call). */
static int image_error(struct up *up, const char *name, erofs_nid_t nid, int err)
{
	struct strbuf p = STRBUF_INIT;

	entry_path(up, name, &p);
	err = anole_error_code(err, "%s: %s (nid %llu): %s", up->img->name, p.buf,
			       (unsigned long long)nid, up->img->errmsg);
	strbuf_release(&p);
	return err;
}

/* A failure on the destination, err a positive errno. */
static int dest_error_code(struct up *up, const char *name, const char *what, int err)
{
	struct strbuf p = STRBUF_INIT;

	strbuf_addstr(&p, up->opts->dest);
	if (up->path.len) {
		strbuf_addch(&p, '/');
		strbuf_add(&p, up->path.buf, up->path.len);
	}
	if (name) {
		strbuf_addch(&p, '/');
		strbuf_addstr(&p, name);
	}
	err = anole_error(err, "unpacking %s: %s: %s", up->img->name, p.buf, what);
	strbuf_release(&p);
	return err;
}

/* A failed system call on the destination (errno says why). */
static int dest_error(struct up *up, const char *name, const char *what)
{
	return dest_error_code(up, name, what, errno);
}

/* ------------------------------------------------------------ metadata */

struct xattr_target {
	struct up *up;
	int fd;                 /* fsetxattr() on this, or */
	const char *name;       /* lsetxattr() on /proc/self/fd/curfd/name */
	bool failed;            /* a set failed (and was reported) */
};

static int set_xattr_cb(void *ctx, const char *name, const void *value, size_t len,
			bool shared)
{
	struct xattr_target *t = ctx;
	char proc[64 + EROFS_NAME_LEN];
	int ret;

	if (t->fd >= 0) {
		ret = fsetxattr(t->fd, name, value, len, 0);
	} else {
		/* no fd for symlinks and nodes: the magic link names our own
		 * directory fd, and lsetxattr() does not follow the last part */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", t->up->curfd, t->name);
		ret = lsetxattr(proc, name, value, len, 0);
	}
	if (ret) {
		char what[320];

		snprintf(what, sizeof(what), "cannot set xattr %s", name);
		t->failed = true;
		return dest_error(t->up, t->name, what);
	}
	return 0;
}

/* Owner, xattrs, mode, times of a created inode; fd < 0: use curfd/name. */
static int set_meta(struct up *up, int fd, const char *name, const struct erofs_inode *inode)
{
	struct timespec ts[2] = {
		{ .tv_sec = inode->mtime, .tv_nsec = inode->mtime_nsec },
		{ .tv_sec = inode->mtime, .tv_nsec = inode->mtime_nsec },
	};
	struct xattr_target t = { .up = up, .fd = fd, .name = name };
	bool link = S_ISLNK(inode->mode);
	int ret;

	if (up->chown) {
		ret = fd >= 0 ? fchown(fd, inode->uid, inode->gid)
			      : fchownat(up->curfd, name, inode->uid, inode->gid,
					 AT_SYMLINK_NOFOLLOW);
		if (ret)
			return dest_error(up, name, "cannot change the owner");
	}
	ret = erofs_iterate_xattrs(up->img, inode, set_xattr_cb, &t);
	if (ret)
		return t.failed ? ret : image_error(up, name, inode->nid, -ret);
	if (!link) {
		ret = fd >= 0 ? fchmod(fd, inode->mode & 07777)
			      : fchmodat(up->curfd, name, inode->mode & 07777, AT_SYMLINK_NOFOLLOW);
		if (ret)
			return dest_error(up, name, "cannot set the mode");
	}
	ret = fd >= 0 ? futimens(fd, ts) : utimensat(up->curfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (ret)
		return dest_error(up, name, "cannot set the times");
	return 0;
}

/* ------------------------------------------------------------ files */

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* Write a buffer at off, leaving aligned all-zero blocks as holes (unless
 * dense). */
static int write_sparse(int fd, const uint8_t *p, size_t n, uint64_t off, bool dense)
{
	if (dense)
		return pwrite_full(fd, p, n, off);
	while (n) {
		size_t step = UP_ZERO_BLOCK - (size_t)(off % UP_ZERO_BLOCK);
		int ret;

		if (step > n)
			step = n;
		if (!all_zero(p, step)) {
			ret = pwrite_full(fd, p, step, off);
			if (ret)
				return ret;
		}
		p += step;
		off += step;
		n -= step;
	}
	return 0;
}

static int write_data(struct up *up, int fd, const char *name, const struct erofs_inode *inode)
{
	uint64_t off = 0;
	int ret;

	/* maps cover the file in order, each at least one byte long */
	while (off < inode->size) {
		struct erofs_map map;
		uint64_t end;

		ret = erofs_map_blocks(up->img, inode, off, &map);
		if (ret)
			return image_error(up, name, inode->nid, -ret);
		end = map.logical + map.length;
		if (map.physical == UINT64_MAX && !up->opts->dense) {
			off = end;      /* a hole: ftruncate() below makes it */
			continue;
		}
		while (off < end) {
			size_t want = end - off > UP_BUF_SIZE ? UP_BUF_SIZE : (size_t)(end - off);
			ssize_t got = erofs_pread(up->img, inode, up->buf, want, off);

			if (got < 0)
				return image_error(up, name, inode->nid, (int)-got);
			if ((size_t)got != want) {
				snprintf(up->img->errmsg, sizeof(up->img->errmsg), "short read");
				return image_error(up, name, inode->nid, EIO);
			}
			ret = write_sparse(fd, up->buf, want, off, up->opts->dense);
			if (ret) {
				errno = -ret;
				return dest_error(up, name, "write failed");
			}
			off += want;
		}
	}
	if (ftruncate(fd, (off_t)inode->size))
		return dest_error(up, name, "cannot set the size");
	return 0;
}

static int make_file(struct up *up, const char *name, const struct erofs_inode *inode)
{
	int fd = openat(up->curfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	int ret;

	if (fd < 0)
		return dest_error(up, name, "cannot create");
	ret = write_data(up, fd, name, inode);
	if (!ret)
		ret = set_meta(up, fd, name, inode);
	if (close(fd) && !ret)
		ret = dest_error(up, name, "close failed");
	return ret;
}

static int make_symlink(struct up *up, const char *name, const struct erofs_inode *inode)
{
	char target[EROFS_SYMLINK_MAX + 1];
	ssize_t n = erofs_readlink(up->img, inode, target, sizeof(target));

	if (n < 0)
		return image_error(up, name, inode->nid, (int)-n);
	if (symlinkat(target, up->curfd, name))
		return dest_error(up, name, "cannot create the symlink");
	return set_meta(up, -1, name, inode);
}

static int make_node(struct up *up, const char *name, const struct erofs_inode *inode)
{
	dev_t rdev = 0;

	if (S_ISCHR(inode->mode) || S_ISBLK(inode->mode))
		rdev = makedev(erofs_dev_major(inode->rdev), erofs_dev_minor(inode->rdev));
	if (mknodat(up->curfd, name, (inode->mode & S_IFMT) | 0600, rdev))
		return dest_error(up, name, "cannot create the node");
	return set_meta(up, -1, name, inode);
}

/* Open a directory we created, given its path relative to dest, one
 * component at a time without following symlinks: a descriptor or -errno. */
static int open_beneath(struct up *up, const char *rel, size_t len)
{
	int fd = dup(up->rootfd);
	size_t i = 0;

	if (fd < 0)
		return -errno;
	while (fd >= 0 && i < len) {
		size_t n = 0;
		char comp[EROFS_NAME_LEN + 1];
		int next;

		while (i + n < len && rel[i + n] != '/')
			n++;
		if (n > EROFS_NAME_LEN) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, rel + i, n);
		comp[n] = '\0';
		next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			next = -errno;
		close(fd);
		fd = next;
		i += n + 1;
	}
	return fd;
}

static int make_link(struct up *up, const char *name, const char *first)
{
	const char *slash = strrchr(first, '/');
	const char *base = slash ? slash + 1 : first;
	int dfd = open_beneath(up, first, slash ? (size_t)(slash - first) : 0);
	int ret = 0;

	if (dfd < 0)
		return dest_error_code(up, name, "cannot open the directory of the first hard link",
				       -dfd);
	if (linkat(dfd, base, up->curfd, name, 0))
		ret = dest_error(up, name, "cannot create the hard link");
	close(dfd);
	return ret;
}

static int extract_nondir(struct up *up, const char *name, const struct erofs_inode *inode)
{
	struct seen_nid *first;
	int ret;

	if (inode->nlink > 1) {
		first = seen_find(&up->links, inode->nid);
		if (first)
			return make_link(up, name, first->path);
	}
	if (S_ISREG(inode->mode))
		ret = make_file(up, name, inode);
	else if (S_ISLNK(inode->mode))
		ret = make_symlink(up, name, inode);
	else
		ret = make_node(up, name, inode);
	if (!ret && inode->nlink > 1) {
		struct strbuf p = STRBUF_INIT;

		if (up->path.len) {
			strbuf_add(&p, up->path.buf, up->path.len);
			strbuf_addch(&p, '/');
		}
		strbuf_addstr(&p, name);
		seen_add(&up->links, inode->nid, strbuf_detach(&p, NULL));
	}
	return ret;
}

/* ------------------------------------------------------------ directories */

struct collect {
	struct up *up;
	struct up_frame *f;
	erofs_nid_t parent;
	size_t alloc;
	bool dot, dotdot;
	int err;
};

static int collect_error(struct collect *c, const char *msg)
{
	snprintf(c->up->img->errmsg, sizeof(c->up->img->errmsg), "%s", msg);
	c->err = image_error(c->up, NULL, c->f->inode.nid, EFSCORRUPTED);
	return 1;
}

/* "." and ".." are not extracted, but a corrupt one must not hide the
 * entries it replaced: each appears once and points where it should. */
static int collect_dots(struct collect *c, size_t len, erofs_nid_t nid)
{
	bool *seen = len == 1 ? &c->dot : &c->dotdot;

	if (*seen)
		return collect_error(c, len == 1 ? "more than one \".\" entry"
					     : "more than one \"..\" entry");
	*seen = true;
	if (nid != (len == 1 ? c->f->inode.nid : c->parent))
		return collect_error(c, len == 1 ? "\".\" does not point to the directory"
					     : "\"..\" does not point to the parent directory");
	return 0;
}

static int collect_cb(void *ctx, const char *name, size_t len, erofs_nid_t nid, unsigned ftype)
{
	struct collect *c = ctx;

	if ((len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
		return collect_dots(c, len, nid);
	if (!erofs_name_ok(name, len)) {
		struct strbuf msg = STRBUF_INIT;

		strbuf_addstr(&msg, "directory entry with an invalid name \"");
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)name[i];

			if (ch < 0x20 || ch == 0x7f || ch == '\\' || ch == '"')
				strbuf_addf(&msg, "\\x%02x", ch);
			else
				strbuf_addch(&msg, (char)ch);
		}
		strbuf_addstr(&msg, "\" (\"/\" or NUL inside, or a dot name)");
		collect_error(c, msg.buf);
		strbuf_release(&msg);
		return 1;
	}
	xgrow(&c->f->ents, &c->alloc, c->f->nents + 1, sizeof(*c->f->ents));
	c->f->ents[c->f->nents++] = (struct up_entry){ .name = xstrndup(name, len), .nid = nid };
	return 0;
}

/* Push a frame for a directory whose fd is up->curfd. */
static int push_dir(struct up *up, const struct erofs_inode *inode, size_t pathlen)
{
	struct collect c = {
		.up = up,
		.parent = up->nframes ? up->frames[up->nframes - 1].inode.nid : inode->nid,
	};
	struct up_frame *f;
	struct stat st;
	int ret;

	if (seen_find(&up->dirs, inode->nid)) {
		snprintf(up->img->errmsg, sizeof(up->img->errmsg),
			 "directory reachable twice (hard-linked directory or cycle)");
		return image_error(up, NULL, inode->nid, EFSCORRUPTED);
	}
	seen_add(&up->dirs, inode->nid, NULL);
	if (fstat(up->curfd, &st))
		return dest_error(up, NULL, "stat failed");
	xgrow(&up->frames, &up->frames_alloc, up->nframes + 1, sizeof(*up->frames));
	f = &up->frames[up->nframes++];
	*f = (struct up_frame){ .inode = *inode, .dev = st.st_dev, .ino = st.st_ino,
				.pathlen = pathlen };
	c.f = f;
	ret = erofs_iterate_dir(up->img, inode, collect_cb, &c);
	if (c.err)
		return c.err;
	if (ret < 0)
		return image_error(up, NULL, inode->nid, -ret);
	return 0;
}

static int enter_dir(struct up *up, const char *name, const struct erofs_inode *inode)
{
	size_t pathlen = up->path.len;
	int fd;

	if (mkdirat(up->curfd, name, 0700))
		return dest_error(up, name, "cannot create the directory");
	fd = openat(up->curfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dest_error(up, name, "cannot open the directory");
	close(up->curfd);
	up->curfd = fd;
	if (up->path.len)
		strbuf_addch(&up->path, '/');
	strbuf_addstr(&up->path, name);
	return push_dir(up, inode, pathlen);
}

/* Finish the current directory: back to its parent, then its metadata. */
static int leave_dir(struct up *up)
{
	struct up_frame *f = &up->frames[up->nframes - 1];
	struct up_frame *parent = up->nframes > 1 ? f - 1 : NULL;
	int pfd = -1, ret;
	struct stat st;

	if (parent) {
		pfd = openat(up->curfd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0)
			return dest_error(up, NULL, "cannot open the parent directory");
		if (fstat(pfd, &st)) {
			ret = dest_error(up, NULL, "cannot stat the parent directory");
			close(pfd);
			return ret;
		}
		if (st.st_dev != parent->dev || st.st_ino != parent->ino) {
			close(pfd);
			errno = ESTALE;
			return dest_error(up, NULL, "directory was moved during the unpack");
		}
	}
	ret = set_meta(up, up->curfd, NULL, &f->inode);
	for (size_t i = 0; i < f->nents; i++)
		free(f->ents[i].name);
	free(f->ents);
	strbuf_setlen(&up->path, f->pathlen);
	up->nframes--;
	if (parent) {
		close(up->curfd);
		up->curfd = pfd;
	}
	return ret;
}

static int extract_entry(struct up *up, const struct up_entry *e)
{
	struct erofs_inode inode;
	int ret = erofs_read_inode(up->img, e->nid, &inode);

	if (ret)
		return image_error(up, e->name, e->nid, -ret);
	anole_progress_add(up->progress, 1);
	if (S_ISDIR(inode.mode))
		return enter_dir(up, e->name, &inode);
	return extract_nondir(up, e->name, &inode);
}

/* Depth-first without recursion: the frames are the explicit stack. */
static int extract_tree(struct up *up)
{
	struct erofs_inode root;
	int ret = erofs_read_inode(up->img, up->img->root_nid, &root);

	if (ret)
		return image_error(up, NULL, up->img->root_nid, -ret);
	if (!S_ISDIR(root.mode)) {
		snprintf(up->img->errmsg, sizeof(up->img->errmsg), "the root is not a directory");
		return image_error(up, NULL, root.nid, EFSCORRUPTED);
	}
	ret = push_dir(up, &root, 0);
	while (!ret && up->nframes) {
		struct up_frame *f = &up->frames[up->nframes - 1];

		if (f->next < f->nents)
			ret = extract_entry(up, &f->ents[f->next++]);
		else
			ret = leave_dir(up);
	}
	return ret;
}

/* ------------------------------------------------------------ destination */

static int open_dest(const char *dest)
{
	int fd, dfd;
	DIR *d;
	struct dirent *de;
	bool empty = true;

	if (mkdir(dest, 0700) && errno != EEXIST)
		return anole_error(errno, "cannot create %s", dest);
	fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return anole_error(errno, "cannot open %s", dest);
	dfd = dup(fd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		close(fd);
		return anole_error(errno, "cannot read %s", dest);
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	if (!empty) {
		close(fd);
		return anole_error_code(ENOTEMPTY, "%s exists and is not empty", dest);
	}
	return fd;
}

static int unpack_open(struct erofs_image *img, const struct anole_unpack_opts *opts)
{
	struct up up = { .img = img, .opts = opts, .path = STRBUF_INIT };
	int ret;

	up.chown = !opts->no_owner && geteuid() == 0;
	ret = open_dest(opts->dest);
	if (ret < 0)
		return ret;
	up.rootfd = ret;
	up.curfd = dup(up.rootfd);
	if (up.curfd < 0) {
		close(up.rootfd);
		return anole_error(errno, "dup");
	}
	up.buf = xmalloc(UP_BUF_SIZE);
	anole_hashmap_init(&up.links, seen_eq);
	anole_hashmap_init(&up.dirs, seen_eq);
	up.progress = anole_progress_start("Unpacking", img->inos <= UINT32_MAX ? img->inos : 0,
					   "inodes");
	img->quiet = true;      /* reader errors are reported here, with paths */
	ret = extract_tree(&up);
	anole_progress_done(up.progress);
	while (up.nframes) {    /* after an error */
		struct up_frame *f = &up.frames[--up.nframes];

		for (size_t i = 0; i < f->nents; i++)
			free(f->ents[i].name);
		free(f->ents);
	}
	free(up.frames);
	seen_free(&up.links);
	seen_free(&up.dirs);
	strbuf_release(&up.path);
	free(up.buf);
	close(up.curfd);
	close(up.rootfd);
	return ret;
}

int anole_image_unpack(const struct anole_unpack_opts *opts)
{
	struct erofs_image *img;
	int ret;

	ret = erofs_image_open(&img, opts->image, opts->devices, opts->ndevices);
	if (ret)
		return ret;
	ret = unpack_open(img, opts);
	erofs_image_close(img);
	return ret;
}
