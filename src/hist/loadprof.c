/* Load-profile interval engine: counter samples in, 15-minute intervals on
 * local quarter hours out. Pure: no SQLite, no clock. */
#include "sg/loadprof.h"
#include "sg/dev.h"

#include <math.h>
#include <string.h>

#define IV LP_INTERVAL_S

static const char *const ch_names[LP_NCH] = {"ai",  "ae",  "ri",  "re",	 "ai1",
					     "ai2", "ai3", "ae1", "ae2", "ae3"};

const char *lp_ch_name(enum lp_ch ch)
{
	return (unsigned)ch < LP_NCH ? ch_names[ch] : "?";
}

const char *lp_ch_unit(enum lp_ch ch)
{
	return ch == LP_RI || ch == LP_RE ? "varh" : "Wh";
}

void lp_params_default(struct lp_params *p)
{
	if (p->max_gap_s <= 0)
		p->max_gap_s = 900;
	if (!(p->max_step > 0))
		p->max_step = 1e6;
	if (p->max_missing <= 0)
		p->max_missing = 400 * 96;
}

static int off(const struct lp_params *p, int64_t t)
{
	return p->offset_s ? p->offset_s((time_t)t, p->offset_arg) : 0;
}

static int64_t pmod(int64_t a, int64_t m)
{
	int64_t r = a % m;

	return r < 0 ? r + m : r;
}

static int64_t floor_div(int64_t a, int64_t m)
{
	return (a - pmod(a, m)) / m;
}

int64_t lp_next_boundary(const struct lp_params *p, int64_t t)
{
	int o = off(p, t), o2;
	int64_t c = t + IV - pmod(t + o, IV), lo = t, hi = c, r;

	if (off(p, c) == o)
		return c;
	/* The offset changes in (t, c]: the first boundary is at or after the
	 * change, on a quarter hour of the new local time. */
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;

		if (off(p, mid) == o)
			lo = mid;
		else
			hi = mid;
	}
	o2 = off(p, hi);
	r = pmod(hi + o2, IV);
	return r == 0 ? hi : hi + IV - r;
}

int64_t lp_prev_boundary(const struct lp_params *p, int64_t t)
{
	int64_t b = lp_next_boundary(p, t - 2 * 3600), n;

	while ((n = lp_next_boundary(p, b)) <= t)
		b = n;
	return b;
}

int64_t lp_local_day(const struct lp_params *p, int64_t t)
{
	return floor_div(t + off(p, t), 86400);
}

int64_t lp_day_start(const struct lp_params *p, int64_t day)
{
	int64_t l = day * 86400, ta = l - off(p, l - 50400), tb = l - off(p, l + 50400);
	int64_t lo, hi;
	bool va = ta + off(p, ta) == l, vb = tb + off(p, tb) == l;

	if (va && vb)
		return ta < tb ? ta : tb; /* midnight twice (set back at midnight): the first */
	if (va)
		return ta;
	if (vb)
		return tb;
	/* Midnight skipped (set forward at midnight): the day starts at the change. */
	lo = ta < tb ? ta : tb;
	hi = ta < tb ? tb : ta;
	if (lo + off(p, lo) >= l || hi + off(p, hi) < l)
		return ta;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;

		if (mid + off(p, mid) >= l)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* Boundaries in [from, to) when the offset is o throughout, o a multiple of
 * 15 minutes: the UTC quarter hours. */
static int count_fixed(int64_t from, int64_t to)
{
	if (to <= from)
		return 0;
	return (int)(floor_div(to - 1, IV) - floor_div(from - 1, IV));
}

static int count_walk(const struct lp_params *p, int64_t from, int64_t to)
{
	int64_t b = lp_prev_boundary(p, from);
	int n = 0;

	if (b < from)
		b = lp_next_boundary(p, b);
	for (; b < to; b = lp_next_boundary(p, b))
		n++;
	return n;
}

int lp_count_intervals(const struct lp_params *p, int64_t from, int64_t to)
{
	int oa, ob;
	int64_t lo, hi;

	if (to <= from)
		return 0;
	oa = off(p, from);
	ob = off(p, to - 1);
	if (oa % IV || ob % IV || to - from > 2 * 86400)
		return count_walk(p, from, to);
	if (oa == ob)
		return count_fixed(from, to); /* (a change and back within it: not on Earth) */
	/* One change in between: find it; both offsets keep UTC quarter hours. */
	lo = from;
	hi = to - 1;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;

		if (off(p, mid) == oa)
			lo = mid;
		else
			hi = mid;
	}
	return count_fixed(from, hi) + count_fixed(hi, to);
}

void lp_engine_init(struct lp_engine *e)
{
	memset(e, 0, sizeof(*e));
}

static void take(struct lp_engine *e, const struct lp_sample *s)
{
	for (int ch = 0; ch < LP_NCH; ch++)
		if (s->ok & (1u << ch)) {
			e->ch_ms[ch] = s->ms;
			e->ch_v[ch] = s->v[ch];
		}
	e->ch_ok |= s->ok;
	e->last_ms = s->ms;
	e->have_prev = true;
}

/* Start over from s: the interval it falls in is unknown unless s lies
 * exactly on its start. */
static void restart(struct lp_engine *e, const struct lp_params *p, const struct lp_sample *s)
{
	lp_engine_init(e);
	e->cur_start = lp_prev_boundary(p, floor_div(s->ms, 1000));
	if (e->cur_start * 1000 == s->ms) {
		e->cur_known = s->ok & LP_ALL_CH;
		memcpy(e->cur_v, s->v, sizeof(e->cur_v));
	}
	take(e, s);
}

