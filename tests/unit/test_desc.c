/* Device descriptions: every shipped file loads, model matching picks the
 * longest prefix, read blocks cover every field within Modbus limits, and
 * broken files are refused with a message naming the file and line or member.
 * Run from the repository root (paths are relative to it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/desc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEV_DIR "etc/devices"
#define DATA "tests/unit/data/"

static int setup_set(void **state)
{
	struct desc_set *set = calloc(1, sizeof(*set));
	char err[512] = "";

	if (!set)
		return -1;
	if (desc_load_dir(DEV_DIR, set, err, sizeof(err)) != 0) {
		fprintf(stderr, "load %s: %s\n", DEV_DIR, err);
		free(set);
		return -1;
	}
	*state = set;
	return 0;
}

static int teardown_set(void **state)
{
	desc_set_free(*state);
	free(*state);
	return 0;
}

static const struct desc *find(const struct desc_set *set, const char *name)
{
	const struct desc *d = desc_find(set, name);

	if (!d)
		fail_msg("no description named %s", name);
	return d;
}

static void test_all_load(void **state)
{
	static const char *const names[] = {"Bicom", "Generic", "IE14", "IE38",
					    "MC",    "WM1",	"WM3",	"WM3M4"};
	const struct desc_set *set = *state;
	size_t i;

	assert_int_equal(set->n, sizeof(names) / sizeof(names[0]));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(find(set, names[i]));
	/* sorted by file name: bicom.json first, wm3m4.json last */
	assert_string_equal(set->v[0]->name, "Bicom");
	assert_string_equal(set->v[set->n - 1]->name, "WM3M4");
	assert_string_equal(set->v[0]->path, DEV_DIR "/bicom.json");
	/* case-insensitive lookup */
	assert_ptr_equal(desc_find(set, "generic"), find(set, "Generic"));
	assert_null(desc_find(set, "nope"));
	/* the manuals we have publish no profile registers for these models */
	for (i = 0; i < set->n; i++)
		assert_false(set->v[i]->lprof.present);
}

static void expect_match(const struct desc_set *set, const char *model, const char *name)
{
	const struct desc *d = desc_match(set, model);

	if (!name) {
		if (d)
			fail_msg("%s matched %s, expected none", model, d->name);
		return;
	}
	if (!d || strcmp(d->name, name) != 0)
		fail_msg("%s matched %s, expected %s", model, d ? d->name : "nothing", name);
}

static void test_match(void **state)
{
	const struct desc_set *set = *state;

	expect_match(set, "WM3M4C", "WM3M4"); /* beats the shorter "WM3" */
	expect_match(set, "WM3M4", "WM3M4");
	expect_match(set, "WM3-12", "WM3");
	expect_match(set, "WM1-6", "WM1");
	expect_match(set, "IE38MD", "IE38");
	expect_match(set, "IE35", "IE38");
	expect_match(set, "IE14MD", "IE14");
	expect_match(set, "MC784", "MC");
	expect_match(set, "iMC784", "MC");
	expect_match(set, "MT560", "MC");
	expect_match(set, "iMT", "MC");
	expect_match(set, "Bicom 1", "Bicom");
	expect_match(set, "XYZ", NULL);
	expect_match(set, "", NULL);
	expect_match(set, "IE3", NULL); /* a model shorter than every prefix */
	/* Generic serves no model by default */
	assert_int_equal(find(set, "Generic")->nmatch, 0);
	assert_null(desc_match(set, "Generic"));
}

/* b lies inside one of blocks[]. */
static bool covered(const struct desc_block *blocks, unsigned n, const struct desc_field *f)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (blocks[i].space == f->space && blocks[i].start <= f->reg &&
		    (unsigned)f->reg + f->words <= (unsigned)blocks[i].start + blocks[i].count)
			return true;
	return false;
}

static void check_blocks(const struct desc *d, const struct desc_block *b, unsigned n)
{
	unsigned i, j, max;

	assert_true(n <= DESC_BLOCK_MAX);
	for (i = 0; i < n; i++) {
		max = b[i].space == SPACE_COIL || b[i].space == SPACE_DISCRETE ? 2000 : 125;
		if (b[i].count == 0 || b[i].count > max)
			fail_msg("%s: block %u has %u registers", d->name, i, b[i].count);
		assert_true((unsigned)b[i].start + b[i].count <= 65536);
		for (j = 0; j < i; j++)
			if (b[j].space == b[i].space && b[j].start < b[i].start + b[i].count &&
			    b[i].start < b[j].start + b[j].count)
				fail_msg("%s: blocks %u and %u overlap", d->name, j, i);
	}
}

