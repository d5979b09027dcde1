// SPDX-License-Identifier: Apache-2.0
/*
 * Write: follow the plan. Data goes straight from the source files into
 * the image (copy_file_range), in parallel; metadata is assembled in memory
 * and written last, so the superblock checksum covers the final block 0.
 * Outputs are temp files renamed into place only when complete.
 */
#include "builder.h"
#include "anole/compress.h"
#include "anole/digest.h"
#include "anole/endian.h"
#include "anole/erofs.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t *meta_at(struct builder *b, uint64_t nid)
{
	return b->meta + nid * EROFS_ISLOT_SIZE;
}

static unsigned inode_size(const struct bnode *n)
{
	return n->version == EROFS_INODE_EXTENDED ? 64 : 32;
}

/* Where inline data (tail, symlink, chunk index) begins, as a meta pointer. */
static uint8_t *inline_at(struct builder *b, const struct bnode *n)
{
	return meta_at(b, n->nid) + inode_size(n) + n->xattr_isize;
}

static uint32_t chunk_format(const struct builder *b, const struct bnode *n)
{
	return (n->chunkbits - b->blkszbits) | (b->use_blob ? EROFS_CHUNK_FORMAT_INDEXES : 0);
}

static void write_inode(struct builder *b, const struct bnode *n)
{
	uint8_t *p = meta_at(b, n->nid);
	uint32_t i_u = 0;

	if (n->layout == EROFS_INODE_CHUNK_BASED)
		i_u = chunk_format(b, n);
	else if (n->z)
		i_u = (uint32_t)n->z->pblocks;   /* compressed blocks */
	else if (is_dev(n->mode))
		i_u = n->rdev;
	else if (is_reg(n->mode) || is_dir(n->mode) || is_lnk(n->mode))
		i_u = n->startblk;

	if (n->version == EROFS_INODE_EXTENDED) {
		struct erofs_inode_extended die = {
			.i_format = cpu_to_le16(erofs_i_format(EROFS_INODE_EXTENDED, n->layout)),
			.i_xattr_icount = cpu_to_le16(n->xattr_icount),
			.i_mode = cpu_to_le16((uint16_t)n->mode),
			.i_size = cpu_to_le64(n->size),
			.i_u.raw_blkaddr = cpu_to_le32(i_u),
			.i_ino = cpu_to_le32(n->ino),
			.i_uid = cpu_to_le32(n->uid),
			.i_gid = cpu_to_le32(n->gid),
			.i_mtime = cpu_to_le64((uint64_t)n->mtime),
			.i_mtime_nsec = cpu_to_le32(n->mtime_nsec),
			.i_nlink = cpu_to_le32(n->nlink),
		};
		memcpy(p, &die, sizeof(die));
	} else {
		struct erofs_inode_compact dic = {
			.i_format = cpu_to_le16(erofs_i_format(EROFS_INODE_COMPACT, n->layout)),
			.i_xattr_icount = cpu_to_le16(n->xattr_icount),
			.i_mode = cpu_to_le16((uint16_t)n->mode),
			.i_nlink = cpu_to_le16((uint16_t)n->nlink),
			.i_size = cpu_to_le32((uint32_t)n->size),
			.i_mtime = 0,       /* the superblock time, which it equals */
			.i_u.raw_blkaddr = cpu_to_le32(i_u),
			.i_ino = cpu_to_le32(n->ino),
			.i_uid = cpu_to_le16((uint16_t)n->uid),
			.i_gid = cpu_to_le16((uint16_t)n->gid),
		};
		memcpy(p, &dic, sizeof(dic));
	}
	builder_write_xattr_ibody(b, n, p + inode_size(n));
}

static void write_chunk_index(struct builder *b, const struct bnode *n)
{
	unsigned align = b->use_blob ? 8 : 4;
	uint8_t *p = meta_at(b, n->nid) + ALIGN_UP(inode_size(n) + n->xattr_isize, align);

	for (uint64_t i = 0; i < n->nchunks; i++) {
		const struct bchunk *c = &n->chunks[i];
		uint32_t blk = c->hole ? EROFS_NULL_ADDR : c->blkaddr;

		if (b->use_blob) {
			struct erofs_inode_chunk_index idx = {
				.startblk_hi = 0,
				.device_id = cpu_to_le16(c->hole ? 0 : c->devid ? c->devid : 1),
				.startblk_lo = cpu_to_le32(blk),
			};
			memcpy(p + i * 8, &idx, 8);
		} else {
			uint32_t v = cpu_to_le32(blk);

			memcpy(p + i * 4, &v, 4);
		}
	}
}

