/* The gateway's own Modbus unit: identification in the Iskra layout, status
 * values and every setting as registers. The map is documented in
 * docs/modbus-map.md, which ownunit_map_markdown() below generates. */
#include "sg/ownunit.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "sg/clock.h"
#include "sg/dev.h"
#include "sg/mbproto.h"
#include "sg/registry.h"
#include "sg/version.h"

/* Input registers (PDU addresses). */
#define IR_MODEL 1 /* 1–8 */
#define IR_MODEL_REGS 8
#define IR_SERIAL 9 /* 9–12 */
#define IR_SERIAL_REGS 4
#define IR_SW_VER 13
#define IR_HW_VER 14
#define IR_UPTIME 30 /* 30–31 */
#define IR_WALL 32   /* 32–33 */
#define IR_ENABLED 34
#define IR_ANSWERING 35
#define IR_CRC 36    /* 36–37 */
#define IR_HEALTH 40 /* 40–57 */
#define IR_BUS 60    /* 60–65: transactions, errors per bus */
#define IR_ROLE 66

/* Holding registers. */
#define HR_DESC 101 /* 101–120 */
#define HR_LOC 121  /* 121–140 */
#define HR_TEXT_REGS 20
#define HR_INT 1000 /* + 2k: int32 setting k */
#define HR_STR 3000 /* + 64k: string setting k */
#define STR_REGS 64
#define STR_BYTES (2 * STR_REGS)

/* Request limits of the Modbus specification. */
#define READ_MAX 125
#define WRITE_MAX 123
#define RW_WRITE_MAX 121

/* Inclusive register range. */
struct area {
	unsigned first, last;
};

static const struct area input_areas[] = {{IR_MODEL, IR_HW_VER}, {IR_UPTIME, IR_ROLE}};

enum { AREA_TEXT, AREA_INT, AREA_STR, HOLDING_AREAS };

static void holding_areas(struct area a[HOLDING_AREAS])
{
	unsigned n = (unsigned)settings_count();

	a[AREA_TEXT] = (struct area){HR_DESC, HR_LOC + HR_TEXT_REGS - 1};
	a[AREA_INT] = (struct area){HR_INT, HR_INT + 2 * n - 1};
	a[AREA_STR] = (struct area){HR_STR, HR_STR + STR_REGS * n - 1};
}

/* Index of the area holding all of [addr, addr + count), or -1. */
static int find_area(const struct area *a, size_t n, unsigned addr, unsigned count)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= a[i].first && addr + count - 1 <= a[i].last)
			return (int)i;
	return -1;
}

