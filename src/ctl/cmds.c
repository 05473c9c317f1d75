/* sgctl commands, served on the main thread. Arguments are validated here
 * (the CLI also checks them, but the socket is an interface of its own). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "sg/busjson.h"
#include "sg/clock.h"
#include "sg/ctl.h"
#include "sg/ctlsrv.h"
#include "sg/localtime.h"
#include "sg/regnum.h"
#include "sg/status.h"
#include "sg/version.h"

struct cmd {
	const char *name;
	int min_args, max_args; /* after the command name */
	void (*run)(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
	const char *usage;
};

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static json_t *bus_json(struct app *a, int i)
{
	static const char *const names[] = {"Left IR", "Right IR", "RS485"};

	return busjson_status(names[i], a->buses[i]);
}

/* Local time now in the gateway's zone, as REST shows it. */
static void local_time(const struct app *a, char *buf, size_t len)
{
	struct sg_tz z = tz_from_settings(a->settings);

	tz_text(&z, clock_wall(), buf, len);
}

/* What GET /api says under settings_file and descriptions, flat for sgctl. */
static void add_file_problems(struct app *a, json_t *d)
{
	const char *err = settings_load_error(a->settings);

	if (!d)
		return;
	json_object_set_new(d, "settings_source",
			    json_string(settings_origin_name(settings_origin(a->settings))));
	json_object_set_new(d, "settings_error", err[0] ? json_string(err) : json_null());
	json_object_set_new(d, "descriptions_loaded", json_integer(a->descs.n));
	json_object_set_new(d, "descriptions_broken", json_integer(a->descs.nbroken));
	json_object_set_new(d, "description_errors", status_desc_errors_json(&a->descs));
}

static void cmd_status(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	json_t *buses = json_array(), *d;
	int enabled = 0, ok = 0;
	char crc[16], now[TZ_TEXT_LEN];

	(void)argc, (void)argv;
	for (int i = 0; i < CONF_BUS_COUNT; i++)
		json_array_append_new(buses, bus_json(a, i));
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *dv = poll_dev(a->poll, s);

		enabled += dv->health != DEV_DISABLED;
		ok += dv->health == DEV_OK;
	}
	snprintf(crc, sizeof(crc), "0x%08X", settings_crc(a->settings));
	local_time(a, now, sizeof(now));
	d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:i, s:i, s:b}",
		      "model_type", a->conf.model_type, "serial_number", a->conf.serial_number,
		      "description", settings_str(a->settings, "description"), "location",
		      settings_str(a->settings, "location"), "sw_ver", SGD_VERSION, "hw_ver",
		      a->conf.hw_version, "uptime_s",
		      (json_int_t)((clock_mono_ms() - a->start_mono_ms) / 1000), "local_time", now,
		      "settings_crc", crc, "buses", buses, "devices_enabled", enabled,
		      "devices_responding", ok, "rs485_scanning", poll_scanning(a->poll));
	add_file_problems(a, d);
	ctl_reply_ok(c, d);
}

static void cmd_devices(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	json_t *list = json_array();

	(void)argc, (void)argv;
	for (int s = 0; s < DEV_SLOTS; s++)
		json_array_append_new(list, dev_device_json(poll_dev(a->poll, s)));
	ctl_reply_ok(c, json_pack("{s:o}", "devices", list));
}

/* A device by HA index (0 Left IR, 1…16 RS485), as /api/measurement/{i}. */
static const struct dev *dev_arg(struct app *a, struct ctl_client *c, const char *s)
{
	long i;

	if (parse_long(s, 0, 16, &i) < 0) {
		ctl_reply_err(c, "device index '%s': expected 0 (Left IR) … 16 (RS485 16)", s);
		return NULL;
	}
	return poll_dev(a->poll, dev_slot_of_index((int)i));
}

