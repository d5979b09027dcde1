// SPDX-License-Identifier: Apache-2.0
/*
 * Blob stores (see blobstore.h): the public API over the backends of
 * blobstore_impl.h. A spec picks the backend; reads go over the store's
 * sources in order — a registry's mirrors, then the registry itself — and
 * writes to the store as named. A mirror that fails, times out or serves
 * bytes that fail verification is skipped for a back-off period (logged),
 * so a bad mirror costs time once, never correctness.
 */
#include "blobstore_impl.h"

#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_RETRIES 4
#define DEFAULT_BACKOFF_MS 100
#define MIRROR_BACKOFF_MS 15000         /* after a mirror's first failure */
#define MIRROR_BACKOFF_MAX_MS 300000    /* doubled per failure in a row, up to this */
#define FETCH_PIECE (8u << 20)          /* whole-blob fetches: bytes per request */

int anole_digest_ref_check(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7))
		return -EINVAL;
	for (int i = 0; i < 64; i++) {
		char c = digest[7 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
	}
	return digest[71] ? -EINVAL : 0;
}

/* ------------------------------------------------------------ open/close */

struct bs_source *bs_add_source(struct anole_blobstore *bs, const char *name, bool mirror,
				void *endpoint)
{
	struct bs_source *src;

	bs->sources = xrealloc(bs->sources, (bs->nsources + 1) * sizeof(*bs->sources));
	src = &bs->sources[bs->nsources++];
	memset(src, 0, sizeof(*src));
	src->name = xstrdup(name);
	src->mirror = mirror;
	src->tags = src->digests = true;
	src->endpoint = endpoint;
	return src;
}

int anole_blobstore_open(struct anole_blobstore **out, const char *spec,
			 const struct anole_blobstore_opts *opts)
{
	struct anole_blobstore *bs;
	int ret;

	*out = NULL;
	if (!spec || !*spec)
		return anole_error_code(EINVAL, "no blob store given");
	bs = xcalloc(1, sizeof(*bs));
	if (opts)
		bs->o = *opts;
	bs->spec = xstrdup(spec);
	bs->retries = bs->o.retries == ANOLE_BLOBSTORE_NO_RETRIES ? 0 :
		      bs->o.retries ? bs->o.retries : DEFAULT_RETRIES;
	bs->backoff_ms = bs->o.backoff_ms ? bs->o.backoff_ms : DEFAULT_BACKOFF_MS;

	if (!strncmp(spec, "docker://", 9))
		ret = blobstore_registry_open(bs, spec + 9);
	else if (!strncasecmp(spec, "http://", 7) || !strncasecmp(spec, "https://", 8))
		ret = blobstore_http_open(bs, spec);
	else if (!strncmp(spec, "dir:", 4))
		ret = blobstore_dir_open(bs, spec + 4);
	else if (strstr(spec, "://"))
		ret = anole_error_code(EINVAL, "blob store '%s': unknown scheme (dir, http://, "
				       "https://, docker://)", spec);
	else
		ret = blobstore_dir_open(bs, spec);
	if (ret) {
		anole_blobstore_close(bs);
		return ret;
	}
	*out = bs;
	return 0;
}

void anole_blobstore_close(struct anole_blobstore *bs)
{
	if (!bs)
		return;
	if (bs->ops && bs->ops->close)
		bs->ops->close(bs);
	anole_http_free(bs->http);
	for (unsigned i = 0; i < bs->nsources; i++)
		free(bs->sources[i].name);
	free(bs->sources);
	free(bs->spec);
	free(bs);
}

void anole_blobstore_get_stats(struct anole_blobstore *bs, struct anole_blobstore_stats *st)
{
	st->requests = atomic_load_explicit(&bs->n_requests, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&bs->n_bytes, memory_order_relaxed);
	st->bytes_sent = atomic_load_explicit(&bs->n_bytes_sent, memory_order_relaxed);
	st->retries = atomic_load_explicit(&bs->n_retries, memory_order_relaxed);
	st->failures = atomic_load_explicit(&bs->n_failures, memory_order_relaxed);
	st->auth = atomic_load_explicit(&bs->n_auth, memory_order_relaxed);
}

/* ------------------------------------------------------------ sources */

static bool serves(const struct bs_source *src, enum bs_use use)
{
	return use == BS_USE_BLOB || (use == BS_USE_TAG ? src->tags : src->digests);
}

