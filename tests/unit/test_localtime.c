/* Local time from the gateway's own settings: offsets around the 2026 and
 * 2027 EU summer-time switches (the second before and at 01:00 UTC), zones
 * without DST and a +05:45 one, broken-down time across year ends and leap
 * days, local midnight on 23 h and 25 h days, wall time → UTC in the spring
 * gap and the repeated autumn hour, the civil-date algorithms, and (when the
 * host has tzdata) a cross-check against the system's zone files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/localtime.h"
#include "sg/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct sg_tz CET = {60, true};	   /* Central Europe, settings default */
static const struct sg_tz CET_NODST = {60, false}; /* dst_auto = 0 */
static const struct sg_tz EET = {120, true};	   /* Helsinki, Athens */
static const struct sg_tz WET = {0, true};	   /* Lisbon, London */
static const struct sg_tz AZORES = {-60, true};	   /* the switch is at local midnight */
static const struct sg_tz NEPAL = {345, false};	   /* +05:45 */
static const struct sg_tz EST = {-300, false};

/* UTC instant of a UTC date and time (libc timegm is zone-independent). */
static time_t U(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return timegm(&tm);
}

static void test_civil(void **state)
{
	int64_t y;
	int m, d;

	(void)state;
	assert_int_equal(days_from_civil(1970, 1, 1), 0);
	assert_int_equal(days_from_civil(1969, 12, 31), -1);
	assert_int_equal(days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(days_from_civil(2028, 2, 29) * 86400, U(2028, 2, 29, 0, 0, 0));
	assert_int_equal(days_from_civil(2028, 2, 29) + 1, days_from_civil(2028, 3, 1));
	assert_int_equal(days_from_civil(2027, 2, 28) + 1, days_from_civil(2027, 3, 1));
	assert_int_equal(days_from_civil(2100, 2, 28) + 1, days_from_civil(2100, 3, 1));
	assert_int_equal(days_from_civil(2000, 2, 28) + 2, days_from_civil(2000, 3, 1));
	/* mday is linear: day 0 is the last of the previous month, 32 the next's 1st. */
	assert_int_equal(days_from_civil(2027, 1, 0), days_from_civil(2026, 12, 31));
	assert_int_equal(days_from_civil(2026, 12, 32), days_from_civil(2027, 1, 1));
	civil_from_days(days_from_civil(2028, 2, 29), &y, &m, &d);
	assert_int_equal(y, 2028);
	assert_int_equal(m, 2);
	assert_int_equal(d, 29);
	civil_from_days(-1, &y, &m, &d);
	assert_true(y == 1969 && m == 12 && d == 31);
	/* Every day for ±2000 years: round trip, consecutive, against timegm near now. */
	for (int64_t n = -730500; n <= 730500; n++) {
		civil_from_days(n, &y, &m, &d);
		assert_true(m >= 1 && m <= 12 && d >= 1 && d <= tz_days_in_month(y, m));
		if (days_from_civil(y, m, d) != n)
			fail_msg("day %lld -> %lld-%d-%d", (long long)n, (long long)y, m, d);
	}
	for (int64_t n = days_from_civil(1990, 1, 1); n < days_from_civil(2040, 1, 1); n++) {
		time_t t = (time_t)(n * 86400);
		struct tm g;

		gmtime_r(&t, &g);
		civil_from_days(n, &y, &m, &d);
		assert_true(y == g.tm_year + 1900 && m == g.tm_mon + 1 && d == g.tm_mday);
		assert_int_equal(weekday_from_days(n), g.tm_wday);
	}
	assert_int_equal(tz_weekday(2028, 2, 29), 2);  /* Tuesday */
	assert_int_equal(tz_weekday(2026, 1, 1), 4);   /* Thursday */
	assert_int_equal(tz_weekday(1969, 12, 28), 0); /* Sunday, before the epoch */
	assert_true(tz_is_leap(2028) && tz_is_leap(2000) && !tz_is_leap(2100) && !tz_is_leap(2027));
	assert_int_equal(tz_days_in_month(2028, 2), 29);
	assert_int_equal(tz_days_in_month(2027, 2), 28);
	assert_int_equal(tz_days_in_month(2027, 13), 0);
}

static void test_dst_switches(void **state)
{
	(void)state;
	assert_int_equal(tz_eu_dst_start(2026), U(2026, 3, 29, 1, 0, 0));
	assert_int_equal(tz_eu_dst_end(2026), U(2026, 10, 25, 1, 0, 0));
	assert_int_equal(tz_eu_dst_start(2027), U(2027, 3, 28, 1, 0, 0));
	assert_int_equal(tz_eu_dst_end(2027), U(2027, 10, 31, 1, 0, 0)); /* 31st is a Sunday */
	assert_int_equal(tz_eu_dst_start(2028), U(2028, 3, 26, 1, 0, 0));
	assert_int_equal(tz_eu_dst_end(2028), U(2028, 10, 29, 1, 0, 0));
}

static void test_offsets(void **state)
{
	static const struct {
		const struct sg_tz *z;
		int y, mo, d, h, mi, s;
		int off;
	} t[] = {
	    /* 2026 spring: the second before 01:00 UTC and 01:00 UTC itself. */
	    {&CET, 2026, 3, 29, 0, 59, 59, 3600},
	    {&CET, 2026, 3, 29, 1, 0, 0, 7200},
	    {&EET, 2026, 3, 29, 0, 59, 59, 7200},
	    {&EET, 2026, 3, 29, 1, 0, 0, 10800},
	    {&WET, 2026, 3, 29, 0, 59, 59, 0},
	    {&WET, 2026, 3, 29, 1, 0, 0, 3600},
	    {&AZORES, 2026, 3, 29, 0, 59, 59, -3600},
	    {&AZORES, 2026, 3, 29, 1, 0, 0, 0},
	    /* 2026 autumn. */
	    {&CET, 2026, 10, 25, 0, 59, 59, 7200},
	    {&CET, 2026, 10, 25, 1, 0, 0, 3600},
	    {&EET, 2026, 10, 25, 0, 59, 59, 10800},
	    {&EET, 2026, 10, 25, 1, 0, 0, 7200},
	    {&WET, 2026, 10, 25, 0, 59, 59, 3600},
	    {&WET, 2026, 10, 25, 1, 0, 0, 0},
	    /* 2027: 28 March and 31 October. */
	    {&CET, 2027, 3, 28, 0, 59, 59, 3600},
	    {&CET, 2027, 3, 28, 1, 0, 0, 7200},
	    {&CET, 2027, 10, 31, 0, 59, 59, 7200},
	    {&CET, 2027, 10, 31, 1, 0, 0, 3600},
	    {&CET, 2027, 3, 21, 1, 0, 0, 3600},	 /* a week before: still winter */
	    {&CET, 2027, 10, 24, 1, 0, 0, 7200}, /* a week before: still summer */
	    /* Middle of the seasons and year ends. */
	    {&CET, 2026, 7, 1, 12, 0, 0, 7200},
	    {&CET, 2026, 1, 15, 12, 0, 0, 3600},
	    {&CET, 2026, 12, 31, 23, 59, 59, 3600},
	    /* Without DST: the standard offset all year. */
	    {&CET_NODST, 2026, 3, 29, 1, 0, 0, 3600},
	    {&CET_NODST, 2026, 7, 1, 12, 0, 0, 3600},
	    {&CET_NODST, 2026, 10, 25, 0, 59, 59, 3600},
	    {&NEPAL, 2026, 7, 1, 12, 0, 0, 20700},
	    {&NEPAL, 2026, 1, 1, 0, 0, 0, 20700},
	    {&EST, 2026, 7, 1, 12, 0, 0, -18000},
	};

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		time_t u = U(t[i].y, t[i].mo, t[i].d, t[i].h, t[i].mi, t[i].s);
		int got = tz_offset_s(t[i].z, u);

		if (got != t[i].off)
			fail_msg("row %zu: offset %d, expected %d", i, got, t[i].off);
	}
}