/* Directory blocks: dirents first, then their names; whole entries only. */
static int write_dir(struct builder *b, const struct bnode *dir)
{
	uint8_t *block = xcalloc(1, b->blksz);
	uint64_t blkno = 0;
	size_t first = 0;
	int ret = 0;

	while (first < dir->nents && !ret) {
		size_t last = first, count;
		uint32_t used = 0, nameoff;
		uint64_t block_start = blkno * b->blksz;
		uint32_t block_len;
		uint8_t *dst;

		while (last < dir->nents &&
		       used + sizeof(struct erofs_dirent) + dir->ents[last].namelen <= b->blksz) {
			used += (uint32_t)sizeof(struct erofs_dirent) + dir->ents[last].namelen;
			last++;
		}
		count = last - first;
		memset(block, 0, b->blksz);
		nameoff = (uint32_t)(count * sizeof(struct erofs_dirent));
		for (size_t i = 0; i < count; i++) {
			const struct bdirent *e = &dir->ents[first + i];
			struct erofs_dirent de = {
				.nid = cpu_to_le64(e->node->nid),
				.nameoff = cpu_to_le16((uint16_t)nameoff),
				.file_type = (uint8_t)erofs_mode_to_ftype((uint16_t)e->node->mode),
			};
			memcpy(block + i * sizeof(de), &de, sizeof(de));
			memcpy(block + nameoff, e->name, e->namelen);
			nameoff += e->namelen;
		}
		block_len = dir->size - block_start < b->blksz ?
			    (uint32_t)(dir->size - block_start) : b->blksz;
		if (dir->layout == EROFS_INODE_FLAT_INLINE && blkno == dir->nblocks) {
			dst = inline_at(b, dir);
			memcpy(dst, block, block_len);
		} else {
			ret = pwrite_full(b->img_fd, block, block_len,
					  ((uint64_t)dir->startblk + blkno) << b->blkszbits);
			if (ret)
				ret = anole_error(-ret, "cannot write %s", b->opts->output);
		}
		first = last;
		blkno++;
	}
	free(block);
	return ret;
}

static int write_symlink(struct builder *b, const struct bnode *n)
{
	int ret;

	if (n->layout == EROFS_INODE_FLAT_INLINE) {
		memcpy(inline_at(b, n), n->link, n->size);
		return 0;
	}
	ret = pwrite_full(b->img_fd, n->link, n->size, (uint64_t)n->startblk << b->blkszbits);
	return ret ? anole_error(-ret, "cannot write %s", b->opts->output) : 0;
}

/* ---- regular file data, in parallel ---- */

struct file_job {
	struct builder *b;
	struct bnode *n;
	int err;
	bool shrank;
};

static void copy_file(void *item, void *shared)
{
	struct file_job *j = item;
	struct builder *b = j->b;
	struct bnode *n = j->n;
	uint64_t body = n->size - n->tail_len;
	int fd;

	if (n->z) {
		if (!n->same_data)
			j->err = builder_write_zdata(b, n);
		anole_progress_add(b->progress, n->nblocks << b->blkszbits);
		return;
	}
	fd = n->packed_inode ? dup(b->packed_fd) : builder_open(n);

	if (fd < 0) {
		j->err = -errno;
		return;
	}
	if (!n->same_data && body) {
		j->err = anole_copy_range(fd, 0, b->img_fd, (uint64_t)n->startblk << b->blkszbits,
					  body);
		anole_progress_add(b->progress, body);
	}
	if (!j->err && n->tail_len)
		j->err = pread_full(fd, inline_at(b, n), n->tail_len, body);
	if (j->err == -ENODATA)
		j->shrank = true;
	close(fd);
}

static int write_files(struct builder *b)
{
	struct file_job *jobs = xcalloc(b->ninodes, sizeof(*jobs));
	size_t n = 0;
	int ret = 0;

	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *f = b->order[i];

		if (is_reg(f->mode) && f->size && f->layout != EROFS_INODE_CHUNK_BASED &&
		    !f->prechunked)
			jobs[n++] = (struct file_job){ b, f, 0, false };
	}
	anole_parallel_for(jobs, n, sizeof(*jobs), b->opts->threads, copy_file, NULL);
	for (size_t i = 0; i < n && !ret; i++) {
		if (jobs[i].shrank)
			ret = anole_error_code(EIO, "%s: file shrank while building the image",
					       jobs[i].n->path);
		else if (jobs[i].err)
			ret = anole_error(-jobs[i].err, "cannot copy %s", jobs[i].n->path);
	}
	free(jobs);
	return ret;
}