/* Channels whose step from their last good value to s can be interpolated. */
static uint16_t valid_pairs(const struct lp_engine *e, const struct lp_params *p,
			    const struct lp_sample *s)
{
	uint16_t valid = 0;

	for (int ch = 0; ch < LP_NCH; ch++) {
		uint16_t bit = (uint16_t)(1u << ch);
		int64_t dt;
		double dv, lim;

		if (!(s->ok & bit) || !(e->ch_ok & bit) || !isfinite(s->v[ch]))
			continue;
		dt = s->ms - e->ch_ms[ch];
		dv = s->v[ch] - e->ch_v[ch];
		lim = p->max_step * (dt > IV * 1000 ? (double)dt / (IV * 1000.0) : 1.0);
		if (dt > 0 && dt <= (int64_t)p->max_gap_s * 1000 && dv >= 0 && dv <= lim)
			valid |= bit;
	}
	return valid;
}

int lp_engine_push(struct lp_engine *e, const struct lp_params *params, const struct lp_sample *s,
		   lp_emit_fn emit, void *arg)
{
	struct lp_params p = *params;
	int64_t b, skip_before, now_s = floor_div(s->ms, 1000);
	uint16_t valid;
	int n = 0;

	lp_params_default(&p);
	if (!e->have_prev || s->ms < e->last_ms - (int64_t)p.max_gap_s * 1000) {
		restart(e, &p, s);
		return 0;
	}
	if (s->ms <= e->last_ms)
		return 0;
	valid = valid_pairs(e, &p, s);
	skip_before = now_s - (int64_t)p.max_missing * IV;
	b = lp_next_boundary(&p, floor_div(e->last_ms, 1000));
	if (b < skip_before - 2 * 3600) {
		/* A gap longer than max_missing intervals: jump (all unknown anyway). */
		e->cur_start = lp_prev_boundary(&p, skip_before);
		e->cur_known = 0;
		b = lp_next_boundary(&p, e->cur_start);
	}
	for (; b * 1000 <= s->ms; b = lp_next_boundary(&p, b)) {
		struct lp_interval iv = {.start = e->cur_start};
		double vb[LP_NCH] = {0};
		uint16_t kb = 0, present = e->cur_known & valid & (uint16_t)~e->cur_broken;

		for (int ch = 0; ch < LP_NCH; ch++) {
			uint16_t bit = (uint16_t)(1u << ch);

			if (b * 1000 == s->ms && (s->ok & bit)) {
				vb[ch] = s->v[ch]; /* a sample on the boundary is exact */
				kb |= bit;
			} else if (valid & bit) {
				double f = (double)(b * 1000 - e->ch_ms[ch]) /
					   (double)(s->ms - e->ch_ms[ch]);

				vb[ch] = e->ch_v[ch] + (s->v[ch] - e->ch_v[ch]) * f;
				kb |= bit;
			}
			if (present & bit)
				iv.e[ch] = vb[ch] - e->cur_v[ch];
		}
		iv.present = present;
		if (iv.start >= skip_before) {
			if (emit)
				emit(&iv, arg);
			n++;
		}
		e->cur_start = b;
		memcpy(e->cur_v, vb, sizeof(vb));
		e->cur_known = kb;
		e->cur_broken = 0;
	}
	/* Part of this step lies in the interval now in progress: an implausible
	 * step (both ends read, not interpolable) spoils it. */
	if (s->ms > e->cur_start * 1000)
		e->cur_broken |= (uint16_t)(s->ok & e->ch_ok & ~valid & LP_ALL_CH);
	take(e, s);
	return n;
}

static int ch_of(enum desc_unit u, enum desc_dir dir, unsigned phase)
{
	if (dir == DIR_BIDIR || phase > 3)
		return -1;
	if (u == UNIT_WH && phase == 0)
		return dir == DIR_IMPORT ? LP_AI : LP_AE;
	if (u == UNIT_WH)
		return (dir == DIR_IMPORT ? LP_AI1 : LP_AE1) + (int)phase - 1;
	if (u == UNIT_VARH && phase == 0)
		return dir == DIR_IMPORT ? LP_RI : LP_RE;
	return -1;
}

uint16_t lp_from_dev(const struct dev *d, struct lp_sample *s)
{
	int chosen[LP_NCH];
	uint16_t supported = 0;

	memset(s, 0, sizeof(*s));
	s->ms = d->ctr_ms;
	if (!d->d)
		return 0;
	for (int ch = 0; ch < LP_NCH; ch++)
		chosen[ch] = -1;
	/* Non-resettable counters first, then resettable ones for what is left. */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned k = 0; k < d->d->nctr && k < DESC_CTR_MAX; k++) {
			const struct desc_counter *c = &d->d->ctr[k];
			enum desc_unit u = c->unit.present ? d->ctr_unit[k] : c->fixed_unit;
			enum desc_dir dir = c->quadrants.present ? d->ctr_dir[k] : c->fixed_dir;
			int ch;

			if (c->resettable != (pass == 1))
				continue;
			/* A meter wired in reverse swaps what it calls import and export. */
			if (d->reverse && dir != DIR_BIDIR)
				dir = dir == DIR_IMPORT ? DIR_EXPORT : DIR_IMPORT;
			ch = ch_of(u, dir, c->phase);
			if (ch >= 0 && chosen[ch] < 0)
				chosen[ch] = (int)k;
		}
	for (int ch = 0; ch < LP_NCH; ch++) {
		int k = chosen[ch];
		double v;

		if (k < 0)
			continue;
		supported |= (uint16_t)(1u << ch);
		if (!d->ctr_ok[k])
			continue;
		v = d->ctr[k] * pow(10, d->ctr_exp[k]);
		if (!isfinite(v))
			continue;
		s->v[ch] = v;
		s->ok |= (uint16_t)(1u << ch);
	}
	return supported;
}
