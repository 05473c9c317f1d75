/* sgctl — command-line client for sgd's control socket (protocol: sg/ctl.h).
 *
 * usage: sgctl [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...]
 *
 * The command line after the global options is checked and translated here
 * (cmd.c) into one JSON command object of sgd's operations table, e.g.
 * "measurements 0" → {"cmd": "measurements", "index": 0}; one reply line
 * comes back. Exit codes:
 *   0  success
 *   1  sgd answered with an error (its message is printed to stderr)
 *   2  usage error: unknown command, wrong arguments, factory-reset without
 *      --yes; sgd is not contacted
 *   3  cannot connect to the control socket
 *   4  no usable reply: timeout, connection closed, garbled or oversized reply
 *
 * Socket path: --socket, else $SGD_SOCKET, else ctl_socket from
 * /etc/sg/sgd.conf (built-in default when the file does not exist). */
#include "cmd.h"
#include "fmt.h"
#include "sg/clock.h"
#include "sg/conf.h"
#include "sg/ctl.h"
#include "sg/settings.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_DEFAULT_S 30
#define TIMEOUT_SCAN_S 120 /* a full bus scan walks every address at every baud rate */

struct opts {
	const char *socket;
	bool json;
	bool yes;
	double timeout_s; /* 0: the command's default */
};

static void usage_line(FILE *out)
{
	fprintf(out, "usage: sgctl [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...]\n");
}

static void help(void)
{
	usage_line(stdout);
	printf("\nOptions:\n"
	       "  -s, --socket PATH   control socket (default: $SGD_SOCKET, else ctl_socket\n"
	       "                      from " CONF_DEFAULT_PATH ")\n"
	       "  -j, --json          print the reply data as JSON\n"
	       "  -t, --timeout SEC   reply timeout (default %d s, scan %d s)\n"
	       "  -y, --yes           confirm factory-reset\n"
	       "\nCommands:\n",
	       TIMEOUT_DEFAULT_S, TIMEOUT_SCAN_S);
	cmd_print_all(stdout);
	printf("\nExit status:\n"
	       "  0  success\n"
	       "  1  sgd reported an error\n"
	       "  2  usage error (sgd not contacted)\n"
	       "  3  cannot connect to the control socket\n"
	       "  4  timeout or invalid reply\n");
}

/* Errors are one line, so scripts can show them as they are. */
static int usage_error(void)
{
	fprintf(stderr,
		"sgctl: expected [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...] "
		"(try 'sgctl help')\n");
	return EXIT_USAGE;
}

static int parse_timeout(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 86400) {
		fprintf(stderr, "sgctl: invalid timeout '%s' (seconds, 0 < SEC <= 86400)\n", s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Global options end at the first non-option ('+'), so command options such as
 * scan's --baud reach the command untouched. */
static int parse_opts(int argc, char *argv[], struct opts *o)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'}, {"yes", no_argument, NULL, 'y'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+s:jt:yh", lo, NULL)) != -1) {
		if (c == 's')
			o->socket = optarg;
		else if (c == 'j')
			o->json = true;
		else if (c == 'y')
			o->yes = true;
		else if (c == 't' && parse_timeout(optarg, &o->timeout_s) == 0)
			continue;
		else if (c == 'h')
			return 1;
		else
			return -EINVAL;
	}
	return 0;
}

static void socket_path(const struct opts *o, char *buf, size_t len)
{
	const char *env = getenv("SGD_SOCKET");
	char err[512];
	struct conf c;
	int ret;

	if (o->socket || (env && *env)) {
		snprintf(buf, len, "%s", o->socket ? o->socket : env);
		return;
	}
	ret = conf_load(CONF_DEFAULT_PATH, &c, err, sizeof(err));
	if (ret && ret != -ENOENT)
		/* sgd would refuse this file too; the default is still the best guess. */
		fprintf(stderr, "sgctl: warning: %s (using the default socket path)\n", err);
	if (ret)
		conf_defaults(&c);
	snprintf(buf, len, "%s", c.ctl_socket);
}

/* Wait until fd is ready for ev or the monotonic deadline passes. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};

	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int connect_ctl(const char *path, int *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A local stream connect completes at once or fails; EAGAIN means sgd's
	 * backlog is full, i.e. it is alive but not accepting. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	*out = fd;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		/* MSG_NOSIGNAL: sgd closing early must be an error, not SIGPIPE. */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int ret;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (errno == EAGAIN || errno == EINTR) {
			ret = wait_fd(fd, POLLOUT, deadline);
			if (ret)
				return ret;
		} else {
			return -errno;
		}
	}
	return 0;
}