static int holding_area(unsigned addr, unsigned count)
{
	struct area a[HOLDING_AREAS];

	holding_areas(a);
	return find_area(a, HOLDING_AREAS, addr, count);
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Padding of the identification texts (model, serial, description,
 * location): spaces, as real Iskra devices pad them; clients such as Home
 * Assistant's Iskra library strip spaces only and would keep NULs. The
 * settings slots (3000 + 64k) are our own layout and stay NUL padded. */
#define ID_PAD ' '

/* Register idx of txt laid out in a field of nbytes: 2 chars per register,
 * high byte first, padded with pad. */
static uint16_t text_reg(const char *txt, size_t nbytes, unsigned idx, unsigned char pad)
{
	size_t len = strnlen(txt, nbytes), i = 2 * (size_t)idx;
	unsigned hi = i < len ? (uint8_t)txt[i] : pad;
	unsigned lo = i + 1 < len ? (uint8_t)txt[i + 1] : pad;

	return (uint16_t)(hi << 8 | lo);
}

/* ---- input registers ---- */

/* Status values, taken once per request so a read is consistent. */
struct status {
	uint32_t uptime, wall, crc;
	unsigned enabled, answering;
	unsigned health[DEV_SLOTS];
	uint64_t txns[CONF_BUS_COUNT], errors[CONF_BUS_COUNT];
	bool slave;
};

static void status_read(const struct ownunit_env *env, struct status *st)
{
	memset(st, 0, sizeof(*st));
	st->uptime = (uint32_t)((clock_mono_ms() - env->start_mono_ms) / 1000);
	st->wall = (uint32_t)clock_wall();
	st->crc = settings_crc(env->settings);
	for (int i = 0; env->reg && i < DEV_SLOTS; i++) {
		const struct dev *d = reg_dev(env->reg, i);

		st->health[i] = d->health;
		st->enabled += d->health != DEV_DISABLED;
		st->answering += d->health == DEV_OK;
	}
	for (int b = 0; env->buses && b < CONF_BUS_COUNT; b++) {
		struct bus_stats bs;

		if (!env->buses[b])
			continue;
		bus_get_stats(env->buses[b], &bs);
		st->txns[b] = bs.transactions;
		st->errors[b] = bs.errors;
		if (b == CONF_BUS_RS485)
			st->slave = bs.slave_addr != 0;
	}
}

/* The serial number's last 8 characters. */
static const char *serial_tail(const struct conf *c)
{
	size_t n = strnlen(c->serial_number, sizeof(c->serial_number));

	return c->serial_number + (n > 2 * IR_SERIAL_REGS ? n - 2 * IR_SERIAL_REGS : 0);
}

static uint16_t word(uint32_t v, bool high)
{
	return (uint16_t)(high ? v >> 16 : v & 0xFFFF);
}

static uint16_t status_reg(const struct status *st, unsigned reg)
{
	if (reg >= IR_HEALTH && reg < IR_HEALTH + DEV_SLOTS)
		return (uint16_t)st->health[reg - IR_HEALTH];
	if (reg >= IR_BUS && reg < IR_BUS + 2 * CONF_BUS_COUNT) {
		unsigned b = (reg - IR_BUS) / 2;

		return (uint16_t)((reg - IR_BUS) % 2 ? st->errors[b] : st->txns[b]);
	}
	switch (reg) {
	case IR_UPTIME:
	case IR_UPTIME + 1:
		return word(st->uptime, reg == IR_UPTIME);
	case IR_WALL:
	case IR_WALL + 1:
		return word(st->wall, reg == IR_WALL);
	case IR_ENABLED:
		return (uint16_t)st->enabled;
	case IR_ANSWERING:
		return (uint16_t)st->answering;
	case IR_CRC:
	case IR_CRC + 1:
		return word(st->crc, reg == IR_CRC);
	case IR_ROLE:
		return st->slave;
	default:
		return 0;
	}
}

static uint16_t input_reg(const struct ownunit_env *env, const struct status *st, unsigned reg)
{
	const struct conf *c = env->conf;

	if (reg >= IR_MODEL && reg < IR_MODEL + IR_MODEL_REGS)
		return text_reg(c->model_type, 2 * IR_MODEL_REGS, reg - IR_MODEL, ID_PAD);
	if (reg >= IR_SERIAL && reg < IR_SERIAL + IR_SERIAL_REGS)
		return text_reg(serial_tail(c), 2 * IR_SERIAL_REGS, reg - IR_SERIAL, ID_PAD);
	if (reg == IR_SW_VER)
		return SGD_VERSION_X100;
	if (reg == IR_HW_VER)
		return (uint8_t)c->hw_version[0];
	return status_reg(st, reg);
}

/* ---- holding registers ---- */

static uint16_t holding_reg(const struct ownunit_env *env, unsigned reg)
{
	const struct settings *s = env->settings;
	const struct set_def *d;

	if (reg >= HR_DESC && reg < HR_LOC)
		return text_reg(settings_str(s, "description"), 2 * HR_TEXT_REGS, reg - HR_DESC,
				ID_PAD);
	if (reg >= HR_LOC && reg < HR_LOC + HR_TEXT_REGS)
		return text_reg(settings_str(s, "location"), 2 * HR_TEXT_REGS, reg - HR_LOC,
				ID_PAD);
	if (reg >= HR_INT && reg < HR_STR) {
		d = settings_def_at((reg - HR_INT) / 2);
		if (!d || d->type != SET_INT)
			return 0;
		return word((uint32_t)(int32_t)settings_int(s, d->key), (reg - HR_INT) % 2 == 0);
	}
	d = reg >= HR_STR ? settings_def_at((reg - HR_STR) / STR_REGS) : NULL;
	if (!d || d->type != SET_STR || d->secret)
		return 0;
	return text_reg(settings_str(s, d->key), STR_BYTES, (reg - HR_STR) % STR_REGS, '\0');
}

/* 0 if [addr, addr + count) may be read, else the exception code. */
static int read_check(bool input, unsigned addr, unsigned count)
{
	if (input)
		return find_area(input_areas, sizeof(input_areas) / sizeof(input_areas[0]), addr,
				 count) < 0
			   ? MB_EX_ILLEGAL_ADDRESS
			   : 0;
	return holding_area(addr, count) < 0 ? MB_EX_ILLEGAL_ADDRESS : 0;
}

/* Byte count and register values at out; returns the bytes written. */
static size_t fill_read(const struct ownunit_env *env, bool input, unsigned addr, unsigned count,
			uint8_t *out)
{
	struct status st;

	memset(&st, 0, sizeof(st));
	if (input && addr + count > IR_UPTIME)
		status_read(env, &st);
	out[0] = (uint8_t)(2 * count);
	for (unsigned i = 0; i < count; i++)
		put16(out + 1 + 2 * i,
		      input ? input_reg(env, &st, addr + i) : holding_reg(env, addr + i));
	return 1 + 2 * (size_t)count;
}

/* ---- writes ---- */

/* The registers [a, a + n) of one write request and their values. */
struct wreq {
	unsigned a, n;
	const uint16_t *v;
};

static int set_member(json_t *obj, const char *key, json_t *jv)
{
	return json_object_set_new(obj, key, jv) ? MB_EX_DEVICE_FAILURE : 0;
}

/* Integer setting d at base, base + 1: both must be written. */
static int add_int(json_t *obj, const struct set_def *d, unsigned base, const struct wreq *w)
{
	uint32_t v;

	if (!d || d->type != SET_INT || d->readonly)
		return MB_EX_ILLEGAL_ADDRESS;
	if (base < w->a || base + 1 >= w->a + w->n)
		return MB_EX_ILLEGAL_ADDRESS;
	v = (uint32_t)w->v[base - w->a] << 16 | w->v[base + 1 - w->a];
	return set_member(obj, d->key, json_integer((int32_t)v));
}

/* String setting d laid out in nregs registers from base: the current value
 * (empty for a secret, which reads as zeros) with the written registers
 * overlaid, cut at the first NUL. ident: an identification text, which reads
 * space padded, so trailing spaces are padding and are dropped (a client that
 * writes back what it read does not grow the text). */
static int add_text(json_t *obj, const struct settings *s, const struct set_def *d, unsigned base,
		    unsigned nregs, const struct wreq *w, bool ident)
{
	unsigned from = base > w->a ? base : w->a;
	unsigned to = base + nregs < w->a + w->n ? base + nregs : w->a + w->n;
	char buf[STR_BYTES] = {0};
	size_t len;
	json_t *jv;

	if (!d || d->type != SET_STR || d->readonly)
		return MB_EX_ILLEGAL_ADDRESS;
	if (!d->secret) {
		const char *cur = settings_str(s, d->key);

		memcpy(buf, cur, strnlen(cur, 2 * (size_t)nregs));
	}
	for (unsigned r = from; r < to; r++) {
		buf[2 * (r - base)] = (char)(w->v[r - w->a] >> 8);
		buf[2 * (r - base) + 1] = (char)(w->v[r - w->a] & 0xFF);
	}
	/* NULL: not UTF-8, which settings_set_json would refuse too. */
	len = strnlen(buf, 2 * (size_t)nregs);
	while (ident && len > 0 && buf[len - 1] == ID_PAD)
		len--;
	jv = json_stringn(buf, len);
	return jv ? set_member(obj, d->key, jv) : MB_EX_ILLEGAL_VALUE;
}

/* Keep the first address problem; a refused value only without one. */
static int worse(int exc, int rc)
{
	return exc == MB_EX_ILLEGAL_ADDRESS || !rc ? exc : rc;
}

/* Writes to 101–140: description and location. */
static int collect_text(const struct ownunit_env *env, const struct wreq *w, json_t *obj)
{
	static const struct {
		const char *key;
		unsigned base;
	} text[] = {{"description", HR_DESC}, {"location", HR_LOC}};
	int exc = 0;

	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		if (text[i].base >= w->a + w->n || text[i].base + HR_TEXT_REGS <= w->a)
			continue;
		exc = worse(exc, add_text(obj, env->settings, settings_def(text[i].key),
					  text[i].base, HR_TEXT_REGS, w, true));
	}
	return exc;
}

