/* Load-profile storage: intervals and engine state in history.db. */
#include "sg/lpstore.h"
#include "sg/dev.h"
#include "sg/errbuf.h"
#include "sg/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "loadprof"

static const char *const migrations[] = {
    /* 1: intervals (NULL = missing) and the engine state per device. */
    "CREATE TABLE lp(slot INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " ai REAL, ae REAL, ri REAL, re REAL, ai1 REAL, ai2 REAL, ai3 REAL,"
    " ae1 REAL, ae2 REAL, ae3 REAL, PRIMARY KEY(slot, ts)) WITHOUT ROWID;"
    "CREATE TABLE lp_state(slot INTEGER PRIMARY KEY, last_ms INTEGER NOT NULL,"
    " ch_ok INTEGER NOT NULL, ch_ms BLOB NOT NULL, ch_v BLOB NOT NULL,"
    " cur_start INTEGER NOT NULL, cur_v BLOB NOT NULL, cur_known INTEGER NOT NULL,"
    " cur_broken INTEGER NOT NULL);",
};

#define NMIG ((int)(sizeof(migrations) / sizeof(migrations[0])))
#define COLS "ai, ae, ri, re, ai1, ai2, ai3, ae1, ae2, ae3"
#define QMARKS "?, ?, ?, ?, ?, ?, ?, ?, ?, ?"

struct lpstore {
	struct histdb *h;
	sqlite3 *db;
	int retain_days;
	int64_t last_retain; /* interval time of the last retention pass */
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *put, *fill, *range, *last, *clear_lp, *clear_state, *retain;
	sqlite3_stmt *state_put, *state_get;
};

static int prep(struct lpstore *st, const char *sql, sqlite3_stmt **s, char *err, size_t len)
{
	int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);

	if (rc != SQLITE_OK) {
		err_set(err, len, "preparing \"%s\": %s", sql, sqlite3_errmsg(st->db));
		return sqlite_errno(st->db, rc);
	}
	return 0;
}

#define UPSERT(keep)                                                                               \
	"INSERT INTO lp(slot, ts, " COLS ") VALUES(?, ?, " QMARKS ") ON CONFLICT(slot, ts) DO "    \
	"UPDATE SET " keep("ai") ", " keep("ae") ", " keep("ri") ", " keep("re") ", " keep(        \
	    "ai1") ", " keep("ai2") ", " keep("ai3") ", " keep("ae1") ", " keep("ae2") ", " keep("ae3")
/* put: a new value wins, a missing one keeps the stored value */
#define NEW_WINS(c) c " = coalesce(excluded." c ", " c ")"
/* fill: a stored value wins */
#define OLD_WINS(c) c " = coalesce(" c ", excluded." c ")"
/* fill updates only rows it adds something to, so sqlite3_changes() counts
 * the intervals a fill really filled */
#define GAP(c) "(" c " IS NULL AND excluded." c " IS NOT NULL)"
// clang-format off
#define FILL_WHERE                                                                                 \
	" WHERE " GAP("ai") " OR " GAP("ae") " OR " GAP("ri") " OR " GAP("re")                     \
	" OR " GAP("ai1") " OR " GAP("ai2") " OR " GAP("ai3")                                      \
	" OR " GAP("ae1") " OR " GAP("ae2") " OR " GAP("ae3")
// clang-format on

