/* Device description loader: strict JSON parsing (unknown members, wrong
 * types and out-of-range values are refused with the member's path) and the
 * read blocks the poller issues. Format: etc/devices/README.md. */
#include "sg/desc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define REG_BLOCK_MAX 125  /* registers per read (Modbus limit) */
#define BIT_BLOCK_MAX 2000 /* coils / discrete inputs per read */
/* Reading up to this many unused registers is cheaper than another
 * transaction on a 9600-baud bus (8 registers = 16 bytes ≈ 17 ms, a new
 * request/response pair costs ≥ 3.5-char gaps plus headers and turnaround). */
#define BLOCK_GAP_MAX 8
#define STRING_WORDS_MAX 125
#define WHERE_MAX 96

struct ctx {
	const char *path;
	char *err;
	size_t errlen;
	struct desc_error *rec; /* also gets member path and reason apart, or NULL */
};

/* Report "FILE: WHERE: message"; always returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(const struct ctx *c, const char *where,
						      const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen) {
		if (where && *where)
			snprintf(c->err, c->errlen, "%s: %s: %s", c->path, where, msg);
		else
			snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	}
	if (c->rec) {
		snprintf(c->rec->member, sizeof(c->rec->member), "%s", where ? where : "");
		snprintf(c->rec->reason, sizeof(c->rec->reason), "%s", msg);
	}
	return -EINVAL;
}

/* Path of member key inside the object at where ("a[1]" + "reg" → "a[1].reg"). */
static void member_path(char *buf, const char *where, const char *key)
{
	if (where && *where)
		snprintf(buf, WHERE_MAX, "%s.%s", where, key);
	else
		snprintf(buf, WHERE_MAX, "%s", key);
}

static bool in_list(const char *key, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

/* Refuse members not in allowed (NULL-terminated); "comment" is always allowed
 * so files can cite their sources. */
static int check_members(const struct ctx *c, json_t *obj, const char *where,
			 const char *const *allowed)
{
	char path[WHERE_MAX];
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		member_path(path, where, key);
		if (strcmp(key, "comment") == 0) {
			if (!json_is_string(v))
				return fail(c, path, "must be a string");
			continue;
		}
		if (!in_list(key, allowed))
			return fail(c, path, "unknown member");
	}
	return 0;
}

/* Look up key; 1 when absent and optional, -EINVAL when absent and required. */
static int get_member(const struct ctx *c, json_t *obj, const char *where, const char *key,
		      bool required, json_t **out)
{
	char path[WHERE_MAX];

	*out = json_object_get(obj, key);
	if (*out)
		return 0;
	if (!required)
		return 1;
	member_path(path, where, key);
	return fail(c, path, "required member missing");
}

static int get_string(const struct ctx *c, json_t *obj, const char *where, const char *key,
		      bool required, const char **out)
{
	char path[WHERE_MAX];
	json_t *v;
	int rc;

	rc = get_member(c, obj, where, key, required, &v);
	if (rc)
		return rc;
	if (!json_is_string(v)) {
		member_path(path, where, key);
		return fail(c, path, "must be a string");
	}
	*out = json_string_value(v);
	return 0;
}

static int get_int(const struct ctx *c, json_t *obj, const char *where, const char *key,
		   bool required, long long min, long long max, long long *out)
{
	char path[WHERE_MAX];
	long long n;
	json_t *v;
	int rc;

	rc = get_member(c, obj, where, key, required, &v);
	if (rc)
		return rc;
	member_path(path, where, key);
	if (!json_is_integer(v))
		return fail(c, path, "must be an integer");
	n = json_integer_value(v);
	if (n < min || n > max)
		return fail(c, path, "must be %lld…%lld", min, max);
	*out = n;
	return 0;
}

static int get_bool(const struct ctx *c, json_t *obj, const char *where, const char *key,
		    bool required, bool *out)
{
	char path[WHERE_MAX];
	json_t *v;
	int rc;

	rc = get_member(c, obj, where, key, required, &v);
	if (rc)
		return rc;
	if (!json_is_boolean(v)) {
		member_path(path, where, key);
		return fail(c, path, "must be true or false");
	}
	*out = json_is_true(v);
	return 0;
}

static int get_object(const struct ctx *c, json_t *obj, const char *where, const char *key,
		      bool required, json_t **out)
{
	char path[WHERE_MAX];
	int rc;

	rc = get_member(c, obj, where, key, required, out);
	if (rc)
		return rc;
	if (!json_is_object(*out)) {
		member_path(path, where, key);
		return fail(c, path, "must be an object");
	}
	return 0;
}

static int get_array(const struct ctx *c, json_t *obj, const char *where, const char *key,
		     json_t **out)
{
	char path[WHERE_MAX];
	int rc;

	rc = get_member(c, obj, where, key, false, out);
	if (rc)
		return rc;
	if (!json_is_array(*out)) {
		member_path(path, where, key);
		return fail(c, path, "must be an array");
	}
	return 0;
}

/* Copy a name into a fixed buffer, refusing empty or too long ones. */
static int copy_name(const struct ctx *c, const char *where, const char *s, char *dst)
{
	size_t n = strlen(s);

	if (n == 0 || n >= DESC_NAME_MAX)
		return fail(c, where, "must be 1…%d characters", DESC_NAME_MAX - 1);
	memcpy(dst, s, n + 1);
	return 0;
}

/* Map a string member to an index of names[] (NULL-terminated). */
static int get_enum(const struct ctx *c, json_t *obj, const char *where, const char *key,
		    bool required, const char *const *names, int *out)
{
	char path[WHERE_MAX], list[160] = "";
	const char *s;
	int i, rc;

	rc = get_string(c, obj, where, key, required, &s);
	if (rc)
		return rc;
	for (i = 0; names[i]; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	}
	member_path(path, where, key);
	return fail(c, path, "unknown value \"%s\" (expected %s)", s, list);
}

/* ---- fields ---- */

static const char *const space_names[] = {[SPACE_COIL] = "coil",
					  [SPACE_DISCRETE] = "discrete",
					  [SPACE_INPUT] = "input",
					  [SPACE_HOLDING] = "holding",
					  NULL};

#define FIELD_KEYS "space", "reg", "type", "words", "scale"

static bool space_is_bits(enum desc_space s)
{
	return s == SPACE_COIL || s == SPACE_DISCRETE;
}

