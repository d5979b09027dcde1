// SPDX-License-Identifier: Apache-2.0
/*
 * Directories: blocks of blksz bytes, each an array of 12-byte dirents
 * followed by the names. Every name offset is checked before use; the
 * number of entries comes from the first name offset, so loops are bounded
 * by the block size.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool erofs_name_ok(const char *name, size_t len)
{
	if (!len || len > EROFS_NAME_LEN)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return !memchr(name, '/', len) && !memchr(name, '\0', len);
}

static int parse_block(struct erofs_image *img, const struct erofs_inode *dir,
		       const uint8_t *blk, unsigned size, uint64_t blkno,
		       erofs_dirent_fn fn, void *ctx)
{
	const struct erofs_dirent *de = (const struct erofs_dirent *)blk;
	unsigned nameoff0, n;
	char name[EROFS_NAME_LEN + 1];

	if (size < sizeof(*de))
		return erofs_err(img, dir->nid, EFSCORRUPTED,
				 "directory block %llu is too short (%u bytes)",
				 (unsigned long long)blkno, size);
	nameoff0 = le16_to_cpu(de[0].nameoff);
	if (nameoff0 < sizeof(*de) || nameoff0 >= size || nameoff0 % sizeof(*de))
		return erofs_err(img, dir->nid, EFSCORRUPTED,
				 "directory block %llu: bad first name offset %u",
				 (unsigned long long)blkno, nameoff0);
	n = nameoff0 / sizeof(*de);
	for (unsigned i = 0; i < n; i++) {
		unsigned off = le16_to_cpu(de[i].nameoff), len;
		int ret;

		if (off < nameoff0 || off >= size)
			return erofs_err(img, dir->nid, EFSCORRUPTED,
					 "directory block %llu, entry %u: bad name offset %u",
					 (unsigned long long)blkno, i, off);
		if (i + 1 < n) {
			unsigned next = le16_to_cpu(de[i + 1].nameoff);

			if (next <= off || next > size)
				return erofs_err(img, dir->nid, EFSCORRUPTED,
						 "directory block %llu, entry %u: bad name offset %u after %u",
						 (unsigned long long)blkno, i + 1, next, off);
			len = next - off;
		} else {
			/* the last name ends at the first NUL or the block end */
			const uint8_t *nul = memchr(blk + off, '\0', size - off);

			len = nul ? (unsigned)(nul - (blk + off)) : size - off;
		}
		if (!len || len > EROFS_NAME_LEN)
			return erofs_err(img, dir->nid, EFSCORRUPTED,
					 "directory block %llu, entry %u: name length %u is out of range",
					 (unsigned long long)blkno, i, len);
		memcpy(name, blk + off, len);
		name[len] = '\0';
		ret = fn(ctx, name, len, le64_to_cpu(de[i].nid), de[i].file_type);
		if (ret)
			return ret;
	}
	return 0;
}

int erofs_iterate_dir(struct erofs_image *img, const struct erofs_inode *dir,
		      erofs_dirent_fn fn, void *ctx)
{
	uint8_t *blk;
	int ret = 0;

	if (!S_ISDIR(dir->mode))
		return erofs_err(img, dir->nid, ENOTDIR, "not a directory");
	blk = xmalloc(img->blksz);
	/* bounded: the data was range-checked, and a bad block stops us */
	for (uint64_t pos = 0; pos < dir->size && !ret; pos += img->blksz) {
		uint64_t left = dir->size - pos;
		unsigned size = left < img->blksz ? (unsigned)left : img->blksz;
		ssize_t n = erofs_pread(img, dir, blk, size, pos);

		if (n < 0)
			ret = (int)n;
		else if ((unsigned)n != size)
			ret = erofs_err(img, dir->nid, EIO, "short directory read");
		else
			ret = parse_block(img, dir, blk, size, pos >> img->blkszbits, fn, ctx);
	}
	free(blk);
	return ret;
}

struct lookup_ctx {
	const char *name;
	size_t len;
	erofs_nid_t nid;
	unsigned ftype;
	bool found;
};

static int lookup_cb(void *opaque, const char *name, size_t len, erofs_nid_t nid,
		     unsigned ftype)
{
	struct lookup_ctx *lc = opaque;

	if (len != lc->len || memcmp(name, lc->name, len))
		return 0;
	lc->nid = nid;
	lc->ftype = ftype;
	lc->found = true;
	return 1;
}

