/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image builder internals. A build runs in phases over one in-memory tree:
 *   scan (tree.c, xattr.c)  source directory -> struct bnode tree
 *   plan (layout.c, chunk.c) inode forms, metadata placement, data blocks
 *   write (write.c)          data, chunks and blob, then metadata, then sb
 */
#ifndef ANOLE_BUILDER_H
#define ANOLE_BUILDER_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "anole/erofs_fs.h"
#include "anole/hashmap.h"
#include "anole/blobmeta.h"
#include "anole/fileio.h"
#include "anole/image.h"

/* One distinct xattr (name + value), shared by every inode that has it. */
struct bxattr {
	uint8_t index;              /* EROFS_XATTR_INDEX_* */
	uint8_t suffix_len;
	uint16_t value_len;
	char *suffix;
	uint8_t *value;
	uint32_t refs;              /* inodes carrying it */
	int64_t shared_id;          /* -1 = stored inline */
	uint64_t hash;
};

struct bnode;

struct bdirent {
	char *name;
	uint8_t namelen;
	struct bnode *node;
};

/* A run of chunks: where chunk i of a chunk-based file lives. */
struct bchunk {
	uint8_t digest[32];
	uint32_t blkaddr;           /* EROFS_NULL_ADDR: hole */
	uint32_t len;               /* bytes of data (the last chunk may be short) */
	uint16_t devid;             /* extra device holding it (0: the blob default, 1) */
	bool hole;
	bool owner;                 /* this chunk's data is written from this file */
};

/* One extent of a compressed file (compress.c), in logical order. */
enum {
	ZX_COMPRESSED,              /* a pcluster of `blocks` blocks */
	ZX_RAW,                     /* one block stored as it is (PLAIN) */
	ZX_INLINE,                  /* compressed tail after the indexes */
	ZX_INLINE_RAW,              /* raw tail after the indexes */
	ZX_FRAGMENT,                /* tail in the packed inode */
	ZX_INLINE_DROPPED,          /* ZX_INLINE that had to become a pcluster */
	ZX_RAW_DROPPED,             /* ZX_INLINE_RAW that had to become a block */
};
struct zext {
	uint64_t la;                /* logical start */
	uint32_t len;               /* logical length */
	uint32_t blocks;            /* pcluster blocks (0: inline or fragment) */
	uint8_t kind;
};

/* A compression rule: --compress-hints line, or the default. */
#include <regex.h>
#include "zcompress.h"
struct zrule {
	regex_t re;
	bool none;                  /* store matching files uncompressed */
	struct zalg alg;
	uint32_t pcluster;          /* bytes */
};

/* How a regular file is stored compressed; shared by identical files. */
struct zfile {
	const struct zrule *rule;
	struct zext *ext;
	size_t next, ext_alloc;
	struct { uint64_t off, len; } *spill;  /* its pclusters, in order */
	size_t nspill, spill_alloc;
	uint64_t pblocks;
	uint8_t *idata;             /* inline (or dropped) tail */
	uint16_t idata_len;
	uint8_t *tail_raw;          /* that tail uncompressed, if shorter than a block */
	uint64_t frag_spill, frag_off; /* tail bytes: in the spill, in the packed inode */
	uint32_t frag_len;
	bool whole_fragment;        /* the whole file is in the packed inode */
};

struct bnode {
	/* from the source */
	char *path;                 /* full source path, for reading and messages */
	uint64_t src_dev, src_ino;
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t mtime;
	uint32_t mtime_nsec;
	uint32_t rdev;              /* encoded with erofs_encode_dev() */
	char *link;                 /* symlink target */
	struct bxattr **xattrs;     /* sorted, deduplicated */
	unsigned nxattrs;
	struct bdirent *ents;       /* directories: sorted; plan adds . and .. */
	size_t nents;
	struct bnode *parent;
	bool sparse;                /* fewer blocks allocated than the size */
	bool prechunked;            /* chunks already stored (tar layers): no source file */
	struct bextent { uint64_t off, len; } *extents; /* data (not hole) ranges */
	size_t nextents;

	/* planned */
	uint32_t nlink;
	uint32_t ino;               /* i_ino serial */
	uint64_t nid;
	unsigned version, layout;
	unsigned xattr_isize;
	uint16_t xattr_icount;
	unsigned nshared;           /* shared xattr references in the ibody */
	uint32_t unit;              /* inode + xattr body + inline tail bytes */
	uint32_t tail_len;          /* bytes of the inline tail (FLAT_INLINE) */
	uint64_t nblocks;           /* data blocks of flat layouts */
	uint32_t startblk;
	struct bnode *same_data;    /* flat file whose blocks this one reuses */
	bool visited;               /* hardlinks: placed once */
	bool data_placed;           /* met by the depth-first data walk */

	/* compressed */
	struct zfile *z;            /* NULL: not compressed */
	uint32_t zmeta_len;         /* map header + indexes */
	bool packed_inode;          /* the fragments' packed inode (not in the tree) */

