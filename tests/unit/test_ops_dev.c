/* The device and settings commands of the operations table (src/ops/ops_dev.c,
 * ops_settings.c) without a bus: the poller is a fake that records which
 * operation was started, and the test completes it. Every command's schema
 * refusals, and the rules each handler holds once for every front-end:
 * the Right IR Bicom's relay mode, the scan options and "add all", raw
 * Modbus limits (dev/devop.c's), readable devices only, set-parameters'
 * model checks, settings all or nothing, factory reset only confirmed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/api/rest_int.h"
#include "sg/desc.h"
#include "sg/files.h"
#include "sg/hist.h"
#include "sg/ops.h"
#include "sg/settings.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_hist_ops.h"
#include "fake_poll.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fakes: history ---- */

int hist_active_tariff(struct hist *h)
{
	(void)h;
	return -1;
}

/* ---- fixture ---- */

static char dir[64];
static struct conf cf;
static struct settings *st;
static struct ops *ops;
static char errbuf[256];

/* Left IR IE38 at 33, Right IR Bicom, RS485 1 WM3M4C at 1, RS485 2 MC at 2
 * not responding, RS485 3 Bicom at 3. */
static void devices(void)
{
	for (int s = 0; s < DEV_SLOTS; s++)
		dev_reset(&devs[s], s);
	dev_setup(DEV_SLOT_LEFT_IR, CLASS_METER, "IE38", "IE38MD", "12345678", 33, DEV_OK);
	dev_setup(DEV_SLOT_RIGHT_IR, CLASS_BICOM, "Bicom", "BICOM", "B0000001", 33, DEV_OK);
	dev_setup(DEV_SLOT_RS485(1), CLASS_METER, "WM3M4", "WM3M4C", "MC024305", 1, DEV_OK);
	dev_setup(DEV_SLOT_RS485(2), CLASS_METER, "MC", "MC750", "MC000002", 2, DEV_NOT_RESPONDING);
	snprintf(devs[DEV_SLOT_RS485(2)].last_error, sizeof(devs[0].last_error), "timeout");
	dev_setup(DEV_SLOT_RS485(3), CLASS_BICOM, "Bicom", "BICOM", "B0000003", 3, DEV_OK);
	devs[0].meas[1] = 230.1;
	devs[0].meas_ok[1] = true;
	devs[0].meas_ms = 1700000000000;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	char err[256] = "";

	(void)state;
	setenv("TZ", "UTC", 1);
	if (desc_load_dir("etc/devices", &set, err, sizeof(err)) < 0) {
		printf("desc_load_dir: %s\n", err);
		return -1;
	}
	snprintf(dir, sizeof(dir), "/tmp/test_ops_dev.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cf.serial_number, sizeof(cf.serial_number), "IS001093");
	snprintf(cf.state_dir, sizeof(cf.state_dir), "%s", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	desc_set_free(&set);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static int each_setup(void **state)
{
	char path[128];
	struct ops_env env = {.conf = &cf, .descs = &set};

	(void)state;
	snprintf(path, sizeof(path), "%s/settings.json", dir);
	unlink(path);
	if (settings_init(&st, dir, "IS001093", "SG-E1") < 0)
		return -1;
	env.settings = st;
	devices();
	memset(&pend, 0, sizeof(pend));
	poll_ret = 0;
	scanning = false;
	return ops_init(&ops, &env);
}

static int each_teardown(void **state)
{
	(void)state;
	ops_fini(ops);
	settings_fini(st);
	return 0;
}

/* ---- helpers ---- */

struct seen {
	int calls;
	enum ops_status st;
	char msg[OPS_MSG_MAX];
	json_t *res;
} seen;

static void done(enum ops_status s, const char *msg, json_t *res, void *arg)
{
	(void)arg;
	seen.calls++;
	seen.st = s;
	snprintf(seen.msg, sizeof(seen.msg), "%s", msg ? msg : "");
	json_decref(seen.res);
	seen.res = res;
}

/* Run a command text; seen holds the outcome once it finished. */
static void run(const char *text)
{
	json_t *cmd = json_loads(text, 0, NULL);

	if (!cmd)
		fail_msg("bad test JSON: %s", text);
	json_decref(seen.res);
	memset(&seen, 0, sizeof(seen));
	ops_run(ops, cmd, OPS_FROM_TEST, done, NULL);
	json_decref(cmd);
}

static void expect(const char *text, enum ops_status want, const char *contains)
{
	run(text);
	if (seen.calls != 1 || seen.st != want || !strstr(seen.msg, contains))
		fail_msg("%s: calls %d, status %s, message '%s'; wanted %s with '%s'", text,
			 seen.calls, ops_status_name(seen.st), seen.msg, ops_status_name(want),
			 contains);
	assert_int_equal(pend.kind, OP_NONE); /* refused before the bus */
}

static void refused(const char *text, const char *contains)
{
	expect(text, OPS_BAD_REQUEST, contains);
}

static void started(const char *text, enum op_kind kind)
{
	run(text);
	if (seen.calls || pend.kind != kind)
		fail_msg("%s: calls %d (%s), operation %d; wanted operation %d", text, seen.calls,
			 seen.msg, pend.kind, kind);
}

/* ---- schemas ---- */

/* Unknown member named, missing, mistyped and out of range, per command. */
static void test_schema_refusals(void **state)
{
	static const struct {
		const char *cmd, *want;
	} bad[] = {
	    {"{\"cmd\":\"devices\",\"x\":1}", "unknown member 'x' (devices takes no arguments)"},
	    {"{\"cmd\":\"measurements\",\"adr\":1}",
	     "unknown member 'adr' (measurements takes addr, index)"},
	    {"{\"cmd\":\"measurements\",\"addr\":\"1\"}", "addr: expected an integer 0…247"},
	    {"{\"cmd\":\"measurements\",\"addr\":248}", "addr: expected an integer 0…247"},
	    {"{\"cmd\":\"counters\",\"index\":17}", "index: expected an integer 0…16"},
	    {"{\"cmd\":\"counters\",\"index\":1.5}", "index: expected"},
	    {"{\"cmd\":\"bicom\",\"val\":\"on\"}", "addr: missing"},
	    {"{\"cmd\":\"bicom\",\"addr\":3}", "val: missing"},
	    {"{\"cmd\":\"bicom\",\"addr\":-1,\"val\":\"on\"}", "addr: expected an integer 0…247"},
	    {"{\"cmd\":\"bicom\",\"addr\":3,\"val\":1}", "val: expected \"on\""},
	    {"{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"on\",\"x\":1}",
	     "unknown member 'x' (bicom takes addr, val)"},
	    {"{\"cmd\":\"detect_485_devices\",\"stop_bits\":3}",
	     "stop_bits: expected an integer 1…2"},
	    {"{\"cmd\":\"detect_485_devices\",\"from\":0}", "from: expected an integer 1…247"},
	    {"{\"cmd\":\"detect_485_devices\",\"to\":300}", "to: expected an integer 1…247"},
	    {"{\"cmd\":\"detect_485_devices\",\"parity\":1}", "parity: expected \"none\""},
	    {"{\"cmd\":\"detect_485_devices\",\"add_all\":1}", "add_all: expected true or false"},
	    {"{\"cmd\":\"detect_485_devices\",\"baud\":1}",
	     "unknown member 'baud' (detect_485_devices takes baud_rate, stop_bits, parity, from, "
	     "to, add_all)"},
	    {"{\"cmd\":\"set_parameters\",\"model\":\"WM3M4C\"}", "address: missing"},
	    {"{\"cmd\":\"set_parameters\",\"address\":1}", "model: missing"},
	    {"{\"cmd\":\"set_parameters\",\"address\":0,\"model\":\"WM3M4C\"}",
	     "address: expected"},
	    {"{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"WM3M4C\",\"parity\":3}",
	     "parity: expected an integer 0…2"},
	    {"{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"WM3M4C\",\"baud_rate\":"
	     "\"fast\"}",
	     "baud_rate: expected an integer 0…7"},
	    {"{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"WM3M4C\",\"colour\":1}",
	     "unknown member 'colour'"},
	    {"{\"cmd\":\"modbus_read\",\"modbus_address\":1}", "reg: missing"},
	    {"{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":\"40001\"}",
	     "reg: expected an Iskra register"},
	    {"{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":40001,\"no_regs\":2001}",
	     "no_regs: expected an integer 1…2000"},
	    {"{\"cmd\":\"modbus_read\",\"serial_number\":5,\"reg\":40001}",
	     "serial_number: expected"},
	    {"{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":40001,\"value\":1}",
	     "unknown member 'value'"},
	    {"{\"cmd\":\"modbus_write_single\",\"modbus_address\":1,\"reg\":40001}",
	     "value: missing"},
	    {"{\"cmd\":\"modbus_write_single\",\"modbus_address\":1,\"reg\":40001,\"value\":65536}",
	     "value: expected an integer 0…65535"},
	    {"{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40001,\"values\":[1]}",
	     "values: expected an even number"},
	    {"{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40001,\"values\":"
	     "\"AB\"}",
	     "values: expected"},
	    {"{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":1,\"words\":[]}",
	     "words: expected 1…1968"},
	    {"{\"cmd\":\"get_settings\",\"key\":\"x\"}", "get_settings takes no arguments"},
	    {"{\"cmd\":\"set_settings\",\"settings\":[1]}", "settings: expected an object"},
	    {"{\"cmd\":\"factory_reset\"}", "confirm: missing"},
	    {"{\"cmd\":\"factory_reset\",\"confirm\":\"yes\"}", "confirm: expected"},
	    {"{\"cmd\":\"reboot\",\"now\":true}", "reboot takes no arguments"},
	    {"{\"cmd\":\"write_cert\",\"name\":\"x.pem\"}", "cert: missing"},
	    {"{\"cmd\":\"write_cert\",\"name\":5,\"cert\":\"x\"}",
	     "name: expected a plain file name"},
	    {"{\"cmd\":\"write_cert\",\"name\":\"x.pem\",\"cert\":\"\"}",
	     "cert: expected PEM text of at most 16384"},
	    {"{\"cmd\":\"upgrade_app\",\"uri\":\"https://x/y\"}", "cert: missing"},
	    {"{\"cmd\":\"upgrade_app\",\"uri\":1,\"cert\":\"a.pem\"}",
	     "uri: expected an https:// URI"},
	};

	(void)state;
	for (size_t i = 0; i < N(bad); i++)
		refused(bad[i].cmd, bad[i].want);
}

/* ---- devices and readings ---- */

static void test_readings(void **state)
{
	(void)state;
	run("{\"cmd\":\"devices\"}");
	assert_int_equal(seen.st, OPS_OK);
	assert_int_equal(json_array_size(json_object_get(seen.res, "devices")), DEV_SLOTS);
	run("{\"cmd\":\"measurements\",\"addr\":0}");
	assert_int_equal(seen.st, OPS_OK);
	assert_non_null(json_object_get(seen.res, "measurements"));
	run("{\"cmd\":\"counters\",\"addr\":33}"); /* the Left IR device by its own address */
	assert_int_equal(seen.st, OPS_OK);
	assert_non_null(json_object_get(seen.res, "counters"));
	run("{\"cmd\":\"measurements\",\"addr\":1}");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(seen.res, "header"), "index")), 1);
	/* never the values of a device that does not answer */
	expect("{\"cmd\":\"measurements\",\"index\":2}", OPS_UNAVAILABLE,
	       "RS485 2: device not responding (timeout)");
	expect("{\"cmd\":\"measurements\",\"addr\":2}", OPS_UNAVAILABLE, "not responding");
	expect("{\"cmd\":\"counters\",\"index\":9}", OPS_NOT_FOUND,
	       "RS485 9: no device configured");
	expect("{\"cmd\":\"counters\",\"addr\":77}", OPS_NOT_FOUND,
	       "no device configured at Modbus address 77");
	refused("{\"cmd\":\"counters\"}", "give either addr");
	refused("{\"cmd\":\"counters\",\"addr\":1,\"index\":1}", "give either addr");
}

