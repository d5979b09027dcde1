// SPDX-License-Identifier: Apache-2.0
/*
 * The console's HTTP API (docs/anole-console.md) and its static web files,
 * on lib/httpd.c. Every /api/v1/ request goes through api_handle(): find
 * the endpoint, authenticate (a session cookie for people, a bearer agent
 * token for agents), check the role and, on state changes, the CSRF double
 * submit; then the handler; then, for state changes, the audit record.
 * Handlers run on the server's pool of threads (API_THREADS) and take
 * c->lock around their statements and shared tables. Long polls (an
 * agent's heartbeat waiting for work, a page waiting for a diagnosis) and
 * a login's password check (scrypt, slow by design, on c->login_wq) park
 * their request (anole_httpd_park): no request thread waits.
 */
#include "internal.h"
#if ANOLE_CONSOLE_EMBEDDED_WEB
#include "web_assets.h"
#endif

#include "anole/diag_policy.h"
#include "anole/error.h"
#include "anole/httpd.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION_LIFETIME 43200     /* seconds: 12 h */
#define LOGIN_FAILURES_MAX 5       /* per peer address in LOGIN_WINDOW: then 429 */
#define LOGIN_WINDOW 60.0
#define MAX_BODY (2u << 20)        /* a diagnosis result (1 MiB of output) and room */
#define MAX_SEGS 6
#define API_THREADS 4              /* a slow query does not hold the rest */
#define MAX_CLIENTS 2048           /* every agent holds one connection (its heartbeat) */
#define MAX_HOLD 600.0             /* the longest hold an agent may ask for */
#define MAX_WAIT 30.0              /* the longest ?wait= on a diagnosis */
#define LOGIN_WAIT 120.0           /* a login waits that long for its password check */

struct req {
	struct console *c;
	const struct anole_httpd_request *r;
	struct anole_httpd_response *res;
	bool tls;
	const char *seg[MAX_SEGS];
	int nseg;
	char segbuf[512];
	/* who: a session's user, or an agent's token */
	long long user_id;
	char user[80];
	enum console_role role;
	long long token_id;
	char peer[64];               /* the peer's address, no port */
	/* for the audit record */
	const char *action;
	char target[96];
	char detail[256];
};

/* The listener's view: the same console, and whether cookies are Secure. */
struct listener {
	struct console *c;
	bool tls;
};

static void reply_error(struct req *q, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct req *q, unsigned status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->detail, sizeof(q->detail), fmt, ap);
	va_end(ap);
	anole_httpd_json_error(q->res, status, "%s", q->detail);
}

static void reply(struct req *q, unsigned status, json_t *v)
{
	anole_httpd_json_value(q->res, status, v);
	json_decref(v);
}

/* ------------------------------------------------------------ JSON input */

/*
 * The body as one object with only the given fields ("name" required,
 * "?name" optional): unknown fields are refused, so a misspelt option is an
 * error and not silently ignored.
 */
static json_t *body_object(struct req *q, const char *const *fields)
{
	json_t *obj;
	const char *key;
	json_t *v;

	if (anole_httpd_body_json(q->r, q->res, &obj)) {
		snprintf(q->detail, sizeof(q->detail), "the body is not a JSON object");
		return NULL;
	}
	json_object_foreach(obj, key, v) {
		bool known = false;

		for (const char *const *f = fields; *f && !known; f++)
			known = !strcmp(**f == '?' ? *f + 1 : *f, key);
		if (!known) {
			reply_error(q, 400, "unknown field '%.64s'", key);
			json_decref(obj);
			return NULL;
		}
	}
	for (const char *const *f = fields; *f; f++)
		if (**f != '?' && !json_object_get(obj, *f)) {
			reply_error(q, 400, "missing field '%s'", *f);
			json_decref(obj);
			return NULL;
		}
	return obj;
}

/* A string field: NULL (with a 400) if it is not a string of 1..max bytes. */
static const char *string_field(struct req *q, json_t *obj, const char *name, size_t max)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		reply_error(q, 400, "'%s' must be a string of 1 to %zu bytes", name, max);
		return NULL;
	}
	return json_string_value(v);
}

static bool valid_metric_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789", s[n]) ||
		    (!n && s[n] >= '0' && s[n] <= '9'))
			return false;
	return n >= 1 && n <= 200;
}

/* A label name: [a-zA-Z_][a-zA-Z0-9_]*, the first n bytes of s. */
static bool valid_label_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", s[i]) ||
		    !s[i] || (!i && s[i] >= '0' && s[i] <= '9'))
			return false;
	return n >= 1;
}

/* -------------------------------------------------------------- sessions */

static bool same_secret(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && !CRYPTO_memcmp(a, b, n);
}

/* 0 (q->user set), or the status to answer: 401 no session, 403 bad CSRF. */
static unsigned check_session(struct req *q, bool changes_state)
{
	const char *token = anole_httpd_cookie(q->r, "anole_session");
	char hash[65], csrf[80] = "";
	sqlite3_stmt *st;
	bool found = false;

	if (!token || strlen(token) != 64)
		return 401;
	auth_sha256_hex(token, hash);
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT u.id, u.name, u.role, s.csrf FROM sessions s "
			   "JOIN users u ON u.id = s.user_id WHERE s.token_hash=? AND s.expires>?");
	if (st) {
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 2, store_now());
		if (sqlite3_step(st) == SQLITE_ROW) {
			found = true;
			q->user_id = sqlite3_column_int64(st, 0);
			snprintf(q->user, sizeof(q->user), "%s", sqlite3_column_text(st, 1));
			q->role = role_from_name((const char *)sqlite3_column_text(st, 2));
			snprintf(csrf, sizeof(csrf), "%s", sqlite3_column_text(st, 3));
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!found)
		return 401;
	if (changes_state) {
		/* double submit: the header a page of this origin copied from the
		 * readable cookie, the cookie, and the session's own value agree;
		 * another site can make the browser send the cookie, not the header */
		const char *hdr = anole_httpd_header(q->r, "X-CSRF-Token");
		const char *cookie = anole_httpd_cookie(q->r, "csrf_token");

		if (!hdr || !cookie || !same_secret(hdr, cookie) || !same_secret(hdr, csrf))
			return 403;
	}
	return 0;
}

/* 0 with q->token_id set, else 401: the agent's bearer token. */
static unsigned check_agent(struct req *q)
{
	const char *v = q->r->authorization;
	char hash[65];
	sqlite3_stmt *st;

	if (!v || strncasecmp(v, "Bearer ", 7) || strlen(v + 7) != 64)
		return 401;
	/* only the hash is compared: its lookup leaks nothing of the token */
	auth_sha256_hex(v + 7, hash);
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT id FROM agent_tokens WHERE token_hash=? AND revoked=0");
	q->token_id = 0;
	if (st) {
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW)
			q->token_id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	return q->token_id ? 0 : 401;
}

static void add_cookie(struct req *q, const char *name, const char *value, bool http_only,
		       long max_age)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s=%s; Path=/; SameSite=Strict; Max-Age=%ld%s%s", name, value,
		 max_age, http_only ? "; HttpOnly" : "", q->tls ? "; Secure" : "");
	anole_httpd_add_header(q->res, "Set-Cookie", buf);
}

/* Too many failed logins from this address lately? Counts this one when
 * failed. The caller holds c->lock (logins run on several threads). */
static bool login_throttled(struct req *q, bool record_failure)
{
	struct login_failure *f = NULL, *oldest = &q->c->failures[0];
	double now = store_now();

	for (size_t i = 0; i < sizeof(q->c->failures) / sizeof(q->c->failures[0]); i++) {
		struct login_failure *e = &q->c->failures[i];

		if (!strcmp(e->peer, q->peer))
			f = e;
		if (e->first < oldest->first)
			oldest = e;
	}
	if (f && now - f->first > LOGIN_WINDOW) {
		f->count = 0;
		f->first = now;
	}
	if (record_failure) {
		if (!f) {
			f = oldest;
			snprintf(f->peer, sizeof(f->peer), "%s", q->peer);
			f->first = now;
			f->count = 0;
		}
		f->count++;
	}
	return f && f->count >= LOGIN_FAILURES_MAX;
}