static int parse_type(const struct ctx *c, json_t *obj, const char *where, enum dec_type *out)
{
	char path[WHERE_MAX];
	const char *s;
	int rc;

	rc = get_string(c, obj, where, "type", true, &s);
	if (rc)
		return rc;
	if (dec_type_parse(s, out) == 0)
		return 0;
	member_path(path, where, "type");
	return fail(c, path,
		    "unknown type \"%s\" (expected uint16, int16, uint32, int32, float32, t5, t6, "
		    "t7, string)",
		    s);
}

static int parse_words(const struct ctx *c, json_t *obj, const char *where, struct desc_field *f)
{
	char path[WHERE_MAX];
	long long n;
	int rc;

	if (f->type == DEC_STRING) {
		rc = get_int(c, obj, where, "words", true, 1, STRING_WORDS_MAX, &n);
		if (rc)
			return rc;
		f->words = (uint16_t)n;
		return 0;
	}
	f->words = (uint16_t)dec_type_words(f->type);
	rc = get_int(c, obj, where, "words", false, 0, 65535, &n);
	if (rc < 0)
		return rc;
	if (rc == 0 && n != f->words) {
		member_path(path, where, "words");
		return fail(c, path, "%s occupies %u registers", dec_type_name(f->type), f->words);
	}
	return 0;
}

static int parse_scale(const struct ctx *c, json_t *obj, const char *where, struct desc_field *f)
{
	char path[WHERE_MAX];
	json_t *v;
	int rc;

	f->scale = 1;
	rc = get_member(c, obj, where, "scale", false, &v);
	if (rc)
		return rc < 0 ? rc : 0;
	member_path(path, where, "scale");
	if (!json_is_number(v))
		return fail(c, path, "must be a number");
	f->scale = json_number_value(v);
	if (!isfinite(f->scale) || f->scale == 0)
		return fail(c, path, "must be a non-zero number");
	if (f->type == DEC_STRING)
		return fail(c, path, "not allowed for strings");
	return 0;
}

/* The members common to every register reference (FIELD_KEYS); the caller
 * checks for unknown members since it may allow more. */
static int parse_field_members(const struct ctx *c, json_t *obj, const char *where,
			       struct desc_field *f)
{
	char path[WHERE_MAX];
	long long reg;
	int space = SPACE_INPUT, rc;

	rc = get_enum(c, obj, where, "space", false, space_names, &space);
	if (rc < 0)
		return rc;
	f->space = (enum desc_space)space;
	rc = get_int(c, obj, where, "reg", true, 0, 65535, &reg);
	if (rc)
		return rc;
	f->reg = (uint16_t)reg;
	rc = parse_type(c, obj, where, &f->type);
	if (rc)
		return rc;
	rc = parse_words(c, obj, where, f);
	if (rc)
		return rc;
	rc = parse_scale(c, obj, where, f);
	if (rc)
		return rc;
	if ((unsigned)f->reg + f->words > 65536) {
		member_path(path, where, "reg");
		return fail(c, path, "%u + %u registers runs past 65535", f->reg, f->words);
	}
	if (space_is_bits(f->space) && f->type != DEC_UINT16) {
		member_path(path, where, "type");
		return fail(c, path, "coil and discrete fields must be uint16 (one bit)");
	}
	f->present = true;
	return 0;
}

/* A standalone field object (only FIELD_KEYS) at obj[key]; absent → 1. */
static int parse_field(const struct ctx *c, json_t *obj, const char *where, const char *key,
		       bool required, struct desc_field *f)
{
	static const char *const keys[] = {FIELD_KEYS, NULL};
	char path[WHERE_MAX];
	json_t *o;
	int rc;

	rc = get_object(c, obj, where, key, required, &o);
	if (rc)
		return rc;
	member_path(path, where, key);
	rc = check_members(c, o, path, keys);
	if (rc)
		return rc;
	return parse_field_members(c, o, path, f);
}

enum kind {
	KIND_STRING,  /* DEC_STRING */
	KIND_NUMBER,  /* any numeric type */
	KIND_WORD,    /* one-register integer (codes, masks, flags) */
	KIND_HOLDING, /* one-register integer in a holding register */
};

/* Check a field's type suits its use (where = the field's path). */
static int want(const struct ctx *c, const char *where, const struct desc_field *f, enum kind k)
{
	char path[WHERE_MAX];

	member_path(path, where, "type");
	switch (k) {
	case KIND_STRING:
		if (f->type != DEC_STRING)
			return fail(c, path, "must be string");
		if (space_is_bits(f->space))
			return fail(c, path, "strings live in input or holding registers");
		return 0;
	case KIND_NUMBER:
		if (f->type == DEC_STRING)
			return fail(c, path, "must be a numeric type");
		return 0;
	case KIND_HOLDING:
		if (f->space != SPACE_HOLDING) {
			member_path(path, where, "space");
			return fail(c, path, "must be holding");
		}
		/* fall through */
	case KIND_WORD:
		if (f->type != DEC_UINT16 && f->type != DEC_INT16)
			return fail(c, path, "must be uint16 or int16");
		return 0;
	}
	return 0;
}

/* Optional field at obj[key] of kind k; 0 when absent too. */
static int field_of_kind(const struct ctx *c, json_t *obj, const char *where, const char *key,
			 bool required, enum kind k, struct desc_field *f)
{
	char path[WHERE_MAX];
	int rc;

	rc = parse_field(c, obj, where, key, required, f);
	if (rc)
		return rc < 0 ? rc : 0;
	member_path(path, where, key);
	return want(c, path, f, k);
}

/* ---- sections ---- */

static int parse_identification(const struct ctx *c, json_t *root, struct desc *d)
{
	static const char *const keys[] = {"model",	  "serial",   "sw_version",
					   "description", "location", NULL};
	const char *w = "identification";
	json_t *o;
	int rc;

	rc = get_object(c, root, "", w, true, &o);
	if (rc)
		return rc;
	rc = check_members(c, o, w, keys);
	if (!rc)
		rc = field_of_kind(c, o, w, "model", true, KIND_STRING, &d->id_model);
	if (!rc)
		rc = field_of_kind(c, o, w, "serial", false, KIND_STRING, &d->id_serial);
	if (!rc)
		rc = field_of_kind(c, o, w, "sw_version", false, KIND_NUMBER, &d->id_sw_version);
	if (!rc)
		rc = field_of_kind(c, o, w, "description", false, KIND_STRING, &d->id_description);
	if (!rc)
		rc = field_of_kind(c, o, w, "location", false, KIND_STRING, &d->id_location);
	return rc;
}

