/* Device model of the simulator: a slowly evolving three-phase load, energy
 * counters integrating it, and the register image encoded from both through
 * the device description, so the daemon and the simulator share one map. */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAU (2.0 * M_PI)
#define DEG (M_PI / 180.0)
#define SW_VERSION 123 /* served as-is: 1.23 */

/* Values of one instant: [quantity][phase], phase 0 = total / not per phase. */
typedef double sim_vals[QTY_COUNT][DESC_PHASES_MAX + 1];

/* ---- register image ---- */

static unsigned field_words(const struct desc_field *f)
{
	return f->type == DEC_STRING ? f->words : dec_type_words(f->type);
}

/* The image words of a field, or NULL when it does not fit the space. */
static uint16_t *field_ptr(const struct sim_dev *dv, const struct desc_field *f)
{
	unsigned n = field_words(f);

	if (!f->present || n == 0 || (unsigned)f->reg + n > SIM_NREGS || f->space > SPACE_HOLDING)
		return NULL;
	return dv->regs[f->space] + f->reg;
}

static void mark_range(struct sim_dev *dv, enum desc_space sp, unsigned start, unsigned n)
{
	unsigned i;

	if (sp > SPACE_HOLDING || start + n > SIM_NREGS)
		return;
	for (i = start; i < start + n; i++)
		dv->defined[sp][i / 8] |= (uint8_t)(1u << (i % 8));
}

static void mark_defined(struct sim_dev *dv, const struct desc_field *f)
{
	if (field_ptr(dv, f))
		mark_range(dv, f->space, f->reg, field_words(f));
}

bool sim_defined(const struct sim_dev *dv, enum desc_space sp, unsigned reg)
{
	if (sp > SPACE_HOLDING || reg >= SIM_NREGS)
		return false;
	return dv->defined[sp][reg / 8] & (1u << (reg % 8));
}

static bool is_int_type(enum dec_type t)
{
	return t == DEC_UINT16 || t == DEC_INT16 || t == DEC_UINT32 || t == DEC_INT32;
}

/* Encode a raw (unscaled) number into a field; 0 or -errno, image untouched
 * on error. */
static int field_put_raw(struct sim_dev *dv, const struct desc_field *f, double raw)
{
	uint16_t *p = field_ptr(dv, f), w[2];
	int rc;

	if (!p || f->type == DEC_STRING)
		return -EINVAL;
	rc = dec_encode_number(f->type, raw, w);
	if (rc < 0)
		return rc;
	memcpy(p, w, field_words(f) * sizeof(uint16_t));
	return 0;
}

static double field_scale(const struct desc_field *f)
{
	return f->scale != 0 ? f->scale : 1.0;
}

static void field_put_string(struct sim_dev *dv, const struct desc_field *f, const char *s)
{
	uint16_t *p = field_ptr(dv, f);

	if (p && f->type == DEC_STRING)
		dec_encode_string(s, p, f->words);
}

int sim_field_number(const struct sim_dev *dv, const struct desc_field *f, double *out)
{
	const uint16_t *p = field_ptr(dv, f);
	double raw;

	if (!p || f->type == DEC_STRING || dec_number(f->type, p, &raw) < 0)
		return -EINVAL;
	*out = raw * field_scale(f);
	return 0;
}

void sim_field_string(const struct sim_dev *dv, const struct desc_field *f, char *buf, size_t len)
{
	const uint16_t *p = field_ptr(dv, f);

	if (len == 0)
		return;
	buf[0] = '\0';
	if (p && f->type == DEC_STRING)
		dec_string(p, f->words, buf, len);
}

/* ---- physics ---- */

static double wave(const struct sim_dev *dv, double t, double period, unsigned k)
{
	return sin(TAU * t / period + dv->off[k % 16]);
}

static unsigned nphases(const struct sim_dev *dv)
{
	unsigned n = dv->d->phases;

	return n == 0 ? 1 : n > DESC_PHASES_MAX ? DESC_PHASES_MAX : n;
}

