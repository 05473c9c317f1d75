/* Home Assistant MQTT discovery (setting ha_discovery): retained configs on
 * homeassistant/<component>/<id>/config for every identified meter and
 * analyser (voltage, current, powers, PF, frequency, temperature, energy
 * counters usable in HA's Energy dashboard) and every identified Bicom (a
 * switch commanded on <cmd>/bicom/<addr>/set) that the link publishes (its
 * push-link setting includes the link): an entity whose state never comes is
 * worse than none, so the configs of the others are removed (empty retained
 * payload). The sensors read the periodic publications
 * (base/device/<i>/measurements|counters) through value templates; an entity
 * is available while both the link (base/availability) and its device
 * (base/device/<i>/availability, base/bicom/<addr>/availability) are online. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_int.h"
#include "sg/devop.h"
#include "sg/log.h"
#include "sg/ops.h"
#include "sg/version.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define HA_PREFIX "homeassistant"
#define ID_MAX 64
#define TOPIC_MAX 320

/* The measured quantities HA has device classes for. */
static const struct qty_info {
	enum desc_qty qty;
	const char *key;   /* in ids: u1, p, freq */
	const char *label; /* entity name */
	const char *json;  /* member of the measurements document */
	const char *device_class;
	const char *unit; /* NULL: none (power factor) */
} qtys[] = {
    {QTY_U, "u", "Voltage", "U", "voltage", "V"},
    {QTY_I, "i", "Current", "I", "current", "A"},
    {QTY_P, "p", "Active power", "P", "power", "W"},
    {QTY_Q, "q", "Reactive power", "Q", "reactive_power", "var"},
    {QTY_S, "s", "Apparent power", "S", "apparent_power", "VA"},
    {QTY_PF, "pf", "Power factor", "PF", "power_factor", NULL},
    {QTY_FREQ, "freq", "Frequency", "Frequency", "frequency", "Hz"},
    {QTY_TEMP, "temp", "Temperature", "Temperature", "temperature", "°C"},
};

/* One sensor entity of a device. */
struct sensor {
	char key[16];
	char name[64];
	const char *doc; /* "measurements" or "counters": the state topic's document */
	char tmpl[160];
	const char *device_class, *unit, *state_class;
};

void hadisc_id(const char *s, char *out, size_t len)
{
	size_t i = 0;

	for (; s[i] && i + 1 < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-';

		out[i] = ok ? c : '_';
	}
	if (len)
		out[i] = '\0';
}

/* The HA device of a meter or Bicom, shown under the gateway (via_device). */
static json_t *device_json(const struct hadisc_env *e, const struct dev *d)
{
	char id[ID_MAX + 32], sid[ID_MAX], name[64], sw[16];

	hadisc_id(d->serial, sid, sizeof(sid));
	if (d->serial[0]) {
		snprintf(id, sizeof(id), "%s_%s", e->gw, sid);
		snprintf(name, sizeof(name), "%s %s", d->model, d->serial);
	} else {
		snprintf(id, sizeof(id), "%s_slot%d", e->gw, d->slot);
		snprintf(name, sizeof(name), "%s (%s)", d->model, d->ifname);
	}
	snprintf(sw, sizeof(sw), "%d.%02d", d->sw_ver / 100, d->sw_ver % 100);
	return json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s, s:s}", "identifiers", id, "name", name,
			 "manufacturer", "Iskra", "model", d->model, "sw_version", sw,
			 "serial_number", d->serial, "via_device", e->gw);
}

static json_t *availability(const struct hadisc_env *e)
{
	char topic[TOPIC_MAX];

	snprintf(topic, sizeof(topic), "%s/%s", e->base, SUB_AVAIL);
	return json_string(topic);
}

static int bicom_addr(const struct dev *d)
{
	return d->slot == DEV_SLOT_RIGHT_IR ? 0 : d->addr;
}

/* Add the availability of an entity of d: the link's and the device's, both
 * required (HA's availability_mode "all"). */
