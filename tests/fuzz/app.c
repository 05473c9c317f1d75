/* A whole daemon inside a harness, for the front-ends that need one (control
 * socket, HTTP, MQTT commands): the start-up of src/sgd/main.c without serial
 * lines, signals or watchdog, on loopback and in a temporary directory. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

static struct app *app;
static json_t *baseline;
static unsigned baseline_gen;

/* A loopback TCP port nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void stop(void)
{
	struct app *a = app;

	if (!a)
		return;
	app_stop_modules(a);
	loop_fini(a->loop);
	store_close(a->store);
	settings_fini(a->settings);
	desc_set_free(&a->descs);
	json_decref(baseline);
	free(a);
	app = NULL;
}

/* The settings every input starts from: no serial line is there, so slots
 * configured here show their "not answering" paths. */
static json_t *start_settings(void)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "http_port", free_port(),
			 "tcp_port", free_port(), "udp_discovery", 0, "modbus_tcp_enabled", 0,
			 "push1_protocol", 0, "push2_protocol", 0, "left_ir_enabled", 1,
			 "rs485_type_1", 1, "rs485_type_2", 2);
}

/* The harness is the daemon's main here: it prepares conf, descriptions,
 * settings, store and loop (no serial lines), then starts the same modules
 * in the same order (src/sgd/modules.c). */
static int start(struct app *a)
{
	char err[512], path[CONF_PATH_MAX + 16];
	json_t *set;
	int r;

	conf_defaults(&a->conf);
	snprintf(a->conf.state_dir, sizeof(a->conf.state_dir), "%s/app", fuzz_tmpdir());
	snprintf(a->conf.ctl_socket, sizeof(a->conf.ctl_socket), "%s/app/sgd.sock", fuzz_tmpdir());
	/* Run from the top of the tree (make fuzz, tests/run-all). */
	snprintf(a->conf.devices_dir, sizeof(a->conf.devices_dir), "etc/devices");
	snprintf(a->conf.www_dir, sizeof(a->conf.www_dir), "www");
	snprintf(a->conf.http_bind, sizeof(a->conf.http_bind), "127.0.0.1");
	snprintf(a->conf.modbus_tcp_bind, sizeof(a->conf.modbus_tcp_bind), "127.0.0.1");
	snprintf(a->conf.serial_number, sizeof(a->conf.serial_number), "SG000001");
	a->conf.discovery_port = free_port();
	if (mkdir(a->conf.state_dir, 0700) < 0)
		return -errno;
	if ((r = desc_load_dir(a->conf.devices_dir, &a->descs, err, sizeof(err))) < 0) {
		fprintf(stderr, "fuzz: %s\n", err);
		return r;
	}
	if ((r = settings_init(&a->settings, a->conf.state_dir, a->conf.serial_number,
			       a->conf.model_type)) < 0)
		return r;
	set = start_settings();
	r = set ? settings_set_json(a->settings, set, err, sizeof(err)) : -ENOMEM;
	json_decref(set);
	if (r < 0) {
		fprintf(stderr, "fuzz: settings: %s\n", err);
		return r;
	}
	snprintf(path, sizeof(path), "%s/sgd.db", a->conf.state_dir);
	if ((r = store_open(path, &a->store, err, sizeof(err))) < 0 ||
	    (r = loop_init(&a->loop)) < 0)
		return r;
	return app_start_modules(a);
}

struct app *fuzz_app(void)
{
	if (app)
		return app;
	unsetenv("SGD_TEST_HOOKS"); /* a stranger cannot move the clock */
	if (!getenv("FUZZ_LOG"))
		log_set_level(-1); /* a log line per input would be most of the time */
	signal(SIGPIPE, SIG_IGN);
	app = calloc(1, sizeof(*app));
	if (!app)
		abort();
	if (start(app) < 0) {
		fprintf(stderr, "fuzz: the daemon did not start\n");
		abort();
	}
	baseline = settings_to_json(app->settings, true);
	json_object_del(baseline, "serial_number");
	json_object_del(baseline, "model_type");
	baseline_gen = settings_generation(app->settings);
	atexit(stop);
	return app;
}

void fuzz_app_restore(void)
{
	char err[512];

	if (!app || settings_generation(app->settings) == baseline_gen)
		return;
	if (settings_set_json(app->settings, baseline, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz: restoring settings: %s\n", err);
		abort();
	}
	baseline_gen = settings_generation(app->settings);
}

struct exchange {
	char *buf; /* what came back, NUL-terminated */
	size_t got;
	int (*complete)(const char *buf, size_t len);
};

static void on_guard(void *arg)
{
	(void)arg;
	loop_quit(app->loop);
}

static void on_client(int fd, uint32_t events, void *arg)
{
	struct exchange *x = arg;
	char buf[65536];
	ssize_t n;
	int err;

	(void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *more = realloc(x->buf, x->got + (size_t)n + 1);

		if (!more)
			abort();
		memcpy(more + x->got, buf, (size_t)n);
		x->buf = more;
		x->got += (size_t)n;
		x->buf[x->got] = '\0';
	}
	err = n < 0 ? errno : 0;
	/* complete sees what came back also when the daemon closed after it */
	if ((x->complete && x->got && x->complete(x->buf, x->got)) || n == 0 ||
	    (err != EAGAIN && err != EINTR))
		loop_quit(app->loop);
}

size_t fuzz_app_exchange(int fd, int ms, int (*complete)(const char *buf, size_t len))
{
	struct exchange x = {.complete = complete};
	int64_t guard;

	if (loop_add_fd(app->loop, fd, EPOLLIN | EPOLLRDHUP, on_client, &x) < 0)
		abort();
	guard = loop_timer_add(app->loop, ms, on_guard, NULL);
	loop_run(app->loop);
	loop_timer_cancel(app->loop, guard);
	loop_del_fd(app->loop, fd);
	free(x.buf);
	return x.got;
}

void fuzz_app_turn(void)
{
	int64_t t = loop_timer_add(app->loop, 0, on_guard, NULL);

	loop_run(app->loop);
	loop_timer_cancel(app->loop, t);
}

int fuzz_app_connect(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* Blocking connect: the listener's backlog completes it without the loop. */
	if (fd < 0 || connect(fd, sa, len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

void fuzz_app_send(int fd, const uint8_t *data, size_t size)
{
	int flags = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	while (size) {
		ssize_t n = send(fd, data, size, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			size -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			fuzz_app_turn(); /* the daemon reads some */
		} else {
			break; /* the daemon closed: it refused the rest */
		}
	}
	shutdown(fd, SHUT_WR);
}
