// SPDX-License-Identifier: Apache-2.0
/*
 * The transport-blob writer, shared by `build --blob-dir` (chunks read from
 * the source tree) and builds from tar layers (chunks cut from the stream).
 *
 * A transport blob is the unique chunks, back to back, each compressed on
 * its own so that any chunk is one range request. A chunk larger than the
 * fetch unit is stored as several units, each compressed and digested on
 * its own: a reader that needs one page of a 1 MiB chunk then fetches and
 * verifies one unit, not the whole chunk.
 *
 * Chunks are compressed by a worker pool while the caller goes on producing
 * the next ones; results are written strictly in the order chunks were
 * added, so the blob's bytes do not depend on the thread count or on which
 * worker finished first. At most `window` chunks are in flight: the caller
 * that adds one more first writes out (or waits for) the oldest, which
 * bounds memory to window x chunk size.
 */
#include "builder.h"
#include "anole/cipher.h"
#include "anole/compress.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/progress.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_BYTES (64u << 20)

/* One unit of a chunk as it goes into the blob. */
struct packed_unit {
	uint32_t len, out_len;      /* uncompressed, stored */
	uint8_t compression;
	uint8_t digest[32];         /* of the uncompressed unit (split chunks only) */
};

struct pack_job {
	struct blob_writer *w;
	uint64_t uoff;              /* in the uncompressed device */
	uint32_t len;
	uint8_t digest[32];         /* of the whole chunk */
	uint8_t *data;              /* given by the caller, or read by the worker */
	blobw_read_fn read;
	void *arg;
	uint8_t *out;               /* the stored units, back to back */
	size_t out_len;
	struct packed_unit *units;
	uint32_t nunits;
	int err;
	bool done;                  /* under w->lock */
};

struct blob_writer {
	struct blobw_params p;
	struct anole_workqueue *wq;
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct pack_job *ring;      /* jobs head .. head + count - 1, modulo window */
	size_t head, count, window;
	struct anole_digest_ctx *ctx;
	uint64_t coff;              /* bytes written */
	struct anole_ext_chunk *chunks;
	size_t nchunks, chunks_alloc;
	struct anole_ext_split *splits;
	size_t nsplits, splits_alloc;
	int err;                    /* first failure: later adds return it */
	/* spare buffers of max_chunk bytes, under lock: a chunk's buffers are
	 * reused rather than each one mapped and unmapped (1 MiB is above
	 * malloc's mmap threshold, and page faults cost more than copying) */
	uint8_t **spare;
	size_t nspare, spare_cap;
};

uint8_t *blobw_buffer(struct blob_writer *w)
{
	uint8_t *buf = NULL;

	pthread_mutex_lock(&w->lock);
	if (w->nspare)
		buf = w->spare[--w->nspare];
	pthread_mutex_unlock(&w->lock);
	return buf ? buf : xmalloc(w->p.max_chunk);
}

static void put_buffer(struct blob_writer *w, uint8_t *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->nspare < w->spare_cap) {
		w->spare[w->nspare++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	free(buf);
}

static uint32_t units_of(const struct blob_writer *w, uint32_t len)
{
	uint32_t unit = w->p.unit_size;

	return unit && len > unit ? (uint32_t)DIV_ROUND_UP(len, unit) : 1;
}

static void pack(void *item, void *shared)
{
	struct pack_job *j = item;
	struct blob_writer *w = j->w;
	enum anole_compress_alg alg = w->p.compression;
	uint32_t unit = w->p.unit_size, len = j->len;
	uint8_t *cbuf = NULL;
	size_t cap = 0;

	(void)shared;
	if (!j->data) {
		j->data = blobw_buffer(w);
		j->err = j->read(j->arg, j->data, len);
	}
	j->nunits = j->err ? 0 : units_of(w, len);
	if (j->nunits) {
		j->units = xcalloc(j->nunits, sizeof(*j->units));
		j->out = blobw_buffer(w);   /* units that do not shrink are stored as they are */
	}
	if (j->nunits && alg != ANOLE_COMPRESS_NONE) {
		/* the full bound, not the room left: zstd's output for a smaller
		 * capacity can differ, and the blob's bytes must not change */
		cap = anole_compress_bound(alg, j->nunits > 1 ? unit : len);
		cbuf = xmalloc(cap);
	}
	for (uint32_t k = 0; k < j->nunits && !j->err; k++) {
		struct packed_unit *u = &j->units[k];
		const uint8_t *src = j->data + (size_t)k * unit;
		uint8_t *dst = j->out + j->out_len;
		ssize_t clen = -1;

		u->len = k + 1 < j->nunits ? unit : len - k * unit;
		if (cbuf)
			clen = anole_compress(alg, w->p.compression_level, src, u->len, cbuf, cap);
		if (clen > 0 && (size_t)clen < u->len) {
			memcpy(dst, cbuf, (size_t)clen);
			u->out_len = (uint32_t)clen;
			u->compression = (uint8_t)alg;
		} else {
			memcpy(dst, src, u->len);
			u->out_len = u->len;
			u->compression = ANOLE_COMPRESS_NONE;
		}
		j->out_len += u->out_len;
		if (j->nunits > 1 && anole_digest(w->p.chunk_digest, src, u->len, u->digest))
			j->err = -EIO;
	}
	free(cbuf);
	put_buffer(w, j->data);
	j->data = NULL;
	pthread_mutex_lock(&w->lock);
	j->done = true;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->lock);
}