static void set_availability(json_t *cfg, const struct hadisc_env *e, const struct dev *d)
{
	char sub[64], topic[TOPIC_MAX];
	json_t *list = json_array();

	json_array_append_new(list, json_pack("{s:o}", "topic", availability(e)));
	if (mqtt_avail_sub(d, sub, sizeof(sub)) == 0) {
		snprintf(topic, sizeof(topic), "%s/%s", e->base, sub);
		json_array_append_new(list, json_pack("{s:s}", "topic", topic));
	}
	json_object_set_new(cfg, "availability", list);
	json_object_set_new(cfg, "availability_mode", json_string("all"));
}

/* HA's default_entity_id (replaces object_id, ignored since HA 2026.4):
 * "<domain>.<object id>", lower case letters, digits and '_' only. */
static json_t *entity_id(const char *domain, const char *uid)
{
	char buf[ID_MAX + 64];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s.", domain);

	for (size_t i = 0; uid[i] && n + 1 < sizeof(buf); i++) {
		char c = uid[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '_';
		buf[n++] = c;
	}
	buf[n] = '\0';
	return json_string(buf);
}

static void emit_sensor(const struct hadisc_env *e, const struct dev *d, const struct sensor *s,
			hadisc_emit_cb emit, void *arg)
{
	char uid[ID_MAX + 32], topic[TOPIC_MAX], state[TOPIC_MAX];
	json_t *cfg;

	snprintf(uid, sizeof(uid), "%s_%d_%s", e->gw, d->slot, s->key);
	snprintf(topic, sizeof(topic), HA_PREFIX "/sensor/%s/config", uid);
	snprintf(state, sizeof(state), "%s/device/%d/%s", e->base, dev_ha_index(d->slot), s->doc);
	cfg = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o}", "name", s->name, "unique_id", uid,
			"default_entity_id", entity_id("sensor", uid), "state_topic", state,
			"value_template", s->tmpl, "state_class", s->state_class, "device",
			device_json(e, d));
	if (!cfg)
		return;
	set_availability(cfg, e, d);
	if (s->device_class)
		json_object_set_new(cfg, "device_class", json_string(s->device_class));
	if (s->unit)
		json_object_set_new(cfg, "unit_of_measurement", json_string(s->unit));
	emit(topic, cfg, arg);
}

static const struct qty_info *qty_info(enum desc_qty q)
{
	for (size_t i = 0; i < N(qtys); i++)
		if (qtys[i].qty == q)
			return &qtys[i];
	return NULL;
}

/* Where dev_measurements_json puts a quantity: Phases[p-1].U, Total.P, Frequency. */
static void meas_sensor(const struct qty_info *q, unsigned phase, struct sensor *s)
{
	const char *pre = "{{ value_json.measurements.";

	*s = (struct sensor){.doc = "measurements",
			     .device_class = q->device_class,
			     .unit = q->unit,
			     .state_class = "measurement"};
	if (phase) {
		snprintf(s->key, sizeof(s->key), "%s%u", q->key, phase);
		snprintf(s->name, sizeof(s->name), "%s L%u", q->label, phase);
		snprintf(s->tmpl, sizeof(s->tmpl), "%sPhases[%u].%s.value }}", pre, phase - 1,
			 q->json);
		return;
	}
	snprintf(s->key, sizeof(s->key), "%s", q->key);
	snprintf(s->name, sizeof(s->name), "%s", q->label);
	snprintf(s->tmpl, sizeof(s->tmpl), "%s%s%s.value }}", pre,
		 q->qty == QTY_FREQ || q->qty == QTY_TEMP ? "" : "Total.", q->json);
}

static void meas_configs(const struct hadisc_env *e, const struct dev *d, hadisc_emit_cb emit,
			 void *arg)
{
	bool seen[QTY_COUNT][DESC_PHASES_MAX + 1] = {{false}};
	struct sensor s;

	for (unsigned i = 0; i < d->d->nmeas; i++) {
		const struct desc_meas *m = &d->d->meas[i];
		const struct qty_info *q = qty_info(m->qty);

		if (!q || m->phase > DESC_PHASES_MAX || seen[m->qty][m->phase])
			continue;
		seen[m->qty][m->phase] = true;
		meas_sensor(q, m->phase, &s);
		emit_sensor(e, d, &s, emit, arg);
	}
}

