// SPDX-License-Identifier: Apache-2.0
/*
 * The request machinery of the network blob stores (http and registry):
 * one attempt with its 401 answers (bs_send), the retry judgement and the
 * backoff between attempts (blobstore_retryable, bs_judge), and the texts
 * of failures. Transient failures are tried again after an exponential
 * backoff with jitter, up to the call's number of retries; anything else is
 * judged at once.
 */
#include "blobstore_impl.h"

#include "anole/error.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BACKOFF_MS 5000
#define MAX_RETRY_AFTER_MS 10000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_STALL_MS 10000
#define DEFAULT_CONNECT_MS 10000
#define MAX_AUTH_ROUNDS 2              /* challenges answered per attempt */

uint64_t bs_now_ms(void)
{
	return anole_http_now_ms();     /* the clock of the requests' deadlines */
}

/* The delay before a retry, cut short by anole_blobstore_cancel. */
static void sleep_ms(struct anole_blobstore *bs, unsigned ms)
{
	uint64_t end = bs_now_ms() + ms;

	while (!anole_http_cancelled(bs->http)) {
		uint64_t now = bs_now_ms();
		unsigned slice = end > now ? (unsigned)(end - now) : 0;
		struct timespec ts;

		if (!slice)
			break;
		if (slice > 50)
			slice = 50;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)slice * 1000000;
		nanosleep(&ts, NULL);
	}
}

static unsigned jitter(unsigned max)
{
	static _Thread_local uint64_t state;

	if (!state) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&state ^ 0x9e3779b97f4a7c15ull;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return max ? (unsigned)(state % (max + 1)) : 0;
}

int bs_fail(struct bs_call *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	if (err > 0)
		err = -err;
	if (!err)
		err = -EIO;
	if (!c->quiet && !(c->quiet_missing && err == -ENOENT))
		anole_error_code(-err, "%s", c->why);
	return err;
}

struct bs_endpoint *bs_endpoint_new(const char *base, const char *host, const char *repo,
				    bool plain_http, const char *auth_file)
{
	struct bs_endpoint *ep = xcalloc(1, sizeof(*ep));

	ep->base = xstrdup(base);
	ep->host = xstrdup(host);
	ep->repo = repo ? xstrdup(repo) : NULL;
	ep->plain_http = plain_http;
	ep->auth = registry_auth_new(host, repo, auth_file, plain_http);
	ep->blobs = xmalloc(strlen(base) + (repo ? strlen(repo) : 0) + 16);
	if (repo)
		sprintf(ep->blobs, "%s/v2/%s/blobs/", base, repo);
	else
		sprintf(ep->blobs, "%s/", base);
	return ep;
}

void bs_endpoint_free(struct bs_endpoint *ep)
{
	if (!ep)
		return;
	registry_auth_free(ep->auth);
	free(ep->blobs);
	free(ep->base);
	free(ep->host);
	free(ep->repo);
	free(ep);
}

int bs_net_init(struct anole_blobstore *bs)
{
	const struct anole_blobstore_opts *o = &bs->o;
	struct anole_http_opts ho = {
		.timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS,
		.user_agent = o->user_agent,
		.ca_file = o->ca_file,
	};

	ho.stall_ms = o->stall_ms ? o->stall_ms : DEFAULT_STALL_MS;
	if (ho.stall_ms > ho.timeout_ms)
		ho.stall_ms = ho.timeout_ms;
	ho.connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
	if (ho.connect_timeout_ms > ho.timeout_ms)
		ho.connect_timeout_ms = ho.timeout_ms;
	return anole_http_new(&bs->http, &ho);
}

/* ------------------------------------------------------------ the judgement */

