/* History routes: load profile (JSON or CSV), recorders (views, CSV, clear)
 * and the tariff calendar with the tariff counters. */
#include "rest_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/hist.h"
#include "sg/legacy.h"
#include "sg/recorder.h"

static struct hist *hist_of(struct http_req *r)
{
	struct hist *h = http_req_app(r)->hist;

	if (!h)
		http_reply_error(r, 503,
				 "history is not available (history.db could not be opened)");
	return h;
}

static bool want_csv(struct http_req *r)
{
	const char *f = http_req_query(r, "format");

	return f && !strcmp(f, "csv");
}

static bool format_ok(struct http_req *r)
{
	const char *f = http_req_query(r, "format");
	char clip[REST_CLIP_LEN];

	if (!f || !strcmp(f, "csv") || !strcmp(f, "json"))
		return true;
	http_reply_error(r, 400, "format '%s': expected json or csv", rest_clip(f, clip));
	return false;
}

/* Run fill() into memory and reply with it as text/csv. */
static void reply_csv(struct http_req *r, int (*fill)(FILE *f, void *arg), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int e;

	if (!f) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	e = fill(f, arg);
	fclose(f);
	if (e < 0)
		http_reply_error(r, 500, "%s", strerror(-e));
	else
		http_reply_data(r, 200, "text/csv; charset=utf-8", buf, len);
	free(buf);
}

/* ---- load profile ---- */

static int slot_of(struct http_req *r, const char *param)
{
	long i;

	if (!rest_index_ok(r, param))
		return -1;
	i = strtol(param, NULL, 10);
	return dev_slot_of_index((int)i);
}

struct lp_csv {
	struct hist *h;
	int slot;
	int64_t from, to;
};

static int lp_csv_fill(FILE *f, void *arg)
{
	struct lp_csv *c = arg;

	return hist_load_profile_csv(c->h, c->slot, c->from, c->to, f);
}

void rest_get_load_profile(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);
	const char *from = http_req_query(r, "from"), *to = http_req_query(r, "to");
	char err[160], clip[REST_CLIP_LEN];
	struct lp_csv c;
	int slot, e;
	json_t *doc;

	if (!h || !format_ok(r) || (slot = slot_of(r, param)) < 0)
		return;
	e = hist_range(h, from, to, &c.from, &c.to);
	if (e < 0) {
		http_reply_error(r, 400,
				 e == -ERANGE ? "from/to: at most 366 days, from not after to"
					      : "from '%s': expected last24h, today, yesterday or "
						"YYYY-MM-DD (to: YYYY-MM-DD)",
				 rest_clip(from ? from : "", clip));
		return;
	}
	c.h = h;
	c.slot = slot;
	if (want_csv(r)) {
		reply_csv(r, lp_csv_fill, &c);
		return;
	}
	doc = hist_load_profile_json(h, slot, c.from, c.to, err, sizeof(err));
	if (!doc)
		http_reply_error(r, 500, "%s", err);
	else
		http_reply_json(r, 200, doc);
}

/* {"action": "clear"} */
static bool clear_body(struct http_req *r)
{
	json_t *b = http_req_body(r), *a = json_object_get(b, "action");

	if (json_object_size(b) != 1 || !json_is_string(a) ||
	    strcmp(json_string_value(a), "clear")) {
		http_reply_error(r, 400, "body: expected {\"action\": \"clear\"}");
		return false;
	}
	return true;
}

void rest_post_load_profile(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);
	int slot, e;

	if (!h || (slot = slot_of(r, param)) < 0 || !clear_body(r))
		return;
	e = hist_load_profile_clear(h, slot);
	if (e < 0)
		http_reply_error(r, 500, "clear: %s", strerror(-e));
	else
		http_reply_json(r, 200,
				json_pack("{s:s, s:i}", "cleared", "load_profile", "index",
					  dev_ha_index(slot)));
}

/* ---- recorders: /api/recorder/{1…8} ---- */

static int rec_of(struct http_req *r, const char *param)
{
	char clip[REST_CLIP_LEN];
	long i;

	if (legacy_parse_index(param, LONG_MAX, &i) == -EINVAL) {
		http_reply_error(r, 400, "recorder index '%s': expected a number",
				 rest_clip(param, clip));
		return -1;
	}
	if (i < 1 || i > REC_COUNT) {
		http_reply_error(r, 404, "recorder %ld: recorders are numbered 1…%d", i, REC_COUNT);
		return -1;
	}
	return (int)i - 1;
}

