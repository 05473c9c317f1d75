/* Local time of the gateway from its own settings (`timezone`: minutes east
 * of UTC, `dst_auto`: EU summer time), as pure functions: no TZ variable, no
 * tzdata, no libc localtime/mktime, so every caller and every test sees the
 * same rules whatever the host is configured with.
 *
 * EU summer time (dst_eu) is in force from the last Sunday of March 01:00 UTC
 * to the last Sunday of October 01:00 UTC (the same instant in every EU zone)
 * and adds 3600 s to the standard offset. Dates are proleptic Gregorian;
 * day numbers count days since 1970-01-01 (negative before). */
#ifndef SG_LOCALTIME_H
#define SG_LOCALTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct settings;

struct sg_tz {
	int offset_min; /* standard offset, minutes east of UTC (setting `timezone`) */
	bool dst_eu;	/* EU summer time rules apply (setting `dst_auto`) */
};

/* The zone the settings describe (`timezone`, `dst_auto`). */
struct sg_tz tz_from_settings(const struct settings *s);

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). mon 1…12; mday is linear (0 = last day of the previous
 * month, 32 of a 31-day month = the 1st of the next). */
int64_t days_from_civil(int64_t year, int mon, int mday);
/* The inverse: the date of day number days (mon 1…12, mday 1…31). */
void civil_from_days(int64_t days, int64_t *year, int *mon, int *mday);
/* Weekday of a day number: 0 = Sunday … 6 = Saturday. */
int weekday_from_days(int64_t days);
/* Weekday of a date: 0 = Sunday … 6 = Saturday. */
int tz_weekday(int64_t year, int mon, int mday);
/* True for a Gregorian leap year. */
bool tz_is_leap(int64_t year);
/* Days in month mon (1…12) of year; 0 for a month out of range. */
int tz_days_in_month(int64_t year, int mon);

/* UTC instants at which EU summer time starts and ends in year (last Sunday
 * of March / October, 01:00 UTC). */
time_t tz_eu_dst_start(int64_t year);
time_t tz_eu_dst_end(int64_t year);

/* Offset of local time from UTC at instant utc, in seconds: offset_min * 60,
 * plus 3600 while EU summer time is in force (dst_eu). */
int tz_offset_s(const struct sg_tz *z, time_t utc);

/* Broken-down local time at utc, like localtime_r: tm_year since 1900,
 * tm_mon 0…11, tm_wday 0 = Sunday, tm_yday, tm_isdst 1 while summer time is in
 * force, tm_gmtoff the offset in seconds, tm_zone NULL. */
void tz_to_local(const struct sg_tz *z, time_t utc, struct tm *out);

/* Room for tz_text() ("dd.mm.yyyy HH:MM:SS" of any 64-bit year). */
#define TZ_TEXT_LEN 40
/* utc as local "dd.mm.yyyy HH:MM:SS" in zone z: the one text of every local
 * time sgd shows (status local_time, the legacy documents, read_time), the
 * way the Iskra gateway prints times (000 §4.2). */
void tz_text(const struct sg_tz *z, time_t utc, char *buf, size_t len);

/* UTC instant of the local wall time year-mon-mday hour:min (mon 1…12; mday,
 * hour and min are linear, so hour 24 is 00:00 of the next day).
 * - A wall time that happens once: that instant.
 * - The repeated hour of the autumn night (02:00–02:59 happens twice in
 *   Central Europe): the first occurrence (still summer time).
 * - The hour that does not exist on the spring night (02:00–02:59 in Central
 *   Europe): the instant as if the clock had not jumped yet, i.e. read with
 *   the standard offset: 02:30 gives 01:30 UTC, the same instant as 03:30
 *   summer time (like mktime with tm_isdst = 0). */
time_t tz_from_local(const struct sg_tz *z, int64_t year, int mon, int mday, int hour, int min);

/* UTC instant of the first second of local date year-mon-mday (its local
 * midnight; if 00:00 does not exist that day, the instant the clock jumped). */
time_t tz_day_start(const struct sg_tz *z, int64_t year, int mon, int mday);

/* UTC instant of the local midnight that starts the local day containing
 * utc (always <= utc; the day is 23 h on the spring DST day, 25 h in autumn). */
time_t tz_local_midnight(const struct sg_tz *z, time_t utc);

#endif
