/* Commands about devices: the registry's view (devices, measurements,
 * counters) and the on-demand bus operations (Bicom, RS485 scan with "add
 * all", set-parameters, raw Modbus). Their business rules live here once,
 * whoever calls (REST, MQTT, sgctl, automation); a bus operation finishes
 * from the poller's completion with ops_status_of_err. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_int.h"
#include "sg/bus.h"
#include "sg/devop.h"
#include "sg/poll.h"
#include "sg/reading.h"
#include "sg/registry.h"
#include "sg/regnum.h"
#include "sg/settings.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define REG_HELP                                                                                        \
	"an Iskra register number: 1…9999 coils, 10001… discrete inputs, 30001… input, 40001… " \
	"holding"
#define VALUES_HELP "an even number (2…246) of bytes 0…255, two per register, high byte first"
#define WORDS_HELP "1…1968 values: 0…65535 per holding register (at most 123), 0 or 1 per coil"
#define WORDS_MAX 1968
#define SERIAL_MAX 16

/* The state of a call that waits for the poller. */
struct bus_call {
	char what[64]; /* what failed, for messages: "Bicom 3", "modbus address 33" */
	void (*finish)(struct ops_call *c, json_t *res);
	bool add_all;
	/* raw Modbus */
	int addr;		 /* Modbus address given to poll_modbus (0 = Left IR device) */
	char serial[SERIAL_MAX]; /* "" unless addressed by serial_number */
	long reg;		 /* Iskra register number as asked */
	long value;		 /* modbus_write_single */
	struct bus_txn t;
};

static struct poll *poller(struct ops_call *c)
{
	return ops_call_env(c)->poll;
}

static const struct reg *devices(struct ops_call *c)
{
	return ops_call_env(c)->reg;
}

static long int_arg(json_t *args, const char *name, long dflt)
{
	json_t *v = json_object_get(args, name);

	return v ? (long)json_integer_value(v) : dflt;
}

/* poll_result_cb of every bus operation (arg = the call). */
static void bus_done(int err, const char *msg, json_t *res, void *arg)
{
	struct ops_call *c = arg;
	struct bus_call *b = ops_call_data(c, sizeof(*b));
	char text[OPS_MSG_MAX - 64];

	if (err) {
		json_decref(res);
		ops_fail(c, ops_status_of_err(err), "%s: %s", b->what,
			 devop_err_text(err, msg, text, sizeof(text)));
	} else if (b->finish) {
		b->finish(c, res);
	} else {
		ops_reply(c, res ? res : json_pack("{s:s}", "result", "ok"));
	}
}

/* An operation the poller refused to start (it called nothing back). */
static void start_failed(struct ops_call *c, int r)
{
	struct bus_call *b = ops_call_data(c, sizeof(*b));

	if (r == -EBUSY)
		ops_fail(c, OPS_BUSY, "%s: %s", b->what,
			 reg_bus_busy(devices(c), CONF_BUS_RS485)
			     ? "an RS485 scan is in progress"
			     : "the bus queue is full, try again");
	else if (r == -ENODEV)
		ops_fail(c, OPS_UNAVAILABLE, "%s: this board has no serial port for that bus",
			 b->what);
	else
		ops_fail(c, ops_status_of_err(r), "%s: %s", b->what, strerror(-r));
}

/* The call's scratch state, or a failure (out of memory) that finished c. */
static struct bus_call *bus_call(struct ops_call *c)
{
	struct bus_call *b = ops_call_data(c, sizeof(*b));

	if (!b)
		ops_fail(c, OPS_INTERNAL, "out of memory");
	return b;
}

/* ---- devices and readings ---- */

/* {"devices": [...]}: one entry per slot in slot order. */
static void run_devices(struct ops_call *c, json_t *args)
{
	json_t *list = json_array();

	(void)args;
	for (int s = 0; s < DEV_SLOTS; s++)
		json_array_append_new(list, dev_device_json(reg_dev(devices(c), s)));
	ops_reply_doc(c, json_pack("{s:o}", "devices", list));
}

