/* Recorders: 400 simulated days of midnight captures across a year boundary
 * and the 2028 leap year; daily, monthly and yearly views; gaps and meter
 * resets give missing days (never zero, never negative); first capture wins;
 * clear; CSV parsed back to the same doubles; configuration validation; JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/recorder.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NDAYS 400

struct fx {
	char dir[64];
	char path[96];
	sqlite3 *db;
	struct recorders *r;
};

/* Local day of a civil date, computed independently of the module (timegm). */
static int64_t day_of(int y, int m, int d)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};

	return (int64_t)(timegm(&tm) / 86400);
}

static void date_of(int64_t day, char *buf, size_t len)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
}

static int month_of(int64_t day)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	return tm.tm_mon + 1;
}

static int year_of(int64_t day)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	return tm.tm_year + 1900;
}

/* The daily pattern: day n consumes n % 7 + 1 kWh. */
static double pattern(int64_t day)
{
	return (double)(day % 7 + 1);
}

/* UTC time of a capture for a local day: local midnight in CET is 23:00 UTC
 * the evening before, plus a few seconds of polling delay. */
static time_t utc_of(int64_t day)
{
	return (time_t)(day * 86400 - 3600 + 5);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_recorder.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/sgd.db", f->dir);
	if (sqlite3_open(f->path, &f->db) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(f->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (rec_open(f->db, &f->r) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal", ".csv"};
	char p[128];

	rec_close(f->r);
	sqlite3_close(f->db);
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct rec_cfg dev_cfg(const char *name, int slot, int counter)
{
	struct rec_cfg c = {
	    .enabled = true, .source = REC_SRC_DEVICE, .slot = slot, .counter = counter};

	snprintf(c.name, sizeof(c.name), "%s", name);
	return c;
}

static void configure_ok(struct fx *f, int rec, struct rec_cfg c)
{
	char err[160] = "";

	if (rec_configure(f->r, rec, &c, err, sizeof(err)) != 0)
		fail_msg("rec_configure %d: %s", rec, err);
}

/* The midnight loop of the daemon: several polls a day, each asking whether
 * the day is still due and capturing when it is. Days for which off[] is set
 * are days the gateway was off (no poll at all). vals[i] = counter at day
 * first + i. */
static void simulate(struct fx *f, int rec, int64_t first, int n, const double *vals,
		     const bool *off)
{
	for (int i = 0; i < n; i++) {
		int64_t due = REC_NO_DAY;

		if (off && off[i])
			continue;
		for (int poll = 0; poll < 3; poll++) {
			int ret = rec_pending(f->r, rec, first + i, &due);

			assert_int_equal(ret, poll == 0 ? 1 : 0);
			if (ret == 1) {
				assert_int_equal(due, first + i);
				assert_int_equal(rec_capture(f->r, rec, due, vals[i], utc_of(due)),
						 1);
			}
		}
	}
}

/* Counter readings following the pattern, starting at base. */
static void fill_pattern(double *vals, int64_t first, int n, double base)
{
	vals[0] = base;
	for (int i = 1; i < n; i++)
		vals[i] = vals[i - 1] + pattern(first + i - 1);
}

static void test_due(void **state)
{
	(void)state;
	assert_int_equal(rec_due(REC_NO_DAY, 100), 100);
	assert_int_equal(rec_due(99, 100), 100);
	assert_true(rec_due(100, 100) == REC_NO_DAY);
	assert_true(rec_due(101, 100) == REC_NO_DAY); /* clock went back: nothing */
	/* After a 5-day outage only today is due; the missed days stay missing. */
	assert_int_equal(rec_due(95, 100), 100);
	assert_true(rec_due(95, REC_NO_DAY) == REC_NO_DAY);
}

static void test_daily_monthly_yearly(void **state)
{
	struct fx *f = *state;
	int64_t first = day_of(2027, 11, 1), last = first + NDAYS - 1;
	static double vals[NDAYS];
	static struct rec_day days[NDAYS + 10];
	struct rec_period months[12], years[3];
	int n;

	assert_int_equal(year_of(last), 2028); /* 2027-11-01 … 2028-12-04 */
	configure_ok(f, 0, dev_cfg("Main meter", 0, 0));
	fill_pattern(vals, first, NDAYS, 20249.5);
	simulate(f, 0, first, NDAYS, vals, NULL);

	n = rec_daily(f->r, 0, first, last, days, NDAYS + 10);
	assert_int_equal(n, NDAYS);
	for (int i = 0; i < NDAYS; i++) {
		assert_int_equal(days[i].day, first + i);
		assert_true(days[i].has_value);
		assert_true(days[i].value == vals[i]);
		assert_int_equal(days[i].captured, utc_of(first + i));
		if (i == NDAYS - 1) {
			/* Today's consumption is not known before tomorrow's reading. */
			assert_false(days[i].has_cons);
		} else {
			assert_true(days[i].has_cons);
			assert_true(days[i].cons == pattern(first + i));
		}
	}
	/* A range smaller than needed is refused, not truncated. */
	assert_int_equal(rec_daily(f->r, 0, first, last, days, NDAYS - 1), -ERANGE);
	assert_int_equal(rec_daily(f->r, 0, last, first, days, NDAYS), -EINVAL);

	/* Months: each is the sum of its days (from the daily view). */
	for (int y = 2027; y <= 2028; y++) {
		assert_int_equal(rec_monthly(f->r, 0, y, months), 0);
		for (int m = 1; m <= 12; m++) {
			double sum = 0;
			int cnt = 0, len = 0;

			for (int i = 0; i < n; i++) {
				if (year_of(days[i].day) != y || month_of(days[i].day) != m)
					continue;
				if (days[i].has_cons) {
					sum += days[i].cons;
					cnt++;
				}
			}
			for (int64_t d = day_of(y, m, 1); month_of(d) == m; d++)
				len++;
			assert_int_equal(months[m - 1].year, y);
			assert_int_equal(months[m - 1].month, m);
			assert_int_equal(months[m - 1].days, len);
			assert_int_equal(months[m - 1].days_with_data, cnt);
			assert_true(months[m - 1].cons == sum);
		}
	}
	/* Spot checks: Feb 2028 has 29 days, all with data; 2027 before November
	 * has none; December 2028 has its first 3 days (the 4th is today). */
	assert_int_equal(rec_monthly(f->r, 0, 2028, months), 0);
	assert_int_equal(months[1].days, 29);
	assert_int_equal(months[1].days_with_data, 29);
	{
		double feb = 0;

		for (int64_t d = day_of(2028, 2, 1); d <= day_of(2028, 2, 29); d++)
			feb += pattern(d);
		assert_true(months[1].cons == feb);
	}
	assert_int_equal(months[11].days_with_data, 3);
	assert_int_equal(rec_monthly(f->r, 0, 2027, months), 0);
	assert_int_equal(months[9].days_with_data, 0);
	assert_int_equal(months[10].days_with_data, 30);

	/* Years: sums of their days. */
	assert_int_equal(rec_yearly(f->r, 0, 2026, 2028, years, 3), 3);
	assert_int_equal(years[0].days_with_data, 0);
	for (int k = 1; k < 3; k++) {
		double sum = 0;
		int cnt = 0;

		for (int i = 0; i < n; i++) {
			if (year_of(days[i].day) == 2026 + k && days[i].has_cons) {
				sum += days[i].cons;
				cnt++;
			}
		}
		assert_int_equal(years[k].year, 2026 + k);
		assert_int_equal(years[k].month, 0);
		assert_int_equal(years[k].days_with_data, cnt);
		assert_true(years[k].cons == sum);
	}
	assert_int_equal(years[1].days, 365);
	assert_int_equal(years[2].days, 366);
	assert_int_equal(years[1].days_with_data, 61);	     /* Nov + Dec 2027 */
	assert_int_equal(years[2].days_with_data, 366 - 28); /* all but Dec 4…31 */
	assert_int_equal(rec_yearly(f->r, 0, 2026, 2028, years, 2), -ERANGE);
	assert_int_equal(rec_yearly(f->r, 0, 1969, 2028, years, 100), -EINVAL);
}

static void test_gap_stays_missing(void **state)
{
	struct fx *f = *state;
	int64_t first = day_of(2028, 3, 1);
	double vals[31];
	bool off[31] = {false};
	struct rec_day days[31];
	struct rec_period months[12];
	int64_t due;
	double v;
	time_t utc;
	int64_t lastd;

	configure_ok(f, 2, dev_cfg("", 5, 3));
	fill_pattern(vals, first, 31, 100);
	off[10] = off[11] = off[12] = true; /* gateway off 11…13 March */
	simulate(f, 2, first, 13, vals, off);
	/* Back on 14 March at 10:17 local: the first reading after midnight is
	 * stored for that day, and only for that day. */
	assert_int_equal(rec_pending(f->r, 2, first + 13, &due), 1);
	assert_int_equal(due, first + 13);
	assert_int_equal(rec_capture(f->r, 2, due, vals[13], utc_of(due) + 37020), 1);
	simulate(f, 2, first + 14, 17, vals + 14, NULL);
	assert_int_equal(rec_last(f->r, 2, &lastd, &v, &utc), 1);
	assert_int_equal(lastd, first + 30);
	assert_true(v == vals[30]);

	assert_int_equal(rec_daily(f->r, 2, first, first + 30, days, 31), 31);
	for (int i = 0; i < 31; i++) {
		bool val_missing = i >= 10 && i <= 12;
		bool cons_missing = (i >= 9 && i <= 12) || i == 30;

		assert_int_equal(days[i].has_value, !val_missing);
		assert_int_equal(days[i].has_cons, !cons_missing);
		if (!cons_missing)
			assert_true(days[i].cons == pattern(first + i));
	}
	assert_int_equal(days[13].captured, utc_of(first + 13) + 37020);
	/* March: 31 days; consumption known for 1…9 (9) and 14…30 (17) March —
	 * the 10th lacks the 11th's reading, the 31st waits for 1 April. */
	assert_int_equal(rec_monthly(f->r, 2, 2028, months), 0);
	assert_int_equal(months[2].days, 31);
	assert_int_equal(months[2].days_with_data, 26);
	{
		double sum = 0;

		for (int i = 0; i < 31; i++)
			if (days[i].has_cons)
				sum += days[i].cons;
		assert_true(months[2].cons == sum);
	}
}

static void test_meter_reset(void **state)
{
	struct fx *f = *state;
	int64_t first = day_of(2028, 12, 20);
	double vals[20];
	struct rec_day days[20];
	struct rec_period years[2];

	configure_ok(f, 1, dev_cfg("PV", 2, 1));
	fill_pattern(vals, first, 20, 5000);
	/* Meter replaced during day 9: the reading of day 10 starts again at 3. */
	vals[10] = 3;
	for (int i = 11; i < 20; i++)
		vals[i] = vals[i - 1] + pattern(first + i - 1);
	simulate(f, 1, first, 20, vals, NULL);
	assert_int_equal(rec_daily(f->r, 1, first, first + 19, days, 20), 20);
	for (int i = 0; i < 19; i++) {
		if (i == 9) {
			assert_false(days[i].has_cons);
		} else {
			assert_true(days[i].has_cons);
			assert_true(days[i].cons == pattern(first + i));
			assert_true(days[i].cons > 0);
		}
	}
	/* The year boundary of 2028/2029 lies in the run: 20 Dec … 8 Jan. */
	assert_int_equal(rec_yearly(f->r, 1, 2028, 2029, years, 2), 2);
	assert_int_equal(years[0].days_with_data, 12 - 1); /* 20…31 Dec minus the reset */
	assert_int_equal(years[1].days_with_data, 7);	   /* 1…7 Jan */
	assert_true(years[0].cons >= 0 && years[1].cons >= 0);
}

static void test_first_capture_wins(void **state)
{
	struct fx *f = *state;
	int64_t d = day_of(2028, 1, 1);
	double v;
	time_t utc;
	int64_t last;

	configure_ok(f, 0, dev_cfg("x", 0, 0));
	assert_int_equal(rec_capture(f->r, 0, d, 100.25, 1000), 1);
	assert_int_equal(rec_capture(f->r, 0, d, 200.5, 2000), 0);
	assert_int_equal(rec_last(f->r, 0, &last, &v, &utc), 1);
	assert_int_equal(last, d);
	assert_true(v == 100.25);
	assert_int_equal(utc, 1000);
	/* Bad arguments. */
	assert_int_equal(rec_capture(f->r, 0, d + 1, NAN, 1), -EINVAL);
	assert_int_equal(rec_capture(f->r, 0, d + 1, INFINITY, 1), -EINVAL);
	assert_int_equal(rec_capture(f->r, REC_COUNT, d, 1, 1), -EINVAL);
	assert_int_equal(rec_capture(f->r, -1, d, 1, 1), -EINVAL);
	assert_int_equal(rec_capture(f->r, 0, -1, 1, 1), -EINVAL);
	/* A disabled recorder captures nothing and is never pending. */
	assert_int_equal(rec_capture(f->r, 4, d, 1, 1), -EPERM);
	assert_int_equal(rec_pending(f->r, 4, d, &last), 0);
}

static void test_source_change(void **state)
{
	struct fx *f = *state;
	int64_t d = day_of(2028, 6, 1);
	struct rec_day days[3];

	configure_ok(f, 0, dev_cfg("a", 0, 0));
	assert_int_equal(rec_capture(f->r, 0, d, 100, 1), 1);
	assert_int_equal(rec_capture(f->r, 0, d + 1, 110, 2), 1);
	/* Re-bound to the pulse counter: its readings never pair with the meter's. */
	configure_ok(f, 0, (struct rec_cfg){.enabled = true, .source = REC_SRC_PULSE});
	assert_int_equal(rec_capture(f->r, 0, d + 2, 500, 3), 1);
	assert_int_equal(rec_daily(f->r, 0, d, d + 2, days, 3), 3);
	assert_true(days[0].has_cons && days[0].cons == 10);
	assert_false(days[1].has_cons);
	assert_true(days[2].has_value && days[2].value == 500);
}

static void test_clear_one(void **state)
{
	struct fx *f = *state;
	int64_t first = day_of(2028, 5, 1);
	double vals[10];
	struct rec_day days[10];
	int64_t due;

	fill_pattern(vals, first, 10, 1);
	configure_ok(f, 0, dev_cfg("a", 0, 0));
	configure_ok(f, 7, (struct rec_cfg){.enabled = true, .source = REC_SRC_PULSE});
	simulate(f, 0, first, 10, vals, NULL);
	simulate(f, 7, first, 10, vals, NULL);
	assert_int_equal(rec_clear(f->r, 0), 0);
	assert_int_equal(rec_last(f->r, 0, NULL, NULL, NULL), 0);
	assert_int_equal(rec_daily(f->r, 0, first, first + 9, days, 10), 10);
	for (int i = 0; i < 10; i++)
		assert_false(days[i].has_value || days[i].has_cons);
	assert_int_equal(rec_daily(f->r, 7, first, first + 9, days, 10), 10);
	for (int i = 0; i < 10; i++) {
		assert_true(days[i].has_value && days[i].value == vals[i]);
		assert_int_equal(days[i].has_cons, i < 9);
	}
	/* After a clear the current day is due again. */
	assert_int_equal(rec_pending(f->r, 0, first + 9, &due), 1);
	assert_int_equal(rec_pending(f->r, 7, first + 9, &due), 0);
	assert_int_equal(rec_clear(f->r, REC_COUNT), -EINVAL);
}

/* Split a CSV line into 3 fields in place. */
static int split3(char *line, char *fld[3])
{
	int n = 0;
	char *p = line;

	line[strcspn(line, "\r\n")] = '\0';
	fld[n++] = p;
	while ((p = strchr(p, ',')) != NULL) {
		*p++ = '\0';
		if (n == 3)
			return -1;
		fld[n++] = p;
	}
	return n;
}

static void test_csv_round_trip(void **state)
{
	struct fx *f = *state;
	int64_t first = day_of(2027, 12, 1);
	static double vals[NDAYS];
	static bool off[NDAYS];
	char path[128], line[256], date[16];
	char *fld[3];
	FILE *fp;
	int lines = 0;

	/* Awkward doubles: fractional steps that are not exact in binary. */
	vals[0] = 123456.789012345;
	for (int i = 1; i < NDAYS; i++)
		vals[i] = vals[i - 1] + pattern(first + i - 1) * 0.1 + 1e-7 / 3;
	vals[200] = 0.1; /* meter replaced */
	for (int i = 201; i < NDAYS; i++)
		vals[i] = vals[i - 1] + pattern(first + i - 1) / 3.0;
	off[50] = off[51] = off[52] = true;
	configure_ok(f, 3, dev_cfg("csv", 17, 23));
	simulate(f, 3, first, NDAYS, vals, off);

	snprintf(path, sizeof(path), "%s.csv", f->path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	/* One day more at the end than captured: empty value and consumption. */
	assert_int_equal(rec_csv(f->r, 3, first, first + NDAYS, fp), 0);
	fclose(fp);

	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_string_equal(line, "date,value,consumption\n");
	while (fgets(line, sizeof(line), fp)) {
		int i = lines++;
		bool has_val = i < NDAYS && !off[i];
		bool has_cons = has_val && i + 1 < NDAYS && !off[i + 1] && vals[i + 1] >= vals[i];
		char *end;

		assert_int_equal(split3(line, fld), 3);
		date_of(first + i, date, sizeof(date));
		assert_string_equal(fld[0], date);
		if (!has_val) {
			assert_string_equal(fld[1], "");
		} else {
			double v = strtod(fld[1], &end);

			assert_true(*end == '\0' && end != fld[1]);
			assert_true(v == vals[i]);
			assert_null(strchr(fld[1], ' '));
		}
		if (!has_cons) {
			assert_string_equal(fld[2], "");
		} else {
			double c = strtod(fld[2], &end);

			assert_true(*end == '\0' && end != fld[2]);
			assert_true(c == vals[i + 1] - vals[i]);
		}
	}
	fclose(fp);
	assert_int_equal(lines, NDAYS + 1);
	/* Spot checks of the missing days the CSV must show as empty. */
	assert_false(vals[200] >= vals[199]);

	assert_int_equal(rec_csv(f->r, 3, first + 1, first, stdout), -EINVAL);
	assert_int_equal(rec_csv(f->r, 3, first, first, NULL), -EINVAL);
}

static void expect_invalid(const struct rec_cfg *c, const char *needle)
{
	char err[160] = "";

	assert_int_equal(rec_cfg_validate(c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

static void test_cfg_validation(void **state)
{
	struct fx *f = *state;
	struct rec_cfg c = dev_cfg("Heat pump", 2, 0);
	char err[160] = "";

	assert_int_equal(rec_cfg_validate(&c, err, sizeof(err)), 0);
	/* 32 bytes is the maximum; a name filling the array has no NUL. */
	memset(c.name, 'a', REC_NAME_MAX);
	c.name[REC_NAME_MAX] = '\0';
	assert_int_equal(rec_cfg_validate(&c, err, sizeof(err)), 0);
	memset(c.name, 'a', sizeof(c.name));
	expect_invalid(&c, "longer than 32 bytes");
	snprintf(c.name, sizeof(c.name), "Z\xc3\xa4hler \xe2\x82\xac"); /* "Zähler €" */
	assert_int_equal(rec_cfg_validate(&c, err, sizeof(err)), 0);
	snprintf(c.name, sizeof(c.name), "bad \xff name");
	expect_invalid(&c, "not valid UTF-8");
	snprintf(c.name, sizeof(c.name), "\xc0\xaf"); /* overlong '/' */
	expect_invalid(&c, "not valid UTF-8");
	snprintf(c.name, sizeof(c.name), "\xed\xa0\x80"); /* surrogate */
	expect_invalid(&c, "not valid UTF-8");
	snprintf(c.name, sizeof(c.name), "two\nlines");
	expect_invalid(&c, "control character");
	snprintf(c.name, sizeof(c.name), "ok");

	c.slot = 18;
	expect_invalid(&c, "device slot 18 out of range (0..17)");
	c.slot = -1;
	expect_invalid(&c, "device slot -1 out of range");
	c.slot = 1;
	expect_invalid(&c, "Right IR Bicom relay");
	c.slot = 17;
	c.counter = 24;
	expect_invalid(&c, "counter 24 out of range (0..23)");
	c.counter = -1;
	expect_invalid(&c, "counter -1 out of range");
	c.counter = 23;
	assert_int_equal(rec_cfg_validate(&c, err, sizeof(err)), 0);
	c.source = (enum rec_source)7;
	expect_invalid(&c, "device counter or the pulse counter");
	/* The pulse counter ignores slot/counter. */
	c.source = REC_SRC_PULSE;
	c.slot = 99;
	assert_int_equal(rec_cfg_validate(&c, err, sizeof(err)), 0);

	/* rec_configure: refused configurations change nothing. */
	configure_ok(f, 5, dev_cfg("kept", 3, 2));
	c = dev_cfg("new", 1, 0);
	assert_int_equal(rec_configure(f->r, 5, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "recorder 5: device slot 1 is the Right IR Bicom relay, which "
				 "has no counters");
	assert_string_equal(rec_get_cfg(f->r, 5)->name, "kept");
	assert_int_equal(rec_get_cfg(f->r, 5)->slot, 3);
	assert_int_equal(rec_configure(f->r, REC_COUNT, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "recorder 8 out of range (0..7)");
	assert_null(rec_get_cfg(f->r, REC_COUNT));
	assert_int_equal(rec_get_cfg(f->r, 6)->enabled, false);
}

static void test_json(void **state)
{
	struct fx *f = *state;
	int64_t first = day_of(2028, 2, 27);
	double vals[5] = {10, 11.5, 13, 14.5, 16};
	json_t *j, *e, *data;
	char err[160];

	configure_ok(f, 0, dev_cfg("Main", 2, 4));
	configure_ok(f, 1, (struct rec_cfg){.enabled = true, .source = REC_SRC_PULSE});
	simulate(f, 0, first, 5, vals, NULL); /* 27 Feb … 2 Mar 2028 */

	j = rec_list_json(f->r);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), REC_COUNT);
	e = json_array_get(j, 0);
	assert_int_equal(json_integer_value(json_object_get(e, "recorder")), 1);
	assert_string_equal(json_string_value(json_object_get(e, "name")), "Main");
	assert_true(json_is_true(json_object_get(e, "enabled")));
	assert_string_equal(json_string_value(json_object_get(e, "source")), "device");
	assert_int_equal(json_integer_value(json_object_get(e, "slot")), 2);
	assert_int_equal(json_integer_value(json_object_get(e, "device_index")), 1);
	assert_int_equal(json_integer_value(json_object_get(e, "counter")), 4);
	e = json_object_get(e, "last");
	assert_string_equal(json_string_value(json_object_get(e, "date")), "2028-03-02");
	assert_true(json_real_value(json_object_get(e, "value")) == 16);
	assert_int_equal(json_integer_value(json_object_get(e, "captured_at")), utc_of(first + 4));
	e = json_array_get(j, 1);
	assert_string_equal(json_string_value(json_object_get(e, "name")), "Recorder 2");
	assert_string_equal(json_string_value(json_object_get(e, "source")), "pulse");
	assert_true(json_is_null(json_object_get(e, "slot")));
	assert_true(json_is_null(json_object_get(e, "last")));
	assert_true(json_is_false(json_object_get(json_array_get(j, 7), "enabled")));
	json_decref(j);

	j = rec_view_json(f->r, 0, "daily", first, first + 5, err, sizeof(err));
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "scope")), "daily");
	data = json_object_get(j, "data");
	assert_int_equal(json_array_size(data), 6);
	e = json_array_get(data, 2);
	assert_string_equal(json_string_value(json_object_get(e, "date")), "2028-02-29");
	assert_true(json_real_value(json_object_get(e, "value")) == 13);
	assert_true(json_real_value(json_object_get(e, "consumption")) == 1.5);
	e = json_array_get(data, 4);
	assert_true(json_is_null(json_object_get(e, "consumption")));
	e = json_array_get(data, 5);
	assert_true(json_is_null(json_object_get(e, "value")));
	json_decref(j);

	j = rec_view_json(f->r, 0, "monthly", 2028, 2029, err, sizeof(err));
	assert_non_null(j);
	data = json_object_get(j, "data");
	assert_int_equal(json_array_size(data), 24);
	e = json_array_get(data, 1);
	assert_string_equal(json_string_value(json_object_get(e, "month")), "2028-02");
	assert_int_equal(json_integer_value(json_object_get(e, "days")), 29);
	assert_int_equal(json_integer_value(json_object_get(e, "days_with_data")), 3);
	assert_true(json_real_value(json_object_get(e, "consumption")) == 4.5);
	e = json_array_get(data, 2);
	assert_int_equal(json_integer_value(json_object_get(e, "days_with_data")), 1);
	assert_true(json_is_null(json_object_get(json_array_get(data, 0), "consumption")));
	json_decref(j);

	j = rec_view_json(f->r, 0, "yearly", 2027, 2028, err, sizeof(err));
	assert_non_null(j);
	data = json_object_get(j, "data");
	assert_int_equal(json_array_size(data), 2);
	assert_true(json_is_null(json_object_get(json_array_get(data, 0), "consumption")));
	e = json_array_get(data, 1);
	assert_int_equal(json_integer_value(json_object_get(e, "year")), 2028);
	assert_int_equal(json_integer_value(json_object_get(e, "days")), 366);
	assert_true(json_real_value(json_object_get(e, "consumption")) == 6);
	json_decref(j);

	err[0] = '\0';
	assert_null(rec_view_json(f->r, 0, "weekly", 0, 1, err, sizeof(err)));
	assert_string_equal(err, "scope must be daily, monthly or yearly");
	assert_null(rec_view_json(f->r, 0, "daily", 10, 5, err, sizeof(err)));
	assert_non_null(strstr(err, "from <= to"));
	assert_null(rec_view_json(f->r, 0, "daily", 0, REC_RANGE_MAX, err, sizeof(err)));
	assert_non_null(strstr(err, "longer than"));
	assert_null(rec_view_json(f->r, 0, "yearly", 1969, 2000, err, sizeof(err)));
	assert_non_null(strstr(err, "years 1970..9999"));
	assert_null(rec_view_json(f->r, 9, "daily", 0, 1, err, sizeof(err)));
	assert_string_equal(err, "recorder 9 out of range (0..7)");
}

static void test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	int64_t d = day_of(2029, 1, 1);
	int64_t last;
	double v;

	configure_ok(f, 6, dev_cfg("p", 0, 0));
	assert_int_equal(rec_capture(f->r, 6, d, 42.5, 7), 1);
	rec_close(f->r);
	f->r = NULL;
	sqlite3_close(f->db);
	assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
	assert_int_equal(rec_open(f->db, &f->r), 0);
	assert_int_equal(rec_last(f->r, 6, &last, &v, NULL), 1);
	assert_int_equal(last, d);
	assert_true(v == 42.5);
	/* Configurations are the caller's to restore. */
	assert_false(rec_get_cfg(f->r, 6)->enabled);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_due),
	    cmocka_unit_test_setup_teardown(test_daily_monthly_yearly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gap_stays_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meter_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_capture_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clear_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_csv_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cfg_validation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
