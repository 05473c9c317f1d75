/* Load-profile engine: interval count and energies over two simulated weeks
 * across the autumn DST change, a 3-hour gap, counter resets and jumps,
 * samples on boundaries, +05:45 and odd offsets, state save/restore, and the
 * mapping of a device's counters to channels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/dev.h"
#include "sg/loadprof.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EPS 1e-6

/* UTC of 01:00 UTC on the last Sunday of month (1-12) of year. */
static int64_t last_sunday_0100(int year, int month)
{
	struct tm tm = {.tm_year = year - 1900, .tm_mon = month, .tm_mday = 0, .tm_hour = 1};
	time_t t = timegm(&tm); /* day 0 of the next month = last day of month */
	struct tm g;

	gmtime_r(&t, &g);
	return (int64_t)t - (int64_t)g.tm_wday * 86400;
}

/* CET/CEST: +7200 from the last Sunday of March 01:00 UTC to the last Sunday
 * of October 01:00 UTC, else +3600. */
static int cet(time_t utc, void *arg)
{
	struct tm g;
	int y;

	(void)arg;
	gmtime_r(&utc, &g);
	y = g.tm_year + 1900;
	return utc >= last_sunday_0100(y, 3) && utc < last_sunday_0100(y, 10) ? 7200 : 3600;
}

static int fixed(time_t utc, void *arg)
{
	(void)utc;
	return *(int *)arg;
}

static int64_t utc_of(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	    .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

	return (int64_t)timegm(&tm);
}

/* Constant powers (W / var) per channel; zero export. */
static const double power[LP_NCH] = {2000, 0, 300, 40, 700, 600, 700, 0, 0, 0};

struct run {
	struct lp_engine e;
	struct lp_params p;
	struct lp_interval *iv;
	size_t n, cap;
	double base[LP_NCH]; /* counter value at t = 0 */
};

static void emit(const struct lp_interval *iv, void *arg)
{
	struct run *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->iv = realloc(r->iv, r->cap * sizeof(*r->iv));
		assert_non_null(r->iv);
	}
	r->iv[r->n++] = *iv;
}

static void run_init(struct run *r, lp_offset_fn fn, void *arg)
{
	memset(r, 0, sizeof(*r));
	lp_engine_init(&r->e);
	r->p.offset_s = fn;
	r->p.offset_arg = arg;
	r->p.max_gap_s = 900;
	r->p.max_step = 1e6;
	for (int ch = 0; ch < LP_NCH; ch++)
		r->base[ch] = 1e6 + 1000.0 * ch;
}

/* Counter value of ch at t (ms) with constant power from t0 (ms). */
static double ctr_at(const struct run *r, int ch, int64_t t0, int64_t t)
{
	return r->base[ch] + power[ch] * (double)(t - t0) / 3.6e6;
}

static void push(struct run *r, int64_t ms, int64_t t0)
{
	struct lp_sample s = {.ms = ms, .ok = LP_ALL_CH};

	for (int ch = 0; ch < LP_NCH; ch++)
		s.v[ch] = ctr_at(r, ch, t0, ms);
	lp_engine_push(&r->e, &r->p, &s, emit, r);
}

static void check_interval_full(const struct lp_interval *iv)
{
	assert_int_equal(iv->present, LP_ALL_CH);
	for (int ch = 0; ch < LP_NCH; ch++)
		if (fabs(iv->e[ch] - power[ch] * 0.25) > EPS)
			fail_msg("interval %lld ch %s: %.9f, want %.9f", (long long)iv->start,
				 lp_ch_name((enum lp_ch)ch), iv->e[ch], power[ch] * 0.25);
}

