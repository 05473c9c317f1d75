/* The Modbus poller, a reader of the device registry (sg/registry.h): it
 * fills the registry's slots: it identifies each enabled device once,
 * polls measurements and counters on their intervals, tracks health with
 * back-off (a device answering with errors is not "ok": DEV_READ_ERROR), keeps
 * each value's read time honest (a failed block keeps its old one), and runs on-demand operations
 * (Bicom, raw Modbus, RS485 scan and set-parameters) ahead of background polling. */
#ifndef SG_POLL_H
#define SG_POLL_H

#include <jansson.h>

#include "sg/bus.h"
#include "sg/dev.h"
#include "sg/loop.h"
#include "sg/registry.h"
#include "sg/settings.h"
#include "sg/store.h"

struct poll;

/* Completion of an on-demand operation: err 0 with a JSON result (owned by
 * the callee: decref it), or err < 0 with msg. */
typedef void (*poll_result_cb)(int err, const char *msg, json_t *result, void *arg);

enum bicom_op { BICOM_STATE, BICOM_ON, BICOM_OFF, BICOM_TOGGLE };

/* Create the poller over buses[CONF_BUS_COUNT] (entries may be NULL),
 * filling the slots of reg. */
int poll_init(struct poll **out, struct loop *l, struct reg *reg, struct bus *const *buses,
	      const struct desc_set *descs, struct store *st, int right_ir_addr);
/* Stop timers; call after the buses are stopped. */
void poll_fini(struct poll *p);
/* Stop starting new work (before the buses stop). */
void poll_quiesce(struct poll *p);
/* Apply the slot settings (types, addresses, descriptions, intervals, RS485
 * line parameters); changed slots are re-identified. */
void poll_configure(struct poll *p, const struct settings *s);
/* Switch or read a Bicom: result {"bicom": addr, "state": "on"|"off"}. */
int poll_bicom(struct poll *p, int slot, enum bicom_op op, poll_result_cb cb, void *arg);
/* Raw transaction to Modbus address addr (0 = Left IR device, else RS485);
 * t->done/arg are set by the poller; result is filled by the poller. */
int poll_modbus(struct poll *p, int addr, struct bus_txn *t, poll_result_cb cb, void *arg);
/* Scan RS485 addresses first…last at baud/parity/stop; result
 * {"devices": [{"address","model","serial","sw_ver","baud","parity","stop_bits"}]}. */
int poll_scan(struct poll *p, int baud, char parity, int stop_bits, int first, int last,
	      poll_result_cb cb, void *arg);
/* Write a scanned device's new address/comm parameters (-1 = keep). */
int poll_set_parameters(struct poll *p, int addr, const char *model, int new_addr, int baud_code,
			int parity, int stop_code, poll_result_cb cb, void *arg);
/* The bus a slot's device is on (NULL when that port is absent). */
struct bus *poll_slot_bus(const struct poll *p, int slot);

#endif