	/* chunk-based */
	unsigned chunkbits;
	uint64_t nchunks;
	struct bchunk *chunks;
	uint32_t index_size;        /* bytes of the chunk index array */
};

struct builder {
	const struct anole_build_opts *opts;   /* with the defaults filled in */
	struct anole_build_stats *st;
	enum anole_compress_alg compression;   /* of transport blobs */
	int compression_level;
	unsigned blkszbits;
	uint32_t blksz;

	struct bnode *root;
	struct bnode **order;       /* inodes in placement order (BFS) */
	size_t ninodes, order_alloc;
	struct anole_hashmap hardlinks;  /* (dev, ino) -> bnode */
	struct anole_hashmap xattrs;     /* name+value -> bxattr */
	struct bxattr **xattr_list;
	size_t nxattr_list, xattr_list_alloc;

	/* superblock time for compact inodes */
	int64_t epoch;
	uint32_t epoch_nsec;

	/* metadata area, built in memory */
	uint8_t *meta;
	uint64_t meta_blocks;
	uint32_t xattr_blkaddr;
	uint64_t shared_xattr_bytes;
	uint32_t devt_off;          /* device table byte offset, 0 = none */
	uint64_t data_blkaddr;      /* first data block */
	uint64_t total_blocks;      /* primary device */

	/* chunks */
	bool has_chunked;
	uint32_t chunkbits;         /* --chunk-size */
	uint32_t unit_size;         /* --fetch-unit (transport blobs) */
	bool use_blob;
	uint64_t blob_blocks;
	struct anole_hashmap chunk_map;  /* digest -> struct bchunk (owner) */
	struct bchunk_ref { struct bnode *n; uint64_t idx; } *owners; /* in blob order */
	size_t nowners, owners_alloc;
	struct anole_blob_info *transport; /* with blob_dir: the blob written */
	struct anole_blob_info *blobs;     /* layer sources: one blob per device */
	unsigned nblobs;
	/* their files, committed with the image: a build that fails in a
	 * later layer (a digest that does not match) leaves none behind */
	struct anole_output *blob_outs;
	unsigned nblob_outs;
	uint64_t ext_bytes;         /* chunk table appended to the image */

	/* compression (-z) */
	bool compress;
	struct zrule zdefault;
	struct zrule *zrules;
	size_t nzrules, zrules_alloc;
	struct zalg_params zparams;
	uint16_t zalgs;             /* available_compr_algs */
	uint32_t zmax_pcluster_blocks;
	bool ztail_used, zfrag_used;
	int spill_fd, packed_fd;
	_Atomic uint64_t spill_len;
	uint64_t packed_size;
	struct bnode *packed;

	int img_fd, blob_fd;
	uint64_t data_bytes;        /* to copy, for progress */
	struct anole_progress *progress;
};

/* tree.c */
int builder_scan(struct builder *b);
/* Breadth-first placement order, link counts and inode numbers of b->root. */
void builder_order_nodes(struct builder *b);

/* layers.c: tar layers merged with overlay semantics (OCI images) */
int builder_scan_layers(struct builder *b);
/* Open a scanned file read-only; paths longer than PATH_MAX are opened
 * component by component. Returns an fd or -1 with errno set. */
int builder_open(const struct bnode *n);
void builder_free_tree(struct builder *b);

/* xattr.c */
void builder_init_xattrs(struct builder *b);
/* Add one xattr by full name ("user.x"); then sort once all are added. */
int builder_add_xattr(struct builder *b, struct bnode *n, size_t *alloc, const char *name,
		      const void *value, size_t len);
void builder_sort_xattrs(struct bnode *n);
/* xattrs of n, found as `name` in directory dfd (dfd < 0: by n->path) */
int builder_read_xattrs(struct builder *b, struct bnode *n, int dfd, const char *name);
void builder_plan_shared_xattrs(struct builder *b);
uint32_t builder_xattr_ibody(struct builder *b, struct bnode *n);
void builder_write_xattr_ibody(struct builder *b, const struct bnode *n, uint8_t *out);
void builder_write_shared_xattrs(struct builder *b, uint8_t *out);
void builder_free_xattrs(struct builder *b);

/* layout.c */
int builder_plan(struct builder *b);
uint64_t dir_size(const struct builder *b, const struct bnode *dir);

/* tree.c: every inode in the order file data is laid out in (depth
 * first), an array of ninodes to free */
struct bnode **builder_data_order(struct builder *b);

/* chunk.c */
int builder_plan_chunks(struct builder *b);    /* which files, chunk size */
/* hash, dedupe, place, in order (builder_data_order()) */
int builder_assign_chunks(struct builder *b, struct bnode **order);
int builder_write_chunks(struct builder *b);   /* copy unique chunks */
bool node_is_chunked(const struct builder *b, const struct bnode *n);

