/* The device model against the real descriptions in etc/devices: encode known
 * values into a register image, apply the description's read blocks, and
 * check the JSON shapes of CONTRACTS §1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/decode.h"
#include "sg/desc.h"
#include "sg/dev.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static struct desc_set set;
static uint16_t img[4][65536]; /* register image per space */

static int setup(void **state)
{
	char err[256] = "";
	int r;

	(void)state;
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

static void assert_close(double got, double want)
{
	double tol = fabs(want) * 1e-6 + 1e-12;

	if (!(fabs(got - want) <= tol))
		fail_msg("got %.12g, want %.12g", got, want);
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

/* Value the test puts in each (qty, phase) of IE38; chosen so every type
 * can carry them exactly enough (T5 unsigned, int16/uint16 at scale 0.01). */
static double ie38_value(enum desc_qty q, unsigned ph)
{
	switch (q) {
	case QTY_U:
		return 230.1 + ph;
	case QTY_I:
		return 5.125 * ph;
	case QTY_P:
		return ph ? -1150.5 * ph : -3451.5; /* exporting: negative T6 */
	case QTY_Q:
		return ph ? 210.25 * ph : 1261.5;
	case QTY_S:
		return ph ? 1200.5 * ph : 3601.5;
	case QTY_PF:
		return ph ? 0.95 - 0.01 * ph : 0.9321;
	case QTY_PA:
		return ph ? -18.19 + ph : -21.47;
	case QTY_THDU:
		return 1.5 + ph;
	case QTY_THDI:
		return 10.25 * ph;
	case QTY_FREQ:
		return 49.98;
	case QTY_TEMP:
		return -5.25;
	default:
		return 0;
	}
}

/* Phase 2 and the total are capacitive, the others inductive. */
static bool ie38_cap(unsigned ph)
{
	return ph == 2 || ph == 0;
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

static void fill_ie38(const struct desc *ds)
{
	for (unsigned i = 0; i < ds->nmeas; i++) {
		const struct desc_meas *m = &ds->meas[i];

		if (m->f.type == DEC_T7) {
			struct dec_pf pf = {.pf = ie38_value(m->qty, m->phase),
					    .capacitive = ie38_cap(m->phase),
					    .export = m->phase == 3};

			dec_encode_t7(&pf, &img[m->f.space][m->f.reg]);
		} else {
			encode_field(&m->f, ie38_value(m->qty, m->phase));
		}
	}
}

static void check_m(json_t *m, double want, const char *unit, size_t nkeys)
{
	json_t *v, *u;

	assert_non_null(m);
	assert_true(json_is_object(m));
	assert_int_equal(json_object_size(m), nkeys);
	v = json_object_get(m, "value");
	u = json_object_get(m, "unit");
	assert_true(json_is_number(v));
	assert_true(json_is_string(u));
	assert_close(json_number_value(v), want);
	assert_string_equal(json_string_value(u), unit);
}

static void check_pf(json_t *m, double want, bool cap)
{
	check_m(m, want, "", 3);
	assert_string_equal(json_string_value(json_object_get(m, "load")), cap ? "cap" : "ind");
}

static void test_ie38_measurements(void **state)
{
	static struct dev d;
	const char *phase_keys[] = {"U", "I", "P", "Q", "S", "PF", "PA", "THDUp", "THDI"};
	json_t *root, *phases, *total;

	(void)state;
	memset(img, 0, sizeof(img));
	dev_reset(&d, 0);
	d.d = desc_find(&set, "IE38");
	assert_non_null(d.d);
	d.health = DEV_OK;
	assert_int_equal(d.d->phases, 3);
	assert_true(d.d->nmeas_blocks > 0);
	fill_ie38(d.d);
	apply_all(&d);
	for (unsigned i = 0; i < d.d->nmeas; i++)
		assert_true(d.meas_ok[i]);

	root = dev_measurements_json(&d);
	assert_non_null(root);
	/* exactly Phases, Total, Frequency, Temperature */
	assert_int_equal(json_object_size(root), 4);
	phases = json_object_get(root, "Phases");
	total = json_object_get(root, "Total");
	assert_true(json_is_array(phases));
	assert_int_equal(json_array_size(phases), 3);
	for (unsigned ph = 1; ph <= 3; ph++) {
		json_t *o = json_array_get(phases, ph - 1);

		assert_true(json_is_object(o));
		assert_int_equal(json_object_size(o), 9);
		for (size_t k = 0; k < sizeof(phase_keys) / sizeof(phase_keys[0]); k++)
			assert_non_null(json_object_get(o, phase_keys[k]));
		check_m(json_object_get(o, "U"), ie38_value(QTY_U, ph), "V", 2);
		check_m(json_object_get(o, "I"), ie38_value(QTY_I, ph), "A", 2);
		check_m(json_object_get(o, "P"), ie38_value(QTY_P, ph), "W", 2);
		check_m(json_object_get(o, "Q"), ie38_value(QTY_Q, ph), "var", 2);
		check_m(json_object_get(o, "S"), ie38_value(QTY_S, ph), "VA", 2);
		check_pf(json_object_get(o, "PF"), ie38_value(QTY_PF, ph), ie38_cap(ph));
		check_m(json_object_get(o, "PA"), ie38_value(QTY_PA, ph), "°", 2);
		check_m(json_object_get(o, "THDUp"), ie38_value(QTY_THDU, ph), "%", 2);
		check_m(json_object_get(o, "THDI"), ie38_value(QTY_THDI, ph), "%", 2);
	}
	assert_true(json_is_object(total));
	assert_int_equal(json_object_size(total), 5);
	check_m(json_object_get(total, "P"), -3451.5, "W", 2);
	check_m(json_object_get(total, "Q"), 1261.5, "var", 2);
	check_m(json_object_get(total, "S"), 3601.5, "VA", 2);
	check_pf(json_object_get(total, "PF"), 0.9321, true);
	check_m(json_object_get(total, "PA"), -21.47, "°", 2);
	check_m(json_object_get(root, "Frequency"), 49.98, "Hz", 2);
	check_m(json_object_get(root, "Temperature"), -5.25, "°C", 2);
	/* spot-check that exact values survived (230.1 V, not 230.0999…) */
	assert_true(json_real_value(json_object_get(json_object_get(json_array_get(phases, 0), "U"),
						    "value")) == 231.1);
	json_decref(root);
}

static void test_measurements_partial(void **state)
{
	static struct dev d;
	json_t *root;

	(void)state;
	/* no description / nothing read: empty Phases and Total, nothing else */
	dev_reset(&d, 3);
	root = dev_measurements_json(&d);
	assert_int_equal(json_object_size(root), 2);
	assert_int_equal(json_array_size(json_object_get(root, "Phases")), 0);
	assert_int_equal(json_object_size(json_object_get(root, "Total")), 0);
	json_decref(root);

	/* only the measurement block that holds frequency and U1..U3 applied */
	memset(img, 0, sizeof(img));
	d.d = desc_find(&set, "IE38");
	assert_non_null(d.d);
	fill_ie38(d.d);
	dev_apply_block(&d, SPACE_INPUT, 105, 8, &img[SPACE_INPUT][105]);
	root = dev_measurements_json(&d);
	assert_int_equal(json_object_size(root), 3); /* Phases, Total, Frequency */
	check_m(json_object_get(root, "Frequency"), 49.98, "Hz", 2);
	assert_int_equal(json_array_size(json_object_get(root, "Phases")), 3);
	for (unsigned ph = 1; ph <= 3; ph++) {
		json_t *o = json_array_get(json_object_get(root, "Phases"), ph - 1);

		assert_int_equal(json_object_size(o), 1);
		check_m(json_object_get(o, "U"), 230.1 + ph, "V", 2);
	}
	assert_null(json_object_get(root, "Temperature"));
	json_decref(root);
}

/* ---- counters (WM3M4: int32 value, int16 exponent, unit and quadrant codes) ---- */

static const struct desc_counter *ctr_named(const struct desc *ds, const char *name, unsigned *k)
{
	for (unsigned i = 0; i < ds->nctr; i++) {
		if (!strcmp(ds->ctr[i].name, name)) {
			*k = i;
			return &ds->ctr[i];
		}
	}
	fail_msg("no counter %s", name);
	return NULL;
}

static void put_ctr(const struct desc_counter *c, long value, int exp, unsigned unit, unsigned mask)
{
	assert_true(c->value.present);
	assert_true(c->exponent.present);
	assert_true(c->unit.present);
	assert_true(c->quadrants.present);
	assert_int_equal(
	    dec_encode_number(c->value.type, (double)value, &img[c->value.space][c->value.reg]), 0);
	assert_int_equal(
	    dec_encode_number(c->exponent.type, exp, &img[c->exponent.space][c->exponent.reg]), 0);
	img[c->unit.space][c->unit.reg] = (uint16_t)unit;
	img[c->quadrants.space][c->quadrants.reg] = (uint16_t)mask;
}

static void check_c(json_t *c, const char *name, double value, const char *unit, const char *dir)
{
	assert_true(json_is_object(c));
	assert_int_equal(json_object_size(c), 6);
	/* no shipped description names a tariff-mask register */
	assert_true(json_is_null(json_object_get(c, "tariffs")));
	assert_non_null(json_object_get(c, "phase"));
	assert_string_equal(json_string_value(json_object_get(c, "name")), name);
	assert_true(json_is_number(json_object_get(c, "value")));
	assert_close(json_number_value(json_object_get(c, "value")), value);
	assert_string_equal(json_string_value(json_object_get(c, "unit")), unit);
	assert_string_equal(json_string_value(json_object_get(c, "direction")), dir);
}

static json_t *wm_counters(struct dev *d, long v1, int e1, unsigned u1, unsigned m1, long v2,
			   int e2, unsigned u2, unsigned m2, unsigned reverse_reg)
{
	const struct desc_counter *c1, *c2;
	unsigned k1 = 0, k2 = 0;
	json_t *j, *nr;

	c1 = ctr_named(d->d, "Counter 1 NR", &k1);
	c2 = ctr_named(d->d, "Counter 2 NR", &k2);
	put_ctr(c1, v1, e1, u1, m1);
	put_ctr(c2, v2, e2, u2, m2);
	assert_true(d->d->reverse.present);
	img[d->d->reverse.space][d->d->reverse.reg] = (uint16_t)reverse_reg;
	apply_all(d);
	assert_true(d->ctr_ok[k1]);
	assert_true(d->ctr_ok[k2]);
	j = dev_counters_json(d);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	assert_int_equal(json_array_size(json_object_get(j, "resettable")), 0);
	nr = json_object_get(j, "non_resettable");
	assert_int_equal(json_array_size(nr), 2);
	return j;
}

static json_t *nr_at(json_t *j, size_t i)
{
	return json_array_get(json_object_get(j, "non_resettable"), i);
}

static void test_wm3m4_counters(void **state)
{
	static struct dev d;
	json_t *j;

	(void)state;
	memset(img, 0, sizeof(img));
	dev_reset(&d, DEV_SLOT_RS485(1));
	d.d = desc_find(&set, "WM3M4");
	assert_non_null(d.d);
	d.health = DEV_OK;
	assert_int_equal(d.d->nctr, 2);
	assert_true(d.d->nctr_blocks > 0);
	assert_true(d.d->ncfg_blocks > 0);

	/* 123456 × 10^2 Wh import; -500 × 10^-1 varh export */
	j = wm_counters(&d, 123456, 2, 1, 6, -500, -1, 2, 3, 0);
	assert_false(d.reverse);
	check_c(nr_at(j, 0), "Counter 1 NR", 12345600, "Wh", "import");
	check_c(nr_at(j, 1), "Counter 2 NR", -50, "varh", "export");
	/* the description states total energy (002 §4) */
	assert_int_equal(json_integer_value(json_object_get(nr_at(j, 0), "phase")), 0);
	json_decref(j);

	/* other masks and codes: 12 import, 9 export, 15 bidirectional; 3 VAh;
	 * unit codes use bits 1-0 only (0x0101 = 1 Wh) */
	j = wm_counters(&d, 7, 3, 3, 12, 2147483647, 0, 0x0101, 9, 0);
	check_c(nr_at(j, 0), "Counter 1 NR", 7000, "VAh", "import");
	check_c(nr_at(j, 1), "Counter 2 NR", 2147483647.0, "Wh", "export");
	json_decref(j);
	j = wm_counters(&d, 1, -3, 1, 15, 0, 0, 2, 0x0F, 0);
	check_c(nr_at(j, 0), "Counter 1 NR", 0.001, "Wh", "bidirectional");
	check_c(nr_at(j, 1), "Counter 2 NR", 0, "varh", "bidirectional");
	json_decref(j);

	/* reverse: holding bit 1 set swaps import and export, not bidirectional */
	j = wm_counters(&d, 123456, 2, 1, 6, -500, -1, 2, 3, 2);
	assert_true(d.reverse);
	check_c(nr_at(j, 0), "Counter 1 NR", 12345600, "Wh", "export");
	check_c(nr_at(j, 1), "Counter 2 NR", -50, "varh", "import");
	json_decref(j);
	j = wm_counters(&d, 123456, 2, 1, 15, -500, -1, 2, 12, 0xFFFF);
	assert_true(d.reverse);
	check_c(nr_at(j, 0), "Counter 1 NR", 12345600, "Wh", "bidirectional");
	check_c(nr_at(j, 1), "Counter 2 NR", -50, "varh", "export");
	json_decref(j);
	/* bit 0 only: not reversed; and clearing the bit clears reverse */
	j = wm_counters(&d, 123456, 2, 1, 6, -500, -1, 2, 3, 1);
	assert_false(d.reverse);
	check_c(nr_at(j, 0), "Counter 1 NR", 12345600, "Wh", "import");
	check_c(nr_at(j, 1), "Counter 2 NR", -50, "varh", "export");
	json_decref(j);
}

static void test_counters_not_read(void **state)
{
	static struct dev d;
	json_t *j;

	(void)state;
	dev_reset(&d, DEV_SLOT_RS485(2));
	d.d = desc_find(&set, "WM3M4");
	j = dev_counters_json(&d);
	assert_int_equal(json_array_size(json_object_get(j, "non_resettable")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "resettable")), 0);
	json_decref(j);
}

static void test_ie38_counters(void **state)
{
	static struct dev d;
	const struct desc_counter *nr1, *r1;
	unsigned k = 0;
	json_t *j;

	(void)state;
	memset(img, 0, sizeof(img));
	dev_reset(&d, 0);
	d.d = desc_find(&set, "IE38");
	d.health = DEV_OK;
	nr1 = ctr_named(d.d, "Counter 1 NR", &k);
	r1 = ctr_named(d.d, "Counter 1", &k);
	assert_int_equal(dec_encode_number(DEC_FLOAT32, 1234.5, &img[SPACE_INPUT][nr1->value.reg]),
			 0);
	img[SPACE_HOLDING][nr1->unit.reg] = 2;
	img[SPACE_HOLDING][nr1->quadrants.reg] = 9;
	assert_int_equal(dec_encode_number(DEC_FLOAT32, 0.5, &img[SPACE_INPUT][r1->value.reg]), 0);
	img[SPACE_HOLDING][r1->unit.reg] = 1;
	img[SPACE_HOLDING][r1->quadrants.reg] = 6;
	apply_all(&d);
	j = dev_counters_json(&d);
	assert_int_equal(json_array_size(json_object_get(j, "non_resettable")), 4);
	assert_int_equal(json_array_size(json_object_get(j, "resettable")), 16);
	check_c(nr_at(j, 0), "Counter 1 NR", 1234.5, "varh", "export");
	/* no source says which phase an IE38 counter counts: null, not "total" */
	assert_true(json_is_null(json_object_get(nr_at(j, 0), "phase")));
	check_c(json_array_get(json_object_get(j, "resettable"), 0), "Counter 1", 0.5, "Wh",
		"import");
	/* order follows the file */
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(j, "resettable"), 15), "name")),
			    "Counter 16");
	json_decref(j);
}