/* A pinned value overrides the physics of exactly that measurement. */
static double pinned(const struct sim_dev *dv, enum desc_qty q, unsigned ph, double v)
{
	unsigned i;

	for (i = 0; i < dv->npins; i++)
		if (dv->pins[i].qty == q && dv->pins[i].phase == ph)
			return dv->pins[i].value;
	return v;
}

/* Per-phase values: U, I and angle evolve; powers follow from them. */
static void phase_values(const struct sim_dev *dv, double t, unsigned p, sim_vals v)
{
	double u = pinned(dv, QTY_U, p, 230.0 * (1.0 + 0.01 * wave(dv, t, 600, p)));
	double i = pinned(dv, QTY_I, p, 7.0 + 5.0 * wave(dv, t, 300, 3 + p));
	double pa = pinned(dv, QTY_PA, p, 22.5 + 12.5 * wave(dv, t, 420, 6 + p));

	v[QTY_U][p] = u;
	v[QTY_I][p] = i;
	v[QTY_PA][p] = pa;
	v[QTY_P][p] = pinned(dv, QTY_P, p, u * i * cos(pa * DEG));
	v[QTY_Q][p] = pinned(dv, QTY_Q, p, u * i * sin(pa * DEG));
	v[QTY_S][p] = pinned(dv, QTY_S, p, u * i);
	v[QTY_PF][p] = pinned(dv, QTY_PF, p, cos(pa * DEG));
	v[QTY_THDU][p] = pinned(dv, QTY_THDU, p, 2.0 + wave(dv, t, 200, 9 + p));
	v[QTY_THDI][p] = pinned(dv, QTY_THDI, p, 17.5 + 12.5 * wave(dv, t, 250, 12 + p));
}

/* Phase-to-phase voltage of phasors 120° apart: |Ua - Ub|. */
static double upp(double ua, double ub)
{
	return sqrt(ua * ua + ub * ub + ua * ub);
}

static void total_values(const struct sim_dev *dv, double t, sim_vals v)
{
	unsigned p, n = nphases(dv);
	double sum[QTY_COUNT] = {0};
	static const enum desc_qty summed[] = {QTY_U, QTY_I, QTY_P, QTY_Q, QTY_S};
	unsigned k;

	for (p = 1; p <= n; p++) {
		for (k = 0; k < sizeof(summed) / sizeof(summed[0]); k++)
			sum[summed[k]] += v[summed[k]][p];
		v[QTY_UPP][p] = pinned(dv, QTY_UPP, p, upp(v[QTY_U][p], v[QTY_U][p % n + 1]));
	}
	v[QTY_U][0] = pinned(dv, QTY_U, 0, sum[QTY_U] / n);
	v[QTY_I][0] = pinned(dv, QTY_I, 0, sum[QTY_I]);
	v[QTY_P][0] = pinned(dv, QTY_P, 0, sum[QTY_P]);
	v[QTY_Q][0] = pinned(dv, QTY_Q, 0, sum[QTY_Q]);
	v[QTY_S][0] = pinned(dv, QTY_S, 0, sum[QTY_S]);
	v[QTY_PF][0] = pinned(dv, QTY_PF, 0, v[QTY_S][0] > 0 ? v[QTY_P][0] / v[QTY_S][0] : 1.0);
	v[QTY_PA][0] = pinned(dv, QTY_PA, 0, atan2(v[QTY_Q][0], v[QTY_P][0]) / DEG);
	v[QTY_FREQ][0] = pinned(dv, QTY_FREQ, 0, 50.0 + 0.05 * wave(dv, t, 97, 0));
	v[QTY_TEMP][0] = pinned(dv, QTY_TEMP, 0, 35.0 + 5.0 * wave(dv, t, 900, 4));
	v[QTY_TARIFF][0] = pinned(dv, QTY_TARIFF, 0, 1.0);
	v[QTY_THDU][0] = pinned(dv, QTY_THDU, 0, v[QTY_THDU][1]);
	v[QTY_THDI][0] = pinned(dv, QTY_THDI, 0, v[QTY_THDI][1]);
	v[QTY_UPP][0] = pinned(dv, QTY_UPP, 0, v[QTY_UPP][1]);
}

