// SPDX-License-Identifier: Apache-2.0
/*
 * The anole extension (chunk tables of transport blobs) behind the EROFS
 * part of a metadata image. Images are untrusted: the extension is checked
 * against its SHA-256 and every record is validated before use.
 */
#include "anole/blobmeta.h"
#include "anole/cipher.h"
#include "anole/endian.h"
#include "anole/erofs.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_EXT_SIZE (1ULL << 32)

static int corrupt(const char *path, const char *what)
{
	return anole_error_code(EFSCORRUPTED, "%s: anole chunk table: %s", path, what);
}

/*
 * Entries sit at block addresses of their device (the EROFS chunk indexes
 * name blocks): an offset off a block boundary matches no block a reader
 * asks for, and those bytes would read as a hole, as zeros, with no error.
 */
static int check_chunks(const char *path, struct anole_blob_info *b, unsigned blkszbits)
{
	uint64_t next_u = 0, next_c = 0;
	uint64_t blkmask = (1ULL << blkszbits) - 1;

	for (uint32_t i = 0; i < b->nchunks; i++) {
		struct anole_ext_chunk *c = &b->chunks[i];

		c->uncompressed_offset = le64_to_cpu(c->uncompressed_offset);
		c->compressed_offset = le64_to_cpu(c->compressed_offset);
		c->uncompressed_size = le32_to_cpu(c->uncompressed_size);
		c->compressed_size = le32_to_cpu(c->compressed_size);
		if (c->uncompressed_offset < next_u || c->compressed_offset < next_c ||
		    !c->uncompressed_size || c->uncompressed_size > b->chunk_size ||
		    !c->compressed_size ||
		    c->uncompressed_offset + c->uncompressed_size > b->uncompressed_size ||
		    c->compressed_offset + c->compressed_size > b->compressed_size ||
		    c->compression > ANOLE_COMPRESS_LZ4 ||
		    (c->compression == ANOLE_COMPRESS_NONE &&
		     c->compressed_size != c->uncompressed_size))
			return corrupt(path, "chunk record out of order, overlapping or out of range");
		if (c->uncompressed_offset & blkmask)
			return anole_error_code(EFSCORRUPTED,
						"%s: anole chunk table: entry %u of blob %s is at offset %llu, not on a %u-byte block boundary",
						path, i, b->name, (unsigned long long)c->uncompressed_offset,
						1u << blkszbits);
		next_u = c->uncompressed_offset + c->uncompressed_size;
		next_c = c->compressed_offset + c->compressed_size;
	}
	return 0;
}

/*
 * Chunks stored as several fetch units: each names a run of entries that
 * are adjacent in the uncompressed view and no larger together than a
 * chunk; runs are sorted and disjoint.
 */
static int parse_splits(const char *path, const uint8_t *ext, uint64_t ext_size,
			const struct anole_ext_blob *rec, struct anole_blob_info *b)
{
	uint64_t off = le64_to_cpu(rec->split_offset), len;
	uint64_t next = 0;

	b->unit_size = le32_to_cpu(rec->unit_size);
	b->nsplits = le32_to_cpu(rec->nsplits);
	if (b->unit_size && (b->unit_size & (b->unit_size - 1) || b->unit_size < 4096 ||
			     b->unit_size > b->chunk_size))
		return corrupt(path, "bad fetch unit size");
	if (!b->nsplits)
		return 0;
	if (!b->unit_size || b->nsplits > b->nchunks / 2)
		return corrupt(path, "split chunks without fetch units");
	len = (uint64_t)b->nsplits * sizeof(struct anole_ext_split);
	if (off > ext_size || len > ext_size - off)
		return corrupt(path, "split table beyond the extension");
	b->splits = xmemdup(ext + off, len);
	for (uint32_t i = 0; i < b->nsplits; i++) {
		struct anole_ext_split *s = &b->splits[i];
		const struct anole_ext_chunk *c;
		uint64_t end;

		s->first = le32_to_cpu(s->first);
		s->count = le32_to_cpu(s->count);
		if (s->first < next || s->count < 2 || s->first > b->nchunks ||
		    s->count > b->nchunks - s->first)
			return corrupt(path, "split record out of order or out of range");
		c = &b->chunks[s->first];
		end = c->uncompressed_offset + c->uncompressed_size;
		for (uint32_t k = 1; k < s->count; k++) {
			if (c[k].uncompressed_offset != end)
				return corrupt(path, "fetch units of a chunk are not adjacent");
			end += c[k].uncompressed_size;
		}
		if (end - c->uncompressed_offset > b->chunk_size)
			return corrupt(path, "split chunk larger than the chunk size");
		next = s->first + s->count;
	}
	return 0;
}