/* Writes to the settings slots from base, size registers each. */
static int collect_slots(const struct ownunit_env *env, const struct wreq *w, bool ints,
			 json_t *obj)
{
	unsigned base = ints ? HR_INT : HR_STR, size = ints ? 2 : STR_REGS;
	unsigned last = w->a + w->n - 1;
	int exc = 0;

	for (unsigned k = (w->a - base) / size; k <= (last - base) / size; k++) {
		const struct set_def *d = settings_def_at(k);
		unsigned at = base + size * k;

		exc = worse(exc, ints ? add_int(obj, d, at, w)
				      : add_text(obj, env->settings, d, at, size, w, false));
	}
	return exc;
}

/* Add to obj every setting the request touches; 0 or an exception code. */
static int collect(const struct ownunit_env *env, const struct wreq *w, json_t *obj)
{
	switch (holding_area(w->a, w->n)) {
	case AREA_TEXT:
		return collect_text(env, w, obj);
	case AREA_INT:
		return collect_slots(env, w, true, obj);
	case AREA_STR:
		return collect_slots(env, w, false, obj);
	default:
		return MB_EX_ILLEGAL_ADDRESS;
	}
}

/* Apply a write all or nothing; 0 or an exception code. */
static int apply_write(const struct ownunit_env *env, const struct wreq *w)
{
	json_t *obj = json_object();
	char err[256];
	unsigned gen;
	int exc, rc;

	if (!obj)
		return MB_EX_DEVICE_FAILURE;
	exc = collect(env, w, obj);
	if (!exc) {
		gen = settings_generation(env->settings);
		rc = settings_set_json(env->settings, obj, err, sizeof(err));
		if (rc)
			exc = rc == -EINVAL ? MB_EX_ILLEGAL_VALUE : MB_EX_DEVICE_FAILURE;
		else if (settings_generation(env->settings) != gen && env->changed)
			env->changed(env->changed_arg);
	}
	json_decref(obj);
	return exc;
}

