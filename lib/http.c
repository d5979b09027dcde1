// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP over libcurl: a pool of easy handles (connection reuse per handle), a
 * share for DNS and TLS sessions, exact range reads into caller buffers, and
 * redirects followed by hand so that credentials never leave their origin.
 *
 * Connections are not put in the share: libcurl does not support sharing a
 * connection cache between threads that run transfers at the same time.
 */
#include "anole/http.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#ifndef ANOLE_VERSION
#define ANOLE_VERSION "0.1.0"
#endif

#define ERRBODY_MAX 4096
#define DEFAULT_BODY_MAX (1u << 20)

struct anole_http {
	struct anole_http_opts o;
	char *user_agent;
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL **idle;
	size_t nidle, idle_alloc;
	bool verbose;           /* $ANOLE_HTTP_TRACE: libcurl's trace on stderr */
	atomic_bool cancelled;  /* anole_http_cancel: every transfer stops */
	char *ca_file;          /* CA bundle instead of the system's, or NULL */
	char *unix_socket;      /* connect here instead of the URL's host, or NULL */
};

/* ------------------------------------------------------------ global init */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int anole_http_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	if (global_rc != CURLE_OK)
		return anole_error_code(EIO, "cannot initialise libcurl: %s",
					curl_easy_strerror(global_rc));
	return 0;
}

/* ------------------------------------------------------------ client */

uint64_t anole_http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void anole_http_cancel(struct anole_http *h)
{
	if (h)
		atomic_store(&h->cancelled, true);
}

bool anole_http_cancelled(const struct anole_http *h)
{
	return h && atomic_load(&h->cancelled);
}

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *opaque)
{
	struct anole_http *h = opaque;

	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *opaque)
{
	struct anole_http *h = opaque;

	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->locks[data]);
}

int anole_http_new(struct anole_http **out, const struct anole_http_opts *opts)
{
	struct anole_http *h;
	const char *env;
	int ret = anole_http_global_init();

	*out = NULL;
	if (ret)
		return ret;
	h = xcalloc(1, sizeof(*h));
	if (opts)
		h->o = *opts;
	if (!h->o.timeout_ms)
		h->o.timeout_ms = 30000;
	if (!h->o.connect_timeout_ms)
		h->o.connect_timeout_ms = 10000;
	if (h->o.connect_timeout_ms > h->o.timeout_ms)
		h->o.connect_timeout_ms = h->o.timeout_ms;
	if (!h->o.stall_ms)
		h->o.stall_ms = 10000;
	if (!h->o.max_redirects)
		h->o.max_redirects = 10;
	if (!h->o.max_idle_handles)
		h->o.max_idle_handles = 16;
	h->verbose = getenv("ANOLE_HTTP_TRACE") && *getenv("ANOLE_HTTP_TRACE");
	if (h->o.ca_file)
		h->ca_file = xstrdup(h->o.ca_file);
	else if ((env = getenv("SSL_CERT_FILE")) && *env)
		h->ca_file = xstrdup(env);
	h->o.ca_file = h->ca_file;
	if (h->o.unix_socket)
		h->unix_socket = xstrdup(h->o.unix_socket);
	h->o.unix_socket = h->unix_socket;
	h->user_agent = xstrdup(h->o.user_agent ? h->o.user_agent : "anole/" ANOLE_VERSION);
	h->o.user_agent = h->user_agent;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	h->share = curl_share_init();
	if (!h->share) {
		anole_http_free(h);
		return anole_error_code(ENOMEM, "curl_share_init failed");
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*out = h;
	return 0;
}

void anole_http_free(struct anole_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	free(h->user_agent);
	free(h->ca_file);
	free(h->unix_socket);
	free(h);
}

static CURL *handle_get(struct anole_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->nidle)
		c = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		return c;
	c = curl_easy_init();
	if (c)
		curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	return c;
}

/* Back to the pool, with its live connections (libcurl has already closed
 * any that a failed or cut-short transfer left unusable). */
