/* SPDX-License-Identifier: Apache-2.0 */
/* Private helpers of the EROFS reader and of check/unpack/inspect. */
#ifndef ANOLE_READER_INTERNAL_H
#define ANOLE_READER_INTERNAL_H
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "anole/erofs.h"
#include "anole/image.h"
#include "anole/strbuf.h"

#define EROFS_NID_NONE UINT64_MAX
#define EROFS_SYMLINK_MAX 4095     /* a target longer than this is corrupt */

/*
 * Report a problem found in the image: kept in img->errmsg and, unless
 * img->quiet, logged as "IMAGE: nid N: message". Returns -err.
 */
int erofs_err(struct erofs_image *img, erofs_nid_t nid, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline bool erofs_layout_compressed(unsigned layout)
{
	return layout == EROFS_INODE_COMPRESSED_FULL ||
	       layout == EROFS_INODE_COMPRESSED_COMPACT;
}

/* The kernel refuses extents decoding to more than this (and pclusters
 * above Z_EROFS_PCLUSTER_MAX_SIZE) with -EOPNOTSUPP. */
#define Z_EROFS_PCLUSTER_MAX_DSIZE (12u << 20)

/* The per-image cache of decoded extents (data.c). */
void *erofs_zcache_new(void);
void erofs_zcache_free(void *cache);

/*
 * Compressed inodes (zmap.c): map the extent holding `off` as the kernel's
 * z_erofs_map_blocks_iter() does, then extend it to its whole decoded
 * length (the FIEMAP lookahead). Errors are reported with erofs_err().
 */
int z_erofs_map_blocks(struct erofs_image *img, const struct erofs_inode *inode,
		       uint64_t off, struct erofs_map *map);

/* What a compressed inode's map header says, for inspect. */
struct z_erofs_info {
	unsigned advise;                /* Z_EROFS_ADVISE_* */
	unsigned algs[2];               /* HEAD1, HEAD2 algorithms */
	unsigned lclusterbits;
	unsigned idata_size;            /* ztailpacking inline pcluster */
	uint64_t fragmentoff;
	bool whole_fragment;            /* all data in the packed inode */
};
int z_erofs_inode_info(struct erofs_image *img, const struct erofs_inode *inode,
		       struct z_erofs_info *info);

/*
 * Decoding one pcluster (decompress.c). `in` is the stored pcluster;
 * exactly `outlen` bytes are produced or an error returned. zero_padding:
 * skip leading zero bytes, looking at most pad_scan bytes for the payload
 * start (the kernel looks inside the first block only). partial: the
 * pcluster may hold more than outlen bytes. interlaced_shift: for
 * INTERLACED, blocksize - (extent start % blocksize).
 */
struct z_erofs_req {
	unsigned algorithm;
	const uint8_t *in;
	size_t inlen;
	uint8_t *out;
	size_t outlen;
	bool zero_padding, partial;
	size_t pad_scan;
	size_t interlaced_shift;
	uint32_t lzma_dict_size;
	unsigned zstd_windowlog;        /* window log - 10, as configured */
};
/* Returns 0, -EFSCORRUPTED (bad data), -EOPNOTSUPP or -ENOMEM; *why says
 * what went wrong. */
int z_erofs_decode(const struct z_erofs_req *rq, char *why, size_t whylen);

/* Byte offset of the first byte after inode + inline xattrs (checked at
 * erofs_read_inode() time not to overflow). */
static inline uint64_t erofs_inode_meta_end(const struct erofs_inode *inode)
{
	return inode->iloc + inode->inode_isize + inode->xattr_isize;
}

/* Display name of a device: its path or "device N". buf is 32 bytes. */
const char *erofs_dev_name(struct erofs_image *img, unsigned devid, char buf[32]);

/* Is [off, off+len) inside device devid: its size when present, else the
 * size its device-table slot declares (or anything, if that is 0)? */
bool erofs_dev_range_ok(struct erofs_image *img, unsigned devid, uint64_t off, uint64_t len);

/* Name of one feature bit ("sb_chksum", "chunked_file"), NULL if unknown. */
const char *erofs_feature_name(bool incompat, uint32_t bit);

/*
 * The xattr name filter (COMPAT_XATTR_FILTER, honoured by the kernel only
 * when the superblock's xattr_filter_reserved is 0): a set bit in the
 * inode's filter means "no xattr hashing to this bit", so getxattr() of such
 * a name fails without looking. erofs_xattr_filter_bit() is that bit for a
 * full name, -1 for names without a short prefix.
 */
bool erofs_xattr_filter_active(const struct erofs_image *img);
int erofs_xattr_filter(struct erofs_image *img, const struct erofs_inode *inode,
		       uint32_t *filter);
int erofs_xattr_filter_bit(const char *name);

/* Check and inspect over an image that is already open (fuzzing, tests). */
int anole_image_check_open(struct erofs_image *img, const struct anole_check_opts *opts,
			   struct anole_check_result *res);
int anole_image_inspect_open(struct erofs_image *img, const struct anole_inspect_opts *opts,
			     struct strbuf *out);

/* Is this a name a directory entry may have (non-empty, no '/' or NUL,
 * at most 255 bytes, not "." or "..")? */
bool erofs_name_ok(const char *name, size_t len);
#endif