static void mirror_failed(struct bs_source *src, int err, const char *why)
{
	unsigned n = atomic_fetch_add(&src->failures, 1) + 1;
	uint64_t ms = MIRROR_BACKOFF_MS;

	for (unsigned i = 1; i < n && ms < MIRROR_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > MIRROR_BACKOFF_MAX_MS)
		ms = MIRROR_BACKOFF_MAX_MS;
	atomic_store(&src->skip_until_ms, bs_now_ms() + ms);
	anole_warn("%s: %s; skipping it for %u s", src->name, why[0] ? why : strerror(-err),
		   (unsigned)(ms / 1000));
}

/*
 * Run op over the sources that serve `use`, in order, until one succeeds.
 * A mirror's failure is logged in one line and puts it in back-off (a
 * mirror without the thing asked for, or not serving ranges of it yet, is
 * only passed over); the origin's failure is the result.
 */
static int over_sources(struct anole_blobstore *bs, enum bs_use use, uint64_t deadline_ms,
			int (*op)(struct bs_call *c, void *arg), void *arg)
{
	int ret = -EIO;

	for (unsigned i = 0; i < bs->nsources; i++) {
		struct bs_source *src = &bs->sources[i];
		bool last = i + 1 == bs->nsources;
		struct bs_call c = { .bs = bs, .src = src, .quiet = !last,
				     .retries = src->mirror ? 0 : bs->retries,
				     .deadline_ms = deadline_ms };

		if (src->mirror && !serves(src, use))
			continue;
		if (src->mirror && atomic_load(&src->skip_until_ms) > bs_now_ms()) {
			anole_debug("%s: in back-off, passed over", src->name);
			continue;
		}
		ret = op(&c, arg);
		if (!ret || last) {
			if (!ret && src->mirror)
				atomic_store(&src->failures, 0);
			return ret;
		}
		if (ret == -ECANCELED)
			return ret;
		if (ret == -ENOENT || ret == -EAGAIN)   /* not there, or not yet */
			anole_info("%s: %s; trying the next source", src->name, c.why[0] ? c.why :
				   "not found there");
		else
			mirror_failed(src, ret, c.why);
		if (deadline_ms && bs_now_ms() >= deadline_ms)
			return anole_error_code(ETIMEDOUT, "%s: the time allowed for the read ran "
						"out before the next source", src->name);
	}
	return ret;
}

/* ------------------------------------------------------------ reads */

struct read_arg {
	const char *digest;
	uint64_t off;
	void *buf;
	size_t len;
	anole_blobstore_verify_fn verify;
	void *opaque;
};

static int read_op(struct bs_call *c, void *arg)
{
	struct read_arg *a = arg;
	int ret = c->bs->ops->read(c, a->digest, a->off, a->buf, a->len);

	if (ret || !a->verify || !(ret = a->verify(a->opaque, a->buf, a->len)))
		return ret;
	snprintf(c->why, sizeof(c->why), "bytes %" PRIu64 "-%" PRIu64 " of %s fail verification",
		 a->off, a->off + a->len - 1, a->digest);
	return ret;             /* the verifier has said what was wrong */
}

static int check_digest(const char *digest)
{
	if (anole_digest_ref_check(digest))
		return anole_error_code(EINVAL, "invalid blob digest '%s' (want sha256:<64 hex>)",
					digest ? digest : "");
	return 0;
}

static int failed(struct anole_blobstore *bs, int ret)
{
	if (ret < 0)
		bs_count(&bs->n_failures, 1);
	return ret;
}

void anole_blobstore_cancel(struct anole_blobstore *bs)
{
	if (bs)
		anole_http_cancel(bs->http);    /* a dir store's reads end by themselves */
}

int anole_blobstore_read_verified(struct anole_blobstore *bs, const char *digest, uint64_t off,
				  void *buf, size_t len, anole_blobstore_verify_fn verify,
				  void *opaque)
{
	return anole_blobstore_read_verified_until(bs, digest, off, buf, len, verify, opaque, 0);
}

int anole_blobstore_read_verified_until(struct anole_blobstore *bs, const char *digest,
					uint64_t off, void *buf, size_t len,
					anole_blobstore_verify_fn verify, void *opaque,
					uint64_t deadline_ms)
{
	struct read_arg a = { digest, off, buf, len, verify, opaque };
	int ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	if (!len)
		return 0;
	if (off + len < off)
		return failed(bs, anole_error_code(ERANGE, "range past 2^64"));
	return failed(bs, over_sources(bs, BS_USE_BLOB, deadline_ms, read_op, &a));
}

