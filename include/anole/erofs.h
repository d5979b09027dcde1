/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EROFS image reader. Images are untrusted: every on-disk structure is
 * bounds-checked before use, every loop is bounded, and corruption is
 * reported as -EFSCORRUPTED (== -EUCLEAN) with a message naming the nid.
 *
 * The reader works on "devices": the primary image plus the extra devices
 * (blobs) of its device table, each a file descriptor or a memory buffer.
 * All reads go through erofs_dev_pread(), so a later backend (lazy fetch)
 * only has to provide that.
 */
#ifndef ANOLE_EROFS_H
#define ANOLE_EROFS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "anole/digest.h" /* anole_crc32c */
#include "anole/erofs_fs.h"

#ifndef EFSCORRUPTED
#define EFSCORRUPTED EUCLEAN
#endif

typedef uint64_t erofs_nid_t;

struct erofs_dev {
	int fd;                 /* -1 when mem is used */
	const uint8_t *mem;
	uint64_t size;          /* bytes */
	char *path;             /* for messages; may be NULL */
	/* Optional override for lazy backends: return 0 or -errno. */
	int (*pread)(struct erofs_dev *dev, void *buf, size_t len, uint64_t off);
	void *opaque;
};

struct erofs_image {
	struct erofs_super_block sb;     /* raw (little-endian) copy */
	unsigned blkszbits;
	uint32_t blksz;
	uint32_t feature_compat, feature_incompat;
	erofs_nid_t root_nid;
	uint64_t inos;
	uint64_t build_time;
	uint32_t build_time_nsec;
	uint32_t blocks;                 /* primary device blocks */
	uint32_t meta_blkaddr, xattr_blkaddr;
	unsigned ndevs;                  /* 1 + extra_devices */
	struct erofs_dev *devs;          /* devs[0] = primary */
	struct erofs_deviceslot *devslots; /* extra_devices slots, host copy */
	const char *name;                /* primary path, for messages */
	uint16_t device_id_mask;         /* chunk index device_id mask (kernel's) */
	unsigned sb_size;                /* 128 + 16 * sb_extslots */
	bool checksum_ok;                /* SB_CHKSUM set and verified */
	/* Reader errors are logged with anole_error_code() unless quiet is set;
	 * either way the last message, without the image name and nid, is kept
	 * in errmsg so that callers (check) can report it with a path. */
	bool quiet;
	char errmsg[512];
	/* compression (superblock and its per-algorithm config records) */
	uint16_t available_compr_algs;   /* bit per Z_EROFS_COMPRESSION_* */
	uint16_t lz4_max_distance;
	uint16_t lz4_max_pclusterblks;
	uint32_t lzma_dict_size;
	uint8_t deflate_windowbits;
	uint8_t zstd_windowlog;          /* window log - 10 */
	erofs_nid_t packed_nid;          /* FRAGMENTS: inode holding fragments, 0 = none */
	void *zcache;                    /* last decompressed extents (reader/data.c) */
};

struct erofs_inode {
	erofs_nid_t nid;
	uint64_t iloc;          /* byte offset of the inode on the primary device */
	unsigned version;       /* EROFS_INODE_COMPACT / EXTENDED */
	unsigned layout;        /* EROFS_INODE_FLAT_PLAIN ... */
	unsigned inode_isize;   /* 32 or 64 */
	unsigned xattr_isize;   /* inline xattr body size */
	uint16_t xattr_icount;
	uint16_t mode;
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t size;
	int64_t mtime;
	uint32_t mtime_nsec;
	uint32_t rdev;          /* encoded, see erofs_dev_major/minor */
	uint32_t raw_blkaddr;   /* flat layouts */
	uint32_t ino;           /* i_ino (32-bit stat number) */
	uint16_t chunkformat;   /* chunk-based */
	unsigned chunkbits;
	uint32_t compressed_blocks; /* compressed layouts: i_u, blocks in use */
};

/* Open an image file read-only, with extra devices in device-table order.
 * Fewer device paths than the table lists is allowed: reads that need a
 * missing device fail with -ENXIO naming the device. */
int erofs_image_open(struct erofs_image **out, const char *path,
		     const char *const *device_paths, unsigned ndevice_paths);
/* Same over memory (fuzzing, tests); buffers must outlive the image. */
int erofs_image_open_mem(struct erofs_image **out, const void *buf, size_t len,
			 const char *name);
void erofs_image_close(struct erofs_image *img);

