/* Small helpers of the simulator: time, number parsing, PRNG, baud codes. */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

static const unsigned baud_codes[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
#define NBAUD (sizeof(baud_codes) / sizeof(baud_codes[0]))

int64_t sim_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sim_real_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sim_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int sim_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || errno == ERANGE || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

uint64_t sim_rand(uint64_t *state)
{
	uint64_t x = *state;

	/* xorshift64* never leaves the zero state, so never enter it */
	if (x == 0)
		x = 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

double sim_rand01(uint64_t *state)
{
	return (double)(sim_rand(state) >> 11) / 9007199254740992.0;
}

unsigned sim_baud_of_code(unsigned code)
{
	return code < NBAUD ? baud_codes[code] : 0;
}

int sim_code_of_baud(unsigned baud)
{
	unsigned i;

	for (i = 0; i < NBAUD; i++)
		if (baud_codes[i] == baud)
			return (int)i;
	return -EINVAL;
}