static void check_cover(const struct desc *d, const struct desc_block *b, unsigned n,
			const struct desc_field *f, const char *what, unsigned idx)
{
	if (f->present && !covered(b, n, f))
		fail_msg("%s: %s[%u] (reg %u) not in any block", d->name, what, idx, f->reg);
}

static void check_desc_blocks(const struct desc *d)
{
	unsigned i;

	check_blocks(d, d->meas_blocks, d->nmeas_blocks);
	check_blocks(d, d->ctr_blocks, d->nctr_blocks);
	check_blocks(d, d->cfg_blocks, d->ncfg_blocks);
	for (i = 0; i < d->nmeas; i++)
		check_cover(d, d->meas_blocks, d->nmeas_blocks, &d->meas[i].f, "meas", i);
	for (i = 0; i < d->nctr; i++) {
		assert_true(d->ctr[i].value.present);
		check_cover(d, d->ctr_blocks, d->nctr_blocks, &d->ctr[i].value, "value", i);
		check_cover(d, d->ctr_blocks, d->nctr_blocks, &d->ctr[i].exponent, "exp", i);
		check_cover(d, d->cfg_blocks, d->ncfg_blocks, &d->ctr[i].unit, "unit", i);
		check_cover(d, d->cfg_blocks, d->ncfg_blocks, &d->ctr[i].quadrants, "quad", i);
	}
	check_cover(d, d->cfg_blocks, d->ncfg_blocks, &d->reverse, "reverse", 0);
	if (d->nmeas)
		assert_true(d->nmeas_blocks > 0);
	if (d->nctr)
		assert_true(d->nctr_blocks > 0);
}

static void test_blocks_cover(void **state)
{
	const struct desc_set *set = *state;
	unsigned i;

	for (i = 0; i < set->n; i++)
		check_desc_blocks(set->v[i]);
}

static unsigned count_ctr(const struct desc *d, bool resettable)
{
	unsigned i, n = 0;

	for (i = 0; i < d->nctr; i++)
		n += d->ctr[i].resettable == resettable;
	return n;
}

static const struct desc_meas *meas(const struct desc *d, enum desc_qty q, unsigned phase)
{
	unsigned i;

	for (i = 0; i < d->nmeas; i++)
		if (d->meas[i].qty == q && d->meas[i].phase == phase)
			return &d->meas[i];
	return NULL;
}