/*
 * A login's password check, run by the console's login workers
 * (c->login_wq) rather than on a request thread: scrypt takes tens to
 * hundreds of ms and 32 MiB by design, so a request thread (and the
 * keep-alive connections it polls) would wait that long, and every request
 * thread could be hashing at once. The request is parked meanwhile. Two
 * references: the request's state and the job.
 */
struct login_check {
	atomic_int refs;
	struct console *c;
	char *hash, *password;
	long long uid;
	char role[16];
	char key[40];                /* "login:N": the parked request's */
	bool done, ok;               /* under c->lock */
};

static void login_check_unref(void *p)
{
	struct login_check *lc = p;

	if (atomic_fetch_sub(&lc->refs, 1) != 1)
		return;
	OPENSSL_cleanse(lc->password, strlen(lc->password));
	free(lc->password);
	free(lc->hash);
	free(lc);
}

static void login_check_run(void *item, void *shared)
{
	struct login_check *lc = item;
	/* an unknown user costs a hash too, so timing does not tell users apart */
	bool ok = auth_check_password(lc->hash ? lc->hash :
				      "scrypt$32768$8$1$00000000000000000000000000000000$"
				      "0000000000000000000000000000000000000000000000000000000000000000",
				      lc->password) && lc->hash;

	pthread_mutex_lock(&lc->c->lock);
	lc->ok = ok;
	lc->done = true;
	pthread_mutex_unlock(&lc->c->lock);
	console_wake(lc->c, lc->key);
	login_check_unref(lc);
}

static void api_login(struct req *q)
{
	static const char *const fields[] = { "user", "password", NULL };
	static atomic_ullong logins;
	json_t *body = body_object(q, fields);
	struct login_check *lc = anole_httpd_state(q->r);
	const char *user, *password;
	char token[65], token_hash[65], csrf[65];
	sqlite3_stmt *st;
	bool ok, done, throttled;

	q->action = "login";
	if (!body)
		return;
	user = string_field(q, body, "user", 64);
	password = user ? string_field(q, body, "password", 1024) : NULL;
	if (!password)
		goto out;
	snprintf(q->target, sizeof(q->target), "%s", user);
	if (!lc) {
		pthread_mutex_lock(&q->c->lock);
		throttled = login_throttled(q, false);
		pthread_mutex_unlock(&q->c->lock);
		if (throttled) {
			reply_error(q, 429, "too many failed logins from %s: wait a minute", q->peer);
			goto out;
		}
		lc = xcalloc(1, sizeof(*lc));
		atomic_init(&lc->refs, 2);
		lc->c = q->c;
		lc->password = xstrdup(password);
		snprintf(lc->key, sizeof(lc->key), "login:%llu", atomic_fetch_add(&logins, 1));
		pthread_mutex_lock(&q->c->lock);
		st = store_prepare(q->c->db, "SELECT id, pw_hash, role FROM users WHERE name=?");
		if (st) {
			sqlite3_bind_text(st, 1, user, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(st) == SQLITE_ROW) {
				lc->uid = sqlite3_column_int64(st, 0);
				lc->hash = xstrdup((const char *)sqlite3_column_text(st, 1));
				snprintf(lc->role, sizeof(lc->role), "%s", sqlite3_column_text(st, 2));
			}
			sqlite3_finalize(st);
		}
		pthread_mutex_unlock(&q->c->lock);
		anole_httpd_set_state(q->r, lc, login_check_unref);
		anole_workqueue_add(q->c->login_wq, login_check_run, lc, NULL);
	}
	/* parked under the lock the worker sets done under: its wake, after,
	 * finds the request parked */
	pthread_mutex_lock(&q->c->lock);
	done = lc->done;
	ok = lc->ok;
	if (!done && (q->r->call == ANOLE_HTTPD_CALL_FIRST || q->r->call == ANOLE_HTTPD_CALL_WOKEN) &&
	    !anole_httpd_park(q->r, lc->key, LOGIN_WAIT, 0)) {
		pthread_mutex_unlock(&q->c->lock);
		goto out;
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!done) {
		reply_error(q, 503, "the password check did not finish in %g s (the console is "
			    "stopping or overloaded)", LOGIN_WAIT);
		goto out;
	}
	if (!ok) {
		pthread_mutex_lock(&q->c->lock);
		login_throttled(q, true);
		pthread_mutex_unlock(&q->c->lock);
		reply_error(q, 401, "wrong user name or password");
		goto out;
	}
	if (auth_random_hex(token, 32) || auth_random_hex(csrf, 32)) {
		reply_error(q, 500, "no random bytes");
		goto out;
	}
	auth_sha256_hex(token, token_hash);
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "INSERT INTO sessions(token_hash,user_id,csrf,created,expires,"
			   "peer) VALUES(?,?,?,?,?,?)");
	ok = false;
	if (st) {
		double now = store_now();

		sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, lc->uid);
		sqlite3_bind_text(st, 3, csrf, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 4, now);
		sqlite3_bind_double(st, 5, now + SESSION_LIFETIME);
		sqlite3_bind_text(st, 6, q->peer, -1, SQLITE_TRANSIENT);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_finalize(st);
	}
	/* expired sessions go when someone logs in: no timer needed */
	store_exec(q->c->db, "DELETE FROM sessions WHERE expires < strftime('%s','now')");
	pthread_mutex_unlock(&q->c->lock);
	if (!ok) {
		reply_error(q, 500, "cannot store the session");
		goto out;
	}
	snprintf(q->user, sizeof(q->user), "%s", user);
	add_cookie(q, "anole_session", token, true, SESSION_LIFETIME);
	add_cookie(q, "csrf_token", csrf, false, SESSION_LIFETIME);
	reply(q, 200, json_pack("{s:s, s:s, s:s}", "user", user, "role", lc->role, "csrf_token", csrf));
out:
	json_decref(body);
}

static void api_logout(struct req *q)
{
	const char *token = anole_httpd_cookie(q->r, "anole_session");
	char hash[65];
	sqlite3_stmt *st;

	q->action = "logout";
	auth_sha256_hex(token ? token : "", hash);
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "DELETE FROM sessions WHERE token_hash=?");
	if (st) {
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	add_cookie(q, "anole_session", "", true, 0);
	add_cookie(q, "csrf_token", "", false, 0);
	reply(q, 200, json_pack("{s:b}", "ok", 1));
}

static void api_session(struct req *q)
{
	reply(q, 200, json_pack("{s:s, s:s}", "user", q->user, "role", role_name(q->role)));
}

/* ----------------------------------------------------------------- hosts */

static json_t *host_row(struct console *c, sqlite3_stmt *st)
{
	long long id = sqlite3_column_int64(st, 0);
	json_t *h = json_pack("{s:o, s:o, s:o, s:o, s:o}",
			      "name", store_column_json(st, 1),
			      "address", store_column_json(st, 2),
			      "status", store_column_json(st, 4),
			      "last_seen", json_real(sqlite3_column_double(st, 5)),
			      "registered", json_real(sqlite3_column_double(st, 6)));

	json_object_set_new(h, "metrics_port", json_integer(sqlite3_column_int(st, 3)));
	json_object_set_new(h, "version", store_column_json(st, 7));
	json_object_set_new(h, "health", collect_health(c, id));
	return h;
}

#define HOST_COLUMNS "id, name, address, metrics_port, status, last_seen, registered, version"