bool blobstore_retryable(enum anole_http_failure failure, long status)
{
	switch (failure) {
	case ANOLE_HTTP_OK:             /* judged by the status that ended it */
		return status == 408 || status == 429 ||
		       (status >= 500 && status != 501 && status != 505);
	case ANOLE_HTTP_FAIL_RESOLVE:
	case ANOLE_HTTP_FAIL_CONNECT:
	case ANOLE_HTTP_FAIL_TIMEOUT:
	case ANOLE_HTTP_FAIL_TRANSFER:
	case ANOLE_HTTP_FAIL_PROTOCOL:
	case ANOLE_HTTP_FAIL_OTHER:
		return true;
	case ANOLE_HTTP_FAIL_TLS_HANDSHAKE:  /* the same peer fails the same way */
	case ANOLE_HTTP_FAIL_TLS_PLAIN_PEER:
	case ANOLE_HTTP_FAIL_TLS_VERIFY:
	case ANOLE_HTTP_FAIL_RANGE:
	case ANOLE_HTTP_FAIL_RANGE_IGNORED:  /* not ready there: the caller moves on */
	case ANOLE_HTTP_FAIL_TOO_BIG:
	case ANOLE_HTTP_FAIL_REQUEST:
	case ANOLE_HTTP_FAIL_NOMEM:
	case ANOLE_HTTP_FAIL_DEADLINE:       /* the caller's time is up */
	case ANOLE_HTTP_FAIL_CANCELLED:
		return false;
	}
	return false;
}

/* ------------------------------------------------------------ one attempt */

int bs_send(struct bs_call *c, struct bs_endpoint *ep, struct bs_attempt *a,
	    struct anole_http_request *q, struct anole_http_response *r,
	    enum registry_access acc, bool with_auth)
{
	struct anole_blobstore *bs = c->bs;
	char *authz = with_auth ? registry_auth_cached(ep->auth, acc) : NULL;
	int ret;

	a->ep = ep;
	q->deadline_ms = c->deadline_ms;
	for (unsigned round = 0;; round++) {
		unsigned before = r->requests;
		struct registry_auth_answer ans;

		q->authorization = authz;
		ret = anole_http_request(bs->http, q, r);
		bs_count(&bs->n_requests, r->requests - before);
		a->failure = r->failure;
		a->status = ret ? 0 : r->status;
		if (ret || r->status != 401 || !with_auth || round == MAX_AUTH_ROUNDS)
			break;
		ret = registry_auth_answer(ep->auth, bs->http, r, acc, authz, &ans);
		bs_count(&bs->n_requests, ans.requests);
		if (ans.exchanged)
			bs_count(&bs->n_auth, 1);
		if (ret) {
			snprintf(r->error, sizeof(r->error), "%s", ans.error);
			a->failure = ans.failure;
			a->status = ans.status;
			break;
		}
		free(authz);
		authz = ans.authorization;
	}
	q->authorization = NULL;
	free(authz);
	return ret;
}

/* ": CODE: message" of an OCI error body, or "". */
static void registry_detail(const struct anole_http_response *r, char *out, size_t size)
{
	json_t *doc, *err;
	const char *code, *msg;

	out[0] = '\0';
	if (!r->errbody.len || !(doc = json_loadb(r->errbody.buf, r->errbody.len, 0, NULL)))
		return;
	err = json_array_get(json_object_get(doc, "errors"), 0);
	code = json_string_value(json_object_get(err, "code"));
	msg = json_string_value(json_object_get(err, "message"));
	if (code || msg)
		snprintf(out, size, ": %s%s%s", code ? code : "", code && msg ? ": " : "",
			 msg ? msg : "");
	json_decref(doc);
}

static void describe(const struct anole_http_response *r, int ret, char *out, size_t size)
{
	char detail[200];

	if (ret) {
		snprintf(out, size, "%s", r->error);
		return;
	}
	registry_detail(r, detail, sizeof(detail));
	snprintf(out, size, "HTTP %ld%s%s%s", r->status, r->reason[0] ? " " : "", r->reason,
		 detail);
}

/*
 * What to do about a TLS failure, which happens again on every attempt. A
 * plain-HTTP server answers the ClientHello in HTTP: say so, and name the
 * way to speak plain HTTP to it.
 */
