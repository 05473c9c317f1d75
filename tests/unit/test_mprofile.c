/* Filling from a meter's own load profile. Pure part: decoding entries
 * (uint32 with scale 0.01, float32, empty entries, NaN, reverse wiring),
 * building intervals (exact values, resets, implausible steps, duplicates,
 * captures off the 900 s grid and odd time zones, partial channel sets, range
 * clipping), planning entry indexes (clamping at count and depth, a ring with
 * holes) and block reads (stride not dividing 125). Reader: a fake bus over
 * a fake meter's registers and a real history.db in a mkdtemp dir: a fill
 * writes exactly the stored-missing and unstored intervals and leaves stored
 * values alone; bus errors and a changed device write nothing; the ring
 * moving or having holes while it is read; a queued range; orphans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/dev.h"
#include "sg/histdb.h"
#include "sg/lpstore.h"
#include "sg/mprofile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EPS 1e-6
#define AI (1u << LP_AI)
#define AE (1u << LP_AE)
#define RI (1u << LP_RI)
#define SLOT 3

static int64_t utc_of(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	    .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

	return (int64_t)timegm(&tm);
}

/* An entry of 8 registers: time, AI uint32 ×0.01 Wh, AE uint32 Wh, RI float32
 * varh; 200 entries from holding register 1000; count in holding 999. */
static struct desc_lprofile profile(void)
{
	struct desc_lprofile lp = {
	    .present = true,
	    .space = SPACE_HOLDING,
	    .count = {.present = true, .space = SPACE_HOLDING, .reg = 999, .type = DEC_UINT16},
	    .base = 1000,
	    .stride = 8,
	    .entries = 200,
	    .interval_s = 900,
	    .time_offset = 0,
	    .nch = 3,
	};

	lp.ch[0] = (struct desc_lp_channel){LP_AI, 2, DEC_UINT32, 0.01};
	lp.ch[1] = (struct desc_lp_channel){LP_AE, 4, DEC_UINT32, 1};
	lp.ch[2] = (struct desc_lp_channel){LP_RI, 6, DEC_FLOAT32, 1};
	return lp;
}

static void put_entry(uint16_t *e, int64_t t, uint32_t ai_centi, uint32_t ae, double ri)
{
	assert_int_equal(dec_encode_number(DEC_UINT32, (double)t, e), 0);
	assert_int_equal(dec_encode_number(DEC_UINT32, ai_centi, e + 2), 0);
	assert_int_equal(dec_encode_number(DEC_UINT32, ae, e + 4), 0);
	assert_int_equal(dec_encode_number(DEC_FLOAT32, ri, e + 6), 0);
}

static const struct lp_params UTC = {0};

static struct mprof_snap snap(int64_t t, double ai, double ae, uint16_t ok)
{
	struct mprof_snap s = {.t = t, .ok = ok};

	s.v[LP_AI] = ai;
	s.v[LP_AE] = ae;
	return s;
}

/* ---- pure part ---- */

static void test_decode(void **state)
{
	struct desc_lprofile lp = profile();
	uint16_t regs[4 * 8] = {0};
	struct mprof_snap out[4];
	int64_t t = utc_of(2026, 5, 1, 12, 0);
	uint32_t nan_bits = 0x7FC00000u;

	(void)state;
	put_entry(regs, t, 123456789, 4000000000u, 1234.5);
	/* regs + 8: empty entry (time 0), whatever its counters say */
	put_entry(regs + 8, 0, 1, 2, 3);
	put_entry(regs + 16, t - 900, 123400000, 7, 0);
	regs[16 + 6] = (uint16_t)(nan_bits >> 16); /* RI does not decode */
	regs[16 + 7] = (uint16_t)nan_bits;
	put_entry(regs + 24, t - 1800, 0, 0, -2.25);

	assert_int_equal(mprof_decode(&lp, regs, 4, false, out), 3);
	assert_int_equal(out[0].t, t);
	assert_int_equal(out[0].ok, AI | AE | RI);
	assert_true(fabs(out[0].v[LP_AI] - 1234567.89) < EPS);
	assert_true(out[0].v[LP_AE] == 4000000000.0);
	assert_true(out[0].v[LP_RI] == 1234.5);
	assert_int_equal(out[1].t, t - 900);
	assert_int_equal(out[1].ok, AI | AE);
	assert_true(fabs(out[1].v[LP_AI] - 1234000.0) < EPS);
	assert_int_equal(out[2].t, t - 1800);
	assert_true(out[2].v[LP_RI] == -2.25);
	/* only the entries given are decoded */
	assert_int_equal(mprof_decode(&lp, regs, 1, false, out), 1);
	assert_int_equal(mprof_decode(&lp, regs + 8, 1, false, out), 0);

	/* wired in reverse: the meter's import is the grid's export */
	assert_int_equal(mprof_decode(&lp, regs, 1, true, out), 1);
	assert_int_equal(out[0].ok, AI | AE | (1u << LP_RE));
	assert_true(out[0].v[LP_AI] == 4000000000.0);
	assert_true(fabs(out[0].v[LP_AE] - 1234567.89) < EPS);
	assert_true(out[0].v[LP_RE] == 1234.5);
	assert_int_equal(mprof_channels(&lp, false), AI | AE | RI);
	assert_int_equal(mprof_channels(&lp, true), AI | AE | (1u << LP_RE));
	lp.ch[2].channel = LP_AI2;
	assert_int_equal(mprof_channels(&lp, true), AI | AE | (1u << LP_AE2));

	/* a time somewhere else in the entry, int16 and scale 10 */
	lp = profile();
	lp.time_offset = 6;
	lp.nch = 1;
	lp.ch[0] = (struct desc_lp_channel){LP_AE, 1, DEC_INT16, 10};
	memset(regs, 0, sizeof(regs));
	regs[1] = (uint16_t)-5;
	assert_int_equal(dec_encode_number(DEC_UINT32, (double)t, regs + 6), 0);
	assert_int_equal(mprof_decode(&lp, regs, 1, false, out), 1);
	assert_int_equal(out[0].t, t);
	assert_int_equal(out[0].ok, AE);
	assert_true(out[0].v[LP_AE] == -50);
}

