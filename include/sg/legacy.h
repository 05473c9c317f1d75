/* The legacy Iskra REST API (000 §4.2): GET /get_command?command=get_measurements|
 * get_counters|get_settings. The documents are rendered here as pure functions
 * of the device model and the settings (the route itself is in rest.c), so
 * their exact keys and value formats ("220.5 V", "0.2124 Cap", "0.2 kWh") are
 * unit-tested without HTTP. */
#ifndef SG_LEGACY_H
#define SG_LEGACY_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "sg/dev.h"
#include "sg/settings.h"

/* The local_time texts of the documents come from tz_text (sg/localtime.h):
 * the gateway's own zone setting, never the host's. */
/* Strict device number / HA index: decimal digits only (no sign, blank or
 * suffix). 0 with *out set; -EINVAL when not a number; -ERANGE when above max. */
int legacy_parse_index(const char *s, long max, long *out);
/* get_measurements document of an identified device (d->d set): header and
 * the quantities read (d->meas_ok) as strings with units. */
json_t *legacy_measurements(const struct dev *d, int number, const char *local_time);
/* get_counters document ("cmd": "get_energy_counters"): header with counts,
 * counters in k-units ("0.2 kWh"), and the phase/tariff settings. */
json_t *legacy_counters(const struct dev *d, int number, const char *local_time);
/* get_settings document: every key in table order; secrets as "" (their
 * values are never returned). */
json_t *legacy_settings(const struct settings *s, const char *timestamp);

#endif
