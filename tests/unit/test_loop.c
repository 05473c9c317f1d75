/* The real epoll loop: timer order, FIFO among equal deadlines, cancel,
 * timers added from callbacks, fd callbacks, quit, and removing an fd whose
 * event is already in the current batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/clock.h"
#include "sg/loop.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAXREC 64

struct rec {
	struct loop *l;
	int order[MAXREC];
	int n;
	int quit_after; /* loop_quit once n reaches this */
};

struct tctx {
	struct rec *r;
	int tag;
};

static void record(struct rec *r, int tag)
{
	assert_true(r->n < MAXREC);
	r->order[r->n++] = tag;
	if (r->n == r->quit_after)
		loop_quit(r->l);
}

static void on_timer(void *arg)
{
	struct tctx *c = arg;

	record(c->r, c->tag);
}

static void on_fail(void *arg)
{
	(void)arg;
	fail_msg("a cancelled timer fired");
}

static void on_quit(void *arg)
{
	loop_quit(arg);
}

/* Safety net so a broken loop can't hang the test run. */
static void on_watchdog(void *arg)
{
	(void)arg;
	fail_msg("watchdog: loop did not quit in time");
}

static struct loop *new_loop(void)
{
	struct loop *l = NULL;

	assert_int_equal(loop_init(&l), 0);
	assert_non_null(l);
	return l;
}

static void test_deadline_order(void **state)
{
	struct loop *l = new_loop();
	struct rec r = {.l = l, .quit_after = 3};
	struct tctx c30 = {&r, 30}, c10 = {&r, 10}, c20 = {&r, 20};
	int64_t t0 = clock_mono_ms(), id[3];

	(void)state;
	id[0] = loop_timer_add(l, 30, on_timer, &c30);
	id[1] = loop_timer_add(l, 10, on_timer, &c10);
	id[2] = loop_timer_add(l, 20, on_timer, &c20);
	assert_true(id[0] > 0 && id[1] > 0 && id[2] > 0);
	assert_true(id[0] != id[1] && id[1] != id[2] && id[0] != id[2]);
	loop_timer_add(l, 2000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.order[0], 10);
	assert_int_equal(r.order[1], 20);
	assert_int_equal(r.order[2], 30);
	/* the last one did not fire early */
	assert_true(clock_mono_ms() - t0 >= 30);
	loop_fini(l);
}

static void test_equal_deadlines_fifo(void **state)
{
	struct loop *l = new_loop();
	struct rec r = {.l = l, .quit_after = 40};
	struct tctx c[40];

	(void)state;
	/* many equal deadlines, so the heap has to reorder around them */
	for (int i = 0; i < 40; i++) {
		c[i] = (struct tctx){&r, i};
		assert_true(loop_timer_add(l, 15, on_timer, &c[i]) > 0);
	}
	loop_timer_add(l, 2000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 40);
	for (int i = 0; i < 40; i++)
		assert_int_equal(r.order[i], i);
	loop_fini(l);
}

