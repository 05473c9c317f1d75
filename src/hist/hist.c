/* History owner. Every completed poll cycle with a new counter reading feeds
 * the slot's load-profile engine (intervals and engine state stored in one
 * transaction), the tariff counters (energy since the last reading added to
 * the tariff active now) and the recorders bound to that slot (the first
 * reading of a local day is that day's value). A meter whose description
 * declares its own load profile has the intervals the gateway missed filled
 * from it (mprofile.h): after a gap in the readings, and by a re-check every
 * 15 minutes of the recent past. */
#include "sg/hist.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/calcexpr.h"
#include "sg/clock.h"
#include "sg/files.h"
#include "sg/histdb.h"
#include "sg/loadprof.h"
#include "sg/localtime.h"
#include "sg/log.h"
#include "sg/lpstore.h"
#include "sg/mprofile.h"
#include "sg/poll.h"
#include "sg/recorder.h"
#include "sg/settings.h"
#include "sg/store.h"
#include "sg/tariffs.h"

#define TARIFFS_MAX 5
#define RANGE_DAYS_MAX 366
#define TCTR_STEP_MAX 1e6 /* Wh between two readings; more is a meter swap, not energy */
#define TICK_MS 60000
#define RECHECK_S 900	/* re-check a slot's recent intervals at most this often */
#define RECHECK_MAX 256 /* quarter hours in MPROF_RECHECK_DEPTH_S, with room */

static const char *const tctr_migrations[] = {
    "CREATE TABLE tctr(slot INTEGER NOT NULL, tariff INTEGER NOT NULL, wh REAL NOT NULL,"
    " PRIMARY KEY(slot, tariff)) WITHOUT ROWID;",
};

struct hist {
	char *state_dir;
	struct settings *settings;
	struct store *store;
	struct loop *loop;
	struct poll *poll;
	struct reg *reg;
	struct histdb *db;
	struct lpstore *lp;
	struct recorders *rec;
	struct lp_params par;
	struct lp_engine eng[DEV_SLOTS];
	int64_t last_ctr_ms[DEV_SLOTS];
	double last_ai[DEV_SLOTS];
	bool have_ai[DEV_SLOTS];
	struct sg_tz tz;
	struct tariff_cal *cal;
	double tctr[DEV_SLOTS][TARIFFS_MAX];
	bool tctr_dirty;
	int64_t tick;
	struct mprof *mp;	       /* fills from meters' own load profiles */
	int64_t lp_since[DEV_SLOTS];   /* UTC s: re-check no further back (0: no reading yet) */
	int64_t lp_check_s[DEV_SLOTS]; /* wall s of the slot's last re-check */
};

static int offset_cb(time_t utc, void *arg)
{
	const struct hist *h = arg;

	return tz_offset_s(&h->tz, utc);
}

static void tariffs_path(const struct hist *h, char *buf, size_t len)
{
	if (files_path(h->state_dir, "tariffs.json", buf, len) < 0)
		buf[0] = 0;
}

static void load_tariffs(struct hist *h)
{
	char path[512], err[256];
	struct tariff_cal *c = NULL;
	int r;

	tariffs_path(h, path, sizeof(path));
	r = path[0] ? tariffs_load_file(path, &c, err, sizeof(err)) : -ENOENT;
	if (r == -ENOENT)
		return;
	if (r < 0) {
		log_err("tariffs: %s (no tariff calendar in use)", err);
		return;
	}
	tariffs_free(h->cal);
	h->cal = c;
}

static void tctr_load(struct hist *h)
{
	sqlite3 *db = histdb_sqlite(h->db);
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, "SELECT slot, tariff, wh FROM tctr", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int slot = sqlite3_column_int(st, 0), t = sqlite3_column_int(st, 1);

		if (slot >= 0 && slot < DEV_SLOTS && t >= 0 && t < TARIFFS_MAX)
			h->tctr[slot][t] = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
}

