/* Unit tests of the board configuration parser. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg/conf.h"

struct fx {
	char path[64];
	char err[512];
	struct conf c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/test_conf.XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->path);
	free(f);
	return 0;
}

static void write_conf(struct fx *f, const char *txt)
{
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs(txt, fp);
	fclose(fp);
}

static void test_defaults(void **state)
{
	struct conf c;

	(void)state;
	conf_defaults(&c);
	assert_string_equal(c.state_dir, "/var/lib/sgd");
	assert_string_equal(c.ctl_socket, "/run/sgd/sgd.sock");
	assert_string_equal(c.devices_dir, "/etc/sg/devices");
	assert_string_equal(c.www_dir, "/usr/share/sgd/www");
	assert_string_equal(c.http_bind, "0.0.0.0");
	assert_string_equal(c.modbus_tcp_bind, "0.0.0.0");
	assert_string_equal(c.model_type, "SG-E1");
	assert_string_equal(c.hw_version, "D");
	assert_string_equal(c.serial[CONF_BUS_LEFT_IR], "");
	assert_int_equal(c.ir_timeout_ms, 500);
	assert_int_equal(c.rs485_timeout_ms, 300);
	/* "SG" + 6 upper-case hex digits (from /etc/machine-id, or zeros). */
	assert_int_equal(strlen(c.serial_number), 8);
	assert_memory_equal(c.serial_number, "SG", 2);
	for (int i = 2; i < 8; i++) {
		char ch = c.serial_number[i];

		assert_true(isdigit((unsigned char)ch) || (ch >= 'A' && ch <= 'F'));
	}
}

static void test_good_file(void **state)
{
	struct fx *f = *state;

	write_conf(f, "# board\n"
		      "\n"
		      "serial_left_ir = /dev/ttyAMA1\n"
		      "  serial_rs485=/dev/ttyUSB0   # USB adapter\n"
		      "serial_right_ir =\n"
		      "state_dir = /srv/sg state\n"
		      "http_bind = ::1\n"
		      "modbus_tcp_bind = 127.0.0.1\n"
		      "serial_number = SG000013\n"
		      "model_type = SG-W1\n"
		      "ir_timeout_ms = 1000\n"
		      "rs485_timeout_ms = 20\n"
		      "\t# indented comment");
	assert_int_equal(conf_load(f->path, &f->c, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->c.serial[CONF_BUS_LEFT_IR], "/dev/ttyAMA1");
	assert_string_equal(f->c.serial[CONF_BUS_RS485], "/dev/ttyUSB0");
	assert_string_equal(f->c.serial[CONF_BUS_RIGHT_IR], "");
	assert_string_equal(f->c.state_dir, "/srv/sg state");
	assert_string_equal(f->c.http_bind, "::1");
	assert_string_equal(f->c.modbus_tcp_bind, "127.0.0.1");
	assert_string_equal(f->c.serial_number, "SG000013");
	assert_string_equal(f->c.model_type, "SG-W1");
	assert_int_equal(f->c.ir_timeout_ms, 1000);
	assert_int_equal(f->c.rs485_timeout_ms, 20);
	/* Untouched keys keep their defaults. */
	assert_string_equal(f->c.ctl_socket, "/run/sgd/sgd.sock");
	assert_string_equal(f->c.hw_version, "D");
}

/* The shipped example must load. */
static void test_shipped_example(void **state)
{
	struct fx *f = *state;

	if (access("etc/sgd.conf", R_OK) != 0)
		skip();
	assert_int_equal(conf_load("etc/sgd.conf", &f->c, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->c.serial[CONF_BUS_LEFT_IR], "/dev/ttyAMA1");
	assert_string_equal(f->c.state_dir, "/var/lib/sgd");
}

/* Refused with "PATH:LINE: …message…", and c left as it was. */
static void expect_error(struct fx *f, const char *txt, int line, const char *msg)
{
	char want[128];

	write_conf(f, txt);
	memset(&f->c, 0x5a, sizeof(f->c));
	f->err[0] = '\0';
	assert_int_equal(conf_load(f->path, &f->c, f->err, sizeof(f->err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%d: ", f->path, line);
	if (strncmp(f->err, want, strlen(want)) || !strstr(f->err, msg))
		fail_msg("got '%s', want '%s…%s'", f->err, want, msg);
	assert_int_equal(f->c.ir_timeout_ms, 0x5a5a5a5a);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	char long_line[400], big[1100];

	expect_error(f, "state_dir = /x\nfoo = 1\n", 2, "unknown key 'foo'");
	expect_error(f, "# c\n\nstate_dir /var/lib\n", 3, "expected 'key = value'");
	memset(long_line, 'a', sizeof(long_line));
	memcpy(long_line, "state_dir = /", 13);
	long_line[sizeof(long_line) - 1] = '\0';
	expect_error(f, long_line, 1, "state_dir: value longer than 255 bytes");
	expect_error(f, "serial_number = SG0000000000000000\n", 1, "serial_number: value longer");
	expect_error(f, "ir_timeout_ms = abc\n", 1, "ir_timeout_ms: expected an integer 50…10000");
	expect_error(f, "ir_timeout_ms = 12abc\n", 1, "ir_timeout_ms");
	expect_error(f, "ir_timeout_ms = 49\n", 1, "ir_timeout_ms");
	expect_error(f, "rs485_timeout_ms = 99999999999999999999\n", 1, "rs485_timeout_ms");
	expect_error(f, "rs485_timeout_ms =\n", 1, "rs485_timeout_ms");
	expect_error(f, "state_dir = relative/path\n", 1, "state_dir: expected an absolute path");
	expect_error(f, "serial_rs485 = ttyUSB0\n", 1, "serial_rs485");
	expect_error(f, "http_bind = localhost\n", 1, "http_bind");
	expect_error(f, "model_type = SG W1\n", 1, "model_type");
	expect_error(f, "www_dir = /a\nwww_dir = /b\n", 2, "www_dir: set twice");
	memset(big, 'x', sizeof(big));
	memcpy(big, "# ", 2);
	big[sizeof(big) - 1] = '\0';
	expect_error(f, big, 1, "line longer");
}

static void test_missing_file(void **state)
{
	struct fx *f = *state;

	(void)state;
	assert_int_equal(conf_load("/nonexistent/sgd.conf", &f->c, f->err, sizeof(f->err)),
			 -ENOENT);
	assert_non_null(strstr(f->err, "/nonexistent/sgd.conf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shipped_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
