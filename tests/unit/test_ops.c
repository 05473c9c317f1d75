/* The operations core: schema refusals name the member, exactly one
 * completion per call, forgotten front-ends are not called, and the status
 * classes map to the front-ends' forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/ops.h"

#include <errno.h>
#include <string.h>

#include "sg/bus.h"

static const struct ops_arg args[] = {
    {"addr", OPS_T_INT, OPS_REQUIRED, 0, 247, "a Modbus address 0…247"},
    {"val", OPS_T_STR, 0, 1, 6, NULL},
    {"n", OPS_T_INT, 0, 1, 125, NULL},
    {"x", OPS_T_NUM, 0, -10, 10, NULL},
    {"on", OPS_T_BOOL, 0, 0, 0, NULL},
    {"obj", OPS_T_OBJECT, 0, 0, 0, NULL},
    {"list", OPS_T_ARRAY, 0, 1, 2, NULL},
    {NULL},
};
static void no_run(struct ops_call *c, json_t *a)
{
	(void)a;
	ops_fail(c, OPS_INTERNAL, "must not run");
}
static const struct ops_def def = {"try", args, 0, no_run};
static const struct ops_def open_def = {"try_open", args, OPS_ARGS_OPEN, no_run};

/* ops_check of a JSON text: the status, the message in msg. */
static enum ops_status check(const struct ops_def *d, const char *text, char *msg)
{
	json_t *cmd = json_loads(text, JSON_ALLOW_NUL, NULL);
	enum ops_status st;

	assert_non_null(cmd);
	msg[0] = '\0';
	st = ops_check(d, cmd, msg, OPS_MSG_MAX);
	json_decref(cmd);
	return st;
}

static void refused(const char *text, const char *want)
{
	char msg[OPS_MSG_MAX];

	assert_int_equal(check(&def, text, msg), OPS_BAD_REQUEST);
	if (!strstr(msg, want))
		fail_msg("%s: message '%s' lacks '%s'", text, msg, want);
}

static void test_schema_accepts(void **state)
{
	char msg[OPS_MSG_MAX];

	(void)state;
	assert_int_equal(check(&def, "{\"cmd\":\"try\",\"addr\":0}", msg), OPS_OK);
	assert_int_equal(check(&def,
			       "{\"cmd\":\"try\",\"addr\":247,\"val\":\"on\",\"n\":125,\"x\":-2.5,"
			       "\"on\":false,\"obj\":{},\"list\":[1,2]}",
			       msg),
			 OPS_OK);
	/* open schemas leave the other members to the handler */
	assert_int_equal(check(&open_def, "{\"cmd\":\"try_open\",\"addr\":3,\"zzz\":1}", msg),
			 OPS_OK);
}

static void test_schema_refusals(void **state)
{
	(void)state;
	refused("{\"cmd\":\"try\",\"addr\":1,\"bogus\":1}", "unknown member 'bogus'");
	refused("{\"cmd\":\"try\",\"addr\":1,\"bogus\":1}", "try takes addr, val, n");
	refused("{\"cmd\":\"try\"}", "addr: missing (a Modbus address 0…247)");
	refused("{\"cmd\":\"try\",\"addr\":248}", "addr: expected a Modbus address 0…247");
	refused("{\"cmd\":\"try\",\"addr\":-1}", "addr: expected");
	refused("{\"cmd\":\"try\",\"addr\":\"3\"}", "addr: expected");
	refused("{\"cmd\":\"try\",\"addr\":3.0}", "addr: expected");
	refused("{\"cmd\":\"try\",\"addr\":1,\"val\":\"\"}", "val: expected a string of 1…6");
	refused("{\"cmd\":\"try\",\"addr\":1,\"val\":\"toolong\"}", "val: expected");
	refused("{\"cmd\":\"try\",\"addr\":1,\"val\":\"a\\u0000b\"}", "val: expected");
	refused("{\"cmd\":\"try\",\"addr\":1,\"val\":5}", "val: expected");
	refused("{\"cmd\":\"try\",\"addr\":1,\"n\":0}", "n: expected an integer 1…125");
	refused("{\"cmd\":\"try\",\"addr\":1,\"x\":10.5}", "x: expected a number -10…10");
	refused("{\"cmd\":\"try\",\"addr\":1,\"x\":\"1\"}", "x: expected");
	refused("{\"cmd\":\"try\",\"addr\":1,\"on\":1}", "on: expected true or false");
	refused("{\"cmd\":\"try\",\"addr\":1,\"obj\":[]}", "obj: expected an object");
	refused("{\"cmd\":\"try\",\"addr\":1,\"list\":[]}", "list: expected an array of 1…2");
	refused("{\"cmd\":\"try\",\"addr\":1,\"list\":[1,2,3]}", "list: expected");
	refused("{\"cmd\":\"try\",\"addr\":1,\"list\":{}}", "list: expected");
}