static const char *const qty_names[] = {
    [QTY_U] = "U",
    [QTY_UPP] = "UPP",
    [QTY_I] = "I",
    [QTY_P] = "P",
    [QTY_Q] = "Q",
    [QTY_S] = "S",
    [QTY_PF] = "PF",
    [QTY_PA] = "PA",
    [QTY_THDU] = "THDU",
    [QTY_THDI] = "THDI",
    [QTY_FREQ] = "Frequency",
    [QTY_TEMP] = "Temperature",
    [QTY_TARIFF] = "Tariff",
    [QTY_COUNT] = NULL,
};

/* Which phase numbers a quantity may carry: per-phase only, totals allowed,
 * or device-wide (phase 0 only). */
static int check_phase(const struct ctx *c, const char *where, enum desc_qty q, long long phase,
		       unsigned phases)
{
	char path[WHERE_MAX];
	unsigned lo = 0, hi = phases;

	switch (q) {
	case QTY_U:
	case QTY_UPP:
	case QTY_I:
	case QTY_THDU:
	case QTY_THDI:
		lo = 1;
		break;
	case QTY_FREQ:
	case QTY_TEMP:
	case QTY_TARIFF:
		hi = 0;
		break;
	default:
		break;
	}
	if (phase >= lo && phase <= hi)
		return 0;
	member_path(path, where, "phase");
	if (lo > hi)
		return fail(c, path, "%s needs a phase but the device has phases 0", qty_names[q]);
	return fail(c, path, "must be %u…%u for %s (phases is %u)", lo, hi, qty_names[q], phases);
}

static int parse_meas(const struct ctx *c, json_t *o, const char *where, struct desc *d,
		      struct desc_meas *m)
{
	static const char *const keys[] = {"qty", "phase", FIELD_KEYS, NULL};
	char path[WHERE_MAX];
	long long phase = 0;
	int qty, rc;

	if (!json_is_object(o))
		return fail(c, where, "must be an object");
	rc = check_members(c, o, where, keys);
	if (!rc)
		rc = get_enum(c, o, where, "qty", true, qty_names, &qty);
	if (!rc)
		rc = get_int(c, o, where, "phase", false, 0, DESC_PHASES_MAX, &phase);
	if (rc < 0)
		return rc;
	rc = check_phase(c, where, (enum desc_qty)qty, phase, d->phases);
	if (!rc)
		rc = parse_field_members(c, o, where, &m->f);
	if (!rc)
		rc = want(c, where, &m->f, KIND_NUMBER);
	if (rc)
		return rc;
	if (m->f.type == DEC_T7 && qty != QTY_PF) {
		member_path(path, where, "type");
		return fail(c, path, "t7 is a power factor type");
	}
	m->qty = (enum desc_qty)qty;
	m->phase = (uint8_t)phase;
	return 0;
}

static int check_meas_unique(const struct ctx *c, const char *where, const struct desc *d,
			     const struct desc_meas *m)
{
	unsigned i;

	for (i = 0; i < d->nmeas; i++)
		if (d->meas[i].qty == m->qty && d->meas[i].phase == m->phase)
			return fail(c, where, "%s phase %u already given in measurements[%u]",
				    qty_names[m->qty], m->phase, i);
	return 0;
}

static int parse_measurements(const struct ctx *c, json_t *root, struct desc *d)
{
	char where[WHERE_MAX];
	json_t *arr, *o;
	size_t i;
	int rc;

	rc = get_array(c, root, "", "measurements", &arr);
	if (rc)
		return rc < 0 ? rc : 0;
	if (json_array_size(arr) > DESC_MEAS_MAX)
		return fail(c, "measurements", "at most %d entries", DESC_MEAS_MAX);
	json_array_foreach(arr, i, o)
	{
		snprintf(where, sizeof(where), "measurements[%zu]", i);
		memset(&d->meas[i], 0, sizeof(d->meas[i]));
		rc = parse_meas(c, o, where, d, &d->meas[i]);
		if (!rc)
			rc = check_meas_unique(c, where, d, &d->meas[i]);
		if (rc)
			return rc;
		d->nmeas++;
	}
	return 0;
}

static const char *const unit_names[] = {
    [UNIT_WH] = "Wh", [UNIT_VARH] = "varh", [UNIT_VAH] = "VAh", [UNIT_UNKNOWN] = NULL};
static const char *const dir_names[] = {
    [DIR_IMPORT] = "import", [DIR_EXPORT] = "export", [DIR_BIDIR] = "bidirectional", NULL};

/* Unit and direction: from registers, else fixed; one of the two is needed. */
static int parse_ctr_meaning(const struct ctx *c, json_t *o, const char *where,
			     struct desc_counter *ct)
{
	int v = UNIT_UNKNOWN, rc;

	rc = field_of_kind(c, o, where, "unit", false, KIND_WORD, &ct->unit);
	if (!rc)
		rc = field_of_kind(c, o, where, "quadrants", false, KIND_WORD, &ct->quadrants);
	if (!rc)
		rc = get_enum(c, o, where, "fixed_unit", !ct->unit.present, unit_names, &v);
	if (rc < 0)
		return rc;
	ct->fixed_unit = rc ? UNIT_UNKNOWN : (enum desc_unit)v;
	v = DIR_IMPORT;
	rc = get_enum(c, o, where, "fixed_direction", !ct->quadrants.present, dir_names, &v);
	if (rc < 0)
		return rc;
	ct->fixed_dir = (enum desc_dir)v;
	return 0;
}

static int parse_counter(const struct ctx *c, json_t *o, const char *where, struct desc *d,
			 struct desc_counter *ct)
{
	static const char *const keys[] = {"name",  "resettable",  "value",	 "exponent",
					   "unit",  "quadrants",   "fixed_unit", "fixed_direction",
					   "phase", "tariff_mask", "phase_code", NULL};
	char path[WHERE_MAX];
	const char *name;
	long long phase = 0;
	int rc;