static void tls_advice(const struct bs_endpoint *ep, enum anole_http_failure failure,
		       char *out, size_t size)
{
	const char *host = ep ? ep->host : "the server";

	out[0] = '\0';
	if (failure == ANOLE_HTTP_FAIL_TLS_PLAIN_PEER && ep && ep->repo)
		snprintf(out, size, ". %s speaks plain HTTP, not TLS: if that is meant, use "
			 "--insecure-registry %s (or insecure = true for it in registries.conf)",
			 host, host);
	else if (failure == ANOLE_HTTP_FAIL_TLS_PLAIN_PEER)
		snprintf(out, size, ". %s speaks plain HTTP, not TLS: if that is meant, use an "
			 "http:// URL", host);
	else if (failure == ANOLE_HTTP_FAIL_TLS_VERIFY)
		snprintf(out, size, ". The certificate of %s did not verify: give the CA that "
			 "signed it with --ca-file FILE (verification is never turned off)", host);
	else if (failure == ANOLE_HTTP_FAIL_TLS_HANDSHAKE)
		snprintf(out, size, ". The TLS handshake with %s failed; not retried", host);
	else if (failure == ANOLE_HTTP_FAIL_DEADLINE)
		snprintf(out, size, "; the time allowed for the whole read ran out");
}

int bs_judge(struct bs_call *c, struct bs_attempt *a, const struct anole_http_request *q,
	     struct anole_http_response *r, int ret)
{
	struct anole_blobstore *bs = c->bs;
	const char *method = q->method ? q->method : "GET";
	char why[400];

	if (!blobstore_retryable(a->failure, a->status)) {
		char advice[300];

		if (!ret)
			return 0;
		tls_advice(a->ep, a->failure, advice, sizeof(advice));
		return bs_fail(c, ret, "%s %s: %s%s", method, q->url, r->error, advice);
	}
	describe(r, ret, why, sizeof(why));
	if (a->n < c->retries) {
		unsigned shift = a->n < 16 ? a->n : 16;
		uint64_t delay = (uint64_t)bs->backoff_ms << shift;

		if (delay > MAX_BACKOFF_MS)
			delay = MAX_BACKOFF_MS;
		delay += jitter((unsigned)delay / 4);
		if (!ret && r->status == 429) {
			char *ra = anole_http_header(r, "Retry-After", 0);
			char *end;
			unsigned long s = ra ? strtoul(ra, &end, 10) : 0;

			if (ra && end != ra && !*end && s * 1000 > delay)
				delay = s * 1000 > MAX_RETRY_AFTER_MS ? MAX_RETRY_AFTER_MS : s * 1000;
			free(ra);
		}
		if (c->deadline_ms && bs_now_ms() + delay >= c->deadline_ms)
			return bs_fail(c, -ETIMEDOUT, "%s %s: %s; no time left for another attempt "
				       "(after %u): the time allowed for the whole read runs out",
				       method, q->url, why, a->n + 1);
		a->n++;
		bs_count(&bs->n_retries, 1);
		anole_info("%s %s: %s; retrying in %u ms (attempt %u of %u)", method, q->url, why,
			   (unsigned)delay, a->n + 1, c->retries + 1);
		sleep_ms(bs, (unsigned)delay);
		return 1;
	}
	return bs_fail(c, -EIO, "%s %s: %s (gave up after %u attempt%s)", method, q->url, why,
		       a->n + 1, a->n ? "s" : "");
}

int bs_request(struct bs_call *c, struct bs_endpoint *ep, struct anole_http_request *q,
	       struct anole_http_response *r, enum registry_access acc)
{
	struct bs_attempt a = { 0 };
	/* the registry's credentials go to the registry only: an upload
	 * session's Location may name another host */
	bool with_auth = anole_http_same_origin(q->url, ep->base);
	int ret;

	do
		ret = bs_judge(c, &a, q, r, bs_send(c, ep, &a, q, r, acc, with_auth));
	while (ret == 1);
	return ret;
}

int bs_status_error(struct bs_call *c, const struct anole_http_request *q,
		    const struct anole_http_response *r, const char *what, bool quiet_404)
{
	const char *method = q->method ? q->method : "GET";
	char why[400];

	describe(r, 0, why, sizeof(why));
	switch (r->status) {
	case 404:
		if (quiet_404)
			return -ENOENT;
		return bs_fail(c, -ENOENT, "blob %s not found: %s %s: %s", what, method, q->url,
			       why);
	case 416:
		return bs_fail(c, -ERANGE, "%s %s: %s: the range is beyond the end of the blob",
			       method, q->url, why);
	case 401:
	case 403:
		return bs_fail(c, -EACCES, "%s %s: %s", method, q->url, why);
	default:
		return bs_fail(c, -EIO, "%s %s: unexpected %s", method, q->url, why);
	}
}

