/* Human formats for sgctl. The daemon evolves independently of this tool, so
 * every formatter reads members defensively: a missing member prints "-", an
 * unexpected shape falls back to pretty JSON rather than failing. */
#include "fmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TAB_COLS_MAX 16

/* A text table: cells are copied; columns are padded to the widest cell. */
struct table {
	int ncols;
	unsigned right; /* bit i: column i is right-aligned (numbers) */
	size_t nrows, cap;
	char **cells; /* nrows * ncols */
};

static void tab_init(struct table *t, int ncols, unsigned right)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->right = right;
}

static void tab_add(struct table *t, const char *const cells[])
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));

		if (!p)
			return; /* a shorter listing beats aborting the CLI */
		t->cells = p;
		t->cap = cap;
	}
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "");
	t->nrows++;
}

/* Display width: UTF-8 continuation bytes take no column ("°C"). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; s && *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void tab_print_row(FILE *out, const struct table *t, size_t r, const size_t *width,
			  const char *indent)
{
	char line[4096];
	size_t n = 0;

	for (int c = 0; c < t->ncols && n < sizeof(line); c++) {
		const char *s = t->cells[r * t->ncols + c] ? t->cells[r * t->ncols + c] : "";
		int pad = (int)(width[c] - text_width(s));

		if (t->right & (1u << c))
			n += snprintf(line + n, sizeof(line) - n, "%*s%s  ", pad, "", s);
		else
			n += snprintf(line + n, sizeof(line) - n, "%s%*s  ", s, pad, "");
	}
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	/* No trailing blanks when the last columns are empty. */
	while (n && line[n - 1] == ' ')
		n--;
	fprintf(out, "%s%.*s\n", indent, (int)n, line);
}

static void tab_print(FILE *out, struct table *t, const char *indent)
{
	size_t width[TAB_COLS_MAX] = {0};

	for (size_t i = 0; i < t->nrows * t->ncols; i++) {
		size_t w = text_width(t->cells[i]);

		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
	for (size_t r = 0; r < t->nrows; r++)
		tab_print_row(out, t, r, width, indent);
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* prec significant digits, but never an exponent for ordinary large values. */
static const char *num_str(double v, int prec, char *buf, size_t len)
{
	if (isfinite(v) && fabs(v) >= pow(10, prec) && fabs(v) < 1e15)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.*g", prec, v);
	return buf;
}

const char *fmt_scalar(json_t *v, char *buf, size_t len)
{
	char *s;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		snprintf(buf, len, "%s", json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		/* 7 digits: meters deliver float32, whose extra digits are noise. */
		num_str(json_real_value(v), 7, buf, len);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
		break;
	case JSON_NULL:
		snprintf(buf, len, "-");
		break;
	default:
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(buf, len, "%s", s ? s : "?");
		free(s);
	}
	return buf;
}

static const char *member(json_t *obj, const char *key, char *buf, size_t len)
{
	return fmt_scalar(json_object_get(obj, key), buf, len);
}

void fmt_json(FILE *out, json_t *data)
{
	char *s;

	if (!data || json_is_null(data))
		return;
	s = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s)
		fprintf(out, "%s\n", s);
	free(s);
}

/* One table row from the named members of obj. */
static void tab_add_obj(struct table *t, json_t *obj, const char *const keys[])
{
	char bufs[TAB_COLS_MAX][256];
	const char *cells[TAB_COLS_MAX];

	for (int c = 0; c < t->ncols; c++)
		cells[c] = member(obj, keys[c], bufs[c], sizeof(bufs[c]));
	tab_add(t, cells);
}

/* A table with a header row and one row per object in arr. */
static void print_obj_table(FILE *out, json_t *arr, const char *const head[],
			    const char *const keys[], int ncols, unsigned right, const char *indent)
{
	struct table t;
	size_t i;
	json_t *o;

	tab_init(&t, ncols, right);
	tab_add(&t, head);
	json_array_foreach(arr, i, o) tab_add_obj(&t, o, keys);
	tab_print(out, &t, indent);
}

/* ---- status ---- */

static const char *uptime_str(json_t *v, char *buf, size_t len)
{
	json_int_t s = json_integer_value(v);

	if (!json_is_integer(v) || s < 0)
		return fmt_scalar(v, buf, len);
	snprintf(buf, len, "%lldd %02lld:%02lld:%02lld", (long long)(s / 86400),
		 (long long)(s / 3600 % 24), (long long)(s / 60 % 60), (long long)(s % 60));
	return buf;
}

static const char *crc_str(json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return fmt_scalar(v, buf, len);
	snprintf(buf, len, "0x%08llX", (unsigned long long)json_integer_value(v) & 0xffffffffULL);
	return buf;
}

static const struct {
	const char *key, *label;
} status_keys[] = {
    {"model_type", "Model"},
    {"serial_number", "Serial number"},
    {"description", "Description"},
    {"location", "Location"},
    {"sw_ver", "Software version"},
    {"hw_ver", "Hardware version"},
    {"uptime_s", "Uptime"},
    {"local_time", "Local time"},
    {"settings_crc", "Settings CRC"},
    {"devices_enabled", "Devices enabled"},
    {"devices_responding", "Devices responding"},
    {"settings_source", "Settings from"},
    {"settings_error", "Settings error"},
    {"descriptions_loaded", "Descriptions"},
    {"descriptions_broken", "Bad descriptions"},
};

static const char *status_label(const char *key)
{
	for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++)
		if (!strcmp(status_keys[i].key, key))
			return status_keys[i].label;
	return NULL;
}

