/* Private to src/ops/: the command tables the core (ops.c) searches. Each
 * file of src/ops/ exports one table for its commands, ended by {NULL};
 * add a new table to tables[] in ops.c. */
#ifndef SG_OPS_INT_H
#define SG_OPS_INT_H

#include "sg/ops.h"

/* ops_core.c: about the gateway itself (version). */
extern const struct ops_def ops_core_defs[];
/* ops_dev.c: devices, readings, Bicom, RS485 scan, set-parameters, raw Modbus. */
extern const struct ops_def ops_dev_defs[];
/* ops_settings.c: settings, factory reset, files, reboot, upgrade. */
extern const struct ops_def ops_settings_defs[];
/* ops_hist.c: load profile, recorders, calculate, tariffs. */
extern const struct ops_def ops_hist_defs[];
/* ops_gw.c: the gateway's status document, events, the test clock. */
extern const struct ops_def ops_gw_defs[];

struct dev;
/* sgctl's document of a device's measurements or counters (ops_gw.c): its
 * header with read_at_ms / age_ms and the values, given while the device is
 * not responding too (its status says so), as the control socket always
 * answered; for the measurements and counters commands from OPS_FROM_CTL.
 * OPS_OK with *doc, else the reason in msg. */
enum ops_status ops_ctl_reading(const struct dev *d, bool counters, json_t **doc, char *msg,
				size_t len);

#endif
