/* Device registry: the one owner of the 18 device slots (identity, health,
 * measurements, counters, relay state, read times, the raw register cache),
 * of the subscribers to device updates, and of the bus ownership rules (a
 * scan owns its bus; an RS485 line with no enabled device takes the slave
 * role). Consumers (REST, MQTT, history, Modbus TCP, ctl) only read here.
 *
 * Readers fill the slots. The Modbus poller (sg/poll.h) is one; a reader of
 * another kind (P1 telegrams, IEC 62056-21) plugs in the same way, with no
 * change on the consumer side:
 *   1. when its settings enable, change or disable a slot it serves, it calls
 *      reg_slot_reset(slot, cls, addr) (CLASS_NONE = disabled) and keeps the
 *      returned struct dev * as its write handle (or reg_dev_w later);
 *   2. it writes what it read into that struct (identity, values with their
 *      read times meas_ms/ctr_ms, health, last_error, counters txns/errors),
 *      taking fresh meas_seq/ctr_seq from reg_next_seq whenever values change,
 *      so REST/MQTT cache tags are never reused;
 *   3. once an update is complete and consistent (values and read times
 *      together) it calls reg_updated(slot): every subscriber is told once;
 *   4. before a background read on a shared bus it asks reg_bus_busy(bus) and
 *      waits while something owns the bus exclusively (reg_bus_claim /
 *      reg_bus_release around a scan).
 * Everything runs on the main thread. */
#ifndef SG_REGISTRY_H
#define SG_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "sg/bus.h"
#include "sg/dev.h"

struct reg;

/* Told once per update of a device: after each completed read cycle, and when
 * a failed one changes its health; d->health is what subscribers act on. A
 * reader may tell a cycle in two updates, its measurements first: d->upd
 * says what the update covers. */
typedef void (*reg_notify_cb)(const struct dev *d, void *arg);

#define REG_SUB_MAX 8

/* Create the registry with every slot disabled; buses[CONF_BUS_COUNT]
 * (entries may be NULL) are the lines whose slave role it manages. */
int reg_init(struct reg **out, struct bus *const *buses);
/* Free it (after the readers and subscribers are gone). */
void reg_fini(struct reg *r);

/* ---- consumers ---- */

/* The device in slot (0 … DEV_SLOTS-1), or NULL. */
const struct dev *reg_dev(const struct reg *r, int slot);
/* Subscribe to device updates; 0, or -ENOSPC when REG_SUB_MAX are taken. */
int reg_subscribe(struct reg *r, reg_notify_cb cb, void *arg);
/* Unsubscribe (cb and arg as given). */
void reg_unsubscribe(struct reg *r, reg_notify_cb cb, void *arg);
/* The enabled slot whose device has Modbus address unit, looked up in the
 * order RS485 1…16, Left IR, Right IR; -1 if none. */
int reg_slot_of_unit(const struct reg *r, int unit);
/* Slot of the Bicom addressed by addr (0 = Right IR Bicom, else RS485 address), or -1. */
int reg_bicom_slot(const struct reg *r, int addr);
/* True while something (an RS485 scan) owns bus exclusively: nobody else
 * starts work on it until it is released. */
bool reg_bus_busy(const struct reg *r, enum conf_bus bus);
/* True when an enabled slot's device is on bus. */
bool reg_bus_used(const struct reg *r, enum conf_bus bus);
/* Offer to answer as an RTU slave on bus (unit 0 or cb NULL withdraws): the
 * registry gives the line the slave role exactly while no enabled slot uses
 * it, and keeps that true as slots are enabled and disabled. */
void reg_set_slave(struct reg *r, enum conf_bus bus, uint8_t unit, bus_slave_cb cb, void *arg);
/* True while bus has the slave role. */
bool reg_bus_slave(const struct reg *r, enum conf_bus bus);
/* Remember registers read from the slot's device outside its reader. */
void reg_cache_put(struct reg *r, int slot, enum desc_space space, uint16_t start, uint16_t count,
		   const uint16_t *regs);
/* Forget the slot's cached registers (after a write to the device). */
void reg_cache_clear(struct reg *r, int slot);

/* ---- readers ---- */

/* Start slot afresh as device class cls (CLASS_NONE = disabled) at address
 * addr: what was known is forgotten; health is DEV_IDENTIFYING (DEV_DISABLED
 * for CLASS_NONE). Returns the slot's write handle, NULL for a bad slot. */
struct dev *reg_slot_reset(struct reg *r, int slot, enum desc_class cls, int addr);
/* The slot's write handle, for its reader only; NULL for a bad slot. */
struct dev *reg_dev_w(struct reg *r, int slot);
/* A value never returned before, for meas_seq / ctr_seq. */
uint64_t reg_next_seq(struct reg *r);
/* The slot's update is complete: tell every subscriber once. */
void reg_updated(struct reg *r, int slot);
/* Own bus exclusively (a scan); 0, or -EBUSY when it is already owned. */
int reg_bus_claim(struct reg *r, enum conf_bus bus);
/* End the exclusive ownership of bus. */
void reg_bus_release(struct reg *r, enum conf_bus bus);

#endif
