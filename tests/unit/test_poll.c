/* The Modbus poller (src/dev/poll.c, poll_ops.c, poll_cfg.c) as a reader of
 * the device registry, against a fake bus and a fake clock: this test
 * compiles the poller's files itself with bus_submit, bus_params,
 * bus_set_params, the loop's timers and the clock renamed to fakes. A
 * transaction waits until the test answers it (data, exception or timeout);
 * time moves only when the test fires the next timer, so nothing waits on
 * real time and every delay the poller asks for can be checked exactly. The
 * registry (src/dev/registry.c) is the real one.
 *   - Identification, then cycles whose values and read times are applied
 *     together per part: the measurements (told at once, before the counter
 *     blocks are read), then the counters when the cycle ends; subscribers
 *     are told once per update.
 *   - A block answered with an exception keeps its values and read time;
 *     3 failed reads in a row (not 2) make the device DEV_READ_ERROR with the
 *     error and registers in last_error; a good cycle makes it ok.
 *   - A partial failure: the other blocks apply, the document's read time is
 *     the failed block's (the oldest shown). Timeouts between exceptions count alike.
 *   - 3 failed cycles (not 2) make it "not responding", then back-off doubles
 *     up to 30 s; it is re-identified when it answers (a swapped model
 *     forgets the old values), and "ok" only after a cycle reads.
 *   - A scan owns RS485: background polling there pauses (a failure during
 *     the scan is not the device's), Left IR goes on, and RS485 resumes after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define bus_submit(b, t, prio) fake_bus_submit(b, t, prio)
#define bus_submit_next(b, t) fake_bus_submit_next(b, t)
#define bus_params(b) fake_bus_params(b)
#define bus_set_params(b, bp) fake_bus_set_params(b, bp)
#define loop_timer_add(l, d, cb, arg) fake_timer_add(l, d, cb, arg)
#define loop_timer_cancel(l, id) fake_timer_cancel(l, id)
#define clock_mono_ms fake_mono_ms
#define clock_wall_ms fake_wall_ms
#include "../../src/dev/poll.c"
#include "../../src/dev/poll_cfg.c"
#include "../../src/dev/poll_ops.c"
#undef bus_submit
#undef bus_submit_next
#undef bus_params
#undef bus_set_params
#undef loop_timer_add
#undef loop_timer_cancel
#undef clock_mono_ms
#undef clock_wall_ms
#include "sg/devop.h"

#define DEV_DIR "etc/devices"
#define WALL0 1781128200000LL
#define EXC4 (-(BUS_EXCEPTION_BASE + 4))
#define EXC2 (-(BUS_EXCEPTION_BASE + 2))

/* ---- fake bus: transactions wait in submission order until answered ---- */

static struct bus *const IR = (struct bus *)(uintptr_t)0x1000; /* never dereferenced */
static struct bus *const RS = (struct bus *)(uintptr_t)0x2000;
#define PEND_MAX 8
static struct {
	struct bus *b;
	struct bus_txn *t;
	enum bus_prio prio;
	bool first; /* bus_submit_next: ahead of the other background entries */
} pend[PEND_MAX];
static unsigned npend;
static struct bus_params line[2]; /* IR, RS */
static unsigned set_params_calls;

int fake_bus_submit(struct bus *b, struct bus_txn *t, enum bus_prio prio);
int fake_bus_submit_next(struct bus *b, struct bus_txn *t);
const struct bus_params *fake_bus_params(const struct bus *b);
void fake_bus_set_params(struct bus *b, const struct bus_params *bp);
int64_t fake_timer_add(struct loop *l, int64_t delay_ms, loop_timer_cb cb, void *arg);
void fake_timer_cancel(struct loop *l, int64_t id);
int64_t fake_mono_ms(void);
int64_t fake_wall_ms(void);

int fake_bus_submit(struct bus *b, struct bus_txn *t, enum bus_prio prio)
{
	assert_true(npend < PEND_MAX);
	for (unsigned i = 0; i < npend; i++)
		assert_ptr_not_equal(pend[i].t, t); /* one transaction in flight at a time */
	pend[npend].b = b;
	pend[npend].t = t;
	pend[npend].prio = prio;
	pend[npend].first = false;
	npend++;
	return 0;
}

int fake_bus_submit_next(struct bus *b, struct bus_txn *t)
{
	int r = fake_bus_submit(b, t, BUS_PRIO_LOW);

	pend[npend - 1].first = true;
	return r;
}