static void test_two_weeks_autumn_dst(void **state)
{
	struct run r;
	int64_t t0 = utc_of(2026, 10, 18, 22, 0); /* Mon 19 Oct 00:00 CEST */
	int64_t t1 = utc_of(2026, 11, 1, 23, 0);  /* Mon 2 Nov 00:00 CET */
	int per_day[14] = {0};
	int64_t day0;
	double sum[LP_NCH] = {0};

	(void)state;
	run_init(&r, cet, NULL);
	assert_int_equal(cet((time_t)t0, NULL), 7200);
	assert_int_equal(cet((time_t)t1, NULL), 3600);
	for (int64_t ms = t0 * 1000; ms <= t1 * 1000; ms += 10000)
		push(&r, ms, t0 * 1000);
	assert_int_equal(r.n, 1348); /* 13 × 96 + 100 */
	day0 = lp_local_day(&r.p, t0);
	for (size_t i = 0; i < r.n; i++) {
		const struct lp_interval *iv = &r.iv[i];
		int64_t d = lp_local_day(&r.p, iv->start) - day0;

		assert_int_equal(iv->start, t0 + 900 * (int64_t)i);
		assert_int_equal((iv->start + cet((time_t)iv->start, NULL)) % 900, 0);
		check_interval_full(iv);
		assert_true(d >= 0 && d < 14);
		per_day[d]++;
		for (int ch = 0; ch < LP_NCH; ch++)
			sum[ch] += iv->e[ch];
	}
	for (int d = 0; d < 14; d++)
		assert_int_equal(per_day[d], d == 6 ? 100 : 96); /* Sun 25 Oct: 25 hours */
	/* telescoping: the sum is the counter difference */
	for (int ch = 0; ch < LP_NCH; ch++)
		assert_true(fabs(sum[ch] - (ctr_at(&r, ch, t0 * 1000, t1 * 1000) - r.base[ch])) <
			    1e-6);
	/* the same days through the calendar helpers */
	assert_int_equal(
	    lp_count_intervals(&r.p, lp_day_start(&r.p, day0 + 6), lp_day_start(&r.p, day0 + 7)),
	    100);
	assert_int_equal(lp_day_start(&r.p, day0), t0);
	assert_int_equal(lp_day_start(&r.p, day0 + 14), t1);
	free(r.iv);
}

static void test_spring_day_92(void **state)
{
	struct lp_params p = {.offset_s = cet};
	int64_t d = lp_local_day(&p, utc_of(2026, 3, 29, 12, 0));

	(void)state;
	assert_int_equal(lp_day_start(&p, d), utc_of(2026, 3, 28, 23, 0));
	assert_int_equal(lp_day_start(&p, d + 1), utc_of(2026, 3, 29, 22, 0));
	assert_int_equal(lp_count_intervals(&p, lp_day_start(&p, d), lp_day_start(&p, d + 1)), 92);
	assert_int_equal(lp_count_intervals(&p, lp_day_start(&p, d + 1), lp_day_start(&p, d + 2)),
			 96);
	/* the boundary after the change is 03:00 CEST = 01:00 UTC */
	assert_int_equal(lp_next_boundary(&p, utc_of(2026, 3, 29, 0, 50)),
			 utc_of(2026, 3, 29, 1, 0));
	assert_int_equal(lp_prev_boundary(&p, utc_of(2026, 3, 29, 1, 7)),
			 utc_of(2026, 3, 29, 1, 0));
}

/* One local day (CET, a winter day) of samples every 10 s, without the
 * samples strictly inside (gap_from, gap_to) local hours. */
static void day_with_gap(struct run *r, int64_t t0, int64_t gap_from, int64_t gap_to)
{
	for (int64_t ms = t0 * 1000; ms <= (t0 + 86400) * 1000; ms += 10000) {
		if (ms > (t0 + gap_from) * 1000 && ms < (t0 + gap_to) * 1000)
			continue;
		push(r, ms, t0 * 1000);
	}
}

static void test_three_hour_gap(void **state)
{
	struct run r;
	int64_t t0 = utc_of(2026, 1, 13, 23, 0); /* 14 Jan 00:00 CET */
	int missing = 0;

	(void)state;
	run_init(&r, cet, NULL);
	day_with_gap(&r, t0, 10 * 3600, 13 * 3600);
	assert_int_equal(r.n, 96);
	for (size_t i = 0; i < r.n; i++) {
		int64_t local = r.iv[i].start - t0;

		assert_int_equal(r.iv[i].start, t0 + 900 * (int64_t)i);
		if (local >= 10 * 3600 && local < 13 * 3600) {
			assert_int_equal(r.iv[i].present, 0);
			missing++;
		} else {
			check_interval_full(&r.iv[i]);
		}
	}
	assert_int_equal(missing, 12);
	free(r.iv);

	/* a gap that does not start or end on a boundary: the partial intervals
	 * at both ends are missing too (their energy would be invented) */
	run_init(&r, cet, NULL);
	day_with_gap(&r, t0, 10 * 3600 + 300, 13 * 3600 + 300);
	missing = 0;
	for (size_t i = 0; i < r.n; i++)
		missing += r.iv[i].present == 0;
	assert_int_equal(r.n, 96);
	assert_int_equal(missing, 13);
	free(r.iv);
}

