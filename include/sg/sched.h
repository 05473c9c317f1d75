/* Poll timing decisions, kept pure so they can be tested without a bus. */
#ifndef SG_SCHED_H
#define SG_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#define SCHED_FAILS_DOWN 3 /* consecutive failed cycles before "not responding" */
#define SCHED_BACKOFF_MAX_MS 30000

/* Delay from the start of the last cycle to the next one: the interval while
 * the device answers, then doubling back-off (capped) once it is down. */
int64_t sched_next_delay(int64_t interval_ms, unsigned fails);
/* Whether counters are due in a cycle starting at now (never read: due). */
bool sched_counters_due(int64_t now_ms, int64_t last_ms, int64_t interval_ms);
/* Response timeout for a scan probe at baud: request + reply on the wire, plus margin. */
int sched_scan_timeout_ms(int baud);
/* Wire time of an RTU frame of bytes at baud with bits_per_char (10 for 8N1),
 * plus the 3.5-character silent interval, in microseconds. */
int64_t sched_rtu_frame_us(unsigned bytes, int baud, unsigned bits_per_char);

#endif