static void compute(const struct sim_dev *dv, double t, sim_vals v)
{
	unsigned p;

	memset(v, 0, sizeof(sim_vals));
	for (p = 1; p <= nphases(dv); p++)
		phase_values(dv, t, p, v);
	total_values(dv, t, v);
}

/* ---- measurements ---- */

/* T7 carries the quadrant: export when P < 0, capacitive when Q leads. */
static int put_pf(struct sim_dev *dv, const struct desc_field *f, const sim_vals v, unsigned ph,
		  double pf)
{
	uint16_t *p = field_ptr(dv, f);
	struct dec_pf d = {.pf = fabs(pf)};

	if (!p || fabs(pf) > 1 || !isfinite(pf))
		return -ERANGE;
	d.export = v[QTY_P][ph] < 0;
	d.capacitive = d.export ? v[QTY_Q][ph] > 0 : v[QTY_Q][ph] < 0;
	dec_encode_t7(&d, p);
	return 0;
}

static int put_meas(struct sim_dev *dv, const struct desc_meas *m, const sim_vals v, double val)
{
	double raw = val / field_scale(&m->f);

	if (m->f.type == DEC_T7)
		return put_pf(dv, &m->f, v, m->phase, val);
	if (is_int_type(m->f.type))
		raw = nearbyint(raw);
	return field_put_raw(dv, &m->f, raw);
}

static void encode_meas(struct sim_dev *dv, const sim_vals v)
{
	unsigned i;
	const struct desc_meas *m;

	for (i = 0; i < dv->d->nmeas; i++) {
		m = &dv->d->meas[i];
		if (m->phase <= DESC_PHASES_MAX && m->qty < QTY_COUNT)
			put_meas(dv, m, v, v[m->qty][m->phase]);
	}
}

int sim_meas_value(const struct sim_dev *dv, unsigned i, double *out)
{
	const struct desc_meas *m = &dv->d->meas[i];
	const uint16_t *p = field_ptr(dv, &m->f);
	struct dec_pf pf;

	if (m->f.type != DEC_T7)
		return sim_field_number(dv, &m->f, out);
	if (!p)
		return -EINVAL;
	dec_t7(p, &pf);
	*out = pf.pf * field_scale(&m->f);
	return 0;
}

/* ---- counters ---- */

static double pow10i(double m, int e)
{
	/* divide by exact powers of ten, as the decoder does */
	return e >= 0 ? m * pow(10.0, e) : m / pow(10.0, -e);
}

static uint16_t dir_mask(enum desc_dir d)
{
	return d == DIR_IMPORT ? 6 : d == DIR_EXPORT ? 3 : 15;
}

static void ctr_config(const struct sim_dev *dv, unsigned k, enum desc_unit *u, enum desc_dir *d)
{
	const struct desc_counter *c = &dv->d->ctr[k];
	double code;

	*u = c->fixed_unit;
	*d = c->fixed_dir;
	if (c->unit.present && sim_field_number(dv, &c->unit, &code) == 0)
		*u = desc_unit_from_code((uint16_t)code);
	if (c->quadrants.present && sim_field_number(dv, &c->quadrants, &code) == 0)
		*d = desc_dir_from_mask((uint16_t)code);
}

static void ctr_encode(struct sim_dev *dv, unsigned k)
{
	const struct desc_counter *c = &dv->d->ctr[k];
	int e = c->exponent.present ? dv->ctr_exp[k] : 0;
	double raw = pow10i(dv->ctr_val[k], -e) / field_scale(&c->value);

	/* floor, not round: a counter never shows energy not yet counted */
	if (is_int_type(c->value.type))
		raw = floor(raw);
	field_put_raw(dv, &c->value, raw);
	if (c->exponent.present)
		field_put_raw(dv, &c->exponent, e);
}

