/* The history, events and clock commands of the operations table: every
 * schema refusal names the member, and the rules hold whatever the front-end
 * (no history → unavailable, recorder / equation numbers that name nothing →
 * not found, a refused calendar → bad request, CSV as {"csv": …}), over a
 * fake history that records what it was asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/dev.h"
#include "sg/hist.h"
#include "sg/ops.h"

#include "../../src/ops/ops_int.h"

/* ---- fake history: remembers the last call ---- */

static struct {
	char call[48];
	int slot, rec, n;
	int64_t from, to;
	char view[16], text[256];
	int fail; /* the next call's error (< 0) */
} seen;

static int take_fail(void)
{
	int f = seen.fail;

	seen.fail = 0;
	return f;
}

static void called(const char *what)
{
	snprintf(seen.call, sizeof(seen.call), "%s", what);
}

int hist_range(struct hist *h, const char *from, const char *to, int64_t *f, int64_t *t)
{
	(void)h;
	if ((from && !strcmp(from, "long")) || (to && !strcmp(to, "long")))
		return -ERANGE;
	if ((from && !strcmp(from, "bad")) || (to && !strcmp(to, "bad")))
		return -EINVAL;
	*f = from ? 100 : 1;
	*t = to ? 200 : 2;
	return 0;
}

json_t *hist_load_profile_json(struct hist *h, int slot, int64_t from, int64_t to, char *err,
			       size_t errlen)
{
	(void)h, (void)err, (void)errlen;
	called("lp_json");
	seen.slot = slot, seen.from = from, seen.to = to;
	return json_pack("{s:i}", "slot", slot);
}

int hist_load_profile_csv(struct hist *h, int slot, int64_t from, int64_t to, FILE *f)
{
	(void)h, (void)from, (void)to;
	called("lp_csv");
	seen.slot = slot;
	fputs("start_utc,x\n", f);
	return take_fail();
}

int hist_load_profile_clear(struct hist *h, int slot)
{
	(void)h;
	called("lp_clear");
	seen.slot = slot;
	return take_fail();
}

json_t *hist_recorders_json(struct hist *h)
{
	(void)h;
	called("rec_list");
	return json_array();
}

json_t *hist_recorder_json(struct hist *h, int rec, const char *view, const char *from,
			   const char *to, char *err, size_t errlen)
{
	(void)h, (void)from, (void)to;
	called("rec_json");
	seen.rec = rec;
	snprintf(seen.view, sizeof(seen.view), "%s", view ? view : "");
	if (view && !strcmp(view, "weekly")) {
		snprintf(err, errlen, "view 'weekly': expected daily, monthly or yearly");
		return NULL;
	}
	return json_pack("{s:i}", "recorder", rec);
}

int hist_recorder_csv(struct hist *h, int rec, const char *from, const char *to, FILE *f, char *err,
		      size_t errlen)
{
	(void)h, (void)from, (void)to;
	called("rec_csv");
	seen.rec = rec;
	fputs("date,value\n", f);
	snprintf(err, errlen, "from: bad date");
	return take_fail();
}

int hist_recorder_clear(struct hist *h, int rec)
{
	(void)h;
	called("rec_clear");
	seen.rec = rec;
	return take_fail();
}

json_t *hist_calc_json(struct hist *h, int n, int64_t from, int64_t to, char *err, size_t errlen)
{
	(void)h, (void)from, (void)to;
	called("calc_json");
	seen.n = n;
	if (n == 2) {
		snprintf(err, errlen, "calculate 2: no equation set (calc2_expr)");
		return NULL;
	}
	return json_pack("{s:i}", "equation", n);
}

int hist_calc_csv(struct hist *h, int n, int64_t from, int64_t to, FILE *f, char *err,
		  size_t errlen)
{
	(void)h, (void)from, (void)to;
	called("calc_csv");
	seen.n = n;
	if (n == 2) {
		snprintf(err, errlen, "calculate 2: no equation set (calc2_expr)");
		return -ENOENT;
	}
	fputs("start_utc,start_local,ai_Wh\n", f);
	return 0;
}