/* Slot of a device by Modbus address as the manual means it: 0 the Left IR
 * device, else an RS485 slot with that address, else the Left IR device if
 * it has it (the poller routes raw Modbus the same way). */
static int slot_of_addr(const struct reg *r, long addr)
{
	const struct dev *ir = reg_dev(r, DEV_SLOT_LEFT_IR);

	if (addr == 0)
		return DEV_SLOT_LEFT_IR;
	for (int n = 1; n <= 16; n++) {
		const struct dev *d = reg_dev(r, DEV_SLOT_RS485(n));

		if (d->cls != CLASS_NONE && d->addr == addr)
			return DEV_SLOT_RS485(n);
	}
	return ir->cls != CLASS_NONE && ir->addr == addr ? DEV_SLOT_LEFT_IR : -1;
}

/* measurements / counters: the document of the device's last reading, which
 * is only served while the device is readable (never stale values). */
static void run_reading(struct ops_call *c, json_t *args, bool counters)
{
	const struct ops_env *e = ops_call_env(c);
	json_t *addr = json_object_get(args, "addr"), *index = json_object_get(args, "index");
	char why[OPS_MSG_MAX];
	const struct dev *d;
	int slot;

	if (!addr == !index) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "give either addr (Modbus address, 0 = Left IR device) or index (0 = Left "
			 "IR, 1…16 = RS485 1…16)");
		return;
	}
	slot = index ? dev_slot_of_index((int)json_integer_value(index))
		     : slot_of_addr(e->reg, (long)json_integer_value(addr));
	if (slot < 0) {
		ops_fail(c, OPS_NOT_FOUND,
			 "no device configured at Modbus address %" JSON_INTEGER_FORMAT,
			 json_integer_value(addr));
		return;
	}
	d = reg_dev(e->reg, slot);
	if (ops_call_origin(c) == OPS_FROM_CTL) { /* sgctl's own document, ages included */
		json_t *doc = NULL;
		enum ops_status st = ops_ctl_reading(d, counters, &doc, why, sizeof(why));

		if (st == OPS_OK)
			ops_reply_doc(c, doc);
		else
			ops_fail(c, st, "%s", why);
		return;
	}
	if (devop_unreadable(d, why, sizeof(why))) {
		ops_fail(c, d->health == DEV_DISABLED ? OPS_NOT_FOUND : OPS_UNAVAILABLE, "%s", why);
		return;
	}
	ops_reply_doc(c, reading_json(e->hist, e->settings, d, counters));
}

static void run_measurements(struct ops_call *c, json_t *args)
{
	run_reading(c, args, false);
}

static void run_counters(struct ops_call *c, json_t *args)
{
	run_reading(c, args, true);
}

/* ---- Bicom ---- */

/* The Right IR Bicom follows the IR counter in relay mode 2: only its state
 * may be read. Here, so that no caller (automation included) can bypass it. */
bool ops_bicom_switchable(const struct settings *s, int slot)
{
	return slot != DEV_SLOT_RIGHT_IR || settings_int(s, "ir_ext_rel_mode") != 2;
}

/* {"bicom": addr, "state": "on"|"off"}. */
static void run_bicom(struct ops_call *c, json_t *args)
{
	/* enum bicom_op order; "status" is the manual's (000 §4.8.7) name of "state". */
	static const char *const ops[] = {"state", "on", "off", "toggle", "status"};
	const char *val = json_string_value(json_object_get(args, "val"));
	long addr = int_arg(args, "addr", -1);
	struct bus_call *b;
	int op = -1, slot, r;

	for (size_t i = 0; i < N(ops); i++)
		if (!strcmp(val, ops[i]))
			op = i == 4 ? BICOM_STATE : (int)i;
	if (op < 0) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "val: expected \"on\", \"off\", \"toggle\" or \"state\"");
		return;
	}
	slot = reg_bicom_slot(devices(c), (int)addr);
	if (slot < 0) {
		ops_fail(c, OPS_NOT_FOUND, "Bicom %ld: no Bicom configured at address %ld", addr,
			 addr);
		return;
	}
	if (op != BICOM_STATE && !ops_bicom_switchable(ops_call_env(c)->settings, slot)) {
		ops_fail(c, OPS_FORBIDDEN,
			 "Bicom %ld: Right IR Bicom is controlled by the IR counter, not by the "
			 "gateway",
			 addr);
		return;
	}
	if (!(b = bus_call(c)))
		return;
	snprintf(b->what, sizeof(b->what), "Bicom %ld", addr);
	r = poll_bicom(poller(c), slot, (enum bicom_op)op, bus_done, c);
	if (r < 0)
		start_failed(c, r);
}