static int prepare_all(struct lpstore *st, char *err, size_t len)
{
	struct {
		const char *sql;
		sqlite3_stmt **s;
	} t[] = {
	    {"BEGIN IMMEDIATE", &st->begin},
	    {"COMMIT", &st->commit},
	    {"ROLLBACK", &st->rollback},
	    {UPSERT(NEW_WINS), &st->put},
	    {UPSERT(OLD_WINS) FILL_WHERE, &st->fill},
	    {"SELECT ts, " COLS " FROM lp WHERE slot = ? AND ts >= ? AND ts < ? ORDER BY ts",
	     &st->range},
	    {"SELECT ts FROM lp WHERE slot = ? AND ts < ? ORDER BY ts DESC LIMIT 1", &st->last},
	    {"DELETE FROM lp WHERE slot = ?", &st->clear_lp},
	    {"DELETE FROM lp_state WHERE slot = ?", &st->clear_state},
	    {"DELETE FROM lp WHERE slot = ? AND ts < ?", &st->retain},
	    {"INSERT OR REPLACE INTO lp_state(slot, last_ms, ch_ok, ch_ms, ch_v, cur_start, "
	     "cur_v, cur_known, cur_broken) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
	     &st->state_put},
	    {"SELECT last_ms, ch_ok, ch_ms, ch_v, cur_start, cur_v, cur_known, cur_broken "
	     "FROM lp_state WHERE slot = ?",
	     &st->state_get},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int ret = prep(st, t[i].sql, t[i].s, err, len);

		if (ret)
			return ret;
	}
	return 0;
}

