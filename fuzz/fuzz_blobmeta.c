// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the anole chunk table (image/blobmeta.c): the
 * extension behind the EROFS part of an image built with --blob-dir, which
 * lazy mounts and --chunk-dict read from images that come off a registry.
 * Its footer carries a SHA-256 of the extension, which any writer can
 * compute: it is a check against truncation, not a defence. So the
 * harness places the input behind 2 KiB (the "EROFS part", a superblock) and appends a
 * footer with the right digest, and the parser, not the checksum, meets
 * the hostile bytes. When the first byte is odd the input is taken as a
 * whole file instead (the footer itself fuzzed). Then every chunk lookup
 * must land in a chunk that holds the offset asked for, and every split
 * record accepted must name adjacent entries within the table. A small
 * blob's table then drives anole_blob_materialize (image/chunkfetch.c)
 * over a directory store holding the input as that blob's bytes: hostile
 * offsets and sizes meet the range grouping, the decompressors and the
 * digest check, which must end in an error or in exactly the view's size.
 */
#include "anole/blobmeta.h"
#include "anole/blobstore.h"
#include "anole/chunkfetch.h"
#include "anole/digest.h"
#include "anole/endian.h"
#include "anole/erofs_fs.h"
#include "anole/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EROFS_PART 2048

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void probe(const struct anole_blob_info *b, uint64_t off)
{
	long i = anole_blob_find_chunk(b, off);

	if (i < 0)
		return;
	if ((uint64_t)i >= b->nchunks || off < b->chunks[i].uncompressed_offset ||
	    off - b->chunks[i].uncompressed_offset >= b->chunks[i].uncompressed_size)
		abort();    /* a lookup that lands on the wrong chunk */
}

/* The blob's bytes: the input, repeated to its transport size. */
static void materialize(const struct anole_blob_info *b, const uint8_t *data, size_t size)
{
	static char dir[64];
	char path[160];
	struct anole_blobstore *bs = NULL;
	struct stat st;
	int fd, out;

	if (!dir[0])
		snprintf(dir, sizeof(dir), "/tmp/anole-fuzz-chunkfetch.%d", (int)getpid());
	if (b->compressed_size > (1u << 20) || b->uncompressed_size > (64u << 20) || b->cipher)
		return;
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/%s", dir, b->hex);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	for (uint64_t n = 0; n < b->compressed_size;) {
		size_t k = b->compressed_size - n < size ? (size_t)(b->compressed_size - n) : size;

		if (write_all(fd, data, k))
			break;
		n += k;
	}
	close(fd);
	out = memfd_create("anole-fuzz-view", MFD_CLOEXEC);
	if (out >= 0 && anole_blobstore_open(&bs, dir, NULL) == 0 &&
	    anole_blob_materialize(bs, b, out, NULL) == 0 &&
	    (fstat(out, &st) < 0 || (uint64_t)st.st_size != b->uncompressed_size))
		abort();    /* a view that is not the size the table says */
	anole_blobstore_close(bs);
	if (out >= 0)
		close(out);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	struct anole_blobmeta meta;
	int fd;

	if (!quiet) {
		anole_log_set_sink(drop_log, NULL);
		quiet = 1;
	}
	if (!size)
		return 0;
	fd = memfd_create("anole-fuzz-blobmeta", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (data[0] & 1) {
		if (write_all(fd, data + 1, size - 1))
			goto out;
	} else {
		/* a superblock for the table to follow: 512-byte blocks, the
		 * alignment the fewest hostile offsets are refused for */
		static uint8_t zeros[EROFS_PART];
		struct anole_ext_footer f = { 0 };
		uint32_t magic = cpu_to_le32(EROFS_SUPER_MAGIC);

		memcpy(zeros + EROFS_SUPER_OFFSET, &magic, 4);
		zeros[EROFS_SUPER_OFFSET + 12] = EROFS_MIN_BLKSZBITS;

		memcpy(f.magic, ANOLE_EXT_FOOTER_MAGIC, 8);
		f.ext_offset = cpu_to_le64(EROFS_PART);
		f.ext_size = cpu_to_le64(size - 1);
		if (anole_digest(ANOLE_DIGEST_SHA256, data + 1, size - 1, f.ext_sha256) ||
		    write_all(fd, zeros, sizeof(zeros)) || write_all(fd, data + 1, size - 1) ||
		    write_all(fd, &f, sizeof(f)))
			goto out;
	}
	if (anole_blobmeta_read(fd, "fuzz", &meta))
		goto out;
	for (unsigned i = 0; i < meta.nblobs; i++) {
		const struct anole_blob_info *b = &meta.blobs[i];

		probe(b, 0);
		probe(b, b->uncompressed_size ? b->uncompressed_size - 1 : 0);
		for (uint32_t k = 0; k < b->nsplits; k++) {
			const struct anole_ext_split *sp = &b->splits[k];

			/* a split the parser accepted names adjacent units in range */
			if (sp->count < 2 || sp->first > b->nchunks || sp->count > b->nchunks - sp->first ||
			    b->chunks[sp->first + 1].uncompressed_offset !=
			    b->chunks[sp->first].uncompressed_offset + b->chunks[sp->first].uncompressed_size)
				abort();
		}
		for (uint32_t k = 0; k < b->nchunks && k < 64; k++) {
			probe(b, b->chunks[k].uncompressed_offset);
			probe(b, b->chunks[k].uncompressed_offset + b->chunks[k].uncompressed_size - 1);
			probe(b, b->chunks[k].uncompressed_offset + b->chunks[k].uncompressed_size);
		}
		if (i < 2)
			materialize(b, data, size);
	}
	anole_blobmeta_free(&meta);
out:
	close(fd);
	return 0;
}
