/* The legacy /get_command documents of 000 §4.2.1–4.2.3, rendered from the
 * device model and the settings. Values are strings with units and fixed
 * decimals as the Iskra gateway prints them; keys as printed in the manual
 * (its OCR typos like "PO"/"SO" read as the intended P0/S0). */
#include "sg/legacy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NUM_LEN 400 /* "%.Nf" of the largest T5 value (~1.7e134) fits */

int legacy_parse_index(const char *s, long max, long *out)
{
	size_t n = s ? strspn(s, "0123456789") : 0;
	long v;

	if (!n || s[n])
		return -EINVAL;
	errno = 0;
	v = strtol(s, NULL, 10);
	if (errno || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* v with decimals, then unit. A value that rounds to zero loses its minus:
 * "-0.00" would read as a (tiny) export that is not there. */
static void fmt_value(char *buf, size_t len, double v, int decimals, const char *unit)
{
	char num[NUM_LEN];
	const char *p = num;

	snprintf(num, sizeof(num), "%.*f", decimals, v);
	if (num[0] == '-' && strspn(num + 1, "0.") == strlen(num + 1))
		p++;
	snprintf(buf, len, "%s%s", p, unit);
}

/* The identification every legacy header repeats. The device's own
 * description (read from it) wins over the slot's configured one, as in
 * /api/devices. */
static const char *dev_description(const struct dev *d)
{
	return d->description[0] ? d->description : d->cfg_description;
}

/* ---- get_measurements (000 §4.2.2) ---- */

/* One legacy key family, in the manual's order. Phased keys carry the phase
 * number (0 = total: P0, Q0, S0, PF0, PA0). */
struct legacy_qty {
	enum desc_qty qty;
	const char *key;
	bool phased;
	int decimals;
	const char *unit;
};

/* Phase-to-phase voltages have no legacy key and are left out. */
static const struct legacy_qty legacy_qtys[] = {
    {QTY_FREQ, "frequency", false, 2, " Hz"},
    {QTY_U, "U", true, 1, " V"},
    {QTY_I, "I", true, 3, " A"},
    {QTY_P, "P", true, 1, " W"},
    {QTY_Q, "Q", true, 1, " var"},
    {QTY_S, "S", true, 1, " VA"},
    {QTY_PF, "PF", true, 4, ""},
    {QTY_PA, "PA", true, 2, ""},
    {QTY_TEMP, "Tint", false, 2, ""},
    {QTY_THDI, "THDI", true, 2, ""},
    {QTY_THDU, "THDUp", true, 2, ""},
    {QTY_TARIFF, "tariff", false, 0, ""},
};

static int meas_index(const struct desc *ds, enum desc_qty q, unsigned phase)
{
	for (unsigned i = 0; i < ds->nmeas; i++)
		if (ds->meas[i].qty == q && ds->meas[i].phase == phase)
			return (int)i;
	return -1;
}

static bool meas_value(const struct dev *d, enum desc_qty q, unsigned ph, double *v)
{
	int i = meas_index(d->d, q, ph);

	if (i < 0 || !d->meas_ok[i])
		return false;
	*v = d->meas[i];
	return true;
}

/* T7 carries inductive/capacitive. A plain float PF (MC family) does not:
 * there the load follows from the signs of P and Q of the same phase (IEC
 * quadrants: I and III inductive, II and IV capacitive); without Q the
 * suffix is left out rather than guessed. */
static const char *pf_suffix(const struct dev *d, int i)
{
	const struct desc_meas *m = &d->d->meas[i];
	double p = 0, q;

	if (m->f.type == DEC_T7)
		return d->pf[i].capacitive ? " Cap" : " Ind";
	if (!meas_value(d, QTY_Q, m->phase, &q))
		return "";
	meas_value(d, QTY_P, m->phase, &p); /* absent: import */
	return (p < 0 ? q > 0 : q < 0) ? " Cap" : " Ind";
}

static void put_meas(json_t *obj, const struct dev *d, const struct legacy_qty *q, unsigned ph)
{
	int i = meas_index(d->d, q->qty, ph);
	char key[16], val[NUM_LEN + 16];

	if (i < 0 || !d->meas_ok[i] || ph > d->d->phases)
		return;
	if (q->qty == QTY_TARIFF) {
		json_object_set_new(obj, q->key, json_integer((json_int_t)d->meas[i]));
		return;
	}
	if (q->phased)
		snprintf(key, sizeof(key), "%s%u", q->key, ph);
	else
		snprintf(key, sizeof(key), "%s", q->key);
	fmt_value(val, sizeof(val), d->meas[i], q->decimals,
		  q->qty == QTY_PF ? pf_suffix(d, i) : q->unit);
	json_object_set_new(obj, key, json_string(val));
}

json_t *legacy_measurements(const struct dev *d, int number, const char *local_time)
{
	json_t *m = json_object();

	for (size_t k = 0; d->d && k < N(legacy_qtys); k++) {
		unsigned last = legacy_qtys[k].phased ? DESC_PHASES_MAX : 0;

		for (unsigned ph = 0; ph <= last; ph++)
			put_meas(m, d, &legacy_qtys[k], ph);
	}
	return json_pack("{s:{s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s}, s:o}", "header", "cmd",
			 "get_measurements", "number", number, "modbus_addr", d->addr, "local_time",
			 local_time, "description", dev_description(d), "location", d->location,
			 "model", d->model, "serial_number", d->serial, "measurements", m);
}

/* ---- get_counters (000 §4.2.3) ---- */

struct ctr_doc {
	json_t *values, *phases, *tariffs;
	unsigned n; /* counters numbered so far in the current group */
};

static enum desc_unit ctr_unit(const struct dev *d, unsigned k)
{
	return d->d->ctr[k].unit.present ? d->ctr_unit[k] : d->d->ctr[k].fixed_unit;
}

/* The counter's own resolution in k-units: value × 10^exp Wh has 3 − exp
 * decimals in kWh. Float counters (IE family) have no exponent register; the
 * gateway prints them with 2 decimals (10 Wh). */
static int ctr_decimals(const struct dev *d, unsigned k)
{
	int dec;

	if (d->d->ctr[k].value.type == DEC_FLOAT32)
		return 2;
	dec = 3 - d->ctr_exp[k];
	return dec < 0 ? 0 : dec > 3 ? 3 : dec;
}

/* "" when the meter does not tell (no register, and no description says). */
static const char *phase_name(int phase)
{
	static const char *const names[] = {"Total", "L1", "L2", "L3"};

	return phase >= 0 && (size_t)phase < N(names) ? names[phase] : "";
}

/* "1 2 3 4 " as the manual prints a tariff mask (each number and a blank);
 * "" when it is not known. */
static void tariff_text(int mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int t = 0; mask > 0 && t < 16 && n < len; t++)
		if (mask & (1 << t))
			n += (size_t)snprintf(buf + n, len - n, "%d ", t + 1);
}

static void put_counter(struct ctr_doc *doc, const struct dev *d, unsigned k)
{
	const struct desc_counter *c = &d->d->ctr[k];
	const char *sfx = c->resettable ? "" : "nr";
	char key[32], unit[16], val[NUM_LEN + 16], tariffs[48];
	unsigned n = ++doc->n;

	/* A counter not read yet is left out rather than shown as 0. */
	if (d->ctr_ok[k]) {
		snprintf(key, sizeof(key), "counter%u%s", n, sfx);
		snprintf(unit, sizeof(unit), " k%s", desc_unit_name(ctr_unit(d, k)));
		fmt_value(val, sizeof(val), d->ctr[k] * pow(10, d->ctr_exp[k]) / 1000,
			  ctr_decimals(d, k), unit);
		json_object_set_new(doc->values, key, json_string(val));
	}
	snprintf(key, sizeof(key), "phase%u%s", n, sfx);
	json_object_set_new(doc->phases, key, json_string(phase_name(dev_ctr_phase(d, k))));
	/* Read from the meter where its description names the register; else
	 * "" says "not known", never a made-up "1 2 3 4". */
	tariff_text(dev_ctr_tariffs(d, k), tariffs, sizeof(tariffs));
	snprintf(key, sizeof(key), "tariff%u%s", n, sfx);
	json_object_set_new(doc->tariffs, key, json_string(tariffs));
}

/* Non-resettable counters first ("counterKnr"), then resettable ("counterK"),
 * each group numbered from 1 in description order, as the manual prints. */
static void put_group(struct ctr_doc *doc, const struct dev *d, bool resettable, unsigned *count)
{
	doc->n = 0;
	for (unsigned k = 0; k < d->d->nctr; k++)
		if (d->d->ctr[k].resettable == resettable)
			put_counter(doc, d, k);
	*count = doc->n;
}

json_t *legacy_counters(const struct dev *d, int number, const char *local_time)
{
	struct ctr_doc doc = {json_object(), json_object(), json_object(), 0};
	unsigned nr = 0, r = 0;

	if (d->d) {
		put_group(&doc, d, false, &nr);
		put_group(&doc, d, true, &r);
	}
	json_object_update(doc.phases, doc.tariffs); /* settings: phases, then tariffs */
	json_decref(doc.tariffs);
	return json_pack("{s:{s:s, s:i, s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:i}, s:o, s:o}",
			 "header", "cmd", "get_energy_counters", "number", number, "total",
			 (int)(nr + r), "local_time", local_time, "modbus_addr", d->addr,
			 "description", dev_description(d), "location", d->location, "model",
			 d->model, "serial_number", d->serial, "resetable_counters", (int)r,
			 "non_resetable_counters", (int)nr, "counters", doc.values, "settings",
			 doc.phases);
}

/* ---- get_settings (000 §4.2.1) ---- */

json_t *legacy_settings(const struct settings *s, const char *timestamp)
{
	json_t *all = settings_to_json(s, false), *out;

	if (!all)
		return NULL;
	out = json_object();
	for (size_t i = 0; i < settings_count(); i++) {
		const struct set_def *def = settings_def_at(i);

		/* The key stays (clients expect the full set), the secret does not. */
		json_object_set_new(out, def->key,
				    def->secret ? json_string("")
						: json_incref(json_object_get(all, def->key)));
	}
	json_decref(all);
	return json_pack("{s:{s:s, s:s}, s:o}", "header", "cmd", "get_settings", "timestamp",
			 timestamp, "settings", out);
}
