/* The tariff calendar tariffs.json (src/hist/tariffs.c): parse, and for a
 * valid calendar render it back, which must parse to an equal calendar, and
 * ask it for the active tariff around the year. */
#include "fuzz.h"
#include "sg/tariffs.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tariff_cal *c = NULL, *again = NULL;
	const char *path;
	char err[512], *txt;
	json_t *j;

	if (tariffs_parse((const char *)data, size, &c, err, sizeof(err)) < 0) {
		/* The file path (size limit, read) once for every refused input. */
		path = fuzz_write(TARIFFS_FILE, data, size);
		if (path && tariffs_load_file(path, &c, err, sizeof(err)) == 0)
			abort(); /* the file accepted what the text parser refused */
		return 0;
	}
	j = tariffs_to_json(c);
	txt = j ? json_dumps(j, 0) : NULL;
	if (txt && (tariffs_parse(txt, strlen(txt), &again, err, sizeof(err)) < 0 ||
		    !tariffs_equal(c, again)))
		abort(); /* its own rendering does not parse back the same */
	for (int mon = 1; mon <= 12; mon++)
		for (int mday = 1; mday <= 31; mday += 3) {
			(void)tariffs_season_on(c, mon, mday);
			(void)tariffs_day_type(c, 2024, mon, mday);
		}
	free(txt);
	json_decref(j);
	tariffs_free(again);
	tariffs_free(c);
	return 0;
}
