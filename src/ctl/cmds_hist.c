/* sgctl history commands: load-profile, recorder, tariffs. CSV answers come
 * back as {"csv": "…"}, which sgctl prints as it is. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "sg/app.h"
#include "sg/clock.h"
#include "sg/hist.h"
#include "sg/recorder.h"

/* --from X --to Y --view V --csv, in any order; -EINVAL on anything else. */
struct hopts {
	const char *from, *to, *view;
	bool csv;
};

static int parse_hopts(int argc, const char *const *argv, int first, struct hopts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = first; i < argc; i++) {
		const char **dst = NULL;

		if (!strcmp(argv[i], "--csv")) {
			o->csv = true;
			continue;
		}
		if (!strcmp(argv[i], "--from"))
			dst = &o->from;
		else if (!strcmp(argv[i], "--to"))
			dst = &o->to;
		else if (!strcmp(argv[i], "--view"))
			dst = &o->view;
		if (!dst || i + 1 >= argc)
			return -EINVAL;
		*dst = argv[++i];
	}
	return 0;
}

static struct hist *need_hist(struct app *a, struct ctl_client *c)
{
	if (!a->hist)
		ctl_reply_err(c, "history is not available (history.db could not be opened)");
	return a->hist;
}

static json_t *csv_doc(char *buf, size_t len)
{
	json_t *s = json_stringn(buf, len);

	free(buf);
	return s ? json_pack("{s:o}", "csv", s) : NULL;
}

static int index_arg(const char *s, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v >= lo && v <= hi ? (int)v : -1;
}

void ctl_cmd_load_profile(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	struct hist *h = need_hist(a, c);
	struct hopts o;
	int64_t from, to;
	int idx, slot;
	char err[160];

	if (!h)
		return;
	idx = index_arg(argv[1], 0, 16);
	slot = idx < 0 ? -1 : dev_slot_of_index(idx);
	if (slot < 0 || parse_hopts(argc, argv, 2, &o) < 0 || o.view) {
		ctl_reply_err(c,
			      "usage: load-profile N (0…16) [--from DATE|today|yesterday|last24h] "
			      "[--to DATE] [--csv]");
		return;
	}
	if (hist_range(h, o.from, o.to, &from, &to) < 0) {
		ctl_reply_err(c, "--from/--to: expected last24h, today, yesterday or YYYY-MM-DD "
				 "(at most 366 days)");
		return;
	}
	if (o.csv) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		int e = f ? hist_load_profile_csv(h, slot, from, to, f) : -ENOMEM;

		if (f)
			fclose(f);
		if (e < 0) {
			free(buf);
			ctl_reply_err(c, "load profile: %s", strerror(-e));
			return;
		}
		ctl_reply_ok(c, csv_doc(buf, len));
		return;
	}
	json_t *doc = hist_load_profile_json(h, slot, from, to, err, sizeof(err));

	if (!doc)
		ctl_reply_err(c, "%s", err);
	else
		ctl_reply_ok(c, doc);
}

void ctl_cmd_recorder(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	struct hist *h = need_hist(a, c);
	struct hopts o;
	char err[160];
	int rec = -1;

	if (!h)
		return;
	if (!strcmp(argv[1], "list") && argc == 2) {
		ctl_reply_ok(c, json_pack("{s:o}", "recorders", hist_recorders_json(h)));
		return;
	}
	if (argc >= 3)
		rec = index_arg(argv[2], 1, REC_COUNT) - 1;
	if (rec < 0 || (strcmp(argv[1], "show") && strcmp(argv[1], "clear")) ||
	    parse_hopts(argc, argv, 3, &o) < 0 || (!strcmp(argv[1], "clear") && argc != 3)) {
		ctl_reply_err(c,
			      "usage: recorder list | show N (1…%d) [--view daily|monthly|yearly] "
			      "[--from] [--to] [--csv] | clear N",
			      REC_COUNT);
		return;
	}
	if (!strcmp(argv[1], "clear")) {
		int e = hist_recorder_clear(h, rec);

		if (e < 0)
			ctl_reply_err(c, "clear: %s", strerror(-e));
		else
			ctl_reply_ok(c, json_pack("{s:i}", "cleared", rec + 1));
		return;
	}
	if (o.csv) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		int e = f ? hist_recorder_csv(h, rec, o.from, o.to, f, err, sizeof(err)) : -ENOMEM;

		if (f)
			fclose(f);
		if (e < 0) {
			free(buf);
			ctl_reply_err(c, "%s", e == -EINVAL ? err : strerror(-e));
			return;
		}
		ctl_reply_ok(c, csv_doc(buf, len));
		return;
	}
	json_t *doc = hist_recorder_json(h, rec, o.view, o.from, o.to, err, sizeof(err));

	if (!doc)
		ctl_reply_err(c, "%s", err);
	else
		ctl_reply_ok(c, doc);
}

