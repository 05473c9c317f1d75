/* The tariff calendar: the active tariff at chosen instants (workday,
 * weekend, holiday; annual and one-time holidays; a holiday across the year
 * end; the last and first second of each season in local time; the wrap
 * before the first season; DST nights), the next possible change, invalid
 * files refused with a message naming the member, and parse → JSON → parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/localtime.h"
#include "sg/tariffs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct sg_tz CET = {60, true};
static const struct sg_tz CET_NODST = {60, false};
static const struct sg_tz NEPAL = {345, false};

/* 24 hours of one value, and h % 5 (so the hour can be read off the tariff). */
#define R4(x) x "," x "," x "," x
#define H24(x) "[" R4(x) "," R4(x) "," R4(x) "," R4(x) "," R4(x) "," R4(x) "]"
#define HMOD5 "[0,1,2,3,4,0,1,2,3,4,0,1,2,3,4,0,1,2,3,4,0,1,2,3]"

/* Tariffs: 0 Low, 1 High, 2 Peak, 3 Holiday, 4 Summer. Seasons listed out of
 * date order on purpose: Summer 06-01, Winter 10-01, Spring 03-01 (so 01-01…
 * 02-28 is still Winter, begun the year before).
 * Winter workday: 0-5 Low, 6-16 High, 17-19 Peak, 20-23 Low.
 * Spring workday: 0-5 Low, 6-21 High, 22-23 Low.  Summer workday: all Summer.
 * Weekends: hour % 5 (Summer: all Low).  Holidays: all Holiday. */
// clang-format off
static const char cal_text[] =
    "{\"version\":1,"
    "\"tariffs\":[{\"name\":\"Low\",\"price\":0.1},{\"name\":\"High\",\"price\":0.2},"
    "{\"name\":\"Peak\",\"price\":0.3},{\"name\":\"Holiday\",\"price\":0.05},"
    "{\"name\":\"Summer\",\"price\":0.15}],"
    "\"seasons\":["
    "{\"name\":\"Summer\",\"start\":\"06-01\",\"schedule\":{"
	"\"workday\":" H24("4") ",\"weekend\":" H24("0") ",\"holiday\":" H24("3") "}},"
    "{\"name\":\"Winter\",\"start\":\"10-01\",\"schedule\":{"
	"\"workday\":[0,0,0,0,0,0,1,1,1,1,1,1,1,1,1,1,1,2,2,2,0,0,0,0],"
	"\"weekend\":" HMOD5 ",\"holiday\":" H24("3") "}},"
    "{\"name\":\"Spring\",\"start\":\"03-01\",\"schedule\":{"
	"\"workday\":[0,0,0,0,0,0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0],"
	"\"weekend\":" HMOD5 ",\"holiday\":" H24("3") "}}],"
    "\"holidays\":["
    "{\"name\":\"New Year\",\"type\":\"annual\",\"date\":\"12-31\",\"duration\":3},"
    "{\"name\":\"Easter 2026\",\"type\":\"one-time\",\"date\":\"2026-04-05\",\"duration\":2},"
    "{\"name\":\"Easter 2027\",\"type\":\"one-time\",\"date\":\"2027-03-28\",\"duration\":2},"
    "{\"name\":\"Christmas\",\"type\":\"annual\",\"date\":\"12-25\"},"
    "{\"name\":\"Leap day\",\"type\":\"annual\",\"date\":\"02-29\"},"
    "{\"name\":\"Summer break 2025\",\"type\":\"one-time\",\"date\":\"2025-07-30\",\"duration\":5}]}";
// clang-format on

enum { LOW, HIGH, PEAK, HOL, SUMMER };

static struct tariff_cal *load(const char *text)
{
	struct tariff_cal *c = NULL;
	char err[256] = "";

