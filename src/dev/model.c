/* The normalised device model: decoding bus results through a description
 * and rendering the JSON every interface shares (CONTRACTS.md §1 shapes). */
#include "sg/dev.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void dev_reset(struct dev *d, int slot)
{
	memset(d, 0, sizeof(*d));
	d->slot = slot;
	d->relay = -1;
	for (unsigned k = 0; k < DESC_CTR_MAX; k++)
		d->ctr_tariffs[k] = d->ctr_phase[k] = -1;
	if (slot == DEV_SLOT_LEFT_IR) {
		snprintf(d->ifname, sizeof(d->ifname), "Left IR");
		d->bus = CONF_BUS_LEFT_IR;
	} else if (slot == DEV_SLOT_RIGHT_IR) {
		snprintf(d->ifname, sizeof(d->ifname), "Right IR");
		d->bus = CONF_BUS_RIGHT_IR;
	} else {
		snprintf(d->ifname, sizeof(d->ifname), "RS485 %d", (slot - 1) & 31);
		d->bus = CONF_BUS_RS485;
	}
}

int dev_ha_index(int slot)
{
	if (slot == DEV_SLOT_LEFT_IR)
		return 0;
	if (slot >= 2 && slot < DEV_SLOTS)
		return slot - 1;
	return -1;
}

int dev_slot_of_index(int index)
{
	if (index == 0)
		return DEV_SLOT_LEFT_IR;
	if (index >= 1 && index <= 16)
		return index + 1;
	return -1;
}

const char *dev_health_name(enum dev_health h)
{
	switch (h) {
	case DEV_DISABLED:
		return "disabled";
	case DEV_IDENTIFYING:
		return "identifying";
	case DEV_OK:
		return "ok";
	case DEV_NOT_RESPONDING:
		return "not responding";
	case DEV_UNKNOWN_MODEL:
		return "unknown model";
	case DEV_READ_ERROR:
		return "read error";
	}
	return "?";
}

/* Capitalised as the manual prints them: "Error: Left IR Energy meter not
 * responding" (001 §4.7.2). */
const char *dev_class_name(enum desc_class c)
{
	switch (c) {
	case CLASS_NONE:
		return "Not connected";
	case CLASS_METER:
		return "Energy meter";
	case CLASS_BICOM:
		return "Bicom";
	case CLASS_GENERIC:
		return "Generic Modbus";
	case CLASS_PQ:
		return "Power-quality analyser";
	}
	return "?";
}

static bool covers(const struct desc_field *f, enum desc_space space, uint16_t start,
		   uint16_t count)
{
	unsigned words = f->type == DEC_STRING ? f->words : dec_type_words(f->type);

	return f->present && f->space == space && f->reg >= start &&
	       (unsigned)f->reg + words <= (unsigned)start + count;
}

static bool field_number(const struct desc_field *f, enum desc_space space, uint16_t start,
			 const uint16_t *regs, double *out)
{
	double v;

	if (dec_number(f->type, regs + (f->reg - start), &v) < 0)
		return false;
	(void)space;
	*out = v * (f->scale != 0 ? f->scale : 1);
	return true;
}

static void apply_meas(struct dev *d, enum desc_space space, uint16_t start, uint16_t count,
		       const uint16_t *regs)
{
	const struct desc *ds = d->d;

	for (unsigned i = 0; i < ds->nmeas; i++) {
		const struct desc_field *f = &ds->meas[i].f;

		if (!covers(f, space, start, count))
			continue;
		d->meas_ok[i] = field_number(f, space, start, regs, &d->meas[i]);
		if (d->meas_ok[i] && f->type == DEC_T7)
			dec_t7(regs + (f->reg - start), &d->pf[i]);
	}
}

static void apply_counter(struct dev *d, unsigned k, enum desc_space space, uint16_t start,
			  uint16_t count, const uint16_t *regs)
{
	const struct desc_counter *c = &d->d->ctr[k];
	double v;

	if (covers(&c->value, space, start, count))
		d->ctr_ok[k] = field_number(&c->value, space, start, regs, &d->ctr[k]);
	if (covers(&c->exponent, space, start, count) &&
	    field_number(&c->exponent, space, start, regs, &v))
		d->ctr_exp[k] = (int16_t)v;
	if (covers(&c->unit, space, start, count) && field_number(&c->unit, space, start, regs, &v))
		d->ctr_unit[k] = desc_unit_from_code((uint16_t)v);
	if (covers(&c->quadrants, space, start, count) &&
	    field_number(&c->quadrants, space, start, regs, &v))
		d->ctr_dir[k] = desc_dir_from_mask((uint16_t)v);
	if (covers(&c->tariff_mask, space, start, count))
		d->ctr_tariffs[k] = field_number(&c->tariff_mask, space, start, regs, &v)
					? (int32_t)((uint32_t)v & 0xFFFF)
					: -1;
	/* A code other than 0…phases is no phase we know: not made up. */
	if (covers(&c->phase_code, space, start, count))
		d->ctr_phase[k] = field_number(&c->phase_code, space, start, regs, &v) && v >= 0 &&
					  v <= d->d->phases
				      ? (int8_t)v
				      : -1;
}