int anole_blobstore_read(struct anole_blobstore *bs, const char *digest, uint64_t off,
			 void *buf, size_t len)
{
	return anole_blobstore_read_verified(bs, digest, off, buf, len, NULL, NULL);
}

struct size_arg {
	const char *digest;
	uint64_t *size;
	bool quiet_missing;
};

static int size_op(struct bs_call *c, void *arg)
{
	struct size_arg *a = arg;

	c->quiet_missing = a->quiet_missing;
	return c->bs->ops->size(c, a->digest, a->size);
}

int anole_blobstore_size(struct anole_blobstore *bs, const char *digest, uint64_t *size)
{
	struct size_arg a = { digest, size, false };
	int ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	return failed(bs, over_sources(bs, BS_USE_BLOB, 0, size_op, &a));
}

int anole_blobstore_has(struct anole_blobstore *bs, const char *digest)
{
	uint64_t size;
	struct size_arg a = { digest, &size, true };
	int ret = check_digest(digest);

	if (!ret)
		ret = over_sources(bs, BS_USE_BLOB, 0, size_op, &a);
	return !ret ? 1 : ret == -ENOENT ? 0 : failed(bs, ret);
}

/* ------------------------------------------------------------ whole blobs */

struct fetch_arg {
	const char *digest;
	uint64_t size;
	int fd;
	uint8_t *buf;
};

/* The whole blob from one source into fd, hashed on the way. */
static int fetch_op(struct bs_call *c, void *arg)
{
	struct fetch_arg *a = arg;
	struct anole_digest_ctx *ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
	uint8_t md[ANOLE_DIGEST_MAX];
	char hex[65];
	int ret = ctx ? 0 : -ENOMEM;

	if (!ret && ftruncate(a->fd, 0) < 0)
		ret = bs_fail(c, errno, "cannot truncate the file for %s: %s", a->digest,
			      strerror(errno));
	for (uint64_t off = 0; !ret && off < a->size; off += FETCH_PIECE) {
		size_t n = a->size - off < FETCH_PIECE ? (size_t)(a->size - off) : FETCH_PIECE;

		ret = c->bs->ops->read(c, a->digest, off, a->buf, n);
		if (ret)
			break;
		anole_digest_update(ctx, a->buf, n);
		ret = pwrite_full(a->fd, a->buf, n, off);
		if (ret)
			ret = bs_fail(c, ret, "cannot write %s: %s", a->digest, strerror(-ret));
	}
	if (!ret && !(ret = anole_digest_final(ctx, md))) {
		anole_hex(md, 32, hex);
		if (strcmp(hex, a->digest + 7))
			ret = bs_fail(c, -EBADMSG, "%s: blob %s does not match its digest (its "
				      "sha256 is %s)", c->src->name, a->digest, hex);
	}
	anole_digest_free(ctx);
	return ret;
}

int anole_blobstore_fetch(struct anole_blobstore *bs, const char *digest, uint64_t size,
			  int fd)
{
	struct fetch_arg a = { digest, size, fd, NULL };
	int ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	a.buf = xmalloc(size < FETCH_PIECE ? (size_t)size + 1 : FETCH_PIECE);
	ret = over_sources(bs, BS_USE_BLOB, 0, fetch_op, &a);
	free(a.buf);
	return failed(bs, ret);
}

/* ------------------------------------------------------------ writes */

int anole_blobstore_put(struct anole_blobstore *bs, const char *digest, const char *path)
{
	struct stat st;
	int fd, ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	if (!bs->ops->put)
		return failed(bs, anole_error_code(EOPNOTSUPP, "%s: an http(s) blob store is "
						   "read-only; push to a registry or a directory",
						   bs->spec));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failed(bs, anole_error(errno, "cannot open %s", path));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = anole_error_code(EINVAL, "%s is not a regular file", path);
		close(fd);
		return failed(bs, ret);
	}
	ret = bs->ops->put(bs, digest, fd, (uint64_t)st.st_size, path);
	close(fd);
	return failed(bs, ret);
}

/* ------------------------------------------------------------ uploads in parts */

struct anole_blob_upload {
	struct anole_blobstore *bs;
	char *url;                  /* NULL once committed or failed */
	uint64_t sent;
};

int anole_blobstore_has_tags(struct anole_blobstore *bs)
{
	return bs->ops->has_tags ? bs->ops->has_tags(bs) : -EOPNOTSUPP;
}

