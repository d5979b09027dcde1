/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A thin HTTP client over libcurl, for the blob store.
 *
 * One `struct anole_http` holds a pool of curl easy handles (each keeps its
 * own live connections, so back-to-back range requests from one thread reuse
 * a connection) and a curl share for the DNS and TLS session caches. Any
 * number of threads may issue requests on one client at the same time: each
 * request takes a handle from the pool (or makes one) and gives it back.
 *
 * Proxies come from the environment (http_proxy, https_proxy, no_proxy), as
 * libcurl reads them. TLS peers are always verified, against ca_file,
 * $SSL_CERT_FILE or the system's CA store. Redirects are followed here, not by libcurl, so that
 * the Authorization header is dropped whenever a redirect leaves the
 * original scheme://host:port, and never downgraded from https to http.
 *
 * libcurl runs with CURLOPT_NOSIGNAL: a program using this should ignore
 * SIGPIPE (a peer closing a TLS connection may otherwise kill it).
 */
#ifndef ANOLE_HTTP_H
#define ANOLE_HTTP_H
#include "anole/strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct anole_http;

struct anole_http_opts {
	unsigned connect_timeout_ms; /* default 10000 (never above timeout_ms) */
	unsigned timeout_ms;         /* whole request, redirect hops each; default 30000 */
	unsigned stall_ms;           /* abort when under 1 byte/s this long; default
	                                10000, rounded up to whole seconds */
	unsigned max_redirects;      /* default 10 */
	unsigned max_idle_handles;   /* pooled easy handles kept; default 16 */
	const char *user_agent;      /* default "anole/<version>" */
	const char *ca_file;         /* CA certificates (PEM) to verify servers with;
	                                NULL: $SSL_CERT_FILE, else the system's */
	const char *unix_socket;     /* connect to this unix socket whatever the URL's
	                                host (a local daemon's control socket) */
};

struct anole_http_request {
	const char *method;          /* "GET" (default), "HEAD", "POST", "PUT", "PATCH", ... */
	const char *url;
	const char *const *headers;  /* extra "Name: value" lines */
	size_t nheaders;
	/* Authorization header value ("Bearer x", "Basic y"); sent only to the
	 * scheme://host:port of url, never across a redirect to another one. */
	const char *authorization;
	bool follow_redirects;
	bool no_timeout;             /* no total time limit (uploads of any size):
	                                only the connect and stall limits apply */
	uint64_t deadline_ms;        /* when set (anole_http_now_ms() clock): the
	                                request ends by then, whatever its limits
	                                (ANOLE_HTTP_FAIL_DEADLINE, -ETIMEDOUT) */

	/* Request body (POST/PUT/PATCH): from memory, or body_len bytes of
	 * body_fd from body_off when body_from_fd. */
	const void *body;
	uint64_t body_len;
	bool body_from_fd;
	int body_fd;
	uint64_t body_off;

	/* Range GET into a caller buffer: when range_buf is set, the request
	 * carries "Range: bytes=range_off-(range_off+range_len-1)". A 206
	 * must carry a Content-Range for exactly that range and exactly
	 * range_len bytes; a 200 (server ignoring Range) is accepted by
	 * discarding the bytes before range_off. range_len must be > 0. */
	void *range_buf;
	uint64_t range_off;
	size_t range_len;
	/* When set, a 200 is refused (ANOLE_HTTP_FAIL_RANGE_IGNORED, -EAGAIN)
	 * if more than this many bytes precede the range: a cache that has not
	 * got the blob yet sends all of it from the first byte. */
	uint64_t max_skip;

	/* Otherwise the body of a 2xx response goes to body_out when set (at
	 * most body_max bytes, default 1 MiB; more fails the request), else
	 * it is discarded. */
	struct strbuf *body_out;
	size_t body_max;
};

/*
 * Why a request came to no usable response (resp->failure). This layer only
 * says what happened; whether trying again may help is the caller's
 * judgement (the blob store's blobstore_retryable()).
 */