/* Facts from CONTRACTS §4 as the files encode them. */
static void test_families(void **state)
{
	const struct desc_set *set = *state;
	const struct desc *d;
	const struct desc_meas *m;

	d = find(set, "IE38");
	assert_int_equal(d->phases, 3);
	assert_int_equal(d->cls, CLASS_METER);
	assert_int_equal(count_ctr(d, true), 16);
	assert_int_equal(count_ctr(d, false), 4);
	/* first non-resettable counter: float32 input 2752, unit holding 421 */
	assert_false(d->ctr[0].resettable);
	assert_int_equal(d->ctr[0].value.reg, 2752);
	assert_int_equal(d->ctr[0].value.type, DEC_FLOAT32);
	assert_int_equal(d->ctr[0].unit.reg, 421);
	assert_int_equal(d->ctr[4].value.reg, 2760);
	assert_int_equal(d->ctr[4].quadrants.reg, 438);
	m = meas(d, QTY_U, 1);
	assert_non_null(m);
	assert_int_equal(m->f.reg, 107);
	assert_int_equal(m->f.type, DEC_T5);
	m = meas(d, QTY_P, 0);
	assert_non_null(m);
	assert_int_equal(m->f.reg, 140);
	assert_int_equal(m->f.type, DEC_T6);
	m = meas(d, QTY_PA, 3);
	assert_non_null(m);
	assert_int_equal(m->f.reg, 175);
	assert_true(m->f.scale == 0.01);
	assert_int_equal(meas(d, QTY_PF, 0)->f.type, DEC_T7);
	assert_int_equal(meas(d, QTY_THDI, 3)->f.reg, 190);
	assert_true(d->reverse.present);
	assert_int_equal(d->reverse.space, SPACE_HOLDING);
	assert_int_equal(d->reverse.reg, 151);
	assert_int_equal(d->id_model.reg, 1);
	assert_int_equal(d->id_model.words, 8);
	assert_int_equal(d->id_location.space, SPACE_HOLDING);
	assert_int_equal(d->id_location.reg, 121);
	/* input 105…112 and 126…190: two reads (the 113…125 gap is too wide) */
	assert_int_equal(d->nmeas_blocks, 2);
	assert_int_equal(d->meas_blocks[0].start, 105);
	assert_int_equal(d->meas_blocks[0].count, 8);
	assert_int_equal(d->meas_blocks[1].start, 126);
	assert_int_equal(d->meas_blocks[1].count, 65);
	/* 20 float32 counters 2752…2791 in one read */
	assert_int_equal(d->nctr_blocks, 1);
	assert_int_equal(d->ctr_blocks[0].start, 2752);
	assert_int_equal(d->ctr_blocks[0].count, 40);

	d = find(set, "IE14");
	assert_int_equal(d->phases, 1);
	assert_int_equal(count_ctr(d, true), 8);
	assert_int_equal(count_ctr(d, false), 4);
	assert_null(meas(d, QTY_U, 2));

	d = find(set, "WM3M4");
	assert_int_equal(d->phases, 3);
	assert_int_equal(count_ctr(d, true), 0);
	assert_int_equal(count_ctr(d, false), 2);
	assert_int_equal(d->ctr[1].exponent.reg, 402);
	assert_int_equal(d->ctr[1].value.reg, 408);
	assert_int_equal(d->ctr[1].value.type, DEC_INT32);
	assert_int_equal(d->ctr[1].unit.reg, 431);
	assert_int_equal(d->ctr[1].quadrants.reg, 432);
	assert_true(d->comm_baud.present && d->comm_data.present);
	assert_int_equal(d->comm_baud.space, SPACE_HOLDING);
	assert_int_equal(d->comm_baud.reg, 202);
	assert_int_equal(d->comm_data.reg, 205);

	d = find(set, "WM3");
	assert_int_equal(count_ctr(d, true), 4);
	assert_int_equal(count_ctr(d, false), 4);
	assert_true(d->ctr[0].resettable && !d->ctr[4].resettable); /* resettable first */
	assert_int_equal(d->ctr[7].value.reg, 420);
	/* 10 registers apart per counter, gap 8: one read for all units/masks + reverse */
	assert_int_equal(d->ncfg_blocks, 2);

	d = find(set, "WM1");
	assert_int_equal(d->phases, 1);
	assert_int_equal(count_ctr(d, true), 4);
	assert_int_equal(count_ctr(d, false), 0);

	d = find(set, "MC");
	assert_int_equal(d->cls, CLASS_PQ);
	assert_int_equal(d->phases, 3);
	assert_int_equal(count_ctr(d, true), 4);
	assert_int_equal(meas(d, QTY_U, 3)->f.reg, 2504);
	assert_int_equal(meas(d, QTY_P, 0)->f.reg, 2536);
	assert_int_equal(meas(d, QTY_FREQ, 0)->f.type, DEC_FLOAT32);
	assert_int_equal(meas(d, QTY_TEMP, 0)->f.reg, 2658);

	d = find(set, "Bicom");
	assert_int_equal(d->cls, CLASS_BICOM);
	assert_int_equal(d->phases, 0);
	assert_int_equal(d->nmeas, 0);
	assert_true(d->relay.present);
	assert_int_equal(d->relay.space, SPACE_HOLDING);
	assert_int_equal(d->relay.reg, 200);
	assert_int_equal(d->relay_on, 1);
	assert_int_equal(d->relay_off, 0);

	d = find(set, "Generic");
	assert_int_equal(d->cls, CLASS_GENERIC);
	assert_int_equal(d->nmeas + d->nctr, 0);
	assert_true(d->id_model.present && d->id_serial.present);
}

