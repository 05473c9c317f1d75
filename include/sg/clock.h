/* The one place the daemon reads time, so tests can move it. */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds, for timeouts and intervals. */
int64_t clock_mono_ms(void);
/* Wall-clock seconds since the epoch (shifted by clock_set_offset). */
time_t clock_wall(void);
/* Wall-clock milliseconds since the epoch. */
int64_t clock_wall_ms(void);
/* Tests: shift wall-clock time by offset seconds (0 = real time). */
void clock_set_offset(int64_t offset_s);
/* Tests: wall time is wall_ms now and runs rate times as fast from here on
 * (rate 1: a plain jump). Reached through sgctl's "clock" command only when
 * sgd runs with SGD_TEST_HOOKS=1 in its environment. */
void clock_simulate(int64_t wall_ms, int rate);

#endif