	if (!json_is_object(o))
		return fail(c, where, "must be an object");
	rc = check_members(c, o, where, keys);
	if (!rc)
		rc = get_string(c, o, where, "name", true, &name);
	if (rc)
		return rc;
	member_path(path, where, "name");
	rc = copy_name(c, path, name, ct->name);
	if (!rc)
		rc = get_bool(c, o, where, "resettable", true, &ct->resettable);
	if (!rc)
		rc = get_int(c, o, where, "phase", false, 0, d->phases, &phase);
	if (rc < 0)
		return rc;
	ct->phase = (uint8_t)phase;
	ct->phase_set = json_object_get(o, "phase") != NULL;
	rc = field_of_kind(c, o, where, "value", true, KIND_NUMBER, &ct->value);
	if (!rc && ct->value.type == DEC_T7) {
		member_path(path, where, "value.type");
		return fail(c, path, "t7 is a power factor type");
	}
	if (!rc)
		rc = field_of_kind(c, o, where, "exponent", false, KIND_WORD, &ct->exponent);
	if (!rc)
		rc = parse_ctr_meaning(c, o, where, ct);
	if (!rc)
		rc = field_of_kind(c, o, where, "tariff_mask", false, KIND_WORD, &ct->tariff_mask);
	if (!rc)
		rc = field_of_kind(c, o, where, "phase_code", false, KIND_WORD, &ct->phase_code);
	return rc;
}

static int parse_counters(const struct ctx *c, json_t *root, struct desc *d)
{
	char where[WHERE_MAX];
	json_t *arr, *o;
	unsigned j;
	size_t i;
	int rc;

	rc = get_array(c, root, "", "counters", &arr);
	if (rc)
		return rc < 0 ? rc : 0;
	if (json_array_size(arr) > DESC_CTR_MAX)
		return fail(c, "counters", "at most %d entries", DESC_CTR_MAX);
	json_array_foreach(arr, i, o)
	{
		snprintf(where, sizeof(where), "counters[%zu]", i);
		memset(&d->ctr[i], 0, sizeof(d->ctr[i]));
		rc = parse_counter(c, o, where, d, &d->ctr[i]);
		if (rc)
			return rc;
		for (j = 0; j < i; j++)
			if (strcmp(d->ctr[j].name, d->ctr[i].name) == 0)
				return fail(c, where, "name \"%s\" already used by counters[%u]",
					    d->ctr[i].name, j);
		d->nctr++;
	}
	return 0;
}

static int parse_relay(const struct ctx *c, json_t *root, struct desc *d)
{
	static const char *const keys[] = {FIELD_KEYS, "on", "off", NULL};
	const char *w = "relay";
	long long on = 1, off = 0;
	json_t *o;
	int rc;

	rc = get_object(c, root, "", w, false, &o);
	if (rc)
		return rc < 0 ? rc : 0;
	rc = check_members(c, o, w, keys);
	if (!rc)
		rc = parse_field_members(c, o, w, &d->relay);
	if (!rc && d->relay.space != SPACE_COIL)
		rc = want(c, w, &d->relay, KIND_HOLDING);
	if (!rc)
		rc = get_int(c, o, w, "on", false, 0, 65535, &on);
	if (rc >= 0)
		rc = get_int(c, o, w, "off", false, 0, 65535, &off);
	if (rc < 0)
		return rc;
	if (on == off)
		return fail(c, "relay.off", "must differ from relay.on");
	d->relay_on = (uint16_t)on;
	d->relay_off = (uint16_t)off;
	return 0;
}

static int parse_comm(const struct ctx *c, json_t *root, struct desc *d)
{
	static const char *const keys[] = {"address", "baud",	   "stop_bits",
					   "parity",  "data_bits", NULL};
	const char *w = "comm";
	json_t *o;
	int rc;

	rc = get_object(c, root, "", w, false, &o);
	if (rc)
		return rc < 0 ? rc : 0;
	rc = check_members(c, o, w, keys);
	if (!rc)
		rc = field_of_kind(c, o, w, "address", false, KIND_HOLDING, &d->comm_addr);
	if (!rc)
		rc = field_of_kind(c, o, w, "baud", false, KIND_HOLDING, &d->comm_baud);
	if (!rc)
		rc = field_of_kind(c, o, w, "stop_bits", false, KIND_HOLDING, &d->comm_stop);
	if (!rc)
		rc = field_of_kind(c, o, w, "parity", false, KIND_HOLDING, &d->comm_parity);
	if (!rc)
		rc = field_of_kind(c, o, w, "data_bits", false, KIND_HOLDING, &d->comm_data);
	return rc;
}

static int parse_match(const struct ctx *c, json_t *root, struct desc *d)
{
	char where[WHERE_MAX];
	json_t *arr, *v;
	unsigned j;
	size_t i;
	int rc;

	rc = get_array(c, root, "", "match", &arr);
	if (rc)
		return rc < 0 ? rc : 0;
	if (json_array_size(arr) > DESC_MATCH_MAX)
		return fail(c, "match", "at most %d entries", DESC_MATCH_MAX);
	json_array_foreach(arr, i, v)
	{
		snprintf(where, sizeof(where), "match[%zu]", i);
		if (!json_is_string(v))
			return fail(c, where, "must be a string");
		rc = copy_name(c, where, json_string_value(v), d->match[i]);
		if (rc)
			return rc;
		for (j = 0; j < i; j++)
			if (strcmp(d->match[j], d->match[i]) == 0)
				return fail(c, where, "\"%s\" repeated", d->match[i]);
		d->nmatch++;
	}
	return 0;
}

/* ---- load profile ---- */

/* Channel names by index. The order must match enum lp_ch of sg/loadprof.h,
 * which the loader does not include: descriptions know nothing of the
 * history code, only of the channel numbers it uses. */
static const char *const lp_channel_names[] = {"ai",  "ae",  "ri",  "re",  "ai1", "ai2",
					       "ai3", "ae1", "ae2", "ae3", NULL};

#define LPROF_INTERVAL_S 900 /* the load-profile engine's interval (LP_INTERVAL_S) */
#define LPROF_STRIDE_MAX 125 /* one read per entry */
#define LPROF_ENTRIES_MAX 4096
#define LPROF_TIME_WORDS 2 /* uint32 epoch seconds */

/* Registers [off, off + words) of an entry, for the overlap check. */
struct lp_span {
	unsigned off, words;
	char label[WHERE_MAX];
};

/* Two fields of one entry sharing a register would capture one value twice
 * or tear the time stamp: always a slip in the file. */
static int lp_check_overlap(const struct ctx *c, const char *where, const struct lp_span *spans,
			    unsigned n, const struct lp_span *s)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (s->off < spans[i].off + spans[i].words && spans[i].off < s->off + s->words)
			return fail(c, where, "registers %u…%u overlap %s", s->off,
				    s->off + s->words - 1, spans[i].label);
	return 0;
}

static bool lp_type_ok(enum dec_type t)
{
	return t == DEC_UINT16 || t == DEC_INT16 || t == DEC_UINT32 || t == DEC_INT32 ||
	       t == DEC_FLOAT32;
}

