/* History commands: load profile, recorders, calculate equations and the
 * tariff calendar. A CSV answer is {"csv": "…"}: REST sends its text as
 * text/csv, sgctl prints it as it is. Recorder and equation numbers are
 * checked here, not in the schema: a number that names nothing is
 * OPS_NOT_FOUND (REST's 404), not a malformed command. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_int.h"
#include "sg/dev.h"
#include "sg/hist.h"
#include "sg/recorder.h"

#define CALC_COUNT 4

/* The history, or NULL after failing c. */
static struct hist *need_hist(struct ops_call *c)
{
	struct hist *h = ops_call_env(c)->hist;

	if (!h)
		ops_fail(c, OPS_UNAVAILABLE,
			 "history is not available (history.db could not be opened)");
	return h;
}

static const char *str_arg(json_t *args, const char *name)
{
	return json_string_value(json_object_get(args, name));
}

static bool csv_arg(json_t *args)
{
	return json_is_true(json_object_get(args, "csv"));
}

/* What fill() writes, as {"csv": text}; -errno from fill or memory. */
static int csv_doc(int (*fill)(FILE *f, void *arg), void *arg, json_t **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *s;
	int e;

	if (!f)
		return -ENOMEM;
	e = fill(f, arg);
	fclose(f);
	s = e < 0 ? NULL : json_stringn(buf, len);
	free(buf);
	if (e < 0)
		return e;
	*out = s ? json_pack("{s:o}", "csv", s) : NULL;
	return *out ? 0 : -ENOMEM;
}

/* from/to of the range commands as hist_range wants them; false after
 * failing c. */
static bool range_arg(struct ops_call *c, struct hist *h, json_t *args, int64_t *from, int64_t *to)
{
	const char *f = str_arg(args, "from"), *t = str_arg(args, "to");
	char clip[36], clip2[36];
	int e = hist_range(h, f, t, from, to);

	if (e == -ERANGE)
		ops_fail(c, OPS_BAD_REQUEST, "from/to: at most 366 days, from not after to");
	else if (e < 0)
		ops_fail(c, OPS_BAD_REQUEST,
			 "from/to: expected last24h, today, yesterday or YYYY-MM-DD "
			 "(got from '%s', to '%s')",
			 ops_clip(f, clip, sizeof(clip)), ops_clip(t, clip2, sizeof(clip2)));
	return e == 0;
}

#define ARG_FROM                                                                                   \
	{                                                                                          \
		"from", OPS_T_STR, 0, 0, 16, "last24h, today, yesterday or YYYY-MM-DD"             \
	}
#define ARG_TO                                                                                     \
	{                                                                                          \
		"to", OPS_T_STR, 0, 0, 16, "a date YYYY-MM-DD"                                     \
	}
#define ARG_CSV                                                                                    \
	{                                                                                          \
		"csv", OPS_T_BOOL, 0, 0, 0, NULL                                                   \
	}
#define ARG_INDEX                                                                                  \
	{                                                                                          \
		"index", OPS_T_INT, OPS_REQUIRED, 0, 16,                                           \
		    "a device index 0 (Left IR) … 16 (RS485 16)"                                 \
	}

/* Finish with doc, or when the history built none, with st and its reason. */
static void reply_or(struct ops_call *c, json_t *doc, enum ops_status st, const char *err)
{
	if (doc)
		ops_reply(c, doc);
	else
		ops_fail(c, st, "%s", err);
}

/* One history query: what the CSV writers below are asked. */
struct query {
	struct hist *h;
	int which;		   /* slot, recorder (0-based) or equation */
	int64_t from, to;	   /* a range from hist_range */
	const char *from_s, *to_s; /* the recorders' own range texts */
	char err[160];
};

/* ---- load profile ---- */

static int lp_csv_fill(FILE *f, void *arg)
{
	struct query *q = arg;

	return hist_load_profile_csv(q->h, q->which, q->from, q->to, f);
}