void rest_get_recorders(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);

	(void)param;
	if (h)
		http_reply_json(r, 200, json_pack("{s:o}", "recorders", hist_recorders_json(h)));
}

struct rec_csv {
	struct hist *h;
	int rec;
	const char *from, *to;
	char err[160];
};

static int rec_csv_fill(FILE *f, void *arg)
{
	struct rec_csv *c = arg;

	return hist_recorder_csv(c->h, c->rec, c->from, c->to, f, c->err, sizeof(c->err));
}

void rest_get_recorder(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);
	const char *from = http_req_query(r, "from"), *to = http_req_query(r, "to");
	char err[160];
	json_t *doc;
	int rec;

	if (!h || (rec = rec_of(r, param)) < 0 || !format_ok(r))
		return;
	if (want_csv(r)) {
		struct rec_csv c = {.h = h, .rec = rec, .from = from, .to = to};

		/* a bad range is the client's mistake: 400 before the CSV starts */
		if ((from && *from && strlen(from) != 10) || (to && *to && strlen(to) != 10)) {
			http_reply_error(r, 400, "from/to: expected a date YYYY-MM-DD");
			return;
		}
		reply_csv(r, rec_csv_fill, &c);
		return;
	}
	doc = hist_recorder_json(h, rec, http_req_query(r, "view"), from, to, err, sizeof(err));
	if (!doc)
		http_reply_error(r, 400, "%s", err);
	else
		http_reply_json(r, 200, doc);
}

void rest_post_recorder(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);
	int rec, e;

	if (!h || (rec = rec_of(r, param)) < 0 || !clear_body(r))
		return;
	e = hist_recorder_clear(h, rec);
	if (e < 0)
		http_reply_error(r, 500, "clear: %s", strerror(-e));
	else
		http_reply_json(
		    r, 200, json_pack("{s:s, s:i}", "cleared", "recorder", "recorder", rec + 1));
}

/* ---- tariffs ---- */

void rest_get_tariffs(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);

	(void)param;
	if (h)
		http_reply_json(r, 200, hist_tariffs_json(h));
}

void rest_post_tariffs(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);
	char err[256], *text;
	int e;

	(void)param;
	if (!h)
		return;
	text = json_dumps(http_req_body(r), JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!text) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	e = hist_tariffs_set(h, text, strlen(text), err, sizeof(err));
	free(text);
	if (e == -EINVAL)
		http_reply_error(r, 400, "tariffs: %s", err);
	else if (e < 0)
		http_reply_error(r, 500, "%s", err);
	else
		http_reply_json(r, 200, hist_tariffs_json(h));
}

/* ---- calculate equations: /api/calculate/{1…4} ---- */

struct calc_csv {
	struct hist *h;
	int n;
	int64_t from, to;
	char err[160];
};

static int calc_csv_fill(FILE *f, void *arg)
{
	struct calc_csv *c = arg;

	return hist_calc_csv(c->h, c->n, c->from, c->to, f, c->err, sizeof(c->err));
}

void rest_get_calculate(struct http_req *r, const char *param)
{
	struct hist *h = hist_of(r);
	const char *from = http_req_query(r, "from"), *to = http_req_query(r, "to");
	char err[160], clip[REST_CLIP_LEN];
	struct calc_csv c = {.h = h};
	long n;
	json_t *doc;

	if (!h || !format_ok(r))
		return;
	if (legacy_parse_index(param, LONG_MAX, &n) == -EINVAL) {
		http_reply_error(r, 400, "equation '%s': expected a number",
				 rest_clip(param, clip));
		return;
	}
	if (n < 1 || n > 4) {
		http_reply_error(r, 404, "equation %ld: equations are numbered 1…4", n);
		return;
	}
	if (hist_range(h, from, to, &c.from, &c.to) < 0) {
		http_reply_error(r, 400,
				 "from/to: expected last24h, today, yesterday or YYYY-MM-DD "
				 "(at most 366 days)");
		return;
	}
	c.n = (int)n;
	if (want_csv(r)) {
		/* an empty equation is a 404 before any CSV is written */
		doc = hist_calc_json(h, c.n, c.from, c.from + 1, err, sizeof(err));
		if (!doc) {
			http_reply_error(r, 404, "%s", err);
			return;
		}
		json_decref(doc);
		reply_csv(r, calc_csv_fill, &c);
		return;
	}
	doc = hist_calc_json(h, c.n, c.from, c.to, err, sizeof(err));
	if (!doc)
		http_reply_error(r, 404, "%s", err);
	else
		http_reply_json(r, 200, doc);
}
