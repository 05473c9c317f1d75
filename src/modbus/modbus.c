/* Owner of the Modbus TCP server, the gateway and the RS485 slave role: reads
 * their settings and applies changes from the loop, never from inside the
 * handler of the request that changed them (a client may move the port or
 * the own address by writing the own unit's registers). */
#include "modbus_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/log.h"

static size_t slave_answer(const uint8_t *req, size_t len, uint8_t *rsp, void *arg)
{
	struct modbus *m = arg;

	m->n.own++;
	return ownunit_handle(&m->env, req, len, rsp);
}

static void read_cache_limits(struct modbus *m, const struct settings *s)
{
	char key[32];

	m->cache_ms[DEV_SLOT_LEFT_IR] = (int)settings_int(s, "leftir_cache_ms");
	m->cache_ms[DEV_SLOT_RIGHT_IR] = (int)settings_int(s, "ir_relay_cache_ms");
	for (int n = 1; n <= 16; n++) {
		snprintf(key, sizeof(key), "rs485_cache_ms_%d", n);
		m->cache_ms[DEV_SLOT_RS485(n)] = (int)settings_int(s, key);
	}
}

/* Offer the own unit as RS485 slave; the registry gives the line that role
 * while no RS485 device is enabled (the one place for the bus roles). */
static void apply_slave_role(struct modbus *m)
{
	reg_set_slave(m->ctx.reg, CONF_BUS_RS485, m->own_unit, slave_answer, m);
}

static void apply(void *arg)
{
	struct modbus *m = arg;
	const struct settings *s = m->ctx.settings;
	bool enabled = settings_int(s, "modbus_tcp_enabled") != 0;
	int port = (int)settings_int(s, "tcp_port");

	m->apply_timer = 0;
	m->own_unit = (uint8_t)settings_int(s, "sg_modbus_addr");
	read_cache_limits(m, s);
	apply_slave_role(m);
	if (enabled == m->enabled && port == m->port && (m->lfd >= 0 || !enabled))
		return;
	mb_server_close(m);
	if (!enabled)
		mb_server_close_all(m);
	m->enabled = enabled;
	m->port = port;
	if (!enabled) {
		log_info("modbus tcp: disabled");
		return;
	}
	int r = mb_server_listen(m);

	if (r < 0)
		log_err("modbus tcp: cannot listen on %s:%d: %s", m->bind, port, strerror(-r));
	else
		log_info("modbus tcp: listening on %s:%d, own unit %d", m->bind, port, m->own_unit);
}

/* Settings changed (also by a client writing the own unit's registers, from
 * inside its request's handler): what the next request sees applies now (a
 * client that changed the cache limit gets it on its next request); sockets
 * change from the loop. */
static void modbus_configure(const struct settings *s, void *arg)
{
	struct modbus *m = arg;

	m->own_unit = (uint8_t)settings_int(s, "sg_modbus_addr");
	read_cache_limits(m, s);
	apply_slave_role(m);
	if (!m->apply_timer)
		m->apply_timer = loop_timer_add(m->ctx.loop, 0, apply, m);
}

int modbus_init(struct modbus **out, const struct modbus_env *env)
{
	/* What apply(), read_cache_limits() and apply_slave_role() read. */
	static const char *const keys[] = {
	    "modbus_tcp_enabled", "tcp_port",	      "sg_modbus_addr", "leftir_cache_ms",
	    "ir_relay_cache_ms",  "rs485_cache_ms_*", "rs485_type_*",	NULL};
	struct modbus *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->ctx = *env;
	m->lfd = -1;
	m->port = -1;
	snprintf(m->bind, sizeof(m->bind), "%s", env->conf->modbus_tcp_bind);
	/* Writes to the own unit go through settings_set_json, whose
	 * subscribers (this module among them) are told by the settings. */
	m->env = (struct ownunit_env){.settings = env->settings,
				      .conf = env->conf,
				      .reg = env->reg,
				      .buses = env->buses,
				      .start_mono_ms = env->start_mono_ms};
	r = settings_subscribe(env->settings, keys, modbus_configure, m);
	if (r < 0) {
		free(m);
		return r;
	}
	apply(m);
	m->sweep_timer = loop_timer_add(env->loop, 1000, mb_sweep, m);
	*out = m;
	return 0;
}

void modbus_fini(struct modbus *m)
{
	if (!m)
		return;
	settings_unsubscribe(m->ctx.settings, modbus_configure, m);
	if (m->apply_timer)
		loop_timer_cancel(m->ctx.loop, m->apply_timer);
	if (m->sweep_timer)
		loop_timer_cancel(m->ctx.loop, m->sweep_timer);
	reg_set_slave(m->ctx.reg, CONF_BUS_RS485, 0, NULL, NULL);
	mb_server_close(m);
	mb_server_close_all(m);
	mb_gateway_fini(m);
	free(m);
}

json_t *modbus_status_json(const struct modbus *m)
{
	if (!m)
		return json_null();
	return json_pack("{s:b, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
			 "enabled", m->enabled && m->lfd >= 0, "port", m->port, "unit", m->own_unit,
			 "clients", m->nconns, "requests", (json_int_t)m->n.requests, "forwarded",
			 (json_int_t)m->n.forwarded, "cache_hits", (json_int_t)m->n.cache_hits,
			 "coalesced", (json_int_t)m->n.coalesced, "own", (json_int_t)m->n.own,
			 "exceptions", (json_int_t)m->n.exceptions, "dropped",
			 (json_int_t)m->n.dropped, "rejected", (json_int_t)m->n.rejected, "evicted",
			 (json_int_t)m->n.evicted, "rs485_role",
			 reg_bus_slave(m->ctx.reg, CONF_BUS_RS485) ? "slave" : "master");
}