int sim_ctr_value(const struct sim_dev *dv, unsigned k, double *out, enum desc_unit *unit,
		  enum desc_dir *dir)
{
	const struct desc_counter *c = &dv->d->ctr[k];
	double v, e = 0;

	if (sim_field_number(dv, &c->value, &v) < 0)
		return -EINVAL;
	if (c->exponent.present && sim_field_number(dv, &c->exponent, &e) < 0)
		return -EINVAL;
	*out = pow10i(v, (int)e);
	ctr_config(dv, k, unit, dir);
	return 0;
}

static void ctr_integrate(struct sim_dev *dv, unsigned k, const sim_vals v, double dt)
{
	const struct desc_counter *c = &dv->d->ctr[k];
	enum desc_unit u;
	enum desc_dir d;
	unsigned ph = c->phase <= nphases(dv) ? c->phase : 0;
	double x;

	ctr_config(dv, k, &u, &d);
	x = u == UNIT_VARH ? v[QTY_Q][ph] : u == UNIT_VAH ? v[QTY_S][ph] : v[QTY_P][ph];
	if (d == DIR_IMPORT)
		x = x > 0 ? x : 0;
	else if (d == DIR_EXPORT)
		x = x < 0 ? -x : 0;
	dv->ctr_val[k] += x * dt / 3600.0;
}

/* Whether v fits counter c's registers with exponent e. */
static bool ctr_fits(const struct desc_counter *c, double v, int e)
{
	double raw = pow10i(v, c->exponent.present ? -e : 0) / field_scale(&c->value);
	uint16_t w[2];

	if (is_int_type(c->value.type))
		raw = floor(raw);
	return dec_encode_number(c->value.type, raw, w) == 0;
}

/* Counter k's unit and direction when the meter lets us choose: a plausible
 * list cycling Wh import, Wh export, varh import, varh export, VAh import. */
static void ctr_pattern(unsigned k, enum desc_unit *u, enum desc_dir *d)
{
	static const enum desc_unit units[] = {UNIT_WH, UNIT_WH, UNIT_VARH, UNIT_VARH, UNIT_VAH};
	static const enum desc_dir dirs[] = {DIR_IMPORT, DIR_EXPORT, DIR_IMPORT, DIR_EXPORT,
					     DIR_IMPORT};

	*u = units[k % 5];
	*d = dirs[k % 5];
}

/* Position of counter k within its list (resettable or not), so each list
 * starts with Wh import like a real meter's. */
static unsigned group_index(const struct desc *d, unsigned k)
{
	unsigned i, n = 0;

	for (i = 0; i < k; i++)
		n += d->ctr[i].resettable == d->ctr[k].resettable;
	return n;
}

/* A start value from the seed: some MWh imported, far less exported. */
static double ctr_start(struct sim_dev *dv, const struct desc_counter *c, enum desc_unit u,
			enum desc_dir d, uint64_t *rng)
{
	double v = 1e6 + 4e6 * sim_rand01(rng);

	if (u == UNIT_VARH)
		v *= 0.3;
	if (d == DIR_EXPORT)
		v *= 0.02 + 0.03 * sim_rand01(rng);
	if (c->resettable)
		v *= 0.1 + 0.4 * sim_rand01(rng);
	(void)dv;
	return floor(v);
}

/* Exponents -1, 0, 1 in turn so clients exercise all three; raised while the
 * value would not fit an int32. */
static int ctr_pick_exp(unsigned k, double v)
{
	int e = (int)(k % 3) - 1;

	while (pow10i(fabs(v), -e) > 2.0e9)
		e++;
	return e;
}