/* tariffs show | tariffs set TEXT (sgctl reads FILE and sends its text). */
void ctl_cmd_tariffs(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	struct hist *h = need_hist(a, c);
	char err[256];
	int e;

	if (!h)
		return;
	if (!strcmp(argv[1], "show") && argc == 2) {
		ctl_reply_ok(c, hist_tariffs_json(h));
		return;
	}
	if (strcmp(argv[1], "set") || argc != 3) {
		ctl_reply_err(c, "usage: tariffs show | set FILE");
		return;
	}
	e = hist_tariffs_set(h, argv[2], strlen(argv[2]), err, sizeof(err));
	if (e < 0)
		ctl_reply_err(c, "tariffs: %s", err);
	else
		ctl_reply_ok(c, hist_tariffs_json(h));
}

/* clock lockstep WALL_MS STEP_MS [UNTIL_MS]: the simulated time moves
 * STEP_MS per counter poll (0: stands at WALL_MS) up to UNTIL_MS, mirrored to $SGD_TEST_CLOCK_FILE
 * when set (for sgsim). "clock hold" stands still at the current instant. */
static void clock_lockstep_cmd(struct ctl_client *c, int argc, const char *const *argv)
{
	const char *mirror = getenv("SGD_TEST_CLOCK_FILE");
	char *end1 = NULL, *end2 = NULL;
	char *end3 = "";
	long long ms = argc >= 4 ? strtoll(argv[2], &end1, 10) : 0;
	long long step = argc >= 4 ? strtoll(argv[3], &end2, 10) : 0;
	long long until = argc == 5 ? strtoll(argv[4], &end3, 10) : 0;
	int r;

	if (argc == 2 && !strcmp(argv[1], "hold")) {
		ms = clock_wall_ms();
		step = 0;
	} else if (argc < 4 || argc > 5 || *end1 || *end2 || *end3 || ms <= 0 || step < 0 ||
		   step > 86400000LL || until < 0) {
		ctl_reply_err(
		    c,
		    "usage: clock lockstep WALL_MS STEP_MS (0…86400000) [UNTIL_MS] | clock hold");
		return;
	}
	r = clock_lockstep(ms, step, until, mirror && *mirror ? mirror : NULL);
	if (r < 0) {
		ctl_reply_err(c, "clock: %s: %s", mirror, strerror(-r));
		return;
	}
	ctl_reply_ok(c, json_pack("{s:I, s:I}", "wall_ms", (json_int_t)clock_wall_ms(), "step_ms",
				  (json_int_t)step));
}

/* clock WALL_MS [RATE] | clock lockstep WALL_MS STEP_MS: tests only
 * (SGD_TEST_HOOKS=1 in sgd's environment). */
void ctl_cmd_clock(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	const char *hooks = getenv("SGD_TEST_HOOKS");
	char *end;
	long long ms;
	long rate = 1;

	(void)a;
	if (!hooks || strcmp(hooks, "1")) {
		ctl_reply_err(c, "clock: test hook, disabled (sgd runs without SGD_TEST_HOOKS=1)");
		return;
	}
	if (!strcmp(argv[1], "lockstep") || !strcmp(argv[1], "hold")) {
		clock_lockstep_cmd(c, argc, argv);
		return;
	}
	ms = strtoll(argv[1], &end, 10);
	if (*end || ms <= 0 || argc > 3 ||
	    (argc > 2 && ((rate = strtol(argv[2], &end, 10)) < 1 || rate > 10000 || *end))) {
		ctl_reply_err(c, "usage: clock WALL_MS [RATE 1…10000]");
		return;
	}
	clock_simulate(ms, (int)rate);
	ctl_reply_ok(
	    c, json_pack("{s:I, s:i}", "wall_ms", (json_int_t)clock_wall_ms(), "rate", (int)rate));
}

/* calculate N [--from] [--to] [--csv]: equation N (1…4) of the settings. */
void ctl_cmd_calculate(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	struct hist *h = need_hist(a, c);
	struct hopts o;
	int64_t from, to;
	char err[160];
	int n;

	if (!h)
		return;
	n = index_arg(argv[1], 1, 4);
	if (n < 0 || parse_hopts(argc, argv, 2, &o) < 0 || o.view ||
	    hist_range(h, o.from, o.to, &from, &to) < 0) {
		ctl_reply_err(c, "usage: calculate N (1…4) [--from DATE|today|yesterday|last24h] "
				 "[--to DATE] [--csv]");
		return;
	}
	if (o.csv) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		int e = f ? hist_calc_csv(h, n, from, to, f, err, sizeof(err)) : -ENOMEM;

		if (f)
			fclose(f);
		if (e < 0) {
			free(buf);
			ctl_reply_err(c, "%s", e == -ENOMEM ? strerror(ENOMEM) : err);
			return;
		}
		ctl_reply_ok(c, csv_doc(buf, len));
		return;
	}
	json_t *doc = hist_calc_json(h, n, from, to, err, sizeof(err));

	if (!doc)
		ctl_reply_err(c, "%s", err);
	else
		ctl_reply_ok(c, doc);
}
