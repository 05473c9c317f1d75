/* Poll timing: interval while healthy, capped exponential back-off when down. */
#include "sg/sched.h"

int64_t sched_next_delay(int64_t interval_ms, unsigned fails)
{
	int64_t d;

	if (fails < SCHED_FAILS_DOWN)
		return interval_ms;
	/* Down: stop loading the bus with timeouts, but keep probing so a
	 * device that comes back is found again by itself. */
	d = interval_ms > 1000 ? interval_ms : 1000;
	for (unsigned i = SCHED_FAILS_DOWN; i < fails && d < SCHED_BACKOFF_MAX_MS; i++)
		d *= 2;
	d = d < SCHED_BACKOFF_MAX_MS ? d : SCHED_BACKOFF_MAX_MS;
	/* never probe a dead device more often than a live one is polled */
	return d > interval_ms ? d : interval_ms;
}

bool sched_counters_due(int64_t now_ms, int64_t last_ms, int64_t interval_ms)
{
	return last_ms == 0 || now_ms - last_ms >= interval_ms;
}

int64_t sched_rtu_frame_us(unsigned bytes, int baud, unsigned bits_per_char)
{
	/* Modbus RTU: 3.5 character times of silence end a frame; above
	 * 19200 baud the spec fixes it at 1750 us. */
	int64_t gap = baud > 19200 ? 1750 : (int64_t)35 * bits_per_char * 1000000 / 10 / baud;

	return (int64_t)bytes * bits_per_char * 1000000 / baud + gap;
}

int sched_scan_timeout_ms(int baud)
{
	/* probe = 8-byte request + 31-byte reply (13 registers) */
	int64_t us = sched_rtu_frame_us(8, baud, 11) + sched_rtu_frame_us(31, baud, 11);

	return (int)(us / 1000) + 30;
}
