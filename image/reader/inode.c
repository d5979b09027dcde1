// SPDX-License-Identifier: Apache-2.0
/*
 * On-disk inodes: compact (32 bytes) and extended (64 bytes). Everything a
 * later read relies on is validated here once: the inode, its inline
 * xattrs, inline tail and chunk index array lie inside the image, and the
 * flat data extent lies inside a device.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/xalloc.h"

#include <string.h>
#include <sys/stat.h>

static bool mode_ok(uint16_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK:
	case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return true;
	default:
		return false;
	}
}

static bool has_data(uint16_t mode)
{
	return S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode);
}

static void fill_i_u(struct erofs_inode *inode, const union erofs_inode_i_u *u)
{
	if (S_ISCHR(inode->mode) || S_ISBLK(inode->mode))
		inode->rdev = le32_to_cpu(u->rdev);
	else if (has_data(inode->mode))
		inode->raw_blkaddr = le32_to_cpu(u->raw_blkaddr);
	inode->chunkformat = le16_to_cpu(u->c.format);
	inode->compressed_blocks = le32_to_cpu(u->compressed_blocks);
}

static void fill_compact(struct erofs_image *img, struct erofs_inode *inode,
			 const struct erofs_inode_compact *c)
{
	inode->xattr_icount = le16_to_cpu(c->i_xattr_icount);
	inode->mode = le16_to_cpu(c->i_mode);
	inode->nlink = le16_to_cpu(c->i_nlink);
	inode->size = le32_to_cpu(c->i_size);
	/* i_mtime is relative to the build time (zero in older images) */
	inode->mtime = (int64_t)(img->build_time + le32_to_cpu(c->i_mtime));
	inode->mtime_nsec = img->build_time_nsec;
	inode->ino = le32_to_cpu(c->i_ino);
	inode->uid = le16_to_cpu(c->i_uid);
	inode->gid = le16_to_cpu(c->i_gid);
	fill_i_u(inode, &c->i_u);
}

static void fill_extended(struct erofs_inode *inode, const struct erofs_inode_extended *e)
{
	inode->xattr_icount = le16_to_cpu(e->i_xattr_icount);
	inode->mode = le16_to_cpu(e->i_mode);
	inode->nlink = le32_to_cpu(e->i_nlink);
	inode->size = le64_to_cpu(e->i_size);
	inode->mtime = (int64_t)le64_to_cpu(e->i_mtime);
	inode->mtime_nsec = le32_to_cpu(e->i_mtime_nsec);
	inode->ino = le32_to_cpu(e->i_ino);
	inode->uid = le32_to_cpu(e->i_uid);
	inode->gid = le32_to_cpu(e->i_gid);
	fill_i_u(inode, &e->i_u);
}

/* The chunk index array must lie inside the primary device. */
static int check_chunk_layout(struct erofs_image *img, struct erofs_inode *inode)
{
	unsigned unit;
	uint64_t nchunks, start, len;

	if (inode->chunkformat & ~EROFS_CHUNK_FORMAT_ALL)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "unsupported chunk format 0x%x", inode->chunkformat);
	inode->chunkbits = img->blkszbits +
			   (inode->chunkformat & EROFS_CHUNK_FORMAT_BLKBITS_MASK);
	unit = inode->chunkformat & EROFS_CHUNK_FORMAT_INDEXES ? 8 : 4;
	nchunks = inode->size ? ((inode->size - 1) >> inode->chunkbits) + 1 : 0;
	start = ALIGN_UP(erofs_inode_meta_end(inode), (uint64_t)unit);
	len = nchunks * unit;       /* nchunks < 2^55: no overflow */
	if (!erofs_dev_range_ok(img, 0, start, len))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "chunk index array (%llu entries at offset %llu) is beyond the end of the image",
				 (unsigned long long)nchunks, (unsigned long long)start);
	return 0;
}

/* Flat data: map the block part and the inline tail once so that corrupt
 * addresses are reported when the inode is read. */