static void api_hosts(struct req *q)
{
	const char *search = anole_httpd_query(q->r, "q");
	json_t *arr = json_array();
	sqlite3_stmt *st;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT " HOST_COLUMNS " FROM hosts WHERE instr(name, ?) > 0 "
			   "ORDER BY name");
	if (st) {
		sqlite3_bind_text(st, 1, search ? search : "", -1, SQLITE_TRANSIENT);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(arr, host_row(q->c, st));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

/* The host named by segment 1: its id, else 0 with a 404 answered. */
static long long find_host(struct req *q, char *status, size_t slen)
{
	sqlite3_stmt *st;
	long long id = 0;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT id, status FROM hosts WHERE name=?");
	if (st) {
		sqlite3_bind_text(st, 1, q->seg[1], -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			id = sqlite3_column_int64(st, 0);
			if (status)
				snprintf(status, slen, "%s", sqlite3_column_text(st, 1));
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!id)
		reply_error(q, 404, "unknown host '%s'", q->seg[1]);
	return id;
}

static void api_host(struct req *q)
{
	sqlite3_stmt *st;
	json_t *h = NULL;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT " HOST_COLUMNS " FROM hosts WHERE name=?");
	if (st) {
		sqlite3_bind_text(st, 1, q->seg[1], -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW)
			h = host_row(q->c, st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!h) {
		reply_error(q, 404, "unknown host '%s'", q->seg[1]);
	} else {
		reply(q, 200, h);
	}
}

static void api_host_delete(struct req *q)
{
	sqlite3_stmt *st;
	int changed = 0;

	q->action = "host.delete";
	snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "DELETE FROM hosts WHERE name=?");
	if (st) {
		sqlite3_bind_text(st, 1, q->seg[1], -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
		changed = sqlite3_changes(q->c->db);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!changed) {
		reply_error(q, 404, "unknown host '%s'", q->seg[1]);
		return;
	}
	if (q->c->o->prometheus)
		collect_write_targets(q->c);
	reply(q, 200, json_pack("{s:b}", "ok", 1));
}

static void api_metrics(struct req *q)
{
	const char *name = anole_httpd_query(q->r, "name"), *range_s = anole_httpd_query(q->r, "range");
	const char *label_s = anole_httpd_query(q->r, "label");
	struct strbuf label = STRBUF_INIT;
	double range = 3600;
	struct strbuf err = STRBUF_INIT;
	unsigned status = 0;
	json_t *out;
	char *end;

	if (!find_host(q, NULL, 0))
		return;
	if (range_s) {
		range = strtod(range_s, &end);
		if (*end || end == range_s || !(range >= 1) || range > 8 * 86400) {
			reply_error(q, 400, "range is seconds, from 1 to %d", 8 * 86400);
			return;
		}
	}
	if (name && !valid_metric_name(name)) {
		reply_error(q, 400, "name is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
		return;
	}
	/* label=KEY=VALUE: only the series with that label, as KEY="VALUE"
	 * escaped as the text format and PromQL escape it */
	if (label_s) {
		const char *eq = strchr(label_s, '=');
		size_t klen = eq ? (size_t)(eq - label_s) : 0;

		if (!eq || !klen || klen > 100 || strlen(eq + 1) > 200 ||
		    !valid_label_name(label_s, klen)) {
			reply_error(q, 400, "label is NAME=VALUE, NAME a label name "
				    "([a-zA-Z_][a-zA-Z0-9_]*), VALUE at most 200 bytes");
			return;
		}
		collect_label_pair(&label, label_s, klen, eq + 1);
	}
	out = collect_query(q->c, q->seg[1], name, label.buf, range, &err, &status);
	strbuf_release(&label);
	if (!out)
		reply_error(q, status ? status : 500, "%s", err.buf ? err.buf : "query failed");
	else
		reply(q, 200, out);
	strbuf_release(&err);
}

/* ------------------------------------------------------------- diagnoses */

static json_t *diagnosis_row(sqlite3_stmt *st)
{
	const char *state = (const char *)sqlite3_column_text(st, 6);
	const char *result = (const char *)sqlite3_column_text(st, 7);
	json_t *d = json_pack("{s:I, s:o, s:o, s:f, s:s, s:o, s:o, s:f}",
			      "id", (json_int_t)sqlite3_column_int64(st, 0),
			      "host", store_column_json(st, 1),
			      "tool", store_column_json(st, 2),
			      "duration", sqlite3_column_double(st, 3),
			      /* queued and dispatched are both "running" to a client */
			      "status", !strcmp(state, "queued") ? "running" : state,
			      "state", store_column_json(st, 6),
			      "user", store_column_json(st, 9),
			      "created", sqlite3_column_double(st, 10));
	json_t *opts = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);

	json_object_set_new(d, "options", opts ? opts : json_object());
	if (result) {
		json_t *r = json_loads(result, JSON_DECODE_ANY, NULL);

		json_object_set_new(d, "result", r ? r : json_null());
	}
	if (sqlite3_column_type(st, 8) != SQLITE_NULL)
		json_object_set_new(d, "error", store_column_json(st, 8));
	if (sqlite3_column_type(st, 11) != SQLITE_NULL)
		json_object_set_new(d, "started", json_real(sqlite3_column_double(st, 11)));
	if (sqlite3_column_type(st, 12) != SQLITE_NULL)
		json_object_set_new(d, "finished", json_real(sqlite3_column_double(st, 12)));
	return d;
}

#define DIAG_COLUMNS "d.id, h.name, d.tool, d.duration, d.options, d.id, d.state, d.result, " \
	"d.error, d.user, d.created, d.started, d.finished"

static void api_diagnosis_create(struct req *q)
{
	static const char *const fields[] = { "tool", "duration", "?options", NULL };
	struct strbuf err = STRBUF_INIT;
	char status[16] = "", *opts_text = NULL;
	json_t *body = NULL;
	long long host_id, id = 0;
	sqlite3_stmt *st;
	int busy = 0;

	q->action = "diagnosis.create";
	snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
	host_id = find_host(q, status, sizeof(status));
	if (!host_id)
		return;
	body = body_object(q, fields);
	if (!body)
		return;
	if (!json_is_string(json_object_get(body, "tool"))) {
		reply_error(q, 400, "'tool' must be a string");
		goto out;
	}
	/* checked here, and again by the agent before it runs anything */
	if (anole_diag_policy_check(json_string_value(json_object_get(body, "tool")),
				    json_object_get(body, "duration"),
				    json_object_get(body, "options"), NULL, &err)) {
		reply_error(q, 400, "%s", err.buf);
		goto out;
	}
	snprintf(q->detail, sizeof(q->detail), "%s %gs",
		 json_string_value(json_object_get(body, "tool")),
		 json_number_value(json_object_get(body, "duration")));
	if (strcmp(status, "up")) {
		reply_error(q, 409, "host '%s' is %s", q->seg[1], status);
		goto out;
	}
	opts_text = json_is_object(json_object_get(body, "options")) ?
		    json_dumps(json_object_get(body, "options"), JSON_COMPACT | JSON_SORT_KEYS) :
		    xstrdup("{}");
	pthread_mutex_lock(&q->c->lock);
	store_exec(q->c->db, "BEGIN IMMEDIATE");
	st = store_prepare(q->c->db, "SELECT count(*) FROM diagnoses WHERE host_id=? AND "
			   "state IN ('queued','running')");
	if (st) {
		sqlite3_bind_int64(st, 1, host_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			busy = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	st = busy ? NULL : store_prepare(q->c->db, "INSERT INTO diagnoses(host_id,tool,duration,"
					 "options,state,user,created) VALUES(?,?,?,?,'queued',?,?)");
	if (st) {
		sqlite3_bind_int64(st, 1, host_id);
		sqlite3_bind_text(st, 2, json_string_value(json_object_get(body, "tool")), -1,
				  SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 3, json_number_value(json_object_get(body, "duration")));
		sqlite3_bind_text(st, 4, opts_text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, q->user, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 6, store_now());
		if (sqlite3_step(st) == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(q->c->db);
		sqlite3_finalize(st);
	}
	store_exec(q->c->db, "COMMIT");
	pthread_mutex_unlock(&q->c->lock);
	if (busy)
		reply_error(q, 409, "host '%s' already runs a diagnosis (one at a time)", q->seg[1]);
	else if (!id)
		reply_error(q, 500, "cannot store the diagnosis");
	else {
		char key[96];

		/* the agent's heartbeat, held until work comes, takes it now */
		snprintf(key, sizeof(key), "host:%s", q->seg[1]);
		console_wake(q->c, key);
		snprintf(q->target, sizeof(q->target), "%s diagnosis %lld", q->seg[1], id);
		reply(q, 201, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", "running"));
	}
out:
	free(opts_text);
	json_decref(body);
	strbuf_release(&err);
}

static void api_diagnoses_of_host(struct req *q)
{
	json_t *arr = json_array();
	long long host_id = find_host(q, NULL, 0);
	sqlite3_stmt *st;

	if (!host_id) {
		json_decref(arr);
		return;
	}
	pthread_mutex_lock(&q->c->lock);
	/* the list leaves results out: they can be large */
	st = store_prepare(q->c->db, "SELECT d.id, h.name, d.tool, d.duration, d.options, d.id, "
			   "d.state, NULL, d.error, d.user, d.created, d.started, d.finished "
			   "FROM diagnoses d JOIN hosts h ON h.id=d.host_id WHERE d.host_id=? "
			   "ORDER BY d.id DESC LIMIT 100");
	if (st) {
		sqlite3_bind_int64(st, 1, host_id);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(arr, diagnosis_row(st));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

static long long parse_id(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	return *end || end == s || v <= 0 || s[0] == '+' || s[0] == '-' ? 0 : v;
}

/*
 * GET diagnoses/ID[?wait=S]: with wait, a diagnosis still queued or
 * running is answered when it ends (its result posted) or after S seconds,
 * whichever first: the page learns of the result at once without polling.
 */
static void api_diagnosis(struct req *q)
{
	long long id = parse_id(q->seg[1]);
	const char *wait_arg = anole_httpd_query(q->r, "wait");
	double wait = 0;
	json_t *d = NULL;
	sqlite3_stmt *st;

	if (wait_arg) {
		char *end;

		wait = strtod(wait_arg, &end);
		if (end == wait_arg || *end || !(wait >= 0 && wait <= MAX_WAIT)) {
			reply_error(q, 400, "'wait' is seconds from 0 to %g", MAX_WAIT);
			return;
		}
	}
	pthread_mutex_lock(&q->c->lock);
	st = id ? store_prepare(q->c->db, "SELECT " DIAG_COLUMNS " FROM diagnoses d JOIN hosts h "
				"ON h.id=d.host_id WHERE d.id=?") : NULL;
	if (st) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			d = diagnosis_row(st);
		sqlite3_finalize(st);
	}
	if (d && wait > 0 && q->r->call == ANOLE_HTTPD_CALL_FIRST) {
		const char *state = json_string_value(json_object_get(d, "status"));
		char key[48];

		snprintf(key, sizeof(key), "diag:%lld", id);
		/* parked under the lock: a result posted after the read wakes it */
		if (state && (!strcmp(state, "queued") || !strcmp(state, "running")) &&
		    !anole_httpd_park(q->r, key, wait, 0)) {
			pthread_mutex_unlock(&q->c->lock);
			json_decref(d);
			return;
		}
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!d)
		reply_error(q, 404, "unknown diagnosis '%s'", q->seg[1]);
	else
		reply(q, 200, d);
}

static void api_tools(struct req *q)
{
	reply(q, 200, anole_diag_policy_json());
}

/* ---------------------------------------------------------------- alerts */

static void api_rules(struct req *q)
{
	const char *format = anole_httpd_query(q->r, "format");
	json_t *arr;
	sqlite3_stmt *st;

	if (format && !strcmp(format, "prometheus")) {
		struct strbuf y = STRBUF_INIT;

		collect_rules_yaml(q->c, &y);
		q->res->status = 200;
		q->res->content_type = "application/yaml";
		strbuf_add(&q->res->body, y.buf ? y.buf : "", y.len);
		strbuf_release(&y);
		return;
	}
	if (format && strcmp(format, "json")) {
		reply_error(q, 400, "format is json or prometheus");
		return;
	}
	arr = json_array();
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT id, name, metric, labels, comparison, threshold, "
			   "for_s, severity, webhook, user, created FROM alert_rules ORDER BY id");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		json_t *labels = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);

		json_array_append_new(arr, json_pack(
			"{s:I, s:o, s:o, s:o, s:o, s:f, s:f, s:o, s:o, s:o, s:f}",
			"id", (json_int_t)sqlite3_column_int64(st, 0),
			"name", store_column_json(st, 1), "metric", store_column_json(st, 2),
			"labels", labels ? labels : json_object(),
			"comparison", store_column_json(st, 4),
			"threshold", sqlite3_column_double(st, 5),
			"for", sqlite3_column_double(st, 6),
			"severity", store_column_json(st, 7), "webhook", store_column_json(st, 8),
			"user", store_column_json(st, 9), "created", sqlite3_column_double(st, 10)));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

static bool valid_webhook(const char *u)
{
	if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
		return false;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\')
			return false;
	return strlen(u) <= 512;
}

static void api_rule_create(struct req *q)
{
	static const char *const fields[] = { "name", "metric", "?labels", "comparison", "threshold",
					      "?for", "?severity", "?webhook", NULL };
	json_t *body = body_object(q, fields), *labels, *v;
	const char *name, *metric, *cmp, *severity = "warning", *webhook = NULL, *key;
	double threshold, for_s = 0;
	char *labels_text = NULL;
	sqlite3_stmt *st;
	long long id = 0;
	int rc = 0;

	q->action = "alert_rule.create";
	if (!body)
		return;
	if (!(name = string_field(q, body, "name", 64)) ||
	    !(metric = string_field(q, body, "metric", 200)) ||
	    !(cmp = string_field(q, body, "comparison", 2)))
		goto out;
	snprintf(q->target, sizeof(q->target), "%s", name);
	if (!anole_console_name_valid(name)) {
		reply_error(q, 400, "'name' is 1 to 64 of A-Z a-z 0-9 . _ -");
		goto out;
	}
	if (!valid_metric_name(metric)) {
		reply_error(q, 400, "'metric' is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
		goto out;
	}
	if (strcmp(cmp, ">") && strcmp(cmp, "<") && strcmp(cmp, ">=") && strcmp(cmp, "<=")) {
		reply_error(q, 400, "'comparison' is one of > < >= <=");
		goto out;
	}
	v = json_object_get(body, "threshold");
	threshold = json_is_number(v) ? json_number_value(v) : NAN;
	if (!isfinite(threshold)) {
		reply_error(q, 400, "'threshold' must be a number");
		goto out;
	}
	v = json_object_get(body, "for");
	if (v) {
		for_s = json_is_number(v) ? json_number_value(v) : -1;
		if (!(for_s >= 0 && for_s <= 86400)) {
			reply_error(q, 400, "'for' is seconds, from 0 to 86400");
			goto out;
		}
	}
	if (json_object_get(body, "severity")) {
		if (!(severity = string_field(q, body, "severity", 16)))
			goto out;
		if (strcmp(severity, "info") && strcmp(severity, "warning") &&
		    strcmp(severity, "critical")) {
			reply_error(q, 400, "'severity' is info, warning or critical");
			goto out;
		}
	}
	if (json_object_get(body, "webhook") && !json_is_null(json_object_get(body, "webhook"))) {
		if (!(webhook = string_field(q, body, "webhook", 512)))
			goto out;
		if (!valid_webhook(webhook)) {
			reply_error(q, 400, "'webhook' is an http:// or https:// URL without spaces");
			goto out;
		}
	}
	labels = json_object_get(body, "labels");
	if (labels && !json_is_object(labels)) {
		reply_error(q, 400, "'labels' is an object of label names to values");
		goto out;
	}
	json_object_foreach(labels, key, v) {
		if (!valid_metric_name(key) || strchr(key, ':') || !json_is_string(v) ||
		    json_string_length(v) > 128 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			reply_error(q, 400, "'labels' maps label names to strings of at most 128 bytes");
			goto out;
		}
	}
	labels_text = labels ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("{}");
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "INSERT INTO alert_rules(name,metric,labels,comparison,threshold,"
			   "for_s,severity,webhook,user,created) VALUES(?,?,?,?,?,?,?,?,?,?)");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, metric, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, labels_text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, cmp, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 5, threshold);
		sqlite3_bind_double(st, 6, for_s);
		sqlite3_bind_text(st, 7, severity, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 8, webhook, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 9, q->user, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 10, store_now());
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(q->c->db);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (rc == SQLITE_CONSTRAINT)
		reply_error(q, 409, "an alert rule named '%s' exists", name);
	else if (!id)
		reply_error(q, 500, "cannot store the rule");
	else {
		snprintf(q->detail, sizeof(q->detail), "%s %s %g for %gs", metric, cmp, threshold,
			 for_s);
		reply(q, 201, json_pack("{s:I}", "id", (json_int_t)id));
	}
out:
	free(labels_text);
	json_decref(body);
}

/* DELETE on a table by id or name (segment 2 or 1): 404 if nothing went. */
static void delete_row(struct req *q, const char *sql, const char *what, const char *key)
{
	sqlite3_stmt *st;
	int changed = 0;

	snprintf(q->target, sizeof(q->target), "%s %s", what, key);
	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, sql);
	if (st) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
		changed = sqlite3_changes(q->c->db);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!changed)
		reply_error(q, 404, "unknown %s '%s'", what, key);
	else
		reply(q, 200, json_pack("{s:b}", "ok", 1));
}

static long query_limit(struct req *q)
{
	const char *s = anole_httpd_query(q->r, "limit");
	long v = s ? strtol(s, NULL, 10) : 200;

	return v < 1 ? 1 : v > 1000 ? 1000 : v;
}

static void api_events(struct req *q)
{
	json_t *arr = json_array();
	sqlite3_stmt *st;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT id, rule_id, rule, host, state, value, severity, ts, "
			   "webhook_status FROM alert_events ORDER BY id DESC LIMIT ?");
	if (st)
		sqlite3_bind_int64(st, 1, query_limit(q));
	while (st && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, json_pack(
			"{s:I, s:I, s:o, s:o, s:o, s:f, s:o, s:f, s:o}",
			"id", (json_int_t)sqlite3_column_int64(st, 0),
			"rule_id", (json_int_t)sqlite3_column_int64(st, 1),
			"rule", store_column_json(st, 2), "host", store_column_json(st, 3),
			"state", store_column_json(st, 4), "value", sqlite3_column_double(st, 5),
			"severity", store_column_json(st, 6), "ts", sqlite3_column_double(st, 7),
			"webhook_status", store_column_json(st, 8)));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

static void api_audit(struct req *q)
{
	json_t *arr = json_array();
	sqlite3_stmt *st;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT id, ts, user, action, target, peer, result, detail "
			   "FROM audit ORDER BY id DESC LIMIT ?");
	if (st)
		sqlite3_bind_int64(st, 1, query_limit(q));
	while (st && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, json_pack(
			"{s:I, s:f, s:o, s:o, s:o, s:o, s:i, s:o}",
			"id", (json_int_t)sqlite3_column_int64(st, 0),
			"ts", sqlite3_column_double(st, 1), "user", store_column_json(st, 2),
			"action", store_column_json(st, 3), "target", store_column_json(st, 4),
			"peer", store_column_json(st, 5), "result", sqlite3_column_int(st, 6),
			"detail", store_column_json(st, 7)));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

/* ------------------------------------------------------- users and tokens */

static void api_users(struct req *q)
{
	json_t *arr = json_array();
	sqlite3_stmt *st;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT name, role, created FROM users ORDER BY name");
	while (st && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{s:o, s:o, s:f}", "name",
						     store_column_json(st, 0), "role",
						     store_column_json(st, 1), "created",
						     sqlite3_column_double(st, 2)));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

static void api_user_create(struct req *q)
{
	static const char *const fields[] = { "name", "role", "password", NULL };
	json_t *body = body_object(q, fields);
	const char *name, *role, *password;
	char *hash;
	sqlite3_stmt *st;
	int rc = 0;

	q->action = "user.create";
	if (!body)
		return;
	if (!(name = string_field(q, body, "name", 64)) ||
	    !(role = string_field(q, body, "role", 16)) ||
	    !(password = string_field(q, body, "password", 1024)))
		goto out;
	snprintf(q->target, sizeof(q->target), "%s", name);
	if (!anole_console_name_valid(name) || !role_from_name(role) || strlen(password) < 8) {
		reply_error(q, 400, "a user needs a name of 1 to 64 of A-Z a-z 0-9 . _ -, a role "
			    "(viewer, operator, admin) and a password of at least 8 bytes");
		goto out;
	}
	snprintf(q->detail, sizeof(q->detail), "%s", role);
	hash = auth_hash_password(password);
	pthread_mutex_lock(&q->c->lock);
	st = hash ? store_prepare(q->c->db, "INSERT INTO users(name,role,pw_hash,created) "
				  "VALUES(?,?,?,?)") : NULL;
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, role, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, hash, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 4, store_now());
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	free(hash);
	if (rc == SQLITE_CONSTRAINT)
		reply_error(q, 409, "user '%s' exists", name);
	else if (rc != SQLITE_DONE)
		reply_error(q, 500, "cannot store the user");
	else
		reply(q, 201, json_pack("{s:s, s:s}", "name", name, "role", role));
out:
	json_decref(body);
}

static void api_user_delete(struct req *q)
{
	q->action = "user.delete";
	if (!strcmp(q->seg[1], q->user)) {
		snprintf(q->target, sizeof(q->target), "user %s", q->seg[1]);
		reply_error(q, 409, "you cannot delete yourself");
		return;
	}
	delete_row(q, "DELETE FROM users WHERE name=?", "user", q->seg[1]);
}

static void api_tokens(struct req *q)
{
	json_t *arr = json_array();
	sqlite3_stmt *st;

	pthread_mutex_lock(&q->c->lock);
	st = store_prepare(q->c->db, "SELECT t.id, t.note, t.created, t.revoked, (SELECT "
			   "group_concat(name) FROM hosts WHERE token_id=t.id) FROM agent_tokens t "
			   "ORDER BY t.id");
	while (st && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{s:I, s:o, s:f, s:b, s:o}", "id",
						     (json_int_t)sqlite3_column_int64(st, 0),
						     "note", store_column_json(st, 1), "created",
						     sqlite3_column_double(st, 2), "revoked",
						     sqlite3_column_int(st, 3), "hosts",
						     store_column_json(st, 4)));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->c->lock);
	reply(q, 200, arr);
}

static void api_token_create(struct req *q)
{
	static const char *const fields[] = { "?note", NULL };
	json_t *body = q->r->body_len ? body_object(q, fields) : json_object();
	const char *note = NULL;
	char *token = NULL;
	long long id = 0;
	int ret;

	q->action = "token.create";
	if (!body)
		return;
	if (json_object_get(body, "note") && !(note = string_field(q, body, "note", 200)))
		goto out;
	pthread_mutex_lock(&q->c->lock);
	ret = store_token_insert(q->c->db, note, &token, &id);
	pthread_mutex_unlock(&q->c->lock);
	if (ret) {
		reply_error(q, 500, "cannot store the token");
		goto out;
	}
	snprintf(q->target, sizeof(q->target), "token %lld", id);
	/* the one time the token is shown */
	reply(q, 201, json_pack("{s:I, s:s}", "id", (json_int_t)id, "token", token));
	free(token);
out:
	json_decref(body);
}

static void api_token_revoke(struct req *q)
{
	q->action = "token.revoke";
	delete_row(q, "UPDATE agent_tokens SET revoked=1 WHERE id=? AND revoked=0", "token",
		   q->seg[1]);
}

/* ---------------------------------------------------------------- agents */

/*
 * Hand host_id's oldest queued diagnosis to its agent, if any: into work,
 * marked running (caller holds c->lock, in a transaction).
 */
static void take_work(struct console *c, long long host_id, json_t *work, double now)
{
	sqlite3_stmt *st = store_prepare(c->db, "SELECT id, tool, duration, options FROM "
					 "diagnoses WHERE host_id=? AND state='queued' ORDER BY "
					 "id LIMIT 1");

	if (st) {
		sqlite3_bind_int64(st, 1, host_id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			json_t *opts = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);

			json_array_append_new(work, json_pack("{s:I, s:o, s:f, s:o}", "id",
				(json_int_t)sqlite3_column_int64(st, 0), "tool",
				store_column_json(st, 1), "duration", sqlite3_column_double(st, 2),
				"options", opts ? opts : json_object()));
		}
		sqlite3_finalize(st);
	}
	if (json_array_size(work)) {
		st = store_prepare(c->db, "UPDATE diagnoses SET state='running', started=? WHERE id=?");
		if (st) {
			sqlite3_bind_double(st, 1, now);
			sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(
						json_array_get(work, 0), "id")));
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
	}
}

