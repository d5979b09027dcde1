// SPDX-License-Identifier: Apache-2.0
/*
 * Chunk-based files. With --chunk-size every regular file is cut into
 * fixed-size chunks addressed by SHA-256: identical chunks are stored once,
 * all-zero chunks become holes. Without it, sparse files still use chunks,
 * at a size chosen per file so that holes cost (almost) nothing.
 *
 * Three passes keep the image independent of thread timing:
 *   hash (parallel)  -> digests of every chunk
 *   assign (serial)  -> first occurrence, in placement order, owns the data
 *   write (parallel) -> owners' chunks copied to their blocks
 */
#include "builder.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/progress.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool node_is_chunked(const struct builder *b, const struct bnode *n)
{
	return n->chunkbits != 0;
}

static int open_source(const struct bnode *n)
{
	int fd = builder_open(n);

	return fd < 0 ? anole_error(errno, "cannot read %s", n->path) : fd;
}

static void add_extent(struct bnode *n, size_t *alloc, uint64_t off, uint64_t len)
{
	xgrow(&n->extents, alloc, n->nextents + 1, sizeof(*n->extents));
	n->extents[n->nextents++] = (struct bextent){ off, len };
}

/* Data ranges of a file from SEEK_DATA/SEEK_HOLE; all of it if unsupported. */
static int read_extents(struct bnode *n)
{
	size_t alloc = 0;
	off_t pos = 0;
	int fd = open_source(n);

	if (fd < 0)
		return fd;
	while ((uint64_t)pos < n->size) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)         /* only a hole remains */
				break;
			n->nextents = 0;            /* no hole support: all data */
			add_extent(n, &alloc, 0, n->size);
			break;
		}
		if ((uint64_t)data >= n->size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > n->size)
			hole = (off_t)n->size;
		add_extent(n, &alloc, (uint64_t)data, (uint64_t)(hole - data));
		pos = hole;
	}
	close(fd);
	return 0;
}

static uint64_t chunks_touched(const struct bnode *n, unsigned bits)
{
	uint64_t count = 0, last = UINT64_MAX;

	for (size_t i = 0; i < n->nextents; i++) {
		uint64_t first = n->extents[i].off >> bits;
		uint64_t end = (n->extents[i].off + n->extents[i].len - 1) >> bits;

		if (first == last)
			first++;
		if (end >= first)
			count += end - first + 1;
		last = end;
	}
	return count;
}

/*
 * For a sparse file, pick the chunk size that minimises index + stored
 * chunks; keep it flat if that is no larger.
 */
static unsigned best_sparse_chunkbits(const struct builder *b, const struct bnode *n)
{
	uint64_t best_cost = DIV_ROUND_UP(n->size, b->blksz) * b->blksz;
	unsigned best = 0;

	for (unsigned bits = b->blkszbits; bits <= b->blkszbits + 14; bits++) {
		uint64_t nchunks = ((n->size - 1) >> bits) + 1;
		uint64_t cost = nchunks * 4 + (chunks_touched(n, bits) << bits);

		if (cost < best_cost) {
			best_cost = cost;
			best = bits;
		}
	}
	return best;
}

int builder_plan_chunks(struct builder *b)
{
	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = b->order[i];
		size_t alloc = 0;
		int ret;

		if (n->prechunked) {
			n->index_size = (uint32_t)(n->nchunks * 8);
			b->has_chunked = true;
			continue;
		}
		if (!is_reg(n->mode) || !n->size || (!b->chunkbits && !n->sparse))
			continue;
		if (n->sparse) {
			ret = read_extents(n);
			if (ret)
				return ret;
		} else {
			add_extent(n, &alloc, 0, n->size);
		}
		n->chunkbits = b->chunkbits ? b->chunkbits : best_sparse_chunkbits(b, n);
		if (!n->chunkbits)
			continue;
		n->nchunks = ((n->size - 1) >> n->chunkbits) + 1;
		if (n->nchunks * (b->use_blob ? 8 : 4) > UINT32_MAX / 2)
			return anole_error_code(EFBIG, "%s: too many chunks (%llu); use a larger --chunk-size",
						n->path, (unsigned long long)n->nchunks);
		n->index_size = (uint32_t)(n->nchunks * (b->use_blob ? 8 : 4));
		n->chunks = xcalloc(n->nchunks, sizeof(*n->chunks));
		b->has_chunked = true;
	}
	return 0;
}

/* ---- hash ---- */

