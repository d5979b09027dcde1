// SPDX-License-Identifier: Apache-2.0
/*
 * The console's background thread, once a second: hosts whose heartbeats
 * stopped go down (and their diagnoses fail, with why), diagnoses that
 * never report end failed; every scrape interval each host's /metrics is
 * scraped into the embedded store and the alert rules are evaluated on it;
 * every minute samples older than the retention go.
 *
 * HTTP (scrapes, webhooks, Prometheus) happens outside c->lock, so the API
 * never waits on a slow agent or webhook.
 */
#include "internal.h"

#include "anole/error.h"
#include "anole/http.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* seconds past its duration a diagnosis may take: more than the agent's
 * own limit (30 s, monitor/console_agent.c), so the agent's reason comes first */
#define DIAG_GRACE 45.0
#define QUEUE_TIMEOUT 60.0     /* seconds an up agent has to take queued work */
#define MAX_SERIES_PER_SCRAPE 4000
#define MAX_SCRAPE_BYTES (8u << 20)

struct series_entry {
	long long host_id, id;
	size_t key_len;
	char key[];                  /* name '{' labels */
};

struct series_key {
	long long host_id;
	const char *key;
	size_t key_len;
};

bool collect_series_eq(const void *entry, const void *key)
{
	const struct series_entry *e = entry;
	const struct series_key *k = key;

	return e->host_id == k->host_id && e->key_len == k->key_len &&
	       !memcmp(e->key, k->key, k->key_len);
}

/* ------------------------------------------------------------- liveness */

/* The diagnoses failed by one liveness pass: pages waiting on them
 * (GET diagnoses/ID?wait=) are woken once the lock is let go. */
struct failed_ids {
	long long id[64];
	size_t n;
	bool more; /* more than fit: those pages see it when their wait ends */
};

static void fail_diagnoses(struct console *c, const char *where, const char *why, double now,
			   struct failed_ids *failed)
{
	char sql[512];
	sqlite3_stmt *st;

	snprintf(sql, sizeof(sql), "UPDATE diagnoses SET state='failed', finished=?1, error=?2 "
		 "WHERE %s RETURNING id", where);
	st = store_prepare(c->db, sql);
	if (!st)
		return;
	sqlite3_bind_double(st, 1, now);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 3, now);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (failed->n < sizeof(failed->id) / sizeof(failed->id[0]))
			failed->id[failed->n++] = sqlite3_column_int64(st, 0);
		else
			failed->more = true;
	}
	sqlite3_finalize(st);
}

static void check_liveness(struct console *c)
{
	double now = store_now(), limit = c->o->heartbeat_interval * c->o->missed_heartbeats;
	sqlite3_stmt *st;
	char why[160], where[96];
	struct failed_ids failed = { .n = 0 };

	pthread_mutex_lock(&c->lock);
	store_exec(c->db, "BEGIN IMMEDIATE");
	/* after a console restart every last_seen is old: the agents get the
	 * same missed heartbeats to come back before their hosts go down (and
	 * a diagnosis running meanwhile is not failed for the console's absence) */
	st = now - c->started < limit ? NULL :
	     store_prepare(c->db, "SELECT id, name FROM hosts WHERE status='up' AND last_seen < ?");
	if (st) {
		sqlite3_bind_double(st, 1, now - limit);
		while (sqlite3_step(st) == SQLITE_ROW) {
			long long id = sqlite3_column_int64(st, 0);
			const char *name = (const char *)sqlite3_column_text(st, 1);
			sqlite3_stmt *u;

			anole_info("console: host %s is down (no heartbeat for %gs)", name, limit);
			store_audit(c->db, "console", "host.down", name, NULL, 200,
				    "missed heartbeats");
			u = store_prepare(c->db, "UPDATE hosts SET status='down' WHERE id=?");
			if (u) {
				sqlite3_bind_int64(u, 1, id);
				sqlite3_step(u);
				sqlite3_finalize(u);
			}
			snprintf(why, sizeof(why), "the host went down (no heartbeat for %g s): "
				 "its agent stopped or is cut off", limit);
			snprintf(where, sizeof(where), "host_id=%lld AND state IN ('queued','running') "
				 "AND ?3 > 0", id);
			fail_diagnoses(c, where, why, now, &failed);
		}
		sqlite3_finalize(st);
	}
	snprintf(why, sizeof(why), "no result within its duration + %g s", DIAG_GRACE);
	snprintf(where, sizeof(where), "state='running' AND started + duration + %g < ?3",
		 DIAG_GRACE);
	fail_diagnoses(c, where, why, now, &failed);
	snprintf(why, sizeof(why), "the agent did not take it within %g s", QUEUE_TIMEOUT);
	snprintf(where, sizeof(where), "state='queued' AND created + %g < ?3", QUEUE_TIMEOUT);
	fail_diagnoses(c, where, why, now, &failed);
	store_exec(c->db, "COMMIT");
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < failed.n; i++) {
		char key[48];

		snprintf(key, sizeof(key), "diag:%lld", failed.id[i]);
		console_wake(c, key);
	}
}

