/* Bus slave role (R-A4): the worker listens on the slave side of a pty as a
 * Modbus RTU slave; the test is the bus master on the pty's master side and
 * drives the loop (where the slave callback runs) in short pumps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/bus.h"
#include "sg/loop.h"
#include "sg/rtu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define OWN 34 /* the gateway's default slave address */
#define NO_ANSWER_MS 150

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- the slave callback ---- */

struct slave_rec {
	int calls;
	uint8_t req[256];
	size_t len;
};

/* fc 3: registers 0x1100 + address; fc 16: the usual echo; fc 6: send
 * nothing; anything else: exception 1. */
static size_t slave_cb(const uint8_t *req, size_t len, uint8_t *rsp, void *arg)
{
	struct slave_rec *r = arg;

	r->calls++;
	memcpy(r->req, req, len);
	r->len = len;
	switch (req[0]) {
	case 3: {
		unsigned a = (unsigned)req[1] << 8 | req[2], n = (unsigned)req[3] << 8 | req[4];

		if (len != 5 || n < 1 || n > 125) {
			rsp[0] = 0x83;
			rsp[1] = 3;
			return 2;
		}
		rsp[0] = 3;
		rsp[1] = (uint8_t)(2 * n);
		for (unsigned i = 0; i < n; i++) {
			unsigned v = 0x1100 + a + i;

			rsp[2 + 2 * i] = (uint8_t)(v >> 8);
			rsp[3 + 2 * i] = (uint8_t)v;
		}
		return 2 + 2 * n;
	}
	case 16:
		memcpy(rsp, req, 5);
		return 5;
	case 6:
		return 0;
	default:
		rsp[0] = (uint8_t)(req[0] | 0x80);
		rsp[1] = 1;
		return 2;
	}
}

/* ---- environment: pty, loop, bus ---- */

struct env {
	struct loop *l;
	struct bus *b;
	int mfd;     /* master side: the test is the bus master */
	int hold_fd; /* keeps the slave side open so the master never sees EIO */
	char slave[128];
	struct slave_rec rec;
};

static void env_params(struct env *e, int baud, struct bus_params *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "RS485");
	snprintf(p->device, sizeof(p->device), "%s", e->slave);
	p->baud = baud;
	p->parity = 'N';
	p->stop_bits = 1;
	p->timeout_ms = 300;
}

static void wait_open(struct env *e)
{
	struct bus_stats st;

	for (int i = 0; i < 1000; i++) {
		bus_get_stats(e->b, &st);
		if (st.open)
			return;
		sleep_ms(1);
	}
	fail_msg("the worker did not open the port");
}

