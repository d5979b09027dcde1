// SPDX-License-Identifier: Apache-2.0
/*
 * Chunked image data straight from a blob store (anole/chunkfetch.h): no
 * mount, no cache. The image's EROFS chunk indexes say which device range
 * holds each piece of a file; the appended chunk table (blobmeta.c) says
 * where that range is in the transport blob, how it is compressed and what
 * its digest is.
 */
#include "anole/chunkfetch.h"
#include "anole/blobstore.h"
#include "anole/compress.h"
#include "anole/erofs.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A request covers at most this many transport bytes of adjacent entries:
 * few round trips, bounded memory. */
#define RUN_MAX (8u << 20)
/* The largest entry the builder writes is a 64 MiB chunk; its transport
 * form may be a little larger when it does not compress. Beyond that the
 * table is hostile, and its sizes are never allocated. */
#define ENTRY_MAX ((64u << 20) + (1u << 20))

/* One entry to write: where its bytes go and how many of them. */
struct dest { uint64_t off; uint32_t len, skip; };

/* Adjacent entries of one blob waiting for one range request. */
struct run {
	const struct anole_blob_info *blob;
	uint32_t first, count;
	struct dest *dests;
	size_t dalloc;
};

static void stat_add(struct anole_fetch_stats *st, uint64_t fetched, uint64_t chunks)
{
	if (st) {
		st->bytes_fetched += fetched;
		st->requests++;
		st->chunks_fetched += chunks;
	}
}

/* Decode and verify entry c from its transport bytes into out. */
static int entry_decode(const struct anole_blob_info *b, const struct anole_ext_chunk *c,
			const uint8_t *in, uint8_t *out)
{
	uint8_t dg[ANOLE_DIGEST_MAX];
	int ret;

	if (c->compression == ANOLE_COMPRESS_NONE) {
		if (c->compressed_size != c->uncompressed_size)
			return anole_error_code(EBADMSG, "blob %s: a stored entry's sizes differ", b->name);
		memcpy(out, in, c->uncompressed_size);
	} else if ((ret = anole_decompress((enum anole_compress_alg)c->compression, in,
					   c->compressed_size, out, c->uncompressed_size)) < 0) {
		return anole_error_code(EBADMSG, "blob %s: entry at %llu does not decompress",
					b->name, (unsigned long long)c->uncompressed_offset);
	}
	anole_digest(b->chunk_digest, out, c->uncompressed_size, dg);
	if (memcmp(dg, c->digest, anole_digest_size(b->chunk_digest)))
		return anole_error_code(EBADMSG, "blob %s: entry at %llu does not match its digest: "
					"refused", b->name, (unsigned long long)c->uncompressed_offset);
	return 0;
}

static int run_flush(struct anole_blobstore *bs, struct run *r, int fd, struct anole_fetch_stats *st)
{
	const struct anole_ext_chunk *first, *last;
	uint8_t *in, *out = NULL;
	uint64_t len;
	int ret;

	if (!r->count)
		return 0;
	first = &r->blob->chunks[r->first];
	last = &r->blob->chunks[r->first + r->count - 1];
	len = last->compressed_offset + last->compressed_size - first->compressed_offset;
	in = xmalloc(len ? len : 1);
	ret = anole_blobstore_read(bs, r->blob->name, first->compressed_offset, in, len);
	if (ret == 0)
		stat_add(st, len, r->count);
	for (uint32_t i = 0; i < r->count && ret == 0; i++) {
		const struct anole_ext_chunk *c = &r->blob->chunks[r->first + i];

		out = xrealloc(out, c->uncompressed_size ? c->uncompressed_size : 1);
		ret = entry_decode(r->blob, c, in + (c->compressed_offset - first->compressed_offset), out);
		if (ret == 0 && (ret = pwrite_full(fd, out + r->dests[i].skip, r->dests[i].len,
						   r->dests[i].off)) < 0)
			anole_error(-ret, "writing fetched data");
	}
	free(in);
	free(out);
	r->count = 0;
	return ret;
}

/* Queue entry e of blob to land at dest; a run that cannot take it is
 * flushed first. */