static void tctr_flush(struct hist *h)
{
	sqlite3 *db = histdb_sqlite(h->db);
	sqlite3_stmt *st;

	if (!h->tctr_dirty)
		return;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO tctr(slot, tariff, wh) VALUES(?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (int s = 0; s < DEV_SLOTS; s++)
		for (int t = 0; t < TARIFFS_MAX; t++) {
			if (h->tctr[s][t] == 0)
				continue;
			sqlite3_bind_int(st, 1, s);
			sqlite3_bind_int(st, 2, t);
			sqlite3_bind_double(st, 3, h->tctr[s][t]);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		h->tctr_dirty = false;
	else
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(st);
}

static int64_t today(const struct hist *h)
{
	return lp_local_day(&h->par, clock_wall());
}

static void capture_recorders(struct hist *h, const struct dev *d)
{
	int64_t day;

	for (int r = 0; r < REC_COUNT; r++) {
		const struct rec_cfg *c = rec_get_cfg(h->rec, r);

		if (!c || !c->enabled || c->source != REC_SRC_DEVICE || c->slot != d->slot ||
		    c->counter < 0 || c->counter >= DESC_CTR_MAX || !d->ctr_ok[c->counter])
			continue;
		if (rec_pending(h->rec, r, today(h), &day) == 1)
			rec_capture(h->rec, r, day, d->ctr[c->counter], clock_wall());
	}
}

static void capture_pulse(struct hist *h)
{
	uint64_t pulses;
	int64_t day;

	for (int r = 0; r < REC_COUNT; r++) {
		const struct rec_cfg *c = rec_get_cfg(h->rec, r);

		if (!c || !c->enabled || c->source != REC_SRC_PULSE)
			continue;
		if (rec_pending(h->rec, r, today(h), &day) == 1 && h->store &&
		    store_pulse_get(h->store, &pulses) == 0)
			rec_capture(h->rec, r, day, (double)pulses, clock_wall());
	}
}

/* Whether slot's tariff counters run: the Left IR meter's are switched by
 * leftir_tariffs ("Tariff counters" of the IR device settings, 001 §4.6);
 * the other meters have no such setting and always count. */
static bool tctr_enabled(const struct hist *h, int slot)
{
	return slot != DEV_SLOT_LEFT_IR || settings_int(h->settings, "leftir_tariffs") != 0;
}

static void add_tariff_energy(struct hist *h, int slot, const struct lp_sample *s)
{
	int t = h->cal ? tariffs_active(h->cal, &h->tz, clock_wall()) : -1;
	bool ok = s->ok & (1u << LP_AI);

	/* Off: energy is not counted, but the last reading is still followed,
	 * so switching back on does not book the time it was off. */
	if (ok && h->have_ai[slot] && t >= 0 && t < TARIFFS_MAX && tctr_enabled(h, slot)) {
		double delta = s->v[LP_AI] - h->last_ai[slot];

		if (delta > 0 && delta <= TCTR_STEP_MAX) {
			h->tctr[slot][t] += delta;
			h->tctr_dirty = true;
		}
	}
	h->have_ai[slot] = ok;
	if (ok)
		h->last_ai[slot] = s->v[LP_AI];
}

/* ---- filling from the meter's own load profile ---- */

static int mp_submit(void *arg, int slot, struct bus_txn *t)
{
	struct hist *h = arg;
	struct bus *b = poll_slot_bus(h->poll, slot);
	const struct dev *d = reg_dev(h->reg, slot);

	if (!b || !d)
		return -ENODEV;
	if (reg_bus_busy(h->reg, d->bus))
		return -EBUSY; /* a scan owns the line; the re-check comes back */
	/* the priority of the poller's own reads: a fill never delays an
	 * on-demand request */
	return bus_submit(b, t, BUS_PRIO_LOW);
}

static const struct dev *mp_dev(void *arg, int slot)
{
	struct hist *h = arg;

	return reg_dev(h->reg, slot);
}

static bool has_lprof(const struct dev *d)
{
	return d && d->d && d->d->lprof.present;
}

/* Depth of the meter's ring in seconds. */
static int64_t lprof_depth(const struct dev *d)
{
	return (int64_t)d->d->lprof.entries * LP_INTERVAL_S;
}

/* Before s goes into the engine: when it follows a gap (the engine's last
 * reading too old, or no engine state while the store has older intervals),
 * fill the gap from the meter, as far back as its ring reaches. */
static void lp_gap_fill(struct hist *h, const struct dev *d, const struct lp_sample *s)
{
	const struct lp_engine *e = &h->eng[d->slot];
	int64_t now = s->ms / 1000, prev = -1, last;
	int slot = d->slot;

	if (e->have_prev && s->ms - e->last_ms > (int64_t)h->par.max_gap_s * 1000)
		prev = e->last_ms / 1000;
	else if (!e->have_prev && lpstore_last(h->lp, slot, now, &last) == 0)
		prev = last + LP_INTERVAL_S;
	if (!h->lp_since[slot])
		h->lp_since[slot] =
		    lp_prev_boundary(&h->par, e->have_prev ? e->last_ms / 1000 : now);
	if (prev < 0 || prev >= now)
		return;
	prev = lp_prev_boundary(&h->par, prev);
	if (prev < now - lprof_depth(d))
		prev = now - lprof_depth(d);
	if (prev < h->lp_since[slot])
		h->lp_since[slot] = prev; /* a failed fill is retried by the re-check */
	mprof_request(h->mp, slot, prev, now, 0);
}

/* Intervals of the recent past stored as missing, or not stored, while the
 * device was being read: a fill that failed or ran before the meter had
 * captured them gets another go. Settled intervals (the meter had nothing
 * better) are not asked again. */
static void lp_recheck(struct hist *h)
{
	int64_t now = clock_wall(), starts[RECHECK_MAX];

	for (int slot = 0; slot < DEV_SLOTS && h->mp; slot++) {
		const struct dev *d = reg_dev(h->reg, slot);
		const struct lp_engine *e = &h->eng[slot];
		struct mprof_stats st;
		int64_t lo, hi, depth;
		int n;

		if (!has_lprof(d) || d->health != DEV_OK || !e->have_prev || !h->lp_since[slot])
			continue;
		if (now >= h->lp_check_s[slot] && now - h->lp_check_s[slot] < RECHECK_S)
			continue;
		if (mprof_busy(h->mp, slot))
			continue;
		h->lp_check_s[slot] = now;
		mprof_get_stats(h->mp, slot, &st);
		depth =
		    lprof_depth(d) < MPROF_RECHECK_DEPTH_S ? lprof_depth(d) : MPROF_RECHECK_DEPTH_S;
		hi = e->cur_start; /* the engine has stored everything before it */
		lo = hi - depth;
		if (lo < h->lp_since[slot])
			lo = h->lp_since[slot];
		if (lo < st.resolved_to)
			lo = st.resolved_to;
		if (lo >= hi)
			continue;
		n = lpstore_missing(h->lp, slot, &h->par, lo, hi,
				    mprof_channels(&d->d->lprof, d->reverse), starts, RECHECK_MAX);
		if (n <= 0)
			continue;
		mprof_request(h->mp, slot, starts[0],
			      n > RECHECK_MAX ? hi : starts[n - 1] + LP_INTERVAL_S, MPROF_RECHECK);
	}
}

int hist_lp_fill_stats(struct hist *h, int slot, struct mprof_stats *out)
{
	if (!h || !h->mp || slot < 0 || slot >= DEV_SLOTS)
		return -ENOENT;
	mprof_get_stats(h->mp, slot, out);
	return 0;
}

static void on_cycle(const struct dev *d, void *arg)
{
	struct hist *h = arg;
	struct lp_sample s;
	int slot = d->slot, r;

	if (d->cls == CLASS_BICOM || !d->ctr_ms || d->ctr_ms == h->last_ctr_ms[slot])
		return;
	h->last_ctr_ms[slot] = d->ctr_ms;
	memset(&s, 0, sizeof(s));
	lp_from_dev(d, &s);
	s.ms = d->ctr_ms;
	if (s.ok) {
		if (has_lprof(d) && h->mp)
			lp_gap_fill(h, d, &s);
		r = lpstore_record(h->lp, slot, &h->eng[slot], &h->par, &s);
		if (r < 0)
			log_warn("load profile of %s: %s", d->ifname, strerror(-r));
		add_tariff_energy(h, slot, &s);
	}
	capture_recorders(h, d);
}

static void on_tick(void *arg)
{
	struct hist *h = arg;

	h->tick = loop_timer_add(h->loop, TICK_MS, on_tick, h);
	tctr_flush(h);
	capture_pulse(h);
	lp_recheck(h);
}

/* The settings hist_configure reads. */
static const char *const hist_keys[] = {"timezone", "dst_auto", "rec*", NULL};

static void hist_configure(struct hist *h, const struct settings *s)
{
	char key[32], err[160];

	h->tz = tz_from_settings(s);
	for (int r = 0; r < REC_COUNT; r++) {
		struct rec_cfg c = {.slot = 0};
		long src;

		snprintf(key, sizeof(key), "rec%d_name", r + 1);
		snprintf(c.name, sizeof(c.name), "%s", settings_str(s, key));
		snprintf(key, sizeof(key), "rec%d_source", r + 1);
		src = settings_int(s, key);
		c.enabled = src != 0;
		c.source = src == 2 ? REC_SRC_PULSE : REC_SRC_DEVICE;
		snprintf(key, sizeof(key), "rec%d_device", r + 1);
		c.slot = dev_slot_of_index((int)settings_int(s, key));
		snprintf(key, sizeof(key), "rec%d_counter", r + 1);
		c.counter = (int)settings_int(s, key);
		if (c.slot < 0)
			c.slot = 0;
		if (rec_configure(h->rec, r, &c, err, sizeof(err)) < 0)
			log_warn("%s", err);
	}
}

static void on_settings(const struct settings *s, void *arg)
{
	hist_configure(arg, s);
}

int hist_init(struct hist **out, const struct hist_env *env)
{
	struct hist *h = calloc(1, sizeof(*h));
	char path[512], err[256];
	int r;

	if (!h)
		return -ENOMEM;
	h->settings = env->settings;
	h->store = env->store;
	h->loop = env->loop;
	h->poll = env->poll;
	h->reg = env->reg;
	h->state_dir = strdup(env->state_dir);
	if (!h->state_dir) {
		free(h);
		return -ENOMEM;
	}
	h->tz = tz_from_settings(h->settings);
	lp_params_default(&h->par);
	h->par.offset_s = offset_cb;
	h->par.offset_arg = h;
	snprintf(path, sizeof(path), "%s/history.db", h->state_dir);
	r = histdb_open(path, &h->db, err, sizeof(err));
	if (r == 0)
		r = lpstore_open(h->db, &h->lp, err, sizeof(err));
	if (r == 0 && (r = rec_open(histdb_sqlite(h->db), &h->rec)) < 0)
		snprintf(err, sizeof(err), "recorders: %s", strerror(-r));
	if (r == 0 && (r = histdb_schema(h->db, "tariffctr", tctr_migrations, 1)) < 0)
		snprintf(err, sizeof(err), "tariff counters: %s", strerror(-r));
	if (r < 0) {
		log_err("history %s: %s (no load profile, recorders or tariff counters)", path,
			err);
		hist_fini(h);
		return r;
	}
	for (int s = 0; s < DEV_SLOTS; s++)
		if (lpstore_state_load(h->lp, s, &h->eng[s]) < 0)
			lp_engine_init(&h->eng[s]);
	r = mprof_new(&h->mp, &(struct mprof_io){.submit = mp_submit, .dev = mp_dev, .arg = h},
		      h->lp, &h->par);
	if (r < 0)
		log_warn("history: %s (no filling from meters' own load profiles)", strerror(-r));
	tctr_load(h);
	load_tariffs(h);
	hist_configure(h, h->settings);
	r = settings_subscribe(h->settings, hist_keys, on_settings, h);
	if (r < 0) {
		log_err("history: cannot follow settings: %s", strerror(-r));
		hist_fini(h);
		return r;
	}
	reg_subscribe(h->reg, on_cycle, h);
	h->tick = loop_timer_add(h->loop, TICK_MS, on_tick, h);
	*out = h;
	return 0;
}

void hist_fini(struct hist *h)
{
	if (!h)
		return;
	settings_unsubscribe(h->settings, on_settings, h);
	if (h->reg)
		reg_unsubscribe(h->reg, on_cycle, h);
	if (h->tick)
		loop_timer_cancel(h->loop, h->tick);
	mprof_free(h->mp); /* after bus_stop: nothing is in flight any more */
	if (h->lp) {
		for (int s = 0; s < DEV_SLOTS; s++)
			lpstore_state_save(h->lp, s, &h->eng[s]);
		tctr_flush(h);
		lpstore_close(h->lp);
	}
	if (h->rec)
		rec_close(h->rec);
	histdb_close(h->db);
	tariffs_free(h->cal);
	free(h->state_dir);
	free(h);
}

/* ---- tariffs ---- */

int hist_active_tariff(struct hist *h)
{
	return h && h->cal ? tariffs_active(h->cal, &h->tz, clock_wall()) : -1;
}

json_t *hist_tariffs_json(struct hist *h)
{
	json_t *ctrs = json_array();
	int act = hist_active_tariff(h);

	for (int s = 0; h && s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(h->reg, s);
		json_t *per = json_array();
		bool any = false;

		for (int t = 0; t < TARIFFS_MAX; t++) {
			double price = h->cal ? tariffs_price(h->cal, t) : NAN;
			json_t *o;

			if (h->tctr[s][t] != 0)
				any = true;
			if (!h->cal || t >= tariffs_count(h->cal))
				continue;
			o = json_pack("{s:i, s:s, s:f, s:f}", "tariff", t + 1, "name",
				      tariffs_name(h->cal, t), "kwh", h->tctr[s][t] / 1000.0,
				      "cost", h->tctr[s][t] / 1000.0 * price);
			json_array_append_new(per, o);
		}
		if (!any && (!d || d->health == DEV_DISABLED)) {
			json_decref(per);
			continue;
		}
		json_array_append_new(ctrs,
				      json_pack("{s:i, s:s, s:b, s:o}", "index", dev_ha_index(s),
						"interface", d ? d->ifname : "", "enabled",
						tctr_enabled(h, s), "tariffs", per));
	}
	return json_pack(
	    "{s:o, s:o, s:o}", "active",
	    act >= 0 ? json_pack("{s:i, s:s}", "tariff", act + 1, "name", tariffs_name(h->cal, act))
		     : json_null(),
	    "calendar", h && h->cal ? tariffs_to_json(h->cal) : json_null(), "counters", ctrs);
}

int hist_tariffs_set(struct hist *h, const char *text, size_t len, char *err, size_t errlen)
{
	struct tariff_cal *c = NULL;
	int r = tariffs_parse(text, len, &c, err, errlen);

	if (r < 0)
		return r;
	r = files_write(h->state_dir, "tariffs.json", text, len);
	if (r < 0) {
		snprintf(err, errlen, "tariffs.json: %s", strerror(-r));
		tariffs_free(c);
		return r;
	}
	tctr_flush(h); /* energy so far belongs to the old calendar's tariffs */
	tariffs_free(h->cal);
	h->cal = c;
	return 0;
}

/* ---- load profile ---- */

static int parse_date(const char *s, int64_t *day)
{
	int y, m, d, n = 0;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] || n != 10 || m < 1 || m > 12 ||
	    d < 1 || d > tz_days_in_month(y, m) || y < 1970 || y > 9999)
		return -EINVAL;
	*day = days_from_civil(y, m, d);
	return 0;
}

