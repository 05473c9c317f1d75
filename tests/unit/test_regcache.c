/* Register cache: hits only when every register is fresh enough, stitched
 * across blocks with the newest read winning, replacement of the oldest
 * block, spaces kept apart, clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/regcache.h"

#include <string.h>

static struct regcache cache;

static void fill(uint16_t *r, unsigned n, uint16_t base)
{
	for (unsigned i = 0; i < n; i++)
		r[i] = (uint16_t)(base + i);
}

static int setup(void **state)
{
	(void)state;
	memset(&cache, 0xAB, sizeof(cache)); /* garbage, as in a fresh struct dev before reset */
	regcache_clear(&cache);
	return 0;
}

static void test_hit_inside_block(void **state)
{
	uint16_t regs[125], out[125];

	(void)state;
	fill(regs, 50, 1000);
	regcache_put(&cache, SPACE_INPUT, 100, 50, regs, 5000);
	assert_true(regcache_get(&cache, SPACE_INPUT, 110, 10, 4000, out));
	for (int i = 0; i < 10; i++)
		assert_int_equal(out[i], 1010 + i);
	/* exact block, first and last register */
	assert_true(regcache_get(&cache, SPACE_INPUT, 100, 50, 5000, out));
	assert_int_equal(out[0], 1000);
	assert_int_equal(out[49], 1049);
}

static void test_miss(void **state)
{
	uint16_t regs[125], out[125];

	(void)state;
	fill(regs, 50, 1000);
	assert_false(regcache_get(&cache, SPACE_INPUT, 100, 1, 0, out)); /* empty */
	regcache_put(&cache, SPACE_INPUT, 100, 50, regs, 5000);
	assert_false(regcache_get(&cache, SPACE_INPUT, 100, 1, 5001, out)); /* too old */
	assert_false(regcache_get(&cache, SPACE_INPUT, 99, 2, 0, out));	    /* starts before */
	assert_false(regcache_get(&cache, SPACE_INPUT, 149, 2, 0, out));    /* runs past */
	assert_false(regcache_get(&cache, SPACE_HOLDING, 100, 1, 0, out));  /* other space */
	assert_false(regcache_get(&cache, SPACE_INPUT, 100, 0, 0, out));    /* empty request */
	assert_false(regcache_get(&cache, SPACE_INPUT, 100, 126, 0, out));  /* too long */
	regcache_put(&cache, SPACE_COIL, 0, 10, regs, 5000);		    /* not cached */
	assert_false(regcache_get(&cache, SPACE_COIL, 0, 1, 0, out));
}

static void test_stitch_and_newest(void **state)
{
	uint16_t a[125], b[125], out[125];

	(void)state;
	fill(a, 20, 100); /* regs 0..19 = 100.. */
	fill(b, 20, 500); /* regs 10..29 = 500.. */
	regcache_put(&cache, SPACE_HOLDING, 0, 20, a, 1000);
	regcache_put(&cache, SPACE_HOLDING, 10, 20, b, 2000);
	assert_true(regcache_get(&cache, SPACE_HOLDING, 5, 20, 0, out));
	assert_int_equal(out[0], 105); /* reg 5 from a */
	assert_int_equal(out[5], 500); /* reg 10: both, b is newer */
	assert_int_equal(out[19], 514);
	/* a too old for the limit: the part only a covers misses */
	assert_false(regcache_get(&cache, SPACE_HOLDING, 5, 20, 1500, out));
	assert_true(regcache_get(&cache, SPACE_HOLDING, 10, 20, 1500, out));
	/* a re-read later wins over b where they overlap */
	fill(a, 20, 900);
	regcache_put(&cache, SPACE_HOLDING, 0, 20, a, 3000);
	assert_true(regcache_get(&cache, SPACE_HOLDING, 10, 1, 0, out));
	assert_int_equal(out[0], 910);
}

static void test_replace_and_evict(void **state)
{
	uint16_t r[125], out[125];

	(void)state;
	for (unsigned i = 0; i < REGCACHE_BLOCKS; i++) {
		fill(r, 2, (uint16_t)i);
		regcache_put(&cache, SPACE_INPUT, (uint16_t)(i * 10), 2, r, 100 + i);
	}
	/* same block again replaces in place: every other block still there */
	fill(r, 2, 7777);
	regcache_put(&cache, SPACE_INPUT, 0, 2, r, 500);
	for (unsigned i = 0; i < REGCACHE_BLOCKS; i++)
		assert_true(regcache_get(&cache, SPACE_INPUT, (uint16_t)(i * 10), 2, 0, out));
	assert_int_equal(out[0], REGCACHE_BLOCKS - 1);
	assert_true(regcache_get(&cache, SPACE_INPUT, 0, 1, 0, out));
	assert_int_equal(out[0], 7777);
	/* a new block evicts the oldest (block 1, read at 101) */
	regcache_put(&cache, SPACE_INPUT, 1000, 2, r, 600);
	assert_false(regcache_get(&cache, SPACE_INPUT, 10, 2, 0, out));
	assert_true(regcache_get(&cache, SPACE_INPUT, 20, 2, 0, out));
	assert_true(regcache_get(&cache, SPACE_INPUT, 1000, 2, 0, out));
	regcache_clear(&cache);
	assert_false(regcache_get(&cache, SPACE_INPUT, 1000, 2, 0, out));
}

static void test_bounds(void **state)
{
	uint16_t r[125], out[125];

	(void)state;
	fill(r, 125, 1);
	regcache_put(&cache, SPACE_INPUT, 65500, 40, r, 10); /* past 65535: refused */
	assert_false(regcache_get(&cache, SPACE_INPUT, 65500, 1, 0, out));
	regcache_put(&cache, SPACE_INPUT, 65411, 125, r, 10); /* ends at 65535 */
	assert_true(regcache_get(&cache, SPACE_INPUT, 65535, 1, 0, out));
	assert_int_equal(out[0], 125);
	regcache_put(&cache, SPACE_INPUT, 0, 0, r, 10);
	regcache_put(&cache, SPACE_INPUT, 0, 126, r, 10);
	assert_false(regcache_get(&cache, SPACE_INPUT, 0, 1, 0, out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_hit_inside_block, setup),
	    cmocka_unit_test_setup(test_miss, setup),
	    cmocka_unit_test_setup(test_stitch_and_newest, setup),
	    cmocka_unit_test_setup(test_replace_and_evict, setup),
	    cmocka_unit_test_setup(test_bounds, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
