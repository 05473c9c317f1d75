/* The poller's health and read-time rules (src/dev/poll.c) against a fake
 * bus: this test compiles poll.c itself with bus_submit renamed to a fake
 * that holds each transaction until the test answers it (data, exception or
 * timeout), on the real loop and the real descriptions (etc/devices), with
 * the lock-step clock so that every cycle reads at a known wall time.
 *   - A block answered with an exception keeps its values and read time;
 *     SCHED_FAILS_DOWN failed reads in a row make the device DEV_READ_ERROR
 *     with the error and registers in last_error; a good cycle makes it ok.
 *   - A partial failure: the other blocks apply, the document's read time is
 *     the failed block's (the oldest shown).
 *   - Timeouts between exceptions count alike.
 *   - After "not responding", a successful re-identification is not "ok"
 *     until a cycle reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define bus_submit fake_bus_submit
#include "../../src/dev/poll.c"
#include "sg/devop.h"
#undef bus_submit

#define DEV_DIR "etc/devices"
#define WALL0 1781128200000LL
#define STEP 1000
#define EXC4 (-(BUS_EXCEPTION_BASE + 4))

static struct bus_txn *pending;
static struct loop *loop;

int fake_bus_submit(struct bus *b, struct bus_txn *t, enum bus_prio prio)
{
	(void)b;
	(void)prio;
	assert_null(pending);
	pending = t;
	loop_quit(loop);
	return 0;
}

struct fx {
	struct desc_set set;
	struct poll *p;
	struct pslot *s;
	uint16_t gen; /* register contents of the next good answers */
};

static void on_quit(void *arg)
{
	(void)arg;
	loop_quit(loop);
}

/* Run the loop until the poller submits a transaction. */
static struct bus_txn *next_txn(void)
{
	int64_t guard;

	if (pending)
		return pending;
	guard = loop_timer_add(loop, 5000, on_quit, NULL);
	assert_int_equal(loop_run(loop), 0);
	loop_timer_cancel(loop, guard);
	assert_non_null(pending);
	return pending;
}

/* Answer the pending transaction: err 0 = registers (the model "IE38" at
 * input 1–2, f->gen everywhere else). */
static void answer(struct fx *f, int err)
{
	struct bus_txn *t = next_txn();

	pending = NULL;
	t->err = err;
	for (unsigned i = 0; err == 0 && i < t->count; i++) {
		unsigned reg = t->addr + i;

		t->regs[i] = f->gen;
		if (t->fc == 4 && reg == 1)
			t->regs[i] = 'I' << 8 | 'E';
		else if (t->fc == 4 && reg == 2)
			t->regs[i] = '3' << 8 | '8';
		else if (t->fc == 4 && reg >= 3 && reg <= 12)
			t->regs[i] = 0;
	}
	t->done(t, t->arg);
}

/* Identification and config chains answered; returns at the first cycle. */
static void identify(struct fx *f)
{
	while (next_txn() && f->s->kind != CHAIN_CYCLE)
		answer(f, 0);
	assert_ptr_equal(f->s->dev.d, desc_find(&f->set, "IE38"));
}

/* One poll cycle; err_of(t) says how to answer each block. Returns the
 * number of blocks asked. */
static unsigned cycle(struct fx *f, int (*err_of)(const struct bus_txn *t))
{
	unsigned n = 0;

	next_txn();
	assert_int_equal(f->s->kind, CHAIN_CYCLE);
	assert_int_equal(f->s->pos, 0);
	f->gen++;
	do {
		answer(f, err_of(pending));
		n++;
	} while (pending); /* the chain goes on at once; a finished one waits for a timer */
	return n;
}

static int all_ok(const struct bus_txn *t)
{
	(void)t;
	return 0;
}

static int all_exc(const struct bus_txn *t)
{
	(void)t;
	return EXC4;
}

static int all_timeout(const struct bus_txn *t)
{
	(void)t;
	return -ETIMEDOUT;
}

/* Only the block holding U1 (input 107) fails. */
static int u_block_exc(const struct bus_txn *t)
{
	return t->fc == 4 && t->addr <= 107 && t->addr + t->count > 107 ? EXC4 : 0;
}

static int u_block_timeout(const struct bus_txn *t)
{
	return t->fc == 4 && t->addr <= 107 && t->addr + t->count > 107 ? -ETIMEDOUT : 0;
}

static unsigned meas_index(const struct dev *d, enum desc_qty q, unsigned phase)
{
	for (unsigned i = 0; i < d->d->nmeas; i++)
		if (d->d->meas[i].qty == q && d->d->meas[i].phase == phase)
			return i;
	fail();
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct bus *buses[CONF_BUS_COUNT] = {(struct bus *)f, NULL, NULL}; /* never dereferenced */
	char err[512] = "";

	if (!f || loop_init(&loop) < 0)
		return -1;
	if (desc_load_dir(DEV_DIR, &f->set, err, sizeof(err)) != 0) {
		fprintf(stderr, "load %s: %s\n", DEV_DIR, err);
		return -1;
	}
	assert_int_equal(clock_lockstep(WALL0, STEP, 0, NULL), 0);
	assert_int_equal(poll_init(&f->p, loop, buses, &f->set, NULL, 33), 0);
	f->p->meas_interval_ms = 1;
	f->p->ctr_interval_ms = 0; /* counters in every cycle */
	f->s = &f->p->slot[DEV_SLOT_LEFT_IR];
	slot_apply(f->p, f->s, &(struct slot_cfg){CLASS_METER, 33, ""});
	pending = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	pending = NULL;
	poll_fini(f->p);
	desc_set_free(&f->set);
	loop_fini(loop);
	free(f);
	return 0;
}

