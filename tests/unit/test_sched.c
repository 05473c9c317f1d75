/* Poll timing: back-off, counter cadence and RTU wire times against
 * hand-computed values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/sched.h"

#include <limits.h>
#include <stdint.h>

static void test_next_delay_healthy(void **state)
{
	(void)state;
	/* below SCHED_FAILS_DOWN consecutive failures: plain interval */
	for (unsigned f = 0; f < SCHED_FAILS_DOWN; f++) {
		assert_int_equal(sched_next_delay(500, f), 500);
		assert_int_equal(sched_next_delay(1000, f), 1000);
		assert_int_equal(sched_next_delay(5000, f), 5000);
		assert_int_equal(sched_next_delay(0, f), 0);
	}
}

static void test_next_delay_backoff(void **state)
{
	(void)state;
	/* interval 500: back-off starts at max(500, 1000) = 1000 and doubles */
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN), 1000);
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN + 1), 2000);
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN + 2), 4000);
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN + 3), 8000);
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN + 4), 16000);
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN + 5), SCHED_BACKOFF_MAX_MS);
	assert_int_equal(sched_next_delay(500, SCHED_FAILS_DOWN + 50), SCHED_BACKOFF_MAX_MS);
	assert_int_equal(sched_next_delay(500, UINT_MAX), SCHED_BACKOFF_MAX_MS);
	/* interval 0 (as fast as possible): down still waits 1 s */
	assert_int_equal(sched_next_delay(0, SCHED_FAILS_DOWN), 1000);
	/* interval 5000: 5000, 10000, 20000, then capped */
	assert_int_equal(sched_next_delay(5000, SCHED_FAILS_DOWN), 5000);
	assert_int_equal(sched_next_delay(5000, SCHED_FAILS_DOWN + 1), 10000);
	assert_int_equal(sched_next_delay(5000, SCHED_FAILS_DOWN + 2), 20000);
	assert_int_equal(sched_next_delay(5000, SCHED_FAILS_DOWN + 3), SCHED_BACKOFF_MAX_MS);
	/* interval 1500: 1500, 3000, 6000, 12000, 24000, cap */
	assert_int_equal(sched_next_delay(1500, SCHED_FAILS_DOWN + 4), 24000);
	assert_int_equal(sched_next_delay(1500, SCHED_FAILS_DOWN + 5), SCHED_BACKOFF_MAX_MS);
}

static void test_next_delay_monotonic(void **state)
{
	static const int64_t intervals[] = {0, 1, 250, 999, 1000, 1001, 2500, 7000, 15000, 29999};

	(void)state;
	for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		int64_t prev = -1;

		for (unsigned f = 0; f < 64; f++) {
			int64_t d = sched_next_delay(intervals[i], f);

			assert_true(d >= prev);
			if (f >= SCHED_FAILS_DOWN)
				assert_true(d <= SCHED_BACKOFF_MAX_MS);
			prev = d;
		}
	}
}

/* Regression (was a bug in sched_next_delay()): for an interval above
 * SCHED_BACKOFF_MAX_MS (e.g. 60000 ms) the delay drops from 60000 (fails 2)
 * to 30000 (fails >= 3): a device that stops answering is polled twice as
 * often as a healthy one, and the delay is not monotonic in fails. Expected:
 * once down, never shorter than the interval (60000 for fails >= 3). */
static void test_next_delay_long_interval(void **state)
{
	(void)state;
	assert_int_equal(sched_next_delay(60000, SCHED_FAILS_DOWN - 1), 60000);
	assert_true(sched_next_delay(60000, SCHED_FAILS_DOWN) >= 60000);
	assert_true(sched_next_delay(60000, SCHED_FAILS_DOWN + 5) >= 60000);
}

static void test_counters_due(void **state)
{
	(void)state;
	/* never read: due, whatever the clock says */
	assert_true(sched_counters_due(123456, 0, 60000));
	assert_true(sched_counters_due(1, 0, 60000));
	assert_false(sched_counters_due(10999, 5000, 6000));
	assert_true(sched_counters_due(11000, 5000, 6000));
	assert_true(sched_counters_due(11001, 5000, 6000));
	assert_false(sched_counters_due(5000, 5000, 6000));
	/* interval 0: every cycle */
	assert_true(sched_counters_due(5000, 5000, 0));
}

static void test_rtu_frame_us(void **state)
{
	(void)state;
	/* 8 bytes at 19200 8N1: 80 bits / 19200 = 4166 us; 3.5 chars = 35 bits = 1822 us */
	assert_int_equal(sched_rtu_frame_us(8, 19200, 10), 4166 + 1822);
	/* 9600: 8333 + 3645 */
	assert_int_equal(sched_rtu_frame_us(8, 9600, 10), 8333 + 3645);
	/* 1200, 11 bits: 8*11/1200 = 73333 us; 38.5 bits = 32083 us */
	assert_int_equal(sched_rtu_frame_us(8, 1200, 11), 73333 + 32083);
	/* above 19200 the silent interval is fixed at 1750 us */
	assert_int_equal(sched_rtu_frame_us(8, 38400, 10), 2083 + 1750);
	assert_int_equal(sched_rtu_frame_us(8, 115200, 10), 694 + 1750);
	assert_int_equal(sched_rtu_frame_us(256, 115200, 11), 24444 + 1750);
	/* 0 bytes: just the gap */
	assert_int_equal(sched_rtu_frame_us(0, 19200, 10), 1822);
	assert_int_equal(sched_rtu_frame_us(0, 57600, 10), 1750);
	/* a long frame at the slowest rate does not overflow */
	assert_int_equal(sched_rtu_frame_us(256, 1200, 11), 2346666 + 32083);
}

static void test_scan_timeout(void **state)
{
	/* wire time of request (8) + reply (31) at 11 bits per char */
	int64_t wire1200 = sched_rtu_frame_us(8, 1200, 11) + sched_rtu_frame_us(31, 1200, 11);
	int64_t wire115k = sched_rtu_frame_us(8, 115200, 11) + sched_rtu_frame_us(31, 115200, 11);
	static const int bauds[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
	int prev = INT_MAX;

	(void)state;
	assert_int_equal(wire1200, 421665);
	assert_int_equal(wire115k, 7223);
	/* 1200: 421 ms on the wire + 30 ms margin */
	assert_int_equal(sched_scan_timeout_ms(1200), 451);
	assert_true(sched_scan_timeout_ms(1200) * 1000 > wire1200);
	assert_true(sched_scan_timeout_ms(1200) < 2000);
	/* 115200: 7 ms on the wire + 30 ms margin */
	assert_int_equal(sched_scan_timeout_ms(115200), 37);
	assert_true(sched_scan_timeout_ms(115200) * 1000 >= wire115k + 20000);
	/* faster line, never a longer timeout */
	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++) {
		int t = sched_scan_timeout_ms(bauds[i]);

		assert_true(t <= prev);
		assert_true(t >= 30);
		prev = t;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_next_delay_healthy),
	    cmocka_unit_test(test_next_delay_backoff),
	    cmocka_unit_test(test_next_delay_monotonic),
	    cmocka_unit_test(test_next_delay_long_interval),
	    cmocka_unit_test(test_counters_due),
	    cmocka_unit_test(test_rtu_frame_us),
	    cmocka_unit_test(test_scan_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
