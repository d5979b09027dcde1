/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EROFS on-disk format: the structures anole writes and reads.
 *
 * All fields are little-endian. Only the parts of the format that anole
 * emits or must understand are described; field names follow the kernel's
 * so that a reader can cross-check with fs/erofs/erofs_fs.h.
 * Every struct has a static size assertion: the layout is the contract.
 */
#ifndef ANOLE_EROFS_FS_H
#define ANOLE_EROFS_FS_H

#include <stdint.h>
#include <assert.h>

#define EROFS_SUPER_MAGIC        0xE0F5E1E2u
#define EROFS_SUPER_OFFSET       1024u
#define EROFS_ISLOT_BITS         5            /* inodes live on 32-byte slots */
#define EROFS_ISLOT_SIZE         (1u << EROFS_ISLOT_BITS)
#define EROFS_NULL_ADDR          0xFFFFFFFFu  /* "no block": a hole */
#define EROFS_NAME_LEN           255
#define EROFS_MIN_BLKSZBITS      9
#define EROFS_MAX_BLKSZBITS      12           /* kernel: at most PAGE_SHIFT */

/* feature_compat: unknown bits are ignored by readers */
#define EROFS_FEATURE_COMPAT_SB_CHKSUM       0x00000001u
#define EROFS_FEATURE_COMPAT_MTIME           0x00000002u
#define EROFS_FEATURE_COMPAT_XATTR_FILTER    0x00000004u
#define EROFS_FEATURE_COMPAT_SHARED_EA_IN_METABOX 0x00000008u

/* feature_incompat: a reader must refuse unknown bits */
#define EROFS_FEATURE_INCOMPAT_ZERO_PADDING  0x00000001u
#define EROFS_FEATURE_INCOMPAT_COMPR_CFGS    0x00000002u
#define EROFS_FEATURE_INCOMPAT_BIG_PCLUSTER  0x00000002u
#define EROFS_FEATURE_INCOMPAT_CHUNKED_FILE  0x00000004u
#define EROFS_FEATURE_INCOMPAT_DEVICE_TABLE  0x00000008u
#define EROFS_FEATURE_INCOMPAT_COMPR_HEAD2   0x00000008u
#define EROFS_FEATURE_INCOMPAT_ZTAILPACKING  0x00000010u
#define EROFS_FEATURE_INCOMPAT_FRAGMENTS     0x00000020u
#define EROFS_FEATURE_INCOMPAT_DEDUPE        0x00000020u
#define EROFS_FEATURE_INCOMPAT_XATTR_PREFIXES 0x00000040u
#define EROFS_FEATURE_INCOMPAT_48BIT         0x00000080u
#define EROFS_FEATURE_INCOMPAT_METABOX       0x00000100u

/* The incompat bits anole's reader understands today (compressed files
 * included; not 48-bit addressing, metabox or long xattr prefixes). */
#define ANOLE_EROFS_INCOMPAT_SUPPORTED \
	(EROFS_FEATURE_INCOMPAT_CHUNKED_FILE | EROFS_FEATURE_INCOMPAT_DEVICE_TABLE | \
	 EROFS_FEATURE_INCOMPAT_ZERO_PADDING | EROFS_FEATURE_INCOMPAT_COMPR_CFGS | \
	 EROFS_FEATURE_INCOMPAT_ZTAILPACKING | EROFS_FEATURE_INCOMPAT_FRAGMENTS)

struct erofs_super_block {
	uint32_t magic;
	uint32_t checksum;          /* crc32c of block 0 from byte 1024, see super */
	uint32_t feature_compat;
	uint8_t  blkszbits;
	uint8_t  sb_extslots;
	uint16_t root_nid;          /* 16 bits: root must be within 2 MiB of meta */
	uint64_t inos;
	uint64_t build_time;        /* mtime of every compact inode (seconds) */
	uint32_t build_time_nsec;   /* ... and its nanoseconds */
	uint32_t blocks;            /* primary device size in blocks */
	uint32_t meta_blkaddr;
	uint32_t xattr_blkaddr;
	uint8_t  uuid[16];
	uint8_t  volume_name[16];
	uint32_t feature_incompat;
	uint16_t available_compr_algs; /* or lz4_max_distance */
	uint16_t extra_devices;
	uint16_t devt_slotoff;      /* device table at devt_slotoff * 128 */
	uint8_t  dirblkbits;        /* must be 0 */
	uint8_t  xattr_prefix_count;
	uint32_t xattr_prefix_start;
	uint64_t packed_nid;
	uint8_t  xattr_filter_reserved;
	uint8_t  reserved1[3];
	uint32_t image_time_delta;  /* informational: image time - build_time (s) */
	uint8_t  reserved2[16];
};
static_assert(sizeof(struct erofs_super_block) == 128, "superblock is 128 bytes");

