/* The tariff calendar: tariffs.json parsing and validation, the active tariff
 * from local time. See include/sg/tariffs.h and docs/tariffs.md. */
#include "sg/tariffs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (1024 * 1024)
#define HOURS 24
#define DAY_TYPES 3

struct tariff {
	char name[TARIFF_NAME_MAX + 1];
	double price;
};

struct season {
	char name[TARIFF_NAME_MAX + 1];
	int mon, mday;
	unsigned char sched[DAY_TYPES][HOURS]; /* tariff index per day type and hour */
};

struct holiday {
	char name[TARIFF_NAME_MAX + 1];
	int year; /* 0: annual */
	int mon, mday;
	int duration; /* days */
};

struct tariff_cal {
	int nt, ns, nh;
	struct tariff t[TARIFFS_MAX];
	struct season s[TARIFF_SEASONS_MAX];
	struct holiday h[TARIFF_HOLIDAYS_MAX];
};

static const char *const day_key[DAY_TYPES] = {"workday", "weekend", "holiday"};

/* ---- parsing ---- */

struct pctx {
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct pctx *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err && p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* Refuse members of obj not in allowed (NULL-terminated). */
static int only_members(struct pctx *p, const json_t *obj, const char *path,
			const char *const *allowed)
{
	const char *key;
	json_t *v;
	char list[128];
	size_t used = 0;

	json_object_foreach((json_t *)obj, key, v)
	{
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(key, *a) == 0)
				ok = true;
		if (ok)
			continue;
		list[0] = '\0';
		for (const char *const *a = allowed; *a && used < sizeof(list); a++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 a == allowed ? "" : ", ", *a);
		return fail(p, "%s%s%.40s: unknown member (allowed: %s)", path, *path ? "." : "",
			    key, list);
	}
	return 0;
}

/* Member key of obj: NULL and an error if required and missing. */
static json_t *member(struct pctx *p, const json_t *obj, const char *path, const char *key,
		      bool required, int *rc)
{
	json_t *v = json_object_get(obj, key);

	if (!v && required)
		*rc = fail(p, "%s%s%s: required member missing", path, *path ? "." : "", key);
	return v;
}

static int want(struct pctx *p, const json_t *v, json_type t, const char *path, const char *what)
{
	if (json_typeof(v) == t || (t == JSON_REAL && json_is_number(v)))
		return 0;
	return fail(p, "%s: expected %s, got %s", path, what, type_name(v));
}

