/* Two-priority bounded FIFO: priority order, FIFO within a priority, bounds
 * per priority, and a random push/pop sequence against a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/txq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct item {
	struct txq_node node; /* first, so a node pointer is an item pointer */
	int id;
	enum bus_prio prio;
};

static struct item *pop_item(struct txq *q)
{
	return (struct item *)txq_pop(q);
}

static void test_empty(void **state)
{
	struct txq q;

	(void)state;
	txq_init(&q, 4, 4);
	assert_true(txq_empty(&q));
	assert_null(txq_pop(&q));
	assert_null(txq_pop(&q));
	assert_int_equal(txq_len(&q, BUS_PRIO_HIGH), 0);
	assert_int_equal(txq_len(&q, BUS_PRIO_LOW), 0);
	assert_true(txq_empty(&q));
}

static void test_empty_after_drain(void **state)
{
	struct txq q;
	struct item a = {.id = 1}, b = {.id = 2};

	(void)state;
	txq_init(&q, 4, 4);
	assert_int_equal(txq_push(&q, &a.node, BUS_PRIO_LOW), 0);
	assert_int_equal(txq_push(&q, &b.node, BUS_PRIO_HIGH), 0);
	assert_false(txq_empty(&q));
	assert_ptr_equal(pop_item(&q), &b);
	assert_false(txq_empty(&q));
	assert_ptr_equal(pop_item(&q), &a);
	assert_true(txq_empty(&q));
	assert_null(txq_pop(&q));
	/* usable again after draining (tail pointers reset) */
	assert_int_equal(txq_push(&q, &a.node, BUS_PRIO_LOW), 0);
	assert_int_equal(txq_push(&q, &b.node, BUS_PRIO_LOW), 0);
	assert_ptr_equal(pop_item(&q), &a);
	assert_ptr_equal(pop_item(&q), &b);
	assert_null(txq_pop(&q));
}

static void test_high_before_low(void **state)
{
	struct txq q;
	struct item it[8];
	int i;

	(void)state;
	txq_init(&q, 8, 8);
	/* low L0 L1 L2 first, then high H3 H4, then low L5, then high H6 H7 */
	for (i = 0; i < 8; i++) {
		it[i].id = i;
		it[i].prio = (i == 3 || i == 4 || i == 6 || i == 7) ? BUS_PRIO_HIGH : BUS_PRIO_LOW;
		assert_int_equal(txq_push(&q, &it[i].node, it[i].prio), 0);
	}
	assert_int_equal(txq_len(&q, BUS_PRIO_HIGH), 4);
	assert_int_equal(txq_len(&q, BUS_PRIO_LOW), 4);
	{
		static const int want[] = {3, 4, 6, 7, 0, 1, 2, 5};

		for (i = 0; i < 8; i++) {
			struct item *p = pop_item(&q);

			assert_non_null(p);
			assert_int_equal(p->id, want[i]);
		}
	}
	assert_null(txq_pop(&q));
}

/* push_front puts an entry before the other entries of its priority (the
 * next block of a started poll cycle), still after high-priority ones; it
 * respects the bound and leaves the queue consistent for later pushes. */
static void test_push_front(void **state)
{
	static const int want[] = {4, 3, 0, 1, 5};
	struct txq q;
	struct item it[6];
	int i;

	(void)state;
	txq_init(&q, 4, 4);
	for (i = 0; i < 6; i++)
		it[i].id = i;
	assert_int_equal(txq_push_front(&q, &it[0].node, BUS_PRIO_LOW),
			 0); /* into an empty queue */
	assert_int_equal(txq_push(&q, &it[1].node, BUS_PRIO_LOW), 0);
	assert_int_equal(txq_push_front(&q, &it[3].node, BUS_PRIO_LOW), 0);
	assert_int_equal(txq_push(&q, &it[4].node, BUS_PRIO_HIGH), 0);
	assert_int_equal(txq_push(&q, &it[5].node, BUS_PRIO_LOW), 0);
	assert_int_equal(txq_len(&q, BUS_PRIO_LOW), 4);
	assert_int_equal(txq_push_front(&q, &it[2].node, BUS_PRIO_LOW), -EBUSY);
	for (i = 0; i < 5; i++) {
		struct item *p = pop_item(&q);

		assert_non_null(p);
		assert_int_equal(p->id, want[i]);
	}
	assert_null(txq_pop(&q));
	assert_true(txq_empty(&q));
}