/* i_format */
#define EROFS_I_VERSION_MASK      0x01
#define EROFS_I_DATALAYOUT_SHIFT  1
#define EROFS_I_DATALAYOUT_MASK   0x07
#define EROFS_I_ALL_BITS          4           /* bits above this are invalid here */

enum erofs_inode_version { EROFS_INODE_COMPACT = 0, EROFS_INODE_EXTENDED = 1 };

enum erofs_data_layout {
	EROFS_INODE_FLAT_PLAIN = 0,
	EROFS_INODE_COMPRESSED_FULL = 1,
	EROFS_INODE_FLAT_INLINE = 2,
	EROFS_INODE_COMPRESSED_COMPACT = 3,
	EROFS_INODE_CHUNK_BASED = 4,
	EROFS_INODE_DATALAYOUT_MAX
};

static inline unsigned erofs_i_version(uint16_t fmt) { return fmt & EROFS_I_VERSION_MASK; }
static inline unsigned erofs_i_datalayout(uint16_t fmt)
{
	return (fmt >> EROFS_I_DATALAYOUT_SHIFT) & EROFS_I_DATALAYOUT_MASK;
}
static inline uint16_t erofs_i_format(unsigned version, unsigned layout)
{
	return (uint16_t)(version | (layout << EROFS_I_DATALAYOUT_SHIFT));
}

/* chunk format, stored in i_u of chunk-based inodes */
#define EROFS_CHUNK_FORMAT_BLKBITS_MASK 0x001F
#define EROFS_CHUNK_FORMAT_INDEXES      0x0020  /* 8-byte indexes, multi-device */
#define EROFS_CHUNK_FORMAT_ALL \
	(EROFS_CHUNK_FORMAT_BLKBITS_MASK | EROFS_CHUNK_FORMAT_INDEXES)

union erofs_inode_i_u {
	uint32_t raw_blkaddr;       /* flat: first data block */
	uint32_t rdev;              /* char/block devices, new_encode_dev() */
	uint32_t compressed_blocks;
	struct { uint16_t format; uint16_t reserved; } c; /* chunk-based */
};

struct erofs_inode_compact {
	uint16_t i_format;
	uint16_t i_xattr_icount;
	uint16_t i_mode;
	uint16_t i_nlink;
	uint32_t i_size;
	uint32_t i_mtime;           /* relative to build_time; anole writes 0 */
	union erofs_inode_i_u i_u;
	uint32_t i_ino;
	uint16_t i_uid;
	uint16_t i_gid;
	uint32_t i_reserved;
};
static_assert(sizeof(struct erofs_inode_compact) == 32, "compact inode is 32 bytes");

struct erofs_inode_extended {
	uint16_t i_format;
	uint16_t i_xattr_icount;
	uint16_t i_mode;
	uint16_t i_reserved;
	uint64_t i_size;
	union erofs_inode_i_u i_u;
	uint32_t i_ino;
	uint32_t i_uid;
	uint32_t i_gid;
	uint64_t i_mtime;
	uint32_t i_mtime_nsec;
	uint32_t i_nlink;
	uint8_t  i_reserved2[16];
};
static_assert(sizeof(struct erofs_inode_extended) == 64, "extended inode is 64 bytes");

/* xattrs */
struct erofs_xattr_ibody_header {
	uint32_t h_name_filter;     /* bloom filter, only with COMPAT_XATTR_FILTER */
	uint8_t  h_shared_count;
	uint8_t  h_reserved2[7];
	uint32_t h_shared_xattrs[]; /* shared xattr ids */
};
static_assert(sizeof(struct erofs_xattr_ibody_header) == 12, "xattr header is 12 bytes");

struct erofs_xattr_entry {
	uint8_t  e_name_len;        /* length of the name suffix */
	uint8_t  e_name_index;      /* which prefix, EROFS_XATTR_INDEX_* */
	uint16_t e_value_size;
	char     e_name[];          /* suffix then value, entry padded to 4 */
};
static_assert(sizeof(struct erofs_xattr_entry) == 4, "xattr entry head is 4 bytes");