static void test_check(void **state)
{
	struct desc_lprofile lp = profile(), bad;

	(void)state;
	assert_int_equal(mprof_check(&lp), 0);
	bad = lp;
	bad.present = false;
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.space = SPACE_COIL;
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.interval_s = 60;
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.time_offset = 7; /* the time's second register would be in the next entry */
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.ch[2].offset = 7; /* float32 past the entry */
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.ch[1].channel = LP_NCH;
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.ch[1].channel = LP_AI; /* twice */
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.ch[1].type = DEC_STRING;
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.stride = 126;
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad = lp;
	bad.base = 65536 - 200 * 8 + 1; /* the ring's last register would be 65536 */
	assert_int_equal(mprof_check(&bad), -EINVAL);
	bad.base--;
	assert_int_equal(mprof_check(&bad), 0);
	bad = lp;
	bad.entries = 0;
	assert_int_equal(mprof_check(&bad), -EINVAL);
}

static void test_intervals_exact_and_clipped(void **state)
{
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	struct mprof_snap s[5];
	struct lp_interval iv[8];
	size_t n;

	(void)state;
	/* newest first, as a ring reads */
	for (int i = 0; i < 5; i++)
		s[i] = snap(n0 - 900 * i, 1000.0 - 100.25 * i - i * i, 50 - i, AI | AE);
	n = mprof_intervals(s, 5, &UTC, 0, INT64_MAX, iv, 8);
	assert_int_equal(n, 4);
	for (int k = 0; k < 4; k++) {
		int i = 4 - k; /* the interval [capture i, capture i-1) */
		double ai_a = 1000.0 - 100.25 * i - i * i,
		       ai_b = 1000.0 - 100.25 * (i - 1) - (i - 1) * (i - 1);

		assert_int_equal(iv[k].start, n0 - 900 * i);
		assert_int_equal(iv[k].present, AI | AE);
		assert_true(fabs(iv[k].e[LP_AI] - (ai_b - ai_a)) < EPS);
		assert_true(fabs(iv[k].e[LP_AE] - 1) < EPS);
	}
	/* only starts in [from, to) */
	for (int i = 0; i < 5; i++)
		s[i] = snap(n0 - 900 * i, 1000.0 - 10 * i, 0, AI);
	n = mprof_intervals(s, 5, &UTC, n0 - 2700, n0 - 900, iv, 8);
	assert_int_equal(n, 2);
	assert_int_equal(iv[0].start, n0 - 2700);
	assert_int_equal(iv[1].start, n0 - 1800);
	n = mprof_intervals(s, 5, &UTC, n0 - 2699, n0 - 900, iv, 8);
	assert_int_equal(n, 1);
	assert_int_equal(iv[0].start, n0 - 1800);
	/* out holds max */
	n = mprof_intervals(s, 5, &UTC, 0, INT64_MAX, iv, 3);
	assert_int_equal(n, 3);
	assert_int_equal(iv[2].start, n0 - 1800);
	/* one capture makes no interval */
	assert_int_equal(mprof_intervals(s, 1, &UTC, 0, INT64_MAX, iv, 8), 0);
}

