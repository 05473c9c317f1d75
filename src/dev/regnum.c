/* Iskra register numbering <-> PDU addresses. */
#include "sg/regnum.h"

#include <errno.h>
#include <stdlib.h>

static const long base5[] = {
    [SPACE_COIL] = 1, [SPACE_DISCRETE] = 10001, [SPACE_INPUT] = 30001, [SPACE_HOLDING] = 40001};

int regnum_from_long(long n, enum desc_space *space, uint16_t *pdu)
{
	static const enum desc_space by_digit[] = {SPACE_COIL, SPACE_DISCRETE, 0, SPACE_INPUT,
						   SPACE_HOLDING};
	long digit, off;

	if (n >= 1 && n <= 49999) {
		digit = n / 10000;
		off = n % 10000 - 1;
		if (digit == 2 || (digit > 0 && n % 10000 == 0))
			return -EINVAL;
		if (digit == 0)
			off = n - 1;
	} else if (n >= 100001 && n <= 465536) {
		digit = n / 100000;
		off = n % 100000 - 1;
		if (digit == 2 || off < 0 || off > 65535)
			return -ERANGE;
	} else {
		return -ERANGE;
	}
	*space = by_digit[digit];
	*pdu = (uint16_t)off;
	return 0;
}

int regnum_parse(const char *s, enum desc_space *space, uint16_t *pdu)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	return regnum_from_long(n, space, pdu);
}

long regnum_format(enum desc_space space, uint16_t pdu)
{
	static const long base6[] = {[SPACE_COIL] = -1,
				     [SPACE_DISCRETE] = 100001,
				     [SPACE_INPUT] = 300001,
				     [SPACE_HOLDING] = 400001};

	if (pdu <= 9998)
		return base5[space] + pdu;
	/* No six-digit coil form exists: -1 rather than a number that means
	 * another register. */
	return base6[space] < 0 ? -1 : base6[space] + pdu;
}