/*
 * POST agent/heartbeat. An idle agent asks to be held ("hold": seconds):
 * with no work for it the request is parked, keyed "host:NAME", up to the
 * heartbeat interval, and answered the moment a diagnosis is queued for
 * the host (api_diagnosis_create wakes the key) or when the interval ends
 * with "interval": 0, so the agent comes straight back: one request per
 * interval as before, and work reaches it at once. A held request is a
 * heartbeat when it arrives (last_seen), and the next arrives one
 * interval later, so down detection (missed intervals) is unchanged.
 */
static void api_agent_heartbeat(struct req *q)
{
	static const char *const fields[] = { "name", "?metrics_port", "?version", "?pid",
					      "?running", "?hold", NULL };
	json_t *body = body_object(q, fields), *v, *work = json_array();
	const char *name, *version = NULL;
	long long host_id = 0, bound_token = 0, running = 0, pid = 0, lost[8];
	size_t nlost = 0;
	long port = 0;
	char old_status[16] = "", key[96];
	bool bound_revoked = false, parked = false;
	sqlite3_stmt *st;
	double now = store_now(), interval = q->c->o->heartbeat_interval, hold = 0;
	enum anole_httpd_call call = q->r->call;

	q->action = "agent.heartbeat";
	if (!body)
		goto out;
	if (!(name = string_field(q, body, "name", 64)))
		goto out;
	snprintf(q->target, sizeof(q->target), "%s", name);
	if (!anole_console_name_valid(name)) {
		reply_error(q, 400, "'name' is 1 to 64 of A-Z a-z 0-9 . _ -");
		goto out;
	}
	snprintf(key, sizeof(key), "host:%s", name);
	v = json_object_get(body, "hold");
	if (v && (!json_is_number(v) || !(json_number_value(v) >= 0) ||
		  json_number_value(v) > MAX_HOLD)) {
		reply_error(q, 400, "'hold' is seconds from 0 to %g", MAX_HOLD);
		goto out;
	}
	hold = v ? fmin(json_number_value(v), q->c->o->heartbeat_interval) : 0;
	if (call == ANOLE_HTTPD_CALL_TIMED_OUT || call == ANOLE_HTTPD_CALL_SUPERSEDED ||
	    call == ANOLE_HTTPD_CALL_STOPPING) {
		/* held to the end with no work, or the console stops: come back
		 * at once; nothing to store, the arrival was the heartbeat.
		 * Replaced by a newer request of the host (its agent restarted):
		 * the interval, so two agents misconfigured with one name do not
		 * replace each other in a tight loop */
		reply(q, 200, json_pack("{s:f, s:[]}", "interval",
					call == ANOLE_HTTPD_CALL_SUPERSEDED ? interval : 0.0, "work"));
		goto out;
	}
	if (call == ANOLE_HTTPD_CALL_WOKEN) {
		/* a diagnosis was queued for the host: take it (or, if another
		 * request took it, wait out the rest of the hold) */
		pthread_mutex_lock(&q->c->lock);
		store_exec(q->c->db, "BEGIN IMMEDIATE");
		st = store_prepare(q->c->db, "SELECT id FROM hosts WHERE name=? AND token_id=?");
		if (st) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, q->token_id);
			if (sqlite3_step(st) == SQLITE_ROW)
				host_id = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		if (host_id)
			take_work(q->c, host_id, work, now);
		if (host_id && !json_array_size(work) && hold > q->r->parked_s &&
		    !anole_httpd_park(q->r, key, hold - q->r->parked_s, ANOLE_HTTPD_PARK_EXCLUSIVE))
			parked = true;
		store_exec(q->c->db, "COMMIT");
		pthread_mutex_unlock(&q->c->lock);
		if (!parked)
			reply(q, 200, json_pack("{s:f, s:O}", "interval",
						json_array_size(work) ? interval : 0.0, "work", work));
		goto out;
	}
	v = json_object_get(body, "metrics_port");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)) {
		reply_error(q, 400, "'metrics_port' is a port number");
		goto out;
	}
	port = v ? (long)json_integer_value(v) : 0;
	if (json_object_get(body, "version") && !(version = string_field(q, body, "version", 64)))
		goto out;
	v = json_object_get(body, "pid");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		reply_error(q, 400, "'pid' is a process id");
		goto out;
	}
	pid = v ? json_integer_value(v) : 0;
	v = json_object_get(body, "running");
	if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) <= 0)) {
		reply_error(q, 400, "'running' is the id of the diagnosis running, or null");
		goto out;
	}
	running = json_is_integer(v) ? json_integer_value(v) : 0;

	pthread_mutex_lock(&q->c->lock);
	store_exec(q->c->db, "BEGIN IMMEDIATE");
	st = store_prepare(q->c->db, "SELECT h.id, h.token_id, h.status, coalesce(t.revoked, 1) "
			   "FROM hosts h LEFT JOIN agent_tokens t ON t.id=h.token_id WHERE h.name=?");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			host_id = sqlite3_column_int64(st, 0);
			bound_token = sqlite3_column_int64(st, 1);
			snprintf(old_status, sizeof(old_status), "%s", sqlite3_column_text(st, 2));
			bound_revoked = sqlite3_column_int(st, 3);
		}
		sqlite3_finalize(st);
	}
	/* a name belongs to the token that registered it (until that token is
	 * revoked): another agent cannot take over a host's identity */
	if (host_id && bound_token != q->token_id && !bound_revoked) {
		store_exec(q->c->db, "ROLLBACK");
		pthread_mutex_unlock(&q->c->lock);
		reply_error(q, 409, "host '%s' is registered with another agent token", name);
		goto out;
	}
	st = store_prepare(q->c->db, "INSERT INTO hosts(name,address,metrics_port,token_id,registered,"
			   "last_seen,status,version,agent_pid) VALUES(?1,?2,?3,?4,?5,?5,'up',?6,?7) "
			   "ON CONFLICT(name) DO UPDATE SET address=?2, metrics_port=?3, token_id=?4, "
			   "last_seen=?5, status='up', version=?6, agent_pid=?7");
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, q->peer, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3, (int)port);
		sqlite3_bind_int64(st, 4, q->token_id);
		sqlite3_bind_double(st, 5, now);
		sqlite3_bind_text(st, 6, version, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 7, pid);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (!host_id)
		host_id = sqlite3_last_insert_rowid(q->c->db);
	/* a diagnosis the console thinks runs there but the agent does not
	 * (it restarted, or never got it): failed, with why */
	st = store_prepare(q->c->db, "UPDATE diagnoses SET state='failed', finished=?, error="
			   "'the agent no longer runs it (it restarted, or the work was lost)' "
			   "WHERE host_id=? AND state='running' AND id<>? RETURNING id");
	if (st) {
		sqlite3_bind_double(st, 1, now);
		sqlite3_bind_int64(st, 2, host_id);
		sqlite3_bind_int64(st, 3, running);
		/* one runs at a time per host; more only after a crash mid-update */
		while (sqlite3_step(st) == SQLITE_ROW)
			if (nlost < sizeof(lost) / sizeof(lost[0]))
				lost[nlost++] = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	/* new work only to an idle agent: one diagnosis at a time per host */
	if (!running)
		take_work(q->c, host_id, work, now);
	if (!old_status[0] || strcmp(old_status, "up"))
		store_audit(q->c->db, "agent", old_status[0] ? "host.up" : "agent.register", name,
			    q->peer, 200, old_status[0] ? "heartbeats resumed" : "first heartbeat");
	/* nothing to do for an idle agent that lets itself be held: park it,
	 * under the lock, so a diagnosis queued after this read wakes it;
	 * exclusive, so the request of an agent that restarted replaces the
	 * dead one's and the work goes to the live one */
	if (!running && !json_array_size(work) && hold > 0 &&
	    !anole_httpd_park(q->r, key, hold, ANOLE_HTTPD_PARK_EXCLUSIVE))
		parked = true;
	store_exec(q->c->db, "COMMIT");
	pthread_mutex_unlock(&q->c->lock);
	for (size_t i = 0; i < nlost; i++) {
		char lost_key[48];

		/* a page waiting on it (GET diagnoses/ID?wait=) shows it now */
		snprintf(lost_key, sizeof(lost_key), "diag:%lld", lost[i]);
		console_wake(q->c, lost_key);
	}
	if (!old_status[0] && q->c->o->prometheus)
		collect_write_targets(q->c);
	if (!parked)
		reply(q, 200, json_pack("{s:f, s:O}", "interval", interval, "work", work));
out:
	json_decref(work);
	json_decref(body);
}

