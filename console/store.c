// SPDX-License-Identifier: Apache-2.0
/*
 * The console's SQLite store, DIR/console.db: WAL mode (readers never wait
 * for the writer, and a crash or restart loses no committed change),
 * foreign keys on, every multi-statement change in one transaction.
 */
#include "internal.h"

#include "anole/diag_policy.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char schema[] =
"CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
"  role TEXT NOT NULL, pw_hash TEXT NOT NULL, created REAL NOT NULL);"
"CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY,"
"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
"  csrf TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL, peer TEXT);"
"CREATE TABLE IF NOT EXISTS agent_tokens(id INTEGER PRIMARY KEY, token_hash TEXT UNIQUE NOT NULL,"
"  note TEXT, created REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
"CREATE TABLE IF NOT EXISTS hosts(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
"  address TEXT, metrics_port INTEGER, token_id INTEGER, registered REAL, last_seen REAL,"
"  status TEXT NOT NULL DEFAULT 'up', version TEXT, agent_pid INTEGER);"
"CREATE TABLE IF NOT EXISTS diagnoses(id INTEGER PRIMARY KEY,"
"  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
"  tool TEXT NOT NULL, duration REAL NOT NULL, options TEXT NOT NULL,"
"  state TEXT NOT NULL, result TEXT, error TEXT, user TEXT,"
"  created REAL NOT NULL, started REAL, finished REAL);"
"CREATE INDEX IF NOT EXISTS diagnoses_host ON diagnoses(host_id, state);"
"CREATE TABLE IF NOT EXISTS alert_rules(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
"  metric TEXT NOT NULL, labels TEXT NOT NULL, comparison TEXT NOT NULL, threshold REAL NOT NULL,"
"  for_s REAL NOT NULL, severity TEXT NOT NULL, webhook TEXT, user TEXT, created REAL NOT NULL);"
"CREATE TABLE IF NOT EXISTS alert_state(rule_id INTEGER NOT NULL REFERENCES alert_rules(id)"
"  ON DELETE CASCADE, host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
"  since REAL NOT NULL, firing INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(rule_id, host_id));"
"CREATE TABLE IF NOT EXISTS alert_events(id INTEGER PRIMARY KEY, rule_id INTEGER, rule TEXT,"
"  host TEXT, state TEXT NOT NULL, value REAL, severity TEXT, ts REAL NOT NULL,"
"  webhook_status TEXT);"
"CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, ts REAL NOT NULL, user TEXT,"
"  action TEXT NOT NULL, target TEXT, peer TEXT, result INTEGER NOT NULL, detail TEXT);"
"CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY,"
"  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
"  name TEXT NOT NULL, labels TEXT NOT NULL, UNIQUE(host_id, name, labels));"
"CREATE TABLE IF NOT EXISTS samples(series_id INTEGER NOT NULL, ts REAL NOT NULL,"
"  value REAL, PRIMARY KEY(series_id, ts)) WITHOUT ROWID;"
/* no index on ts alone: it doubled the cost of every sample stored;
 * retention walks the primary key series by series instead (collect.c) */
"DROP INDEX IF EXISTS samples_ts;";

double store_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int store_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		anole_error_code(EIO, "console: the store: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

sqlite3_stmt *store_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		anole_error_code(EIO, "console: the store: %s (in %.60s)", sqlite3_errmsg(db), sql);
		return NULL;
	}
	return st;
}

json_t *store_column_json(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? json_string((const char *)t) : json_null();
}

int store_open(sqlite3 **out, const char *data_dir)
{
	char *path;
	sqlite3 *db = NULL;
	int ret;

	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST)
		return anole_error(errno, "console: cannot create the data directory %s", data_dir);
	path = xmalloc(strlen(data_dir) + 16);
	sprintf(path, "%s/console.db", data_dir);
	ret = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			      SQLITE_OPEN_FULLMUTEX, NULL);
	if (ret != SQLITE_OK) {
		ret = anole_error_code(EIO, "console: cannot open %s: %s", path,
				       db ? sqlite3_errmsg(db) : sqlite3_errstr(ret));
		sqlite3_close(db);
		free(path);
		return ret;
	}
	chmod(path, 0600);
	free(path);
	/* another process (`console user add` while serving) waits, not fails */
	sqlite3_busy_timeout(db, 10000);
	if (store_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
			   "PRAGMA foreign_keys=ON;") ||
	    store_exec(db, "BEGIN IMMEDIATE") || store_exec(db, schema) ||
	    store_exec(db, "COMMIT")) {
		sqlite3_close(db);
		return -EIO;
	}
	*out = db;
	return 0;
}