#define EROFS_XATTR_INDEX_USER             1
#define EROFS_XATTR_INDEX_POSIX_ACL_ACCESS 2
#define EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT 3
#define EROFS_XATTR_INDEX_TRUSTED          4
#define EROFS_XATTR_INDEX_LUSTRE           5
#define EROFS_XATTR_INDEX_SECURITY         6
#define EROFS_XATTR_LONG_PREFIX            0x80

static inline unsigned erofs_xattr_ibody_size(uint16_t icount)
{
	return icount ? 12u + 4u * ((unsigned)icount - 1u) : 0u;
}
static inline unsigned erofs_xattr_entry_size(unsigned name_len, unsigned value_size)
{
	return (4u + name_len + value_size + 3u) & ~3u;
}

/* chunk indexes */
struct erofs_inode_chunk_index {
	uint16_t startblk_hi;       /* 0 without 48-bit addressing */
	uint16_t device_id;         /* 0 = primary, k = k-th extra device */
	uint32_t startblk_lo;       /* EROFS_NULL_ADDR = hole */
};
static_assert(sizeof(struct erofs_inode_chunk_index) == 8, "chunk index is 8 bytes");

/* device table slot, at devt_slotoff * 128 */
#define EROFS_DEVT_SLOT_SIZE 128
struct erofs_deviceslot {
	uint8_t  tag[64];           /* anole: sha256 hex of the blob */
	uint32_t blocks;            /* device size in blocks */
	uint32_t mapped_blkaddr;    /* start in the unified address space */
	uint8_t  reserved[56];
};
static_assert(sizeof(struct erofs_deviceslot) == 128, "device slot is 128 bytes");

/* directories */
struct erofs_dirent {
	uint64_t nid;
	uint16_t nameoff;           /* from the start of this directory block */
	uint8_t  file_type;         /* EROFS_FT_* */
	uint8_t  reserved;
} __attribute__((packed));
static_assert(sizeof(struct erofs_dirent) == 12, "dirent is 12 bytes");

enum {
	EROFS_FT_UNKNOWN, EROFS_FT_REG_FILE, EROFS_FT_DIR, EROFS_FT_CHRDEV,
	EROFS_FT_BLKDEV, EROFS_FT_FIFO, EROFS_FT_SOCK, EROFS_FT_SYMLINK, EROFS_FT_MAX
};

/* Linux new_encode_dev()/new_decode_dev(): 12-bit major, 20-bit minor. */
static inline uint32_t erofs_encode_dev(uint32_t major, uint32_t minor)
{
	return (minor & 0xffu) | (major << 8) | ((minor & ~0xffu) << 12);
}
static inline uint32_t erofs_dev_major(uint32_t dev) { return (dev & 0xfff00u) >> 8; }
static inline uint32_t erofs_dev_minor(uint32_t dev)
{
	return (dev & 0xffu) | ((dev >> 12) & 0xfff00u);
}

/* ---- compressed files (fs/erofs/erofs_fs.h: z_erofs_*) ---- */

enum {
	Z_EROFS_COMPRESSION_LZ4 = 0,
	Z_EROFS_COMPRESSION_LZMA = 1,       /* MicroLZMA */
	Z_EROFS_COMPRESSION_DEFLATE = 2,    /* raw deflate */
	Z_EROFS_COMPRESSION_ZSTD = 3,
	Z_EROFS_COMPRESSION_MAX
};
/* h_algorithmtype values beyond the algorithms, for PLAIN lclusters */
#define Z_EROFS_COMPRESSION_SHIFTED     Z_EROFS_COMPRESSION_MAX
#define Z_EROFS_COMPRESSION_INTERLACED  (Z_EROFS_COMPRESSION_MAX + 1)

#define Z_EROFS_PCLUSTER_MAX_SIZE       (1024u * 1024u)
#define Z_EROFS_LZMA_MAX_DICT_SIZE      (8u * Z_EROFS_PCLUSTER_MAX_SIZE)
#define Z_EROFS_ZSTD_MAX_DICT_SIZE      Z_EROFS_PCLUSTER_MAX_SIZE

/*
 * With COMPR_CFGS, one record per algorithm in available_compr_algs, in
 * algorithm order, right after the superblock (1024 + 128 + 16 *
 * sb_extslots): a le16 length, then the algorithm's struct.
 */