static void ctr_init(struct sim_dev *dv, unsigned k, uint64_t *rng)
{
	const struct desc_counter *c = &dv->d->ctr[k];
	enum desc_unit u = c->fixed_unit;
	enum desc_dir d = c->fixed_dir;

	if (c->unit.present)
		ctr_pattern(group_index(dv->d, k), &u, &d);
	if (c->unit.present)
		field_put_raw(dv, &c->unit, u == UNIT_VARH ? 2 : u == UNIT_VAH ? 3 : 1);
	if (c->quadrants.present)
		field_put_raw(dv, &c->quadrants, dir_mask(d));
	/* Tariffs: the first counter of a list in all four, then one each. */
	if (c->tariff_mask.present)
		field_put_raw(dv, &c->tariff_mask,
			      group_index(dv->d, k) % 5 ? 1u << (group_index(dv->d, k) % 5 - 1)
							: 0x0F);
	if (c->phase_code.present)
		field_put_raw(dv, &c->phase_code, c->phase);
	dv->ctr_val[k] = ctr_start(dv, c, u, d, rng);
	dv->ctr_exp[k] = is_int_type(c->value.type) ? ctr_pick_exp(k, dv->ctr_val[k]) : 0;
}

/* ---- load profile ---- */

/* What each profile channel captures, by channel number. The order is enum
 * lp_ch of sg/loadprof.h (and the loader's channel names in desc.c). */
static const struct {
	const char *name;
	enum desc_unit unit;
	enum desc_dir dir;
	uint8_t phase;
} lp_chan[] = {
    {"ai", UNIT_WH, DIR_IMPORT, 0},   {"ae", UNIT_WH, DIR_EXPORT, 0},
    {"ri", UNIT_VARH, DIR_IMPORT, 0}, {"re", UNIT_VARH, DIR_EXPORT, 0},
    {"ai1", UNIT_WH, DIR_IMPORT, 1},  {"ai2", UNIT_WH, DIR_IMPORT, 2},
    {"ai3", UNIT_WH, DIR_IMPORT, 3},  {"ae1", UNIT_WH, DIR_EXPORT, 1},
    {"ae2", UNIT_WH, DIR_EXPORT, 2},  {"ae3", UNIT_WH, DIR_EXPORT, 3},
};
#define LP_NCHAN (sizeof(lp_chan) / sizeof(lp_chan[0]))

const char *sim_lp_channel_name(unsigned ch)
{
	return ch < LP_NCHAN ? lp_chan[ch].name : "?";
}

/* The counter a channel captures: the first with the channel's current unit,
 * direction and phase, non-resettable ones before resettable ones (a meter
 * records what a reset cannot disturb); -1 when there is none. */
static int lp_counter(const struct sim_dev *dv, unsigned ch)
{
	const struct desc *d = dv->d;
	enum desc_unit u;
	enum desc_dir dir;
	unsigned pass, k;

	if (ch >= LP_NCHAN)
		return -1;
	for (pass = 0; pass < 2; pass++)
		for (k = 0; k < d->nctr; k++) {
			if (d->ctr[k].resettable != (pass == 1) ||
			    d->ctr[k].phase != lp_chan[ch].phase)
				continue;
			ctr_config(dv, k, &u, &dir);
			if (u == lp_chan[ch].unit && dir == lp_chan[ch].dir)
				return (int)k;
		}
	return -1;
}

/* Register off of ring entry i as a field of type t, so that encoding and
 * decoding go the usual way. */
static struct desc_field lp_field(const struct desc_lprofile *lp, unsigned i, unsigned off,
				  enum dec_type t)
{
	return (struct desc_field){.present = true,
				   .space = lp->space,
				   .reg = (uint16_t)(lp->base + i * lp->stride + off),
				   .type = t,
				   .words = (uint16_t)dec_type_words(t),
				   .scale = 1};
}

/* Integer registers wrap around like a real meter's rather than refusing a
 * value too large for them. */
static double lp_wrap(enum dec_type t, double raw)
{
	double m = t == DEC_UINT16 || t == DEC_INT16 ? 65536.0 : 4294967296.0;

	raw = fmod(raw, m);
	if (raw < 0)
		raw += m;
	if ((t == DEC_INT16 || t == DEC_INT32) && raw >= m / 2)
		raw -= m;
	return raw;
}

