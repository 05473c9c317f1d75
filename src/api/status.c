/* The gateway status document (R-F2): everything the Iskra status page shows
 * (001 §4.1.1) plus the bus and device summary of sgctl status. Values the
 * gateway does not measure (yet) are null, never invented. */
#include "sg/status.h"
#include "sg/hist.h"
#include "sg/modbus.h"
#include "sg/mprofile.h"
#include "sg/mqtt.h"

#include <stdio.h>
#include <string.h>

#include "sg/bus.h"
#include "sg/busjson.h"
#include "sg/clock.h"
#include "sg/conf.h"
#include "sg/desc.h"
#include "sg/legacy.h"
#include "sg/localtime.h"
#include "sg/netinfo.h"
#include "sg/registry.h"
#include "sg/settings.h"
#include "sg/store.h"
#include "sg/version.h"

/* error_flags bits ("0x%08X"); the Iskra firmware does not document its own,
 * so these are ours:
 *   bit 0  a configured device is not responding
 *   bit 1  a configured device's bus is absent on this board, or its serial
 *          port could not be opened
 *   bit 2  a configured device answers, but its reads fail (read error)
 *   bit 8  settings.json was damaged at the last load (settings_file says
 *          what is in use instead)
 *   bit 9  a device description file was skipped (descriptions.errors) */
#define ERRF_DEVICE_DOWN 0x1u
#define ERRF_BUS_DOWN 0x2u
#define ERRF_READ_ERROR 0x4u
#define ERRF_SETTINGS_FILE 0x100u
#define ERRF_DESCRIPTIONS 0x200u

static const char *const bus_names[CONF_BUS_COUNT] = {"Left IR", "Right IR", "RS485"};

static json_t *text_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

/* (HA) reads model_type, serial_number, description, location, sw_ver. */
static json_t *device_json(const struct status_env *e, const struct netinfo *ni)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "model_type",
			 e->conf->model_type, "serial_number", e->conf->serial_number,
			 "description", settings_str(e->settings, "description"), "location",
			 settings_str(e->settings, "location"), "sw_ver", SGD_VERSION, "hw_ver",
			 e->conf->hw_version, "fs_ver", SGD_VERSION, "mac",
			 text_or_null(ni->mac_text));
}

/* MemAvailable in bytes: what the kernel says a new allocation can get. */
static json_t *free_memory(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb;
	char line[128];
	json_t *v = NULL;

	if (!f)
		return json_null();
	while (!v && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			v = json_integer((json_int_t)(kb * 1024));
	fclose(f);
	return v ? v : json_null();
}

/* The SoC's temperature in °C (the first thermal zone), or null without one. */
static json_t *temperature(void)
{
	FILE *f = fopen("/sys/class/thermal/thermal_zone0/temp", "re");
	long long milli;
	int n;

	if (!f)
		return json_null();
	n = fscanf(f, "%lld", &milli);
	fclose(f);
	return n == 1 ? json_real((double)milli / 1000) : json_null();
}

static json_t *pulse_counter(const struct status_env *e)
{
	uint64_t n = 0;

	if (e->store && store_pulse_get(e->store, &n) < 0)
		return json_null();
	return json_integer((json_int_t)n);
}

static const char *link_status(const struct status_env *e, int n)
{
	return e->mqtt ? mqtt_link_status_text(e->mqtt, n) : "Disabled";
}

static json_t *links_json(const struct status_env *e)
{
	return e->mqtt ? mqtt_status_json(e->mqtt) : json_array();
}

/* A bus counts as down for a device when the board lacks it, or when it
 * tried and could not open its port (before any attempt it is just closed). */
static bool bus_down(const struct status_env *e, enum conf_bus b)
{
	struct bus_stats st = {0};

	if (!e->buses[b])
		return true;
	bus_get_stats(e->buses[b], &st);
	return !st.open && st.transactions > 0;
}

static unsigned error_flags(const struct status_env *e)
{
	unsigned f = 0;

	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(e->reg, s);

		if (d->health == DEV_DISABLED)
			continue;
		if (d->health == DEV_NOT_RESPONDING)
			f |= ERRF_DEVICE_DOWN;
		if (d->health == DEV_READ_ERROR)
			f |= ERRF_READ_ERROR;
		if (bus_down(e, d->bus))
			f |= ERRF_BUS_DOWN;
	}
	if (settings_load_error(e->settings)[0])
		f |= ERRF_SETTINGS_FILE;
	if (e->descs->nbroken)
		f |= ERRF_DESCRIPTIONS;
	return f;
}

json_t *status_settings_file_json(const struct settings *s)
{
	const char *err = settings_load_error(s);

	return json_pack("{s:s, s:o}", "source", settings_origin_name(settings_origin(s)), "error",
			 err[0] ? json_string(err) : json_null());
}

