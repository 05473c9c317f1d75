/* Settings changes (src/core/settings.c settings_set_json, the path of
 * POST /api/settings, MQTT set_settings and the own Modbus unit; and
 * settings_set_kv, the path of sgctl set): a JSON input is a change set,
 * anything else is read as key=value lines. */
#include "fuzz.h"
#include "sg/settings.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings *s;
	char err[512];
	json_error_t je;
	json_t *doc, *all;

	/* No state directory: changes are validated and applied, not saved. */
	if (settings_init(&s, NULL, "SG000001", "SG-E1") < 0)
		return 0;
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (doc) {
		(void)settings_set_json(s, doc, err, sizeof(err));
		json_decref(doc);
	} else {
		char *text = fuzz_strndup(data, size), *save = NULL, *kv[KV_MAX];
		int n = 0;

		for (char *t = strtok_r(text, "\n", &save); t && n < KV_MAX;
		     t = strtok_r(NULL, "\n", &save))
			kv[n++] = t;
		(void)settings_set_kv(s, kv, n, err, sizeof(err));
		free(text);
	}
	/* Whatever was accepted must render (GET /api/settings) and round-trip. */
	all = settings_to_json(s, true);
	if (all) {
		json_object_del(all, "serial_number");
		json_object_del(all, "model_type");
		if (settings_set_json(s, all, err, sizeof(err)) < 0)
			abort(); /* its own output refused: a validation bug */
		json_decref(all);
	}
	(void)settings_crc(s);
	settings_fini(s);
	return 0;
}
