/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one HTTP server for every endpoint anole serves (the monitor's
 * /metrics, the lazy daemon's metrics and control socket), over
 * libmicrohttpd: it parses HTTP, keeps connections, enforces timeouts and
 * header limits; this layer adds a router, bounded request bodies, an
 * authentication hook, response helpers and one listen-address syntax.
 *
 * Handlers run on libmicrohttpd's internal polling thread, one request at
 * a time per server, unless opts.threads asks for a pool: then as many run
 * at once, and they take their own locks for data another thread changes.
 * A handler that has nothing to answer yet (a long poll) parks the request
 * (anole_httpd_park): its connection is suspended, no thread waits for it,
 * and the handler runs again when woken or when the time runs out.
 */
#ifndef ANOLE_HTTPD_H
#define ANOLE_HTTPD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "anole/strbuf.h"

struct anole_httpd;

/* Why a handler is called: the first time, or again for a parked request. */
enum anole_httpd_call {
	ANOLE_HTTPD_CALL_FIRST = 0,
	ANOLE_HTTPD_CALL_WOKEN,      /* anole_httpd_wake() named its key */
	ANOLE_HTTPD_CALL_TIMED_OUT,  /* its seconds ran out */
	ANOLE_HTTPD_CALL_SUPERSEDED, /* a newer request parked with the same exclusive key */
	ANOLE_HTTPD_CALL_STOPPING,   /* the server stops: answer now */
};

struct anole_httpd_request {
	const char *method;          /* as sent: "GET", "HEAD", "POST", ... */
	const char *path;            /* without the query */
	const char *authorization;   /* the Authorization header, NULL if none */
	const char *body;            /* the request body, NUL-terminated; "" if none */
	size_t body_len;
	/* Peer credentials on a unix socket (SO_PEERCRED); peer_uid is
	 * (uid_t)-1 on TCP. */
	uid_t peer_uid;
	pid_t peer_pid;
	char peer[64];               /* "ADDR:PORT", "[ADDR]:PORT" or "unix:pid=N,uid=N" */
	enum anole_httpd_call call;
	double parked_s;             /* seconds since the request was first parked (0: never) */
	void *conn;                  /* internal */
	void *ctx;                   /* internal */
};

/* Query parameter KEY of the request, NULL if absent (valid during the call). */
const char *anole_httpd_query(const struct anole_httpd_request *r, const char *key);
/* Request header NAME (case-insensitive), NULL if absent (valid during the call). */
const char *anole_httpd_header(const struct anole_httpd_request *r, const char *name);
/* Cookie NAME of the request, NULL if absent (valid during the call). */
const char *anole_httpd_cookie(const struct anole_httpd_request *r, const char *name);

struct anole_httpd_response {
	unsigned status;             /* default 200 */
	const char *content_type;    /* default "text/plain; charset=utf-8" */
	struct strbuf body;
	struct strbuf headers;       /* extra "Name: value\n" lines (anole_httpd_add_header) */
};

/* Add a response header (Set-Cookie, Cache-Control, ...): name and value
 * must hold no CR or LF (refused otherwise: -EINVAL, nothing added). */
int anole_httpd_add_header(struct anole_httpd_response *res, const char *name,
			   const char *value);

/* Helpers a handler uses to fill its response. */
void anole_httpd_text(struct anole_httpd_response *res, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* JSON text already formatted (e.g. by jansson or strbuf_add_json_string). */
void anole_httpd_json(struct anole_httpd_response *res, unsigned status, const char *json,
		      size_t len);
/* A jansson value, serialised compactly (the reference is not taken). */
void anole_httpd_json_value(struct anole_httpd_response *res, unsigned status,
			    const json_t *v);
/* {"error":"..."} with that status. */
void anole_httpd_json_error(struct anole_httpd_response *res, unsigned status,
			    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Parse the request body as one JSON object (its size is already bounded by
 * max_body; jansson bounds the nesting). 0 with *out set, or -EINVAL with
 * a 400 naming what is wrong already put in res.
 */
int anole_httpd_body_json(const struct anole_httpd_request *r, struct anole_httpd_response *res,
			  json_t **out);

typedef void (*anole_httpd_handler)(const struct anole_httpd_request *r,
				    struct anole_httpd_response *res, void *arg);

enum {
	/* the route passes the authorize hook first (401/403 otherwise) */
	ANOLE_HTTPD_AUTH = 1 << 0,
	/* the route changes state: each request is logged (who, what, status) */
	ANOLE_HTTPD_LOGGED = 1 << 1,
	/* path is a prefix: the route answers every path that begins with it
	 * (exact routes and longer prefixes are preferred) */
	ANOLE_HTTPD_PREFIX = 1 << 2,
};

struct anole_httpd_route {
	const char *method;          /* "GET" also answers HEAD */
	const char *path;            /* exact match */
	anole_httpd_handler handler;
	void *arg;
	unsigned flags;              /* ANOLE_HTTPD_AUTH, ANOLE_HTTPD_LOGGED */
};

/*
 * The authentication hook of ANOLE_HTTPD_AUTH routes: return 0 to let the
 * request through, 401 (no or wrong credentials: the response asks for a
 * Bearer token) or 403 (known but not allowed).
 */
typedef unsigned (*anole_httpd_authorize)(const struct anole_httpd_request *r, void *arg);

struct anole_httpd_opts {
	const char *name;            /* for log lines: "monitor", "lazy metrics" */
	const char *option;          /* the option that gave `listen`, for errors: "--listen" */
	/* Where to listen:
	 *   "HOST:PORT" (IPv4), "[ADDR]:PORT" (IPv6), ":PORT" (every address,
	 *   IPv6 and IPv4), "unix:PATH" (a unix socket, created anew).
	 * PORT 0 picks a free port: anole_httpd_port() tells which. */
	const char *listen;
	unsigned unix_mode;          /* unix socket permissions; default 0600 */
	const struct anole_httpd_route *routes;
	size_t nroutes;
	anole_httpd_authorize authorize; /* NULL: AUTH routes are refused (403) */
	void *auth_arg;
	size_t max_body;             /* request body limit; default 64 KiB (413 above) */
	size_t max_header;           /* request line + headers; default 8 KiB (431 above) */
	unsigned max_clients;        /* concurrent connections; default 64 */
	unsigned timeout_s;          /* idle connection timeout; default 10 */
	/* handler threads (libmicrohttpd's thread pool); default 1: one
	 * handler at a time. More: a slow handler (a password hash) does not
	 * hold the others, and handlers must lock what they share. */
	unsigned threads;
	/* the server's own answers (404, 405, 413, 401, 403) as {"error":"..."}
	 * rather than text: for a JSON API */
	bool json_errors;
	/* HTTPS: the certificate chain and private key, PEM text (both or
	 * neither); libmicrohttpd's TLS (GnuTLS) */
	const char *tls_cert_pem;
	const char *tls_key_pem;
};

/*
 * Park the request being handled instead of answering it (the handler
 * returns with res untouched): the connection is suspended, holding no
 * thread, until anole_httpd_wake(h, key) or `seconds` pass; then the
 * handler runs again for it with r->call saying why (it may park again).
 * With ANOLE_HTTPD_PARK_EXCLUSIVE one request per key waits: an older one
 * parked with the key is called again at once with CALL_SUPERSEDED.
 *
 * No wake is lost: a wake that comes between the park and the handler's
 * return calls the handler again at once. So a handler that checks for
 * work under its own lock and parks before releasing it, while the side
 * that adds work wakes after adding it under that lock, never sleeps
 * past the work. -ECANCELED when the server is stopping (answer now).
 */
enum { ANOLE_HTTPD_PARK_EXCLUSIVE = 1 << 0 };
int anole_httpd_park(const struct anole_httpd_request *r, const char *key, double seconds,
		     unsigned flags);
/* A handler's own state for the request, kept across its calls (a parked
 * request is handled again): set it once; free_fn(state) when the request
 * ends (answered, or the client gone). */
void anole_httpd_set_state(const struct anole_httpd_request *r, void *state,
			   void (*free_fn)(void *));
void *anole_httpd_state(const struct anole_httpd_request *r);
/* Whether the handler parked the request in this call (a wrapper around
 * handlers answers nothing, logs nothing then). */
bool anole_httpd_is_parked(const struct anole_httpd_request *r);
/* Call again every request parked with key (any thread). */
void anole_httpd_wake(struct anole_httpd *h, const char *key);
/* How many requests are parked now. */
size_t anole_httpd_parked(struct anole_httpd *h);

/* Parse and bind the address, then serve on a thread of its own. */
int anole_httpd_start(struct anole_httpd **out, const struct anole_httpd_opts *o);
/* Stop accepting, finish the request in progress, close all (NULL: no-op). */
void anole_httpd_stop(struct anole_httpd *h);
/* The bound TCP port (after port 0), 0 for a unix socket. */
uint16_t anole_httpd_port(const struct anole_httpd *h);

/* 0 if r carries "Authorization: Bearer TOKEN" (compared in constant
 * time), else 401. */
unsigned anole_httpd_check_bearer(const struct anole_httpd_request *r, const char *token);
/* Read a bearer token from a file (one line, surrounding space dropped;
 * refused when empty or readable by group or others). */
int anole_httpd_read_token(const char *path, char **token);

struct anole_httpd_stats {
	uint64_t requests;           /* answered, all statuses */
	uint64_t ok;                 /* 2xx */
	uint64_t not_found;          /* 404 */
	uint64_t client_errors;      /* other 4xx (bad request, auth, limits) */
	uint64_t server_errors;      /* 5xx */
};
void anole_httpd_get_stats(const struct anole_httpd *h, struct anole_httpd_stats *st);

#endif
