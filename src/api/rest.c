/* The REST route table (CONTRACTS §1) and the handlers that only read: status,
 * settings, devices, measurements, counters, Bicoms, the legacy /get_command,
 * and honest 501s for features not built yet. Handlers that change things or
 * need the bus are in rest_ops.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "rest_int.h"
#include "sg/clock.h"
#include "sg/devop.h"
#include "sg/legacy.h"
#include "sg/localtime.h"
#include "sg/reading.h"
#include "sg/registry.h"
#include "sg/settings.h"
#include "sg/status.h"

#define INDEX_HELP "0 = Left IR, 1…16 = RS485 1…16"

/* 200 with doc; a document that could not be built (no memory) is a 500. */
static void reply_doc(struct http_req *r, json_t *doc)
{
	if (doc)
		http_reply_json(r, 200, doc);
	else
		http_reply_error(r, 500, "out of memory");
}

const char *rest_clip(const char *s, char buf[REST_CLIP_LEN])
{
	return ops_clip(s, buf, REST_CLIP_LEN);
}

/* Local time now in the gateway's zone (settings timezone, dst_auto). */
static void now_text(struct http_req *r, char *buf, size_t len)
{
	struct sg_tz z = tz_from_settings(http_req_env(r)->settings);

	tz_text(&z, clock_wall(), buf, len);
}

/* ---- devices by HA index ---- */

/* The slot's device for an index text; NULL after a 400/404. */
static const struct dev *index_dev(struct http_req *r, const char *index)
{
	char clip[REST_CLIP_LEN];
	long i;
	int rc = legacy_parse_index(index, 16, &i);

	if (rc == -EINVAL) {
		http_reply_error(r, 400, "device index '%s': expected a number (" INDEX_HELP ")",
				 rest_clip(index, clip));
		return NULL;
	}
	if (rc < 0) {
		http_reply_error(r, 404, "no device index %s (" INDEX_HELP ")",
				 rest_clip(index, clip));
		return NULL;
	}
	return reg_dev(http_req_env(r)->reg, dev_slot_of_index((int)i));
}

bool rest_index_ok(struct http_req *r, const char *index)
{
	return index_dev(r, index) != NULL;
}

/* 503 with the device's health: its last values may be old, and a client
 * must not take them for current ones. */
static void reply_unreadable(struct http_req *r, const struct dev *d)
{
	char msg[256];

	/* http_reply_json answers a NULL body (no memory) with a 500 itself. */
	http_reply_json(r, 503,
			json_pack("{s:s, s:i, s:s}", "error", devop_unreadable(d, msg, sizeof(msg)),
				  "status", 503, "device_status", dev_health_name(d->health)));
}

const struct dev *rest_dev_arg(struct http_req *r, const char *index)
{
	const struct dev *d = index_dev(r, index);

	if (!d)
		return NULL;
	if (d->health == DEV_DISABLED) {
		http_reply_error(r, 404, "%s: no device configured", d->ifname);
		return NULL;
	}
	if (d->health != DEV_OK || !d->d) {
		reply_unreadable(r, d);
		return NULL;
	}
	return d;
}

/* The document of a finished measurements / counters operation: cached
 * when it has a read time; a device that cannot be read is a 503 with its
 * health (its last values may be old, and a client must not take them for
 * current ones). */
static void reading_done(struct rest_call *rc, enum ops_status st, const char *msg, json_t *res)
{
	struct http_req *r = rc->r;

	if (st == OPS_OK && rc->cache)
		http_reply_json_cache(r, rc->key, rc->tag, res);
	else if (st == OPS_UNAVAILABLE)
		/* http_reply_json answers a NULL body (no memory) with a 500 itself. */
		http_reply_json(
		    r, 503,
		    json_pack("{s:s, s:i, s:s}", "error", msg, "status", 503, "device_status",
			      dev_health_name(reg_dev(http_req_env(r)->reg, rc->slot)->health)));
	else
		rest_ops_reply(r, st, msg, res);
}

/* Cache keys: measurements of slot s at s, counters at DEV_SLOTS + s. The
 * cache sits in front of the operation (the fast path) and serves only what
 * it would: the current document of a readable device. */
static void get_reading(struct http_req *r, const char *param, bool counters)
{
	const struct dev *d = index_dev(r, param);
	char why[160];
	struct rest_call how = {.reply = reading_done};

	if (!d)
		return;
	how.slot = d->slot;
	how.key = (unsigned)d->slot + (counters ? DEV_SLOTS : 0);
	/* The document changes with the values (a partial read changes values
	 * without moving the oldest read time) and with the settings
	 * (read_time's zone). The generation takes the bits above 42. */
	how.tag = (counters ? d->ctr_seq : d->meas_seq) ^
		  (uint64_t)settings_generation(http_req_env(r)->settings) << 42;
	how.cache = (counters ? d->ctr_ms : d->meas_ms) != 0;
	if (how.cache && !devop_unreadable(d, why, sizeof(why)) &&
	    http_reply_cached(r, how.key, how.tag))
		return;
	rest_ops_run(r, counters ? "counters" : "measurements",
		     json_pack("{s:i}", "index", dev_ha_index(d->slot)), &how);
}

static void get_measurements(struct http_req *r, const char *param)
{
	get_reading(r, param, false);
}

static void get_counters(struct http_req *r, const char *param)
{
	get_reading(r, param, true);
}

/* (HA) one entry per slot in slot order: Left IR, Right IR, RS485 1…16. */
static void get_devices(struct http_req *r, const char *param)
{
	(void)param;
	rest_ops_run(r, "devices", json_object(), NULL);
}

