/* Bus: request validation, error texts, baud codes, and an end-to-end run of
 * the worker against a tiny Modbus RTU slave on the master side of a pty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/bus.h"
#include "sg/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* ---- validation, texts, baud codes ---- */

static int check(uint8_t fc, uint16_t count, uint16_t wcount)
{
	static struct bus_txn t;

	memset(&t, 0, sizeof(t));
	t.fc = fc;
	t.count = count;
	t.wcount = wcount;
	return bus_txn_check(&t);
}

static void test_txn_check(void **state)
{
	(void)state;
	for (uint8_t fc = 3; fc <= 4; fc++) {
		assert_int_equal(check(fc, 0, 0), -EINVAL);
		assert_int_equal(check(fc, 1, 0), 0);
		assert_int_equal(check(fc, 125, 0), 0);
		assert_int_equal(check(fc, 126, 0), -EINVAL);
		assert_int_equal(check(fc, 65535, 0), -EINVAL);
	}
	for (uint8_t fc = 1; fc <= 2; fc++) {
		assert_int_equal(check(fc, 0, 0), -EINVAL);
		assert_int_equal(check(fc, 1, 0), 0);
		assert_int_equal(check(fc, 2000, 0), 0);
		assert_int_equal(check(fc, 2001, 0), -EINVAL);
	}
	assert_int_equal(check(16, 0, 0), -EINVAL);
	assert_int_equal(check(16, 1, 0), 0);
	assert_int_equal(check(16, 123, 0), 0);
	assert_int_equal(check(16, 124, 0), -EINVAL);
	assert_int_equal(check(15, 0, 0), -EINVAL);
	assert_int_equal(check(15, 1968, 0), 0);
	assert_int_equal(check(15, 1969, 0), -EINVAL);
	/* 23: read 1..125, write 1..121 */
	assert_int_equal(check(23, 1, 1), 0);
	assert_int_equal(check(23, 125, 121), 0);
	assert_int_equal(check(23, 126, 1), -EINVAL);
	assert_int_equal(check(23, 1, 122), -EINVAL);
	assert_int_equal(check(23, 0, 1), -EINVAL);
	assert_int_equal(check(23, 1, 0), -EINVAL);
	assert_int_equal(check(5, 0, 0), 0);
	assert_int_equal(check(6, 0, 0), 0);
	static const uint8_t bad_fc[] = {0, 7, 8, 17, 22, 24, 43, 0x83, 255};
	for (size_t i = 0; i < sizeof(bad_fc); i++)
		assert_int_equal(check(bad_fc[i], 1, 1), -EINVAL);
}

static void test_strerror(void **state)
{
	char buf[96];

	(void)state;
	assert_string_equal(bus_strerror(0, buf, sizeof(buf)), "ok");
	assert_string_equal(bus_strerror(-ETIMEDOUT, buf, sizeof(buf)), "timeout");
	assert_ptr_equal(bus_strerror(-ETIMEDOUT, buf, sizeof(buf)), buf);
	assert_non_null(
	    strstr(bus_strerror(-(BUS_EXCEPTION_BASE + 1), buf, sizeof(buf)), "illegal function"));
	assert_string_equal(bus_strerror(-(BUS_EXCEPTION_BASE + 2), buf, sizeof(buf)),
			    "exception 2 (illegal data address)");
	assert_non_null(strstr(bus_strerror(-(BUS_EXCEPTION_BASE + 3), buf, sizeof(buf)),
			       "illegal data value"));
	assert_non_null(strstr(bus_strerror(-(BUS_EXCEPTION_BASE + 4), buf, sizeof(buf)),
			       "slave device failure"));
	assert_non_null(strstr(bus_strerror(-(BUS_EXCEPTION_BASE + 6), buf, sizeof(buf)), "busy"));
	assert_string_equal(bus_strerror(-(BUS_EXCEPTION_BASE + 11), buf, sizeof(buf)),
			    "exception 11");
	assert_non_null(strstr(bus_strerror(-EBADMSG, buf, sizeof(buf)), "CRC"));
	assert_string_equal(bus_strerror(-ENOENT, buf, sizeof(buf)), strerror(ENOENT));
	/* a short buffer is truncated, not overrun */
	memset(buf, 'Z', sizeof(buf));
	bus_strerror(-(BUS_EXCEPTION_BASE + 2), buf, 8);
	assert_int_equal(strlen(buf), 7);
	assert_int_equal(buf[8], 'Z');
}