const struct bus_params *fake_bus_params(const struct bus *b)
{
	return &line[b == RS];
}

void fake_bus_set_params(struct bus *b, const struct bus_params *bp)
{
	line[b == RS] = *bp;
	set_params_calls++;
}

/* ---- fake clock and timers ---- */

static int64_t now; /* monotonic ms */
#define TIMER_MAX 64
static struct {
	int64_t id, due;
	loop_timer_cb cb;
	void *arg;
} timers[TIMER_MAX];
static int64_t next_id;

int64_t fake_mono_ms(void)
{
	return now;
}

int64_t fake_wall_ms(void)
{
	return WALL0 + now;
}

int64_t fake_timer_add(struct loop *l, int64_t delay_ms, loop_timer_cb cb, void *arg)
{
	(void)l;
	assert_true(delay_ms >= 0);
	for (int i = 0; i < TIMER_MAX; i++)
		if (!timers[i].id) {
			timers[i].id = ++next_id;
			timers[i].due = now + delay_ms;
			timers[i].cb = cb;
			timers[i].arg = arg;
			return timers[i].id;
		}
	fail();
	return -1;
}

void fake_timer_cancel(struct loop *l, int64_t id)
{
	(void)l;
	for (int i = 0; i < TIMER_MAX; i++)
		if (timers[i].id == id)
			timers[i].id = 0;
}

/* Fire the earliest timer (time jumps to it); false when none is armed. */
static bool fire_next(void)
{
	int best = -1;
	loop_timer_cb cb;
	void *arg;

	for (int i = 0; i < TIMER_MAX; i++)
		if (timers[i].id &&
		    (best < 0 || timers[i].due < timers[best].due ||
		     (timers[i].due == timers[best].due && timers[i].id < timers[best].id)))
			best = i;
	if (best < 0)
		return false;
	if (timers[best].due > now)
		now = timers[best].due;
	cb = timers[best].cb;
	arg = timers[best].arg;
	timers[best].id = 0;
	cb(arg);
	return true;
}

/* ---- fixture ---- */

struct fx {
	struct desc_set set;
	struct reg *reg;
	struct poll *p;
	struct pslot *s;
	uint16_t gen;  /* register contents of the next good answers */
	char model[5]; /* the model the device answers: "IE38" */
};

static struct fx *F;
/* Updates that end a cycle or change the health (DEV_UPD_ALL, DEV_UPD_CTR);
 * the measurement updates a cycle with counters tells first are counted
 * apart, with what a subscriber saw in them. */
static unsigned notified[DEV_SLOTS];
static enum dev_health notified_health;
static int64_t notified_meas_ms;
static enum dev_upd notified_upd;
static unsigned meas_notified[DEV_SLOTS];
static struct {
	double meas[DESC_MEAS_MAX];
	int64_t meas_ms, ctr_ms;
	uint64_t meas_seq, ctr_seq;
	enum dev_health health;
	int pending_addr; /* the transaction waiting for its answer then, -1 none */
} told;

static int find_pending(struct bus *b);

static void on_update(const struct dev *d, void *arg)
{
	(void)arg;
	if (d->upd == DEV_UPD_MEAS) {
		int i = find_pending(d->bus == CONF_BUS_RS485 ? RS : IR);

		meas_notified[d->slot]++;
		memcpy(told.meas, d->meas, sizeof(told.meas));
		told.meas_ms = d->meas_ms;
		told.ctr_ms = d->ctr_ms;
		told.meas_seq = d->meas_seq;
		told.ctr_seq = d->ctr_seq;
		told.health = d->health;
		told.pending_addr = i < 0 ? -1 : pend[i].t->addr;
		return;
	}
	notified[d->slot]++;
	notified_health = d->health;
	notified_meas_ms = d->meas_ms;
	notified_upd = d->upd;
}

/* The pending transaction for bus b (NULL: any), without firing timers. */
static int find_pending(struct bus *b)
{
	for (unsigned i = 0; i < npend; i++)
		if (!b || pend[i].b == b)
			return (int)i;
	return -1;
}

/* Fire timers until the poller submits a transaction on the fixture slot's bus. */
static struct bus_txn *next_txn_on(struct bus *b)
{
	int i;

	for (int n = 0; (i = find_pending(b)) < 0 && n < 1000; n++)
		assert_true(fire_next());
	assert_true(i >= 0);
	return pend[i].t;
}

static struct bus *slot_bus(const struct pslot *s)
{
	return s->dev->bus == CONF_BUS_RS485 ? RS : IR;
}