static bool range_has_data(const struct bnode *n, uint64_t start, uint64_t end, size_t *cursor)
{
	while (*cursor < n->nextents &&
	       n->extents[*cursor].off + n->extents[*cursor].len <= start)
		(*cursor)++;
	return *cursor < n->nextents && n->extents[*cursor].off < end;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

struct chunk_job {
	struct builder *b;
	struct bnode *n;
	int err;
};

static void hash_chunks(void *item, void *shared)
{
	struct chunk_job *j = item;
	struct bnode *n = j->n;
	uint64_t csize = 1ULL << n->chunkbits;
	uint8_t *buf = NULL;
	size_t cursor = 0;
	int fd = -1;

	for (uint64_t i = 0; i < n->nchunks && !j->err; i++) {
		struct bchunk *c = &n->chunks[i];
		uint64_t start = i << n->chunkbits;
		uint64_t len = n->size - start < csize ? n->size - start : csize;

		c->len = (uint32_t)len;
		c->blkaddr = EROFS_NULL_ADDR;
		if (!range_has_data(n, start, start + len, &cursor)) {
			c->hole = true;
			continue;
		}
		if (fd < 0) {
			fd = builder_open(n);
			if (fd < 0) {
				j->err = -errno;
				break;
			}
			buf = xmalloc(csize);
		}
		j->err = pread_full(fd, buf, len, start);
		if (j->err)
			break;
		if (all_zero(buf, len)) {
			c->hole = true;
			continue;
		}
		j->err = anole_digest((enum anole_digest_alg)j->b->opts->chunk_digest, buf, len,
				      c->digest);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
}

/* ---- assign ---- */

static bool chunk_eq(const void *entry, const void *key)
{
	return !memcmp(((const struct bchunk *)entry)->digest, key, 32);
}

static int run_hash_jobs(struct builder *b, struct chunk_job **jobs_out, size_t *njobs)
{
	struct chunk_job *jobs = xcalloc(b->ninodes, sizeof(*jobs));
	size_t n = 0;

	for (size_t i = 0; i < b->ninodes; i++)
		if (b->order[i]->chunkbits && !b->order[i]->prechunked)
			jobs[n++] = (struct chunk_job){ b, b->order[i], 0 };
	anole_parallel_for(jobs, n, sizeof(*jobs), b->opts->threads, hash_chunks, NULL);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].err) {
			int ret = anole_error(-jobs[i].err == ENODATA ? EIO : -jobs[i].err,
					      "cannot read %s%s", jobs[i].n->path,
					      jobs[i].err == -ENODATA ? " (file shrank while building)" : "");
			free(jobs);
			return ret;
		}
	}
	*jobs_out = jobs;
	*njobs = n;
	return 0;
}

int builder_assign_chunks(struct builder *b, struct bnode **order)
{
	struct chunk_job *jobs = NULL;
	size_t njobs = 0;
	uint64_t next = b->use_blob ? 0 : b->total_blocks;
	int ret;

	if (!b->has_chunked)
		return 0;
	ret = run_hash_jobs(b, &jobs, &njobs);
	if (ret)
		return ret;
	free(jobs);

	anole_hashmap_init(&b->chunk_map, chunk_eq);
	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = order[i];

		if (n->prechunked)
			continue;
		for (uint64_t k = 0; k < n->nchunks; k++) {
			struct bchunk *c = &n->chunks[k], *owner;
			uint64_t h;

			if (c->hole)
				continue;
			h = anole_hash_bytes(c->digest, 32, 0);
			owner = anole_hashmap_get(&b->chunk_map, h, c->digest);
			if (owner) {
				c->blkaddr = owner->blkaddr;
				b->st->chunks_deduped++;
				continue;
			}
			if (next + DIV_ROUND_UP(c->len, b->blksz) > UINT32_MAX) {
				anole_hashmap_free(&b->chunk_map);
				return anole_error_code(EFBIG, "%s: more than 2^32 blocks of chunk data",
							b->use_blob ? b->opts->blob_path : b->opts->output);
			}
			c->blkaddr = (uint32_t)next;
			c->owner = true;
			xgrow(&b->owners, &b->owners_alloc, b->nowners + 1, sizeof(*b->owners));
			b->owners[b->nowners++] = (struct bchunk_ref){ n, k };
			next += DIV_ROUND_UP(c->len, b->blksz);
			b->data_bytes += c->len;
			b->st->chunks++;
			anole_hashmap_put(&b->chunk_map, h, c);
		}
	}
	anole_hashmap_free(&b->chunk_map);
	if (b->use_blob)
		b->blob_blocks = next;
	else
		b->total_blocks = next;
	return 0;
}

/* ---- write ---- */

static void write_chunks(void *item, void *shared)
{
	struct chunk_job *j = item;
	struct builder *b = j->b;
	struct bnode *n = j->n;
	int out = b->use_blob ? b->blob_fd : b->img_fd;
	int fd = -1;

	for (uint64_t i = 0; i < n->nchunks && !j->err; i++) {
		const struct bchunk *c = &n->chunks[i];

		if (!c->owner)
			continue;
		if (fd < 0) {
			fd = builder_open(n);
			if (fd < 0) {
				j->err = -errno;
				break;
			}
		}
		j->err = anole_copy_range(fd, i << n->chunkbits, out,
					  (uint64_t)c->blkaddr << b->blkszbits, c->len);
		anole_progress_add(b->progress, c->len);
	}
	if (fd >= 0)
		close(fd);
}

int builder_write_chunks(struct builder *b)
{
	struct chunk_job *jobs;
	size_t n = 0;
	int ret = 0;

	if (!b->has_chunked)
		return 0;
	jobs = xcalloc(b->ninodes, sizeof(*jobs));
	for (size_t i = 0; i < b->ninodes; i++)
		if (b->order[i]->chunkbits && !b->order[i]->prechunked)
			jobs[n++] = (struct chunk_job){ b, b->order[i], 0 };
	anole_parallel_for(jobs, n, sizeof(*jobs), b->opts->threads, write_chunks, NULL);
	for (size_t i = 0; i < n && !ret; i++)
		if (jobs[i].err)
			ret = anole_error(jobs[i].err == -ENODATA ? EIO : -jobs[i].err,
					  "cannot copy %s%s", jobs[i].n->path,
					  jobs[i].err == -ENODATA ? " (file shrank while building)" : "");
	free(jobs);
	return ret;
}