static void status_row(struct table *t, const char *key, json_t *v)
{
	char label[128], buf[256];
	const char *cells[2] = {label, buf};

	snprintf(label, sizeof(label), "%s:", status_label(key) ? status_label(key) : key);
	if (!strcmp(key, "uptime_s"))
		uptime_str(v, buf, sizeof(buf));
	else if (!strcmp(key, "settings_crc"))
		crc_str(v, buf, sizeof(buf));
	else
		fmt_scalar(v, buf, sizeof(buf));
	tab_add(t, cells);
}

static bool fmt_status(FILE *out, int argc, char *const argv[], json_t *data)
{
	static const char *const head[] = {"BUS",    "DEVICE",	 "STATE", "TRANSACTIONS",
					   "ERRORS", "TIMEOUTS", "QUEUE"};
	static const char *const keys[] = {"name",   "device",	 "state", "transactions",
					   "errors", "timeouts", "queue"};
	struct table t;
	const char *key;
	json_t *v;

	(void)argc, (void)argv;
	tab_init(&t, 2, 0);
	for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++)
		status_row(&t, status_keys[i].key, json_object_get(data, status_keys[i].key));
	/* Members added to the daemon later still show up. */
	json_object_foreach(data, key, v) if (!status_label(key) && !json_is_array(v) &&
					      !json_is_object(v)) status_row(&t, key, v);
	tab_print(out, &t, "");
	v = json_object_get(data, "buses");
	if (json_array_size(v)) {
		fputc('\n', out);
		print_obj_table(out, v, head, keys, 7, 0x78, "");
	}
	v = json_object_get(data, "description_errors");
	if (json_array_size(v)) {
		static const char *const dhead[] = {"BROKEN DESCRIPTION", "MEMBER", "REASON"};
		static const char *const dkeys[] = {"file", "path", "reason"};

		fputc('\n', out);
		print_obj_table(out, v, dhead, dkeys, 3, 0, "");
	}
	return true;
}

/* ---- devices ---- */

static bool fmt_devices(FILE *out, int argc, char *const argv[], json_t *data)
{
	static const char *const head[] = {"#",	      "INTERFACE",   "ADDR",	 "MODEL",
					   "SERIAL",  "TYPE",	     "SW",	 "STATUS",
					   "LAT(ms)", "DESCRIPTION", "LOCATION", "LAST ERROR"};
	static const char *const keys[] = {
	    "index",  "interface", "modbus_address", "model",	    "serial",	"type",
	    "sw_ver", "status",	   "latency_ms",     "description", "location", "last_error"};
	json_t *devs = json_object_get(data, "devices");

	(void)argc, (void)argv;
	if (!json_is_array(devs))
		return false;
	if (!json_array_size(devs)) {
		fprintf(out, "no devices configured\n");
		return true;
	}
	print_obj_table(out, devs, head, keys, 12, 0x105, "");
	return true;
}

/* ---- measurements ---- */

static json_t *qty_value(json_t *q)
{
	return json_is_object(q) ? json_object_get(q, "value") : q;
}

static const char *qty_unit(json_t *q)
{
	const char *u = json_string_value(json_object_get(q, "unit"));

	return u ? u : "";
}