	if (tariffs_parse(text, strlen(text), &c, err, sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	return c;
}

/* UTC of a local wall time given with its UTC offset in hours (so the
 * repeated autumn hour can be told apart), via zone-independent timegm. */
static time_t L(int y, int mo, int d, int h, int mi, int s, int off_h)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return timegm(&tm) - off_h * 3600;
}

static void test_accessors(void **state)
{
	struct tariff_cal *c = load(cal_text);

	(void)state;
	assert_int_equal(tariffs_count(c), 5);
	assert_string_equal(tariffs_name(c, 0), "Low");
	assert_string_equal(tariffs_name(c, 4), "Summer");
	assert_null(tariffs_name(c, 5));
	assert_null(tariffs_name(c, -1));
	assert_true(tariffs_price(c, 2) == 0.3);
	assert_true(isnan(tariffs_price(c, 5)));
	assert_int_equal(tariffs_season_count(c), 3);
	assert_string_equal(tariffs_season_name(c, 1), "Winter");
	/* Season lookup by date, with the wrap before 03-01. */
	assert_int_equal(tariffs_season_on(c, 1, 1), 1);
	assert_int_equal(tariffs_season_on(c, 2, 29), 1);
	assert_int_equal(tariffs_season_on(c, 3, 1), 2);
	assert_int_equal(tariffs_season_on(c, 5, 31), 2);
	assert_int_equal(tariffs_season_on(c, 6, 1), 0);
	assert_int_equal(tariffs_season_on(c, 9, 30), 0);
	assert_int_equal(tariffs_season_on(c, 10, 1), 1);
	assert_int_equal(tariffs_season_on(c, 12, 31), 1);
	/* Day types. */
	assert_int_equal(tariffs_day_type(c, 2026, 1, 14), TARIFF_WORKDAY);
	assert_int_equal(tariffs_day_type(c, 2026, 1, 17), TARIFF_WEEKEND);
	assert_int_equal(tariffs_day_type(c, 2026, 1, 18), TARIFF_WEEKEND);
	assert_int_equal(tariffs_day_type(c, 2026, 1, 2), TARIFF_HOLIDAY);
	assert_int_equal(tariffs_day_type(c, 2026, 1, 3), TARIFF_WEEKEND);
	assert_false(tariffs_is_holiday(c, 2026, 1, 5));
	/* NULL calendar. */
	assert_int_equal(tariffs_count(NULL), 0);
	assert_int_equal(tariffs_active(NULL, &CET, 0), -1);
	assert_int_equal(tariffs_season_on(NULL, 1, 1), -1);
	assert_int_equal(tariffs_next_change(NULL, &CET, 0), -1);
	assert_null(tariffs_to_json(NULL));
	tariffs_free(NULL);
	tariffs_free(c);
}

static void test_active(void **state)
{
	static const struct {
		const char *what;
		const struct sg_tz *z;
		int y, mo, d, h, mi, s, off; /* local wall time and its UTC offset */
		int tariff;
	} t[] = {
	    /* Winter (begun 10-01 the year before): workday, weekend. */
	    {"Wed 14 Jan 10:00 workday", &CET, 2026, 1, 14, 10, 0, 0, 1, HIGH},
	    {"Wed 14 Jan 18:00 workday peak", &CET, 2026, 1, 14, 18, 0, 0, 1, PEAK},
	    {"Wed 14 Jan 05:59:59", &CET, 2026, 1, 14, 5, 59, 59, 1, LOW},
	    {"Wed 14 Jan 06:00:00", &CET, 2026, 1, 14, 6, 0, 0, 1, HIGH},
	    {"Sat 17 Jan 14:00 weekend", &CET, 2026, 1, 17, 14, 0, 0, 1, 4},
	    {"Sun 18 Jan 07:00 weekend", &CET, 2026, 1, 18, 7, 0, 0, 1, 2},
	    /* Annual New Year 12-31 for 3 days, across the year end. */
	    {"Tue 30 Dec 2025 10:00", &CET, 2025, 12, 30, 10, 0, 0, 1, HIGH},
	    {"Wed 31 Dec 2025 10:00 holiday", &CET, 2025, 12, 31, 10, 0, 0, 1, HOL},
	    {"Thu 1 Jan 2026 10:00 holiday", &CET, 2026, 1, 1, 10, 0, 0, 1, HOL},
	    {"Fri 2 Jan 2026 23:59:59 holiday", &CET, 2026, 1, 2, 23, 59, 59, 1, HOL},
	    {"Sat 3 Jan 2026 00:00 weekend again", &CET, 2026, 1, 3, 0, 0, 0, 1, 0},
	    {"Mon 5 Jan 2026 10:00 workday", &CET, 2026, 1, 5, 10, 0, 0, 1, HIGH},
	    {"Thu 31 Dec 2026 00:00 holiday", &CET, 2026, 12, 31, 0, 0, 0, 1, HOL},
	    {"Wed 30 Dec 2026 23:59:59 workday", &CET, 2026, 12, 30, 23, 59, 59, 1, LOW},
	    {"Sat 2 Jan 2027 23:59:59 holiday", &CET, 2027, 1, 2, 23, 59, 59, 1, HOL},
	    /* Local time decides: 00:00 local on Sun 3 Jan is 23:00 UTC on the
	     * 2nd, a holiday in UTC but not in local time. */
	    {"Sun 3 Jan 2027 00:00 local", &CET, 2027, 1, 3, 0, 0, 0, 1, 0},
	    {"Fri 25 Dec 2026 19:00 Christmas", &CET, 2026, 12, 25, 19, 0, 0, 1, HOL},
	    {"Sat 26 Dec 2026 19:00 weekend", &CET, 2026, 12, 26, 19, 0, 0, 1, 4},
	    /* One-time Easter 2026 (5 and 6 April) and 2027 (28 and 29 March). */
	    {"Mon 6 Apr 2026 10:00 Easter", &CET, 2026, 4, 6, 10, 0, 0, 2, HOL},
	    {"Tue 7 Apr 2026 10:00", &CET, 2026, 4, 7, 10, 0, 0, 2, HIGH},
	    {"Mon 5 Apr 2027 10:00 no Easter 2026", &CET, 2027, 4, 5, 10, 0, 0, 2, HIGH},
	    {"Mon 6 Apr 2026 is not 2025", &CET, 2025, 4, 7, 10, 0, 0, 2, HIGH},
	    {"Mon 29 Mar 2027 10:00 Easter", &CET, 2027, 3, 29, 10, 0, 0, 2, HOL},
	    {"Mon 30 Mar 2026 10:00 no Easter 2027", &CET, 2026, 3, 30, 10, 0, 0, 2, HIGH},
	    {"Sun 28 Mar 2027 01:30 Easter on the DST night", &CET, 2027, 3, 28, 1, 30, 0, 1, HOL},
	    {"Sun 28 Mar 2027 03:30 Easter after the jump", &CET, 2027, 3, 28, 3, 30, 0, 2, HOL},
	    /* Annual 02-29: leap years only, not moved to 03-01. */
	    {"Tue 29 Feb 2028 10:00 leap holiday", &CET, 2028, 2, 29, 10, 0, 0, 1, HOL},
	    {"Mon 1 Mar 2027 10:00", &CET, 2027, 3, 1, 10, 0, 0, 1, HIGH},
	    /* One-time 5-day break across the month end, 2025 only. */
	    {"Thu 31 Jul 2025 10:00 break", &CET, 2025, 7, 31, 10, 0, 0, 2, HOL},
	    {"Sat 2 Aug 2025 10:00 break", &CET, 2025, 8, 2, 10, 0, 0, 2, HOL},
	    {"Sun 3 Aug 2025 23:59:59 break", &CET, 2025, 8, 3, 23, 59, 59, 2, HOL},
	    {"Mon 4 Aug 2025 00:00 over", &CET, 2025, 8, 4, 0, 0, 0, 2, SUMMER},
	    {"Mon 3 Aug 2026 10:00 not 2026", &CET, 2026, 8, 3, 10, 0, 0, 2, SUMMER},
	    /* Season boundaries: the last second of the old, the first of the new. */
	    {"Sat 28 Feb 2026 23:59:59 Winter", &CET, 2026, 2, 28, 23, 59, 59, 1, 3},
	    {"Sun 1 Mar 2026 00:00 Spring", &CET, 2026, 3, 1, 0, 0, 0, 1, 0},
	    {"Mon 2 Mar 2026 17:30 Spring", &CET, 2026, 3, 2, 17, 30, 0, 1, HIGH},
	    {"Fri 27 Feb 2026 17:30 Winter", &CET, 2026, 2, 27, 17, 30, 0, 1, PEAK},
	    {"Sun 28 Feb 2027 23:59:59 Winter", &CET, 2027, 2, 28, 23, 59, 59, 1, 3},
	    {"Mon 1 Mar 2027 00:00 Spring", &CET, 2027, 3, 1, 0, 0, 0, 1, LOW},
	    {"Tue 29 Feb 2028 17:30 Winter (holiday)", &CET, 2028, 2, 29, 17, 30, 0, 1, HOL},
	    {"Fri 1 Mar 2024 17:30 Spring", &CET, 2024, 3, 1, 17, 30, 0, 1, HIGH},
	    {"Thu 29 Feb 2024 17:30 Winter (holiday)", &CET, 2024, 2, 29, 17, 30, 0, 1, HOL},
	    {"Wed 28 Feb 2024 17:30 Winter", &CET, 2024, 2, 28, 17, 30, 0, 1, PEAK},
	    {"Sun 31 May 2026 23:59:59 Spring", &CET, 2026, 5, 31, 23, 59, 59, 2, 3},
	    {"Mon 1 Jun 2026 00:00 Summer", &CET, 2026, 6, 1, 0, 0, 0, 2, SUMMER},
	    {"Wed 30 Sep 2026 23:59:59 Summer", &CET, 2026, 9, 30, 23, 59, 59, 2, SUMMER},
	    {"Thu 1 Oct 2026 00:00 Winter", &CET, 2026, 10, 1, 0, 0, 0, 2, LOW},
	    {"Thu 1 Oct 2026 17:00 Winter", &CET, 2026, 10, 1, 17, 0, 0, 2, PEAK},
	    /* The season boundary is local: 1 Oct 00:30 local is 30 Sep UTC. */
	    {"Thu 1 Oct 2026 00:30 local", &CET, 2026, 10, 1, 0, 30, 0, 2, LOW},
	    /* Wrap-around: January and February are Winter (the last season). */
	    {"Fri 15 Jan 2027 18:00 wrap", &CET, 2027, 1, 15, 18, 0, 0, 1, PEAK},
	    {"Fri 1 Jan 2027 18:00 New Year", &CET, 2027, 1, 1, 18, 0, 0, 1, HOL},
	    /* Spring DST night (Sun 29 Mar 2026, Spring weekend, hour % 5). */
	    {"29 Mar 2026 01:59:59 CET", &CET, 2026, 3, 29, 1, 59, 59, 1, 1},
	    {"29 Mar 2026 03:00:00 CEST", &CET, 2026, 3, 29, 3, 0, 0, 2, 3},
	    /* Autumn DST night (Sun 25 Oct 2026, Winter weekend): 02:30 twice. */
	    {"25 Oct 2026 01:59:59 CEST", &CET, 2026, 10, 25, 1, 59, 59, 2, 1},
	    {"25 Oct 2026 02:30 CEST (first)", &CET, 2026, 10, 25, 2, 30, 0, 2, 2},
	    {"25 Oct 2026 02:59:59 CEST", &CET, 2026, 10, 25, 2, 59, 59, 2, 2},
	    {"25 Oct 2026 02:00 CET (again)", &CET, 2026, 10, 25, 2, 0, 0, 1, 2},
	    {"25 Oct 2026 02:30 CET (second)", &CET, 2026, 10, 25, 2, 30, 0, 1, 2},
	    {"25 Oct 2026 03:00 CET", &CET, 2026, 10, 25, 3, 0, 0, 1, 3},
	    /* Other zones: the same calendar on their local time. */
	    {"+05:45 Wed 14 Jan 18:00", &NEPAL, 2026, 1, 14, 18, 0, 0, 0, PEAK},
	    {"no DST, 20 Oct 2026 16:30 +1", &CET_NODST, 2026, 10, 20, 16, 30, 0, 1, HIGH},
	    {"DST, 20 Oct 2026 17:30 +2", &CET, 2026, 10, 20, 17, 30, 0, 2, PEAK},
	};
	struct tariff_cal *c = load(cal_text);

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		time_t u;
		int got;

		if (t[i].z == &NEPAL)
			u = L(t[i].y, t[i].mo, t[i].d, t[i].h, t[i].mi, t[i].s, 0) - 345 * 60;
		else
			u = L(t[i].y, t[i].mo, t[i].d, t[i].h, t[i].mi, t[i].s, t[i].off);
		/* The row's offset must be the zone's real one at that instant. */
		assert_int_equal(tz_offset_s(t[i].z, u),
				 t[i].z == &NEPAL ? 345 * 60 : t[i].off * 3600);
		got = tariffs_active(c, t[i].z, u);
		if (got != t[i].tariff)
			fail_msg("row %zu (%s): tariff %d, expected %d", i, t[i].what, got,
				 t[i].tariff);
	}
	tariffs_free(c);
}

