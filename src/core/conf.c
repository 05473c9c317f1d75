/* Board configuration: strict "key = value" parser for /etc/sg/sgd.conf.
 * Every mistake is refused with FILE:LINE, because a daemon that silently
 * ignores a typo in a device path fails much later and far less clearly. */
#include "sg/conf.h"
#include "sg/errbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 1024
#define MACHINE_ID "/etc/machine-id"

enum kind {
	K_PATH,	 /* absolute path */
	K_DEV,	 /* absolute path or empty (device absent) */
	K_ADDR,	 /* IPv4 or IPv6 literal */
	K_IDENT, /* letters, digits, '-' and '_' */
	K_INT,	 /* decimal integer in [min, max] */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off, size; /* field in struct conf; size of a string buffer */
	int min, max;
};

// clang-format off
#define STR(n, k, f) {n, k, offsetof(struct conf, f), sizeof(((struct conf *)0)->f), 0, 0}
#define INT(n, f, lo, hi) {n, K_INT, offsetof(struct conf, f), sizeof(int), lo, hi}

static const struct key keys[] = {
	STR("serial_left_ir", K_DEV, serial[CONF_BUS_LEFT_IR]),
	STR("serial_right_ir", K_DEV, serial[CONF_BUS_RIGHT_IR]),
	STR("serial_rs485", K_DEV, serial[CONF_BUS_RS485]),
	STR("state_dir", K_PATH, state_dir),
	STR("ctl_socket", K_PATH, ctl_socket),
	STR("devices_dir", K_PATH, devices_dir),
	STR("www_dir", K_PATH, www_dir),
	STR("http_bind", K_ADDR, http_bind),
	STR("modbus_tcp_bind", K_ADDR, modbus_tcp_bind),
	STR("serial_number", K_IDENT, serial_number),
	STR("model_type", K_IDENT, model_type),
	STR("hw_version", K_IDENT, hw_version),
	INT("ir_timeout_ms", ir_timeout_ms, 50, 10000),
	INT("rs485_timeout_ms", rs485_timeout_ms, 20, 10000),
	INT("right_ir_addr", right_ir_addr, 1, 247),
	INT("discovery_port", discovery_port, 1, 65535),
	INT("mqtt_buffer_max", mqtt_buffer_max, 10, 1000000),
};
// clang-format on

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* "SG" + the first 6 hex digits of the machine id: stable per board and
 * unique enough to tell gateways apart on one network. */
static void default_serial(char *out, size_t len)
{
	char id[64] = "";
	FILE *f = fopen(MACHINE_ID, "re");
	size_t n = 0;

	if (f) {
		if (!fgets(id, sizeof(id), f))
			id[0] = '\0';
		fclose(f);
	}
	while (n < 6 && isxdigit((unsigned char)id[n]))
		n++;
	if (n < 6) {
		snprintf(out, len, "SG000000");
		return;
	}
	snprintf(out, len, "SG%c%c%c%c%c%c", toupper(id[0]), toupper(id[1]), toupper(id[2]),
		 toupper(id[3]), toupper(id[4]), toupper(id[5]));
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/sgd");
	snprintf(c->ctl_socket, sizeof(c->ctl_socket), "/run/sgd/sgd.sock");
	snprintf(c->devices_dir, sizeof(c->devices_dir), "/etc/sg/devices");
	snprintf(c->www_dir, sizeof(c->www_dir), "/usr/share/sgd/www");
	snprintf(c->http_bind, sizeof(c->http_bind), "0.0.0.0");
	snprintf(c->modbus_tcp_bind, sizeof(c->modbus_tcp_bind), "0.0.0.0");
	default_serial(c->serial_number, sizeof(c->serial_number));
	snprintf(c->model_type, sizeof(c->model_type), "SG-E1");
	snprintf(c->hw_version, sizeof(c->hw_version), "D");
	c->ir_timeout_ms = 500;
	c->rs485_timeout_ms = 300;
	c->right_ir_addr = 33;
	c->discovery_port = 33333;
	c->mqtt_buffer_max = 50000;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static bool is_ident(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (!isalnum((unsigned char)*v) && *v != '-' && *v != '_')
			return false;
	return true;
}

static bool is_addr(const char *v)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1;
}

