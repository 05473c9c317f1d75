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

#endif