static int parse_blob(const char *path, const uint8_t *ext, uint64_t ext_size,
		      const struct anole_ext_blob *rec, struct anole_blob_info *b, unsigned blkszbits)
{
	uint64_t table_off = le64_to_cpu(rec->table_offset);
	uint64_t table_len;
	int ret;

	memcpy(b->digest, rec->digest, 32);
	anole_hex(b->digest, 32, b->hex);
	snprintf(b->name, sizeof(b->name), "sha256:%s", b->hex);
	b->compressed_size = le64_to_cpu(rec->compressed_size);
	b->uncompressed_size = le64_to_cpu(rec->uncompressed_size);
	b->nchunks = le32_to_cpu(rec->nchunks);
	b->chunk_size = le32_to_cpu(rec->chunk_size);
	b->device_id = le16_to_cpu(rec->device_id);
	b->chunk_digest = (enum anole_digest_alg)rec->chunk_digest;
	b->compression = (enum anole_compress_alg)rec->compression;
	b->cipher = rec->cipher;
	memcpy(b->key_check, rec->key_check, sizeof(b->key_check));
	if (rec->cipher > ANOLE_CIPHER_SM4_CTR)
		return corrupt(path, "unknown cipher in a blob record");
	if (rec->chunk_digest > ANOLE_DIGEST_SM3 || rec->compression > ANOLE_COMPRESS_LZ4 ||
	    b->nchunks > ANOLE_EXT_MAX_CHUNKS || !b->chunk_size ||
	    b->chunk_size > (64u << 20) || !b->device_id)
		return corrupt(path, "bad blob record");
	table_len = (uint64_t)b->nchunks * sizeof(struct anole_ext_chunk);
	if (table_off > ext_size || table_len > ext_size - table_off)
		return corrupt(path, "chunk table beyond the extension");
	/* an empty table may sit at the very end: nothing to copy from there */
	b->chunks = table_len ? xmemdup(ext + table_off, table_len) : xcalloc(1, sizeof(*b->chunks));
	ret = check_chunks(path, b, blkszbits);
	if (!ret)
		ret = parse_splits(path, ext, ext_size, rec, b);
	return ret;
}

static int parse_ext(const char *path, const uint8_t *ext, uint64_t ext_size,
		     struct anole_blobmeta *meta, unsigned blkszbits)
{
	struct anole_ext_header h;
	uint64_t recs_end;
	int ret = 0;

	if (ext_size < sizeof(h))
		return corrupt(path, "too short");
	memcpy(&h, ext, sizeof(h));
	if (memcmp(h.magic, ANOLE_EXT_HEADER_MAGIC, 8))
		return corrupt(path, "bad header magic");
	if (le32_to_cpu(h.version) != ANOLE_EXT_VERSION)
		return anole_error_code(EOPNOTSUPP, "%s: anole chunk table version %u is not supported",
					path, le32_to_cpu(h.version));
	meta->nblobs = le32_to_cpu(h.nblobs);
	if (meta->nblobs > ANOLE_EXT_MAX_BLOBS)
		return corrupt(path, "too many blobs");
	recs_end = sizeof(h) + (uint64_t)meta->nblobs * sizeof(struct anole_ext_blob);
	if (recs_end > ext_size)
		return corrupt(path, "blob records beyond the extension");
	meta->blobs = xcalloc(meta->nblobs ? meta->nblobs : 1, sizeof(*meta->blobs));
	for (unsigned i = 0; i < meta->nblobs && !ret; i++) {
		struct anole_ext_blob rec;

		memcpy(&rec, ext + sizeof(h) + i * sizeof(rec), sizeof(rec));
		ret = parse_blob(path, ext, ext_size, &rec, &meta->blobs[i], blkszbits);
	}
	return ret;
}

