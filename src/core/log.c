/* stderr logging with "<N>" syslog priority prefixes; journald parses them. */
#include "sg/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int min_prio = 6;

void log_set_level(int level)
{
	min_prio = level;
}

static void vlog(int prio, int err, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (prio > min_prio)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	/* One fprintf per line so lines from worker threads never interleave. */
	if (err)
		fprintf(stderr, "<%d>%s: %s\n", prio, buf, strerror(err));
	else
		fprintf(stderr, "<%d>%s\n", prio, buf);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, 0, fmt, ap);
	va_end(ap);
}

void log_errno(int prio, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, err, fmt, ap);
	va_end(ap);
}