/* ---- RS485 scan ---- */

/* baud_rate as a rate (19200) or an Iskra code (0…7), number or string. */
static int scan_baud(json_t *v, int *baud)
{
	char txt[24];

	if (json_is_integer(v))
		snprintf(txt, sizeof(txt), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_string(v) && json_string_length(v) < sizeof(txt))
		snprintf(txt, sizeof(txt), "%s", json_string_value(v));
	else
		txt[0] = '\0';
	return bus_baud_parse(txt, baud);
}

static int free_slot(const struct reg *r, json_t *pending, long addr)
{
	char key[32];
	int free_n = 0;

	for (int n = 16; n >= 1; n--) {
		const struct dev *d = reg_dev(r, DEV_SLOT_RS485(n));

		snprintf(key, sizeof(key), "rs485_type_%d", n);
		if (d->cls != CLASS_NONE && d->addr == addr)
			return 0; /* already configured */
		if (d->cls == CLASS_NONE && !json_object_get(pending, key))
			free_n = n;
	}
	return free_n > 0 ? free_n : -ENOSPC;
}

/* "Add all" (R-A5): every found device not yet configured goes into a free
 * RS485 slot with its class from its description. */
static json_t *plan_add_all(const struct ops_env *e, json_t *found, json_t *added)
{
	json_t *set = json_object(), *d;
	char key[32], desc[48];
	size_t i;

	json_array_foreach(found, i, d)
	{
		long addr = (long)json_integer_value(json_object_get(d, "address"));
		const char *model = json_string_value(json_object_get(d, "model"));
		const struct desc *ds = desc_match(e->descs, model ? model : "");
		int n = free_slot(e->reg, set, addr);

		if (n <= 0)
			continue;
		snprintf(key, sizeof(key), "rs485_type_%d", n);
		json_object_set_new(set, key, json_integer(ds ? ds->cls : CLASS_GENERIC));
		snprintf(key, sizeof(key), "rs485_addr_%d", n);
		json_object_set_new(set, key, json_integer(addr));
		snprintf(key, sizeof(key), "rs485_desc_%d", n);
		snprintf(desc, sizeof(desc), "%s %s", model && *model ? model : "Device",
			 json_string_value(json_object_get(d, "serial")));
		json_object_set_new(set, key, json_string(desc));
		json_array_append_new(added,
				      json_pack("{s:i, s:i, s:s}", "rs485_slot", n, "address",
						(int)addr, "model", model ? model : ""));
	}
	return set;
}

/* The line settings become those the scan found the first device at. */
static void set_line_from_scan(json_t *set, json_t *found)
{
	json_t *d = json_array_get(found, 0);
	const char *par = json_string_value(json_object_get(d, "parity"));
	long baud = (long)json_integer_value(json_object_get(d, "baud"));

	for (long code = 0; d && code <= 7; code++)
		if (bus_baud_from_code(code) == baud)
			json_object_set_new(set, "rs485_baud_rate", json_integer(code));
	if (par)
		json_object_set_new(set, "rs485_parity",
				    json_integer(!strcmp(par, "odd")	? 1
						 : !strcmp(par, "even") ? 2
									: 0));
	if (d)
		json_object_set_new(
		    set, "rs485_stop_bits",
		    json_integer(json_integer_value(json_object_get(d, "stop_bits")) == 2));
}

/* {"devices": [...]}, with "added" when add_all: one settings change, all
 * or nothing. */