static void handle_put(struct anole_http *h, CURL *c)
{
	curl_easy_reset(c);     /* drop pointers to the finished request */
	pthread_mutex_lock(&h->pool_lock);
	if (h->nidle < h->o.max_idle_handles) {
		xgrow(&h->idle, &h->idle_alloc, h->nidle + 1, sizeof(*h->idle));
		h->idle[h->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

/* ------------------------------------------------------------ responses */

void anole_http_response_init(struct anole_http_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	strbuf_init(&resp->headers, 0);
	strbuf_init(&resp->errbody, 0);
	resp->content_length = -1;
}

void anole_http_response_release(struct anole_http_response *resp)
{
	strbuf_release(&resp->headers);
	strbuf_release(&resp->errbody);
	free(resp->url);
	resp->url = NULL;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
		      size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n))
		return false;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len && isspace((unsigned char)line[len - 1]))
		len--;
	*value = line;
	*vlen = len;
	return true;
}

static const char *find_header(const struct strbuf *headers, const char *name, unsigned idx,
			       size_t *vlen)
{
	const char *p = headers->buf, *end = headers->buf + headers->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *v;

		if (header_is(p, len, name, &v, vlen) && idx-- == 0)
			return v;
		p += len + 1;
	}
	return NULL;
}

char *anole_http_header(const struct anole_http_response *resp, const char *name, unsigned idx)
{
	size_t len;
	const char *v = find_header(&resp->headers, name, idx, &len);

	return v ? xstrndup(v, len) : NULL;
}

/* ------------------------------------------------------------ transfers */

struct xfer {
	struct anole_http *h;
	const struct anole_http_request *req;
	struct anole_http_response *resp;
	/* range sink */
	uint8_t *buf;
	size_t filled;
	uint64_t skip;          /* bytes of a 200 body still to discard */
	bool checked;           /* headers of this response validated */
	bool done;              /* range complete: transfer stopped on purpose */
	int werr;               /* why the write callback stopped the transfer */
	enum anole_http_failure werr_failure;
	char werr_msg[160];
	/* request body source */
	uint64_t body_pos;
	int rerr;
};

