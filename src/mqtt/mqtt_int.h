/* Private to src/mqtt/: how the link, command, publisher, discovery,
 * Standard-TCP and buffer modules talk to each other. Ownership:
 *   mqtt.c      struct mqtt: the two links, the buffer, the publisher; routes events
 *   link.c      one MQTT connection (libmosquitto in the loop, TLS, reconnect back-off, status)
 *   stdtcp.c    one Standard TCP push link (XML over a short TCP connection)
 *   outbox.c    the disk buffer (<state_dir>/outbox.db, SQLite)
 *   publisher.c periodic publications per slot and link, buffer replay
 *   cmds.c      commands arriving on <root>/<sub topic>
 *   hadisc.c    Home Assistant discovery configs and switch commands */
#ifndef SG_MQTT_INT_H
#define SG_MQTT_INT_H

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sg/conf.h"
#include "sg/dev.h"
#include "sg/loop.h"
#include "sg/mqtt.h"
#include "sg/registry.h"
#include "sg/settings.h"

struct mqtt_link;
struct stdtcp;
struct outbox;
struct publisher;

enum link_proto { PROTO_NONE = 0, PROTO_MQTT = 1, PROTO_STDTCP = 2 };

/* Subtopics under <root>/<pub topic>/ (README "MQTT"). */
#define SUB_STATUS "status"	 /* command replies */
#define SUB_HELLO "status/hello" /* hello on connect */
#define SUB_ERROR "error"	 /* errors, as text */
#define SUB_AVAIL "availability" /* "online" / "offline" (last will), retained */
#define HA_STATUS_TOPIC "homeassistant/status"

/* Subtopic of d's own availability ("online"/"offline", retained), which HA
 * entities of the device require besides the link's: "device/<i>/availability"
 * for a meter, "bicom/<addr>/availability" for a Bicom (addr 0 = Right IR);
 * 0, or -ENOENT for a device that has none. Inline: the publisher and the
 * discovery module must agree, and are tested apart. */
static inline int mqtt_avail_sub(const struct dev *d, char *buf, size_t len)
{
	if (d->cls == CLASS_BICOM)
		snprintf(buf, len, "bicom/%d/%s", d->slot == DEV_SLOT_RIGHT_IR ? 0 : d->addr,
			 SUB_AVAIL);
	else if (dev_ha_index(d->slot) >= 0)
		snprintf(buf, len, "device/%d/%s", dev_ha_index(d->slot), SUB_AVAIL);
	else
		return -ENOENT;
	return 0;
}

struct mqtt {
	struct mqtt_env env;
	struct mqtt_link *link[MQTT_LINKS];
	struct stdtcp *tcp[MQTT_LINKS];
	struct outbox *outbox; /* NULL when the buffer could not be opened */
	struct publisher *pub;
	char announced[DEV_SLOTS][16]; /* serial last announced to HA, per slot */
	int pushlinks[DEV_SLOTS];      /* push-link masks the announcements followed */
};

/* ---- link.c ---- */
/* n = 1 or 2. The link reads its settings (push<n>_*, mqtt<n>_*) itself. */
int link_init(struct mqtt *m, int n, struct mqtt_link **out);
/* Follow the settings: protocol MQTT → connect (reconnect when a setting of
 * this link changed); otherwise disconnect and show "Disabled". */
void link_configure(struct mqtt_link *l);
/* Publish "offline" to availability if connected, disconnect, free. */
void link_fini(struct mqtt_link *l);
bool link_connected(const struct mqtt_link *l);
/* "Connected", "Connecting", "Error: <reason>", "Disabled". */
const char *link_status(const struct mqtt_link *l);
/* "<root>/<pub topic>" of this link (valid while configured). */
const char *link_base(const struct mqtt_link *l);
/* Publish to <root>/<pub topic>/<subtopic> (subtopic NULL = the base itself).
 * Returns the message id (> 0) for QoS 1, 0 for QoS 0, -ENOTCONN when not
 * connected, -EINVAL for a bad topic, -EIO otherwise. */
int link_publish(struct mqtt_link *l, const char *subtopic, const void *payload, size_t len,
		 int qos, bool retain);
/* Same to an absolute topic (homeassistant/...). */
int link_publish_abs(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
		     int qos, bool retain);
/* Subscribe to an absolute topic filter (QoS 1); done again on every (re)connect. */
int link_subscribe_abs(struct mqtt_link *l, const char *filter);
/* Messages not yet acknowledged by the broker (QoS 1 in flight + queued). */
unsigned link_pending(const struct mqtt_link *l);
int link_number(const struct mqtt_link *l);