/* ---- function codes: each returns the response length, or -exception ---- */

static int fc_read(const struct ownunit_env *env, const uint8_t *req, size_t len, uint8_t *rsp)
{
	unsigned addr, count;
	int exc;

	if (len != 5)
		return -MB_EX_ILLEGAL_VALUE;
	addr = get16(req + 1);
	count = get16(req + 3);
	if (count < 1 || count > READ_MAX)
		return -MB_EX_ILLEGAL_VALUE;
	exc = read_check(req[0] == 4, addr, count);
	if (exc)
		return -exc;
	rsp[0] = req[0];
	return 1 + (int)fill_read(env, req[0] == 4, addr, count, rsp + 1);
}

static int fc_write_single(const struct ownunit_env *env, const uint8_t *req, size_t len,
			   uint8_t *rsp)
{
	uint16_t val;
	struct wreq w;
	int exc;

	if (len != 5)
		return -MB_EX_ILLEGAL_VALUE;
	val = (uint16_t)get16(req + 3);
	w = (struct wreq){.a = get16(req + 1), .n = 1, .v = &val};
	exc = apply_write(env, &w);
	if (exc)
		return -exc;
	memcpy(rsp, req, 5);
	return 5;
}

/* Values of a write part: count registers, byte count at p[0], data after it. */
static int parse_values(const uint8_t *p, size_t avail, unsigned count, unsigned max,
			uint16_t *vals)
{
	if (count < 1 || count > max || avail < 1 || p[0] != 2 * count || avail != 1 + 2 * count)
		return MB_EX_ILLEGAL_VALUE;
	for (unsigned i = 0; i < count; i++)
		vals[i] = (uint16_t)get16(p + 1 + 2 * i);
	return 0;
}

