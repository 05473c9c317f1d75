/* The push-link owner: creates the links, the buffer and the publisher, and
 * routes what a link reports (connect, message, acknowledgement) to the
 * module that handles it. */
#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_int.h"
#include "sg/log.h"

static const char *const proto_names[] = {"none", "MQTT", "Standard TCP"};

static long link_proto(const struct mqtt *m, int n)
{
	char key[32];

	snprintf(key, sizeof(key), "push%d_protocol", n);
	return settings_int(m->env.settings, key);
}

/* Announce to Home Assistant on l, then give every announced entity its
 * state at once (HA shows "unknown" until a state arrives, and with long
 * push intervals that could be minutes). */
static void announce(struct mqtt *m, struct mqtt_link *l, bool force)
{
	if (hadisc_announce(m, l))
		publisher_state_now(m->pub, link_number(l), force);
}

/* A device that was (re)identified is announced to Home Assistant at once,
 * not only at the next connect. */
static void on_device(const struct dev *d, void *arg)
{
	struct mqtt *m = arg;
	char *seen = m->announced[d->slot];

	if (!d->d || !strcmp(seen, d->serial))
		return;
	snprintf(seen, sizeof(m->announced[0]), "%s", d->serial);
	for (int i = 0; i < MQTT_LINKS; i++)
		if (m->link[i] && link_connected(m->link[i]))
			announce(m, m->link[i], false);
}

static void on_settings(const struct settings *s, void *arg)
{
	(void)s;
	mqtt_configure(arg);
}

int mqtt_init(const struct mqtt_env *env, struct mqtt **out)
{
	/* The links (link.c, stdtcp.c) and what the publisher pushes where. */
	static const char *const keys[] = {"push1_*",
					   "push2_*",
					   "mqtt1_*",
					   "mqtt2_*",
					   "leftir_pushlink",
					   "leftir_pushintv",
					   "ir_relay_pushlink",
					   "ir_relay_pushintv",
					   "rs485_pushlnk*",
					   "rs485_pushint*",
					   NULL};
	struct mqtt *m = calloc(1, sizeof(*m));
	char path[CONF_PATH_MAX + 16], err[256];
	int r;

	if (!m)
		return -ENOMEM;
	m->env = *env;
	mosquitto_lib_init();
	snprintf(path, sizeof(path), "%s/outbox.db", env->conf->state_dir);
	/* Without the buffer the links still work; publications made while one
	 * is down are then lost, and the log says why. */
	if (outbox_open(path, (unsigned)env->conf->mqtt_buffer_max, &m->outbox, err, sizeof(err)) <
	    0)
		log_err("mqtt: buffer %s: %s (publications during outages are lost)", path, err);
	for (int i = 0; i < MQTT_LINKS; i++) {
		if ((r = link_init(m, i + 1, &m->link[i])) < 0 ||
		    (r = stdtcp_init(m, i + 1, &m->tcp[i])) < 0) {
			mqtt_fini(m);
			return r;
		}
	}
	if ((r = publisher_init(m, &m->pub)) < 0) {
		mqtt_fini(m);
		return r;
	}
	if ((env->reg && (r = reg_subscribe(env->reg, on_device, m)) < 0) ||
	    (r = settings_subscribe(env->settings, keys, on_settings, m)) < 0) {
		mqtt_fini(m);
		return r;
	}
	mqtt_configure(m);
	*out = m;
	return 0;
}

void mqtt_configure(struct mqtt *m)
{
	if (!m)
		return;
	for (int i = 0; i < MQTT_LINKS; i++) {
		if (m->link[i])
			link_configure(m->link[i]);
		if (m->tcp[i])
			stdtcp_configure(m->tcp[i]);
	}
	if (m->pub)
		publisher_configure(m->pub);
	/* What a link announces follows the push links: re-announce on a change. */
	bool changed = false;

	for (int s = 0; s < DEV_SLOTS; s++) {
		int links = publisher_links(m->pub, s);

		changed |= links != m->pushlinks[s];
		m->pushlinks[s] = links;
	}
	for (int i = 0; changed && i < MQTT_LINKS; i++)
		if (m->link[i] && link_connected(m->link[i]))
			announce(m, m->link[i], false);
}