int dev_ctr_tariffs(const struct dev *d, unsigned k)
{
	return d->d && k < d->d->nctr && d->d->ctr[k].tariff_mask.present ? d->ctr_tariffs[k] : -1;
}

int dev_ctr_phase(const struct dev *d, unsigned k)
{
	const struct desc_counter *c;

	if (!d->d || k >= d->d->nctr)
		return -1;
	c = &d->d->ctr[k];
	if (c->phase_code.present)
		return d->ctr_phase[k];
	return c->phase_set ? c->phase : -1;
}

static void apply_string(const struct desc_field *f, enum desc_space space, uint16_t start,
			 uint16_t count, const uint16_t *regs, char *buf, size_t len)
{
	if (f->type == DEC_STRING && covers(f, space, start, count))
		dec_string(regs + (f->reg - start), f->words, buf, len);
}

void dev_apply_ident(struct dev *d, const struct desc *id, enum desc_space space, uint16_t start,
		     uint16_t count, const uint16_t *regs)
{
	double v;

	apply_string(&id->id_model, space, start, count, regs, d->model, sizeof(d->model));
	apply_string(&id->id_serial, space, start, count, regs, d->serial, sizeof(d->serial));
	apply_string(&id->id_description, space, start, count, regs, d->description,
		     sizeof(d->description));
	apply_string(&id->id_location, space, start, count, regs, d->location, sizeof(d->location));
	if (covers(&id->id_sw_version, space, start, count) &&
	    field_number(&id->id_sw_version, space, start, regs, &v))
		d->sw_ver = (int)v;
	if (covers(&id->reverse, space, start, count) &&
	    field_number(&id->reverse, space, start, regs, &v))
		d->reverse = ((unsigned)v & 2u) != 0;
}

void dev_apply_block(struct dev *d, enum desc_space space, uint16_t start, uint16_t count,
		     const uint16_t *regs)
{
	double v;

	if (!d->d)
		return;
	apply_meas(d, space, start, count, regs);
	for (unsigned k = 0; k < d->d->nctr; k++)
		apply_counter(d, k, space, start, count, regs);
	if (covers(&d->d->relay, space, start, count) &&
	    field_number(&d->d->relay, space, start, regs, &v))
		d->relay = (uint16_t)v == d->d->relay_on ? 1 : 0;
	dev_apply_ident(d, d->d, space, start, count, regs);
}

/* ---- JSON ---- */

/* Decoded doubles carry binary noise (230.1 → 230.09999…); 10 significant
 * digits is beyond every meter's resolution. */
static double tidy(double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.10g", v);
	return strtod(buf, NULL);
}

static json_t *mval(double v, const char *unit)
{
	return json_pack("{s:f, s:s}", "value", tidy(v), "unit", unit);
}

static const char *phase_key(enum desc_qty q)
{
	switch (q) {
	case QTY_U:
		return "U";
	case QTY_I:
		return "I";
	case QTY_P:
		return "P";
	case QTY_Q:
		return "Q";
	case QTY_S:
		return "S";
	case QTY_PF:
		return "PF";
	case QTY_PA:
		return "PA";
	case QTY_THDU:
		return "THDUp";
	case QTY_THDI:
		return "THDI";
	default:
		return NULL;
	}
}

static json_t *meas_value(const struct dev *d, unsigned i)
{
	const struct desc_meas *m = &d->d->meas[i];
	json_t *v = mval(d->meas[i], desc_qty_unit(m->qty));

	if (m->f.type == DEC_T7)
		json_object_set_new(v, "load", json_string(d->pf[i].capacitive ? "cap" : "ind"));
	return v;
}

static json_t *ensure_phase(json_t *phases, unsigned phase)
{
	while (json_array_size(phases) < phase)
		json_array_append_new(phases, json_object());
	return json_array_get(phases, phase - 1);
}

static void put_meas(const struct dev *d, unsigned i, json_t *root, json_t *phases, json_t *total,
		     json_t *ppv)
{
	const struct desc_meas *m = &d->d->meas[i];
	const char *key = phase_key(m->qty);

	if (m->qty == QTY_UPP && m->phase)
		json_object_set_new(ensure_phase(ppv, m->phase), "U", meas_value(d, i));
	else if (key && m->phase)
		json_object_set_new(ensure_phase(phases, m->phase), key, meas_value(d, i));
	else if (key)
		json_object_set_new(total, key, meas_value(d, i));
	else if (m->qty == QTY_FREQ)
		json_object_set_new(root, "Frequency", meas_value(d, i));
	else if (m->qty == QTY_TEMP)
		json_object_set_new(root, "Temperature", meas_value(d, i));
	else if (m->qty == QTY_TARIFF)
		json_object_set_new(root, "Tariff", json_integer((json_int_t)d->meas[i]));
}