static struct bus_txn *next_txn(void)
{
	return next_txn_on(slot_bus(F->s));
}

/* A pending transaction of the fixture slot's bus, without firing timers. */
static struct bus_txn *pending_now(void)
{
	int i = find_pending(slot_bus(F->s));

	return i < 0 ? NULL : pend[i].t;
}
#define pending pending_now()

static void take(struct bus_txn *t)
{
	for (unsigned i = 0; i < npend; i++)
		if (pend[i].t == t) {
			memmove(&pend[i], &pend[i + 1], (npend - i - 1) * sizeof(pend[0]));
			npend--;
			return;
		}
	fail();
}

/* Answer t: err 0 = registers (the fixture's model at input 1–2, f->gen
 * everywhere else). */
static void answer_txn(struct fx *f, struct bus_txn *t, int err)
{
	take(t);
	t->err = err;
	t->latency_ms = 7;
	for (unsigned i = 0; err == 0 && i < t->count; i++) {
		unsigned reg = t->addr + i;

		t->regs[i] = f->gen;
		if (t->fc == 4 && reg == 1)
			t->regs[i] = (uint16_t)(f->model[0] << 8 | f->model[1]);
		else if (t->fc == 4 && reg == 2)
			t->regs[i] = (uint16_t)(f->model[2] << 8 | f->model[3]);
		else if (t->fc == 4 && reg >= 3 && reg <= 12)
			t->regs[i] = 0;
	}
	t->done(t, t->arg);
}

static void answer(struct fx *f, int err)
{
	answer_txn(f, next_txn(), err);
}

/* Identification and config chains answered; returns at the first cycle. */
static void identify(struct fx *f)
{
	for (int n = 0; next_txn() && f->s->kind != CHAIN_CYCLE; n++) {
		assert_true(n < 50);
		answer(f, 0);
	}
	assert_ptr_equal(f->s->dev->d, desc_find(&f->set, "IE38"));
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
	struct bus *buses[CONF_BUS_COUNT] = {IR, NULL, RS};
	char err[512] = "";

	if (!f)
		return -1;
	if (desc_load_dir(DEV_DIR, &f->set, err, sizeof(err)) != 0) {
		fprintf(stderr, "load %s: %s\n", DEV_DIR, err);
		return -1;
	}
	memset(timers, 0, sizeof(timers));
	memset(notified, 0, sizeof(notified));
	memset(meas_notified, 0, sizeof(meas_notified));
	memset(&told, 0, sizeof(told));
	npend = 0;
	now = 0;
	set_params_calls = 0;
	line[0] = (struct bus_params){.device = "ir", .baud = 19200, .parity = 'N', .stop_bits = 1};
	line[1] =
	    (struct bus_params){.device = "rs", .baud = 115200, .parity = 'N', .stop_bits = 1};
	memcpy(f->model, "IE38", 4);
	assert_int_equal(reg_init(&f->reg, NULL), 0);
	assert_int_equal(reg_subscribe(f->reg, on_update, NULL), 0);
	assert_int_equal(poll_init(&f->p, NULL, f->reg, buses, &f->set, NULL, 33), 0);
	f->p->meas_interval_ms = 1;
	f->p->ctr_interval_ms = 0; /* counters in every cycle */
	f->s = &f->p->slot[DEV_SLOT_LEFT_IR];
	slot_apply(f->p, f->s, &(struct slot_cfg){CLASS_METER, 33, ""});
	F = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	npend = 0;
	poll_fini(f->p);
	reg_fini(f->reg);
	desc_set_free(&f->set);
	free(f);
	return 0;
}