/* {"index": 0…16, "from", "to", "csv"}: the 15-minute intervals with daily totals. */
static void run_load_profile(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);
	struct query l = {.h = h};
	json_t *doc = NULL;
	int e;

	if (!h)
		return;
	l.which = dev_slot_of_index((int)json_integer_value(json_object_get(args, "index")));
	if (!range_arg(c, h, args, &l.from, &l.to))
		return;
	if (csv_arg(args)) {
		e = csv_doc(lp_csv_fill, &l, &doc);
		if (e < 0)
			ops_fail(c, OPS_INTERNAL, "load profile: %s", strerror(-e));
		else
			ops_reply(c, doc);
		return;
	}
	reply_or(c, hist_load_profile_json(h, l.which, l.from, l.to, l.err, sizeof(l.err)),
		 OPS_INTERNAL, l.err);
}

/* {"index": 0…16}: forget that device's load profile. */
static void run_load_profile_clear(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);
	int idx = (int)json_integer_value(json_object_get(args, "index"));
	int e;

	if (!h)
		return;
	e = hist_load_profile_clear(h, dev_slot_of_index(idx));
	if (e < 0)
		ops_fail(c, OPS_INTERNAL, "clear: %s", strerror(-e));
	else
		ops_reply_doc(c, json_pack("{s:s, s:i}", "cleared", "load_profile", "index", idx));
}

/* ---- recorders ---- */

/* The recorder's 0-based number, or -1 after failing c. */
static int rec_arg(struct ops_call *c, json_t *args)
{
	json_int_t n = json_integer_value(json_object_get(args, "recorder"));

	if (n >= 1 && n <= REC_COUNT)
		return (int)n - 1;
	ops_fail(c, OPS_NOT_FOUND, "recorder %lld: recorders are numbered 1…%d", (long long)n,
		 REC_COUNT);
	return -1;
}

static void run_recorder_list(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);

	(void)args;
	if (h)
		ops_reply_doc(c, json_pack("{s:o}", "recorders", hist_recorders_json(h)));
}

static int rec_csv_fill(FILE *f, void *arg)
{
	struct query *q = arg;

	return hist_recorder_csv(q->h, q->which, q->from_s, q->to_s, f, q->err, sizeof(q->err));
}

/* {"recorder": 1…8, "view": daily|monthly|yearly, "from", "to", "csv"}. */
static void run_recorder_show(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);
	struct query r = {.h = h, .from_s = str_arg(args, "from"), .to_s = str_arg(args, "to")};
	json_t *doc = NULL;
	int e;

	if (!h || (r.which = rec_arg(c, args)) < 0)
		return;
	if (csv_arg(args)) {
		/* a bad range is the client's mistake, refused before the CSV starts */
		if ((r.from_s && *r.from_s && strlen(r.from_s) != 10) ||
		    (r.to_s && *r.to_s && strlen(r.to_s) != 10)) {
			ops_fail(c, OPS_BAD_REQUEST, "from/to: expected a date YYYY-MM-DD");
			return;
		}
		e = csv_doc(rec_csv_fill, &r, &doc);
		if (e == -EINVAL)
			ops_fail(c, OPS_BAD_REQUEST, "%s", r.err);
		else if (e < 0)
			ops_fail(c, OPS_INTERNAL, "recorder %d: %s", r.which + 1, strerror(-e));
		else
			ops_reply(c, doc);
		return;
	}
	reply_or(c,
		 hist_recorder_json(h, r.which, str_arg(args, "view"), r.from_s, r.to_s, r.err,
				    sizeof(r.err)),
		 OPS_BAD_REQUEST, r.err);
}

/* {"recorder": 1…8}: forget its readings. */
static void run_recorder_clear(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);
	int rec, e;

	if (!h || (rec = rec_arg(c, args)) < 0)
		return;
	e = hist_recorder_clear(h, rec);
	if (e < 0)
		ops_fail(c, OPS_INTERNAL, "clear: %s", strerror(-e));
	else
		ops_reply_doc(c,
			      json_pack("{s:s, s:i}", "cleared", "recorder", "recorder", rec + 1));
}

/* ---- calculate ---- */

static int calc_csv_fill(FILE *f, void *arg)
{
	struct query *q = arg;

	return hist_calc_csv(q->h, q->which, q->from, q->to, f, q->err, sizeof(q->err));
}