/* --------------------------------------------------------------- scrapes */

/* A host's agent as HOST:PORT, an IPv6 address in brackets: the scrape URL,
 * the Prometheus instance label and its file_sd target are all this. */
static void host_port(char *out, size_t n, const char *addr, int port)
{
	snprintf(out, n, strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
}

struct scrape_target {
	long long host_id;
	char name[72];
	char url[128];
};

struct scrape_ctx {
	struct console *c;
	long long host_id;
	double ts;
	sqlite3_stmt *ins_series, *sel_series, *ins_sample;
	unsigned stored;
};

static long long series_id(struct scrape_ctx *s, const struct console_sample *smp)
{
	struct console *c = s->c;
	char keybuf[1024];
	size_t klen = smp->name_len + 1 + smp->labels_len;
	struct series_key k = { s->host_id, keybuf, klen };
	struct series_entry *e;
	uint64_t h;
	long long id = 0;

	if (klen >= sizeof(keybuf))
		return 0; /* such long label sets are not kept */
	memcpy(keybuf, smp->name, smp->name_len);
	keybuf[smp->name_len] = '{';
	memcpy(keybuf + smp->name_len + 1, smp->labels, smp->labels_len);
	h = anole_hash_bytes(keybuf, klen, (uint64_t)s->host_id);
	e = anole_hashmap_get(&c->series, h, &k);
	if (e)
		return e->id;
	sqlite3_reset(s->ins_series);
	sqlite3_bind_int64(s->ins_series, 1, s->host_id);
	sqlite3_bind_text(s->ins_series, 2, smp->name, (int)smp->name_len, SQLITE_TRANSIENT);
	sqlite3_bind_text(s->ins_series, 3, smp->labels, (int)smp->labels_len, SQLITE_TRANSIENT);
	sqlite3_step(s->ins_series);
	sqlite3_reset(s->sel_series);
	sqlite3_bind_int64(s->sel_series, 1, s->host_id);
	sqlite3_bind_text(s->sel_series, 2, smp->name, (int)smp->name_len, SQLITE_TRANSIENT);
	sqlite3_bind_text(s->sel_series, 3, smp->labels, (int)smp->labels_len, SQLITE_TRANSIENT);
	if (sqlite3_step(s->sel_series) == SQLITE_ROW)
		id = sqlite3_column_int64(s->sel_series, 0);
	if (!id)
		return 0;
	e = xmalloc(sizeof(*e) + klen);
	e->host_id = s->host_id;
	e->id = id;
	e->key_len = klen;
	memcpy(e->key, keybuf, klen);
	anole_hashmap_put(&c->series, h, e);
	return id;
}

static int store_sample(const struct console_sample *smp, void *arg)
{
	struct scrape_ctx *s = arg;
	long long id;

	/* histogram buckets are many series for a chart nobody draws here:
	 * _sum and _count are kept, the buckets are not */
	if (smp->name_len > 7 && !memcmp(smp->name + smp->name_len - 7, "_bucket", 7))
		return 0;
	if (s->stored >= MAX_SERIES_PER_SCRAPE || !isfinite(smp->value))
		return 0;
	id = series_id(s, smp);
	if (!id)
		return 0;
	sqlite3_reset(s->ins_sample);
	/* a scrape has one timestamp: a repeated sample of a series in one
	 * page is ignored, not an error */
	sqlite3_bind_int64(s->ins_sample, 1, id);
	sqlite3_bind_double(s->ins_sample, 2, s->ts);
	sqlite3_bind_double(s->ins_sample, 3, smp->value);
	sqlite3_step(s->ins_sample);
	s->stored++;
	return 0;
}

static void scrape_one(struct console *c, const struct scrape_target *t)
{
	struct strbuf body = STRBUF_INIT;
	struct anole_http_response resp;
	unsigned timeout = (unsigned)fmin(10000, c->o->scrape_interval * 1000 / 2);
	struct anole_http_request req = {
		.url = t->url, .body_out = &body, .body_max = MAX_SCRAPE_BYTES,
		.deadline_ms = anole_http_now_ms() + (timeout < 1000 ? 1000 : timeout),
	};
	struct scrape_ctx s = { .c = c, .host_id = t->host_id, .ts = store_now() };
	unsigned bad_line = 0;
	int ret;

	anole_http_response_init(&resp);
	ret = anole_http_request(c->http, &req, &resp);
	if (ret || resp.status != 200) {
		anole_debug("console: scrape of %s (%s): %s", t->name, t->url,
			    ret ? resp.error : "not 200");
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	s.ins_series = store_prepare(c->db, "INSERT OR IGNORE INTO series(host_id,name,labels) "
				     "VALUES(?,?,?)");
	s.sel_series = store_prepare(c->db, "SELECT id FROM series WHERE host_id=? AND name=? AND "
				     "labels=?");
	s.ins_sample = store_prepare(c->db, "INSERT OR IGNORE INTO samples(series_id,ts,value) "
				     "VALUES(?,?,?)");
	if (s.ins_series && s.sel_series && s.ins_sample) {
		store_exec(c->db, "BEGIN IMMEDIATE");
		ret = console_promtext_parse(body.buf ? body.buf : "", body.len, store_sample, &s,
					     &bad_line);
		/* what parsed before a bad line is kept: a scrape is one moment */
		store_exec(c->db, "COMMIT");
		if (ret == -EINVAL)
			anole_warn("console: %s's metrics: malformed line %u", t->name, bad_line);
	}
	sqlite3_finalize(s.ins_series);
	sqlite3_finalize(s.sel_series);
	sqlite3_finalize(s.ins_sample);
	pthread_mutex_unlock(&c->lock);
out:
	anole_http_response_release(&resp);
	strbuf_release(&body);
}

static void scrape_all(struct console *c)
{
	struct scrape_target *t = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;

	pthread_mutex_lock(&c->lock);
	st = store_prepare(c->db, "SELECT id, name, address, metrics_port FROM hosts WHERE "
			   "status='up' AND metrics_port > 0");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		char hp[100];

		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			t = xrealloc(t, cap * sizeof(*t));
		}
		t[n].host_id = sqlite3_column_int64(st, 0);
		snprintf(t[n].name, sizeof(t[n].name), "%s", sqlite3_column_text(st, 1));
		host_port(hp, sizeof(hp), (const char *)sqlite3_column_text(st, 2),
			  sqlite3_column_int(st, 3));
		snprintf(t[n].url, sizeof(t[n].url), "http://%s/metrics", hp);
		n++;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n && !atomic_load(&c->stopping); i++)
		scrape_one(c, &t[i]);
	free(t);
}

