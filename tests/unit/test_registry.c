/* The device registry (src/dev/registry.c): slots start disabled; a reader's
 * reset starts a slot afresh; subscribers are told once per update and can
 * leave; look-ups by Modbus unit and Bicom address; exclusive bus ownership;
 * the RS485 slave role follows the enabled slots whatever the order of
 * configuration; the register cache; unique seq values. bus_set_slave is a
 * fake recording what the line was told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define bus_set_slave(b, addr, cb, arg) fake_set_slave(b, addr, cb, arg)
#include "../../src/dev/registry.c"
#undef bus_set_slave

#include <string.h>

static struct bus *const RS = (struct bus *)(uintptr_t)0x2000; /* never dereferenced */
static uint8_t slave_addr = 0xff;
static bus_slave_cb slave_cb;
static unsigned slave_calls;

void fake_set_slave(struct bus *b, uint8_t addr, bus_slave_cb cb, void *arg);

void fake_set_slave(struct bus *b, uint8_t addr, bus_slave_cb cb, void *arg)
{
	(void)arg;
	assert_ptr_equal(b, RS);
	slave_addr = addr;
	slave_cb = cb;
	slave_calls++;
}

static size_t answer(const uint8_t *req, size_t len, uint8_t *rsp, void *arg)
{
	(void)req;
	(void)len;
	(void)rsp;
	(void)arg;
	return 0;
}

static struct reg *r;

static int setup(void **state)
{
	struct bus *buses[CONF_BUS_COUNT] = {NULL, NULL, RS};

	(void)state;
	slave_addr = 0xff;
	slave_cb = NULL;
	slave_calls = 0;
	return reg_init(&r, buses);
}

static int teardown(void **state)
{
	(void)state;
	reg_fini(r);
	return 0;
}

static void test_slots_start_disabled(void **state)
{
	(void)state;
	for (int s = 0; s < DEV_SLOTS; s++) {
		assert_int_equal(reg_dev(r, s)->slot, s);
		assert_int_equal(reg_dev(r, s)->health, DEV_DISABLED);
		assert_int_equal(reg_dev(r, s)->cls, CLASS_NONE);
		assert_ptr_equal(reg_dev_w(r, s), reg_dev(r, s));
	}
	assert_string_equal(reg_dev(r, DEV_SLOT_RS485(3))->ifname, "RS485 3");
	assert_null(reg_dev(r, -1));
	assert_null(reg_dev(r, DEV_SLOTS));
	assert_null(reg_dev_w(r, DEV_SLOTS));
	assert_null(reg_slot_reset(r, DEV_SLOTS, CLASS_METER, 1));
	assert_int_equal(reg_slot_of_unit(r, 0), -1);
	assert_false(reg_bus_used(r, CONF_BUS_RS485));
}

static void test_reset_starts_afresh(void **state)
{
	struct dev *d;
	uint64_t a, b;

	(void)state;
	d = reg_slot_reset(r, DEV_SLOT_RS485(2), CLASS_METER, 12);
	assert_ptr_equal(d, reg_dev(r, DEV_SLOT_RS485(2)));
	assert_int_equal(d->health, DEV_IDENTIFYING);
	assert_int_equal(d->addr, 12);
	assert_int_equal(d->bus, CONF_BUS_RS485);
	strcpy(d->model, "IE38");
	d->meas_ms = 5;
	d->relay = 1;
	d = reg_slot_reset(r, DEV_SLOT_RS485(2), CLASS_NONE, 0);
	assert_int_equal(d->health, DEV_DISABLED);
	assert_string_equal(d->model, "");
	assert_int_equal(d->meas_ms, 0);
	assert_int_equal(d->relay, -1);
	assert_int_equal(d->slot, DEV_SLOT_RS485(2));
	a = reg_next_seq(r);
	b = reg_next_seq(r);
	assert_true(a > 0 && b > a);
}

static unsigned calls[3];
static const struct dev *last;

static void on_a(const struct dev *d, void *arg)
{
	calls[(uintptr_t)arg]++;
	last = d;
}

static void on_other_sub(const struct dev *d, void *arg)
{
	(void)d, (void)arg;
}

