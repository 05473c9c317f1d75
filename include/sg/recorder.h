/* Recorders (R-B3, 001 §4.1.2.5 and §4.1.6): each recorder is bound to one
 * counter of one device (or to the gateway's pulse counter) and keeps the
 * counter's value at every local midnight; daily, monthly and yearly
 * consumption views, clear, CSV export and the REST JSON are built from those
 * daily readings.
 *
 * How many: REC_COUNT = 8. The manual does not give a number ("depending on
 * the hardware version of the Smart Gateway, it supports a different number
 * of recorders"); its Recorders tab screenshot (Figure 27) shows Recorder 1…3
 * with the page continuing, and the older firmware's manual (000) has a single
 * "Energy Recorder" setting. Eight covers every screenshot, is enough to follow
 * the main counter of several meters plus the pulse counter, and keeps the
 * settings page and /api/recorders small. Storage is not the limit (one row
 * per recorder and day: 8 × 10 years ≈ 29 000 rows); raising REC_COUNT needs
 * no schema change.
 *
 * Days: every day here is a LOCAL calendar day counted from 1970-01-01
 * (day 0 = 1970-01-01 local). The daemon converts its local time into that
 * number (it owns the timezone); this module does calendar arithmetic only and
 * never looks at a clock or a timezone.
 *
 * Capturing: the module only stores what it is given. At local midnight (or,
 * when the gateway was off or the device silent at midnight, at the first
 * reading after it) the caller calls rec_capture() with the counter value it
 * has, for the day that starts. A day already stored keeps its first value.
 * rec_due()/rec_pending() tell the caller whether the current day still needs
 * its reading; days missed entirely stay missing — nothing is ever invented
 * or interpolated.
 *
 * Consumption of day d = value(d + 1) − value(d), when both readings exist,
 * come from the same source and the difference is not negative (a counter
 * going backwards — meter replaced or reset — gives a missing day, never a
 * negative one). A month (year) is the sum of its days' consumption, reported
 * with the number of days that had one; a period without any is missing (JSON
 * null), never zero.
 *
 * Storage: the caller owns the sqlite3 connection (opening, WAL, closing);
 * rec_open() creates this module's table if needed. Errors are -errno
 * (SQLite codes mapped as in store.c). Single-threaded, like the store. */
#ifndef SG_RECORDER_H
#define SG_RECORDER_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define REC_COUNT 8	     /* recorders 0…REC_COUNT-1 (shown as "Recorder 1…8") */
#define REC_NAME_MAX 32	     /* bytes of UTF-8, without the terminating NUL */
#define REC_NO_DAY INT64_MIN /* "no day" (nothing captured yet, nothing due) */
#define REC_YEAR_MIN 1970    /* years the views accept */
#define REC_YEAR_MAX 9999
#define REC_RANGE_MAX 36600 /* longest daily range in one call, days (~100 years) */

enum rec_source {
	REC_SRC_DEVICE, /* counter `counter` of the device in slot `slot` */
	REC_SRC_PULSE,	/* the gateway's pulse counter */
};

struct rec_cfg {
	char name[REC_NAME_MAX + 1]; /* "" = shown as "Recorder N" */
	bool enabled;
	enum rec_source source;
	int slot;    /* REC_SRC_DEVICE: device slot 0…17 (dev.h), not 1 (Right IR Bicom) */
	int counter; /* REC_SRC_DEVICE: counter index 0…DESC_CTR_MAX-1 */
};

/* One day of rec_daily(). */
struct rec_day {
	int64_t day;	 /* local day */
	bool has_value;	 /* a reading was captured for this day */
	bool has_cons;	 /* consumption of this day is known */
	double value;	 /* counter value at the start of the day */
	double cons;	 /* value(day + 1) − value(day) */
	time_t captured; /* UTC time the reading was taken (when has_value) */
};

/* One month or year of rec_monthly()/rec_yearly(). */
struct rec_period {
	int year, month;    /* month 1…12; 0 for a year */
	int days;	    /* days in the period (28…31, 365/366) */
	int days_with_data; /* days whose consumption is known */
	double cons; /* sum of those days' consumption; meaningless when days_with_data = 0 */
};

struct recorders;

/* Check a configuration: 0, or -EINVAL with a one-line message in err. */
int rec_cfg_validate(const struct rec_cfg *c, char *err, size_t errlen);