static void api_agent_result(struct req *q)
{
	static const char *const fields[] = { "status", "?result", "?error", NULL };
	json_t *body, *result;
	long long id = parse_id(q->seg[2]);
	const char *status, *error = NULL;
	char *result_text = NULL;
	sqlite3_stmt *st;
	int changed = 0;

	q->action = "diagnosis.result";
	snprintf(q->target, sizeof(q->target), "diagnosis %s", q->seg[2]);
	body = body_object(q, fields);
	if (!body)
		return;
	if (!(status = string_field(q, body, "status", 8)))
		goto out;
	if (strcmp(status, "done") && strcmp(status, "failed")) {
		reply_error(q, 400, "'status' is done or failed");
		goto out;
	}
	if (json_object_get(body, "error") && !(error = string_field(q, body, "error", 4096)))
		goto out;
	result = json_object_get(body, "result");
	if (result)
		result_text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
	pthread_mutex_lock(&q->c->lock);
	/* only the agent of the diagnosis's host, and only while it runs */
	st = id ? store_prepare(q->c->db, "UPDATE diagnoses SET state=?, result=?, error=?, "
				"finished=? WHERE id=? AND state='running' AND host_id IN "
				"(SELECT id FROM hosts WHERE token_id=?)") : NULL;
	if (st) {
		sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, result_text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 4, store_now());
		sqlite3_bind_int64(st, 5, id);
		sqlite3_bind_int64(st, 6, q->token_id);
		sqlite3_step(st);
		changed = sqlite3_changes(q->c->db);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&q->c->lock);
	if (!changed)
		reply_error(q, 404, "no diagnosis %s runs on a host of this agent", q->seg[2]);
	else {
		char key[48];

		/* a page waiting on it (GET diagnoses/ID?wait=) shows it now */
		snprintf(key, sizeof(key), "diag:%lld", id);
		console_wake(q->c, key);
		snprintf(q->detail, sizeof(q->detail), "%s%s%.200s", status, error ? ": " : "",
			 error ? error : "");
		reply(q, 200, json_pack("{s:b}", "ok", 1));
	}