/* As dev_counters_json reports it: a meter wired in reverse swaps import and export. */
static enum desc_dir counter_dir(const struct dev *d, unsigned k)
{
	const struct desc_counter *c = &d->d->ctr[k];
	enum desc_dir dir = c->quadrants.present ? d->ctr_dir[k] : c->fixed_dir;

	if (d->reverse && dir != DIR_BIDIR)
		return dir == DIR_IMPORT ? DIR_EXPORT : DIR_IMPORT;
	return dir;
}

/* Counter k is entry pos of its array (non_resettable or resettable) once
 * every counter has been read; values are Wh/varh/VAh, shown as k…h. */
static void counter_sensor(const struct dev *d, unsigned k, unsigned pos, struct sensor *s)
{
	static const char *const units[] = {
	    [UNIT_WH] = "kWh", [UNIT_VARH] = "kvarh", [UNIT_VAH] = "kVAh", [UNIT_UNKNOWN] = NULL};
	const struct desc_counter *c = &d->d->ctr[k];
	enum desc_unit u = c->unit.present ? d->ctr_unit[k] : c->fixed_unit;
	enum desc_dir dir = counter_dir(d, k);

	/* A bidirectional (net) counter may go down: "total", not "total_increasing". */
	*s = (struct sensor){.doc = "counters",
			     .device_class = u == UNIT_WH ? "energy" : NULL,
			     .unit = units[u],
			     .state_class = dir == DIR_BIDIR ? "total" : "total_increasing"};
	snprintf(s->key, sizeof(s->key), "c%u", k);
	snprintf(s->name, sizeof(s->name), "%s %s", c->name, desc_dir_name(dir));
	snprintf(s->tmpl, sizeof(s->tmpl),
		 "{{ (value_json.counters.%s[%u].value / 1000) | round(3) }}",
		 c->resettable ? "resettable" : "non_resettable", pos);
}

static void counter_configs(const struct hadisc_env *e, const struct dev *d, hadisc_emit_cb emit,
			    void *arg)
{
	unsigned pos[2] = {0, 0}; /* next index in non_resettable, resettable */
	struct sensor s;

	for (unsigned k = 0; k < d->d->nctr; k++) {
		const struct desc_counter *c = &d->d->ctr[k];
		enum desc_unit u = c->unit.present ? d->ctr_unit[k] : c->fixed_unit;
		unsigned p = pos[c->resettable]++;

		if (u == UNIT_UNKNOWN)
			continue; /* no unit, no meaningful entity */
		counter_sensor(d, k, p, &s);
		emit_sensor(e, d, &s, emit, arg);
	}
}

static void bicom_config(const struct hadisc_env *e, const struct dev *d, hadisc_emit_cb emit,
			 void *arg)
{
	char uid[ID_MAX + 16], topic[TOPIC_MAX], cmd[TOPIC_MAX], state[TOPIC_MAX];
	int addr = bicom_addr(d);
	json_t *cfg;

	snprintf(uid, sizeof(uid), "%s_bicom%d", e->gw, addr);
	snprintf(topic, sizeof(topic), HA_PREFIX "/switch/%s/config", uid);
	snprintf(cmd, sizeof(cmd), "%s/bicom/%d/set", e->cmd, addr);
	snprintf(state, sizeof(state), "%s/bicom/%d/state", e->base, addr);
	cfg = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:o}", "name", "Relay", "unique_id",
			uid, "default_entity_id", entity_id("switch", uid), "command_topic", cmd,
			"state_topic", state, "payload_on", "ON", "payload_off", "OFF", "device",
			device_json(e, d));
	if (!cfg)
		return;
	set_availability(cfg, e, d);
	emit(topic, cfg, arg);
}

