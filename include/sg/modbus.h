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
#include <stdint.h>

struct bus;
struct conf;
struct loop;
struct modbus;
struct poll;
struct settings;

/* What the Modbus module uses; every handle outlives it. */
struct modbus_env {
	struct loop *loop;
	struct settings *settings; /* also changed by writes to the own unit */
	const struct conf *conf;   /* modbus_tcp_bind, identity of the own unit */
	struct poll *poll;	   /* the bus of a slot */
	struct reg *reg;	   /* devices, register cache, bus roles */
	struct bus *const *buses;  /* CONF_BUS_COUNT entries, NULL where absent */
	int64_t start_mono_ms;	   /* for the own unit's uptime */
};

/* Create (listening per settings, slave role per the RS485 slots). It
 * follows its settings (enable, port, own address, cache limits, RS485 slot
 * types) by a subscription; changes to sockets take effect from the loop,
 * never inside the handler of the request that made them. 0 or -errno. */
int modbus_init(struct modbus **out, const struct modbus_env *env);
/* Close every connection, end the slave role; before the buses stop. */
void modbus_fini(struct modbus *m);
/* {"enabled","port","unit","clients","requests","forwarded","cache_hits",
 *  "coalesced","own","exceptions","dropped","rejected","rs485_role"} for GET /api. */
json_t *modbus_status_json(const struct modbus *m);

#endif
