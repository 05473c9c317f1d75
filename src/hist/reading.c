/* One place adds the tariff to the reading documents, so REST and MQTT never
 * disagree about it. */
#include "sg/reading.h"

#include "sg/dev.h"
#include "sg/hist.h"

json_t *reading_json(struct hist *h, const struct dev *d, bool counters)
{
	json_t *doc = dev_reading_json(d, counters), *hdr;
	int t = h ? hist_active_tariff(h) : -1;

	hdr = doc ? json_object_get(doc, "header") : NULL;
	if (hdr && json_object_set_new(hdr, "active_tariff",
				       t >= 0 ? json_integer(t + 1) : json_null()) < 0) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}