/* ---- superblock and outputs ---- */

/* Put uuid into the superblock in b->meta and seal it with its checksum. */
static void seal_superblock(struct builder *b, const uint8_t uuid[16])
{
	struct erofs_super_block sb;

	memcpy(&sb, b->meta + EROFS_SUPER_OFFSET, sizeof(sb));
	memcpy(sb.uuid, uuid, 16);
	sb.checksum = 0;
	memcpy(b->meta + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
	sb.checksum = cpu_to_le32(erofs_sb_checksum(b->meta, b->blksz));
	memcpy(b->meta + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
}

/*
 * The reproducible-builds convention: a fixed time (SOURCE_DATE_EPOCH) is
 * all a caller should need for identical bytes, so with a fixed time and no
 * UUID given the UUID comes from the content. It is the SHA-256 of the image
 * as written with an all-zero UUID, which covers every inode, directory,
 * file byte in the image and, through their digests, every blob; the
 * version and variant bits make it an RFC 9562 version 8 UUID (a custom,
 * here SHA-256 name-based, one).
 */
static int derive_uuid(struct builder *b, uint64_t image_len, uint8_t uuid[16])
{
	uint8_t digest[32];
	int ret = anole_digest_file(b->img_fd, image_len, ANOLE_DIGEST_SHA256, digest);

	if (ret)
		return anole_error(-ret, "cannot read back %s", b->opts->output);
	memcpy(uuid, digest, 16);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x80);   /* version 8 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC variant */
	return 0;
}

static bool uuid_from_content(const struct anole_build_opts *o)
{
	return o->have_timestamp && !o->have_uuid;
}

static int write_superblock(struct builder *b, const uint8_t *blob_digest)
{
	const struct anole_build_opts *o = b->opts;
	struct erofs_super_block sb = { 0 };
	uint8_t uuid[16] = { 0 };   /* from the content: set once it is written */
	int64_t delta = o->timestamp - b->epoch;

	sb.magic = cpu_to_le32(EROFS_SUPER_MAGIC);
	sb.feature_compat = cpu_to_le32(EROFS_FEATURE_COMPAT_SB_CHKSUM | EROFS_FEATURE_COMPAT_MTIME);
	sb.blkszbits = (uint8_t)b->blkszbits;
	sb.root_nid = cpu_to_le16((uint16_t)b->root->nid);
	sb.inos = cpu_to_le64(b->ninodes);   /* with the packed inode, as mkfs.erofs counts */
	sb.build_time = cpu_to_le64((uint64_t)b->epoch);
	sb.build_time_nsec = cpu_to_le32(b->epoch_nsec);
	sb.blocks = cpu_to_le32((uint32_t)b->total_blocks);
	sb.meta_blkaddr = 0;
	sb.xattr_blkaddr = cpu_to_le32(b->xattr_blkaddr);
	if (o->have_uuid) {
		memcpy(uuid, o->uuid, 16);
	} else if (!uuid_from_content(o)) {
		if (getrandom(uuid, 16, 0) != 16)
			return anole_error(errno, "cannot make a random UUID (use --uuid)");
		uuid[6] = (uuid[6] & 0x0f) | 0x40;   /* RFC 4122 version 4 */
		uuid[8] = (uuid[8] & 0x3f) | 0x80;
	}
	if (o->label)
		strncpy((char *)sb.volume_name, o->label, sizeof(sb.volume_name) - 1);
	if (b->has_chunked)
		sb.feature_incompat |= EROFS_FEATURE_INCOMPAT_CHUNKED_FILE;
	if (b->compress) {
		/* configs for every algorithm used; big pclusters need them too */
		sb.feature_incompat |= EROFS_FEATURE_INCOMPAT_ZERO_PADDING |
				       EROFS_FEATURE_INCOMPAT_COMPR_CFGS;
		if (b->ztail_used)
			sb.feature_incompat |= EROFS_FEATURE_INCOMPAT_ZTAILPACKING;
		if (b->packed) {
			sb.feature_incompat |= EROFS_FEATURE_INCOMPAT_FRAGMENTS;
			sb.packed_nid = cpu_to_le64(b->packed->nid);
		}
		sb.available_compr_algs = cpu_to_le16(b->zalgs);
		builder_write_zcfgs(b, b->meta + EROFS_SUPER_OFFSET + sizeof(sb));
	}
	if (b->use_blob && b->nblobs) {
		uint64_t uniaddr = b->total_blocks;

		sb.feature_incompat |= EROFS_FEATURE_INCOMPAT_DEVICE_TABLE;
		sb.extra_devices = cpu_to_le16((uint16_t)b->nblobs);
		sb.devt_slotoff = cpu_to_le16((uint16_t)(b->devt_off / EROFS_DEVT_SLOT_SIZE));
		for (unsigned i = 0; i < b->nblobs; i++) {
			struct erofs_deviceslot slot = { 0 };
			uint64_t blocks = b->blobs[i].uncompressed_size >> b->blkszbits;

			memcpy(slot.tag, b->blobs[i].hex, 64);
			slot.blocks = cpu_to_le32((uint32_t)blocks);
			slot.mapped_blkaddr = cpu_to_le32((uint32_t)uniaddr);
			uniaddr += blocks;
			memcpy(b->meta + b->devt_off + i * EROFS_DEVT_SLOT_SIZE, &slot, sizeof(slot));
		}
	} else if (builder_ndevices(b)) {
		struct erofs_deviceslot slot = { 0 };

		sb.feature_incompat |= EROFS_FEATURE_INCOMPAT_DEVICE_TABLE;
		sb.extra_devices = cpu_to_le16(1);
		sb.devt_slotoff = cpu_to_le16((uint16_t)(b->devt_off / EROFS_DEVT_SLOT_SIZE));
		anole_hex(blob_digest, 32, (char *)b->st->blob_digest);
		memcpy(slot.tag, b->st->blob_digest, 64);
		slot.blocks = cpu_to_le32((uint32_t)b->blob_blocks);
		slot.mapped_blkaddr = cpu_to_le32((uint32_t)b->total_blocks);
		memcpy(b->meta + b->devt_off, &slot, sizeof(slot));
	}
	sb.feature_incompat = cpu_to_le32(sb.feature_incompat);
	/* image time, informational: kept beside the compact-inode time */
	sb.image_time_delta = cpu_to_le32(delta >= 0 && delta <= UINT32_MAX ? (uint32_t)delta : 0);
	memcpy(b->meta + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
	seal_superblock(b, uuid);
	return 0;
}

static int write_metadata(struct builder *b)
{
	int ret = 0;

	for (size_t i = 0; i < b->ninodes && !ret; i++) {
		struct bnode *n = b->order[i];

		write_inode(b, n);
		if (n->z) {
			unsigned head = ALIGN_UP(inode_size(n) + n->xattr_isize, 8);

			ret = builder_write_zmeta(b, n, meta_at(b, n->nid) + head, (head + 8) % 32);
		} else if (n->layout == EROFS_INODE_CHUNK_BASED)
			write_chunk_index(b, n);
		else if (is_dir(n->mode))
			ret = write_dir(b, n);
		else if (is_lnk(n->mode))
			ret = write_symlink(b, n);
	}
	return ret;
}

static int write_shared_xattrs(struct builder *b)
{
	uint64_t len = ALIGN_UP(b->shared_xattr_bytes, b->blksz);
	uint8_t *area;
	int ret;

	if (!b->shared_xattr_bytes)
		return 0;
	area = xcalloc(1, len);
	builder_write_shared_xattrs(b, area);
	ret = pwrite_full(b->img_fd, area, len, (uint64_t)b->xattr_blkaddr << b->blkszbits);
	free(area);
	return ret ? anole_error(-ret, "cannot write %s", b->opts->output) : 0;
}

static int blob_digest(struct builder *b, uint8_t digest[32])
{
	int ret = anole_digest_file(b->blob_fd, b->blob_blocks << b->blkszbits,
				    ANOLE_DIGEST_SHA256, digest);

	return ret ? anole_error(-ret, "cannot read back %s", b->opts->blob_path) : 0;
}

/* The chunk table of the transport blob, after the EROFS blocks. */
static int append_blobmeta(struct builder *b)
{
	struct anole_blobmeta meta = { .nblobs = b->nblobs ? b->nblobs : 1,
				       .blobs = b->nblobs ? b->blobs : b->transport };
	uint64_t off = b->total_blocks << b->blkszbits;
	struct strbuf ext = STRBUF_INIT;
	int ret;

	anole_blobmeta_serialize(&meta, off, &ext);
	ret = pwrite_full(b->img_fd, ext.buf, ext.len, off);
	b->ext_bytes = ext.len;
	strbuf_release(&ext);
	return ret ? anole_error(-ret, "cannot write %s", b->opts->output) : 0;
}

static int write_image(struct builder *b, struct anole_output *img, struct anole_output *blob)
{
	uint8_t digest[32] = { 0 };
	uint64_t meta_len = b->meta_blocks << b->blkszbits;
	int ret;

	if (ftruncate(b->img_fd, (off_t)(b->total_blocks << b->blkszbits)) < 0)
		return anole_error(errno, "cannot size %s", b->opts->output);
	if (b->opts->blob_path && ftruncate(b->blob_fd, (off_t)(b->blob_blocks << b->blkszbits)) < 0)
		return anole_error(errno, "cannot size %s", b->opts->blob_path);

	b->meta = xcalloc(1, meta_len);
	b->progress = anole_progress_start("Writing image", b->data_bytes, "B");
	ret = write_files(b);
	if (!ret && b->opts->blob_dir && !b->opts->nlayers)
		ret = builder_write_transport(b, digest);
	else if (!ret)
		ret = builder_write_chunks(b);
	anole_progress_done(b->progress);
	b->progress = NULL;
	if (!ret)
		ret = write_metadata(b);
	if (!ret)
		ret = write_shared_xattrs(b);
	if (!ret && b->opts->blob_path)
		ret = blob_digest(b, digest);
	if (!ret)
		ret = write_superblock(b, digest);
	if (!ret && (ret = pwrite_full(b->img_fd, b->meta, meta_len, 0)))
		ret = anole_error(-ret, "cannot write %s", b->opts->output);
	if (!ret && (b->transport || b->nblobs))
		ret = append_blobmeta(b);
	if (!ret && uuid_from_content(b->opts)) {
		uint8_t uuid[16];

		ret = derive_uuid(b, (b->total_blocks << b->blkszbits) + b->ext_bytes, uuid);
		if (!ret) {
			seal_superblock(b, uuid);
			ret = pwrite_full(b->img_fd, b->meta, b->blksz, 0);
			if (ret)
				ret = anole_error(-ret, "cannot write %s", b->opts->output);
		}
	}
	free(b->meta);
	b->meta = NULL;
	if (ret)
		return ret;
	/* the blob first: an image never names a blob that is not there */
	if (blob && b->transport) {
		struct strbuf name = STRBUF_INIT;

		strbuf_addf(&name, "%s/%s", b->opts->blob_dir, b->transport->hex);
		anole_output_rename_target(blob, name.buf);
		strbuf_release(&name);
	}
	if (blob && (ret = anole_output_commit(blob)))
		return ret;
	for (unsigned i = 0; i < b->nblob_outs; i++)
		if ((ret = anole_output_commit(&b->blob_outs[i])))
			return ret;     /* the rest are aborted by the caller */
	return anole_output_commit(img);
}

int anole_image_build(const struct anole_build_opts *caller_opts, struct anole_build_stats *st)
{
	/* the defaults live here, so that a zeroed struct builds what the CLI
	 * builds without options (include/anole/image.h lists them) */
	struct anole_build_opts defaulted = *caller_opts, *opts = &defaulted;
	struct builder b = { .opts = opts, .st = st, .img_fd = -1, .blob_fd = -1 };
	struct anole_output img = { .fd = -1 }, blob = { .fd = -1 };
	int ret;

	memset(st, 0, sizeof(*st));
	if (!opts->blkszbits)
		opts->blkszbits = 12;
	if (!opts->chunk_size && (opts->blob_path || opts->blob_dir))
		opts->chunk_size = 1u << 20;    /* a blob is made of chunks */
	if (opts->compress) {
		ret = anole_compress_parse("--compress", opts->compress, &b.compression,
					   &b.compression_level);
		if (ret)
			return ret;
	} else {
		b.compression = anole_compress_default();   /* zstd, when built */
	}
	if (opts->nlayers && !opts->blob_dir)
		return anole_error_code(EINVAL, "building from layers needs a blob directory");
	if (opts->blkszbits < EROFS_MIN_BLKSZBITS || opts->blkszbits > EROFS_MAX_BLKSZBITS)
		return anole_error_code(EINVAL, "block size 2^%u is not supported", opts->blkszbits);
	b.blkszbits = opts->blkszbits;
	b.blksz = 1u << b.blkszbits;
	if (opts->chunk_size) {
		b.chunkbits = (uint32_t)__builtin_ctzll(opts->chunk_size);
		if (b.chunkbits < b.blkszbits || b.chunkbits > b.blkszbits + 31)
			return anole_error_code(EINVAL, "chunk size %llu is not supported",
						(unsigned long long)opts->chunk_size);
	}
	b.use_blob = opts->blob_path || opts->blob_dir;
	b.unit_size = opts->fetch_unit ? opts->fetch_unit : ANOLE_DEFAULT_FETCH_UNIT;
	if (b.unit_size & (b.unit_size - 1) || b.unit_size < b.blksz)
		return anole_error_code(EINVAL, "fetch unit %u is not a power of two of at least %u bytes",
					b.unit_size, b.blksz);
	ret = builder_compress_init(&b);
	if (ret) {
		builder_compress_free(&b);
		return ret;
	}
	if (opts->blob_path && opts->blob_dir)
		return anole_error_code(EINVAL, "--blob and --blob-dir exclude each other");
	builder_init_xattrs(&b);

	ret = opts->nlayers ? builder_scan_layers(&b) : builder_scan(&b);
	if (!ret)
		ret = builder_plan(&b);
	if (!ret)
		ret = anole_output_open(&img, opts->output);
	if (!ret && opts->blob_path)
		ret = anole_output_open(&blob, opts->blob_path);
	if (!ret && opts->blob_dir && !opts->nlayers) {
		struct strbuf tmp = STRBUF_INIT;

		if (mkdir(opts->blob_dir, 0755) < 0 && errno != EEXIST)
			ret = anole_error(errno, "cannot create blob directory %s", opts->blob_dir);
		strbuf_addf(&tmp, "%s/blob", opts->blob_dir);
		if (!ret)
			ret = anole_output_open(&blob, tmp.buf);
		strbuf_release(&tmp);
	}
	if (!ret) {
		img.no_sync = blob.no_sync = opts->no_sync;
		b.img_fd = img.fd;
		b.blob_fd = blob.fd;
		ret = write_image(&b, &img, b.use_blob && !opts->nlayers ? &blob : NULL);
	}
	if (ret) {
		anole_output_abort(&img);
		anole_output_abort(&blob);
		for (unsigned i = 0; i < b.nblob_outs; i++)
			anole_output_abort(&b.blob_outs[i]);   /* no-op once committed */
	} else {
		st->inodes = b.ninodes - (b.packed ? 1 : 0);   /* the tree's */
		for (size_t i = 0; i < b.ninodes; i++) {
			if (b.order[i]->packed_inode)
				continue;
			st->files += is_reg(b.order[i]->mode);
			st->compressed_files += b.order[i]->z != NULL;
			st->dirs += is_dir(b.order[i]->mode);
			if (is_reg(b.order[i]->mode))
				st->bytes_in += b.order[i]->size;
		}
		st->image_bytes = b.total_blocks << b.blkszbits;
		st->blob_bytes = b.blob_blocks << b.blkszbits;
		st->blob_uncompressed_bytes = st->blob_bytes;
		st->image_bytes += b.ext_bytes;
		if (b.transport)
			st->blob_bytes = b.transport->compressed_size;
	}
	if (b.transport) {
		free(b.transport->chunks);
		free(b.transport->splits);
		free(b.transport);
	}
	if (!ret && b.nblobs) {
		st->blobs = b.blobs;            /* the caller frees them */
		st->nblobs = b.nblobs;
		st->blob_bytes = 0;
		for (unsigned i = 0; i < b.nblobs; i++)
			st->blob_bytes += b.blobs[i].compressed_size;
	} else {
		for (unsigned i = 0; i < b.nblobs; i++) {
			free(b.blobs[i].chunks);
			free(b.blobs[i].splits);
		}
		free(b.blobs);
	}
	free(b.owners);
	free(b.blob_outs);
	builder_compress_free(&b);
	builder_free_tree(&b);
	builder_free_xattrs(&b);
	return ret;
}

void anole_build_stats_free(struct anole_build_stats *st)
{
	for (unsigned i = 0; i < st->nblobs; i++) {
		free(st->blobs[i].chunks);
		free(st->blobs[i].splits);
	}
	free(st->blobs);
	free(st->layer_device);
	st->blobs = NULL;
	st->layer_device = NULL;
	st->nblobs = 0;
}