static int count_missing(const struct run *r)
{
	int n = 0;

	for (size_t i = 0; i < r->n; i++)
		if (r->iv[i].present != LP_ALL_CH)
			n++;
	return n;
}

static void test_counter_reset_and_jump(void **state)
{
	struct run r;
	int64_t t0 = utc_of(2026, 1, 13, 23, 0), reset = t0 + 10 * 3600 + 450;
	int64_t jump = t0 + 15 * 3600 + 100;
	size_t bad_reset = 0, bad_jump = 0;

	(void)state;
	run_init(&r, cet, NULL);
	for (int64_t ms = t0 * 1000; ms <= (t0 + 86400) * 1000; ms += 10000) {
		struct lp_sample s = {.ms = ms, .ok = LP_ALL_CH};

		for (int ch = 0; ch < LP_NCH; ch++) {
			s.v[ch] = ctr_at(&r, ch, t0 * 1000, ms);
			if (ms >= reset * 1000) /* meter replaced: starts again near 0 */
				s.v[ch] -= ctr_at(&r, ch, t0 * 1000, reset * 1000) - 5;
			if (ms >= jump * 1000) /* a garbled read that sticks: +5 MWh */
				s.v[ch] += 5e6;
		}
		lp_engine_push(&r.e, &r.p, &s, emit, &r);
	}
	assert_int_equal(r.n, 96);
	for (size_t i = 0; i < r.n; i++) {
		const struct lp_interval *iv = &r.iv[i];

		for (int ch = 0; ch < LP_NCH; ch++)
			if (iv->present & (1u << ch)) {
				assert_true(iv->e[ch] >= 0);
				assert_true(iv->e[ch] <= power[ch] * 0.25 + EPS);
			}
		if (iv->start <= reset && reset < iv->start + 900)
			bad_reset = i;
		if (iv->start <= jump && jump < iv->start + 900)
			bad_jump = i;
	}
	/* exactly the interval holding the reset and the one holding the jump are
	 * missing (every channel drops or jumps there), all others are intact */
	assert_int_equal(r.iv[bad_reset].present & (1u << LP_AI), 0);
	assert_int_equal(r.iv[bad_jump].present & (1u << LP_AI), 0);
	assert_int_equal(count_missing(&r), 2);
	free(r.iv);
}

static void test_samples_on_boundaries(void **state)
{
	struct run r;
	int64_t t0 = utc_of(2026, 6, 1, 0, 0);

	(void)state;
	/* exactly one sample per boundary, 900 s apart (= max_gap_s) */
	run_init(&r, NULL, NULL);
	for (int64_t t = t0; t <= t0 + 86400; t += 900)
		push(&r, t * 1000, t0 * 1000);
	assert_int_equal(r.n, 96);
	for (size_t i = 0; i < r.n; i++)
		check_interval_full(&r.iv[i]);
	free(r.iv);

	/* a reset seen exactly on a boundary spoils the interval before it only */
	run_init(&r, NULL, NULL);
	for (int64_t t = t0; t <= t0 + 6 * 900; t += 300) {
		struct lp_sample s = {.ms = t * 1000, .ok = LP_ALL_CH};

		for (int ch = 0; ch < LP_NCH; ch++)
			s.v[ch] = t >= t0 + 2 * 900 ? power[ch] * (double)(t - t0 - 1800) / 3600
						    : ctr_at(&r, ch, t0 * 1000, t * 1000);
		lp_engine_push(&r.e, &r.p, &s, emit, &r);
	}
	assert_int_equal(r.n, 6);
	check_interval_full(&r.iv[0]);
	assert_int_equal(r.iv[1].present & (1u << LP_AI), 0);
	for (size_t i = 2; i < 6; i++)
		check_interval_full(&r.iv[i]);
	free(r.iv);

	/* the first sample off a boundary: the partial interval is missing */
	run_init(&r, NULL, NULL);
	for (int64_t t = t0 + 60; t <= t0 + 3600; t += 10)
		push(&r, t * 1000, t0 * 1000);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.iv[0].start, t0);
	assert_int_equal(r.iv[0].present, 0);
	for (size_t i = 1; i < 4; i++)
		check_interval_full(&r.iv[i]);
	free(r.iv);
}

