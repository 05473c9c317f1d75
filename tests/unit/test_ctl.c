/* The control socket as a front-end of the operations table: each request
 * line is a command object handed to ops_run, each completion one reply
 * line {"ok": true, "data"} / {"ok": false, "error", "status"}, in order;
 * the old {"argv": […]} form and non-objects are refused. Real loop and
 * socket, no device: the commands used need none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sg/ctlsrv.h"
#include "sg/loop.h"
#include "sg/ops.h"

static struct loop *lp;
static struct ops *ops;
static struct ctl_server *srv;
static char dir[64], path[96];
static struct conf cf = {.serial_number = "SN7", .model_type = "SG-E1", .hw_version = "D"};

struct wait {
	char buf[8192];
	size_t len;
	int lines; /* quit the loop once this many reply lines are in */
};

static int count_lines(const struct wait *w)
{
	int n = 0;

	for (size_t i = 0; i < w->len; i++)
		n += w->buf[i] == '\n';
	return n;
}

static void on_reply(int fd, uint32_t events, void *arg)
{
	struct wait *w = arg;
	ssize_t n = read(fd, w->buf + w->len, sizeof(w->buf) - 1 - w->len);

	(void)events;
	if (n > 0)
		w->len += (size_t)n;
	w->buf[w->len] = '\0';
	if (n <= 0 || count_lines(w) >= w->lines)
		loop_quit(lp);
}

static void on_guard(void *arg)
{
	(void)arg;
	loop_quit(lp); /* a reply missing: the assertions below say which */
}

/* Send text on a new connection and return the reply lines (static). */
static struct wait *exchange(const char *text, int lines)
{
	static struct wait w;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int64_t guard;

	memset(&w, 0, sizeof(w));
	w.lines = lines;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(loop_add_fd(lp, fd, EPOLLIN, on_reply, &w), 0);
	guard = loop_timer_add(lp, 10000, on_guard, NULL);
	loop_run(lp);
	loop_timer_cancel(lp, guard);
	loop_del_fd(lp, fd);
	close(fd);
	return &w;
}

/* Reply line n of w as JSON (caller decrefs). */
static json_t *line(struct wait *w, int n)
{
	char *p = w->buf, *nl;
	json_t *j;

	for (; n > 0; n--) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	nl = strchr(p, '\n');
	assert_non_null(nl);
	j = json_loadb(p, (size_t)(nl - p), 0, NULL);
	assert_non_null(j);
	return j;
}

static void refused(json_t *r, const char *status, const char *want)
{
	const char *err = json_string_value(json_object_get(r, "error"));

	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_string_equal(json_string_value(json_object_get(r, "status")), status);
	if (!err || !strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err ? err : "(none)", want);
	json_decref(r);
}

static int setup(void **state)
{
	struct ops_env env = {.conf = &cf};

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sg-ctl-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	if (loop_init(&lp) < 0)
		return -1;
	env.loop = lp;
	if (ops_init(&ops, &env) < 0)
		return -1;
	return ctl_server_init(lp, ops, path, &srv) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	ctl_server_fini(srv);
	ops_fini(ops);
	loop_fini(lp);
	rmdir(dir);
	return 0;
}

static void test_command_objects(void **state)
{
	struct wait *w;
	json_t *r;

	(void)state;
	w = exchange("{\"cmd\":\"version\"}\n", 1);
	r = line(w, 0);
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r, "data"), "serial_number")), "SN7");
	assert_null(json_object_get(r, "error"));
	json_decref(r);
	/* the operations' refusals, with their status class */
	w = exchange("{\"cmd\":\"nope\"}\n{\"cmd\":\"version\",\"x\":1}\n"
		     "{\"cmd\":\"load_profile\",\"index\":0}\n{\"cmd\":\"recorder_show\"}\n",
		     4);
	refused(line(w, 0), "bad_request", "unknown command 'nope'");
	refused(line(w, 1), "bad_request", "unknown member 'x'");
	refused(line(w, 2), "unavailable", "history is not available");
	refused(line(w, 3), "bad_request", "recorder: missing");
}

static void test_refused_lines(void **state)
{
	struct wait *w;

	(void)state;
	w = exchange("{\"argv\": [\"status\"]}\nnot json\n[1]\n{\"cmd\":\"version\","
		     "\"cmd\":\"version\"}\n{\"cmd\":\"version\"}\n",
		     5);
	refused(line(w, 0), "bad_request", "{\"argv\": […]} is no longer understood");
	refused(line(w, 1), "bad_request", "expected one JSON command object");
	refused(line(w, 2), "bad_request", "expected one JSON command object");
	refused(line(w, 3), "bad_request", "expected one JSON command object"); /* duplicate */
	/* the connection still serves the next line */
	json_t *r = line(w, 4);

	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_command_objects),
	    cmocka_unit_test(test_refused_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
