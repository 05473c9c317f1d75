/* history.db: open with the durability settings, set a damaged file aside,
 * per-module schema versions. */
#include "sg/histdb.h"
#include "sg/errbuf.h"
#include "sg/log.h"
#include "sg/quarantine.h"
#include "sg/sqlerr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct histdb {
	sqlite3 *db;
	bool recovered;
};

static bool is_damage(int rc)
{
	return (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT;
}

/* Result of a statement returning one text row, into buf. */
static int query_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		snprintf(buf, len, "%s", t ? (const char *)t : "");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? SQLITE_ERROR : rc;
}

/* Open and configure; *damaged says the file (not the system) is at fault. */
static int open_conn(const char *path, sqlite3 **out, bool *damaged, char *err, size_t len)
{
	sqlite3 *db = NULL;
	char mode[32] = "", check[256] = "";
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	*out = NULL;
	*damaged = false;
	if (rc != SQLITE_OK) {
		int ret = sqlite_errno(db, rc);

		err_set(err, len, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close_v2(db);
		return ret;
	}
	sqlite3_extended_result_codes(db, 1);
	/* Waiting out a concurrent reader (sqlite3 CLI while debugging) beats failing. */
	sqlite3_busy_timeout(db, 2000);
	/* The first statement reads the header: "file is not a database" shows here. */
	rc = query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
	if (rc == SQLITE_OK && sqlite3_stricmp(mode, "wal") != 0)
		log_warn("%s: WAL journal not available, using %s", path, mode);
	/* FULL: every interval reported stored survives power loss; in WAL mode
	 * that is one fsync per commit. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = query_text(db, "PRAGMA quick_check(1)", check, sizeof(check));
	if (rc == SQLITE_OK && strcmp(check, "ok") != 0) {
		err_set(err, len, "%s: quick_check: %s", path, check);
		*damaged = true;
		sqlite3_close_v2(db);
		return -EBADMSG;
	}
	if (rc != SQLITE_OK) {
		int ret = sqlite_errno(db, rc);

		*damaged = is_damage(rc);
		err_set(err, len, "%s: %s", path, sqlite3_errmsg(db));
		sqlite3_close_v2(db);
		return ret;
	}
	*out = db;
	return 0;
}

/* Move PATH with its WAL and SHM to PATH.bad-<time>[-wal|-shm]. */
static int set_aside(const char *path, char *to, size_t tolen, char *err, size_t len)
{
	static const char *const sib[] = {"-wal", "-shm", NULL};
	int r = quarantine_file(path, sib, QUARANTINE_KEEP, to, tolen);

	if (r)
		err_set(err, len, "%s: cannot move damaged file aside: %s", path, strerror(-r));
	return r;
}

int histdb_open(const char *path, struct histdb **out, char *err, size_t len)
{
	struct histdb *h = calloc(1, sizeof(*h));
	char why[512] = "", aside[4096];
	bool damaged;
	int ret;

	*out = NULL;
	if (!h) {
		err_set(err, len, "%s: out of memory", path);
		return -ENOMEM;
	}
	ret = open_conn(path, &h->db, &damaged, why, sizeof(why));
	if (ret && damaged) {
		ret = set_aside(path, aside, sizeof(aside), err, len);
		if (!ret) {
			log_err("%s; moved it to %s and started a new history", why, aside);
			h->recovered = true;
			ret = open_conn(path, &h->db, &damaged, why, sizeof(why));
		} else {
			free(h);
			return ret;
		}
	}
	if (!ret && sqlite3_exec(h->db,
				 "CREATE TABLE IF NOT EXISTS schema_modules("
				 "module TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID",
				 NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(why, sizeof(why), "%s: %s", path, sqlite3_errmsg(h->db));
		ret = sqlite_errno(h->db, sqlite3_errcode(h->db));
	}
	if (ret) {
		err_set(err, len, "%s", why);
		histdb_close(h);
		return ret;
	}
	*out = h;
	return 0;
}

sqlite3 *histdb_sqlite(struct histdb *h)
{
	return h->db;
}

int histdb_recovered(struct histdb *h)
{
	return h->recovered;
}

void histdb_close(struct histdb *h)
{
	if (!h)
		return;
	sqlite3_close_v2(h->db);
	free(h);
}

int histdb_version(struct histdb *h, const char *module)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(h->db, "SELECT version FROM schema_modules WHERE module = ?",
				    -1, &s, NULL);
	int v = 0;

	if (rc != SQLITE_OK)
		return sqlite_errno(h->db, rc);
	sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_errno(h->db, rc);
	return v;
}

static int apply(struct histdb *h, const char *module, const char *sql, int version)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		    h->db,
		    "INSERT INTO schema_modules(module, version) VALUES(?, ?) "
		    "ON CONFLICT(module) DO UPDATE SET version = excluded.version",
		    -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, version);
		rc = sqlite3_step(s);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_err("history: %s migration %d: %s", module, version, sqlite3_errmsg(h->db));
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

int histdb_schema(struct histdb *h, const char *module, const char *const *migrations, int n)
{
	int v = histdb_version(h, module);

	if (v < 0) {
		log_err("history: reading schema version of %s: %s", module, sqlite3_errmsg(h->db));
		return v;
	}
	if (v > n) {
		/* Written by a newer sgd: its tables may mean things we do not know. */
		log_err("history: %s schema version %d is newer than this sgd supports (%d)",
			module, v, n);
		return -EPROTONOSUPPORT;
	}
	for (; v < n; v++) {
		int rc = apply(h, module, migrations[v], v + 1);

		if (rc != SQLITE_OK)
			return sqlite_errno(h->db, rc);
		log_info("history: %s migrated to schema version %d", module, v + 1);
	}
	return 0;
}