static int check_flat_layout(struct erofs_image *img, struct erofs_inode *inode)
{
	struct erofs_map map;
	int ret;

	if (!inode->size)
		return 0;
	ret = erofs_map_blocks(img, inode, 0, &map);
	if (ret || map.logical + map.length >= inode->size)
		return ret;
	return erofs_map_blocks(img, inode, map.logical + map.length, &map);
}

static int check_layout(struct erofs_image *img, struct erofs_inode *inode)
{
	if (!has_data(inode->mode))
		return 0;       /* devices, fifos, sockets carry no data */
	switch (inode->layout) {
	case EROFS_INODE_FLAT_PLAIN:
	case EROFS_INODE_FLAT_INLINE:
		return check_flat_layout(img, inode);
	case EROFS_INODE_CHUNK_BASED:
		return check_chunk_layout(img, inode);
	default:
		return 0;       /* compressed: as the kernel, mapped when read */
	}
}

int erofs_read_inode(struct erofs_image *img, erofs_nid_t nid, struct erofs_inode *inode)
{
	union {
		struct erofs_inode_compact c;
		struct erofs_inode_extended e;
	} raw;
	uint64_t base = (uint64_t)img->meta_blkaddr << img->blkszbits;
	unsigned ifmt;
	int ret;

	memset(inode, 0, sizeof(*inode));
	inode->nid = nid;
	if (nid > (UINT64_MAX - base) / EROFS_ISLOT_SIZE ||
	    !erofs_dev_range_ok(img, 0, base + nid * EROFS_ISLOT_SIZE, sizeof(raw.c)))
		return erofs_err(img, nid, EFSCORRUPTED, "inode is beyond the end of the image");
	inode->iloc = base + nid * EROFS_ISLOT_SIZE;
	ret = erofs_dev_pread(img, 0, &raw.c, sizeof(raw.c), inode->iloc);
	if (ret)
		return ret;
	ifmt = le16_to_cpu(raw.c.i_format);
	if (ifmt >> EROFS_I_ALL_BITS)
		return erofs_err(img, nid, EFSCORRUPTED, "unsupported i_format 0x%x", ifmt);
	inode->version = erofs_i_version((uint16_t)ifmt);
	inode->layout = erofs_i_datalayout((uint16_t)ifmt);
	if (inode->layout >= EROFS_INODE_DATALAYOUT_MAX)
		return erofs_err(img, nid, EFSCORRUPTED, "unknown data layout %u", inode->layout);
	if (inode->version == EROFS_INODE_EXTENDED) {
		inode->inode_isize = sizeof(raw.e);
		if (!erofs_dev_range_ok(img, 0, inode->iloc, sizeof(raw.e)))
			return erofs_err(img, nid, EFSCORRUPTED,
					 "extended inode is beyond the end of the image");
		ret = erofs_dev_pread(img, 0, &raw.e, sizeof(raw.e), inode->iloc);
		if (ret)
			return ret;
		fill_extended(inode, &raw.e);
		if (inode->mtime_nsec >= 1000000000u)
			return erofs_err(img, nid, EFSCORRUPTED,
					 "mtime nanoseconds %u are not below one second",
					 inode->mtime_nsec);
	} else {
		inode->inode_isize = sizeof(raw.c);
		fill_compact(img, inode, &raw.c);
	}
	if (inode->size > INT64_MAX)    /* the kernel's loff_t */
		return erofs_err(img, nid, EFSCORRUPTED, "negative i_size");
	if (!mode_ok(inode->mode))
		return erofs_err(img, nid, EFSCORRUPTED, "bogus i_mode 0%o", inode->mode);
	inode->xattr_isize = erofs_xattr_ibody_size(inode->xattr_icount);
	if (!erofs_dev_range_ok(img, 0, inode->iloc,
				(uint64_t)inode->inode_isize + inode->xattr_isize))
		return erofs_err(img, nid, EFSCORRUPTED,
				 "inline xattrs (%u bytes) are beyond the end of the image",
				 inode->xattr_isize);
	return check_layout(img, inode);
}