/* ---- Bicom ---- */

static void test_bicom(void **state)
{
	(void)state;
	started("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"on\"}", OP_BICOM);
	assert_int_equal(pend.slot, DEV_SLOT_RS485(3));
	assert_int_equal(pend.op, BICOM_ON);
	complete(0, NULL, json_pack("{s:i, s:s}", "bicom", 3, "state", "on"));
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.st, OPS_OK);
	assert_string_equal(json_string_value(json_object_get(seen.res, "state")), "on");
	started("{\"cmd\":\"bicom\",\"addr\":0,\"val\":\"status\"}", OP_BICOM);
	assert_int_equal(pend.slot, DEV_SLOT_RIGHT_IR);
	assert_int_equal(pend.op, BICOM_STATE);
	complete(-ETIMEDOUT, "timeout", NULL);
	assert_int_equal(seen.st, OPS_NO_ANSWER);
	assert_string_equal(seen.msg, "Bicom 0: device did not answer: timeout");
	started("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"toggle\"}", OP_BICOM);
	assert_int_equal(pend.op, BICOM_TOGGLE);
	complete(-(BUS_EXCEPTION_BASE + 2), NULL, NULL);
	assert_int_equal(seen.st, OPS_DEVICE_ERROR);
	started("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"off\"}", OP_BICOM);
	assert_int_equal(pend.op, BICOM_OFF);
	complete(-ECANCELED, NULL, NULL);
	assert_int_equal(seen.st, OPS_UNAVAILABLE);
	expect("{\"cmd\":\"bicom\",\"addr\":5,\"val\":\"on\"}", OPS_NOT_FOUND,
	       "no Bicom configured at address 5");
	refused("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"ON!\"}", "val: expected \"on\"");
	poll_ret = -EBUSY;
	expect("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"on\"}", OPS_BUSY,
	       "Bicom 3: the bus queue is full");
	scanning = true;
	expect("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"on\"}", OPS_BUSY,
	       "an RS485 scan is in progress");
	poll_ret = -ENODEV;
	expect("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"on\"}", OPS_UNAVAILABLE, "no serial port");
}

