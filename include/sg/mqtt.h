/* Push/publish links (R-C4, R-C5): two links, each disabled, MQTT (TCP, TLS,
 * mutual TLS; libmosquitto driven from sgd's loop) or Iskra "Standard TCP"
 * (XML push). Periodic per-device publications, the command set of
 * CONTRACTS §2, Home Assistant MQTT discovery, and a disk buffer that keeps
 * periodic publications while a link is down. Topic layout: README "MQTT". */
#ifndef SG_MQTT_H
#define SG_MQTT_H

#include <jansson.h>

struct conf;
struct hist;
struct loop;
struct mqtt;
struct ops;
struct reg;
struct settings;

#define MQTT_LINKS 2

/* The handles the links use; owned by the caller, outliving the mqtt. */
struct mqtt_env {
	struct loop *loop;
	struct settings *settings;
	const struct conf *conf; /* state_dir, identity, mqtt_buffer_max */
	struct reg *reg;	 /* the devices published and announced */
	struct ops *ops;	 /* what commands run */
	struct hist *hist;	 /* active tariff in readings; NULL without history */
};

/* Create the links from the settings over env (copied); connecting starts
 * in the loop. 0 or -errno. */
int mqtt_init(const struct mqtt_env *env, struct mqtt **out);
/* Settings changed: links whose settings changed reconnect; schedules follow. */
void mqtt_configure(struct mqtt *m);
/* Publish "offline" where connected, disconnect, close the buffer. */
void mqtt_fini(struct mqtt *m);
/* [{"link": 1, "protocol": "MQTT"|"Standard TCP"|"none", "status": "Connected" |
 * "Connecting" | "Error: <reason>" | "Disabled", "buffered": n, "dropped": n}, …] */
json_t *mqtt_status_json(struct mqtt *m);
/* "Connected", "Error: …" of link n (1 or 2), for the status page. */
const char *mqtt_link_status_text(struct mqtt *m, int n);

#endif