static void test_subscribers(void **state)
{
	(void)state;
	memset(calls, 0, sizeof(calls));
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(reg_subscribe(r, on_a, (void *)(i % 3)), 0);
	for (uintptr_t i = 4; i < REG_SUB_MAX; i++) /* the other places: someone else */
		assert_int_equal(reg_subscribe(r, on_other_sub, NULL), 0);
	assert_int_equal(reg_subscribe(r, on_a, (void *)2), -ENOSPC);
	reg_updated(r, DEV_SLOT_RS485(4));
	assert_ptr_equal(last, reg_dev(r, DEV_SLOT_RS485(4)));
	assert_int_equal(calls[0], 2); /* subscribed twice (args 0 and 3 % 3) */
	assert_int_equal(calls[1], 1);
	assert_int_equal(calls[2], 1);
	reg_unsubscribe(r, on_a, (void *)1);
	reg_updated(r, DEV_SLOT_LEFT_IR);
	assert_int_equal(calls[1], 1);
	assert_int_equal(calls[2], 2);
	assert_ptr_equal(last, reg_dev(r, DEV_SLOT_LEFT_IR));
	assert_int_equal(reg_subscribe(r, on_a, (void *)1), 0); /* the freed place */
	reg_updated(r, DEV_SLOTS);				/* no such slot: nobody */
	assert_int_equal(calls[1], 1);
}

static void test_lookups(void **state)
{
	(void)state;
	reg_slot_reset(r, DEV_SLOT_LEFT_IR, CLASS_METER, 33);
	reg_slot_reset(r, DEV_SLOT_RIGHT_IR, CLASS_BICOM, 33);
	reg_slot_reset(r, DEV_SLOT_RS485(5), CLASS_METER, 7);
	reg_slot_reset(r, DEV_SLOT_RS485(6), CLASS_BICOM, 8);
	reg_slot_reset(r, DEV_SLOT_RS485(9), CLASS_METER, 33);
	/* RS485 first, then Left IR, then Right IR */
	assert_int_equal(reg_slot_of_unit(r, 33), DEV_SLOT_RS485(9));
	assert_int_equal(reg_slot_of_unit(r, 7), DEV_SLOT_RS485(5));
	assert_int_equal(reg_slot_of_unit(r, 9), -1);
	reg_slot_reset(r, DEV_SLOT_RS485(9), CLASS_NONE, 33);
	assert_int_equal(reg_slot_of_unit(r, 33), DEV_SLOT_LEFT_IR);
	reg_slot_reset(r, DEV_SLOT_LEFT_IR, CLASS_NONE, 33);
	assert_int_equal(reg_slot_of_unit(r, 33), DEV_SLOT_RIGHT_IR);
	/* Bicoms: 0 is the Right IR one; a meter is not a Bicom */
	assert_int_equal(reg_bicom_slot(r, 0), DEV_SLOT_RIGHT_IR);
	assert_int_equal(reg_bicom_slot(r, 8), DEV_SLOT_RS485(6));
	assert_int_equal(reg_bicom_slot(r, 7), -1);
	assert_int_equal(reg_bicom_slot(r, 33), -1);
	reg_slot_reset(r, DEV_SLOT_RIGHT_IR, CLASS_NONE, 33);
	assert_int_equal(reg_bicom_slot(r, 0), -1);
}

static void test_bus_ownership(void **state)
{
	(void)state;
	assert_false(reg_bus_busy(r, CONF_BUS_RS485));
	assert_int_equal(reg_bus_claim(r, CONF_BUS_RS485), 0);
	assert_true(reg_bus_busy(r, CONF_BUS_RS485));
	assert_false(reg_bus_busy(r, CONF_BUS_LEFT_IR));
	assert_int_equal(reg_bus_claim(r, CONF_BUS_RS485), -EBUSY);
	reg_bus_release(r, CONF_BUS_RS485);
	assert_false(reg_bus_busy(r, CONF_BUS_RS485));
	assert_int_equal(reg_bus_claim(r, CONF_BUS_RS485), 0);
	assert_int_equal(reg_bus_claim(r, CONF_BUS_COUNT), -EINVAL);
	assert_false(reg_bus_busy(r, CONF_BUS_COUNT));
	assert_false(reg_bus_busy(NULL, CONF_BUS_RS485));
}