/* The block size of the EROFS part, whose superblock the table follows. */
static int erofs_blkszbits(int fd, const char *path, uint64_t erofs_size, unsigned *bits)
{
	struct erofs_super_block sb;
	int ret;

	if (erofs_size < EROFS_SUPER_OFFSET + sizeof(sb))
		return corrupt(path, "no EROFS superblock before it");
	ret = pread_full(fd, &sb, sizeof(sb), EROFS_SUPER_OFFSET);
	if (ret)
		return anole_error(-ret, "cannot read %s", path);
	if (le32_to_cpu(sb.magic) != EROFS_SUPER_MAGIC || sb.blkszbits < EROFS_MIN_BLKSZBITS ||
	    sb.blkszbits > EROFS_MAX_BLKSZBITS)
		return corrupt(path, "no valid EROFS superblock before it");
	*bits = sb.blkszbits;
	return 0;
}

int anole_blobmeta_read(int fd, const char *path, struct anole_blobmeta *meta)
{
	unsigned blkszbits = 0;
	struct anole_ext_footer f;
	uint8_t digest[ANOLE_DIGEST_MAX];
	uint8_t *ext = NULL;
	struct stat st;
	uint64_t off, size;
	int ret;

	memset(meta, 0, sizeof(*meta));
	if (fstat(fd, &st) < 0)
		return anole_error(errno, "cannot stat %s", path);
	if ((uint64_t)st.st_size < sizeof(f) + EROFS_SUPER_OFFSET)
		return -ENOENT;
	ret = pread_full(fd, &f, sizeof(f), (uint64_t)st.st_size - sizeof(f));
	if (ret)
		return anole_error(-ret, "cannot read %s", path);
	if (memcmp(f.magic, ANOLE_EXT_FOOTER_MAGIC, 8))
		return -ENOENT;
	off = le64_to_cpu(f.ext_offset);
	size = le64_to_cpu(f.ext_size);
	if (size > MAX_EXT_SIZE || off > (uint64_t)st.st_size - sizeof(f) ||
	    size != (uint64_t)st.st_size - sizeof(f) - off)
		return corrupt(path, "footer points outside the file");
	ret = erofs_blkszbits(fd, path, off, &blkszbits);
	if (ret)
		return ret;
	ext = xmalloc(size ? size : 1);
	ret = pread_full(fd, ext, size, off);
	if (ret) {
		free(ext);
		return anole_error(-ret, "cannot read %s", path);
	}
	ret = anole_digest(ANOLE_DIGEST_SHA256, ext, size, digest);
	if (!ret && memcmp(digest, f.ext_sha256, 32))
		ret = corrupt(path, "SHA-256 mismatch (truncated or modified)");
	if (!ret)
		ret = parse_ext(path, ext, size, meta, blkszbits);
	free(ext);
	meta->erofs_size = off;
	if (ret)
		anole_blobmeta_free(meta);
	return ret;
}

void anole_blobmeta_free(struct anole_blobmeta *meta)
{
	for (unsigned i = 0; meta->blobs && i < meta->nblobs; i++) {
		free(meta->blobs[i].chunks);
		free(meta->blobs[i].splits);
	}
	free(meta->blobs);
	meta->blobs = NULL;
	meta->nblobs = 0;
}

