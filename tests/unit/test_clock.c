/* The test clock: lock-step time moves only at clock_lockstep_advance, by
 * exactly its step, holds with step 0, is mirrored into the shared file a
 * simulator follows, and gives way to clock_simulate (mirror back to 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1792886400000LL /* 2026-10-25 00:00 UTC */

static char mirror_path[64];

static int64_t mirror_value(void)
{
	int fd = open(mirror_path, O_RDONLY);
	int64_t v = -1;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &v, sizeof(v), 0), sizeof(v));
	close(fd);
	return v;
}

static void test_lockstep_moves_by_steps(void **state)
{
	(void)state;
	assert_int_equal(clock_lockstep(T0, 600000, 0, NULL), 0);
	assert_int_equal(clock_wall_ms(), T0);
	usleep(20000); /* real time passing moves nothing */
	assert_int_equal(clock_wall_ms(), T0);
	assert_int_equal(clock_wall(), T0 / 1000);
	for (int i = 0; i < 5; i++)
		clock_lockstep_advance();
	assert_int_equal(clock_wall_ms(), T0 + 5 * 600000LL);
	/* hold: advances do nothing */
	assert_int_equal(clock_lockstep(T0 + 900000, 0, 0, NULL), 0);
	clock_lockstep_advance();
	clock_lockstep_advance();
	assert_int_equal(clock_wall_ms(), T0 + 900000);
	/* until: stops there exactly, even off the step grid */
	assert_int_equal(clock_lockstep(T0, 600000, T0 + 1500000, NULL), 0);
	for (int i = 0; i < 5; i++)
		clock_lockstep_advance();
	assert_int_equal(clock_wall_ms(), T0 + 1500000);
	assert_int_equal(clock_lockstep(T0 + 900000, 0, 0, NULL), 0);
	assert_int_equal(clock_lockstep(0, 1, 0, NULL), -EINVAL);
	assert_int_equal(clock_lockstep(T0, -1, 0, NULL), -EINVAL);
	assert_int_equal(clock_wall_ms(), T0 + 900000);
}

static void test_mirror_follows(void **state)
{
	(void)state;
	strcpy(mirror_path, "/tmp/test_clock_XXXXXX");
	close(mkstemp(mirror_path));
	assert_int_equal(clock_lockstep(T0, 300000, 0, mirror_path), 0);
	assert_int_equal(mirror_value(), T0);
	clock_lockstep_advance();
	assert_int_equal(mirror_value(), T0 + 300000);
	/* re-locking never shows 0 in between (a simulator would fall back) */
	assert_int_equal(clock_lockstep(T0 + 7200000, 0, 0, mirror_path), 0);
	assert_int_equal(mirror_value(), T0 + 7200000);
	/* leaving lock-step: real-rate simulated time, mirror says 0 */
	clock_simulate(T0, 1);
	assert_int_equal(mirror_value(), 0);
	assert_true(clock_wall_ms() >= T0 && clock_wall_ms() < T0 + 5000);
	clock_lockstep_advance(); /* not locked: nothing */
	assert_true(clock_wall_ms() < T0 + 5000);
	assert_int_equal(clock_lockstep(T0, 1, 0, "/nonexistent-dir/x"), -ENOENT);
	unlink(mirror_path);
}

static void test_poll_second(void **state)
{
	(void)state;
	unsetenv("SGD_TEST_HOOKS");
	setenv("SGD_TEST_POLL_MS", "5", 1);
	assert_int_equal(clock_poll_second_ms(), 1000); /* hooks off: ignored */
	setenv("SGD_TEST_HOOKS", "1", 1);
	assert_int_equal(clock_poll_second_ms(), 5);
	setenv("SGD_TEST_POLL_MS", "0", 1);
	assert_int_equal(clock_poll_second_ms(), 1000);
	setenv("SGD_TEST_POLL_MS", "5x", 1);
	assert_int_equal(clock_poll_second_ms(), 1000);
	unsetenv("SGD_TEST_POLL_MS");
	assert_int_equal(clock_poll_second_ms(), 1000);
	unsetenv("SGD_TEST_HOOKS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lockstep_moves_by_steps),
	    cmocka_unit_test(test_mirror_follows),
	    cmocka_unit_test(test_poll_second),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