/* Minute by minute through both DST nights: the tariff always follows the
 * local hour (weekend schedule = hour % 5); on the spring night hour 2 never
 * occurs, on the autumn night it lasts two hours. */
static void test_dst_nights(void **state)
{
	struct tariff_cal *c = load(cal_text);
	int minutes[5];

	(void)state;
	memset(minutes, 0, sizeof(minutes));
	for (time_t u = L(2026, 3, 28, 22, 0, 0, 0); u < L(2026, 3, 29, 4, 0, 0, 0); u += 60)
		minutes[tariffs_active(c, &CET, u)]++;
	/* 23:00…01:59 CET and 03:00…05:59 CEST: hours 23,0,1,3,4,5. */
	assert_int_equal(minutes[2], 0);
	assert_int_equal(minutes[1], 60);
	assert_int_equal(minutes[3], 120); /* hour 23 of the 28th (Sat) and 03 */
	memset(minutes, 0, sizeof(minutes));
	for (time_t u = L(2026, 10, 24, 23, 0, 0, 0); u < L(2026, 10, 25, 4, 0, 0, 0); u += 60)
		minutes[tariffs_active(c, &CET, u)]++;
	/* 01:00…01:59 CEST, 02:00…02:59 CEST, 02:00…02:59 CET, 03:00…03:59 CET,
	 * 04:00…04:59 CET: hours 1, 2, 2, 3, 4. */
	assert_int_equal(minutes[2], 120);
	assert_int_equal(minutes[1], 60);
	assert_int_equal(minutes[3], 60);
	tariffs_free(c);
}

