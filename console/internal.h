/* SPDX-License-Identifier: Apache-2.0 */
/* The console's parts, shared between its files (console.h lists them). */
#ifndef ANOLE_CONSOLE_INTERNAL_H
#define ANOLE_CONSOLE_INTERNAL_H
#include "console.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "anole/hashmap.h"
#include "anole/strbuf.h"

enum console_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };

struct console {
	const struct console_serve_opts *o;
	sqlite3 *db;
	/* One connection, used by the HTTP thread and the collector: every
	 * statement runs under this lock (SQLite transactions are short). */
	pthread_mutex_t lock;
	int web_fd;                  /* the static files' directory, -1 if none */
	char *web_dir;
	struct anole_http *http;     /* scrapes, webhooks, Prometheus queries */
	atomic_bool stopping;
	double started;              /* store_now() at start: liveness waits a while */
	/* login failures per peer address, for 429 (under lock) */
	struct login_failure { char peer[64]; double first; unsigned count; } failures[64];
	/* logins' password checks (api.c): off the request threads */
	struct anole_workqueue *login_wq;
	/* the listeners (HTTP, HTTPS or NULL), for console_wake() */
	struct anole_httpd *_Atomic servers[2];
	/* series ids by host, name and labels: a scrape costs no lookups */
	struct anole_hashmap series;
	/* collect.c's latest-sample query, prepared once (under lock) */
	sqlite3_stmt *latest;
	/* what DIR/prometheus/targets.json holds (--prometheus), under lock */
	char *targets_text;
};

/* ---------------------------------------------------------------- store.c */
int store_open(sqlite3 **db, const char *data_dir);
double store_now(void);
/* Run SQL with no result (schema, BEGIN/COMMIT). 0 or -EIO (logged). */
int store_exec(sqlite3 *db, const char *sql);
/* Prepare, or NULL (logged). */
sqlite3_stmt *store_prepare(sqlite3 *db, const char *sql);
/* A row's text column as a JSON string (null for NULL). */
json_t *store_column_json(sqlite3_stmt *st, int col);
/* Append an audit record. */
void store_audit(sqlite3 *db, const char *user, const char *action, const char *target,
		 const char *peer, unsigned result, const char *detail);
/* A new agent token: its hash stored, the token itself in *token (to free). */
int store_token_insert(sqlite3 *db, const char *note, char **token, long long *id);
enum console_role role_from_name(const char *name);
const char *role_name(enum console_role r);

/* ----------------------------------------------------------------- auth.c */
/* "scrypt$N$r$p$SALT$HASH" (hex) of password; NULL on failure. */
char *auth_hash_password(const char *password);
bool auth_check_password(const char *stored, const char *password);
/* n random bytes as hex (2n chars + NUL in out). 0 or -EIO. */
int auth_random_hex(char *out, size_t n);
/* SHA-256 of s as hex (65 bytes). */
void auth_sha256_hex(const char *s, char out[65]);
/* The peer's address without the port ("10.0.0.2", "::1"). */
void auth_peer_address(const char *peer, char *out, size_t n);

/* --------------------------------------------------------------- server.c */
/* Write text to path whole (anole_output_open: a temporary of mode 0644
 * renamed into place): a reader never sees half a file. 0 or -errno (logged). */
int console_write_file(const char *path, const char *text);

/* ------------------------------------------------------------------ api.c */
struct anole_httpd;
int api_start(struct console *c, struct anole_httpd **http, struct anole_httpd **https);
/* Answer the requests parked on key (on every listener): "host:NAME" for
 * an agent's held heartbeat, "diag:ID" for a page waiting on a diagnosis.
 * Called after the change is committed, without c->lock (it takes it). */
void console_wake(struct console *c, const char *key);

/* -------------------------------------------------------------- collect.c */
int collect_start(struct console *c, pthread_t *th);
/* the equality of c->series entries */
bool collect_series_eq(const void *entry, const void *key);
/* A query of the metric store (embedded or Prometheus): {"series":[...]}.
 * label, if not NULL, is one pair in canonical form (k="v", escaped as in the
 * text format) that every series returned has: a chart asks only for what it
 * draws (24 h of all 40 meminfo fields is 10 MB of JSON). */
json_t *collect_query(struct console *c, const char *host, const char *name, const char *label,
		      double range, struct strbuf *err, unsigned *status);
/* Append KEY="VALUE" in that canonical form (\\, \" and \n escaped in VALUE):
 * how a stored label text spells a pair. */
void collect_label_pair(struct strbuf *sb, const char *key, size_t key_len, const char *value);
/* Latest health figures of a host for the host list (caller holds the lock). */
json_t *collect_health(struct console *c, long long host_id);
/* Rewrite the Prometheus file_sd targets file (with --prometheus) if the
 * hosts' addresses changed: Prometheus reloads its targets on every write. */
void collect_write_targets(struct console *c);
/* Rules as a Prometheus rule file (YAML text). */
void collect_rules_yaml(struct console *c, struct strbuf *out);
#endif