out:
	free(result_text);
	json_decref(body);
}

/* --------------------------------------------------------------- routing */

enum who { WHO_ANYONE, WHO_AGENT, WHO_VIEWER, WHO_OPERATOR, WHO_ADMIN };

struct endpoint {
	const char *method;
	const char *pattern;         /* segments after /api/v1/, '*' for a name or id */
	enum who who;
	void (*fn)(struct req *q);
	const char *action;          /* the audit log's name for it */
};

static const struct endpoint endpoints[] = {
	{ "POST", "login", WHO_ANYONE, api_login, "login" },
	{ "POST", "logout", WHO_VIEWER, api_logout, "logout" },
	{ "GET", "session", WHO_VIEWER, api_session, "read" },
	{ "GET", "tools", WHO_VIEWER, api_tools, "read" },
	{ "GET", "hosts", WHO_VIEWER, api_hosts, "read" },
	{ "GET", "hosts/*", WHO_VIEWER, api_host, "read" },
	{ "DELETE", "hosts/*", WHO_ADMIN, api_host_delete, "host.delete" },
	{ "GET", "hosts/*/metrics", WHO_VIEWER, api_metrics, "read" },
	{ "GET", "hosts/*/diagnoses", WHO_VIEWER, api_diagnoses_of_host, "read" },
	{ "POST", "hosts/*/diagnoses", WHO_OPERATOR, api_diagnosis_create, "diagnosis.create" },
	{ "GET", "diagnoses/*", WHO_VIEWER, api_diagnosis, "read" },
	{ "GET", "alerts/rules", WHO_VIEWER, api_rules, "read" },
	{ "POST", "alerts/rules", WHO_OPERATOR, api_rule_create, "alert_rule.create" },
	{ "DELETE", "alerts/rules/*", WHO_OPERATOR, NULL, "alert_rule.delete" },
	{ "GET", "alerts/events", WHO_VIEWER, api_events, "read" },
	{ "GET", "audit", WHO_VIEWER, api_audit, "read" },
	{ "GET", "users", WHO_ADMIN, api_users, "read" },
	{ "POST", "users", WHO_ADMIN, api_user_create, "user.create" },
	{ "DELETE", "users/*", WHO_ADMIN, api_user_delete, "user.delete" },
	{ "GET", "tokens", WHO_ADMIN, api_tokens, "read" },
	{ "POST", "tokens", WHO_ADMIN, api_token_create, "token.create" },
	{ "DELETE", "tokens/*", WHO_ADMIN, api_token_revoke, "token.revoke" },
	{ "POST", "agent/heartbeat", WHO_AGENT, api_agent_heartbeat, "agent.heartbeat" },
	{ "POST", "agent/diagnoses/*", WHO_AGENT, api_agent_result, "diagnosis.result" },
};