/* compress.c: -z */
int builder_compress_init(struct builder *b);
int builder_compress_files(struct builder *b);   /* after dedupe, before forms */
/* Unit size of compressed n after `base` bytes of inode + xattrs; 0: store flat. */
uint32_t builder_zunit(struct builder *b, struct bnode *n, uint32_t base);
int builder_write_zmeta(struct builder *b, const struct bnode *n, uint8_t *dst,
			unsigned ebase_mod32);
int builder_write_zdata(struct builder *b, const struct bnode *n);
uint32_t builder_zcfg_size(const struct builder *b);
void builder_write_zcfgs(const struct builder *b, uint8_t *p);
void builder_compress_free(struct builder *b);

/* transport.c: with --blob-dir, compressed chunks + chunk table */
int builder_write_transport(struct builder *b, uint8_t digest[32]);

/* blobwriter.c: one transport blob, chunks compressed in parallel and
 * written in the order they were added */
struct blob_writer;
typedef int (*blobw_read_fn)(void *arg, uint8_t *buf, uint32_t len);  /* 0 or -errno */
struct blobw_params {
	int fd;                     /* the blob, written sequentially from its start */
	const char *where;          /* for messages: the blob directory */
	enum anole_compress_alg compression;
	int compression_level;
	enum anole_digest_alg chunk_digest;
	uint32_t unit_size;         /* fetch unit; 0: chunks are not split */
	uint32_t max_chunk;         /* largest chunk: bounds the memory in flight */
	unsigned threads;           /* 0: one per CPU */
	struct anole_progress *progress;   /* chunk bytes as they are written (may be NULL) */
	const char *(*name)(void *arg);    /* a read_fn's source, for messages */
	const struct anole_chunk_key *key; /* non-NULL: units are encrypted */
	const struct anole_blob_follow *follow;   /* grown() after each write (may be NULL) */
};
/* The parameters a build gives every blob it writes (the blob directory,
 * compression, digest, fetch unit, chunk size, threads); fd, progress and
 * name are the caller's. */
struct blobw_params builder_blobw_params(const struct builder *b);
struct blob_writer *blobw_new(const struct blobw_params *p);
/* A buffer of max_chunk bytes for blobw_add's data (recycled ones first). */
uint8_t *blobw_buffer(struct blob_writer *w);
/* Queue a chunk of len bytes at uoff in the uncompressed device, whose
 * digest (chunk_digest) is known: either data (from blobw_buffer, or a
 * malloc'd buffer of max_chunk bytes; the writer takes it) or, with data NULL, read(arg, buf, len) called by a
 * worker. An error stops the writer: this and later calls return it. */
int blobw_add(struct blob_writer *w, uint64_t uoff, uint32_t len, const uint8_t digest[32],
	      uint8_t *data, blobw_read_fn read, void *arg);
/* Write the rest and fill info's digest, name, sizes and chunk table
 * (device_id, uncompressed_size, chunk_size are the caller's); frees w. */
int blobw_finish(struct blob_writer *w, struct anole_blob_info *info);
void blobw_abort(struct blob_writer *w);   /* NULL: no-op */

/* layerpipe.c: a tar layer read, hashed and (gzip) inflated on a thread of
 * its own. next() gives the tar's bytes, valid until the next call: 0 at
 * the end, or a negative errno: the source's failure (reported already,
 * layer_pipe_source_error) or the data's (layer_pipe_decode_error says
 * what, not reported). finish() reads what is left for the digest check
 * (with hash) and reports a mismatch (-EBADMSG). */
struct layer_pipe;
struct anole_layer_stream;
int layer_pipe_start(struct layer_pipe **out, const char *name, int fd,
		     const struct anole_layer_stream *stream, bool hash, uint64_t limit);
ssize_t layer_pipe_next(struct layer_pipe *p, const void **buf);
int layer_pipe_source_error(struct layer_pipe *p);
const char *layer_pipe_decode_error(struct layer_pipe *p);
int layer_pipe_finish(struct layer_pipe *p, const char *digest, uint64_t size);
void layer_pipe_free(struct layer_pipe *p);   /* NULL: no-op */


/*
 * Extra devices in the device table: the layers' blobs (and the chunk
 * dictionary's), or the one blob of --blob/--blob-dir. Layers that carry no
 * file data have no blob, and an image naming a device without one would
 * not mount.
 */
static inline unsigned builder_ndevices(const struct builder *b)
{
	if (!b->use_blob)
		return 0;
	if (b->nblobs)
		return b->nblobs;
	return b->opts->nlayers ? 0 : 1;
}

static inline bool is_reg(uint32_t m) { return (m & 0170000) == 0100000; }
static inline bool is_dir(uint32_t m) { return (m & 0170000) == 0040000; }
static inline bool is_lnk(uint32_t m) { return (m & 0170000) == 0120000; }
static inline bool is_dev(uint32_t m)
{
	return (m & 0170000) == 0020000 || (m & 0170000) == 0060000;
}
#endif