static void apply_retention(struct console *c)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&c->lock);
	/* one primary-key range per series (series_id = ? AND ts < ?): no
	 * index on ts is kept up to date on every insert for this */
	st = store_prepare(c->db, "DELETE FROM samples WHERE series_id IN (SELECT id FROM series) "
			   "AND ts < ?");
	if (st) {
		sqlite3_bind_double(st, 1, store_now() - c->o->retention);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------- alerts */

void collect_label_pair(struct strbuf *sb, const char *key, size_t key_len, const char *value)
{
	strbuf_addf(sb, "%.*s=\"", (int)key_len, key);
	for (const char *v = value; *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_addch(sb, '\\');
		if (*v == '\n')
			strbuf_addstr(sb, "\\n");
		else
			strbuf_addch(sb, *v);
	}
	strbuf_addch(sb, '"');
}

/* Does a stored label text (k="v",...) hold every label of the rule? */
static bool labels_match(const char *text, json_t *want)
{
	const char *k;
	json_t *v;

	json_object_foreach(want, k, v) {
		struct strbuf needle = STRBUF_INIT;
		const char *p = text;
		bool found = false;

		collect_label_pair(&needle, k, strlen(k), json_string_value(v));
		while (!found && (p = strstr(p, needle.buf))) {
			found = (p == text || p[-1] == ',') &&
				(p[needle.len] == ',' || p[needle.len] == '\0');
			p++;
		}
		strbuf_release(&needle);
		if (!found)
			return false;
	}
	return true;
}

static bool compare(const char *cmp, double v, double threshold)
{
	if (!strcmp(cmp, ">"))
		return v > threshold;
	if (!strcmp(cmp, "<"))
		return v < threshold;
	if (!strcmp(cmp, ">="))
		return v >= threshold;
	return v <= threshold;
}

struct alert_event {
	long long event_id;
	char *webhook;
	char *json;
};

/* Caller holds the lock: record an event, and queue its webhook. */
static void add_event(struct console *c, sqlite3_stmt *rule, const char *host, const char *state,
		      double value, double now, struct alert_event **ev, size_t *nev)
{
	sqlite3_stmt *st = store_prepare(c->db, "INSERT INTO alert_events(rule_id,rule,host,state,"
					 "value,severity,ts,webhook_status) VALUES(?,?,?,?,?,?,?,?)");
	const char *webhook = (const char *)sqlite3_column_text(rule, 8);
	json_t *j;

	if (!st)
		return;
	sqlite3_bind_int64(st, 1, sqlite3_column_int64(rule, 0));
	sqlite3_bind_text(st, 2, (const char *)sqlite3_column_text(rule, 1), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 5, value);
	sqlite3_bind_text(st, 6, (const char *)sqlite3_column_text(rule, 7), -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 7, now);
	sqlite3_bind_text(st, 8, webhook ? "pending" : NULL, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
	anole_info("console: alert %s on %s: %s (value %g)", sqlite3_column_text(rule, 1), host,
		   state, value);
	if (!webhook)
		return;
	j = json_pack("{s:I, s:s, s:s, s:s, s:f, s:s, s:s, s:f, s:f, s:s}",
		      "event_id", (json_int_t)sqlite3_last_insert_rowid(c->db),
		      "rule", (const char *)sqlite3_column_text(rule, 1), "host", host,
		      "state", state, "value", value,
		      "severity", (const char *)sqlite3_column_text(rule, 7),
		      "metric", (const char *)sqlite3_column_text(rule, 2),
		      "threshold", sqlite3_column_double(rule, 5), "ts", now,
		      "comparison", (const char *)sqlite3_column_text(rule, 4));
	*ev = xrealloc(*ev, (*nev + 1) * sizeof(**ev));
	(*ev)[*nev].event_id = sqlite3_last_insert_rowid(c->db);
	(*ev)[*nev].webhook = xstrdup(webhook);
	(*ev)[*nev].json = json_dumps(j, JSON_COMPACT);
	(*nev)++;
	json_decref(j);
}

static void post_webhooks(struct console *c, struct alert_event *ev, size_t nev)
{
	static const char *const headers[] = { "Content-Type: application/json" };

	for (size_t i = 0; i < nev; i++) {
		struct anole_http_response resp;
		struct anole_http_request req = {
			.method = "POST", .url = ev[i].webhook, .body = ev[i].json,
			.body_len = strlen(ev[i].json), .headers = headers, .nheaders = 1,
			.deadline_ms = anole_http_now_ms() + 5000,
		};
		char status[300];
		sqlite3_stmt *st;

		anole_http_response_init(&resp);
		if (anole_http_request(c->http, &req, &resp))
			snprintf(status, sizeof(status), "failed: %s", resp.error);
		else
			snprintf(status, sizeof(status), "%ld", resp.status);
		anole_http_response_release(&resp);
		pthread_mutex_lock(&c->lock);
		st = store_prepare(c->db, "UPDATE alert_events SET webhook_status=? WHERE id=?");
		if (st) {
			sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, ev[i].event_id);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
		pthread_mutex_unlock(&c->lock);
		free(ev[i].webhook);
		free(ev[i].json);
	}
	free(ev);
}

/*
 * Each rule against each up host's latest value of the metric (series
 * whose labels hold the rule's): true for `for` seconds -> firing; false
 * again -> resolved. State survives a restart (alert_state).
 */
static void evaluate_alerts(struct console *c)
{
	double now = store_now(), fresh = now - 3 * c->o->scrape_interval;
	struct alert_event *ev = NULL;
	size_t nev = 0;
	sqlite3_stmt *rules, *vals, *state, *hosts;

	pthread_mutex_lock(&c->lock);
	store_exec(c->db, "BEGIN IMMEDIATE");
	rules = store_prepare(c->db, "SELECT id, name, metric, labels, comparison, threshold, for_s, "
			      "severity, webhook FROM alert_rules");
	hosts = store_prepare(c->db, "SELECT id, name FROM hosts");
	vals = store_prepare(c->db, "SELECT s.labels, (SELECT value FROM samples WHERE "
			     "series_id=s.id AND ts>=? ORDER BY ts DESC LIMIT 1) FROM series s "
			     "WHERE s.host_id=? AND s.name=?");
	state = store_prepare(c->db, "SELECT since, firing FROM alert_state WHERE rule_id=? AND "
			      "host_id=?");
	while (rules && hosts && vals && state && sqlite3_step(rules) == SQLITE_ROW) {
		json_t *want = json_loads((const char *)sqlite3_column_text(rules, 3), 0, NULL);
		const char *cmp = (const char *)sqlite3_column_text(rules, 4);
		double threshold = sqlite3_column_double(rules, 5), for_s = sqlite3_column_double(rules, 6);
		long long rule_id = sqlite3_column_int64(rules, 0);

		sqlite3_reset(hosts);
		while (sqlite3_step(hosts) == SQLITE_ROW) {
			long long host_id = sqlite3_column_int64(hosts, 0);
			const char *host = (const char *)sqlite3_column_text(hosts, 1);
			bool cond = false, have = false, firing = false;
			double value = NAN, since = 0;
			char sql[160];

			sqlite3_reset(vals);
			sqlite3_bind_double(vals, 1, fresh);
			sqlite3_bind_int64(vals, 2, host_id);
			sqlite3_bind_text(vals, 3, (const char *)sqlite3_column_text(rules, 2), -1,
					  SQLITE_TRANSIENT);
			while (!cond && sqlite3_step(vals) == SQLITE_ROW) {
				double v = sqlite3_column_double(vals, 1);

				if (sqlite3_column_type(vals, 1) == SQLITE_NULL ||
				    !labels_match((const char *)sqlite3_column_text(vals, 0), want))
					continue;
				value = v;
				cond = compare(cmp, v, threshold);
			}
			sqlite3_reset(state);
			sqlite3_bind_int64(state, 1, rule_id);
			sqlite3_bind_int64(state, 2, host_id);
			if (sqlite3_step(state) == SQLITE_ROW) {
				have = true;
				since = sqlite3_column_double(state, 0);
				firing = sqlite3_column_int(state, 1);
			}
			if (cond && !have) {
				snprintf(sql, sizeof(sql), "INSERT INTO alert_state(rule_id,host_id,since,"
					 "firing) VALUES(%lld,%lld,%.6f,0)", rule_id, host_id, now);
				store_exec(c->db, sql);
				since = now;
				have = true;
			}
			if (cond && !firing && now - since >= for_s) {
				snprintf(sql, sizeof(sql), "UPDATE alert_state SET firing=1 WHERE "
					 "rule_id=%lld AND host_id=%lld", rule_id, host_id);
				store_exec(c->db, sql);
				add_event(c, rules, host, "firing", value, now, &ev, &nev);
			} else if (!cond && have) {
				if (firing)
					add_event(c, rules, host, "resolved", value, now, &ev, &nev);
				snprintf(sql, sizeof(sql), "DELETE FROM alert_state WHERE rule_id=%lld "
					 "AND host_id=%lld", rule_id, host_id);
				store_exec(c->db, sql);
			}
		}
		json_decref(want);
	}
	sqlite3_finalize(rules);
	sqlite3_finalize(hosts);
	sqlite3_finalize(vals);
	sqlite3_finalize(state);
	store_exec(c->db, "COMMIT");
	pthread_mutex_unlock(&c->lock);
	post_webhooks(c, ev, nev);
}

/* ----------------------------------------------------------------- query */

static double latest(struct console *c, long long host_id, const char *name, const char *labels,
		     double *ts)
{
	sqlite3_stmt *st;
	double v = NAN;

	/* prepared once: the host list asks this a dozen times per host */
	if (!c->latest)
		c->latest = store_prepare(c->db, "SELECT value, ts FROM samples WHERE series_id="
					  "(SELECT id FROM series WHERE host_id=? AND name=? AND "
					  "labels=?) ORDER BY ts DESC LIMIT ?");
	if (!(st = c->latest))
		return v;
	sqlite3_bind_int64(st, 1, host_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, labels, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, ts ? 2 : 1);
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_double(st, 0);
		if (ts) {
			/* two samples: the counter's increase over the time between them */
			double t1 = sqlite3_column_double(st, 1);

			if (sqlite3_step(st) == SQLITE_ROW && t1 > sqlite3_column_double(st, 1)) {
				*ts = t1 - sqlite3_column_double(st, 1);
				v -= sqlite3_column_double(st, 0);
			} else {
				v = NAN;
			}
		}
	}
	sqlite3_reset(st);
	return v;
}

static void put_number(json_t *o, const char *key, double v)
{
	json_object_set_new(o, key, isfinite(v) ? json_real(v) : json_null());
}

json_t *collect_health(struct console *c, long long host_id)
{
	static const char *const modes[] = { "user", "nice", "system", "idle", "iowait", "irq",
					     "softirq", "steal" };
	json_t *h = json_object();
	double total = 0, idle = 0, dt = 0, total_mem, avail;
	char labels[32];

	if (c->o->prometheus)
		return h;
	put_number(h, "load1", latest(c, host_id, "anole_load1", "", NULL));
	total_mem = latest(c, host_id, "anole_memory_bytes", "field=\"MemTotal\"", NULL);
	avail = latest(c, host_id, "anole_memory_bytes", "field=\"MemAvailable\"", NULL);
	put_number(h, "memory_total_bytes", total_mem);
	put_number(h, "memory_used_ratio", total_mem > 0 ? 1 - avail / total_mem : NAN);
	put_number(h, "psi_cpu_some_avg10", latest(c, host_id, "anole_pressure_ratio",
		   "resource=\"cpu\",kind=\"some\",window=\"10s\"", NULL));
	put_number(h, "psi_memory_some_avg10", latest(c, host_id, "anole_pressure_ratio",
		   "resource=\"memory\",kind=\"some\",window=\"10s\"", NULL));
	put_number(h, "psi_io_some_avg10", latest(c, host_id, "anole_pressure_ratio",
		   "resource=\"io\",kind=\"some\",window=\"10s\"", NULL));
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		double d;

		snprintf(labels, sizeof(labels), "mode=\"%s\"", modes[i]);
		d = latest(c, host_id, "anole_system_cpu_seconds_total", labels, &dt);
		if (!isfinite(d))
			continue;
		total += d;
		if (i == 3 || i == 4)
			idle += d;
	}
	put_number(h, "cpu_busy_ratio", total > 0 ? 1 - idle / total : NAN);
	return h;
}

