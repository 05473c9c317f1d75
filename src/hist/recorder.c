/* Recorders: daily midnight readings of one counter each, and the views built
 * from them. See include/sg/recorder.h for the rules (local days, first
 * reading wins, missing is never zero, backwards counters give a missing day).
 *
 * Schema (created by rec_open, one row per recorder and local day):
 *   rec_daily(recorder, day, value, src, captured_at) WITHOUT ROWID,
 *   PRIMARY KEY(recorder, day)
 * src records where the reading came from (-1 pulse counter, slot × 256 +
 * counter for a device) so that after a recorder is re-bound to another
 * counter, an old and a new reading never make a consumption. */
#include "sg/recorder.h"

#include "sg/dev.h"
#include "sg/errbuf.h"
#include "sg/histdb.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SRC_PULSE (-1)
#define MAX_YEARS 100 /* longest monthly/yearly range in one JSON view */

struct recorders {
	sqlite3 *db;
	struct rec_cfg cfg[REC_COUNT];
	sqlite3_stmt *ins;
	sqlite3_stmt *last;
	sqlite3_stmt *range;
	sqlite3_stmt *clear;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS rec_daily("
    " recorder INTEGER NOT NULL CHECK(recorder >= 0),"
    " day INTEGER NOT NULL,"	     /* local calendar day, days since 1970-01-01 */
    " value REAL NOT NULL,"	     /* counter value at the start of that day */
    " src INTEGER NOT NULL,"	     /* -1 pulse counter, slot * 256 + counter */
    " captured_at INTEGER NOT NULL," /* UTC seconds of the reading */
    " PRIMARY KEY(recorder, day)) WITHOUT ROWID";

/* --- local-calendar arithmetic (Howard Hinnant's civil algorithms) --- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

/* Local days the module accepts: 1970-01-01 … 9999-12-31. */
static int64_t day_min(void)
{
	return days_from_civil(REC_YEAR_MIN, 1, 1);
}

static int64_t day_max(void)
{
	return days_from_civil(REC_YEAR_MAX, 12, 31);
}

static bool day_ok(int64_t day)
{
	return day >= day_min() && day <= day_max();
}

static void fmt_date(int64_t day, char *buf, size_t len)
{
	int y;
	unsigned m, d;

	civil_from_days(day, &y, &m, &d);
	snprintf(buf, len, "%04d-%02u-%02u", y, m, d);
}

/* --- helpers --- */

static void done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static bool rec_ok(const struct recorders *r, int rec)
{
	return r && rec >= 0 && rec < REC_COUNT;
}

static int64_t src_of(const struct rec_cfg *c)
{
	return c->source == REC_SRC_PULSE ? SRC_PULSE : (int64_t)c->slot * 256 + c->counter;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF), as
 * jansson requires of every string it is given. */
static bool utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned char c = *s;
		int n;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		s++;
		for (int i = 0; i < n; i++, s++) {
			if (*s < lo || *s > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
	}
	return true;
}

/* --- configuration --- */

int rec_cfg_validate(const struct rec_cfg *c, char *err, size_t errlen)
{
	const char *nul;

	if (!c) {
		err_set(err, errlen, "no recorder configuration");
		return -EINVAL;
	}
	nul = memchr(c->name, '\0', sizeof(c->name));
	if (!nul) {
		err_set(err, errlen, "name is longer than %d bytes", REC_NAME_MAX);
		return -EINVAL;
	}
	if (!utf8_ok((const unsigned char *)c->name)) {
		err_set(err, errlen, "name is not valid UTF-8");
		return -EINVAL;
	}
	for (const char *p = c->name; p < nul; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			err_set(err, errlen, "name contains a control character");
			return -EINVAL;
		}
	}
	switch (c->source) {
	case REC_SRC_PULSE:
		return 0;
	case REC_SRC_DEVICE:
		break;
	default:
		err_set(err, errlen, "source must be a device counter or the pulse counter");
		return -EINVAL;
	}
	if (c->slot < 0 || c->slot >= DEV_SLOTS) {
		err_set(err, errlen, "device slot %d out of range (0..%d)", c->slot, DEV_SLOTS - 1);
		return -EINVAL;
	}
	if (c->slot == DEV_SLOT_RIGHT_IR) {
		err_set(err, errlen,
			"device slot %d is the Right IR Bicom relay, which has no counters",
			c->slot);
		return -EINVAL;
	}
	if (c->counter < 0 || c->counter >= DESC_CTR_MAX) {
		err_set(err, errlen, "counter %d out of range (0..%d)", c->counter,
			DESC_CTR_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

int rec_configure(struct recorders *r, int rec, const struct rec_cfg *c, char *err, size_t errlen)
{
	char msg[160];
	int ret;

	if (!rec_ok(r, rec)) {
		err_set(err, errlen, "recorder %d out of range (0..%d)", rec, REC_COUNT - 1);
		return -EINVAL;
	}
	ret = rec_cfg_validate(c, msg, sizeof(msg));
	if (ret) {
		err_set(err, errlen, "recorder %d: %s", rec, msg);
		return ret;
	}
	r->cfg[rec] = *c;
	return 0;
}

const struct rec_cfg *rec_get_cfg(const struct recorders *r, int rec)
{
	return rec_ok(r, rec) ? &r->cfg[rec] : NULL;
}

/* --- open / close --- */

static int prep(struct recorders *r, const char *sql, sqlite3_stmt **s)
{
	int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);

	return rc == SQLITE_OK ? 0 : sqlite_errno(r->db, rc);
}

int rec_open(sqlite3 *db, struct recorders **out)
{
	struct recorders *r;
	int rc, ret;

	if (!db || !out)
		return -EINVAL;
	*out = NULL;
	rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(db, rc);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->db = db;
	for (int i = 0; i < REC_COUNT; i++)
		r->cfg[i].source = REC_SRC_DEVICE;
	ret = prep(r,
		   "INSERT INTO rec_daily(recorder, day, value, src, captured_at)"
		   " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(recorder, day) DO NOTHING",
		   &r->ins);
	if (!ret)
		ret = prep(r,
			   "SELECT day, value, captured_at FROM rec_daily WHERE recorder = ?1"
			   " ORDER BY day DESC LIMIT 1",
			   &r->last);
	if (!ret)
		ret = prep(r,
			   "SELECT day, value, src, captured_at FROM rec_daily"
			   " WHERE recorder = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day",
			   &r->range);
	if (!ret)
		ret = prep(r, "DELETE FROM rec_daily WHERE recorder = ?1", &r->clear);
	if (ret) {
		rec_close(r);
		return ret;
	}
	*out = r;
	return 0;
}

void rec_close(struct recorders *r)
{
	if (!r)
		return;
	sqlite3_finalize(r->ins);
	sqlite3_finalize(r->last);
	sqlite3_finalize(r->range);
	sqlite3_finalize(r->clear);
	free(r);
}

/* --- capture --- */

int64_t rec_due(int64_t last_day, int64_t today)
{
	if (today == REC_NO_DAY)
		return REC_NO_DAY;
	return last_day == REC_NO_DAY || today > last_day ? today : REC_NO_DAY;
}

int rec_last(struct recorders *r, int rec, int64_t *day, double *value, time_t *utc)
{
	int rc, ret = 0;

	if (!rec_ok(r, rec))
		return -EINVAL;
	sqlite3_bind_int(r->last, 1, rec);
	rc = sqlite3_step(r->last);
	if (rc == SQLITE_ROW) {
		if (day)
			*day = sqlite3_column_int64(r->last, 0);
		if (value)
			*value = sqlite3_column_double(r->last, 1);
		if (utc)
			*utc = (time_t)sqlite3_column_int64(r->last, 2);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = sqlite_errno(r->db, rc);
	}
	done(r->last);
	return ret;
}

int rec_pending(struct recorders *r, int rec, int64_t today, int64_t *day)
{
	int64_t last = REC_NO_DAY, due;
	int ret;

	if (!rec_ok(r, rec) || !day_ok(today))
		return -EINVAL;
	if (!r->cfg[rec].enabled)
		return 0;
	ret = rec_last(r, rec, &last, NULL, NULL);
	if (ret < 0)
		return ret;
	due = rec_due(last, today);
	if (due == REC_NO_DAY)
		return 0;
	if (day)
		*day = due;
	return 1;
}

int rec_capture(struct recorders *r, int rec, int64_t local_day, double value, time_t utc)
{
	int rc;

	if (!rec_ok(r, rec) || !day_ok(local_day) || !isfinite(value))
		return -EINVAL;
	if (!r->cfg[rec].enabled)
		return -EPERM;
	sqlite3_bind_int(r->ins, 1, rec);
	sqlite3_bind_int64(r->ins, 2, local_day);
	sqlite3_bind_double(r->ins, 3, value);
	sqlite3_bind_int64(r->ins, 4, src_of(&r->cfg[rec]));
	sqlite3_bind_int64(r->ins, 5, (int64_t)utc);
	rc = sqlite3_step(r->ins);
	done(r->ins);
	if (rc != SQLITE_DONE)
		return sqlite_errno(r->db, rc);
	return sqlite3_changes(r->db) > 0 ? 1 : 0;
}

int rec_clear(struct recorders *r, int rec)
{
	int rc;

	if (!rec_ok(r, rec))
		return -EINVAL;
	sqlite3_bind_int(r->clear, 1, rec);
	rc = sqlite3_step(r->clear);
	done(r->clear);
	return rc == SQLITE_DONE ? 0 : sqlite_errno(r->db, rc);
}

/* --- views --- */

int rec_daily(struct recorders *r, int rec, int64_t from_day, int64_t to_day, struct rec_day *out,
	      size_t cap)
{
	int64_t n, prev_day = REC_NO_DAY, prev_src = 0;
	double prev_val = 0;
	int rc, ret = 0;

	if (!rec_ok(r, rec) || !out || !day_ok(from_day) || !day_ok(to_day) || from_day > to_day)
		return -EINVAL;
	n = to_day - from_day + 1;
	if (n > REC_RANGE_MAX || (uint64_t)n > cap)
		return -ERANGE;
	for (int64_t i = 0; i < n; i++)
		out[i] = (struct rec_day){.day = from_day + i};
	sqlite3_bind_int(r->range, 1, rec);
	sqlite3_bind_int64(r->range, 2, from_day);
	/* The day after the range gives the last day's consumption. */
	sqlite3_bind_int64(r->range, 3, to_day + 1);
	while ((rc = sqlite3_step(r->range)) == SQLITE_ROW) {
		int64_t day = sqlite3_column_int64(r->range, 0);
		double val = sqlite3_column_double(r->range, 1);
		int64_t src = sqlite3_column_int64(r->range, 2);

		if (day <= to_day) {
			struct rec_day *o = &out[day - from_day];

			o->has_value = true;
			o->value = val;
			o->captured = (time_t)sqlite3_column_int64(r->range, 3);
		}
		if (prev_day != REC_NO_DAY && day == prev_day + 1 && src == prev_src &&
		    val >= prev_val) {
			struct rec_day *o = &out[prev_day - from_day];

			o->has_cons = true;
			o->cons = val - prev_val;
		}
		prev_day = day;
		prev_val = val;
		prev_src = src;
	}
	if (rc != SQLITE_DONE)
		ret = sqlite_errno(r->db, rc);
	done(r->range);
	return ret ? ret : (int)n;
}

static int month_days(int y, int m)
{
	int64_t next =
	    m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, (unsigned)m + 1, 1);

	return (int)(next - days_from_civil(y, (unsigned)m, 1));
}

static bool year_ok(int y)
{
	return y >= REC_YEAR_MIN && y <= REC_YEAR_MAX;
}

/* Sum days[0…n-1] into periods: per month when months, else one period. */
static void sum_year(int year, const struct rec_day *days, int n, struct rec_period *out,
		     bool months)
{
	int periods = months ? 12 : 1;

	for (int i = 0; i < periods; i++) {
		out[i] = (struct rec_period){.year = year, .month = months ? i + 1 : 0};
		out[i].days = months ? month_days(year, i + 1) : n;
	}
	for (int i = 0; i < n; i++) {
		int y;
		unsigned m, d;
		struct rec_period *p;

		if (!days[i].has_cons)
			continue;
		civil_from_days(days[i].day, &y, &m, &d);
		p = &out[months ? m - 1 : 0];
		p->cons += days[i].cons;
		p->days_with_data++;
	}
}

static int year_days(struct recorders *r, int rec, int year, struct rec_day days[366])
{
	return rec_daily(r, rec, days_from_civil(year, 1, 1), days_from_civil(year, 12, 31), days,
			 366);
}

int rec_monthly(struct recorders *r, int rec, int year, struct rec_period out[12])
{
	struct rec_day days[366];
	int n;

	if (!rec_ok(r, rec) || !year_ok(year) || !out)
		return -EINVAL;
	n = year_days(r, rec, year, days);
	if (n < 0)
		return n;
	sum_year(year, days, n, out, true);
	return 0;
}

int rec_yearly(struct recorders *r, int rec, int from_year, int to_year, struct rec_period *out,
	       size_t cap)
{
	struct rec_day days[366];

	if (!rec_ok(r, rec) || !year_ok(from_year) || !year_ok(to_year) || from_year > to_year ||
	    !out)
		return -EINVAL;
	if ((size_t)(to_year - from_year + 1) > cap)
		return -ERANGE;
	for (int y = from_year; y <= to_year; y++) {
		int n = year_days(r, rec, y, days);

		if (n < 0)
			return n;
		sum_year(y, days, n, &out[y - from_year], false);
	}
	return to_year - from_year + 1;
}

/* --- CSV --- */

/* Shortest "%.Ng" that reads back (strtod) to exactly v, with '.' whatever the
 * locale's decimal point is. */
static void fmt_num(double v, char *buf, size_t len)
{
	const char *dp;
	char *p;

	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	dp = localeconv()->decimal_point;
	if (dp && strcmp(dp, ".") != 0 && *dp && (p = strstr(buf, dp)) != NULL) {
		size_t dl = strlen(dp);

		*p = '.';
		memmove(p + 1, p + dl, strlen(p + dl) + 1);
	}
}

int rec_csv(struct recorders *r, int rec, int64_t from_day, int64_t to_day, FILE *f)
{
	struct rec_day *days;
	int n;

	if (!f || !rec_ok(r, rec) || !day_ok(from_day) || !day_ok(to_day) || from_day > to_day)
		return -EINVAL;
	if (to_day - from_day + 1 > REC_RANGE_MAX)
		return -ERANGE;
	days = calloc((size_t)(to_day - from_day + 1), sizeof(*days));
	if (!days)
		return -ENOMEM;
	n = rec_daily(r, rec, from_day, to_day, days, (size_t)(to_day - from_day + 1));
	if (n < 0) {
		free(days);
		return n;
	}
	fputs("date,value,consumption\n", f);
	for (int i = 0; i < n; i++) {
		char date[16], v[40] = "", c[40] = "";

		fmt_date(days[i].day, date, sizeof(date));
		if (days[i].has_value)
			fmt_num(days[i].value, v, sizeof(v));
		if (days[i].has_cons)
			fmt_num(days[i].cons, c, sizeof(c));
		fprintf(f, "%s,%s,%s\n", date, v, c);
	}
	free(days);
	if (fflush(f) != 0 || ferror(f))
		return -EIO;
	return 0;
}

/* --- JSON --- */

static json_t *num_or_null(bool has, double v)
{
	return has ? json_real(v) : json_null();
}

static const char *name_of(const struct recorders *r, int rec, char *buf, size_t len)
{
	if (r->cfg[rec].name[0])
		return r->cfg[rec].name;
	snprintf(buf, len, "Recorder %d", rec + 1);
	return buf;
}

json_t *rec_list_json(struct recorders *r)
{
	json_t *arr;

	if (!r)
		return NULL;
	arr = json_array();
	if (!arr)
		return NULL;
	for (int i = 0; i < REC_COUNT; i++) {
		const struct rec_cfg *c = &r->cfg[i];
		bool dev = c->source == REC_SRC_DEVICE;
		int64_t day;
		double val;
		time_t utc;
		char nbuf[24], date[16];
		json_t *last = NULL, *o;
		int ret = rec_last(r, i, &day, &val, &utc);

		if (ret < 0) {
			json_decref(arr);
			return NULL;
		}
		if (ret) {
			fmt_date(day, date, sizeof(date));
			last =
			    json_pack("{s:s, s:I, s:f, s:I}", "date", date, "day", (json_int_t)day,
				      "value", val, "captured_at", (json_int_t)utc);
		}
		o = json_pack("{s:i, s:s, s:b, s:s, s:o, s:o, s:o, s:o*}", "recorder", i + 1,
			      "name", name_of(r, i, nbuf, sizeof(nbuf)), "enabled", c->enabled,
			      "source", dev ? "device" : "pulse", "slot",
			      dev ? json_integer(c->slot) : json_null(), "device_index",
			      dev ? json_integer(dev_ha_index(c->slot)) : json_null(), "counter",
			      dev ? json_integer(c->counter) : json_null(), "last",
			      last ? last : json_null());
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *daily_json(struct recorders *r, int rec, int64_t from, int64_t to, char *err,
			  size_t errlen)
{
	struct rec_day *days;
	json_t *data;
	int n;

	if (!day_ok(from) || !day_ok(to) || from > to) {
		err_set(err, errlen, "daily range must be local days %lld..%lld with from <= to",
			(long long)day_min(), (long long)day_max());
		return NULL;
	}
	if (to - from + 1 > REC_RANGE_MAX) {
		err_set(err, errlen, "daily range longer than %d days", REC_RANGE_MAX);
		return NULL;
	}
	days = calloc((size_t)(to - from + 1), sizeof(*days));
	if (!days) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	n = rec_daily(r, rec, from, to, days, (size_t)(to - from + 1));
	if (n < 0) {
		err_set(err, errlen, "reading recorder %d: %s", rec, strerror(-n));
		free(days);
		return NULL;
	}
	data = json_array();
	for (int i = 0; data && i < n; i++) {
		char date[16];

		fmt_date(days[i].day, date, sizeof(date));
		if (json_array_append_new(data,
					  json_pack("{s:s, s:I, s:o, s:o}", "date", date, "day",
						    (json_int_t)days[i].day, "value",
						    num_or_null(days[i].has_value, days[i].value),
						    "consumption",
						    num_or_null(days[i].has_cons, days[i].cons)))) {
			json_decref(data);
			data = NULL;
		}
	}
	free(days);
	if (!data)
		err_set(err, errlen, "out of memory");
	return data;
}

static json_t *period_json(const struct rec_period *p)
{
	json_t *o;

	if (p->month) {
		char month[16];

		snprintf(month, sizeof(month), "%04d-%02d", p->year, p->month);
		o = json_pack("{s:s}", "month", month);
	} else {
		o = json_pack("{s:i}", "year", p->year);
	}
	if (o &&
	    (json_object_set_new(o, "consumption", num_or_null(p->days_with_data > 0, p->cons)) ||
	     json_object_set_new(o, "days_with_data", json_integer(p->days_with_data)) ||
	     json_object_set_new(o, "days", json_integer(p->days)))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static json_t *periods_json(struct recorders *r, int rec, bool monthly, int64_t from, int64_t to,
			    char *err, size_t errlen)
{
	struct rec_period p[12];
	json_t *data;

	if (from < REC_YEAR_MIN || to > REC_YEAR_MAX || from > to) {
		err_set(err, errlen, "range must be years %d..%d with from <= to", REC_YEAR_MIN,
			REC_YEAR_MAX);
		return NULL;
	}
	if (to - from + 1 > MAX_YEARS) {
		err_set(err, errlen, "range longer than %d years", MAX_YEARS);
		return NULL;
	}
	data = json_array();
	for (int y = (int)from; data && y <= (int)to; y++) {
		int ret = monthly ? rec_monthly(r, rec, y, p) : rec_yearly(r, rec, y, y, p, 1);
		int n = monthly ? 12 : 1;

		if (ret < 0) {
			err_set(err, errlen, "reading recorder %d: %s", rec, strerror(-ret));
			json_decref(data);
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (json_array_append_new(data, period_json(&p[i]))) {
				json_decref(data);
				data = NULL;
				break;
			}
		}
	}
	if (!data)
		err_set(err, errlen, "out of memory");
	return data;
}

json_t *rec_view_json(struct recorders *r, int rec, const char *scope, int64_t from, int64_t to,
		      char *err, size_t errlen)
{
	json_t *data, *o;
	char nbuf[24];

	if (!rec_ok(r, rec)) {
		err_set(err, errlen, "recorder %d out of range (0..%d)", rec, REC_COUNT - 1);
		return NULL;
	}
	if (!scope) {
		err_set(err, errlen, "scope must be daily, monthly or yearly");
		return NULL;
	}
	if (strcmp(scope, "daily") == 0) {
		data = daily_json(r, rec, from, to, err, errlen);
	} else if (strcmp(scope, "monthly") == 0 || strcmp(scope, "yearly") == 0) {
		data = periods_json(r, rec, scope[0] == 'm', from, to, err, errlen);
	} else {
		err_set(err, errlen, "scope must be daily, monthly or yearly");
		return NULL;
	}
	if (!data)
		return NULL;
	o = json_pack("{s:i, s:s, s:s, s:I, s:I, s:o}", "recorder", rec + 1, "name",
		      name_of(r, rec, nbuf, sizeof(nbuf)), "scope", scope, "from", (json_int_t)from,
		      "to", (json_int_t)to, "data", data);
	if (!o)
		err_set(err, errlen, "out of memory");
	return o;
}