void hadisc_device_configs(const struct hadisc_env *e, const struct dev *d, hadisc_emit_cb emit,
			   void *arg)
{
	if (!d->d || d->health == DEV_DISABLED)
		return;
	if (d->cls == CLASS_BICOM) {
		bicom_config(e, d, emit, arg);
		return;
	}
	if ((d->cls != CLASS_METER && d->cls != CLASS_PQ) || dev_ha_index(d->slot) < 0)
		return;
	meas_configs(e, d, emit, arg);
	counter_configs(e, d, emit, arg);
}

/* The gateway as the via_device of every device: one entity that needs no
 * publication of its own, the link's connectivity (the availability topic
 * with its last will). */
void hadisc_gateway_config(const struct hadisc_env *e, hadisc_emit_cb emit, void *arg)
{
	char uid[ID_MAX + 16], topic[TOPIC_MAX], name[64];
	json_t *cfg, *dev;

	snprintf(uid, sizeof(uid), "%s_online", e->gw);
	snprintf(topic, sizeof(topic), HA_PREFIX "/binary_sensor/%s/config", uid);
	snprintf(name, sizeof(name), "%s %s", e->gw_model, e->gw);
	dev = json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s, s:s}", "identifiers", e->gw, "name", name,
			"manufacturer", "sgd", "model", e->gw_model, "sw_version", SGD_VERSION,
			"hw_version", e->hw_ver, "serial_number", e->gw);
	cfg = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:o}", "name", "MQTT link",
			"unique_id", uid, "default_entity_id", entity_id("binary_sensor", uid),
			"state_topic", availability(e), "payload_on", "online", "payload_off",
			"offline", "device_class", "connectivity", "entity_category", "diagnostic",
			"device", dev);
	if (cfg)
		emit(topic, cfg, arg);
}

void hadisc_publish_state(struct mqtt_link *l, int addr, bool on)
{
	char sub[32];
	int r;

	snprintf(sub, sizeof(sub), "bicom/%d/state", addr);
	r = link_publish(l, sub, on ? "ON" : "OFF", on ? 2 : 3, 1, true);
	if (r < 0)
		log_info("mqtt%d: Bicom %d state not sent: %s", link_number(l), addr, strerror(-r));
}

/* ---- announcing ---- */

struct announce {
	struct mqtt_link *l;
	unsigned sent, removed, failed;
};

static void publish_config(const char *topic, json_t *cfg, void *arg)
{
	struct announce *an = arg;
	char *txt = json_dumps(cfg, SG_JSON_FLAGS);

	if (txt && link_publish_abs(an->l, topic, txt, strlen(txt), 1, true) >= 0)
		an->sent++;
	else
		an->failed++;
	free(txt);
	json_decref(cfg);
}

/* A device that is not published on this link: remove its entities. */
static void delete_config(const char *topic, json_t *cfg, void *arg)
{
	struct announce *an = arg;

	if (link_publish_abs(an->l, topic, "", 0, 1, true) >= 0)
		an->removed++;
	else
		an->failed++;
	json_decref(cfg);
}

int hadisc_slot_links(const struct settings *st, int slot)
{
	char key[32];

	if (slot == DEV_SLOT_LEFT_IR)
		snprintf(key, sizeof(key), "leftir_pushlink");
	else if (slot == DEV_SLOT_RIGHT_IR)
		snprintf(key, sizeof(key), "ir_relay_pushlink");
	else
		snprintf(key, sizeof(key), "rs485_pushlnk%d", slot - 1);
	return (int)settings_int(st, key);
}

/* Everything each time: configs are retained and idempotent, so a repeat
 * costs a few messages and a changed device is never missed. */