struct z_erofs_lz4_cfgs {
	uint16_t max_distance;
	uint16_t max_pclusterblks;  /* largest pcluster, in blocks */
	uint8_t  reserved[10];
} __attribute__((packed));
static_assert(sizeof(struct z_erofs_lz4_cfgs) == 14, "lz4 cfgs are 14 bytes");

struct z_erofs_lzma_cfgs {
	uint32_t dict_size;
	uint16_t format;            /* must be 0 */
	uint8_t  reserved[8];
} __attribute__((packed));
static_assert(sizeof(struct z_erofs_lzma_cfgs) == 14, "lzma cfgs are 14 bytes");

struct z_erofs_deflate_cfgs {
	uint8_t windowbits;         /* 8..15 */
	uint8_t reserved[5];
} __attribute__((packed));
static_assert(sizeof(struct z_erofs_deflate_cfgs) == 6, "deflate cfgs are 6 bytes");

struct z_erofs_zstd_cfgs {
	uint8_t format;             /* must be 0 */
	uint8_t windowlog;          /* window log - 10 */
	uint8_t reserved[4];
} __attribute__((packed));
static_assert(sizeof(struct z_erofs_zstd_cfgs) == 6, "zstd cfgs are 6 bytes");

/* h_advise */
#define Z_EROFS_ADVISE_COMPACTED_2B        0x0001  /* compact: 4B, 2B, 4B runs */
#define Z_EROFS_ADVISE_EXTENTS             0x0001  /* full: extent records (48-bit) */
#define Z_EROFS_ADVISE_BIG_PCLUSTER_1      0x0002
#define Z_EROFS_ADVISE_BIG_PCLUSTER_2      0x0004
#define Z_EROFS_ADVISE_INLINE_PCLUSTER     0x0008  /* ztailpacking */
#define Z_EROFS_ADVISE_INTERLACED_PCLUSTER 0x0010
#define Z_EROFS_ADVISE_FRAGMENT_PCLUSTER   0x0020
#define Z_EROFS_FRAGMENT_INODE_BIT         7       /* of h_clusterbits */

/*
 * 8 bytes at ALIGN(inode + xattrs, 8). If bit 7 of h_clusterbits is set
 * the whole file is in the packed inode, and the other 63 bits of the
 * header (as a le64) are its offset there.
 */
struct z_erofs_map_header {
	union {
		uint32_t h_fragmentoff;     /* FRAGMENT_PCLUSTER: tail's offset */
		struct {
			uint16_t h_reserved1;
			uint16_t h_idata_size;  /* INLINE_PCLUSTER: inline size */
		} __attribute__((packed)) s;
	} u;
	uint16_t h_advise;
	uint8_t  h_algorithmtype;   /* bits 0-3 HEAD1, 4-7 HEAD2 */
	uint8_t  h_clusterbits;     /* bits 0-3: lclusterbits - blkszbits */
} __attribute__((packed));
static_assert(sizeof(struct z_erofs_map_header) == 8, "map header is 8 bytes");

enum {
	Z_EROFS_LCLUSTER_TYPE_PLAIN = 0,    /* stored uncompressed, shifted */
	Z_EROFS_LCLUSTER_TYPE_HEAD1 = 1,
	Z_EROFS_LCLUSTER_TYPE_NONHEAD = 2,
	Z_EROFS_LCLUSTER_TYPE_HEAD2 = 3,
	Z_EROFS_LCLUSTER_TYPE_MAX
};
#define Z_EROFS_LI_LCLUSTER_TYPE_MASK  (Z_EROFS_LCLUSTER_TYPE_MAX - 1)
#define Z_EROFS_LI_PARTIAL_REF         (1u << 15)  /* full indexes, HEAD */
#define Z_EROFS_LI_D0_CBLKCNT          (1u << 11)  /* 1st NONHEAD: pcluster blocks */

/* Full (legacy) indexes: one per lcluster, from ALIGN(..., 8) + 8 + 8. */
struct z_erofs_lcluster_index {
	uint16_t di_advise;         /* bits 0-1: type */
	uint16_t di_clusterofs;     /* where the extent starts in this lcluster */
	union {
		uint32_t blkaddr;       /* HEAD/PLAIN: first block of the pcluster */
		uint16_t delta[2];      /* NONHEAD: back to head, on to next head */
	} di_u;
};
static_assert(sizeof(struct z_erofs_lcluster_index) == 8, "lcluster index is 8 bytes");

#endif
