/* Load-profile storage (real SQLite files in a mkdtemp dir): round trip,
 * missing values, daily totals with missing intervals and DST days, fill
 * never overwrites (and counts what it filled), the missing quarter hours of a
 * range and the newest stored interval, clear, reopen, engine state across reopen, retention,
 * module schema versions, a damaged file set aside, and power loss: a child
 * killed with SIGKILL while storing intervals, many times, loses nothing it
 * reported stored and leaves an intact database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/histdb.h"
#include "sg/lpstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EPS 1e-9

struct fx {
	char dir[64];
	char path[96];
	char err[512];
	struct histdb *h;
	struct lpstore *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_lpstore.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/history.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	lpstore_close(f->st);
	histdb_close(f->h);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

static void open_all(struct fx *f)
{
	int ret = histdb_open(f->path, &f->h, f->err, sizeof(f->err));

	if (ret)
		fail_msg("histdb_open: %d: %s", ret, f->err);
	ret = lpstore_open(f->h, &f->st, f->err, sizeof(f->err));
	if (ret)
		fail_msg("lpstore_open: %d: %s", ret, f->err);
}

static void close_all(struct fx *f)
{
	lpstore_close(f->st);
	histdb_close(f->h);
	f->st = NULL;
	f->h = NULL;
}

static int64_t last_sunday_0100(int year, int month)
{
	struct tm tm = {.tm_year = year - 1900, .tm_mon = month, .tm_mday = 0, .tm_hour = 1};
	time_t t = timegm(&tm);
	struct tm g;

	gmtime_r(&t, &g);
	return (int64_t)t - (int64_t)g.tm_wday * 86400;
}

static int cet(time_t utc, void *arg)
{
	struct tm g;
	int y;

	(void)arg;
	gmtime_r(&utc, &g);
	y = g.tm_year + 1900;
	return utc >= last_sunday_0100(y, 3) && utc < last_sunday_0100(y, 10) ? 7200 : 3600;
}

static int64_t utc_of(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	    .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

	return (int64_t)timegm(&tm);
}

static struct lp_interval mk(int64_t start, double ai, uint16_t present)
{
	struct lp_interval iv = {.start = start, .present = present};

	for (int ch = 0; ch < LP_NCH; ch++)
		iv.e[ch] = ai + ch;
	return iv;
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct lp_interval in[10], out[16];
	int64_t t0 = utc_of(2026, 5, 1, 0, 0);
	size_t n;

	open_all(f);
	for (int i = 0; i < 10; i++)
		in[i] = mk(t0 + 900 * i, 100.5 + i, i == 3 ? 0 : i == 4 ? 0x3 : LP_ALL_CH);
	assert_int_equal(lpstore_put(f->st, 5, in, 10, NULL), 0);
	assert_int_equal(lpstore_range_array(f->st, 5, t0, t0 + 9000, out, 16, &n), 0);
	assert_int_equal(n, 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(out[i].start, in[i].start);
		assert_int_equal(out[i].present, in[i].present);
		for (int ch = 0; ch < LP_NCH; ch++)
			if (in[i].present & (1u << ch))
				assert_true(fabs(out[i].e[ch] - in[i].e[ch]) < EPS);
	}
	/* [from, to) and other slots */
	assert_int_equal(lpstore_range_array(f->st, 5, t0 + 900, t0 + 2700, out, 16, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].start, t0 + 900);
	assert_int_equal(lpstore_range_array(f->st, 6, t0, t0 + 9000, out, 16, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(lpstore_range_array(f->st, 5, t0, t0 + 9000, out, 4, &n), -E2BIG);
	assert_int_equal(n, 4);
	/* a later "missing" never erases a stored value; a present one replaces it */
	in[0] = mk(t0, 7, 0);
	in[1] = mk(t0 + 900, 7, 1u << LP_AI);
	assert_int_equal(lpstore_put(f->st, 5, in, 2, NULL), 0);
	assert_int_equal(lpstore_range_array(f->st, 5, t0, t0 + 1800, out, 16, &n), 0);
	assert_int_equal(out[0].present, LP_ALL_CH);
	assert_true(fabs(out[0].e[LP_AI] - 100.5) < EPS);
	assert_int_equal(out[1].present, LP_ALL_CH);
	assert_true(fabs(out[1].e[LP_AI] - 7) < EPS);
	assert_true(fabs(out[1].e[LP_AE] - 102.5) < EPS);
}

static void test_daily_totals(void **state)
{
	struct fx *f = *state;
	struct lp_params p = {.offset_s = cet};
	int64_t d0 = lp_local_day(&p, utc_of(2026, 10, 24, 12, 0)); /* Sat, Sun (25 h), Mon */
	int64_t s0 = lp_day_start(&p, d0), s3 = lp_day_start(&p, d0 + 3);
	struct lp_interval *iv = calloc(400, sizeof(*iv));
	struct lp_day days[3];
	size_t n = 0;

	assert_non_null(iv);
	open_all(f);
	for (int64_t t = s0; t < s3; t += 900) {
		int64_t k = (t - s0) / 900;

		if (k == 10 || k == 11) /* not stored at all (gateway off) */
			continue;
		iv[n++] = mk(t, 500, k == 20 || k == 21 ? 0 : LP_ALL_CH); /* stored missing */
	}
	assert_int_equal(lpstore_put(f->st, 1, iv, n, NULL), 0);
	assert_int_equal(lpstore_daily(f->st, 1, &p, d0, 3, days), 0);
	assert_int_equal(days[0].expected, 96);
	assert_int_equal(days[1].expected, 100);
	assert_int_equal(days[2].expected, 96);
	assert_int_equal(days[0].start, s0);
	assert_int_equal(days[2].end, s3);
	assert_int_equal(days[0].present[LP_AI], 92);
	assert_int_equal(days[0].missing[LP_AI], 4);
	assert_true(fabs(days[0].sum[LP_AI] - 92 * 500.0) < 1e-6);
	assert_true(fabs(days[0].sum[LP_AE] - 92 * 501.0) < 1e-6);
	assert_int_equal(days[1].present[LP_AI], 100);
	assert_int_equal(days[1].missing[LP_AI], 0);
	assert_true(fabs(days[1].sum[LP_AI] - 100 * 500.0) < 1e-6);
	assert_int_equal(days[2].missing[LP_AE], 0);
	/* a day with nothing stored: all missing, sum 0 is not a reading */
	assert_int_equal(lpstore_daily(f->st, 1, &p, d0 + 10, 1, days), 0);
	assert_int_equal(days[0].present[LP_AI], 0);
	assert_int_equal(days[0].missing[LP_AI], 96);
	/* spring: 92 */
	d0 = lp_local_day(&p, utc_of(2026, 3, 29, 12, 0));
	assert_int_equal(lpstore_daily(f->st, 1, &p, d0, 1, days), 0);
	assert_int_equal(days[0].expected, 92);
	free(iv);
}

static void test_fill_never_overwrites(void **state)
{
	struct fx *f = *state;
	int64_t t0 = utc_of(2026, 5, 1, 0, 0);
	struct lp_interval in[4], out[8];
	size_t n;

	open_all(f);
	in[0] = mk(t0, 500, LP_ALL_CH);
	in[1] = mk(t0 + 900, 500, 0);		 /* missing */
	in[2] = mk(t0 + 1800, 500, 1u << LP_AI); /* only AI */
	assert_int_equal(lpstore_put(f->st, 2, in, 3, NULL), 0);
	for (int i = 0; i < 4; i++)
		in[i] = mk(t0 + 900 * i, 999, LP_ALL_CH & ~(1u << LP_AE3));
	assert_int_equal(lpstore_fill(f->st, 2, in, 4), 0);
	assert_int_equal(lpstore_range_array(f->st, 2, t0, t0 + 3600, out, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_true(fabs(out[0].e[LP_AI] - 500) < EPS); /* kept */
	assert_int_equal(out[0].present, LP_ALL_CH);
	assert_true(fabs(out[1].e[LP_AI] - 999) < EPS); /* filled */
	assert_int_equal(out[1].present, LP_ALL_CH & ~(1u << LP_AE3));
	assert_true(fabs(out[2].e[LP_AI] - 500) < EPS);	 /* kept */
	assert_true(fabs(out[2].e[LP_AE] - 1000) < EPS); /* filled */
	assert_true(fabs(out[3].e[LP_AI] - 999) < EPS);	 /* not stored before: added */
}

static int plus_20min(time_t utc, void *arg)
{
	(void)utc;
	(void)arg;
	return 1200;
}

/* The re-check's queries: quarter hours not stored or stored without a
 * wanted channel, the newest stored interval, and how many a fill filled. */
static void test_missing_last_fill_count(void **state)
{
	struct fx *f = *state;
	struct lp_params utc = {0}, odd = {.offset_s = plus_20min};
	int64_t t0 = utc_of(2026, 5, 1, 0, 0), out[8], last = -1;
	uint16_t ai = 1u << LP_AI, ae = 1u << LP_AE;
	struct lp_interval in[5], row[8];
	size_t n, filled = 99;

	open_all(f);
	in[0] = mk(t0, 5, LP_ALL_CH);
	in[1] = mk(t0 + 900, 5, 0);	   /* stored missing */
	in[2] = mk(t0 + 1800, 5, ai);	   /* AI only */
	in[3] = mk(t0 + 3600, 5, ai | ae); /* t0 + 2700 not stored */
	assert_int_equal(lpstore_put(f->st, 1, in, 4, NULL), 0);

	for (int i = 0; i < 8; i++)
		out[i] = -1;
	assert_int_equal(lpstore_missing(f->st, 1, &utc, t0, t0 + 4500, ai | ae, out, 8), 3);
	assert_int_equal(out[0], t0 + 900);
	assert_int_equal(out[1], t0 + 1800);
	assert_int_equal(out[2], t0 + 2700);
	assert_int_equal(out[3], -1);
	assert_int_equal(lpstore_missing(f->st, 1, &utc, t0, t0 + 4500, ai, out, 8), 2);
	assert_int_equal(out[0], t0 + 900);
	assert_int_equal(out[1], t0 + 2700);
	/* the count goes on past max; out only holds max; not on a boundary: the next one */
	out[1] = -1;
	assert_int_equal(lpstore_missing(f->st, 1, &utc, t0 + 1, t0 + 9000, ai | ae, out, 1), 8);
	assert_int_equal(out[0], t0 + 900);
	assert_int_equal(out[1], -1);
	assert_int_equal(lpstore_missing(f->st, 1, &utc, t0, t0 + 900, ai | ae, NULL, 0), 0);
	assert_int_equal(lpstore_missing(f->st, 2, &utc, t0, t0 + 3600, ai, NULL, 0), 4);
	assert_int_equal(lpstore_missing(f->st, 1, &utc, t0, t0, ai, NULL, 0), 0);
	/* +00:20: quarter hours at UTC :10, :25, …; rows on UTC quarter hours are not those */
	assert_int_equal(lpstore_missing(f->st, 1, &odd, t0, t0 + 3600, ai, out, 8), 4);
	assert_int_equal(out[0], t0 + 600);

	assert_int_equal(lpstore_last(f->st, 1, t0, &last), -ENOENT);
	assert_int_equal(last, -1);
	assert_int_equal(lpstore_last(f->st, 1, t0 + 3601, &last), 0);
	assert_int_equal(last, t0 + 3600);
	assert_int_equal(lpstore_last(f->st, 1, t0 + 3600, &last), 0);
	assert_int_equal(last, t0 + 1800);
	assert_int_equal(lpstore_last(f->st, 2, t0 + 9000, &last), -ENOENT);

	/* a fill counts the rows it added to: t0 + 900, 1800, 2700 and 3600
	 * (whose RI was missing), not t0 (complete) */
	for (int i = 0; i < 5; i++)
		in[i] = mk(t0 + 900 * i, 50, LP_ALL_CH);
	assert_int_equal(lpstore_fill_count(f->st, 1, in, 5, &filled), 0);
	assert_int_equal(filled, 4);
	assert_int_equal(lpstore_fill_count(f->st, 1, in, 5, &filled), 0);
	assert_int_equal(filled, 0);
	assert_int_equal(lpstore_range_array(f->st, 1, t0, t0 + 4500, row, 8, &n), 0);
	assert_int_equal(n, 5);
	assert_true(fabs(row[0].e[LP_AI] - 5) < EPS);
	assert_true(fabs(row[1].e[LP_AI] - 50) < EPS);
	assert_true(fabs(row[2].e[LP_AI] - 5) < EPS);
	assert_true(fabs(row[2].e[LP_AE] - 51) < EPS);
	assert_true(fabs(row[4].e[LP_RI] - 52) < EPS);
	assert_int_equal(lpstore_missing(f->st, 1, &utc, t0, t0 + 4500, LP_ALL_CH, NULL, 0), 0);
}

static void test_clear_and_reopen(void **state)
{
	struct fx *f = *state;
	int64_t t0 = utc_of(2026, 5, 1, 0, 0);
	struct lp_interval in[3], out[4];
	struct lp_engine e;
	size_t n;

	open_all(f);
	for (int i = 0; i < 3; i++)
		in[i] = mk(t0 + 900 * i, 10, LP_ALL_CH);
	lp_engine_init(&e);
	e.have_prev = true;
	e.last_ms = 42;
	assert_int_equal(lpstore_put(f->st, 1, in, 3, &e), 0);
	assert_int_equal(lpstore_put(f->st, 2, in, 3, &e), 0);
	close_all(f);

	open_all(f);
	assert_int_equal(histdb_version(f->h, "loadprof"), 1);
	assert_int_equal(lpstore_range_array(f->st, 1, t0, t0 + 3600, out, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(lpstore_state_load(f->st, 1, &e), 0);
	assert_int_equal(e.last_ms, 42);
	assert_int_equal(lpstore_clear(f->st, 1), 0);
	assert_int_equal(lpstore_range_array(f->st, 1, t0, t0 + 3600, out, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(lpstore_state_load(f->st, 1, &e), -ENOENT);
	assert_false(e.have_prev);
	assert_int_equal(lpstore_range_array(f->st, 2, t0, t0 + 3600, out, 4, &n), 0);
	assert_int_equal(n, 3);
	close_all(f);

	open_all(f);
	assert_int_equal(lpstore_range_array(f->st, 1, t0, t0 + 3600, out, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(lpstore_state_load(f->st, 2, &e), 0);
}

/* Samples every 10 s at 2 kW through lpstore_record, from..to (s). */
static void feed(struct fx *f, struct lp_engine *e, const struct lp_params *p, int64_t t0,
		 int64_t from, int64_t to)
{
	for (int64_t t = from; t <= to; t += 10) {
		struct lp_sample s = {.ms = t * 1000, .ok = (1u << LP_AI) | (1u << LP_AE)};

		s.v[LP_AI] = 5000 + 2000.0 * (double)(t - t0) / 3600;
		s.v[LP_AE] = 10;
		assert_true(lpstore_record(f->st, 3, e, p, &s) >= 0);
	}
}

static void test_engine_state_across_reopen(void **state)
{
	struct fx *f = *state;
	struct lp_params p = {.offset_s = cet, .max_gap_s = 900};
	int64_t t0 = utc_of(2026, 1, 13, 23, 0);
	struct lp_interval out[100];
	struct lp_engine e;
	size_t n;

	open_all(f);
	lp_engine_init(&e);
	/* clean shutdown at 06:07:20, state saved; restart two minutes later */
	feed(f, &e, &p, t0, t0, t0 + 6 * 3600 + 440);
	assert_int_equal(lpstore_state_save(f->st, 3, &e), 0);
	close_all(f);
	open_all(f);
	assert_int_equal(lpstore_state_load(f->st, 3, &e), 0);
	feed(f, &e, &p, t0, t0 + 6 * 3600 + 560, t0 + 12 * 3600 + 300);
	/* crash at 12:05 (no save: the state of the 12:00 boundary is on disk),
	 * restart at 12:10: still within max_gap of the saved sample */
	close_all(f);
	open_all(f);
	assert_int_equal(lpstore_state_load(f->st, 3, &e), 0);
	feed(f, &e, &p, t0, t0 + 12 * 3600 + 600, t0 + 86400);
	assert_int_equal(lpstore_range_array(f->st, 3, t0, t0 + 86400, out, 100, &n), 0);
	assert_int_equal(n, 96);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].start, t0 + 900 * (int64_t)i);
		assert_int_equal(out[i].present, (1u << LP_AI) | (1u << LP_AE));
		assert_true(fabs(out[i].e[LP_AI] - 500) < 1e-6);
		assert_true(fabs(out[i].e[LP_AE]) < 1e-9);
	}
}

static void test_retention(void **state)
{
	struct fx *f = *state;
	int64_t t0 = utc_of(2026, 5, 1, 0, 0);
	struct lp_interval in[20], out[32];
	size_t n;

	open_all(f);
	lpstore_set_retention(f->st, 10);
	for (int d = 0; d < 20; d++)
		in[d] = mk(t0 + 86400 * d, 1, LP_ALL_CH);
	/* the put stores all, then its retention pass (interval time) trims */
	assert_int_equal(lpstore_put(f->st, 4, in, 20, NULL), 0);
	assert_int_equal(lpstore_range_array(f->st, 4, 0, INT64_MAX, out, 32, &n), 0);
	assert_int_equal(n, 11);
	assert_int_equal(out[0].start, t0 + 86400 * 9);
	lpstore_set_retention(f->st, 0); /* keep everything */
	assert_int_equal(lpstore_put(f->st, 4, in, 20, NULL), 0);
	assert_int_equal(lpstore_retain(f->st, t0 + 86400 * 100), 0);
	assert_int_equal(lpstore_range_array(f->st, 4, 0, INT64_MAX, out, 32, &n), 0);
	assert_int_equal(n, 20);
}

static void test_schema_modules(void **state)
{
	struct fx *f = *state;
	static const char *const v2[] = {"CREATE TABLE rec_a(x);", "CREATE TABLE rec_b(y);"};

	open_all(f);
	assert_int_equal(histdb_version(f->h, "recorders"), 0);
	assert_int_equal(histdb_schema(f->h, "recorders", v2, 1), 0);
	assert_int_equal(histdb_version(f->h, "recorders"), 1);
	assert_int_equal(histdb_schema(f->h, "recorders", v2, 2), 0);
	assert_int_equal(histdb_schema(f->h, "recorders", v2, 2), 0); /* idempotent */
	assert_int_equal(histdb_version(f->h, "recorders"), 2);
	/* a newer file than this build knows */
	assert_int_equal(histdb_schema(f->h, "recorders", v2, 1), -EPROTONOSUPPORT);
	/* a failing migration leaves the version where it was */
	static const char *const bad[] = {"CREATE TABLE t(z);", "CREATE TABLE t(z);"};
	assert_true(histdb_schema(f->h, "other", bad, 2) < 0);
	assert_int_equal(histdb_version(f->h, "other"), 1);
	assert_int_equal(histdb_version(f->h, "loadprof"), 1);
}

/* Copies of a damaged history.db (without their -wal/-shm). */
static int count_bad(const struct fx *f)
{
	struct dirent *e;
	DIR *d = opendir(f->dir);
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "history.db.bad-", 15) && !strstr(e->d_name, "-wal") &&
		     !strstr(e->d_name, "-shm");
	closedir(d);
	return n;
}

static void write_garbage(const struct fx *f)
{
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database, just some text\n", fp);
	fclose(fp);
}

static void test_damaged_set_aside(void **state)
{
	struct fx *f = *state;
	struct lp_interval in = mk(1000 * 900, 1, LP_ALL_CH), out[2];
	size_t n;

	write_garbage(f);
	open_all(f);
	assert_true(histdb_recovered(f->h));
	assert_int_equal(count_bad(f), 1);
	assert_int_equal(lpstore_put(f->st, 0, &in, 1, NULL), 0);
	assert_int_equal(lpstore_range_array(f->st, 0, 0, INT64_MAX, out, 2, &n), 0);
	assert_int_equal(n, 1);
	close_all(f);
	open_all(f);
	assert_false(histdb_recovered(f->h));
	/* Damaged again: the first copy stays, a second one joins it. */
	close_all(f);
	write_garbage(f);
	open_all(f);
	assert_true(histdb_recovered(f->h));
	assert_int_equal(count_bad(f), 2);
}

/* Power loss: the child stores intervals 0, 1, 2 … (ai = i) one transaction
 * each and writes i to the pipe once lpstore_put returned; it is killed at a
 * random moment. */
static void child(const char *path, int fd, int64_t first)
{
	struct histdb *h;
	struct lpstore *st;
	char err[256];

	if (histdb_open(path, &h, err, sizeof(err)) || lpstore_open(h, &st, err, sizeof(err)))
		_exit(3);
	for (int64_t i = first;; i++) {
		struct lp_interval iv = mk(1700000100 + 900 * i, (double)i, LP_ALL_CH);

		if (lpstore_put(st, (int)(i % 18), &iv, 1, NULL) != 0)
			_exit(4);
		if (write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(5);
	}
}

static void test_power_loss(void **state)
{
	struct fx *f = *state;
	int64_t *seen = calloc(1000000, sizeof(*seen));
	size_t nseen = 0;
	int64_t next = 0;
	unsigned seed = (unsigned)time(NULL);

	assert_non_null(seen);
	srand(seed);
	for (int round = 0; round < 20; round++) {
		int pfd[2], st;
		int64_t v;
		pid_t pid;
		char ok[32] = "";
		sqlite3_stmt *s;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child(f->path, pfd[1], next);
		}
		close(pfd[1]);
		usleep((useconds_t)(2000 + rand() % 60000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		while (read(pfd[0], &v, sizeof(v)) == sizeof(v)) {
			assert_true(nseen < 1000000);
			seen[nseen++] = v;
			next = v + 1;
		}
		close(pfd[0]);

		/* the file is intact and every reported interval is there */
		open_all(f);
		assert_int_equal(
		    sqlite3_prepare_v2(histdb_sqlite(f->h), "PRAGMA integrity_check", -1, &s, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		snprintf(ok, sizeof(ok), "%s", (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		assert_string_equal(ok, "ok");
		for (size_t i = 0; i < nseen; i++) {
			struct lp_interval out[2];
			int64_t ts = 1700000100 + 900 * seen[i];
			size_t n;

			assert_int_equal(
			    lpstore_range_array(f->st, (int)(seen[i] % 18), ts, ts + 1, out, 2, &n),
			    0);
			if (n != 1 || fabs(out[0].e[LP_AI] - (double)seen[i]) > EPS)
				fail_msg("round %d (seed %u): interval %lld reported stored, "
					 "not found",
					 round, seed, (long long)seen[i]);
		}
		close_all(f);
	}
	if (nseen == 0)
		fail_msg("the child never stored anything (seed %u)", seed);
	print_message("power loss: 20 kills, %zu intervals reported and found\n", nseen);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daily_totals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fill_never_overwrites, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_last_fill_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clear_and_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_state_across_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_modules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_set_aside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_power_loss, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
