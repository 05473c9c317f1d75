/* Iskra documentation register numbers (1-based, space by leading digit:
 * 0xxxx coil, 1xxxx discrete input, 3xxxx input, 4xxxx holding; six-digit
 * forms 3xxxxx/4xxxxx too) to and from PDU addresses. */
#ifndef SG_REGNUM_H
#define SG_REGNUM_H

#include <stdint.h>

#include "sg/desc.h"

/* Parse a register number; 0 or -EINVAL/-ERANGE. */
int regnum_parse(const char *s, enum desc_space *space, uint16_t *pdu);
/* Convert a numeric register number; 0 or -EINVAL/-ERANGE. */
int regnum_from_long(long n, enum desc_space *space, uint16_t *pdu);
/* The documentation number of a PDU address (5 digits when it fits); -1 for
 * coils above 9998, which have no documentation number. */
long regnum_format(enum desc_space space, uint16_t pdu);

#endif