int lpstore_open(struct histdb *h, struct lpstore **out, char *err, size_t len)
{
	struct lpstore *st = calloc(1, sizeof(*st));
	int ret;

	*out = NULL;
	if (!st) {
		err_set(err, len, "load profile: out of memory");
		return -ENOMEM;
	}
	st->h = h;
	st->db = histdb_sqlite(h);
	st->retain_days = LPSTORE_RETAIN_DAYS_DEFAULT;
	ret = histdb_schema(h, MODULE, migrations, NMIG);
	if (ret)
		err_set(err, len, "load profile schema: %s", strerror(-ret));
	else
		ret = prepare_all(st, err, len);
	if (ret) {
		lpstore_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

void lpstore_close(struct lpstore *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->begin);
	sqlite3_finalize(st->commit);
	sqlite3_finalize(st->rollback);
	sqlite3_finalize(st->put);
	sqlite3_finalize(st->fill);
	sqlite3_finalize(st->range);
	sqlite3_finalize(st->last);
	sqlite3_finalize(st->clear_lp);
	sqlite3_finalize(st->clear_state);
	sqlite3_finalize(st->retain);
	sqlite3_finalize(st->state_put);
	sqlite3_finalize(st->state_get);
	free(st);
}

void lpstore_set_retention(struct lpstore *st, int days)
{
	st->retain_days = days;
}

/* Step a statement that returns no rows, reset it; SQLite rc. */
static int run(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int fail(struct lpstore *st, const char *what, int rc)
{
	int ret = sqlite_errno(st->db, rc);

	log_warn("load profile: %s: %s", what, sqlite3_errmsg(st->db));
	/* also the caller's transaction, if it opened one: it must not commit half */
	if (!sqlite3_get_autocommit(st->db))
		run(st->rollback);
	return ret ? ret : -EIO;
}

static int upsert(sqlite3_stmt *s, int slot, const struct lp_interval *iv)
{
	sqlite3_bind_int(s, 1, slot);
	sqlite3_bind_int64(s, 2, iv->start);
	for (int ch = 0; ch < LP_NCH; ch++)
		if (iv->present & (1u << ch))
			sqlite3_bind_double(s, 3 + ch, iv->e[ch]);
		else
			sqlite3_bind_null(s, 3 + ch);
	return run(s);
}

static int bind_state(struct lpstore *st, int slot, const struct lp_engine *e)
{
	sqlite3_stmt *s = st->state_put;

	sqlite3_bind_int(s, 1, slot);
	sqlite3_bind_int64(s, 2, e->last_ms);
	sqlite3_bind_int(s, 3, e->ch_ok);
	sqlite3_bind_blob(s, 4, e->ch_ms, sizeof(e->ch_ms), SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, e->ch_v, sizeof(e->ch_v), SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, e->cur_start);
	sqlite3_bind_blob(s, 7, e->cur_v, sizeof(e->cur_v), SQLITE_STATIC);
	sqlite3_bind_int(s, 8, e->cur_known);
	sqlite3_bind_int(s, 9, e->cur_broken);
	return run(s);
}

/* Begin a transaction unless the caller has one open (then *own = false and
 * the caller commits: that is how a bulk import batches many calls). */
static int tx_begin(struct lpstore *st, bool *own)
{
	*own = sqlite3_get_autocommit(st->db) != 0;
	return *own ? run(st->begin) : SQLITE_OK;
}

static int tx_commit(struct lpstore *st, bool own)
{
	return own ? run(st->commit) : SQLITE_OK;
}

static int write_rows(struct lpstore *st, sqlite3_stmt *s, int slot, const struct lp_interval *iv,
		      size_t n, const struct lp_engine *e, const char *what, size_t *changed)
{
	bool own;
	int rc = tx_begin(st, &own);

	if (changed)
		*changed = 0;
	if (rc != SQLITE_OK)
		return fail(st, what, rc);
	for (size_t i = 0; i < n; i++) {
		rc = upsert(s, slot, &iv[i]);
		if (rc != SQLITE_OK)
			return fail(st, what, rc);
		if (changed)
			*changed += (size_t)sqlite3_changes(st->db);
	}
	if (e && e->have_prev) {
		rc = bind_state(st, slot, e);
		if (rc != SQLITE_OK)
			return fail(st, what, rc);
	}
	rc = tx_commit(st, own);
	if (rc != SQLITE_OK)
		return fail(st, what, rc);
	return 0;
}

int lpstore_put(struct lpstore *st, int slot, const struct lp_interval *iv, size_t n,
		const struct lp_engine *e)
{
	int ret = write_rows(st, st->put, slot, iv, n, e, "storing intervals", NULL);

	if (!ret && n && st->retain_days > 0 && iv[n - 1].start - st->last_retain >= 86400) {
		st->last_retain = iv[n - 1].start;
		lpstore_retain(st, iv[n - 1].start);
	}
	return ret;
}

int lpstore_fill(struct lpstore *st, int slot, const struct lp_interval *iv, size_t n)
{
	return lpstore_fill_count(st, slot, iv, n, NULL);
}

int lpstore_fill_count(struct lpstore *st, int slot, const struct lp_interval *iv, size_t n,
		       size_t *filled)
{
	int ret = write_rows(st, st->fill, slot, iv, n, NULL, "filling intervals", filled);

	if (ret && filled)
		*filled = 0; /* rolled back */
	return ret;
}

struct collect {
	struct lp_interval *v;
	size_t n, cap;
	bool oom;
};

static void collect(const struct lp_interval *iv, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct lp_interval *v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			c->oom = true;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *iv;
}

int lpstore_record(struct lpstore *st, int slot, struct lp_engine *e, const struct lp_params *p,
		   const struct lp_sample *s)
{
	struct collect c = {0};
	int ret;

	if (lp_engine_push(e, p, s, collect, &c) == 0) {
		free(c.v);
		return 0;
	}
	if (c.oom) {
		free(c.v);
		log_warn("load profile: slot %d: out of memory, intervals lost", slot);
		return -ENOMEM;
	}
	ret = lpstore_put(st, slot, c.v, c.n, e);
	free(c.v);
	return ret ? ret : (int)c.n;
}

static void row_interval(sqlite3_stmt *s, struct lp_interval *iv)
{
	memset(iv, 0, sizeof(*iv));
	iv->start = sqlite3_column_int64(s, 0);
	for (int ch = 0; ch < LP_NCH; ch++)
		if (sqlite3_column_type(s, 1 + ch) != SQLITE_NULL) {
			iv->e[ch] = sqlite3_column_double(s, 1 + ch);
			iv->present |= (uint16_t)(1u << ch);
		}
}

int lpstore_range(struct lpstore *st, int slot, int64_t from, int64_t to,
		  int (*cb)(const struct lp_interval *iv, void *arg), void *arg)
{
	sqlite3_stmt *s = st->range;
	struct lp_interval iv;
	int rc, ret = 0;

	sqlite3_bind_int(s, 1, slot);
	sqlite3_bind_int64(s, 2, from);
	sqlite3_bind_int64(s, 3, to);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_interval(s, &iv);
		ret = cb(&iv, arg);
		if (ret)
			break;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (!ret && rc != SQLITE_DONE)
		return fail(st, "reading intervals", rc);
	return ret;
}

struct arr {
	struct lp_interval *out;
	size_t max, n;
};

static int arr_cb(const struct lp_interval *iv, void *arg)
{
	struct arr *a = arg;

	if (a->n == a->max)
		return -E2BIG;
	a->out[a->n++] = *iv;
	return 0;
}

int lpstore_range_array(struct lpstore *st, int slot, int64_t from, int64_t to,
			struct lp_interval *out, size_t max, size_t *n)
{
	struct arr a = {.out = out, .max = max};
	int ret = lpstore_range(st, slot, from, to, arr_cb, &a);

	*n = a.n;
	return ret;
}

int lpstore_last(struct lpstore *st, int slot, int64_t before, int64_t *start)
{
	sqlite3_stmt *s = st->last;
	int rc, ret = -ENOENT;

	sqlite3_bind_int(s, 1, slot);
	sqlite3_bind_int64(s, 2, before);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*start = sqlite3_column_int64(s, 0);
		ret = 0;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(st, "reading intervals", rc);
	return ret;
}

struct missing {
	const struct lp_params *p;
	int64_t b, to; /* next quarter hour to account for */
	uint16_t want;
	int64_t *out;
	size_t max, n;
};

static void missing_add(struct missing *m, int64_t start)
{
	if (m->out && m->n < m->max)
		m->out[m->n] = start;
	m->n++;
}

static int missing_cb(const struct lp_interval *iv, void *arg)
{
	struct missing *m = arg;

	for (; m->b < iv->start && m->b < m->to; m->b = lp_next_boundary(m->p, m->b))
		missing_add(m, m->b);
	if (m->b == iv->start) {
		if ((iv->present & m->want) != m->want)
			missing_add(m, m->b);
		m->b = lp_next_boundary(m->p, m->b);
	}
	return 0; /* a row off the quarter hours (other time zone then): not one of ours */
}

int lpstore_missing(struct lpstore *st, int slot, const struct lp_params *p, int64_t from,
		    int64_t to, uint16_t want, int64_t *out, size_t max)
{
	struct missing m = {.p = p, .to = to, .want = want, .out = out, .max = max};
	int ret;

	if (to <= from)
		return 0;
	m.b = lp_next_boundary(p, from - 1);
	ret = lpstore_range(st, slot, from, to, missing_cb, &m);
	if (ret < 0)
		return ret;
	for (; m.b < to; m.b = lp_next_boundary(p, m.b))
		missing_add(&m, m.b);
	return m.n > (size_t)INT32_MAX ? INT32_MAX : (int)m.n;
}

struct daily {
	struct lp_day *d;
	int ndays, i;
};

static int daily_cb(const struct lp_interval *iv, void *arg)
{
	struct daily *dy = arg;

	while (dy->i < dy->ndays && iv->start >= dy->d[dy->i].end)
		dy->i++;
	if (dy->i >= dy->ndays || iv->start < dy->d[dy->i].start)
		return 0;
	for (int ch = 0; ch < LP_NCH; ch++)
		if (iv->present & (1u << ch)) {
			dy->d[dy->i].present[ch]++;
			dy->d[dy->i].sum[ch] += iv->e[ch];
		}
	return 0;
}

int lpstore_daily(struct lpstore *st, int slot, const struct lp_params *p, int64_t first_day,
		  int ndays, struct lp_day *out)
{
	struct daily dy = {.d = out, .ndays = ndays};
	int ret;

	if (ndays <= 0)
		return 0;
	memset(out, 0, (size_t)ndays * sizeof(*out));
	for (int i = 0; i < ndays; i++) {
		out[i].day = first_day + i;
		out[i].start = i ? out[i - 1].end : lp_day_start(p, first_day);
		out[i].end = lp_day_start(p, first_day + i + 1);
		out[i].expected = lp_count_intervals(p, out[i].start, out[i].end);
	}
	ret = lpstore_range(st, slot, out[0].start, out[ndays - 1].end, daily_cb, &dy);
	for (int i = 0; i < ndays; i++)
		for (int ch = 0; ch < LP_NCH; ch++)
			out[i].missing[ch] = out[i].expected - out[i].present[ch];
	return ret;
}

int lpstore_clear(struct lpstore *st, int slot)
{
	bool own;
	int rc = tx_begin(st, &own);

	if (rc != SQLITE_OK)
		return fail(st, "clearing", rc);
	sqlite3_bind_int(st->clear_lp, 1, slot);
	rc = run(st->clear_lp);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st->clear_state, 1, slot);
		rc = run(st->clear_state);
	}
	if (rc == SQLITE_OK)
		rc = tx_commit(st, own);
	if (rc != SQLITE_OK)
		return fail(st, "clearing", rc);
	log_info("load profile: slot %d cleared", slot);
	return 0;
}

