// SPDX-License-Identifier: Apache-2.0
/*
 * Scan: read the source directory into an in-memory tree. Directories are
 * walked with openat() relative to their parent, entries are sorted the way
 * EROFS directories must be (bytewise), and hard links found by (dev, ino)
 * become one node with several dirents.
 */
#include "builder.h"
#include "anole/error.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAX_DEPTH 4096           /* deeper trees cannot be walked by path anyway */

struct hardlink_key {
	uint64_t dev, ino;
};

static bool hardlink_eq(const void *entry, const void *key)
{
	const struct bnode *n = entry;
	const struct hardlink_key *k = key;

	return n->src_dev == k->dev && n->src_ino == k->ino;
}

static uint64_t hardlink_hash(const struct hardlink_key *k)
{
	return anole_hash_bytes(k, sizeof(*k), 0);
}

static int cmp_dirent(const void *a, const void *b)
{
	const struct bdirent *x = a, *y = b;

	/* strcmp compares as unsigned char: the EROFS order */
	return strcmp(x->name, y->name);
}

static void fill_from_stat(struct bnode *n, const struct stat *st)
{
	n->src_dev = st->st_dev;
	n->src_ino = st->st_ino;
	n->mode = st->st_mode;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->mtime = st->st_mtim.tv_sec;
	n->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	if (is_reg(st->st_mode)) {
		n->size = (uint64_t)st->st_size;
		/* fewer allocated bytes than the size: there are holes */
		n->sparse = (uint64_t)st->st_blocks * 512 < n->size;
	}
	if (is_dev(st->st_mode))
		n->rdev = erofs_encode_dev(major(st->st_rdev), minor(st->st_rdev));
}

static int check_device(const struct bnode *n, const struct stat *st)
{
	if (major(st->st_rdev) > 0xfff || minor(st->st_rdev) > 0xfffff)
		return anole_error_code(EOVERFLOW, "%s: device number %u:%u does not fit EROFS (12-bit major, 20-bit minor)",
					n->path, major(st->st_rdev), minor(st->st_rdev));
	return 0;
}

static int read_symlink(struct bnode *n, int dfd, const char *name, const struct stat *st)
{
	size_t cap = (size_t)st->st_size + 1;
	ssize_t len;

	if (cap < 64)
		cap = 64;
	for (;;) {
		n->link = xrealloc(n->link, cap);
		len = readlinkat(dfd, name, n->link, cap);
		if (len < 0)
			return anole_error(errno, "cannot read symlink %s", n->path);
		if ((size_t)len < cap)
			break;
		cap *= 2;
	}
	n->link[len] = '\0';
	if (len == 0 || len > 4095)
		return anole_error_code(ENAMETOOLONG, "%s: symlink target of %zd bytes (EROFS holds 1..4095)",
					n->path, len);
	n->size = (uint64_t)len;
	return 0;
}

static int scan_dir(struct builder *b, struct bnode *dir, int dfd, unsigned depth);