/* Known quantities first in the usual order, then whatever else the phases carry. */
static json_t *phase_quantities(json_t *phases)
{
	static const char *const order[] = {"U", "I", "P", "Q", "S", "PF", "PA", "THDUp", "THDI"};
	json_t *names = json_array(), *ph, *v, *n;
	const char *key;
	size_t i, j;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		json_array_foreach(phases, j, ph) if (json_object_get(ph, order[i]))
		{
			json_array_append_new(names, json_string(order[i]));
			break;
		}
	json_array_foreach(phases, j, ph) json_object_foreach(ph, key, v)
	{
		bool seen = false;

		json_array_foreach(names, i, n) seen = seen || !strcmp(json_string_value(n), key);
		if (!seen)
			json_array_append_new(names, json_string(key));
	}
	return names;
}

static void phase_row(struct table *t, json_t *phases, const char *name)
{
	char bufs[TAB_COLS_MAX][64];
	const char *cells[TAB_COLS_MAX] = {name};
	const char *unit = "";
	size_t i;
	json_t *ph;

	json_array_foreach(phases, i, ph)
	{
		json_t *q = json_object_get(ph, name);

		cells[i + 1] = fmt_scalar(qty_value(q), bufs[i], sizeof(bufs[i]));
		if (!*unit)
			unit = qty_unit(q);
	}
	cells[t->ncols - 1] = unit;
	tab_add(t, cells);
}

static void print_phases(FILE *out, json_t *phases)
{
	size_t n = json_array_size(phases), i;
	char labels[TAB_COLS_MAX][8];
	const char *head[TAB_COLS_MAX] = {""};
	json_t *names, *name;
	struct table t;

	if (n == 0 || n > TAB_COLS_MAX - 2)
		return;
	tab_init(&t, (int)n + 2, ((1u << n) - 1) << 1);
	for (i = 0; i < n; i++) {
		snprintf(labels[i], sizeof(labels[i]), "L%zu", i + 1);
		head[i + 1] = labels[i];
	}
	head[n + 1] = "";
	tab_add(&t, head);
	names = phase_quantities(phases);
	json_array_foreach(names, i, name) phase_row(&t, phases, json_string_value(name));
	json_decref(names);
	tab_print(out, &t, "");
}

/* "Total" and similar groups: one quantity per line. */
static void print_group(FILE *out, const char *title, json_t *group)
{
	char buf[64];
	const char *cells[3] = {NULL, buf, NULL};
	struct table t;
	const char *key;
	json_t *q;

	fprintf(out, "%s:\n", title);
	tab_init(&t, 3, 0x2);
	json_object_foreach(group, key, q)
	{
		cells[0] = key;
		fmt_scalar(qty_value(q), buf, sizeof(buf));
		cells[2] = qty_unit(q);
		tab_add(&t, cells);
	}
	tab_print(out, &t, "  ");
}

static void print_measurement(FILE *out, const char *key, json_t *v)
{
	char buf[64];
	const char *unit;

	if (!strcmp(key, "Phases") && json_is_array(v)) {
		print_phases(out, v);
	} else if (json_is_object(v) && !json_object_get(v, "value")) {
		print_group(out, key, v);
	} else {
		unit = qty_unit(v);
		fprintf(out, "%s: %s%s%s\n", key, fmt_scalar(qty_value(v), buf, sizeof(buf)),
			*unit ? " " : "", unit);
	}
}

static bool fmt_measurements(FILE *out, int argc, char *const argv[], json_t *data)
{
	char b[5][64];
	json_t *m = json_object_get(data, "measurements"), *v;
	bool block = true; /* the header line; blocks are set apart by a blank line */
	const char *key;

	(void)argc, (void)argv;
	if (!json_is_object(data))
		return false;
	fprintf(
	    out, "Device %s: %s on %s, status %s, age %s ms\n",
	    member(data, "index", b[0], sizeof(b[0])), member(data, "model", b[1], sizeof(b[1])),
	    member(data, "interface", b[2], sizeof(b[2])),
	    member(data, "status", b[3], sizeof(b[3])), member(data, "age_ms", b[4], sizeof(b[4])));
	json_object_foreach(m, key, v)
	{
		bool is_block =
		    json_is_array(v) || (json_is_object(v) && !json_object_get(v, "value"));

		if (block || is_block)
			fputc('\n', out);
		block = is_block;
		print_measurement(out, key, v);
	}
	return true;
}

/* ---- counters ---- */