int lpstore_retain(struct lpstore *st, int64_t now_s)
{
	int64_t cut = now_s - (int64_t)st->retain_days * 86400;
	int rc, total = 0;
	bool own;

	if (st->retain_days <= 0)
		return 0;
	rc = tx_begin(st, &own);
	for (int slot = 0; rc == SQLITE_OK && slot < DEV_SLOTS; slot++) {
		sqlite3_bind_int(st->retain, 1, slot);
		sqlite3_bind_int64(st->retain, 2, cut);
		rc = run(st->retain);
		if (rc == SQLITE_OK)
			total += sqlite3_changes(st->db);
	}
	if (rc == SQLITE_OK)
		rc = tx_commit(st, own);
	if (rc != SQLITE_OK)
		return fail(st, "deleting old intervals", rc);
	if (total)
		log_info("load profile: deleted %d intervals older than %d days", total,
			 st->retain_days);
	return total;
}

int lpstore_state_save(struct lpstore *st, int slot, const struct lp_engine *e)
{
	int rc;

	if (!e->have_prev)
		return 0;
	rc = bind_state(st, slot, e);
	if (rc != SQLITE_OK)
		return fail(st, "saving engine state", rc);
	return 0;
}

static bool blob_into(sqlite3_stmt *s, int col, void *dst, size_t len)
{
	const void *b = sqlite3_column_blob(s, col);

	if (!b || (size_t)sqlite3_column_bytes(s, col) != len)
		return false;
	memcpy(dst, b, len);
	return true;
}

int lpstore_state_load(struct lpstore *st, int slot, struct lp_engine *e)
{
	sqlite3_stmt *s = st->state_get;
	int rc, ret = -ENOENT;

	lp_engine_init(e);
	sqlite3_bind_int(s, 1, slot);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		e->last_ms = sqlite3_column_int64(s, 0);
		e->ch_ok = (uint16_t)sqlite3_column_int(s, 1);
		e->cur_start = sqlite3_column_int64(s, 4);
		e->cur_known = (uint16_t)sqlite3_column_int(s, 6);
		e->cur_broken = (uint16_t)sqlite3_column_int(s, 7);
		if (blob_into(s, 2, e->ch_ms, sizeof(e->ch_ms)) &&
		    blob_into(s, 3, e->ch_v, sizeof(e->ch_v)) &&
		    blob_into(s, 5, e->cur_v, sizeof(e->cur_v))) {
			e->have_prev = true;
			ret = 0;
		} else {
			/* Not ours (other build): start over, like a first sample. */
			log_warn("load profile: slot %d: engine state unreadable, starting over",
				 slot);
			lp_engine_init(e);
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(st, "loading engine state", rc);
	return ret;
}
