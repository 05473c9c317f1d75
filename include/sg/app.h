/* The daemon's state, owned by the main thread; built by main.c in start-up
 * order and torn down in reverse. Only src/sgd/ should include this: modules
 * get the handles they use (hist_env, modbus_env, disc_env, status_env…),
 * and follow settings through settings_subscribe(). */
#ifndef SG_APP_H
#define SG_APP_H

#include <stdint.h>

#include "sg/bus.h"
#include "sg/conf.h"
#include "sg/desc.h"
#include "sg/loop.h"
#include "sg/poll.h"
#include "sg/settings.h"
#include "sg/status.h"
#include "sg/store.h"

struct ctl_server;
struct discovery;
struct http_server;
struct modbus;
struct mqtt;
struct hist;
struct ops;

struct app {
	char conf_path[CONF_PATH_MAX];
	struct conf conf;
	struct loop *loop;
	struct desc_set descs;
	struct settings *settings;
	struct store *store;
	struct bus *buses[CONF_BUS_COUNT];
	struct reg *reg; /* the device slots; the poller fills them */
	struct poll *poll;
	struct ctl_server *ctl;
	struct http_server *http;
	struct discovery *disc;
	struct mqtt *mqtt;
	struct modbus *modbus;
	struct hist *hist; /* NULL when history.db cannot be used */
	struct ops *ops;   /* the one table of operations every front-end calls */
	int sigfd;
	int64_t start_mono_ms;
	int64_t watchdog_timer;
	int64_t watchdog_ms;
	struct status_env status; /* the handles GET /api and sgctl status read */
};

/* Start the modules from the device registry up (registry, poller, history,
 * ops, ctl, HTTP, discovery, MQTT, Modbus) over a's conf, descriptions,
 * settings, store, loop and buses; 0 or -errno (then app_stop_modules). */
int app_start_modules(struct app *a);
/* Reverse of app_start_modules, buses stopped in between; safe on a partial
 * start and with absent buses. */
void app_stop_modules(struct app *a);

#endif