static void test_good_fixture(void **state)
{
	struct desc *d = NULL;
	char err[512] = "";

	(void)state;
	if (desc_load_file(DATA "good_min.json", &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(d->name, "TestMin");
	assert_int_equal(d->nmeas, 6);
	assert_int_equal(d->meas[0].f.space, SPACE_INPUT); /* default */
	assert_true(d->meas[0].f.scale == 1);		   /* default */
	assert_true(d->meas[2].f.scale == 0.1);
	assert_int_equal(d->ctr[0].fixed_unit, UNIT_WH);
	assert_int_equal(d->ctr[0].fixed_dir, DIR_IMPORT);
	assert_false(d->ctr[0].unit.present);
	assert_int_equal(d->relay.space, SPACE_COIL);
	assert_int_equal(d->relay_on, 1);
	assert_true(d->comm_addr.present);
	assert_int_equal(d->comm_addr.reg, 200);
	assert_int_equal(d->comm_baud.reg, 201);
	assert_false(d->comm_parity.present);
	/* input 10-11 and 20-21 merge across the 8-register gap; 200, 250 and
	 * 320 are too far apart; holding 10 is another space */
	assert_int_equal(d->nmeas_blocks, 5);
	assert_int_equal(d->meas_blocks[0].space, SPACE_INPUT);
	assert_int_equal(d->meas_blocks[0].start, 10);
	assert_int_equal(d->meas_blocks[0].count, 12);
	assert_int_equal(d->meas_blocks[1].start, 200);
	assert_int_equal(d->meas_blocks[1].count, 2);
	assert_int_equal(d->meas_blocks[4].space, SPACE_HOLDING);
	assert_int_equal(d->meas_blocks[4].start, 10);
	assert_int_equal(d->meas_blocks[4].count, 1);
	check_desc_blocks(d);
	desc_free(d);
}

/* 38 float32 measurements with small gaps: every gap is bridgeable, so only
 * the 125-register limit splits the reads. Registers 0, 10, …, 120, then 123
 * (ends at 125: exactly fills the first read) and 128, 138, … */
static unsigned big_reg(unsigned i)
{
	if (i < 13)
		return 10 * i;
	if (i == 13)
		return 123;
	return 128 + 10 * (i - 14);
}

static void test_block_limit(void **state)
{
	static const char *const per_phase[] = {"U", "UPP", "I",  "P",	  "Q",
						"S", "PF",  "PA", "THDU", "THDI"};
	static const char *const totals[] = {"P",  "Q",		"S",	       "PF",
					     "PA", "Frequency", "Temperature", "Tariff"};
	char path[] = "/tmp/test_desc_XXXXXX";
	char err[512] = "";
	struct desc *d = NULL;
	unsigned n = 0, p, i;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "{\"name\": \"Big\", \"class\": \"meter\", \"phases\": 3,\n"
		   "\"identification\": {\"model\": {\"reg\": 1, \"type\": \"string\", "
		   "\"words\": 8}},\n\"measurements\": [\n");
	for (p = 1; p <= 3; p++)
		for (i = 0; i < 10; i++, n++)
			fprintf(f,
				"{\"qty\": \"%s\", \"phase\": %u, \"reg\": %u, \"type\": "
				"\"float32\"},\n",
				per_phase[i], p, big_reg(n));
	for (i = 0; i < 8; i++, n++)
		fprintf(f, "{\"qty\": \"%s\", \"reg\": %u, \"type\": \"float32\"}%s\n", totals[i],
			big_reg(n), i < 7 ? "," : "");
	fprintf(f, "]}\n");
	fclose(f);
	if (desc_load_file(path, &d, err, sizeof(err)) != 0) {
		unlink(path);
		fail_msg("%s", err);
	}
	unlink(path);
	assert_int_equal(d->nmeas, 38);
	/* [0,125) 14 fields, [128,250) 13 fields, [258,360) 11 fields */
	assert_int_equal(d->nmeas_blocks, 3);
	assert_int_equal(d->meas_blocks[0].start, 0);
	assert_int_equal(d->meas_blocks[0].count, 125);
	assert_int_equal(d->meas_blocks[1].start, 128);
	assert_int_equal(d->meas_blocks[1].count, 122);
	assert_int_equal(d->meas_blocks[2].start, 258);
	assert_int_equal(d->meas_blocks[2].count, 102);
	check_desc_blocks(d);
	desc_free(d);
}

/* Loading file must fail with -EINVAL and a message containing each of the
 * given fragments. */
static void expect_reject(const char *file, const char *frag1, const char *frag2)
{
	char path[256], err[512] = "";
	struct desc *d = (struct desc *)0x1;
	int rc;

	snprintf(path, sizeof(path), DATA "%s", file);
	rc = desc_load_file(path, &d, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("%s: rc %d, expected -EINVAL", file, rc);
	assert_ptr_equal(d, (struct desc *)0x1); /* out untouched */
	if (!strstr(err, frag1) || (frag2 && !strstr(err, frag2)))
		fail_msg("%s: message \"%s\" lacks \"%s\" / \"%s\"", file, err, frag1,
			 frag2 ? frag2 : "");
}

static void test_reject(void **state)
{
	(void)state;
	/* missing comma after "meter": jansson stops on line 4 */
	expect_reject("bad_syntax.json", DATA "bad_syntax.json:4: ", NULL);
	expect_reject("bad_dup.json", DATA "bad_dup.json:7: ", "duplicate object key");
	expect_reject("bad_unknown.json",
		      DATA "bad_unknown.json: ", "measurements[1].colour: unknown member");
	expect_reject("bad_typename.json",
		      "bad_typename.json: ", "measurements[0].type: unknown type \"t9\"");
	expect_reject("bad_reg.json", "bad_reg.json: ", "measurements[0].reg: must be 0…65535");
	expect_reject("bad_regend.json", "bad_regend.json: ",
		      "measurements[0].reg: 65535 + 2 registers runs past 65535");
	expect_reject("bad_phase.json",
		      "bad_phase.json: ", "measurements[0].phase: must be 1…1 for U (phases is 1)");
	expect_reject("bad_missing.json",
		      "bad_missing.json: ", "measurements[0].reg: required member missing");
	expect_reject("bad_noident.json",
		      "bad_noident.json: ", "identification.model: required member missing");
	expect_reject("bad_jsontype.json",
		      "bad_jsontype.json: ", "measurements[0].phase: must be an integer");
	expect_reject("bad_overlap.json",
		      "bad_overlap.json: ", "counters[1].exponent: overlaps counters[0].value");
	expect_reject("bad_nounit.json",
		      "bad_nounit.json: ", "counters[0].fixed_unit: required member missing");
}

static struct desc *load_ok(const char *path)
{
	struct desc *d = NULL;
	char err[512] = "";

	if (desc_load_file(path, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return d;
}

static void expect_lp_channel(const struct desc_lp_channel *ch, unsigned channel, unsigned offset,
			      enum dec_type type, double scale)
{
	assert_int_equal(ch->channel, channel);
	assert_int_equal(ch->offset, offset);
	assert_int_equal(ch->type, type);
	assert_true(ch->scale == scale);
}

static void test_lprof_good(void **state)
{
	struct desc *d;
	const struct desc_lprofile *lp;

	(void)state;
	d = load_ok(DATA "lp_good.json");
	lp = &d->lprof;
	assert_true(lp->present);
	assert_int_equal(lp->space, SPACE_HOLDING);
	assert_true(lp->count.present);
	assert_int_equal(lp->count.space, SPACE_HOLDING); /* the profile's space */
	assert_int_equal(lp->count.reg, 999);
	assert_int_equal(lp->count.type, DEC_UINT16);
	assert_int_equal(lp->count.words, 1);
	assert_true(lp->count.scale == 1);
	assert_int_equal(lp->base, 1000);
	assert_int_equal(lp->stride, 12);
	assert_int_equal(lp->entries, 4096);
	assert_int_equal(lp->interval_s, 900);
	assert_int_equal(lp->time_offset, 10);
	assert_int_equal(lp->nch, 5);
	/* channel numbers are enum lp_ch: ae3 9, ai 0, ri 2, re 3, ai1 4 */
	expect_lp_channel(&lp->ch[0], 9, 0, DEC_FLOAT32, 1);
	expect_lp_channel(&lp->ch[1], 0, 2, DEC_INT32, 0.1);
	expect_lp_channel(&lp->ch[2], 2, 4, DEC_UINT16, 10);
	expect_lp_channel(&lp->ch[3], 3, 5, DEC_INT16, 1);
	expect_lp_channel(&lp->ch[4], 4, 6, DEC_UINT32, 0.01);
	/* the profile is read on its own, never through the poll blocks */
	assert_int_equal(d->nmeas_blocks + d->nctr_blocks + d->ncfg_blocks, 0);
	desc_free(d);

	d = load_ok(DATA "lp_edge.json");
	lp = &d->lprof;
	assert_true(lp->present);
	assert_int_equal(lp->space, SPACE_INPUT);
	assert_false(lp->count.present);
	assert_int_equal(lp->base, 65036); /* 65036 + 4 × 125 = 65536 exactly */
	assert_int_equal(lp->time_offset, 0);
	assert_int_equal(lp->nch, 1);
	expect_lp_channel(&lp->ch[0], 1, 123, DEC_UINT16, 1);
	desc_free(d);

	/* a description without the member has none */
	d = load_ok(DATA "good_min.json");
	assert_false(d->lprof.present);
	desc_free(d);
}

/* Whether a field lies in [start, end) of space sp. */
static bool field_in(const struct desc_field *f, enum desc_space sp, unsigned start, unsigned end)
{
	return f->present && f->space == sp && f->reg < end && (unsigned)f->reg + f->words > start;
}

/* The test-only model the integration tests simulate: IE38's maps plus a
 * profile that shares no register with them. */
static void test_lprof_simlp(void **state)
{
	const struct desc_set *set = *state;
	const struct desc *ie38 = find(set, "IE38");
	const struct desc_lprofile *lp;
	struct desc *d;
	unsigned i, end;

	d = load_ok("tests/devices/simlp.json");
	lp = &d->lprof;
	assert_string_equal(d->name, "SimLP");
	assert_int_equal(d->nmatch, 1);
	assert_string_equal(d->match[0], "SIMLP");
	assert_null(desc_find(set, "SimLP")); /* loads alongside etc/devices */
	assert_null(desc_match(set, "SIMLP"));
	assert_int_equal(d->nmeas, ie38->nmeas);
	assert_int_equal(d->nctr, ie38->nctr);
	assert_true(lp->present);
	assert_int_equal(lp->space, SPACE_INPUT);
	assert_int_equal(lp->count.space, SPACE_INPUT);
	assert_int_equal(lp->count.reg, 8999);
	assert_int_equal(lp->base, 9000);
	assert_int_equal(lp->stride, 10);
	assert_int_equal(lp->entries, 224);
	assert_int_equal(lp->interval_s, 900);
	assert_int_equal(lp->time_offset, 0);
	assert_int_equal(lp->nch, 4);
	for (i = 0; i < 4; i++)
		expect_lp_channel(&lp->ch[i], i, 2 + 2 * i, DEC_UINT32, 0.01);
	end = (unsigned)lp->base + (unsigned)lp->entries * lp->stride;
	for (i = 0; i < d->nmeas; i++)
		assert_false(field_in(&d->meas[i].f, lp->space, lp->count.reg, end));
	for (i = 0; i < d->nctr; i++) {
		assert_false(field_in(&d->ctr[i].value, lp->space, lp->count.reg, end));
		assert_false(field_in(&d->ctr[i].unit, lp->space, lp->count.reg, end));
		assert_false(field_in(&d->ctr[i].quadrants, lp->space, lp->count.reg, end));
	}
	assert_false(field_in(&d->id_model, lp->space, lp->count.reg, end));
	assert_false(field_in(&d->id_serial, lp->space, lp->count.reg, end));
	assert_false(field_in(&d->id_sw_version, lp->space, lp->count.reg, end));
	desc_free(d);
}

/* Loading file must fail with -EINVAL and exactly "FILE: msg". */
static void expect_reject_exact(const char *file, const char *msg)
{
	char path[256], want[512], err[512] = "";
	struct desc *d = (struct desc *)0x1;
	int rc;

	snprintf(path, sizeof(path), DATA "%s", file);
	snprintf(want, sizeof(want), "%s: %s", path, msg);
	rc = desc_load_file(path, &d, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("%s: rc %d, expected -EINVAL", file, rc);
	assert_ptr_equal(d, (struct desc *)0x1);
	if (strcmp(err, want) != 0)
		fail_msg("%s: message \"%s\", expected \"%s\"", file, err, want);
}

static void test_lprof_reject(void **state)
{
	(void)state;
	expect_reject_exact("bad_lp_notobject.json", "load_profile: must be an object");
	expect_reject_exact("bad_lp_unknown.json", "load_profile.depth: unknown member");
	expect_reject_exact("bad_lp_chunknown.json",
			    "load_profile.channels[0].unit: unknown member");
	expect_reject_exact("bad_lp_missing.json", "load_profile.base: required member missing");
	expect_reject_exact("bad_lp_space.json", "load_profile.space: must be input or holding");
	expect_reject_exact("bad_lp_stride.json", "load_profile.stride: must be 1…125");
	expect_reject_exact("bad_lp_entries.json", "load_profile.entries: must be 1…4096");
	expect_reject_exact("bad_lp_end.json",
			    "load_profile.base: 65000 + 224 × 10 registers runs past 65535");
	expect_reject_exact("bad_lp_interval.json",
			    "load_profile.interval: must be 900 (the gateway's intervals are 15 "
			    "minutes)");
	expect_reject_exact("bad_lp_time.json",
			    "load_profile.time: 9 + 2 registers runs past the entry (stride 10)");
	expect_reject_exact("bad_lp_offset.json", "load_profile.channels[1].offset: 9 + 2 "
						  "registers runs past the entry (stride 10)");
	expect_reject_exact("bad_lp_overlap.json", "load_profile.channels[1].offset: registers "
						   "3…4 overlap load_profile.channels[0]");
	expect_reject_exact("bad_lp_timeoverlap.json",
			    "load_profile.channels[0].offset: registers 1…1 overlap "
			    "load_profile.time");
	expect_reject_exact("bad_lp_dupch.json", "load_profile.channels[1].channel: \"ai\" "
						 "already used by load_profile.channels[0]");
	expect_reject_exact("bad_lp_chname.json",
			    "load_profile.channels[0].channel: unknown value \"ax\" (expected ai, "
			    "ae, ri, re, ai1, ai2, ai3, ae1, ae2, ae3)");
	expect_reject_exact("bad_lp_nochannels.json",
			    "load_profile.channels: must have 1…10 entries");
	expect_reject_exact("bad_lp_toomany.json", "load_profile.channels: must have 1…10 entries");
	expect_reject_exact("bad_lp_nochannelsmember.json",
			    "load_profile.channels: required member missing");
	expect_reject_exact("bad_lp_chtype.json", "load_profile.channels[0].type: must be uint16, "
						  "int16, uint32, int32 or float32");
	expect_reject_exact("bad_lp_scale.json",
			    "load_profile.channels[0].scale: must be a positive number");
	expect_reject_exact("bad_lp_counttype.json", "load_profile.count.type: must be uint16");
	expect_reject_exact("bad_lp_countscale.json",
			    "load_profile.count.scale: must be 1 (a number of entries)");
	expect_reject_exact("bad_lp_countspace.json",
			    "load_profile.count.space: must be input or holding");
	expect_reject_exact("bad_lp_countoverlap.json",
			    "load_profile.count.reg: overlaps the ring (input 9000…11239)");
}

/* Registers Home Assistant's Iskra client reads from Impact meters at set-up
 * (holding 148-149, input 15-18, input 6761): described so the simulator
 * serves them. */
static void test_constants(void **state)
{
	static const char *const ie[] = {"IE38", "IE14"};
	const struct desc_set *set = *state;

	for (unsigned m = 0; m < 2; m++) {
		const struct desc *d = find(set, ie[m]);
		bool seen_h[2] = {0}, seen_i[5] = {0};

		for (unsigned i = 0; i < d->nconsts; i++) {
			const struct desc_const *k = &d->consts[i];

			assert_true(k->f.present);
			if (k->f.space == SPACE_HOLDING && k->f.reg >= 148 && k->f.reg <= 149)
				seen_h[k->f.reg - 148] = true;
			else if (k->f.space == SPACE_INPUT && k->f.reg >= 15 && k->f.reg <= 18)
				seen_i[k->f.reg - 15] = true;
			else if (k->f.space == SPACE_INPUT && k->f.reg == 6761)
				seen_i[4] = true;
			if (k->f.space == SPACE_INPUT && k->f.reg == 15)
				assert_true(k->value == 23000); /* 230 V in cV */
		}
		for (unsigned i = 0; i < 2; i++)
			assert_true(seen_h[i]);
		for (unsigned i = 0; i < 5; i++)
			assert_true(seen_i[i]);
	}
	expect_reject_exact("bad_vconst_range.json",
			    "constants[0].value: 70000 does not fit uint16 (scale 1)");
	expect_reject_exact("bad_vconst_nonum.json", "constants[0].value: must be a number");
	expect_reject_exact("bad_vconst_string.json", "constants[0].type: must be a numeric type");
	expect_reject_exact("bad_vconst_overlap.json", "constants[1]: overlaps constants[0]");
	expect_reject_exact("bad_vconst_novalue.json",
			    "constants[0].value: required member missing");
}

static void test_missing_file(void **state)
{
	struct desc *d = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(desc_load_file(DATA "no_such.json", &d, err, sizeof(err)), -ENOENT);
	assert_null(d);
	assert_non_null(strstr(err, "no_such.json"));
}

/* A directory with one broken file fails as a whole and leaves out as it was. */
static void test_dir_all_or_nothing(void **state)
{
	struct desc_set set = {.v = (struct desc **)0x1, .n = 77};
	char err[512] = "";

	(void)state;
	assert_int_equal(desc_load_dir("tests/unit/data", &set, err, sizeof(err)), -EINVAL);
	assert_ptr_equal(set.v, (struct desc **)0x1);
	assert_int_equal(set.n, 77);
	/* bad_dup.json sorts first */
	assert_non_null(strstr(err, "bad_dup.json"));
	assert_int_equal(desc_load_dir("tests/unit/no_such_dir", &set, err, sizeof(err)), -ENOENT);
}

/* Lenient: the good files load, each broken one is recorded with its member
 * path and reason, and a model of a broken file can be told which file. */
static void test_dir_lenient(void **state)
{
	struct desc_set set = {0};
	char err[512] = "";

	(void)state;
	assert_int_equal(desc_load_dir_lenient(DATA "lenient", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 2);
	assert_non_null(desc_match(&set, "AAA-1"));
	assert_non_null(desc_match(&set, "EEE-1"));
	assert_int_equal(set.nerr, 3);
	assert_int_equal(set.nbroken, 3);
	assert_string_equal(set.errs[0].file, "b_broken.json");
	assert_string_equal(set.errs[0].member, "measurements[0].reg");
	assert_string_equal(set.errs[0].reason, "must be 0…65535");
	assert_string_equal(set.errs[1].file, "c_syntax.json");
	assert_string_equal(set.errs[1].member, "");
	assert_non_null(strstr(set.errs[1].reason, "line 4: "));
	assert_string_equal(set.errs[2].file, "d_dupname.json");
	assert_string_equal(set.errs[2].member, "name");
	assert_non_null(strstr(set.errs[2].reason, "also used by"));
	assert_ptr_equal(desc_broken_for(&set, "BBB-1", NULL), &set.errs[0]);
	assert_ptr_equal(desc_broken_for(&set, "DDD", NULL), &set.errs[2]);
	assert_null(desc_broken_for(&set, "CCC", NULL));
	assert_null(desc_broken_for(&set, "AAA", desc_match(&set, "AAA")));
	/* A broken file more specific than a loaded one is the one meant. */
	set.errs[0].nmatch = 1;
	snprintf(set.errs[0].match[0], DESC_NAME_MAX, "AAA4");
	assert_ptr_equal(desc_broken_for(&set, "AAA4C", desc_match(&set, "AAA4C")), &set.errs[0]);
	assert_null(desc_broken_for(&set, "AAA5", desc_match(&set, "AAA5")));
	desc_set_free(&set);
	assert_null(set.errs);
	/* The strict load (simulator, tools) still refuses the directory. */
	assert_int_equal(desc_load_dir(DATA "lenient", &set, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "b_broken.json"));
	assert_int_equal(desc_load_dir_lenient("tests/unit/no_such_dir", &set, err, sizeof(err)),
			 -ENOENT);
}

/* The skipped files as GET /api and sgctl status show them. */
static void test_errors_json(void **state)
{
	struct desc_set set = {0};
	char err[512] = "";
	json_t *j, *e;

	(void)state;
	j = desc_errors_json(&set);
	assert_true(json_is_array(j) && json_array_size(j) == 0);
	json_decref(j);
	assert_int_equal(desc_load_dir_lenient(DATA "lenient", &set, err, sizeof(err)), 0);
	j = desc_errors_json(&set);
	assert_int_equal(json_array_size(j), 3);
	e = json_array_get(j, 0);
	assert_int_equal(json_object_size(e), 3);
	assert_string_equal(json_string_value(json_object_get(e, "file")), "b_broken.json");
	assert_string_equal(json_string_value(json_object_get(e, "path")), "measurements[0].reg");
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "must be 0…65535");
	e = json_array_get(j, 1);
	assert_string_equal(json_string_value(json_object_get(e, "file")), "c_syntax.json");
	assert_string_equal(json_string_value(json_object_get(e, "path")), "");
	json_decref(j);
	desc_set_free(&set);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(desc_qty_name(QTY_U), "U");
	assert_string_equal(desc_qty_name(QTY_THDU), "THDU");
	assert_string_equal(desc_qty_name(QTY_FREQ), "Frequency");
	assert_string_equal(desc_qty_name(QTY_TEMP), "Temperature");
	assert_string_equal(desc_qty_name(QTY_TARIFF), "Tariff");
	assert_string_equal(desc_qty_unit(QTY_Q), "var");
	assert_string_equal(desc_qty_unit(QTY_PF), "");
	assert_string_equal(desc_qty_unit(QTY_PA), "°");
	assert_string_equal(desc_qty_unit(QTY_TEMP), "°C");
	assert_string_equal(desc_unit_name(UNIT_VARH), "varh");
	assert_string_equal(desc_dir_name(DIR_BIDIR), "bidirectional");
	assert_int_equal(desc_unit_from_code(1), UNIT_WH);
	assert_int_equal(desc_unit_from_code(0x0102), UNIT_VARH); /* bits 1-0 only */
	assert_int_equal(desc_unit_from_code(3), UNIT_VAH);
	assert_int_equal(desc_unit_from_code(0), UNIT_UNKNOWN);
	assert_int_equal(desc_dir_from_mask(6), DIR_IMPORT);
	assert_int_equal(desc_dir_from_mask(12), DIR_IMPORT);
	assert_int_equal(desc_dir_from_mask(3), DIR_EXPORT);
	assert_int_equal(desc_dir_from_mask(9), DIR_EXPORT);
	assert_int_equal(desc_dir_from_mask(15), DIR_BIDIR);
	assert_int_equal(desc_dir_from_mask(0xF6), DIR_IMPORT); /* bits 3-0 only */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_all_load, setup_set, teardown_set),
	    cmocka_unit_test_setup_teardown(test_match, setup_set, teardown_set),
	    cmocka_unit_test_setup_teardown(test_blocks_cover, setup_set, teardown_set),
	    cmocka_unit_test_setup_teardown(test_families, setup_set, teardown_set),
	    cmocka_unit_test(test_good_fixture),
	    cmocka_unit_test(test_block_limit),
	    cmocka_unit_test(test_reject),
	    cmocka_unit_test(test_lprof_good),
	    cmocka_unit_test_setup_teardown(test_lprof_simlp, setup_set, teardown_set),
	    cmocka_unit_test(test_lprof_reject),
	    cmocka_unit_test_setup_teardown(test_constants, setup_set, teardown_set),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_dir_all_or_nothing),
	    cmocka_unit_test(test_dir_lenient),
	    cmocka_unit_test(test_errors_json),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