static void api_rule_delete(struct req *q)
{
	q->action = "alert_rule.delete";
	delete_row(q, "DELETE FROM alert_rules WHERE id=?", "rule", q->seg[2]);
}

static bool pattern_matches(const char *pattern, const struct req *q)
{
	char buf[64];
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", pattern);
	for (char *save = NULL, *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save), i++)
		if (i >= q->nseg || (strcmp(s, "*") && strcmp(s, q->seg[i])))
			return false;
	return i == q->nseg;
}

/* Split the path after /api/v1/; false if a segment is empty or not a name. */
static bool split_path(struct req *q, const char *rest)
{
	if (strlen(rest) >= sizeof(q->segbuf))
		return false;
	memcpy(q->segbuf, rest, strlen(rest) + 1);
	q->nseg = 0;
	for (char *p = q->segbuf; *p;) {
		char *slash = strchr(p, '/');

		if (q->nseg == MAX_SEGS)
			return false;
		if (slash)
			*slash = '\0';
		if (!anole_console_name_valid(p))
			return false;
		q->seg[q->nseg++] = p;
		if (!slash)
			break;
		p = slash + 1;
		if (!*p)
			return false;
	}
	return q->nseg > 0;
}

static void api_handle(const struct anole_httpd_request *r, struct anole_httpd_response *res,
		       void *arg)
{
	struct listener *l = arg;
	struct req q = { .c = l->c, .r = r, .res = res, .tls = l->tls };
	const struct endpoint *ep = NULL;
	bool changes_state = strcmp(r->method, "GET") && strcmp(r->method, "HEAD");
	bool path_known = false;
	unsigned deny = 0;

	auth_peer_address(r->peer, q.peer, sizeof(q.peer));
	anole_httpd_add_header(res, "Cache-Control", "no-store");
	if (split_path(&q, r->path + strlen("/api/v1/")))
		for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
			if (!pattern_matches(endpoints[i].pattern, &q))
				continue;
			path_known = true;
			if (!strcmp(endpoints[i].method, r->method) ||
			    (!strcmp(r->method, "HEAD") && !strcmp(endpoints[i].method, "GET")))
				ep = &endpoints[i];
		}
	if (!ep) {
		anole_httpd_json_error(res, path_known ? 405 : 404, "%s %s: %s", r->method, r->path,
				       path_known ? "method not allowed" : "no such endpoint");
		return;
	}
	q.action = ep->action;
	if (ep->who == WHO_AGENT)
		deny = check_agent(&q);
	else if (ep->who != WHO_ANYONE)
		deny = check_session(&q, changes_state);
	if (!deny && ep->who >= WHO_VIEWER && q.role < (enum console_role)(ep->who - WHO_VIEWER + 1))
		deny = 403;
	if (deny == 401)
		reply_error(&q, 401, ep->who == WHO_AGENT ? "a valid agent token is required "
			    "(Authorization: Bearer TOKEN)" : "log in first (POST /api/v1/login)");
	else if (deny == 403)
		reply_error(&q, 403, q.user[0] && q.role < (enum console_role)(ep->who - WHO_VIEWER + 1) ?
			    "%s %s needs the %s role" : "%s %s: missing or wrong X-CSRF-Token header",
			    r->method, ep->pattern, role_name((enum console_role)(ep->who - WHO_VIEWER + 1)));
	else if (ep->fn)
		ep->fn(&q);
	else
		api_rule_delete(&q);
	/* parked (a long poll, a login's password check): the answer and its
	 * audit record come when it is handled again */
	if (anole_httpd_is_parked(r))
		return;
	if (!res->status)
		res->status = 200;
	/* every state change, allowed or not, and every refused agent */
	if (changes_state && !(ep->fn == api_agent_heartbeat && res->status < 300)) {
		const char *who = q.user[0] ? q.user : ep->who == WHO_AGENT ? "agent" : "-";

		if (!q.target[0] && q.nseg > 1)
			snprintf(q.target, sizeof(q.target), "%s", q.seg[1]);
		pthread_mutex_lock(&q.c->lock);
		store_audit(q.c->db, who, q.action, q.target, q.peer, res->status,
			    res->status >= 300 ? q.detail : q.detail[0] ? q.detail : NULL);
		pthread_mutex_unlock(&q.c->lock);
	}
}