static void test_exceptions_make_read_error(void **state)
{
	struct fx *f = *state;
	struct dev *d = f->s->dev;
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
	struct dev *d = f->s->dev;
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
	struct dev *d = f->s->dev;

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
	struct dev *d = f->s->dev;
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

/* A cycle's first block queues behind the other devices' background reads;
 * each later block goes ahead of them (bus_submit_next), so a started cycle
 * finishes before the next device's starts and its blocks are read close
 * together. */
static void test_started_cycle_goes_first(void **state)
{
	struct fx *f = *state;
	unsigned blocks = 0;
	int i;

	identify(f);
	next_txn();
	i = find_pending(slot_bus(f->s));
	assert_true(i >= 0);
	assert_int_equal(pend[i].prio, BUS_PRIO_LOW);
	assert_false(pend[i].first);
	do {
		answer(f, 0);
		i = find_pending(slot_bus(f->s));
		if (i >= 0) {
			assert_int_equal(pend[i].prio, BUS_PRIO_LOW);
			assert_true(pend[i].first);
			blocks++;
		}
	} while (i >= 0);
	assert_true(blocks >= 1); /* IE38 cycles have more than one block */
}

/* Identification reads the Iskra layout at the slot's address, matches the
 * description by model and reads its config; then cycles start. */
static void test_identify(void **state)
{
	struct fx *f = *state;
	const struct dev *d = reg_dev(f->reg, DEV_SLOT_LEFT_IR);
	struct bus_txn *t = next_txn();

	assert_ptr_equal(d, f->s->dev); /* the poller writes the registry's slot */
	assert_int_equal(d->health, DEV_IDENTIFYING);
	assert_int_equal(t->unit, 33);
	assert_int_equal(t->fc, 4);
	assert_int_equal(t->addr, 1);
	assert_int_equal(pend[0].prio, BUS_PRIO_LOW);
	identify(f);
	assert_string_equal(d->model, "IE38");
	assert_int_equal(d->health, DEV_OK);
	assert_int_equal(d->latency_ms, 7);
	assert_true(d->txns >= 2);
	assert_int_equal(d->errors, 0);
	assert_true(d->meas_seq > 0 && d->ctr_seq > d->meas_seq);
	assert_int_equal(d->meas_ms, 0); /* nothing measured yet */
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 0);
	/* the registry knows it by unit address now */
	assert_int_equal(reg_slot_of_unit(f->reg, 33), DEV_SLOT_LEFT_IR);
}

/* A model without a description: "unknown model", asked again a minute later. */
static void test_unknown_model(void **state)
{
	struct fx *f = *state;
	const struct dev *d = f->s->dev;

	memcpy(f->model, "ZZ99", 4);
	answer(f, 0);
	while (pending)
		answer(f, 0);
	assert_int_equal(d->health, DEV_UNKNOWN_MODEL);
	assert_non_null(strstr(d->last_error, "no description for model 'ZZ99'"));
	next_txn();
	assert_int_equal(now, 60000);
	assert_int_equal(f->s->kind, CHAIN_IDENT);
}

/* Each part's values and read times change together, when the part ends: a
 * reader between two blocks of the measurement part sees the old measurements,
 * between two counter blocks the old counters; subscribers hear once at the
 * cycle's end (and once at the measurement part's end, counted apart). */
static void test_cycle_applies_at_end(void **state)
{
	struct fx *f = *state;
	const struct dev *d = f->s->dev;
	unsigned u1, n = 0;
	int64_t ms0, start, ctr_ms0;
	uint64_t seq, ctr_seq0;
	double v;

	identify(f);
	cycle(f, all_ok);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 1);
	u1 = meas_index(d, QTY_U, 1);
	ms0 = d->meas_ms;
	v = d->meas[u1];
	seq = d->meas_seq;
	ctr_seq0 = d->ctr_seq;
	ctr_ms0 = d->ctr_ms;
	next_txn();
	start = now;
	f->gen++;
	do {
		if (f->s->pos < f->s->nmeas_chain) { /* nothing applied mid-part */
			assert_int_equal(d->meas_ms, ms0);
			assert_true(d->meas[u1] == v);
			assert_int_equal(d->meas_seq, seq);
		} else {
			assert_int_equal(d->ctr_seq, ctr_seq0);
			assert_int_equal(d->ctr_ms, ctr_ms0);
		}
		assert_int_equal(notified[DEV_SLOT_LEFT_IR], 1);
		now += 10; /* each block read 10 ms later */
		answer(f, 0);
		n++;
	} while (pending);
	assert_true(n > 2);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(notified_health, DEV_OK);
	assert_true(d->meas[u1] != v);
	assert_true(d->meas_seq > seq && d->ctr_seq > seq);
	/* the document's read time: the oldest block shown (the first one) */
	assert_int_equal(d->meas_ms, WALL0 + start + 10);
	assert_int_equal(notified_meas_ms, d->meas_ms);
	assert_true(d->ctr_ms > d->meas_ms);
	/* the raw registers went to the cache for the Modbus TCP gateway */
	uint16_t reg;
	assert_true(regcache_get(&d->cache, SPACE_INPUT, 107, 1, 0, &reg));
	assert_int_equal(reg, f->gen);
}