/* {"equation": 1…4, "from", "to", "csv"}: equation N of the settings over
 * the load profiles; an equation not set is OPS_NOT_FOUND. */
static void run_calculate(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);
	json_int_t n = json_integer_value(json_object_get(args, "equation"));
	struct query k = {.h = h, .which = (int)n};
	json_t *doc;
	int e;

	if (!h)
		return;
	if (n < 1 || n > CALC_COUNT) {
		ops_fail(c, OPS_NOT_FOUND, "equation %lld: equations are numbered 1…%d",
			 (long long)n, CALC_COUNT);
		return;
	}
	if (!range_arg(c, h, args, &k.from, &k.to))
		return;
	if (csv_arg(args)) {
		e = csv_doc(calc_csv_fill, &k, &doc);
		if (e == -ENOMEM)
			ops_fail(c, OPS_INTERNAL, "%s", strerror(ENOMEM));
		else if (e < 0)
			ops_fail(c, OPS_NOT_FOUND, "%s", k.err);
		else
			ops_reply(c, doc);
		return;
	}
	reply_or(c, hist_calc_json(h, k.which, k.from, k.to, k.err, sizeof(k.err)), OPS_NOT_FOUND,
		 k.err);
}

/* ---- tariffs ---- */

static void run_get_tariffs(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);

	(void)args;
	if (h)
		ops_reply_doc(c, hist_tariffs_json(h));
}

/* {"tariffs": {…the tariffs.json document…}}: validated as a whole; an
 * invalid calendar changes nothing. */
static void run_set_tariffs(struct ops_call *c, json_t *args)
{
	struct hist *h = need_hist(c);
	char err[256], *text;
	int e;

	if (!h)
		return;
	text = json_dumps(json_object_get(args, "tariffs"), JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!text) {
		ops_fail(c, OPS_INTERNAL, "out of memory");
		return;
	}
	e = hist_tariffs_set(h, text, strlen(text), err, sizeof(err));
	free(text);
	if (e == -EINVAL)
		ops_fail(c, OPS_BAD_REQUEST, "tariffs: %s", err);
	else if (e < 0)
		ops_fail(c, OPS_INTERNAL, "tariffs: %s", err);
	else
		run_get_tariffs(c, args);
}

static const struct ops_arg lp_args[] = {ARG_INDEX, ARG_FROM, ARG_TO, ARG_CSV, {NULL}};
static const struct ops_arg lp_clear_args[] = {ARG_INDEX, {NULL}};
static const struct ops_arg rec_show_args[] = {
    {"recorder", OPS_T_INT, OPS_REQUIRED, LONG_MIN, LONG_MAX, "a recorder number 1…8"},
    {"view", OPS_T_STR, 0, 0, 16, "daily, monthly or yearly"},
    ARG_FROM,
    ARG_TO,
    ARG_CSV,
    {NULL}};
static const struct ops_arg rec_clear_args[] = {
    {"recorder", OPS_T_INT, OPS_REQUIRED, LONG_MIN, LONG_MAX, "a recorder number 1…8"}, {NULL}};
static const struct ops_arg calc_args[] = {
    {"equation", OPS_T_INT, OPS_REQUIRED, LONG_MIN, LONG_MAX, "an equation number 1…4"},
    ARG_FROM,
    ARG_TO,
    ARG_CSV,
    {NULL}};
static const struct ops_arg set_tariffs_args[] = {
    {"tariffs", OPS_T_OBJECT, OPS_REQUIRED, 0, 0, "the tariffs.json object (docs/tariffs.md)"},
    {NULL}};

const struct ops_def ops_hist_defs[] = {
    {"load_profile", lp_args, 0, run_load_profile},
    {"load_profile_clear", lp_clear_args, 0, run_load_profile_clear},
    {"recorder_list", NULL, 0, run_recorder_list},
    {"recorder_show", rec_show_args, 0, run_recorder_show},
    {"recorder_clear", rec_clear_args, 0, run_recorder_clear},
    {"calculate", calc_args, 0, run_calculate},
    {"get_tariffs", NULL, 0, run_get_tariffs},
    {"set_tariffs", set_tariffs_args, 0, run_set_tariffs},
    {NULL},
};
