// SPDX-License-Identifier: Apache-2.0
/*
 * Transport blobs (--blob-dir): the unique chunks, in the order of the
 * uncompressed device the EROFS chunk indexes address, each compressed on
 * its own so that any chunk is one range request. A chunk larger than the
 * fetch unit (--fetch-unit) is stored as several units, each compressed and
 * digested on its own: a reader that needs one page of a 1 MiB chunk of a
 * binary then fetches and verifies one unit, not the whole chunk. Chunks are
 * compressed in parallel in batches and written in order, so the bytes do
 * not depend on the thread count. The chunk table describing them goes
 * into the image.
 */
#include "builder.h"
#include "anole/compress.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/progress.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_CHUNKS 256
#define BATCH_BYTES (64u << 20)

/* One unit of a chunk as it goes into the blob. */
struct packed_unit {
	uint32_t len, out_len;      /* uncompressed, stored */
	uint8_t compression;
	uint8_t digest[32];         /* of the uncompressed unit (split chunks only) */
};

struct pack_job {
	struct builder *b;
	const struct bchunk_ref *ref;
	uint8_t *out;               /* the stored units, back to back */
	size_t out_len;
	struct packed_unit *units;
	uint32_t nunits;
	int err;
};

/* Units of a chunk of len bytes: one if it fits the unit size. */
static uint32_t units_of(const struct builder *b, uint32_t len)
{
	return b->unit_size && len > b->unit_size ? (uint32_t)DIV_ROUND_UP(len, b->unit_size) : 1;
}

static void pack_chunk(void *item, void *shared)
{
	struct pack_job *j = item;
	const struct bnode *n = j->ref->n;
	const struct bchunk *c = &n->chunks[j->ref->idx];
	enum anole_compress_alg alg = j->b->compression;
	uint32_t unit = j->b->unit_size;
	uint8_t *raw = xmalloc(c->len), *cbuf = NULL;
	size_t cap = 0;
	int fd = builder_open(n);

	if (fd < 0) {
		j->err = -errno;
		free(raw);
		return;
	}
	j->err = pread_full(fd, raw, c->len, j->ref->idx << n->chunkbits);
	close(fd);
	if (j->err) {
		free(raw);
		return;
	}
	j->nunits = units_of(j->b, c->len);
	j->units = xcalloc(j->nunits, sizeof(*j->units));
	j->out = xmalloc(c->len);   /* units that do not shrink are stored as they are */
	if (alg != ANOLE_COMPRESS_NONE) {
		cap = anole_compress_bound(alg, j->nunits > 1 ? unit : c->len);
		cbuf = xmalloc(cap);
	}
	for (uint32_t k = 0; k < j->nunits && !j->err; k++) {
		struct packed_unit *u = &j->units[k];
		const uint8_t *src = raw + (size_t)k * unit;
		ssize_t clen = -1;

		u->len = k + 1 < j->nunits ? unit : c->len - k * unit;
		if (cbuf)
			clen = anole_compress(alg, j->b->compression_level, src, u->len, cbuf, cap);
		if (clen > 0 && (size_t)clen < u->len) {
			memcpy(j->out + j->out_len, cbuf, (size_t)clen);
			u->out_len = (uint32_t)clen;
			u->compression = (uint8_t)alg;
		} else {
			/* did not shrink: stored as is */
			memcpy(j->out + j->out_len, src, u->len);
			u->out_len = u->len;
			u->compression = ANOLE_COMPRESS_NONE;
		}
		j->out_len += u->out_len;
		if (j->nunits > 1 &&
		    anole_digest((enum anole_digest_alg)j->b->opts->chunk_digest, src, u->len, u->digest))
			j->err = -EIO;
	}
	free(cbuf);
	free(raw);
}