/* ---- /api/devices entries ---- */

static void test_device_json(void **state)
{
	static struct dev d;
	json_t *j;

	(void)state;
	dev_reset(&d, DEV_SLOT_LEFT_IR);
	j = dev_device_json(&d);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "Disabled");
	assert_int_equal(json_integer_value(json_object_get(j, "index")), 0);
	assert_true(json_is_integer(json_object_get(j, "index")));
	assert_string_equal(json_string_value(json_object_get(j, "interface")), "Left IR");
	/* keys HA reads */
	assert_true(json_is_string(json_object_get(j, "serial")));
	assert_true(json_is_string(json_object_get(j, "description")));
	assert_true(json_is_string(json_object_get(j, "location")));
	assert_true(json_is_string(json_object_get(j, "sw_ver")));
	assert_true(json_is_integer(json_object_get(j, "modbus_address")));
	assert_true(json_is_null(json_object_get(j, "relay")));
	json_decref(j);

	/* disabled wins even with a model string left over */
	snprintf(d.model, sizeof(d.model), "IE38MD");
	j = dev_device_json(&d);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "Disabled");
	json_decref(j);

	/* configured but not answering, no model: "Not Detected" */
	dev_reset(&d, DEV_SLOT_RS485(3));
	d.health = DEV_NOT_RESPONDING;
	d.addr = 33;
	snprintf(d.cfg_description, sizeof(d.cfg_description), "Kitchen");
	j = dev_device_json(&d);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "Not Detected");
	assert_string_equal(json_string_value(json_object_get(j, "interface")), "RS485 3");
	assert_int_equal(json_integer_value(json_object_get(j, "index")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "modbus_address")), 33);
	assert_string_equal(json_string_value(json_object_get(j, "description")), "Kitchen");
	assert_string_equal(json_string_value(json_object_get(j, "sw_ver")), "");
	json_decref(j);
	d.health = DEV_IDENTIFYING;
	j = dev_device_json(&d);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "Not Detected");
	json_decref(j);

	/* identified */
	d.health = DEV_OK;
	snprintf(d.model, sizeof(d.model), "WM3M4C");
	snprintf(d.serial, sizeof(d.serial), "12345678");
	snprintf(d.description, sizeof(d.description), "Main");
	d.sw_ver = 105;
	d.relay = 1;
	j = dev_device_json(&d);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "WM3M4C");
	assert_string_equal(json_string_value(json_object_get(j, "serial")), "12345678");
	assert_string_equal(json_string_value(json_object_get(j, "description")), "Main");
	assert_string_equal(json_string_value(json_object_get(j, "sw_ver")), "1.05");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
	assert_string_equal(json_string_value(json_object_get(j, "relay")), "on");
	json_decref(j);

	/* Right IR: no HA index */
	dev_reset(&d, DEV_SLOT_RIGHT_IR);
	j = dev_device_json(&d);
	assert_true(json_is_null(json_object_get(j, "index")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "interface")), "Right IR"));
	json_decref(j);

	/* last RS485 slot */
	dev_reset(&d, 17);
	j = dev_device_json(&d);
	assert_int_equal(json_integer_value(json_object_get(j, "index")), 16);
	assert_string_equal(json_string_value(json_object_get(j, "interface")), "RS485 16");
	json_decref(j);
}

