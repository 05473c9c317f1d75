/* sgd: start-up in dependency order, one epoll loop, shutdown in reverse. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "sg/app.h"
#include "sg/clock.h"
#include "sg/log.h"
#include "sg/version.h"

#define IR_BAUD 19200

static void usage(FILE *f)
{
	fprintf(f, "usage: sgd [-c CONFIG] [-n] [-v] [-V]\n"
		   "  -c CONFIG  board configuration (default " CONF_DEFAULT_PATH ")\n"
		   "  -n         check configuration and device descriptions, then exit\n"
		   "  -v         verbose (debug) logging\n"
		   "  -V         print version\n");
}

/* Logging follows its settings from here; every module but the poller
 * (modules.c) subscribes itself in its init. The settings module tells each
 * owner once per accepted change touching its keys (settings.h). */
static const char *const log_keys[] = {"log_disable1", "log_disable2", NULL};
/* Per-module logging (log_disable1/2), from the first settings on. */
static void log_configure(const struct settings *s, void *arg)
{
	(void)arg;
	log_set_disabled((unsigned)settings_int(s, "log_disable1"),
			 (unsigned)settings_int(s, "log_disable2"));
}

/* A broken description costs only its own model: the others load, and
 * every skipped file is logged here and shown in GET /api and sgctl status. */
static int load_descs(struct app *a)
{
	char err[512];
	int r = desc_load_dir_lenient(a->conf.devices_dir, &a->descs, err, sizeof(err));

	if (r < 0) {
		log_err("device descriptions: %s", err);
		return r;
	}
	for (unsigned i = 0; i < a->descs.nerr; i++) {
		const struct desc_error *e = &a->descs.errs[i];

		log_err("device description %s/%s skipped: %s%s%s", a->conf.devices_dir, e->file,
			e->member, e->member[0] ? ": " : "", e->reason);
	}
	if (a->descs.nbroken > a->descs.nerr)
		log_err("device descriptions: %u more broken files not listed",
			a->descs.nbroken - a->descs.nerr);
	log_info("%u device descriptions from %s", a->descs.n, a->conf.devices_dir);
	return 0;
}

static int load_config(struct app *a, bool check_only)
{
	char err[512];
	int r = conf_load(a->conf_path, &a->conf, err, sizeof(err));

	if (r == -ENOENT && !check_only) {
		log_warn("%s not found: using built-in defaults", a->conf_path);
		conf_defaults(&a->conf);
		r = 0;
	} else if (r < 0) {
		log_err("%s", err);
	}
	return r;
}

static int open_state(struct app *a)
{
	char err[512], path[CONF_PATH_MAX + 16];
	int r;

	if (mkdir(a->conf.state_dir, 0750) < 0 && errno != EEXIST) {
		log_errno(LOG_ERR, errno, "state directory %s", a->conf.state_dir);
		return -errno;
	}
	r = settings_init(&a->settings, a->conf.state_dir, a->conf.serial_number,
			  a->conf.model_type);
	if (r < 0)
		return r;
	/* Not fatal: the gateway must run; err says which values are in use. */
	r = settings_load(a->settings, err, sizeof(err));
	if (r < 0)
		log_err("settings: %s", err);
	log_configure(a->settings, NULL);
	if ((r = settings_subscribe(a->settings, log_keys, log_configure, NULL)) < 0) {
		log_errno(LOG_ERR, -r, "logging cannot follow settings");
		return r;
	}
	snprintf(path, sizeof(path), "%s/sgd.db", a->conf.state_dir);
	r = store_open(path, &a->store, err, sizeof(err));
	if (r < 0)
		log_err("store: %s", err);
	return r;
}

static void bus_params_for(const struct app *a, int i, struct bus_params *p)
{
	static const char *const names[] = {"Left IR", "Right IR", "RS485"};

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", names[i]);
	snprintf(p->device, sizeof(p->device), "%s", a->conf.serial[i]);
	p->baud = i == CONF_BUS_RS485 ? 115200 : IR_BAUD; /* RS485 line set from settings */
	p->parity = 'N';
	p->stop_bits = 1;
	p->timeout_ms = i == CONF_BUS_RS485 ? a->conf.rs485_timeout_ms : a->conf.ir_timeout_ms;
}

