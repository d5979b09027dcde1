/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the blob store (include/anole/blobstore.h): the table of backend
 * operations, the sources a store reads from, and the request machinery
 * the network backends share.
 *
 *   blobstore.c           the public API: a spec to its backend, digest
 *                         checks, counters; reads tried over the sources
 *                         (mirrors first, each skipped for a while after it
 *                         fails), whole-blob fetches checked against the digest
 *   blobstore_dir.c       a directory: DIR/<hex>, or an OCI image layout
 *   blobstore_http.c      a web server: PREFIX/<hex> with Range
 *   blobstore_registry.c  an OCI distribution registry: blobs, manifests,
 *                         uploads; its mirrors from registries.conf
 *   blobstore_net.c       one request with its retries: the retry judgement
 *                         (blobstore_retryable), 401 answers, error texts
 *   registry_auth.c       credentials, bearer tokens, WWW-Authenticate
 *   registries_conf.c     containers-registries.conf(5)
 */
#ifndef ANOLE_BLOBSTORE_IMPL_H
#define ANOLE_BLOBSTORE_IMPL_H
#include "anole/blobstore.h"
#include "anole/http.h"
#include "anole/strbuf.h"
#include "registry_auth.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct bs_source;

/*
 * One operation on one source. Backends report failures through bs_fail():
 * logged as errors when the source is the last resort, kept in `why` when
 * it is a mirror (the caller logs one line and tries the next source).
 */
struct bs_call {
	struct anole_blobstore *bs;
	struct bs_source *src;          /* NULL for writes */
	unsigned retries;               /* attempts after a transient failure */
	uint64_t deadline_ms;           /* 0, or no attempt runs past it (bs_now_ms) */
	bool quiet;
	bool quiet_missing;             /* "not there" is an answer, not an error */
	char why[512];
};

