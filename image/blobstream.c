// SPDX-License-Identifier: Apache-2.0
/*
 * A blob read front to back as a stream, for conversions that build from a
 * registry's layers without storing them first. A thread fetches the blob
 * in large ranges, a few ahead of the reader, so the download overlaps the
 * reader's work (decompressing and chunking the tar) instead of preceding
 * it. Bytes are not verified here, as no range can be: the reader hashes
 * the whole stream and checks it against the digest at its end.
 */
#include "anole/blobstore.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PIECE (4u << 20)
#define AHEAD 3                 /* pieces fetched ahead of the reader */

struct piece {
	uint8_t *buf;
	size_t len;
};

struct anole_blob_stream {
	struct anole_blobstore *bs;
	char *digest;
	uint64_t size;
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct piece ring[AHEAD];
	size_t head, count;         /* filled pieces, oldest first */
	size_t pos;                 /* the reader's offset in ring[head] */
	uint64_t fetched;           /* bytes fetched (the fetcher's offset) */
	int err;                    /* the fetcher's failure */
	bool stop;                  /* the reader closed early */
	bool ended;                 /* the fetcher is done (all fetched, or err) */
};

static void *fetcher(void *arg)
{
	struct anole_blob_stream *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stop && s->fetched < s->size) {
		struct piece *p;
		uint64_t off = s->fetched;
		size_t len = s->size - off < PIECE ? (size_t)(s->size - off) : PIECE;
		int ret;

		while (s->count == AHEAD && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		p = &s->ring[(s->head + s->count) % AHEAD];
		pthread_mutex_unlock(&s->lock);
		/* the slot is not the reader's until count says so */
		ret = anole_blobstore_read(s->bs, s->digest, off, p->buf, len);
		pthread_mutex_lock(&s->lock);
		if (ret) {
			s->err = ret;
			break;
		}
		p->len = len;
		s->fetched += len;
		s->count++;
		pthread_cond_broadcast(&s->cond);
	}
	s->ended = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int anole_blob_stream_open(struct anole_blob_stream **out, struct anole_blobstore *bs,
			   const char *digest, uint64_t size)
{
	struct anole_blob_stream *s = xcalloc(1, sizeof(*s));
	size_t piece = size < PIECE ? (size_t)size : PIECE;

	s->bs = bs;
	s->digest = xstrdup(digest);
	s->size = size;
	for (unsigned i = 0; i < AHEAD; i++)
		s->ring[i].buf = xmalloc(piece ? piece : 1);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->tid, NULL, fetcher, s)) {
		int err = errno;

		s->tid = 0;
		anole_blob_stream_close(s);
		return anole_error(err, "cannot start a thread to fetch %s", digest);
	}
	*out = s;
	return 0;
}

ssize_t anole_blob_stream_read(struct anole_blob_stream *s, void *buf, size_t len)
{
	struct piece *p;
	size_t n;

	pthread_mutex_lock(&s->lock);
	while (!s->count && !s->ended)
		pthread_cond_wait(&s->cond, &s->lock);
	if (!s->count) {
		int err = s->err;

		pthread_mutex_unlock(&s->lock);
		return err;         /* 0 at the end of the blob */
	}
	p = &s->ring[s->head];
	pthread_mutex_unlock(&s->lock);
	n = p->len - s->pos < len ? p->len - s->pos : len;
	memcpy(buf, p->buf + s->pos, n);
	s->pos += n;
	if (s->pos == p->len) {
		pthread_mutex_lock(&s->lock);
		s->head = (s->head + 1) % AHEAD;
		s->count--;
		s->pos = 0;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	return (ssize_t)n;
}

void anole_blob_stream_close(struct anole_blob_stream *s)
{
	if (!s)
		return;
	if (s->tid) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->tid, NULL);   /* at most one range read in flight */
	}
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	for (unsigned i = 0; i < AHEAD; i++)
		free(s->ring[i].buf);
	free(s->digest);
	free(s);
}