static void test_mixed_many(void **state)
{
	/* 60 timers with deadlines in a scrambled order; they must fire sorted
	 * by deadline, and by insertion among equal ones. The deadline is the
	 * clock at loop_timer_add() plus the delay; the clock is read around
	 * each add, and an add the clock ticked across (its deadline could be
	 * either ms) starts the round over, so the expected order is exact
	 * however slowly the adds run. */
	int order[60];
	int64_t due[60];
	struct loop *l = NULL;
	struct rec r;
	struct tctx c[60];
	int tries = 0;
	bool exact = false;

	(void)state;
	while (!exact && tries++ < 100) {
		if (l)
			loop_fini(l);
		l = new_loop();
		r = (struct rec){.l = l, .quit_after = 60};
		exact = true;
		for (int i = 0; i < 60 && exact; i++) {
			/* 0..38 ms in steps of 2, each value three times */
			int delay = (i * 37) % 20 * 2;
			int64_t before = clock_mono_ms();

			c[i] = (struct tctx){&r, i};
			assert_true(loop_timer_add(l, delay, on_timer, &c[i]) > 0);
			due[i] = before + delay;
			exact = clock_mono_ms() == before;
		}
	}
	assert_true(exact);
	/* the expected order: by deadline, then by insertion (insertion sort
	 * of the indices, stable) */
	for (int i = 0; i < 60; i++) {
		int k = i;

		while (k > 0 && due[order[k - 1]] > due[i]) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	loop_timer_add(l, 5000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 60);
	for (int i = 0; i < 60; i++)
		assert_int_equal(r.order[i], order[i]);
	loop_fini(l);
}

struct cancel_ctx {
	struct rec *r;
	struct loop *l;
	int64_t victim;
};

static void on_cancel_other(void *arg)
{
	struct cancel_ctx *c = arg;

	loop_timer_cancel(c->l, c->victim);
	record(c->r, 1);
}

static void test_cancel(void **state)
{
	struct loop *l = new_loop();
	struct rec r = {.l = l, .quit_after = 0};
	struct tctx a = {&r, 5}, b = {&r, 25};
	struct cancel_ctx cc = {&r, l, 0};
	int64_t dead1, dead2, id_a;

	(void)state;
	/* cancelled before the loop runs */
	dead1 = loop_timer_add(l, 10, on_fail, NULL);
	assert_true(dead1 > 0);
	loop_timer_cancel(l, dead1);
	/* cancelled from another timer's callback (which fires first) */
	dead2 = loop_timer_add(l, 30, on_fail, NULL);
	cc.victim = dead2;
	assert_true(loop_timer_add(l, 15, on_cancel_other, &cc) > 0);
	id_a = loop_timer_add(l, 5, on_timer, &a);
	assert_true(loop_timer_add(l, 25, on_timer, &b) > 0);
	assert_true(loop_timer_add(l, 60, on_quit, l) > 0);
	/* unknown ids are a no-op */
	loop_timer_cancel(l, 987654);
	loop_timer_cancel(l, 0);
	loop_timer_cancel(l, -1);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.order[0], 5);
	assert_int_equal(r.order[1], 1);
	assert_int_equal(r.order[2], 25);
	/* cancelling a timer that already fired is a no-op */
	loop_timer_cancel(l, id_a);
	loop_timer_cancel(l, dead1);
	loop_fini(l);
}

struct chain_ctx {
	struct rec *r;
	struct loop *l;
	int depth;
	struct tctx leaf;
};

static void on_chain(void *arg)
{
	struct chain_ctx *c = arg;

	record(c->r, 100 + c->depth);
	if (c->depth < 3) {
		c->depth++;
		assert_true(loop_timer_add(c->l, 5, on_chain, c) > 0);
	} else {
		/* a zero delay timer added from a callback fires too */
		assert_true(loop_timer_add(c->l, 0, on_timer, &c->leaf) > 0);
	}
}

static void test_timer_added_from_callback(void **state)
{
	struct loop *l = new_loop();
	struct rec r = {.l = l, .quit_after = 5};
	struct chain_ctx c = {&r, l, 0, {&r, 7}};

	(void)state;
	assert_true(loop_timer_add(l, 5, on_chain, &c) > 0);
	loop_timer_add(l, 2000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.order[0], 100);
	assert_int_equal(r.order[1], 101);
	assert_int_equal(r.order[2], 102);
	assert_int_equal(r.order[3], 103);
	assert_int_equal(r.order[4], 7);
	loop_fini(l);
}

static void test_quit_from_timer(void **state)
{
	struct loop *l = new_loop();
	int64_t t0 = clock_mono_ms(), dt;

	(void)state;
	assert_true(loop_timer_add(l, 20, on_quit, l) > 0);
	loop_timer_add(l, 2000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 20);
	assert_true(dt < 1000);
	/* the loop can be run again after a quit */
	assert_true(loop_timer_add(l, 5, on_quit, l) > 0);
	assert_int_equal(loop_run(l), 0);
	loop_fini(l);
}

struct fdctx {
	struct loop *l;
	int calls;
	int fd_seen;
	uint32_t events;
	char buf[16];
	ssize_t got;
	int other_fd; /* fd to remove from inside the callback, or -1 */
	int *total;
};

static void on_readable(int fd, uint32_t events, void *arg)
{
	struct fdctx *c = arg;

	c->calls++;
	c->fd_seen = fd;
	c->events = events;
	c->got = read(fd, c->buf, sizeof(c->buf));
	loop_quit(c->l);
}