/* A channel's scale turns the raw register into Wh / varh: negative or zero
 * would make a cumulative counter run backwards or vanish. */
static int lp_scale(const struct ctx *c, json_t *o, const char *where, double *out)
{
	char path[WHERE_MAX];
	json_t *v;
	int rc;

	*out = 1;
	rc = get_member(c, o, where, "scale", false, &v);
	if (rc)
		return rc < 0 ? rc : 0;
	member_path(path, where, "scale");
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) <= 0)
		return fail(c, path, "must be a positive number");
	*out = json_number_value(v);
	return 0;
}

static int parse_lp_channel(const struct ctx *c, json_t *o, const char *where,
			    const struct desc_lprofile *lp, struct desc_lp_channel *ch)
{
	static const char *const keys[] = {"channel", "offset", "type", "scale", NULL};
	char path[WHERE_MAX];
	long long off;
	unsigned words;
	int idx, rc;

	if (!json_is_object(o))
		return fail(c, where, "must be an object");
	rc = check_members(c, o, where, keys);
	if (!rc)
		rc = get_enum(c, o, where, "channel", true, lp_channel_names, &idx);
	if (!rc)
		rc = get_int(c, o, where, "offset", true, 0, LPROF_STRIDE_MAX - 1, &off);
	if (!rc)
		rc = parse_type(c, o, where, &ch->type);
	if (rc)
		return rc;
	if (!lp_type_ok(ch->type)) {
		member_path(path, where, "type");
		return fail(c, path, "must be uint16, int16, uint32, int32 or float32");
	}
	words = dec_type_words(ch->type);
	if (off + words > lp->stride) {
		member_path(path, where, "offset");
		return fail(c, path, "%lld + %u registers runs past the entry (stride %u)", off,
			    words, lp->stride);
	}
	ch->channel = (uint8_t)idx;
	ch->offset = (uint16_t)off;
	return lp_scale(c, o, where, &ch->scale);
}

static int parse_lp_channels(const struct ctx *c, json_t *o, struct desc_lprofile *lp)
{
	struct lp_span spans[1 + DESC_LP_CH_MAX];
	char where[WHERE_MAX], path[WHERE_MAX];
	json_t *arr, *v;
	unsigned j;
	size_t i;
	int rc;

	spans[0] = (struct lp_span){.off = lp->time_offset, .words = LPROF_TIME_WORDS};
	snprintf(spans[0].label, sizeof(spans[0].label), "load_profile.time");
	rc = get_array(c, o, "load_profile", "channels", &arr);
	if (rc > 0)
		return fail(c, "load_profile.channels", "required member missing");
	if (rc)
		return rc;
	if (json_array_size(arr) < 1 || json_array_size(arr) > DESC_LP_CH_MAX)
		return fail(c, "load_profile.channels", "must have 1…%d entries", DESC_LP_CH_MAX);
	json_array_foreach(arr, i, v)
	{
		struct desc_lp_channel *ch = &lp->ch[i];
		struct lp_span *s = &spans[i + 1];

		snprintf(where, sizeof(where), "load_profile.channels[%zu]", i);
		rc = parse_lp_channel(c, v, where, lp, ch);
		if (rc)
			return rc;
		for (j = 0; j < i; j++)
			if (lp->ch[j].channel == ch->channel) {
				snprintf(path, sizeof(path), "load_profile.channels[%zu].channel",
					 i);
				return fail(c, path,
					    "\"%s\" already used by load_profile.channels[%u]",
					    lp_channel_names[ch->channel], j);
			}
		*s = (struct lp_span){.off = ch->offset, .words = dec_type_words(ch->type)};
		snprintf(s->label, sizeof(s->label), "%s", where);
		snprintf(path, sizeof(path), "load_profile.channels[%zu].offset", i);
		rc = lp_check_overlap(c, path, spans, (unsigned)i + 1, s);
		if (rc)
			return rc;
		lp->nch++;
	}
	return 0;
}

/* The optional count register: a plain number of entries, in the profile's
 * space unless it says otherwise, and outside the ring it counts. */
static int parse_lp_count(const struct ctx *c, json_t *o, struct desc_lprofile *lp)
{
	static const char *const keys[] = {FIELD_KEYS, NULL};
	const char *w = "load_profile.count";
	struct desc_field *f = &lp->count;
	unsigned end = (unsigned)lp->base + (unsigned)lp->entries * lp->stride;
	json_t *fo;
	int rc;

	rc = get_object(c, o, "load_profile", "count", false, &fo);
	if (rc)
		return rc < 0 ? rc : 0;
	rc = check_members(c, fo, w, keys);
	if (!rc)
		rc = parse_field_members(c, fo, w, f);
	if (rc)
		return rc;
	if (!json_object_get(fo, "space"))
		f->space = lp->space;
	if (f->space != SPACE_INPUT && f->space != SPACE_HOLDING)
		return fail(c, "load_profile.count.space", "must be input or holding");
	if (f->type != DEC_UINT16)
		return fail(c, "load_profile.count.type", "must be uint16");
	if (f->scale != 1)
		return fail(c, "load_profile.count.scale", "must be 1 (a number of entries)");
	if (f->space == lp->space && f->reg >= lp->base && f->reg < end)
		return fail(c, "load_profile.count.reg", "overlaps the ring (%s %u…%u)",
			    space_names[lp->space], lp->base, end - 1);
	return 0;
}

/* The ring's geometry: space, stride, depth, where it starts, the interval
 * and the time stamp's place in an entry. */