static int run_add(struct anole_blobstore *bs, struct run *r, const struct anole_blob_info *blob,
		   uint32_t e, struct dest dest, int fd, struct anole_fetch_stats *st)
{
	int ret;

	if (blob->chunks[e].uncompressed_size > ENTRY_MAX || blob->chunks[e].compressed_size > ENTRY_MAX)
		return anole_error_code(EBADMSG, "blob %s: an entry of %u bytes (%u stored) is larger "
					"than any chunk", blob->name, blob->chunks[e].uncompressed_size,
					blob->chunks[e].compressed_size);
	if (r->count) {
		const struct anole_ext_chunk *f = &r->blob->chunks[r->first];
		const struct anole_ext_chunk *c = &blob->chunks[e];
		bool adjacent = r->blob == blob && e == r->first + r->count &&
			c->compressed_offset + c->compressed_size - f->compressed_offset <= RUN_MAX;

		if (!adjacent && (ret = run_flush(bs, r, fd, st)) < 0)
			return ret;
	}
	if (!r->count) {
		r->blob = blob;
		r->first = e;
	}
	xgrow(&r->dests, &r->dalloc, r->count + 1, sizeof(*r->dests));
	r->dests[r->count++] = dest;
	return 0;
}

static int check_clear(const struct anole_blob_info *b)
{
	if (b->cipher)
		return anole_error_code(EOPNOTSUPP, "blob %s is encrypted: not supported here", b->name);
	return 0;
}

int anole_blob_materialize(struct anole_blobstore *bs, const struct anole_blob_info *blob,
			   int fd, struct anole_fetch_stats *st)
{
	struct run r = { 0 };
	int ret = check_clear(blob);

	if (ret == 0 && ftruncate(fd, (off_t)blob->uncompressed_size) < 0)
		ret = anole_error(errno, "sizing blob %s's device", blob->name);
	for (uint32_t e = 0; e < blob->nchunks && ret == 0; e++) {
		const struct anole_ext_chunk *c = &blob->chunks[e];

		if (c->uncompressed_offset + c->uncompressed_size > blob->uncompressed_size)
			ret = anole_error_code(EBADMSG, "blob %s: an entry ends beyond its size", blob->name);
		else
			ret = run_add(bs, &r, blob, e, (struct dest){ c->uncompressed_offset,
					c->uncompressed_size, 0 }, fd, st);
	}
	if (ret == 0)
		ret = run_flush(bs, &r, fd, st);
	free(r.dests);
	return ret;
}

static const struct anole_blob_info *blob_of(const struct anole_blobmeta *m, unsigned devid)
{
	for (unsigned i = 0; i < m->nblobs; i++)
		if (m->blobs[i].device_id == devid)
			return &m->blobs[i];
	return NULL;
}

static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zero[65536];
	int ret = 0;

	while (len && ret == 0) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);

		ret = pwrite_full(fd, zero, n, off);
		off += n;
		len -= n;
	}
	return ret < 0 ? anole_error(-ret, "writing fetched data") : 0;
}