static void scan_finish(struct ops_call *c, json_t *res)
{
	struct bus_call *b = ops_call_data(c, sizeof(*b));
	const struct ops_env *e = ops_call_env(c);
	json_t *found = json_object_get(res, "devices"), *added, *set;
	char err[OPS_MSG_MAX - 16] = "";

	if (!b->add_all) {
		ops_reply(c, res);
		return;
	}
	added = json_array();
	set = plan_add_all(e, found, added);
	if (json_array_size(added))
		set_line_from_scan(set, found);
	if (json_object_size(set) && settings_set_json(e->settings, set, err, sizeof(err)) < 0) {
		json_decref(added);
		json_decref(res);
		ops_fail(c, OPS_INTERNAL, "add all: %s", err);
	} else {
		json_object_set_new(res, "added", added);
		ops_reply(c, res);
	}
	json_decref(set);
}

static void run_scan(struct ops_call *c, json_t *args)
{
	json_t *baud = json_object_get(args, "baud_rate");
	const char *p = json_string_value(json_object_get(args, "parity"));
	long first = int_arg(args, "from", 1), last = int_arg(args, "to", 247);
	int rate = 0, r;
	char parity = 0;
	struct bus_call *b;

	if (baud && scan_baud(baud, &rate) < 0) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "baud_rate: expected a rate 1200…115200 or a code 0…7");
		return;
	}
	if (p) {
		parity = !strcmp(p, "none")   ? 'N'
			 : !strcmp(p, "odd")  ? 'O'
			 : !strcmp(p, "even") ? 'E'
					      : 0;
		if (!parity) {
			ops_fail(c, OPS_BAD_REQUEST,
				 "parity: expected \"none\", \"odd\" or \"even\"");
			return;
		}
	}
	if (first > last) {
		ops_fail(c, OPS_BAD_REQUEST, "from %ld is after to %ld", first, last);
		return;
	}
	if (reg_bus_busy(devices(c), CONF_BUS_RS485)) {
		ops_fail(c, OPS_BUSY, "a scan is already running");
		return;
	}
	if (!(b = bus_call(c)))
		return;
	snprintf(b->what, sizeof(b->what), "RS485 scan");
	b->add_all = json_is_true(json_object_get(args, "add_all"));
	b->finish = scan_finish;
	r = poll_scan(poller(c), rate, parity, (int)int_arg(args, "stop_bits", 0), (int)first,
		      (int)last, bus_done, c);
	if (r == -ENODEV)
		ops_fail(c, OPS_UNAVAILABLE, "this board has no RS485 port configured");
	else if (r < 0)
		start_failed(c, r);
}

/* ---- set-parameters ---- */

/* The model must have a description with the registers asked for; checked
 * before the bus is touched, to name the problem. */
static void run_set_parameters(struct ops_call *c, json_t *args)
{
	const char *model = json_string_value(json_object_get(args, "model"));
	const struct desc *ds = desc_match(ops_call_env(c)->descs, model);
	long new_addr = int_arg(args, "new_address", -1);
	char clip[40];
	struct bus_call *b;
	int r;

	ops_clip(model, clip, sizeof(clip));
	if (!ds) {
		ops_fail(c, OPS_BAD_REQUEST, "model '%s': no device description matches it", clip);
		return;
	}
	if (new_addr >= 0 && !ds->comm_addr.present) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "model '%s' cannot change its Modbus address over the bus", clip);
		return;
	}
	if (!(b = bus_call(c)))
		return;
	snprintf(b->what, sizeof(b->what), "set-parameters");
	r = poll_set_parameters(poller(c), (int)int_arg(args, "address", 0), model, (int)new_addr,
				(int)int_arg(args, "baud_rate", -1),
				(int)int_arg(args, "parity", -1),
				(int)int_arg(args, "stop_bits", -1), bus_done, c);
	if (r == -ENOTSUP)
		ops_fail(c, OPS_BAD_REQUEST, "model '%s' has no writable communication registers",
			 clip);
	else if (r == -ENODEV)
		ops_fail(c, OPS_UNAVAILABLE, "this board has no RS485 port configured");
	else if (r < 0)
		start_failed(c, r);
}

/* ---- raw Modbus ---- */

