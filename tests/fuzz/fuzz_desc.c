/* Device descriptions (src/dev/desc.c): one input is one description file. */
#include "fuzz.h"
#include "sg/desc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("desc.json", data, size);
	struct desc *d = NULL;
	char err[512];

	if (path && desc_load_file(path, &d, err, sizeof(err)) == 0) {
		struct desc_set set = {.v = &d, .n = 1};

		/* What the poller asks of a loaded description. */
		(void)desc_match(&set, d->match[0]);
		(void)desc_find(&set, d->name);
		desc_free(d);
	}
	return 0;
}