/* The Right IR Bicom in relay mode 2 follows the IR counter: whoever asks
 * (any origin) may read it, not switch it; REST answers 409 as before. */
static void test_bicom_right_ir_rule(void **state)
{
	static const char *const sw[] = {"on", "off", "toggle"};
	char cmd[96];

	(void)state;
	started("{\"cmd\":\"bicom\",\"addr\":0,\"val\":\"on\"}", OP_BICOM);
	complete(0, NULL, NULL);
	assert_int_equal(
	    settings_set_kv(st, (char *const[]){"ir_ext_rel_mode=2"}, 1, errbuf, sizeof(errbuf)),
	    0);
	for (size_t i = 0; i < N(sw); i++) {
		snprintf(cmd, sizeof(cmd), "{\"cmd\":\"bicom\",\"addr\":0,\"val\":\"%s\"}", sw[i]);
		expect(cmd, OPS_FORBIDDEN, "Right IR Bicom is controlled by the IR counter");
	}
	started("{\"cmd\":\"bicom\",\"addr\":0,\"val\":\"state\"}", OP_BICOM);
	complete(0, NULL, NULL);
	/* RS485 Bicoms are not concerned */
	started("{\"cmd\":\"bicom\",\"addr\":3,\"val\":\"on\"}", OP_BICOM);
	complete(0, NULL, NULL);
	assert_int_equal(
	    settings_set_kv(st, (char *const[]){"ir_ext_rel_mode=1"}, 1, errbuf, sizeof(errbuf)),
	    0);
	started("{\"cmd\":\"bicom\",\"addr\":0,\"val\":\"off\"}", OP_BICOM);
	complete(0, NULL, NULL);
	/* REST keeps the 409 it gave before (403 is "log in" to Home Assistant) */
	assert_int_equal(rest_ops_status(OPS_FORBIDDEN), 409);
	assert_int_equal(rest_ops_status(OPS_BUSY), 409);
	assert_int_equal(rest_ops_status(OPS_NOT_FOUND), 404);
}

