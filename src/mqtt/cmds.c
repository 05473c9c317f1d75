/* Commands arriving on <root>/<sub topic> (CONTRACTS §2, 000 §4.8, 001 §4.7):
 * {"data": {"cmd": …}} validated strictly (unknown members, wrong types and
 * out-of-range values are refused by name; nothing changes), run through the
 * same poller operations and shared checks as sgctl and REST, answered on
 * base/status as JSON with "cmd" and, when they fail, also as "Error: …" text
 * on base/error. Bus operations answer later, from their completion. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds_int.h"
#include "sg/devop.h"
#include "sg/files.h"
#include "sg/hist.h"
#include "sg/log.h"
#include "sg/reading.h"
#include "sg/regnum.h"
#include "sg/version.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CMD_ASYNC 1 /* a run function handed the command to the poller */
#define CLIP_LEN CMD_NAME_MAX
#define URI_MAX 512

struct cmd;
/* Turns a finished operation's result (owned) into the reply document. */
typedef json_t *(*cmd_done_fn)(struct cmd *c, struct mqtt_link *l, json_t *res);

/* One command from arrival to reply; on the heap because bus operations
 * finish after mqtt_cmd_run has returned. */
struct cmd {
	struct app *app;
	int link; /* the reply goes back to the link the command came on */
	char name[CMD_NAME_MAX];
	char what[64]; /* what failed, for error texts: "Bicom 3", "modbus address 33" */
	char err[CMD_ERR_MAX];
	json_t *reply; /* the success document of a command done at once */
	cmd_done_fn done;
	int addr; /* bicom */
	struct cmd_mb mb;
};

typedef int (*cmd_run_fn)(struct cmd *c, json_t *data);

struct cmd_def {
	const char *name;
	const char *const *members; /* accepted members of "data"; NULL = any */
	cmd_run_fn run;
};