json_t *hist_tariffs_json(struct hist *h)
{
	(void)h;
	return json_pack("{s:s}", "calendar", seen.text);
}

int hist_tariffs_set(struct hist *h, const char *text, size_t len, char *err, size_t errlen)
{
	(void)h;
	called("tariffs_set");
	if (strstr(text, "bogus")) {
		snprintf(err, errlen, "unknown member 'bogus'");
		return -EINVAL;
	}
	snprintf(seen.text, sizeof(seen.text), "%.*s", (int)len, text);
	return take_fail();
}

int hist_active_tariff(struct hist *h)
{
	(void)h;
	return -1;
}

/* ---- running commands ---- */

struct done {
	int calls;
	enum ops_status st;
	char msg[OPS_MSG_MAX];
	json_t *res;
};

static void on_done(enum ops_status st, const char *msg, json_t *res, void *arg)
{
	struct done *d = arg;

	d->calls++;
	d->st = st;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
	json_decref(d->res);
	d->res = res;
}

static int fake_hist;
static struct conf cf = {.serial_number = "SN1"};
static struct ops *ops_with, *ops_without;

static int setup(void **state)
{
	struct ops_env with = {.conf = &cf, .hist = (struct hist *)&fake_hist};
	struct ops_env without = {.conf = &cf};

	(void)state;
	if (ops_init(&ops_with, &with) < 0 || ops_init(&ops_without, &without) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ops_fini(ops_with);
	ops_fini(ops_without);
	return 0;
}

/* Run text over o; the completion in d (its result stays in d->res). */
static enum ops_status run_in(struct ops *o, const char *text, struct done *d)
{
	json_t *cmd = json_loads(text, 0, NULL);

	assert_non_null(cmd);
	d->calls = 0;
	memset(seen.call, 0, sizeof(seen.call));
	ops_run(o, cmd, OPS_FROM_TEST, on_done, d);
	json_decref(cmd);
	assert_int_equal(d->calls, 1);
	return d->st;
}

static struct done last;

static enum ops_status run(const char *text)
{
	return run_in(ops_with, text, &last);
}

static void fails(const char *text, enum ops_status st, const char *want)
{
	enum ops_status got = run(text);

	if (got != st || !strstr(last.msg, want))
		fail_msg("%s: %s '%s', want %s '%s'", text, ops_status_name(got), last.msg,
			 ops_status_name(st), want);
}

/* Refused by the schema: the history is not asked. */
static void refused(const char *text, const char *want)
{
	fails(text, OPS_BAD_REQUEST, want);
	if (seen.call[0])
		fail_msg("%s: a refused command reached the history (%s)", text, seen.call);
}

static void test_schema_refusals(void **state)
{
	(void)state;
	refused("{\"cmd\":\"load_profile\"}", "index: missing");
	refused("{\"cmd\":\"load_profile\",\"index\":17}", "index: expected");
	refused("{\"cmd\":\"load_profile\",\"index\":-1}", "index: expected");
	refused("{\"cmd\":\"load_profile\",\"index\":\"0\"}", "index: expected");
	refused("{\"cmd\":\"load_profile\",\"index\":0,\"from\":5}", "from: expected");
	refused("{\"cmd\":\"load_profile\",\"index\":0,\"to\":\"2026-06-11-and-more\"}",
		"to: expected");
	refused("{\"cmd\":\"load_profile\",\"index\":0,\"csv\":1}", "csv: expected");
	refused("{\"cmd\":\"load_profile\",\"index\":0,\"view\":\"daily\"}",
		"unknown member 'view'");
	refused("{\"cmd\":\"load_profile_clear\",\"index\":0,\"from\":\"today\"}",
		"unknown member 'from'");
	refused("{\"cmd\":\"load_profile_clear\"}", "index: missing");
	refused("{\"cmd\":\"recorder_list\",\"recorder\":1}",
		"unknown member 'recorder' (recorder_list takes no arguments)");
	refused("{\"cmd\":\"recorder_show\"}", "recorder: missing");
	refused("{\"cmd\":\"recorder_show\",\"recorder\":1.5}", "recorder: expected");
	refused("{\"cmd\":\"recorder_show\",\"recorder\":1,\"view\":3}", "view: expected");
	refused("{\"cmd\":\"recorder_clear\",\"recorder\":1,\"csv\":true}", "unknown member 'csv'");
	refused("{\"cmd\":\"recorder_clear\"}", "recorder: missing");
	refused("{\"cmd\":\"calculate\"}", "equation: missing");
	refused("{\"cmd\":\"calculate\",\"equation\":\"1\"}", "equation: expected");
	refused("{\"cmd\":\"calculate\",\"equation\":1,\"view\":\"daily\"}",
		"unknown member 'view'");
	refused("{\"cmd\":\"get_tariffs\",\"tariffs\":{}}", "unknown member 'tariffs'");
	refused("{\"cmd\":\"set_tariffs\"}", "tariffs: missing");
	refused("{\"cmd\":\"set_tariffs\",\"tariffs\":[1]}",
		"tariffs: expected the tariffs.json object");
	refused("{\"cmd\":\"set_tariffs\",\"tariffs\":\"{}\"}", "tariffs: expected");
	refused("{\"cmd\":\"status\",\"verbose\":true}", "unknown member 'verbose'");
	refused("{\"cmd\":\"events\",\"n\":0}", "n: expected a count of events");
	refused("{\"cmd\":\"events\",\"n\":10001}", "n: expected");
	refused("{\"cmd\":\"events\",\"n\":\"5\"}", "n: expected");
	refused("{\"cmd\":\"events\",\"limit\":5}", "unknown member 'limit'");
	refused("{\"cmd\":\"clock\",\"wall_ms\":0}", "wall_ms: expected");
	refused("{\"cmd\":\"clock\",\"wall_ms\":1,\"rate\":10001}", "rate: expected");
	refused("{\"cmd\":\"clock\",\"wall_ms\":1,\"rate\":0}", "rate: expected");
	refused("{\"cmd\":\"clock\",\"mode\":\"lockstep\",\"wall_ms\":1,\"step_ms\":86400001}",
		"step_ms: expected");
	refused("{\"cmd\":\"clock\",\"mode\":\"lockstep\",\"wall_ms\":1,\"until_ms\":-1}",
		"until_ms: expected");
	refused("{\"cmd\":\"clock\",\"mode\":\"\"}", "mode: expected");
	refused("{\"cmd\":\"clock\",\"speed\":2}", "unknown member 'speed'");
}

/* Without history.db every history command is unavailable (REST's 503). */
static void test_no_history(void **state)
{
	static const char *const cmds[] = {
	    "{\"cmd\":\"load_profile\",\"index\":0}",
	    "{\"cmd\":\"load_profile_clear\",\"index\":0}",
	    "{\"cmd\":\"recorder_list\"}",
	    "{\"cmd\":\"recorder_show\",\"recorder\":1}",
	    "{\"cmd\":\"recorder_clear\",\"recorder\":1}",
	    "{\"cmd\":\"calculate\",\"equation\":1}",
	    "{\"cmd\":\"get_tariffs\"}",
	    "{\"cmd\":\"set_tariffs\",\"tariffs\":{}}",
	};
	struct done d = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		assert_int_equal(run_in(ops_without, cmds[i], &d), OPS_UNAVAILABLE);
		assert_non_null(strstr(d.msg, "history is not available"));
		assert_string_equal(seen.call, "");
	}
}