/* NULL if v suits k, else what the value should look like. */
static const char *str_problem(const struct key *k, const char *v)
{
	switch (k->kind) {
	case K_DEV:
		return *v && *v != '/' ? "expected an absolute device path or nothing" : NULL;
	case K_PATH:
		return *v != '/' ? "expected an absolute path" : NULL;
	case K_ADDR:
		return !is_addr(v) ? "expected an IPv4 or IPv6 address" : NULL;
	case K_IDENT:
		return !is_ident(v) ? "expected letters, digits, '-' or '_'" : NULL;
	case K_INT:
		break;
	}
	return NULL;
}

static int set_int(const struct key *k, const char *v, struct conf *c, char *err, size_t errlen)
{
	bool ok = *v == '-' || isdigit((unsigned char)*v);
	char *end = NULL;
	long n = 0;

	/* strtol alone would skip blanks and accept "12abc" up to the letters. */
	if (ok) {
		errno = 0;
		n = strtol(v, &end, 10);
		ok = !errno && !*end && n >= k->min && n <= k->max;
	}
	if (!ok) {
		err_set(err, errlen, "%s: expected an integer %d…%d, got '%s'", k->name, k->min,
			k->max, v);
		return -EINVAL;
	}
	*(int *)((char *)c + k->off) = (int)n;
	return 0;
}

static int set_value(const struct key *k, const char *v, struct conf *c, char *err, size_t errlen)
{
	const char *why;

	if (k->kind == K_INT)
		return set_int(k, v, c, err, errlen);
	if (strlen(v) >= k->size) {
		err_set(err, errlen, "%s: value longer than %zu bytes", k->name, k->size - 1);
		return -EINVAL;
	}
	why = str_problem(k, v);
	if (why) {
		err_set(err, errlen, "%s: %s, got '%s'", k->name, why, v);
		return -EINVAL;
	}
	memcpy((char *)c + k->off, v, strlen(v) + 1);
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A '#' at the start or after a blank starts a comment (paths never hold " #"). */
static void strip_comment(char *line)
{
	for (char *p = line; *p; p++) {
		if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

/* One line; seen[] marks keys already set so a repeated key is refused. */
static int parse_line(char *line, struct conf *c, bool *seen, char *err, size_t errlen)
{
	const struct key *k;
	char *eq, *name;

	strip_comment(line);
	name = trim(line);
	if (!*name)
		return 0;
	eq = strchr(name, '=');
	if (!eq) {
		err_set(err, errlen, "expected 'key = value', got '%s'", name);
		return -EINVAL;
	}
	*eq = '\0';
	name = trim(name);
	k = find_key(name);
	if (!k) {
		err_set(err, errlen, "unknown key '%s'", name);
		return -EINVAL;
	}
	if (seen[k - keys]) {
		err_set(err, errlen, "%s: set twice", name);
		return -EINVAL;
	}
	seen[k - keys] = true;
	return set_value(k, trim(eq + 1), c, err, errlen);
}

static int parse_file(FILE *f, const char *path, struct conf *c, char *err, size_t errlen)
{
	bool seen[NKEYS] = {false};
	char line[LINE_MAX_LEN + 2], msg[512];
	int lineno = 0, rc;

	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && strlen(line) > LINE_MAX_LEN) {
			err_set(err, errlen, "%s:%d: line longer than %d bytes", path, lineno,
				LINE_MAX_LEN);
			return -EINVAL;
		}
		rc = parse_line(line, c, seen, msg, sizeof(msg));
		if (rc) {
			err_set(err, errlen, "%s:%d: %s", path, lineno, msg);
			return rc;
		}
	}
	if (ferror(f)) {
		err_set(err, errlen, "%s: read error", path);
		return -EIO;
	}
	return 0;
}

int conf_load(const char *path, struct conf *c, char *err, size_t errlen)
{
	struct conf tmp;
	FILE *f;
	int rc;

	conf_defaults(&tmp);
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		err_set(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = parse_file(f, path, &tmp, err, errlen);
	fclose(f);
	/* Output written only on success. */
	if (!rc)
		*c = tmp;
	return rc;
}
