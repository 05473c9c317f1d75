/* stderr logging with "<N>" syslog priority prefixes; journald parses them. */
#include "sg/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int min_prio = 6;

/* log_disable1 in bits 0-15, log_disable2 in 16-31; read by worker threads. */
static _Atomic uint32_t disabled;

/* The modules of sgd by the prefix their lines start with, each on the bit
 * of the Iskra gateway's log tag for the same job (log_disable1: 2 bicom,
 * 7 graph, 8 http_server, 10 LEFT_IR, 14 MQTT; log_disable2: 2 push,
 * 3 RS485_APP, 5 TCP Server, 6 UDP). Lines of no module here (start-up,
 * shutdown, reload) are never dropped. */
static const struct {
	const char *prefix;
	unsigned bit;
} tags[] = {
    {"Right IR", 2},  {"load profile", 7}, {"history", 7},	   {"http", 8},
    {"Left IR", 10},  {"mqtt", 14},	   {"MQTT", 14},	   {"Standard TCP", 16 + 2},
    {"push", 16 + 2}, {"RS485", 16 + 3},   {"modbus tcp", 16 + 5}, {"discovery", 16 + 6},
};

void log_set_level(int level)
{
	min_prio = level;
}

void log_set_disabled(unsigned mask1, unsigned mask2)
{
	atomic_store(&disabled, (uint32_t)(mask1 & 0xFFFF) | (uint32_t)(mask2 & 0xFFFF) << 16);
}

/* A notice/info/debug line of a module whose logging is disabled. */
static bool quiet(int prio, const char *line)
{
	uint32_t mask = atomic_load(&disabled);

	if (prio <= LOG_WARNING || !mask)
		return false;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (!strncmp(line, tags[i].prefix, strlen(tags[i].prefix)))
			return (mask >> tags[i].bit) & 1;
	return false;
}

static void vlog(int prio, int err, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (prio > min_prio)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0 || quiet(prio, buf))
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
