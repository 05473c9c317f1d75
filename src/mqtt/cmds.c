/* Commands arriving on <root>/<sub topic> (CONTRACTS §2, 000 §4.8, 001 §4.7):
 * {"data": {"cmd": …}}. The "data" object IS the command of the operations
 * table (src/ops/): this file only translates MQTT's side — the payload, the
 * manual's unnumbered mqtt_X / push_X setting keys, the command names MQTT
 * offers — and answers on base/status as JSON with "cmd" and, when a
 * command fails, also as "Error: …" text on base/error. Validation, rules
 * and bus operations are the operations table's; a bus operation answers
 * later, from its completion. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_int.h"
#include "sg/hist.h"
#include "sg/log.h"
#include "sg/ops.h"
#include "sg/version.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CLIP_LEN CMD_NAME_MAX

/* One command from arrival to reply; on the heap because bus operations
 * finish after mqtt_cmd_run has returned. */
struct cmd {
	struct mqtt *m;
	int link; /* the reply goes back to the link the command came on */
	char name[CMD_NAME_MAX];
	int addr; /* bicom: its state is also published retained */
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
	return ops_clip(s, buf, CLIP_LEN);
}

json_t *cmd_text(const char *s)
{
	char buf[CMD_ERR_MAX];
	json_t *j = json_string(s);

	/* A truncated message may end in half a UTF-8 sequence. */
	return j ? j : json_string(ops_clip(s, buf, sizeof(buf)));
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

void mqtt_cmd_topic(const struct mqtt *m, int n, char *buf, size_t len)
{
	char root[32], sub[32];

	snprintf(root, sizeof(root), "mqtt%d_roottopic", n);
	snprintf(sub, sizeof(sub), "mqtt%d_sub_topic", n);
	snprintf(buf, len, "%s/%s", settings_str(m->env.settings, root),
		 settings_str(m->env.settings, sub));
}

struct mqtt_link *cmd_link_again(struct mqtt *m, int n, const char *what)
{
	struct mqtt_link *l = m && n >= 1 && n <= MQTT_LINKS ? m->link[n - 1] : NULL;

	if (!l || !link_connected(l)) {
		log_info("mqtt%d: %s finished while the link was down; reply dropped", n, what);
		return NULL;
	}
	return l;
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

/* ---- tariffs (until ops-b's get_tariffs / set_tariffs are in the table) ---- */

/* ---- dispatch ---- */

/* The commands MQTT offers (the manual's, 000 §4.8), in the order the
 * refusal of an unknown one lists them. */
static const char *const names[] = {
    "reboot",
    "get_settings",
    "set_settings",
    "get_tariffs",
    "set_tariffs",
    "measurements",
    "counters",
    "bicom",
    "detect_485_devices",
    "modbus_read",
    "modbus_write_single",
    "modbus_write_multi",
    "upgrade_app",
    "write_cert",
};

static bool offered(const char *name, char *err, size_t len)
{
	char list[256] = "", clipped[CLIP_LEN];

	for (size_t i = 0; i < N(names); i++) {
		if (!strcmp(name, names[i]))
			return true;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	}
	fail(err, len, "unknown command '%s' (%s)", clip(name, clipped), list);
	return false;
}

/* ops_done_cb: the reply goes to the link the command came on, if it is
 * still connected. */
static void cmd_done(enum ops_status st, const char *msg, json_t *res, void *arg)
{
	struct cmd *c = arg;
	struct mqtt_link *l = cmd_link_again(c->m, c->link, c->name);
	const char *state;

	if (!l) {
		json_decref(res);
	} else if (st != OPS_OK) {
		reply_error(l, c->name, msg);
	} else {
		if (!strcmp(c->name, "bicom")) { /* the switch entity's state (hadisc.c) */
			state = json_string_value(json_object_get(res, "state"));
			hadisc_publish_state(l, c->addr, state && !strcmp(state, "on"));
		}
		reply_ok(l, c->name, res);
	}
	free(c);
}

/* The operations command of a data object (a new reference), or NULL with err. */
static json_t *ops_command(struct cmd *c, json_t *data, char *err, size_t len)
{
	json_t *set;

	if (strcmp(c->name, "set_settings")) {
		c->addr = (int)json_integer_value(json_object_get(data, "addr"));
		return json_incref(data);
	}
	set = cmd_settings_changes(data, c->link, err, len);
	return set ? json_pack("{s:s, s:o}", "cmd", "set_settings", "settings", set) : NULL;
}

void mqtt_cmd_run(struct mqtt *m, struct mqtt_link *l, const void *payload, size_t len)
{
	char name[CMD_NAME_MAX], err[CMD_ERR_MAX];
	json_t *data = cmd_parse(payload, len, name, err, sizeof(err)), *cmd = NULL;
	struct cmd *c = NULL;

	if (data && offered(name, err, sizeof(err)) && !(c = calloc(1, sizeof(*c))))
		snprintf(err, sizeof(err), "out of memory");
	if (c) {
		*c = (struct cmd){.m = m, .link = link_number(l)};
		snprintf(c->name, sizeof(c->name), "%s", name);
		log_debug("mqtt%d: command %s", c->link, c->name);
	}
	if (c && (cmd = ops_command(c, data, err, sizeof(err)))) {
		ops_run(m->env.ops, cmd, OPS_FROM_MQTT, cmd_done, c);
		json_decref(cmd);
	} else {
		reply_error(l, name[0] ? name : NULL, err);
		free(c);
	}
	json_decref(data);
}

json_t *mqtt_hello_json(const struct conf *c)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "hello", "hello world", "serial_number",
			 c->serial_number, "model_type", c->model_type, "sw_ver", SGD_VERSION,
			 "hw_ver", c->hw_version);
}