/* ---- RS485 scan ---- */

static void test_scan(void **state)
{
	(void)state;
	started("{\"cmd\":\"detect_485_devices\",\"baud_rate\":19200,\"stop_bits\":2}", OP_SCAN);
	assert_int_equal(pend.baud, 19200);
	assert_int_equal(pend.stop, 2);
	assert_int_equal(pend.parity, 0);
	assert_int_equal(pend.first, 1);
	assert_int_equal(pend.last, 247);
	complete(0, NULL, json_pack("{s:[]}", "devices"));
	assert_int_equal(seen.st, OPS_OK);
	assert_null(json_object_get(seen.res, "added"));
	started(
	    "{\"cmd\":\"detect_485_devices\",\"baud_rate\":\"5\",\"parity\":\"even\",\"from\":3,"
	    "\"to\":9}",
	    OP_SCAN);
	assert_int_equal(pend.baud, 38400);
	assert_int_equal(pend.parity, 'E');
	assert_int_equal(pend.first, 3);
	assert_int_equal(pend.last, 9);
	complete(-ECANCELED, "cancelled", NULL);
	assert_int_equal(seen.st, OPS_UNAVAILABLE);
	assert_string_equal(seen.msg, "RS485 scan: cancelled");
	started("{\"cmd\":\"detect_485_devices\",\"parity\":\"odd\",\"from\":7,\"to\":7}", OP_SCAN);
	assert_int_equal(pend.parity, 'O');
	complete(0, NULL, json_pack("{s:[]}", "devices"));
	started("{\"cmd\":\"detect_485_devices\",\"parity\":\"none\"}", OP_SCAN);
	assert_int_equal(pend.parity, 'N');
	complete(0, NULL, json_pack("{s:[]}", "devices"));
	refused("{\"cmd\":\"detect_485_devices\",\"baud_rate\":12345}",
		"baud_rate: expected a rate");
	refused("{\"cmd\":\"detect_485_devices\",\"baud_rate\":\"fast\"}", "baud_rate: expected");
	refused("{\"cmd\":\"detect_485_devices\",\"baud_rate\":[1]}", "baud_rate: expected");
	refused("{\"cmd\":\"detect_485_devices\",\"parity\":\"mark\"}", "parity: expected");
	refused("{\"cmd\":\"detect_485_devices\",\"from\":9,\"to\":3}", "from 9 is after to 3");
	refused("{\"cmd\":\"detect_485_devices\",\"from\":4,\"to\":3}", "from 4 is after to 3");
	started("{\"cmd\":\"detect_485_devices\",\"from\":9,\"to\":9}", OP_SCAN);
	complete(0, NULL, json_pack("{s:[]}", "devices"));
	scanning = true;
	expect("{\"cmd\":\"detect_485_devices\"}", OPS_BUSY, "a scan is already running");
	scanning = false;
	poll_ret = -ENODEV;
	expect("{\"cmd\":\"detect_485_devices\"}", OPS_UNAVAILABLE, "no RS485 port");
}