static int fc_write_multiple(const struct ownunit_env *env, const uint8_t *req, size_t len,
			     uint8_t *rsp)
{
	uint16_t vals[WRITE_MAX];
	struct wreq w;
	int exc;

	if (len < 6)
		return -MB_EX_ILLEGAL_VALUE;
	w = (struct wreq){.a = get16(req + 1), .n = get16(req + 3), .v = vals};
	exc = parse_values(req + 5, len - 5, w.n, WRITE_MAX, vals);
	if (!exc)
		exc = apply_write(env, &w);
	if (exc)
		return -exc;
	memcpy(rsp, req, 5);
	return 5;
}

static int fc_read_write(const struct ownunit_env *env, const uint8_t *req, size_t len,
			 uint8_t *rsp)
{
	uint16_t vals[RW_WRITE_MAX];
	unsigned raddr, rcount;
	struct wreq w;
	int exc;

	if (len < 10)
		return -MB_EX_ILLEGAL_VALUE;
	raddr = get16(req + 1);
	rcount = get16(req + 3);
	w = (struct wreq){.a = get16(req + 5), .n = get16(req + 7), .v = vals};
	exc = parse_values(req + 9, len - 9, w.n, RW_WRITE_MAX, vals);
	if (!exc && (rcount < 1 || rcount > READ_MAX))
		exc = MB_EX_ILLEGAL_VALUE;
	/* The read is checked first so a bad read address changes nothing. */
	if (!exc)
		exc = read_check(false, raddr, rcount);
	if (!exc)
		exc = apply_write(env, &w);
	if (exc)
		return -exc;
	rsp[0] = req[0];
	return 1 + (int)fill_read(env, false, raddr, rcount, rsp + 1);
}

size_t ownunit_handle(const struct ownunit_env *env, const uint8_t *req, size_t len, uint8_t *rsp)
{
	uint8_t fc = len ? req[0] : 0;
	int n;

	switch (fc) {
	case 3:
	case 4:
		n = fc_read(env, req, len, rsp);
		break;
	case 6:
		n = fc_write_single(env, req, len, rsp);
		break;
	case 16:
		n = fc_write_multiple(env, req, len, rsp);
		break;
	case 23:
		n = fc_read_write(env, req, len, rsp);
		break;
	default:
		/* An empty PDU has no function code to name. */
		n = len ? -MB_EX_ILLEGAL_FUNCTION : -MB_EX_ILLEGAL_VALUE;
		break;
	}
	if (n > 0)
		return (size_t)n;
	rsp[0] = (uint8_t)(fc | 0x80);
	rsp[1] = (uint8_t)-n;
	return 2;
}

/* ---- documentation ---- */

struct regdoc {
	unsigned first, last;
	const char *type, *what;
};

