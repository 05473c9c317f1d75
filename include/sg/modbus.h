/* Modbus TCP server and gateway (R-C6) on tcp_port (default 10001) and the
 * RS485 slave role (R-A4). Unit sg_modbus_addr (and 255) answers from the
 * gateway's own register map; any other unit id is forwarded to the enabled
 * device with that address on its line, through the line's queue ahead of
 * background polling, or served from the device's register cache when a
 * background read is fresh enough (leftir_cache_ms, ir_relay_cache_ms,
 * rs485_cache_ms_N; 0 = always the bus); a read identical to one still
 * waiting for the line shares its answer. */
#ifndef SG_MODBUS_H
#define SG_MODBUS_H

#include <jansson.h>

struct app;
struct modbus;

/* Create (listening per settings, slave role per the RS485 slots); 0 or -errno. */
int modbus_init(struct modbus **out, struct app *a);
/* Settings changed: re-read enable/port/own address/slave role. Takes effect
 * from the loop (never inside a caller's handler). */
void modbus_configure(struct modbus *m);
/* Close every connection, end the slave role; before the buses stop. */
void modbus_fini(struct modbus *m);
/* {"enabled","port","unit","clients","requests","forwarded","cache_hits",
 *  "coalesced","own","exceptions","dropped","rejected","rs485_role"} for GET /api. */
json_t *modbus_status_json(const struct modbus *m);

#endif
