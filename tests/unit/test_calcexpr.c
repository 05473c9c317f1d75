/* Calculate equations: accepted forms give the right terms, every malformed
 * one is refused with the position named; settings refuse a bad calcN_expr
 * and keep the old value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/calcexpr.h"
#include "sg/settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_good(void **state)
{
	static const struct {
		const char *text;
		int n;
		struct calc_term t[3];
	} rows[] = {
	    {"", 0, {{0, 0}}},
	    {"   ", 0, {{0, 0}}},
	    {"0", 1, {{1, 0}}},
	    {"16", 1, {{1, 16}}},
	    {"-3", 1, {{-1, 3}}},
	    {"1-0", 2, {{1, 1}, {-1, 0}}},
	    {" 0 + 2 + 3 ", 3, {{1, 0}, {1, 2}, {1, 3}}},
	    {"+4-12", 2, {{1, 4}, {-1, 12}}},
	};
	struct calc_term t[CALC_TERMS_MAX];
	char err[96];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int n = calc_parse(rows[i].text, t, err, sizeof(err));

		if (n != rows[i].n)
			fail_msg("'%s': %d terms, want %d (%s)", rows[i].text, n, rows[i].n, err);
		for (int k = 0; k < n; k++) {
			assert_int_equal(t[k].sign, rows[i].t[k].sign);
			assert_int_equal(t[k].index, rows[i].t[k].index);
		}
	}
	/* 17 terms fit (every device), 18 do not */
	assert_int_equal(
	    calc_parse("0+1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16", t, err, sizeof(err)), 17);
	assert_int_equal(
	    calc_parse("0+1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16+0", t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most"));
}

static void test_bad(void **state)
{
	static const char *const bad[] = {"17",	 "1+",	 "+",	"-",  "1 2", "1++2", "a",
					  "1-x", "0017", "1*2", "99", "1,2", "1 -",  "+-1"};
	struct calc_term t[CALC_TERMS_MAX];
	char err[96];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (calc_parse(bad[i], t, err, sizeof(err)) >= 0)
			fail_msg("'%s' accepted", bad[i]);
		if (!strstr(err, "at '") && !strstr(err, "at most"))
			fail_msg("'%s': message '%s' does not say where", bad[i], err);
	}
}

static void test_settings_refuse(void **state)
{
	char dir[] = "/tmp/sgd-calc-XXXXXX", err[256];
	struct settings *s;
	char *kv_ok[] = {"calc1_expr=1-0", "calc1_name=PV minus house"};
	char *kv_bad[] = {"calc1_expr=1-x"};

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(settings_init(&s, dir, "SG000001", "SG-E1"), 0);
	assert_int_equal(settings_set_kv(s, kv_ok, 2, err, sizeof(err)), 0);
	assert_string_equal(settings_str(s, "calc1_expr"), "1-0");
	assert_true(settings_set_kv(s, kv_bad, 1, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "calc1_expr"));
	assert_string_equal(settings_str(s, "calc1_expr"), "1-0");
	settings_fini(s);
	{
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_settings_refuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
