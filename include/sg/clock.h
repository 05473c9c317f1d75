/* The one place the daemon reads time, so tests can move it. */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds, for timeouts and intervals. */
int64_t clock_mono_ms(void);
/* Monotonic microseconds, for measuring short durations (a loop turn). */
int64_t clock_mono_us(void);
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
/* Tests: lock-step time. Wall time stands at wall_ms and moves by step_ms
 * only at clock_lockstep_advance(), which the poller calls after each
 * completed counter reading; so simulated weeks cost one poll per step
 * however fast or slow the polls run, and no step is ever skipped. When
 * mirror_path is not NULL the simulated time is also kept in that 8-byte file
 * (native int64 ms, atomic stores through a shared mapping) for a simulator
 * to follow. step_ms 0 holds time at wall_ms; time stops at until_ms when
 * that is > 0. 0, or -errno when the mirror cannot be set up (nothing
 * changes). clock_simulate() ends lock-step. */
int clock_lockstep(int64_t wall_ms, int64_t step_ms, int64_t until_ms, const char *mirror_path);
void clock_lockstep_advance(void);
/* Tests: real milliseconds one configured second of polling lasts: 1000,
 * or SGD_TEST_POLL_MS (1…1000) when sgd runs with SGD_TEST_HOOKS=1. */
int clock_poll_second_ms(void);

#endif