/* ---- events from link.c, routed by mqtt.c ---- */
/* After CONNACK: link.c has already subscribed to <root>/<sub topic>,
 * <root>/<sub topic>/# and homeassistant/status and published "online". */
void mqtt_on_connect(struct mqtt *m, struct mqtt_link *l);
void mqtt_on_disconnect(struct mqtt *m, struct mqtt_link *l);
void mqtt_on_message(struct mqtt *m, struct mqtt_link *l, const char *topic, const void *payload,
		     size_t len);
/* The broker acknowledged QoS 1 message mid. */
void mqtt_on_published(struct mqtt *m, struct mqtt_link *l, int mid);

/* ---- cmds.c ---- */
/* "<root>/<sub topic>" of link n: where its commands (and HA switches) arrive. */
void mqtt_cmd_topic(const struct mqtt *m, int n, char *buf, size_t len);
/* A command on <root>/<sub topic>: reply on SUB_STATUS (JSON with "cmd"), or
 * on SUB_ERROR for a bad command / failed device. Never trusts the payload. */
void mqtt_cmd_run(struct mqtt *m, struct mqtt_link *l, const void *payload, size_t len);
/* {"hello": "hello world", "serial_number", "model_type", "sw_ver", "hw_ver"} */
json_t *mqtt_hello_json(const struct conf *c);

/* ---- hadisc.c ---- */
/* Publish (retained) the discovery configs of every identified device the
 * link publishes (push-link setting) and their Bicom switch states, and
 * remove those of the others; false (nothing sent) when the ha_discovery
 * setting is 0. */
bool hadisc_announce(struct mqtt *m, struct mqtt_link *l);
/* Topic under <root>/<sub topic>/ such as "bicom/3/set" with payload
 * "ON"/"OFF": switch that Bicom. True when the topic was a discovery command. */
bool hadisc_command(struct mqtt *m, struct mqtt_link *l, const char *subtopic, const void *payload,
		    size_t len);

/* ---- stdtcp.c ---- */
int stdtcp_init(struct mqtt *m, int n, struct stdtcp **out);
void stdtcp_configure(struct stdtcp *t);
void stdtcp_fini(struct stdtcp *t);
/* Push one device's reading as XML (README "Standard TCP"); result shows in
 * the status. Pushes while one is in flight are queued (bounded). */
void stdtcp_push(struct stdtcp *t, const struct dev *d);
const char *stdtcp_status(const struct stdtcp *t);
/* The XML document for one device (also used by the tests through a unit test). */
char *stdtcp_xml(const struct settings *s, const struct dev *d);

/* ---- outbox.c ---- */
struct outbox_msg {
	int64_t id;
	int64_t ts_ms; /* when it was made (the payload carries its own read time too) */
	char *subtopic;
	char *payload;
	size_t len;
};
/* Open/create path; max_rows per link (oldest dropped beyond it). */
int outbox_open(const char *path, unsigned max_rows, struct outbox **out, char *err, size_t errlen);
void outbox_close(struct outbox *o);
/* Append; drops the oldest of that link when full (counted). 0 or -errno. */
int outbox_push(struct outbox *o, int link, int64_t ts_ms, const char *subtopic,
		const char *payload, size_t len);
/* Up to max oldest messages of link, oldest first; *n set. Free with outbox_msgs_free. */
int outbox_peek(struct outbox *o, int link, unsigned max, struct outbox_msg *out, unsigned *n);
void outbox_msgs_free(struct outbox_msg *v, unsigned n);
/* Delete messages of link with id <= id. */
int outbox_delete_upto(struct outbox *o, int link, int64_t id);
/* Messages held / dropped (persisted) for link. */
unsigned outbox_count(struct outbox *o, int link);
uint64_t outbox_dropped(struct outbox *o, int link);

/* ---- publisher.c ---- */
int publisher_init(struct mqtt *m, struct publisher **out);
/* Re-read per-slot push links and intervals (leftir_pushlink/intv,
 * rs485_pushlnkN/pushintN, ir_relay_pushlink/intv). */
void publisher_configure(struct publisher *p);
void publisher_fini(struct publisher *p);
/* A link came up: replay its buffer in order, then live publications resume. */
void publisher_link_up(struct publisher *p, int link);
/* Right after a Home Assistant announcement on link: the current reading of
 * every meter the link publishes (behind any buffered ones; one the link was
 * already given only when force, for HA's birth message) and every device's
 * availability, so no entity waits for the next interval. */
void publisher_state_now(struct publisher *p, int link, bool force);
/* Push-link mask of slot as last configured (bit 0 link 1, bit 1 link 2). */
int publisher_links(const struct publisher *p, int slot);
void publisher_acked(struct publisher *p, int link, int mid);

#endif