static void uptime_text(int64_t s, char *buf, size_t len)
{
	snprintf(buf, len, "%lldd %02lld:%02lld:%02lld", (long long)(s / 86400),
		 (long long)(s % 86400 / 3600), (long long)(s % 3600 / 60), (long long)(s % 60));
}

/* 1-based like the status page ("Tariff 1"), null without a calendar. */
static json_t *active_tariff(const struct status_env *e)
{
	int t = hist_active_tariff(e->hist);

	return t >= 0 ? json_integer(t + 1) : json_null();
}

/* Connection, identity on the network and health: the status page's rows. */
static json_t *status_part(const struct status_env *e, const struct netinfo *ni)
{
	char crc[16], flags[16];

	snprintf(crc, sizeof(crc), "0x%08X", settings_crc(e->settings));
	snprintf(flags, sizeof(flags), "0x%08X", error_flags(e));
	return json_pack(
	    "{s:o, s:o, s:o, s:o*, s:n, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o}",
	    "connection_mode",
	    ni->ifname[0] ? json_string(ni->wifi ? "WiFi" : "Ethernet") : json_null(), "ip_address",
	    text_or_null(ni->ip), "mac_address", text_or_null(ni->mac_text), "wifi_ssid",
	    ni->wifi ? json_string(settings_str(e->settings, "wifi_ssid")) : NULL,
	    /* not measured yet */
	    "wifi_signal_dbm", "app_status", "Normal", "upgrade_status", "N/A", "link1_status",
	    link_status(e, 1), "link2_status", link_status(e, 2), "settings_crc", crc,
	    "free_memory", free_memory(), "error_flags", flags, "temperature", temperature(),
	    "pulse_counter", pulse_counter(e), "active_tariff", active_tariff(e));
}

/* Uptime and clock go into the status object after status_part(). */
static void add_times(const struct status_env *e, json_t *st)
{
	int64_t up = (clock_mono_ms() - e->start_mono_ms) / 1000;
	char up_txt[48], now[TZ_TEXT_LEN];
	struct sg_tz z = tz_from_settings(e->settings);

	uptime_text(up, up_txt, sizeof(up_txt));
	tz_text(&z, clock_wall(), now, sizeof(now));
	json_object_set_new(st, "uptime", json_string(up_txt));
	json_object_set_new(st, "uptime_s", json_integer((json_int_t)up));
	json_object_set_new(st, "local_time", json_string(now));
}

static json_t *network_json(const struct netinfo *ni)
{
	return json_pack("{s:o, s:o, s:o, s:b}", "interface", text_or_null(ni->ifname),
			 "ip_address", text_or_null(ni->ip), "mac_address",
			 text_or_null(ni->mac_text), "wifi", ni->wifi);
}

/* Per device with a load profile of its own: what filling from it did. */
static json_t *profile_fill_json(const struct status_env *e)
{
	json_t *list = json_array();

	for (int s = 0; e->hist && s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(e->reg, s);
		struct mprof_stats ms;

		if (!d->d || !d->d->lprof.present || hist_lp_fill_stats(e->hist, s, &ms) < 0)
			continue;
		json_array_append_new(
		    list, json_pack("{s:i, s:s, s:I, s:I, s:I, s:s}", "index", dev_ha_index(s),
				    "interface", d->ifname, "fills", (json_int_t)ms.fills, "filled",
				    (json_int_t)ms.filled, "errors", (json_int_t)ms.errors,
				    "last_error", ms.last_error));
	}
	return list;
}

json_t *status_json(const struct status_env *e)
{
	struct netinfo ni;
	json_t *buses = json_array(), *st, *doc;
	int enabled = 0, ok = 0;

	/* No qualifying interface leaves empty fields, shown as null. */
	memset(&ni, 0, sizeof(ni));
	if (netinfo_primary(&ni) < 0)
		memset(&ni, 0, sizeof(ni));
	for (int i = 0; i < CONF_BUS_COUNT; i++)
		json_array_append_new(buses, busjson_status(bus_names[i], e->buses[i]));
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(e->reg, s);

		enabled += d->health != DEV_DISABLED;
		ok += d->health == DEV_OK;
	}
	st = status_part(e, &ni);
	if (st)
		add_times(e, st);
	doc = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:i, s:b, s:o, s:o, s:{s:i, s:i, s:o}}", "device",
	    device_json(e, &ni), "status", st, "network", network_json(&ni), "links", links_json(e),
	    "modbus", modbus_status_json(e->modbus), "buses", buses, "devices_enabled", enabled,
	    "devices_responding", ok, "rs485_scanning", reg_bus_busy(e->reg, CONF_BUS_RS485),
	    "profile_fill", profile_fill_json(e), "settings_file",
	    status_settings_file_json(e->settings), "descriptions", "loaded", (int)e->descs->n,
	    "broken", (int)e->descs->nbroken, "errors", desc_errors_json(e->descs));
	if (doc)
		json_object_set_new(doc, "loop", loop_stats_json(e->loop));
	return doc;
}