/* ------------------------------------------------------------ blobs */

char *bs_blob_url(const struct bs_endpoint *ep, const char *digest)
{
	char *url = xmalloc(strlen(ep->blobs) + 80);

	sprintf(url, "%s%s", ep->blobs, ep->repo ? digest : digest + 7);
	return url;
}

int bs_net_read(struct bs_call *c, struct bs_endpoint *ep, const char *digest, uint64_t off,
		void *buf, size_t len)
{
	char *url = bs_blob_url(ep, digest);
	struct anole_http_request q = { .method = "GET", .url = url, .follow_redirects = true,
					.range_buf = buf, .range_off = off, .range_len = len,
					.max_skip = c->src && c->src->mirror ? MIRROR_MAX_SKIP : 0 };
	struct anole_http_response r;
	int ret;

	anole_http_response_init(&r);
	ret = bs_request(c, ep, &q, &r, REGISTRY_PULL);
	if (!ret && (r.status < 200 || r.status > 299))
		ret = bs_status_error(c, &q, &r, digest, false);
	if (!ret)
		bs_count(&c->bs->n_bytes, len);
	anole_http_response_release(&r);
	free(url);
	return ret;
}

/* The total of a "bytes a-b/total" or "bytes * /total" Content-Range. */
static int range_total(const struct anole_http_response *r, uint64_t *size)
{
	char *v = anole_http_header(r, "Content-Range", 0), *slash, *end;
	int ret = -EPROTO;

	if (v && (slash = strchr(v, '/')) && isdigit((unsigned char)slash[1])) {
		errno = 0;
		*size = strtoull(slash + 1, &end, 10);
		if (!errno && !*end)
			ret = 0;
	}
	free(v);
	return ret;
}

int bs_net_size(struct bs_call *c, struct bs_endpoint *ep, const char *digest, uint64_t *size,
		enum registry_access acc, bool quiet_404)
{
	char *url = bs_blob_url(ep, digest);
	struct anole_http_request q = { .method = "HEAD", .url = url, .follow_redirects = true };
	struct anole_http_response r;
	struct bs_attempt a = { 0 };
	uint8_t byte;
	int ret;

	anole_http_response_init(&r);
	ret = bs_request(c, ep, &q, &r, acc);
	if (ret)
		goto out;
	if (r.status == 200 && r.content_length >= 0) {
		*size = (uint64_t)r.content_length;
		goto out;
	}
	if (r.status != 200 && r.status != 405 && r.status != 501) {
		ret = bs_status_error(c, &q, &r, digest, quiet_404);
		goto out;
	}
	/* no HEAD, or no length in its answer: ask for the first byte */
	q.method = "GET";
	q.range_buf = &byte;
	q.range_off = 0;
	q.range_len = 1;
	do {
		ret = bs_send(c, ep, &a, &q, &r, acc, true);
		if (ret == -ERANGE && r.status == 200) {
			ret = 0;        /* an empty body: size 0 */
			a.failure = ANOLE_HTTP_OK;
			a.status = r.status;
		}
		ret = bs_judge(c, &a, &q, &r, ret);
	} while (ret == 1);
	if (ret)
		goto out;
	if (r.status == 206 || r.status == 416) {
		ret = range_total(&r, size);
		if (ret)
			ret = bs_fail(c, ret, "GET %s: HTTP %ld without a usable Content-Range",
				      url, r.status);
	} else if (r.status == 200 && r.content_length >= 0) {
		*size = (uint64_t)r.content_length;
	} else if (r.status == 200) {
		ret = bs_fail(c, -EPROTO, "GET %s: the server tells no size", url);
	} else {
		ret = bs_status_error(c, &q, &r, digest, quiet_404);
	}
out:
	anole_http_response_release(&r);
	free(url);
	return ret;
}

int bs_source_read(struct bs_call *c, const char *digest, uint64_t off, void *buf, size_t len)
{
	return bs_net_read(c, c->src->endpoint, digest, off, buf, len);
}

int bs_source_size(struct bs_call *c, const char *digest, uint64_t *size)
{
	return bs_net_size(c, c->src->endpoint, digest, size, REGISTRY_PULL, false);
}