/* A bus on a fresh pty at baud, in the slave role at OWN. */
static void env_setup(struct env *e, int baud)
{
	struct bus_params p;
	struct termios tio;
	const char *name;

	memset(e, 0, sizeof(*e));
	e->mfd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
	assert_true(e->mfd >= 0);
	assert_int_equal(grantpt(e->mfd), 0);
	assert_int_equal(unlockpt(e->mfd), 0);
	name = ptsname(e->mfd);
	assert_non_null(name);
	snprintf(e->slave, sizeof(e->slave), "%s", name);
	e->hold_fd = open(e->slave, O_RDWR | O_NOCTTY);
	assert_true(e->hold_fd >= 0);
	assert_int_equal(tcgetattr(e->hold_fd, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(e->hold_fd, TCSANOW, &tio), 0);
	assert_int_equal(loop_init(&e->l), 0);
	env_params(e, baud, &p);
	assert_int_equal(bus_start(e->l, &p, &e->b), 0);
	bus_set_slave(e->b, OWN, slave_cb, &e->rec);
	wait_open(e);
}

static void env_teardown(struct env *e)
{
	if (e->b)
		bus_stop(e->b);
	loop_fini(e->l);
	close(e->hold_fd);
	close(e->mfd);
}

static void on_quit(void *arg)
{
	loop_quit(arg);
}

/* Run the loop for about ms. */
static void pump(struct env *e, int ms)
{
	loop_timer_add(e->l, ms, on_quit, e->l);
	assert_int_equal(loop_run(e->l), 0);
}

static void put(struct env *e, const uint8_t *p, size_t n)
{
	assert_int_equal(write(e->mfd, p, n), (ssize_t)n);
}

/* Bytes the slave side wrote so far (non-blocking). */
static size_t take(struct env *e, uint8_t *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap) {
		ssize_t r = read(e->mfd, buf + n, cap - n);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return n;
}

/* Collect what comes back while running the loop: until want bytes came
 * (then a little longer, to catch extra bytes), or wait_ms passed. */
static size_t collect(struct env *e, uint8_t *buf, size_t cap, size_t want, int wait_ms)
{
	int64_t end = now_ms() + wait_ms;
	size_t n = 0;

	while (now_ms() < end) {
		pump(e, 2);
		n += take(e, buf + n, cap - n);
		if (want && n >= want) {
			pump(e, 20);
			n += take(e, buf + n, cap - n);
			break;
		}
	}
	return n;
}

/* Send a request frame and collect the answer. */
static size_t ask(struct env *e, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
		  size_t want)
{
	put(e, req, n);
	return collect(e, rsp, cap, want, want ? 1000 : NO_ANSWER_MS);
}

static size_t frame_read(uint8_t *f, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count)
{
	f[0] = unit;
	f[1] = fc;
	f[2] = (uint8_t)(addr >> 8);
	f[3] = (uint8_t)addr;
	f[4] = (uint8_t)(count >> 8);
	f[5] = (uint8_t)count;
	return rtu_seal(f, 6);
}

/* Ask OWN for count registers at addr and check the whole answer. */
static void expect_answer(struct env *e, uint16_t addr, uint16_t count)
{
	uint8_t req[8], want[256], got[300];
	size_t n, wn;

	frame_read(req, OWN, 3, addr, count);
	want[0] = OWN;
	want[1] = 3;
	want[2] = (uint8_t)(2 * count);
	for (unsigned i = 0; i < count; i++) {
		want[3 + 2 * i] = (uint8_t)((0x1100 + addr + i) >> 8);
		want[4 + 2 * i] = (uint8_t)(0x1100 + addr + i);
	}
	wn = rtu_seal(want, 3 + 2 * (size_t)count);
	n = ask(e, req, sizeof(req), got, sizeof(got), wn);
	assert_int_equal(n, wn);
	assert_memory_equal(got, want, wn);
}

/* A macro, so a failure names the caller's line. */
static uint8_t silence_buf[300];
#define expect_silence(e, req, len)                                                                \
	assert_int_equal(ask(e, req, len, silence_buf, sizeof(silence_buf), 0), 0)

static uint64_t slave_requests(struct env *e)
{
	struct bus_stats st;

	bus_get_stats(e->b, &st);
	return st.slave_requests;
}

/* ---- tests ---- */

/* A read for our address gets exactly the callback's registers back. */
static void test_answer_exact(void **state)
{
	static struct env e;
	static const uint8_t req[] = {0x22, 0x03, 0x00, 0x10, 0x00, 0x02, 0xC2, 0x9D};
	static const uint8_t want[] = {0x22, 0x03, 0x04, 0x11, 0x10, 0x11, 0x11, 0x20, 0x54};
	uint8_t got[64];
	struct bus_stats st;

	(void)state;
	env_setup(&e, 115200);
	bus_get_stats(e.b, &st);
	assert_int_equal(st.slave_addr, OWN);
	assert_int_equal(st.slave_requests, 0);
	assert_true(st.open);

	assert_int_equal(ask(&e, req, sizeof(req), got, sizeof(got), sizeof(want)), sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	/* the callback saw the PDU: the frame minus address and CRC */
	assert_int_equal(e.rec.calls, 1);
	assert_int_equal(e.rec.len, 5);
	assert_memory_equal(e.rec.req, req + 1, 5);
	assert_int_equal(slave_requests(&e), 1);

	/* a few more, of different sizes; each one counts */
	expect_answer(&e, 0, 1);
	expect_answer(&e, 100, 125);
	expect_answer(&e, 7, 10);
	assert_int_equal(slave_requests(&e), 4);
	assert_int_equal(e.rec.calls, 4);
	env_teardown(&e);
}

/* Other addresses, broadcasts and bad CRCs get nothing and count nothing;
 * an empty answer from the callback sends nothing. */
static void test_ignored_frames(void **state)
{
	static struct env e;
	uint8_t f[8];

	(void)state;
	env_setup(&e, 115200);

	frame_read(f, OWN + 1, 3, 0, 2);
	expect_silence(&e, f, sizeof(f));
	frame_read(f, 0, 3, 0, 2); /* broadcast */
	expect_silence(&e, f, sizeof(f));
	frame_read(f, OWN, 3, 0, 2);
	f[7] ^= 0x01; /* bad CRC */
	expect_silence(&e, f, sizeof(f));
	frame_read(f, OWN, 3, 0, 2);
	f[4] ^= 0x10; /* corrupted in transit */
	expect_silence(&e, f, sizeof(f));
	assert_int_equal(e.rec.calls, 0);
	assert_int_equal(slave_requests(&e), 0);

	/* fc 6: the callback answers with nothing, so nothing goes out */
	frame_read(f, OWN, 6, 1, 0x55AA);
	expect_silence(&e, f, sizeof(f));
	assert_int_equal(e.rec.calls, 1);
	assert_int_equal(e.rec.req[0], 6);
	assert_int_equal(slave_requests(&e), 0);

	/* still answering */
	expect_answer(&e, 1, 2);
	assert_int_equal(slave_requests(&e), 1);
	env_teardown(&e);
}

/* Garbage ends at the next gap; a good frame after it is answered. */
static void test_garbage_then_frame(void **state)
{
	static struct env e;
	static const uint8_t unknown_fc[] = {0x22, 0x65, 0x01, 0x02, 0x03, 0x04, 0x05};
	static const uint8_t short_read[] = {0x22, 0x03, 0x00};
	uint8_t big[300];

	(void)state;
	env_setup(&e, 115200);

	/* a function code of unknown length, then silence */
	expect_silence(&e, unknown_fc, sizeof(unknown_fc));
	expect_answer(&e, 2, 3);
	/* a truncated read: the gap ends it */
	expect_silence(&e, short_read, sizeof(short_read));
	expect_answer(&e, 2, 3);
	/* over 256 bytes of noise */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 0x22);
	big[1] = 0x65;
	expect_silence(&e, big, sizeof(big));
	expect_answer(&e, 2, 3);
	/* a write whose byte count makes it longer than any RTU frame */
	memset(big, 0, sizeof(big));
	big[0] = OWN;
	big[1] = 16;
	big[6] = 250;
	expect_silence(&e, big, 9 + 250);
	expect_answer(&e, 2, 3);
	/* a bad CRC loses sync until the gap: what follows at once is dropped too */
	frame_read(big, OWN, 3, 0, 1);
	big[7] ^= 0xFF;
	frame_read(big + 8, OWN, 3, 0, 1);
	expect_silence(&e, big, 16);
	/* noise right before a frame, without a gap, spoils it */
	big[0] = 0x00;
	frame_read(big + 1, OWN, 3, 0, 1);
	expect_silence(&e, big, 9);
	expect_answer(&e, 2, 3);
	assert_int_equal(e.rec.calls, 5);
	assert_int_equal(slave_requests(&e), 5);

	/* a single stray byte followed after a gap by a frame */
	big[0] = 0x5A;
	put(&e, big, 1);
	sleep_ms(20);
	expect_answer(&e, 9, 1);
	env_teardown(&e);
}

/* Variable-length requests (fc 16) reach the callback whole; unknown
 * functions answered by the callback with an exception go out as such. */
static void test_write_multiple(void **state)
{
	static struct env e;
	uint8_t f[64], got[64], want[16];
	size_t n, wn;

	(void)state;
	env_setup(&e, 115200);
	f[0] = OWN;
	f[1] = 16;
	f[2] = 0x00;
	f[3] = 0x20; /* address 0x20 */
	f[4] = 0x00;
	f[5] = 0x03; /* 3 registers */
	f[6] = 6;
	for (int i = 0; i < 6; i++)
		f[7 + i] = (uint8_t)(0xA0 + i);
	n = rtu_seal(f, 13);
	assert_int_equal(n, 15);
	memcpy(want, f, 6);
	wn = rtu_seal(want, 6);
	assert_int_equal(ask(&e, f, n, got, sizeof(got), wn), wn);
	assert_memory_equal(got, want, wn);
	assert_int_equal(e.rec.len, 12);
	assert_memory_equal(e.rec.req, f + 1, 12);

	/* fc 4 is not served by this callback: exception 1 */
	frame_read(f, OWN, 4, 0, 1);
	want[0] = OWN;
	want[1] = 0x84;
	want[2] = 1;
	wn = rtu_seal(want, 3);
	assert_int_equal(ask(&e, f, 8, got, sizeof(got), wn), wn);
	assert_memory_equal(got, want, wn);
	assert_int_equal(slave_requests(&e), 2);
	env_teardown(&e);
}

/* Two requests in one burst: both are taken. */
static void test_back_to_back(void **state)
{
	static struct env e;
	uint8_t f[16], got[64];
	size_t n;

	(void)state;
	env_setup(&e, 115200);
	frame_read(f, OWN, 3, 1, 1);
	frame_read(f + 8, OWN, 3, 2, 1);
	put(&e, f, 16);
	n = collect(&e, got, sizeof(got), 14, 1000);
	assert_int_equal(n, 14);
	assert_int_equal(got[3], 0x11);
	assert_int_equal(got[4], 0x01);
	assert_int_equal(got[7 + 3], 0x11);
	assert_int_equal(got[7 + 4], 0x02);
	assert_int_equal(slave_requests(&e), 2);
	env_teardown(&e);
}

/* At 9600 baud t3.5 is about 3.6 ms (the listener waits 4): a frame split
 * by a 1 ms pause is one frame; split by 30 ms it is two bits of noise.
 * Whether the pause stays under the gap is up to the scheduler (of this
 * thread and of the worker's), so a split that went unanswered is tried
 * again, up to SPLIT_TRIES times: a listener that cuts frames at every
 * read never answers and still fails; a stalled machine only costs a try. */
#define SPLIT_TRIES 20
static void test_split_frame(void **state)
{
	static struct env e;
	uint8_t f[8], got[64];
	size_t n;
	int tries;

	(void)state;
	env_setup(&e, 9600);
	frame_read(f, OWN, 3, 5, 1);
	for (tries = 1;; tries++) {
		put(&e, f, 3);
		sleep_ms(1);
		put(&e, f + 3, 5);
		n = collect(&e, got, sizeof(got), 7, 1000);
		if (n || tries == SPLIT_TRIES)
			break;
	}
	if (tries > 1)
		print_message("split frame: %zu bytes back at try %d\n", n, tries);
	assert_int_equal(n, 7);
	assert_int_equal(e.rec.calls, 1); /* unanswered tries never reached the callback */
	assert_int_equal(got[0], OWN);
	assert_int_equal(got[4], 0x05);
	assert_true(rtu_crc_ok(got, 7));

	put(&e, f, 3);
	sleep_ms(30);
	put(&e, f + 3, 5);
	assert_int_equal(collect(&e, got, sizeof(got), 0, NO_ANSWER_MS), 0);
	assert_int_equal(e.rec.calls, 1);

	expect_answer(&e, 5, 1);
	assert_int_equal(slave_requests(&e), 2);
	env_teardown(&e);
}

/* The termios the worker's libmodbus context set are zeroed and rewritten on
 * every (re)open; a mark in an unused control character shows whether the
 * port was reopened. */
static void mark_tty(struct env *e)
{
	struct termios tio;

	assert_int_equal(tcgetattr(e->hold_fd, &tio), 0);
	tio.c_cc[VINTR] = 0x42; /* ISIG is off: no effect */
	assert_int_equal(tcsetattr(e->hold_fd, TCSANOW, &tio), 0);
}

static int tty_marked(struct env *e)
{
	struct termios tio;

	assert_int_equal(tcgetattr(e->hold_fd, &tio), 0);
	return tio.c_cc[VINTR] == 0x42;
}

struct done_rec {
	int calls;
	int err;
};

static void on_done(struct bus_txn *t, void *arg)
{
	struct done_rec *r = arg;

	r->calls++;
	r->err = t->err;
}

/* Submit a fc 4 read for unit 5 and play the slave: check the request on
 * the wire, answer it, and check done(). */
static void master_read(struct env *e)
{
	static const uint8_t want_req[] = {0x05, 0x04, 0x00, 0x01, 0x00, 0x02, 0x21, 0x8F};
	static struct bus_txn t;
	struct done_rec r = {0};
	uint8_t got[64], rsp[16];
	size_t n;
	int64_t end;

	memset(&t, 0, sizeof(t));
	t.unit = 5;
	t.fc = 4;
	t.addr = 1;
	t.count = 2;
	t.timeout_ms = 500;
	t.done = on_done;
	t.arg = &r;
	assert_int_equal(bus_submit(e->b, &t, BUS_PRIO_HIGH), 0);
	n = collect(e, got, sizeof(got), sizeof(want_req), 1000);
	assert_int_equal(n, sizeof(want_req));
	assert_memory_equal(got, want_req, sizeof(want_req));
	rsp[0] = 5;
	rsp[1] = 4;
	rsp[2] = 4;
	rsp[3] = 0x12;
	rsp[4] = 0x34;
	rsp[5] = 0x56;
	rsp[6] = 0x78;
	put(e, rsp, rtu_seal(rsp, 7));
	end = now_ms() + 1000;
	while (!r.calls && now_ms() < end)
		pump(e, 2);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(t.regs[0], 0x1234);
	assert_int_equal(t.regs[1], 0x5678);
}

/* Slave -> master -> slave without a restart or a reopen of the port. */
static void test_role_switch(void **state)
{
	static struct env e;
	struct bus_params p;
	struct bus_stats st;
	uint8_t f[8];

	(void)state;
	env_setup(&e, 115200);
	expect_answer(&e, 1, 1);
	mark_tty(&e);

	bus_set_slave(e.b, 0, NULL, NULL);
	bus_get_stats(e.b, &st);
	assert_int_equal(st.slave_addr, 0);
	pump(&e, 20);
	frame_read(f, OWN, 3, 1, 1);
	expect_silence(&e, f, sizeof(f));
	assert_int_equal(e.rec.calls, 1);
	/* that request is still unread in the line; drop it, as a real
	 * master's reply would not follow it */
	tcflush(e.hold_fd, TCIFLUSH);
	master_read(&e);

	bus_set_slave(e.b, OWN, slave_cb, &e.rec);
	bus_get_stats(e.b, &st);
	assert_int_equal(st.slave_addr, OWN);
	expect_answer(&e, 3, 2);
	assert_int_equal(slave_requests(&e), 2);
	bus_get_stats(e.b, &st);
	assert_true(st.open);
	assert_true(tty_marked(&e)); /* the port was not reopened */

	/* another address takes effect at once */
	bus_set_slave(e.b, OWN + 1, slave_cb, &e.rec);
	frame_read(f, OWN, 3, 1, 1);
	expect_silence(&e, f, sizeof(f));
	frame_read(f, OWN + 1, 3, 1, 1);
	put(&e, f, sizeof(f));
	assert_int_equal(collect(&e, f, sizeof(f), 7, 1000), 7);
	assert_int_equal(f[0], OWN + 1);
	assert_true(tty_marked(&e));

	/* control for the probe: new line parameters do reopen */
	env_params(&e, 115200, &p);
	bus_set_params(e.b, &p);
	for (int i = 0; i < 500 && tty_marked(&e); i++)
		sleep_ms(2);
	assert_false(tty_marked(&e));
	bus_set_slave(e.b, OWN, slave_cb, &e.rec);
	expect_answer(&e, 4, 1);
	env_teardown(&e);
}

/* Master work queued while in the slave role (the RS485 scan) goes out
 * between frames; the role carries on afterwards. */
static void test_master_txn_in_slave_role(void **state)
{
	static struct env e;
	struct bus_stats st;

	(void)state;
	env_setup(&e, 115200);
	expect_answer(&e, 1, 1);
	master_read(&e);
	expect_answer(&e, 2, 1);
	master_read(&e);
	bus_get_stats(e.b, &st);
	assert_int_equal(st.slave_addr, OWN);
	assert_int_equal(st.slave_requests, 2);
	assert_int_equal(st.transactions, 2);
	assert_int_equal(st.errors, 0);
	env_teardown(&e);
}

/* The main thread does not answer within 1 s: the request is dropped (no
 * late answer on the wire); the next one is served normally. */
static void test_answer_timeout(void **state)
{
	static struct env e;
	uint8_t f[8];

	(void)state;
	env_setup(&e, 115200);
	frame_read(f, OWN, 3, 1, 1);
	put(&e, f, sizeof(f));
	sleep_ms(1300); /* the loop is not running */
	assert_int_equal(collect(&e, f, sizeof(f), 0, NO_ANSWER_MS), 0);
	assert_int_equal(e.rec.calls, 0);
	assert_int_equal(slave_requests(&e), 0);
	expect_answer(&e, 1, 1);
	assert_int_equal(e.rec.calls, 1);
	assert_int_equal(slave_requests(&e), 1);
	env_teardown(&e);
}

/* bus_stop() while the worker waits for the main thread's answer returns
 * at once (the main thread is the one stopping). */
static void test_stop_while_pending(void **state)
{
	static struct env e;
	uint8_t f[8];
	struct bus *b;
	int64_t t0;

	(void)state;
	env_setup(&e, 115200);
	frame_read(f, OWN, 3, 1, 1);
	put(&e, f, sizeof(f));
	sleep_ms(50); /* the worker has it and waits for an answer */
	b = e.b;
	e.b = NULL;
	t0 = now_ms();
	bus_stop(b);
	assert_true(now_ms() - t0 < 500);
	assert_int_equal(e.rec.calls, 0);
	env_teardown(&e);
}

/* bus_stop() while listening idle, and with master work queued behind the
 * role, finishes cleanly. */
static void test_stop_while_listening(void **state)
{
	static struct env e;
	static struct bus_txn t;
	struct done_rec r = {0};
	struct bus *b;
	int64_t t0;

	(void)state;
	env_setup(&e, 9600);
	pump(&e, 20);
	t.unit = 9;
	t.fc = 3;
	t.count = 1;
	t.timeout_ms = 100;
	t.done = on_done;
	t.arg = &r;
	assert_int_equal(bus_submit(e.b, &t, BUS_PRIO_LOW), 0);
	b = e.b;
	e.b = NULL;
	t0 = now_ms();
	bus_stop(b);
	assert_true(now_ms() - t0 < 500);
	assert_int_equal(r.calls, 1);
	assert_true(r.err == -ECANCELED || r.err == -ETIMEDOUT);
	env_teardown(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answer_exact),
	    cmocka_unit_test(test_ignored_frames),
	    cmocka_unit_test(test_garbage_then_frame),
	    cmocka_unit_test(test_write_multiple),
	    cmocka_unit_test(test_back_to_back),
	    cmocka_unit_test(test_split_frame),
	    cmocka_unit_test(test_role_switch),
	    cmocka_unit_test(test_master_txn_in_slave_role),
	    cmocka_unit_test(test_answer_timeout),
	    cmocka_unit_test(test_stop_while_pending),
	    cmocka_unit_test(test_stop_while_listening),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