json_t *dev_measurements_json(const struct dev *d)
{
	json_t *root = json_object(), *phases = json_array(), *total = json_object();
	json_t *ppv = json_array();

	for (unsigned i = 0; d->d && i < d->d->nmeas; i++)
		if (d->meas_ok[i])
			put_meas(d, i, root, phases, total, ppv);
	json_object_set_new(root, "Phases", phases);
	json_object_set_new(root, "Total", total);
	if (json_array_size(ppv))
		json_object_set_new(root, "PhaseToPhase", ppv);
	else
		json_decref(ppv);
	return root;
}

static enum desc_dir effective_dir(const struct dev *d, unsigned k)
{
	enum desc_dir dir = d->d->ctr[k].quadrants.present ? d->ctr_dir[k] : d->d->ctr[k].fixed_dir;

	/* A meter wired in reverse swaps what it calls import and export. */
	if (d->reverse && dir == DIR_IMPORT)
		return DIR_EXPORT;
	if (d->reverse && dir == DIR_EXPORT)
		return DIR_IMPORT;
	return dir;
}

/* [1, 2, …] of the tariffs set in mask, or null when not known. */
static json_t *tariffs_json(int mask)
{
	json_t *a;

	if (mask < 0)
		return json_null();
	a = json_array();
	for (int t = 0; t < 16; t++)
		if (mask & (1 << t))
			json_array_append_new(a, json_integer(t + 1));
	return a;
}

static json_t *counter_json(const struct dev *d, unsigned k)
{
	const struct desc_counter *c = &d->d->ctr[k];
	enum desc_unit u = c->unit.present ? d->ctr_unit[k] : c->fixed_unit;
	double v = d->ctr[k] * pow(10, d->ctr_exp[k]);
	int ph = dev_ctr_phase(d, k);

	return json_pack("{s:s, s:f, s:s, s:s, s:o, s:o}", "name", c->name, "value", tidy(v),
			 "unit", desc_unit_name(u), "direction", desc_dir_name(effective_dir(d, k)),
			 "tariffs", tariffs_json(dev_ctr_tariffs(d, k)), "phase",
			 ph < 0 ? json_null() : json_integer(ph));
}

json_t *dev_counters_json(const struct dev *d)
{
	json_t *nr = json_array(), *r = json_array();

	for (unsigned k = 0; d->d && k < d->d->nctr; k++) {
		if (!d->ctr_ok[k])
			continue;
		json_array_append_new(d->d->ctr[k].resettable ? r : nr, counter_json(d, k));
	}
	return json_pack("{s:o, s:o}", "non_resettable", nr, "resettable", r);
}

static const char *ha_model(const struct dev *d)
{
	if (d->health == DEV_DISABLED)
		return "Disabled";
	if (!d->model[0])
		return "Not Detected";
	return d->model;
}

json_t *dev_device_json(const struct dev *d)
{
	int idx = dev_ha_index(d->slot);
	char sw[16];

	snprintf(sw, sizeof(sw), "%d.%02d", d->sw_ver / 100, d->sw_ver % 100);
	return json_pack("{s:o, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:o}",
			 "index", idx >= 0 ? json_integer(idx) : json_null(), "slot", d->slot,
			 "interface", d->ifname, "model", ha_model(d), "serial", d->serial,
			 "description", d->description[0] ? d->description : d->cfg_description,
			 "location", d->location, "sw_ver", d->model[0] ? sw : "", "modbus_address",
			 d->addr, "type", dev_class_name(d->cls), "status",
			 dev_health_name(d->health), "last_error", d->last_error, "latency_ms",
			 (json_int_t)d->latency_ms, "relay",
			 d->relay < 0 ? json_null() : json_string(d->relay ? "on" : "off"));
}

json_t *dev_reading_json(const struct dev *d, bool counters)
{
	int64_t ms = counters ? d->ctr_ms : d->meas_ms;
	json_t *h;

	h = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o}", "index", dev_ha_index(d->slot), "interface",
		      d->ifname, "model", d->model, "serial", d->serial, "status",
		      dev_health_name(d->health), "read_at_ms",
		      ms ? json_integer((json_int_t)ms) : json_null());
	return json_pack("{s:o, s:o}", counters ? "counters" : "measurements",
			 counters ? dev_counters_json(d) : dev_measurements_json(d), "header", h);
}
