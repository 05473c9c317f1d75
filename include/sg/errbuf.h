/* The "char *err, size_t errlen" out-parameter used by loaders and parsers. */
#ifndef SG_ERRBUF_H
#define SG_ERRBUF_H

#include <stddef.h>

/* Format a one-line message into err (no-op when err is NULL or errlen 0). */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
