/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading a chunked image's data (built with --blob-dir, or converted) from
 * its blob store without mounting it: whole blobs into their uncompressed
 * view (the devices `anole image unpack` reads), or one file with the
 * chunks a caller already has taken from it instead of the store (an
 * upgrade that fetches only what changed). Every chunk is verified against
 * its digest in the image's chunk table before its bytes are used; adjacent
 * missing entries go in one range request.
 */
#ifndef ANOLE_CHUNKFETCH_H
#define ANOLE_CHUNKFETCH_H
#include <stddef.h>
#include <stdint.h>

#include "anole/blobmeta.h"
#include "anole/digest.h"

struct anole_blobstore;

struct anole_fetch_stats {
	uint64_t bytes_fetched;     /* transport bytes asked of the store */
	uint64_t requests;          /* range requests made */
	uint64_t chunks_fetched;
	uint64_t chunks_local;      /* supplied by the caller's lookup */
	uint64_t bytes_local;
};

/* A caller's own chunks: 1 with the len bytes whose alg digest is `digest`
 * in buf; 0 when it has none; a negative errno (reported) on failure. */
struct anole_fetch_local {
	int (*lookup)(void *opaque, enum anole_digest_alg alg, const uint8_t *digest,
		      void *buf, size_t len);
	void *opaque;
};

/* Write blob's uncompressed view into fd (from offset 0, sized to it).
 * Encrypted blobs are refused. */
int anole_blob_materialize(struct anole_blobstore *bs, const struct anole_blob_info *blob,
			   int fd, struct anole_fetch_stats *st);

/*
 * Write the regular file `path` of the chunked image file `image` (its
 * blobs in bs) into fd at off; a file larger than max is refused before
 * anything is written (-EFBIG). *size gets the file's size. local may be
 * NULL.
 */
int anole_image_fetch_file(const char *image, const char *path, struct anole_blobstore *bs,
			   const struct anole_fetch_local *local, int fd, uint64_t off,
			   uint64_t max, uint64_t *size, struct anole_fetch_stats *st);

/* The same into memory (at most max bytes): small files. */
struct strbuf;
int anole_image_fetch_small(const char *image, const char *path, struct anole_blobstore *bs,
			    size_t max, struct strbuf *out, struct anole_fetch_stats *st);
#endif
