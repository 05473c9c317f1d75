/* sgctl's human-readable rendering of the daemon's reply data. */
#ifndef SGCTL_FMT_H
#define SGCTL_FMT_H

#include <jansson.h>
#include <stdio.h>

/* Print data for the command argv[0] (argc >= 1) in a human format; shapes the
 * formatter does not recognise fall back to pretty JSON. Missing members print
 * as "-". */
void fmt_reply(FILE *out, int argc, char *const argv[], json_t *data);
/* Pretty JSON (2-space indent) followed by a newline; nothing for null. */
void fmt_json(FILE *out, json_t *data);
/* A scalar as text: strings verbatim, numbers shortest, "-" for missing/null,
 * anything else as compact JSON. Returns buf. */
const char *fmt_scalar(json_t *v, char *buf, size_t len);
/* value with unit, scaled to a k/M/G prefix for energy and power units
 * (12345.6 "Wh" -> "12.3456", "kWh"). Writes the number to buf and the unit
 * to unit. */
void fmt_scaled(double value, const char *unit, char *buf, size_t len, char *uout, size_t ulen);

#endif