static void test_load_profile(void **state)
{
	(void)state;
	assert_int_equal(run("{\"cmd\":\"load_profile\",\"index\":3}"), OPS_OK);
	assert_string_equal(seen.call, "lp_json");
	assert_int_equal(seen.slot, dev_slot_of_index(3));
	assert_int_equal(seen.from, 1);
	assert_int_equal(run("{\"cmd\":\"load_profile\",\"index\":0,\"from\":\"x\",\"to\":\"y\"}"),
			 OPS_OK);
	assert_int_equal(seen.from, 100);
	assert_int_equal(seen.to, 200);
	assert_int_equal(run("{\"cmd\":\"load_profile\",\"index\":16,\"csv\":true}"), OPS_OK);
	assert_string_equal(seen.call, "lp_csv");
	assert_int_equal(seen.slot, dev_slot_of_index(16));
	assert_string_equal(json_string_value(json_object_get(last.res, "csv")), "start_utc,x\n");
	assert_int_equal(run("{\"cmd\":\"load_profile\",\"index\":0,\"csv\":false}"), OPS_OK);
	assert_string_equal(seen.call, "lp_json");
	fails("{\"cmd\":\"load_profile\",\"index\":0,\"from\":\"bad\"}", OPS_BAD_REQUEST,
	      "from/to: expected last24h");
	fails("{\"cmd\":\"load_profile\",\"index\":0,\"to\":\"long\"}", OPS_BAD_REQUEST,
	      "at most 366 days");
	seen.fail = -EIO;
	fails("{\"cmd\":\"load_profile\",\"index\":0,\"csv\":true}", OPS_INTERNAL, "load profile");
	assert_int_equal(run("{\"cmd\":\"load_profile_clear\",\"index\":2}"), OPS_OK);
	assert_string_equal(seen.call, "lp_clear");
	assert_int_equal(seen.slot, dev_slot_of_index(2));
	assert_int_equal(json_integer_value(json_object_get(last.res, "index")), 2);
	seen.fail = -EIO;
	fails("{\"cmd\":\"load_profile_clear\",\"index\":2}", OPS_INTERNAL, "clear:");
}

