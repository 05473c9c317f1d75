/* sgctl's human formatters. src/sgctl is not part of libsg.a, so the formatter
 * source is compiled into this test directly; it needs only jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/sgctl/fmt.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Render data for the command line cmd ("counters 0") and return the text. */
static char *render(const char *cmd, const char *json)
{
	char line[128], *argv[8], *save = NULL, *out = NULL;
	json_t *data = json_loads(json, 0, NULL);
	size_t len = 0;
	int argc = 0;
	FILE *f;

	assert_non_null(data);
	snprintf(line, sizeof(line), "%s", cmd);
	for (char *t = strtok_r(line, " ", &save); t && argc < 8; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	f = open_memstream(&out, &len);
	assert_non_null(f);
	fmt_reply(f, argc, argv, data);
	fclose(f);
	json_decref(data);
	return out;
}

static void expect_contains(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("expected \"%s\" in:\n%s", want, text);
}

static void test_scaled(void **state)
{
	char v[32], u[16];

	(void)state;
	fmt_scaled(12345.6, "Wh", v, sizeof(v), u, sizeof(u));
	assert_string_equal(v, "12.3456");
	assert_string_equal(u, "kWh");
	fmt_scaled(98765432.1, "varh", v, sizeof(v), u, sizeof(u));
	assert_string_equal(v, "98.7654321");
	assert_string_equal(u, "Mvarh");
	fmt_scaled(999, "Wh", v, sizeof(v), u, sizeof(u));
	assert_string_equal(v, "999");
	assert_string_equal(u, "Wh");
	/* Hours are not scaled to "kh". */
	fmt_scaled(12345, "h", v, sizeof(v), u, sizeof(u));
	assert_string_equal(v, "12345");
	assert_string_equal(u, "h");
}

static void test_counters(void **state)
{
	char *s = render("counters 0", "{\"index\":0,\"counters\":{\"non_resettable\":[{\"name\":"
				       "\"Active energy\",\"value\":12345.6,\"unit\":\"Wh\","
				       "\"direction\":\"import\",\"tariffs\":null,\"phase\":null},"
				       "{\"name\":\"T\",\"value\":1,\"unit\":\"Wh\",\"direction\":"
				       "\"export\",\"tariffs\":[1,2],\"phase\":2}],\"resettable\":"
				       "[{\"name\":\"x\"}]}}");

	(void)state;
	expect_contains(s, "Non-resettable:\n");
	expect_contains(s, "Active energy  12.3456  kWh  import\n");
	expect_contains(s, "T                    1  Wh   export  L2  tariffs 1 2\n");
	expect_contains(s, "Resettable:\n  x  -    -\n");
	free(s);
}

static void test_measurements_table(void **state)
{
	char *s = render("measurements 0",
			 "{\"index\":0,\"interface\":\"left_ir\",\"model\":\"EM340\",\"status\":"
			 "\"ok\",\"age_ms\":850,\"measurements\":{\"Phases\":[{\"U\":{\"value\":"
			 "230.1,\"unit\":\"V\"}},{\"U\":{\"value\":231,\"unit\":\"V\"}},{\"U\":{"
			 "\"value\":229.80000305175781,\"unit\":\"V\"}}],\"Total\":{\"P\":{"
			 "\"value\":403.1,\"unit\":\"W\"}},\"Frequency\":{\"value\":50.01,"
			 "\"unit\":\"Hz\"}}}");

	(void)state;
	expect_contains(s, "Device 0: EM340 on left_ir, status ok, age 850 ms\n");
	expect_contains(s, "L1   L2     L3\n");
	/* float32 noise is cut to 7 significant digits */
	expect_contains(s, "U  230.1  231  229.8  V\n");
	expect_contains(s, "Total:\n  P  403.1  W\n");
	expect_contains(s, "Frequency: 50.01 Hz\n");
	free(s);
}

static void test_missing_members(void **state)
{
	char *s = render("status", "{\"buses\":[{\"name\":\"rs485\"}]}");

	(void)state;
	expect_contains(s, "Model:               -\n");
	expect_contains(s, "rs485  -       -");
	free(s);
	s = render("measurements 3", "{}");
	expect_contains(s, "Device -: - on -, status -, age - ms\n");
	free(s);
}

static void test_settings_and_set(void **state)
{
	char *s = render("settings", "{\"settings\":{\"b\":\"x y\",\"a\":1,\"c\":true}}");

	(void)state;
	assert_string_equal(s, "a = 1\nb = x y\nc = true\n");
	free(s);
	s = render("settings b", "{\"b\":\"x y\"}");
	assert_string_equal(s, "x y\n");
	free(s);
	s = render("set a=1", "{\"changed\":[\"a\",\"b\"]}");
	assert_string_equal(s, "changed: a b\n");
	free(s);
}

static void test_modbus_read_and_fallback(void **state)
{
	char *s = render("modbus read 1 4096 2", "{\"modbus_address\":1,\"register\":4096,"
						 "\"values\":[\"0x0002\",\"0xffff\"]}");

	(void)state;
	assert_string_equal(s, "4096: 0x0002 (2)\n4097: 0xFFFF (65535)\n");
	free(s);
	s = render("events", "[{\"ts\":1}]");
	assert_string_equal(s, "[\n  {\n    \"ts\": 1\n  }\n]\n");
	free(s);
	s = render("bicom 2 on", "{\"bicom\":2,\"state\":\"on\"}");
	assert_string_equal(s, "Bicom 2: on\n");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scaled),
	    cmocka_unit_test(test_counters),
	    cmocka_unit_test(test_measurements_table),
	    cmocka_unit_test(test_missing_members),
	    cmocka_unit_test(test_settings_and_set),
	    cmocka_unit_test(test_modbus_read_and_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