static int start_buses(struct app *a)
{
	for (int i = 0; i < CONF_BUS_COUNT; i++) {
		struct bus_params p;
		int r;

		if (!a->conf.serial[i][0])
			continue;
		bus_params_for(a, i, &p);
		r = bus_start(a->loop, &p, &a->buses[i]);
		if (r < 0) {
			log_errno(LOG_ERR, -r, "%s bus", p.name);
			return r;
		}
	}
	return 0;
}

static void reload(struct app *a)
{
	char err[512];

	log_notice("SIGHUP: reloading settings");
	/* Every owner is told by the settings when values were loaded. */
	if (settings_load(a->settings, err, sizeof(err)) < 0)
		log_err("settings: %s", err);
}

static void on_signal(int fd, uint32_t events, void *arg)
{
	struct app *a = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(a);
			continue;
		}
		log_notice("signal %u: shutting down", si.ssi_signo);
		sd_notify(0, "STOPPING=1");
		loop_quit(a->loop);
	}
}

static int setup_signals(struct app *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread starts, so only the signalfd sees them. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	a->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sigfd < 0)
		return -errno;
	return loop_add_fd(a->loop, a->sigfd, EPOLLIN, on_signal, a);
}

static void on_watchdog(void *arg)
{
	struct app *a = arg;

	/* Petted from the loop: a stuck loop stops petting and systemd restarts us. */
	sd_notify(0, "WATCHDOG=1");
	a->watchdog_timer = loop_timer_add(a->loop, a->watchdog_ms, on_watchdog, a);
}

static void start_watchdog(struct app *a)
{
	uint64_t usec;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	a->watchdog_ms = (int64_t)(usec / 2000);
	on_watchdog(a);
}

static int start(struct app *a)
{
	int r;

	if ((r = load_descs(a)) < 0 || (r = open_state(a)) < 0)
		return r;
	if ((r = loop_init(&a->loop)) < 0 || (r = setup_signals(a)) < 0)
		return r;
	if ((r = start_buses(a)) < 0)
		return r;
	if ((r = app_start_modules(a)) < 0)
		return r;
	start_watchdog(a);
	sd_notify(0, "READY=1");
	log_notice("sgd %s ready: %s %s, control socket %s", SGD_VERSION, a->conf.model_type,
		   a->conf.serial_number, a->conf.ctl_socket);
	return 0;
}

/* Reverse of start(); safe on a partial start. Buses stop before the control
 * server so pending operations are answered (cancelled) while clients exist. */
static void stop(struct app *a)
{
	app_stop_modules(a);
	if (a->loop && a->sigfd > 0) {
		loop_del_fd(a->loop, a->sigfd);
		close(a->sigfd);
	}
	loop_fini(a->loop);
	store_close(a->store);
	settings_fini(a->settings);
	desc_set_free(&a->descs);
}

static int parse_args(struct app *a, int argc, char **argv, bool *check)
{
	int c;

	snprintf(a->conf_path, sizeof(a->conf_path), "%s", CONF_DEFAULT_PATH);
	while ((c = getopt(argc, argv, "c:nvVh")) != -1) {
		switch (c) {
		case 'c':
			snprintf(a->conf_path, sizeof(a->conf_path), "%s", optarg);
			break;
		case 'n':
			*check = true;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'V':
			printf("sgd %s\n", SGD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static struct app app;
	bool check = false;
	int r;

	setvbuf(stderr, NULL, _IOLBF, 0);
	if (parse_args(&app, argc, argv, &check) < 0)
		return 2;
	if (load_config(&app, check) < 0)
		return 1;
	if (check) {
		unsigned broken;

		r = load_descs(&app);
		broken = app.descs.nbroken;
		desc_set_free(&app.descs);
		/* Exit 0 with skipped descriptions: the daemon starts with them
		 * (systemd runs this check first), and the lines above name them. */
		if (r == 0 && broken)
			printf(
			    "configuration OK, but %u device description%s skipped (see above)\n",
			    broken, broken == 1 ? "" : "s");
		else if (r == 0)
			printf("configuration OK\n");
		return r < 0 ? 1 : 0;
	}
	r = start(&app);
	if (r == 0)
		r = loop_run(app.loop);
	stop(&app);
	log_notice("sgd stopped");
	return r < 0 ? 1 : 0;
}