static int parse_lp_ring(const struct ctx *c, json_t *o, struct desc_lprofile *lp)
{
	const char *w = "load_profile";
	long long stride, entries, base, interval, time = 0;
	int space = SPACE_INPUT, rc;

	rc = get_enum(c, o, w, "space", false, space_names, &space);
	if (rc < 0)
		return rc;
	if (space != SPACE_INPUT && space != SPACE_HOLDING)
		return fail(c, "load_profile.space", "must be input or holding");
	rc = get_int(c, o, w, "base", true, 0, 65535, &base);
	if (!rc)
		rc = get_int(c, o, w, "stride", true, 1, LPROF_STRIDE_MAX, &stride);
	if (!rc)
		rc = get_int(c, o, w, "entries", true, 1, LPROF_ENTRIES_MAX, &entries);
	if (!rc)
		rc = get_int(c, o, w, "interval", true, 0, UINT32_MAX, &interval);
	if (!rc)
		rc = get_int(c, o, w, "time", false, 0, LPROF_STRIDE_MAX - 1, &time);
	if (rc < 0)
		return rc;
	if (base + entries * stride > 65536)
		return fail(c, "load_profile.base", "%lld + %lld × %lld registers runs past 65535",
			    base, entries, stride);
	if (interval != LPROF_INTERVAL_S)
		return fail(c, "load_profile.interval",
			    "must be %d (the gateway's intervals are 15 minutes)",
			    LPROF_INTERVAL_S);
	if (time + LPROF_TIME_WORDS > stride)
		return fail(c, "load_profile.time",
			    "%lld + %d registers runs past the entry (stride %lld)", time,
			    LPROF_TIME_WORDS, stride);
	lp->space = (enum desc_space)space;
	lp->base = (uint16_t)base;
	lp->stride = (uint16_t)stride;
	lp->entries = (uint16_t)entries;
	lp->interval_s = (uint32_t)interval;
	lp->time_offset = (uint16_t)time;
	return 0;
}

static int parse_lprofile(const struct ctx *c, json_t *root, struct desc *d)
{
	static const char *const keys[] = {"space",    "count", "base",	    "stride", "entries",
					   "interval", "time",	"channels", NULL};
	struct desc_lprofile *lp = &d->lprof;
	json_t *o;
	int rc;

	rc = get_object(c, root, "", "load_profile", false, &o);
	if (rc)
		return rc < 0 ? rc : 0;
	rc = check_members(c, o, "load_profile", keys);
	if (!rc)
		rc = parse_lp_ring(c, o, lp);
	if (!rc)
		rc = parse_lp_count(c, o, lp);
	if (!rc)
		rc = parse_lp_channels(c, o, lp);
	if (rc)
		return rc;
	lp->present = true;
	return 0;
}

static const char *const class_names[] = {
    [CLASS_NONE] = "none",	 [CLASS_METER] = "meter", [CLASS_BICOM] = "bicom",
    [CLASS_GENERIC] = "generic", [CLASS_PQ] = "pq",	  NULL};

static int parse_header(const struct ctx *c, json_t *root, struct desc *d)
{
	const char *name;
	long long phases = 0;
	int cls = CLASS_NONE, rc;

	rc = get_string(c, root, "", "name", true, &name);
	if (!rc)
		rc = copy_name(c, "name", name, d->name);
	if (!rc)
		rc = parse_match(c, root, d);
	if (!rc)
		rc = get_enum(c, root, "", "class", true, class_names, &cls);
	if (!rc && cls == CLASS_NONE)
		return fail(c, "class", "\"none\" is not a device class");
	if (!rc)
		rc = get_int(c, root, "", "phases", true, 0, DESC_PHASES_MAX, &phases);
	if (rc)
		return rc;
	d->cls = (enum desc_class)cls;
	d->phases = (unsigned)phases;
	return 0;
}

/* ---- read blocks ---- */

struct span {
	enum desc_space space;
	unsigned start, end; /* [start, end) */
	char label[WHERE_MAX];
};

struct spans {
	struct span v[4 * DESC_CTR_MAX + DESC_MEAS_MAX + 1];
	unsigned n;
};

static void span_add(struct spans *s, const struct desc_field *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void span_add(struct spans *s, const struct desc_field *f, const char *fmt, ...)
{
	struct span *p;
	va_list ap;

	if (!f->present || s->n >= sizeof(s->v) / sizeof(s->v[0]))
		return;
	p = &s->v[s->n++];
	p->space = f->space;
	p->start = f->reg;
	p->end = (unsigned)f->reg + f->words;
	va_start(ap, fmt);
	vsnprintf(p->label, sizeof(p->label), fmt, ap);
	va_end(ap);
}

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->space != y->space)
		return x->space < y->space ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

/* Sort the spans and merge them into as few reads as the Modbus limits and
 * BLOCK_GAP_MAX allow. Two fields sharing a register are refused: in one
 * group that is always a copy-paste slip in the file. */
static int build_blocks(const struct ctx *c, struct spans *s, struct desc_block *out,
			unsigned *nout)
{
	struct desc_block *b = NULL;
	unsigned i, max, end = 0;
	const char *prev = "";

	qsort(s->v, s->n, sizeof(s->v[0]), span_cmp);
	*nout = 0;
	for (i = 0; i < s->n; i++) {
		const struct span *p = &s->v[i];

		max = space_is_bits(p->space) ? BIT_BLOCK_MAX : REG_BLOCK_MAX;
		if (b && b->space == p->space && p->start < end)
			return fail(c, p->label, "overlaps %s", prev);
		if (b && b->space == p->space && p->start <= end + BLOCK_GAP_MAX &&
		    p->end - b->start <= max) {
			b->count = (uint16_t)(p->end - b->start);
		} else {
			if (*nout >= DESC_BLOCK_MAX)
				return fail(c, p->label, "needs more than %d read blocks",
					    DESC_BLOCK_MAX);
			b = &out[(*nout)++];
			b->space = p->space;
			b->start = (uint16_t)p->start;
			b->count = (uint16_t)(p->end - p->start);
		}
		end = p->end;
		prev = p->label;
	}
	return 0;
}

static int build_all_blocks(const struct ctx *c, struct desc *d)
{
	struct spans *s;
	unsigned i;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (i = 0; i < d->nmeas; i++)
		span_add(s, &d->meas[i].f, "measurements[%u]", i);
	rc = build_blocks(c, s, d->meas_blocks, &d->nmeas_blocks);
	s->n = 0;
	for (i = 0; i < d->nctr; i++) {
		span_add(s, &d->ctr[i].value, "counters[%u].value", i);
		span_add(s, &d->ctr[i].exponent, "counters[%u].exponent", i);
	}
	if (!rc)
		rc = build_blocks(c, s, d->ctr_blocks, &d->nctr_blocks);
	s->n = 0;
	for (i = 0; i < d->nctr; i++) {
		span_add(s, &d->ctr[i].unit, "counters[%u].unit", i);
		span_add(s, &d->ctr[i].quadrants, "counters[%u].quadrants", i);
		span_add(s, &d->ctr[i].tariff_mask, "counters[%u].tariff_mask", i);
		span_add(s, &d->ctr[i].phase_code, "counters[%u].phase_code", i);
	}
	span_add(s, &d->reverse, "reverse");
	if (!rc)
		rc = build_blocks(c, s, d->cfg_blocks, &d->ncfg_blocks);
	free(s);
	return rc;
}

/* ---- constants ---- */