static const struct regdoc input_doc[] = {
    {1, 8, "16 chars", "Model: `model_type` of the board configuration (SG-E1)"},
    {9, 12, "8 chars",
     "Serial number: `serial_number` of the board configuration (its last 8 characters if "
     "longer)"},
    {13, 13, "uint16", "sgd version × 100 (1.23 → 123)"},
    {14, 14, "uint16",
     "Hardware version: first character of `hw_version` of the board configuration, in the "
     "low byte (`D` → 0x0044)"},
    {30, 31, "uint32", "Uptime of sgd, seconds"},
    {32, 33, "uint32", "Wall clock, Unix seconds (UTC)"},
    {34, 34, "uint16", "Number of enabled device slots (health other than disabled)"},
    {35, 35, "uint16", "Number of devices answering (health ok)"},
    {36, 37, "uint32", "Settings CRC-32, as on the status page"},
    {40, 57, "uint16",
     "Health of slot 0…17, one register each: 40 Left IR, 41 Right IR, 42…57 RS485 1…16 "
     "(values below)"},
    {60, 61, "uint16", "Left IR line: transactions, errors (each modulo 65536)"},
    {62, 63, "uint16", "Right IR line: transactions, errors (each modulo 65536)"},
    {64, 65, "uint16", "RS485 line: transactions, errors (each modulo 65536)"},
    {66, 66, "uint16", "RS485 role: 0 master (polls devices), 1 slave (answers as this unit)"},
};

static const struct regdoc holding_doc[] = {
    {101, 120, "40 chars", "Description: setting `description`"},
    {121, 140, "40 chars", "Location: setting `location`"},
};

static void md_range(FILE *f, unsigned first, unsigned last, unsigned offset)
{
	if (first == last)
		fprintf(f, "%u", first + offset);
	else
		fprintf(f, "%u–%u", first + offset, last + offset);
}

static void md_regtable(FILE *f, const struct regdoc *r, size_t n, unsigned iskra_base)
{
	fputs("| PDU address | Iskra number | type | content |\n|---|---|---|---|\n", f);
	for (size_t i = 0; i < n; i++) {
		fputs("| ", f);
		md_range(f, r[i].first, r[i].last, 0);
		fputs(" | ", f);
		md_range(f, r[i].first, r[i].last, iskra_base + 1);
		fprintf(f, " | %s | %s |\n", r[i].type, r[i].what);
	}
	fputs("\n", f);
}

/* A table cell's text: '|' escaped. */
static void md_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', f);
		fputc(*s, f);
	}
}

static void md_setting(FILE *f, size_t k, const struct set_def *d)
{
	size_t klen = strlen(d->key);

	fprintf(f, "| %zu | `%s` | ", k, d->key);
	if (d->type == SET_INT)
		fprintf(f, "int32 | %zu–%zu | %ld…%ld | %ld | ", HR_INT + 2 * k, HR_INT + 2 * k + 1,
			d->min, d->max, d->def_int);
	else {
		fprintf(f, "string | %zu–%zu | ≤ %zu bytes | ", HR_STR + STR_REGS * k,
			HR_STR + STR_REGS * k + STR_REGS - 1, d->maxlen);
		if (d->readonly)
			fputs("board configuration", f);
		else if (*d->def_str) {
			fputs("`", f);
			md_text(f, d->def_str);
			fputs("`", f);
		} else
			fputs("(empty)", f);
		fputs(" | ", f);
	}
	if (d->secret)
		fputs("secret: write-only, reads as zeros", f);
	else if (d->readonly)
		fputs("readonly (`sgd.conf`): readable, writing → 02", f);
	else if (!strcmp(d->key, "description"))
		fputs("also at 101–120", f);
	else if (!strcmp(d->key, "location"))
		fputs("also at 121–140", f);
	else if (klen > 10 && !strcmp(d->key + klen - 10, "_roottopic"))
		fputs("default is the serial number", f);
	fputs(" |\n", f);
}

