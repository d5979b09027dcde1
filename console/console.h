/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anole console: the operations console (docs/anole-console.md). One
 * process serves the JSON API and the web page, keeps hosts, users,
 * sessions, agent tokens, diagnoses, alert rules and events, the audit log
 * and a short-retention metric store in SQLite (DIR/console.db, WAL), and
 * scrapes each registered agent's /metrics.
 *   store.c     the SQLite schema and the calls on it
 *   auth.c      password hashes (scrypt), tokens, sessions
 *   api.c       the HTTP API (lib/httpd.c) and the static web files
 *   collect.c   the background thread: liveness, scrapes, retention, alerts
 *   promtext.c  the Prometheus text format parser (untrusted: fuzzed)
 */
#ifndef ANOLE_CONSOLE_H
#define ANOLE_CONSOLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console_serve_opts {
	const char *listen;          /* HTTP: HOST:PORT, [ADDR]:PORT, :PORT */
	const char *tls_listen;      /* second listener, HTTPS; NULL: none */
	const char *tls_cert;        /* PEM files for tls_listen */
	const char *tls_key;
	const char *data_dir;        /* DIR: console.db and the Prometheus files */
	const char *web_dir;         /* static files; NULL: the built-in default */
	const char *prometheus;      /* base URL: the metric store is Prometheus */
	double scrape_interval;      /* seconds, default 15 */
	double retention;            /* seconds of samples kept, default 86400 */
	double heartbeat_interval;   /* seconds agents are told to wait, default 5 */
	unsigned missed_heartbeats;  /* down after this many missed, default 3 */
	const char *pid_file;
	const char *port_file;       /* the bound HTTP port is written there */
};

/* Serve until SIGINT/SIGTERM/SIGHUP. 0 or -errno (reported). */
int console_serve(const struct console_serve_opts *o);

/* `console user add`: create or replace NAME's role and password. */
int console_user_add(const char *data_dir, const char *name, const char *role,
		     const char *password);
/* `console token create`: a new agent token (to free), only its hash kept. */
int console_token_create(const char *data_dir, const char *note, char **token);

/* ------------------------------------------------- promtext.c (untrusted) */

struct console_sample {
	const char *name;     /* into the parsed text: valid until the next call */
	size_t name_len;
	const char *labels;   /* canonical: k="v",k="v" as in the text (escapes kept) */
	size_t labels_len;
	double value;
};
/*
 * Parse a Prometheus text exposition (0.0.4): call fn for each sample line.
 * Comments, blank lines and timestamps are skipped. A malformed line ends
 * the parse: -EINVAL with *bad_line its 1-based number. fn returning
 * non-zero stops (that value is returned).
 */
int console_promtext_parse(const char *text, size_t len,
			   int (*fn)(const struct console_sample *s, void *arg), void *arg,
			   unsigned *bad_line);
#endif