/* The Modbus address of the polled device with serial number sn. */
static enum ops_status addr_of_serial(const struct reg *r, struct bus_call *b, char *msg,
				      size_t len)
{
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(r, s);

		if (d->cls == CLASS_NONE || !d->serial[0] || strcmp(d->serial, b->serial))
			continue;
		if (s == DEV_SLOT_RIGHT_IR) {
			snprintf(msg, len,
				 "serial_number %s: the Right IR Bicom is not reachable by raw "
				 "Modbus (use the bicom command)",
				 b->serial);
			return OPS_FORBIDDEN;
		}
		/* 0 reaches the Left IR head even if an RS485 device has its address. */
		b->addr = s == DEV_SLOT_LEFT_IR ? 0 : d->addr;
		return OPS_OK;
	}
	snprintf(msg, len, "serial_number %s: no configured device has this serial number",
		 b->serial);
	return OPS_NOT_FOUND;
}

/* The space of a register that may be written, or a message. */
static bool mb_writable(long reg, bool coils, char *msg, size_t len)
{
	enum desc_space space;
	uint16_t pdu;

	if (regnum_from_long(reg, &space, &pdu) < 0)
		snprintf(msg, len, "reg: %ld is not %s", reg, REG_HELP);
	else if (space == SPACE_HOLDING || (coils && space == SPACE_COIL))
		return true;
	else
		snprintf(msg, len,
			 "reg: %ld cannot be written (expected a holding register 4xxxx%s)", reg,
			 coils ? " or a coil 1…9999" : "");
	return false;
}

static bool mb_read(json_t *args, struct bus_call *b, char *msg, size_t len)
{
	long n = int_arg(args, "no_regs", 1);

	switch (devop_mb_read(&b->t, b->reg, n)) {
	case 0:
		return true;
	case -ERANGE:
		snprintf(msg, len,
			 "no_regs: %ld from register %ld: expected 1…%d registers (1…%d coils or "
			 "discrete inputs) within the register space",
			 n, b->reg, BUS_REGS_MAX, BUS_BITS_MAX);
		return false;
	default:
		snprintf(msg, len, "reg: %ld is not %s", b->reg, REG_HELP);
		return false;
	}
}

static bool mb_write_single(json_t *args, struct bus_call *b, char *msg, size_t len)
{
	enum desc_space space;
	uint16_t pdu;

	if (!mb_writable(b->reg, true, msg, len))
		return false;
	b->value = int_arg(args, "value", 0);
	regnum_from_long(b->reg, &space, &pdu);
	if (space == SPACE_COIL && b->value > 1) {
		snprintf(msg, len, "value: a coil takes 0 or 1");
		return false;
	}
	if (devop_mb_write(&b->t, b->reg, &b->value, 1, false) < 0) {
		snprintf(msg, len, "reg: %ld is at the end of the register space", b->reg);
		return false;
	}
	return true;
}

/* "values": bytes, two per register, high byte first (000 §4.8.9.3: [65, 66]
 * writes "AB" to one register); "words": one value per register or coil. */
static bool mb_write_multi(json_t *args, struct bus_call *b, char *msg, size_t len)
{
	json_t *vals = json_object_get(args, "values"), *words = json_object_get(args, "words"), *v;
	long regs[WORDS_MAX];
	size_t i, n;
	int r;

	if (!vals == !words) {
		snprintf(msg, len, "give either values (%s) or words (%s)", VALUES_HELP,
			 WORDS_HELP);
		return false;
	}
	if (!mb_writable(b->reg, words != NULL, msg, len))
		return false;
	if (words) {
		json_array_foreach(words, i, v)
		{
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 65535) {
				snprintf(msg, len, "words[%zu]: expected an integer 0…65535", i);
				return false;
			}
			regs[i] = (long)json_integer_value(v);
		}
		n = json_array_size(words);
		r = devop_mb_write(&b->t, b->reg, regs, (unsigned)n, true);
		if (r == -EINVAL)
			snprintf(msg, len, "words: expected %s", WORDS_HELP);
		else if (r < 0)
			snprintf(msg, len,
				 "words: %zu values from %ld: expected %s within the "
				 "register space",
				 n, b->reg, WORDS_HELP);
		return r == 0;
	}
	n = json_array_size(vals);
	if (n % 2) {
		snprintf(msg, len, "values: expected %s", VALUES_HELP);
		return false;
	}
	json_array_foreach(vals, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 255) {
			snprintf(msg, len, "values[%zu]: expected a byte 0…255", i);
			return false;
		}
		if (i % 2)
			regs[i / 2] |= (long)json_integer_value(v);
		else
			regs[i / 2] = (long)json_integer_value(v) << 8;
	}
	if (devop_mb_write(&b->t, b->reg, regs, (unsigned)(n / 2), true) < 0) {
		snprintf(msg, len, "values: %zu registers from %ld run past the register space",
			 n / 2, b->reg);
		return false;
	}
	return true;
}