bool hadisc_announce(struct mqtt *m, struct mqtt_link *l)
{
	const struct mqtt_env *a = &m->env;
	char gw[ID_MAX], cmd[TOPIC_MAX];
	struct hadisc_env e = {gw, a->conf->model_type, a->conf->hw_version, link_base(l), cmd};
	struct announce an = {l, 0, 0, 0};
	int bit = 1 << (link_number(l) - 1);

	if (!settings_int(a->settings, "ha_discovery"))
		return false;
	hadisc_id(a->conf->serial_number, gw, sizeof(gw));
	mqtt_cmd_topic(m, link_number(l), cmd, sizeof(cmd));
	hadisc_gateway_config(&e, publish_config, &an);
	for (int s = 0; s < DEV_SLOTS; s++) {
		const struct dev *d = reg_dev(a->reg, s);

		if (!(hadisc_slot_links(a->settings, s) & bit)) {
			hadisc_device_configs(&e, d, delete_config, &an);
			continue;
		}
		hadisc_device_configs(&e, d, publish_config, &an);
		if (d->cls == CLASS_BICOM && d->d && d->health == DEV_OK && d->relay >= 0)
			hadisc_publish_state(l, bicom_addr(d), d->relay == 1);
	}
	log_info("mqtt%d: Home Assistant discovery: %u configs sent, %u removed (devices not "
		 "published on this link)%s",
		 link_number(l), an.sent, an.removed, an.failed ? ", some failed" : "");
	return true;
}

/* ---- switch commands ---- */

struct sw_op {
	struct mqtt *m;
	int link, addr;
};

static void sw_error(struct mqtt_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Switch commands have no reply document: failures go to base/error only. */
static void sw_error(struct mqtt_link *l, const char *fmt, ...)
{
	char text[CMD_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_info("mqtt%d: %s", link_number(l), text);
	link_publish(l, SUB_ERROR, text, strlen(text), 1, false);
}

static void sw_done(enum ops_status st, const char *msg, json_t *res, void *arg)
{
	struct sw_op *o = arg;
	struct mqtt_link *l = cmd_link_again(o->m, o->link, "Bicom switch");
	const char *state = json_string_value(json_object_get(res, "state"));

	if (l && st != OPS_OK)
		sw_error(l, "Error: %s", msg);
	else if (l)
		hadisc_publish_state(l, o->addr, state && !strcmp(state, "on"));
	json_decref(res);
	free(o);
}

/* "bicom/<addr>/set": addr 0…247 in plain digits; -ENOENT for other topics. */
static int switch_topic(const char *sub, long *addr)
{
	const char *p = sub + 6, *end;
	long v = 0;

	if (strncmp(sub, "bicom/", 6))
		return -ENOENT;
	end = strchr(p, '/');
	if (!end || strcmp(end, "/set"))
		return -ENOENT;
	if (end == p || end - p > 3)
		return -EINVAL;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v > 247)
		return -EINVAL;
	*addr = v;
	return 0;
}

/* The bicom command's "val" of a switch payload, or NULL. */
static const char *switch_val(const void *payload, size_t len)
{
	static const char *const on[] = {"ON", "on"}, *const off[] = {"OFF", "off"};

	for (size_t i = 0; i < 2; i++) {
		if (len == 2 && !memcmp(payload, on[i], 2))
			return "on";
		if (len == 3 && !memcmp(payload, off[i], 3))
			return "off";
	}
	return NULL;
}

bool hadisc_command(struct mqtt *m, struct mqtt_link *l, const char *subtopic, const void *payload,
		    size_t len)
{
	struct sw_op *o;
	json_t *cmd;
	long addr;
	int r = switch_topic(subtopic, &addr);
	const char *val;

	if (r == -ENOENT)
		return false;
	if (r < 0) {
		sw_error(l, "Error: bicom/<addr>/set: addr must be 0…247");
		return true;
	}
	val = switch_val(payload, len);
	if (!val) {
		sw_error(l, "Error: Bicom %ld: expected ON or OFF", addr);
		return true;
	}
	/* Through the operations table: its rules (the Right IR Bicom's relay
	 * mode) hold for the switch entity too. */
	o = calloc(1, sizeof(*o));
	cmd = json_pack("{s:s, s:i, s:s}", "cmd", "bicom", "addr", (int)addr, "val", val);
	if (o && cmd) {
		*o = (struct sw_op){m, link_number(l), (int)addr};
		ops_run(m->env.ops, cmd, OPS_FROM_MQTT, sw_done, o);
		json_decref(cmd);
		return true;
	}
	free(o);
	json_decref(cmd);
	sw_error(l, "Error: Bicom %ld: out of memory", addr);
	return true;
}