void store_audit(sqlite3 *db, const char *user, const char *action, const char *target,
		 const char *peer, unsigned result, const char *detail)
{
	sqlite3_stmt *st = store_prepare(db, "INSERT INTO audit(ts,user,action,target,peer,"
					 "result,detail) VALUES(?,?,?,?,?,?,?)");

	if (!st)
		return;
	sqlite3_bind_double(st, 1, store_now());
	sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, target, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, peer, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 6, (int)result);
	sqlite3_bind_text(st, 7, detail, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		anole_warn("console: cannot write the audit log: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

enum console_role role_from_name(const char *name)
{
	if (!name)
		return ROLE_NONE;
	if (!strcmp(name, "viewer"))
		return ROLE_VIEWER;
	if (!strcmp(name, "operator"))
		return ROLE_OPERATOR;
	if (!strcmp(name, "admin"))
		return ROLE_ADMIN;
	return ROLE_NONE;
}

const char *role_name(enum console_role r)
{
	return r == ROLE_ADMIN ? "admin" : r == ROLE_OPERATOR ? "operator" :
	       r == ROLE_VIEWER ? "viewer" : "none";
}

int console_user_add(const char *data_dir, const char *name, const char *role,
		     const char *password)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *hash;
	int ret;

	if (!anole_console_name_valid(name))
		return anole_error_code(EINVAL, "console: a user name is 1 to 64 of A-Z a-z 0-9 . _ -");
	if (!role_from_name(role))
		return anole_error_code(EINVAL, "console: --role is viewer, operator or admin");
	if (strlen(password) < 8 || strlen(password) > 1024)
		return anole_error_code(EINVAL, "console: a password is 8 to 1024 bytes");
	hash = auth_hash_password(password);
	if (!hash)
		return anole_error_code(EIO, "console: cannot hash the password (OpenSSL scrypt)");
	ret = store_open(&db, data_dir);
	if (ret) {
		free(hash);
		return ret;
	}
	st = store_prepare(db, "INSERT INTO users(name,role,pw_hash,created) VALUES(?1,?2,?3,?4) "
			   "ON CONFLICT(name) DO UPDATE SET role=?2, pw_hash=?3");
	ret = -EIO;
	if (st) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, role, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, hash, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 4, store_now());
		if (sqlite3_step(st) == SQLITE_DONE)
			ret = 0;
		else
			anole_error_code(EIO, "console: cannot add the user: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
	}
	if (!ret) {
		/* a changed password or role ends the user's sessions */
		st = store_prepare(db, "DELETE FROM sessions WHERE user_id=(SELECT id FROM users "
				   "WHERE name=?)");
		if (st) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
		store_audit(db, "(command line)", "user.add", name, "local", 200, role);
	}
	sqlite3_close(db);
	free(hash);
	return ret;
}

int store_token_insert(sqlite3 *db, const char *note, char **token, long long *id)
{
	char raw[65], hash[65];
	sqlite3_stmt *st;
	int ret = -EIO;

	if (auth_random_hex(raw, 32))
		return -EIO;
	auth_sha256_hex(raw, hash);
	st = store_prepare(db, "INSERT INTO agent_tokens(token_hash,note,created) VALUES(?,?,?)");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, note, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 3, store_now());
	if (sqlite3_step(st) == SQLITE_DONE) {
		ret = 0;
		*token = xstrdup(raw);
		if (id)
			*id = sqlite3_last_insert_rowid(db);
	} else {
		anole_error_code(EIO, "console: cannot store the token: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	return ret;
}

int console_token_create(const char *data_dir, const char *note, char **token)
{
	sqlite3 *db;
	long long id;
	int ret = store_open(&db, data_dir);

	if (ret)
		return ret;
	ret = store_token_insert(db, note, token, &id);
	if (!ret) {
		char target[32];

		snprintf(target, sizeof(target), "token %lld", id);
		store_audit(db, "(command line)", "token.create", target, "local", 200, note);
	}
	sqlite3_close(db);
	return ret;
}
