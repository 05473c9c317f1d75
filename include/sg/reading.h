/* The measurement and counter documents as every interface serves them
 * (REST, MQTT commands and pushes, the XML push): the device model's reading
 * with the gateway's active tariff in the header (R-E1 "shown in status and
 * measurements"). */
#ifndef SG_READING_H
#define SG_READING_H

#include <jansson.h>
#include <stdbool.h>

struct dev;
struct hist;
struct settings;

/* dev_reading_json(d, counters) plus header.read_time (the read time as
 * tz_text in the zone of settings s; UTC when s is NULL; null when never
 * read) and header.active_tariff: the 1-based tariff active now, as
 * status.active_tariff, or null without a calendar (or without history, h
 * NULL). NULL when out of memory. */
json_t *reading_json(struct hist *h, const struct settings *s, const struct dev *d, bool counters);

#endif