/* "k=\"v\",..." into a JSON object (values unescaped). */
static json_t *labels_json(const char *text)
{
	json_t *o = json_object();
	const char *p = text;

	while (*p) {
		const char *eq = strchr(p, '=');
		struct strbuf v = STRBUF_INIT;
		char key[128];

		if (!eq || eq[1] != '"' || (size_t)(eq - p) >= sizeof(key))
			break;
		memcpy(key, p, (size_t)(eq - p));
		key[eq - p] = '\0';
		for (p = eq + 2; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1]) {
				p++;
				strbuf_addch(&v, *p == 'n' ? '\n' : *p);
			} else {
				strbuf_addch(&v, *p);
			}
		}
		json_object_set_new(o, key, json_string(v.buf ? v.buf : ""));
		strbuf_release(&v);
		if (*p == '"')
			p++;
		if (*p == ',')
			p++;
	}
	return o;
}

static json_t *query_prometheus(struct console *c, const char *host, const char *name,
				const char *label, double range, struct strbuf *err, unsigned *status)
{
	char instance[128] = "", *q_escaped, url[1024];
	struct strbuf body = STRBUF_INIT, query = STRBUF_INIT;
	struct anole_http_response resp;
	struct anole_http_request req = { .url = url, .body_out = &body, .body_max = 64u << 20,
					  .deadline_ms = anole_http_now_ms() + 15000 };
	json_t *j = NULL, *out = NULL, *result, *item;
	double now = store_now(), step = fmax(c->o->scrape_interval, ceil(range / 11000));
	sqlite3_stmt *st;
	size_t i;

	pthread_mutex_lock(&c->lock);
	st = store_prepare(c->db, "SELECT address, metrics_port FROM hosts WHERE name=?");
	if (st) {
		sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			host_port(instance, sizeof(instance), (const char *)sqlite3_column_text(st, 0),
				  sqlite3_column_int(st, 1));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->lock);
	/* name is a checked metric name and instance an address and a port:
	 * neither can break out of the selector */
	/* label is k="v" with v escaped as PromQL strings are (collect_label_pair) */
	strbuf_addf(&query, "%s{instance=\"%s\"%s%s}", name, instance, label ? "," : "",
		    label ? label : "");
	q_escaped = anole_http_escape(query.buf);
	/* start and end on multiples of the step, as Grafana does: the same
	 * evaluation instants for every query (and for Prometheus's own API
	 * asked the same way), not instants shifted by when the request came */
	snprintf(url, sizeof(url), "%s/api/v1/query_range?query=%s&start=%.0f&end=%.0f&step=%g",
		 c->o->prometheus, q_escaped, floor((now - range) / step) * step,
		 floor(now / step) * step, step);
	free(q_escaped);
	anole_http_response_init(&resp);
	if (anole_http_request(c->http, &req, &resp) || resp.status != 200) {
		strbuf_addf(err, "Prometheus at %s: %s", c->o->prometheus,
			    resp.error[0] ? resp.error : resp.errbody.buf ? resp.errbody.buf : "error");
		*status = 502;
		goto out;
	}
	j = json_loadb(body.buf, body.len, 0, NULL);
	result = json_object_get(json_object_get(j, "data"), "result");
	if (!json_is_array(result)) {
		strbuf_addf(err, "Prometheus at %s: an answer without data.result", c->o->prometheus);
		*status = 502;
		goto out;
	}
	out = json_pack("{s:s, s:s, s:f, s:s, s:[]}", "host", host, "name", name, "range", range,
			"source", "prometheus", "series");
	json_array_foreach(result, i, item) {
		json_t *labels = json_deep_copy(json_object_get(item, "metric"));
		json_t *pts = json_array(), *vals = json_object_get(item, "values"), *pv;
		size_t k;

		json_object_del(labels, "__name__");
		json_object_del(labels, "instance");
		json_object_del(labels, "job");
		json_object_del(labels, "host");
		json_array_foreach(vals, k, pv) {
			const char *vs = json_string_value(json_array_get(pv, 1));

			json_array_append_new(pts, json_pack("[f, f]",
				json_number_value(json_array_get(pv, 0)), vs ? strtod(vs, NULL) : NAN));
		}
		json_array_append_new(json_object_get(out, "series"),
				      json_pack("{s:o, s:o}", "labels", labels ? labels : json_object(),
						"points", pts));
	}
out:
	json_decref(j);
	anole_http_response_release(&resp);
	strbuf_release(&body);
	strbuf_release(&query);
	return out;
}