/* read_at_ms / age_ms: of the values shown (counters have their own). */
static json_t *dev_header(const struct dev *d, bool counters)
{
	int64_t ms = counters ? d->ctr_ms : d->meas_ms;
	int64_t age = ms ? clock_wall_ms() - ms : -1;

	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:o}", "index", dev_ha_index(d->slot),
			 "interface", d->ifname, "model", d->model, "serial", d->serial, "status",
			 dev_health_name(d->health), "age_ms", (json_int_t)age, "read_at_ms",
			 ms ? json_integer((json_int_t)ms) : json_null());
}

static bool dev_readable(struct ctl_client *c, const struct dev *d)
{
	if (d->health == DEV_DISABLED) {
		ctl_reply_err(c, "%s: no device configured", d->ifname);
		return false;
	}
	if (!d->d) {
		ctl_reply_err(c, "%s: device not identified yet (%s%s%s)", d->ifname,
			      dev_health_name(d->health), d->last_error[0] ? ": " : "",
			      d->last_error);
		return false;
	}
	return true;
}

/* measurements/counters: a readable device, its header and one rendering. */
static void reply_dev(struct app *a, struct ctl_client *c, const char *index, const char *key,
		      json_t *(*render)(const struct dev *))
{
	const struct dev *d = dev_arg(a, c, index);
	json_t *h;

	if (!d || !dev_readable(c, d))
		return;
	h = dev_header(d, !strcmp(key, "counters"));
	json_object_set_new(h, key, render(d));
	ctl_reply_ok(c, h);
}

static void cmd_measurements(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	(void)argc;
	reply_dev(a, c, argv[1], "measurements", dev_measurements_json);
}

static void cmd_counters(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	(void)argc;
	reply_dev(a, c, argv[1], "counters", dev_counters_json);
}

void ctl_op_done(int err, const char *msg, json_t *res, void *arg)
{
	struct ctl_client *c = arg;

	if (err)
		ctl_reply_err(c, "%s", msg ? msg : strerror(-err));
	else
		ctl_reply_ok(c, res);
}

static void cmd_bicom(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	static const char *const ops[] = {"state", "on", "off", "toggle"};
	long addr;
	int op = -1, slot, r;

	(void)argc;
	for (int i = 0; i < 4; i++)
		if (!strcmp(argv[2], ops[i]))
			op = i;
	if (parse_long(argv[1], 0, 247, &addr) < 0 || op < 0) {
		ctl_reply_err(c, "usage: bicom ADDR on|off|toggle|state (ADDR 0 = Right IR Bicom)");
		return;
	}
	slot = poll_bicom_slot(a->poll, (int)addr);
	if (slot < 0) {
		ctl_reply_err(c, "no Bicom configured at address %ld", addr);
		return;
	}
	if (op != BICOM_STATE && slot == DEV_SLOT_RIGHT_IR &&
	    settings_int(a->settings, "ir_ext_rel_mode") == 2) {
		ctl_reply_err(c,
			      "Right IR Bicom is controlled by the IR counter, not by the gateway");
		return;
	}
	r = poll_bicom(a->poll, slot, (enum bicom_op)op, ctl_op_done, c);
	if (r < 0)
		ctl_reply_err(c, "bicom %ld: %s", addr, strerror(-r));
}

static void cmd_settings(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	json_t *all = settings_to_json(a->settings, false), *v;

	if (argc == 1) {
		ctl_reply_ok(c, json_pack("{s:o}", "settings", all));
		return;
	}
	v = json_object_get(all, argv[1]);
	if (!v)
		ctl_reply_err(c,
			      settings_def(argv[1]) ? "%s is write-only" : "unknown setting '%s'",
			      argv[1]);
	else
		ctl_reply_ok(c, json_pack("{s:O}", argv[1], v));
	json_decref(all);
}