static void test_recorders(void **state)
{
	(void)state;
	assert_int_equal(run("{\"cmd\":\"recorder_list\"}"), OPS_OK);
	assert_true(json_is_array(json_object_get(last.res, "recorders")));
	fails("{\"cmd\":\"recorder_show\",\"recorder\":0}", OPS_NOT_FOUND, "numbered 1…8");
	fails("{\"cmd\":\"recorder_show\",\"recorder\":9}", OPS_NOT_FOUND, "recorder 9");
	fails("{\"cmd\":\"recorder_clear\",\"recorder\":9}", OPS_NOT_FOUND, "recorder 9");
	assert_string_equal(seen.call, "");
	assert_int_equal(run("{\"cmd\":\"recorder_show\",\"recorder\":1,\"view\":\"monthly\"}"),
			 OPS_OK);
	assert_int_equal(seen.rec, 0);
	assert_string_equal(seen.view, "monthly");
	assert_int_equal(run("{\"cmd\":\"recorder_show\",\"recorder\":8}"), OPS_OK);
	assert_int_equal(seen.rec, 7);
	fails("{\"cmd\":\"recorder_show\",\"recorder\":1,\"view\":\"weekly\"}", OPS_BAD_REQUEST,
	      "view 'weekly'");
	assert_int_equal(run("{\"cmd\":\"recorder_show\",\"recorder\":2,\"csv\":true}"), OPS_OK);
	assert_string_equal(seen.call, "rec_csv");
	assert_string_equal(json_string_value(json_object_get(last.res, "csv")), "date,value\n");
	assert_int_equal(run("{\"cmd\":\"recorder_show\",\"recorder\":2,\"csv\":true,"
			     "\"from\":\"2026-06-01\",\"to\":\"2026-06-11\"}"),
			 OPS_OK);
	fails("{\"cmd\":\"recorder_show\",\"recorder\":2,\"csv\":true,\"from\":\"2026-1-1\"}",
	      OPS_BAD_REQUEST, "expected a date YYYY-MM-DD");
	seen.fail = -EINVAL;
	fails("{\"cmd\":\"recorder_show\",\"recorder\":2,\"csv\":true}", OPS_BAD_REQUEST,
	      "from: bad date");
	seen.fail = -EIO;
	fails("{\"cmd\":\"recorder_show\",\"recorder\":2,\"csv\":true}", OPS_INTERNAL,
	      "recorder 2");
	assert_int_equal(run("{\"cmd\":\"recorder_clear\",\"recorder\":3}"), OPS_OK);
	assert_int_equal(seen.rec, 2);
	assert_int_equal(json_integer_value(json_object_get(last.res, "recorder")), 3);
	seen.fail = -EIO;
	fails("{\"cmd\":\"recorder_clear\",\"recorder\":3}", OPS_INTERNAL, "clear:");
}

