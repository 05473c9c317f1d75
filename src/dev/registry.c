/* The device registry: slots, subscribers and bus ownership, apart from the
 * readers that fill the slots (see sg/registry.h for how a reader plugs in). */
#include "sg/registry.h"

#include <errno.h>
#include <stdlib.h>

#include "sg/clock.h"
#include "sg/log.h"

struct role {
	uint8_t unit; /* 0 = nobody offers to answer */
	bus_slave_cb cb;
	void *arg;
	bool on; /* the line has the slave role now */
};

struct reg {
	struct dev dev[DEV_SLOTS];
	struct {
		reg_notify_cb cb;
		void *arg;
	} sub[REG_SUB_MAX];
	uint64_t seq; /* last value given out: unique across slots and resets */
	bool owned[CONF_BUS_COUNT];
	struct bus *buses[CONF_BUS_COUNT];
	struct role role[CONF_BUS_COUNT];
};

static const char *const bus_name[CONF_BUS_COUNT] = {"Left IR", "Right IR", "RS485"};

static bool slot_ok(int slot)
{
	return slot >= 0 && slot < DEV_SLOTS;
}

static bool bus_ok(enum conf_bus bus)
{
	return (unsigned)bus < CONF_BUS_COUNT;
}

/* The slave role follows the slots: a line answers as a slave exactly while
 * someone offers to and no enabled device is polled on it. */
static void apply_role(struct reg *r, enum conf_bus bus)
{
	struct role *ro = &r->role[bus];
	bool on = r->buses[bus] && ro->unit && ro->cb && !reg_bus_used(r, bus);

	if (!r->buses[bus])
		return;
	if (on)
		bus_set_slave(r->buses[bus], ro->unit, ro->cb, ro->arg);
	else
		bus_set_slave(r->buses[bus], 0, NULL, NULL);
	if (on != ro->on && ro->cb)
		log_info("%s: %s", bus_name[bus],
			 on ? "slave at the gateway's own address (no device enabled)"
			    : "master (devices enabled)");
	ro->on = on;
}

int reg_init(struct reg **out, struct bus *const *buses)
{
	struct reg *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (int i = 0; i < DEV_SLOTS; i++)
		dev_reset(&r->dev[i], i);
	for (int i = 0; buses && i < CONF_BUS_COUNT; i++)
		r->buses[i] = buses[i];
	*out = r;
	return 0;
}

void reg_fini(struct reg *r)
{
	free(r);
}

const struct dev *reg_dev(const struct reg *r, int slot)
{
	return r && slot_ok(slot) ? &r->dev[slot] : NULL;
}

int reg_subscribe(struct reg *r, reg_notify_cb cb, void *arg)
{
	for (int i = 0; i < REG_SUB_MAX; i++)
		if (!r->sub[i].cb) {
			r->sub[i].cb = cb;
			r->sub[i].arg = arg;
			return 0;
		}
	return -ENOSPC;
}

void reg_unsubscribe(struct reg *r, reg_notify_cb cb, void *arg)
{
	for (int i = 0; i < REG_SUB_MAX; i++)
		if (r->sub[i].cb == cb && r->sub[i].arg == arg)
			r->sub[i].cb = NULL;
}

int reg_slot_of_unit(const struct reg *r, int unit)
{
	static const int order[] = {2,
				    3,
				    4,
				    5,
				    6,
				    7,
				    8,
				    9,
				    10,
				    11,
				    12,
				    13,
				    14,
				    15,
				    16,
				    17,
				    DEV_SLOT_LEFT_IR,
				    DEV_SLOT_RIGHT_IR};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const struct dev *d = &r->dev[order[i]];

		if (d->cls != CLASS_NONE && d->addr == unit)
			return order[i];
	}
	return -1;
}

int reg_bicom_slot(const struct reg *r, int addr)
{
	if (addr == 0)
		return r->dev[DEV_SLOT_RIGHT_IR].cls == CLASS_BICOM ? DEV_SLOT_RIGHT_IR : -1;
	for (int n = 1; n <= 16; n++) {
		const struct dev *d = &r->dev[DEV_SLOT_RS485(n)];

		if (d->cls == CLASS_BICOM && d->addr == addr)
			return DEV_SLOT_RS485(n);
	}
	return -1;
}

bool reg_bus_busy(const struct reg *r, enum conf_bus bus)
{
	return r && bus_ok(bus) && r->owned[bus];
}

bool reg_bus_used(const struct reg *r, enum conf_bus bus)
{
	for (int i = 0; i < DEV_SLOTS; i++)
		if (r->dev[i].bus == bus && r->dev[i].cls != CLASS_NONE)
			return true;
	return false;
}

void reg_set_slave(struct reg *r, enum conf_bus bus, uint8_t unit, bus_slave_cb cb, void *arg)
{
	if (!r || !bus_ok(bus))
		return;
	r->role[bus] =
	    (struct role){.unit = cb ? unit : 0, .cb = cb, .arg = arg, .on = r->role[bus].on};
	apply_role(r, bus);
}

bool reg_bus_slave(const struct reg *r, enum conf_bus bus)
{
	return r && bus_ok(bus) && r->role[bus].on;
}

void reg_cache_put(struct reg *r, int slot, enum desc_space space, uint16_t start, uint16_t count,
		   const uint16_t *regs)
{
	if (slot_ok(slot) && r->dev[slot].cls != CLASS_NONE)
		regcache_put(&r->dev[slot].cache, space, start, count, regs, clock_mono_ms());
}

void reg_cache_clear(struct reg *r, int slot)
{
	if (slot_ok(slot))
		regcache_clear(&r->dev[slot].cache);
}

struct dev *reg_slot_reset(struct reg *r, int slot, enum desc_class cls, int addr)
{
	struct dev *d;
	bool was;

	if (!slot_ok(slot))
		return NULL;
	d = &r->dev[slot];
	was = d->cls != CLASS_NONE;
	dev_reset(d, slot);
	d->cls = cls;
	d->addr = (uint8_t)addr;
	d->health = cls == CLASS_NONE ? DEV_DISABLED : DEV_IDENTIFYING;
	if (was != (cls != CLASS_NONE))
		apply_role(r, d->bus);
	return d;
}

struct dev *reg_dev_w(struct reg *r, int slot)
{
	return slot_ok(slot) ? &r->dev[slot] : NULL;
}

uint64_t reg_next_seq(struct reg *r)
{
	return ++r->seq;
}

void reg_updated(struct reg *r, int slot)
{
	if (!slot_ok(slot))
		return;
	for (int i = 0; i < REG_SUB_MAX; i++)
		if (r->sub[i].cb)
			r->sub[i].cb(&r->dev[slot], r->sub[i].arg);
}

int reg_bus_claim(struct reg *r, enum conf_bus bus)
{
	if (!bus_ok(bus))
		return -EINVAL;
	if (r->owned[bus])
		return -EBUSY;
	r->owned[bus] = true;
	return 0;
}

void reg_bus_release(struct reg *r, enum conf_bus bus)
{
	if (bus_ok(bus))
		r->owned[bus] = false;
}
