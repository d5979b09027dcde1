// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP server: libmicrohttpd does the protocol (parsing, keep-alive,
 * timeouts, header limits, HEAD); this file binds the listen socket itself
 * (so one address syntax covers IPv4, IPv6, dual stack and unix sockets,
 * and port 0 can be reported back), routes requests, bounds their bodies
 * and runs the authentication hook.
 *
 * Parked requests (long polls) are libmicrohttpd's suspended connections:
 * a list of them under park_lock, and one "parker" thread per server
 * (started by the first park) that resumes those whose time ran out.
 * libmicrohttpd calls the handler again for a resumed connection; the
 * request's context tells it why.
 */
#include "anole/httpd.h"

#include "anole/error.h"
#include "anole/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

struct anole_httpd {
	struct MHD_Daemon *mhd;
	char *name;
	char *unix_path;             /* the socket file we created, removed on stop */
	uint16_t port;
	struct anole_httpd_route *routes;
	size_t nroutes;
	anole_httpd_authorize authorize;
	void *auth_arg;
	size_t max_body;
	bool json_errors;
	_Atomic uint64_t requests, ok, not_found, client_errors, server_errors;
	/* parked requests */
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;    /* the parker waits on it (CLOCK_MONOTONIC) */
	struct request_ctx *parked;  /* a list, newest first */
	size_t nparked;
	size_t stop_answers;         /* woken by the stop, not yet answered */
	bool stopping, parker_started;
	pthread_t parker;
};

enum park_state {
	PARK_NONE,                   /* not parked */
	PARK_PENDING,                /* parked by the handler, not yet suspended */
	PARK_SUSPENDED,              /* suspended: libmicrohttpd leaves it alone */
	PARK_WOKEN,                  /* to be handled again (ctx->why) */
};

/* What one request has gathered across libmicrohttpd's calls. */
struct request_ctx {
	struct strbuf body;
	bool too_big;
	struct anole_httpd *h;
	struct MHD_Connection *conn;
	void *state;                 /* the handler's (anole_httpd_set_state) */
	void (*state_free)(void *);
	/* set by anole_httpd_park(), read and cleared by on_request(): both on
	 * the connection's thread, so no lock */
	bool handler_parked;
	/* under h->park_lock */
	enum park_state park;
	enum anole_httpd_call why;
	bool listed;                 /* on h->parked */
	bool exclusive;
	bool stop_answer;            /* counted in h->stop_answers */
	char *key;
	double deadline;             /* monotonic seconds */
	double first_parked;
	struct request_ctx *next, **pprev;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --------------------------------------------------------------- responses */

static void set_body(struct anole_httpd_response *res, unsigned status, const char *type)
{
	res->status = status;
	res->content_type = type;
	strbuf_reset(&res->body);
}

void anole_httpd_text(struct anole_httpd_response *res, unsigned status, const char *fmt, ...)
{
	va_list ap;

	set_body(res, status, "text/plain; charset=utf-8");
	va_start(ap, fmt);
	strbuf_vaddf(&res->body, fmt, ap);
	va_end(ap);
	if (!res->body.len || res->body.buf[res->body.len - 1] != '\n')
		strbuf_addch(&res->body, '\n');
}

void anole_httpd_json(struct anole_httpd_response *res, unsigned status, const char *json,
		      size_t len)
{
	set_body(res, status, "application/json");
	strbuf_add(&res->body, json, len);
	if (!len || json[len - 1] != '\n')
		strbuf_addch(&res->body, '\n');
}

void anole_httpd_json_error(struct anole_httpd_response *res, unsigned status,
			    const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	set_body(res, status, "application/json");
	strbuf_addstr(&res->body, "{\"error\":");
	strbuf_add_json_string(&res->body, msg.buf ? msg.buf : "", msg.len);
	strbuf_addstr(&res->body, "}\n");
	strbuf_release(&msg);
}

void anole_httpd_json_value(struct anole_httpd_response *res, unsigned status,
			    const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);

	anole_httpd_json(res, status, text ? text : "null", text ? strlen(text) : 4);
	free(text);
}