static void test_intervals_reset_and_step(void **state)
{
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	struct lp_params p = {.max_step = 1000};
	struct mprof_snap s[5];
	struct lp_interval iv[8];

	(void)state;
	s[0] = snap(n0 - 3600, 5000, 100, AI | AE);
	s[1] = snap(n0 - 2700, 6000, 90, AI | AE);   /* AI +1000 (the limit), AE reset */
	s[2] = snap(n0 - 1800, 7000.5, 95, AI | AE); /* AI +1000.5: implausible */
	s[3] = snap(n0 - 900, 10, 5, AI | AE);	     /* both reset: no interval at all */
	s[4] = snap(n0, 20, 6, AI | AE);
	assert_int_equal(mprof_intervals(s, 5, &p, 0, INT64_MAX, iv, 8), 3);
	assert_int_equal(iv[0].start, n0 - 3600);
	assert_int_equal(iv[0].present, AI);
	assert_true(fabs(iv[0].e[LP_AI] - 1000) < EPS);
	assert_int_equal(iv[1].start, n0 - 2700);
	assert_int_equal(iv[1].present, AE);
	assert_true(fabs(iv[1].e[LP_AE] - 5) < EPS);
	assert_int_equal(iv[2].start, n0 - 900);
	assert_int_equal(iv[2].present, AI | AE);
	assert_true(fabs(iv[2].e[LP_AI] - 10) < EPS);
}

static void test_intervals_duplicates(void **state)
{
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	struct mprof_snap s[8];
	struct lp_interval iv[8];

	(void)state;
	/* two block reads that overlap because the ring moved between them */
	s[0] = snap(n0, 400, 40, AI | AE);
	s[1] = snap(n0 - 900, 300, 30, AI | AE);
	s[2] = snap(n0 - 1800, 200, 20, AI | AE);
	s[3] = snap(n0 - 900, 300, 30, AI | AE);
	s[4] = snap(n0 - 1800, 200, 20, AI);
	s[5] = snap(n0 - 2700, 100, 10, AI | AE);
	s[6] = snap(n0 - 2700, 100, 10, AE); /* the same capture, one channel not read */
	assert_int_equal(mprof_intervals(s, 7, &UTC, 0, INT64_MAX, iv, 8), 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(iv[k].start, n0 - 2700 + 900 * k);
		assert_int_equal(iv[k].present, AI | AE);
		assert_true(fabs(iv[k].e[LP_AI] - 100) < EPS);
		assert_true(fabs(iv[k].e[LP_AE] - 10) < EPS);
	}
	/* two reads of one capture that disagree: that channel is not trusted */
	s[0] = snap(n0, 400, 40, AI | AE);
	s[1] = snap(n0 - 900, 300, 30, AI | AE);
	s[2] = snap(n0 - 900, 333, 30, AI | AE);
	s[3] = snap(n0 - 1800, 200, 20, AI | AE);
	assert_int_equal(mprof_intervals(s, 4, &UTC, 0, INT64_MAX, iv, 8), 2);
	assert_int_equal(iv[0].present, AE);
	assert_int_equal(iv[1].present, AE);
}

static int fixed_offset;

static int fixed(time_t utc, void *arg)
{
	(void)utc;
	(void)arg;
	return fixed_offset;
}

static void test_intervals_grid_and_partial(void **state)
{
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	struct lp_params p = {.offset_s = fixed};
	struct mprof_snap s[6];
	struct lp_interval iv[8];

	(void)state;
	s[0] = snap(n0 - 3600, 100, 10, AI | AE);
	s[1] = snap(n0 - 2700, 200, 20, AI);	       /* AE not read */
	s[2] = snap(n0 - 1800 + 60, 300, 30, AI | AE); /* a minute late: off the grid */
	s[3] = snap(n0 - 900, 400, 40, AI | AE);
	s[4] = snap(n0 + 900, 600, 60, AI | AE); /* n0 missing: 1800 s apart */
	s[5] = snap(n0 + 1800, 700, 70, AI | AE);
	assert_int_equal(mprof_intervals(s, 6, &UTC, 0, INT64_MAX, iv, 8), 2);
	assert_int_equal(iv[0].start, n0 - 3600);
	assert_int_equal(iv[0].present, AI);
	assert_true(fabs(iv[0].e[LP_AI] - 100) < EPS);
	assert_int_equal(iv[1].start, n0 + 900);
	assert_int_equal(iv[1].present, AI | AE);

	/* +05:45 keeps UTC quarter hours; +00:20 does not */
	fixed_offset = 5 * 3600 + 45 * 60;
	assert_int_equal(mprof_intervals(s, 6, &p, 0, INT64_MAX, iv, 8), 2);
	fixed_offset = 20 * 60;
	assert_int_equal(mprof_intervals(s, 6, &p, 0, INT64_MAX, iv, 8), 0);
	/* captures at UTC 11:55 and 12:10 are on +00:20's quarter hours but off
	 * the meter's 900 s grid, which is UTC */
	s[0] = snap(n0 - 300, 100, 10, AI);
	s[1] = snap(n0 + 600, 200, 10, AI);
	assert_int_equal(mprof_intervals(s, 2, &p, 0, INT64_MAX, iv, 8), 0);
}