/* Publish when fresh: the measurement part (measurement blocks and relay) is
 * applied and told as soon as it is read, while the counter block is still
 * in flight, values and meas_ms together; the counters, ctr_ms and the health
 * at the cycle's end. A counter read that times out does not take back the
 * measurements; a cycle without counters is one update. */
static void test_meas_told_before_counters(void **state)
{
	struct fx *f = *state;
	const struct dev *d = f->s->dev;
	unsigned u1;
	int64_t start, ctr_ms0, meas_ms;
	uint64_t ctr_seq0, meas_seq0;
	double v;

	identify(f);
	cycle(f, all_ok); /* no counters read yet: told whole */
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 0);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 1);
	assert_int_equal(notified_upd, DEV_UPD_ALL);
	cycle(f, all_ok);
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 1);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(notified_upd, DEV_UPD_CTR);
	u1 = meas_index(d, QTY_U, 1);
	v = d->meas[u1];
	ctr_ms0 = d->ctr_ms;
	ctr_seq0 = d->ctr_seq;
	meas_seq0 = d->meas_seq;
	assert_true(f->s->nmeas_chain >= 2 && d->d->nctr_blocks == 1);

	next_txn();
	start = now;
	f->gen++;
	while (f->s->pos < f->s->nmeas_chain) {
		assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 1);
		now += 10;
		answer(f, 0);
	}
	/* told once, the counter block submitted but not answered */
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(told.pending_addr, d->d->ctr_blocks[0].start);
	/* what it saw: new values with their read time (the oldest block's) */
	assert_true(told.meas[u1] != v);
	assert_true(told.meas[u1] == d->meas[u1]);
	assert_int_equal(told.meas_ms, WALL0 + start + 10);
	assert_true(told.meas_seq > meas_seq0);
	assert_int_equal(told.health, DEV_OK);
	/* and the old counters */
	assert_int_equal(told.ctr_ms, ctr_ms0);
	assert_int_equal(told.ctr_seq, ctr_seq0);
	now += 10;
	answer(f, 0); /* the counter block */
	assert_null(pending);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 3);
	assert_int_equal(notified_upd, DEV_UPD_CTR);
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(d->ctr_ms, WALL0 + start + 10 * (f->s->nmeas_chain + 1));
	assert_true(d->ctr_seq > told.meas_seq);
	assert_int_equal(d->meas_seq, told.meas_seq);
	assert_int_equal(d->meas_ms, told.meas_ms);

	/* the counter read times out: the measurements stay, the counters do not */
	next_txn();
	start = now;
	f->gen++;
	ctr_ms0 = d->ctr_ms;
	while (f->s->pos < f->s->nmeas_chain) {
		now += 10;
		answer(f, 0);
	}
	answer(f, -ETIMEDOUT);
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 3);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 3); /* the health did not change */
	assert_int_equal(d->meas_ms, WALL0 + start + 10);
	assert_int_equal(d->ctr_ms, ctr_ms0);
	assert_int_equal(d->fails, 1);
	assert_int_equal(d->health, DEV_OK);

	/* counters not due: the measurement part is the whole cycle, told once */
	cycle(f, all_ok);
	f->p->ctr_interval_ms = 3600000;
	meas_ms = d->meas_ms;
	assert_int_equal(cycle(f, all_ok), f->s->nmeas_chain);
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 4);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 5);
	assert_int_equal(notified_upd, DEV_UPD_ALL);
	assert_true(d->meas_ms >= meas_ms);
	assert_int_equal(d->fails, 0);
}

/* Timeouts: not responding after exactly 3 failed cycles, subscribers told
 * when the health changes (not at each failure). */
static void test_not_responding_after_three(void **state)
{
	struct fx *f = *state;
	const struct dev *d = f->s->dev;

	identify(f);
	cycle(f, all_ok);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 1);
	cycle(f, all_timeout);
	assert_int_equal(d->fails, 1);
	assert_int_equal(d->health, DEV_OK);
	cycle(f, all_timeout);
	assert_int_equal(d->fails, 2);
	assert_int_equal(d->health, DEV_OK);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 1);
	cycle(f, all_timeout);
	assert_int_equal(d->fails, 3);
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(notified_health, DEV_NOT_RESPONDING);
	assert_non_null(strstr(d->last_error, "timeout"));
	assert_int_equal(d->errors, 3);
	/* the next attempt re-identifies (the meter may have been swapped) */
	next_txn();
	assert_int_equal(f->s->kind, CHAIN_IDENT);
	assert_int_equal(pending->addr, 1);
}