/* ---- gateway ---- */

static void get_status(struct http_req *r, const char *param)
{
	(void)param;
	reply_doc(r, status_json(http_req_env(r)->status));
}

/* Secrets are left out entirely. */
static void get_settings(struct http_req *r, const char *param)
{
	(void)param;
	rest_ops_run(r, "get_settings", json_object(), NULL);
}

/* ---- Bicoms ---- */

/* The user's name for a relay (ir_relay_desc / rs485_desc_N) comes first:
 * it is what the Bicom control page is about. */
static json_t *bicom_json(const struct http_env *a, const struct dev *d)
{
	bool right = d->slot == DEV_SLOT_RIGHT_IR;
	/* A relay state read before the device stopped answering is not current. */
	const char *state = d->health != DEV_OK || d->relay < 0 ? "unknown"
			    : d->relay				? "on"
								: "off";

	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:b}", "address", right ? 0 : d->addr,
			 "interface", d->ifname, "description",
			 d->cfg_description[0] ? d->cfg_description : d->description, "model",
			 d->model, "state", state, "status", dev_health_name(d->health),
			 "controllable", ops_bicom_switchable(a->settings, d->slot));
}

static void get_bicoms(struct http_req *r, const char *param)
{
	const struct http_env *a = http_req_env(r);
	json_t *list = json_array();

	(void)param;
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(a->reg, s);

		if (d->cls == CLASS_BICOM)
			json_array_append_new(list, bicom_json(a, d));
	}
	reply_doc(r, json_pack("{s:o}", "bicoms", list));
}

/* ---- not built yet: 501 with what is missing ---- */

static void get_blink(struct http_req *r, const char *param)
{
	(void)param;
	http_reply_error(r, 501, "LED control is not built yet (comes with the GPIO feature)");
}

static void get_wifi_scan(struct http_req *r, const char *param)
{
	(void)param;
	http_reply_error(r, 501,
			 "Wi-Fi management is not built yet (comes with the network feature)");
}

/* ---- legacy /get_command (000 §4.2) ---- */

static void legacy_device(struct http_req *r, bool counters)
{
	const char *num = http_req_query(r, "number");
	char now[TZ_TEXT_LEN];
	const struct dev *d;

	/* The manual's own Home Assistant example (000 §4.2.4) leaves number
	 * out and means the Left IR device. */
	d = rest_dev_arg(r, num ? num : "0");
	if (!d)
		return;
	now_text(r, now, sizeof(now));
	reply_doc(r, counters ? legacy_counters(d, dev_ha_index(d->slot), now)
			      : legacy_measurements(d, dev_ha_index(d->slot), now));
}

static void get_command(struct http_req *r, const char *param)
{
	const char *cmd = http_req_query(r, "command");
	char now[TZ_TEXT_LEN], clip[REST_CLIP_LEN];

	(void)param;
	if (cmd && !strcmp(cmd, "get_measurements")) {
		legacy_device(r, false);
	} else if (cmd && !strcmp(cmd, "get_counters")) {
		legacy_device(r, true);
	} else if (cmd && !strcmp(cmd, "get_settings")) {
		now_text(r, now, sizeof(now));
		reply_doc(r, legacy_settings(http_req_env(r)->settings, now));
	} else {
		http_reply_error(r, 400,
				 "unknown command '%s' (get_measurements, get_counters, "
				 "get_settings)",
				 rest_clip(cmd, clip));
	}
}

/* ---- the table ---- */

#define GET(path, fn)                                                                              \
	{                                                                                          \
		"GET", path, false, false, fn, false                                               \
	}
#define POST_JSON(path, fn)                                                                        \
	{                                                                                          \
		"POST", path, false, true, fn, false                                               \
	}

const struct http_route rest_routes[] = {
    /* The auth gate has checked the credentials before the handler runs. */
    {"POST", "/api/auth", false, false, rest_post_auth, true},
    GET("/api", get_status),
    GET("/api/blink", get_blink),
    GET("/api/settings", get_settings),
    POST_JSON("/api/settings", rest_post_settings),
    GET("/api/wifi/scan-networks", get_wifi_scan),
    GET("/api/devices", get_devices),
    GET("/api/measurement/{}", get_measurements),
    GET("/api/measurements/{}", get_measurements),
    GET("/api/counter/{}", get_counters),
    GET("/api/counters/{}", get_counters),
    GET("/api/bicoms", get_bicoms),
    POST_JSON("/api/bicom", rest_post_bicom),
    GET("/api/rs485/scan-devices", rest_get_scan),
    POST_JSON("/api/rs485/set-parameters", rest_post_set_parameters),
    GET("/api/recorders", rest_get_recorders),
    GET("/api/recorder/{}", rest_get_recorder),
    POST_JSON("/api/recorder/{}", rest_post_recorder),
    GET("/api/load_profile/{}", rest_get_load_profile),
    POST_JSON("/api/load_profile/{}", rest_post_load_profile),
    /* The manual's literal spelling (001 §4.2: /api/load_profile{id}). */
    GET("/api/load_profile{}", rest_get_load_profile),
    POST_JSON("/api/load_profile{}", rest_post_load_profile),
    GET("/api/tariffs", rest_get_tariffs),
    GET("/api/calculate/{}", rest_get_calculate),
    POST_JSON("/api/tariffs", rest_post_tariffs),
    GET("/get_command", get_command),
};

const size_t rest_route_count = sizeof(rest_routes) / sizeof(rest_routes[0]);