static void test_plan(void **state)
{
	struct desc_lprofile lp = profile();
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	unsigned f = 0, l = 0;

	(void)state;
	/* intervals n0-3600 … n0-1800 need captures n0-3600 … n0-900: entries 1…4, +1 */
	assert_int_equal(mprof_plan(&lp, 200, n0, n0 - 3600, n0 - 900, &f, &l), 0);
	assert_int_equal(f, 1);
	assert_int_equal(l, 5);
	/* a gap further back */
	assert_int_equal(mprof_plan(&lp, 200, n0, n0 - 50 * 900, n0 - 40 * 900, &f, &l), 0);
	assert_int_equal(f, 40);
	assert_int_equal(l, 51);
	/* off-grid ends: the quarter hours inside */
	assert_int_equal(mprof_plan(&lp, 200, n0, n0 - 50 * 900 - 899, n0 - 40 * 900 - 1, &f, &l),
			 0);
	assert_int_equal(f, 40);
	assert_int_equal(l, 51);
	/* clamped by the count register, then by the depth */
	assert_int_equal(mprof_plan(&lp, 45, n0, n0 - 50 * 900, n0 - 40 * 900, &f, &l), 0);
	assert_int_equal(l, 44);
	assert_int_equal(mprof_plan(&lp, 40, n0, n0 - 50 * 900, n0 - 40 * 900, &f, &l), -ENOENT);
	lp.entries = 46;
	assert_int_equal(mprof_plan(&lp, 1000, n0, n0 - 50 * 900, n0 - 40 * 900, &f, &l), 0);
	assert_int_equal(f, 40);
	assert_int_equal(l, 45);
	lp.entries = 200;
	/* up to and past the newest capture: entry 0 is already read */
	assert_int_equal(mprof_plan(&lp, 200, n0, n0 - 1800, n0 + 3600, &f, &l), 0);
	assert_int_equal(f, 1);
	assert_int_equal(l, 3);
	/* nothing the meter can have yet, or nothing but entry 0 */
	assert_int_equal(mprof_plan(&lp, 200, n0, n0 - 900, n0 + 3600, &f, &l), 0);
	assert_int_equal(f, 1);
	assert_int_equal(l, 2);
	assert_int_equal(mprof_plan(&lp, 200, n0, n0, n0 + 3600, &f, &l), -ENOENT);
	assert_int_equal(mprof_plan(&lp, 1, n0, n0 - 3600, n0, &f, &l), -ENOENT);
	assert_int_equal(mprof_plan(&lp, 200, n0, n0 - 900, n0 - 900, &f, &l), -ENOENT);
	/* a newest capture off the grid counts from the quarter hour before it */
	assert_int_equal(mprof_plan(&lp, 200, n0 + 30, n0 - 3600, n0 - 900, &f, &l), 0);
	assert_int_equal(f, 1);
	assert_int_equal(l, 6);

	/* holes: entries 40…51 ended at seen, older than the gap's end, so the
	 * captures up to it are at most (end - seen) / 900 entries lower */
	assert_int_equal(mprof_plan_newer(40, n0 - 45 * 900, n0, n0 - 30 * 900, &f, &l), 0);
	assert_int_equal(f, 25);
	assert_int_equal(l, 39);
	assert_int_equal(mprof_plan_newer(10, n0 - 45 * 900, n0, n0 - 30 * 900, &f, &l), 0);
	assert_int_equal(f, 1);
	assert_int_equal(l, 9);
	/* the end capture may not exist yet: the newest bounds it */
	assert_int_equal(mprof_plan_newer(40, n0 - 45 * 900, n0 - 40 * 900, n0, &f, &l), 0);
	assert_int_equal(f, 35);
	assert_int_equal(l, 39);
	assert_int_equal(mprof_plan_newer(40, n0 - 30 * 900, n0, n0 - 30 * 900, &f, &l), -ENOENT);
	assert_int_equal(mprof_plan_newer(1, n0 - 45 * 900, n0, n0 - 30 * 900, &f, &l), -ENOENT);
	assert_int_equal(mprof_plan_newer(40, 0, n0, n0 - 30 * 900, &f, &l), -ENOENT);
}

