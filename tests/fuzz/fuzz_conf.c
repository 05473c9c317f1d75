/* Board configuration sgd.conf (src/core/conf.c conf_load). */
#include "fuzz.h"
#include "sg/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("sgd.conf", data, size);
	struct conf c;
	char err[512];

	if (path)
		(void)conf_load(path, &c, err, sizeof(err));
	return 0;
}