static void test_next_change(void **state)
{
	static const struct sg_tz ODD = {345, true}; /* +05:45 with EU DST: switch off the hour */
	static const struct {
		const struct sg_tz *z;
		int y, mo, d, h, mi, s;	  /* UTC */
		int ny, nmo, nd, nh, nmi; /* UTC of the next possible change */
	} t[] = {
	    {&CET, 2026, 1, 14, 10, 20, 0, 2026, 1, 14, 11, 0},
	    {&CET, 2026, 1, 14, 10, 0, 0, 2026, 1, 14, 11, 0},
	    {&CET, 2026, 1, 14, 10, 59, 59, 2026, 1, 14, 11, 0},
	    {&CET, 2026, 12, 31, 22, 30, 0, 2026, 12, 31, 23, 0},
	    {&NEPAL, 2026, 1, 14, 12, 0, 0, 2026, 1, 14, 12, 15},
	    {&NEPAL, 2026, 1, 14, 12, 15, 0, 2026, 1, 14, 13, 15},
	    /* DST switches (01:00 UTC) are hour boundaries in CET anyway. */
	    {&CET, 2026, 3, 29, 0, 30, 0, 2026, 3, 29, 1, 0},
	    {&CET, 2026, 3, 29, 1, 0, 0, 2026, 3, 29, 2, 0},
	    {&CET, 2026, 10, 25, 0, 30, 0, 2026, 10, 25, 1, 0},
	    {&CET, 2026, 10, 25, 1, 0, 0, 2026, 10, 25, 2, 0},
	    /* …but not in a +05:45 zone with EU rules: the switch comes first. */
	    {&ODD, 2026, 3, 29, 0, 50, 0, 2026, 3, 29, 1, 0},
	    {&ODD, 2026, 3, 29, 1, 0, 0, 2026, 3, 29, 1, 15},
	};
	struct tariff_cal *c = load(cal_text);

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		time_t u = L(t[i].y, t[i].mo, t[i].d, t[i].h, t[i].mi, t[i].s, 0);
		time_t exp = L(t[i].ny, t[i].nmo, t[i].nd, t[i].nh, t[i].nmi, 0, 0);
		time_t got = tariffs_next_change(c, t[i].z, u);

		if (got != exp)
			fail_msg("row %zu: %lld, expected %lld", i, (long long)got, (long long)exp);
	}
	/* The tariff never changes before the instant given: sweep two years. */
	for (time_t u = L(2026, 1, 1, 0, 0, 0, 0); u < L(2028, 1, 1, 0, 0, 0, 0);
	     u += 7 * 60 + 13) {
		time_t n = tariffs_next_change(c, &CET, u);

		assert_true(n > u && n - u <= 3600);
		assert_int_equal(tariffs_active(c, &CET, n - 1), tariffs_active(c, &CET, u));
	}
	tariffs_free(c);
}

