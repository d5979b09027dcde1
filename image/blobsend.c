// SPDX-License-Identifier: Apache-2.0
/*
 * Sending a conversion's transport blobs to the destination registry while
 * the build is still writing them, so that the upload overlaps the build
 * instead of following it (the push after the build then finds the blobs
 * there and sends only the metadata layer, the config and the manifest).
 *
 * The build tells (struct anole_blob_follow) when a blob starts, how far
 * it is written and when it is complete; a thread of ours sends what is
 * written in parts of PART bytes (a chunked upload: the digest is known
 * only at the end). Blobs are committed (the upload's final PUT, with the
 * digest) only once the whole build has succeeded, so a failed conversion
 * leaves nothing in the registry. This is an optimization only: a part
 * that fails gives up that blob's upload, quietly, and the push uploads it
 * whole as it would have anyway.
 */
#include "blobsend.h"
#include "anole/blobstore.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PART (8u << 20)         /* fewer requests, yet sent well before the end */

struct sent_blob {
	int fd;                     /* the sender's own descriptor; -1 once done */
	uint64_t written;           /* by the build (under lock) */
	bool complete, dropped;     /* the build's verdict (under lock) */
	char digest[80];
	struct anole_blob_upload *u;   /* the thread's */
	uint64_t sent;                 /* the thread's */
	bool failed;                /* upload given up (under lock) */
	bool finished;              /* nothing more to send (under lock) */
};

struct blob_sender {
	struct anole_blobstore *bs; /* used by the thread only, until finish */
	struct anole_blob_follow follow;
	pthread_t tid;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sent_blob **v;
	size_t n, alloc;
	bool quit;                  /* the build is over: send the rest, then end */
	bool cancel;                /* the build failed: end now */
};

static struct sent_blob *current(struct blob_sender *s)
{
	return s->n ? s->v[s->n - 1] : NULL;
}

static void on_start(void *opaque, int fd)
{
	struct blob_sender *s = opaque;
	struct sent_blob *b = xcalloc(1, sizeof(*b));

	b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	b->failed = b->fd < 0;
	pthread_mutex_lock(&s->lock);
	xgrow(&s->v, &s->alloc, s->n + 1, sizeof(*s->v));
	s->v[s->n++] = b;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void on_grown(void *opaque, uint64_t len)
{
	struct blob_sender *s = opaque;
	struct sent_blob *b;

	pthread_mutex_lock(&s->lock);
	b = current(s);
	if (b) {
		/* wake the thread only when a part is ready */
		if (len / PART != b->written / PART)
			pthread_cond_broadcast(&s->cond);
		b->written = len;
	}
	pthread_mutex_unlock(&s->lock);
}

static void on_end(void *opaque, const char *digest)
{
	struct blob_sender *s = opaque;
	struct sent_blob *b;

	pthread_mutex_lock(&s->lock);
	b = current(s);
	if (b) {
		b->complete = digest != NULL;
		b->dropped = !digest;
		if (digest)
			snprintf(b->digest, sizeof(b->digest), "%s", digest);
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
}

static void *sender_main(void *arg)
{
	struct blob_sender *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sent_blob *b = NULL;
		uint64_t off, len;
		int ret;

		for (size_t i = 0; i < s->n && !b; i++)
			if (!s->v[i]->finished)
				b = s->v[i];
		if (s->cancel || (!b && s->quit))
			break;
		if (!b) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		if (s->quit && !b->complete)
			b->failed = true;       /* a blob the build never ended */
		if (b->failed || b->dropped || (b->complete && b->sent == b->written)) {
			b->finished = true;     /* committed (or not) by blob_sender_finish */
			continue;
		}
		off = b->sent;
		len = b->written - off;
		if (!b->complete) {
			len -= len % PART;      /* whole parts until the end */
			if (!len) {
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
		}
		pthread_mutex_unlock(&s->lock);
		ret = b->u ? 0 : anole_blobstore_upload_begin(s->bs, &b->u);
		if (!ret)
			ret = anole_blob_upload_part(b->u, b->fd, off, len);
		pthread_mutex_lock(&s->lock);
		if (ret)
			b->failed = true;
		else
			b->sent = off + len;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int blob_sender_start(struct blob_sender **out, struct anole_blobstore *bs)
{
	struct blob_sender *s = xcalloc(1, sizeof(*s));
	int err;

	s->bs = bs;
	s->follow = (struct anole_blob_follow){ on_start, on_grown, on_end, s };
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	err = pthread_create(&s->tid, NULL, sender_main, s);
	if (err) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return anole_error(err, "cannot start a thread to send blobs");
	}
	s->started = true;
	*out = s;
	return 0;
}

const struct anole_blob_follow *blob_sender_follow(struct blob_sender *s)
{
	return &s->follow;
}

unsigned blob_sender_finish(struct blob_sender *s, bool commit)
{
	unsigned committed = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	s->cancel = !commit;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->tid, NULL);
	for (size_t i = 0; i < s->n; i++) {
		struct sent_blob *b = s->v[i];

		/* complete, every byte sent: the final PUT, digest checked there */
		if (commit && b->u && b->complete && !b->failed && b->sent == b->written &&
		    !anole_blob_upload_commit(b->u, b->digest))
			committed++;
		anole_blob_upload_free(b->u);   /* cancels one not committed */
		if (b->fd >= 0)
			close(b->fd);
		free(b);
	}
	free(s->v);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return committed;
}
