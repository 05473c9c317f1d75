/* Commands about the running gateway: the status document sgctl shows,
 * the event log, and the simulated clock of the tests. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_int.h"
#include "sg/busjson.h"
#include "sg/clock.h"
#include "sg/desc.h"
#include "sg/dev.h"
#include "sg/localtime.h"
#include "sg/poll.h"
#include "sg/registry.h"
#include "sg/settings.h"
#include "sg/store.h"
#include "sg/version.h"

/* What GET /api says under settings_file and descriptions, flat. */
static void add_file_problems(const struct ops_env *e, json_t *d)
{
	const char *err = settings_load_error(e->settings);
	json_object_set_new(d, "settings_source",
			    json_string(settings_origin_name(settings_origin(e->settings))));
	json_object_set_new(d, "settings_error", err[0] ? json_string(err) : json_null());
	json_object_set_new(d, "descriptions_loaded", json_integer(e->descs->n));
	json_object_set_new(d, "descriptions_broken", json_integer(e->descs->nbroken));
	json_object_set_new(d, "description_errors", desc_errors_json(e->descs));
}

/* The gateway's identity, uptime, buses and device health: sgctl status. */
static void run_status(struct ops_call *c, json_t *args)
{
	static const char *const names[CONF_BUS_COUNT] = {"Left IR", "Right IR", "RS485"};
	const struct ops_env *e = ops_call_env(c);
	struct sg_tz z = tz_from_settings(e->settings);
	json_t *buses = json_array(), *d;
	int enabled = 0, ok = 0;
	char crc[16], now[TZ_TEXT_LEN];

	(void)args;
	for (int i = 0; i < CONF_BUS_COUNT; i++)
		json_array_append_new(buses,
				      busjson_status(names[i], e->buses ? e->buses[i] : NULL));
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *dv = reg_dev(e->reg, s);

		enabled += dv->health != DEV_DISABLED;
		ok += dv->health == DEV_OK;
	}
	snprintf(crc, sizeof(crc), "0x%08X", settings_crc(e->settings));
	tz_text(&z, clock_wall(), now, sizeof(now));
	d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:i, s:i, s:b}",
		      "model_type", e->conf->model_type, "serial_number", e->conf->serial_number,
		      "description", settings_str(e->settings, "description"), "location",
		      settings_str(e->settings, "location"), "sw_ver", SGD_VERSION, "hw_ver",
		      e->conf->hw_version, "uptime_s",
		      (json_int_t)((clock_mono_ms() - e->start_mono_ms) / 1000), "local_time", now,
		      "settings_crc", crc, "buses", buses, "devices_enabled", enabled,
		      "devices_responding", ok, "rs485_scanning",
		      reg_bus_busy(e->reg, CONF_BUS_RS485));
	if (!d) {
		ops_fail(c, OPS_INTERNAL, "out of memory");
		return;
	}
	add_file_problems(e, d);
	if (e->loop)
		json_object_set_new(d, "loop", loop_stats_json(e->loop));
	ops_reply(c, d);
}

/* read_at_ms / age_ms: of the values shown (counters have their own). */
static json_t *ctl_header(const struct dev *d, bool counters)
{
	int64_t ms = counters ? d->ctr_ms : d->meas_ms;
	int64_t age = ms ? clock_wall_ms() - ms : -1;

	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:o}", "index", dev_ha_index(d->slot),
			 "interface", d->ifname, "model", d->model, "serial", d->serial, "status",
			 dev_health_name(d->health), "age_ms", (json_int_t)age, "read_at_ms",
			 ms ? json_integer((json_int_t)ms) : json_null());
}

enum ops_status ops_ctl_reading(const struct dev *d, bool counters, json_t **doc, char *msg,
				size_t len)
{
	*doc = NULL;
	if (d->health == DEV_DISABLED) {
		snprintf(msg, len, "%s: no device configured", d->ifname);
		return OPS_NOT_FOUND;
	}
	if (!d->d) {
		snprintf(msg, len, "%s: device not identified yet (%s%s%s)", d->ifname,
			 dev_health_name(d->health), d->last_error[0] ? ": " : "", d->last_error);
		return OPS_UNAVAILABLE;
	}
	*doc = ctl_header(d, counters);
	if (*doc)
		json_object_set_new(*doc, counters ? "counters" : "measurements",
				    counters ? dev_counters_json(d) : dev_measurements_json(d));
	snprintf(msg, len, "out of memory");
	return *doc ? OPS_OK : OPS_INTERNAL;
}

