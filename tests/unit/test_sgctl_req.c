/* sgctl's translation of its command line into the JSON command objects of
 * sgd's operations table (names and members of src/ops/), one per command,
 * and the command lines it refuses before contacting sgd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/sgctl/cmd.c"

#include <stdio.h>
#include <string.h>

/* argv from a space-separated line; the object sgctl would send, compact. */
static char *request(const char *line)
{
	static char buf[1024];
	char *argv[130], *tok, *save = NULL, *text;
	int argc = 0;
	const struct cmd *c;
	json_t *o;

	snprintf(buf, sizeof(buf), "%s", line);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	c = cmd_find(argv[0]);
	assert_non_null(c);
	if (cmd_check(c, argc, argv) < 0)
		return NULL;
	o = cmd_request(c, argc, argv);
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return text;
}

static void sends(const char *line, const char *want)
{
	char *got = request(line);

	if (!got || strcmp(got, want))
		fail_msg("'%s': sent %s, want %s", line, got ? got : "nothing", want);
	free(got);
}

static void refused(const char *line)
{
	char *got = request(line);

	if (got)
		fail_msg("'%s' was sent as %s", line, got);
}

static void test_gateway(void **state)
{
	(void)state;
	sends("status", "{\"cmd\":\"status\"}");
	sends("devices", "{\"cmd\":\"devices\"}");
	sends("events", "{\"cmd\":\"events\"}");
	sends("events 20", "{\"cmd\":\"events\",\"n\":20}");
	sends("factory-reset --yes", "{\"cmd\":\"factory_reset\",\"confirm\":true}");
	sends("factory-reset", "{\"cmd\":\"factory_reset\",\"confirm\":true}"); /* global --yes */
	sends("settings", "{\"cmd\":\"get_settings\"}");
	sends("settings location", "{\"cmd\":\"get_settings\"}");
	sends("set location=Roof http_port=8080", "{\"cmd\":\"set_settings\",\"settings\":{\"http_"
						  "port\":\"8080\",\"location\":\"Roof\"}}");
	sends("set description=a=b",
	      "{\"cmd\":\"set_settings\",\"settings\":{\"description\":\"a=b\"}}");
	refused("status now");
	refused("events 0");
	refused("events x");
	refused("set novalue");
	refused("set =x");
	refused("factory-reset now");
}

static void test_devices(void **state)
{
	(void)state;
	sends("measurements 0", "{\"cmd\":\"measurements\",\"index\":0}");
	sends("counters 0x10", "{\"cmd\":\"counters\",\"index\":16}");
	sends("bicom 3 toggle", "{\"addr\":3,\"cmd\":\"bicom\",\"val\":\"toggle\"}");
	sends("scan", "{\"cmd\":\"detect_485_devices\"}");
	sends("scan --baud 9600 --parity even --stop-bits 2 --from 1 --to 20 --add-all",
	      "{\"add_all\":true,\"baud_rate\":9600,\"cmd\":\"detect_485_devices\",\"from\":1,"
	      "\"parity\":\"even\",\"stop_bits\":2,\"to\":20}");
	sends("scan --baud fast", "{\"baud_rate\":\"fast\",\"cmd\":\"detect_485_devices\"}");
	sends("set-parameters 1 WM3M4C address=5 baud=3 parity=2 stop_bits=1",
	      "{\"address\":1,\"baud_rate\":3,\"cmd\":\"set_parameters\",\"model\":\"WM3M4C\","
	      "\"new_address\":5,\"parity\":2,\"stop_bits\":1}");
	sends("set-parameters 1 WM3M4C parity=7",
	      "{\"address\":1,\"cmd\":\"set_parameters\",\"model\":\"WM3M4C\",\"parity\":7}");
	sends("modbus read 1 30002",
	      "{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":30002}");
	sends("modbus read 1 30002 4",
	      "{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"no_regs\":4,\"reg\":30002}");
	sends(
	    "modbus write 1 40102 0x4142",
	    "{\"cmd\":\"modbus_write_single\",\"modbus_address\":1,\"reg\":40102,\"value\":16706}");
	sends(
	    "modbus write 1 40102 1 2",
	    "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40102,\"words\":[1,2]}");
	refused("measurements");
	refused("measurements -1");
	refused("bicom 3 explode");
	refused("scan --baud");
	refused("scan --parity mark");
	refused("scan --from 0");
	refused("set-parameters 1 WM3M4C speed=3");
	refused("set-parameters 1 WM3M4C parity=x");
	refused("set-parameters 0 WM3M4C parity=1");
	refused("modbus read 1 30002 126");
	refused("modbus write 1 40102 65536");
	refused("modbus erase 1 40102");
}

static void test_history(void **state)
{
	(void)state;
	sends("load-profile 0", "{\"cmd\":\"load_profile\",\"index\":0}");
	sends("load-profile 4 --from today --to 2026-06-11 --csv",
	      "{\"cmd\":\"load_profile\",\"csv\":true,\"from\":\"today\",\"index\":4,"
	      "\"to\":\"2026-06-11\"}");
	sends("calculate 1 --from 2026-06-11",
	      "{\"cmd\":\"calculate\",\"equation\":1,\"from\":\"2026-06-11\"}");
	sends("recorder list", "{\"cmd\":\"recorder_list\"}");
	sends("recorder show 2 --view monthly --csv",
	      "{\"cmd\":\"recorder_show\",\"csv\":true,\"recorder\":2,\"view\":\"monthly\"}");
	sends("recorder clear 8", "{\"cmd\":\"recorder_clear\",\"recorder\":8}");
	sends("tariffs show", "{\"cmd\":\"get_tariffs\"}");
	sends("tariffs set f.json", "{\"cmd\":\"set_tariffs\"}"); /* sgctl adds the file's text */
	refused("load-profile 17");
	refused("load-profile 0 --view daily");
	refused("load-profile 0 --from");
	refused("calculate 5");
	refused("recorder show 9");
	refused("recorder clear 1 --csv");
	refused("recorder drop 1");
	refused("tariffs edit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gateway),
	    cmocka_unit_test(test_devices),
	    cmocka_unit_test(test_history),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