/* Raw read from device `devid`, bounds-checked against its size. */
int erofs_dev_pread(struct erofs_image *img, unsigned devid, void *buf,
		    size_t len, uint64_t off);

int erofs_read_inode(struct erofs_image *img, erofs_nid_t nid, struct erofs_inode *inode);

/* Directory entries in on-disk order, "." and ".." included. Return
 * non-zero from the callback to stop (that value is returned). */
typedef int (*erofs_dirent_fn)(void *ctx, const char *name, size_t namelen,
			       erofs_nid_t nid, unsigned file_type);
int erofs_iterate_dir(struct erofs_image *img, const struct erofs_inode *dir,
		      erofs_dirent_fn fn, void *ctx);

/* One name in a directory, by binary search as the kernel does (names are
 * sorted across the directory). -ENOENT if absent. ftype may be NULL. */
int erofs_dir_lookup(struct erofs_image *img, const struct erofs_inode *dir, const char *name,
		     size_t len, erofs_nid_t *nid, unsigned *ftype);

/* Resolve a path ("/", "/a/b", "a/b") without following symlinks. */
int erofs_lookup(struct erofs_image *img, const char *path, struct erofs_inode *out);

/* Read file/dir/symlink data; short only at end of file. Returns bytes read
 * or -errno. Holes read as zeroes. */
ssize_t erofs_pread(struct erofs_image *img, const struct erofs_inode *inode,
		    void *buf, size_t len, uint64_t off);

/* Symlink target into buf (NUL-terminated); returns its length or -errno. */
ssize_t erofs_readlink(struct erofs_image *img, const struct erofs_inode *inode,
		       char *buf, size_t bufsz);

/* Every xattr of an inode, with its full name ("user.foo"). */
typedef int (*erofs_xattr_fn)(void *ctx, const char *name, const void *value,
			      size_t value_len, bool shared);
int erofs_iterate_xattrs(struct erofs_image *img, const struct erofs_inode *inode,
			 erofs_xattr_fn fn, void *ctx);

/*
 * Physical placement of file data, for inspect/check and the lazy loader.
 * For compressed inodes an extent is what one pcluster decodes to:
 * logical/length is the decoded range (the whole extent, the last one
 * ending at i_size), physical/plength the encoded bytes: a pcluster on a
 * device, the inline tail pcluster (inline_tail, ztailpacking) or, for
 * fragments, an offset in the packed inode (fragment; devid 0).
 */
struct erofs_map {
	uint64_t logical;       /* start offset in the file */
	uint64_t length;        /* bytes */
	unsigned devid;         /* 0 = primary */
	uint64_t physical;      /* byte offset on that device; UINT64_MAX = hole */
	bool inline_tail;       /* data inside the metadata (FLAT_INLINE tail) */
	uint64_t plength;       /* bytes at physical (== length unless encoded) */
	bool encoded;           /* compressed inode: decode plength bytes */
	bool fragment;          /* physical is an offset in the packed inode */
	bool partial_ref;       /* the pcluster decodes to more than this extent */
	bool partial;           /* may decode a prefix only (the kernel's rule) */
	unsigned algorithm;     /* encoded: Z_EROFS_COMPRESSION_* or SHIFTED/INTERLACED */
};
/* Map the extent containing `off`. */
int erofs_map_blocks(struct erofs_image *img, const struct erofs_inode *inode,
		     uint64_t off, struct erofs_map *map);

static inline unsigned erofs_mode_to_ftype(uint16_t mode)
{
	switch (mode & 0170000) {
	case 0100000: return EROFS_FT_REG_FILE;
	case 0040000: return EROFS_FT_DIR;
	case 0020000: return EROFS_FT_CHRDEV;
	case 0060000: return EROFS_FT_BLKDEV;
	case 0010000: return EROFS_FT_FIFO;
	case 0140000: return EROFS_FT_SOCK;
	case 0120000: return EROFS_FT_SYMLINK;
	default: return EROFS_FT_UNKNOWN;
	}
}

/* Layout names ("flat_plain", ...) and file type names ("file", "dir", ...). */
const char *erofs_layout_name(unsigned layout);
/* "lz4", "lzma", "deflate", "zstd", "plain" (shifted), "interlaced". */
const char *erofs_algorithm_name(unsigned algorithm);
const char *erofs_ftype_name(unsigned ftype);

/* Compute the superblock checksum of block 0 (buf = whole block 0). */
uint32_t erofs_sb_checksum(const uint8_t *block0, uint32_t blksz);
#endif