/* Read up to the first newline; the line (without it) is NUL-terminated in buf,
 * which holds CTL_LINE_MAX + 1 bytes. */
static int recv_line(int fd, char *buf, size_t *len, int64_t deadline)
{
	char *nl = NULL;
	ssize_t n;
	int ret;

	*len = 0;
	while (!nl) {
		if (*len >= CTL_LINE_MAX)
			return -EMSGSIZE;
		n = recv(fd, buf + *len, CTL_LINE_MAX - *len, 0);
		if (n == 0)
			return -ECONNRESET; /* closed before a complete line */
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n < 0) {
			ret = wait_fd(fd, POLLIN, deadline);
			if (ret)
				return ret;
			continue;
		}
		nl = memchr(buf + *len, '\n', (size_t)n);
		*len += (size_t)n;
	}
	*nl = '\0';
	*len = (size_t)(nl - buf);
	return 0;
}

/* "tariffs set FILE" sends the file's text: sgd may not see the client's
 * files (another user, another working directory). NULL after a message. */
static char *read_text_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "sgctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(CTL_LINE_MAX / 2 + 1);
	n = buf ? fread(buf, 1, CTL_LINE_MAX / 2 + 1, f) : 0;
	fclose(f);
	if (!buf || n > CTL_LINE_MAX / 2) {
		fprintf(stderr, "sgctl: %s: larger than %d bytes\n", path, CTL_LINE_MAX / 2);
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

/* The request line for argv; NULL after a message (*rc: the exit code). */
static char *make_request(const struct cmd *c, int argc, char *const argv[], int *rc)
{
	json_t *req = cmd_request(c, argc, argv), *tariffs;
	json_error_t jerr;
	char *line, *text;

	*rc = EXIT_USAGE;
	if (!req)
		return NULL;
	if (!strcmp(c->name, "tariffs") && argc == 3) {
		/* sgd may not see the client's files (another user, another
		 * working directory): the file's content goes in the request */
		*rc = EXIT_FAILED;
		text = read_text_file(argv[2]);
		tariffs = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
		if (text && !tariffs)
			fprintf(stderr, "sgctl: %s: line %d: %s\n", argv[2], jerr.line, jerr.text);
		free(text);
		if (!tariffs) {
			json_decref(req);
			return NULL;
		}
		json_object_set_new(req, "tariffs", tariffs);
	}
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		fprintf(stderr, "sgctl: out of memory\n");
	*rc = EXIT_FAILED;
	return line;
}

/* "settings KEY": the one setting out of the whole list sgd sent; NULL
 * after a message when there is no such (readable) setting. */
static json_t *pick_setting(json_t *data, const char *key)
{
	json_t *all = json_object_get(data, "settings");
	json_t *v = json_object_get(json_is_object(all) ? all : data, key);

	if (v)
		return json_pack("{s:O}", key, v);
	if (settings_def(key))
		fprintf(stderr, "sgctl: %s is write-only\n", key);
	else
		fprintf(stderr, "sgctl: unknown setting '%s'\n", key);
	return NULL;
}

static int reply_error(int err, const char *path, double timeout_s)
{
	if (err == -ETIMEDOUT)
		fprintf(stderr, "sgctl: no reply from sgd within %g s\n", timeout_s);
	else if (err == -EMSGSIZE)
		fprintf(stderr, "sgctl: reply from sgd longer than %d bytes\n", CTL_LINE_MAX);
	else if (err == -ECONNRESET || err == -EPIPE)
		fprintf(stderr, "sgctl: %s: connection closed without a reply\n", path);
	else
		fprintf(stderr, "sgctl: %s: %s\n", path, strerror(-err));
	return EXIT_REPLY;
}

/* Send the request line and read the reply line into *reply (malloc'd). */
static int exchange(const char *path, const char *req, double timeout_s, char **reply)
{
	int64_t deadline = clock_mono_ms() + (int64_t)llround(timeout_s * 1000);
	char *buf = malloc(CTL_LINE_MAX + 1);
	size_t len;
	int fd = -1, ret;

	if (!buf)
		return reply_error(-ENOMEM, path, timeout_s);
	ret = connect_ctl(path, &fd);
	if (ret) {
		free(buf);
		fprintf(stderr, "sgctl: cannot connect to %s: %s\n", path, strerror(-ret));
		return EXIT_CONNECT;
	}
	ret = send_all(fd, req, strlen(req), deadline);
	if (!ret)
		ret = send_all(fd, "\n", 1, deadline);
	if (!ret)
		ret = recv_line(fd, buf, &len, deadline);
	close(fd);
	if (ret) {
		free(buf);
		return reply_error(ret, path, timeout_s);
	}
	*reply = buf;
	return EXIT_OK;
}

static void print_json(json_t *data)
{
	char *s = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY);

	printf("%s\n", s ? s : "null");
	free(s);
}