/* Add all: new devices go to free RS485 slots, the line settings follow
 * the scan; devices already configured are left alone. */
static void test_scan_add_all(void **state)
{
	json_t *added;

	(void)state;
	started("{\"cmd\":\"detect_485_devices\",\"add_all\":true}", OP_SCAN);
	complete(0, NULL,
		 json_pack("{s:[{s:i, s:s, s:s, s:i, s:s, s:i}, {s:i, s:s, s:s, s:i, s:s, s:i}]}",
			   "devices", "address", 1, "model", "WM3M4C", "serial", "MC024305", "baud",
			   19200, "parity", "even", "stop_bits", 1, "address", 7, "model", "MC750",
			   "serial", "MC000007", "baud", 19200, "parity", "even", "stop_bits", 1));
	assert_int_equal(seen.st, OPS_OK);
	added = json_object_get(seen.res, "added");
	assert_int_equal(json_array_size(added), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(added, 0), "address")),
			 7);
	/* slots 1…3 are in use: the first free one is 4 */
	assert_int_equal(settings_int(st, "rs485_addr_4"), 7);
	assert_int_not_equal(settings_int(st, "rs485_type_4"), 0);
	assert_string_equal(settings_str(st, "rs485_desc_4"), "MC750 MC000007");
	assert_int_equal(settings_int(st, "rs485_parity"), 2);
	assert_int_equal(settings_int(st, "rs485_type_5"), 0); /* one new device, one slot */
	/* two new devices in one scan take two slots (the poller has applied slot 4) */
	dev_setup(DEV_SLOT_RS485(4), CLASS_METER, "MC", "MC750", "MC000007", 7, DEV_IDENTIFYING);
	started("{\"cmd\":\"detect_485_devices\",\"add_all\":true}", OP_SCAN);
	complete(0, NULL,
		 json_pack("{s:[{s:i, s:s, s:s}, {s:i, s:s, s:s}]}", "devices", "address", 8,
			   "model", "MC750", "serial", "MC000008", "address", 9, "model", "MC750",
			   "serial", "MC000009"));
	assert_int_equal(json_array_size(json_object_get(seen.res, "added")), 2);
	assert_int_equal(settings_int(st, "rs485_addr_5"), 8);
	assert_int_equal(settings_int(st, "rs485_addr_6"), 9);
	/* without add_all nothing changes */
	started("{\"cmd\":\"detect_485_devices\",\"add_all\":false}", OP_SCAN);
	complete(0, NULL,
		 json_pack("{s:[{s:i, s:s, s:s}]}", "devices", "address", 10, "model", "MC750",
			   "serial", "MC000010"));
	assert_null(json_object_get(seen.res, "added"));
	assert_int_equal(settings_int(st, "rs485_type_7"), 0);
}