/* A valid skeleton to break one member at a time. */
#define T2 "\"tariffs\":[{\"name\":\"Low\",\"price\":0.1},{\"name\":\"High\",\"price\":0.2}]"
#define SCHED(x) "{\"workday\":" H24(x) ",\"weekend\":" H24(x) ",\"holiday\":" H24(x) "}"
#define S1 "\"seasons\":[{\"name\":\"All year\",\"start\":\"01-01\",\"schedule\":" SCHED("0") "}]"
#define HOL1(body) "{" T2 "," S1 ",\"holidays\":[" body "]}"
#define TAR(body) "{\"tariffs\":[" body "]," S1 "}"
#define SEA(body) "{" T2 ",\"seasons\":[" body "]}"
#define SEASON(start, sched) "{\"name\":\"S\",\"start\":\"" start "\",\"schedule\":" sched "}"
#define NAME33 "\"abcdefghijabcdefghijabcdefghijabc\""
/* 16 × "č" (2 bytes each) = 32 bytes: the longest name. */
#define C16 "čččččččččččččččč"

static void test_valid_edges(void **state)
{
	static const char *const ok[] = {
	    "{" T2 "," S1 "}",			       /* no holidays member, no version */
	    HOL1(""),				       /* empty holiday list */
	    TAR("{\"name\":\"" C16 "\",\"price\":0}"), /* 32 bytes of UTF-8, free */
	    TAR("{\"name\":\"A\",\"price\":1}"),       /* integer price */
	    HOL1("{\"name\":\"Leap\",\"type\":\"annual\",\"date\":\"02-29\"}"),
	    HOL1("{\"name\":\"Long\",\"type\":\"one-time\",\"date\":\"2028-02-29\","
		 "\"duration\":31}"),
	    "{" T2
	    ",\"seasons\":[" SEASON("12-31", SCHED("1")) "," SEASON("01-01", SCHED("0")) "]}",
	};
	struct tariff_cal *c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < N(ok); i++) {
		c = NULL;
		if (tariffs_parse(ok[i], strlen(ok[i]), &c, err, sizeof(err)) != 0)
			fail_msg("case %zu refused: %s", i, err);
		tariffs_free(c);
	}
	c = load(TAR("{\"name\":\"" C16 "\",\"price\":0}"));
	assert_string_equal(tariffs_name(c, 0), C16);
	tariffs_free(c);
	/* 12-31 and 01-01: the 01-01 season covers all but the last day. */
	c = load(ok[6]);
	assert_int_equal(tariffs_active(c, &CET, L(2026, 12, 30, 12, 0, 0, 1)), 0);
	assert_int_equal(tariffs_active(c, &CET, L(2026, 12, 31, 12, 0, 0, 1)), 1);
	assert_int_equal(tariffs_active(c, &CET, L(2027, 1, 1, 0, 0, 0, 1)), 0);
	tariffs_free(c);
}

