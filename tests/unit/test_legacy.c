/* The legacy /get_command documents (000 §4.2.1–4.2.3) against the real
 * descriptions in etc/devices: known values are encoded into a register image,
 * applied through the description's read blocks (as the poller does), and the
 * rendered documents are checked key by key and string by string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/decode.h"
#include "sg/desc.h"
#include "sg/dev.h"
#include "sg/legacy.h"
#include "sg/localtime.h"
#include "sg/settings.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct desc_set set;
static uint16_t img[4][65536]; /* register image per space */

struct kv {
	const char *key, *val;
};

static int setup(void **state)
{
	char err[256] = "";
	int r;

	(void)state;
	/* local_time texts below are UTC */
	setenv("TZ", "UTC", 1);
	tzset();
	r = desc_load_dir("etc/devices", &set, err, sizeof(err));
	if (r < 0)
		printf("desc_load_dir: %d %s\n", r, err);
	return r < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	desc_set_free(&set);
	return 0;
}

static void apply_blocks(struct dev *d, const struct desc_block *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		dev_apply_block(d, b[i].space, b[i].start, b[i].count,
				&img[b[i].space][b[i].start]);
}

static void apply_all(struct dev *d)
{
	apply_blocks(d, d->d->meas_blocks, d->d->nmeas_blocks);
	apply_blocks(d, d->d->ctr_blocks, d->d->nctr_blocks);
	apply_blocks(d, d->d->cfg_blocks, d->d->ncfg_blocks);
}

static void encode_field(const struct desc_field *f, double v)
{
	uint16_t *w = &img[f->space][f->reg];
	double raw = v / (f->scale != 0 ? f->scale : 1);

	if (f->type == DEC_UINT16 || f->type == DEC_INT16 || f->type == DEC_UINT32 ||
	    f->type == DEC_INT32)
		raw = round(raw);
	assert_int_equal(dec_encode_number(f->type, raw, w), 0);
}

/* The manual's example values (000 §4.2.2), phase 0 = total. */
static double example(enum desc_qty q, unsigned ph)
{
	static const double u[] = {0, 220.5, 220.6, 220.5}, i[] = {0, 0.074, 0.045, 0.019};
	static const double p[] = {6.5, 2.6, 2.2, 1.7}, qv[] = {-27.7, -15.6, -9.0, -2.9};
	static const double s[] = {30.5, 16.4, 9.8, 4.2}, pf[] = {0.2124, 0.1607, 0.2190, 0.3984};
	static const double pa[] = {-76.91, -80.57, -76.82, -60.85};
	static const double thdi[] = {0, 23.36, 31.12, 74.02}, thdu[] = {0, 2.50, 2.51, 2.51};

	switch (q) {
	case QTY_FREQ:
		return 50.01;
	case QTY_U:
		return u[ph];
	case QTY_I:
		return i[ph];
	case QTY_P:
		return p[ph];
	case QTY_Q:
		return qv[ph];
	case QTY_S:
		return s[ph];
	case QTY_PF:
		return pf[ph];
	case QTY_PA:
		return pa[ph];
	case QTY_TEMP:
		return 36.70;
	case QTY_THDI:
		return thdi[ph];
	case QTY_THDU:
		return thdu[ph];
	default:
		return 0;
	}
}

/* Phase 2 inductive, the rest capacitive. */
static void fill_example(const struct desc *ds)
{
	for (unsigned k = 0; k < ds->nmeas; k++) {
		const struct desc_meas *m = &ds->meas[k];

		if (m->f.type == DEC_T7) {
			struct dec_pf pf = {.pf = example(m->qty, m->phase),
					    .capacitive = m->phase != 2};

			dec_encode_t7(&pf, &img[m->f.space][m->f.reg]);
		} else {
			encode_field(&m->f, example(m->qty, m->phase));
		}
	}
}