static void md_intro(FILE *f)
{
	fputs(
	    "<!-- Generated by `SG_REGEN=1 build/tests/test_ownunit` from ownunit_map_markdown() "
	    "(src/modbus/ownunit.c); do not edit by hand. -->\n"
	    "# Modbus register map of the gateway's own unit\n\n"
	    "The gateway answers from this map over Modbus TCP on port `tcp_port` (default "
	    "10001, while `modbus_tcp_enabled` is 1) for unit id `sg_modbus_addr` (default 34) "
	    "or 255, and as an RTU slave on RS485 at address `sg_modbus_addr` while no RS485 "
	    "device is enabled (every `rs485_type_N` 0; the line runs at `rs485_baud_rate`, "
	    "`rs485_parity`, `rs485_stop_bits`). Addresses below are PDU addresses, 0-based as "
	    "sent on the wire. Iskra documents and `sgctl modbus` number registers 1-based with "
	    "the table as prefix: the Iskra number is the PDU address + 1 + 30000 for input "
	    "registers and + 1 + 40000 for holding registers (e.g. 30002 = input PDU 1, "
	    "40102 = holding PDU 101).\n\n"
	    "Function codes: 3 read holding registers, 4 read input registers, 6 write single "
	    "register, 16 write multiple registers, 23 read/write multiple registers (the write "
	    "is applied before the read). Exceptions: 01 any other function code; 02 an address "
	    "outside the map or a write to a register that is not a writable setting; 03 a "
	    "malformed request (length, count, byte count) or a value the settings refuse; 04 the "
	    "settings could not be saved.\n\n"
	    "Text is laid out 2 characters (bytes of UTF-8) per register, high byte first. "
	    "The identification texts (model, serial, description, location) are padded with "
	    "spaces as on Iskra meters, and trailing spaces written to description or location "
	    "are dropped as padding; the settings slots (3000 + 64k) are NUL padded. 32-bit "
	    "values take two registers, high word first.\n\n",
	    f);
}

static void md_fixed(FILE *f)
{
	fputs("## Input registers (function 4)\n\n"
	      "A read must lie inside 1–14 or inside 30–66; registers of these ranges not listed "
	      "(38, 39, 58, 59) read 0.\n\n",
	      f);
	md_regtable(f, input_doc, sizeof(input_doc) / sizeof(input_doc[0]), 30000);
	fputs("Health values:", f);
	for (int h = DEV_DISABLED; h <= DEV_READ_ERROR; h++)
		fprintf(f, "%s %d %s", h == DEV_DISABLED ? "" : ",", h,
			dev_health_name((enum dev_health)h));
	fputs(".\n\n## Holding registers (functions 3, 6, 16, 23)\n\n"
	      "Identification in the Iskra layout:\n\n",
	      f);
	md_regtable(f, holding_doc, sizeof(holding_doc) / sizeof(holding_doc[0]), 40000);
}

static void md_settings_intro(FILE *f, size_t n)
{
	fprintf(f,
		"### Settings\n\n"
		"Every setting has a slot numbered k in the order of the settings table below "
		"(integer and string keys alike, so positions never move; new keys are added at "
		"the end). N = %zu settings.\n\n"
		"- Integer setting k: registers 1000 + 2k (high word) and 1001 + 2k (low word), "
		"int32 two's complement. A write must cover both registers in one request; one "
		"half alone → 02.\n"
		"- String setting k: registers 3000 + 64k … 3063 + 64k, up to 128 bytes. A write "
		"lays the current value out in the slot, overlays the written registers and cuts "
		"the result at its first NUL (write a 0x0000 register to end a shorter value; "
		"trailing spaces are kept). Secret settings read as zeros and are written over an "
		"empty value.\n"
		"- A read must lie inside 101–140, 1000–%zu or 3000–%zu. Registers of a string "
		"slot in the integer area, of an integer slot in the string area, and the tail of "
		"a string slot beyond the value read 0.\n"
		"- Writing a register that is not a writable setting (the other type's slot, a "
		"readonly setting) → 02. All settings one request touches change together or not "
		"at all: a value the settings refuse (out of range, too long, not UTF-8, control "
		"characters) → 03 and nothing changes. Changes are saved like any other settings "
		"change.\n\n",
		n, HR_INT + 2 * n - 1, HR_STR + STR_REGS * n - 1);
}

void ownunit_map_markdown(FILE *f)
{
	size_t n = settings_count();

	md_intro(f);
	md_fixed(f);
	md_settings_intro(f, n);
	fputs("| k | key | type | registers | range / max length | default | notes |\n"
	      "|---|---|---|---|---|---|---|\n",
	      f);
	for (size_t k = 0; k < n; k++)
		md_setting(f, k, settings_def_at(k));
}
