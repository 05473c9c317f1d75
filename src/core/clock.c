/* All time reads go through here. Tests move wall time: an offset, and a
 * rate at which simulated time runs from the moment it was set (so days pass
 * in minutes while the daemon keeps polling in real time). */
#include "sg/clock.h"

#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t offset_ms;      /* simulated - real at anchor */
static int64_t anchor_real_ms; /* real wall ms when the rate was set */
static int rate = 1;

int64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	int64_t real = real_wall_ms(), v;

	pthread_mutex_lock(&mu);
	v = rate == 1 ? real + offset_ms
		      : anchor_real_ms + offset_ms + (real - anchor_real_ms) * rate;
	pthread_mutex_unlock(&mu);
	return v;
}

time_t clock_wall(void)
{
	return (time_t)(clock_wall_ms() / 1000);
}

void clock_set_offset(int64_t offset_s)
{
	pthread_mutex_lock(&mu);
	offset_ms = offset_s * 1000;
	anchor_real_ms = real_wall_ms();
	rate = 1;
	pthread_mutex_unlock(&mu);
}

void clock_simulate(int64_t wall_ms, int r)
{
	int64_t real = real_wall_ms();

	pthread_mutex_lock(&mu);
	anchor_real_ms = real;
	offset_ms = wall_ms - real;
	rate = r < 1 ? 1 : r;
	pthread_mutex_unlock(&mu);
}