/* The reply: cmd, modbus_address, register, [serial_number], then value,
 * or number_of_registers [and values]. */
static void mb_finish(struct ops_call *c, json_t *res)
{
	struct bus_call *b = ops_call_data(c, sizeof(*b));
	const char *cmd = ops_call_name(c);
	json_t *r = json_pack("{s:s, s:i, s:I}", "cmd", cmd, "modbus_address", b->addr, "register",
			      (json_int_t)b->reg);

	json_decref(res);
	if (!r) {
		ops_reply_doc(c, NULL);
		return;
	}
	if (b->serial[0])
		json_object_set_new(r, "serial_number", json_string(b->serial));
	if (!strcmp(cmd, "modbus_write_single")) {
		json_object_set_new(r, "value", json_integer(b->value));
	} else {
		json_object_set_new(r, "number_of_registers", json_integer(b->t.count));
		if (!strcmp(cmd, "modbus_read"))
			json_object_set_new(r, "values", devop_mb_values(&b->t));
	}
	ops_reply(c, r);
}

static void run_modbus(struct ops_call *c, json_t *args)
{
	const char *cmd = ops_call_name(c);
	json_t *sn = json_object_get(args, "serial_number"), *addr;
	json_int_t reg = json_integer_value(json_object_get(args, "reg"));
	char msg[OPS_MSG_MAX];
	enum ops_status st;
	struct bus_call *b;
	bool ok;
	int r;

	addr = json_object_get(args, "modbus_address");
	if (!sn == !addr) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "give either modbus_address 0 (Left IR device) … 247, or serial_number");
		return;
	}
	if (sn && !ops_printable(json_string_value(sn))) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "serial_number: expected a device's serial number (1…%d printable "
			 "characters)",
			 SERIAL_MAX - 1);
		return;
	}
	if (reg < 1 || reg > 465536) {
		ops_fail(c, OPS_BAD_REQUEST, "reg: %" JSON_INTEGER_FORMAT " is not %s", reg,
			 REG_HELP);
		return;
	}
	if (!(b = bus_call(c)))
		return;
	b->reg = (long)reg;
	b->addr = (int)json_integer_value(addr);
	ok = !strcmp(cmd, "modbus_read")	   ? mb_read(args, b, msg, sizeof(msg))
	     : !strcmp(cmd, "modbus_write_single") ? mb_write_single(args, b, msg, sizeof(msg))
						   : mb_write_multi(args, b, msg, sizeof(msg));
	if (!ok) {
		ops_fail(c, OPS_BAD_REQUEST, "%s", msg);
		return;
	}
	if (sn) {
		snprintf(b->serial, sizeof(b->serial), "%s", json_string_value(sn));
		if ((st = addr_of_serial(devices(c), b, msg, sizeof(msg))) != OPS_OK) {
			ops_fail(c, st, "%s", msg);
			return;
		}
	}
	snprintf(b->what, sizeof(b->what), "modbus address %d", b->addr);
	b->finish = mb_finish;
	r = poll_modbus(poller(c), b->addr, &b->t, bus_done, c);
	if (r < 0)
		start_failed(c, r);
}

/* ---- the table ---- */

