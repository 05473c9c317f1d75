/* The daemon's modules from the device registry up, started in dependency
 * order over the state main (or a fuzz harness standing in for it) has
 * prepared: conf, descriptions, settings, store, loop and buses. One copy
 * of the start-up order, so a harness runs the daemon main runs. */
#include <string.h>

#include "sg/app.h"
#include "sg/clock.h"
#include "sg/ctlsrv.h"
#include "sg/discovery.h"
#include "sg/hist.h"
#include "sg/http.h"
#include "sg/log.h"
#include "sg/modbus.h"
#include "sg/mqtt.h"
#include "sg/ops.h"

/* The poller does not hold the settings handle: it is subscribed here to the
 * keys it reads when it configures (poll_configure and poll_cfg.c). */
static const char *const poll_keys[] = {"poll_meas_interval",
					"poll_counter_interval",
					"left_ir_enabled",
					"ir_counter_addr",
					"ir_ext_rel_mode",
					"ir_relay_desc",
					"rs485_type_*",
					"rs485_addr_*",
					"rs485_desc_*",
					"rs485_baud_rate",
					"rs485_parity",
					"rs485_stop_bits",
					NULL};
static void on_poll_settings(const struct settings *s, void *arg)
{
	poll_configure(arg, s);
}

/* A refused subscription is a wrong key name: caught by the first test run. */
static int follow(struct app *a, const char *const *keys, settings_cb cb, void *arg,
		  const char *who)
{
	int r = settings_subscribe(a->settings, keys, cb, arg);

	if (r < 0)
		log_errno(LOG_ERR, -r, "%s cannot follow settings", who);
	return r;
}

/* What GET /api and sgctl status read, once the modules exist. */
static void fill_status_env(struct app *a)
{
	a->status = (struct status_env){.conf = &a->conf,
					.descs = &a->descs,
					.settings = a->settings,
					.store = a->store,
					.buses = a->buses,
					.reg = a->reg,
					.loop = a->loop,
					.mqtt = a->mqtt,
					.modbus = a->modbus,
					.hist = a->hist,
					.start_mono_ms = a->start_mono_ms};
}

/* The operations every front-end calls, over the handles they act on. */
static int start_ops(struct app *a)
{
	const struct ops_env env = {
	    .loop = a->loop,
	    .settings = a->settings,
	    .store = a->store,
	    .poll = a->poll,
	    .reg = a->reg,
	    .hist = a->hist,
	    .conf = &a->conf,
	    .descs = &a->descs,
	    .buses = a->buses,
	    .start_mono_ms = clock_mono_ms(),
	};

	return ops_init(&a->ops, &env);
}

int app_start_modules(struct app *a)
{
	int r;

	if ((r = reg_init(&a->reg, a->buses)) < 0)
		return r;
	r = poll_init(&a->poll, a->loop, a->reg, a->buses, &a->descs, a->store,
		      a->conf.right_ir_addr);
	if (r < 0) {
		log_err("device descriptions lack the \"Generic\" identification layout");
		return r;
	}
	poll_configure(a->poll, a->settings);
	if ((r = follow(a, poll_keys, on_poll_settings, a->poll, "poller")) < 0)
		return r;
	struct hist_env he = {.state_dir = a->conf.state_dir,
			      .settings = a->settings,
			      .store = a->store,
			      .loop = a->loop,
			      .poll = a->poll,
			      .reg = a->reg};

	if (hist_init(&a->hist, &he) < 0)
		a->hist = NULL; /* logged; the gateway runs without history */
	if ((r = start_ops(a)) < 0)
		return r;
	r = ctl_server_init(a->loop, a->ops, a->conf.ctl_socket, &a->ctl);
	if (r < 0) {
		log_errno(LOG_ERR, -r, "control socket %s", a->conf.ctl_socket);
		return r;
	}
	/* A port that cannot be bound is logged and retried on the next settings
	 * change; the gateway keeps polling either way. */
	struct disc_env de = {.loop = a->loop, .settings = a->settings, .conf = &a->conf};

	if ((r = http_server_init(&(struct http_env){.loop = a->loop,
						     .settings = a->settings,
						     .conf = &a->conf,
						     .ops = a->ops,
						     .reg = a->reg,
						     .hist = a->hist,
						     .status = &a->status},
				  &a->http)) < 0 ||
	    (r = disc_init(&de, &a->disc)) < 0 ||
	    (r = mqtt_init(&(struct mqtt_env){.loop = a->loop,
					      .settings = a->settings,
					      .conf = &a->conf,
					      .reg = a->reg,
					      .ops = a->ops,
					      .hist = a->hist},
			   &a->mqtt)) < 0)
		return r;
	a->start_mono_ms = clock_mono_ms();
	struct modbus_env me = {.loop = a->loop,
				.settings = a->settings,
				.conf = &a->conf,
				.poll = a->poll,
				.reg = a->reg,
				.buses = a->buses,
				.start_mono_ms = a->start_mono_ms};

	if ((r = modbus_init(&a->modbus, &me)) < 0)
		return r;
	fill_status_env(a);
	return 0;
}

void app_stop_modules(struct app *a)
{
	memset(&a->status, 0, sizeof(a->status));
	if (a->settings) {
		settings_unsubscribe(a->settings, on_poll_settings, a->poll);
	}
	if (a->poll)
		poll_quiesce(a->poll);
	modbus_fini(a->modbus); /* before the buses: its running requests become orphans */
	a->modbus = NULL;
	for (int i = CONF_BUS_COUNT - 1; i >= 0; i--)
		bus_stop(a->buses[i]);
	hist_fini(a->hist); /* after the buses: no more readings come */
	a->hist = NULL;
	mqtt_fini(a->mqtt); /* after the buses: pending commands have their answers */
	a->mqtt = NULL;
	disc_fini(a->disc);
	http_server_fini(a->http);
	ctl_server_fini(a->ctl);
	ops_fini(a->ops); /* after the front-ends and the buses: no call can finish any more */
	poll_fini(a->poll);
	reg_fini(a->reg);
}
