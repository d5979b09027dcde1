// SPDX-License-Identifier: Apache-2.0
/*
 * A tar layer's bytes, read, checked and decompressed on a thread of their
 * own, for the build from tar layers (layers.c).
 *
 * The build's own thread parses the tar, cuts and digests chunks and feeds
 * the blob writer; left to libarchive's gzip filter, inflating the layer
 * and hashing its compressed bytes ran on that thread too, and made up
 * about half of its work. Here a thread pulls the layer (a file, or a
 * registry stream), hashes it for the digest check, inflates it with zlib
 * and hands the tar to libarchive through a few buffers, so the two halves
 * run on two cores, and under load as two threads that each get their
 * share of the CPU.
 *
 * gzip (the usual layer, possibly of several members) is inflated here;
 * anything else (a plain tar, or zstd, xz, bzip2 that libarchive's filters
 * know) passes through as it is read, and libarchive decompresses it.
 * Trailing bytes after the last gzip member are ignored, as libarchive's
 * gzip filter ignores them, but still hashed: the digest covers every byte.
 */
#include "builder.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/xalloc.h"
#include "anole_features.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if ANOLE_HAVE_DEFLATE
#include <zlib.h>
#endif

#define IN_SIZE (1u << 20)      /* compressed bytes pulled at a time */
#define OUT_SIZE (1u << 20)     /* tar bytes handed over at a time */
#define NOUT 4                  /* one held by the reader, the rest filled ahead */

struct layer_pipe {
	const char *name;
	int fd;
	const struct anole_layer_stream *stream;
	struct anole_digest_ctx *ctx;   /* NULL: not checked */
	uint64_t bytes, limit;      /* pulled so far; stop pulling past limit */
	uint8_t *in;                /* the thread's */
	uint8_t *scratch;           /* output nobody reads, once draining */
	pthread_t tid;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *out[NOUT];
	size_t out_len[NOUT];
	size_t head, count;         /* filled buffers, oldest first */
	bool held;                  /* out[head] is the reader's */
	bool drain;                 /* the reader wants no more output, only the check */
	bool stop;                  /* the reader gave up: end as soon as possible */
	bool ended;                 /* the thread is done */
	int src_err;                /* the source's own failure (reported already) */
	int decode_err;             /* the data's (not reported: decode_msg says it) */
	char decode_msg[256];
};