/* measurements / counters: exactly one of addr and index. */
static const struct ops_arg reading_args[] = {
    {"addr", OPS_T_INT, 0, 0, 247, NULL}, /* Modbus address, 0 = Left IR device */
    {"index", OPS_T_INT, 0, 0, 16, NULL}, /* HA index: 0 = Left IR, 1…16 = RS485 1…16 */
    {NULL},
};

static const struct ops_arg bicom_args[] = {
    {"addr", OPS_T_INT, OPS_REQUIRED, 0, 247, NULL}, /* 0 = Right IR Bicom, else RS485 address */
    {"val", OPS_T_STR, OPS_REQUIRED, 1, 16, "\"on\", \"off\", \"toggle\" or \"state\""},
    {NULL},
};

/* All optional: the configured RS485 line and addresses 1…247 by default. */
static const struct ops_arg scan_args[] = {
    {"baud_rate", OPS_T_ANY, 0, 0, 0, "a rate 1200…115200 or a code 0…7"}, /* number or string */
    {"stop_bits", OPS_T_INT, 0, 1, 2, NULL},
    {"parity", OPS_T_STR, 0, 1, 8, "\"none\", \"odd\" or \"even\""},
    {"from", OPS_T_INT, 0, 1, 247, NULL},
    {"to", OPS_T_INT, 0, 1, 247, NULL},
    {"add_all", OPS_T_BOOL, 0, 0, 0, NULL}, /* put every new device found into a free slot */
    {NULL},
};

/* Codes as the device's communication registers take them; absent = keep. */
static const struct ops_arg setparam_args[] = {
    {"address", OPS_T_INT, OPS_REQUIRED, 1, 247, "the device's Modbus address, 1…247"},
    {"model", OPS_T_STR, OPS_REQUIRED, 1, 63, "the model the scan reported (\"WM3M4C\")"},
    {"new_address", OPS_T_INT, 0, 1, 247, NULL},
    {"baud_rate", OPS_T_INT, 0, 0, 7, NULL},
    {"parity", OPS_T_INT, 0, 0, 2, NULL},
    {"stop_bits", OPS_T_INT, 0, 0, 1, NULL},
    {NULL},
};

/* Raw Modbus: exactly one of modbus_address and serial_number; reg is range
 * checked by the handler to name what is wrong with it. */
#define MB_TARGET                                                                                  \
	{"modbus_address", OPS_T_INT, 0, 0, 247, NULL},                                            \
	    {"serial_number", OPS_T_STR, 0, 1, SERIAL_MAX - 1, "a device's serial number"},        \
	{                                                                                          \
		"reg", OPS_T_INT, OPS_REQUIRED, LONG_MIN, LONG_MAX, REG_HELP                       \
	}

static const struct ops_arg mb_read_args[] = {
    MB_TARGET,
    {"no_regs", OPS_T_INT, 0, 1, BUS_BITS_MAX, NULL}, /* default 1 */
    {NULL},
};

static const struct ops_arg mb_single_args[] = {
    MB_TARGET,
    {"value", OPS_T_INT, OPS_REQUIRED, 0, 65535, NULL}, /* 0 or 1 for a coil */
    {NULL},
};

/* values (the manual's bytes, holding registers) or words (one value per
 * register or coil, dev/devop.c's limits): exactly one. */
static const struct ops_arg mb_multi_args[] = {
    MB_TARGET,
    {"values", OPS_T_ARRAY, 0, 2, 2 * 123, VALUES_HELP},
    {"words", OPS_T_ARRAY, 0, 1, WORDS_MAX, WORDS_HELP},
    {NULL},
};

const struct ops_def ops_dev_defs[] = {
    {"devices", NULL, 0, run_devices},
    {"measurements", reading_args, 0, run_measurements},
    {"counters", reading_args, 0, run_counters},
    {"bicom", bicom_args, 0, run_bicom},
    {"detect_485_devices", scan_args, 0, run_scan},
    {"set_parameters", setparam_args, 0, run_set_parameters},
    {"modbus_read", mb_read_args, 0, run_modbus},
    {"modbus_write_single", mb_single_args, 0, run_modbus},
    {"modbus_write_multi", mb_multi_args, 0, run_modbus},
    {NULL},
};