struct first_ctx {
	char name[EROFS_NAME_LEN + 1];
	size_t len;
	erofs_nid_t nid;
	unsigned ftype;
};

static int first_cb(void *opaque, const char *name, size_t len, erofs_nid_t nid, unsigned ftype)
{
	struct first_ctx *f = opaque;

	memcpy(f->name, name, len);
	f->len = len;
	f->nid = nid;
	f->ftype = ftype;
	return 1;
}

static int dir_block(struct erofs_image *img, const struct erofs_inode *dir, uint8_t *blk,
		     uint64_t blkno, erofs_dirent_fn fn, void *ctx)
{
	uint64_t pos = blkno << img->blkszbits, left = dir->size - pos;
	unsigned size = left < img->blksz ? (unsigned)left : img->blksz;
	ssize_t n = erofs_pread(img, dir, blk, size, pos);

	if (n < 0)
		return (int)n;
	if ((unsigned)n != size)
		return erofs_err(img, dir->nid, EIO, "short directory read");
	return parse_block(img, dir, blk, size, blkno, fn, ctx);
}

static int dirent_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/*
 * Names are sorted across the whole directory (as the kernel's lookup
 * assumes): binary-search the blocks by their first name, then scan one.
 */
int erofs_dir_lookup(struct erofs_image *img, const struct erofs_inode *dir, const char *name,
		     size_t len, erofs_nid_t *nid, unsigned *ftype)
{
	uint64_t lo = 0, hi, cand = 0;
	uint8_t *blk;
	struct lookup_ctx lc = { .name = name, .len = len };
	int ret = 0;

	if (!S_ISDIR(dir->mode))
		return erofs_err(img, dir->nid, ENOTDIR, "not a directory");
	if (!dir->size)
		return -ENOENT;
	hi = (dir->size + img->blksz - 1) >> img->blkszbits;
	blk = xmalloc(img->blksz);
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct first_ctx f = { .len = 0 };
		int c;

		ret = dir_block(img, dir, blk, mid, first_cb, &f);
		if (ret < 0)
			goto out;
		c = dirent_name_cmp(name, len, f.name, f.len);
		if (!c) {
			*nid = f.nid;
			if (ftype)
				*ftype = f.ftype;
			ret = 0;
			goto out;
		}
		if (c > 0) {
			cand = mid;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	ret = dir_block(img, dir, blk, cand, lookup_cb, &lc);
	if (ret < 0)
		goto out;
	if (!lc.found) {
		ret = -ENOENT;
		goto out;
	}
	*nid = lc.nid;
	if (ftype)
		*ftype = lc.ftype;
	ret = 0;
out:
	free(blk);
	return ret;
}

int erofs_lookup(struct erofs_image *img, const char *path, struct erofs_inode *out)
{
	const char *p = path;
	int ret;

	ret = erofs_read_inode(img, img->root_nid, out);
	if (ret)
		return ret;
	if (!S_ISDIR(out->mode))
		return erofs_err(img, out->nid, EFSCORRUPTED, "the root inode is not a directory");
	/* each pass consumes one component of the (finite) path */
	while (*p) {
		struct lookup_ctx lc = { .name = p };

		if (*p == '/') {
			p++;
			continue;
		}
		lc.len = strcspn(p, "/");
		if (lc.len > EROFS_NAME_LEN)
			return erofs_err(img, EROFS_NID_NONE, ENAMETOOLONG,
					 "%.*s: name too long", (int)(p - path + lc.len), path);
		if (!S_ISDIR(out->mode))
			return erofs_err(img, EROFS_NID_NONE, ENOTDIR, "%.*s: not a directory",
					 (int)(p - path), path);
		ret = erofs_dir_lookup(img, out, p, lc.len, &lc.nid, NULL);
		if (ret == -ENOENT)
			return erofs_err(img, EROFS_NID_NONE, ENOENT,
					 "%.*s: no such file or directory",
					 (int)(p - path + lc.len), path);
		if (ret < 0)
			return ret;
		ret = erofs_read_inode(img, lc.nid, out);
		if (ret)
			return ret;
		p += lc.len;
	}
	return 0;
}