static void test_to_local(void **state)
{
	static const struct {
		const struct sg_tz *z;
		int y, mo, d, h, mi, s;		   /* UTC */
		int ly, lmo, ld, lh, lmi, ls, dst; /* local */
		int wday, yday;
	} t[] = {
	    /* The spring jump: 01:59:59 CET, then 03:00:00 CEST. */
	    {&CET, 2026, 3, 29, 0, 59, 59, 2026, 3, 29, 1, 59, 59, 0, 0, 87},
	    {&CET, 2026, 3, 29, 1, 0, 0, 2026, 3, 29, 3, 0, 0, 1, 0, 87},
	    /* The autumn night: 02:30 twice, first CEST then CET. */
	    {&CET, 2026, 10, 25, 0, 30, 0, 2026, 10, 25, 2, 30, 0, 1, 0, 297},
	    {&CET, 2026, 10, 25, 0, 59, 59, 2026, 10, 25, 2, 59, 59, 1, 0, 297},
	    {&CET, 2026, 10, 25, 1, 0, 0, 2026, 10, 25, 2, 0, 0, 0, 0, 297},
	    {&CET, 2026, 10, 25, 1, 30, 0, 2026, 10, 25, 2, 30, 0, 0, 0, 297},
	    /* Year end: local new year an hour before UTC's. */
	    {&CET, 2026, 12, 31, 22, 59, 59, 2026, 12, 31, 23, 59, 59, 0, 4, 364},
	    {&CET, 2026, 12, 31, 23, 0, 0, 2027, 1, 1, 0, 0, 0, 0, 5, 0},
	    {&EST, 2027, 1, 1, 4, 59, 59, 2026, 12, 31, 23, 59, 59, 0, 4, 364},
	    {&EST, 2027, 1, 1, 5, 0, 0, 2027, 1, 1, 0, 0, 0, 0, 5, 0},
	    /* +05:45. */
	    {&NEPAL, 2026, 1, 1, 0, 0, 0, 2026, 1, 1, 5, 45, 0, 0, 4, 0},
	    {&NEPAL, 2026, 12, 31, 18, 15, 0, 2027, 1, 1, 0, 0, 0, 0, 5, 0},
	    {&NEPAL, 2026, 12, 31, 18, 14, 59, 2026, 12, 31, 23, 59, 59, 0, 4, 364},
	    /* Leap day 2028. */
	    {&CET, 2028, 2, 28, 23, 0, 0, 2028, 2, 29, 0, 0, 0, 0, 2, 59},
	    {&CET, 2028, 2, 29, 22, 59, 59, 2028, 2, 29, 23, 59, 59, 0, 2, 59},
	    {&CET, 2028, 2, 29, 23, 0, 0, 2028, 3, 1, 0, 0, 0, 0, 3, 60},
	    {&CET, 2028, 12, 31, 12, 0, 0, 2028, 12, 31, 13, 0, 0, 0, 0, 365},
	    /* Before the epoch. */
	    {&EST, 1969, 12, 31, 12, 0, 0, 1969, 12, 31, 7, 0, 0, 0, 3, 364},
	};

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		struct tm tm;

		tz_to_local(t[i].z, U(t[i].y, t[i].mo, t[i].d, t[i].h, t[i].mi, t[i].s), &tm);
		if (tm.tm_year + 1900 != t[i].ly || tm.tm_mon + 1 != t[i].lmo ||
		    tm.tm_mday != t[i].ld || tm.tm_hour != t[i].lh || tm.tm_min != t[i].lmi ||
		    tm.tm_sec != t[i].ls || tm.tm_isdst != t[i].dst || tm.tm_wday != t[i].wday ||
		    tm.tm_yday != t[i].yday)
			fail_msg(
			    "row %zu: got %04d-%02d-%02d %02d:%02d:%02d dst %d wday %d yday %d", i,
			    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			    tm.tm_sec, tm.tm_isdst, tm.tm_wday, tm.tm_yday);
		assert_int_equal(tm.tm_gmtoff, tz_offset_s(t[i].z, U(t[i].y, t[i].mo, t[i].d,
								     t[i].h, t[i].mi, t[i].s)));
	}
}