enum anole_http_failure {
	ANOLE_HTTP_OK,                 /* a response arrived: see status */
	ANOLE_HTTP_FAIL_RESOLVE,       /* the host or proxy name did not resolve */
	ANOLE_HTTP_FAIL_CONNECT,       /* no connection */
	ANOLE_HTTP_FAIL_TIMEOUT,       /* the total limit, or a stall */
	ANOLE_HTTP_FAIL_TRANSFER,      /* the connection broke: reset, short or no body */
	ANOLE_HTTP_FAIL_PROTOCOL,      /* a malformed or unexpected answer: no status
	                                  line, a wrong Content-Range, a longer body */
	ANOLE_HTTP_FAIL_TLS_HANDSHAKE, /* TLS could not be set up */
	ANOLE_HTTP_FAIL_TLS_PLAIN_PEER,/* the server answered the TLS handshake in
	                                  plain HTTP (OpenSSL: "wrong version number") */
	ANOLE_HTTP_FAIL_TLS_VERIFY,    /* the certificate did not verify, or the CA
	                                  file is unusable */
	ANOLE_HTTP_FAIL_RANGE,         /* the range ends beyond the end of the body */
	ANOLE_HTTP_FAIL_RANGE_IGNORED, /* a whole body (200) where max_skip forbids it */
	ANOLE_HTTP_FAIL_TOO_BIG,       /* a body over body_max */
	ANOLE_HTTP_FAIL_REQUEST,       /* a bad URL, method or redirect, or the request
	                                  body could not be read */
	ANOLE_HTTP_FAIL_NOMEM,
	ANOLE_HTTP_FAIL_DEADLINE,      /* the request's deadline_ms came */
	ANOLE_HTTP_FAIL_CANCELLED,     /* anole_http_cancel */
	ANOLE_HTTP_FAIL_OTHER,         /* any other libcurl failure */
};

struct anole_http_response {
	long status;                 /* of the final response; 0 if none */
	char reason[64];             /* its reason phrase, "" for HTTP/2 */
	struct strbuf headers;       /* its header lines, "Name: value\n" each */
	struct strbuf errbody;       /* up to 4 KiB of a non-2xx response body */
	char *url;                   /* the URL that answered (after redirects) */
	int64_t content_length;      /* -1 if not given */
	uint64_t bytes_received;     /* body bytes of the final response */
	uint64_t bytes_sent;         /* request body bytes */
	unsigned requests;           /* requests made (1 + redirects followed) */
	enum anole_http_failure failure; /* ANOLE_HTTP_OK, or why the request failed */
	char error[256];             /* why the request failed, "" on success */
};

/* Milliseconds of CLOCK_MONOTONIC: the clock of deadline_ms. */
uint64_t anole_http_now_ms(void);

/* Stop every transfer of h, running or to come, within about a second
 * (-ECANCELED, ANOLE_HTTP_FAIL_CANCELLED): a daemon told to stop does not
 * wait for a stalled server. There is no going back. */
void anole_http_cancel(struct anole_http *h);
bool anole_http_cancelled(const struct anole_http *h);

/* Start libcurl once per process (pthread_once); anole_http_new calls it. */
int anole_http_global_init(void);

int anole_http_new(struct anole_http **out, const struct anole_http_opts *opts);
void anole_http_free(struct anole_http *h);

void anole_http_response_init(struct anole_http_response *resp);
void anole_http_response_release(struct anole_http_response *resp);

/*
 * Make one request (following redirects when asked). Returns 0 when a
 * response arrived, whatever its status (see resp->status); for a range
 * request answered 2xx, 0 also means range_buf holds exactly range_len
 * bytes. Otherwise a negative errno with resp->error and resp->failure set:
 *   -ETIMEDOUT      total timeout or stall
 *   -ECONNREFUSED   could not connect; -EHOSTUNREACH: could not resolve
 *   -ECONNRESET     connection closed early, short or missing body
 *   -EPROTO         malformed response, wrong Content-Range, over-long body
 *   -EFBIG          body over body_max
 *   -EINVAL         bad URL or request; -EACCES: TLS verification failed
 *   -EPROTO         also: the TLS handshake failed (a plain-HTTP server too)
 *   -ECANCELED      anole_http_cancel was called
 */
int anole_http_request(struct anole_http *h, const struct anole_http_request *req,
		       struct anole_http_response *resp);

/* The value of the idx-th header `name` (case-insensitive) of the final
 * response, trimmed, as a new string; NULL if absent. */
char *anole_http_header(const struct anole_http_response *resp, const char *name,
			unsigned idx);

/* Resolve ref (absolute or relative URL) against base; NULL if invalid. */
char *anole_http_resolve_url(const char *base, const char *ref);
/* Whether two absolute URLs have the same scheme, host and port. */
bool anole_http_same_origin(const char *a, const char *b);
/* Percent-encode s for a query string or path segment. */
char *anole_http_escape(const char *s);

/* Base64 of len bytes (standard alphabet, padded). */
char *anole_base64_encode(const void *data, size_t len);
/* Decode standard base64 (padding optional, whitespace not allowed);
 * returns the length, or -EINVAL. *out is NUL-terminated. */
long anole_base64_decode(const char *s, uint8_t **out);
#endif