static int handle_reply(const char *line, const struct opts *o, int argc, char *const argv[])
{
	json_t *r = json_loads(line, 0, NULL);
	json_t *ok = json_object_get(r, "ok");
	json_t *data = json_incref(json_object_get(r, "data")), *one;
	const char *err = json_string_value(json_object_get(r, "error"));
	int ret = EXIT_OK;

	if (json_is_true(ok) && !strcmp(argv[0], "settings") && argc == 2) {
		one = pick_setting(data, argv[1]);
		json_decref(data);
		data = one;
		if (!data)
			ret = EXIT_FAILED;
	}
	if (!json_is_boolean(ok)) {
		fprintf(stderr, "sgctl: garbled reply from sgd\n");
		ret = EXIT_REPLY;
	} else if (json_is_false(ok)) {
		fprintf(stderr, "sgctl: %s\n", err ? err : "command failed");
		ret = EXIT_FAILED;
	} else if (ret != EXIT_OK) {
		/* pick_setting said why */
	} else if (o->json) {
		print_json(data ? data : json_null());
	} else {
		fmt_reply(stdout, argc, argv, data);
	}
	json_decref(data);
	json_decref(r);
	return ret;
}

/* argv[0] is the command; everything is checked before sgd is contacted. */
static int validate(const struct opts *o, int argc, char *const argv[])
{
	const struct cmd *c = cmd_find(argv[0]);

	if (!c) {
		fprintf(stderr, "sgctl: unknown command '%s' (try 'sgctl help')\n", argv[0]);
		return EXIT_USAGE;
	}
	if (cmd_check(c, argc, argv))
		return EXIT_USAGE;
	if (!strcmp(c->name, "factory-reset") && !o->yes && argc == 1) {
		fprintf(stderr, "sgctl: factory-reset erases all settings; "
				"repeat as 'sgctl factory-reset --yes' to confirm\n");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int run(const struct opts *o, int argc, char *const argv[])
{
	double timeout_s = o->timeout_s;
	char path[PATH_MAX], *req, *reply = NULL;
	int ret;

	if (timeout_s <= 0)
		timeout_s = !strcmp(argv[0], "scan") ? TIMEOUT_SCAN_S : TIMEOUT_DEFAULT_S;
	socket_path(o, path, sizeof(path));
	req = make_request(cmd_find(argv[0]), argc, argv, &ret);
	if (!req)
		return ret;
	ret = exchange(path, req, timeout_s, &reply);
	free(req);
	if (ret == EXIT_OK)
		ret = handle_reply(reply, o, argc, argv);
	free(reply);
	return ret;
}

int main(int argc, char *argv[])
{
	struct opts o = {0};
	int ret = parse_opts(argc, argv, &o);

	if (ret > 0) {
		help();
		return EXIT_OK;
	}
	if (ret < 0 || optind >= argc)
		return usage_error();
	argc -= optind;
	argv += optind;
	if (!strcmp(argv[0], "help") && argc == 1) {
		help();
		return EXIT_OK;
	}
	ret = validate(&o, argc, argv);
	if (ret != EXIT_OK)
		return ret;
	if (!strcmp(argv[0], "factory-reset") && argc == 1) {
		/* confirmed with the global --yes; sgd wants the confirmation too */
		static char *confirmed[] = {"factory-reset", "--yes", NULL};

		argv = confirmed;
		argc = 2;
	}
	ret = run(&o, argc, argv);
	if (fflush(stdout) != 0)
		return EXIT_FAILED;
	return ret;
}