static void test_blocks(void **state)
{
	struct desc_lprofile lp = profile();
	struct mprof_read rd[8];

	(void)state;
	/* stride 8: 15 entries (120 registers) a read */
	assert_int_equal(mprof_blocks(&lp, 1, 40, rd, 8), 3);
	assert_int_equal(rd[0].start, 1008);
	assert_int_equal(rd[0].count, 120);
	assert_int_equal(rd[0].first, 1);
	assert_int_equal(rd[0].n, 15);
	assert_int_equal(rd[1].start, 1128);
	assert_int_equal(rd[1].first, 16);
	assert_int_equal(rd[2].start, 1248);
	assert_int_equal(rd[2].count, 80);
	assert_int_equal(rd[2].n, 10);
	assert_int_equal(rd[2].space, SPACE_HOLDING);
	/* stride 7: 17 entries, 119 registers */
	lp.stride = 7;
	assert_int_equal(mprof_blocks(&lp, 5, 5 + 17, rd, 8), 2);
	assert_int_equal(rd[0].start, 1035);
	assert_int_equal(rd[0].count, 119);
	assert_int_equal(rd[1].start, 1035 + 119);
	assert_int_equal(rd[1].count, 7);
	assert_int_equal(rd[1].first, 22);
	/* one entry per read; the count of reads even without room for them */
	lp.stride = 125;
	assert_int_equal(mprof_blocks(&lp, 1, 20, rd, 2), 20);
	assert_int_equal(rd[1].start, 1250);
	assert_int_equal(rd[1].count, 125);
	lp.stride = 63;
	assert_int_equal(mprof_blocks(&lp, 3, 4, rd, 8), 2);
	assert_int_equal(mprof_blocks(&lp, 3, 2, rd, 8), 0);
}

/* ---- the reader over a fake bus ---- */

#define QMAX 8
#define LOGMAX 512

struct fake {
	char dir[64], path[96], err[256];
	struct histdb *h;
	struct lpstore *st;
	struct mprof *m;
	struct desc desc, other;
	struct dev dev;
	uint16_t hold[65536];
	struct bus_txn *q[QMAX];
	size_t nq;
	int ntx;     /* transactions answered */
	int fail_at; /* answer this one (1-based) with fail_err */
	int fail_err;
	int shift_at; /* after answering this one, the meter captures shift_t */
	int64_t shift_t;
	struct {
		uint8_t fc;
		uint16_t addr, count;
	} log[LOGMAX];
};

static int f_submit(void *arg, int slot, struct bus_txn *t)
{
	struct fake *f = arg;

	assert_int_equal(slot, SLOT);
	assert_int_equal(t->unit, f->dev.addr);
	assert_int_equal(bus_txn_check(t), 0);
	if (f->nq == QMAX)
		return -EBUSY;
	f->q[f->nq++] = t;
	return 0;
}

static const struct dev *f_dev(void *arg, int slot)
{
	struct fake *f = arg;

	return slot == SLOT ? &f->dev : NULL;
}

/* Meter entry i of a ring whose newest capture is n0 with k captures, each
 * AI += 250.37 + i/100 Wh, AE += 3 Wh, RI += 0.5 varh per quarter hour. */
static uint32_t ai_centi(int64_t t)
{
	int64_t q = t / 900 - 1970000; /* about 5000 in 2026: no uint32 overflow */

	return (uint32_t)(100000000 + q * 25037 + q * (q - 1) / 2);
}

static void meter_capture(struct fake *f, int64_t t)
{
	struct desc_lprofile *lp = &f->desc.lprof;
	int64_t q = t / 900 - 1970000;

	memmove(&f->hold[lp->base + lp->stride], &f->hold[lp->base],
		(size_t)(lp->entries - 1) * lp->stride * sizeof(uint16_t));
	put_entry(&f->hold[lp->base], t, ai_centi(t), (uint32_t)(7000 + 3 * q), 10 + 0.5 * q);
	if (f->hold[999] < lp->entries)
		f->hold[999]++;
}