static void xfer_reset_response(struct xfer *x)
{
	struct anole_http_response *r = x->resp;

	r->status = 0;
	r->failure = ANOLE_HTTP_OK;
	r->reason[0] = '\0';
	strbuf_reset(&r->headers);
	strbuf_reset(&r->errbody);
	r->content_length = -1;
	r->bytes_received = 0;
	x->filled = 0;
	x->skip = 0;
	x->checked = false;
	x->done = false;
	x->werr = 0;
	x->werr_msg[0] = '\0';
	x->body_pos = 0;
	x->rerr = 0;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	struct anole_http_response *r = x->resp;
	size_t len = size * nmemb, n = len;
	const char *v;
	size_t vlen;

	while (n && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		n--;
	if (n >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* a new response (after 100 Continue, or a new hop) */
		const char *p = memchr(data, ' ', n);
		size_t rlen;

		strbuf_reset(&r->headers);
		strbuf_reset(&r->errbody);
		r->content_length = -1;
		r->reason[0] = '\0';
		r->status = 0;
		if (p) {
			char *end;
			long st = strtol(p + 1, &end, 10);

			r->status = st;
			while (end < data + n && *end == ' ')
				end++;
			rlen = (size_t)(data + n - end);
			if (rlen >= sizeof(r->reason))
				rlen = sizeof(r->reason) - 1;
			memcpy(r->reason, end, rlen);
			r->reason[rlen] = '\0';
		}
		return len;
	}
	if (!n)
		return len;
	strbuf_add(&r->headers, data, n);
	strbuf_addch(&r->headers, '\n');
	if (header_is(data, n, "Content-Length", &v, &vlen)) {
		char tmp[32];

		if (vlen < sizeof(tmp)) {
			char *end;
			unsigned long long cl;

			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			errno = 0;
			cl = strtoull(tmp, &end, 10);
			if (!errno && end != tmp && !*end && cl <= INT64_MAX)
				r->content_length = (int64_t)cl;
		}
	}
	return len;
}

static size_t write_fail(struct xfer *x, int err, enum anole_http_failure failure,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static size_t write_fail(struct xfer *x, int err, enum anole_http_failure failure,
			 const char *fmt, ...)
{
	va_list ap;

	x->werr = err;
	x->werr_failure = failure;
	va_start(ap, fmt);
	vsnprintf(x->werr_msg, sizeof(x->werr_msg), fmt, ap);
	va_end(ap);
	return CURL_WRITEFUNC_ERROR;
}

/* "bytes a-b/total" or "bytes a-b/ *" */
static int parse_content_range(const char *v, size_t vlen, uint64_t *a, uint64_t *b,
			       int64_t *total)
{
	char tmp[96], *p, *end;

	if (vlen >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, v, vlen);
	tmp[vlen] = '\0';
	if (strncasecmp(tmp, "bytes ", 6))
		return -EINVAL;
	p = tmp + 6;
	while (*p == ' ')
		p++;
	if (*p == '*') {
		*a = 1;
		*b = 0;
		p++;
	} else {
		errno = 0;
		*a = strtoull(p, &end, 10);
		if (errno || end == p || *end != '-')
			return -EINVAL;
		p = end + 1;
		*b = strtoull(p, &end, 10);
		if (errno || end == p || *b < *a)
			return -EINVAL;
		p = end;
	}
	if (*p != '/')
		return -EINVAL;
	p++;
	if (*p == '*' && !p[1]) {
		*total = -1;
		return 0;
	}
	errno = 0;
	*total = (int64_t)strtoll(p, &end, 10);
	if (errno || end == p || *end || *total < 0)
		return -EINVAL;
	return 0;
}

/* Validate the headers of a 2xx answer to a range request. */
static size_t check_range_headers(struct xfer *x)
{
	const struct anole_http_request *q = x->req;
	struct anole_http_response *r = x->resp;
	uint64_t want_end = q->range_off + q->range_len - 1, a, b;
	int64_t total;
	const char *v;
	size_t vlen;

	x->checked = true;
	if (r->status == 200) {
		if (r->content_length >= 0 &&
		    (uint64_t)r->content_length < q->range_off + q->range_len)
			return write_fail(x, -ERANGE, ANOLE_HTTP_FAIL_RANGE,
					  "bytes %" PRIu64 "-%" PRIu64 " are beyond the end (%" PRId64
					  " bytes)", q->range_off, want_end, r->content_length);
		if (q->max_skip && q->range_off > q->max_skip)
			return write_fail(x, -EAGAIN, ANOLE_HTTP_FAIL_RANGE_IGNORED,
					  "HTTP 200 (the whole body) for bytes %" PRIu64 "-%" PRIu64
					  ": the server ignores Range here", q->range_off, want_end);
		x->skip = q->range_off;
		return 0;
	}
	if (r->status != 206)
		return write_fail(x, -EPROTO, ANOLE_HTTP_FAIL_PROTOCOL, "unexpected HTTP %ld to a range request",
				  r->status);
	v = find_header(&r->headers, "Content-Range", 0, &vlen);
	if (!v)
		return write_fail(x, -EPROTO, ANOLE_HTTP_FAIL_PROTOCOL, "206 response without Content-Range");
	if (parse_content_range(v, vlen, &a, &b, &total) || a > b)
		return write_fail(x, -EPROTO, ANOLE_HTTP_FAIL_PROTOCOL, "malformed Content-Range '%.*s'", (int)vlen, v);
	if (a == q->range_off && b < want_end && total >= 0 && (uint64_t)total == b + 1)
		return write_fail(x, -ERANGE, ANOLE_HTTP_FAIL_RANGE,
				  "bytes %" PRIu64 "-%" PRIu64 " are beyond the end (%" PRId64
				  " bytes)", q->range_off, want_end, total);
	if (a != q->range_off || b != want_end)
		return write_fail(x, -EPROTO, ANOLE_HTTP_FAIL_PROTOCOL,
				  "asked for bytes %" PRIu64 "-%" PRIu64 ", got Content-Range '%.*s'",
				  q->range_off, want_end, (int)vlen, v);
	if (r->content_length >= 0 && (uint64_t)r->content_length != q->range_len)
		return write_fail(x, -EPROTO, ANOLE_HTTP_FAIL_PROTOCOL, "Content-Length %" PRId64 " for a %zu byte range",
				  r->content_length, q->range_len);
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	const struct anole_http_request *q = x->req;
	struct anole_http_response *r = x->resp;
	size_t len = size * nmemb;

	r->bytes_received += len;
	if (r->status < 200 || r->status > 299) {
		if (r->errbody.len < ERRBODY_MAX)
			strbuf_add(&r->errbody, data, len < ERRBODY_MAX - r->errbody.len ?
				   len : ERRBODY_MAX - r->errbody.len);
		return len;
	}
	if (x->buf) {
		size_t n;

		if (!x->checked && check_range_headers(x))
			return CURL_WRITEFUNC_ERROR;
		if (x->skip) {
			size_t s = x->skip < len ? (size_t)x->skip : len;

			x->skip -= s;
			data += s;
			len -= s;
		}
		n = q->range_len - x->filled;
		if (len > n && r->status == 206)
			return write_fail(x, -EPROTO, ANOLE_HTTP_FAIL_PROTOCOL, "response body longer than the %zu "
					  "bytes asked for", q->range_len);
		if (len < n)
			n = len;
		memcpy(x->buf + x->filled, data, n);
		x->filled += n;
		if (r->status == 200 && x->filled == q->range_len) {
			/* the rest of a full body is not wanted */
			x->done = true;
			return CURL_WRITEFUNC_ERROR;
		}
		return size * nmemb;
	}
	if (q->body_out) {
		size_t max = q->body_max ? q->body_max : DEFAULT_BODY_MAX;

		if (q->body_out->len + len > max)
			return write_fail(x, -EFBIG, ANOLE_HTTP_FAIL_TOO_BIG, "response body over %zu bytes", max);
		strbuf_add(q->body_out, data, len);
	}
	return len;
}

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	const struct anole_http_request *q = x->req;
	uint64_t left = q->body_len - x->body_pos;
	size_t n = size * nmemb;

	if (n > left)
		n = (size_t)left;
	if (!n)
		return 0;
	if (q->body_from_fd) {
		ssize_t got;

		do
			got = pread(q->body_fd, dst, n, (off_t)(q->body_off + x->body_pos));
		while (got < 0 && errno == EINTR);
		if (got <= 0) {
			x->rerr = got < 0 ? -errno : -ENODATA;
			return CURL_READFUNC_ABORT;
		}
		n = (size_t)got;
	} else {
		memcpy(dst, (const char *)q->body + x->body_pos, n);
	}
	x->body_pos += n;
	x->resp->bytes_sent += n;
	return n;
}

static int seek_cb(void *opaque, curl_off_t offset, int origin)
{
	struct xfer *x = opaque;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->resp->bytes_sent -= x->body_pos;
	x->body_pos = (uint64_t)offset;
	x->resp->bytes_sent += x->body_pos;
	return CURL_SEEKFUNC_OK;
}

/*
 * libcurl calls this while a transfer runs, and about once a second while
 * it waits for the peer: a stalled transfer ends within that second of
 * anole_http_cancel.
 */
static int progress_cb(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = opaque;

	return atomic_load(&x->h->cancelled) ? 1 : 0;
}

static bool method_is(const char *m, const char *want) { return !strcasecmp(m, want); }

static int set_method(CURL *c, const char *method, const struct anole_http_request *q,
		      bool send_body)
{
	curl_off_t len = (curl_off_t)(send_body ? q->body_len : 0);

	if (method_is(method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (method_is(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (method_is(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, len);
	} else if (method_is(method, "PUT")) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, len);
	} else if (method_is(method, "DELETE")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		for (const char *p = method; *p; p++)
			if (!isupper((unsigned char)*p))
				return -EINVAL;
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, len);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	return 0;
}

/*
 * A server that speaks plain HTTP answers a ClientHello with an HTTP
 * response, which the TLS library reads as a record of an unknown version.
 * The words are OpenSSL's (1.1 and 3.x) and GnuTLS's.
 */
static bool plain_http_peer(const char *what)
{
	static const char *const signs[] = {
		"wrong version number", "unknown protocol", "packet length too long",
		"http request", "An unexpected TLS packet was received",
	};

	for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++)
		if (strcasestr(what, signs[i]))
			return true;
	return false;
}

static int map_curl_error(CURLcode cc, struct anole_http_response *r, const char *errbuf)
{
	const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	int ret;

	snprintf(r->error, sizeof(r->error), "%s (curl error %d)", what, (int)cc);
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		r->failure = ANOLE_HTTP_FAIL_TIMEOUT;
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		r->failure = ANOLE_HTTP_FAIL_CONNECT;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		r->failure = ANOLE_HTTP_FAIL_RESOLVE;
		return -EHOSTUNREACH;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		r->failure = ANOLE_HTTP_FAIL_TRANSFER;
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
		r->failure = plain_http_peer(what) ? ANOLE_HTTP_FAIL_TLS_PLAIN_PEER :
			     ANOLE_HTTP_FAIL_TLS_HANDSHAKE;
		return -EPROTO;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		r->failure = ANOLE_HTTP_FAIL_PROTOCOL;
		return -EPROTO;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		r->failure = ANOLE_HTTP_FAIL_TLS_VERIFY;
		return -EACCES;
	case CURLE_OUT_OF_MEMORY:
		r->failure = ANOLE_HTTP_FAIL_NOMEM;
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		r->failure = ANOLE_HTTP_FAIL_REQUEST;
		return -EINVAL;
	default:
		ret = -EIO;
		r->failure = ANOLE_HTTP_FAIL_OTHER;
		return ret;
	}
}

/* One request to one URL, no redirects. */
static int perform_one(struct anole_http *h, CURL *c, struct xfer *x, const char *url,
		       const char *method, bool send_auth, bool send_body)
{
	const struct anole_http_request *q = x->req;
	struct anole_http_response *r = x->resp;
	struct curl_slist *hdrs = NULL, *tmp;
	char errbuf[CURL_ERROR_SIZE] = "";
	char line[128];
	struct strbuf auth = STRBUF_INIT;
	long stall_s = (long)((h->o.stall_ms + 999) / 1000);
	long timeout_ms = q->no_timeout ? 0 : (long)h->o.timeout_ms;
	long connect_ms = (long)h->o.connect_timeout_ms;
	CURLcode cc;
	int ret = 0;

	xfer_reset_response(x);
	if (atomic_load(&h->cancelled)) {
		snprintf(r->error, sizeof(r->error), "cancelled");
		r->failure = ANOLE_HTTP_FAIL_CANCELLED;
		return -ECANCELED;
	}
	if (q->deadline_ms) {
		uint64_t now = anole_http_now_ms();
		long left = q->deadline_ms > now ? (long)(q->deadline_ms - now) : 0;

		if (!left) {
			snprintf(r->error, sizeof(r->error), "the deadline passed before the request");
			r->failure = ANOLE_HTTP_FAIL_DEADLINE;
			return -ETIMEDOUT;
		}
		if (!timeout_ms || left < timeout_ms)
			timeout_ms = left;
		if (left < connect_ms)
			connect_ms = left;
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s ? stall_s : 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (h->verbose)
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->unix_socket)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->unix_socket);
	curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	if (send_body) {
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
	}
	ret = set_method(c, method, q, send_body);
	if (ret) {
		snprintf(r->error, sizeof(r->error), "bad HTTP method '%s'", method);
		r->failure = ANOLE_HTTP_FAIL_REQUEST;
		return ret;
	}

	for (size_t i = 0; i < q->nheaders; i++) {
		if (!strncasecmp(q->headers[i], "Authorization:", 14))
			continue;       /* only through req->authorization */
		if (!(tmp = curl_slist_append(hdrs, q->headers[i])))
			goto nomem;
		hdrs = tmp;
	}
	if (send_auth && q->authorization) {
		strbuf_addf(&auth, "Authorization: %s", q->authorization);
		if (!(tmp = curl_slist_append(hdrs, auth.buf)))
			goto nomem;
		hdrs = tmp;
	}
	if (x->buf) {
		snprintf(line, sizeof(line), "Range: bytes=%" PRIu64 "-%" PRIu64, q->range_off,
			 q->range_off + q->range_len - 1);
		if (!(tmp = curl_slist_append(hdrs, line)))
			goto nomem;
		hdrs = tmp;
	}
	if (!(tmp = curl_slist_append(hdrs, "Expect:")))  /* no 100-continue round trip */
		goto nomem;
	hdrs = tmp;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

	r->requests++;
	cc = curl_easy_perform(c);
	/* nothing in the handle may point at this frame once it is pooled */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	if (cc == CURLE_WRITE_ERROR && x->done)
		cc = CURLE_OK;          /* stopped on purpose: the rest was not wanted */
	if (cc == CURLE_WRITE_ERROR && x->werr) {
		ret = x->werr;
		r->failure = x->werr_failure;
		snprintf(r->error, sizeof(r->error), "%s", x->werr_msg);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK && !x->rerr && atomic_load(&h->cancelled)) {
		ret = -ECANCELED;
		r->failure = ANOLE_HTTP_FAIL_CANCELLED;
		snprintf(r->error, sizeof(r->error), "cancelled");
	} else if (cc == CURLE_ABORTED_BY_CALLBACK || (cc == CURLE_READ_ERROR && x->rerr)) {
		ret = x->rerr ? x->rerr : -EIO;
		r->failure = ANOLE_HTTP_FAIL_REQUEST;
		snprintf(r->error, sizeof(r->error), "cannot read the request body: %s",
			 strerror(-ret));
	} else if (cc != CURLE_OK) {
		ret = map_curl_error(cc, r, errbuf);
		/* the time left before the caller's deadline ran out, not the
		 * request's own limit: nothing to retry */
		if (cc == CURLE_OPERATION_TIMEDOUT && q->deadline_ms &&
		    anole_http_now_ms() >= q->deadline_ms)
			r->failure = ANOLE_HTTP_FAIL_DEADLINE;
	} else if (!r->status) {
		ret = -EPROTO;
		r->failure = ANOLE_HTTP_FAIL_PROTOCOL;
		snprintf(r->error, sizeof(r->error), "no HTTP status line in the response");
	} else if (x->buf && r->status >= 200 && r->status <= 299) {
		if (!x->checked && check_range_headers(x)) {
			ret = x->werr;
			r->failure = x->werr_failure;
			snprintf(r->error, sizeof(r->error), "%s", x->werr_msg);
		} else if (x->filled != q->range_len) {
			bool short_full = r->status == 200 && r->content_length < 0;

			ret = short_full ? -ERANGE : -ECONNRESET;
			r->failure = short_full ? ANOLE_HTTP_FAIL_RANGE : ANOLE_HTTP_FAIL_TRANSFER;
			snprintf(r->error, sizeof(r->error), "short body: %zu of %zu bytes",
				 x->filled, q->range_len);
		}
	}
	curl_slist_free_all(hdrs);
	strbuf_release(&auth);
	return ret;

nomem:
	curl_slist_free_all(hdrs);
	strbuf_release(&auth);
	snprintf(r->error, sizeof(r->error), "out of memory");
	r->failure = ANOLE_HTTP_FAIL_NOMEM;
	return -ENOMEM;
}

