/* The gateway status (R-F2) as one JSON document: GET /api and the status
 * page show it; HA reads its "device" object. */
#ifndef SG_STATUS_H
#define SG_STATUS_H

#include <jansson.h>

struct app;

/* {"device": {model_type, serial_number, description, location, sw_ver,
 * hw_ver, fs_ver, mac}, "status": {...}, "network": {...}, "links": [...],
 * "buses": [...], ...} — see status.c for every member. */
json_t *status_json(struct app *a);
/* {"source": "settings.json"|"settings.json.prev"|"defaults", "error": text or null}. */
json_t *status_settings_file_json(struct app *a);
/* [{"file", "path" (member path, "" for the whole file), "reason"}] of skipped descriptions. */
json_t *status_desc_errors_json(struct app *a);

#endif
