/* Load-profile storage in history.db (module "loadprof").
 *
 * Schema (migration 1):
 *   lp(slot INTEGER, ts INTEGER, ai, ae, ri, re, ai1, ai2, ai3, ae1, ae2, ae3 REAL,
 *      PRIMARY KEY(slot, ts)) WITHOUT ROWID
 *     one row per device slot and interval start (UTC seconds); a channel's
 *     energy is NULL when missing. Rows of one device are contiguous in the
 *     primary-key b-tree, so "one day of one device" reads ~96 adjacent rows.
 *   lp_state(slot INTEGER PRIMARY KEY, …)
 *     the interval engine's state per device, written in the same
 *     transaction as the intervals it produced, so a restart continues. */
#ifndef SG_LPSTORE_H
#define SG_LPSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "sg/histdb.h"
#include "sg/loadprof.h"

#define LPSTORE_RETAIN_DAYS_DEFAULT (3 * 366)

struct lpstore;

/* Totals of one local day. */
struct lp_day {
	int64_t day;	     /* local day number (lp_local_day) */
	int64_t start, end;  /* UTC s: [start, end) */
	int expected;	     /* intervals in the day: 96, 92 or 100 across DST changes */
	int present[LP_NCH]; /* intervals with a value per channel */
	int missing[LP_NCH]; /* expected - present: not stored, or stored as missing */
	double sum[LP_NCH];  /* sum of the present intervals */
};

/* Create/migrate the tables in h and prepare the statements. */
int lpstore_open(struct histdb *h, struct lpstore **out, char *err, size_t len);
void lpstore_close(struct lpstore *st);
/* Retention in days (default LPSTORE_RETAIN_DAYS_DEFAULT); <= 0 keeps all. */
void lpstore_set_retention(struct lpstore *st, int days);

/* Store intervals of slot (and, when e is not NULL, the engine state) in one
 * transaction: a present channel replaces the stored value, a missing one
 * never erases a stored value. Once this returns 0 the rows are on disk.
 * Runs lpstore_retain at most once per day of interval time. Inside a
 * transaction the caller opened (BEGIN on histdb_sqlite; a bulk import
 * batching many calls), writes join it and the caller commits; on error that
 * transaction is rolled back. The same holds for fill, clear and retain. */
int lpstore_put(struct lpstore *st, int slot, const struct lp_interval *iv, size_t n,
		const struct lp_engine *e);
/* Fill from a meter's own load profile: only channels stored as missing (or
 * rows not stored) get the values; a stored value is never overwritten. */
int lpstore_fill(struct lpstore *st, int slot, const struct lp_interval *iv, size_t n);
/* The same; *filled = intervals that gained a value (0 on error). */
int lpstore_fill_count(struct lpstore *st, int slot, const struct lp_interval *iv, size_t n,
		       size_t *filled);
/* Feed one sample to slot's engine; when intervals complete, store them and
 * the engine state in one transaction. Returns the number of intervals
 * stored or -errno (then the engine has advanced; the intervals are lost). */
int lpstore_record(struct lpstore *st, int slot, struct lp_engine *e, const struct lp_params *p,
		   const struct lp_sample *s);

/* Intervals of slot with from <= start < to, oldest first; cb returning
 * non-zero stops (and is returned). Only stored rows are reported. */
int lpstore_range(struct lpstore *st, int slot, int64_t from, int64_t to,
		  int (*cb)(const struct lp_interval *iv, void *arg), void *arg);
/* The same into out[0…max-1]; *n = rows written. -E2BIG when more exist. */
int lpstore_range_array(struct lpstore *st, int slot, int64_t from, int64_t to,
			struct lp_interval *out, size_t max, size_t *n);
/* Start of the newest stored interval of slot before `before`; 0, -ENOENT
 * when there is none, or -errno. */
int lpstore_last(struct lpstore *st, int slot, int64_t before, int64_t *start);
/* Local quarter hours of p in [from, to) whose interval is not stored, or is
 * stored without every channel of want. The first max starts go to out
 * (oldest first; out may be NULL). Returns how many there are, or -errno. */
int lpstore_missing(struct lpstore *st, int slot, const struct lp_params *p, int64_t from,
		    int64_t to, uint16_t want, int64_t *out, size_t max);
/* Totals of the local days first_day … first_day+ndays-1 into out[ndays]. */
int lpstore_daily(struct lpstore *st, int slot, const struct lp_params *p, int64_t first_day,
		  int ndays, struct lp_day *out);

/* Delete every interval and the engine state of slot (R-A1 "Clear"). */
int lpstore_clear(struct lpstore *st, int slot);
/* Delete intervals older than the retention before now_s; rows deleted or -errno. */
int lpstore_retain(struct lpstore *st, int64_t now_s);

/* Engine state: save (e.g. at shutdown) and load; -ENOENT when none stored. */
int lpstore_state_save(struct lpstore *st, int slot, const struct lp_engine *e);
int lpstore_state_load(struct lpstore *st, int slot, struct lp_engine *e);

#endif