static void test_from_local(void **state)
{
	static const struct {
		const struct sg_tz *z;
		int y, mo, d, h, mi;	  /* local wall time */
		int uy, umo, ud, uh, umi; /* expected UTC */
	} t[] = {
	    {&CET, 2026, 7, 1, 12, 0, 2026, 7, 1, 10, 0},
	    {&CET, 2026, 1, 1, 0, 0, 2025, 12, 31, 23, 0},
	    /* Spring gap: 01:59 exists, 02:00…02:59 do not (read as standard
	     * time, as if the clock had not jumped yet), 03:00 exists. */
	    {&CET, 2026, 3, 29, 1, 59, 2026, 3, 29, 0, 59},
	    {&CET, 2026, 3, 29, 2, 0, 2026, 3, 29, 1, 0},
	    {&CET, 2026, 3, 29, 2, 30, 2026, 3, 29, 1, 30},
	    {&CET, 2026, 3, 29, 3, 0, 2026, 3, 29, 1, 0},
	    {&CET, 2026, 3, 29, 3, 30, 2026, 3, 29, 1, 30},
	    {&CET, 2027, 3, 28, 2, 15, 2027, 3, 28, 1, 15},
	    /* Autumn: 02:00…02:59 twice; the first occurrence (CEST). */
	    {&CET, 2026, 10, 25, 1, 59, 2026, 10, 24, 23, 59},
	    {&CET, 2026, 10, 25, 2, 0, 2026, 10, 25, 0, 0},
	    {&CET, 2026, 10, 25, 2, 30, 2026, 10, 25, 0, 30},
	    {&CET, 2026, 10, 25, 2, 59, 2026, 10, 25, 0, 59},
	    {&CET, 2026, 10, 25, 3, 0, 2026, 10, 25, 2, 0},
	    {&CET, 2027, 10, 31, 2, 30, 2027, 10, 31, 0, 30},
	    /* Without DST nothing is special. */
	    {&CET_NODST, 2026, 3, 29, 2, 30, 2026, 3, 29, 1, 30},
	    {&CET_NODST, 2026, 10, 25, 2, 30, 2026, 10, 25, 1, 30},
	    {&NEPAL, 2027, 1, 1, 0, 0, 2026, 12, 31, 18, 15},
	    /* Linear fields: hour 24 is the next day's midnight; Feb 30 = Mar 1 (2027). */
	    {&CET, 2026, 12, 31, 24, 0, 2026, 12, 31, 23, 0},
	    {&CET, 2027, 2, 29, 0, 0, 2027, 2, 28, 23, 0},
	    {&CET, 2028, 2, 29, 12, 0, 2028, 2, 29, 11, 0},
	};

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		time_t got = tz_from_local(t[i].z, t[i].y, t[i].mo, t[i].d, t[i].h, t[i].mi);
		time_t exp = U(t[i].uy, t[i].umo, t[i].ud, t[i].uh, t[i].umi, 0);

		if (got != exp)
			fail_msg("row %zu: %lld, expected %lld (off by %lld s)", i, (long long)got,
				 (long long)exp, (long long)(got - exp));
	}
}