static void test_calculate(void **state)
{
	(void)state;
	fails("{\"cmd\":\"calculate\",\"equation\":0}", OPS_NOT_FOUND, "numbered 1…4");
	fails("{\"cmd\":\"calculate\",\"equation\":5}", OPS_NOT_FOUND, "equation 5");
	assert_string_equal(seen.call, "");
	assert_int_equal(run("{\"cmd\":\"calculate\",\"equation\":4}"), OPS_OK);
	assert_int_equal(seen.n, 4);
	fails("{\"cmd\":\"calculate\",\"equation\":2}", OPS_NOT_FOUND, "no equation set");
	fails("{\"cmd\":\"calculate\",\"equation\":2,\"csv\":true}", OPS_NOT_FOUND,
	      "no equation set");
	fails("{\"cmd\":\"calculate\",\"equation\":1,\"from\":\"bad\"}", OPS_BAD_REQUEST,
	      "from/to");
	assert_int_equal(run("{\"cmd\":\"calculate\",\"equation\":1,\"csv\":true}"), OPS_OK);
	assert_string_equal(json_string_value(json_object_get(last.res, "csv")),
			    "start_utc,start_local,ai_Wh\n");
}

static void test_tariffs(void **state)
{
	(void)state;
	seen.text[0] = 0;
	assert_int_equal(run("{\"cmd\":\"set_tariffs\",\"tariffs\":{\"tariffs\":[1]}}"), OPS_OK);
	assert_string_equal(seen.text, "{\"tariffs\":[1]}");
	assert_string_equal(json_string_value(json_object_get(last.res, "calendar")),
			    "{\"tariffs\":[1]}");
	fails("{\"cmd\":\"set_tariffs\",\"tariffs\":{\"bogus\":1}}", OPS_BAD_REQUEST,
	      "tariffs: unknown member 'bogus'");
	assert_string_equal(seen.text, "{\"tariffs\":[1]}");
	seen.fail = -EIO;
	fails("{\"cmd\":\"set_tariffs\",\"tariffs\":{\"tariffs\":[2]}}", OPS_INTERNAL, "tariffs:");
	assert_int_equal(run("{\"cmd\":\"get_tariffs\"}"), OPS_OK);
	assert_non_null(json_object_get(last.res, "calendar"));
}