static void test_invalid(void **state)
{
	static const struct {
		const char *text;
		const char *msg; /* the whole message, or its start if it ends in '*' */
	} bad[] = {
	    {"{", "not valid JSON: line 1*"},
	    {"[]", "(top level): expected an object, got an array"},
	    {"{" T2 "," S1 ",\"tariff\":1}",
	     "tariff: unknown member (allowed: version, tariffs, seasons, holidays)"},
	    {"{\"version\":2," T2 "," S1 "}", "version: 1 is the only version known"},
	    {"{" S1 "}", "tariffs: required member missing"},
	    {"{" T2 "}", "seasons: required member missing"},
	    {"{" T2 "," S1 "," T2 "}", "not valid JSON: line 1, column *"},
	    /* tariffs */
	    {TAR(""), "tariffs: at least one tariff is required"},
	    {"{\"tariffs\":{}," S1 "}", "tariffs: expected an array, got an object"},
	    {TAR("{\"name\":\"A\",\"price\":1},{\"name\":\"B\",\"price\":1},"
		 "{\"name\":\"C\",\"price\":1},{\"name\":\"D\",\"price\":1},"
		 "{\"name\":\"E\",\"price\":1},{\"name\":\"F\",\"price\":1}"),
	     "tariffs: at most 5 tariffs, got 6"},
	    {TAR("\"Low\""), "tariffs[0]: expected an object, got a string"},
	    {TAR("{\"name\":\"A\",\"price\":1},{\"name\":\"B\",\"price\":1,\"colour\":\"red\"}"),
	     "tariffs[1].colour: unknown member (allowed: name, price)"},
	    {TAR("{\"name\":" NAME33 ",\"price\":1}"),
	     "tariffs[0].name: 1…32 bytes of UTF-8, got 33 bytes"},
	    {TAR("{\"name\":\"" C16 "x\",\"price\":1}"),
	     "tariffs[0].name: 1…32 bytes of UTF-8, got 33 bytes"},
	    {TAR("{\"name\":\"\",\"price\":1}"),
	     "tariffs[0].name: 1…32 bytes of UTF-8, got 0 bytes"},
	    {TAR("{\"name\":7,\"price\":1}"), "tariffs[0].name: expected a string, got a number"},
	    {TAR("{\"price\":1}"), "tariffs[0].name: required member missing"},
	    {TAR("{\"name\":\"Low\",\"price\":1},{\"name\":\"Low\",\"price\":2}"),
	     "tariffs[1].name: \"Low\" is also the name of tariffs[0] (tariff names must differ)"},
	    {TAR("{\"name\":\"Low\",\"price\":-0.1}"),
	     "tariffs[0].price: a finite number ≥ 0 (price per kWh), got -0.1"},
	    {TAR("{\"name\":\"Low\",\"price\":\"0.1\"}"),
	     "tariffs[0].price: expected a number, got a string"},
	    {TAR("{\"name\":\"Low\",\"price\":null}"),
	     "tariffs[0].price: expected a number, got null"},
	    {TAR("{\"name\":\"Low\"}"), "tariffs[0].price: required member missing"},
	    {TAR("{\"name\":\"Low\",\"price\":1e999}"), "not valid JSON: *"},
	    /* seasons */
	    {SEA(""), "seasons: at least one season is required"},
	    {SEA("{\"start\":\"01-01\",\"schedule\":" SCHED("0") "}"),
	     "seasons[0].name: required member missing"},
	    {SEA(SEASON("3-1", SCHED("0"))),
	     "seasons[0].start: a date \"MM-DD\" (e.g. \"04-01\" for 1 April), got \"3-1\""},
	    {SEA(SEASON("2026-03-01", SCHED("0"))), "seasons[0].start: a date \"MM-DD\"*"},
	    {SEA(SEASON("02-30", SCHED("0"))), "seasons[0].start: not a valid date: \"02-30\"*"},
	    {SEA(SEASON("13-01", SCHED("0"))), "seasons[0].start: not a valid date: \"13-01\"*"},
	    {SEA(SEASON("04-00", SCHED("0"))), "seasons[0].start: not a valid date: \"04-00\"*"},
	    {SEA(SEASON("02-29", SCHED("0"))),
	     "seasons[0].start: 02-29 cannot start a season (not every year has it)"},
	    {SEA(SEASON("03-01", SCHED("0")) "," SEASON("10-01", SCHED("0")) "," SEASON(
		 "03-01", SCHED("1"))),
	     "seasons[2].start: 03-01 is also the start of seasons[0] (season start dates must "
	     "differ)"},
	    {SEA("{\"name\":\"S\",\"start\":\"01-01\"}"),
	     "seasons[0].schedule: required member missing"},
	    {SEA("{\"name\":\"S\",\"start\":\"01-01\",\"mode\":\"workday\",\"schedule\":" SCHED(
		 "0") "}"),
	     "seasons[0].mode: unknown member (allowed: name, start, schedule)"},
	    {SEA(SEASON("01-01", "{\"workday\":" H24("0") ",\"weekend\":" H24("0") "}")),
	     "seasons[0].schedule.holiday: required member missing"},
	    {SEA(SEASON("01-01", "{\"workday\":" H24("0") ",\"weekend\":" H24(
				     "0") ",\"holiday\":" H24("0") ",\"sunday\":" H24("0") "}")),
	     "seasons[0].schedule.sunday: unknown member (allowed: workday, weekend, holiday)"},
	    {SEA(SEASON("01-01", SCHED("0")) "," SEASON(
		 "06-01",
		 "{\"workday\":" H24("0") ",\"weekend\":[" R4("0") "," R4("0") "," R4("0") "," R4(
		     "0") "," R4("0") "," R4("0") ",1],\"holiday\":" H24("0") "}")),
	     "seasons[1].schedule.weekend[24]: hour index 0…23: a day has 24 entries, got 25"},
	    {SEA(SEASON("01-01",
			"{\"workday\":[" R4("0") "," R4("0") "," R4("0") "," R4("0") "," R4(
			    "0") ",0,0,0],\"weekend\":" H24("0") ",\"holiday\":" H24("0") "}")),
	     "seasons[0].schedule.workday: 24 entries (hours 0…23) are required, got 23"},
	    {SEA(SEASON("01-01", "{\"workday\":\"all day\",\"weekend\":" H24(
				     "0") ",\"holiday\":" H24("0") "}")),
	     "seasons[0].schedule.workday: expected an array of 24 tariff indexes (hours 0…23), "
	     "got a string"},
	    {SEA(SEASON("01-01", SCHED("2"))),
	     "seasons[0].schedule.workday[0]: tariff index 0…1 (there are 2 tariffs), got 2"},
	    {SEA(SEASON("01-01", SCHED("-1"))),
	     "seasons[0].schedule.workday[0]: tariff index 0…1 (there are 2 tariffs), got -1"},
	    {SEA(SEASON("01-01", SCHED("1.0"))),
	     "seasons[0].schedule.workday[0]: expected a tariff index (integer), got a number"},
	    {"{\"tariffs\":[{\"name\":\"Only\",\"price\":1}],\"seasons\":[" SEASON("01-01",
										   SCHED("1")) "]}",
	     "seasons[0].schedule.workday[0]: tariff index 0…0 (there is 1 tariff), got 1"},
	    {SEA("{\"name\":" NAME33 ",\"start\":\"01-01\",\"schedule\":" SCHED("0") "}"),
	     "seasons[0].name: 1…32 bytes of UTF-8, got 33 bytes"},
	    /* holidays */
	    {"{" T2 "," S1 ",\"holidays\":{}}", "holidays: expected an array, got an object"},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"02-30\"}"),
	     "holidays[0].date: not a valid date: \"02-30\""},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"01-01\"},"
		  "{\"name\":\"Y\",\"type\":\"one-time\",\"date\":\"2027-02-29\"}"),
	     "holidays[1].date: not a valid date: \"2027-02-29\""},
	    {HOL1("{\"name\":\"X\",\"type\":\"one-time\",\"date\":\"2026-04-31\"}"),
	     "holidays[0].date: not a valid date: \"2026-04-31\""},
	    {HOL1("{\"name\":\"X\",\"type\":\"one-time\",\"date\":\"04-05\"}"),
	     "holidays[0].date: a one-time holiday's date is \"YYYY-MM-DD\", got \"04-05\""},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"2026-01-01\"}"),
	     "holidays[0].date: an annual holiday's date is \"MM-DD\", got \"2026-01-01\""},
	    {HOL1("{\"name\":\"X\",\"type\":\"one-time\",\"date\":\"1969-12-31\"}"),
	     "holidays[0].date: year 1970…9999, got 1969"},
	    {HOL1("{\"name\":\"X\",\"type\":\"yearly\",\"date\":\"01-01\"}"),
	     "holidays[0].type: \"annual\" or \"one-time\""},
	    {HOL1("{\"name\":\"X\",\"date\":\"01-01\"}"),
	     "holidays[0].type: required member missing"},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\"}"),
	     "holidays[0].date: required member missing"},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"01-01\",\"duration\":0}"),
	     "holidays[0].duration: a whole number of days 1…31"},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"01-01\",\"duration\":32}"),
	     "holidays[0].duration: a whole number of days 1…31"},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"01-01\",\"duration\":\"2\"}"),
	     "holidays[0].duration: a whole number of days 1…31"},
	    {HOL1("{\"name\":\"X\",\"type\":\"annual\",\"date\":\"01-01\",\"annual\":true}"),
	     "holidays[0].annual: unknown member (allowed: name, type, date, duration)"},
	    {HOL1("{\"name\":\"\",\"type\":\"annual\",\"date\":\"01-01\"}"),
	     "holidays[0].name: 1…32 bytes of UTF-8, got 0 bytes"},
	};
	struct tariff_cal *sentinel = (struct tariff_cal *)&sentinel;

	(void)state;
	for (size_t i = 0; i < N(bad); i++) {
		struct tariff_cal *c = sentinel;
		char err[512] = "";
		size_t n = strlen(bad[i].msg);
		int rc = tariffs_parse(bad[i].text, strlen(bad[i].text), &c, err, sizeof(err));

		if (rc != -EINVAL)
			fail_msg("case %zu (%s): rc %d, expected -EINVAL", i, bad[i].msg, rc);
		assert_ptr_equal(c, sentinel); /* *out untouched */
		if (bad[i].msg[n - 1] == '*' ? strncmp(err, bad[i].msg, n - 1) != 0
					     : strcmp(err, bad[i].msg) != 0)
			fail_msg("case %zu:\n  got      %s\n  expected %s", i, err, bad[i].msg);
	}
}