/* Down: probed at 1 s, then doubling up to 30 s; each failure counts once. */
static void test_backoff(void **state)
{
	static const int64_t expect[] = {1000, 1000, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
	struct fx *f = *state;
	const struct dev *d = f->s->dev;

	f->p->meas_interval_ms = 1000;
	identify(f);
	cycle(f, all_ok);
	for (unsigned i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		int64_t t0;

		next_txn();
		answer(f, -ETIMEDOUT); /* the first block: the chain stops */
		assert_null(pending);
		assert_int_equal(d->fails, i + 1);
		t0 = now;
		next_txn();
		assert_int_equal(now - t0, expect[i]);
	}
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	/* it answers again: re-identified, then ok after a cycle that reads */
	identify(f);
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	cycle(f, all_ok);
	assert_int_equal(d->health, DEV_OK);
	assert_int_equal(d->fails, 0);
	assert_int_equal(notified_health, DEV_OK);
	/* and polled at the interval again */
	{
		int64_t t0 = now;

		next_txn();
		assert_int_equal(now - t0, 1000);
	}
}

/* A meter swapped during an outage: re-identification finds another model,
 * and nothing read from the old one is shown. */
static void test_reidentify_swapped_meter(void **state)
{
	struct fx *f = *state;
	const struct dev *d = f->s->dev;
	uint64_t seq;

	identify(f);
	cycle(f, all_ok);
	for (int i = 0; i < 3; i++)
		cycle(f, all_timeout);
	assert_int_equal(d->health, DEV_NOT_RESPONDING);
	seq = d->meas_seq;
	memcpy(f->model, "IE14", 4);
	for (int n = 0; next_txn() && f->s->kind != CHAIN_CYCLE; n++) {
		assert_true(n < 50);
		answer(f, 0);
	}
	assert_ptr_equal(d->d, desc_find(&f->set, "IE14"));
	assert_string_equal(d->model, "IE14");
	assert_int_equal(d->meas_ms, 0);
	assert_int_equal(d->ctr_ms, 0);
	assert_false(d->meas_ok[0]);
	assert_true(d->meas_seq > seq);
	cycle(f, all_ok);
	assert_int_equal(d->health, DEV_OK);
	assert_true(d->meas_ms > 0);
}

/* Exceptions are answers: the chain goes on and the device keeps answering
 * (no "not responding"); only the model read of an identification needs data. */
static void test_exception_answers(void **state)
{
	struct fx *f = *state;
	const struct dev *d = f->s->dev;
	unsigned n_ok, n_exc;

	/* the model read answered with an exception: identification fails */
	answer(f, EXC2);
	assert_null(pending);
	assert_int_equal(d->fails, 1);
	assert_int_equal(d->health, DEV_IDENTIFYING);
	assert_non_null(strstr(d->last_error, "exception 2"));
	identify(f);
	n_ok = cycle(f, all_ok);
	for (int i = 0; i < 5; i++) {
		n_exc = cycle(f, all_exc);
		assert_int_equal(n_exc, n_ok); /* every block asked */
		assert_int_equal(d->fails, 0);
		assert_int_not_equal(d->health, DEV_NOT_RESPONDING);
	}
	assert_int_equal(d->health, DEV_READ_ERROR);
	assert_int_equal(notified_health, DEV_READ_ERROR);
}

/* Every subscriber is told once per completed cycle (and once per
 * measurement part, counted apart); a failed cycle that does not change the
 * health tells nobody; an unsubscribed one hears nothing. */
static unsigned other_calls, other_meas_calls;

static void on_other(const struct dev *d, void *arg)
{
	assert_ptr_equal(arg, &other_calls);
	if (d->upd == DEV_UPD_MEAS)
		other_meas_calls++;
	else
		other_calls++;
}

static void test_subscribers_once_per_update(void **state)
{
	struct fx *f = *state;

	other_calls = other_meas_calls = 0;
	assert_int_equal(reg_subscribe(f->reg, on_other, &other_calls), 0);
	identify(f);
	cycle(f, all_ok);
	cycle(f, all_ok);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 2);
	assert_int_equal(other_calls, 2);
	cycle(f, all_timeout);
	assert_int_equal(other_calls, 2);
	cycle(f, all_ok);
	assert_int_equal(other_calls, 3);
	reg_unsubscribe(f->reg, on_other, &other_calls);
	cycle(f, all_ok);
	assert_int_equal(other_calls, 3);
	assert_int_equal(other_meas_calls, 2); /* the first cycle is told whole */
	assert_int_equal(meas_notified[DEV_SLOT_LEFT_IR], 3);
	assert_int_equal(notified[DEV_SLOT_LEFT_IR], 4);
	for (int s = 0; s < DEV_SLOTS; s++)
		if (s != DEV_SLOT_LEFT_IR)
			assert_int_equal(notified[s], 0);
}