/* Local → UTC → local is the identity for every minute boundary of two years
 * (except the gap), and UTC → local → UTC for every quarter hour (except the
 * second pass of the repeated hour, which maps to the first). */
static void test_round_trip(void **state)
{
	const struct sg_tz *zones[] = {&CET, &EET, &WET, &AZORES, &NEPAL, &EST, &CET_NODST};

	(void)state;
	for (size_t zi = 0; zi < N(zones); zi++) {
		const struct sg_tz *z = zones[zi];

		for (time_t t = U(2026, 1, 1, 0, 0, 0); t < U(2028, 1, 1, 0, 0, 0); t += 900) {
			struct tm tm;
			time_t back;

			tz_to_local(z, t, &tm);
			back = tz_from_local(z, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
					     tm.tm_hour, tm.tm_min);
			if (back != t && !(back == t - 3600 && !tm.tm_isdst && z->dst_eu))
				fail_msg("zone %zu at %lld: back %lld", zi, (long long)t,
					 (long long)back);
		}
	}
}

static void test_midnight(void **state)
{
	static const struct {
		const struct sg_tz *z;
		int y, mo, d;	     /* local date */
		int uy, umo, ud, uh; /* its midnight, UTC */
		int hours;	     /* length of the local day */
	} t[] = {
	    {&CET, 2026, 3, 28, 2026, 3, 27, 23, 24},
	    {&CET, 2026, 3, 29, 2026, 3, 28, 23, 23}, /* spring: 23 h */
	    {&CET, 2026, 3, 30, 2026, 3, 29, 22, 24},
	    {&CET, 2026, 10, 25, 2026, 10, 24, 22, 25}, /* autumn: 25 h */
	    {&CET, 2026, 10, 26, 2026, 10, 25, 23, 24},
	    {&CET, 2027, 3, 28, 2027, 3, 27, 23, 23},
	    {&CET, 2027, 10, 31, 2027, 10, 30, 22, 25},
	    {&EET, 2026, 3, 29, 2026, 3, 28, 22, 23},
	    {&EET, 2026, 10, 25, 2026, 10, 24, 21, 25},
	    {&WET, 2026, 3, 29, 2026, 3, 29, 0, 23},
	    /* Azores: 00:00 does not exist on 29 March (the day starts at the
	     * jump, 01:00 local summer time); on 25 October 00:00 happens twice
	     * and the day starts at the first. */
	    {&AZORES, 2026, 3, 28, 2026, 3, 28, 1, 24},
	    {&AZORES, 2026, 3, 29, 2026, 3, 29, 1, 23},
	    {&AZORES, 2026, 10, 25, 2026, 10, 25, 0, 25},
	    {&CET_NODST, 2026, 3, 29, 2026, 3, 28, 23, 24},
	    {&CET_NODST, 2026, 10, 25, 2026, 10, 24, 23, 24},
	    {&CET, 2027, 1, 1, 2026, 12, 31, 23, 24},
	    {&CET, 2028, 2, 29, 2028, 2, 28, 23, 24},
	    {&NEPAL, 2027, 1, 1, 2026, 12, 31, 18, 24},
	};

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		const struct sg_tz *z = t[i].z;
		time_t m0 = tz_day_start(z, t[i].y, t[i].mo, t[i].d);
		time_t m1 = tz_day_start(z, t[i].y, t[i].mo, t[i].d + 1);
		time_t exp = U(t[i].uy, t[i].umo, t[i].ud, t[i].uh, z == &NEPAL ? 15 : 0, 0);

		if (m0 != exp)
			fail_msg("row %zu: midnight %lld, expected %lld", i, (long long)m0,
				 (long long)exp);
		if (m1 - m0 != t[i].hours * 3600)
			fail_msg("row %zu: day of %lld s", i, (long long)(m1 - m0));
		/* Every instant of the day, and no other, has this midnight. */
		assert_int_equal(tz_local_midnight(z, m0), m0);
		assert_int_equal(tz_local_midnight(z, m0 + 1), m0);
		assert_int_equal(tz_local_midnight(z, m0 + 3 * 3600 + 1), m0);
		assert_int_equal(tz_local_midnight(z, m1 - 1), m0);
		assert_int_equal(tz_local_midnight(z, m1), m1);
		assert_int_not_equal(tz_local_midnight(z, m0 - 1), m0);
	}
}

