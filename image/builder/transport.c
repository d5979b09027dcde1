// SPDX-License-Identifier: Apache-2.0
/*
 * Transport blobs (--blob-dir) of a directory build: the unique chunks, in
 * the order of the uncompressed device the EROFS chunk indexes address,
 * handed to the blob writer (blobwriter.c), whose workers read them from
 * the source files and compress them. The chunk table describing them goes
 * into the image.
 */
#include "builder.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A worker's read of one owner chunk from its source file. */
static int read_owner(void *arg, uint8_t *buf, uint32_t len)
{
	const struct bchunk_ref *r = arg;
	int fd = builder_open(r->n), ret;

	if (fd < 0)
		return -errno;
	ret = pread_full(fd, buf, len, r->idx << r->n->chunkbits);
	close(fd);
	return ret;
}

static const char *owner_name(void *arg)
{
	return ((const struct bchunk_ref *)arg)->n->path;
}

struct blobw_params builder_blobw_params(const struct builder *b)
{
	return (struct blobw_params){
		.fd = -1,
		.where = b->opts->blob_dir,
		.compression = b->compression,
		.compression_level = b->compression_level,
		.chunk_digest = (enum anole_digest_alg)b->opts->chunk_digest,
		.unit_size = b->unit_size,
		.max_chunk = 1u << b->chunkbits,
		.threads = b->opts->threads,
		.key = b->opts->encrypt_key,
	};
}

int builder_write_transport(struct builder *b, uint8_t digest[32])
{
	struct blobw_params p = builder_blobw_params(b);
	struct blob_writer *w;
	struct anole_blob_info *info;
	int ret = 0;

	p.fd = b->blob_fd;
	p.progress = b->progress;
	p.name = owner_name;
	w = blobw_new(&p);

	for (size_t i = 0; i < b->nowners && !ret; i++) {
		struct bchunk_ref *r = &b->owners[i];
		const struct bchunk *c = &r->n->chunks[r->idx];

		ret = blobw_add(w, (uint64_t)c->blkaddr << b->blkszbits, c->len, c->digest, NULL,
				read_owner, r);
	}
	if (ret) {
		blobw_abort(w);
		return ret;
	}
	info = xcalloc(1, sizeof(*info));
	ret = blobw_finish(w, info);
	if (ret) {
		free(info);
		return ret;
	}
	memcpy(digest, info->digest, 32);
	info->uncompressed_size = b->blob_blocks << b->blkszbits;
	info->chunk_size = 1u << b->chunkbits;
	info->device_id = 1;
	b->transport = info;
	return 0;
}
