/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Blob stores: where the blobs of an image live, read by byte range.
 *
 *   /path/to/dir            local directory: DIR/<hex>, or an OCI image
 *                           layout (DIR/oci-layout present): DIR/blobs/<alg>/<hex>
 *   http://host/prefix      plain HTTP(S) server: GET PREFIX/<hex> with Range
 *   https://host/prefix
 *   docker://host[:port]/repo   OCI distribution registry:
 *                           GET /v2/<repo>/blobs/<alg>:<hex> with Range,
 *                           anonymous or Bearer-token auth, redirects followed.
 *                           Plain HTTP for localhost and 127.0.0.0/8 (as docker
 *                           does), HTTPS with verification otherwise, unless the
 *                           host is listed as insecure. Reads try the mirrors
 *                           that registries.conf gives for it first (see
 *                           registries_conf below); writes go to it as named.
 *
 *   dir:/path/to/dir         the same as a plain path
 *
 * Digests are "sha256:<64 hex>" (the OCI form). HTTP(S)_PROXY and NO_PROXY are
 * honoured (libcurl). All functions are thread-safe on one store.
 *
 * Registry credentials come from a docker config.json ("auths" entries with
 * "auth": base64 "user:pass", or "username" and "password"); they answer a
 * Basic challenge, or go to the token realm of a Bearer challenge (anonymous
 * when there are none). Tokens are cached per store until they expire.
 * docker://docker.io/NAME is Docker Hub (library/NAME for a bare NAME).
 *
 * Errors are logged (anole_error) and returned as negative errnos:
 *   -ENOENT      no such blob (404, or no file); at once, never retried
 *   -ERANGE      the range ends beyond the end of the blob (416)
 *   -EACCES      authentication failed or access denied (401, 403)
 *   -EOPNOTSUPP  put on an http(s) store
 *   -EINVAL      bad spec or digest
 *   -EIO         anything else, e.g. transient failures left after the last
 *                retry: the message names the URL and the HTTP status or
 *                curl error
 */
#ifndef ANOLE_BLOBSTORE_H
#define ANOLE_BLOBSTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct anole_blobstore;

/* retries value for "no retries" (0 means the default) */
#define ANOLE_BLOBSTORE_NO_RETRIES (~0u)

/* Zero fields take their defaults. */
struct anole_blobstore_opts {
	unsigned retries;          /* extra attempts after a failure (default 4;
	                              ANOLE_BLOBSTORE_NO_RETRIES for none) */
	unsigned backoff_ms;       /* first retry delay, doubled each time up to 5 s,
	                              plus up to 25% jitter (default 100) */
	unsigned timeout_ms;       /* whole-request timeout (default 30000) */
	unsigned stall_ms;         /* abort if no byte arrives this long (default
	                              10000, at most timeout_ms; whole seconds) */
	unsigned connect_timeout_ms; /* default 10000, at most timeout_ms */
	const char *auth_file;     /* docker config.json; NULL: $REGISTRY_AUTH_FILE,
	                              then $DOCKER_CONFIG/config.json, then
	                              ~/.docker/config.json (absent: anonymous) */
	const char *const *insecure_hosts; /* "host[:port]" spoken to over plain HTTP */
	unsigned ninsecure_hosts;
	const char *user_agent;
	const char *ca_file;       /* PEM CA bundle for https; NULL: $SSL_CERT_FILE,
	                              else the system's CA store */
	const char *registries_conf; /* containers-registries.conf(5) for docker://
	                              stores (mirrors, locations, insecure, blocked);
	                              NULL: $CONTAINERS_REGISTRIES_CONF, else
	                              ~/.config/containers/registries.conf if it
	                              exists, else /etc/containers/registries.conf,
	                              with the drop-ins of its .d directory */
};

struct anole_blobstore_stats {
	uint64_t requests;         /* HTTP requests (redirects and token requests
	                              included), or file reads of a dir store */
	uint64_t bytes;            /* blob bytes returned by reads */
	uint64_t bytes_sent;       /* blob bytes uploaded or copied by put */
	uint64_t retries;          /* attempts repeated after a transient failure */
	uint64_t failures;         /* operations that returned an error */
	uint64_t auth;             /* challenges answered (token fetches, Basic) */
};

/* Parse spec and prepare the store (no network traffic yet). */
int anole_blobstore_open(struct anole_blobstore **out, const char *spec,
			 const struct anole_blobstore_opts *opts);
void anole_blobstore_close(struct anole_blobstore *bs);

/* Read exactly len bytes at off of blob `digest`. Retries transient
 * failures (connection errors, timeouts, stalls, 5xx, 429, short or
 * over-long bodies) with backoff, then fails with -EIO; 404 gives -ENOENT at
 * once, and so do TLS failures (their own errno). A mirror is tried once
 * and passed over on any failure. Never returns partial data as success. len 0 returns 0 at once.
 * Bytes are not checked against the digest here (a range cannot be): the
 * caller verifies chunks, or the whole blob. */
int anole_blobstore_read(struct anole_blobstore *bs, const char *digest,
			 uint64_t off, void *buf, size_t len);

/*
 * A whole blob read front to back (size bytes), its ranges fetched a few
 * pieces ahead by a thread so that the download overlaps the reader's work.
 * read returns up to len bytes, 0 at the end, or a negative errno (reported
 * already). The bytes are not checked: the reader hashes the stream and
 * compares its digest at the end. bs must not be used elsewhere until close.
 */
