/* The disk buffer: publications made while a link is down wait here (SQLite,
 * <state_dir>/outbox.db) until the publisher replays them, oldest first.
 *
 * Durability: WAL with synchronous=NORMAL. A commit then costs no fsync (the
 * WAL is synced at checkpoints), which matters on an SD card receiving up to
 * 18 rows a second per link during an outage. A power cut can lose the last
 * few buffered publications but never corrupts the file. The buffer is a
 * best-effort ring, not a record, so that trade is the right one here.
 *
 * Corruption (a bad SD card sector, a file that is not a database) must
 * never stop the daemon: the file is renamed to <path>.bad-<time> (see
 * quarantine.h) and a new empty one takes its place, at open or whenever a
 * statement reports it. */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqtt_int.h"
#include "sg/errbuf.h"
#include "sg/log.h"
#include "sg/quarantine.h"
#include "sg/sqlerr.h"

#define NLINKS MQTT_LINKS

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS msgs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " link INTEGER NOT NULL, ts_ms INTEGER NOT NULL, subtopic TEXT, payload BLOB);"
    "CREATE INDEX IF NOT EXISTS msgs_link ON msgs(link, id);"
    "CREATE TABLE IF NOT EXISTS meta(link INTEGER PRIMARY KEY, dropped INTEGER NOT NULL);";

enum { ST_INSERT, ST_TRIM, ST_DROP_ADD, ST_PEEK, ST_DELETE, ST_COUNT_ };

static const char *const stmt_sql[ST_COUNT_] = {
    [ST_INSERT] = "INSERT INTO msgs(link, ts_ms, subtopic, payload) VALUES(?1, ?2, ?3, ?4)",
    /* The oldest ?2 rows of link ?1: ids grow, so ORDER BY id is age. */
    [ST_TRIM] = "DELETE FROM msgs WHERE id IN"
		" (SELECT id FROM msgs WHERE link = ?1 ORDER BY id LIMIT ?2)",
    [ST_DROP_ADD] = "INSERT INTO meta(link, dropped) VALUES(?1, ?2)"
		    " ON CONFLICT(link) DO UPDATE SET dropped = dropped + excluded.dropped",
    [ST_PEEK] = "SELECT id, ts_ms, subtopic, payload FROM msgs WHERE link = ?1"
		" ORDER BY id LIMIT ?2",
    [ST_DELETE] = "DELETE FROM msgs WHERE link = ?1 AND id <= ?2",
};

struct outbox {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT_];
	char *path;
	unsigned max_rows;
	/* Cached so status pages and the bound check need no COUNT(*) scan. */
	unsigned count[NLINKS];
	uint64_t dropped[NLINKS];
};

static bool link_ok(int link)
{
	return link >= 1 && link <= NLINKS;
}