static bool is_redirect(long st)
{
	return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

static bool url_scheme_is(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return !strncasecmp(url, scheme, n) && url[n] == ':';
}

int anole_http_request(struct anole_http *h, const struct anole_http_request *req,
		       struct anole_http_response *resp)
{
	struct xfer x = { .h = h, .req = req, .resp = resp, .buf = req->range_buf };
	const char *method = req->method ? req->method : "GET";
	bool send_body = req->body_len > 0 || req->body || req->body_from_fd;
	bool send_auth = true;
	char *url;
	CURL *c;
	int ret;

	resp->failure = ANOLE_HTTP_FAIL_REQUEST;       /* until a request is made */
	resp->error[0] = '\0';
	free(resp->url);
	resp->url = NULL;
	if (!req->url) {
		snprintf(resp->error, sizeof(resp->error), "no URL");
		return -EINVAL;
	}
	if (req->range_buf && !req->range_len) {
		snprintf(resp->error, sizeof(resp->error), "empty range");
		return -EINVAL;
	}
	if (!url_scheme_is(req->url, "http") && !url_scheme_is(req->url, "https")) {
		snprintf(resp->error, sizeof(resp->error), "not an http(s) URL");
		return -EINVAL;
	}
	c = handle_get(h);
	if (!c) {
		snprintf(resp->error, sizeof(resp->error), "curl_easy_init failed");
		resp->failure = ANOLE_HTTP_FAIL_NOMEM;
		return -ENOMEM;
	}
	url = xstrdup(req->url);
	for (unsigned hop = 0;; hop++) {
		char *next = NULL;

		ret = perform_one(h, c, &x, url, method, send_auth, send_body);
		if (ret || !req->follow_redirects || !is_redirect(resp->status))
			break;
		if (hop >= h->o.max_redirects) {
			snprintf(resp->error, sizeof(resp->error), "more than %u redirects",
				 h->o.max_redirects);
			ret = -ELOOP;
			break;
		}
		if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next) != CURLE_OK || !next)
			break;  /* a 3xx without Location: the caller sees it */
		if (!url_scheme_is(next, "http") && !url_scheme_is(next, "https")) {
			snprintf(resp->error, sizeof(resp->error), "redirect to a non-HTTP URL");
			ret = -EPROTO;
			break;
		}
		if (url_scheme_is(url, "https") && !url_scheme_is(next, "https")) {
			snprintf(resp->error, sizeof(resp->error),
				 "refusing a redirect from https to plain http");
			ret = -EPROTO;
			break;
		}
		if (!method_is(method, "GET") && !method_is(method, "HEAD")) {
			if (resp->status == 303 ||
			    ((resp->status == 301 || resp->status == 302) &&
			     method_is(method, "POST"))) {
				method = "GET";
				send_body = false;
			} else if (resp->status != 307 && resp->status != 308) {
				break;
			}
		}
		if (send_auth && !anole_http_same_origin(url, next))
			send_auth = false;      /* never hand credentials to another host */
		free(url);
		url = xstrdup(next);
	}
	if (ret && resp->failure == ANOLE_HTTP_OK)
		resp->failure = ANOLE_HTTP_FAIL_REQUEST;   /* a redirect refused */
	resp->url = url;
	handle_put(h, c);
	return ret;
}