static void test_baud(void **state)
{
	static const int want[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};

	(void)state;
	for (long c = 0; c < 8; c++)
		assert_int_equal(bus_baud_from_code(c), want[c]);
	assert_int_equal(bus_baud_from_code(-1), -EINVAL);
	assert_int_equal(bus_baud_from_code(8), -EINVAL);
	assert_int_equal(bus_baud_from_code(1200), -EINVAL);
	assert_int_equal(bus_baud_from_code(LONG_MIN), -EINVAL);
}

/* Rates and codes as sgctl --baud and REST ?baud= take them. */
static void test_baud_parse(void **state)
{
	static const char *const bad[] = {
	    "", "-1", "+7", " 7", "8", "9601", "115201", "7x", "0x7", "99999999999999999999", NULL};
	int b = -1;

	(void)state;
	assert_int_equal(bus_baud_parse("7", &b), 0);
	assert_int_equal(b, 115200);
	assert_int_equal(bus_baud_parse("0", &b), 0);
	assert_int_equal(b, 1200);
	assert_int_equal(bus_baud_parse("19200", &b), 0);
	assert_int_equal(b, 19200);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = -1;
		assert_int_equal(bus_baud_parse(bad[i], &b), -EINVAL);
		assert_int_equal(b, -1);
	}
}

/* ---- end to end over a pty ---- */

#define SLAVE_UNIT 1

static uint16_t crc16_modbus(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xFFFF;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

struct fake {
	int mfd;
	pthread_t th;
	atomic_int stop;
	atomic_int requests; /* complete frames seen */
	atomic_int answered;
};

/* Answer fc 4 reads of 2 registers at address 1 for unit 1 with 0x1234
 * 0x5678; ignore everything else (so other units time out). */
static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t buf[256];
	size_t n = 0;

	while (!atomic_load(&f->stop)) {
		struct pollfd pfd = {.fd = f->mfd, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, 10) <= 0)
			continue;
		r = read(f->mfd, buf + n, sizeof(buf) - n);
		if (r <= 0) {
			usleep(1000);
			continue;
		}
		n += (size_t)r;
		while (n >= 8) {
			uint16_t crc = crc16_modbus(buf, 6);

			if (buf[6] != (crc & 0xFF) || buf[7] != (crc >> 8)) {
				/* out of sync: drop a byte */
				memmove(buf, buf + 1, --n);
				continue;
			}
			atomic_fetch_add(&f->requests, 1);
			if (buf[0] == SLAVE_UNIT && buf[1] == 4 && buf[2] == 0 && buf[3] == 1 &&
			    buf[4] == 0 && buf[5] == 2) {
				uint8_t rsp[9] = {SLAVE_UNIT, 4, 4, 0x12, 0x34, 0x56, 0x78};
				uint16_t c = crc16_modbus(rsp, 7);

				rsp[7] = (uint8_t)(c & 0xFF);
				rsp[8] = (uint8_t)(c >> 8);
				if (write(f->mfd, rsp, sizeof(rsp)) == (ssize_t)sizeof(rsp))
					atomic_fetch_add(&f->answered, 1);
			}
			memmove(buf, buf + 8, n - 8);
			n -= 8;
		}
	}
	return NULL;
}

struct env {
	struct loop *l;
	struct bus *b;
	struct fake f;
	int hold_fd; /* keeps the slave side open so the master never sees EIO */
	char slave[128];
};

