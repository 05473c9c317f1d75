/* Unit tests of the logger: per-module suppression (log_disable1/2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg/log.h"

/* What lines of fn(void) reach stderr. */
static char *captured(void (*fn)(void))
{
	static char buf[4096];
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

static void lines(void)
{
	log_info("http: listening on 0.0.0.0 port 80");
	log_notice("http: failed authentication from 10.0.0.1");
	log_warn("http: cannot listen");
	log_info("mqtt1: connected to broker:1883");
	log_err("mqtt1: out of memory");
	log_info("RS485 scan 1…247 at 115200 baud");
	log_info("discovery: listening on 0.0.0.0 port 33333");
	log_notice("SIGHUP: reloading settings");
}

static void test_all_enabled(void **state)
{
	char *out;

	(void)state;
	log_set_disabled(0, 0);
	out = captured(lines);
	assert_non_null(strstr(out, "<6>http: listening"));
	assert_non_null(strstr(out, "<5>http: failed authentication"));
	assert_non_null(strstr(out, "<6>mqtt1: connected"));
	assert_non_null(strstr(out, "<6>RS485 scan"));
	assert_non_null(strstr(out, "<6>discovery: listening"));
}

static void test_modules_disabled(void **state)
{
	char *out;

	(void)state;
	/* log_disable1 bit 8 http_server; log_disable2 bit 3 RS485_APP */
	log_set_disabled(1u << 8, 1u << 3);
	out = captured(lines);
	assert_null(strstr(out, "http: listening"));
	assert_null(strstr(out, "http: failed authentication"));
	assert_non_null(strstr(out, "<4>http: cannot listen")); /* warnings stay */
	assert_null(strstr(out, "RS485 scan"));
	assert_non_null(strstr(out, "<6>mqtt1: connected")); /* bit 14 clear */
	assert_non_null(strstr(out, "<6>discovery: listening"));
	/* the defaults, 65535 both: only warnings and errors of the modules,
	 * lines of no module (reload, start, stop) always */
	log_set_disabled(65535, 65535);
	out = captured(lines);
	assert_string_equal(out, "<4>http: cannot listen\n<3>mqtt1: out of memory\n"
				 "<5>SIGHUP: reloading settings\n");
	log_set_disabled(0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_enabled),
	    cmocka_unit_test(test_modules_disabled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
