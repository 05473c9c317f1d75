/* The tariff calendar (R-E1, 001 §4.6): up to 5 tariffs (name, price per
 * kWh), seasons (name, start date, an hour → tariff schedule for workdays,
 * weekends and holidays) and holidays (name, date, duration, annual or
 * one-time). Kept as tariffs.json in the file-manager folder; the format is
 * in docs/tariffs.md. The active tariff is computed from local time. */
#ifndef SG_TARIFFS_H
#define SG_TARIFFS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "sg/localtime.h"

#define TARIFFS_MAX 5		/* tariffs in a calendar (as on the hardware) */
#define TARIFF_NAME_MAX 32	/* longest name, bytes of UTF-8 */
#define TARIFF_SEASONS_MAX 16	/* seasons in a calendar */
#define TARIFF_HOLIDAYS_MAX 128 /* holidays in a calendar */
#define TARIFF_DURATION_MAX 31	/* longest holiday, days */
#define TARIFFS_FILE "tariffs.json"

/* The day types a season has a schedule for. */
enum tariff_day {
	TARIFF_WORKDAY = 0, /* Monday…Friday that is not a holiday */
	TARIFF_WEEKEND = 1, /* Saturday, Sunday that is not a holiday */
	TARIFF_HOLIDAY = 2, /* a day inside a holiday */
};

struct tariff_cal;

/* Parse and validate a tariffs.json text (len bytes). On success *out is a new
 * calendar (tariffs_free) and 0 is returned. On failure *out is untouched,
 * err says what is wrong, naming the member path and the rule
 * ("seasons[1].schedule.weekend[5]: tariff index 0…1 …"), and the result is
 * -EINVAL (or -ENOMEM). */
int tariffs_parse(const char *text, size_t len, struct tariff_cal **out, char *err, size_t errlen);
/* Read and parse the file at path (at most 1 MiB). 0; -errno if it cannot be
 * read (-ENOENT: no file); -EINVAL if it is invalid. err starts with the
 * file's base name. On failure *out is untouched. */
int tariffs_load_file(const char *path, struct tariff_cal **out, char *err, size_t errlen);
/* Free (NULL is fine). */
void tariffs_free(struct tariff_cal *c);
/* The calendar as JSON in the tariffs.json format (parses back to an equal
 * calendar); NULL if c is NULL or out of memory. */
json_t *tariffs_to_json(const struct tariff_cal *c);
/* Same content (every tariff, season and holiday in the same order). */
bool tariffs_equal(const struct tariff_cal *a, const struct tariff_cal *b);

/* Number of tariffs (1…TARIFFS_MAX; 0 for NULL). */
int tariffs_count(const struct tariff_cal *c);
/* Name of tariff i (0-based), or NULL out of range. */
const char *tariffs_name(const struct tariff_cal *c, int i);
/* Price per kWh of tariff i, or NAN out of range. */
double tariffs_price(const struct tariff_cal *c, int i);
/* Number of seasons and the name of season i (NULL out of range). */
int tariffs_season_count(const struct tariff_cal *c);
const char *tariffs_season_name(const struct tariff_cal *c, int i);

/* The season in force on a date (mon 1…12): the one whose start is the latest
 * one on or before mon/mday; before the earliest start, the season with the
 * latest start (it began the year before). -1 if c is NULL. */
int tariffs_season_on(const struct tariff_cal *c, int mon, int mday);
/* True if the date lies inside a holiday (annual ones every year, one-time
 * ones only in their year, durations running across month and year ends). */
bool tariffs_is_holiday(const struct tariff_cal *c, int64_t year, int mon, int mday);
/* Day type of a date: holiday, else weekend (Saturday, Sunday), else workday. */
enum tariff_day tariffs_day_type(const struct tariff_cal *c, int64_t year, int mon, int mday);

/* Index (0-based) of the tariff active at utc, from the local time in zone z:
 * the season of the local date, the day type of the local date, then the
 * schedule's entry for the local hour. -1 if c is NULL. */
int tariffs_active(const struct tariff_cal *c, const struct sg_tz *z, time_t utc);
/* The next instant after utc at which the active tariff may change: the next
 * local hour boundary, or the next summer-time switch if that comes first.
 * Meant to arm a timer; the tariff may well be the same then. -1 if c is
 * NULL. */
time_t tariffs_next_change(const struct tariff_cal *c, const struct sg_tz *z, time_t utc);

#endif