static int get_name(struct pctx *p, const json_t *v, const char *path, char *out)
{
	size_t n;
	int rc = want(p, v, JSON_STRING, path, "a string");

	if (rc)
		return rc;
	n = json_string_length(v);
	if (n < 1 || n > TARIFF_NAME_MAX)
		return fail(p, "%s: 1…%d bytes of UTF-8, got %zu bytes", path, TARIFF_NAME_MAX, n);
	if (memchr(json_string_value(v), '\0', n))
		return fail(p, "%s: must not contain NUL", path);
	memcpy(out, json_string_value(v), n);
	out[n] = '\0';
	return 0;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "MM-DD" (with_year false) or "YYYY-MM-DD"; fields parsed, not yet checked. */
static bool split_date(const char *s, size_t n, bool with_year, int *y, int *m, int *d)
{
	if (with_year) {
		if (n != 10 || !digits(s, 4) || s[4] != '-')
			return false;
		*y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
		s += 5;
		n -= 5;
	}
	if (n != 5 || !digits(s, 2) || s[2] != '-' || !digits(s + 3, 2))
		return false;
	*m = (s[0] - '0') * 10 + (s[1] - '0');
	*d = (s[3] - '0') * 10 + (s[4] - '0');
	return true;
}

static int parse_tariffs(struct pctx *p, const json_t *arr, struct tariff_cal *c)
{
	static const char *const allowed[] = {"name", "price", NULL};
	char path[32], sub[64];
	size_t i;
	json_t *t;
	int rc;

	if ((rc = want(p, arr, JSON_ARRAY, "tariffs", "an array")))
		return rc;
	if (json_array_size(arr) < 1)
		return fail(p, "tariffs: at least one tariff is required");
	if (json_array_size(arr) > TARIFFS_MAX)
		return fail(p, "tariffs: at most %d tariffs, got %zu", TARIFFS_MAX,
			    json_array_size(arr));
	json_array_foreach(arr, i, t)
	{
		struct tariff *o = &c->t[i];
		json_t *v;
		double price;

		snprintf(path, sizeof(path), "tariffs[%zu]", i);
		if ((rc = want(p, t, JSON_OBJECT, path, "an object")) ||
		    (rc = only_members(p, t, path, allowed)))
			return rc;
		rc = 0;
		if (!(v = member(p, t, path, "name", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.name", path);
		if ((rc = get_name(p, v, sub, o->name)))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->t[j].name, o->name) == 0)
				return fail(p,
					    "%s: \"%s\" is also the name of tariffs[%zu] (tariff "
					    "names must differ)",
					    sub, o->name, j);
		if (!(v = member(p, t, path, "price", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.price", path);
		if ((rc = want(p, v, JSON_REAL, sub, "a number")))
			return rc;
		price = json_number_value(v);
		if (!isfinite(price) || price < 0)
			return fail(p, "%s: a finite number ≥ 0 (price per kWh), got %g", sub,
				    price);
		o->price = price;
		c->nt++;
	}
	return 0;
}

static int parse_schedule(struct pctx *p, const json_t *v, const char *path, struct season *s,
			  int nt)
{
	static const char *const allowed[] = {"workday", "weekend", "holiday", NULL};
	char sub[96];
	int rc;

	if ((rc = want(p, v, JSON_OBJECT, path, "an object")) ||
	    (rc = only_members(p, v, path, allowed)))
		return rc;
	for (int d = 0; d < DAY_TYPES; d++) {
		json_t *arr, *e;
		size_t h;

		rc = 0;
		if (!(arr = member(p, v, path, day_key[d], true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.%s", path, day_key[d]);
		if ((rc = want(p, arr, JSON_ARRAY, sub,
			       "an array of 24 tariff indexes (hours 0…23)")))
			return rc;
		json_array_foreach(arr, h, e)
		{
			json_int_t ti;

			if (h >= HOURS)
				return fail(p,
					    "%s[%zu]: hour index 0…23: a day has 24 entries, got "
					    "%zu",
					    sub, h, json_array_size(arr));
			if (!json_is_integer(e))
				return fail(p, "%s[%zu]: expected a tariff index (integer), got %s",
					    sub, h, type_name(e));
			ti = json_integer_value(e);
			if (ti < 0 || ti >= nt)
				return fail(p,
					    "%s[%zu]: tariff index 0…%d (there %s %d tariff%s), "
					    "got %lld",
					    sub, h, nt - 1, nt == 1 ? "is" : "are", nt,
					    nt == 1 ? "" : "s", (long long)ti);
			s->sched[d][h] = (unsigned char)ti;
		}
		if (json_array_size(arr) != HOURS)
			return fail(p, "%s: 24 entries (hours 0…23) are required, got %zu", sub,
				    json_array_size(arr));
	}
	return 0;
}

static int parse_seasons(struct pctx *p, const json_t *arr, struct tariff_cal *c)
{
	static const char *const allowed[] = {"name", "start", "schedule", NULL};
	char path[32], sub[64];
	size_t i;
	json_t *s;
	int rc;

	if ((rc = want(p, arr, JSON_ARRAY, "seasons", "an array")))
		return rc;
	if (json_array_size(arr) < 1)
		return fail(p, "seasons: at least one season is required");
	if (json_array_size(arr) > TARIFF_SEASONS_MAX)
		return fail(p, "seasons: at most %d seasons, got %zu", TARIFF_SEASONS_MAX,
			    json_array_size(arr));
	json_array_foreach(arr, i, s)
	{
		struct season *o = &c->s[i];
		json_t *v;
		int y = 0, m, d;

		snprintf(path, sizeof(path), "seasons[%zu]", i);
		if ((rc = want(p, s, JSON_OBJECT, path, "an object")) ||
		    (rc = only_members(p, s, path, allowed)))
			return rc;
		rc = 0;
		if (!(v = member(p, s, path, "name", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.name", path);
		if ((rc = get_name(p, v, sub, o->name)))
			return rc;
		if (!(v = member(p, s, path, "start", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.start", path);
		if ((rc = want(p, v, JSON_STRING, sub, "a string \"MM-DD\"")))
			return rc;
		if (!split_date(json_string_value(v), json_string_length(v), false, &y, &m, &d))
			return fail(
			    p, "%s: a date \"MM-DD\" (e.g. \"04-01\" for 1 April), got \"%.16s\"",
			    sub, json_string_value(v));
		if (m == 2 && d == 29)
			return fail(p, "%s: 02-29 cannot start a season (not every year has it)",
				    sub);
		if (d < 1 || d > tz_days_in_month(2001, m))
			return fail(
			    p, "%s: not a valid date: \"%s\" (month 01…12, day valid in the month)",
			    sub, json_string_value(v));
		o->mon = m;
		o->mday = d;
		for (size_t j = 0; j < i; j++)
			if (c->s[j].mon == m && c->s[j].mday == d)
				return fail(p,
					    "%s: %02d-%02d is also the start of seasons[%zu] "
					    "(season start dates must differ)",
					    sub, m, d, j);
		if (!(v = member(p, s, path, "schedule", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.schedule", path);
		if ((rc = parse_schedule(p, v, sub, o, c->nt)))
			return rc;
		c->ns++;
	}
	return 0;
}

static int parse_holidays(struct pctx *p, const json_t *arr, struct tariff_cal *c)
{
	static const char *const allowed[] = {"name", "type", "date", "duration", NULL};
	char path[32], sub[64];
	size_t i;
	json_t *h;
	int rc;

	if ((rc = want(p, arr, JSON_ARRAY, "holidays", "an array")))
		return rc;
	if (json_array_size(arr) > TARIFF_HOLIDAYS_MAX)
		return fail(p, "holidays: at most %d holidays, got %zu", TARIFF_HOLIDAYS_MAX,
			    json_array_size(arr));
	json_array_foreach(arr, i, h)
	{
		struct holiday *o = &c->h[i];
		const char *type;
		json_t *v;
		bool annual;
		int y = 0, m, d;

		snprintf(path, sizeof(path), "holidays[%zu]", i);
		if ((rc = want(p, h, JSON_OBJECT, path, "an object")) ||
		    (rc = only_members(p, h, path, allowed)))
			return rc;
		rc = 0;
		if (!(v = member(p, h, path, "name", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.name", path);
		if ((rc = get_name(p, v, sub, o->name)))
			return rc;

		if (!(v = member(p, h, path, "type", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.type", path);
		type = json_string_value(v);
		if (!type || (strcmp(type, "annual") != 0 && strcmp(type, "one-time") != 0))
			return fail(p, "%s: \"annual\" or \"one-time\"", sub);
		annual = strcmp(type, "annual") == 0;

		if (!(v = member(p, h, path, "date", true, &rc)))
			return rc;
		snprintf(sub, sizeof(sub), "%s.date", path);
		if ((rc = want(p, v, JSON_STRING, sub, "a string")))
			return rc;
		if (!split_date(json_string_value(v), json_string_length(v), !annual, &y, &m, &d))
			return fail(p, "%s: %s, got \"%.16s\"", sub,
				    annual ? "an annual holiday's date is \"MM-DD\""
					   : "a one-time holiday's date is \"YYYY-MM-DD\"",
				    json_string_value(v));
		if (!annual && (y < 1970 || y > 9999))
			return fail(p, "%s: year 1970…9999, got %d", sub, y);
		/* An annual 02-29 is valid: it happens in leap years only. */
		if (d < 1 || d > tz_days_in_month(annual ? 2000 : y, m))
			return fail(p, "%s: not a valid date: \"%s\"", sub, json_string_value(v));
		o->year = annual ? 0 : y;
		o->mon = m;
		o->mday = d;

		o->duration = 1;
		if ((v = member(p, h, path, "duration", false, &rc))) {
			snprintf(sub, sizeof(sub), "%s.duration", path);
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > TARIFF_DURATION_MAX)
				return fail(p, "%s: a whole number of days 1…%d", sub,
					    TARIFF_DURATION_MAX);
			o->duration = (int)json_integer_value(v);
		}
		c->nh++;
	}
	return 0;
}

static int parse_root(struct pctx *p, const json_t *root, struct tariff_cal *c)
{
	static const char *const allowed[] = {"version", "tariffs", "seasons", "holidays", NULL};
	json_t *v;
	int rc;

	if (!json_is_object(root))
		return fail(p, "(top level): expected an object, got %s", type_name(root));
	if ((rc = only_members(p, root, "", allowed)))
		return rc;
	if ((v = json_object_get(root, "version")) &&
	    (!json_is_integer(v) || json_integer_value(v) != 1))
		return fail(p, "version: 1 is the only version known");
	rc = 0;
	if (!(v = member(p, root, "", "tariffs", true, &rc)))
		return rc;
	if ((rc = parse_tariffs(p, v, c)))
		return rc;
	if (!(v = member(p, root, "", "seasons", true, &rc)))
		return rc;
	if ((rc = parse_seasons(p, v, c)))
		return rc;
	if ((v = json_object_get(root, "holidays")) && (rc = parse_holidays(p, v, c)))
		return rc;
	return 0;
}

int tariffs_parse(const char *text, size_t len, struct tariff_cal **out, char *err, size_t errlen)
{
	struct pctx p = {err, errlen};
	json_error_t je;
	struct tariff_cal *c;
	json_t *root;
	int rc;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return fail(&p, "not valid JSON: line %d, column %d: %s", je.line, je.column,
			    je.text);
	c = calloc(1, sizeof(*c));
	if (!c) {
		json_decref(root);
		return -ENOMEM;
	}
	rc = parse_root(&p, root, c);
	json_decref(root);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int tariffs_load_file(const char *path, struct tariff_cal **out, char *err, size_t errlen)
{
	struct pctx p = {err, errlen};
	const char *base = strrchr(path, '/');
	char *buf = NULL, msg[256];
	size_t used = 0;
	int fd, rc;

	base = base ? base + 1 : path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		fail(&p, "%s: %s", base, strerror(-rc));
		return rc;
	}
	buf = malloc(FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + used, FILE_MAX + 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			fail(&p, "%s: %s", base, strerror(-rc));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > FILE_MAX) {
			rc = fail(&p, "%s: larger than %d bytes", base, FILE_MAX);
			goto out;
		}
	}
	rc = tariffs_parse(buf, used, out, msg, sizeof(msg));
	if (rc == -EINVAL)
		fail(&p, "%s: %s", base, msg);
out:
	free(buf);
	close(fd);
	return rc;
}

void tariffs_free(struct tariff_cal *c)
{
	free(c);
}

/* ---- output ---- */

json_t *tariffs_to_json(const struct tariff_cal *c)
{
	json_t *root, *ta, *sa, *ha;
	char date[16];
	int bad = 0;

	if (!c)
		return NULL;
	root = json_object();
	ta = json_array();
	sa = json_array();
	ha = json_array();
	if (!root || !ta || !sa || !ha) {
		json_decref(root);
		json_decref(ta);
		json_decref(sa);
		json_decref(ha);
		return NULL;
	}
	bad |= json_object_set_new(root, "version", json_integer(1));
	bad |= json_object_set_new(root, "tariffs", ta);
	bad |= json_object_set_new(root, "seasons", sa);
	bad |= json_object_set_new(root, "holidays", ha);
	for (int i = 0; i < c->nt; i++) {
		json_t *o = json_object();

		bad |= json_array_append_new(ta, o);
		bad |= json_object_set_new(o, "name", json_string(c->t[i].name));
		bad |= json_object_set_new(o, "price", json_real(c->t[i].price));
	}
	for (int i = 0; i < c->ns; i++) {
		const struct season *s = &c->s[i];
		json_t *o = json_object(), *sched = json_object();

		bad |= json_array_append_new(sa, o);
		bad |= json_object_set_new(o, "name", json_string(s->name));
		snprintf(date, sizeof(date), "%02d-%02d", s->mon, s->mday);
		bad |= json_object_set_new(o, "start", json_string(date));
		bad |= json_object_set_new(o, "schedule", sched);
		for (int d = 0; d < DAY_TYPES; d++) {
			json_t *hours = json_array();

			bad |= json_object_set_new(sched, day_key[d], hours);
			for (int h = 0; h < HOURS; h++)
				bad |= json_array_append_new(hours, json_integer(s->sched[d][h]));
		}
	}
	for (int i = 0; i < c->nh; i++) {
		const struct holiday *h = &c->h[i];
		json_t *o = json_object();

		bad |= json_array_append_new(ha, o);
		bad |= json_object_set_new(o, "name", json_string(h->name));
		bad |= json_object_set_new(o, "type", json_string(h->year ? "one-time" : "annual"));
		if (h->year)
			snprintf(date, sizeof(date), "%04d-%02d-%02d", h->year, h->mon, h->mday);
		else
			snprintf(date, sizeof(date), "%02d-%02d", h->mon, h->mday);
		bad |= json_object_set_new(o, "date", json_string(date));
		bad |= json_object_set_new(o, "duration", json_integer(h->duration));
	}
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

bool tariffs_equal(const struct tariff_cal *a, const struct tariff_cal *b)
{
	if (!a || !b)
		return a == b;
	if (a->nt != b->nt || a->ns != b->ns || a->nh != b->nh)
		return false;
	for (int i = 0; i < a->nt; i++)
		if (strcmp(a->t[i].name, b->t[i].name) != 0 || a->t[i].price != b->t[i].price)
			return false;
	for (int i = 0; i < a->ns; i++) {
		const struct season *x = &a->s[i], *y = &b->s[i];

		if (strcmp(x->name, y->name) != 0 || x->mon != y->mon || x->mday != y->mday ||
		    memcmp(x->sched, y->sched, sizeof(x->sched)) != 0)
			return false;
	}
	for (int i = 0; i < a->nh; i++) {
		const struct holiday *x = &a->h[i], *y = &b->h[i];

		if (strcmp(x->name, y->name) != 0 || x->year != y->year || x->mon != y->mon ||
		    x->mday != y->mday || x->duration != y->duration)
			return false;
	}
	return true;
}

/* ---- accessors ---- */

int tariffs_count(const struct tariff_cal *c)
{
	return c ? c->nt : 0;
}

const char *tariffs_name(const struct tariff_cal *c, int i)
{
	return c && i >= 0 && i < c->nt ? c->t[i].name : NULL;
}

double tariffs_price(const struct tariff_cal *c, int i)
{
	return c && i >= 0 && i < c->nt ? c->t[i].price : NAN;
}

int tariffs_season_count(const struct tariff_cal *c)
{
	return c ? c->ns : 0;
}

const char *tariffs_season_name(const struct tariff_cal *c, int i)
{
	return c && i >= 0 && i < c->ns ? c->s[i].name : NULL;
}

/* ---- the calendar ---- */

int tariffs_season_on(const struct tariff_cal *c, int mon, int mday)
{
	int key = mon * 100 + mday, best = -1, last = -1;

	if (!c)
		return -1;
	for (int i = 0; i < c->ns; i++) {
		int k = c->s[i].mon * 100 + c->s[i].mday;

		if (k <= key && (best < 0 || k > c->s[best].mon * 100 + c->s[best].mday))
			best = i;
		if (last < 0 || k > c->s[last].mon * 100 + c->s[last].mday)
			last = i;
	}
	return best >= 0 ? best : last;
}

static bool in_holiday(const struct holiday *h, int64_t year, int64_t day)
{
	if (h->year) {
		int64_t s = days_from_civil(h->year, h->mon, h->mday);

		return day >= s && day < s + h->duration;
	}
	/* A duration of at most 31 days reaches at most into the next year. */
	for (int64_t y = year - 1; y <= year; y++) {
		int64_t s;

		if (h->mon == 2 && h->mday == 29 && !tz_is_leap(y))
			continue;
		s = days_from_civil(y, h->mon, h->mday);
		if (day >= s && day < s + h->duration)
			return true;
	}
	return false;
}

bool tariffs_is_holiday(const struct tariff_cal *c, int64_t year, int mon, int mday)
{
	int64_t day = days_from_civil(year, mon, mday);

	if (!c)
		return false;
	for (int i = 0; i < c->nh; i++)
		if (in_holiday(&c->h[i], year, day))
			return true;
	return false;
}

enum tariff_day tariffs_day_type(const struct tariff_cal *c, int64_t year, int mon, int mday)
{
	int wd;

	if (tariffs_is_holiday(c, year, mon, mday))
		return TARIFF_HOLIDAY;
	wd = tz_weekday(year, mon, mday);
	return wd == 0 || wd == 6 ? TARIFF_WEEKEND : TARIFF_WORKDAY;
}

int tariffs_active(const struct tariff_cal *c, const struct sg_tz *z, time_t utc)
{
	struct tm tm;
	int64_t year;
	int s;

	if (!c)
		return -1;
	tz_to_local(z, utc, &tm);
	year = (int64_t)tm.tm_year + 1900;
	s = tariffs_season_on(c, tm.tm_mon + 1, tm.tm_mday);
	return c->s[s].sched[tariffs_day_type(c, year, tm.tm_mon + 1, tm.tm_mday)][tm.tm_hour];
}

time_t tariffs_next_change(const struct tariff_cal *c, const struct sg_tz *z, time_t utc)
{
	int64_t l, next;
	time_t t;

	if (!c)
		return (time_t)-1;
	l = (int64_t)utc + tz_offset_s(z, utc);
	next = (l - (l % 3600 + 3600) % 3600) + 3600; /* next local hour boundary */
	t = (time_t)(utc + (next - l));
	if (z->dst_eu) {
		struct tm u;
		int64_t y;
		time_t sw[3];

		gmtime_r(&utc, &u);
		y = (int64_t)u.tm_year + 1900;
		sw[0] = tz_eu_dst_start(y);
		sw[1] = tz_eu_dst_end(y);
		sw[2] = tz_eu_dst_start(y + 1);
		for (int i = 0; i < 3; i++)
			if (sw[i] > utc && sw[i] < t)
				t = sw[i];
	}
	return t;
}