static int env_setup(struct env *e)
{
	struct bus_params p = {0};
	const char *name;
	struct termios tio;

	memset(e, 0, sizeof(*e));
	e->f.mfd = posix_openpt(O_RDWR | O_NOCTTY);
	if (e->f.mfd < 0 || grantpt(e->f.mfd) < 0 || unlockpt(e->f.mfd) < 0)
		return -1;
	name = ptsname(e->f.mfd);
	if (!name)
		return -1;
	snprintf(e->slave, sizeof(e->slave), "%s", name);
	e->hold_fd = open(e->slave, O_RDWR | O_NOCTTY);
	if (e->hold_fd < 0)
		return -1;
	/* raw from the start: no echo of what the fake slave writes */
	if (tcgetattr(e->hold_fd, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(e->hold_fd, TCSANOW, &tio);
	}
	if (pthread_create(&e->f.th, NULL, fake_main, &e->f) != 0)
		return -1;
	if (loop_init(&e->l) < 0)
		return -1;
	snprintf(p.name, sizeof(p.name), "RS485");
	snprintf(p.device, sizeof(p.device), "%s", e->slave);
	p.baud = 115200;
	p.parity = 'N';
	p.stop_bits = 1;
	p.timeout_ms = 500;
	return bus_start(e->l, &p, &e->b);
}

static void env_teardown(struct env *e)
{
	if (e->b)
		bus_stop(e->b);
	atomic_store(&e->f.stop, 1);
	pthread_join(e->f.th, NULL);
	loop_fini(e->l);
	close(e->hold_fd);
	close(e->f.mfd);
}

struct done_rec {
	struct loop *l;
	int calls;
	int err;
	bool quit;
};

static void on_done(struct bus_txn *t, void *arg)
{
	struct done_rec *r = arg;

	r->calls++;
	r->err = t->err;
	if (r->quit)
		loop_quit(r->l);
}

static void on_watchdog(void *arg)
{
	struct loop *l = arg;

	printf("watchdog: no done() in time\n");
	loop_quit(l);
}

static void run_one(struct env *e, struct bus_txn *t, struct done_rec *r)
{
	int64_t wd;

	r->l = e->l;
	r->quit = true;
	t->done = on_done;
	t->arg = r;
	assert_int_equal(bus_submit(e->b, t, BUS_PRIO_HIGH), 0);
	/* done() never runs from inside bus_submit */
	assert_int_equal(r->calls, 0);
	wd = loop_timer_add(e->l, 2000, on_watchdog, e->l);
	assert_int_equal(loop_run(e->l), 0);
	loop_timer_cancel(e->l, wd);
}

static void test_pty_end_to_end(void **state)
{
	static struct env e;
	static struct bus_txn t, t2, bad;
	struct done_rec r = {0}, r2 = {0}, rb = {0};
	struct bus_stats st;

	(void)state;
	assert_int_equal(env_setup(&e), 0);

	/* a good read */
	t.unit = SLAVE_UNIT;
	t.fc = 4;
	t.addr = 1;
	t.count = 2;
	t.timeout_ms = 500;
	run_one(&e, &t, &r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(t.err, 0);
	assert_int_equal(t.regs[0], 0x1234);
	assert_int_equal(t.regs[1], 0x5678);
	assert_true(t.latency_ms >= 0 && t.latency_ms < 500);
	assert_int_equal(atomic_load(&e.f.answered), 1);

	/* a unit nobody answers: timeout after ~100 ms */
	t2.unit = 7;
	t2.fc = 4;
	t2.addr = 1;
	t2.count = 2;
	t2.timeout_ms = 100;
	run_one(&e, &t2, &r2);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(t2.err, -ETIMEDOUT);
	assert_true(t2.latency_ms >= 90);
	assert_true(t2.latency_ms < 1000);

	bus_get_stats(e.b, &st);
	assert_int_equal(st.transactions, 2);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.timeouts, 1);
	assert_true(st.open);
	assert_string_equal(st.last_error, "timeout");

	/* invalid requests are refused up front and never reach done() */
	bad.unit = 1;
	bad.fc = 3;
	bad.count = 0;
	bad.done = on_done;
	bad.arg = &rb;
	assert_int_equal(bus_submit(e.b, &bad, BUS_PRIO_LOW), -EINVAL);
	bad.count = 1;
	bad.done = NULL;
	assert_int_equal(bus_submit(e.b, &bad, BUS_PRIO_LOW), -EINVAL);
	assert_int_equal(rb.calls, 0);

	env_teardown(&e);
}

#define NQ 6

static void test_stop_cancels_queued(void **state)
{
	static struct env e;
	static struct bus_txn busy, q[NQ];
	struct done_rec rbusy = {0}, rq[NQ];
	struct bus *b;

	(void)state;
	assert_int_equal(env_setup(&e), 0);
	b = e.b;

	/* one to an unanswering unit keeps the worker busy for 300 ms ... */
	busy.unit = 9;
	busy.fc = 4;
	busy.addr = 1;
	busy.count = 2;
	busy.timeout_ms = 300;
	busy.done = on_done;
	busy.arg = &rbusy;
	rbusy.l = e.l;
	assert_int_equal(bus_submit(b, &busy, BUS_PRIO_LOW), 0);
	/* wait until it is on the wire (the fake slave saw it) */
	for (int i = 0; i < 200 && atomic_load(&e.f.requests) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&e.f.requests), 1);
	/* ... while these wait in the queue (both priorities) */
	for (int i = 0; i < NQ; i++) {
		memset(&rq[i], 0, sizeof(rq[i]));
		rq[i].l = e.l;
		rq[i].err = 12345;
		q[i].unit = SLAVE_UNIT;
		q[i].fc = 4;
		q[i].addr = 1;
		q[i].count = 2;
		q[i].done = on_done;
		q[i].arg = &rq[i];
		assert_int_equal(bus_submit(b, &q[i], i % 2 ? BUS_PRIO_HIGH : BUS_PRIO_LOW), 0);
	}
	e.b = NULL;
	bus_stop(b);
	/* every queued transaction finished exactly once, with -ECANCELED,
	 * from inside bus_stop (the loop is not running) */
	for (int i = 0; i < NQ; i++) {
		assert_int_equal(rq[i].calls, 1);
		assert_int_equal(rq[i].err, -ECANCELED);
		assert_int_equal(q[i].err, -ECANCELED);
	}
	/* the one in flight also finished exactly once */
	assert_int_equal(rbusy.calls, 1);
	assert_true(rbusy.err == -ECANCELED || rbusy.err == -ETIMEDOUT);
	/* none of the queued reads went on the wire */
	assert_int_equal(atomic_load(&e.f.answered), 0);
	assert_int_equal(atomic_load(&e.f.requests), 1);
	env_teardown(&e);
}