/* Write one capture into ring entry i (already zeroed). */
static void lp_put(struct sim_dev *dv, unsigned i, int64_t ms, const double *ctr)
{
	const struct desc_lprofile *lp = &dv->d->lprof;
	const struct desc_lp_channel *ch;
	struct desc_field f;
	double raw;
	unsigned c;
	int k;

	f = lp_field(lp, i, lp->time_offset, DEC_UINT32);
	field_put_raw(dv, &f, (double)(ms / 1000));
	for (c = 0; c < lp->nch; c++) {
		ch = &lp->ch[c];
		k = lp_counter(dv, ch->channel);
		raw = k < 0 ? 0 : ctr[k] / ch->scale;
		/* floor, not round: as the counters, never energy not yet counted */
		if (is_int_type(ch->type))
			raw = lp_wrap(ch->type, floor(raw));
		f = lp_field(lp, i, ch->offset, ch->type);
		field_put_raw(dv, &f, raw);
	}
}

/* Capture instants are the multiples of the interval in UTC. Those in
 * (w0, w1] after the newest entry are added, each with the counters
 * interpolated between before[] (at w0) and the current values (at w1); the
 * ring shifts once for all of them. */
static void lp_capture(struct sim_dev *dv, const double *before, int64_t w0, int64_t w1)
{
	const struct desc_lprofile *lp = &dv->d->lprof;
	int64_t iv = (int64_t)lp->interval_s * 1000, first, last, b;
	double at[DESC_CTR_MAX];
	uint16_t *ring;
	unsigned n, i, k;

	if (!lp->present || iv <= 0 || w1 <= w0)
		return;
	first = ((w0 > dv->lp_newest_ms ? w0 : dv->lp_newest_ms) / iv + 1) * iv;
	last = w1 / iv * iv;
	if (last < first || last / 1000 > UINT32_MAX)
		return;
	/* older captures would only be pushed out of the ring again */
	if ((last - first) / iv >= lp->entries)
		first = last - (int64_t)(lp->entries - 1) * iv;
	n = (unsigned)((last - first) / iv + 1);
	ring = dv->regs[lp->space] + lp->base;
	memmove(ring + (size_t)n * lp->stride, ring,
		(size_t)(lp->entries - n) * lp->stride * sizeof(uint16_t));
	memset(ring, 0, (size_t)n * lp->stride * sizeof(uint16_t));
	for (i = 0; i < n; i++) {
		b = last - (int64_t)i * iv;
		for (k = 0; k < dv->d->nctr; k++)
			at[k] = before[k] +
				(dv->ctr_val[k] - before[k]) * (double)(b - w0) / (double)(w1 - w0);
		lp_put(dv, i, b, at);
	}
	dv->lp_newest_ms = last;
	dv->lp_count = dv->lp_count + n > lp->entries ? lp->entries : dv->lp_count + n;
	field_put_raw(dv, &lp->count, dv->lp_count);
}

int sim_lp_entry(const struct sim_dev *dv, unsigned i, int64_t *time_s, double *v)
{
	const struct desc_lprofile *lp = &dv->d->lprof;
	struct desc_field f;
	double x;
	unsigned c;

	if (!lp->present || i >= lp->entries)
		return -ENOENT;
	f = lp_field(lp, i, lp->time_offset, DEC_UINT32);
	if (sim_field_number(dv, &f, &x) < 0 || x == 0)
		return -ENOENT;
	*time_s = (int64_t)x;
	for (c = 0; c < lp->nch; c++) {
		f = lp_field(lp, i, lp->ch[c].offset, lp->ch[c].type);
		if (sim_field_number(dv, &f, &x) < 0)
			x = 0;
		v[c] = x * lp->ch[c].scale;
	}
	return 0;
}

/* The whole ring and the count register are defined; they start empty, so
 * a fresh meter has no history the test did not make. */