static void test_fd_readable(void **state)
{
	struct loop *l = new_loop();
	int p[2];
	struct fdctx c = {.l = l, .other_fd = -1};

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_add_fd(l, p[0], EPOLLIN, on_readable, &c), 0);
	/* adding the same fd twice is refused */
	assert_int_equal(loop_add_fd(l, p[0], EPOLLIN, on_readable, &c), -EEXIST);
	assert_int_equal(loop_add_fd(l, -1, EPOLLIN, on_readable, &c), -EBADF);
	assert_int_equal(write(p[1], "hi", 2), 2);
	loop_timer_add(l, 2000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.fd_seen, p[0]);
	assert_true(c.events & EPOLLIN);
	assert_int_equal(c.got, 2);
	assert_memory_equal(c.buf, "hi", 2);
	loop_del_fd(l, p[0]);
	loop_del_fd(l, p[0]);	/* twice: no-op */
	loop_del_fd(l, 100000); /* never added: no-op */
	close(p[0]);
	close(p[1]);
	loop_fini(l);
}

static void on_writable(int fd, uint32_t events, void *arg)
{
	struct fdctx *c = arg;

	(void)fd;
	c->calls++;
	c->events = events;
	loop_quit(c->l);
}

static void test_fd_mod(void **state)
{
	struct loop *l = new_loop();
	int p[2];
	struct fdctx c = {.l = l, .other_fd = -1};

	(void)state;
	assert_int_equal(pipe(p), 0);
	/* write end watched for nothing first, then for EPOLLOUT */
	assert_int_equal(loop_add_fd(l, p[1], 0, on_writable, &c), 0);
	assert_int_equal(loop_mod_fd(l, p[1], EPOLLOUT), 0);
	loop_timer_add(l, 2000, on_watchdog, NULL);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(c.calls, 1);
	assert_true(c.events & EPOLLOUT);
	loop_del_fd(l, p[1]);
	close(p[0]);
	close(p[1]);
	loop_fini(l);
}

static void on_del_other(int fd, uint32_t events, void *arg)
{
	struct fdctx *c = arg;
	char b[8];

	(void)events;
	c->calls++;
	(*c->total)++;
	c->fd_seen = fd;
	if (read(fd, b, sizeof(b)) < 0)
		fail_msg("read: %s", strerror(errno));
	loop_del_fd(c->l, c->other_fd);
}

static void on_quit_later(void *arg)
{
	loop_quit(arg);
}

static void test_del_fd_in_same_batch(void **state)
{
	struct loop *l = new_loop();
	int a[2], b[2], total = 0;
	struct fdctx ca = {.l = l, .total = &total}, cb = {.l = l, .total = &total};

	(void)state;
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	ca.other_fd = b[0];
	cb.other_fd = a[0];
	assert_int_equal(loop_add_fd(l, a[0], EPOLLIN, on_del_other, &ca), 0);
	assert_int_equal(loop_add_fd(l, b[0], EPOLLIN, on_del_other, &cb), 0);
	/* both readable before the loop runs: one epoll_wait returns both */
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "y", 1), 1);
	assert_true(loop_timer_add(l, 30, on_quit_later, l) > 0);
	assert_int_equal(loop_run(l), 0);
	/* whichever ran first removed the other, which must not be called */
	assert_int_equal(total, 1);
	assert_int_equal(ca.calls + cb.calls, 1);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	loop_fini(l);
}

/* Every value lies in its bucket, buckets are contiguous and increasing,
 * and none is wider than a quarter of its lower bound. */
static void test_hist_buckets(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 5000000; v += v < 4096 ? 1 : 997) {
		unsigned b = loop_hist_bucket(v);

		assert_true(v <= loop_hist_upper(b));
		if (b > 0)
			assert_true(v > loop_hist_upper(b - 1));
	}
	assert_int_equal(loop_hist_bucket(0), 0);
	assert_int_equal(loop_hist_bucket(3), 3);
	assert_int_equal(loop_hist_bucket(4), 4);
	assert_int_equal(loop_hist_bucket(7), 7);
	assert_int_equal(loop_hist_bucket(8), 8);
	assert_int_equal(loop_hist_bucket(9), 8);
	assert_int_equal(loop_hist_bucket(10), 9);
	assert_int_equal(loop_hist_upper(8), 9);
	assert_int_equal(loop_hist_upper(11), 15);
	assert_int_equal(loop_hist_bucket(16), 12);
	for (unsigned b = 8; b < LOOP_HIST_BUCKETS - 1; b++) {
		uint64_t lo = loop_hist_upper(b - 1) + 1, hi = loop_hist_upper(b);

		assert_true(hi > lo);
		assert_true((hi + 1 - lo) * 4 <= lo);
	}
	/* far beyond the range: the last bucket, still counted */
	assert_int_equal(loop_hist_bucket(UINT64_MAX), LOOP_HIST_BUCKETS - 1);
	assert_int_equal(loop_hist_bucket((uint64_t)1 << 40), LOOP_HIST_BUCKETS - 1);
}