struct seen {
	int calls;
	enum ops_status st;
	char msg[OPS_MSG_MAX];
	json_t *res;
};

static void done(enum ops_status st, const char *msg, json_t *res, void *arg)
{
	struct seen *s = arg;

	s->calls++;
	s->st = st;
	snprintf(s->msg, sizeof(s->msg), "%s", msg ? msg : "");
	json_decref(s->res);
	s->res = res;
}

static void run_text(struct ops *o, const char *text, struct seen *s)
{
	json_t *cmd = json_loads(text, JSON_ALLOW_NUL, NULL);

	assert_non_null(cmd);
	ops_run(o, cmd, OPS_FROM_TEST, done, s);
	json_decref(cmd);
}

static void test_run(void **state)
{
	struct conf cf = {.serial_number = "SN1", .model_type = "SG-E1", .hw_version = "D"};
	struct ops_env env = {.conf = &cf};
	struct ops *o;
	struct seen s = {0};

	(void)state;
	assert_int_equal(ops_init(&o, &env), 0);
	run_text(o, "{\"cmd\":\"version\"}", &s);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.st, OPS_OK);
	assert_string_equal(json_string_value(json_object_get(s.res, "serial_number")), "SN1");
	run_text(o, "{\"cmd\":\"version\",\"x\":1}", &s);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.st, OPS_BAD_REQUEST);
	assert_null(s.res);
	assert_non_null(strstr(s.msg, "unknown member 'x' (version takes no arguments)"));
	run_text(o, "{\"cmd\":\"nope\\u0001\"}", &s);
	assert_int_equal(s.st, OPS_BAD_REQUEST);
	assert_non_null(strstr(s.msg, "unknown command 'nope?'"));
	run_text(o, "{\"cmd\":3}", &s);
	assert_non_null(strstr(s.msg, "cmd: missing"));
	run_text(o, "[1]", &s);
	assert_int_equal(s.st, OPS_BAD_REQUEST);
	assert_int_equal(s.calls, 5);
	ops_fini(o);
}

static void test_mappings(void **state)
{
	(void)state;
	assert_int_equal(ops_http_status(OPS_OK), 200);
	assert_int_equal(ops_http_status(OPS_BAD_REQUEST), 400);
	assert_int_equal(ops_http_status(OPS_FORBIDDEN), 403);
	assert_int_equal(ops_http_status(OPS_NOT_FOUND), 404);
	assert_int_equal(ops_http_status(OPS_BUSY), 409);
	assert_int_equal(ops_http_status(OPS_INTERNAL), 500);
	assert_int_equal(ops_http_status(OPS_NOT_IMPLEMENTED), 501);
	assert_int_equal(ops_http_status(OPS_DEVICE_ERROR), 502);
	assert_int_equal(ops_http_status(OPS_UNAVAILABLE), 503);
	assert_int_equal(ops_http_status(OPS_NO_ANSWER), 504);
	assert_int_equal(ops_exit_code(OPS_OK), 0);
	assert_int_equal(ops_exit_code(OPS_BAD_REQUEST), 1);
	assert_int_equal(ops_exit_code(OPS_NO_ANSWER), 1);
	assert_string_equal(ops_status_name(OPS_BUSY), "busy");
	assert_int_equal(ops_status_of_err(-ETIMEDOUT), OPS_NO_ANSWER);
	assert_int_equal(ops_status_of_err(-(BUS_EXCEPTION_BASE + 2)), OPS_DEVICE_ERROR);
	assert_int_equal(ops_status_of_err(-EBUSY), OPS_BUSY);
	assert_int_equal(ops_status_of_err(-ESHUTDOWN), OPS_UNAVAILABLE);
	assert_int_equal(ops_status_of_err(-EINVAL), OPS_BAD_REQUEST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schema_accepts),
	    cmocka_unit_test(test_schema_refusals),
	    cmocka_unit_test(test_run),
	    cmocka_unit_test(test_mappings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