/* Regression (was a bug in bus_stop()):
 * a transaction the worker already completed, whose done() had not yet run
 * on the loop, is finished with err = -ECANCELED, overwriting its real
 * result. Here the read was answered on the wire (regs = 0x1234 0x5678) but
 * done() sees -ECANCELED; for a write (fc 5/6/15/16) the caller is told the
 * write was cancelled although the device performed it. Expected: completed
 * transactions keep their own err (0 here); only never-started ones get
 * -ECANCELED (as bus.h says: "finish queued transactions with -ECANCELED"). */
static void test_stop_keeps_completed_result(void **state)
{
	static struct env e;
	static struct bus_txn t;
	struct done_rec r = {0};
	struct bus *b;

	(void)state;
	assert_int_equal(env_setup(&e), 0);
	b = e.b;
	t.unit = SLAVE_UNIT;
	t.fc = 4;
	t.addr = 1;
	t.count = 2;
	t.timeout_ms = 500;
	t.done = on_done;
	t.arg = &r;
	r.l = e.l;
	assert_int_equal(bus_submit(b, &t, BUS_PRIO_HIGH), 0);
	/* answered; give the worker time to file it as done (loop not run) */
	for (int i = 0; i < 500 && atomic_load(&e.f.answered) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&e.f.answered), 1);
	usleep(50000);
	e.b = NULL;
	bus_stop(b);
	assert_int_equal(r.calls, 1);
	assert_int_equal(t.regs[0], 0x1234);
	assert_int_equal(t.regs[1], 0x5678);
	assert_int_equal(r.err, 0);
	env_teardown(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txn_check),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_baud),
	    cmocka_unit_test(test_baud_parse),
	    cmocka_unit_test(test_pty_end_to_end),
	    cmocka_unit_test(test_stop_cancels_queued),
	    cmocka_unit_test(test_stop_keeps_completed_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
