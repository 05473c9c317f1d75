/* A serial line's state and statistics as JSON, shared by every status view
 * (sgctl status, GET /api). */
#ifndef SG_BUSJSON_H
#define SG_BUSJSON_H

#include <jansson.h>

#include "sg/bus.h"

/* {"name", "device", "state": "open"|"closed"|"absent", "baud", "parity",
 * "stop_bits", "transactions", "errors", "timeouts", "queue", "last_error"};
 * b NULL = the board has no such port (only name, device "" and state). */
json_t *busjson_status(const char *name, struct bus *b);

#endif