int bs_fail(struct bs_call *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct blobstore_ops {
	const char *kind;               /* "dir", "http", "registry" */
	/* reads, from c->src */
	int (*read)(struct bs_call *c, const char *digest, uint64_t off, void *buf, size_t len);
	int (*size)(struct bs_call *c, const char *digest, uint64_t *size);
	/* NULL unless a registry */
	int (*get_manifest)(struct bs_call *c, const char *reference, struct strbuf *out,
			    char **media_type);
	/* writes go to the store as named, never to a mirror; put NULL: read-only */
	int (*put)(struct anole_blobstore *bs, const char *digest, int fd, uint64_t size,
		   const char *path);
	int (*put_manifest)(struct anole_blobstore *bs, const char *reference,
			    const char *media_type, const void *data, size_t len);
	int (*mount_from)(struct anole_blobstore *bs, const char *digest, const char *from);
	/* NULL unless a registry: an upload in parts (anole_blob_upload);
	 * *url is the session's, replaced by each answer's Location */
	int (*upload_begin)(struct anole_blobstore *bs, char **url);
	int (*upload_part)(struct anole_blobstore *bs, char **url, int fd, uint64_t off,
			   uint64_t len);
	int (*upload_commit)(struct anole_blobstore *bs, const char *url, const char *digest);
	void (*upload_cancel)(struct anole_blobstore *bs, const char *url);
	int (*has_tags)(struct anole_blobstore *bs);
	void (*close)(struct anole_blobstore *bs);
};

/*
 * A pull-through cache answers a range of a blob it has not fetched yet with
 * the whole blob from its first byte (200). From a mirror that is accepted
 * for ranges in the first MIRROR_MAX_SKIP bytes; further in, the read moves
 * on to the next source (-EAGAIN, no back-off): the cache is busy getting
 * the blob and serves ranges once it has it.
 */
#define MIRROR_MAX_SKIP (8u << 20)

/* What a read is for: mirrors may serve only manifests by digest, or by tag. */
enum bs_use { BS_USE_BLOB, BS_USE_TAG, BS_USE_DIGEST };

/* A place reads go to: a mirror, or the origin (always the last source). */
struct bs_source {
	char *name;                     /* in messages, e.g. "mirror 10.0.0.5:5000/lib/app" */
	bool mirror;
	bool tags, digests;             /* manifests by tag / by digest from here */
	void *endpoint;                 /* the backend's own */
	_Atomic uint64_t skip_until_ms; /* a mirror in back-off (monotonic ms) */
	atomic_uint failures;           /* consecutive failures of a mirror */
};

struct anole_blobstore {
	const struct blobstore_ops *ops;
	void *backend;
	char *spec;
	struct anole_blobstore_opts o;  /* as given; strings not owned */
	unsigned retries, backoff_ms;
	struct anole_http *http;        /* network stores */
	struct bs_source *sources;      /* reads: mirrors in order, then the origin */
	unsigned nsources;
	atomic_uint_fast64_t n_requests, n_bytes, n_bytes_sent, n_retries, n_failures, n_auth;
};

static inline void bs_count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

uint64_t bs_now_ms(void);

/* Add a source (the backend's open calls it, mirrors first, origin last). */
struct bs_source *bs_add_source(struct anole_blobstore *bs, const char *name, bool mirror,
				void *endpoint);

/* Backends: fill bs->ops, bs->backend and the sources from the spec (the
 * part after the scheme for dir: and docker://). */
int blobstore_dir_open(struct anole_blobstore *bs, const char *path);
int blobstore_http_open(struct anole_blobstore *bs, const char *spec);
int blobstore_registry_open(struct anole_blobstore *bs, const char *rest);

/* ---- the network layer (blobstore_net.c) ---- */

/* Where the requests of one source go. */
struct bs_endpoint {
	char *base;                     /* http: the URL prefix, no trailing '/';
	                                   registry: scheme://host[:port] */
	char *host;                     /* host[:port]: credentials, messages */
	char *repo;                     /* registry: the repository there */
	bool plain_http;
	struct registry_auth *auth;
	char *blobs;                    /* URL of the blobs, to which the digest is
	                                   appended: "<base>/v2/<repo>/blobs/" (the
	                                   whole digest), or "<base>/" (its hex) */
};

struct bs_endpoint *bs_endpoint_new(const char *base, const char *host, const char *repo,
				    bool plain_http, const char *auth_file);
void bs_endpoint_free(struct bs_endpoint *ep);

/* Make the http client every network store has (timeouts from bs->o). */
int bs_net_init(struct anole_blobstore *bs);

/*
 * The retry judgement, the one place that says whether a failed attempt
 * may succeed when sent again: by the transport failure, or (failure
 * ANOLE_HTTP_OK) by the HTTP status that ended it.
 */
bool blobstore_retryable(enum anole_http_failure failure, long status);

/* One attempt at q, answering up to two 401 challenges. */
struct bs_attempt {
	const struct bs_endpoint *ep;   /* where it went */
	unsigned n;                     /* attempts made so far, less one */
	enum anole_http_failure failure; /* of the last attempt, for the judgement */
	long status;
};
int bs_send(struct bs_call *c, struct bs_endpoint *ep, struct bs_attempt *a,
	    struct anole_http_request *q, struct anole_http_response *r,
	    enum registry_access acc, bool with_auth);
/* Judge attempt a (ret from bs_send): 1 after sleeping when it should be
 * sent again; 0 when r holds a response for the caller; else a failure
 * (bs_fail). */
int bs_judge(struct bs_call *c, struct bs_attempt *a, const struct anole_http_request *q,
	     struct anole_http_response *r, int ret);
/* bs_send + bs_judge until a response or a failure; authorized only when
 * q->url is on ep's origin (as registry_put does for its session's PUT). */
int bs_request(struct bs_call *c, struct bs_endpoint *ep, struct anole_http_request *q,
	       struct anole_http_response *r, enum registry_access acc);

/* A final non-2xx response as a failure: 404 -ENOENT (reported unless
 * quiet_404), 416 -ERANGE, 401/403 -EACCES, others -EIO. */
int bs_status_error(struct bs_call *c, const struct anole_http_request *q,
		    const struct anole_http_response *r, const char *what, bool quiet_404);
/* The URL of a blob at an endpoint. */
char *bs_blob_url(const struct bs_endpoint *ep, const char *digest);
/* Range read and size of a blob at an endpoint (Range GET; HEAD, else a
 * one-byte GET). */
int bs_net_read(struct bs_call *c, struct bs_endpoint *ep, const char *digest, uint64_t off,
		void *buf, size_t len);
int bs_net_size(struct bs_call *c, struct bs_endpoint *ep, const char *digest, uint64_t *size,
		enum registry_access acc, bool quiet_404);
/* The read and size operations of both network backends (c->src's endpoint). */
int bs_source_read(struct bs_call *c, const char *digest, uint64_t off, void *buf, size_t len);
int bs_source_size(struct bs_call *c, const char *digest, uint64_t *size);
#endif