/* {"n": 1…10000 (50)}: the newest events first. */
static void run_events(struct ops_call *c, json_t *args)
{
	struct store *st = ops_call_env(c)->store;
	json_t *n = json_object_get(args, "n");
	json_t *ev = st ? store_events_json(st, n ? (int)json_integer_value(n) : 50) : json_array();

	if (!ev)
		ops_fail(c, OPS_INTERNAL, "cannot read the event log");
	else
		ops_reply_doc(c, json_pack("{s:o}", "events", ev));
}

static bool hooks_enabled(void)
{
	const char *hooks = getenv("SGD_TEST_HOOKS");

	return hooks && !strcmp(hooks, "1");
}

/* {"mode": "simulate" (default), "wall_ms", "rate"}: the wall clock jumps to
 * wall_ms and runs rate times as fast. {"mode": "lockstep", "wall_ms",
 * "step_ms", "until_ms"}: it moves step_ms per counter poll (0: stands) up to
 * until_ms, mirrored to $SGD_TEST_CLOCK_FILE when set (for sgsim).
 * {"mode": "hold"}: it stands at the current instant. Tests only
 * (SGD_TEST_HOOKS=1 in sgd's environment). */
static void run_clock(struct ops_call *c, json_t *args)
{
	const char *mode = json_string_value(json_object_get(args, "mode"));
	const char *mirror = getenv("SGD_TEST_CLOCK_FILE");
	json_t *wall = json_object_get(args, "wall_ms");
	int64_t ms = (int64_t)json_integer_value(wall);
	int64_t step = (int64_t)json_integer_value(json_object_get(args, "step_ms"));
	int64_t until = (int64_t)json_integer_value(json_object_get(args, "until_ms"));
	json_t *rate = json_object_get(args, "rate");
	int r;

	if (!hooks_enabled()) {
		ops_fail(c, OPS_FORBIDDEN,
			 "clock: test hook, disabled (sgd runs without SGD_TEST_HOOKS=1)");
		return;
	}
	if (!mode)
		mode = "simulate";
	if (!strcmp(mode, "simulate") && wall && !json_object_get(args, "step_ms") &&
	    !json_object_get(args, "until_ms")) {
		clock_simulate(ms, rate ? (int)json_integer_value(rate) : 1);
		ops_reply_doc(c, json_pack("{s:I, s:i}", "wall_ms", (json_int_t)clock_wall_ms(),
					   "rate", rate ? (int)json_integer_value(rate) : 1));
		return;
	}
	if (!strcmp(mode, "hold") && !wall && !rate) {
		ms = clock_wall_ms();
		step = until = 0;
	} else if (strcmp(mode, "lockstep") || !wall || rate) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "clock: expected {wall_ms, rate} | {mode: lockstep, wall_ms, step_ms, "
			 "until_ms} | {mode: hold}");
		return;
	}
	r = clock_lockstep(ms, step, until, mirror && *mirror ? mirror : NULL);
	if (r < 0) {
		ops_fail(c, OPS_INTERNAL, "clock: %s: %s", mirror, strerror(-r));
		return;
	}
	ops_reply_doc(c, json_pack("{s:I, s:I}", "wall_ms", (json_int_t)clock_wall_ms(), "step_ms",
				   (json_int_t)step));
}

static const struct ops_arg events_args[] = {
    {"n", OPS_T_INT, 0, 1, 10000, "a count of events 1…10000"}, {NULL}};
static const struct ops_arg clock_args[] = {
    {"mode", OPS_T_STR, 0, 1, 16, "simulate, lockstep or hold"},
    {"wall_ms", OPS_T_INT, 0, 1, LONG_MAX, "a wall time in ms since 1970, > 0"},
    {"rate", OPS_T_INT, 0, 1, 10000, "a rate 1…10000"},
    {"step_ms", OPS_T_INT, 0, 0, 86400000, "a step 0…86400000 ms"},
    {"until_ms", OPS_T_INT, 0, 0, LONG_MAX, "a wall time in ms, >= 0"},
    {NULL}};

const struct ops_def ops_gw_defs[] = {
    {"status", NULL, 0, run_status},
    {"events", events_args, 0, run_events},
    {"clock", clock_args, 0, run_clock},
    {NULL},
};