void fmt_scaled(double value, const char *unit, char *buf, size_t len, char *uout, size_t ulen)
{
	static const char *const scalable[] = {"Wh", "varh", "VAh", "W", "var", "VA"};
	static const struct {
		double f;
		const char *p;
	} pfx[] = {{1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
	size_t i;

	for (i = 0; i < sizeof(scalable) / sizeof(scalable[0]); i++)
		if (unit && !strcmp(unit, scalable[i]))
			break;
	if (i < sizeof(scalable) / sizeof(scalable[0])) {
		for (size_t p = 0; p < sizeof(pfx) / sizeof(pfx[0]); p++)
			if (fabs(value) >= pfx[p].f) {
				/* 10 digits: counters are exact integers scaled, no float noise. */
				num_str(value / pfx[p].f, 10, buf, len);
				snprintf(uout, ulen, "%s%s", pfx[p].p, unit);
				return;
			}
	}
	num_str(value, 10, buf, len);
	snprintf(uout, ulen, "%s", unit ? unit : "");
}

/* R-A8: "Total" / "L1"…; "" when the meter does not say. */
static const char *phase_cell(json_t *c)
{
	static const char *const names[] = {"Total", "L1", "L2", "L3"};
	json_t *p = json_object_get(c, "phase");
	json_int_t i = json_is_integer(p) ? json_integer_value(p) : -1;

	return i >= 0 && i < 4 ? names[i] : "";
}

/* "tariffs 1 2 3 4"; "" when not known. */
static void tariffs_cell(json_t *c, char *buf, size_t len)
{
	json_t *a = json_object_get(c, "tariffs"), *t;
	size_t i, n;

	buf[0] = '\0';
	if (!json_is_array(a))
		return;
	n = (size_t)snprintf(buf, len, "tariffs");
	json_array_foreach(a, i, t)
	{
		if (n < len && json_is_integer(t))
			n += (size_t)snprintf(buf + n, len - n, " %d", (int)json_integer_value(t));
	}
}

static void counter_row(struct table *t, json_t *c)
{
	char name[128], val[64], unit[32], dir[64], tar[96];
	const char *cells[6] = {name, val, unit, dir, phase_cell(c), tar};
	json_t *v = json_object_get(c, "value");

	tariffs_cell(c, tar, sizeof(tar));
	member(c, "name", name, sizeof(name));
	member(c, "direction", dir, sizeof(dir));
	if (json_is_number(v)) {
		fmt_scaled(json_number_value(v), json_string_value(json_object_get(c, "unit")), val,
			   sizeof(val), unit, sizeof(unit));
	} else {
		fmt_scalar(v, val, sizeof(val));
		snprintf(unit, sizeof(unit), "%s", qty_unit(c));
	}
	tab_add(t, cells);
}

/* "non_resettable" -> "Non-resettable" */
static void group_title(const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s", key);
	for (char *p = buf; *p; p++)
		if (*p == '_')
			*p = '-';
	if (buf[0] >= 'a' && buf[0] <= 'z')
		buf[0] = (char)(buf[0] - 'a' + 'A');
}

static bool fmt_counters(FILE *out, int argc, char *const argv[], json_t *data)
{
	json_t *groups = json_object_get(data, "counters"), *arr, *c;
	char title[64];
	const char *key;
	struct table t;
	bool first = true;
	size_t i;

	(void)argc, (void)argv;
	if (!json_is_object(groups))
		return false;
	json_object_foreach(groups, key, arr)
	{
		group_title(key, title, sizeof(title));
		fprintf(out, "%s%s:\n", first ? "" : "\n", title);
		first = false;
		tab_init(&t, 6, 0x2);
		json_array_foreach(arr, i, c) counter_row(&t, c);
		tab_print(out, &t, "  ");
	}
	return true;
}

/* ---- bicom, settings, set ---- */

static bool fmt_bicom(FILE *out, int argc, char *const argv[], json_t *data)
{
	char n[32], s[32];

	(void)argc, (void)argv;
	if (!json_is_object(data))
		return false;
	fprintf(out, "Bicom %s: %s\n", member(data, "bicom", n, sizeof(n)),
		member(data, "state", s, sizeof(s)));
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_settings(FILE *out, json_t *obj)
{
	size_t n = json_object_size(obj), i = 0;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	const char *key;
	char buf[1024];
	json_t *v;

	if (!keys)
		return;
	json_object_foreach(obj, key, v) keys[i++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (i = 0; i < n; i++)
		fprintf(out, "%s = %s\n", keys[i], member(obj, keys[i], buf, sizeof(buf)));
	free(keys);
}

static bool fmt_settings(FILE *out, int argc, char *const argv[], json_t *data)
{
	json_t *obj = json_object_get(data, "settings");
	char buf[4096];

	if (!json_is_object(obj))
		obj = data;
	if (!json_is_object(obj))
		return false;
	if (argc < 2) {
		print_settings(out, obj);
		return true;
	}
	/* settings KEY: just the value, for shell scripts. */
	if (!json_object_get(obj, argv[1]) && json_object_size(obj) != 1)
		return false;
	if (json_object_get(obj, argv[1]))
		fmt_scalar(json_object_get(obj, argv[1]), buf, sizeof(buf));
	else
		fmt_scalar(json_object_iter_value(json_object_iter(obj)), buf, sizeof(buf));
	fprintf(out, "%s\n", buf);
	return true;
}

static bool fmt_set(FILE *out, int argc, char *const argv[], json_t *data)
{
	json_t *changed = json_object_get(data, "changed"), *k;
	char buf[256];
	size_t i;

	(void)argc, (void)argv;
	if (!json_is_array(changed))
		return false;
	fputs("changed:", out);
	json_array_foreach(changed, i, k) fprintf(out, " %s", fmt_scalar(k, buf, sizeof(buf)));
	fputs(json_array_size(changed) ? "\n" : " (nothing)\n", out);
	return true;
}

/* ---- scan, modbus read ---- */

static bool fmt_scan(FILE *out, int argc, char *const argv[], json_t *data)
{
	static const char *const head[] = {"ADDRESS", "MODEL",	"SERIAL",
					   "BAUD",    "PARITY", "STOP BITS"};
	static const char *const keys[] = {"address", "model",	"serial",
					   "baud",    "parity", "stop_bits"};
	json_t *devs = json_object_get(data, "devices");

	(void)argc, (void)argv;
	if (!json_is_array(devs))
		return false;
	if (!json_array_size(devs))
		fprintf(out, "no devices found\n");
	else
		print_obj_table(out, devs, head, keys, 6, 0x9, "");
	return true;
}

static bool reg_value(json_t *v, unsigned long *out)
{
	const char *s = json_string_value(v);
	char *end;

	if (json_is_integer(v)) {
		*out = (unsigned long)json_integer_value(v);
		return true;
	}
	if (!s)
		return false;
	*out = strtoul(s, &end, 0);
	return end != s && !*end;
}

static bool fmt_modbus(FILE *out, int argc, char *const argv[], json_t *data)
{
	json_t *vals = json_object_get(data, "values"), *v;
	json_t *reg = json_object_get(data, "register");
	unsigned long val;
	size_t i;

	if (argc < 2 || strcmp(argv[1], "read") || !json_is_array(vals))
		return false;
	json_array_foreach(vals, i, v)
	{
		if (json_is_integer(reg))
			fprintf(out, "%" JSON_INTEGER_FORMAT ": ",
				json_integer_value(reg) + (json_int_t)i);
		else
			fprintf(out, "+%zu: ", i);
		if (reg_value(v, &val))
			fprintf(out, "0x%04lX (%lu)\n", val, val);
		else
			fprintf(out, "%s\n", json_string_value(v) ? json_string_value(v) : "?");
	}
	return true;
}

static const struct {
	const char *cmd;
	bool (*fn)(FILE *out, int argc, char *const argv[], json_t *data);
} formatters[] = {
    {"status", fmt_status},	{"devices", fmt_devices}, {"measurements", fmt_measurements},
    {"counters", fmt_counters}, {"bicom", fmt_bicom},	  {"settings", fmt_settings},
    {"set", fmt_set},		{"scan", fmt_scan},	  {"modbus", fmt_modbus},
};

void fmt_reply(FILE *out, int argc, char *const argv[], json_t *data)
{
	json_t *csv = json_object_get(data, "csv");

	if (json_is_string(csv) && json_object_size(data) == 1) {
		fputs(json_string_value(csv), out);
		return;
	}
	for (size_t i = 0; i < sizeof(formatters) / sizeof(formatters[0]); i++)
		if (!strcmp(formatters[i].cmd, argv[0])) {
			if (json_is_object(data) && formatters[i].fn(out, argc, argv, data))
				return;
			break;
		}
	fmt_json(out, data);
}
