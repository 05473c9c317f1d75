/* Logging to stderr with syslog priority prefixes ("<3>" …) that journald reads. */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stdbool.h>
#include <syslog.h> /* LOG_ERR … LOG_DEBUG priorities */

/* Raise or lower the lowest priority printed (LOG_DEBUG … LOG_ERR). */
void log_set_level(int level);
/* The settings log_disable1 / log_disable2: bit masks of modules (the
 * Iskra gateway's log tags, table in log.c) whose notice, info and debug
 * lines are dropped; their warnings and errors are always logged. */
void log_set_disabled(unsigned mask1, unsigned mask2);
/* Log at syslog priority prio without errno. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log at priority prio, appending ": strerror(err)" (err is a positive errno). */
void log_errno(int prio, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_err(...) log_msg(3, __VA_ARGS__)
#define log_warn(...) log_msg(4, __VA_ARGS__)
#define log_notice(...) log_msg(5, __VA_ARGS__)
#define log_info(...) log_msg(6, __VA_ARGS__)
#define log_debug(...) log_msg(7, __VA_ARGS__)

#endif