/* ---- small helpers ---- */

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Client text safe to quote: printable ASCII, at most CLIP_LEN-1 bytes. */
static const char *clip(const char *s, char buf[CLIP_LEN])
{
	size_t i = 0;

	for (; s && s[i] && i < CLIP_LEN - 1; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

json_t *cmd_text(const char *s)
{
	char buf[CMD_ERR_MAX];
	size_t i = 0;
	json_t *j = json_string(s);

	if (j)
		return j;
	/* A truncated message may end in half a UTF-8 sequence. */
	for (; s[i] && i < sizeof(buf) - 1; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

/* An integer member in lo…hi: 0; -ENOENT when absent; -EINVAL with err. */
static int arg_int(json_t *data, const char *key, long lo, long hi, long *out, char *err,
		   size_t len)
{
	json_t *v = json_object_get(data, key);

	if (!v)
		return -ENOENT;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fail(err, len, "%s: expected an integer %ld…%ld", key, lo, hi);
	*out = (long)json_integer_value(v);
	return 0;
}

/* A required integer member; help says what it means when it is missing. */
static int arg_need_int(json_t *data, const char *key, long lo, long hi, const char *help,
			long *out, char *err, size_t len)
{
	int r = arg_int(data, key, lo, hi, out, err, len);

	return r == -ENOENT ? fail(err, len, "%s: missing (%s)", key, help) : r;
}

/* A required string member of 1…maxlen bytes without NULs. */
static int arg_need_str(json_t *data, const char *key, size_t maxlen, const char *help,
			const char **out, char *err, size_t len)
{
	json_t *v = json_object_get(data, key);
	size_t n = json_string_length(v);

	if (!v)
		return fail(err, len, "%s: missing (%s)", key, help);
	if (!json_is_string(v) || !n || n > maxlen || strlen(json_string_value(v)) != n)
		return fail(err, len, "%s: expected %s", key, help);
	*out = json_string_value(v);
	return 0;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7F)
			return false;
	return true;
}

/* ---- publishing ---- */

static void publish_doc(struct mqtt_link *l, json_t *doc)
{
	char *txt = doc ? json_dumps(doc, SG_JSON_FLAGS) : NULL;
	int r;

	if (!txt) {
		log_err("mqtt%d: cannot render a command reply (out of memory)", link_number(l));
	} else if ((r = link_publish(l, SUB_STATUS, txt, strlen(txt), 1, false)) < 0) {
		log_info("mqtt%d: command reply not sent: %s", link_number(l), strerror(-r));
	}
	free(txt);
	json_decref(doc);
}

/* {"cmd": name|null, "error": msg} on status and "Error: msg" on error. */
static void reply_error(struct mqtt_link *l, const char *name, const char *msg)
{
	json_t *doc = json_object();
	char text[CMD_ERR_MAX + 16];

	log_info("mqtt%d: command %s: %s", link_number(l), name ? name : "(none)", msg);
	json_object_set_new(doc, "cmd", name ? json_string(name) : json_null());
	json_object_set_new(doc, "error", cmd_text(msg));
	publish_doc(l, doc);
	snprintf(text, sizeof(text), "Error: %s", msg);
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '?'; /* one line of text, whatever the client sent */
	link_publish(l, SUB_ERROR, text, strlen(text), 1, false);
}

/* The reply with "cmd" first, then the members of doc (stolen). */
static void reply_ok(struct mqtt_link *l, const char *name, json_t *doc)
{
	json_t *out = json_pack("{s:s}", "cmd", name);

	if (out && doc)
		json_object_update(out, doc);
	json_decref(doc);
	publish_doc(l, out);
}

/* Reply (r < 0: c->err; else c->reply), then free. */
static void finish(struct cmd *c, struct mqtt_link *l, int r)
{
	if (r < 0) {
		json_decref(c->reply);
		reply_error(l, c->name, c->err[0] ? c->err : strerror(-r));
	} else {
		reply_ok(l, c->name, c->reply);
	}
	free(c);
}

struct mqtt_link *cmd_link_again(struct app *a, int n, const char *what)
{
	struct mqtt *m = a->mqtt;
	struct mqtt_link *l = m && n >= 1 && n <= MQTT_LINKS ? m->link[n - 1] : NULL;

	if (!l || !link_connected(l)) {
		log_info("mqtt%d: %s finished while the link was down; reply dropped", n, what);
		return NULL;
	}
	return l;
}

/* poll_result_cb of every command that needs the bus. */
static void op_done(int err, const char *msg, json_t *res, void *arg)
{
	struct cmd *c = arg;
	struct mqtt_link *l = cmd_link_again(c->app, c->link, c->name);
	char text[CMD_ERR_MAX - 64];

	if (!l) {
		json_decref(res);
		free(c);
		return;
	}
	if (err) {
		json_decref(res);
		snprintf(c->err, sizeof(c->err), "%s: %s", c->what,
			 devop_err_text(err, msg, text, sizeof(text)));
		finish(c, l, err);
		return;
	}
	c->reply = c->done(c, l, res);
	finish(c, l, 0);
}

/* An operation the poller refused to start (it called nothing back). */
static int start_failed(struct cmd *c, int r)
{
	if (r == -EBUSY)
		return fail(c->err, sizeof(c->err), "%s: %s", c->what,
			    poll_scanning(c->app->poll) ? "an RS485 scan is in progress"
							: "the bus queue is full, try again");
	if (r == -ENODEV)
		return fail(c->err, sizeof(c->err),
			    "%s: this board has no serial port for that bus", c->what);
	snprintf(c->err, sizeof(c->err), "%s: %s", c->what, strerror(-r));
	return r;
}

/* ---- parsing ---- */

json_t *cmd_parse(const void *payload, size_t len, char name[CMD_NAME_MAX], char *err,
		  size_t errlen)
{
	json_error_t je;
	json_t *doc, *data, *cmd;

	name[0] = '\0';
	if (len > CMD_PAYLOAD_MAX) {
		fail(err, errlen, "command of %zu bytes refused (at most %d)", len,
		     CMD_PAYLOAD_MAX);
		return NULL;
	}
	doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		fail(err, errlen, "not a JSON command: %s (at byte %d)", je.text, je.position);
		return NULL;
	}
	data = json_object_get(doc, "data");
	cmd = json_object_get(data, "cmd");
	if (json_is_string(cmd))
		clip(json_string_value(cmd), name);
	if (!json_is_object(doc) || json_object_size(doc) != 1 || !json_is_object(data)) {
		fail(err, errlen, "expected {\"data\": {\"cmd\": \"<command>\", …}}");
		data = NULL;
	} else if (!json_is_string(cmd) || !json_string_length(cmd)) {
		fail(err, errlen, "data.cmd: expected the command name as a string");
		data = NULL;
	} else {
		json_incref(data);
	}
	json_decref(doc);
	return data;
}

/* A manual key "mqtt_X"/"push_X" as "mqtt<link>_X"/"push<link>_X" when only
 * the numbered form is a setting. */
static const char *legacy_key(const char *key, int link, char *buf, size_t len)
{
	static const char *const prefixes[] = {"mqtt", "push"};

	if (settings_def(key))
		return key;
	for (size_t i = 0; i < N(prefixes); i++) {
		size_t n = strlen(prefixes[i]);

		if (strncmp(key, prefixes[i], n) || key[n] != '_')
			continue;
		snprintf(buf, len, "%s%d%s", prefixes[i], link, key + n);
		if (settings_def(buf))
			return buf;
	}
	return key;
}

json_t *cmd_settings_changes(json_t *data, int link, char *err, size_t errlen)
{
	json_t *src = data, *inner = json_object_get(data, "settings"), *out = json_object(), *v;
	char buf[96], c1[CLIP_LEN], c2[CLIP_LEN];
	const char *key;

	/* {"cmd": "set_settings", "settings": {…}}: the get_settings shape. */
	if (json_is_object(inner) && json_object_size(data) == 2)
		src = inner;
	json_object_foreach(src, key, v)
	{
		const char *k;

		if (src == data && !strcmp(key, "cmd"))
			continue;
		k = legacy_key(key, link, buf, sizeof(buf));
		if (json_object_get(out, k)) {
			fail(err, errlen, "%s: given twice (also as %s)", clip(k, c1),
			     clip(key, c2));
			json_decref(out);
			return NULL;
		}
		json_object_set(out, k, v);
	}
	if (!json_object_size(out)) {
		fail(err, errlen,
		     "no settings given: send {\"data\": {\"cmd\": \"set_settings\", "
		     "\"<key>\": <value>, …}}");
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- Modbus commands ---- */

#define REG_HELP                                                                                        \
	"an Iskra register number: 1…9999 coils, 10001… discrete inputs, 30001… input, 40001… " \
	"holding"
#define ADDR_HELP "modbus_address 0 (Left IR device) … 247, or serial_number"

/* modbus_address or serial_number: exactly one. */
static int mb_target(json_t *data, struct cmd_mb *mb, char *err, size_t len)
{
	json_t *sn = json_object_get(data, "serial_number");
	long addr;
	int r = arg_int(data, "modbus_address", 0, 247, &addr, err, len);

	if (r == -EINVAL)
		return r;
	if (!!sn == (r == 0))
		return fail(err, len, "give either %s", ADDR_HELP);
	mb->addr = -1;
	if (!sn) {
		mb->addr = (int)addr;
		return 0;
	}
	if (!json_is_string(sn) || !json_string_length(sn) ||
	    json_string_length(sn) >= sizeof(mb->serial) || !printable(json_string_value(sn)))
		return fail(err, len,
			    "serial_number: expected a device's serial number (1…%zu "
			    "printable characters)",
			    sizeof(mb->serial) - 1);
	snprintf(mb->serial, sizeof(mb->serial), "%s", json_string_value(sn));
	return 0;
}

static int mb_read(json_t *data, struct cmd_mb *mb, char *err, size_t len)
{
	long n = 1;

	if (arg_int(data, "no_regs", 1, BUS_BITS_MAX, &n, err, len) == -EINVAL)
		return -EINVAL;
	switch (devop_mb_read(&mb->t, mb->reg, n)) {
	case 0:
		return 0;
	case -ERANGE:
		return fail(
		    err, len,
		    "no_regs: %ld from register %ld: expected 1…%d registers (1…%d coils or "
		    "discrete inputs) within the register space",
		    n, mb->reg, BUS_REGS_MAX, BUS_BITS_MAX);
	default:
		return fail(err, len, "reg: %ld is not %s", mb->reg, REG_HELP);
	}
}

/* The space of a register that may be written; -EINVAL with err otherwise. */
static int mb_writable(long reg, bool coils, enum desc_space *space, char *err, size_t len)
{
	uint16_t pdu;

	if (regnum_from_long(reg, space, &pdu) < 0)
		return fail(err, len, "reg: %ld is not %s", reg, REG_HELP);
	if (*space == SPACE_HOLDING || (coils && *space == SPACE_COIL))
		return 0;
	return fail(err, len, "reg: %ld cannot be written (expected a holding register 4xxxx%s)",
		    reg, coils ? " or a coil 1…9999" : "");
}

static int mb_write_single(json_t *data, struct cmd_mb *mb, char *err, size_t len)
{
	enum desc_space space;

	if (mb_writable(mb->reg, true, &space, err, len) < 0 ||
	    arg_need_int(data, "value", 0, 65535, "0…65535; 0 or 1 for a coil", &mb->value, err,
			 len) < 0)
		return -EINVAL;
	if (space == SPACE_COIL && mb->value > 1)
		return fail(err, len, "value: a coil takes 0 or 1");
	return devop_mb_write(&mb->t, mb->reg, &mb->value, 1, false) < 0
		   ? fail(err, len, "reg: %ld is at the end of the register space", mb->reg)
		   : 0;
}

/* "values": bytes, two per register, high byte first (000 §4.8.9.3: [65, 66]
 * writes "AB" to one register). */
static int mb_write_multi(json_t *data, struct cmd_mb *mb, char *err, size_t len)
{
	json_t *vals = json_object_get(data, "values"), *v;
	long regs[BUS_REGS_MAX];
	enum desc_space space;
	size_t i, n = json_array_size(vals);

	if (mb_writable(mb->reg, false, &space, err, len) < 0)
		return -EINVAL;
	if (!json_is_array(vals) || n < 2 || n > 2 * 123 || n % 2)
		return fail(err, len,
			    "values: expected an even number (2…246) of bytes 0…255, two per "
			    "register, high byte first");
	json_array_foreach(vals, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
			return fail(err, len, "values[%zu]: expected a byte 0…255", i);
		if (i % 2)
			regs[i / 2] |= (long)json_integer_value(v);
		else
			regs[i / 2] = (long)json_integer_value(v) << 8;
	}
	if (devop_mb_write(&mb->t, mb->reg, regs, (unsigned)(n / 2), true) < 0)
		return fail(err, len, "values: %zu registers from %ld run past the register space",
			    n / 2, mb->reg);
	return 0;
}

int cmd_mb_parse(const char *cmd, json_t *data, struct cmd_mb *mb, char *err, size_t errlen)
{
	json_t *reg = json_object_get(data, "reg");

	if (mb_target(data, mb, err, errlen) < 0)
		return -EINVAL;
	if (!json_is_integer(reg))
		return fail(err, errlen, "reg: %s %s", reg ? "expected" : "missing:", REG_HELP);
	if (json_integer_value(reg) < 1 || json_integer_value(reg) > 465536)
		return fail(err, errlen, "reg: %" JSON_INTEGER_FORMAT " is not %s",
			    json_integer_value(reg), REG_HELP);
	mb->reg = (long)json_integer_value(reg);
	if (!strcmp(cmd, "modbus_read"))
		return mb_read(data, mb, err, errlen);
	if (!strcmp(cmd, "modbus_write_single"))
		return mb_write_single(data, mb, err, errlen);
	if (!strcmp(cmd, "modbus_write_multi"))
		return mb_write_multi(data, mb, err, errlen);
	return fail(err, errlen, "%s is not a Modbus command", cmd);
}

json_t *cmd_mb_reply(const char *cmd, const struct cmd_mb *mb)
{
	json_t *r = json_pack("{s:s, s:i, s:I}", "cmd", cmd, "modbus_address", mb->addr, "register",
			      (json_int_t)mb->reg);

	if (!r)
		return NULL;
	if (mb->serial[0])
		json_object_set_new(r, "serial_number", json_string(mb->serial));
	if (!strcmp(cmd, "modbus_write_single")) {
		json_object_set_new(r, "value", json_integer(mb->value));
	} else {
		json_object_set_new(r, "number_of_registers", json_integer(mb->t.count));
		if (!strcmp(cmd, "modbus_read"))
			json_object_set_new(r, "values", devop_mb_values(&mb->t));
	}
	return r;
}

/* The Modbus address of the polled device with serial number sn. */
static int addr_of_serial(struct app *a, const char *sn, int *addr, char *err, size_t len)
{
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *d = poll_dev(a->poll, s);

		if (d->cls == CLASS_NONE || !d->serial[0] || strcmp(d->serial, sn))
			continue;
		if (s == DEV_SLOT_RIGHT_IR)
			return fail(err, len,
				    "serial_number %s: the Right IR Bicom is not reachable by raw "
				    "Modbus (use the bicom command)",
				    sn);
		/* 0 reaches the Left IR head even if an RS485 device has its address. */
		*addr = s == DEV_SLOT_LEFT_IR ? 0 : d->addr;
		return 0;
	}
	return fail(err, len, "serial_number %s: no configured device has this serial number", sn);
}

static json_t *mb_done(struct cmd *c, struct mqtt_link *l, json_t *res)
{
	(void)l;
	json_decref(res);
	return cmd_mb_reply(c->name, &c->mb);
}

static int run_modbus(struct cmd *c, json_t *data)
{
	struct cmd_mb *mb = &c->mb;
	int r;

	if (cmd_mb_parse(c->name, data, mb, c->err, sizeof(c->err)) < 0)
		return -EINVAL;
	if (mb->serial[0] &&
	    addr_of_serial(c->app, mb->serial, &mb->addr, c->err, sizeof(c->err)) < 0)
		return -ENOENT;
	snprintf(c->what, sizeof(c->what), "modbus address %d", mb->addr);
	c->done = mb_done;
	r = poll_modbus(c->app->poll, mb->addr, &mb->t, op_done, c);
	return r < 0 ? start_failed(c, r) : CMD_ASYNC;
}

/* ---- the other commands ---- */

/* sgd is a service, not the board: it cannot reboot it, and a restart it
 * faked by exiting would be a clean exit that Restart=on-failure does not
 * restart. An honest error instead. */
static int run_reboot(struct cmd *c, json_t *data)
{
	(void)data;
	return fail(c->err, sizeof(c->err),
		    "reboot is not supported by sgd; restart the service with systemctl restart "
		    "sgd");
}

static int run_get_settings(struct cmd *c, json_t *data)
{
	(void)data;
	c->reply = json_pack("{s:o}", "settings", settings_to_json(c->app->settings, false));
	return c->reply ? 0 : -ENOMEM;
}

static int run_get_tariffs(struct cmd *c, json_t *data)
{
	(void)data;
	if (!c->app->hist)
		return fail(c->err, sizeof(c->err), "history is not available");
	c->reply = hist_tariffs_json(c->app->hist);
	return c->reply ? 0 : -ENOMEM;
}

/* {"cmd": "set_tariffs", "tariffs": {…the tariffs.json document…}}: validated
 * as a whole; an invalid calendar changes nothing. */
static int run_set_tariffs(struct cmd *c, json_t *data)
{
	json_t *cal = json_object_get(data, "tariffs");
	char *text;
	int r;

	if (!c->app->hist)
		return fail(c->err, sizeof(c->err), "history is not available");
	if (!json_is_object(cal))
		return fail(c->err, sizeof(c->err),
			    "tariffs: expected the tariffs.json object (docs/tariffs.md)");
	text = json_dumps(cal, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!text)
		return -ENOMEM;
	r = hist_tariffs_set(c->app->hist, text, strlen(text), c->err, sizeof(c->err));
	free(text);
	if (r < 0)
		return r;
	c->reply = hist_tariffs_json(c->app->hist);
	return c->reply ? 0 : -ENOMEM;
}

/* All or nothing, validated by the same settings_set_json as sgctl and REST. */
static int run_set_settings(struct cmd *c, json_t *data)
{
	json_t *set = cmd_settings_changes(data, c->link, c->err, sizeof(c->err)), *changed, *v;
	const char *key;
	int r;

	if (!set)
		return -EINVAL;
	changed = json_array();
	json_object_foreach(set, key, v)
	{
		json_array_append_new(changed, json_string(key));
	}
	r = settings_set_json(c->app->settings, set, c->err, sizeof(c->err));
	json_decref(set);
	if (r < 0) {
		json_decref(changed);
		return r;
	}
	c->reply = json_pack("{s:s, s:o}", "result", "ok", "changed", changed);
	return 0;
}

/* Slot of a device by Modbus address as the manual means it: 0 the Left IR
 * device, else an RS485 slot with that address, else the Left IR device if
 * it has it (the poller routes raw Modbus the same way). */
static int slot_of_addr(struct app *a, long addr)
{
	const struct dev *ir = poll_dev(a->poll, DEV_SLOT_LEFT_IR);

	if (addr == 0)
		return DEV_SLOT_LEFT_IR;
	for (int n = 1; n <= 16; n++) {
		const struct dev *d = poll_dev(a->poll, DEV_SLOT_RS485(n));

		if (d->cls != CLASS_NONE && d->addr == addr)
			return DEV_SLOT_RS485(n);
	}
	return ir->cls != CLASS_NONE && ir->addr == addr ? DEV_SLOT_LEFT_IR : -1;
}

/* measurements/counters: "addr" (Modbus address) or "index" (HA index). */
static const struct dev *dev_arg(struct cmd *c, json_t *data)
{
	long addr, idx;
	int ra = arg_int(data, "addr", 0, 247, &addr, c->err, sizeof(c->err));
	int ri =
	    ra == -EINVAL ? -EINVAL : arg_int(data, "index", 0, 16, &idx, c->err, sizeof(c->err));
	int slot;

	if (ra == -EINVAL || ri == -EINVAL)
		return NULL;
	if ((ra == 0) == (ri == 0)) {
		fail(c->err, sizeof(c->err),
		     "give either addr (Modbus address, 0 = Left IR device) or index (0 = Left IR, "
		     "1…16 = RS485 1…16)");
		return NULL;
	}
	slot = ri == 0 ? dev_slot_of_index((int)idx) : slot_of_addr(c->app, addr);
	if (slot < 0)
		fail(c->err, sizeof(c->err), "no device configured at Modbus address %ld", addr);
	return slot < 0 ? NULL : poll_dev(c->app->poll, slot);
}

static int run_reading(struct cmd *c, json_t *data, bool counters)
{
	const struct dev *d = dev_arg(c, data);

	if (!d)
		return -EINVAL;
	if (devop_unreadable(d, c->err, sizeof(c->err)))
		return -EAGAIN;
	c->reply = reading_json(c->app->hist, c->app->settings, d, counters);
	return c->reply ? 0 : -ENOMEM;
}

static int run_measurements(struct cmd *c, json_t *data)
{
	return run_reading(c, data, false);
}

static int run_counters(struct cmd *c, json_t *data)
{
	return run_reading(c, data, true);
}

int cmd_bicom_slot(struct app *a, long addr, enum bicom_op op, char *err, size_t errlen)
{
	int slot = poll_bicom_slot(a->poll, (int)addr);

	if (slot < 0) {
		fail(err, errlen, "no Bicom configured at address %ld", addr);
		return -1;
	}
	if (op != BICOM_STATE && slot == DEV_SLOT_RIGHT_IR &&
	    settings_int(a->settings, "ir_ext_rel_mode") == 2) {
		fail(err, errlen,
		     "Right IR Bicom is controlled by the IR counter, not by the gateway");
		return -1;
	}
	return slot;
}

/* The state read back, also retained on base/bicom/<addr>/state. */
static json_t *bicom_done(struct cmd *c, struct mqtt_link *l, json_t *res)
{
	const char *st = json_string_value(json_object_get(res, "state"));

	hadisc_publish_state(l, c->addr, st && !strcmp(st, "on"));
	return res;
}

static int run_bicom(struct cmd *c, json_t *data)
{
	/* enum bicom_op order; "status" is the manual's (000 §4.8.7) name of "state". */
	static const char *const ops[] = {"state", "on", "off", "toggle", "status"};
	json_t *val = json_object_get(data, "val");
	long addr;
	int op = -1, slot, r;

	if (arg_need_int(data, "addr", 0, 247, "0 = Right IR Bicom, else its RS485 address", &addr,
			 c->err, sizeof(c->err)) < 0)
		return -EINVAL;
	for (size_t i = 0; json_is_string(val) && i < N(ops); i++)
		if (!strcmp(json_string_value(val), ops[i]))
			op = i == 4 ? BICOM_STATE : (int)i;
	if (op < 0)
		return fail(c->err, sizeof(c->err),
			    "val: expected \"on\", \"off\", \"toggle\" or \"state\"");
	slot = cmd_bicom_slot(c->app, addr, (enum bicom_op)op, c->err, sizeof(c->err));
	if (slot < 0)
		return -ENOENT;
	c->addr = (int)addr;
	snprintf(c->what, sizeof(c->what), "Bicom %ld", addr);
	c->done = bicom_done;
	r = poll_bicom(c->app->poll, slot, (enum bicom_op)op, op_done, c);
	return r < 0 ? start_failed(c, r) : CMD_ASYNC;
}

/* Line options of detect_485_devices; 0 = the configured RS485 line. */
struct scan_opts {
	int baud, stop;
	char parity;
	long first, last;
};

/* baud_rate as a rate (19200) or an Iskra code (0…7), number or string. */
static int scan_baud(json_t *v, int *baud, char *err, size_t len)
{
	char txt[24];

	if (json_is_integer(v))
		snprintf(txt, sizeof(txt), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_string(v) && json_string_length(v) < sizeof(txt))
		snprintf(txt, sizeof(txt), "%s", json_string_value(v));
	else
		txt[0] = '\0';
	if (bus_baud_parse(txt, baud) < 0)
		return fail(err, len, "baud_rate: expected a rate 1200…115200 or a code 0…7");
	return 0;
}

static int scan_opts(json_t *data, struct scan_opts *o, char *err, size_t len)
{
	json_t *baud = json_object_get(data, "baud_rate"), *par = json_object_get(data, "parity");
	const char *p = json_string_value(par);
	long stop = 0;

	if (baud && scan_baud(baud, &o->baud, err, len) < 0)
		return -EINVAL;
	if (arg_int(data, "stop_bits", 1, 2, &stop, err, len) == -EINVAL ||
	    arg_int(data, "from", 1, 247, &o->first, err, len) == -EINVAL ||
	    arg_int(data, "to", 1, 247, &o->last, err, len) == -EINVAL)
		return -EINVAL;
	o->stop = (int)stop;
	if (par) {
		o->parity = !p			 ? 0
			    : !strcmp(p, "none") ? 'N'
			    : !strcmp(p, "odd")	 ? 'O'
			    : !strcmp(p, "even") ? 'E'
						 : 0;
		if (!o->parity)
			return fail(err, len, "parity: expected \"none\", \"odd\" or \"even\"");
	}
	if (o->first > o->last)
		return fail(err, len, "from %ld is after to %ld", o->first, o->last);
	return 0;
}

static json_t *scan_done(struct cmd *c, struct mqtt_link *l, json_t *res)
{
	(void)c, (void)l;
	return res; /* {"devices": […]} */
}

static int run_detect(struct cmd *c, json_t *data)
{
	struct scan_opts o = {.first = 1, .last = 247};
	int r;

	if (scan_opts(data, &o, c->err, sizeof(c->err)) < 0)
		return -EINVAL;
	snprintf(c->what, sizeof(c->what), "RS485 scan");
	if (poll_scanning(c->app->poll))
		return fail(c->err, sizeof(c->err), "a scan is already running");
	c->done = scan_done;
	r = poll_scan(c->app->poll, o.baud, o.parity, o.stop, (int)o.first, (int)o.last, op_done,
		      c);
	if (r == -ENODEV)
		return fail(c->err, sizeof(c->err), "this board has no RS485 port configured");
	return r < 0 ? start_failed(c, r) : CMD_ASYNC;
}

/* A file name of the file-manager folder (files.h), as a setting names it. */
#define FILE_HELP "a plain file name ([A-Za-z0-9._-], not starting with '.', at most 63 characters)"

static bool cert_name_ok(const char *name)
{
	static const char *const ext[] = {".pem", ".crt", ".key"};
	size_t n = strlen(name);

	for (size_t i = 0; files_name_ok(name) && i < N(ext); i++)
		if (n > 4 && !strcmp(name + n - 4, ext[i]))
			return true;
	return false;
}

/* At least one complete PEM block: "-----BEGIN X-----" and, after it, the
 * matching "-----END X-----" (a cut-off paste is refused, not stored). */
static bool pem_ok(const char *text)
{
	const char *b = strstr(text, "-----BEGIN "), *label, *dash;
	char end[96];
	int n;

	if (!b)
		return false;
	label = b + 11;
	dash = strstr(label, "-----");
	n = dash ? (int)(dash - label) : 0;
	if (n < 1 || n > 64 || memchr(label, '\n', (size_t)n))
		return false;
	snprintf(end, sizeof(end), "-----END %.*s-----", n, label);
	return strstr(dash + 5, end) != NULL;
}

/* Certificates and keys go to the file-manager folder only, by plain name. */
static int run_write_cert(struct cmd *c, json_t *data)
{
	const char *name, *cert;
	char clipped[CLIP_LEN];
	int r;

	if (arg_need_str(data, "name", FILES_NAME_MAX - 1,
			 FILE_HELP " ending in .pem, .crt or .key", &name, c->err,
			 sizeof(c->err)) < 0 ||
	    arg_need_str(data, "cert", CMD_CERT_MAX, "PEM text of at most 16384 bytes", &cert,
			 c->err, sizeof(c->err)) < 0)
		return -EINVAL;
	if (!cert_name_ok(name))
		return fail(c->err, sizeof(c->err),
			    "name '%s': expected %s ending in .pem, .crt or .key",
			    clip(name, clipped), FILE_HELP);
	if (!pem_ok(cert))
		return fail(c->err, sizeof(c->err),
			    "cert: expected PEM text (-----BEGIN <label>----- … -----END "
			    "<label>-----)");
	r = files_write(c->app->conf.state_dir, name, cert, strlen(cert));
	if (r < 0)
		return fail(c->err, sizeof(c->err), "cannot store %s: %s", name, strerror(-r));
	log_notice("mqtt%d: %s written to the file folder", c->link, name);
	c->reply = json_pack("{s:s, s:s}", "result", "ok", "name", name);
	return c->reply ? 0 : -ENOMEM;
}

static bool file_present(const char *state_dir, const char *name)
{
	char path[CONF_PATH_MAX + FILES_NAME_MAX + 16];
	struct stat st;

	return files_path(state_dir, name, path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode);
}

/* Arguments are checked so a client learns about its mistakes; the upgrade
 * itself does not exist yet and says so. */
static int run_upgrade(struct cmd *c, json_t *data)
{
	const char *uri, *cert;
	char clipped[CLIP_LEN];

	if (arg_need_str(data, "uri", URI_MAX, "an https:// URI of the image", &uri, c->err,
			 sizeof(c->err)) < 0 ||
	    arg_need_str(data, "cert", FILES_NAME_MAX - 1, FILE_HELP, &cert, c->err,
			 sizeof(c->err)) < 0)
		return -EINVAL;
	if (strncmp(uri, "https://", 8) || !uri[8] || !printable(uri))
		return fail(c->err, sizeof(c->err), "uri: expected an https:// URI of the image");
	if (!files_name_ok(cert))
		return fail(c->err, sizeof(c->err), "cert: expected %s", FILE_HELP);
	if (!file_present(c->app->conf.state_dir, cert))
		return fail(c->err, sizeof(c->err), "cert: %s is not in the file folder",
			    clip(cert, clipped));
	return fail(c->err, sizeof(c->err), "upgrade is not built yet");
}

/* ---- dispatch ---- */

#define M(...) ((const char *const[]){"cmd", __VA_ARGS__, NULL})
static const char *const no_args[] = {"cmd", NULL};

static const struct cmd_def defs[] = {
    {"reboot", no_args, run_reboot},
    {"get_settings", no_args, run_get_settings},
    {"set_settings", NULL, run_set_settings},
    {"get_tariffs", no_args, run_get_tariffs},
    {"set_tariffs", M("tariffs"), run_set_tariffs},
    {"measurements", M("addr", "index"), run_measurements},
    {"counters", M("addr", "index"), run_counters},
    {"bicom", M("addr", "val"), run_bicom},
    {"detect_485_devices", M("baud_rate", "stop_bits", "parity", "from", "to"), run_detect},
    {"modbus_read", M("modbus_address", "serial_number", "reg", "no_regs"), run_modbus},
    {"modbus_write_single", M("modbus_address", "serial_number", "reg", "value"), run_modbus},
    {"modbus_write_multi", M("modbus_address", "serial_number", "reg", "values"), run_modbus},
    {"upgrade_app", M("uri", "cert"), run_upgrade},
    {"write_cert", M("name", "cert"), run_write_cert},
};

static const struct cmd_def *find_def(const char *name, char *err, size_t len)
{
	char list[256] = "";

	for (size_t i = 0; i < N(defs); i++) {
		if (!strcmp(name, defs[i].name))
			return &defs[i];
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 defs[i].name);
	}
	fail(err, len, "unknown command '%s' (%s)", name, list);
	return NULL;
}

/* A misspelt optional member must not be silently ignored. */
static int check_members(const struct cmd_def *def, json_t *data, char *err, size_t len)
{
	char list[160] = "", clipped[CLIP_LEN];
	const char *key;
	json_t *v;

	json_object_foreach(data, key, v)
	{
		size_t i = 0;

		while (def->members && def->members[i] && strcmp(key, def->members[i]))
			i++;
		if (!def->members || def->members[i])
			continue;
		for (i = 1; def->members[i]; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i > 1 ? ", " : "", def->members[i]);
		return fail(err, len, "unknown member '%s' (%s takes %s)", clip(key, clipped),
			    def->name, list[0] ? list : "no arguments");
	}
	return 0;
}

void mqtt_cmd_run(struct mqtt *m, struct mqtt_link *l, const void *payload, size_t len)
{
	char name[CMD_NAME_MAX], err[CMD_ERR_MAX];
	json_t *data = cmd_parse(payload, len, name, err, sizeof(err));
	const struct cmd_def *def = data ? find_def(name, err, sizeof(err)) : NULL;
	struct cmd *c;
	int r;

	if (!def || check_members(def, data, err, sizeof(err)) < 0) {
		reply_error(l, name[0] ? name : NULL, err);
		json_decref(data);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		reply_error(l, name, "out of memory");
		json_decref(data);
		return;
	}
	*c = (struct cmd){.app = m->app, .link = link_number(l)};
	snprintf(c->name, sizeof(c->name), "%s", def->name);
	snprintf(c->what, sizeof(c->what), "%s", def->name);
	log_debug("mqtt%d: command %s", c->link, c->name);
	r = def->run(c, data);
	json_decref(data);
	if (r != CMD_ASYNC)
		finish(c, l, r); /* else c belongs to the operation (maybe freed already) */
}

json_t *mqtt_hello_json(struct app *a)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "hello", "hello world", "serial_number",
			 a->conf.serial_number, "model_type", a->conf.model_type, "sw_ver",
			 SGD_VERSION, "hw_ver", a->conf.hw_version);
}