static int write_batch(struct builder *b, struct pack_job *jobs, size_t n,
		       struct anole_digest_ctx *ctx, uint64_t *coff, struct anole_blob_info *info)
{
	for (size_t i = 0; i < n; i++) {
		struct pack_job *j = &jobs[i];
		const struct bchunk *c = &j->ref->n->chunks[j->ref->idx];
		uint64_t uoff = (uint64_t)c->blkaddr << b->blkszbits;
		int ret;

		if (j->err)
			return anole_error(j->err == -ENODATA ? EIO : -j->err, "cannot read %s%s",
					   j->ref->n->path,
					   j->err == -ENODATA ? " (file shrank while building)" : "");
		ret = write_full(b->blob_fd, j->out, j->out_len);
		if (ret)
			return anole_error(-ret, "cannot write blob in %s", b->opts->blob_dir);
		anole_digest_update(ctx, j->out, j->out_len);
		if (j->nunits > 1) {
			struct anole_ext_split *sp = &info->splits[info->nsplits++];

			sp->first = info->nchunks;
			sp->count = j->nunits;
			memcpy(sp->digest, c->digest, 32);
		}
		for (uint32_t k = 0; k < j->nunits; k++) {
			const struct packed_unit *u = &j->units[k];
			struct anole_ext_chunk *e = &info->chunks[info->nchunks++];

			memset(e, 0, sizeof(*e));
			e->uncompressed_offset = uoff;
			e->compressed_offset = *coff;
			e->uncompressed_size = u->len;
			e->compressed_size = u->out_len;
			e->compression = u->compression;
			memcpy(e->digest, j->nunits > 1 ? u->digest : c->digest, 32);
			uoff += u->len;
			*coff += u->out_len;
		}
		anole_progress_add(b->progress, c->len);
	}
	return 0;
}

int builder_write_transport(struct builder *b, uint8_t digest[32])
{
	struct anole_digest_ctx *ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
	struct anole_blob_info *info = xcalloc(1, sizeof(*info));
	struct pack_job *jobs = xcalloc(BATCH_CHUNKS, sizeof(*jobs));
	uint64_t coff = 0;
	size_t i = 0;
	int ret = 0;

	size_t nentries = 0, nsplits = 0;

	for (size_t k = 0; k < b->nowners; k++) {
		uint32_t units = units_of(b, b->owners[k].n->chunks[b->owners[k].idx].len);

		nentries += units;
		nsplits += units > 1;
	}
	if (nentries > ANOLE_EXT_MAX_CHUNKS) {
		free(info);
		free(jobs);
		anole_digest_free(ctx);
		return anole_error_code(EFBIG, "%zu fetch units, more than a chunk table holds (%u); "
					"use a larger --fetch-unit or --chunk-size", nentries,
					ANOLE_EXT_MAX_CHUNKS);
	}
	info->chunks = xcalloc(nentries ? nentries : 1, sizeof(*info->chunks));
	info->splits = nsplits ? xcalloc(nsplits, sizeof(*info->splits)) : NULL;
	while (i < b->nowners && !ret) {
		size_t n = 0, bytes = 0;

		while (i + n < b->nowners && n < BATCH_CHUNKS && bytes < BATCH_BYTES) {
			const struct bchunk_ref *r = &b->owners[i + n];

			jobs[n] = (struct pack_job){ .b = b, .ref = r };
			bytes += r->n->chunks[r->idx].len;
			n++;
		}
		anole_parallel_for(jobs, n, sizeof(*jobs), b->opts->threads, pack_chunk, NULL);
		ret = write_batch(b, jobs, n, ctx, &coff, info);
		for (size_t k = 0; k < n; k++) {
			free(jobs[k].out);
			free(jobs[k].units);
		}
		i += n;
	}
	if (!ret)
		ret = anole_digest_final(ctx, digest);
	anole_digest_free(ctx);
	free(jobs);
	if (ret) {
		free(info->chunks);
		free(info->splits);
		free(info);
		return ret;
	}
	memcpy(info->digest, digest, 32);
	anole_hex(digest, 32, info->hex);
	snprintf(info->name, sizeof(info->name), "sha256:%s", info->hex);
	info->compressed_size = coff;
	info->uncompressed_size = b->blob_blocks << b->blkszbits;
	info->chunk_size = 1u << b->chunkbits;
	info->unit_size = b->unit_size && b->unit_size < info->chunk_size ? b->unit_size : 0;
	info->device_id = 1;
	info->chunk_digest = (enum anole_digest_alg)b->opts->chunk_digest;
	info->compression = b->compression;
	b->transport = info;
	return 0;
}