json_t *collect_query(struct console *c, const char *host, const char *name, const char *label,
		      double range, struct strbuf *err, unsigned *status)
{
	sqlite3_stmt *st, *pts;
	json_t *out, *series;

	if (!name) {
		/* no name: which metrics the host has */
		json_t *names = json_array();

		pthread_mutex_lock(&c->lock);
		st = store_prepare(c->db, "SELECT DISTINCT s.name FROM series s JOIN hosts h ON "
				   "h.id=s.host_id WHERE h.name=? ORDER BY s.name");
		if (st) {
			sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
			while (sqlite3_step(st) == SQLITE_ROW)
				json_array_append_new(names, store_column_json(st, 0));
			sqlite3_finalize(st);
		}
		pthread_mutex_unlock(&c->lock);
		return json_pack("{s:s, s:o}", "host", host, "names", names);
	}
	if (c->o->prometheus)
		return query_prometheus(c, host, name, label, range, err, status);
	series = json_array();
	pthread_mutex_lock(&c->lock);
	st = store_prepare(c->db, "SELECT s.id, s.labels FROM series s JOIN hosts h ON "
			   "h.id=s.host_id WHERE h.name=?1 AND s.name=?2 AND (?3 IS NULL OR "
			   "instr(',' || s.labels || ',', ',' || ?3 || ',') > 0) "
			   "ORDER BY s.labels LIMIT 1000");
	pts = store_prepare(c->db, "SELECT ts, value FROM samples WHERE series_id=? AND ts>=? "
			    "ORDER BY ts");
	if (st && pts) {
		double from = store_now() - range;

		sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		if (label)
			sqlite3_bind_text(st, 3, label, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_t *arr = json_array();

			sqlite3_reset(pts);
			sqlite3_bind_int64(pts, 1, sqlite3_column_int64(st, 0));
			sqlite3_bind_double(pts, 2, from);
			while (sqlite3_step(pts) == SQLITE_ROW)
				json_array_append_new(arr, json_pack("[f, f]",
					sqlite3_column_double(pts, 0), sqlite3_column_double(pts, 1)));
			json_array_append_new(series, json_pack("{s:o, s:o}", "labels",
				labels_json((const char *)sqlite3_column_text(st, 1)), "points", arr));
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(pts);
	pthread_mutex_unlock(&c->lock);
	out = json_pack("{s:s, s:s, s:f, s:s, s:o}", "host", host, "name", name, "range", range,
			"source", "embedded", "series", series);
	return out;
}

/* ------------------------------------------------------------ Prometheus */

void collect_write_targets(struct console *c)
{
	json_t *arr = json_array();
	char *path, *text;
	sqlite3_stmt *st;

	/* under the lock to the end: of two writers (a heartbeat, the
	 * collector) the later one's hosts are the ones left in the file */
	pthread_mutex_lock(&c->lock);
	st = store_prepare(c->db, "SELECT name, address, metrics_port FROM hosts WHERE "
			   "metrics_port > 0 ORDER BY name");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		char target[128];

		host_port(target, sizeof(target), (const char *)sqlite3_column_text(st, 1),
			  sqlite3_column_int(st, 2));
		json_array_append_new(arr, json_pack("{s:[s], s:{s:o}}", "targets", target,
						     "labels", "host", store_column_json(st, 0)));
	}
	sqlite3_finalize(st);
	text = json_dumps(arr, JSON_INDENT(1));
	json_decref(arr);
	if (!text || (c->targets_text && !strcmp(text, c->targets_text))) {
		pthread_mutex_unlock(&c->lock);
		free(text);
		return;
	}
	path = xmalloc(strlen(c->o->data_dir) + 64);
	sprintf(path, "%s/prometheus", c->o->data_dir);
	mkdir(path, 0755);
	strcat(path, "/targets.json");
	/* whole then renamed: Prometheus never reads half a file; 0644: it may
	 * run as another user. A failure is logged, and tried again at the
	 * next scrape interval. */
	if (!console_write_file(path, text)) {
		free(c->targets_text);
		c->targets_text = text;
		text = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(path);
	free(text);
}

void collect_rules_yaml(struct console *c, struct strbuf *out)
{
	sqlite3_stmt *st;

	strbuf_addstr(out, "# anole console alert rules, for Prometheus (rule_files)\n"
			   "groups:\n- name: anole-console\n  rules:\n");
	pthread_mutex_lock(&c->lock);
	st = store_prepare(c->db, "SELECT name, metric, labels, comparison, threshold, for_s, "
			   "severity FROM alert_rules ORDER BY id");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		json_t *labels = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL), *v;
		const char *k;
		bool first = true;

		/* names, metrics, label names are checked identifiers; label values
		 * are JSON strings, which YAML reads as double-quoted strings */
		strbuf_addf(out, "  - alert: %s\n    expr: '%s{", sqlite3_column_text(st, 0),
			    sqlite3_column_text(st, 1));
		json_object_foreach(labels, k, v) {
			char *s = json_dumps(v, JSON_ENCODE_ANY);

			for (char *p = s; p && *p; p++)
				if (*p == '\'')
					*p = ' '; /* no single quote inside the YAML scalar */
			strbuf_addf(out, "%s%s=%s", first ? "" : ",", k, s ? s : "\"\"");
			free(s);
			first = false;
		}
		strbuf_addf(out, "} %s %.17g'\n    for: %.0fs\n    labels:\n      severity: %s\n",
			    sqlite3_column_text(st, 3), sqlite3_column_double(st, 4),
			    sqlite3_column_double(st, 5), sqlite3_column_text(st, 6));
		json_decref(labels);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------- thread */

static void *collect_main(void *arg)
{
	struct console *c = arg;
	struct timespec tick = { 1, 0 };
	double next_scrape = 0, next_retention = 0;

	while (!atomic_load(&c->stopping)) {
		struct timespec now_ts;
		double now;

		check_liveness(c);
		clock_gettime(CLOCK_MONOTONIC, &now_ts);
		now = (double)now_ts.tv_sec + now_ts.tv_nsec / 1e9;
		if (now >= next_scrape) {
			next_scrape = now + c->o->scrape_interval;
			if (!c->o->prometheus) {
				scrape_all(c);
				evaluate_alerts(c);
			} else {
				/* the targets file follows address changes too */
				collect_write_targets(c);
			}
		}
		if (now >= next_retention) {
			next_retention = now + 60;
			apply_retention(c);
		}
		nanosleep(&tick, NULL);
	}
	return NULL;
}

int collect_start(struct console *c, pthread_t *th)
{
	int ret = pthread_create(th, NULL, collect_main, c);

	return ret ? anole_error(ret, "console: cannot start the collector thread") : 0;
}