static void release(struct blob_writer *w, struct pack_job *j)
{
	put_buffer(w, j->data);
	put_buffer(w, j->out);
	free(j->units);
	memset(j, 0, sizeof(*j));
}

/* Append the oldest job's units to the blob and the chunk table. */
static int emit(struct blob_writer *w, struct pack_job *j)
{
	uint64_t uoff = j->uoff;
	int ret;

	if (j->err) {
		const char *name = w->p.name ? w->p.name(j->arg) : "a chunk";

		return anole_error(j->err == -ENODATA ? EIO : -j->err, "cannot read %s%s", name,
				   j->err == -ENODATA ? " (file shrank while building)" : "");
	}
	if (w->nchunks + j->nunits > ANOLE_EXT_MAX_CHUNKS)
		return anole_error_code(EFBIG, "more than %u fetch units, more than a chunk table "
					"holds; use a larger --fetch-unit or --chunk-size",
					ANOLE_EXT_MAX_CHUNKS);
	if (w->p.key) {
		/* here, not in the workers: the IV names the unit's place in the
		 * blob, known only now that the units before it are written */
		uint64_t coff = w->coff;
		size_t pos = 0;

		for (uint32_t k = 0; k < j->nunits; k++) {
			const struct packed_unit *u = &j->units[k];
			struct anole_ext_chunk e = {
				.compressed_offset = coff,
				.uncompressed_size = u->len,
				.compressed_size = u->out_len,
				.compression = u->compression,
			};
			uint8_t iv[ANOLE_CHUNK_IV_INPUT_SIZE];

			memcpy(e.digest, j->nunits > 1 ? u->digest : j->digest, 32);
			anole_chunk_iv_input(&e, iv);
			ret = anole_chunk_crypt(w->p.key, iv, sizeof(iv), j->out + pos, u->out_len);
			if (ret)
				return ret;
			pos += u->out_len;
			coff += u->out_len;
		}
	}
	ret = write_full(w->p.fd, j->out, j->out_len);
	if (ret)
		return anole_error(-ret, "cannot write a blob in %s", w->p.where);
	anole_digest_update(w->ctx, j->out, j->out_len);
	if (w->p.follow && w->p.follow->grown)
		w->p.follow->grown(w->p.follow->opaque, w->coff + j->out_len);
	if (j->nunits > 1) {
		struct anole_ext_split *sp;

		xgrow(&w->splits, &w->splits_alloc, w->nsplits + 1, sizeof(*w->splits));
		sp = &w->splits[w->nsplits++];
		sp->first = (uint32_t)w->nchunks;
		sp->count = j->nunits;
		memcpy(sp->digest, j->digest, 32);
	}
	xgrow(&w->chunks, &w->chunks_alloc, w->nchunks + j->nunits, sizeof(*w->chunks));
	for (uint32_t k = 0; k < j->nunits; k++) {
		const struct packed_unit *u = &j->units[k];
		struct anole_ext_chunk *e = &w->chunks[w->nchunks++];

		memset(e, 0, sizeof(*e));
		e->uncompressed_offset = uoff;
		e->compressed_offset = w->coff;
		e->uncompressed_size = u->len;
		e->compressed_size = u->out_len;
		e->compression = u->compression;
		memcpy(e->digest, j->nunits > 1 ? u->digest : j->digest, 32);
		uoff += u->len;
		w->coff += u->out_len;
	}
	anole_progress_add(w->p.progress, j->len);
	return 0;
}