int anole_httpd_body_json(const struct anole_httpd_request *r, struct anole_httpd_response *res,
			  json_t **out)
{
	json_error_t err;

	*out = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
	if (!*out) {
		anole_httpd_json_error(res, 400, "the request body is not JSON: %s (byte %d)",
				       err.text, err.position);
		return -EINVAL;
	}
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		anole_httpd_json_error(res, 400, "the request body must be a JSON object");
		return -EINVAL;
	}
	return 0;
}

int anole_httpd_add_header(struct anole_httpd_response *res, const char *name,
			   const char *value)
{
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return -EINVAL;
	strbuf_addf(&res->headers, "%s: %s\n", name, value);
	return 0;
}

/* The server's own error answers: text, or JSON with json_errors. */
static void server_error(struct anole_httpd *h, struct anole_httpd_response *res,
			 unsigned status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void server_error(struct anole_httpd *h, struct anole_httpd_response *res,
			 unsigned status, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (h->json_errors)
		anole_httpd_json_error(res, status, "%s", msg.buf ? msg.buf : "");
	else
		anole_httpd_text(res, status, "%s", msg.buf ? msg.buf : "");
	strbuf_release(&msg);
}

/* ------------------------------------------------------------ addresses */

static int bad_address(const struct anole_httpd_opts *o)
{
	return anole_error_code(EINVAL, "%s takes HOST:PORT (IPv4), [ADDR]:PORT (IPv6), :PORT "
				"(every address) or unix:PATH, not '%s'",
				o->option ? o->option : "a listen address", o->listen);
}

/* Parse o->listen into ss; *v6any for ":PORT" (dual stack). */
static int parse_listen(const struct anole_httpd_opts *o, struct sockaddr_storage *ss,
			socklen_t *len, bool *v6any)
{
	const char *addr = o->listen, *colon = strrchr(addr, ':');
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t hlen;
	long port;

	memset(ss, 0, sizeof(*ss));
	*v6any = false;
	if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un *a = (struct sockaddr_un *)ss;
		size_t plen = strlen(addr + 5);

		if (!plen || plen >= sizeof(a->sun_path))
			return anole_error_code(ENAMETOOLONG, "%s: unix socket path '%s' is empty "
						"or longer than %zu bytes",
						o->option ? o->option : o->name, addr + 5,
						sizeof(a->sun_path) - 1);
		a->sun_family = AF_UNIX;
		memcpy(a->sun_path, addr + 5, plen + 1);
		*len = sizeof(*a);
		return 0;
	}
	if (!colon)
		return bad_address(o);
	hlen = (size_t)(colon - addr);
	if (hlen >= sizeof(host))
		return bad_address(o);
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		return bad_address(o);
	if (!hlen || (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		if (!hlen) {
			a->sin6_addr = in6addr_any;
			*v6any = true;
			return 0;
		}
		host[hlen - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : bad_address(o);
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*len = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : bad_address(o);
}

static int bind_listen(struct anole_httpd *h, const struct anole_httpd_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	bool v6any;
	int fd, one = 1, zero = 0, ret = parse_listen(o, &ss, &slen, &v6any);

	if (ret)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return anole_error(errno, "%s: cannot create a socket for %s", h->name, o->listen);
	if (ss.ss_family == AF_UNIX) {
		const char *path = ((struct sockaddr_un *)&ss)->sun_path;
		struct stat st;

		/* a socket left by a previous run; anything else is not ours to remove */
		if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
			unlink(path);
	} else {
		/* a restart must not wait for the old connections' TIME_WAIT */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* ":PORT" serves IPv4 too, whatever net.ipv6.bindv6only says */
		if (v6any)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0) {
		ret = anole_error(errno, "%s: cannot listen on %s", h->name, o->listen);
		close(fd);
		return ret;
	}
	if (ss.ss_family == AF_UNIX) {
		h->unix_path = xstrdup(((struct sockaddr_un *)&ss)->sun_path);
		if (chmod(h->unix_path, o->unix_mode ? o->unix_mode : 0600) < 0) {
			ret = anole_error(errno, "%s: cannot set the mode of %s", h->name,
					  h->unix_path);
			close(fd);
			return ret;
		}
	}
	if (listen(fd, 64) < 0) {
		ret = anole_error(errno, "%s: cannot listen on %s", h->name, o->listen);
		close(fd);
		return ret;
	}
	if (ss.ss_family != AF_UNIX) {
		slen = sizeof(ss);
		if (!getsockname(fd, (struct sockaddr *)&ss, &slen))
			h->port = ntohs(ss.ss_family == AF_INET6 ?
					((struct sockaddr_in6 *)&ss)->sin6_port :
					((struct sockaddr_in *)&ss)->sin_port);
	}
	return fd;
}

/* -------------------------------------------------------------- requests */

static void describe_peer(struct MHD_Connection *conn, struct anole_httpd_request *r)
{
	const union MHD_ConnectionInfo *ci;
	char ip[INET6_ADDRSTRLEN];

	r->peer_uid = (uid_t)-1;
	r->peer_pid = 0;
	snprintf(r->peer, sizeof(r->peer), "?");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			snprintf(r->peer, sizeof(r->peer), "%s:%u", ip, ntohs(a->sin_port));
			return;
		}
		if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			snprintf(r->peer, sizeof(r->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
			return;
		}
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (!getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen)) {
			r->peer_uid = cred.uid;
			r->peer_pid = cred.pid;
			snprintf(r->peer, sizeof(r->peer), "unix:pid=%ld,uid=%ld", (long)cred.pid,
				 (long)cred.uid);
		}
	}
}

const char *anole_httpd_query(const struct anole_httpd_request *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *anole_httpd_header(const struct anole_httpd_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *anole_httpd_cookie(const struct anole_httpd_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

static bool method_matches(const char *route, const char *method)
{
	return !strcmp(route, method) || (!strcmp(route, "GET") && !strcmp(method, "HEAD"));
}

static void count(struct anole_httpd *h, unsigned status)
{
	atomic_fetch_add(&h->requests, 1);
	if (status >= 200 && status < 300)
		atomic_fetch_add(&h->ok, 1);
	else if (status == 404)
		atomic_fetch_add(&h->not_found, 1);
	else if (status >= 400 && status < 500)
		atomic_fetch_add(&h->client_errors, 1);
	else if (status >= 500)
		atomic_fetch_add(&h->server_errors, 1);
}

static enum MHD_Result send_response(struct anole_httpd *h, struct MHD_Connection *conn,
				     struct anole_httpd_response *res, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	size_t len;
	char *buf;

	if (!res->status)
		res->status = 200;
	buf = strbuf_detach(&res->body, &len);
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				res->content_type ? res->content_type : "text/plain; charset=utf-8");
	/* "Name: value\n" lines, checked by anole_httpd_add_header() */
	for (char *line = res->headers.buf, *nl; line && *line; line = nl + 1) {
		char *colon = strchr(line, ':');

		nl = strchr(line, '\n');
		if (!nl || !colon || colon > nl)
			break;
		*colon = '\0';
		*nl = '\0';
		MHD_add_response_header(resp, line, colon + 2);
	}
	if (res->status == 405 && allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (res->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"anole\"");
	ok = MHD_queue_response(conn, res->status, resp);
	MHD_destroy_response(resp);
	count(h, res->status);
	return ok;
}

/* Route a complete request; fills res. */
static void dispatch(struct anole_httpd *h, struct anole_httpd_request *r,
		     struct anole_httpd_response *res, bool too_big, struct strbuf *allow)
{
	const struct anole_httpd_route *route = NULL;
	bool path_known = false;
	/* the routes that answer the path: those of the exact path if any,
	 * else those of the longest prefix route that matches */
	const char *match = NULL;
	unsigned kind = 0; /* the flag those routes have: 0 or ANOLE_HTTPD_PREFIX */

	for (size_t i = 0; !match && i < h->nroutes; i++)
		if (!(h->routes[i].flags & ANOLE_HTTPD_PREFIX) && !strcmp(h->routes[i].path, r->path))
			match = r->path;
	if (!match) {
		kind = ANOLE_HTTPD_PREFIX;
		for (size_t i = 0; i < h->nroutes; i++) {
			const char *p = h->routes[i].path;

			if ((h->routes[i].flags & ANOLE_HTTPD_PREFIX) &&
			    !strncmp(p, r->path, strlen(p)) && (!match || strlen(p) > strlen(match)))
				match = p;
		}
	}
	for (size_t i = 0; match && i < h->nroutes; i++) {
		if ((h->routes[i].flags & ANOLE_HTTPD_PREFIX) != kind || strcmp(h->routes[i].path, match))
			continue;
		path_known = true;
		strbuf_addf(allow, "%s%s", allow->len ? ", " : "", h->routes[i].method);
		if (!strcmp(h->routes[i].method, "GET"))
			strbuf_addstr(allow, ", HEAD");
		if (!route && method_matches(h->routes[i].method, r->method))
			route = &h->routes[i];
	}
	if (!path_known) {
		server_error(h, res, 404, "not found: %s", r->path);
	} else if (!route) {
		server_error(h, res, 405, "%s is not allowed on %s (allowed: %s)", r->method,
				 r->path, allow->buf);
	} else if (too_big) {
		server_error(h, res, 413, "the request body is over %zu bytes", h->max_body);
	} else {
		unsigned deny = 0;

		if (route->flags & ANOLE_HTTPD_AUTH)
			deny = h->authorize ? h->authorize(r, h->auth_arg) : 403;
		if (deny == 401)
			server_error(h, res, 401, "authentication required: send "
					 "\"Authorization: Bearer TOKEN\"");
		else if (deny)
			server_error(h, res, 403, "%s is not allowed to %s %s", r->peer,
					 r->method, r->path);
		else
			route->handler(r, res, route->arg);
		if (((struct request_ctx *)r->ctx)->handler_parked)
			return; /* parked: answered later */
		if (!res->status)
			res->status = 200;
		if (route->flags & ANOLE_HTTPD_LOGGED)
			anole_info("%s: %s %s from %s: %u", h->name, r->method, r->path, r->peer,
				   res->status);
	}
}


/* --------------------------------------------------------------- parking */

static void unlist(struct anole_httpd *h, struct request_ctx *ctx)
{
	if (!ctx->listed)
		return;
	*ctx->pprev = ctx->next;
	if (ctx->next)
		ctx->next->pprev = ctx->pprev;
	ctx->listed = false;
	h->nparked--;
}

/* Mark a parked request to be handled again (park_lock held). A pending
 * one is not suspended yet: on_request sees WOKEN and calls the handler at
 * once; a suspended one is resumed, and libmicrohttpd calls on_request. */
static void wake_locked(struct anole_httpd *h, struct request_ctx *ctx, enum anole_httpd_call why)
{
	unlist(h, ctx);
	ctx->why = why;
	if (ctx->park == PARK_SUSPENDED)
		MHD_resume_connection(ctx->conn);
	ctx->park = PARK_WOKEN;
}

static void *parker_main(void *arg)
{
	struct anole_httpd *h = arg;

	pthread_mutex_lock(&h->park_lock);
	while (!h->stopping) {
		double now = mono_now(), next = now + 60;
		struct timespec ts;

		for (struct request_ctx *c = h->parked, *n; c; c = n) {
			n = c->next;
			if (c->deadline <= now)
				wake_locked(h, c, ANOLE_HTTPD_CALL_TIMED_OUT);
			else if (c->deadline < next)
				next = c->deadline;
		}
		ts.tv_sec = (time_t)next;
		ts.tv_nsec = (long)((next - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&h->park_cond, &h->park_lock, &ts);
	}
	pthread_mutex_unlock(&h->park_lock);
	return NULL;
}

int anole_httpd_park(const struct anole_httpd_request *r, const char *key, double seconds,
		     unsigned flags)
{
	struct request_ctx *ctx = r->ctx;
	struct anole_httpd *h = ctx->h;
	double now = mono_now();
	int ret = 0;

	pthread_mutex_lock(&h->park_lock);
	if (h->stopping) {
		ret = -ECANCELED;
		goto out;
	}
	if (ctx->park != PARK_NONE) {
		ret = -EBUSY;
		goto out;
	}
	if (!h->parker_started) {
		ret = pthread_create(&h->parker, NULL, parker_main, h);
		if (ret) {
			ret = anole_error(ret, "%s: cannot start the thread of parked requests",
					  h->name);
			goto out;
		}
		h->parker_started = true;
	}
	if (flags & ANOLE_HTTPD_PARK_EXCLUSIVE)
		for (struct request_ctx *c = h->parked, *n; c; c = n) {
			n = c->next;
			if (c->exclusive && !strcmp(c->key, key))
				wake_locked(h, c, ANOLE_HTTPD_CALL_SUPERSEDED);
		}
	free(ctx->key);
	ctx->key = xstrdup(key);
	ctx->exclusive = flags & ANOLE_HTTPD_PARK_EXCLUSIVE;
	ctx->deadline = now + (seconds > 0 ? seconds : 0);
	if (!ctx->first_parked)
		ctx->first_parked = now;
	ctx->park = PARK_PENDING;
	ctx->handler_parked = true;
	ctx->next = h->parked;
	if (h->parked)
		h->parked->pprev = &ctx->next;
	ctx->pprev = &h->parked;
	h->parked = ctx;
	ctx->listed = true;
	h->nparked++;
	/* the parker recomputes its next deadline */
	pthread_cond_signal(&h->park_cond);
out:
	pthread_mutex_unlock(&h->park_lock);
	return ret;
}

void anole_httpd_wake(struct anole_httpd *h, const char *key)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->park_lock);
	for (struct request_ctx *c = h->parked, *n; c; c = n) {
		n = c->next;
		if (!strcmp(c->key, key))
			wake_locked(h, c, ANOLE_HTTPD_CALL_WOKEN);
	}
	pthread_mutex_unlock(&h->park_lock);
}

void anole_httpd_set_state(const struct anole_httpd_request *r, void *state,
			   void (*free_fn)(void *))
{
	struct request_ctx *ctx = r->ctx;

	if (ctx->state && ctx->state_free)
		ctx->state_free(ctx->state);
	ctx->state = state;
	ctx->state_free = free_fn;
}

bool anole_httpd_is_parked(const struct anole_httpd_request *r)
{
	return ((struct request_ctx *)r->ctx)->handler_parked;
}

void *anole_httpd_state(const struct anole_httpd_request *r)
{
	return ((struct request_ctx *)r->ctx)->state;
}

size_t anole_httpd_parked(struct anole_httpd *h)
{
	size_t n;

	pthread_mutex_lock(&h->park_lock);
	n = h->nparked;
	pthread_mutex_unlock(&h->park_lock);
	return n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct anole_httpd *h = cls;
	struct request_ctx *ctx = *con_cls;
	struct anole_httpd_request r = { .method = method, .path = url, .conn = conn };
	struct anole_httpd_response res = { .body = STRBUF_INIT, .headers = STRBUF_INIT };
	struct strbuf allow = STRBUF_INIT;
	enum MHD_Result ret;

	if (!ctx) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		ctx = xcalloc(1, sizeof(*ctx));
		ctx->h = h;
		ctx->conn = conn;
		*con_cls = ctx;
		/* refuse a declared oversize body before reading any of it */
		if (cl && strtoull(cl, NULL, 10) > h->max_body)
			ctx->too_big = true;
		else
			return MHD_YES;
	} else if (*upload_data_size) {
		/* bounded: once over the limit the rest is read and dropped */
		if (!ctx->too_big && ctx->body.len + *upload_data_size > h->max_body) {
			ctx->too_big = true;
			strbuf_release(&ctx->body);
		}
		if (!ctx->too_big)
			strbuf_add(&ctx->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	r.body = ctx->body.buf ? ctx->body.buf : "";
	r.body_len = ctx->body.len;
	r.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_AUTHORIZATION);
	r.ctx = ctx;
	describe_peer(conn, &r);
	for (;;) {
		pthread_mutex_lock(&h->park_lock);
		/* called again for a parked request: say why */
		if (ctx->park == PARK_WOKEN) {
			r.call = ctx->why;
			ctx->park = PARK_NONE;
		}
		pthread_mutex_unlock(&h->park_lock);
		r.parked_s = ctx->first_parked ? mono_now() - ctx->first_parked : 0;
		dispatch(h, &r, &res, ctx->too_big, &allow);
		if (!ctx->handler_parked)
			break;
		ctx->handler_parked = false;
		/* the handler parked the request: suspend the connection, unless a
		 * wake or a supersede came meanwhile (then handle it again now);
		 * under park_lock, so a wake sees either state, never one between */
		strbuf_reset(&res.body);
		strbuf_reset(&res.headers);
		strbuf_reset(&allow);
		res.status = 0;
		res.content_type = NULL;
		pthread_mutex_lock(&h->park_lock);
		if (ctx->park == PARK_PENDING) {
			MHD_suspend_connection(conn);
			ctx->park = PARK_SUSPENDED;
			pthread_mutex_unlock(&h->park_lock);
			strbuf_release(&res.body);
			strbuf_release(&res.headers);
			strbuf_release(&allow);
			return MHD_YES;
		}
		pthread_mutex_unlock(&h->park_lock);
	}
	ret = send_response(h, conn, &res, allow.buf);
	strbuf_release(&res.body);
	strbuf_release(&res.headers);
	strbuf_release(&allow);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct anole_httpd *h = cls;
	struct request_ctx *ctx = *con_cls;

	if (ctx) {
		pthread_mutex_lock(&h->park_lock);
		unlist(h, ctx);
		if (ctx->stop_answer && !--h->stop_answers)
			pthread_cond_broadcast(&h->park_cond);
		pthread_mutex_unlock(&h->park_lock);
		if (ctx->state && ctx->state_free)
			ctx->state_free(ctx->state);
		free(ctx->key);
		strbuf_release(&ctx->body);
		free(ctx);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct anole_httpd *h = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	anole_debug("%s: libmicrohttpd: %s", h->name, msg);
}

/* ------------------------------------------------------------- lifecycle */

static void httpd_free(struct anole_httpd *h)
{
	if (h->unix_path) {
		unlink(h->unix_path);
		free(h->unix_path);
	}
	free(h->routes);
	free(h->name);
	pthread_cond_destroy(&h->park_cond);
	pthread_mutex_destroy(&h->park_lock);
	free(h);
}

int anole_httpd_start(struct anole_httpd **out, const struct anole_httpd_opts *o)
{
	struct anole_httpd *h = xcalloc(1, sizeof(*h));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
			 MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	unsigned threads = o->threads ? o->threads : 1;
	pthread_condattr_t ca;
	int fd;

	pthread_mutex_init(&h->park_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->park_cond, &ca);
	pthread_condattr_destroy(&ca);
	h->name = xstrdup(o->name ? o->name : "httpd");
	h->max_body = o->max_body ? o->max_body : 64 * 1024;
	h->authorize = o->authorize;
	h->auth_arg = o->auth_arg;
	h->json_errors = o->json_errors;
	h->nroutes = o->nroutes;
	h->routes = xcalloc(o->nroutes ? o->nroutes : 1, sizeof(*h->routes));
	memcpy(h->routes, o->routes, o->nroutes * sizeof(*h->routes));
	fd = bind_listen(h, o);
	if (fd < 0) {
		httpd_free(h);
		return fd;
	}
	/*
	 * The header limit is libmicrohttpd's per-connection memory pool: it
	 * answers 431 (or 414 for a long URL) when a request does not fit.
	 * The pool also holds the response headers, hence the slack.
	 */
	/* the pool and TLS options only when asked: MHD_OPTION_ARRAY ends at
	 * the first MHD_OPTION_END, so they go last */
	struct MHD_OptionItem tls[4] = {
		{ MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	size_t ntls = 0;

	/* more than one thread: each polls its share of the connections, and
	 * a new connection goes to a thread not busy in a handler */
	if (threads > 1)
		tls[ntls++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };

	if (!o->tls_cert_pem != !o->tls_key_pem) {
		close(fd);
		httpd_free(h);
		return anole_error_code(EINVAL, "%s: HTTPS needs both a certificate and a key",
					o->name ? o->name : "httpd");
	}
	if (o->tls_cert_pem) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			close(fd);
			httpd_free(h);
			return anole_error_code(ENOTSUP, "%s: this libmicrohttpd was built "
						"without TLS", o->name ? o->name : "httpd");
		}
		flags |= MHD_USE_TLS;
		tls[ntls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
						       (void *)o->tls_cert_pem };
		tls[ntls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
						       (void *)o->tls_key_pem };
	}
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)(o->max_clients ? o->max_clients : 64),
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)(o->timeout_s ? o->timeout_s : 10),
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				  (size_t)(o->max_header ? o->max_header : 8192) + 4096,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				  MHD_OPTION_ARRAY, tls,
				  MHD_OPTION_END);
	if (!h->mhd) {
		close(fd);
		httpd_free(h);
		return anole_error_code(EIO, "%s: cannot start the HTTP server on %s", o->name,
					o->listen);
	}
	*out = h;
	return 0;
}

void anole_httpd_stop(struct anole_httpd *h)
{
	if (!h)
		return;
	/* parked requests are answered (libmicrohttpd refuses to stop with
	 * suspended connections), and no new one parks */
	pthread_mutex_lock(&h->park_lock);
	h->stopping = true;
	while (h->parked) {
		h->parked->stop_answer = true;
		h->stop_answers++;
		wake_locked(h, h->parked, ANOLE_HTTPD_CALL_STOPPING);
	}
	pthread_cond_broadcast(&h->park_cond);
	pthread_mutex_unlock(&h->park_lock);
	if (h->parker_started)
		pthread_join(h->parker, NULL);
	/* no new connections; then up to 2 s for the woken requests' answers
	 * to go out: stopping the daemon at once closed some of them unanswered
	 * (seen under qemu), and a client may retry such a request */
	MHD_socket lfd = MHD_quiesce_daemon(h->mhd);
	double until = mono_now() + 2;
	pthread_mutex_lock(&h->park_lock);
	while (h->stop_answers && mono_now() < until) {
		struct timespec ts;

		ts.tv_sec = (time_t)until;
		ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&h->park_cond, &h->park_lock, &ts);
	}
	pthread_mutex_unlock(&h->park_lock);
	/* joins the polling thread and closes every connection */
	MHD_stop_daemon(h->mhd);
	/* a quiesced listener is the caller's to close, after the stop */
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	httpd_free(h);
}