int anole_blobstore_upload_begin(struct anole_blobstore *bs, struct anole_blob_upload **out)
{
	struct anole_blob_upload *u;
	char *url = NULL;
	int ret;

	if (!bs->ops->upload_begin)
		return -EOPNOTSUPP;
	ret = bs->ops->upload_begin(bs, &url);
	if (ret)
		return ret;
	u = xcalloc(1, sizeof(*u));
	u->bs = bs;
	u->url = url;
	*out = u;
	return 0;
}

int anole_blob_upload_part(struct anole_blob_upload *u, int fd, uint64_t off, uint64_t len)
{
	int ret;

	if (!u->url || off != u->sent)
		return -EINVAL;
	ret = u->bs->ops->upload_part(u->bs, &u->url, fd, off, len);
	if (ret) {
		u->bs->ops->upload_cancel(u->bs, u->url);
		free(u->url);
		u->url = NULL;
		return ret;
	}
	u->sent += len;
	return 0;
}

int anole_blob_upload_commit(struct anole_blob_upload *u, const char *digest)
{
	int ret = anole_digest_ref_check(digest) ? -EINVAL : 0;

	if (!u->url)
		return -EINVAL;
	if (!ret)
		ret = u->bs->ops->upload_commit(u->bs, u->url, digest);
	if (ret)
		u->bs->ops->upload_cancel(u->bs, u->url);
	free(u->url);
	u->url = NULL;
	return ret;
}

void anole_blob_upload_free(struct anole_blob_upload *u)
{
	if (!u)
		return;
	if (u->url)
		u->bs->ops->upload_cancel(u->bs, u->url);
	free(u->url);
	free(u);
}

/* ------------------------------------------------------------ manifests */

static bool valid_reference(const char *ref)
{
	if (!ref || !*ref || strlen(ref) > 128)
		return false;
	if (!strncmp(ref, "sha256:", 7))
		return !anole_digest_ref_check(ref);
	for (const char *p = ref; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

static int check_registry(struct anole_blobstore *bs, const char *reference)
{
	if (!bs->ops->get_manifest)
		return anole_error_code(EOPNOTSUPP, "%s is not a registry", bs->spec);
	if (!valid_reference(reference))
		return anole_error_code(EINVAL, "'%s' is not a tag or a sha256 digest", reference);
	return 0;
}

struct manifest_arg {
	const char *reference;
	struct strbuf *out;
	char **media_type;
	bool quiet_missing;
};

static int manifest_op(struct bs_call *c, void *arg)
{
	struct manifest_arg *a = arg;
	uint8_t d[32];
	char hex[65];
	int ret;

	c->quiet_missing = a->quiet_missing;
	ret = c->bs->ops->get_manifest(c, a->reference, a->out, a->media_type);

	/* a digest reference must name exactly these bytes */
	if (ret || strncmp(a->reference, "sha256:", 7))
		return ret;
	anole_digest(ANOLE_DIGEST_SHA256, a->out->buf, a->out->len, d);
	anole_hex(d, 32, hex);
	if (strcmp(hex, a->reference + 7)) {
		if (a->media_type) {
			free(*a->media_type);
			*a->media_type = NULL;
		}
		return bs_fail(c, EBADMSG, "%s: manifest %s does not match its digest",
			       c->src->name, a->reference);
	}
	return 0;
}

static int get_manifest(struct anole_blobstore *bs, const char *reference, struct strbuf *out,
			char **media_type, bool quiet_missing)
{
	struct manifest_arg a = { reference, out, media_type, quiet_missing };
	int ret = check_registry(bs, reference);

	if (media_type)
		*media_type = NULL;
	if (ret)
		return ret;
	return over_sources(bs, strncmp(reference, "sha256:", 7) ? BS_USE_TAG : BS_USE_DIGEST, 0,
			    manifest_op, &a);
}

int anole_blobstore_get_manifest(struct anole_blobstore *bs, const char *reference,
				 struct strbuf *out, char **media_type)
{
	return get_manifest(bs, reference, out, media_type, false);
}

int anole_blobstore_find_manifest(struct anole_blobstore *bs, const char *reference,
				  struct strbuf *out, char **media_type)
{
	return get_manifest(bs, reference, out, media_type, true);
}

int anole_blobstore_put_manifest(struct anole_blobstore *bs, const char *reference,
				 const char *media_type, const void *data, size_t len)
{
	int ret = check_registry(bs, reference);

	return ret ? ret : bs->ops->put_manifest(bs, reference, media_type, data, len);
}

int anole_blobstore_mount_from(struct anole_blobstore *bs, const char *digest, const char *from)
{
	if (!bs->ops->mount_from)
		return -ENOENT;
	return bs->ops->mount_from(bs, digest, from);
}
