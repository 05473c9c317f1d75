/* SQLite store: one connection owned by the daemon's main thread. Schema changes
 * only ever append to migrations[]; each one runs in its own transaction and
 * bumps the single-row schema_version table, so an interrupted upgrade resumes
 * where it stopped. */
#include "sg/store.h"
#include "sg/errbuf.h"
#include "sg/log.h"
#include "sg/sqlerr.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* The event log is a diagnostic ring, not history: bounded so a flapping
 * device cannot fill the flash. Trimming every TRIM_EVERY inserts keeps the
 * per-insert cost to one INSERT most of the time. */
#define EVENTS_KEEP 10000
#define TRIM_EVERY 100

static const char *const migrations[] = {
    /* 1: device event log and the pulse counter. */
    "CREATE TABLE events(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " slot INTEGER NOT NULL, kind TEXT NOT NULL, msg TEXT NOT NULL);"
    "CREATE INDEX events_ts ON events(ts_ms);"
    "CREATE TABLE pulse(id INTEGER PRIMARY KEY CHECK(id = 1), pulses INTEGER NOT NULL);",
};

#define SCHEMA_CURRENT ((int)(sizeof(migrations) / sizeof(migrations[0])))

struct store {
	sqlite3 *db;
	int version;
	unsigned inserts; /* since the last trim */
	sqlite3_stmt *ev_add;
	sqlite3_stmt *ev_list;
	sqlite3_stmt *ev_trim;
	sqlite3_stmt *pulse_get;
	sqlite3_stmt *pulse_set;
};

