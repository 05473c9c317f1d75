/* All time reads go through here; tests shift wall time with an offset. */
#include "sg/clock.h"

#include <stdatomic.h>

static _Atomic int64_t wall_offset_s;

int64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec + wall_offset_s) * 1000 + ts.tv_nsec / 1000000;
}

time_t clock_wall(void)
{
	return (time_t)(clock_wall_ms() / 1000);
}

void clock_set_offset(int64_t offset_s)
{
	wall_offset_s = offset_s;
}