static void test_exceptions_make_read_error(void **state)
{
	struct fx *f = *state;
	struct dev *d = &f->s->dev;
	unsigned u1;
	int64_t read_ms;
	double v;

	identify(f);
	assert_int_equal(d->health, DEV_OK);
	cycle(f, all_ok);
	u1 = meas_index(d, QTY_U, 1);
	read_ms = d->meas_ms;
	v = d->meas[u1];
	assert_true(read_ms >= WALL0);
	assert_int_equal(d->ctr_ms, read_ms);
	for (int i = 1; i <= SCHED_FAILS_DOWN; i++) {
		cycle(f, all_exc);
		/* old values, old read time, never a new one */
		assert_int_equal(d->meas_ms, read_ms);
		assert_int_equal(d->ctr_ms, read_ms);
		assert_true(d->meas[u1] == v);
		assert_int_equal(d->health, i < SCHED_FAILS_DOWN ? DEV_OK : DEV_READ_ERROR);
	}
	assert_non_null(strstr(d->last_error, "exception 4 (slave device failure) on input 105–"));
	assert_non_null(strstr(d->last_error, " more blocks"));
	assert_non_null(devop_unreadable(d, (char[256]){0}, 256));
	/* polled on at the interval (it answers), and good again at once */
	cycle(f, all_exc);
	assert_int_equal(d->health, DEV_READ_ERROR);
	cycle(f, all_ok);
	assert_int_equal(d->health, DEV_OK);
	assert_true(d->meas_ms > read_ms);
	assert_true(d->meas[u1] != v);
}

static void test_partial_failure(void **state)
{
	struct fx *f = *state;
	struct dev *d = &f->s->dev;
	unsigned u1, i1;
	int64_t read_ms, ctr_ms;
	uint64_t seq;
	double u, cur;

	identify(f);
	cycle(f, all_ok);
	u1 = meas_index(d, QTY_U, 1);
	i1 = meas_index(d, QTY_I, 1);
	read_ms = d->meas_ms;
	u = d->meas[u1];
	cur = d->meas[i1];
	for (int i = 1; i <= SCHED_FAILS_DOWN; i++) {
		seq = d->meas_seq;
		ctr_ms = d->ctr_ms;
		cycle(f, u_block_exc);
		assert_true(d->meas_seq > seq); /* the other blocks were applied */
		assert_true(d->meas[i1] != cur);
		cur = d->meas[i1];
		assert_true(d->meas[u1] == u);	       /* the failed one kept its value */
		assert_int_equal(d->meas_ms, read_ms); /* and the document its read time */
		assert_true(d->ctr_ms > ctr_ms);       /* counters read on */
		assert_int_equal(d->health, i < SCHED_FAILS_DOWN ? DEV_OK : DEV_READ_ERROR);
	}
	assert_non_null(strstr(d->last_error, "exception 4 (slave device failure) on input 105–"));
	assert_null(strstr(d->last_error, "more block"));
	cycle(f, all_ok);
	assert_int_equal(d->health, DEV_OK);
	assert_true(d->meas_ms > read_ms);
}

/* An exception, a timeout, an exception on the same block: three failures. */
static void test_timeouts_and_exceptions_alike(void **state)
{
	struct fx *f = *state;
	struct dev *d = &f->s->dev;

	identify(f);
	cycle(f, all_ok);
	cycle(f, u_block_exc);
	assert_int_equal(d->health, DEV_OK);
	cycle(f, u_block_timeout);
	assert_int_equal(d->health, DEV_OK);
	assert_int_equal(d->fails, 1);
	cycle(f, u_block_exc);
	assert_int_equal(d->health, DEV_READ_ERROR);
	assert_int_equal(d->fails, 0);
}

/* Silent: not responding; it answers identification again but its
 * measurements time out: it stays "not responding" (no flapping to "ok");
 * a cycle that reads makes it ok. */
static void test_no_ok_before_a_cycle_reads(void **state)
{
	struct fx *f = *state;
	struct dev *d = &f->s->dev;
	int64_t read_ms;

	identify(f);
	cycle(f, all_ok);
	read_ms = d->meas_ms;
	for (int i = 0; i < SCHED_FAILS_DOWN; i++)
		cycle(f, all_timeout);
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	assert_non_null(strstr(d->last_error, "timeout on input 105–"));
	identify(f);
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	cycle(f, u_block_timeout);
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	assert_int_equal(d->meas_ms, read_ms);
	identify(f);
	cycle(f, all_ok);
	assert_int_equal(d->health, DEV_OK);
	assert_true(d->meas_ms > read_ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exceptions_make_read_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partial_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts_and_exceptions_alike, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_ok_before_a_cycle_reads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