static void test_events_and_clock(void **state)
{
	(void)state;
	/* no event log: an empty list */
	assert_int_equal(run("{\"cmd\":\"events\",\"n\":5}"), OPS_OK);
	assert_int_equal(json_array_size(json_object_get(last.res, "events")), 0);
	unsetenv("SGD_TEST_HOOKS");
	fails("{\"cmd\":\"clock\",\"wall_ms\":1781128200000}", OPS_FORBIDDEN,
	      "test hook, disabled");
	setenv("SGD_TEST_HOOKS", "1", 1);
	assert_int_equal(run("{\"cmd\":\"clock\",\"wall_ms\":1781128200000,\"rate\":1}"), OPS_OK);
	assert_true(json_integer_value(json_object_get(last.res, "wall_ms")) >= 1781128200000LL);
	assert_int_equal(json_integer_value(json_object_get(last.res, "rate")), 1);
	assert_int_equal(run("{\"cmd\":\"clock\",\"mode\":\"lockstep\",\"wall_ms\":1781128200000,"
			     "\"step_ms\":0}"),
			 OPS_OK);
	assert_int_equal(json_integer_value(json_object_get(last.res, "wall_ms")), 1781128200000LL);
	assert_int_equal(run("{\"cmd\":\"clock\",\"mode\":\"hold\"}"), OPS_OK);
	assert_int_equal(json_integer_value(json_object_get(last.res, "step_ms")), 0);
	fails("{\"cmd\":\"clock\",\"mode\":\"hold\",\"wall_ms\":5}", OPS_BAD_REQUEST,
	      "clock: expected");
	fails("{\"cmd\":\"clock\",\"mode\":\"lockstep\"}", OPS_BAD_REQUEST, "clock: expected");
	fails("{\"cmd\":\"clock\",\"mode\":\"lockstep\",\"wall_ms\":5,\"rate\":2}", OPS_BAD_REQUEST,
	      "clock: expected");
	fails("{\"cmd\":\"clock\",\"mode\":\"warp\",\"wall_ms\":5}", OPS_BAD_REQUEST,
	      "clock: expected");
	fails("{\"cmd\":\"clock\"}", OPS_BAD_REQUEST, "clock: expected");
	fails("{\"cmd\":\"clock\",\"wall_ms\":5,\"step_ms\":1}", OPS_BAD_REQUEST,
	      "clock: expected");
	unsetenv("SGD_TEST_HOOKS");
	json_decref(last.res);
	last.res = NULL;
}

/* sgctl's reading document: readable while not responding, flagged. */
static void test_ctl_reading(void **state)
{
	static const struct desc none;
	struct dev d = {.slot = dev_slot_of_index(2), .health = DEV_DISABLED};
	char msg[OPS_MSG_MAX];
	json_t *doc;

	(void)state;
	snprintf(d.ifname, sizeof(d.ifname), "RS485 2");
	assert_int_equal(ops_ctl_reading(&d, false, &doc, msg, sizeof(msg)), OPS_NOT_FOUND);
	assert_null(doc);
	assert_string_equal(msg, "RS485 2: no device configured");
	d.health = DEV_NOT_RESPONDING;
	snprintf(d.last_error, sizeof(d.last_error), "timeout");
	assert_int_equal(ops_ctl_reading(&d, false, &doc, msg, sizeof(msg)), OPS_UNAVAILABLE);
	assert_non_null(strstr(msg, "not identified yet"));
	assert_non_null(strstr(msg, ": timeout"));
	d.d = &none;
	d.meas_ms = 1000;
	d.ctr_ms = 0;
	assert_int_equal(ops_ctl_reading(&d, false, &doc, msg, sizeof(msg)), OPS_OK);
	assert_int_equal(json_integer_value(json_object_get(doc, "index")), 2);
	assert_string_equal(json_string_value(json_object_get(doc, "status")),
			    dev_health_name(DEV_NOT_RESPONDING));
	assert_int_equal(json_integer_value(json_object_get(doc, "read_at_ms")), 1000);
	assert_true(json_integer_value(json_object_get(doc, "age_ms")) >= 0);
	assert_true(json_is_object(json_object_get(doc, "measurements")));
	json_decref(doc);
	assert_int_equal(ops_ctl_reading(&d, true, &doc, msg, sizeof(msg)), OPS_OK);
	assert_true(json_is_null(json_object_get(doc, "read_at_ms")));
	assert_int_equal(json_integer_value(json_object_get(doc, "age_ms")), -1);
	assert_non_null(json_object_get(doc, "counters"));
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schema_refusals),  cmocka_unit_test(test_no_history),
	    cmocka_unit_test(test_load_profile),     cmocka_unit_test(test_recorders),
	    cmocka_unit_test(test_calculate),	     cmocka_unit_test(test_tariffs),
	    cmocka_unit_test(test_events_and_clock), cmocka_unit_test(test_ctl_reading),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