long anole_blob_find_chunk(const struct anole_blob_info *blob, uint64_t off)
{
	uint32_t lo = 0, hi = blob->nchunks;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct anole_ext_chunk *c = &blob->chunks[mid];

		if (off < c->uncompressed_offset)
			hi = mid;
		else if (off >= c->uncompressed_offset + c->uncompressed_size)
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

void anole_blobmeta_serialize(const struct anole_blobmeta *meta, uint64_t ext_offset,
			      struct strbuf *out)
{
	struct anole_ext_header h = { 0 };
	struct anole_ext_footer f = { 0 };
	uint64_t table_off = sizeof(h) + (uint64_t)meta->nblobs * sizeof(struct anole_ext_blob);
	uint64_t split_off = table_off;
	size_t start = out->len;

	memcpy(h.magic, ANOLE_EXT_HEADER_MAGIC, 8);
	h.version = cpu_to_le32(ANOLE_EXT_VERSION);
	h.nblobs = cpu_to_le32(meta->nblobs);
	strbuf_add(out, &h, sizeof(h));
	for (unsigned i = 0; i < meta->nblobs; i++)
		split_off += (uint64_t)meta->blobs[i].nchunks * sizeof(struct anole_ext_chunk);
	for (unsigned i = 0; i < meta->nblobs; i++) {
		const struct anole_blob_info *b = &meta->blobs[i];
		struct anole_ext_blob rec = { 0 };

		memcpy(rec.digest, b->digest, 32);
		rec.compressed_size = cpu_to_le64(b->compressed_size);
		rec.uncompressed_size = cpu_to_le64(b->uncompressed_size);
		rec.table_offset = cpu_to_le64(table_off);
		rec.nchunks = cpu_to_le32(b->nchunks);
		rec.chunk_size = cpu_to_le32(b->chunk_size);
		rec.device_id = cpu_to_le16((uint16_t)b->device_id);
		rec.chunk_digest = (uint8_t)b->chunk_digest;
		rec.compression = (uint8_t)b->compression;
		rec.unit_size = cpu_to_le32(b->unit_size);
		rec.cipher = b->cipher;
		memcpy(rec.key_check, b->key_check, sizeof(rec.key_check));
		if (b->nsplits) {
			rec.split_offset = cpu_to_le64(split_off);
			rec.nsplits = cpu_to_le32(b->nsplits);
			split_off += (uint64_t)b->nsplits * sizeof(struct anole_ext_split);
		}
		strbuf_add(out, &rec, sizeof(rec));
		table_off += (uint64_t)b->nchunks * sizeof(struct anole_ext_chunk);
	}
	for (unsigned i = 0; i < meta->nblobs; i++) {
		const struct anole_blob_info *b = &meta->blobs[i];

		for (uint32_t k = 0; k < b->nchunks; k++) {
			struct anole_ext_chunk c = b->chunks[k];

			c.uncompressed_offset = cpu_to_le64(c.uncompressed_offset);
			c.compressed_offset = cpu_to_le64(c.compressed_offset);
			c.uncompressed_size = cpu_to_le32(c.uncompressed_size);
			c.compressed_size = cpu_to_le32(c.compressed_size);
			strbuf_add(out, &c, sizeof(c));
		}
	}
	for (unsigned i = 0; i < meta->nblobs; i++) {
		const struct anole_blob_info *b = &meta->blobs[i];

		for (uint32_t k = 0; k < b->nsplits; k++) {
			struct anole_ext_split sp = b->splits[k];

			sp.first = cpu_to_le32(sp.first);
			sp.count = cpu_to_le32(sp.count);
			strbuf_add(out, &sp, sizeof(sp));
		}
	}
	memcpy(f.magic, ANOLE_EXT_FOOTER_MAGIC, 8);
	f.ext_offset = cpu_to_le64(ext_offset);
	f.ext_size = cpu_to_le64(out->len - start);
	anole_digest(ANOLE_DIGEST_SHA256, out->buf + start, out->len - start, f.ext_sha256);
	strbuf_add(out, &f, sizeof(f));
}

void anole_chunk_iv_input(const struct anole_ext_chunk *c, uint8_t out[ANOLE_CHUNK_IV_INPUT_SIZE])
{
	uint64_t off = cpu_to_le64(c->compressed_offset);
	uint32_t us = cpu_to_le32(c->uncompressed_size), cs = cpu_to_le32(c->compressed_size);

	memcpy(out, c->digest, 32);
	memcpy(out + 32, &off, 8);
	memcpy(out + 40, &us, 4);
	memcpy(out + 44, &cs, 4);
	out[48] = c->compression;
	memcpy(out + 49, "anoleiv1", 8);
}
