// SPDX-License-Identifier: Apache-2.0
/*
 * Transport blobs (--blob-dir): the unique chunks, in the order of the
 * uncompressed device the EROFS chunk indexes address, each compressed on
 * its own so that any chunk is one range request. Chunks are compressed in
 * parallel in batches and written in order, so the bytes do not depend on
 * the thread count. The chunk table describing them goes into the image.
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

struct pack_job {
	struct builder *b;
	const struct bchunk_ref *ref;
	uint8_t *out;
	size_t out_len;
	uint8_t compression;
	int err;
};

static void pack_chunk(void *item, void *shared)
{
	struct pack_job *j = item;
	const struct bnode *n = j->ref->n;
	const struct bchunk *c = &n->chunks[j->ref->idx];
	enum anole_compress_alg alg = (enum anole_compress_alg)j->b->opts->compression;
	size_t cap = anole_compress_bound(alg, c->len);
	uint8_t *raw = xmalloc(c->len);
	ssize_t clen = -1;
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
	if (alg != ANOLE_COMPRESS_NONE) {
		j->out = xmalloc(cap);
		clen = anole_compress(alg, j->b->opts->compression_level, raw, c->len, j->out, cap);
	}
	if (clen > 0 && (size_t)clen < c->len) {
		j->out_len = (size_t)clen;
		j->compression = (uint8_t)alg;
		free(raw);
	} else {
		/* did not shrink: stored as is */
		free(j->out);
		j->out = raw;
		j->out_len = c->len;
		j->compression = ANOLE_COMPRESS_NONE;
	}
}

static int write_batch(struct builder *b, struct pack_job *jobs, size_t n,
		       struct anole_digest_ctx *ctx, uint64_t *coff, struct anole_blob_info *info)
{
	for (size_t i = 0; i < n; i++) {
		struct pack_job *j = &jobs[i];
		const struct bchunk *c = &j->ref->n->chunks[j->ref->idx];
		struct anole_ext_chunk *e = &info->chunks[info->nchunks];
		int ret;

		if (j->err)
			return anole_error(j->err == -ENODATA ? EIO : -j->err, "cannot read %s%s",
					   j->ref->n->path,
					   j->err == -ENODATA ? " (file shrank while building)" : "");
		ret = write_full(b->blob_fd, j->out, j->out_len);
		if (ret)
			return anole_error(-ret, "cannot write blob in %s", b->opts->blob_dir);
		anole_digest_update(ctx, j->out, j->out_len);
		memset(e, 0, sizeof(*e));
		e->uncompressed_offset = (uint64_t)c->blkaddr << b->blkszbits;
		e->compressed_offset = *coff;
		e->uncompressed_size = c->len;
		e->compressed_size = (uint32_t)j->out_len;
		e->compression = j->compression;
		memcpy(e->digest, c->digest, 32);
		info->nchunks++;
		*coff += j->out_len;
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

	info->chunks = xcalloc(b->nowners ? b->nowners : 1, sizeof(*info->chunks));
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
		for (size_t k = 0; k < n; k++)
			free(jobs[k].out);
		i += n;
	}
	if (!ret)
		ret = anole_digest_final(ctx, digest);
	anole_digest_free(ctx);
	free(jobs);
	if (ret) {
		free(info->chunks);
		free(info);
		return ret;
	}
	memcpy(info->digest, digest, 32);
	anole_hex(digest, 32, info->hex);
	snprintf(info->name, sizeof(info->name), "sha256:%s", info->hex);
	info->compressed_size = coff;
	info->uncompressed_size = b->blob_blocks << b->blkszbits;
	info->chunk_size = 1u << b->chunkbits;
	info->device_id = 1;
	info->chunk_digest = (enum anole_digest_alg)b->opts->chunk_digest;
	info->compression = (enum anole_compress_alg)b->opts->compression;
	b->transport = info;
	return 0;
}