/* obj has exactly the keys of want, each with that string value. */
static void check_strings(json_t *obj, const struct kv *want, size_t n)
{
	assert_true(json_is_object(obj));
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(obj, want[i].key);

		if (!v)
			fail_msg("missing key %s", want[i].key);
		if (!json_is_string(v))
			fail_msg("%s is not a string", want[i].key);
		if (strcmp(json_string_value(v), want[i].val))
			fail_msg("%s: got \"%s\", want \"%s\"", want[i].key, json_string_value(v),
				 want[i].val);
	}
	if (json_object_size(obj) != n) {
		char *txt = json_dumps(obj, JSON_COMPACT);

		fail_msg("%zu keys, want %zu: %s", json_object_size(obj), n, txt);
	}
}

static const char *str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("%s: not a string", key);
	return json_string_value(v);
}

static json_int_t integer(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		fail_msg("%s: not an integer", key);
	return json_integer_value(v);
}

static void identify(struct dev *d, int slot, const char *desc, int addr, const char *model,
		     const char *serial)
{
	memset(img, 0, sizeof(img));
	dev_reset(d, slot);
	d->d = desc_find(&set, desc);
	assert_non_null(d->d);
	d->health = DEV_OK;
	d->addr = (uint8_t)addr;
	snprintf(d->model, sizeof(d->model), "%s", model);
	snprintf(d->serial, sizeof(d->serial), "%s", serial);
}

/* ---- helpers ---- */

/* The gateway's zone (settings timezone/dst_auto), whatever the host's TZ
 * says: setup() sets TZ=UTC, the zone here is Central Europe. */
static void test_time_text(void **state)
{
	struct sg_tz cet = {60, true}, utc = {0, false}, ist = {330, false};
	char buf[TZ_TEXT_LEN];

	(void)state;
	tz_text(&cet, 1582636722, buf, sizeof(buf)); /* winter: +1 h */
	assert_string_equal(buf, "25.02.2020 14:18:42");
	tz_text(&cet, 1603875636, buf, sizeof(buf)); /* 28.10.2020 09:00:36 UTC, winter */
	assert_string_equal(buf, "28.10.2020 10:00:36");
	tz_text(&cet, 1593594000, buf, sizeof(buf)); /* 1.7.2020 09:00 UTC, summer: +2 h */
	assert_string_equal(buf, "01.07.2020 11:00:00");
	tz_text(&utc, 0, buf, sizeof(buf));
	assert_string_equal(buf, "01.01.1970 00:00:00");
	tz_text(&ist, 0, buf, sizeof(buf));
	assert_string_equal(buf, "01.01.1970 05:30:00");
}