static void test_hist_quantile(void **state)
{
	struct loop_hist h;
	uint64_t p;

	(void)state;
	memset(&h, 0, sizeof(h));
	assert_int_equal(loop_hist_quantile(&h, 990), 0);
	/* 99 short turns and one long one: p99 is a short one */
	for (int i = 0; i < 99; i++)
		loop_hist_add(&h, 100);
	loop_hist_add(&h, 40000);
	assert_int_equal(h.count, 100);
	assert_int_equal(h.max_us, 40000);
	p = loop_hist_quantile(&h, 990);
	assert_true(p >= 100 && p <= 125);
	assert_int_equal(loop_hist_quantile(&h, 1000), 40000);
	assert_int_equal(h.slow, 1);
	assert_int_equal(h.stalls, 0);
	/* a second long one: now more than 1 % are long */
	loop_hist_add(&h, 30000);
	p = loop_hist_quantile(&h, 990);
	assert_true(p >= 30000 && p <= 37500);
	/* the thresholds count strictly longer turns */
	loop_hist_add(&h, LOOP_SLOW_US);
	loop_hist_add(&h, LOOP_SLOW_US + 1);
	loop_hist_add(&h, LOOP_STALL_US);
	loop_hist_add(&h, LOOP_STALL_US + 1);
	assert_int_equal(h.slow, 5);
	assert_int_equal(h.stalls, 1);
	/* the bound never exceeds the largest value seen */
	memset(&h, 0, sizeof(h));
	loop_hist_add(&h, 4100);
	assert_int_equal(loop_hist_quantile(&h, 990), 4100);
	assert_int_equal(loop_hist_quantile(&h, 1), 4100);
	/* 1…1000: p50 is about 500, p99 about 990 */
	memset(&h, 0, sizeof(h));
	for (uint64_t v = 1000; v > 0; v--)
		loop_hist_add(&h, v);
	p = loop_hist_quantile(&h, 500);
	assert_true(p >= 500 && p <= 625);
	p = loop_hist_quantile(&h, 990);
	assert_true(p >= 990 && p <= 1000);
}

static void on_sleep(void *arg)
{
	(void)arg;
	usleep(20000);
}

/* Each dispatching turn is counted; a callback that sleeps shows in max. */
static void test_turn_stats(void **state)
{
	struct loop *l;
	struct loop_stats st;

	(void)state;
	assert_int_equal(loop_init(&l), 0);
	loop_stats(l, &st);
	assert_int_equal(st.turns, 0);
	assert_int_equal(st.max_us, 0);
	assert_true(loop_timer_add(l, 1, on_sleep, NULL) > 0);
	assert_true(loop_timer_add(l, 40, on_quit, l) > 0);
	assert_int_equal(loop_run(l), 0);
	loop_stats(l, &st);
	assert_true(st.turns >= 2);
	assert_true(st.max_us >= 20000);
	assert_true(st.slow >= 1);
	assert_true(st.p99_us <= st.max_us);
	loop_fini(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deadline_order),
	    cmocka_unit_test(test_equal_deadlines_fifo),
	    cmocka_unit_test(test_mixed_many),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_timer_added_from_callback),
	    cmocka_unit_test(test_quit_from_timer),
	    cmocka_unit_test(test_fd_readable),
	    cmocka_unit_test(test_fd_mod),
	    cmocka_unit_test(test_del_fd_in_same_batch),
	    cmocka_unit_test(test_hist_buckets),
	    cmocka_unit_test(test_hist_quantile),
	    cmocka_unit_test(test_turn_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
