/* settings.json loading (src/core/settings.c settings_load): each input is
 * loaded as the file is, then once more with its "crc" member corrected, so
 * the fuzzer gets past the CRC check into the values. */
#include "fuzz.h"
#include "sg/settings.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* CRC-32 as settings.c computes it over the canonical settings object. */
static uint32_t crc32_of(const char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= (uint8_t)p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

static void load(const char *dir, const uint8_t *data, size_t size)
{
	char name[300], err[512];
	struct settings *s;

	snprintf(name, sizeof(name), "%s/settings.json", strrchr(dir, '/') + 1);
	if (!fuzz_write(name, data, size))
		return;
	if (settings_init(&s, dir, "SG000001", "SG-E1") < 0)
		return;
	(void)settings_load(s, err, sizeof(err));
	(void)settings_crc(s);
	json_decref(settings_to_json(s, true));
	settings_fini(s);
}

/* The input with a correct crc member, or NULL when it is not such a file. */
static char *with_crc(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *obj = json_object_get(doc, "settings");
	char *txt = NULL, crc[16];

	if (json_is_object(obj) && (txt = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT))) {
		snprintf(crc, sizeof(crc), "0x%08x", crc32_of(txt, strlen(txt)));
		free(txt);
		json_object_set_new(doc, "crc", json_string(crc));
		txt = json_dumps(doc, JSON_PRESERVE_ORDER);
	}
	json_decref(doc);
	return txt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[300];
	char *fixed;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/state", fuzz_tmpdir());
		mkdir(dir, 0700);
	}
	load(dir, data, size);
	fixed = with_crc(data, size);
	if (fixed) {
		load(dir, (const uint8_t *)fixed, strlen(fixed));
		free(fixed);
	}
	return 0;
}