/* ---- scan ownership ---- */

static int scan_err = 1;
static json_t *scan_res;

static void on_scan(int err, const char *msg, json_t *result, void *arg)
{
	(void)msg;
	(void)arg;
	scan_err = err;
	scan_res = result;
}

static void on_op(int err, const char *msg, json_t *result, void *arg)
{
	(void)msg;
	(void)result;
	*(int *)arg = err;
}

/* Answer every pending transaction on RS485 of the scan (high priority). */
static struct bus_txn *scan_txn(void)
{
	for (unsigned i = 0; i < npend; i++)
		if (pend[i].b == RS && pend[i].prio == BUS_PRIO_HIGH)
			return pend[i].t;
	return NULL;
}

static void test_scan_owns_rs485(void **state)
{
	struct fx *f = *state;
	struct pslot *rs = &f->p->slot[DEV_SLOT_RS485(1)];
	const struct dev *d = rs->dev;
	struct bus_txn *t, mb = {.fc = 3, .addr = 0, .count = 1};
	int op_err = 1, rs_asked;

	f->p->meas_interval_ms = 1000;
	slot_apply(f->p, rs, &(struct slot_cfg){CLASS_METER, 5, ""});
	/* the RS485 meter identified and read once */
	for (int n = 0; next_txn_on(RS) && rs->kind != CHAIN_CYCLE; n++) {
		assert_true(n < 50);
		answer_txn(f, next_txn_on(RS), 0);
	}
	do
		answer_txn(f, next_txn_on(RS), 0);
	while (find_pending(RS) >= 0);
	assert_int_equal(d->health, DEV_OK);
	assert_false(reg_bus_busy(f->reg, CONF_BUS_RS485));

	/* a transaction in flight when the scan starts */
	t = next_txn_on(RS);
	assert_int_equal(poll_scan(f->p, 9600, 'E', 1, 7, 8, on_scan, NULL), 0);
	assert_true(reg_bus_busy(f->reg, CONF_BUS_RS485));
	assert_false(reg_bus_busy(f->reg, CONF_BUS_LEFT_IR));
	assert_int_equal(line[1].baud, 9600);
	assert_int_equal(line[1].parity, 'E');
	/* while it scans: a second scan, raw Modbus and set-parameters are refused */
	assert_int_equal(poll_scan(f->p, 0, 0, 0, 1, 2, on_scan, NULL), -EBUSY);
	assert_int_equal(poll_modbus(f->p, 5, &mb, on_op, &op_err), -EBUSY);
	assert_int_equal(poll_set_parameters(f->p, 7, "WM3M4", -1, 2, -1, -1, on_op, &op_err),
			 -EBUSY);
	/* the in-flight read fails (wrong line speed): not the device's fault */
	answer_txn(f, t, -ETIMEDOUT);
	assert_int_equal(d->fails, 0);
	for (unsigned i = 0; i < CHAIN_MAX; i++)
		assert_int_equal(rs->blk[i].fails, 0);
	/* background polling of RS485 stops; Left IR goes on */
	rs_asked = 0;
	for (int i = 0; now < 5000; i++) {
		assert_true(i < 1000);
		answer_txn(f, next_txn_on(IR), 0);
		for (unsigned k = 0; k < npend; k++)
			rs_asked += pend[k].b == RS && pend[k].prio == BUS_PRIO_LOW;
	}
	assert_int_equal(rs_asked, 0);
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_LEFT_IR)->health, DEV_OK);
	assert_int_equal(d->health, DEV_OK);
	/* the scan: address 7 answers, 8 is silent (asked twice) */
	t = scan_txn();
	assert_non_null(t);
	assert_int_equal(t->unit, 7);
	answer_txn(f, t, 0);
	t = scan_txn();
	assert_int_equal(t->unit, 8);
	answer_txn(f, t, -ETIMEDOUT);
	t = scan_txn();
	assert_int_equal(t->unit, 8);
	assert_true(reg_bus_busy(f->reg, CONF_BUS_RS485));
	answer_txn(f, t, -ETIMEDOUT);
	assert_int_equal(scan_err, 0);
	assert_int_equal(json_array_size(json_object_get(scan_res, "devices")), 1);
	json_decref(scan_res);
	/* released: the line is back at its own speed and RS485 polling resumes */
	assert_false(reg_bus_busy(f->reg, CONF_BUS_RS485));
	assert_int_equal(line[1].baud, 115200);
	assert_int_equal(line[1].parity, 'N');
	next_txn_on(RS);
	assert_int_equal(pend[find_pending(RS)].t->unit, 5);
	assert_int_equal(poll_modbus(f->p, 5, &mb, on_op, &op_err), 0);
	answer_txn(f, &mb, 0);
	assert_int_equal(op_err, 0);
}

