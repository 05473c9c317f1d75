/* Local time from the gateway's settings: see include/sg/localtime.h. */
#include "sg/localtime.h"

#include <string.h>

#include "sg/settings.h"

#define DAY_S 86400

struct sg_tz tz_from_settings(const struct settings *s)
{
	struct sg_tz z;

	z.offset_min = (int)settings_int(s, "timezone");
	z.dst_eu = settings_int(s, "dst_auto") != 0;
	return z;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms". */
int64_t days_from_civil(int64_t year, int mon, int mday)
{
	int64_t y = year - (mon <= 2);
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;						/* [0, 399] */
	int64_t doy = (153 * (mon > 2 ? mon - 3 : mon + 9) + 2) / 5 + mday - 1; /* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;			/* [0, 146096] */

	return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t days, int64_t *year, int *mon, int *mday)
{
	int64_t z = days + 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;					     /* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		     /* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;				     /* [0, 11] */
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);

	*year = yoe + era * 400 + (m <= 2);
	*mon = m;
	*mday = d;
}

int weekday_from_days(int64_t days)
{
	/* 1970-01-01 was a Thursday (4). */
	int64_t w = (days + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

int tz_weekday(int64_t year, int mon, int mday)
{
	return weekday_from_days(days_from_civil(year, mon, mday));
}

bool tz_is_leap(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int tz_days_in_month(int64_t year, int mon)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (mon < 1 || mon > 12)
		return 0;
	if (mon == 2 && tz_is_leap(year))
		return 29;
	return dim[mon - 1];
}

/* 01:00 UTC on the last Sunday of a 31-day month. */
static time_t last_sunday_0100(int64_t year, int mon)
{
	int64_t d31 = days_from_civil(year, mon, 31);
	int64_t sun = d31 - weekday_from_days(d31);

	return (time_t)(sun * DAY_S + 3600);
}

time_t tz_eu_dst_start(int64_t year)
{
	return last_sunday_0100(year, 3);
}

time_t tz_eu_dst_end(int64_t year)
{
	return last_sunday_0100(year, 10);
}

static int64_t utc_year(time_t utc)
{
	int64_t y;
	int m, d;

	civil_from_days(floor_div((int64_t)utc, DAY_S), &y, &m, &d);
	return y;
}

static bool eu_summer(time_t utc)
{
	int64_t y = utc_year(utc);

	/* Both switches are in the middle of the UTC year, so the UTC year of the
	 * instant picks the right pair. */
	return utc >= tz_eu_dst_start(y) && utc < tz_eu_dst_end(y);
}

int tz_offset_s(const struct sg_tz *z, time_t utc)
{
	int off = z->offset_min * 60;

	if (z->dst_eu && eu_summer(utc))
		off += 3600;
	return off;
}

void tz_to_local(const struct sg_tz *z, time_t utc, struct tm *out)
{
	int off = tz_offset_s(z, utc);
	int64_t t = (int64_t)utc + off;
	int64_t days = floor_div(t, DAY_S);
	int64_t secs = t - days * DAY_S;
	int64_t y;
	int m, d;

	civil_from_days(days, &y, &m, &d);
	memset(out, 0, sizeof(*out));
	out->tm_year = (int)(y - 1900);
	out->tm_mon = m - 1;
	out->tm_mday = d;
	out->tm_hour = (int)(secs / 3600);
	out->tm_min = (int)(secs / 60 % 60);
	out->tm_sec = (int)(secs % 60);
	out->tm_wday = weekday_from_days(days);
	out->tm_yday = (int)(days - days_from_civil(y, 1, 1));
	out->tm_isdst = off != z->offset_min * 60;
#if defined(_DEFAULT_SOURCE) || defined(_GNU_SOURCE) || defined(_BSD_SOURCE)
	out->tm_gmtoff = off;
	out->tm_zone = NULL;
#endif
}

void tz_text(const struct sg_tz *z, time_t utc, char *buf, size_t len)
{
	struct tm tm;

	tz_to_local(z, utc, &tm);
	snprintf(buf, len, "%02d.%02d.%lld %02d:%02d:%02d", tm.tm_mday, tm.tm_mon + 1,
		 (long long)tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The UTC instant of local wall time l (seconds since 1970-01-01 local);
 * *gap is set when l does not exist (skipped by the spring jump). */
static time_t from_local_s(const struct sg_tz *z, int64_t l, bool *gap)
{
	int std = z->offset_min * 60;
	time_t as_std = (time_t)(l - std);
	time_t as_dst = (time_t)(l - std - 3600);
	bool std_ok, dst_ok;

	*gap = false;
	if (!z->dst_eu)
		return as_std;
	std_ok = tz_offset_s(z, as_std) == std;
	dst_ok = tz_offset_s(z, as_dst) == std + 3600;
	if (dst_ok) /* also the first of two occurrences in autumn */
		return as_dst;
	if (std_ok)
		return as_std;
	*gap = true;
	return as_std; /* as if the clock had not jumped yet */
}

time_t tz_from_local(const struct sg_tz *z, int64_t year, int mon, int mday, int hour, int min)
{
	int64_t l =
	    days_from_civil(year, mon, mday) * DAY_S + (int64_t)hour * 3600 + (int64_t)min * 60;
	bool gap;

	return from_local_s(z, l, &gap);
}

time_t tz_day_start(const struct sg_tz *z, int64_t year, int mon, int mday)
{
	int64_t l = days_from_civil(year, mon, mday) * DAY_S;
	bool gap;
	time_t t = from_local_s(z, l, &gap);

	if (gap) {
		/* 00:00 was skipped: the day starts at the jump, the summer-time
		 * start of the UTC year of t (the only jump forward). */
		time_t jump = tz_eu_dst_start(utc_year(t));

		if (jump <= t)
			t = jump;
	}
	return t;
}

time_t tz_local_midnight(const struct sg_tz *z, time_t utc)
{
	struct tm tm;

	tz_to_local(z, utc, &tm);
	return tz_day_start(z, (int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