static void offset_day(int off_s)
{
	struct run r;
	int64_t t0 = utc_of(2026, 7, 1, 0, 0) - off_s; /* local midnight */

	run_init(&r, fixed, &off_s);
	assert_int_equal(lp_day_start(&r.p, lp_local_day(&r.p, t0 + 5000)), t0);
	/* samples every 7 s from a little before the day to a little after */
	for (int64_t ms = (t0 - 100) * 1000; ms <= (t0 + 86400 + 100) * 1000; ms += 7000)
		push(&r, ms, t0 * 1000);
	assert_int_equal(r.n, 97); /* the partial one before midnight + 96 */
	assert_int_equal(r.iv[0].present, 0);
	for (size_t i = 1; i < r.n; i++) {
		assert_int_equal(r.iv[i].start, t0 + 900 * (int64_t)(i - 1));
		assert_int_equal(((r.iv[i].start + off_s) % 900 + 900) % 900, 0);
		check_interval_full(&r.iv[i]);
	}
	assert_int_equal(lp_count_intervals(&r.p, t0, t0 + 86400), 96);
	free(r.iv);
}

static void test_offsets(void **state)
{
	(void)state;
	offset_day(5 * 3600 + 45 * 60); /* Nepal, +05:45 */
	offset_day(-(3 * 3600 + 30 * 60));
	offset_day(1234); /* not a multiple of 15 minutes: boundaries still local */
}

static void test_state_restore(void **state)
{
	struct run a, b;
	int64_t t0 = utc_of(2026, 2, 2, 0, 0), cut = t0 + 5 * 3600 + 437;
	struct lp_engine saved;

	(void)state;
	run_init(&a, NULL, NULL);
	run_init(&b, NULL, NULL);
	for (int64_t ms = t0 * 1000; ms <= (t0 + 86400) * 1000; ms += 10000)
		push(&a, ms, t0 * 1000);
	/* b: stop at cut, copy the state as lpstore would, a 2-minute outage, go on */
	for (int64_t ms = t0 * 1000; ms <= cut * 1000; ms += 10000)
		push(&b, ms, t0 * 1000);
	memcpy(&saved, &b.e, sizeof(saved));
	lp_engine_init(&b.e);
	memcpy(&b.e, &saved, sizeof(saved));
	for (int64_t ms = (cut + 120) * 1000; ms < (t0 + 86400) * 1000; ms += 10000)
		push(&b, ms, t0 * 1000);
	push(&b, (t0 + 86400) * 1000, t0 * 1000);
	assert_int_equal(a.n, 96);
	assert_int_equal(b.n, 96);
	for (size_t i = 0; i < 96; i++) {
		check_interval_full(&b.iv[i]);
		assert_int_equal(a.iv[i].start, b.iv[i].start);
	}
	free(a.iv);
	free(b.iv);
}

static void test_clock_and_channels(void **state)
{
	struct run r;
	int64_t t0 = utc_of(2026, 2, 2, 0, 0);
	struct lp_sample s = {.ok = 1u << LP_AI};

	(void)state;
	run_init(&r, NULL, NULL);
	for (int64_t t = t0; t <= t0 + 1800; t += 10)
		push(&r, t * 1000, t0 * 1000);
	assert_int_equal(r.n, 2);
	/* a sample from the past (within max_gap) is ignored */
	s.ms = (t0 + 1000) * 1000;
	s.v[LP_AI] = 0;
	assert_int_equal(lp_engine_push(&r.e, &r.p, &s, emit, &r), 0);
	assert_int_equal(r.e.last_ms, (t0 + 1800) * 1000);
	/* a channel that fails to read for a minute inside an interval is bridged;
	 * one that fails across a boundary makes that boundary unknown for it */
	for (int64_t t = t0 + 1810; t <= t0 + 5400; t += 10) {
		struct lp_sample x = {.ms = t * 1000, .ok = LP_ALL_CH};

		for (int ch = 0; ch < LP_NCH; ch++)
			x.v[ch] = ctr_at(&r, ch, t0 * 1000, t * 1000);
		if (t >= t0 + 2580 && t <= t0 + 2640) /* inside [1800, 2700) */
			x.ok &= (uint16_t) ~(1u << LP_RI);
		if (t >= t0 + 4480 && t <= t0 + 4540) /* across the 4500 boundary */
			x.ok &= (uint16_t) ~(1u << LP_RE);
		lp_engine_push(&r.e, &r.p, &x, emit, &r);
	}
	assert_int_equal(r.n, 6);
	for (size_t i = 0; i < 4; i++)
		check_interval_full(&r.iv[i]);
	for (size_t i = 4; i < 6; i++) {
		assert_int_equal(r.iv[i].present, LP_ALL_CH & ~(1u << LP_RE));
		assert_true(fabs(r.iv[i].e[LP_AI] - 500) < EPS);
	}
	free(r.iv);
}