static void cmd_set(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	char err[256];
	json_t *changed = json_array();
	int r;

	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (eq)
			json_array_append_new(changed,
					      json_stringn(argv[i], (size_t)(eq - argv[i])));
	}
	r = settings_set_kv(a->settings, (char *const *)(argv + 1), argc - 1, err, sizeof(err));
	if (r < 0) {
		json_decref(changed);
		ctl_reply_err(c, "%s", err);
		return;
	}
	ctl_reply_ok(c, json_pack("{s:o}", "changed", changed));
}

static void cmd_factory_reset(struct app *a, struct ctl_client *c, int argc,
			      const char *const *argv)
{
	int r;

	if (argc < 2 || strcmp(argv[1], "--yes")) {
		ctl_reply_err(c, "factory-reset erases every setting: repeat with --yes");
		return;
	}
	r = settings_factory_reset(a->settings);
	if (r < 0) {
		ctl_reply_err(c, "factory reset failed: %s", strerror(-r));
		return;
	}
	ctl_reply_ok(c, json_pack("{s:s}", "result", "settings restored to defaults"));
}

static void cmd_events(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	long n = 50;
	json_t *ev;

	if (argc > 1 && parse_long(argv[1], 1, 10000, &n) < 0) {
		ctl_reply_err(c, "events N: N must be 1…10000");
		return;
	}
	ev = a->store ? store_events_json(a->store, (int)n) : json_array();
	if (!ev)
		ctl_reply_err(c, "cannot read the event log");
	else
		ctl_reply_ok(c, json_pack("{s:o}", "events", ev));
}

static const struct cmd cmds[] = {
    {"status", 0, 0, cmd_status, "status"},
    {"devices", 0, 0, cmd_devices, "devices"},
    {"measurements", 1, 1, cmd_measurements, "measurements N"},
    {"counters", 1, 1, cmd_counters, "counters N"},
    {"bicom", 2, 2, cmd_bicom, "bicom ADDR on|off|toggle|state"},
    {"settings", 0, 1, cmd_settings, "settings [KEY]"},
    {"set", 1, CTL_ARGS_MAX - 1, cmd_set, "set KEY=VALUE…"},
    {"scan", 0, 10, ctl_cmd_scan,
     "scan [--baud RATE|CODE] [--parity none|odd|even] [--stop-bits 1|2] [--from A] [--to B]"},
    {"set-parameters", 2, 6, ctl_cmd_set_parameters,
     "set-parameters ADDR [address=N] [baud=CODE] [parity=0|1|2] [stop_bits=0|1]"},
    {"modbus", 3, 126, ctl_cmd_modbus,
     "modbus read ADDR REG [COUNT] | modbus write ADDR REG VALUE…"},
    {"factory-reset", 0, 1, cmd_factory_reset, "factory-reset --yes"},
    {"events", 0, 1, cmd_events, "events [N]"},
    {"load-profile", 1, 6, ctl_cmd_load_profile,
     "load-profile N [--from DATE|today|yesterday|last24h] [--to DATE] [--csv]"},
    {"recorder", 1, 10, ctl_cmd_recorder,
     "recorder list | show N [--view daily|monthly|yearly] [--from] [--to] [--csv] | clear N"},
    {"tariffs", 1, 2, ctl_cmd_tariffs, "tariffs show | set FILE"},
    {"calculate", 1, 6, ctl_cmd_calculate,
     "calculate N [--from DATE|today|yesterday|last24h] [--to DATE] [--csv]"},
    {"clock", 1, 4, ctl_cmd_clock,
     "clock WALL_MS [RATE] | clock lockstep WALL_MS STEP_MS [UNTIL_MS] | clock hold"},
};

void ctl_dispatch(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd *m = &cmds[i];

		if (strcmp(argv[0], m->name))
			continue;
		if (argc - 1 < m->min_args || argc - 1 > m->max_args) {
			ctl_reply_err(c, "usage: %s", m->usage);
			return;
		}
		m->run(a, c, argc, argv);
		return;
	}
	ctl_reply_err(c, "unknown command '%s'", argv[0]);
}