uint16_t anole_httpd_port(const struct anole_httpd *h)
{
	return h->port;
}

void anole_httpd_get_stats(const struct anole_httpd *h, struct anole_httpd_stats *st)
{
	struct anole_httpd *m = (struct anole_httpd *)h;

	st->requests = atomic_load(&m->requests);
	st->ok = atomic_load(&m->ok);
	st->not_found = atomic_load(&m->not_found);
	st->client_errors = atomic_load(&m->client_errors);
	st->server_errors = atomic_load(&m->server_errors);
}

/* ------------------------------------------------------------ bearer tokens */

unsigned anole_httpd_check_bearer(const struct anole_httpd_request *r, const char *token)
{
	const char *v = r->authorization;
	size_t tlen = strlen(token);

	if (!v || strncasecmp(v, "Bearer ", 7))
		return 401;
	v += 7;
	while (*v == ' ')
		v++;
	/* the length is no secret; the bytes are compared in constant time */
	if (strlen(v) != tlen || CRYPTO_memcmp(v, token, tlen))
		return 401;
	return 0;
}

int anole_httpd_read_token(const char *path, char **token)
{
	char buf[4096];
	struct stat st;
	ssize_t n;
	size_t a = 0, b;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), ret = 0;

	if (fd < 0)
		return anole_error(errno, "cannot open the token file %s", path);
	if (fstat(fd, &st) < 0) {
		ret = anole_error(errno, "cannot stat the token file %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		ret = anole_error_code(EPERM, "the token file %s must be a regular file readable "
				       "only by its owner (chmod 600)", path);
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		ret = anole_error(errno, "cannot read the token file %s", path);
		goto out;
	}
	buf[n] = '\0';
	b = (size_t)n;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	if (a == b || memchr(buf + a, '\n', b - a) || (size_t)n == sizeof(buf) - 1) {
		ret = anole_error_code(EINVAL, "the token file %s must hold one token of at most "
				       "4 KiB on one line", path);
		goto out;
	}
	buf[b] = '\0';
	*token = xstrdup(buf + a);
out:
	close(fd);
	return ret;
}