int builder_open(const struct bnode *n)
{
	const char *name;
	int pfd, fd, err;

	if (strlen(n->path) < PATH_MAX || n->parent == n)
		return open(n->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	/* too long for the kernel's path lookup: walk from a short ancestor */
	pfd = builder_open(n->parent);
	if (pfd < 0)
		return -1;
	name = strrchr(n->path, '/') + 1;
	fd = openat(pfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	err = errno;
	close(pfd);
	errno = err;
	return fd;
}

static struct bnode *new_node(struct builder *b, const char *parent_path, const char *name)
{
	struct bnode *n = xcalloc(1, sizeof(*n));
	struct strbuf p = STRBUF_INIT;

	strbuf_addstr(&p, parent_path);
	if (p.len && p.buf[p.len - 1] != '/')
		strbuf_addch(&p, '/');
	strbuf_addstr(&p, name);
	n->path = strbuf_detach(&p, NULL);
	return n;
}

static int scan_entry(struct builder *b, struct bnode *dir, int dfd, struct bdirent *de,
		      unsigned depth)
{
	struct hardlink_key key;
	struct bnode *n;
	struct stat st;
	int ret;

	if (fstatat(dfd, de->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return anole_error(errno, "cannot stat %s/%s", dir->path, de->name);

	key.dev = st.st_dev;
	key.ino = st.st_ino;
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		n = anole_hashmap_get(&b->hardlinks, hardlink_hash(&key), &key);
		if (n) {
			de->node = n;
			return 0;
		}
	}

	anole_progress_add(b->progress, 1);
	n = new_node(b, dir->path, de->name);
	de->node = n;
	n->parent = dir;
	fill_from_stat(n, &st);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
		anole_hashmap_put(&b->hardlinks, hardlink_hash(&key), n);

	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		ret = check_device(n, &st);
		if (ret)
			return ret;
		break;
	case S_IFLNK:
		ret = read_symlink(n, dfd, de->name, &st);
		if (ret)
			return ret;
		break;
	case S_IFDIR: {
		int sub = openat(dfd, de->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0)
			return anole_error(errno, "cannot open directory %s", n->path);
		ret = builder_read_xattrs(b, n, dfd, de->name);
		if (!ret)
			ret = scan_dir(b, n, sub, depth + 1);
		close(sub);
		return ret;
	}
	default:
		return anole_error_code(EINVAL, "%s: unsupported file type %o", n->path,
					st.st_mode & S_IFMT);
	}
	return builder_read_xattrs(b, n, dfd, de->name);
}

static int scan_dir(struct builder *b, struct bnode *dir, int dfd, unsigned depth)
{
	size_t alloc = 0;
	struct dirent *d;
	DIR *dp;
	int fd, ret = 0;

	if (depth > MAX_DEPTH)
		return anole_error_code(ELOOP, "%s: directory tree deeper than %u levels",
					dir->path, MAX_DEPTH);
	fd = dup(dfd);
	if (fd < 0 || !(dp = fdopendir(fd))) {
		ret = anole_error(errno, "cannot read directory %s", dir->path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	for (;;) {
		size_t len;

		errno = 0;
		d = readdir(dp);
		if (!d) {
			if (errno)
				ret = anole_error(errno, "cannot read directory %s", dir->path);
			break;
		}
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		len = strlen(d->d_name);
		if (len > EROFS_NAME_LEN) {
			ret = anole_error_code(ENAMETOOLONG, "%s/%s: name longer than %d bytes",
					       dir->path, d->d_name, EROFS_NAME_LEN);
			break;
		}
		xgrow(&dir->ents, &alloc, dir->nents + 1, sizeof(*dir->ents));
		dir->ents[dir->nents].name = xstrndup(d->d_name, len);
		dir->ents[dir->nents].namelen = (uint8_t)len;
		dir->ents[dir->nents].node = NULL;
		dir->nents++;
	}
	closedir(dp);
	if (ret)
		return ret;

	if (dir->nents > 1)
		qsort(dir->ents, dir->nents, sizeof(*dir->ents), cmp_dirent);
	for (size_t i = 0; i < dir->nents && !ret; i++)
		ret = scan_entry(b, dir, dfd, &dir->ents[i], depth);
	return ret;
}

/* Breadth-first placement order: a directory's children sit together. */
void builder_order_nodes(struct builder *b)
{
	size_t head = 0;

	b->root->visited = true;
	xgrow(&b->order, &b->order_alloc, 1, sizeof(*b->order));
	b->order[b->ninodes++] = b->root;
	while (head < b->ninodes) {
		struct bnode *dir = b->order[head++];

		if (!is_dir(dir->mode))
			continue;
		for (size_t i = 0; i < dir->nents; i++) {
			struct bnode *c = dir->ents[i].node;

			c->nlink++;
			if (is_dir(c->mode))
				dir->nlink++;
			if (c->visited)
				continue;
			c->visited = true;
			xgrow(&b->order, &b->order_alloc, b->ninodes + 1, sizeof(*b->order));
			b->order[b->ninodes++] = c;
		}
	}
	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = b->order[i];

		n->ino = (uint32_t)(i + 1);
		if (is_dir(n->mode))
			n->nlink += 2 - (n == b->root ? 0 : 1); /* "." and its parent's entry */
	}
}

/*
 * The order data is laid out in: depth first, a directory's blocks before
 * its children's, children in name order. That is the order tar, cp -a,
 * find and most programs walk a tree in, so reading a whole tree (or a
 * directory) moves forward through the image, as with mkfs.erofs. Inodes
 * keep their breadth-first order. Nodes outside the tree (the packed
 * inode) come last, hard links where the walk first meets them.
 */
struct bnode **builder_data_order(struct builder *b)
{
	struct bnode **out = xmalloc(b->ninodes * sizeof(*out));
	struct walk { struct bnode *dir; size_t next; } *stack = NULL;
	size_t n = 0, depth = 0, alloc = 0;

	for (size_t i = 0; i < b->ninodes; i++)
		b->order[i]->data_placed = false;
	b->root->data_placed = true;
	out[n++] = b->root;
	xgrow(&stack, &alloc, 1, sizeof(*stack));
	stack[depth++] = (struct walk){ b->root, 0 };
	while (depth) {
		struct walk *top = &stack[depth - 1];
		struct bnode *c;

		if (top->next == top->dir->nents) {
			depth--;
			continue;
		}
		c = top->dir->ents[top->next++].node;
		if (c->data_placed)     /* ".", "..", a hard link met before */
			continue;
		c->data_placed = true;
		out[n++] = c;
		if (is_dir(c->mode)) {
			xgrow(&stack, &alloc, depth + 1, sizeof(*stack));
			stack[depth++] = (struct walk){ c, 0 };
		}
	}
	for (size_t i = 0; i < b->ninodes; i++)
		if (!b->order[i]->data_placed)
			out[n++] = b->order[i];
	free(stack);
	return out;
}

int builder_scan(struct builder *b)
{
	const char *src = b->opts->src_dir;
	struct stat st;
	int fd, ret;

	fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return anole_error(errno, "cannot open source directory %s", src);
	if (fstat(fd, &st) < 0) {
		ret = anole_error(errno, "cannot stat %s", src);
		close(fd);
		return ret;
	}
	anole_hashmap_init(&b->hardlinks, hardlink_eq);
	b->root = xcalloc(1, sizeof(*b->root));
	b->root->path = xstrdup(src);
	b->root->parent = b->root;
	fill_from_stat(b->root, &st);
	b->progress = anole_progress_start("Scanning", 0, "files");
	ret = builder_read_xattrs(b, b->root, -1, NULL);
	if (!ret)
		ret = scan_dir(b, b->root, fd, 0);
	anole_progress_done(b->progress);
	b->progress = NULL;
	close(fd);
	anole_hashmap_free(&b->hardlinks);
	if (ret)
		return ret;
	builder_order_nodes(b);
	return 0;
}

static void free_node(struct bnode *n)
{
	for (size_t i = 0; i < n->nents; i++)
		free(n->ents[i].name);
	free(n->ents);
	free(n->xattrs);
	free(n->link);
	free(n->chunks);
	free(n->extents);
	free(n->path);
	free(n);
}

void builder_free_tree(struct builder *b)
{
	if (b->order) {
		for (size_t i = 0; i < b->ninodes; i++)
			free_node(b->order[i]);
	} else if (b->root) {
		/* scan failed before ordering: free what is reachable, once */
		struct bnode **stack = NULL;
		size_t n = 0, alloc = 0;

		b->root->visited = true;
		xgrow(&stack, &alloc, 1, sizeof(*stack));
		stack[n++] = b->root;
		while (n) {
			struct bnode *d = stack[--n];

			for (size_t i = 0; i < d->nents; i++) {
				struct bnode *c = d->ents[i].node;

				if (c && !c->visited) {
					c->visited = true;
					xgrow(&stack, &alloc, n + 1, sizeof(*stack));
					stack[n++] = c;
				}
			}
			free_node(d);
		}
		free(stack);
	}
	free(b->order);
	b->order = NULL;
	b->root = NULL;
}