int hist_range(struct hist *h, const char *from, const char *to, int64_t *f, int64_t *t)
{
	int64_t now = clock_wall(), d0, d1;

	if (!from || !*from || !strcmp(from, "last24h")) {
		if (to && *to)
			return -EINVAL;
		*t = now;
		*f = now - 86400;
		return 0;
	}
	if (!strcmp(from, "today") || !strcmp(from, "yesterday")) {
		if (to && *to)
			return -EINVAL;
		d0 = today(h) - (from[0] == 'y');
		*f = lp_day_start(&h->par, d0);
		*t = lp_day_start(&h->par, d0 + 1);
		return 0;
	}
	if (parse_date(from, &d0) < 0)
		return -EINVAL;
	d1 = d0;
	if (to && *to && parse_date(to, &d1) < 0)
		return -EINVAL;
	if (d1 < d0 || d1 - d0 >= RANGE_DAYS_MAX)
		return -ERANGE;
	*f = lp_day_start(&h->par, d0);
	*t = lp_day_start(&h->par, d1 + 1);
	return 0;
}

static json_t *maybe(bool present, double v)
{
	return present ? json_real(v) : json_null();
}

static int fetch(struct hist *h, int slot, int64_t from, int64_t to, struct lp_interval **out,
		 size_t *n)
{
	size_t max = (size_t)((to - from) / 900 + 8);
	int r;

	*out = calloc(max, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	r = lpstore_range_array(h->lp, slot, from, to, *out, max, n);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

/* Daily totals of an interval array over local days d0…d1 (what lpstore_daily
 * gives for one device, for a computed series). */
static void days_of(struct hist *h, const struct lp_interval *iv, size_t n, int64_t d0, int64_t d1,
		    struct lp_day *days)
{
	for (int64_t d = d0; d <= d1; d++) {
		struct lp_day *o = &days[d - d0];

		memset(o, 0, sizeof(*o));
		o->day = d;
		o->start = lp_day_start(&h->par, d);
		o->end = lp_day_start(&h->par, d + 1);
		o->expected = lp_count_intervals(&h->par, o->start, o->end);
	}
	for (size_t i = 0; i < n; i++) {
		int64_t d = lp_local_day(&h->par, iv[i].start);

		if (d < d0 || d > d1)
			continue;
		for (int c = 0; c < LP_NCH; c++)
			if (iv[i].present & (1u << c)) {
				days[d - d0].present[c]++;
				days[d - d0].sum[c] += iv[i].e[c];
			}
	}
	for (int64_t d = d0; d <= d1; d++)
		for (int c = 0; c < LP_NCH; c++)
			days[d - d0].missing[c] = days[d - d0].expected - days[d - d0].present[c];
}

static json_t *render_json(struct hist *h, const struct lp_interval *iv, size_t n,
			   const struct lp_day *days, int ndays, int64_t from, int64_t to)
{
	json_t *ivs = json_array(), *dj = json_array(), *chans = json_array();

	(void)h;
	for (int c = 0; c < LP_NCH; c++)
		json_array_append_new(
		    chans, json_pack("{s:s, s:s}", "name", lp_ch_name(c), "unit", lp_ch_unit(c)));
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array();

		for (int c = 0; c < LP_NCH; c++)
			json_array_append_new(v, maybe(iv[i].present & (1u << c), iv[i].e[c]));
		json_array_append_new(
		    ivs, json_pack("{s:I, s:o}", "start", (json_int_t)iv[i].start, "values", v));
	}
	for (int i = 0; i < ndays; i++) {
		int64_t y;
		int m, d;
		char date[16];
		json_t *sums = json_array(), *miss = json_array();

		civil_from_days(days[i].day, &y, &m, &d);
		snprintf(date, sizeof(date), "%04d-%02d-%02d", (int)y, m, d);
		for (int c = 0; c < LP_NCH; c++) {
			json_array_append_new(sums, maybe(days[i].present[c], days[i].sum[c]));
			json_array_append_new(miss, json_integer(days[i].missing[c]));
		}
		json_array_append_new(dj,
				      json_pack("{s:s, s:i, s:o, s:o}", "date", date, "intervals",
						days[i].expected, "totals", sums, "missing", miss));
	}
	return json_pack("{s:I, s:I, s:o, s:o, s:o}", "from", (json_int_t)from, "to",
			 (json_int_t)to, "channels", chans, "intervals", ivs, "days", dj);
}

json_t *hist_load_profile_json(struct hist *h, int slot, int64_t from, int64_t to, char *err,
			       size_t errlen)
{
	struct lp_interval *iv;
	struct lp_day days[RANGE_DAYS_MAX + 2];
	int64_t d0 = lp_local_day(&h->par, from), d1 = lp_local_day(&h->par, to - 1);
	size_t n = 0;
	json_t *doc;
	int r;

	if (d1 - d0 + 1 > RANGE_DAYS_MAX + 1) {
		snprintf(err, errlen, "load profile: %s", strerror(ERANGE));
		return NULL;
	}
	r = fetch(h, slot, from, to, &iv, &n);
	if (r == 0)
		r = lpstore_daily(h->lp, slot, &h->par, d0, (int)(d1 - d0 + 1), days);
	if (r < 0) {
		snprintf(err, errlen, "load profile: %s", strerror(-r));
		free(iv);
		return NULL;
	}
	doc = render_json(h, iv, n, days, (int)(d1 - d0 + 1), from, to);
	free(iv);
	if (doc)
		json_object_set_new(doc, "index", json_integer(dev_ha_index(slot)));
	return doc;
}

static void render_csv(struct hist *h, const struct lp_interval *iv, size_t n, FILE *f)
{
	fprintf(f, "start_utc,start_local");
	for (int c = 0; c < LP_NCH; c++)
		fprintf(f, ",%s_%s", lp_ch_name(c), lp_ch_unit(c));
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		struct tm tm;

		tz_to_local(&h->tz, (time_t)iv[i].start, &tm);
		fprintf(f, "%lld,%04d-%02d-%02dT%02d:%02d", (long long)iv[i].start,
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
		for (int c = 0; c < LP_NCH; c++) {
			if (iv[i].present & (1u << c))
				fprintf(f, ",%.17g", iv[i].e[c]);
			else
				fputc(',', f);
		}
		fputc('\n', f);
	}
}

int hist_load_profile_csv(struct hist *h, int slot, int64_t from, int64_t to, FILE *f)
{
	struct lp_interval *iv;
	size_t n = 0;
	int r = fetch(h, slot, from, to, &iv, &n);

	if (r < 0)
		return r;
	render_csv(h, iv, n, f);
	free(iv);
	return 0;
}

/* ---- calculate (R-B2): signed sums of devices' series ---- */

/* The equation's series over [from, to): one interval per quarter hour of
 * the range; a channel is present only where every term has it. */
static int calc_series(struct hist *h, int n_calc, int64_t from, int64_t to,
		       struct lp_interval **out, size_t *nout, char *err, size_t errlen)
{
	struct calc_term t[CALC_TERMS_MAX];
	char key[32];
	int nt, r = 0;
	size_t slots = (size_t)((to - from) / 900 + 8), count = 0;
	struct lp_interval *acc;
	uint16_t *seen;

	snprintf(key, sizeof(key), "calc%d_expr", n_calc);
	nt = calc_parse(settings_str(h->settings, key), t, err, errlen);
	if (nt <= 0) {
		if (nt == 0)
			snprintf(err, errlen, "calculate %d: no equation set (%s)", n_calc, key);
		return -ENOENT;
	}
	acc = calloc(slots, sizeof(*acc));
	seen = calloc(slots, sizeof(*seen));
	if (!acc || !seen) {
		free(acc);
		free(seen);
		return -ENOMEM;
	}
	for (int64_t s = lp_next_boundary(&h->par, from - 1); s < to && count < slots;
	     s = lp_next_boundary(&h->par, s))
		acc[count++].start = s;
	for (size_t i = 0; i < count; i++)
		acc[i].present = (uint16_t)((1u << LP_NCH) - 1);
	for (int k = 0; k < nt && r == 0; k++) {
		struct lp_interval *iv;
		size_t n = 0, j = 0;
		int slot = dev_slot_of_index(t[k].index);

		r = slot < 0 ? -EINVAL : fetch(h, slot, from, to, &iv, &n);
		if (r < 0)
			break;
		memset(seen, 0, slots * sizeof(*seen));
		for (size_t i = 0; i < count; i++) {
			while (j < n && iv[j].start < acc[i].start)
				j++;
			if (j < n && iv[j].start == acc[i].start) {
				for (int c = 0; c < LP_NCH; c++)
					acc[i].e[c] += t[k].sign * iv[j].e[c];
				seen[i] = iv[j].present;
			}
			acc[i].present &= seen[i];
		}
		free(iv);
	}
	free(seen);
	if (r < 0) {
		free(acc);
		snprintf(err, errlen, "calculate %d: %s", n_calc, strerror(-r));
		return r;
	}
	*out = acc;
	*nout = count;
	return 0;
}

json_t *hist_calc_json(struct hist *h, int n_calc, int64_t from, int64_t to, char *err,
		       size_t errlen)
{
	struct lp_interval *iv;
	struct lp_day days[RANGE_DAYS_MAX + 2];
	int64_t d0 = lp_local_day(&h->par, from), d1 = lp_local_day(&h->par, to - 1);
	char key[32];
	size_t n;
	json_t *doc;

	if (d1 - d0 + 1 > RANGE_DAYS_MAX + 1) {
		snprintf(err, errlen, "calculate: %s", strerror(ERANGE));
		return NULL;
	}
	if (calc_series(h, n_calc, from, to, &iv, &n, err, errlen) < 0)
		return NULL;
	days_of(h, iv, n, d0, d1, days);
	doc = render_json(h, iv, n, days, (int)(d1 - d0 + 1), from, to);
	free(iv);
	snprintf(key, sizeof(key), "calc%d_name", n_calc);
	json_object_set_new(doc, "calculate", json_integer(n_calc));
	json_object_set_new(doc, "name", json_string(settings_str(h->settings, key)));
	snprintf(key, sizeof(key), "calc%d_expr", n_calc);
	json_object_set_new(doc, "equation", json_string(settings_str(h->settings, key)));
	return doc;
}

int hist_calc_csv(struct hist *h, int n_calc, int64_t from, int64_t to, FILE *f, char *err,
		  size_t errlen)
{
	struct lp_interval *iv;
	size_t n;
	int r = calc_series(h, n_calc, from, to, &iv, &n, err, errlen);

	if (r < 0)
		return r;
	render_csv(h, iv, n, f);
	free(iv);
	return 0;
}

int hist_load_profile_clear(struct hist *h, int slot)
{
	lp_engine_init(&h->eng[slot]);
	mprof_forget(h->mp, slot);
	h->lp_since[slot] = 0;
	return lpstore_clear(h->lp, slot);
}

/* ---- recorders ---- */

json_t *hist_recorders_json(struct hist *h)
{
	return rec_list_json(h->rec);
}

/* from/to of a view: days for daily (default the last 31), years otherwise
 * (default this year, or the last 10 for yearly). */
static int view_range(struct hist *h, const char *view, const char *from, const char *to,
		      int64_t *f, int64_t *t)
{
	int64_t y;
	int m, d;

	civil_from_days(today(h), &y, &m, &d);
	if (!strcmp(view, "daily")) {
		*t = today(h);
		*f = *t - 30;
		if (from && *from && parse_date(from, f) < 0)
			return -EINVAL;
		if (to && *to && parse_date(to, t) < 0)
			return -EINVAL;
		return 0;
	}
	*t = y;
	*f = strcmp(view, "yearly") ? y : y - 9;
	if (from && *from && (sscanf(from, "%4" SCNd64, f) != 1 || strlen(from) != 4))
		return -EINVAL;
	if (to && *to && (sscanf(to, "%4" SCNd64, t) != 1 || strlen(to) != 4))
		return -EINVAL;
	if (!strcmp(view, "monthly") && !(to && *to))
		*t = *f;
	return 0;
}

json_t *hist_recorder_json(struct hist *h, int rec, const char *view, const char *from,
			   const char *to, char *err, size_t errlen)
{
	int64_t f, t;

	if (!view || !*view)
		view = "daily";
	if (strcmp(view, "daily") && strcmp(view, "monthly") && strcmp(view, "yearly")) {
		snprintf(err, errlen, "view '%s': expected daily, monthly or yearly", view);
		return NULL;
	}
	if (view_range(h, view, from, to, &f, &t) < 0) {
		snprintf(err, errlen, "from/to: expected %s",
			 strcmp(view, "daily") ? "a year YYYY" : "a date YYYY-MM-DD");
		return NULL;
	}
	return rec_view_json(h->rec, rec, view, f, t, err, errlen);
}

int hist_recorder_csv(struct hist *h, int rec, const char *from, const char *to, FILE *f, char *err,
		      size_t errlen)
{
	int64_t a, b;

	if (view_range(h, "daily", from, to, &a, &b) < 0) {
		snprintf(err, errlen, "from/to: expected a date YYYY-MM-DD");
		return -EINVAL;
	}
	return rec_csv(h->rec, rec, a, b, f);
}

int hist_recorder_clear(struct hist *h, int rec)
{
	return rec_clear(h->rec, rec);
}