static void test_parse_index(void **state)
{
	static const char *const junk[] = {"", "1x", "-1", "01e", "+1", " 1", "1 ", "0x1", "1.0"};
	long v = -5;

	(void)state;
	assert_int_equal(legacy_parse_index("0", 16, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(legacy_parse_index("16", 16, &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(legacy_parse_index("007", 16, &v), 0);
	assert_int_equal(v, 7);
	v = -5;
	assert_int_equal(legacy_parse_index("17", 16, &v), -ERANGE);
	assert_int_equal(legacy_parse_index("99999999999999999999999", 16, &v), -ERANGE);
	for (size_t i = 0; i < N(junk); i++)
		if (legacy_parse_index(junk[i], 16, &v) != -EINVAL)
			fail_msg("'%s' accepted", junk[i]);
	assert_int_equal(legacy_parse_index(NULL, 16, &v), -EINVAL);
	assert_int_equal(v, -5); /* untouched on error */
}

/* ---- get_measurements ---- */

static void test_ie38_measurements(void **state)
{
	static struct dev d;
	static const struct kv want[] = {
	    {"frequency", "50.01 Hz"}, {"U1", "220.5 V"},     {"U2", "220.6 V"},
	    {"U3", "220.5 V"},	       {"I1", "0.074 A"},     {"I2", "0.045 A"},
	    {"I3", "0.019 A"},	       {"P0", "6.5 W"},	      {"P1", "2.6 W"},
	    {"P2", "2.2 W"},	       {"P3", "1.7 W"},	      {"Q0", "-27.7 var"},
	    {"Q1", "-15.6 var"},       {"Q2", "-9.0 var"},    {"Q3", "-2.9 var"},
	    {"S0", "30.5 VA"},	       {"S1", "16.4 VA"},     {"S2", "9.8 VA"},
	    {"S3", "4.2 VA"},	       {"PF0", "0.2124 Cap"}, {"PF1", "0.1607 Cap"},
	    {"PF2", "0.2190 Ind"},     {"PF3", "0.3984 Cap"}, {"PA0", "-76.91"},
	    {"PA1", "-80.57"},	       {"PA2", "-76.82"},     {"PA3", "-60.85"},
	    {"Tint", "36.70"},	       {"THDI1", "23.36"},    {"THDI2", "31.12"},
	    {"THDI3", "74.02"},	       {"THDUp1", "2.50"},    {"THDUp2", "2.51"},
	    {"THDUp3", "2.51"},
	};
	static const char *const hkeys[] = {"cmd",	  "number",	  "modbus_addr",
					    "local_time", "description",  "location",
					    "model",	  "serial_number"};
	json_t *j, *h;
	const char *first;
	void *it;

	(void)state;
	identify(&d, DEV_SLOT_LEFT_IR, "IE38", 33, "IE38MD", "X0000121");
	snprintf(d.description, sizeof(d.description), "Main feeder");
	snprintf(d.location, sizeof(d.location), "Here");
	snprintf(d.cfg_description, sizeof(d.cfg_description), "configured");
	fill_example(d.d);
	apply_all(&d);

	j = legacy_measurements(&d, 0, "25.02.2020 13:18:42");
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	check_strings(json_object_get(j, "measurements"), want, N(want));
	assert_null(json_object_get(json_object_get(j, "measurements"), "tariff"));

	h = json_object_get(j, "header");
	assert_int_equal(json_object_size(h), N(hkeys));
	for (size_t i = 0; i < N(hkeys); i++)
		assert_non_null(json_object_get(h, hkeys[i]));
	assert_string_equal(str(h, "cmd"), "get_measurements");
	assert_int_equal(integer(h, "number"), 0);
	assert_int_equal(integer(h, "modbus_addr"), 33);
	assert_string_equal(str(h, "local_time"), "25.02.2020 13:18:42");
	assert_string_equal(str(h, "description"), "Main feeder"); /* the device's own wins */
	assert_string_equal(str(h, "location"), "Here");
	assert_string_equal(str(h, "model"), "IE38MD");
	assert_string_equal(str(h, "serial_number"), "X0000121");

	/* the manual's order: frequency first, then U1 */
	it = json_object_iter(json_object_get(j, "measurements"));
	first = json_object_iter_key(it);
	assert_string_equal(first, "frequency");
	assert_string_equal(
	    json_object_iter_key(json_object_iter_next(json_object_get(j, "measurements"), it)),
	    "U1");
	json_decref(j);
}

static void test_ie14_measurements(void **state)
{
	static struct dev d;
	static const struct kv want[] = {
	    {"frequency", "50.01 Hz"}, {"U1", "220.5 V"},     {"I1", "0.074 A"},
	    {"P0", "6.5 W"},	       {"P1", "2.6 W"},	      {"Q0", "-27.7 var"},
	    {"Q1", "-15.6 var"},       {"S0", "30.5 VA"},     {"S1", "16.4 VA"},
	    {"PF0", "0.2124 Cap"},     {"PF1", "0.1607 Cap"}, {"PA0", "-76.91"},
	    {"PA1", "-80.57"},	       {"Tint", "36.70"},     {"THDI1", "23.36"},
	    {"THDUp1", "2.50"},
	};
	json_t *j;

	(void)state;
	identify(&d, DEV_SLOT_RS485(4), "IE14", 4, "IE14MD", "12345678");
	snprintf(d.cfg_description, sizeof(d.cfg_description), "Garage");
	fill_example(d.d);
	apply_all(&d);
	j = legacy_measurements(&d, 4, "01.01.1970 00:00:00");
	check_strings(json_object_get(j, "measurements"), want, N(want));
	/* no description read from the device: the configured one */
	assert_string_equal(str(json_object_get(j, "header"), "description"), "Garage");
	assert_int_equal(integer(json_object_get(j, "header"), "number"), 4);
	assert_int_equal(integer(json_object_get(j, "header"), "modbus_addr"), 4);
	json_decref(j);
}

/* Set measurement k of a hand-made description. */
static void put(struct dev *d, struct desc *ds, unsigned k, enum desc_qty q, unsigned ph,
		enum dec_type t, double v, bool ok)
{
	ds->meas[k] = (struct desc_meas){q, (uint8_t)ph, {.present = true, .type = t}};
	ds->nmeas = k + 1 > ds->nmeas ? k + 1 : ds->nmeas;
	d->meas[k] = v;
	d->meas_ok[k] = ok;
}

/* A description with a tariff and float PFs (no load flag), values set
 * directly: unread quantities are left out, "-0.00" is printed "0.00", and a
 * float PF's load follows the quadrant of P and Q. */
static void test_synthetic_measurements(void **state)
{
	static struct dev d;
	static struct desc ds;
	static const struct kv want[] = {
	    {"U1", "230.0 V"},	  {"PF0", "0.9500"},	 {"PA0", "0.00"},
	    {"Q1", "-100.0 var"}, {"PF1", "0.5000 Cap"}, {"P2", "-10.0 W"},
	    {"Q2", "20.0 var"},	  {"PF2", "0.4000 Cap"}, {"P3", "-10.0 W"},
	    {"Q3", "-20.0 var"},  {"PF3", "0.3000 Ind"},
	};
	json_t *j, *m;

	(void)state;
	dev_reset(&d, DEV_SLOT_RS485(2));
	ds = (struct desc){.name = "X", .phases = 3};
	d.d = &ds;
	d.health = DEV_OK;
	put(&d, &ds, 0, QTY_U, 1, DEC_T5, 230, true);
	put(&d, &ds, 1, QTY_U, 2, DEC_T5, 231, false);	     /* not read: not shown */
	put(&d, &ds, 2, QTY_PF, 0, DEC_FLOAT32, 0.95, true); /* no Q0: no suffix */
	put(&d, &ds, 3, QTY_PA, 0, DEC_INT16, -0.001, true);
	put(&d, &ds, 4, QTY_TARIFF, 0, DEC_UINT16, 2, true);
	/* phase 1: import (no P), Q < 0: capacitive (IV) */
	put(&d, &ds, 5, QTY_Q, 1, DEC_FLOAT32, -100, true);
	put(&d, &ds, 6, QTY_PF, 1, DEC_FLOAT32, 0.5, true);
	/* phase 2: export, Q > 0: capacitive (II); phase 3: export, Q < 0: inductive (III) */
	put(&d, &ds, 7, QTY_P, 2, DEC_FLOAT32, -10, true);
	put(&d, &ds, 8, QTY_Q, 2, DEC_FLOAT32, 20, true);
	put(&d, &ds, 9, QTY_PF, 2, DEC_FLOAT32, 0.4, true);
	put(&d, &ds, 10, QTY_P, 3, DEC_FLOAT32, -10, true);
	put(&d, &ds, 11, QTY_Q, 3, DEC_FLOAT32, -20, true);
	put(&d, &ds, 12, QTY_PF, 3, DEC_FLOAT32, 0.3, true);
	j = legacy_measurements(&d, 2, "x");
	m = json_object_get(j, "measurements");
	assert_int_equal(integer(m, "tariff"), 2);
	json_object_del(m, "tariff");
	check_strings(m, want, N(want));
	json_decref(j);
}

/* ---- get_counters ---- */

static const struct desc_counter *ctr_named(const struct desc *ds, const char *name)
{
	for (unsigned i = 0; i < ds->nctr; i++)
		if (!strcmp(ds->ctr[i].name, name))
			return &ds->ctr[i];
	fail_msg("no counter %s", name);
	return NULL;
}

/* An IE counter: float32 Wh value, unit code, quadrant mask 6 (import). */
static void put_ie(const struct desc *ds, const char *name, double wh, unsigned unit)
{
	const struct desc_counter *c = ctr_named(ds, name);

	assert_int_equal(dec_encode_number(DEC_FLOAT32, wh, &img[c->value.space][c->value.reg]), 0);
	img[c->unit.space][c->unit.reg] = (uint16_t)unit;
	img[c->quadrants.space][c->quadrants.reg] = 6;
}

static void test_ie38_counters(void **state)
{
	static struct dev d;
	struct kv want[20];
	char keys[20][32], vals[20][24], name[32];
	json_t *j, *h, *st;
	size_t n = 0;

	(void)state;
	identify(&d, DEV_SLOT_LEFT_IR, "IE38", 33, "IE38MD", "X0000121");
	put_ie(d.d, "Counter 1 NR", 200, 1);
	put_ie(d.d, "Counter 2 NR", 0, 1);
	put_ie(d.d, "Counter 3 NR", 1500, 2);
	put_ie(d.d, "Counter 4 NR", 4321, 3);
	for (int k = 1; k <= 16; k++) {
		snprintf(name, sizeof(name), "Counter %d", k);
		/* counter 13: unit code 0 = unknown, printed as a bare "k" */
		put_ie(d.d, name, k == 1 ? 500 : 0, k == 13 ? 0 : 1);
	}
	apply_all(&d);

	want[n++] = (struct kv){"counter1nr", "0.20 kWh"};
	want[n++] = (struct kv){"counter2nr", "0.00 kWh"};
	want[n++] = (struct kv){"counter3nr", "1.50 kvarh"};
	want[n++] = (struct kv){"counter4nr", "4.32 kVAh"};
	for (int k = 1; k <= 16; k++, n++) {
		snprintf(keys[n], sizeof(keys[n]), "counter%d", k);
		snprintf(vals[n], sizeof(vals[n]), "%s",
			 k == 1	   ? "0.50 kWh"
			 : k == 13 ? "0.00 k"
				   : "0.00 kWh");
		want[n] = (struct kv){keys[n], vals[n]};
	}

	j = legacy_counters(&d, 0, "28.10.2020 09:00:36");
	assert_int_equal(json_object_size(j), 3);
	check_strings(json_object_get(j, "counters"), want, n);
	h = json_object_get(j, "header");
	assert_int_equal(json_object_size(h), 11);
	assert_string_equal(str(h, "cmd"), "get_energy_counters");
	assert_int_equal(integer(h, "number"), 0);
	assert_int_equal(integer(h, "total"), 20);
	assert_int_equal(integer(h, "resetable_counters"), 16);
	assert_int_equal(integer(h, "non_resetable_counters"), 4);
	assert_int_equal(integer(h, "modbus_addr"), 33);
	assert_string_equal(str(h, "local_time"), "28.10.2020 09:00:36");
	assert_string_equal(str(h, "model"), "IE38MD");
	assert_string_equal(str(h, "serial_number"), "X0000121");
	assert_string_equal(str(h, "description"), "");
	assert_string_equal(str(h, "location"), "");

	/* settings: phase1nr…4nr, phase1…16, then tariff1nr…4nr, tariff1…16 */
	st = json_object_get(j, "settings");
	assert_int_equal(json_object_size(st), 40);
	/* no source gives the IE38's counter phases: "", not a made-up "Total" */
	assert_string_equal(str(st, "phase1nr"), "");
	assert_string_equal(str(st, "phase4nr"), "");
	assert_string_equal(str(st, "phase16"), "");
	assert_string_equal(str(st, "tariff1nr"), "");
	assert_string_equal(str(st, "tariff16"), "");
	assert_null(json_object_get(st, "phase5nr"));
	assert_null(json_object_get(st, "phase17"));
	assert_string_equal(json_object_iter_key(json_object_iter(st)), "phase1nr");
	json_decref(j);
}

/* Tariff masks and phases read from the meter (R-A8): the test model SimLP
 * names registers for them; legacy tariffN in the manual's "1 2 3 4 " form,
 * REST "tariffs": [1, 2, 3, 4] and "phase". A phase code the meter cannot
 * have is not shown as one. */
static void test_counter_tariffs_phases(void **state)
{
	struct desc *ds = NULL;
	char err[256] = "";
	struct dev d;
	json_t *j, *st, *c, *nr;

	(void)state;
	assert_int_equal(desc_load_file("tests/devices/simlp.json", &ds, err, sizeof(err)), 0);
	memset(img, 0, sizeof(img));
	dev_reset(&d, DEV_SLOT_LEFT_IR);
	d.d = ds;
	d.health = DEV_OK;
	put_ie(ds, "Counter 1 NR", 1000, 1);
	put_ie(ds, "Counter 2 NR", 2000, 1);
	put_ie(ds, "Counter 3 NR", 3000, 1);
	img[SPACE_HOLDING][ctr_named(ds, "Counter 1 NR")->tariff_mask.reg] = 0x0F;
	img[SPACE_HOLDING][ctr_named(ds, "Counter 1 NR")->phase_code.reg] = 0;
	img[SPACE_HOLDING][ctr_named(ds, "Counter 2 NR")->tariff_mask.reg] = 0x12; /* 2 and 5 */
	img[SPACE_HOLDING][ctr_named(ds, "Counter 2 NR")->phase_code.reg] = 2;
	img[SPACE_HOLDING][ctr_named(ds, "Counter 3 NR")->tariff_mask.reg] = 0;
	img[SPACE_HOLDING][ctr_named(ds, "Counter 3 NR")->phase_code.reg] = 7;
	apply_all(&d);

	j = legacy_counters(&d, 0, "28.10.2020 09:00:36");
	st = json_object_get(j, "settings");
	assert_string_equal(str(st, "tariff1nr"), "1 2 3 4 ");
	assert_string_equal(str(st, "phase1nr"), "Total");
	assert_string_equal(str(st, "tariff2nr"), "2 5 ");
	assert_string_equal(str(st, "phase2nr"), "L2");
	assert_string_equal(str(st, "tariff3nr"), "");
	assert_string_equal(str(st, "phase3nr"), "");
	json_decref(j);

	j = dev_counters_json(&d);
	nr = json_object_get(j, "non_resettable");
	c = json_array_get(nr, 1);
	assert_int_equal(json_array_size(json_object_get(c, "tariffs")), 2);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(c, "tariffs"), 1)), 5);
	assert_int_equal(json_integer_value(json_object_get(c, "phase")), 2);
	c = json_array_get(nr, 2);
	assert_int_equal(json_array_size(json_object_get(c, "tariffs")), 0);
	assert_true(json_is_null(json_object_get(c, "phase")));
	json_decref(j);
	desc_free(ds);
}

/* A WM counter: int32 value × 10^exponent in the unit's base. */
static void put_wm(const struct desc *ds, const char *name, long v, int exp, unsigned unit)
{
	const struct desc_counter *c = ctr_named(ds, name);

	assert_int_equal(
	    dec_encode_number(c->value.type, (double)v, &img[c->value.space][c->value.reg]), 0);
	assert_int_equal(
	    dec_encode_number(c->exponent.type, exp, &img[c->exponent.space][c->exponent.reg]), 0);
	img[c->unit.space][c->unit.reg] = (uint16_t)unit;
	img[c->quadrants.space][c->quadrants.reg] = 6;
}

static void wm_case(struct dev *d, long v1, int e1, long v2, int e2, const char *w1, const char *w2)
{
	struct kv want[] = {{"counter1nr", w1}, {"counter2nr", w2}};
	json_t *j, *h;

	put_wm(d->d, "Counter 1 NR", v1, e1, 1);
	put_wm(d->d, "Counter 2 NR", v2, e2, 2);
	apply_all(d);
	j = legacy_counters(d, 1, "t");
	check_strings(json_object_get(j, "counters"), want, 2);
	h = json_object_get(j, "header");
	assert_int_equal(integer(h, "total"), 2);
	assert_int_equal(integer(h, "resetable_counters"), 0);
	assert_int_equal(integer(h, "non_resetable_counters"), 2);
	assert_int_equal(integer(h, "number"), 1);
	assert_int_equal(json_object_size(json_object_get(j, "settings")), 4);
	json_decref(j);
}

static void test_wm3m4_counters(void **state)
{
	static struct dev d;
	static const struct kv settings[] = {
	    {"phase1nr", "Total"}, {"phase2nr", "Total"}, {"tariff1nr", ""}, {"tariff2nr", ""}};
	json_t *j;

	(void)state;
	identify(&d, DEV_SLOT_RS485(1), "WM3M4", 1, "WM3M4C", "18230001");
	/* decimals follow the exponent: 3 − exp, within 0…3 */
	wm_case(&d, 2, 2, 123456, -1, "0.2 kWh", "12.346 kvarh");
	wm_case(&d, 7, 3, 1, 5, "7 kWh", "100 kvarh");
	/* -0.05 varh rounds to zero: no minus sign */
	wm_case(&d, 1234, 0, -5, -2, "1.234 kWh", "0.000 kvarh");

	/* a counter not read is left out; its settings stay */
	d.ctr_ok[1] = false;
	j = legacy_counters(&d, 1, "t");
	assert_int_equal(json_object_size(json_object_get(j, "counters")), 1);
	assert_non_null(json_object_get(json_object_get(j, "counters"), "counter1nr"));
	check_strings(json_object_get(j, "settings"), settings, N(settings));
	json_decref(j);
}

/* ---- get_settings ---- */

static void test_settings(void **state)
{
	struct settings *s;
	json_t *j, *st, *all, *v, *secrets;
	char err[256];
	const char *key;
	char *txt;
	size_t i = 0, nsecret = 0;

	(void)state;
	assert_int_equal(settings_init(&s, NULL, "SG000013", "SG-W1"), 0);
	secrets = json_pack("{s:s, s:s, s:s, s:s}", "wifi_password", "wifi-SECRET-1",
			    "mqtt1_password", "mqtt-SECRET-2", "mqtt2_password", "mqtt-SECRET-3",
			    "auth_password", "auth-SECRET-4");
	assert_int_equal(settings_set_json(s, secrets, err, sizeof(err)), 0);
	json_decref(secrets);

	j = legacy_settings(s, "28.10.2020 11:40:44");
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	assert_int_equal(json_object_size(json_object_get(j, "header")), 2);
	assert_string_equal(str(json_object_get(j, "header"), "cmd"), "get_settings");
	assert_string_equal(str(json_object_get(j, "header"), "timestamp"), "28.10.2020 11:40:44");

	/* every key, in table order; secrets present as "" */
	st = json_object_get(j, "settings");
	all = settings_to_json(s, false);
	assert_int_equal(json_object_size(st), settings_count());
	json_object_foreach(st, key, v)
	{
		const struct set_def *def = settings_def_at(i++);

		assert_string_equal(key, def->key);
		if (def->secret) {
			nsecret++;
			assert_string_equal(json_string_value(v), "");
		} else {
			assert_true(json_equal(v, json_object_get(all, key)));
		}
	}
	assert_true(nsecret >= 4);
	assert_string_equal(str(st, "serial_number"), "SG000013");
	assert_string_equal(str(st, "wifi_password"), "");
	assert_string_equal(str(st, "auth_password"), "");
	assert_int_equal(integer(st, "http_port"), 80);

	txt = json_dumps(j, JSON_COMPACT);
	assert_null(strstr(txt, "SECRET"));
	free(txt);
	json_decref(all);
	json_decref(j);
	settings_fini(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_text),
	    cmocka_unit_test(test_parse_index),
	    cmocka_unit_test(test_ie38_measurements),
	    cmocka_unit_test(test_ie14_measurements),
	    cmocka_unit_test(test_synthetic_measurements),
	    cmocka_unit_test(test_ie38_counters),
	    cmocka_unit_test(test_counter_tariffs_phases),
	    cmocka_unit_test(test_wm3m4_counters),
	    cmocka_unit_test(test_settings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
