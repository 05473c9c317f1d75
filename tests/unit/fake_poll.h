/* A fake poller for unit tests of the operations and their front-ends:
 * records which on-demand operation was started (pend), returns poll_ret
 * from the start, and the test completes the operation with complete().
 * devs[] are the slots the fake registry (reg_dev) serves, set up with dev_setup. Included by one
 * test file each. */
#ifndef SG_TEST_FAKE_POLL_H
#define SG_TEST_FAKE_POLL_H

#include "sg/poll.h"
#include "sg/registry.h"

enum op_kind { OP_NONE, OP_BICOM, OP_MODBUS, OP_SCAN, OP_SETPARAM };

static struct {
	enum op_kind kind;
	poll_result_cb cb;
	void *arg;
	int slot, addr, baud, stop, first, last, new_addr, parity_code, stop_code;
	enum bicom_op op;
	char parity;
	char model[32];
	struct bus_txn *t;
} pend;
static int poll_ret; /* what the next operation start returns */
static bool scanning;
static struct dev devs[DEV_SLOTS];
static struct desc_set set; /* the descriptions of etc/devices, loaded by the test */

const struct dev *reg_dev(const struct reg *r, int slot)
{
	(void)r;
	return &devs[slot];
}

int reg_bicom_slot(const struct reg *r, int addr)
{
	(void)r;
	if (addr == 0)
		return devs[DEV_SLOT_RIGHT_IR].cls == CLASS_BICOM ? DEV_SLOT_RIGHT_IR : -1;
	for (int n = 1; n <= 16; n++)
		if (devs[DEV_SLOT_RS485(n)].cls == CLASS_BICOM &&
		    devs[DEV_SLOT_RS485(n)].addr == addr)
			return DEV_SLOT_RS485(n);
	return -1;
}

static int start(enum op_kind kind, poll_result_cb cb, void *arg)
{
	if (poll_ret)
		return poll_ret;
	assert_int_equal(pend.kind, OP_NONE);
	pend.kind = kind;
	pend.cb = cb;
	pend.arg = arg;
	return 0;
}

int poll_bicom(struct poll *p, int slot, enum bicom_op op, poll_result_cb cb, void *arg)
{
	(void)p;
	pend.slot = slot;
	pend.op = op;
	return start(OP_BICOM, cb, arg);
}

int poll_modbus(struct poll *p, int addr, struct bus_txn *t, poll_result_cb cb, void *arg)
{
	(void)p;
	assert_int_equal(bus_txn_check(t), 0);
	pend.addr = addr;
	pend.t = t;
	return start(OP_MODBUS, cb, arg);
}

int poll_scan(struct poll *p, int baud, char parity, int stop_bits, int first, int last,
	      poll_result_cb cb, void *arg)
{
	(void)p;
	pend.baud = baud;
	pend.parity = parity;
	pend.stop = stop_bits;
	pend.first = first;
	pend.last = last;
	return start(OP_SCAN, cb, arg);
}

int poll_set_parameters(struct poll *p, int addr, const char *model, int new_addr, int baud_code,
			int parity, int stop_code, poll_result_cb cb, void *arg)
{
	(void)p;
	pend.addr = addr;
	snprintf(pend.model, sizeof(pend.model), "%s", model);
	pend.new_addr = new_addr;
	pend.baud = baud_code;
	pend.parity_code = parity;
	pend.stop_code = stop_code;
	return start(OP_SETPARAM, cb, arg);
}

/* scanning: a scan owns RS485. */
bool reg_bus_busy(const struct reg *r, enum conf_bus bus)
{
	(void)r;
	return scanning && bus == CONF_BUS_RS485;
}

static void complete(int err, const char *msg, json_t *res)
{
	poll_result_cb cb = pend.cb;
	void *arg = pend.arg;

	assert_int_not_equal(pend.kind, OP_NONE);
	pend.kind = OP_NONE;
	cb(err, msg, res, arg);
}

/* Slot slot as an identified device of description desc (NULL: none). */
static void dev_setup(int slot, enum desc_class cls, const char *desc, const char *model,
		      const char *serial, int addr, enum dev_health h)
{
	struct dev *d = &devs[slot];

	dev_reset(d, slot);
	d->cls = cls;
	d->addr = (uint8_t)addr;
	d->health = h;
	d->d = desc ? desc_find(&set, desc) : NULL;
	assert_true(!desc || d->d);
	snprintf(d->model, sizeof(d->model), "%s", model);
	snprintf(d->serial, sizeof(d->serial), "%s", serial);
	d->sw_ver = 105;
}

#endif
