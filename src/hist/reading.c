/* One place adds the gateway's context to the reading documents (the local
 * read time in the gateway's zone, the active tariff), so REST, sgctl and MQTT
 * never disagree about them. */
#include "sg/reading.h"

#include "sg/dev.h"
#include "sg/hist.h"
#include "sg/localtime.h"

/* read_time: read_at_ms as local text, null when never read. Without
 * settings (unit tests) the zone is UTC. */
static json_t *read_time(const struct settings *s, int64_t ms)
{
	struct sg_tz z = s ? tz_from_settings(s) : (struct sg_tz){0, false};
	char txt[TZ_TEXT_LEN];

	if (!ms)
		return json_null();
	tz_text(&z, (time_t)(ms / 1000), txt, sizeof(txt));
	return json_string(txt);
}

json_t *reading_json(struct hist *h, const struct settings *s, const struct dev *d, bool counters)
{
	json_t *doc = dev_reading_json(d, counters), *hdr;
	int t = h ? hist_active_tariff(h) : -1;

	hdr = doc ? json_object_get(doc, "header") : NULL;
	if (!hdr ||
	    json_object_set_new(hdr, "read_time", read_time(s, counters ? d->ctr_ms : d->meas_ms)) <
		0 ||
	    json_object_set_new(hdr, "active_tariff", t >= 0 ? json_integer(t + 1) : json_null()) <
		0) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}
