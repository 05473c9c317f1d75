/* Device descriptions (src/dev/desc.c): one input is one description file. */
#include "fuzz.h"
#include "sg/desc.h"

#include <stdbool.h>
#include <stdlib.h>

/* The reads the loader built must be valid Modbus requests. */
static void check_blocks(const struct desc_block *b, unsigned n)
{
	if (n > DESC_BLOCK_MAX)
		abort();
	for (unsigned i = 0; i < n; i++) {
		bool bits = b[i].space == SPACE_COIL || b[i].space == SPACE_DISCRETE;

		if (b[i].count < 1 || b[i].count > (bits ? 2000 : 125) ||
		    (uint32_t)b[i].start + b[i].count > 65536)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("desc.json", data, size);
	struct desc *d = NULL;
	char err[512];

	if (path && desc_load_file(path, &d, err, sizeof(err)) == 0) {
		struct desc_set set = {.v = &d, .n = 1};

		check_blocks(d->meas_blocks, d->nmeas_blocks);
		check_blocks(d->ctr_blocks, d->nctr_blocks);
		check_blocks(d->cfg_blocks, d->ncfg_blocks);
		if (d->nmeas > DESC_MEAS_MAX || d->nctr > DESC_CTR_MAX ||
		    d->nmatch > DESC_MATCH_MAX)
			abort();
		/* What the poller asks of a loaded description. */
		(void)desc_match(&set, d->match[0]);
		(void)desc_find(&set, d->name);
		desc_free(d);
	}
	return 0;
}