static void test_index_mapping(void **state)
{
	(void)state;
	assert_int_equal(dev_ha_index(0), 0);
	assert_int_equal(dev_ha_index(1), -1);
	assert_int_equal(dev_ha_index(2), 1);
	assert_int_equal(dev_ha_index(17), 16);
	assert_int_equal(dev_ha_index(18), -1);
	assert_int_equal(dev_ha_index(-1), -1);
	assert_int_equal(dev_slot_of_index(0), 0);
	assert_int_equal(dev_slot_of_index(1), 2);
	assert_int_equal(dev_slot_of_index(16), 17);
	assert_int_equal(dev_slot_of_index(17), -1);
	assert_int_equal(dev_slot_of_index(-1), -1);
	for (int slot = 0; slot < DEV_SLOTS; slot++) {
		if (slot == DEV_SLOT_RIGHT_IR)
			continue;
		assert_int_equal(dev_slot_of_index(dev_ha_index(slot)), slot);
	}
	for (int i = 0; i <= 16; i++)
		assert_int_equal(dev_ha_index(dev_slot_of_index(i)), i);
	for (int n = 1; n <= 16; n++)
		assert_int_equal(dev_ha_index(DEV_SLOT_RS485(n)), n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ie38_measurements), cmocka_unit_test(test_measurements_partial),
	    cmocka_unit_test(test_wm3m4_counters),    cmocka_unit_test(test_counters_not_read),
	    cmocka_unit_test(test_ie38_counters),     cmocka_unit_test(test_device_json),
	    cmocka_unit_test(test_index_mapping),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