/* ---- set-parameters ---- */

static void test_set_parameters(void **state)
{
	(void)state;
	started("{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"WM3M4C\",\"parity\":2}",
		OP_SETPARAM);
	assert_int_equal(pend.addr, 1);
	assert_string_equal(pend.model, "WM3M4C");
	assert_int_equal(pend.new_addr, -1);
	assert_int_equal(pend.baud, -1);
	assert_int_equal(pend.parity_code, 2);
	assert_int_equal(pend.stop_code, -1);
	complete(0, NULL, NULL);
	assert_int_equal(seen.st, OPS_OK);
	assert_string_equal(json_string_value(json_object_get(seen.res, "result")), "ok");
	started("{\"cmd\":\"set_parameters\",\"address\":4,\"model\":\"WM3M4C\",\"baud_rate\":7,"
		"\"stop_bits\":1}",
		OP_SETPARAM);
	assert_int_equal(pend.baud, 7);
	assert_int_equal(pend.stop_code, 1);
	complete(-ETIMEDOUT, NULL, NULL);
	assert_int_equal(seen.st, OPS_NO_ANSWER);
	refused("{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"XYZ\"}",
		"model 'XYZ': no device description matches it");
	refused("{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"WM3M4C\",\"new_address\":5}",
		"cannot change its Modbus address");
	poll_ret = -ENOTSUP;
	refused("{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"IE38MD\"}",
		"has no writable communication registers");
	poll_ret = -ENODEV;
	expect("{\"cmd\":\"set_parameters\",\"address\":1,\"model\":\"WM3M4C\"}", OPS_UNAVAILABLE,
	       "no RS485 port");
}

/* ---- raw Modbus ---- */

static void test_modbus(void **state)
{
	(void)state;
	started("{\"cmd\":\"modbus_read\",\"modbus_address\":33,\"reg\":40156,\"no_regs\":2}",
		OP_MODBUS);
	assert_int_equal(pend.addr, 33);
	assert_int_equal(pend.t->fc, 3);
	assert_int_equal(pend.t->addr, 155);
	pend.t->regs[1] = 0xABCD;
	complete(0, NULL, NULL);
	assert_int_equal(seen.st, OPS_OK);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(seen.res, "values"), 1)), "0xABCD");
	/* by serial number; the Left IR device is address 0 */
	started("{\"cmd\":\"modbus_read\",\"serial_number\":\"12345678\",\"reg\":30001}",
		OP_MODBUS);
	assert_int_equal(pend.addr, 0);
	complete(-(BUS_EXCEPTION_BASE + 2), "exception 2 (illegal data address)", NULL);
	assert_int_equal(seen.st, OPS_DEVICE_ERROR);
	assert_string_equal(seen.msg, "modbus address 0: exception 2 (illegal data address)");
	started(
	    "{\"cmd\":\"modbus_read\",\"serial_number\":\"MC024305\",\"reg\":1,\"no_regs\":2000}",
	    OP_MODBUS);
	assert_int_equal(pend.addr, 1);
	assert_int_equal(pend.t->count, 2000);
	complete(0, NULL, NULL);
	expect("{\"cmd\":\"modbus_read\",\"serial_number\":\"B0000001\",\"reg\":40001}",
	       OPS_FORBIDDEN, "not reachable by raw Modbus");
	expect("{\"cmd\":\"modbus_read\",\"serial_number\":\"NOPE\",\"reg\":40001}", OPS_NOT_FOUND,
	       "serial_number NOPE: no configured device");
	refused("{\"cmd\":\"modbus_read\",\"serial_number\":\"A B\",\"reg\":40001}",
		"serial_number: expected");
	refused("{\"cmd\":\"modbus_read\",\"reg\":40001}", "give either modbus_address");
	refused("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"serial_number\":\"MC024305\","
		"\"reg\":40001}",
		"give either");
	refused("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":0}", "reg: 0 is not");
	refused("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":465537}",
		"reg: 465537 is not");
	refused("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":20001}",
		"reg: 20001 is not");
	refused("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":40001,\"no_regs\":126}",
		"no_regs: 126 from");
	started("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":465536}", OP_MODBUS);
	complete(0, NULL, NULL);
	poll_ret = -EBUSY;
	scanning = true;
	expect("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"reg\":40001}", OPS_BUSY,
	       "modbus address 1: an RS485 scan is in progress");
}