static void lp_init(struct sim_dev *dv)
{
	const struct desc_lprofile *lp = &dv->d->lprof;

	if (!lp->present)
		return;
	mark_range(dv, lp->space, lp->base, (unsigned)lp->entries * lp->stride);
	mark_defined(dv, &lp->count);
	field_put_raw(dv, &lp->count, 0);
}

void sim_dev_step(struct sim_dev *dv, double t, double dt, int64_t w0_ms, int64_t w1_ms)
{
	double before[DESC_CTR_MAX];

	memcpy(before, dv->ctr_val, sizeof(before));
	sim_dev_tick(dv, t, dt);
	lp_capture(dv, before, w0_ms, w1_ms);
}

int sim_dev_set_counter(struct sim_dev *dv, unsigned k, double value)
{
	const struct desc_counter *c;
	int e;

	if (k >= dv->d->nctr)
		return -ENOENT;
	c = &dv->d->ctr[k];
	e = dv->ctr_exp[k];
	if (!isfinite(value) || value < 0)
		return -ERANGE;
	/* a larger value may need the next exponent, as at start */
	if (!ctr_fits(c, value, e) && c->exponent.present)
		e = ctr_pick_exp(k, value);
	if (!ctr_fits(c, value, e))
		return -ERANGE;
	dv->ctr_val[k] = value;
	dv->ctr_exp[k] = e;
	ctr_encode(dv, k);
	return 0;
}

/* ---- device ---- */

static void mark_all(struct sim_dev *dv)
{
	const struct desc *d = dv->d;
	const struct desc_field *fixed[] = {
	    &d->id_model,    &d->id_serial,   &d->id_sw_version, &d->id_description,
	    &d->id_location, &d->reverse,     &d->relay,	 &d->comm_baud,
	    &d->comm_stop,   &d->comm_parity, &d->comm_data,	 &d->comm_addr,
	};
	unsigned i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		mark_defined(dv, fixed[i]);
	for (i = 0; i < d->nmeas; i++)
		mark_defined(dv, &d->meas[i].f);
	for (i = 0; i < d->nctr; i++) {
		mark_defined(dv, &d->ctr[i].value);
		mark_defined(dv, &d->ctr[i].exponent);
		mark_defined(dv, &d->ctr[i].unit);
		mark_defined(dv, &d->ctr[i].quadrants);
		mark_defined(dv, &d->ctr[i].tariff_mask);
		mark_defined(dv, &d->ctr[i].phase_code);
	}
	for (i = 0; i < d->nconsts; i++)
		mark_defined(dv, &d->consts[i].f);
}

static void init_ident(struct sim_dev *dv, unsigned baud)
{
	const struct desc *d = dv->d;
	char text[64];
	int code = sim_code_of_baud(baud);

	field_put_string(dv, &d->id_model, dv->model);
	field_put_string(dv, &d->id_serial, dv->serial);
	field_put_raw(dv, &d->id_sw_version, SW_VERSION);
	snprintf(text, sizeof(text), "%s sim", dv->model);
	field_put_string(dv, &d->id_description, text);
	field_put_string(dv, &d->id_location, "Lab");
	field_put_raw(dv, &d->reverse, 0);
	field_put_raw(dv, &d->relay, d->relay_off);
	field_put_raw(dv, &d->comm_baud, code < 0 ? 7 : code);
	field_put_raw(dv, &d->comm_stop, 1);
	field_put_raw(dv, &d->comm_parity, 0);
	field_put_raw(dv, &d->comm_data, 8);
	field_put_raw(dv, &d->comm_addr, dv->addr);
	/* The loader checked each value fits its type. */
	for (unsigned i = 0; i < d->nconsts; i++)
		field_put_raw(dv, &d->consts[i].f,
			      d->consts[i].value / field_scale(&d->consts[i].f));
}