/* Create the table if needed and prepare the statements; every recorder starts
 * disabled with an empty name, bound to counter 0 of slot 0. 0 or -errno. */
int rec_open(sqlite3 *db, struct recorders **out);
/* Finalize the statements (the connection stays open). NULL is allowed. */
void rec_close(struct recorders *r);

/* Replace recorder rec's configuration after validating it (0, or -EINVAL with
 * a message; nothing changes then). Stored readings are kept: readings taken
 * from another source never pair with the new ones in consumption. The caller
 * persists configurations (with the settings). */
int rec_configure(struct recorders *r, int rec, const struct rec_cfg *c, char *err, size_t errlen);
/* Current configuration of recorder rec (NULL when rec is out of range). */
const struct rec_cfg *rec_get_cfg(const struct recorders *r, int rec);

/* The day to capture, given the last captured day (REC_NO_DAY if none) and
 * the current local day: today when it is later than last_day, else
 * REC_NO_DAY. Only the current day is ever due; days missed stay missing. */
int64_t rec_due(int64_t last_day, int64_t today);
/* Whether recorder rec (enabled) still needs its reading for local day today:
 * 1 (and *day = today), 0 when not (disabled, already captured, or the last
 * reading is for a later day), or -errno. */
int rec_pending(struct recorders *r, int rec, int64_t today, int64_t *day);
/* Store value as recorder rec's reading for local day local_day, taken at utc.
 * 1 stored, 0 the day already had a reading (the first one is kept), -EINVAL
 * (bad recorder, day or non-finite value), -EPERM (recorder disabled), or
 * another -errno. */
int rec_capture(struct recorders *r, int rec, int64_t local_day, double value, time_t utc);
/* The latest reading of rec: 1 found (any of the out pointers may be NULL),
 * 0 none, or -errno. */
int rec_last(struct recorders *r, int rec, int64_t *day, double *value, time_t *utc);
/* Delete every reading of recorder rec (only that one). 0 or -errno. */
int rec_clear(struct recorders *r, int rec);

/* Days from_day…to_day (inclusive) into out[0…]; cap must hold them all
 * (to_day − from_day + 1 ≤ cap, ≤ REC_RANGE_MAX). Returns the number of days,
 * or -EINVAL / -ERANGE / -errno. */
int rec_daily(struct recorders *r, int rec, int64_t from_day, int64_t to_day, struct rec_day *out,
	      size_t cap);
/* The 12 months of year into out[0…11]. 0 or -errno. */
int rec_monthly(struct recorders *r, int rec, int year, struct rec_period out[12]);
/* Years from_year…to_year into out[0…] (cap ≥ to_year − from_year + 1).
 * Returns the number of years or -errno. */
int rec_yearly(struct recorders *r, int rec, int from_year, int to_year, struct rec_period *out,
	       size_t cap);

/* CSV of days from_day…to_day: header "date,value,consumption", then one line
 * per day "YYYY-MM-DD,<value>,<consumption>" with an empty field when missing;
 * numbers with '.' and the shortest text that strtod() reads back to the same
 * double. 0 or -errno (-EIO when writing f fails). */
int rec_csv(struct recorders *r, int rec, int64_t from_day, int64_t to_day, FILE *f);

/* GET /api/recorders: [{"index": i, "name", "enabled", "source": "device"|"pulse",
 * "slot", "device_index", "counter", "last": {"date", "day", "value",
 * "captured_at"} | null}, …]; NULL on error. */
json_t *rec_list_json(struct recorders *r);
/* GET /api/recorder/{i}: scope "daily" (from/to are local days), "monthly"
 * (from/to are years; 12 entries per year) or "yearly" (from/to are years):
 * {"index", "name", "scope", "from", "to", "data": [...]}; a daily entry is
 * {"date": "YYYY-MM-DD", "day", "value": x|null, "consumption": x|null}, a
 * monthly one {"month": "YYYY-MM", "consumption": x|null, "days_with_data",
 * "days"}, a yearly one {"year", "consumption": x|null, "days_with_data",
 * "days"}. NULL with a message in err for a bad scope/range or an error. */
json_t *rec_view_json(struct recorders *r, int rec, const char *scope, int64_t from, int64_t to,
		      char *err, size_t errlen);

#endif