static void test_high_inserted_late_still_first(void **state)
{
	struct txq q;
	struct item low[5], high = {.id = 100};
	int i;

	(void)state;
	txq_init(&q, 2, 8);
	for (i = 0; i < 5; i++) {
		low[i].id = i;
		assert_int_equal(txq_push(&q, &low[i].node, BUS_PRIO_LOW), 0);
	}
	/* pop two low, then a high arrives: it jumps the remaining low ones */
	assert_int_equal(pop_item(&q)->id, 0);
	assert_int_equal(pop_item(&q)->id, 1);
	assert_int_equal(txq_push(&q, &high.node, BUS_PRIO_HIGH), 0);
	assert_int_equal(pop_item(&q)->id, 100);
	assert_int_equal(pop_item(&q)->id, 2);
	assert_int_equal(pop_item(&q)->id, 3);
	assert_int_equal(pop_item(&q)->id, 4);
	assert_null(txq_pop(&q));
}

static void test_bounds(void **state)
{
	struct txq q;
	struct item h[4], l[4], extra_h = {.id = 90}, extra_l = {.id = 91};
	int i;

	(void)state;
	txq_init(&q, 2, 3);
	for (i = 0; i < 2; i++) {
		h[i].id = 10 + i;
		assert_int_equal(txq_push(&q, &h[i].node, BUS_PRIO_HIGH), 0);
	}
	/* high full: -EBUSY, length unchanged, low still accepts */
	assert_int_equal(txq_push(&q, &extra_h.node, BUS_PRIO_HIGH), -EBUSY);
	assert_int_equal(txq_len(&q, BUS_PRIO_HIGH), 2);
	for (i = 0; i < 3; i++) {
		l[i].id = 20 + i;
		assert_int_equal(txq_push(&q, &l[i].node, BUS_PRIO_LOW), 0);
	}
	assert_int_equal(txq_push(&q, &extra_l.node, BUS_PRIO_LOW), -EBUSY);
	assert_int_equal(txq_len(&q, BUS_PRIO_LOW), 3);
	assert_int_equal(txq_push(&q, &extra_h.node, BUS_PRIO_HIGH), -EBUSY);

	/* a pop from high frees one high place only */
	assert_int_equal(pop_item(&q)->id, 10);
	assert_int_equal(txq_push(&q, &extra_l.node, BUS_PRIO_LOW), -EBUSY);
	assert_int_equal(txq_push(&q, &extra_h.node, BUS_PRIO_HIGH), 0);
	/* rejected pushes did not corrupt the lists */
	assert_int_equal(pop_item(&q)->id, 11);
	assert_int_equal(pop_item(&q)->id, 90);
	assert_int_equal(pop_item(&q)->id, 20);
	assert_int_equal(pop_item(&q)->id, 21);
	assert_int_equal(pop_item(&q)->id, 22);
	assert_null(txq_pop(&q));
	assert_true(txq_empty(&q));
}

static void test_zero_capacity(void **state)
{
	struct txq q;
	struct item a = {.id = 1}, b = {.id = 2};

	(void)state;
	txq_init(&q, 0, 1);
	assert_int_equal(txq_push(&q, &a.node, BUS_PRIO_HIGH), -EBUSY);
	assert_true(txq_empty(&q));
	assert_int_equal(txq_push(&q, &a.node, BUS_PRIO_LOW), 0);
	assert_int_equal(txq_push(&q, &b.node, BUS_PRIO_LOW), -EBUSY);
	assert_ptr_equal(pop_item(&q), &a);
	assert_true(txq_empty(&q));
}

/* Reference model: one array-backed FIFO per priority. */
#define POOL 64
#define CAP_H 5
#define CAP_L 9

struct ref {
	int fifo[BUS_PRIO_COUNT][POOL];
	int head[BUS_PRIO_COUNT], n[BUS_PRIO_COUNT];
	unsigned high_run;
};