static int alloc_image(struct sim_dev *dv)
{
	unsigned s;

	for (s = 0; s < 4; s++) {
		dv->regs[s] = calloc(SIM_NREGS, sizeof(uint16_t));
		dv->defined[s] = calloc(SIM_NREGS / 8, 1);
		if (!dv->regs[s] || !dv->defined[s])
			return -ENOMEM;
	}
	return 0;
}

int sim_dev_init(struct sim_dev *dv, const struct desc *d, const char *model, uint8_t addr,
		 const char *serial, uint64_t seed, unsigned baud)
{
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + addr;
	unsigned i;

	memset(dv, 0, sizeof(*dv));
	dv->d = d;
	dv->addr = addr;
	dv->pend_addr = -1;
	dv->present = true;
	snprintf(dv->model, sizeof(dv->model), "%s", model);
	if (serial)
		snprintf(dv->serial, sizeof(dv->serial), "%s", serial);
	else
		snprintf(dv->serial, sizeof(dv->serial), "%.2s%06u", model, addr);
	if (alloc_image(dv) < 0)
		return -ENOMEM;
	for (i = 0; i < 16; i++)
		dv->off[i] = TAU * sim_rand01(&rng);
	mark_all(dv);
	init_ident(dv, baud);
	lp_init(dv);
	for (i = 0; i < d->nctr; i++)
		ctr_init(dv, i, &rng);
	sim_dev_tick(dv, 0, 0);
	return 0;
}

void sim_dev_free(struct sim_dev *dv)
{
	unsigned s;

	for (s = 0; s < 4; s++) {
		free(dv->regs[s]);
		free(dv->defined[s]);
		dv->regs[s] = NULL;
		dv->defined[s] = NULL;
	}
}

void sim_dev_tick(struct sim_dev *dv, double t, double dt)
{
	sim_vals v;
	unsigned k;

	compute(dv, t, v);
	for (k = 0; k < dv->d->nctr; k++) {
		if (dt > 0)
			ctr_integrate(dv, k, v, dt);
		ctr_encode(dv, k);
	}
	encode_meas(dv, v);
}

static int find_meas(const struct sim_dev *dv, enum desc_qty qty, unsigned phase)
{
	unsigned i;

	for (i = 0; i < dv->d->nmeas; i++)
		if (dv->d->meas[i].qty == qty && dv->d->meas[i].phase == phase)
			return (int)i;
	return -ENOENT;
}

/* Whether val encodes into measurement i (T5 refuses negatives and so on). */
static int pin_check(const struct sim_dev *dv, unsigned i, double val)
{
	const struct desc_meas *m = &dv->d->meas[i];
	uint16_t w[2];

	if (m->f.type == DEC_T7)
		return fabs(val) <= 1 ? 0 : -ERANGE;
	return dec_encode_number(m->f.type, val / field_scale(&m->f), w) < 0 ? -ERANGE : 0;
}

int sim_dev_pin(struct sim_dev *dv, enum desc_qty qty, unsigned phase, double value, double t)
{
	int i = find_meas(dv, qty, phase);
	unsigned k;

	if (i < 0)
		return i;
	if (pin_check(dv, (unsigned)i, value) < 0)
		return -ERANGE;
	for (k = 0; k < dv->npins; k++)
		if (dv->pins[k].qty == qty && dv->pins[k].phase == phase)
			break;
	if (k == SIM_MAX_PINS)
		return -ENOSPC;
	dv->pins[k] = (struct sim_pin){.qty = qty, .phase = (uint8_t)phase, .value = value};
	if (k == dv->npins)
		dv->npins++;
	sim_dev_tick(dv, t, 0);
	return 0;
}

void sim_dev_unpin(struct sim_dev *dv, double t)
{
	dv->npins = 0;
	sim_dev_tick(dv, t, 0);
}

int sim_relay_state(const struct sim_dev *dv)
{
	double v;

	if (!dv->d->relay.present || sim_field_number(dv, &dv->d->relay, &v) < 0)
		return -ENOENT;
	return (uint16_t)v == dv->d->relay_on;
}
