/* bench_history: load-profile storage at the size the product promises.
 *
 * Fills history.db (the daemon's own code: histdb + lpstore) with 2 years ×
 * 18 devices of 15-minute intervals (4 channels: active and reactive import
 * and export), one transaction per simulated day for all devices, and
 * reports the file size, the insert cost per interval (batched, and one
 * transaction per interval as the daemon stores them), and the latency
 * (median, p99 over --queries random picks) of "one day of one device"
 * (96 rows) and "one month of daily totals for one device" (30 days,
 * CET/CEST). References in the same run: the 10 ms target, and a plain
 * sequential read of the same number of rows from a rowid table (id, v)
 * in the same file. Figures are printed as ratios; nothing asserts a target.
 * See bench/README.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sg/histdb.h"
#include "sg/lpstore.h"

#define SLOTS 18
#define TARGET_MS 10.0

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t last_sunday_0100(int year, int month)
{
	struct tm tm = {.tm_year = year - 1900, .tm_mon = month, .tm_mday = 0, .tm_hour = 1};
	time_t t = timegm(&tm);
	struct tm g;

	gmtime_r(&t, &g);
	return (int64_t)t - (int64_t)g.tm_wday * 86400;
}

/* CET/CEST (what a European gateway would pass from localtime_r). */
static int cet(time_t utc, void *arg)
{
	struct tm g;
	int y;

	(void)arg;
	gmtime_r(&utc, &g);
	y = g.tm_year + 1900;
	return utc >= last_sunday_0100(y, 3) && utc < last_sunday_0100(y, 10) ? 7200 : 3600;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i = (int)ceil(p * n) - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static long long file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "bench_history: %s: %s\n", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Deterministic, plausible energies: a daily shape plus noise, fractional Wh. */
static struct lp_interval make_iv(int slot, int64_t ts, unsigned *seed)
{
	struct lp_interval iv = {.start = ts};
	double hour = fmod((double)ts / 3600.0, 24.0);
	double base = 150 + 100 * slot + 120 * sin(hour / 24 * 2 * M_PI);

	iv.e[LP_AI] = base + (double)(rand_r(seed) % 100000) / 1000.0;
	iv.e[LP_AE] = hour > 8 && hour < 17 ? (double)(rand_r(seed) % 400000) / 1000.0 : 0;
	iv.e[LP_RI] = base / 5 + (double)(rand_r(seed) % 10000) / 1000.0;
	iv.e[LP_RE] = (double)(rand_r(seed) % 5000) / 1000.0;
	iv.present = (1u << LP_AI) | (1u << LP_AE) | (1u << LP_RI) | (1u << LP_RE);
	return iv;
}

struct sink {
	double sum;
	int rows;
};

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"dir", required_argument, NULL, 'd'},
					   {"days", required_argument, NULL, 'D'},
					   {"queries", required_argument, NULL, 'q'},
					   {"keep", no_argument, NULL, 'k'},
					   {NULL, 0, NULL, 0}};
	char dir[256] = "", path[320], err[512] = "";
	const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	int days = 730, queries = 200, keep = 0, c, ret;
	struct histdb *h = NULL;
	struct lpstore *st = NULL;
	struct lp_params p = {.offset_s = cet};
	struct lp_interval batch[96], out[128];
	unsigned seed = 12345;
	int64_t t0, nrows = 0;
	double t, fill_ms, single_ms, open_ms, *lat_day, *lat_month, *lat_ref_day, *lat_ref_month;
	sqlite3 *db;
	sqlite3_stmt *ref_ins, *ref_sel;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			parent = optarg;
			break;
		case 'D':
			days = atoi(optarg);
			break;
		case 'q':
			queries = atoi(optarg);
			break;
		case 'k':
			keep = 1;
			break;
		default:
			fprintf(stderr, "usage: bench_history [--dir PARENT] [--days 730] "
					"[--queries 200] [--keep]\n");
			return 2;
		}
	}
	if (days < 31 || queries < 10) {
		fprintf(stderr, "bench_history: --days >= 31, --queries >= 10\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/sgd-bench-history.XXXXXX", parent);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_history: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/history.db", dir);
	ret = histdb_open(path, &h, err, sizeof(err));
	if (!ret)
		ret = lpstore_open(h, &st, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "bench_history: %s\n", err);
		return 1;
	}
	db = histdb_sqlite(h);
	t0 = lp_day_start(&p, lp_local_day(&p, 1735732800)); /* 2025-01-01 local */

	/* Fill: one transaction per day with all devices' 96 intervals. */
	t = now_ms();
	for (int d = 0; d < days; d++) {
		int64_t ds = lp_day_start(&p, lp_local_day(&p, t0) + d);
		int64_t de = lp_day_start(&p, lp_local_day(&p, t0) + d + 1);

		if (exec(db, "BEGIN IMMEDIATE"))
			return 1;
		for (int s = 0; s < SLOTS; s++) {
			int n = 0;

			for (int64_t ts = ds; ts < de && n < 96; ts += 900)
				batch[n++] = make_iv(s, ts, &seed);
			if (lpstore_put(st, s, batch, (size_t)n, NULL))
				return 1;
			nrows += n;
			/* DST autumn day: 100 intervals */
			for (int64_t ts = ds + 96 * 900; ts < de; ts += 900) {
				batch[0] = make_iv(s, ts, &seed);
				if (lpstore_put(st, s, batch, 1, NULL))
					return 1;
				nrows++;
			}
		}
		if (exec(db, "COMMIT"))
			return 1;
	}
	fill_ms = now_ms() - t;

	/* One transaction (one fsync) per interval: how the daemon stores them. */
	t = now_ms();
	for (int i = 0; i < 200; i++) {
		struct lp_interval iv =
		    make_iv(i % SLOTS, t0 + (int64_t)days * 86400 + 900 * i, &seed);

		if (lpstore_put(st, i % SLOTS, &iv, 1, NULL))
			return 1;
	}
	single_ms = (now_ms() - t) / 200;

	/* Reference: the same number of rows as a day / a month read sequentially
	 * from a plain rowid table (id, v) in the same file. */
	if (exec(db, "CREATE TABLE ref(id INTEGER PRIMARY KEY, v REAL)") || exec(db, "BEGIN") ||
	    sqlite3_prepare_v2(db, "INSERT INTO ref(id, v) VALUES(?, ?)", -1, &ref_ins, NULL) ||
	    sqlite3_prepare_v2(db, "SELECT v FROM ref WHERE id >= ? AND id < ? ORDER BY id", -1,
			       &ref_sel, NULL)) {
		fprintf(stderr, "bench_history: reference table: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	for (int i = 0; i < 100000; i++) {
		sqlite3_bind_int(ref_ins, 1, i);
		sqlite3_bind_double(ref_ins, 2, i * 0.5);
		sqlite3_step(ref_ins);
		sqlite3_reset(ref_ins);
	}
	sqlite3_finalize(ref_ins);
	if (exec(db, "COMMIT") || exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"))
		return 1;

	lat_day = calloc((size_t)queries, sizeof(double));
	lat_month = calloc((size_t)queries, sizeof(double));
	lat_ref_day = calloc((size_t)queries, sizeof(double));
	lat_ref_month = calloc((size_t)queries, sizeof(double));
	if (!lat_day || !lat_month || !lat_ref_day || !lat_ref_month)
		return 1;
	for (int q = 0; q < queries; q++) {
		int s = rand_r(&seed) % SLOTS, d = rand_r(&seed) % (days - 31);
		int64_t day = lp_local_day(&p, t0) + d;
		struct lp_day month[30];
		size_t n;
		int id = rand_r(&seed) % (100000 - 3000);
		struct sink sk = {0};

		t = now_ms();
		if (lpstore_range_array(st, s, lp_day_start(&p, day), lp_day_start(&p, day + 1),
					out, 128, &n) ||
		    n < 92)
			return 1;
		lat_day[q] = now_ms() - t;
		t = now_ms();
		if (lpstore_daily(st, s, &p, day, 30, month) || month[0].present[LP_AI] < 92)
			return 1;
		lat_month[q] = now_ms() - t;
		for (int r = 0; r < 2; r++) {
			int rows = r ? 2880 : 96;

			t = now_ms();
			sqlite3_bind_int(ref_sel, 1, id);
			sqlite3_bind_int(ref_sel, 2, id + rows);
			while (sqlite3_step(ref_sel) == SQLITE_ROW) {
				sk.sum += sqlite3_column_double(ref_sel, 0);
				sk.rows++;
			}
			sqlite3_reset(ref_sel);
			(r ? lat_ref_month : lat_ref_day)[q] = now_ms() - t;
		}
		if (sk.rows != 96 + 2880)
			return 1;
	}
	sqlite3_finalize(ref_sel);
	lpstore_close(st);
	histdb_close(h);
	{
		long long size = file_size(path);
		double per_iv = fill_ms * 1000 / (double)nrows;
		double d50 = pct(lat_day, queries, 0.5), d99 = pct(lat_day, queries, 0.99);
		double m50 = pct(lat_month, queries, 0.5), m99 = pct(lat_month, queries, 0.99);
		double rd50 = pct(lat_ref_day, queries, 0.5),
		       rm50 = pct(lat_ref_month, queries, 0.5);

		/* Reopen: histdb_open runs quick_check over the whole file. */
		t = now_ms();
		if (histdb_open(path, &h, err, sizeof(err))) {
			fprintf(stderr, "bench_history: reopen: %s\n", err);
			return 1;
		}
		open_ms = now_ms() - t;
		histdb_close(h);

		printf("devices          %d\n", SLOTS);
		printf("days             %d\n", days);
		printf("intervals        %lld\n", (long long)nrows);
		printf("file size        %.1f MB (%.1f bytes per interval, incl. a 100000-row "
		       "reference table)\n",
		       (double)size / 1e6, (double)size / (double)nrows);
		printf(
		    "insert batched   %.2f us per interval (one transaction per day, all devices; "
		    "%.1f s)\n",
		    per_iv, fill_ms / 1000);
		printf("insert single    %.3f ms per interval (own transaction, fsync)\n",
		       single_ms);
		printf("day of 1 device  p50 %.3f ms, p99 %.3f ms (%d queries, 96 rows); %.4f / "
		       "%.4f of the %.0f ms target; %.2f x reference read of 96 rows (%.3f ms)\n",
		       d50, d99, queries, d50 / TARGET_MS, d99 / TARGET_MS, TARGET_MS, d50 / rd50,
		       rd50);
		printf("month of totals  p50 %.3f ms, p99 %.3f ms (30 daily totals, 2880 rows); "
		       "%.4f / %.4f of the target; %.2f x reference read of 2880 rows (%.3f ms)\n",
		       m50, m99, m50 / TARGET_MS, m99 / TARGET_MS, m50 / rm50, rm50);
		printf("open + quick_check %.0f ms\n", open_ms);
		printf("RESULT intervals=%lld size_mb=%.1f bytes_per_iv=%.1f insert_us=%.2f "
		       "single_ms=%.3f day_p50_ms=%.3f day_p99_ms=%.3f day_ratio=%.4f "
		       "day_vs_ref=%.2f month_p50_ms=%.3f month_p99_ms=%.3f month_ratio=%.4f "
		       "month_vs_ref=%.2f open_ms=%.0f\n",
		       (long long)nrows, (double)size / 1e6, (double)size / (double)nrows, per_iv,
		       single_ms, d50, d99, d99 / TARGET_MS, d50 / rd50, m50, m99, m99 / TARGET_MS,
		       m50 / rm50, open_ms);
	}
	if (!keep) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_history: could not remove %s\n", dir);
	} else {
		printf("kept %s\n", path);
	}
	free(lat_day);
	free(lat_month);
	free(lat_ref_day);
	free(lat_ref_month);
	return 0;
}