static int exec(struct store *st, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		err_set(err, errlen, "%s", sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	return 0;
}

/* Run a statement returning one integer column in one row (PRAGMAs, SELECTs). */
static int query_int(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sqlite_errno(st->db, rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : sqlite_errno(st->db, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
}

static int set_pragmas(struct store *st, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int ret;

	/* Waiting out a concurrent reader (sqlite3 CLI during debugging) beats failing. */
	sqlite3_busy_timeout(st->db, 2000);
	/* FULL: the product promises that nothing recorded is lost on power loss;
	 * in WAL mode that costs one fsync per commit, which our write rate affords. */
	ret = exec(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", err, errlen);
	if (ret)
		return ret;
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK) {
		err_set(err, errlen, "%s", sqlite3_errmsg(st->db));
		return -EIO;
	}
	if (sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") != 0)
		/* Still durable (synchronous=FULL), just slower; e.g. a filesystem
		 * without shared-memory mmap support. */
		log_warn("%s: WAL journal not available, using %s", path,
			 (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return 0;
}

static int read_version(struct store *st, char *err, size_t errlen)
{
	int64_t v = 0;
	int ret = exec(st,
		       "CREATE TABLE IF NOT EXISTS schema_version("
		       "id INTEGER PRIMARY KEY CHECK(id = 1), version INTEGER NOT NULL);"
		       "INSERT OR IGNORE INTO schema_version(id, version) VALUES(1, 0);",
		       err, errlen);

	if (ret)
		return ret;
	ret = query_int(st, "SELECT version FROM schema_version WHERE id = 1", &v);
	if (ret) {
		err_set(err, errlen, "reading schema_version: %s", sqlite3_errmsg(st->db));
		return ret;
	}
	st->version = (int)v;
	return 0;
}

static int apply_migration(struct store *st, int idx, char *err, size_t errlen)
{
	char bump[96];
	int ret;

	ret = exec(st, "BEGIN IMMEDIATE", err, errlen);
	if (ret)
		return ret;
	snprintf(bump, sizeof(bump), "UPDATE schema_version SET version = %d WHERE id = 1",
		 idx + 1);
	ret = exec(st, migrations[idx], err, errlen);
	if (!ret)
		ret = exec(st, bump, err, errlen);
	if (!ret)
		ret = exec(st, "COMMIT", err, errlen);
	if (ret) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return ret;
	}
	st->version = idx + 1;
	return 0;
}

static int migrate(struct store *st, const char *path, char *err, size_t errlen)
{
	char why[256];
	int ret = read_version(st, err, errlen);

	if (ret)
		return ret;
	if (st->version > SCHEMA_CURRENT) {
		/* Written by a newer sgd (downgrade): its tables may mean things we
		 * do not know, so touching them could corrupt data. */
		err_set(err, errlen,
			"%s: database schema version %d is newer than this sgd supports (%d); "
			"refusing to open it (upgrade sgd or move the file away)",
			path, st->version, SCHEMA_CURRENT);
		return -EPROTONOSUPPORT;
	}
	while (st->version < SCHEMA_CURRENT) {
		ret = apply_migration(st, st->version, why, sizeof(why));
		if (ret) {
			err_set(err, errlen, "%s: migration %d: %s", path, st->version + 1, why);
			return ret;
		}
		log_info("%s: migrated to schema version %d", path, st->version);
	}
	return 0;
}

static int prepare_one(struct store *st, const char *sql, sqlite3_stmt **s, char *err,
		       size_t errlen)
{
	int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);

	if (rc != SQLITE_OK) {
		err_set(err, errlen, "preparing \"%s\": %s", sql, sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	return 0;
}

static int prepare_all(struct store *st, char *err, size_t errlen)
{
	static const char trim[] = "DELETE FROM events WHERE id <= (SELECT id FROM events "
				   "ORDER BY id DESC LIMIT 1 OFFSET ?)";
	int ret;

	ret = prepare_one(st, "INSERT INTO events(ts_ms, slot, kind, msg) VALUES(?, ?, ?, ?)",
			  &st->ev_add, err, errlen);
	if (!ret)
		ret = prepare_one(st,
				  "SELECT ts_ms, slot, kind, msg FROM events ORDER BY id DESC "
				  "LIMIT ?",
				  &st->ev_list, err, errlen);
	if (!ret)
		ret = prepare_one(st, trim, &st->ev_trim, err, errlen);
	if (!ret)
		ret = prepare_one(st, "SELECT pulses FROM pulse WHERE id = 1", &st->pulse_get, err,
				  errlen);
	if (!ret)
		ret = prepare_one(st,
				  "INSERT INTO pulse(id, pulses) VALUES(1, ?) "
				  "ON CONFLICT(id) DO UPDATE SET pulses = excluded.pulses",
				  &st->pulse_set, err, errlen);
	return ret;
}

/* Drop all but the newest EVENTS_KEEP events; ids only grow, so "newest" is
 * insertion order even when the wall clock jumps. */
static int trim_events(struct store *st)
{
	int rc;

	sqlite3_bind_int(st->ev_trim, 1, EVENTS_KEEP);
	rc = sqlite3_step(st->ev_trim);
	sqlite3_reset(st->ev_trim);
	st->inserts = 0;
	if (rc != SQLITE_DONE) {
		log_warn("store: trimming events: %s", sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	return 0;
}

static int open_db(struct store *st, const char *path, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	if (rc != SQLITE_OK) {
		int ret = sqlite_errno(st->db, rc);

		err_set(err, errlen, "%s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		return ret;
	}
	sqlite3_extended_result_codes(st->db, 1);
	return 0;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	char why[256];
	struct store *st = calloc(1, sizeof(*st));
	int ret;

	*out = NULL;
	if (!st) {
		err_set(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	ret = open_db(st, path, err, errlen);
	if (!ret) {
		ret = set_pragmas(st, path, why, sizeof(why));
		if (ret)
			err_set(err, errlen, "%s: %s", path, why);
	}
	if (!ret)
		ret = migrate(st, path, err, errlen);
	if (!ret)
		ret = prepare_all(st, err, errlen);
	if (!ret)
		trim_events(st); /* a daemon restarting often would never reach TRIM_EVERY */
	if (ret) {
		store_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->ev_add);
	sqlite3_finalize(st->ev_list);
	sqlite3_finalize(st->ev_trim);
	sqlite3_finalize(st->pulse_get);
	sqlite3_finalize(st->pulse_set);
	/* close_v2 is fine with a NULL handle, and the last close checkpoints
	 * the WAL so the file is self-contained when the daemon stops. */
	sqlite3_close_v2(st->db);
	free(st);
}

int store_schema_version(struct store *st)
{
	return st->version;
}

int store_event_add(struct store *st, int64_t ts_ms, int slot, const char *kind, const char *msg)
{
	sqlite3_stmt *s = st->ev_add;
	int rc;

	sqlite3_bind_int64(s, 1, ts_ms);
	sqlite3_bind_int(s, 2, slot);
	sqlite3_bind_text(s, 3, kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, msg, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		log_warn("store: adding event: %s", sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	if (++st->inserts >= TRIM_EVERY)
		return trim_events(st);
	return 0;
}

static json_t *event_row_json(sqlite3_stmt *s)
{
	const char *kind = (const char *)sqlite3_column_text(s, 2);
	const char *msg = (const char *)sqlite3_column_text(s, 3);

	return json_pack("{s:I, s:i, s:s, s:s}", "ts", (json_int_t)sqlite3_column_int64(s, 0),
			 "slot", sqlite3_column_int(s, 1), "kind", kind ? kind : "", "msg",
			 msg ? msg : "");
}

json_t *store_events_json(struct store *st, int limit)
{
	sqlite3_stmt *s = st->ev_list;
	json_t *arr = json_array();
	int rc;

	if (!arr)
		return NULL;
	sqlite3_bind_int(s, 1, limit < 0 ? 0 : limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (json_array_append_new(arr, event_row_json(s)) != 0)
			break;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		log_warn("store: listing events: %s", sqlite3_errmsg(st->db));
		json_decref(arr);
		return NULL;
	}
	return arr;
}

int store_pulse_get(struct store *st, uint64_t *pulses)
{
	sqlite3_stmt *s = st->pulse_get;
	int rc = sqlite3_step(s);

	*pulses = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warn("store: reading pulse count: %s", sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	return 0;
}

int store_pulse_set(struct store *st, uint64_t pulses)
{
	sqlite3_stmt *s = st->pulse_set;
	int rc;

	/* Stored as the same 64 bits; SQLite integers are signed. */
	sqlite3_bind_int64(s, 1, (sqlite3_int64)pulses);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		log_warn("store: saving pulse count: %s", sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	return 0;
}