/* Write out finished jobs from the oldest; with wait, until `keep` remain. */
static int drain(struct blob_writer *w, size_t keep, bool wait)
{
	while (w->count > keep) {
		struct pack_job *j = &w->ring[w->head];
		bool done;

		pthread_mutex_lock(&w->lock);
		while (wait && !j->done)
			pthread_cond_wait(&w->done, &w->lock);
		done = j->done;
		pthread_mutex_unlock(&w->lock);
		if (!done)
			break;
		if (!w->err)
			w->err = emit(w, j);
		release(w, j);
		w->head = (w->head + 1) % w->window;
		w->count--;
	}
	return w->err;
}

struct blob_writer *blobw_new(const struct blobw_params *p)
{
	struct blob_writer *w = xcalloc(1, sizeof(*w));
	unsigned threads = p->threads ? p->threads : anole_cpu_count();
	size_t by_bytes = WINDOW_BYTES / (p->max_chunk ? p->max_chunk : 1);

	w->p = *p;
	/* enough in flight to keep every worker busy while the oldest is
	 * written, within WINDOW_BYTES of chunks */
	w->window = 4 * (size_t)threads;
	if (w->window > by_bytes)
		w->window = by_bytes;
	if (w->window < 2)
		w->window = 2;
	w->ring = xcalloc(w->window, sizeof(*w->ring));
	w->spare_cap = 2 * w->window + 2;     /* data and output of each job, one being filled */
	w->spare = xcalloc(w->spare_cap, sizeof(*w->spare));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->done, NULL);
	w->ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
	if (threads > 1)
		w->wq = anole_workqueue_new(threads);
	return w;
}

int blobw_add(struct blob_writer *w, uint64_t uoff, uint32_t len, const uint8_t digest[32],
	      uint8_t *data, blobw_read_fn read, void *arg)
{
	struct pack_job *j;

	if (len > w->p.max_chunk && !w->err)
		w->err = anole_error_code(EINVAL, "a chunk of %u bytes, more than the %u announced",
					  len, w->p.max_chunk);
	if (w->err || drain(w, w->window - 1, true)) {
		put_buffer(w, data);
		return w->err;
	}
	j = &w->ring[(w->head + w->count) % w->window];
	*j = (struct pack_job){ .w = w, .uoff = uoff, .len = len, .data = data, .read = read,
				.arg = arg };
	memcpy(j->digest, digest, 32);
	w->count++;
	if (w->wq)
		anole_workqueue_add(w->wq, pack, j, NULL);
	else
		pack(j, NULL);
	return drain(w, 0, false);    /* write what is ready, without waiting */
}

static void destroy(struct blob_writer *w)
{
	anole_workqueue_free(w->wq);    /* every queued job runs to its end first */
	while (w->count) {
		release(w, &w->ring[w->head]);
		w->head = (w->head + 1) % w->window;
		w->count--;
	}
	anole_digest_free(w->ctx);
	pthread_cond_destroy(&w->done);
	pthread_mutex_destroy(&w->lock);
	free(w->ring);
	while (w->nspare)
		free(w->spare[--w->nspare]);
	free(w->spare);
	free(w->chunks);
	free(w->splits);
	free(w);
}

int blobw_finish(struct blob_writer *w, struct anole_blob_info *info)
{
	int ret = drain(w, 0, true);

	if (!ret)
		ret = anole_digest_final(w->ctx, info->digest);
	if (ret) {
		destroy(w);
		return ret;
	}
	anole_hex(info->digest, 32, info->hex);
	snprintf(info->name, sizeof(info->name), "sha256:%s", info->hex);
	info->compressed_size = w->coff;
	info->nchunks = (uint32_t)w->nchunks;
	info->chunks = w->nchunks ? w->chunks : xcalloc(1, sizeof(*info->chunks));
	info->nsplits = (uint32_t)w->nsplits;
	info->splits = w->nsplits ? w->splits : NULL;
	if (!w->nsplits)
		free(w->splits);
	w->chunks = NULL;
	w->splits = NULL;
	info->unit_size = w->p.unit_size < w->p.max_chunk ? w->p.unit_size : 0;
	info->chunk_digest = w->p.chunk_digest;
	info->compression = w->p.compression;
	if (w->p.key) {
		info->cipher = (uint8_t)w->p.key->alg;
		memcpy(info->key_check, w->p.key->check, sizeof(info->key_check));
	}
	destroy(w);
	return 0;
}

void blobw_abort(struct blob_writer *w)
{
	if (w)
		destroy(w);
}