/* A cancelled scan (shutdown) releases the bus too. */
static void test_scan_cancel_releases(void **state)
{
	struct fx *f = *state;
	struct bus_txn *t;

	assert_int_equal(poll_scan(f->p, 0, 0, 0, 1, 1, on_scan, NULL), 0);
	assert_true(reg_bus_busy(f->reg, CONF_BUS_RS485));
	t = scan_txn();
	answer_txn(f, t, -ECANCELED);
	assert_int_equal(scan_err, -ECANCELED);
	assert_false(reg_bus_busy(f->reg, CONF_BUS_RS485));
}

/* Settings put the slots into the registry: classes and addresses, RS485
 * line parameters (not while a scan holds the line), a disabled slot. */
static void test_configure_from_settings(void **state)
{
	struct fx *f = *state;
	struct settings *st;
	char dir[] = "/tmp/sgd-test-poll-XXXXXX", err[256];
	char *kv[] = {"rs485_type_2=1",	   "rs485_addr_2=9",	   "rs485_baud_rate=3",
		      "rs485_parity=2",	   "rs485_stop_bits=1",	   "left_ir_enabled=0",
		      "ir_ext_rel_mode=1", "poll_meas_interval=5", "rs485_desc_2=Hall"};

	assert_non_null(mkdtemp(dir));
	assert_int_equal(settings_init(&st, dir, "12345678", "SG"), 0);
	assert_int_equal(settings_set_kv(st, kv, 9, err, sizeof(err)), 0);
	poll_configure(f->p, st);
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_LEFT_IR)->health, DEV_DISABLED);
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_RS485(2))->cls, CLASS_METER);
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_RS485(2))->addr, 9);
	assert_string_equal(reg_dev(f->reg, DEV_SLOT_RS485(2))->cfg_description, "Hall");
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_RS485(2))->health, DEV_IDENTIFYING);
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_RIGHT_IR)->cls, CLASS_BICOM);
	assert_int_equal(reg_dev(f->reg, DEV_SLOT_RIGHT_IR)->addr, 33);
	assert_int_equal(reg_bicom_slot(f->reg, 0), DEV_SLOT_RIGHT_IR);
	assert_int_equal(reg_slot_of_unit(f->reg, 9), DEV_SLOT_RS485(2));
	assert_int_equal(f->p->meas_interval_ms, 5000);
	assert_int_equal(line[1].parity, 'E');
	assert_int_equal(line[1].stop_bits, 2);
	assert_int_equal(line[1].baud, bus_baud_from_code(3));
	assert_true(reg_bus_used(f->reg, CONF_BUS_RS485));
	assert_false(reg_bus_used(f->reg, CONF_BUS_LEFT_IR));
	/* the enabled RS485 slot is asked at its address */
	assert_int_equal(next_txn_on(RS)->unit, 9);
	/* during a scan a new line setting waits for the scan's end */
	assert_int_equal(poll_scan(f->p, 0, 0, 0, 1, 1, on_scan, NULL), 0);
	{
		char *kv2[] = {"rs485_parity=1"};
		unsigned calls = set_params_calls;

		assert_int_equal(settings_set_kv(st, kv2, 1, err, sizeof(err)), 0);
		poll_configure(f->p, st);
		assert_int_equal(set_params_calls, calls);
		answer_txn(f, scan_txn(), EXC2);
		assert_int_equal(line[1].parity, 'O');
		json_decref(scan_res);
	}
	settings_fini(st);
	{
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_started_cycle_goes_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_model, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cycle_applies_at_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meas_told_before_counters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exceptions_make_read_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partial_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts_and_exceptions_alike, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_ok_before_a_cycle_reads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_responding_after_three, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reidentify_swapped_meter, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exception_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscribers_once_per_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_owns_rs485, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_cancel_releases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_configure_from_settings, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