static bool is_corrupt(int rc)
{
	return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* ---- opening ---- */

static void db_close(struct outbox *o)
{
	for (int i = 0; i < ST_COUNT_; i++) {
		sqlite3_finalize(o->st[i]);
		o->st[i] = NULL;
	}
	sqlite3_close(o->db);
	o->db = NULL;
}

static int exec(struct outbox *o, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(o->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		err_set(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
	return rc;
}

static int load_counts(struct outbox *o)
{
	static const char *const sql[2] = {
	    "SELECT link, count(*) FROM msgs GROUP BY link",
	    "SELECT link, dropped FROM meta",
	};
	int rc = SQLITE_OK;

	memset(o->count, 0, sizeof(o->count));
	memset(o->dropped, 0, sizeof(o->dropped));
	for (int q = 0; q < 2 && rc == SQLITE_OK; q++) {
		sqlite3_stmt *s;

		rc = sqlite3_prepare_v2(o->db, sql[q], -1, &s, NULL);
		if (rc != SQLITE_OK)
			break;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			int64_t link = sqlite3_column_int64(s, 0), v = sqlite3_column_int64(s, 1);

			if (!link_ok((int)link) || v < 0)
				continue; /* not ours; ignored rather than trusted */
			if (q == 0)
				o->count[link - 1] = v > UINT_MAX ? UINT_MAX : (unsigned)v;
			else
				o->dropped[link - 1] = (uint64_t)v;
		}
		sqlite3_finalize(s);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	return rc;
}

/* Open, configure, create and prepare; an SQLite result code. */
static int db_open(struct outbox *o, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(o->path, &o->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	if (rc != SQLITE_OK) {
		err_set(err, errlen, "%s: %s", o->path,
			o->db ? sqlite3_errmsg(o->db) : sqlite3_errstr(rc));
		db_close(o); /* SQLite hands out a handle even on failure */
		return rc;
	}
	sqlite3_busy_timeout(o->db, 2000);
	/* journal_mode is the first statement that reads the header: a file
	 * that is not a database fails here with SQLITE_NOTADB. */
	rc = exec(o, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", err, errlen);
	if (rc == SQLITE_OK)
		rc = exec(o, schema, err, errlen);
	if (rc == SQLITE_OK) {
		rc = load_counts(o);
		if (rc != SQLITE_OK)
			err_set(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
	}
	for (int i = 0; i < ST_COUNT_ && rc == SQLITE_OK; i++) {
		rc = sqlite3_prepare_v3(o->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&o->st[i], NULL);
		if (rc != SQLITE_OK)
			err_set(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
	}
	if (rc != SQLITE_OK)
		db_close(o);
	return rc;
}

/* Move a damaged file with its WAL (which belongs to it) and SHM out of the way. */
static void set_aside(struct outbox *o, const char *why)
{
	static const char *const sib[] = {"-wal", "-shm", NULL};
	char to[PATH_MAX];
	int r = quarantine_file(o->path, sib, QUARANTINE_KEEP, to, sizeof(to));

	if (r)
		log_errno(LOG_ERR, -r, "outbox: %s is damaged (%s); moving it aside", o->path, why);
	else
		log_err("outbox: %s is damaged (%s); moved to %s, starting with an empty buffer",
			o->path, why, to);
}

static int reopen_empty(struct outbox *o, const char *why, char *err, size_t errlen)
{
	int rc;

	db_close(o);
	set_aside(o, why);
	rc = db_open(o, err, errlen);
	return rc == SQLITE_OK ? 0 : sqlite_errno(o->db, rc);
}

int outbox_open(const char *path, unsigned max_rows, struct outbox **out, char *err, size_t errlen)
{
	struct outbox *o;
	int rc, ret;

	if (!path || !*path || !out || max_rows == 0) {
		err_set(err, errlen, "outbox: bad arguments");
		return -EINVAL;
	}
	o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup(path))) {
		free(o);
		err_set(err, errlen, "outbox: out of memory");
		return -ENOMEM;
	}
	o->max_rows = max_rows;
	rc = db_open(o, err, errlen);
	if (is_corrupt(rc))
		ret = reopen_empty(o, sqlite3_errstr(rc), err, errlen);
	else
		ret = rc == SQLITE_OK ? 0 : sqlite_errno(o->db, rc);
	if (ret) {
		free(o->path);
		free(o);
		return ret;
	}
	*out = o;
	return 0;
}

void outbox_close(struct outbox *o)
{
	if (!o)
		return;
	db_close(o);
	free(o->path);
	free(o);
}

/* A statement found damage at run time: start over rather than fail forever. */
static int recover(struct outbox *o, int rc)
{
	char err[256];

	if (!is_corrupt(rc))
		return sqlite_errno(o->db, rc);
	return reopen_empty(o, sqlite3_errstr(rc), err, sizeof(err)) ? -EIO : -EAGAIN;
}

/* After a failed recovery the handle is gone; every call tries again. */
static int ensure_open(struct outbox *o)
{
	char err[256];

	if (o->db)
		return 0;
	if (db_open(o, err, sizeof(err)) != SQLITE_OK) {
		log_warn("outbox: %s", err);
		return -EIO;
	}
	return 0;
}

/* ---- statements ---- */

static int step_done(struct outbox *o, int which)
{
	sqlite3_stmt *s = o->st[which];
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int insert(struct outbox *o, int link, int64_t ts_ms, const char *subtopic,
		  const char *payload, size_t len)
{
	sqlite3_stmt *s = o->st[ST_INSERT];

	sqlite3_bind_int(s, 1, link);
	sqlite3_bind_int64(s, 2, ts_ms);
	if (subtopic)
		sqlite3_bind_text(s, 3, subtopic, -1, SQLITE_STATIC);
	/* A zero-length blob with a non-NULL pointer, so empty stays empty, not NULL. */
	sqlite3_bind_blob64(s, 4, payload ? (const void *)payload : "", len, SQLITE_STATIC);
	return step_done(o, ST_INSERT);
}

/* Drop the oldest rows of link beyond max_rows; *dropped set. */
static int trim(struct outbox *o, int link, unsigned held, unsigned *dropped)
{
	unsigned excess = held > o->max_rows ? held - o->max_rows : 0;
	int rc;

	*dropped = 0;
	if (!excess)
		return SQLITE_OK;
	sqlite3_bind_int(o->st[ST_TRIM], 1, link);
	sqlite3_bind_int64(o->st[ST_TRIM], 2, excess);
	rc = step_done(o, ST_TRIM);
	if (rc != SQLITE_OK)
		return rc;
	*dropped = (unsigned)sqlite3_changes(o->db);
	sqlite3_bind_int(o->st[ST_DROP_ADD], 1, link);
	sqlite3_bind_int64(o->st[ST_DROP_ADD], 2, *dropped);
	return step_done(o, ST_DROP_ADD);
}

static int push_txn(struct outbox *o, int link, int64_t ts_ms, const char *subtopic,
		    const char *payload, size_t len)
{
	unsigned held = o->count[link - 1] + 1, dropped = 0;
	int rc = sqlite3_exec(o->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = insert(o, link, ts_ms, subtopic, payload, len);
	if (rc == SQLITE_OK)
		rc = trim(o, link, held, &dropped);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(o->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	/* Only a committed transaction moves the cached counters. */
	o->count[link - 1] = held - dropped;
	o->dropped[link - 1] += dropped;
	return SQLITE_OK;
}

int outbox_push(struct outbox *o, int link, int64_t ts_ms, const char *subtopic,
		const char *payload, size_t len)
{
	int rc, ret;

	if (!o || !link_ok(link) || (!payload && len))
		return -EINVAL;
	if (len > INT_MAX)
		return -EMSGSIZE;
	if ((ret = ensure_open(o)))
		return ret;
	rc = push_txn(o, link, ts_ms, subtopic, payload, len);
	if (rc == SQLITE_OK)
		return 0;
	ret = recover(o, rc);
	if (ret != -EAGAIN) {
		log_warn("outbox: buffering for link %d failed: %s", link, sqlite3_errstr(rc));
		return ret;
	}
	rc = push_txn(o, link, ts_ms, subtopic, payload, len);
	return rc == SQLITE_OK ? 0 : sqlite_errno(o->db, rc);
}

static char *dup_bytes(const void *p, size_t len)
{
	char *d = malloc(len + 1); /* NUL-terminated for callers that print it */

	if (!d)
		return NULL;
	if (len)
		memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

static int row_to_msg(sqlite3_stmt *s, struct outbox_msg *m)
{
	const void *blob = sqlite3_column_blob(s, 3);
	size_t len = (size_t)sqlite3_column_bytes(s, 3);
	const unsigned char *sub = sqlite3_column_text(s, 2);

	m->id = sqlite3_column_int64(s, 0);
	m->ts_ms = sqlite3_column_int64(s, 1);
	m->subtopic = NULL;
	m->len = blob ? len : 0;
	m->payload = dup_bytes(blob, m->len);
	if (sub)
		m->subtopic = dup_bytes(sub, strlen((const char *)sub));
	if (!m->payload || (sub && !m->subtopic)) {
		free(m->payload);
		free(m->subtopic);
		return SQLITE_NOMEM;
	}
	return SQLITE_OK;
}

static int peek_rows(struct outbox *o, int link, unsigned max, struct outbox_msg *out, unsigned *n)
{
	sqlite3_stmt *s = o->st[ST_PEEK];
	unsigned got = 0;
	int rc = SQLITE_DONE;

	sqlite3_bind_int(s, 1, link);
	sqlite3_bind_int64(s, 2, max);
	while (got < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		rc = row_to_msg(s, &out[got]);
		if (rc != SQLITE_OK)
			break;
		got++;
	}
	if (got == max || rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_OK) {
		outbox_msgs_free(out, got);
		return rc;
	}
	*n = got;
	return SQLITE_OK;
}

int outbox_peek(struct outbox *o, int link, unsigned max, struct outbox_msg *out, unsigned *n)
{
	int rc, ret;

	if (!o || !link_ok(link) || !n || (max && !out))
		return -EINVAL;
	if (!max) {
		*n = 0;
		return 0;
	}
	if ((ret = ensure_open(o)))
		return ret;
	rc = peek_rows(o, link, max, out, n);
	if (rc == SQLITE_OK)
		return 0;
	ret = recover(o, rc);
	if (ret == -EAGAIN) { /* the damaged rows are gone with the file */
		*n = 0;
		return 0;
	}
	return ret;
}

void outbox_msgs_free(struct outbox_msg *v, unsigned n)
{
	if (!v)
		return;
	for (unsigned i = 0; i < n; i++) {
		free(v[i].subtopic);
		free(v[i].payload);
		v[i].subtopic = v[i].payload = NULL;
	}
}

int outbox_delete_upto(struct outbox *o, int link, int64_t id)
{
	unsigned gone;
	int rc, ret;

	if (!o || !link_ok(link))
		return -EINVAL;
	if ((ret = ensure_open(o)))
		return ret;
	sqlite3_bind_int(o->st[ST_DELETE], 1, link);
	sqlite3_bind_int64(o->st[ST_DELETE], 2, id);
	rc = step_done(o, ST_DELETE);
	if (rc != SQLITE_OK) {
		ret = recover(o, rc);
		return ret == -EAGAIN ? 0 : ret;
	}
	gone = (unsigned)sqlite3_changes(o->db);
	o->count[link - 1] = gone > o->count[link - 1] ? 0 : o->count[link - 1] - gone;
	return 0;
}

unsigned outbox_count(struct outbox *o, int link)
{
	return o && link_ok(link) ? o->count[link - 1] : 0;
}

uint64_t outbox_dropped(struct outbox *o, int link)
{
	return o && link_ok(link) ? o->dropped[link - 1] : 0;
}