struct anole_blob_stream;
int anole_blob_stream_open(struct anole_blob_stream **out, struct anole_blobstore *bs,
			   const char *digest, uint64_t size);
ssize_t anole_blob_stream_read(struct anole_blob_stream *s, void *buf, size_t len);
void anole_blob_stream_close(struct anole_blob_stream *s);

/*
 * The same, with the bytes checked by the caller before they count: verify
 * gets them and returns 0 to accept them, or a negative errno when they are
 * wrong (it may keep what it checked). Bytes a mirror served that fail are
 * asked of the next source, and that mirror is skipped for a while; from
 * the last source (the store as named) the verifier's error is returned.
 */
typedef int (*anole_blobstore_verify_fn)(void *opaque, const void *buf, size_t len);
int anole_blobstore_read_verified(struct anole_blobstore *bs, const char *digest,
				  uint64_t off, void *buf, size_t len,
				  anole_blobstore_verify_fn verify, void *opaque);
/* The same, ending by deadline_ms (anole_http_now_ms() clock; 0: none)
 * whatever the retries and sources left: each attempt's time limit is cut
 * to what remains, and a retry that would start after it is not made
 * (-ETIMEDOUT). A reader waiting on a lazy mount gets its answer in time. */
int anole_blobstore_read_verified_until(struct anole_blobstore *bs, const char *digest,
					uint64_t off, void *buf, size_t len,
					anole_blobstore_verify_fn verify, void *opaque,
					uint64_t deadline_ms);

/* Make every read of bs, running or to come, fail soon with -ECANCELED
 * (within about a second for a transfer in progress; retry delays are cut
 * short): a daemon told to stop does not wait for a stalled server. */
void anole_blobstore_cancel(struct anole_blobstore *bs);

/*
 * The whole blob (size bytes) into fd, from offset 0 (fd is truncated
 * first), checked against its SHA-256: a source whose bytes do not match is
 * passed over like a failing one. -EBADMSG when the last source's bytes do
 * not match either.
 */
int anole_blobstore_fetch(struct anole_blobstore *bs, const char *digest, uint64_t size, int fd);

/* Size of a blob (HEAD or stat); -ENOENT if absent. */
int anole_blobstore_size(struct anole_blobstore *bs, const char *digest, uint64_t *size);
/* 1 if the store has the blob, 0 if not (an answer, so nothing is logged),
 * or -errno when it cannot tell (logged). */
int anole_blobstore_has(struct anole_blobstore *bs, const char *digest);

/* Store a local file as blob `digest` (registry: monolithic upload,
 * skipped if the registry already has it; dir: copy + rename, checking the
 * digest on the way; http(s): -EOPNOTSUPP). Returns 0 when stored, 1 when
 * the store already had the blob. */
int anole_blobstore_put(struct anole_blobstore *bs, const char *digest, const char *path);

/*
 * Registry stores: a blob uploaded in parts while it is still being
 * written (a chunked upload: POST, PATCH per part, PUT with the digest
 * once it is known), so that sending it overlaps making it. Nothing is
 * retried and failures are not logged as errors (info level): the caller
 * falls back to anole_blobstore_put. The blob exists in the registry only
 * once committed; free() cancels an upload not committed. Parts go in
 * order, from offset 0, each right after the last. -EOPNOTSUPP from
 * begin for other stores.
 */
struct anole_blob_upload;
/* Registry stores: 1 if the repository has a tag, 0 if it has none (or
 * does not exist yet), else a -errno, not logged. */
int anole_blobstore_has_tags(struct anole_blobstore *bs);
int anole_blobstore_upload_begin(struct anole_blobstore *bs, struct anole_blob_upload **out);
int anole_blob_upload_part(struct anole_blob_upload *u, int fd, uint64_t off, uint64_t len);
int anole_blob_upload_commit(struct anole_blob_upload *u, const char *digest);
void anole_blob_upload_free(struct anole_blob_upload *u);   /* NULL: no-op */

/* Counters since open. */
void anole_blobstore_get_stats(struct anole_blobstore *bs, struct anole_blobstore_stats *st);

/* "sha256:<hex>" -> checks the form; returns 0 or -EINVAL. */
int anole_digest_ref_check(const char *digest);
/* Registry stores: manifests by tag or digest. get verifies a digest
 * reference against the bytes; media_type (may be NULL) is the server's
 * Content-Type, to free. */
struct strbuf;
int anole_blobstore_get_manifest(struct anole_blobstore *bs, const char *reference,
				 struct strbuf *out, char **media_type);
/* The same, for a manifest that may well be absent (a signature tag):
 * -ENOENT without a message when it is. */
int anole_blobstore_find_manifest(struct anole_blobstore *bs, const char *reference,
				  struct strbuf *out, char **media_type);
int anole_blobstore_put_manifest(struct anole_blobstore *bs, const char *reference,
				 const char *media_type, const void *data, size_t len);
/* Registry stores: link a blob the registry holds in repository `from`
 * (same registry) into this one; -ENOENT if it declined. */
int anole_blobstore_mount_from(struct anole_blobstore *bs, const char *digest, const char *from);
#endif