/* The slave role follows the RS485 slots, whichever comes first: the offer
 * or the slot configuration. */
static void test_slave_role(void **state)
{
	(void)state;
	assert_false(reg_bus_slave(r, CONF_BUS_RS485));
	reg_set_slave(r, CONF_BUS_RS485, 34, answer, NULL);
	assert_int_equal(slave_addr, 34);
	assert_ptr_equal(slave_cb, answer);
	assert_true(reg_bus_slave(r, CONF_BUS_RS485));
	/* an IR device does not use RS485 */
	reg_slot_reset(r, DEV_SLOT_LEFT_IR, CLASS_METER, 33);
	assert_true(reg_bus_slave(r, CONF_BUS_RS485));
	assert_int_equal(slave_addr, 34);
	/* an RS485 device makes the line a master */
	reg_slot_reset(r, DEV_SLOT_RS485(16), CLASS_METER, 5);
	assert_true(reg_bus_used(r, CONF_BUS_RS485));
	assert_int_equal(slave_addr, 0);
	assert_false(reg_bus_slave(r, CONF_BUS_RS485));
	/* the own address changes meanwhile: still master */
	reg_set_slave(r, CONF_BUS_RS485, 40, answer, NULL);
	assert_int_equal(slave_addr, 0);
	/* re-reading the same slot (another address) keeps it master */
	reg_slot_reset(r, DEV_SLOT_RS485(16), CLASS_BICOM, 6);
	assert_int_equal(slave_addr, 0);
	/* disabled again: slave at the newest address */
	reg_slot_reset(r, DEV_SLOT_RS485(16), CLASS_NONE, 6);
	assert_false(reg_bus_used(r, CONF_BUS_RS485));
	assert_int_equal(slave_addr, 40);
	assert_true(reg_bus_slave(r, CONF_BUS_RS485));
	/* withdrawn (shutdown) */
	reg_set_slave(r, CONF_BUS_RS485, 0, NULL, NULL);
	assert_int_equal(slave_addr, 0);
	assert_false(reg_bus_slave(r, CONF_BUS_RS485));
	reg_slot_reset(r, DEV_SLOT_RS485(1), CLASS_METER, 5);
	reg_slot_reset(r, DEV_SLOT_RS485(1), CLASS_NONE, 5);
	assert_int_equal(slave_addr, 0);
}

/* No RS485 port: nothing to tell, never a slave. */
static void test_slave_role_without_port(void **state)
{
	struct reg *r2;

	(void)state;
	assert_int_equal(reg_init(&r2, NULL), 0);
	reg_set_slave(r2, CONF_BUS_RS485, 34, answer, NULL);
	assert_false(reg_bus_slave(r2, CONF_BUS_RS485));
	assert_int_equal(slave_calls, 0);
	reg_fini(r2);
}

static void test_cache(void **state)
{
	uint16_t regs[2] = {11, 22}, out[2];

	(void)state;
	/* a disabled slot keeps nothing */
	reg_cache_put(r, DEV_SLOT_RS485(1), SPACE_HOLDING, 10, 2, regs);
	assert_false(
	    regcache_get(&reg_dev(r, DEV_SLOT_RS485(1))->cache, SPACE_HOLDING, 10, 2, 0, out));
	reg_slot_reset(r, DEV_SLOT_RS485(1), CLASS_METER, 5);
	reg_cache_put(r, DEV_SLOT_RS485(1), SPACE_HOLDING, 10, 2, regs);
	assert_true(
	    regcache_get(&reg_dev(r, DEV_SLOT_RS485(1))->cache, SPACE_HOLDING, 10, 2, 0, out));
	assert_int_equal(out[1], 22);
	reg_cache_clear(r, DEV_SLOT_RS485(1));
	assert_false(
	    regcache_get(&reg_dev(r, DEV_SLOT_RS485(1))->cache, SPACE_HOLDING, 10, 2, 0, out));
	reg_cache_put(r, -1, SPACE_HOLDING, 10, 2, regs); /* ignored */
	reg_cache_clear(r, DEV_SLOTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slots_start_disabled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_starts_afresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscribers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bus_ownership, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slave_role, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slave_role_without_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