static void pump(struct fake *f)
{
	while (f->nq) {
		struct bus_txn *t = f->q[0];

		memmove(f->q, f->q + 1, --f->nq * sizeof(f->q[0]));
		f->ntx++;
		if (f->ntx <= LOGMAX) {
			f->log[f->ntx - 1].fc = t->fc;
			f->log[f->ntx - 1].addr = t->addr;
			f->log[f->ntx - 1].count = t->count;
		}
		assert_int_equal(t->fc, 3);
		if (f->ntx == f->fail_at)
			t->err = f->fail_err;
		else
			memcpy(t->regs, &f->hold[t->addr], t->count * sizeof(uint16_t));
		if (f->ntx == f->shift_at)
			meter_capture(f, f->shift_t);
		t->done(t, t->arg);
	}
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct mprof_io io = {.submit = f_submit, .dev = f_dev};
	struct lp_params p = {0};

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_mprofile.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/history.db", f->dir);
	if (histdb_open(f->path, &f->h, f->err, sizeof(f->err)) ||
	    lpstore_open(f->h, &f->st, f->err, sizeof(f->err)))
		return -1;
	f->desc.lprof = profile();
	f->other.lprof = profile();
	f->dev.slot = SLOT;
	snprintf(f->dev.ifname, sizeof(f->dev.ifname), "RS485 2");
	f->dev.addr = 17;
	f->dev.health = DEV_OK;
	f->dev.d = &f->desc;
	io.arg = f;
	if (mprof_new(&f->m, &io, f->st, &p))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	char cmd[128];

	mprof_free(f->m);
	f->m = NULL;
	pump(f); /* orphans come back and are freed */
	lpstore_close(f->st);
	histdb_close(f->h);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

/* The meter's ring: k captures every 900 s up to n0. */
static void meter_fill(struct fake *f, int64_t n0, int k)
{
	for (int i = k - 1; i >= 0; i--)
		meter_capture(f, n0 - 900 * (int64_t)i);
}

static struct lp_interval stored(int64_t start, double v, uint16_t present)
{
	struct lp_interval iv = {.start = start, .present = present};

	for (int ch = 0; ch < LP_NCH; ch++)
		iv.e[ch] = v;
	return iv;
}

static void expect_meter(const struct lp_interval *iv, uint16_t ch)
{
	int64_t a = iv->start, b = a + 900;

	if (ch == LP_AI)
		assert_true(fabs(iv->e[LP_AI] - (ai_centi(b) - ai_centi(a)) / 100.0) < EPS);
	else if (ch == LP_AE)
		assert_true(fabs(iv->e[LP_AE] - 3) < EPS);
	else
		assert_true(fabs(iv->e[LP_RI] - 0.5) < EPS);
}

static size_t read_back(struct fake *f, int64_t from, int64_t to, struct lp_interval *out,
			size_t max)
{
	size_t n = 0;

	assert_int_equal(lpstore_range_array(f->st, SLOT, from, to, out, max, &n), 0);
	return n;
}

static void test_fill_exactly_the_missing(void **state)
{
	struct fake *f = *state;
	int64_t n0 = utc_of(2026, 5, 1, 12, 0), g0 = n0 - 20 * 900;
	struct lp_interval in[20], out[32];
	struct mprof_stats st;
	size_t k = 0, n;

	meter_fill(f, n0, 150);
	/* the gateway's own view of [g0, n0): */
	for (int i = 0; i < 20; i++) {
		int64_t t = g0 + 900 * i;

		if (i % 5 == 0)
			in[k++] = stored(t, 7777, AI | AE | RI); /* read by the gateway */
		else if (i % 5 == 1)
			in[k++] = stored(t, 0, 0); /* stored missing */
		else if (i % 5 == 2)
			in[k++] = stored(t, 5555, AI); /* AI only */
						       /* 3, 4: not stored at all */
	}
	assert_int_equal(lpstore_put(f->st, SLOT, in, k, NULL), 0);
	/* untouched neighbours */
	in[0] = stored(g0 - 900, 1, AI);
	in[1] = stored(n0, 2, 0);
	assert_int_equal(lpstore_put(f->st, SLOT, in, 2, NULL), 0);

	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), 0);
	assert_true(mprof_busy(f->m, SLOT));
	pump(f);
	assert_false(mprof_busy(f->m, SLOT));

	n = read_back(f, g0 - 900, n0 + 900, out, 32);
	assert_int_equal(n, 22);
	assert_int_equal(out[0].present, AI);
	assert_true(out[0].e[LP_AI] == 1);
	assert_int_equal(out[21].present, 0);
	for (int i = 0; i < 20; i++) {
		const struct lp_interval *iv = &out[i + 1];

		assert_int_equal(iv->start, g0 + 900 * i);
		assert_int_equal(iv->present, AI | AE | RI);
		if (i % 5 == 0) {
			assert_true(iv->e[LP_AI] == 7777 && iv->e[LP_AE] == 7777);
			continue;
		}
		if (i % 5 == 2)
			assert_true(iv->e[LP_AI] == 5555);
		else
			expect_meter(iv, LP_AI);
		expect_meter(iv, LP_AE);
		expect_meter(iv, LP_RI);
	}
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.filled, 16);
	assert_int_equal(st.errors, 0);
	assert_string_equal(st.last_error, "");
	assert_int_equal(st.resolved_to, 0); /* not a re-check */
	/* count, entry 0, entries 1…21 in two reads */
	assert_int_equal(f->ntx, 4);
	assert_int_equal(f->log[0].addr, 999);
	assert_int_equal(f->log[0].count, 1);
	assert_int_equal(f->log[1].addr, 1000);
	assert_int_equal(f->log[1].count, 8);
	assert_int_equal(f->log[2].addr, 1008);
	assert_int_equal(f->log[2].count, 120);
	assert_int_equal(f->log[3].addr, 1128);
	assert_int_equal(f->log[3].count, 6 * 8);

	/* again: nothing left to fill */
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, MPROF_RECHECK), 0);
	pump(f);
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.fills, 2);
	assert_int_equal(st.filled, 16);
	assert_int_equal(st.resolved_to, n0);
}