static bool fields_overlap(const struct desc_field *a, const struct desc_field *b)
{
	return a->space == b->space && a->reg < b->reg + b->words && b->reg < a->reg + a->words;
}

static int parse_const(const struct ctx *c, json_t *o, const char *where, struct desc_const *k)
{
	static const char *const keys[] = {FIELD_KEYS, "value", NULL};
	char path[WHERE_MAX];
	uint16_t w[2];
	json_t *v;
	int rc;

	if (!json_is_object(o))
		return fail(c, where, "must be an object");
	rc = check_members(c, o, where, keys);
	if (!rc)
		rc = parse_field_members(c, o, where, &k->f);
	if (!rc)
		rc = want(c, where, &k->f, KIND_NUMBER);
	if (!rc && k->f.type == DEC_T7) {
		member_path(path, where, "type");
		return fail(c, path, "t7 is only allowed for PF");
	}
	if (!rc)
		rc = get_member(c, o, where, "value", true, &v);
	if (rc)
		return rc;
	member_path(path, where, "value");
	if (!json_is_number(v))
		return fail(c, path, "must be a number");
	k->value = json_number_value(v);
	/* The raw register content must be representable in the type, so the
	 * simulator can serve exactly what the file says. */
	if (dec_encode_number(k->f.type, k->value / k->f.scale, w) < 0)
		return fail(c, path, "%g does not fit %s (scale %g)", k->value,
			    dec_type_name(k->f.type), k->f.scale);
	return 0;
}

static int parse_constants(const struct ctx *c, json_t *root, struct desc *d)
{
	char where[WHERE_MAX];
	json_t *arr, *o;
	unsigned j;
	size_t i;
	int rc;

	rc = get_array(c, root, "", "constants", &arr);
	if (rc)
		return rc < 0 ? rc : 0;
	if (json_array_size(arr) > DESC_CONST_MAX)
		return fail(c, "constants", "at most %d entries", DESC_CONST_MAX);
	json_array_foreach(arr, i, o)
	{
		snprintf(where, sizeof(where), "constants[%zu]", i);
		memset(&d->consts[i], 0, sizeof(d->consts[i]));
		rc = parse_const(c, o, where, &d->consts[i]);
		if (rc)
			return rc;
		for (j = 0; j < i; j++)
			if (fields_overlap(&d->consts[j].f, &d->consts[i].f))
				return fail(c, where, "overlaps constants[%u]", j);
		d->nconsts++;
	}
	return 0;
}

/* ---- files ---- */

static int parse_root(const struct ctx *c, json_t *root, struct desc *d)
{
	static const char *const keys[] = {
	    "name",	    "match",	    "class",	"phases", "identification",
	    "reverse",	    "measurements", "counters", "relay",  "comm",
	    "load_profile", "constants",    NULL};
	int rc;

	if (!json_is_object(root))
		return fail(c, "", "top level must be an object");
	rc = check_members(c, root, "", keys);
	if (!rc)
		rc = parse_header(c, root, d);
	if (!rc)
		rc = parse_identification(c, root, d);
	if (!rc)
		rc = field_of_kind(c, root, "", "reverse", false, KIND_WORD, &d->reverse);
	if (!rc)
		rc = parse_measurements(c, root, d);
	if (!rc)
		rc = parse_counters(c, root, d);
	if (!rc)
		rc = parse_relay(c, root, d);
	if (!rc)
		rc = parse_comm(c, root, d);
	if (!rc)
		rc = parse_lprofile(c, root, d);
	if (!rc)
		rc = parse_constants(c, root, d);
	if (!rc && d->cls == CLASS_BICOM && !d->relay.present)
		return fail(c, "relay", "required member missing (class bicom)");
	if (!rc)
		rc = build_all_blocks(c, d);
	return rc;
}

/* Open once ourselves so an unreadable file returns its errno, not -EINVAL. */
static int check_readable(const struct ctx *c)
{
	int fd, e;

	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (c->err && c->errlen)
			snprintf(c->err, c->errlen, "%s: %s", c->path, strerror(e));
		if (c->rec)
			snprintf(c->rec->reason, sizeof(c->rec->reason), "%s", strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* The model prefixes a broken file names, if it got that far: a device of
 * such a model can then say which file it lacks. Best effort. */
static void note_match(json_t *root, struct desc_error *rec)
{
	json_t *arr = json_object_get(root, "match"), *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		const char *m = json_string_value(v);

		if (rec->nmatch == DESC_MATCH_MAX)
			break;
		if (m && *m && strlen(m) < DESC_NAME_MAX)
			snprintf(rec->match[rec->nmatch++], DESC_NAME_MAX, "%s", m);
	}
}

static int load_file(const char *path, struct desc **out, char *err, size_t errlen,
		     struct desc_error *rec)
{
	struct ctx c = {.path = path, .err = err, .errlen = errlen, .rec = rec};
	json_error_t jerr;
	struct desc *d;
	json_t *root;
	int rc;

	rc = check_readable(&c);
	if (rc)
		return rc;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (err && errlen)
			snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		if (rec)
			snprintf(rec->reason, sizeof(rec->reason), "line %d: %s", jerr.line,
				 jerr.text);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		json_decref(root);
		return -ENOMEM;
	}
	snprintf(d->path, sizeof(d->path), "%s", path);
	rc = parse_root(&c, root, d);
	if (rc && rec)
		note_match(root, rec);
	json_decref(root);
	if (rc) {
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int desc_load_file(const char *path, struct desc **out, char *err, size_t errlen)
{
	return load_file(path, out, err, errlen, NULL);
}

void desc_free(struct desc *d)
{
	free(d);
}

json_t *desc_errors_json(const struct desc_set *set)
{
	json_t *list = json_array();

	for (unsigned i = 0; i < set->nerr; i++) {
		const struct desc_error *e = &set->errs[i];

		json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "file", e->file, "path",
						      e->member, "reason", e->reason));
	}
	return list;
}

void desc_set_free(struct desc_set *set)
{
	unsigned i;

	if (!set)
		return;
	for (i = 0; i < set->n; i++)
		desc_free(set->v[i]);
	free(set->v);
	free(set->errs);
	memset(set, 0, sizeof(*set));
}

static int json_name_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
}