static void test_from_dev(void **state)
{
	static struct dev d;
	static struct desc ds;
	struct lp_sample s;
	uint16_t sup;
	struct {
		bool res;
		enum desc_unit u;
		enum desc_dir dir;
		uint8_t phase;
		double v;
	} c[] = {
	    {true, UNIT_WH, DIR_IMPORT, 0, 11},	   /* 0: resettable import: not used */
	    {false, UNIT_WH, DIR_IMPORT, 0, 12},   /* 1: AI */
	    {false, UNIT_WH, DIR_EXPORT, 0, 13},   /* 2: AE */
	    {false, UNIT_VARH, DIR_IMPORT, 0, 14}, /* 3: RI */
	    {false, UNIT_WH, DIR_BIDIR, 0, 15},	   /* 4: nothing */
	    {false, UNIT_WH, DIR_IMPORT, 2, 16},   /* 5: AI2 */
	    {false, UNIT_WH, DIR_IMPORT, 0, 17},   /* 6: second AI: not used */
	    {true, UNIT_VARH, DIR_EXPORT, 0, 18},  /* 7: RE (no non-resettable one) */
	    {false, UNIT_VAH, DIR_IMPORT, 0, 19},  /* 8: nothing */
	};

	(void)state;
	dev_reset(&d, 2);
	ds.nctr = sizeof(c) / sizeof(c[0]);
	for (unsigned k = 0; k < ds.nctr; k++) {
		ds.ctr[k].resettable = c[k].res;
		ds.ctr[k].unit.present = true;
		ds.ctr[k].quadrants.present = k != 2;
		ds.ctr[k].fixed_dir = c[k].dir;
		ds.ctr[k].phase = c[k].phase;
		d.ctr_unit[k] = c[k].u;
		d.ctr_dir[k] = c[k].dir;
		d.ctr[k] = c[k].v;
		d.ctr_exp[k] = 3; /* kWh-scaled values */
		d.ctr_ok[k] = true;
	}
	d.d = &ds;
	d.ctr_ms = 123456;
	sup = lp_from_dev(&d, &s);
	assert_int_equal(sup, (1u << LP_AI) | (1u << LP_AE) | (1u << LP_RI) | (1u << LP_RE) |
				  (1u << LP_AI2));
	assert_int_equal(s.ok, sup);
	assert_int_equal(s.ms, 123456);
	assert_true(fabs(s.v[LP_AI] - 12000) < EPS);
	assert_true(fabs(s.v[LP_AE] - 13000) < EPS);
	assert_true(fabs(s.v[LP_RI] - 14000) < EPS);
	assert_true(fabs(s.v[LP_RE] - 18000) < EPS);
	assert_true(fabs(s.v[LP_AI2] - 16000) < EPS);
	/* a failed read of the chosen counter: the channel is not ok, and the
	 * other import counter does not stand in for it */
	d.ctr_ok[1] = false;
	assert_int_equal(lp_from_dev(&d, &s), sup);
	assert_int_equal(s.ok & (1u << LP_AI), 0);
	d.ctr_ok[1] = true;
	/* reversed connection: import and export swap */
	d.reverse = true;
	lp_from_dev(&d, &s);
	assert_true(fabs(s.v[LP_AE] - 12000) < EPS);
	assert_true(fabs(s.v[LP_AI] - 13000) < EPS);
	assert_true(fabs(s.v[LP_RE] - 14000) < EPS);
	/* no description yet */
	d.d = NULL;
	assert_int_equal(lp_from_dev(&d, &s), 0);
	assert_int_equal(s.ok, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_weeks_autumn_dst),
	    cmocka_unit_test(test_spring_day_92),
	    cmocka_unit_test(test_three_hour_gap),
	    cmocka_unit_test(test_counter_reset_and_jump),
	    cmocka_unit_test(test_samples_on_boundaries),
	    cmocka_unit_test(test_offsets),
	    cmocka_unit_test(test_state_restore),
	    cmocka_unit_test(test_clock_and_channels),
	    cmocka_unit_test(test_from_dev),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