/* tz_local_midnight is idempotent and its local time is the day's first
 * second, for every hour of two years. */
static void test_midnight_sweep(void **state)
{
	const struct sg_tz *zones[] = {&CET, &EET, &WET, &AZORES, &NEPAL, &EST};

	(void)state;
	for (size_t zi = 0; zi < N(zones); zi++)
		for (time_t t = U(2026, 1, 1, 0, 0, 0); t < U(2028, 1, 1, 0, 0, 0); t += 1800) {
			time_t m = tz_local_midnight(zones[zi], t);
			struct tm a, b, c;

			tz_to_local(zones[zi], t, &a);
			tz_to_local(zones[zi], m, &b);
			tz_to_local(zones[zi], m - 1, &c);
			assert_true(m <= t && t - m < 25 * 3600);
			assert_true(a.tm_yday == b.tm_yday && a.tm_year == b.tm_year);
			assert_true(c.tm_yday != b.tm_yday);
		}
}

/* Against the host's tzdata (skipped without it): every 15 minutes of
 * 2000…2037 in three EU zones. */
static void test_vs_tzdata(void **state)
{
	static const struct {
		const char *name;
		struct sg_tz z;
	} zones[] = {
	    {"Europe/Ljubljana", {60, true}},
	    {"Europe/Helsinki", {120, true}},
	    {"Europe/Lisbon", {0, true}},
	};
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	(void)state;
	for (size_t i = 0; i < N(zones); i++) {
		char file[128];

		snprintf(file, sizeof(file), "/usr/share/zoneinfo/%s", zones[i].name);
		if (access(file, R_OK) != 0) {
			free(old);
			skip();
		}
		setenv("TZ", zones[i].name, 1);
		tzset();
		for (time_t t = U(2000, 1, 1, 0, 0, 0); t < U(2037, 12, 31, 0, 0, 0); t += 900) {
			struct tm a, b;

			localtime_r(&t, &a);
			tz_to_local(&zones[i].z, t, &b);
			if (a.tm_hour != b.tm_hour || a.tm_mday != b.tm_mday ||
			    a.tm_isdst != b.tm_isdst || a.tm_gmtoff != b.tm_gmtoff)
				fail_msg("%s at %lld: tzdata %02d:%02d, ours %02d:%02d",
					 zones[i].name, (long long)t, a.tm_hour, a.tm_min,
					 b.tm_hour, b.tm_min);
		}
	}
	if (old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(old);
}

static void test_from_settings(void **state)
{
	char dir[] = "/tmp/test_localtime.XXXXXX";
	struct settings *s;
	struct sg_tz z;
	char err[256];
	json_t *o;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(settings_init(&s, dir, "SG000013", "SG-W1"), 0);
	z = tz_from_settings(s);
	assert_int_equal(z.offset_min, 60);
	assert_true(z.dst_eu);
	o = json_pack("{s:i,s:i}", "timezone", 345, "dst_auto", 0);
	assert_int_equal(settings_set_json(s, o, err, sizeof(err)), 0);
	json_decref(o);
	z = tz_from_settings(s);
	assert_int_equal(z.offset_min, 345);
	assert_false(z.dst_eu);
	settings_fini(s);
	snprintf(err, sizeof(err), "%s/settings.json", dir);
	unlink(err);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_civil),      cmocka_unit_test(test_dst_switches),
	    cmocka_unit_test(test_offsets),    cmocka_unit_test(test_to_local),
	    cmocka_unit_test(test_from_local), cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_midnight),   cmocka_unit_test(test_midnight_sweep),
	    cmocka_unit_test(test_vs_tzdata),  cmocka_unit_test(test_from_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