/* Up to len bytes of the layer, hashed; 0 at its end (or past the limit). */
static ssize_t pull(struct layer_pipe *p, void *buf, size_t len)
{
	ssize_t n;

	if (p->bytes > p->limit)    /* longer than its descriptor: no need for more */
		return 0;
	if (p->stream) {
		n = p->stream->read(p->stream->opaque, buf, len);
	} else {
		do
			n = read(p->fd, buf, len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = anole_error(errno, "%s: cannot read", p->name);
	}
	if (n < 0) {
		p->src_err = (int)n;
		return n;
	}
	if (p->ctx)
		anole_digest_update(p->ctx, buf, (size_t)n);
	p->bytes += (uint64_t)n;
	return n;
}

/* A buffer to fill, once the reader has room; NULL when it wants no more
 * output (then, draining, the scratch buffer takes what is still decoded). */
static uint8_t *out_slot(struct layer_pipe *p)
{
	uint8_t *buf = NULL;

	pthread_mutex_lock(&p->lock);
	while (p->count == NOUT && !p->drain && !p->stop)
		pthread_cond_wait(&p->cond, &p->lock);
	if (!p->drain && !p->stop)
		buf = p->out[(p->head + p->count) % NOUT];
	pthread_mutex_unlock(&p->lock);
	return buf;
}

static void publish(struct layer_pipe *p, uint8_t *buf, size_t len)
{
	if (!len || buf == p->scratch)
		return;
	pthread_mutex_lock(&p->lock);
	if (!p->drain && !p->stop) {
		p->out_len[(p->head + p->count) % NOUT] = len;
		p->count++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

static bool stopped(struct layer_pipe *p)
{
	bool stop;

	pthread_mutex_lock(&p->lock);
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

static uint8_t *slot_or_scratch(struct layer_pipe *p)
{
	uint8_t *buf = out_slot(p);

	if (buf)
		return buf;
	if (!p->scratch)
		p->scratch = xmalloc(OUT_SIZE);
	return p->scratch;
}

static void __attribute__((format(printf, 2, 3))) decode_fail(struct layer_pipe *p,
								 const char *fmt, ...)
{
	va_list ap;

	p->decode_err = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(p->decode_msg, sizeof(p->decode_msg), fmt, ap);
	va_end(ap);
}

/* Pass the bytes through: avail of them are already in p->in. */
static void copy_through(struct layer_pipe *p, size_t avail)
{
	uint8_t *o = slot_or_scratch(p);
	ssize_t n;

	memcpy(o, p->in, avail);
	publish(p, o, avail);
	while (!stopped(p)) {
		o = slot_or_scratch(p);
		if (o == p->scratch && !p->ctx)
			return;     /* nobody wants the rest */
		n = pull(p, o, OUT_SIZE);
		if (n <= 0)
			return;
		publish(p, o, (size_t)n);
	}
}

#if ANOLE_HAVE_DEFLATE
/* Make at least want bytes available at zs->next_in (fewer at the end). */
static int refill(struct layer_pipe *p, z_stream *zs, size_t want, bool *eof)
{
	memmove(p->in, zs->next_in, zs->avail_in);
	zs->next_in = p->in;
	while (zs->avail_in < want && !*eof) {
		ssize_t n = pull(p, p->in + zs->avail_in, IN_SIZE - zs->avail_in);

		if (n < 0)
			return (int)n;
		if (!n)
			*eof = true;
		zs->avail_in += (uInt)n;
	}
	return 0;
}

static void inflate_through(struct layer_pipe *p, size_t avail)
{
	z_stream zs = { 0 };
	uint8_t *o = NULL;
	size_t olen = 0;
	bool eof = false;
	uint64_t member = 1;

	/* 16 + window bits: a gzip wrapper, its CRC-32 and length checked */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		decode_fail(p, "cannot start zlib's inflate");
		return;
	}
	zs.next_in = p->in;
	zs.avail_in = (uInt)avail;
	while (!stopped(p)) {
		int zr;

		if (!o) {
			o = slot_or_scratch(p);
			olen = 0;
		}
		if (!zs.avail_in && !eof && refill(p, &zs, 1, &eof))
			break;
		zs.next_out = o + olen;
		zs.avail_out = (uInt)(OUT_SIZE - olen);
		zr = inflate(&zs, Z_NO_FLUSH);
		olen = OUT_SIZE - zs.avail_out;
		if (zr == Z_STREAM_END) {
			/* another member, or the end (what follows is not ours) */
			if (zs.avail_in < 2 && refill(p, &zs, 2, &eof))
				break;
			if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
				inflateReset(&zs);
				member++;
				continue;
			}
			publish(p, o, olen);
			o = NULL;
			/* the rest is only hashed */
			while (p->ctx && !stopped(p) && pull(p, p->in, IN_SIZE) > 0)
				;
			break;
		}
		if (zr == Z_BUF_ERROR && !zs.avail_in && eof) {
			decode_fail(p, "the gzip data ends early, in member %llu (truncated layer?)",
				    (unsigned long long)member);
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			decode_fail(p, "the gzip data is corrupt (zlib: %s)",
				    zs.msg ? zs.msg : "unknown error");
			break;
		}
		if (olen == OUT_SIZE) {
			publish(p, o, olen);
			o = NULL;
		}
	}
	if (o && !p->decode_err && !p->src_err)
		publish(p, o, olen);
	inflateEnd(&zs);
}
#endif

static void *pipe_main(void *arg)
{
	struct layer_pipe *p = arg;
	size_t avail = 0;
	ssize_t n = 1;

	/* enough to tell the format by: gzip's magic is 2 bytes */
	while (avail < 2 && (n = pull(p, p->in + avail, IN_SIZE - avail)) > 0)
		avail += (size_t)n;
	if (n >= 0) {
#if ANOLE_HAVE_DEFLATE
		if (avail >= 2 && p->in[0] == 0x1f && p->in[1] == 0x8b)
			inflate_through(p, avail);
		else
#endif
			copy_through(p, avail);
	}
	/* on a failure, the rest is still hashed: a digest that does not
	 * match says more than a complaint about the bytes that made it */
	while (p->ctx && p->decode_err && !p->src_err && !stopped(p) &&
	       pull(p, p->in, IN_SIZE) > 0)
		;
	pthread_mutex_lock(&p->lock);
	p->ended = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int layer_pipe_start(struct layer_pipe **out, const char *name, int fd,
		     const struct anole_layer_stream *stream, bool hash, uint64_t limit)
{
	struct layer_pipe *p = xcalloc(1, sizeof(*p));
	int err;

	p->name = name;
	p->fd = fd;
	p->stream = stream;
	p->limit = limit;
	if (hash)
		p->ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
	p->in = xmalloc(IN_SIZE);
	for (unsigned i = 0; i < NOUT; i++)
		p->out[i] = xmalloc(OUT_SIZE);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	err = pthread_create(&p->tid, NULL, pipe_main, p);
	if (err) {
		layer_pipe_free(p);
		return anole_error(err, "%s: cannot start a thread to read the layer", name);
	}
	p->started = true;
	*out = p;
	return 0;
}

ssize_t layer_pipe_next(struct layer_pipe *p, const void **buf)
{
	ssize_t n;

	pthread_mutex_lock(&p->lock);
	if (p->held) {
		p->head = (p->head + 1) % NOUT;
		p->count--;
		p->held = false;
		pthread_cond_broadcast(&p->cond);
	}
	while (!p->count && !p->ended)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->count) {
		*buf = p->out[p->head];
		n = (ssize_t)p->out_len[p->head];
		p->held = true;
	} else {
		*buf = NULL;
		n = p->src_err ? p->src_err : p->decode_err;   /* 0 at the end */
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

const char *layer_pipe_decode_error(struct layer_pipe *p)
{
	const char *msg;

	pthread_mutex_lock(&p->lock);
	msg = p->ended && p->decode_err ? p->decode_msg : NULL;
	pthread_mutex_unlock(&p->lock);
	return msg;
}

int layer_pipe_source_error(struct layer_pipe *p)
{
	int err;

	pthread_mutex_lock(&p->lock);
	err = p->ended ? p->src_err : 0;
	pthread_mutex_unlock(&p->lock);
	return err;
}

static void wait_end(struct layer_pipe *p, bool stop)
{
	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->drain = true;
	p->stop |= stop;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->tid, NULL);
	p->started = false;
}

int layer_pipe_finish(struct layer_pipe *p, const char *digest, uint64_t size)
{
	uint8_t dg[32];
	char hex[65];

	wait_end(p, false);         /* it reads to the end for the digest */
	if (p->src_err)
		return p->src_err;
	if (!p->ctx)
		return 0;
	if (p->bytes != size)
		return anole_error_code(EBADMSG, "%s is %s%llu bytes, its descriptor says %llu",
					p->name, p->bytes > size ? "over " : "",
					(unsigned long long)(p->bytes > size ? size : p->bytes),
					(unsigned long long)size);
	anole_digest_final(p->ctx, dg);
	anole_hex(dg, 32, hex);
	if (strcmp(hex, digest + 7))
		return anole_error_code(EBADMSG, "%s does not match its digest (it is sha256:%s)",
					p->name, hex);
	return 0;
}

void layer_pipe_free(struct layer_pipe *p)
{
	if (!p)
		return;
	wait_end(p, true);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	anole_digest_free(p->ctx);
	for (unsigned i = 0; i < NOUT; i++)
		free(p->out[i]);
	free(p->in);
	free(p->scratch);
	free(p);
}
