/* Private to cmds.c and hadisc.c: the parts that need no broker and no bus
 * (payload parsing, the set_settings key mapping, discovery configs),
 * exported so tests/unit/test_mqtt_cmds.c can call them directly. */
#ifndef SG_MQTT_CMDS_INT_H
#define SG_MQTT_CMDS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mqtt_int.h"
#include "sg/bus.h"
#include "sg/dev.h"

#define CMD_PAYLOAD_MAX (64 * 1024) /* larger commands are refused unread */
#define CMD_NAME_MAX 40
#define CMD_ERR_MAX 256
#define CMD_CERT_MAX (16 * 1024)

/* ---- cmds.c ---- */

/* The "data" object of a command payload (a new reference), with its "cmd"
 * copied to name (clipped to printable ASCII; "" when missing or not a
 * string). NULL with the reason in err for anything but
 * {"data": {"cmd": "<string>", …}} of at most CMD_PAYLOAD_MAX bytes. */
json_t *cmd_parse(const void *payload, size_t len, char name[CMD_NAME_MAX], char *err,
		  size_t errlen);
/* The settings change set of a set_settings command (a new object): every
 * member but "cmd" (or the members of a lone "settings" object), with the
 * manual's unnumbered keys "mqtt_X" / "push_X" (000 §4.8.4) mapped to
 * "mqtt<link>_X" / "push<link>_X" when X is not a key itself. NULL with err
 * when empty or when two members name the same setting. */
json_t *cmd_settings_changes(json_t *data, int link, char *err, size_t errlen);

/* Link n (1 or 2) if it is still connected, else NULL (logged): for replies
 * of operations that finished after the link may have gone. m outlives
 * them: mqtt_fini runs after the buses stopped, whose cancellations are the
 * last completions (src/sgd/main.c). */
struct mqtt_link *cmd_link_again(struct mqtt *m, int n, const char *what);
/* JSON string of a message, made valid even if err truncation cut a UTF-8 sequence. */
json_t *cmd_text(const char *s);

/* ---- hadisc.c ---- */

/* What a discovery config refers to. */
struct hadisc_env {
	const char *gw;	      /* gateway serial, safe for ids and topics */
	const char *gw_model; /* model_type */
	const char *hw_ver;
	const char *base; /* <root>/<pub topic> */
	const char *cmd;  /* <root>/<sub topic> */
};
/* Receives each config: topic and document (owned by the callee). */
typedef void (*hadisc_emit_cb)(const char *topic, json_t *config, void *arg);
/* Every config of the device d (sensors of a meter or analyser, the switch of
 * a Bicom); none for an empty or unidentified slot. */
void hadisc_device_configs(const struct hadisc_env *e, const struct dev *d, hadisc_emit_cb emit,
			   void *arg);
/* The gateway's own config (the via_device of every device): a connectivity
 * sensor on the availability topic. */
void hadisc_gateway_config(const struct hadisc_env *e, hadisc_emit_cb emit, void *arg);
/* Copy s to out with anything but [A-Za-z0-9_-] as '_' (ids and topic levels). */
void hadisc_id(const char *s, char *out, size_t len);
/* Push-link mask setting of a slot (bit 0 link 1, bit 1 link 2). */
int hadisc_slot_links(const struct settings *st, int slot);
/* Publish a Bicom's state ("ON"/"OFF", retained) on base/bicom/<addr>/state. */
void hadisc_publish_state(struct mqtt_link *l, int addr, bool on);

#endif
