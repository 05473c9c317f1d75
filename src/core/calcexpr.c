/* Parser of calculate equations: [+|-] INDEX { (+|-) INDEX }. */
#include "sg/calcexpr.h"

#include <errno.h>
#include <stdio.h>

static const char *skip(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

int calc_parse(const char *text, struct calc_term *terms, char *err, size_t errlen)
{
	const char *p = skip(text);
	int n = 0;

	while (*p) {
		int sign = 1, v = 0, digits = 0;

		if (*p == '+' || *p == '-') {
			sign = *p == '-' ? -1 : 1;
			p = skip(p + 1);
		} else if (n > 0) {
			snprintf(err, errlen, "at '%.8s': expected + or - between devices", p);
			return -EINVAL;
		}
		while (*p >= '0' && *p <= '9' && digits < 3) {
			v = v * 10 + (*p++ - '0');
			digits++;
		}
		if (!digits || v > 16 || (*p >= '0' && *p <= '9')) {
			snprintf(err, errlen, "at '%.8s': expected a device index 0…16",
				 p - digits);
			return -EINVAL;
		}
		if (n == CALC_TERMS_MAX) {
			snprintf(err, errlen, "at most %d devices", CALC_TERMS_MAX);
			return -EINVAL;
		}
		terms[n++] = (struct calc_term){sign, v};
		p = skip(p);
	}
	return n;
}