static void test_modbus_write(void **state)
{
	char cmd[16384];
	size_t n;

	(void)state;
	started("{\"cmd\":\"modbus_write_single\",\"modbus_address\":1,\"reg\":7,\"value\":1}",
		OP_MODBUS);
	assert_int_equal(pend.t->fc, 5);
	complete(0, NULL, NULL);
	assert_int_equal(json_integer_value(json_object_get(seen.res, "value")), 1);
	refused("{\"cmd\":\"modbus_write_single\",\"modbus_address\":1,\"reg\":5,\"value\":2}",
		"value: a coil takes 0 or 1");
	refused("{\"cmd\":\"modbus_write_single\",\"modbus_address\":1,\"reg\":30001,\"value\":1}",
		"reg: 30001 cannot be written");
	started("{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40101,\"values\":[65,"
		"66,0,1]}",
		OP_MODBUS);
	assert_int_equal(pend.t->fc, 16);
	assert_int_equal(pend.t->val[0], 0x4142);
	assert_int_equal(pend.t->val[1], 1);
	complete(0, NULL, NULL);
	assert_int_equal(json_integer_value(json_object_get(seen.res, "number_of_registers")), 2);
	refused(
	    "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40101,\"values\":[1,2,"
	    "3]}",
	    "values: expected an even number");
	refused("{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40101,\"values\":[1,"
		"256]}",
		"values[1]: expected a byte 0…255");
	refused("{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":1,\"values\":[0,1]}",
		"reg: 1 cannot be written (expected a holding register 4xxxx)");
	refused("{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40101}",
		"give either values");
	refused(
	    "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40101,\"values\":[0,1],"
	    "\"words\":[1]}",
	    "give either values");
	/* words: devop.c's limits, 1968 coils (fc 15), 123 holding registers */
	for (int count = 1968; count <= 1969; count++) {
		n = (size_t)snprintf(cmd, sizeof(cmd),
				     "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":"
				     "1,\"words\":[");
		for (int i = 0; i < count; i++)
			n +=
			    (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%s%d", i ? "," : "", i % 2);
		snprintf(cmd + n, sizeof(cmd) - n, "]}");
		if (count == 1968) {
			started(cmd, OP_MODBUS);
			assert_int_equal(pend.t->fc, 15);
			assert_int_equal(pend.t->count, 1968);
			assert_int_equal(pend.t->bits[1967], 1);
			complete(0, NULL, NULL);
			assert_int_equal(seen.st, OPS_OK);
		} else {
			refused(cmd, "words: expected 1…1968");
		}
	}
	refused("{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":1,\"words\":[0,2]}",
		"words: expected");
	refused(
	    "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40001,\"words\":[-1]}",
	    "words[0]: expected an integer 0…65535");
	started(
	    "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40001,\"words\":[4660]}",
	    OP_MODBUS);
	assert_int_equal(pend.t->fc, 16);
	assert_int_equal(pend.t->val[0], 4660);
	complete(0, NULL, NULL);
	n = (size_t)snprintf(cmd, sizeof(cmd),
			     "{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"reg\":40001,"
			     "\"words\":[");
	for (int i = 0; i < 124; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%s%d", i ? "," : "", i);
	snprintf(cmd + n, sizeof(cmd) - n, "]}");
	refused(cmd, "words: 124 values from 40001");
}

/* ---- settings and the gateway ---- */

static void test_settings(void **state)
{
	(void)state;
	run("{\"cmd\":\"get_settings\"}");
	assert_int_equal(seen.st, OPS_OK);
	assert_int_equal(json_integer_value(
			     json_object_get(json_object_get(seen.res, "settings"), "mqtt1_port")),
			 1883);
	assert_null(json_object_get(json_object_get(seen.res, "settings"), "mqtt1_password"));
	run("{\"cmd\":\"set_settings\",\"description\":\"Roof\",\"mqtt1_port\":1884}");
	assert_int_equal(seen.st, OPS_OK);
	assert_int_equal(json_array_size(json_object_get(seen.res, "changed")), 2);
	assert_string_equal(settings_str(st, "description"), "Roof");
	run("{\"cmd\":\"set_settings\",\"settings\":{\"location\":\"Attic\"}}");
	assert_int_equal(seen.st, OPS_OK);
	assert_string_equal(settings_str(st, "location"), "Attic");
	/* all or nothing */
	refused("{\"cmd\":\"set_settings\",\"description\":\"Hacked\",\"mqtt1_tls\":7}",
		"mqtt1_tls: 7 is out of range");
	assert_string_equal(settings_str(st, "description"), "Roof");
	refused("{\"cmd\":\"set_settings\",\"serial_number\":\"X\"}", "read-only");
	refused("{\"cmd\":\"set_settings\"}", "no settings given");
	refused("{\"cmd\":\"set_settings\",\"settings\":{}}", "no settings given");
	/* factory reset only when confirmed */
	refused("{\"cmd\":\"factory_reset\",\"confirm\":false}", "confirm: expected true");
	assert_string_equal(settings_str(st, "description"), "Roof");
	run("{\"cmd\":\"factory_reset\",\"confirm\":true}");
	assert_int_equal(seen.st, OPS_OK);
	assert_string_not_equal(settings_str(st, "description"), "Roof");
	expect("{\"cmd\":\"reboot\"}", OPS_NOT_IMPLEMENTED, "reboot is not supported by sgd");
}

static void test_files(void **state)
{
	char path[256];

	(void)state;
	run("{\"cmd\":\"write_cert\",\"name\":\"ca.pem\",\"cert\":\"-----BEGIN "
	    "X-----\\nA\\n-----END "
	    "X-----\\n\"}");
	assert_int_equal(seen.st, OPS_OK);
	snprintf(path, sizeof(path), "%s/files/ca.pem", dir);
	assert_int_equal(access(path, F_OK), 0);
	refused(
	    "{\"cmd\":\"write_cert\",\"name\":\"../ca.pem\",\"cert\":\"-----BEGIN X-----\\n-----"
	    "END X-----\"}",
	    "name '../ca.pem': expected");
	refused(
	    "{\"cmd\":\"write_cert\",\"name\":\"ca.txt\",\"cert\":\"-----BEGIN X-----\\n-----END "
	    "X-----\"}",
	    "name 'ca.txt'");
	refused("{\"cmd\":\"write_cert\",\"name\":\"half.pem\",\"cert\":\"-----BEGIN X-----\\nA\"}",
		"cert: expected PEM text");
	snprintf(path, sizeof(path), "%s/files/half.pem", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	refused("{\"cmd\":\"upgrade_app\",\"uri\":\"http://x/y\",\"cert\":\"ca.pem\"}",
		"uri: expected an https:// URI");
	refused("{\"cmd\":\"upgrade_app\",\"uri\":\"https://x/y\",\"cert\":\"../ca.pem\"}",
		"cert: expected a plain file name");
	refused("{\"cmd\":\"upgrade_app\",\"uri\":\"https://x/y\",\"cert\":\"no.pem\"}",
		"cert: no.pem is not in the file folder");
	expect("{\"cmd\":\"upgrade_app\",\"uri\":\"https://x/y\",\"cert\":\"ca.pem\"}",
	       OPS_NOT_IMPLEMENTED, "upgrade is not built yet");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, each_setup, each_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_schema_refusals),
	    T(test_readings),
	    T(test_bicom),
	    T(test_bicom_right_ir_rule),
	    T(test_scan),
	    T(test_scan_add_all),
	    T(test_set_parameters),
	    T(test_modbus),
	    T(test_modbus_write),
	    T(test_settings),
	    T(test_files),
	};
	int r = cmocka_run_group_tests(tests, setup, teardown);

	json_decref(seen.res);
	return r;
}
