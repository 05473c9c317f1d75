/* Load-profile "calculate" equations (src/core/calcexpr.c calc_parse). */
#include "fuzz.h"
#include "sg/calcexpr.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size), err[256];
	struct calc_term terms[CALC_TERMS_MAX];
	int n = calc_parse(text, terms, err, sizeof(err));

	/* Checked before reading terms[]: the compiler may assume the loop
	 * below stays inside the array and drop a later check. */
	if (n > CALC_TERMS_MAX)
		abort();
	for (int i = 0; i < n; i++)
		if ((terms[i].sign != 1 && terms[i].sign != -1) || terms[i].index < 0 ||
		    terms[i].index > 16)
			abort(); /* a term outside what the header promises */
	free(text);
	return 0;
}
