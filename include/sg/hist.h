/* History owner: the 15-minute load recorder, the recorders and the tariff
 * calendar with per-meter tariff counters, over history.db in the state
 * directory. Fed by completed poll cycles; time comes from clock_wall(), so
 * tests move it with the rest of the daemon. */
#ifndef SG_HIST_H
#define SG_HIST_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

struct hist;
struct loop;
struct mprof_stats;
struct poll;
struct settings;
struct store;

/* What history uses; every handle outlives the hist. */
struct hist_env {
	const char *state_dir;	   /* history.db and tariffs.json (copied) */
	struct settings *settings; /* time zone, recorders, calculate equations */
	struct store *store;	   /* pulse counter for recorders; may be NULL */
	struct loop *loop;
	struct poll *poll; /* the bus of a slot, for the meters' own load profiles */
	struct reg *reg;   /* completed device updates feed history */
};

/* Open history.db, subscribe to the poller and to the settings it follows
 * (timezone, dst_auto, rec*); 0 or -errno (the daemon runs on without
 * history when it cannot open: logged). */
int hist_init(struct hist **out, const struct hist_env *env);
/* Save engine state and close. */
void hist_fini(struct hist *h);

/* Active tariff index (0-based) now, or -1 without a calendar. */
int hist_active_tariff(struct hist *h);
/* {"active": i|null, "name", "calendar": {...}|null, "counters": [...]} */
json_t *hist_tariffs_json(struct hist *h);
/* Validate text as tariffs.json; on success write it to the file folder and
 * use it; otherwise nothing changes. 0, -EINVAL (err says why) or -errno. */
int hist_tariffs_set(struct hist *h, const char *text, size_t len, char *err, size_t errlen);

/* Load profile of slot over [from, to) (UTC s): {"intervals": [...],
 * "days": [...daily totals...]}; NULL with err on bad input. */
json_t *hist_load_profile_json(struct hist *h, int slot, int64_t from, int64_t to, char *err,
			       size_t errlen);
/* The same as CSV. 0 or -errno. */
int hist_load_profile_csv(struct hist *h, int slot, int64_t from, int64_t to, FILE *f);
/* Range words: "last24h", "today", "yesterday" or "YYYY-MM-DD" (a local day);
 * 0 with [from, to), or -EINVAL. */
int hist_range(struct hist *h, const char *from, const char *to, int64_t *f, int64_t *t);
/* Calculate equation n (1…4, settings calcN_name/calcN_expr): the signed
 * sum of its devices' intervals, present only where every device has the
 * interval; JSON as hist_load_profile_json, or CSV. NULL / -ENOENT when the
 * equation is empty, with err. */
json_t *hist_calc_json(struct hist *h, int n_calc, int64_t from, int64_t to, char *err,
		       size_t errlen);
int hist_calc_csv(struct hist *h, int n_calc, int64_t from, int64_t to, FILE *f, char *err,
		  size_t errlen);
/* Clear the load profile of slot. */
int hist_load_profile_clear(struct hist *h, int slot);
/* Fills of slot from the meter's own load profile (sg/mprofile.h): fills
 * started, intervals filled, errors and the last one. 0, or -ENOENT without
 * history. */
int hist_lp_fill_stats(struct hist *h, int slot, struct mprof_stats *out);

/* Recorders: list, one view ("daily"|"monthly"|"yearly"), CSV, clear. */
json_t *hist_recorders_json(struct hist *h);
json_t *hist_recorder_json(struct hist *h, int rec, const char *view, const char *from,
			   const char *to, char *err, size_t errlen);
int hist_recorder_csv(struct hist *h, int rec, const char *from, const char *to, FILE *f, char *err,
		      size_t errlen);
int hist_recorder_clear(struct hist *h, int rec);

#endif