/* ----------------------------------------------------------- static files */

static const char *content_type(const char *path)
{
	static const char *const types[][2] = {
		{ ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" }, { ".svg", "image/svg+xml" },
		{ ".png", "image/png" }, { ".json", "application/json" },
		{ ".ico", "image/x-icon" }, { ".txt", "text/plain; charset=utf-8" },
		{ ".map", "application/json" }, { ".woff2", "font/woff2" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i][0]))
			return types[i][1];
	return "application/octet-stream";
}

/*
 * A request path is served only when every component is a plain name
 * (letters, digits, . _ -, not starting with a dot: no "..", no hidden
 * files) and the file, opened below the web directory without following a
 * final symlink, is a regular file. Anything else is 404, not 400: nothing
 * about the tree is told.
 */
static void static_get(const struct anole_httpd_request *r, struct anole_httpd_response *res,
		       void *arg)
{
	struct listener *l = arg;
	const char *path = r->path;
	char rel[256];
	struct stat st;
	int fd;

	anole_httpd_add_header(res, "X-Content-Type-Options", "nosniff");
	anole_httpd_add_header(res, "X-Frame-Options", "DENY");
	if (!strcmp(path, "/"))
		path = "/index.html";
	if (l->c->web_fd < 0) {
#if ANOLE_CONSOLE_EMBEDDED_WEB
		/* the page built into the binary (console/web/embed.py): a table
		 * lookup, so no path from the URL ever reaches the file system */
		const struct console_web_asset *a = console_web_asset(path);
		const char *inm = anole_httpd_header(r, "If-None-Match");

		if (!a) {
			anole_httpd_text(res, 404, "not found");
			return;
		}
		anole_httpd_add_header(res, "ETag", a->etag);
		anole_httpd_add_header(res, "Cache-Control", "no-cache");
		res->content_type = a->content_type;
		if (inm && !strcmp(inm, a->etag)) {
			res->status = 304;
			return;
		}
		strbuf_add(&res->body, a->data, a->size);
		res->status = 200;
#else
		anole_httpd_text(res, 404, "the console's web files are not installed (--web-dir)");
#endif
		return;
	}
	if (path[0] != '/' || strlen(path) >= sizeof(rel)) {
		anole_httpd_text(res, 404, "not found");
		return;
	}
	snprintf(rel, sizeof(rel), "%s", path + 1);
	for (char *save = NULL, *s = strtok_r(rel, "/", &save); s; s = strtok_r(NULL, "/", &save))
		if (!anole_console_name_valid(s)) {
			anole_httpd_text(res, 404, "not found");
			return;
		}
	if (strstr(path, "//") || path[strlen(path) - 1] == '/') {
		anole_httpd_text(res, 404, "not found");
		return;
	}
	fd = openat(l->c->web_fd, path + 1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (32 << 20)) {
		if (fd >= 0)
			close(fd);
		anole_httpd_text(res, 404, "not found");
		return;
	}
	strbuf_grow(&res->body, (size_t)st.st_size);
	for (;;) {
		char buf[65536];
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		strbuf_add(&res->body, buf, (size_t)n);
	}
	close(fd);
	res->status = 200;
	res->content_type = content_type(path);
	anole_httpd_add_header(res, "Cache-Control", "no-cache");
}

int api_start(struct console *c, struct anole_httpd **http, struct anole_httpd **https)
{
	static struct listener plain, tls;
	struct anole_httpd_route routes[] = {
		{ "GET", "/api/v1/", api_handle, &plain, ANOLE_HTTPD_PREFIX },
		{ "POST", "/api/v1/", api_handle, &plain, ANOLE_HTTPD_PREFIX },
		{ "PUT", "/api/v1/", api_handle, &plain, ANOLE_HTTPD_PREFIX },
		{ "DELETE", "/api/v1/", api_handle, &plain, ANOLE_HTTPD_PREFIX },
		{ "GET", "/", static_get, &plain, ANOLE_HTTPD_PREFIX },
	};
	struct anole_httpd_opts ho = {
		.name = "console", .option = "--listen", .listen = c->o->listen,
		.routes = routes, .nroutes = sizeof(routes) / sizeof(routes[0]),
		.max_body = MAX_BODY, .json_errors = true, .max_clients = MAX_CLIENTS,
		.timeout_s = 30, .threads = API_THREADS,
	};
	int ret;

	plain = (struct listener){ .c = c };
	tls = (struct listener){ .c = c, .tls = true };
	ret = anole_httpd_start(http, &ho);
	if (!ret)
		atomic_store(&c->servers[0], *http);
	if (ret || !c->o->tls_listen)
		return ret;
	{
		char *cert = NULL, *key = NULL;
		struct strbuf sb = STRBUF_INIT;

		for (int i = 0; i < 2; i++) {
			const char *p = i ? c->o->tls_key : c->o->tls_cert;
			FILE *f = fopen(p, "re");
			char buf[4096];
			size_t n;

			if (!f) {
				ret = anole_error(errno, "console: cannot read %s", p);
				break;
			}
			strbuf_reset(&sb);
			while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
				strbuf_add(&sb, buf, n);
			fclose(f);
			*(i ? &key : &cert) = xstrdup(sb.buf ? sb.buf : "");
		}
		strbuf_release(&sb);
		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
			routes[i].arg = &tls;
		ho.listen = c->o->tls_listen;
		ho.option = "--tls-listen";
		ho.name = "console https";
		ho.tls_cert_pem = cert;
		ho.tls_key_pem = key;
		if (!ret)
			ret = anole_httpd_start(https, &ho);
		if (!ret)
			atomic_store(&c->servers[1], *https);
		if (key)
			OPENSSL_cleanse(key, strlen(key));
		free(cert);
		free(key);
	}
	if (ret) {
		atomic_store(&c->servers[0], NULL);
		anole_httpd_stop(*http);
		*http = NULL;
	}
	return ret;
}

void console_wake(struct console *c, const char *key)
{
	/* under the lock: a listener is not stopped meanwhile (serve clears
	 * c->servers under it first) */
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < 2; i++)
		anole_httpd_wake(atomic_load(&c->servers[i]), key);
	pthread_mutex_unlock(&c->lock);
}