/* ------------------------------------------------------------ URLs */

char *anole_http_resolve_url(const char *base, const char *ref)
{
	CURLU *u = curl_url();
	char *s = NULL, *res = NULL;

	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		res = xstrdup(s);
	curl_free(s);
	curl_url_cleanup(u);
	return res;
}

static bool url_parts(const char *url, char **scheme, char **host, char **port)
{
	CURLU *u = curl_url();
	bool ok;

	*scheme = *host = *port = NULL;
	if (!u)
		return false;
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK;
	curl_url_cleanup(u);
	return ok;
}

bool anole_http_same_origin(const char *a, const char *b)
{
	char *s1, *h1, *p1, *s2, *h2, *p2;
	bool ok1 = url_parts(a, &s1, &h1, &p1), ok2 = url_parts(b, &s2, &h2, &p2);
	bool same = ok1 && ok2 && !strcasecmp(s1, s2) && !strcasecmp(h1, h2) && !strcmp(p1, p2);

	curl_free(s1);
	curl_free(h1);
	curl_free(p1);
	curl_free(s2);
	curl_free(h2);
	curl_free(p2);
	return same;
}

char *anole_http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct strbuf sb = STRBUF_INIT;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			strbuf_addch(&sb, (char)ch);
		} else {
			strbuf_addch(&sb, '%');
			strbuf_addch(&sb, hex[ch >> 4]);
			strbuf_addch(&sb, hex[ch & 15]);
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* ------------------------------------------------------------ base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *anole_base64_encode(const void *data, size_t len)
{
	const uint8_t *p = data;
	struct strbuf sb = STRBUF_INIT;

	strbuf_grow(&sb, (len + 2) / 3 * 4);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (n > 2)
			v |= p[i + 2];
		strbuf_addch(&sb, b64[(v >> 18) & 63]);
		strbuf_addch(&sb, b64[(v >> 12) & 63]);
		strbuf_addch(&sb, n > 1 ? b64[(v >> 6) & 63] : '=');
		strbuf_addch(&sb, n > 2 ? b64[v & 63] : '=');
	}
	return strbuf_detach(&sb, NULL);
}

long anole_base64_decode(const char *s, uint8_t **out)
{
	size_t len = strlen(s), n = 0;
	uint8_t *res;
	uint32_t acc = 0;
	unsigned bits = 0;

	while (len && s[len - 1] == '=')
		len--;
	res = xmalloc(len * 3 / 4 + 1);
	for (size_t i = 0; i < len; i++) {
		const char *p = s[i] ? strchr(b64, s[i]) : NULL;

		if (!p) {
			free(res);
			*out = NULL;
			return -EINVAL;
		}
		acc = (acc << 6) | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			res[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6) {        /* a lone trailing character */
		free(res);
		*out = NULL;
		return -EINVAL;
	}
	res[n] = '\0';
	*out = res;
	return (long)n;
}