void mqtt_fini(struct mqtt *m)
{
	if (!m)
		return;
	settings_unsubscribe(m->env.settings, on_settings, m);
	if (m->env.reg)
		reg_unsubscribe(m->env.reg, on_device, m);
	publisher_fini(m->pub);
	for (int i = 0; i < MQTT_LINKS; i++) {
		if (m->link[i])
			link_fini(m->link[i]);
		if (m->tcp[i])
			stdtcp_fini(m->tcp[i]);
	}
	if (m->outbox)
		outbox_close(m->outbox);
	mosquitto_lib_cleanup();
	free(m);
}

const char *mqtt_link_status_text(struct mqtt *m, int n)
{
	long p;

	if (!m || n < 1 || n > MQTT_LINKS)
		return "Disabled";
	p = link_proto(m, n);
	if (p == PROTO_MQTT && m->link[n - 1])
		return link_status(m->link[n - 1]);
	if (p == PROTO_STDTCP && m->tcp[n - 1])
		return stdtcp_status(m->tcp[n - 1]);
	return "Disabled";
}

json_t *mqtt_status_json(struct mqtt *m)
{
	json_t *links = json_array();

	for (int n = 1; m && n <= MQTT_LINKS; n++) {
		long p = link_proto(m, n);

		json_array_append_new(
		    links, json_pack("{s:i, s:s, s:s, s:i, s:I}", "link", n, "protocol",
				     p >= 0 && p <= 2 ? proto_names[p] : "?", "status",
				     mqtt_link_status_text(m, n), "buffered",
				     m->outbox ? (int)outbox_count(m->outbox, n) : 0, "dropped",
				     (json_int_t)(m->outbox ? outbox_dropped(m->outbox, n) : 0)));
	}
	return links;
}

/* ---- events from the links ---- */

void mqtt_on_connect(struct mqtt *m, struct mqtt_link *l)
{
	json_t *hello = mqtt_hello_json(m->env.conf);
	char *txt = hello ? json_dumps(hello, SG_JSON_FLAGS) : NULL;

	if (txt)
		link_publish(l, SUB_HELLO, txt, strlen(txt), 1, false);
	free(txt);
	json_decref(hello);
	/* The replay first, so the current state sent with the announcement
	 * queues behind older buffered readings instead of being overtaken. */
	publisher_link_up(m->pub, link_number(l));
	announce(m, l, false);
}

void mqtt_on_disconnect(struct mqtt *m, struct mqtt_link *l)
{
	(void)m, (void)l; /* the publisher notices through link_connected() */
}

static bool payload_is(const void *payload, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(payload, want, len);
}

void mqtt_on_message(struct mqtt *m, struct mqtt_link *l, const char *topic, const void *payload,
		     size_t len)
{
	char cmd[160];
	size_t n;

	mqtt_cmd_topic(m, link_number(l), cmd, sizeof(cmd));
	n = strlen(cmd);
	if (!strcmp(topic, cmd)) {
		mqtt_cmd_run(m, l, payload, len);
	} else if (!strncmp(topic, cmd, n) && topic[n] == '/') {
		if (!hadisc_command(m, l, topic + n + 1, payload, len))
			log_debug("mqtt%d: ignored message on %s", link_number(l), topic);
	} else if (!strcmp(topic, HA_STATUS_TOPIC)) {
		/* Home Assistant restarted: it lost what was not retained on its side. */
		if (payload_is(payload, len, "online"))
			announce(m, l, true);
	}
}

void mqtt_on_published(struct mqtt *m, struct mqtt_link *l, int mid)
{
	publisher_acked(m->pub, link_number(l), mid);
}
