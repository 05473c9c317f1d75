/* Load-profile "calculate" equations (R-B2): a signed sum of devices' series,
 * written with HA indexes, e.g. "1-0" (PV production on RS485 1 minus the
 * house meter on Left IR) or "0+2+3". Parsed where settings are validated and
 * where the series are summed. */
#ifndef SG_CALCEXPR_H
#define SG_CALCEXPR_H

#include <stddef.h>

#define CALC_TERMS_MAX 17

struct calc_term {
	int sign;  /* +1 or -1 */
	int index; /* HA index 0…16 */
};

/* Parse text ("" = no equation: 0 terms); spaces allowed between tokens.
 * Returns the number of terms, or -EINVAL with err naming the position. */
int calc_parse(const char *text, struct calc_term *terms, char *err, size_t errlen);

#endif