int anole_image_fetch_file(const char *image, const char *path, struct anole_blobstore *bs,
			   const struct anole_fetch_local *local, int fd, uint64_t off,
			   uint64_t max, uint64_t *size, struct anole_fetch_stats *st)
{
	struct anole_blobmeta meta = { 0 };
	struct erofs_image *img = NULL;
	struct erofs_inode ino;
	struct run r = { 0 };
	uint8_t *buf = NULL;
	size_t bufsize = 0;
	int ret, mfd;

	if ((mfd = open(image, O_RDONLY | O_CLOEXEC)) < 0)
		return anole_error(errno, "%s", image);
	ret = anole_blobmeta_read(mfd, image, &meta);
	close(mfd);
	if (ret < 0)
		return ret == -ENOENT ? anole_error_code(EINVAL, "%s is not a chunked image (no chunk "
							 "table)", image) : ret;
	for (unsigned i = 0; i < meta.nblobs && ret == 0; i++)
		ret = check_clear(&meta.blobs[i]);
	if (ret == 0)
		ret = erofs_image_open(&img, image, NULL, 0);
	if (ret == 0 && (ret = erofs_lookup(img, path, &ino)) < 0)
		anole_error_code(-ret, "%s: no %s in the image", image, path);
	if (ret < 0)
		goto out;
	if ((ino.mode & 0170000) != 0100000) {
		ret = anole_error_code(EINVAL, "%s: %s is not a regular file", image, path);
		goto out;
	}
	if (ino.size > max) {
		ret = anole_error_code(EFBIG, "%s: %s is %llu bytes, more than the %llu it may have",
				       image, path, (unsigned long long)ino.size, (unsigned long long)max);
		goto out;
	}
	*size = ino.size;
	for (uint64_t pos = 0; pos < ino.size && ret == 0;) {
		struct erofs_map map;

		if ((ret = erofs_map_blocks(img, &ino, pos, &map)) < 0)
			break;
		uint64_t end = map.logical + map.length;
		if (map.logical > pos || end <= pos) {
			ret = anole_error_code(EFSCORRUPTED, "%s: %s: no extent at %llu", image, path,
					       (unsigned long long)pos);
			break;
		}
		if (end > ino.size)
			end = ino.size;
		if (map.physical == UINT64_MAX) {
			ret = write_zeros(fd, off + pos, end - pos);
		} else if (map.devid == 0 || map.encoded) {
			/* data in the metadata image itself (an inline tail, a flat
			 * file), in pieces: the extent's length is the image's word */
			for (uint64_t q = pos; q < end && ret == 0;) {
				size_t n = end - q > (1u << 20) ? (1u << 20) : (size_t)(end - q);

				xgrow(&buf, &bufsize, n, 1);
				ssize_t got = erofs_pread(img, &ino, buf, n, q);
				if (got != (ssize_t)n)
					ret = anole_error_code(EIO, "%s: reading %s", image, path);
				else if ((ret = pwrite_full(fd, buf, n, off + q)) < 0)
					anole_error(-ret, "writing fetched data");
				q += n;
			}
		} else {
			const struct anole_blob_info *b = blob_of(&meta, map.devid);
			uint64_t p = map.physical + (pos - map.logical);

			if (!b) {
				ret = anole_error_code(EFSCORRUPTED, "%s: %s: device %u has no blob",
						       image, path, map.devid);
				break;
			}
			while (p < map.physical + (end - map.logical) && ret == 0) {
				long e = anole_blob_find_chunk(b, p);
				const struct anole_ext_chunk *c;
				uint64_t want = map.physical + (end - map.logical) - p;
				uint64_t lpos = map.logical + (p - map.physical);
				uint32_t skip;

				if (e < 0) {
					ret = anole_error_code(EFSCORRUPTED, "%s: %s: blob %s has no entry "
							       "at %llu", image, path, b->name,
							       (unsigned long long)p);
					break;
				}
				c = &b->chunks[e];
				skip = (uint32_t)(p - c->uncompressed_offset);
				if (want > c->uncompressed_size - skip)
					want = c->uncompressed_size - skip;
				int have = 0;
				if (c->uncompressed_size > ENTRY_MAX) {
					ret = anole_error_code(EBADMSG, "blob %s: an entry of %u bytes is "
							       "larger than any chunk", b->name,
							       c->uncompressed_size);
					break;
				}
				if (local && skip == 0) {
					xgrow(&buf, &bufsize, c->uncompressed_size, 1);
					have = local->lookup(local->opaque, b->chunk_digest, c->digest, buf,
							     c->uncompressed_size);
				}
				if (have < 0) {
					ret = have;
				} else if (have) {
					if ((ret = pwrite_full(fd, buf, (size_t)want, off + lpos)) < 0)
						anole_error(-ret, "writing fetched data");
					if (st) {
						st->chunks_local++;
						st->bytes_local += want;
					}
				} else {
					ret = run_add(bs, &r, b, (uint32_t)e, (struct dest){ off + lpos,
							(uint32_t)want, skip }, fd, st);
				}
				p += want;
			}
		}
		pos = end;
	}
	if (ret == 0)
		ret = run_flush(bs, &r, fd, st);
out:
	free(r.dests);
	free(buf);
	if (img)
		erofs_image_close(img);
	anole_blobmeta_free(&meta);
	return ret;
}

int anole_image_fetch_small(const char *image, const char *path, struct anole_blobstore *bs,
			    size_t max, struct strbuf *out, struct anole_fetch_stats *st)
{
	int fd = memfd_create("anole-fetch", MFD_CLOEXEC), ret;
	uint64_t size = 0;

	if (fd < 0)
		return anole_error(errno, "memfd");
	ret = anole_image_fetch_file(image, path, bs, NULL, fd, 0, max, &size, st);
	if (ret == 0) {
		strbuf_grow(out, (size_t)size + 1);
		if ((ret = pread_full(fd, out->buf, (size_t)size, 0)) < 0)
			anole_error(-ret, "reading back %s", path);
		else
			strbuf_setlen(out, (size_t)size);
	}
	close(fd);
	return ret;
}
