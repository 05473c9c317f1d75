/* The gateway status (R-F2) as one JSON document: GET /api and the status
 * page show it; HA reads its "device" object. */
#ifndef SG_STATUS_H
#define SG_STATUS_H

#include <jansson.h>

#include <stdint.h>

struct bus;
struct conf;
struct desc_set;
struct hist;
struct loop;
struct modbus;
struct mqtt;
struct settings;
struct store;

/* What the status document reads; filled by the program once its modules
 * exist. Handles that may be missing are noted. */
struct status_env {
	const struct conf *conf;
	const struct desc_set *descs;
	struct settings *settings;
	struct store *store;	  /* NULL: no pulse counter */
	struct bus *const *buses; /* CONF_BUS_COUNT entries, NULL where absent */
	struct reg *reg;
	struct loop *loop;
	struct mqtt *mqtt;     /* NULL: links shown as Disabled */
	struct modbus *modbus; /* NULL: "modbus": null */
	struct hist *hist;     /* NULL without history */
	int64_t start_mono_ms; /* for the uptime */
};

/* {"device": {model_type, serial_number, description, location, sw_ver,
 * hw_ver, fs_ver, mac}, "status": {...}, "network": {...}, "links": [...],
 * "buses": [...], ...} — see status.c for every member. */
json_t *status_json(const struct status_env *e);
/* {"source": "settings.json"|"settings.json.prev"|"defaults", "error": text or null}. */
json_t *status_settings_file_json(const struct settings *s);

#endif