static void test_errors_write_nothing(void **state)
{
	struct fake *f = *state;
	int64_t n0 = utc_of(2026, 5, 1, 12, 0), g0 = n0 - 40 * 900;
	struct lp_interval out[64];
	struct mprof_stats st;

	meter_fill(f, n0, 150);
	/* a timeout on the second of three block reads: what the first brought
	 * is not written either */
	f->fail_at = 4;
	f->fail_err = -ETIMEDOUT;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, MPROF_RECHECK), 0);
	pump(f);
	assert_int_equal(f->ntx, 4);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 0);
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.filled, 0);
	assert_string_equal(st.last_error, "timeout");
	assert_true(st.last_error_s > 0);
	assert_int_equal(st.resolved_to, 0);
	assert_false(st.busy);

	/* an exception on the count read */
	f->ntx = 0;
	f->fail_at = 1;
	f->fail_err = -(BUS_EXCEPTION_BASE + 2);
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), 0);
	pump(f);
	assert_int_equal(f->ntx, 1);
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.errors, 2);
	assert_string_equal(st.last_error, "exception 2 (illegal data address)");
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 0);

	/* the slot got another meter between two reads */
	f->ntx = 0;
	f->fail_at = 0;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), 0);
	f->dev.d = &f->other;
	pump(f);
	assert_int_equal(f->ntx, 1);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 0);
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.errors, 3);
	assert_string_equal(st.last_error, "device changed");
	f->dev.d = &f->desc;

	/* a full queue refuses at once */
	f->nq = QMAX;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), -EBUSY);
	assert_false(mprof_busy(f->m, SLOT));
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.errors, 4);
	f->nq = 0;

	/* no usable profile, or a device not answering: nothing is read */
	f->dev.health = DEV_NOT_RESPONDING;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), -ENOTSUP);
	f->dev.health = DEV_OK;
	f->desc.lprof.present = false;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), -ENOTSUP);
	f->desc.lprof.present = true;
	assert_int_equal(f->nq, 0);

	/* then it works, and the whole range is filled */
	f->ntx = 0;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, MPROF_RECHECK), 0);
	pump(f);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 40);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(out[i].start, g0 + 900 * i);
		assert_int_equal(out[i].present, AI | AE | RI);
		expect_meter(&out[i], LP_AI);
	}
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.filled, 40);
	assert_int_equal(st.errors, 4);
	assert_string_equal(st.last_error, strerror(EBUSY)); /* kept after a success */
	assert_int_equal(st.resolved_to, n0);
}

/* The meter was off for two hours after the gap: its captures since then sit
 * 8 entries lower than n0 - i*900 says. */
static void test_ring_with_holes(void **state)
{
	struct fake *f = *state;
	int64_t n0 = utc_of(2026, 5, 1, 12, 0), off0 = n0 - 20 * 900, g0 = n0 - 40 * 900;
	struct lp_interval out[64];
	struct mprof_stats st;

	for (int64_t t = n0 - 100 * 900; t <= n0; t += 900)
		if (t < off0 || t >= off0 + 8 * 900)
			meter_capture(f, t);
	assert_int_equal(mprof_request(f->m, SLOT, g0, g0 + 10 * 900, 0), 0);
	pump(f);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(out[i].start, g0 + 900 * i);
		expect_meter(&out[i], LP_AI);
	}
	/* count, entry 0, the planned entries 30…41, then 22…29 */
	assert_int_equal(f->ntx, 4);
	assert_int_equal(f->log[2].addr, 1000 + 30 * 8);
	assert_int_equal(f->log[3].addr, 1000 + 22 * 8);
	assert_int_equal(f->log[3].count, 8 * 8);

	/* across the meter's own outage nothing is invented */
	assert_int_equal(mprof_request(f->m, SLOT, off0 - 1800, off0 + 10 * 900, 0), 0);
	pump(f);
	assert_int_equal(read_back(f, off0 - 1800, INT64_MAX, out, 64), 3);
	assert_int_equal(out[0].start, off0 - 1800);
	assert_int_equal(out[1].start, off0 + 8 * 900);
	assert_int_equal(out[2].start, off0 + 9 * 900);
	expect_meter(&out[1], LP_AI);
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.filled, 13);
}