static int name_sort(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* A model prefix served by two files would make desc_match depend on load
 * order, so it is refused as is a repeated name. */
static int check_unique(const struct desc_set *set, const struct desc *d, char *err, size_t errlen,
			struct desc_error *rec)
{
	const struct ctx c = {.path = d->path, .err = err, .errlen = errlen, .rec = rec};
	unsigned i, j, k;

	for (i = 0; i < set->n; i++) {
		if (strcasecmp(set->v[i]->name, d->name) == 0)
			return fail(&c, "name", "\"%s\" also used by %s", d->name, set->v[i]->path);
		for (j = 0; j < d->nmatch; j++)
			for (k = 0; k < set->v[i]->nmatch; k++)
				if (strcmp(d->match[j], set->v[i]->match[k]) == 0)
					return fail(&c, "match", "\"%s\" also in %s", d->match[j],
						    set->v[i]->path);
	}
	return 0;
}

/* A broken file: fatal unless lenient, then recorded (bounded) and skipped. */
static int broken(struct desc_set *set, bool lenient, const struct desc_error *rec, int rc,
		  char *err, size_t errlen)
{
	if (!lenient || rc == -ENOMEM)
		return rc;
	if (set->nerr < DESC_ERRORS_MAX)
		set->errs[set->nerr++] = *rec;
	set->nbroken++;
	if (err && errlen)
		err[0] = '\0';
	return 0;
}

static int load_entries(const char *dir, struct dirent **ents, int n, struct desc_set *set,
			bool lenient, char *err, size_t errlen)
{
	struct desc_error rec;
	char path[512];
	struct desc *d;
	int i, rc;

	set->v = calloc(n ? (size_t)n : 1, sizeof(*set->v));
	if (!set->v)
		return -ENOMEM;
	if (lenient && !(set->errs = calloc(DESC_ERRORS_MAX, sizeof(*set->errs))))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.file, sizeof(rec.file), "%.*s", (int)sizeof(rec.file) - 1,
			 ents[i]->d_name);
		rc = load_file(path, &d, err, errlen, &rec);
		if (!rc) {
			rc = check_unique(set, d, err, errlen, &rec);
			if (rc) {
				memcpy(rec.match, d->match, sizeof(rec.match));
				rec.nmatch = d->nmatch;
				desc_free(d);
			}
		}
		if (rc) {
			if ((rc = broken(set, lenient, &rec, rc, err, errlen)))
				return rc;
			continue;
		}
		set->v[set->n++] = d;
	}
	return 0;
}

static int load_dir(const char *dir, struct desc_set *out, bool lenient, char *err, size_t errlen)
{
	struct desc_set set = {0};
	struct dirent **ents;
	int n, i, rc, e;

	n = scandir(dir, &ents, json_name_filter, name_sort);
	if (n < 0) {
		e = errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	rc = load_entries(dir, ents, n, &set, lenient, err, errlen);
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (rc) {
		desc_set_free(&set);
		return rc;
	}
	*out = set;
	return 0;
}

int desc_load_dir(const char *dir, struct desc_set *out, char *err, size_t errlen)
{
	return load_dir(dir, out, false, err, errlen);
}

int desc_load_dir_lenient(const char *dir, struct desc_set *out, char *err, size_t errlen)
{
	return load_dir(dir, out, true, err, errlen);
}

/* Length of the longest of n prefixes that model starts with, 0 if none. */
static size_t prefix_len(const char (*match)[DESC_NAME_MAX], unsigned n, const char *model)
{
	size_t best = 0, len;

	for (unsigned j = 0; j < n; j++) {
		len = strlen(match[j]);
		if (len > best && !strncmp(model, match[j], len))
			best = len;
	}
	return best;
}

const struct desc_error *desc_broken_for(const struct desc_set *set, const char *model,
					 const struct desc *d)
{
	size_t best_len = d && model ? prefix_len(d->match, d->nmatch, model) : 0, len;
	const struct desc_error *best = NULL;

	for (unsigned i = 0; set && model && i < set->nerr; i++) {
		len = prefix_len(set->errs[i].match, set->errs[i].nmatch, model);
		if (len > best_len) {
			best = &set->errs[i];
			best_len = len;
		}
	}
	return best;
}

const struct desc *desc_match(const struct desc_set *set, const char *model)
{
	const struct desc *best = NULL;
	size_t best_len = 0, len;
	unsigned i, j;

	if (!set || !model)
		return NULL;
	for (i = 0; i < set->n; i++) {
		for (j = 0; j < set->v[i]->nmatch; j++) {
			len = strlen(set->v[i]->match[j]);
			if (len > best_len && strncmp(model, set->v[i]->match[j], len) == 0) {
				best = set->v[i];
				best_len = len;
			}
		}
	}
	return best;
}

const struct desc *desc_find(const struct desc_set *set, const char *name)
{
	unsigned i;

	if (!set || !name)
		return NULL;
	for (i = 0; i < set->n; i++)
		if (strcasecmp(set->v[i]->name, name) == 0)
			return set->v[i];
	return NULL;
}

const char *desc_qty_name(enum desc_qty q)
{
	if ((unsigned)q >= QTY_COUNT)
		return "?";
	return qty_names[q];
}

const char *desc_qty_unit(enum desc_qty q)
{
	static const char *const units[] = {
	    [QTY_U] = "V",     [QTY_UPP] = "V",	 [QTY_I] = "A",	    [QTY_P] = "W",
	    [QTY_Q] = "var",   [QTY_S] = "VA",	 [QTY_PF] = "",	    [QTY_PA] = "°",
	    [QTY_THDU] = "%",  [QTY_THDI] = "%", [QTY_FREQ] = "Hz", [QTY_TEMP] = "°C",
	    [QTY_TARIFF] = "",
	};

	if ((unsigned)q >= QTY_COUNT)
		return "";
	return units[q];
}

const char *desc_unit_name(enum desc_unit u)
{
	if ((unsigned)u >= UNIT_UNKNOWN)
		return "";
	return unit_names[u];
}

const char *desc_dir_name(enum desc_dir dir)
{
	if ((unsigned)dir > DIR_BIDIR)
		return "bidirectional";
	return dir_names[dir];
}

enum desc_unit desc_unit_from_code(uint16_t code)
{
	switch (code & 3) {
	case 1:
		return UNIT_WH;
	case 2:
		return UNIT_VARH;
	case 3:
		return UNIT_VAH;
	}
	return UNIT_UNKNOWN;
}

enum desc_dir desc_dir_from_mask(uint16_t mask)
{
	switch (mask & 0xF) {
	case 6:
	case 12:
		return DIR_IMPORT;
	case 3:
	case 9:
		return DIR_EXPORT;
	}
	return DIR_BIDIR;
}
