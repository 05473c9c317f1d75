/* Commands about devices: the registry's view (devices, measurements,
 * counters) and the on-demand bus operations (Bicom, RS485 scan with "add
 * all", set-parameters, raw Modbus). The business rules live here once;
 * bus operations finish from the poller's completion. */
#include <limits.h>

#include "ops_int.h"
#include "sg/bus.h"

#define REG_HELP                                                                                        \
	"an Iskra register number: 1…9999 coils, 10001… discrete inputs, 30001… input, 40001… " \
	"holding"
#define VALUES_HELP "an even number (2…246) of bytes 0…255, two per register, high byte first"
#define WORDS_HELP "1…1968 values: 0…65535 per holding register (at most 123), 0 or 1 per coil"

static void not_yet(struct ops_call *c, json_t *args)
{
	(void)args;
	ops_fail(c, OPS_NOT_IMPLEMENTED, "%s is not moved to ops yet", ops_call_name(c));
}

/* measurements / counters: exactly one of addr and index. */
static const struct ops_arg reading_args[] = {
    {"addr", OPS_T_INT, 0, 0, 247, NULL}, /* Modbus address, 0 = Left IR device */
    {"index", OPS_T_INT, 0, 0, 16, NULL}, /* HA index: 0 = Left IR, 1…16 = RS485 1…16 */
    {NULL},
};

static const struct ops_arg bicom_args[] = {
    {"addr", OPS_T_INT, OPS_REQUIRED, 0, 247, NULL}, /* 0 = Right IR Bicom, else RS485 address */
    {"val", OPS_T_STR, OPS_REQUIRED, 1, 16, "\"on\", \"off\", \"toggle\" or \"state\""},
    {NULL},
};

/* All optional: the configured RS485 line and addresses 1…247 by default. */
static const struct ops_arg scan_args[] = {
    {"baud_rate", OPS_T_ANY, 0, 0, 0, "a rate 1200…115200 or a code 0…7"}, /* number or string */
    {"stop_bits", OPS_T_INT, 0, 1, 2, NULL},
    {"parity", OPS_T_STR, 0, 1, 8, "\"none\", \"odd\" or \"even\""},
    {"from", OPS_T_INT, 0, 1, 247, NULL},
    {"to", OPS_T_INT, 0, 1, 247, NULL},
    {"add_all", OPS_T_BOOL, 0, 0, 0, NULL}, /* put every new device found into a free slot */
    {NULL},
};

/* Codes as the device's communication registers take them; absent = keep. */
static const struct ops_arg setparam_args[] = {
    {"address", OPS_T_INT, OPS_REQUIRED, 1, 247, "the device's Modbus address, 1…247"},
    {"model", OPS_T_STR, OPS_REQUIRED, 1, 63, "the model the scan reported (\"WM3M4C\")"},
    {"new_address", OPS_T_INT, 0, 1, 247, NULL},
    {"baud_rate", OPS_T_INT, 0, 0, 7, NULL},
    {"parity", OPS_T_INT, 0, 0, 2, NULL},
    {"stop_bits", OPS_T_INT, 0, 0, 1, NULL},
    {NULL},
};

/* Raw Modbus: exactly one of modbus_address and serial_number; reg is range
 * checked by the handler to name what is wrong with it. */
#define MB_TARGET                                                                                  \
	{"modbus_address", OPS_T_INT, 0, 0, 247, NULL},                                            \
	    {"serial_number", OPS_T_STR, 0, 1, 15, "a device's serial number"},                    \
	{                                                                                          \
		"reg", OPS_T_INT, OPS_REQUIRED, LONG_MIN, LONG_MAX, REG_HELP                       \
	}

static const struct ops_arg mb_read_args[] = {
    MB_TARGET,
    {"no_regs", OPS_T_INT, 0, 1, BUS_BITS_MAX, NULL}, /* default 1 */
    {NULL},
};

static const struct ops_arg mb_single_args[] = {
    MB_TARGET,
    {"value", OPS_T_INT, OPS_REQUIRED, 0, 65535, NULL}, /* 0 or 1 for a coil */
    {NULL},
};

/* values (the manual's bytes, holding registers) or words (one value per
 * register or coil): exactly one. */
static const struct ops_arg mb_multi_args[] = {
    MB_TARGET,
    {"values", OPS_T_ARRAY, 0, 2, 2 * 123, VALUES_HELP},
    {"words", OPS_T_ARRAY, 0, 1, 1968, WORDS_HELP},
    {NULL},
};

const struct ops_def ops_dev_defs[] = {
    {"devices", NULL, 0, not_yet},
    {"measurements", reading_args, 0, not_yet},
    {"counters", reading_args, 0, not_yet},
    {"bicom", bicom_args, 0, not_yet},
    {"detect_485_devices", scan_args, 0, not_yet},
    {"set_parameters", setparam_args, 0, not_yet},
    {"modbus_read", mb_read_args, 0, not_yet},
    {"modbus_write_single", mb_single_args, 0, not_yet},
    {"modbus_write_multi", mb_multi_args, 0, not_yet},
    {NULL},
};