/* Count limits, built programmatically. */
static void test_limits(void **state)
{
	char *buf = malloc(65536);
	char err[256];
	struct tariff_cal *c = NULL;
	size_t n;

	(void)state;
	assert_non_null(buf);
	n = (size_t)snprintf(buf, 65536, "{" T2 ",\"seasons\":[");
	for (int i = 0; i < TARIFF_SEASONS_MAX + 1; i++)
		n += (size_t)snprintf(
		    buf + n, 65536 - n,
		    "%s{\"name\":\"S\",\"start\":\"%02d-01\",\"schedule\":" SCHED("0") "}",
		    i ? "," : "", i % 12 + 1);
	snprintf(buf + n, 65536 - n, "]}");
	assert_int_equal(tariffs_parse(buf, strlen(buf), &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "seasons: at most 16 seasons, got 17");

	n = (size_t)snprintf(buf, 65536, "{" T2 "," S1 ",\"holidays\":[");
	for (int i = 0; i < TARIFF_HOLIDAYS_MAX + 1; i++)
		n += (size_t)snprintf(buf + n, 65536 - n,
				      "%s{\"name\":\"H\",\"type\":\"annual\",\"date\":\"01-01\"}",
				      i ? "," : "");
	snprintf(buf + n, 65536 - n, "]}");
	assert_int_equal(tariffs_parse(buf, strlen(buf), &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "holidays: at most 128 holidays, got 129");
	assert_null(c);
	/* err may be NULL. */
	assert_int_equal(tariffs_parse("{}", 2, &c, NULL, 0), -EINVAL);
	free(buf);
}

static struct tariff_cal *round_trip(const struct tariff_cal *c)
{
	json_t *j = tariffs_to_json(c);
	char *text;
	struct tariff_cal *back;

	assert_non_null(j);
	text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	assert_non_null(text);
	back = load(text);
	free(text);
	json_decref(j);
	return back;
}

static void test_round_trip(void **state)
{
	struct tariff_cal *a = load(cal_text), *b, *c, *x = NULL;
	json_t *ja, *jb;
	char err[256];

	(void)state;
	b = round_trip(a);
	assert_true(tariffs_equal(a, b));
	c = round_trip(b);
	assert_true(tariffs_equal(b, c));
	ja = tariffs_to_json(a);
	jb = tariffs_to_json(c);
	assert_true(json_equal(ja, jb));
	/* Holidays kept their kind, duration defaults to 1. */
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(ja, "holidays"), 3), "date")),
			    "12-25");
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(ja, "holidays"), 3), "duration")),
			 1);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(ja, "holidays"), 1), "date")),
			    "2026-04-05");
	json_decref(ja);
	json_decref(jb);
	/* Equality notices a one-hour change. */
	assert_int_equal(tariffs_parse(SEA(SEASON("01-01", SCHED("0"))),
				       strlen(SEA(SEASON("01-01", SCHED("0")))), &x, err,
				       sizeof(err)),
			 0);
	assert_false(tariffs_equal(a, x));
	assert_false(tariffs_equal(a, NULL));
	assert_true(tariffs_equal(NULL, NULL));
	tariffs_free(x);
	tariffs_free(a);
	tariffs_free(b);
	tariffs_free(c);
}