/* The meter captures between the read of entry 0 and the block reads: every
 * entry moves one index up; the extra entry keeps the left edge. */
static void test_ring_moves_while_read(void **state)
{
	struct fake *f = *state;
	int64_t n0 = utc_of(2026, 5, 1, 12, 0), g0 = n0 - 14 * 900;
	struct lp_interval out[32];

	meter_fill(f, n0, 150);
	f->shift_at = 2; /* after entry 0 */
	f->shift_t = n0 + 900;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), 0);
	pump(f);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 32), 14);
	for (int i = 0; i < 14; i++) {
		assert_int_equal(out[i].start, g0 + 900 * i);
		assert_int_equal(out[i].present, AI | AE | RI);
		expect_meter(&out[i], LP_AI);
		expect_meter(&out[i], LP_AE);
	}
	/* an empty ring or a zero count: the head is all there is to read */
	memset(f->hold, 0, sizeof(f->hold));
	f->ntx = 0;
	f->shift_at = 0;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), 0);
	pump(f);
	assert_int_equal(f->ntx, 1);
	f->hold[999] = 5; /* count says 5, entry 0 empty */
	f->ntx = 0;
	assert_int_equal(mprof_request(f->m, SLOT, g0, n0, 0), 0);
	pump(f);
	assert_int_equal(f->ntx, 2);
}

static void test_queued_and_orphaned(void **state)
{
	struct fake *f = *state;
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	struct lp_interval out[64];
	struct mprof_stats st;

	meter_fill(f, n0, 150);
	/* while one fill runs, two more ranges merge into one that follows */
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 4 * 900, n0 - 2 * 900, 0), 0);
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 30 * 900, n0 - 28 * 900, 0), 0);
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 10 * 900, n0 - 8 * 900, MPROF_RECHECK), 0);
	assert_int_equal(f->nq, 1);
	pump(f);
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.fills, 2);
	assert_int_equal(st.resolved_to, n0 - 8 * 900);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 2 + 22);
	assert_int_equal(out[0].start, n0 - 30 * 900);
	assert_int_equal(out[22].start, n0 - 4 * 900);

	/* cleared while in flight: the result is dropped, the re-check restarts */
	assert_int_equal(lpstore_clear(f->st, SLOT), 0);
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 4 * 900, n0, 0), 0);
	mprof_forget(f->m, SLOT);
	assert_false(mprof_busy(f->m, SLOT));
	mprof_get_stats(f->m, SLOT, &st);
	assert_int_equal(st.resolved_to, 0);
	pump(f);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 0);

	/* freed while in flight: the transaction comes back later (teardown
	 * pumps after mprof_free too) and writes nothing */
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 4 * 900, n0, 0), 0);
	mprof_free(f->m);
	f->m = NULL;
	pump(f);
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 64), 0);
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 4 * 900, n0, 0), -EINVAL);
}

static void test_reverse_and_no_count(void **state)
{
	struct fake *f = *state;
	int64_t n0 = utc_of(2026, 5, 1, 12, 0);
	struct lp_interval out[8];

	meter_fill(f, n0, 10);
	f->desc.lprof.count.present = false;
	f->dev.reverse = true;
	assert_int_equal(mprof_request(f->m, SLOT, n0 - 2 * 900, n0, 0), 0);
	pump(f);
	assert_int_equal(f->log[0].addr, 1000); /* no count register: entry 0 first */
	assert_int_equal(read_back(f, 0, INT64_MAX, out, 8), 2);
	assert_int_equal(out[0].present, AI | AE | (1u << LP_RE));
	assert_true(fabs(out[0].e[LP_AI] - 3) < EPS);
	assert_true(fabs(out[0].e[LP_AE] - (ai_centi(n0 - 900) - ai_centi(n0 - 1800)) / 100.0) <
		    EPS);
	assert_true(fabs(out[0].e[LP_RE] - 0.5) < EPS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_intervals_exact_and_clipped),
	    cmocka_unit_test(test_intervals_reset_and_step),
	    cmocka_unit_test(test_intervals_duplicates),
	    cmocka_unit_test(test_intervals_grid_and_partial),
	    cmocka_unit_test(test_plan),
	    cmocka_unit_test(test_blocks),
	    cmocka_unit_test_setup_teardown(test_fill_exactly_the_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_write_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring_with_holes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring_moves_while_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_and_orphaned, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reverse_and_no_count, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