static void test_random_vs_model(void **state)
{
	unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
	static struct item pool[POOL];
	bool queued[POOL] = {false};
	struct ref ref = {0};
	struct txq q;
	int step, i;
	const size_t cap[BUS_PRIO_COUNT] = {CAP_H, CAP_L};

	(void)state;
	if (getenv("TXQ_SEED")) /* reproduce a failing run: TXQ_SEED=N */
		seed = (unsigned)strtoul(getenv("TXQ_SEED"), NULL, 10);
	printf("seed %u\n", seed);
	srand(seed);
	txq_init(&q, CAP_H, CAP_L);
	for (i = 0; i < POOL; i++)
		pool[i].id = i;
	for (step = 0; step < 20000; step++) {
		int op = rand() % 100;

		if (op < 55) {
			/* push a free item at a random priority */
			enum bus_prio p = (rand() % 3 == 0) ? BUS_PRIO_HIGH : BUS_PRIO_LOW;
			int k = rand() % POOL, tries;
			int r;

			for (tries = 0; tries < POOL && queued[k]; tries++)
				k = (k + 1) % POOL;
			if (queued[k])
				continue;
			pool[k].prio = p;
			r = txq_push(&q, &pool[k].node, p);
			if ((size_t)ref.n[p] >= cap[p]) {
				assert_int_equal(r, -EBUSY);
			} else {
				assert_int_equal(r, 0);
				ref.fifo[p][(ref.head[p] + ref.n[p]) % POOL] = k;
				ref.n[p]++;
				queued[k] = true;
			}
		} else {
			struct item *got = pop_item(&q);
			int want = -1;
			/* model of the burst rule: a waiting low entry after
			 * TXQ_HIGH_BURST high ones in a row */
			int first = ref.high_run >= TXQ_HIGH_BURST && ref.n[BUS_PRIO_LOW]
					? BUS_PRIO_LOW
					: BUS_PRIO_HIGH;

			for (int p = first; p < BUS_PRIO_COUNT && want < 0; p++) {
				if (ref.n[p]) {
					want = ref.fifo[p][ref.head[p]];
					ref.head[p] = (ref.head[p] + 1) % POOL;
					ref.n[p]--;
					ref.high_run = p == BUS_PRIO_HIGH ? ref.high_run + 1 : 0;
				}
			}
			if (want < 0) {
				assert_null(got);
			} else {
				assert_non_null(got);
				if (got->id != want)
					printf("seed %u step %d: got %d want %d\n", seed, step,
					       got->id, want);
				assert_int_equal(got->id, want);
				queued[want] = false;
			}
		}
		assert_int_equal(txq_len(&q, BUS_PRIO_HIGH), ref.n[BUS_PRIO_HIGH]);
		assert_int_equal(txq_len(&q, BUS_PRIO_LOW), ref.n[BUS_PRIO_LOW]);
		assert_int_equal(txq_empty(&q), ref.n[0] + ref.n[1] == 0);
	}
}

/* A stream of high-priority entries cannot starve low ones: after every
 * TXQ_HIGH_BURST high pops one waiting low entry goes; with nothing low
 * waiting, high ones go on back to back. */
static void test_low_not_starved(void **state)
{
	struct txq q;
	struct item hi[64], lo[4];
	int nh = 0, nlo = 0, run = 0;

	(void)state;
	txq_init(&q, 64, 8);
	for (int i = 0; i < 4; i++) {
		lo[i].id = 100 + i;
		assert_int_equal(txq_push(&q, &lo[i].node, BUS_PRIO_LOW), 0);
	}
	for (int i = 0; i < 64; i++) {
		hi[i].id = i;
		assert_int_equal(txq_push(&q, &hi[i].node, BUS_PRIO_HIGH), 0);
	}
	for (int i = 0; i < 68; i++) {
		struct item *it = pop_item(&q);

		assert_non_null(it);
		if (it->id >= 100) {
			assert_int_equal(it->id, 100 + nlo);
			assert_int_equal(run, TXQ_HIGH_BURST);
			nlo++;
			run = 0;
		} else {
			assert_int_equal(it->id, nh);
			nh++;
			run++;
			assert_true(run <= TXQ_HIGH_BURST || nlo == 4);
		}
	}
	assert_int_equal(nlo, 4);
	assert_int_equal(nh, 64);
	assert_null(txq_pop(&q));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_empty_after_drain),
	    cmocka_unit_test(test_push_front),
	    cmocka_unit_test(test_high_before_low),
	    cmocka_unit_test(test_high_inserted_late_still_first),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_zero_capacity),
	    cmocka_unit_test(test_random_vs_model),
	    cmocka_unit_test(test_low_not_starved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