/* The shipped example and the one in docs/tariffs.md parse, agree and round-trip. */
static void test_example_files(void **state)
{
	struct tariff_cal *ex = NULL, *doc = NULL, *back;
	char err[512];
	FILE *f;
	char *md, *start, *end;
	long len;

	(void)state;
	if (tariffs_load_file("etc/tariffs.example.json", &ex, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	back = round_trip(ex);
	assert_true(tariffs_equal(ex, back));
	tariffs_free(back);
	assert_int_equal(tariffs_count(ex), 3);
	/* Wed 14 Jan 2026 18:00 CET: winter workday peak (Konica). */
	assert_string_equal(tariffs_name(ex, tariffs_active(ex, &CET, L(2026, 1, 14, 18, 0, 0, 1))),
			    "Konica");
	/* Easter Monday 2026 10:00 CEST: holiday, Nizka. */
	assert_string_equal(tariffs_name(ex, tariffs_active(ex, &CET, L(2026, 4, 6, 10, 0, 0, 2))),
			    "Nizka");

	f = fopen("docs/tariffs.md", "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	md = calloc(1, (size_t)len + 1);
	assert_non_null(md);
	assert_int_equal(fread(md, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	start = strstr(md, "```json\n");
	assert_non_null(start);
	start += 8;
	end = strstr(start, "```");
	assert_non_null(end);
	if (tariffs_parse(start, (size_t)(end - start), &doc, err, sizeof(err)) != 0)
		fail_msg("docs/tariffs.md example: %s", err);
	assert_true(tariffs_equal(ex, doc));
	free(md);
	tariffs_free(doc);
	tariffs_free(ex);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_tariffs.XXXXXX";
	struct tariff_cal *c = NULL;
	char err[512];
	int fd;

	(void)state;
	assert_int_equal(tariffs_load_file("/nonexistent/tariffs.json", &c, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "tariffs.json: No such file or directory");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"tariffs\":[]}", 14), 14);
	close(fd);
	assert_int_equal(tariffs_load_file(path, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ": tariffs: at least one tariff is required"));
	assert_null(c);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accessors),	  cmocka_unit_test(test_active),
	    cmocka_unit_test(test_dst_nights),	  cmocka_unit_test(test_next_change),
	    cmocka_unit_test(test_valid_edges),	  cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_limits),	  cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_example_files), cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
