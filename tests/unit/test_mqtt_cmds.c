/* MQTT commands (src/mqtt/cmds.c) and Home Assistant discovery
 * (src/mqtt/hadisc.c) without a broker or a bus: the link and the poller are
 * fakes that record what is published and which operation was started, and
 * the test completes operations itself. Devices use the real descriptions
 * in etc/devices; settings are real (a temporary state directory). Also the
 * shared request helpers of src/dev/devop.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/mqtt/cmds_int.h"
#include "sg/devop.h"
#include "sg/files.h"
#include "sg/hist.h"
#include "sg/ops.h"
#include "sg/reading.h"
#include "sg/settings.h"
#include "sg/version.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_poll.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BASE "gw/publish"

/* ---- fakes: link ---- */

struct mqtt_link {
	int n;
	bool connected;
};

struct pub {
	char topic[256];
	char *payload;
	int qos;
	bool retain;
};

static struct pub pubs[512];
static unsigned npubs;

static void record(const char *topic, const void *payload, size_t len, int qos, bool retain)
{
	struct pub *p = &pubs[npubs++];

	assert_true(npubs < N(pubs));
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	p->payload = strndup(payload, len);
	p->qos = qos;
	p->retain = retain;
}

static void pubs_clear(void)
{
	for (unsigned i = 0; i < npubs; i++)
		free(pubs[i].payload);
	npubs = 0;
}

int link_publish(struct mqtt_link *l, const char *subtopic, const void *payload, size_t len,
		 int qos, bool retain)
{
	char topic[256];

	if (!l->connected)
		return -ENOTCONN;
	snprintf(topic, sizeof(topic), "%s%s%s", BASE, subtopic ? "/" : "",
		 subtopic ? subtopic : "");
	record(topic, payload, len, qos, retain);
	return qos ? 1 : 0;
}

int link_publish_abs(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
		     int qos, bool retain)
{
	if (!l->connected)
		return -ENOTCONN;
	record(topic, payload, len, qos, retain);
	return qos ? 1 : 0;
}

const char *link_base(const struct mqtt_link *l)
{
	(void)l;
	return BASE;
}

int link_number(const struct mqtt_link *l)
{
	return l->n;
}

bool link_connected(const struct mqtt_link *l)
{
	return l->connected;
}

static unsigned settings_applied;
static char errbuf[256];

/* Counts the accepted changes the settings announce to their subscribers. */
static void on_settings_applied(const struct settings *s, void *arg)
{
	(void)s;
	(void)arg;
	settings_applied++;
}

/* ---- fakes: poller (fake_poll.h) ---- */

/* ---- fixture ---- */

static char dir[64];
/* The handles the daemon would give (src/sgd/main.c). */
static struct {
	struct conf conf;
	struct settings *settings;
	struct hist *hist;
	struct ops *ops;
} app;

#define FAKE_HIST_OWN_TARIFFS
#include "fake_hist_ops.h"

/* ---- fakes: history (the calendar's own rules are test_tariffs') ---- */

static char tariffs_text[512];

json_t *hist_tariffs_json(struct hist *h)
{
	(void)h;
	return json_pack("{s:s}", "calendar", tariffs_text);
}

/* Tariff 3 is active whenever there is a history. */
int hist_active_tariff(struct hist *h)
{
	(void)h;
	return 2;
}

int hist_tariffs_set(struct hist *h, const char *text, size_t len, char *err, size_t errlen)
{
	(void)h;
	if (strstr(text, "bad")) {
		snprintf(err, errlen, "seasons[0].start: expected MM-DD");
		return -EINVAL;
	}
	snprintf(tariffs_text, sizeof(tariffs_text), "%.*s", (int)len, text);
	return 0;
}
static struct mqtt mq;
static struct mqtt_link link1 = {1, true}, link2 = {2, true};

/* Left IR IE38 at 33, Right IR Bicom (on), RS485 1 WM3M4C at 1, RS485 2 MC
 * at 2 not responding, RS485 3 Bicom at 3. */
static void devices(void)
{
	for (int s = 0; s < DEV_SLOTS; s++)
		dev_reset(&devs[s], s);
	dev_setup(DEV_SLOT_LEFT_IR, CLASS_METER, "IE38", "IE38MD", "12345678", 33, DEV_OK);
	dev_setup(DEV_SLOT_RIGHT_IR, CLASS_BICOM, "Bicom", "BICOM", "B0000001", 33, DEV_OK);
	devs[DEV_SLOT_RIGHT_IR].relay = 1;
	dev_setup(DEV_SLOT_RS485(1), CLASS_METER, "WM3M4", "WM3M4C", "MC024305", 1, DEV_OK);
	dev_setup(DEV_SLOT_RS485(2), CLASS_METER, "MC", "MC750", "MC000002", 2, DEV_NOT_RESPONDING);
	snprintf(devs[DEV_SLOT_RS485(2)].last_error, sizeof(devs[0].last_error), "timeout");
	dev_setup(DEV_SLOT_RS485(3), CLASS_BICOM, "Bicom", "BICOM", "B0000003", 3, DEV_OK);
	devs[DEV_SLOT_RS485(3)].relay = 0;
	/* one measurement read, for the reply */
	devs[0].meas[1] = 230.1;
	devs[0].meas_ok[1] = true;
	devs[0].meas_ms = 1700000000000;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
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
	snprintf(dir, sizeof(dir), "/tmp/test_mqtt_cmds.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	app.conf.serial_number[0] = '\0';
	snprintf(app.conf.serial_number, sizeof(app.conf.serial_number), "IS001093");
	snprintf(app.conf.model_type, sizeof(app.conf.model_type), "SG-E1");
	snprintf(app.conf.hw_version, sizeof(app.conf.hw_version), "D");
	snprintf(app.conf.state_dir, sizeof(app.conf.state_dir), "%s", dir);
	mq.link[0] = &link1;
	mq.link[1] = &link2;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	desc_set_free(&set);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* The operations over the fixture's handles (again when they change). */
static void ops_start(void)
{
	struct ops_env env = {
	    .settings = app.settings, .hist = app.hist, .conf = &app.conf, .descs = &set};

	ops_fini(app.ops);
	app.ops = NULL;
	assert_int_equal(ops_init(&app.ops, &env), 0);
	mq.env = (struct mqtt_env){
	    .settings = app.settings, .conf = &app.conf, .ops = app.ops, .hist = app.hist};
}

/* Fresh settings, devices and records for each test. */
static int each_setup(void **state)
{
	(void)state;
	char path[128];

	snprintf(path, sizeof(path), "%s/settings.json", dir);
	unlink(path);
	if (settings_init(&app.settings, dir, "IS001093", "SG-E1") < 0 ||
	    settings_subscribe(app.settings, (const char *const[]){"*", NULL}, on_settings_applied,
			       NULL) < 0)
		return -1;
	devices();
	ops_start();
	memset(&pend, 0, sizeof(pend));
	poll_ret = 0;
	scanning = false;
	settings_applied = 0;
	link1.connected = link2.connected = true;
	return 0;
}

static int each_teardown(void **state)
{
	(void)state;
	pubs_clear();
	ops_fini(app.ops);
	app.ops = NULL;
	settings_fini(app.settings);
	app.settings = NULL;
	return 0;
}

/* ---- helpers ---- */

static void run(struct mqtt_link *l, const char *payload)
{
	pubs_clear();
	mqtt_cmd_run(&mq, l, payload, strlen(payload));
}

static const struct pub *find(const char *topic)
{
	for (unsigned i = npubs; i-- > 0;)
		if (!strcmp(pubs[i].topic, topic))
			return &pubs[i];
	return NULL;
}

/* The status reply (there must be exactly one). */
static json_t *status(void)
{
	const struct pub *p = find(BASE "/status");
	unsigned n = 0;
	json_t *j;

	for (unsigned i = 0; i < npubs; i++)
		n += !strcmp(pubs[i].topic, BASE "/status");
	assert_int_equal(n, 1);
	assert_int_equal(p->qos, 1);
	assert_false(p->retain);
	j = json_loads(p->payload, 0, NULL);
	assert_non_null(j);
	return j;
}

static void expect_reply(const char *want)
{
	const struct pub *p = find(BASE "/status");

	assert_non_null(p);
	if (strcmp(p->payload, want))
		printf("got  %s\nwant %s\n", p->payload, want);
	assert_string_equal(p->payload, want);
	assert_null(find(BASE "/error"));
}

/* An error reply: status {"cmd": cmd, "error": contains} and "Error: …" text. */
static void expect_error(const char *cmd, const char *contains)
{
	json_t *j = status();
	const char *msg = json_string_value(json_object_get(j, "error"));
	const struct pub *e = find(BASE "/error");

	if (!msg || !strstr(msg, contains))
		printf("error %s, expected to contain '%s'\n", msg ? msg : "(none)", contains);
	assert_non_null(msg);
	assert_non_null(strstr(msg, contains));
	if (cmd)
		assert_string_equal(json_string_value(json_object_get(j, "cmd")), cmd);
	else
		assert_true(json_is_null(json_object_get(j, "cmd")));
	assert_int_equal(json_object_size(j), 2);
	assert_non_null(e);
	assert_int_equal(strncmp(e->payload, "Error: ", 7), 0);
	assert_string_equal(e->payload + 7, msg);
	assert_int_equal(pend.kind, OP_NONE);
	json_decref(j);
}

/* ---- parsing ---- */

static void test_parse(void **state)
{
	static const struct {
		const char *payload, *err;
	} bad[] = {
	    {"", "not a JSON command"},
	    {"hello", "not a JSON command"},
	    {"[1]", "expected {\"data\""},
	    {"{\"cmd\": \"reboot\"}", "expected {\"data\""},
	    {"{\"data\": \"reboot\"}", "expected {\"data\""},
	    {"{\"data\": {\"cmd\": \"reboot\"}, \"x\": 1}", "expected {\"data\""},
	    {"{\"data\": {}}", "data.cmd"},
	    {"{\"data\": {\"cmd\": 5}}", "data.cmd"},
	    {"{\"data\": {\"cmd\": \"\"}}", "data.cmd"},
	    {"{\"data\": {\"cmd\": \"a\", \"cmd\": \"b\"}}", "duplicate"},
	};
	char name[CMD_NAME_MAX], err[CMD_ERR_MAX];
	const char *ok;
	json_t *d;

	(void)state;
	for (size_t i = 0; i < N(bad); i++) {
		err[0] = '\0';
		d = cmd_parse(bad[i].payload, strlen(bad[i].payload), name, err, sizeof(err));
		if (d || !strstr(err, bad[i].err))
			printf("payload %s: err '%s'\n", bad[i].payload, err);
		assert_null(d);
		assert_non_null(strstr(err, bad[i].err));
	}
	ok = "{\"data\": {\"cmd\": \"bicom\", \"addr\": 3}}";
	d = cmd_parse(ok, strlen(ok), name, err, sizeof(err));
	assert_non_null(d);
	assert_string_equal(name, "bicom");
	assert_int_equal(json_integer_value(json_object_get(d, "addr")), 3);
	json_decref(d);
	/* control characters and overlong names are clipped for echoing */
	ok = "{\"data\": {\"cmd\": \"a\\nb\"}}";
	d = cmd_parse(ok, strlen(ok), name, err, sizeof(err));
	assert_string_equal(name, "a?b");
	json_decref(d);
}

static void test_bad_commands(void **state)
{
	char *huge;

	(void)state;
	run(&link1, "not json");
	expect_error(NULL, "not a JSON command");
	run(&link1, "{\"data\": {\"addr\": 1}}");
	expect_error(NULL, "data.cmd");
	run(&link1, "{\"data\": {\"cmd\": \"frobnicate\"}}");
	expect_error("frobnicate", "unknown command 'frobnicate' (reboot, get_settings");
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"adr\": 1}}");
	expect_error("measurements", "unknown member 'adr' (measurements takes addr, index)");
	run(&link1, "{\"data\": {\"cmd\": \"get_settings\", \"x\": 1}}");
	expect_error("get_settings", "get_settings takes no arguments");
	/* over 64 KiB: refused before parsing */
	huge = malloc(CMD_PAYLOAD_MAX + 2);
	memset(huge, ' ', CMD_PAYLOAD_MAX + 1);
	memcpy(huge, "{\"data\": {\"cmd\": \"reboot\"}}", 27);
	huge[CMD_PAYLOAD_MAX + 1] = '\0';
	run(&link1, huge);
	expect_error(NULL, "at most 65536");
	/* exactly 64 KiB is parsed */
	huge[CMD_PAYLOAD_MAX] = '\0';
	run(&link1, huge);
	expect_error("reboot", "reboot is not supported by sgd");
	free(huge);
}

static void test_hello(void **state)
{
	json_t *h = mqtt_hello_json(&app.conf);
	char *s = json_dumps(h, SG_JSON_FLAGS);

	(void)state;
	assert_string_equal(s, "{\"hello\":\"hello world\",\"serial_number\":\"IS001093\","
			       "\"model_type\":\"SG-E1\",\"sw_ver\":\"" SGD_VERSION
			       "\",\"hw_ver\":\"D\"}");
	free(s);
	json_decref(h);
}

/* ---- settings ---- */

static void test_get_settings(void **state)
{
	json_t *j, *s;

	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"get_settings\"}}");
	j = status();
	assert_string_equal(json_string_value(json_object_get(j, "cmd")), "get_settings");
	s = json_object_get(j, "settings");
	assert_true(json_is_object(s));
	assert_int_equal(json_integer_value(json_object_get(s, "mqtt1_port")), 1883);
	assert_null(json_object_get(s, "mqtt1_password")); /* never secrets */
	assert_null(find(BASE "/error"));
	json_decref(j);
}

/* set_tariffs hands the document to the calendar whole; a refused one is an
 * error reply and changes nothing; get_tariffs answers with the calendar. */
static void test_tariffs(void **state)
{
	json_t *j;

	(void)state;
	app.hist = (struct hist *)&app; /* any non-NULL: the fakes ignore it */
	ops_start();
	tariffs_text[0] = 0;
	run(&link1, "{\"data\": {\"cmd\": \"set_tariffs\", \"tariffs\": {\"tariffs\": [1]}}}");
	j = status();
	assert_string_equal(json_string_value(json_object_get(j, "cmd")), "set_tariffs");
	assert_string_equal(tariffs_text, "{\"tariffs\":[1]}");
	json_decref(j);
	run(&link1, "{\"data\": {\"cmd\": \"set_tariffs\", \"tariffs\": {\"bad\": 1}}}");
	assert_non_null(find(BASE "/error"));
	assert_string_equal(tariffs_text, "{\"tariffs\":[1]}");
	run(&link1, "{\"data\": {\"cmd\": \"set_tariffs\", \"tariffs\": [1]}}");
	assert_string_equal(tariffs_text, "{\"tariffs\":[1]}");
	run(&link1, "{\"data\": {\"cmd\": \"get_tariffs\"}}");
	j = status();
	assert_string_equal(json_string_value(json_object_get(j, "calendar")), "{\"tariffs\":[1]}");
	json_decref(j);
	/* the active tariff is in the measurement and counter documents too */
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"addr\": 0}}");
	j = status();
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "header"), "active_tariff")), 3);
	json_decref(j);
	run(&link1, "{\"data\": {\"cmd\": \"counters\", \"addr\": 0}}");
	j = status();
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "header"), "active_tariff")), 3);
	json_decref(j);
	app.hist = NULL;
	ops_start();
	run(&link1, "{\"data\": {\"cmd\": \"get_tariffs\"}}");
	assert_non_null(find(BASE "/error"));
}

static void test_settings_changes(void **state)
{
	char err[CMD_ERR_MAX] = "";
	json_t *d, *c;

	(void)state;
	d = json_pack("{s:s, s:i, s:i, s:i, s:s}", "cmd", "set_settings", "mqtt_tls", 1,
		      "mqtt_port", 8883, "connection_mode", 2, "push_protocol", "1");
	c = cmd_settings_changes(d, 2, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(json_object_size(c), 4);
	assert_int_equal(json_integer_value(json_object_get(c, "mqtt2_tls")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "mqtt2_port")), 8883);
	assert_int_equal(json_integer_value(json_object_get(c, "connection_mode")), 2);
	assert_string_equal(json_string_value(json_object_get(c, "push2_protocol")), "1");
	json_decref(c);
	/* the same setting twice */
	json_object_set_new(d, "mqtt2_port", json_integer(1883));
	assert_null(cmd_settings_changes(d, 2, err, sizeof(err)));
	assert_non_null(strstr(err, "mqtt2_port: given twice"));
	json_decref(d);
	/* unknown keys pass through unchanged (settings_set_json names them) */
	d = json_pack("{s:s, s:i}", "cmd", "set_settings", "mqtt_bogus", 1);
	c = cmd_settings_changes(d, 1, err, sizeof(err));
	assert_non_null(json_object_get(c, "mqtt_bogus"));
	json_decref(c);
	json_decref(d);
	/* the get_settings shape */
	d = json_pack("{s:s, s:{s:i}}", "cmd", "set_settings", "settings", "mqtt_port", 1884);
	c = cmd_settings_changes(d, 1, err, sizeof(err));
	assert_int_equal(json_integer_value(json_object_get(c, "mqtt1_port")), 1884);
	json_decref(c);
	json_decref(d);
	d = json_pack("{s:s}", "cmd", "set_settings");
	assert_null(cmd_settings_changes(d, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "no settings given"));
	json_decref(d);
}

static void test_set_settings(void **state)
{
	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"set_settings\", \"mqtt_tls\": 1, \"mqtt_port\": 8883, "
		    "\"connection_mode\": 2}}");
	expect_reply("{\"cmd\":\"set_settings\",\"result\":\"ok\",\"changed\":[\"mqtt1_tls\","
		     "\"mqtt1_port\",\"connection_mode\"]}");
	assert_int_equal(settings_int(app.settings, "mqtt1_port"), 8883);
	assert_int_equal(settings_int(app.settings, "mqtt1_tls"), 1);
	assert_int_equal(settings_int(app.settings, "mqtt2_port"), 1883);
	assert_int_equal(settings_applied, 1);
	/* on link 2 the same keys mean link 2 */
	run(&link2, "{\"data\": {\"cmd\": \"set_settings\", \"mqtt_port\": 1999}}");
	assert_int_equal(settings_int(app.settings, "mqtt2_port"), 1999);
	assert_int_equal(settings_int(app.settings, "mqtt1_port"), 8883);
	/* all or nothing */
	run(&link1, "{\"data\": {\"cmd\": \"set_settings\", \"mqtt_port\": 1, \"mqtt_tls\": 7}}");
	expect_error("set_settings", "mqtt1_tls: 7 is out of range 0…2");
	assert_int_equal(settings_int(app.settings, "mqtt1_port"), 8883);
	run(&link1, "{\"data\": {\"cmd\": \"set_settings\", \"nonsense\": 1}}");
	expect_error("set_settings", "unknown setting 'nonsense'");
	run(&link1, "{\"data\": {\"cmd\": \"set_settings\", \"serial_number\": \"X\"}}");
	expect_error("set_settings", "read-only");
	run(&link1, "{\"data\": {\"cmd\": \"set_settings\"}}");
	expect_error("set_settings", "no settings given");
	assert_int_equal(settings_applied, 2);
}

static void test_reboot(void **state)
{
	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"reboot\"}}");
	expect_error("reboot", "reboot is not supported by sgd; restart the service with "
			       "systemctl restart sgd");
}

/* ---- readings ---- */

static void test_readings(void **state)
{
	json_t *j, *want;
	char *a, *b;

	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"addr\": 0}}");
	j = status();
	/* the REST document plus "cmd"; no history here: no active tariff */
	want = reading_json(NULL, app.settings, &devs[0], false);
	json_object_set_new(want, "cmd", json_string("measurements"));
	a = json_dumps(j, JSON_SORT_KEYS);
	b = json_dumps(want, JSON_SORT_KEYS);
	assert_string_equal(a, b);
	assert_string_equal(json_object_iter_key(json_object_iter(j)), "cmd"); /* first */
	free(a), free(b);
	json_decref(want);
	json_decref(j);
	/* the Left IR device by its own address, RS485 by address and by index */
	run(&link1, "{\"data\": {\"cmd\": \"counters\", \"addr\": 33}}");
	j = status();
	assert_string_equal(json_string_value(json_object_get(j, "cmd")), "counters");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "header"), "index")),
			 0);
	assert_non_null(json_object_get(j, "counters"));
	json_decref(j);
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"addr\": 1}}");
	j = status();
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "header"), "index")),
			 1);
	json_decref(j);
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"index\": 1}}");
	j = status();
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "header"), "serial")), "MC024305");
	json_decref(j);
	/* errors */
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"addr\": 2}}");
	expect_error("measurements", "RS485 2: device not responding (timeout)");
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"index\": 9}}");
	expect_error("measurements", "RS485 9: no device configured");
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"addr\": 77}}");
	expect_error("measurements", "no device configured at Modbus address 77");
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"addr\": \"1\"}}");
	expect_error("measurements", "addr: expected an integer 0…247");
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"index\": 17}}");
	expect_error("measurements", "index: expected an integer 0…16");
	run(&link1, "{\"data\": {\"cmd\": \"measurements\", \"index\": 1, \"addr\": 1}}");
	expect_error("measurements", "give either addr");
	run(&link1, "{\"data\": {\"cmd\": \"counters\"}}");
	expect_error("counters", "give either addr");
}

/* ---- Bicom ---- */

static void test_bicom(void **state)
{
	const struct pub *p;

	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 3, \"val\": \"on\"}}");
	assert_int_equal(npubs, 0); /* nothing until the operation finishes */
	assert_int_equal(pend.kind, OP_BICOM);
	assert_int_equal(pend.slot, DEV_SLOT_RS485(3));
	assert_int_equal(pend.op, BICOM_ON);
	complete(0, NULL, json_pack("{s:i, s:s}", "bicom", 3, "state", "on"));
	expect_reply("{\"cmd\":\"bicom\",\"bicom\":3,\"state\":\"on\"}");
	p = find(BASE "/bicom/3/state");
	assert_non_null(p);
	assert_string_equal(p->payload, "ON");
	assert_true(p->retain);
	/* the manual's "status" reads the state */
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 0, \"val\": \"status\"}}");
	assert_int_equal(pend.slot, DEV_SLOT_RIGHT_IR);
	assert_int_equal(pend.op, BICOM_STATE);
	complete(0, NULL, json_pack("{s:i, s:s}", "bicom", 0, "state", "off"));
	expect_reply("{\"cmd\":\"bicom\",\"bicom\":0,\"state\":\"off\"}");
	assert_string_equal(find(BASE "/bicom/0/state")->payload, "OFF");
	/* the device does not answer */
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 3, \"val\": \"toggle\"}}");
	assert_int_equal(pend.op, BICOM_TOGGLE);
	complete(-ETIMEDOUT, "device at address 3: timeout", NULL);
	expect_error("bicom", "Bicom 3: device did not answer: device at address 3: timeout");
	assert_null(find(BASE "/bicom/3/state"));
	/* the link went away before the answer: nothing published */
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 3, \"val\": \"off\"}}");
	link1.connected = false;
	complete(0, NULL, json_pack("{s:i, s:s}", "bicom", 3, "state", "off"));
	assert_int_equal(npubs, 0);
	link1.connected = true;
	/* refused before the bus */
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 5, \"val\": \"on\"}}");
	expect_error("bicom", "no Bicom configured at address 5");
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 3, \"val\": \"ON!\"}}");
	expect_error("bicom", "val: expected \"on\", \"off\", \"toggle\" or \"state\"");
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"val\": \"on\"}}");
	expect_error("bicom", "addr: missing");
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 248, \"val\": \"on\"}}");
	expect_error("bicom", "addr: expected an integer 0…247");
	poll_ret = -EBUSY;
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 3, \"val\": \"on\"}}");
	expect_error("bicom", "Bicom 3: the bus queue is full");
	poll_ret = 0;
	assert_int_equal(settings_set_kv(app.settings, (char *const[]){"ir_ext_rel_mode=2"}, 1,
					 errbuf, sizeof(errbuf)),
			 0);
	run(&link1, "{\"data\": {\"cmd\": \"bicom\", \"addr\": 0, \"val\": \"on\"}}");
	expect_error("bicom", "controlled by the IR counter");
}

/* ---- RS485 scan ---- */

static void test_detect(void **state)
{
	json_t *res;

	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\", \"baud_rate\": 19200, "
		    "\"stop_bits\": 2}}");
	assert_int_equal(pend.kind, OP_SCAN);
	assert_int_equal(pend.baud, 19200);
	assert_int_equal(pend.stop, 2);
	assert_int_equal(pend.parity, 0);
	assert_int_equal(pend.first, 1);
	assert_int_equal(pend.last, 247);
	res = json_pack("{s:[{s:i, s:s}]}", "devices", "address", 1, "model", "WM3M4C");
	complete(0, NULL, res);
	expect_reply("{\"cmd\":\"detect_485_devices\",\"devices\":[{\"address\":1,\"model\":"
		     "\"WM3M4C\"}]}");
	/* defaults: the configured line; codes and strings for the baud rate */
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\"}}");
	assert_int_equal(pend.baud, 0);
	assert_int_equal(pend.stop, 0);
	complete(-ECANCELED, "cancelled", NULL);
	expect_error("detect_485_devices", "RS485 scan: cancelled");
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\", \"baud_rate\": \"5\", "
		    "\"parity\": \"even\", \"from\": 3, \"to\": 9}}");
	assert_int_equal(pend.baud, 38400);
	assert_int_equal(pend.parity, 'E');
	assert_int_equal(pend.first, 3);
	assert_int_equal(pend.last, 9);
	complete(0, NULL, json_pack("{s:[]}", "devices"));
	pubs_clear();
	/* refused */
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\", \"baud_rate\": 12345}}");
	expect_error("detect_485_devices", "baud_rate: expected a rate");
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\", \"stop_bits\": 3}}");
	expect_error("detect_485_devices", "stop_bits: expected an integer 1…2");
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\", \"parity\": 1}}");
	expect_error("detect_485_devices", "parity: expected");
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\", \"from\": 9, \"to\": 3}}");
	expect_error("detect_485_devices", "from 9 is after to 3");
	scanning = true;
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\"}}");
	expect_error("detect_485_devices", "a scan is already running");
	scanning = false;
	poll_ret = -ENODEV;
	run(&link1, "{\"data\": {\"cmd\": \"detect_485_devices\"}}");
	expect_error("detect_485_devices", "no RS485 port");
}

/* ---- raw Modbus ---- */

static void test_modbus_read(void **state)
{
	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"modbus_read\", \"modbus_address\": 33, \"reg\": 40156, "
		    "\"no_regs\": 2}}");
	assert_int_equal(pend.kind, OP_MODBUS);
	assert_int_equal(pend.addr, 33);
	assert_int_equal(pend.t->fc, 3);
	assert_int_equal(pend.t->addr, 155);
	assert_int_equal(pend.t->count, 2);
	pend.t->regs[0] = 2;
	pend.t->regs[1] = 0xABCD;
	complete(0, NULL, NULL);
	expect_reply("{\"cmd\":\"modbus_read\",\"modbus_address\":33,\"register\":40156,"
		     "\"number_of_registers\":2,\"values\":[\"0x0002\",\"0xABCD\"]}");
	/* by serial number: the Left IR device is address 0; no_regs defaults to 1 */
	run(&link1, "{\"data\": {\"cmd\": \"modbus_read\", \"serial_number\": \"12345678\", "
		    "\"reg\": 30001}}");
	assert_int_equal(pend.addr, 0);
	assert_int_equal(pend.t->fc, 4);
	assert_int_equal(pend.t->addr, 0);
	pend.t->regs[0] = 0x1F;
	complete(0, NULL, NULL);
	expect_reply("{\"cmd\":\"modbus_read\",\"modbus_address\":0,\"register\":30001,"
		     "\"serial_number\":\"12345678\",\"number_of_registers\":1,\"values\":"
		     "[\"0x001F\"]}");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_read\", \"serial_number\": \"MC024305\", "
		    "\"reg\": 1, \"no_regs\": 3}}");
	assert_int_equal(pend.addr, 1);
	assert_int_equal(pend.t->fc, 1);
	pend.t->bits[1] = 1;
	complete(0, NULL, NULL);
	expect_reply("{\"cmd\":\"modbus_read\",\"modbus_address\":1,\"register\":1,"
		     "\"serial_number\":\"MC024305\",\"number_of_registers\":3,\"values\":"
		     "[\"0x0000\",\"0x0001\",\"0x0000\"]}");
	/* an exception, a timeout */
	run(&link1,
	    "{\"data\": {\"cmd\": \"modbus_read\", \"modbus_address\": 33, \"reg\": 40001}}");
	complete(-(BUS_EXCEPTION_BASE + 2), "exception 2 (illegal data address)", NULL);
	expect_error("modbus_read", "modbus address 33: exception 2 (illegal data address)");
	run(&link1,
	    "{\"data\": {\"cmd\": \"modbus_read\", \"modbus_address\": 9, \"reg\": 40001}}");
	complete(-ETIMEDOUT, "timeout", NULL);
	expect_error("modbus_read", "modbus address 9: device did not answer: timeout");
}

static void test_modbus_bad(void **state)
{
	static const struct {
		const char *args, *err;
	} bad[] = {
	    {"\"reg\": 40001", "give either modbus_address"},
	    {"\"modbus_address\": 1, \"serial_number\": \"MC024305\", \"reg\": 40001",
	     "give either"},
	    {"\"modbus_address\": 248, \"reg\": 40001",
	     "modbus_address: expected an integer 0…247"},
	    {"\"serial_number\": \"NOPE\", \"reg\": 40001", "serial_number NOPE: no configured"},
	    {"\"serial_number\": \"B0000001\", \"reg\": 40001", "not reachable by raw Modbus"},
	    {"\"serial_number\": 5, \"reg\": 40001", "serial_number: expected"},
	    {"\"modbus_address\": 1", "reg: missing"},
	    {"\"modbus_address\": 1, \"reg\": \"40001\"", "reg: expected an Iskra register"},
	    {"\"modbus_address\": 1, \"reg\": 20001", "reg: 20001 is not an Iskra register"},
	    {"\"modbus_address\": 1, \"reg\": 40000", "reg: 40000 is not"},
	    {"\"modbus_address\": 1, \"reg\": 0", "reg: 0 is not"},
	    {"\"modbus_address\": 1, \"reg\": 99999999999", "reg: 99999999999 is not"},
	    {"\"modbus_address\": 1, \"reg\": 40001, \"no_regs\": 126", "no_regs: 126 from"},
	    {"\"modbus_address\": 1, \"reg\": 40001, \"no_regs\": 0", "no_regs: expected"},
	    {"\"modbus_address\": 1, \"reg\": 465536, \"no_regs\": 2", "no_regs: 2 from"},
	    {"\"modbus_address\": 1, \"reg\": 40001, \"value\": 1", "unknown member 'value'"},
	};
	char payload[256];

	(void)state;
	for (size_t i = 0; i < N(bad); i++) {
		snprintf(payload, sizeof(payload), "{\"data\": {\"cmd\": \"modbus_read\", %s}}",
			 bad[i].args);
		run(&link1, payload);
		expect_error("modbus_read", bad[i].err);
	}
	/* 2000 coils is the limit for bits */
	run(&link1, "{\"data\": {\"cmd\": \"modbus_read\", \"modbus_address\": 1, \"reg\": 10001, "
		    "\"no_regs\": 2000}}");
	assert_int_equal(pend.t->fc, 2);
	assert_int_equal(pend.t->count, 2000);
	complete(-ECANCELED, NULL, NULL);
	pubs_clear();
	poll_ret = -EBUSY;
	scanning = true;
	run(&link1,
	    "{\"data\": {\"cmd\": \"modbus_read\", \"modbus_address\": 1, \"reg\": 40001}}");
	expect_error("modbus_read", "modbus address 1: an RS485 scan is in progress");
}

static void test_modbus_write(void **state)
{
	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_single\", \"modbus_address\": 33, "
		    "\"reg\": 40156, \"value\": 4}}");
	assert_int_equal(pend.t->fc, 6);
	assert_int_equal(pend.t->addr, 155);
	assert_int_equal(pend.t->val[0], 4);
	complete(0, NULL, NULL);
	expect_reply("{\"cmd\":\"modbus_write_single\",\"modbus_address\":33,\"register\":40156,"
		     "\"value\":4}");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_single\", \"modbus_address\": 33, "
		    "\"reg\": 7, \"value\": 1}}");
	assert_int_equal(pend.t->fc, 5);
	assert_int_equal(pend.t->addr, 6);
	assert_int_equal(pend.t->val[0], 1);
	complete(0, NULL, NULL);
	/* 000 §4.8.9.3: [65, 66] is one register "AB" */
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_multi\", \"serial_number\": \"MC024305\", "
		    "\"reg\": 40101, \"values\": [65, 66, 0, 1]}}");
	assert_int_equal(pend.addr, 1);
	assert_int_equal(pend.t->fc, 16);
	assert_int_equal(pend.t->addr, 100);
	assert_int_equal(pend.t->count, 2);
	assert_int_equal(pend.t->val[0], 0x4142);
	assert_int_equal(pend.t->val[1], 0x0001);
	complete(0, NULL, NULL);
	expect_reply("{\"cmd\":\"modbus_write_multi\",\"modbus_address\":1,\"register\":40101,"
		     "\"serial_number\":\"MC024305\",\"number_of_registers\":2}");
	/* refused */
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_single\", \"modbus_address\": 1, "
		    "\"reg\": 30001, \"value\": 1}}");
	expect_error("modbus_write_single", "reg: 30001 cannot be written");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_single\", \"modbus_address\": 1, "
		    "\"reg\": 5, \"value\": 2}}");
	expect_error("modbus_write_single", "value: a coil takes 0 or 1");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_single\", \"modbus_address\": 1, "
		    "\"reg\": 40001, \"value\": 65536}}");
	expect_error("modbus_write_single", "value: expected an integer 0…65535");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_single\", \"modbus_address\": 1, "
		    "\"reg\": 40001}}");
	expect_error("modbus_write_single", "value: missing");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_multi\", \"modbus_address\": 1, "
		    "\"reg\": 40101, \"values\": [65]}}");
	expect_error("modbus_write_multi", "values: expected an even number");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_multi\", \"modbus_address\": 1, "
		    "\"reg\": 40101, \"values\": [65, 256]}}");
	expect_error("modbus_write_multi", "values[1]: expected a byte 0…255");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_multi\", \"modbus_address\": 1, "
		    "\"reg\": 1, \"values\": [0, 1]}}");
	expect_error("modbus_write_multi", "reg: 1 cannot be written (expected a holding "
					   "register 4xxxx)");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_multi\", \"modbus_address\": 1, "
		    "\"reg\": 465536, \"values\": [0, 1, 0, 1]}}");
	expect_error("modbus_write_multi", "values: 2 registers from 465536 run past");
	run(&link1, "{\"data\": {\"cmd\": \"modbus_write_multi\", \"modbus_address\": 1, "
		    "\"reg\": 40101, \"values\": \"AB\"}}");
	expect_error("modbus_write_multi", "values: expected");
}

static void test_modbus_many_values(void **state)
{
	char payload[4096];
	size_t n;

	(void)state;
	/* 123 registers = 246 bytes is the limit */
	for (int count = 246; count <= 248; count += 2) {
		n = (size_t)snprintf(payload, sizeof(payload),
				     "{\"data\": {\"cmd\": \"modbus_write_multi\", "
				     "\"modbus_address\": 1, \"reg\": 40001, \"values\": [");
		for (int i = 0; i < count; i++)
			n += (size_t)snprintf(payload + n, sizeof(payload) - n, "%s%d",
					      i ? "," : "", i);
		snprintf(payload + n, sizeof(payload) - n, "]}}");
		run(&link1, payload);
		if (count == 246) {
			assert_int_equal(pend.t->count, 123);
			assert_int_equal(pend.t->val[122], (244 << 8) | 245);
			complete(0, NULL, NULL);
		} else {
			expect_error("modbus_write_multi", "values: expected an even number");
		}
	}
}

/* ---- files ---- */

static void test_write_cert(void **state)
{
	static const char *const bad_pem[] = {
	    "junk",
	    "-----BEGIN CERTIFICATE-----\\nAAAA\\n",
	    "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END PRIVATE KEY-----\\n",
	    "-----BEGIN -----\\n-----END -----",
	    "-----END X----- -----BEGIN X-----",
	};
	const char *pem = "-----BEGIN CERTIFICATE-----\\nMIIF\\n-----END CERTIFICATE-----\\n";
	char payload[512], path[256], buf[128];
	FILE *f;
	size_t n;

	(void)state;
	snprintf(payload, sizeof(payload),
		 "{\"data\": {\"cmd\": \"write_cert\", \"name\": \"ca.pem\", \"cert\": \"%s\"}}",
		 pem);
	run(&link1, payload);
	expect_reply("{\"cmd\":\"write_cert\",\"result\":\"ok\",\"name\":\"ca.pem\"}");
	snprintf(path, sizeof(path), "%s/files/ca.pem", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf, "-----BEGIN CERTIFICATE-----\nMIIF\n-----END CERTIFICATE-----\n");
	/* never outside the folder, only certificate names */
	static const char *const names[] = {"../ca.pem",     "/etc/ca.pem", ".ca.pem", "ca.txt",
					    "settings.json", "a b.pem",	    "ca/x.pem"};
	for (size_t i = 0; i < N(names); i++) {
		snprintf(
		    payload, sizeof(payload),
		    "{\"data\": {\"cmd\": \"write_cert\", \"name\": \"%s\", \"cert\": \"%s\"}}",
		    names[i], pem);
		run(&link1, payload);
		expect_error("write_cert", "name");
	}
	for (size_t i = 0; i < N(bad_pem); i++) {
		snprintf(
		    payload, sizeof(payload),
		    "{\"data\": {\"cmd\": \"write_cert\", \"name\": \"x.pem\", \"cert\": \"%s\"}}",
		    bad_pem[i]);
		run(&link1, payload);
		expect_error("write_cert", "cert: expected PEM text");
	}
	run(&link1, "{\"data\": {\"cmd\": \"write_cert\", \"name\": \"x.pem\"}}");
	expect_error("write_cert", "cert: missing");
	snprintf(path, sizeof(path), "%s/files/x.pem", dir);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_write_cert_size(void **state)
{
	size_t max = CMD_CERT_MAX, n;
	char *payload = malloc(max + 200);

	(void)state;
	for (size_t len = max; len <= max + 1; len++) {
		n = (size_t)sprintf(payload, "{\"data\": {\"cmd\": \"write_cert\", \"name\": "
					     "\"big.crt\", \"cert\": \"-----BEGIN X-----");
		memset(payload + n, 'A', len - 32);
		strcpy(payload + n + len - 32, "-----END X-----\"}}");
		run(&link1, payload);
		if (len == max)
			expect_reply(
			    "{\"cmd\":\"write_cert\",\"result\":\"ok\",\"name\":\"big.crt\"}");
		else
			expect_error("write_cert",
				     "cert: expected PEM text of at most 16384 bytes");
	}
	free(payload);
}

static void test_upgrade(void **state)
{
	(void)state;
	run(&link1, "{\"data\": {\"cmd\": \"upgrade_app\", \"uri\": \"http://x/y.bin\", \"cert\": "
		    "\"ca.pem\"}}");
	expect_error("upgrade_app", "uri: expected an https:// URI");
	run(&link1, "{\"data\": {\"cmd\": \"upgrade_app\", \"uri\": \"https://x/y.bin\", \"cert\": "
		    "\"missing.pem\"}}");
	expect_error("upgrade_app", "cert: missing.pem is not in the file folder");
	run(&link1, "{\"data\": {\"cmd\": \"upgrade_app\", \"uri\": \"https://x/y.bin\", \"cert\": "
		    "\"../ca.pem\"}}");
	expect_error("upgrade_app", "cert: expected a plain file name");
	run(&link1, "{\"data\": {\"cmd\": \"upgrade_app\", \"uri\": \"https://x/y.bin\"}}");
	expect_error("upgrade_app", "cert: missing");
	assert_int_equal(files_write(dir, "iskra.pem", "-----BEGIN x", 12), 0);
	run(&link1, "{\"data\": {\"cmd\": \"upgrade_app\", \"uri\": "
		    "\"https://fwupdate.iskrasistemi.si/SG-78.bin\", \"cert\": \"iskra.pem\"}}");
	expect_error("upgrade_app", "upgrade is not built yet");
}

/* ---- Home Assistant discovery ---- */

struct cfgs {
	json_t *by_topic; /* topic → config */
};

static void collect(const char *topic, json_t *cfg, void *arg)
{
	struct cfgs *c = arg;

	assert_null(json_object_get(c->by_topic, topic)); /* each once */
	json_object_set_new(c->by_topic, topic, cfg);
}

static const struct hadisc_env env = {"IS001093", "SG-E1", "D", BASE, "gw/cmd"};

/* What HA requires of every config, and what we promise. */
static void check_common(const char *topic, json_t *cfg)
{
	json_t *dev = json_object_get(cfg, "device");
	char want[256];

	snprintf(want, sizeof(want), "homeassistant/%s/%s/config",
		 strstr(topic, "/switch/")	    ? "switch"
		 : strstr(topic, "/binary_sensor/") ? "binary_sensor"
						    : "sensor",
		 json_string_value(json_object_get(cfg, "unique_id")));
	assert_string_equal(topic, want);
	assert_true(json_is_string(json_object_get(cfg, "name")));
	assert_true(json_is_string(json_object_get(cfg, "state_topic")));
	assert_true(json_is_array(json_object_get(dev, "identifiers")));
	assert_true(json_is_string(json_object_get(dev, "name")));
}

static void test_hadisc_meter(void **state)
{
	struct cfgs c = {json_object()};
	json_t *cfg, *dev;
	const char *key;
	unsigned sensors = 0, energy = 0;

	(void)state;
	hadisc_device_configs(&env, &devs[DEV_SLOT_LEFT_IR], collect, &c);
	json_object_foreach(c.by_topic, key, cfg)
	{
		check_common(key, cfg);
		sensors++;
		energy += !strcmp(json_string_value(json_object_get(cfg, "device_class")) ?: "",
				  "energy");
		/* both the link and the device must be online */
		json_t *av = json_object_get(cfg, "availability");

		assert_int_equal(json_array_size(av), 2);
		assert_string_equal(
		    json_string_value(json_object_get(json_array_get(av, 0), "topic")),
		    BASE "/availability");
		assert_string_equal(
		    json_string_value(json_object_get(json_array_get(av, 1), "topic")),
		    BASE "/device/0/availability");
		assert_string_equal(json_string_value(json_object_get(cfg, "availability_mode")),
				    "all");
		assert_null(json_object_get(cfg, "availability_topic"));
		/* object_id is ignored by HA since 2026.4: default_entity_id instead */
		assert_null(json_object_get(cfg, "object_id"));
	}
	/* IE38: U,I ×3, P,Q,S,PF ×4, frequency, temperature; 20 Wh counters */
	assert_int_equal(sensors, 6 + 16 + 2 + 20);
	assert_int_equal(energy, 20);
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_u1/config");
	assert_non_null(cfg);
	assert_string_equal(json_string_value(json_object_get(cfg, "state_topic")),
			    BASE "/device/0/measurements");
	assert_string_equal(json_string_value(json_object_get(cfg, "default_entity_id")),
			    "sensor.is001093_0_u1");
	assert_string_equal(json_string_value(json_object_get(cfg, "value_template")),
			    "{{ value_json.measurements.Phases[0].U.value }}");
	assert_string_equal(json_string_value(json_object_get(cfg, "device_class")), "voltage");
	assert_string_equal(json_string_value(json_object_get(cfg, "unit_of_measurement")), "V");
	assert_string_equal(json_string_value(json_object_get(cfg, "state_class")), "measurement");
	assert_string_equal(json_string_value(json_object_get(cfg, "name")), "Voltage L1");
	dev = json_object_get(cfg, "device");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(dev, "identifiers"), 0)),
	    "IS001093_12345678");
	assert_string_equal(json_string_value(json_object_get(dev, "name")), "IE38MD 12345678");
	assert_string_equal(json_string_value(json_object_get(dev, "manufacturer")), "Iskra");
	assert_string_equal(json_string_value(json_object_get(dev, "sw_version")), "1.05");
	assert_string_equal(json_string_value(json_object_get(dev, "via_device")), "IS001093");
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_p/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "value_template")),
			    "{{ value_json.measurements.Total.P.value }}");
	assert_string_equal(json_string_value(json_object_get(cfg, "unit_of_measurement")), "W");
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_q2/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "device_class")),
			    "reactive_power");
	assert_string_equal(json_string_value(json_object_get(cfg, "unit_of_measurement")), "var");
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_pf/config");
	assert_null(json_object_get(cfg, "unit_of_measurement"));
	assert_string_equal(json_string_value(json_object_get(cfg, "device_class")),
			    "power_factor");
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_freq/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "value_template")),
			    "{{ value_json.measurements.Frequency.value }}");
	assert_non_null(json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_temp/config"));
	assert_null(json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_pa1/config"));
	/* counters: 4 non-resettable first, then 16 resettable */
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_c0/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "state_topic")),
			    BASE "/device/0/counters");
	assert_string_equal(
	    json_string_value(json_object_get(cfg, "value_template")),
	    "{{ (value_json.counters.non_resettable[0].value / 1000) | round(3) }}");
	assert_string_equal(json_string_value(json_object_get(cfg, "unit_of_measurement")), "kWh");
	assert_string_equal(json_string_value(json_object_get(cfg, "state_class")),
			    "total_increasing");
	assert_string_equal(json_string_value(json_object_get(cfg, "name")), "Counter 1 NR import");
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_c5/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "value_template")),
			    "{{ (value_json.counters.resettable[1].value / 1000) | round(3) }}");
	json_decref(c.by_topic);
}

static void test_hadisc_units(void **state)
{
	struct cfgs c = {json_object()};
	struct dev *d = &devs[DEV_SLOT_LEFT_IR];
	json_t *cfg;

	(void)state;
	d->ctr_unit[1] = UNIT_VARH;
	d->ctr_dir[1] = DIR_EXPORT;
	d->ctr_unit[2] = UNIT_VAH;
	d->ctr_dir[2] = DIR_BIDIR;
	d->ctr_unit[3] = UNIT_UNKNOWN;
	d->reverse = true;
	hadisc_device_configs(&env, d, collect, &c);
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_c1/config");
	assert_null(json_object_get(cfg, "device_class"));
	assert_string_equal(json_string_value(json_object_get(cfg, "unit_of_measurement")),
			    "kvarh");
	assert_string_equal(json_string_value(json_object_get(cfg, "name")),
			    "Counter 2 NR import"); /* reversed */
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_c2/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "unit_of_measurement")), "kVAh");
	assert_string_equal(json_string_value(json_object_get(cfg, "state_class")), "total");
	assert_null(json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_c3/config"));
	/* positions in the array do not shift for a counter left out */
	cfg = json_object_get(c.by_topic, "homeassistant/sensor/IS001093_0_c4/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "value_template")),
			    "{{ (value_json.counters.resettable[0].value / 1000) | round(3) }}");
	json_decref(c.by_topic);
}

static void test_hadisc_bicom_and_gateway(void **state)
{
	struct cfgs c = {json_object()};
	json_t *cfg;

	(void)state;
	hadisc_device_configs(&env, &devs[DEV_SLOT_RS485(3)], collect, &c);
	hadisc_device_configs(&env, &devs[DEV_SLOT_RIGHT_IR], collect, &c);
	hadisc_gateway_config(&env, collect, &c);
	assert_int_equal(json_object_size(c.by_topic), 3);
	cfg = json_object_get(c.by_topic, "homeassistant/switch/IS001093_bicom3/config");
	assert_non_null(cfg);
	check_common("homeassistant/switch/IS001093_bicom3/config", cfg);
	assert_string_equal(json_string_value(json_object_get(cfg, "command_topic")),
			    "gw/cmd/bicom/3/set");
	assert_string_equal(json_string_value(json_object_get(cfg, "state_topic")),
			    BASE "/bicom/3/state");
	assert_string_equal(json_string_value(json_object_get(cfg, "payload_on")), "ON");
	assert_string_equal(json_string_value(json_object_get(cfg, "payload_off")), "OFF");
	assert_string_equal(json_string_value(json_object_get(cfg, "default_entity_id")),
			    "switch.is001093_bicom3");
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(cfg, "availability"), 1), "topic")),
			    BASE "/bicom/3/availability");
	cfg = json_object_get(c.by_topic, "homeassistant/switch/IS001093_bicom0/config");
	assert_string_equal(json_string_value(json_object_get(cfg, "command_topic")),
			    "gw/cmd/bicom/0/set");
	cfg = json_object_get(c.by_topic, "homeassistant/binary_sensor/IS001093_online/config");
	check_common("homeassistant/binary_sensor/IS001093_online/config", cfg);
	assert_string_equal(json_string_value(json_object_get(cfg, "state_topic")),
			    BASE "/availability");
	assert_string_equal(json_string_value(json_object_get(cfg, "default_entity_id")),
			    "binary_sensor.is001093_online");
	assert_null(json_object_get(cfg, "object_id"));
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(json_object_get(cfg, "device"), "identifiers"), 0)),
			    "IS001093");
	json_decref(c.by_topic);
	/* nothing for empty, unidentified, generic slots */
	c.by_topic = json_object();
	hadisc_device_configs(&env, &devs[DEV_SLOT_RS485(9)], collect, &c);
	devs[DEV_SLOT_RS485(1)].d = NULL;
	hadisc_device_configs(&env, &devs[DEV_SLOT_RS485(1)], collect, &c);
	dev_setup(DEV_SLOT_RS485(4), CLASS_GENERIC, "Generic", "X", "1", 4, DEV_OK);
	hadisc_device_configs(&env, &devs[DEV_SLOT_RS485(4)], collect, &c);
	assert_int_equal(json_object_size(c.by_topic), 0);
	json_decref(c.by_topic);
}

static void test_hadisc_announce(void **state)
{
	unsigned configs = 0;
	const struct pub *p;

	(void)state;
	/* default push links (0): only the gateway's own entity; the configs of
	 * every device are removed (empty retained) */
	assert_true(hadisc_announce(&mq, &link1));
	for (unsigned i = 0; i < npubs; i++) {
		if (strncmp(pubs[i].topic, "homeassistant/", 14))
			continue;
		assert_true(pubs[i].retain);
		if (pubs[i].payload[0])
			configs++;
	}
	assert_int_equal(configs, 1);
	assert_non_null(find("homeassistant/binary_sensor/IS001093_online/config"));
	p = find("homeassistant/sensor/IS001093_2_u1/config");
	assert_non_null(p);
	assert_string_equal(p->payload, "");
	assert_null(find(BASE "/bicom/0/state"));
	pubs_clear();
	configs = 0;
	/* every device pushed on link 1 */
	assert_int_equal(settings_set_kv(app.settings,
					 (char *const[]){"leftir_pushlink=1", "ir_relay_pushlink=1",
							 "rs485_pushlnk1=1", "rs485_pushlnk2=1",
							 "rs485_pushlnk3=1", "rs485_pushlnk4=1"},
					 6, errbuf, sizeof(errbuf)),
			 0);
	hadisc_announce(&mq, &link1);
	for (unsigned i = 0; i < npubs; i++) {
		json_t *j;

		if (strncmp(pubs[i].topic, "homeassistant/", 14))
			continue;
		configs++;
		assert_true(pubs[i].retain);
		assert_int_equal(pubs[i].qos, 1);
		j = json_loads(pubs[i].payload, 0, NULL);
		assert_non_null(j);
		check_common(pubs[i].topic, j);
		json_decref(j);
	}
	/* gateway 1, IE38 44, WM3M4C, MC (identified though silent), 2 Bicoms */
	assert_true(configs > 1 + 44 + 2);
	assert_non_null(find("homeassistant/sensor/IS001093_2_u1/config"));
	assert_non_null(find("homeassistant/sensor/IS001093_3_u1/config"));
	/* commands arrive on <root>/<sub topic> of the link */
	p = find("homeassistant/switch/IS001093_bicom3/config");
	assert_non_null(strstr(p->payload, "\"command_topic\":\"IS001093/cmd/bicom/3/set\""));
	p = find(BASE "/bicom/0/state");
	assert_string_equal(p->payload, "ON");
	assert_true(p->retain);
	assert_string_equal(find(BASE "/bicom/3/state")->payload, "OFF");
	pubs_clear();
	/* off: nothing at all */
	assert_int_equal(settings_set_kv(app.settings, (char *const[]){"ha_discovery=0"}, 1, errbuf,
					 sizeof(errbuf)),
			 0);
	assert_false(hadisc_announce(&mq, &link1));
	assert_int_equal(npubs, 0);
}

static void test_hadisc_command(void **state)
{
	(void)state;
	pubs_clear();
	assert_false(hadisc_command(&mq, &link1, "status", "x", 1));
	assert_false(hadisc_command(&mq, &link1, "bicom/3/get", "ON", 2));
	assert_false(hadisc_command(&mq, &link1, "bicom/3/set/x", "ON", 2));
	assert_int_equal(npubs, 0);
	assert_true(hadisc_command(&mq, &link1, "bicom/3/set", "ON", 2));
	assert_int_equal(pend.kind, OP_BICOM);
	assert_int_equal(pend.slot, DEV_SLOT_RS485(3));
	assert_int_equal(pend.op, BICOM_ON);
	complete(0, NULL, json_pack("{s:i, s:s}", "bicom", 3, "state", "on"));
	assert_int_equal(npubs, 1);
	assert_string_equal(pubs[0].topic, BASE "/bicom/3/state");
	assert_string_equal(pubs[0].payload, "ON");
	assert_true(pubs[0].retain);
	pubs_clear();
	assert_true(hadisc_command(&mq, &link1, "bicom/0/set", "off", 3));
	assert_int_equal(pend.op, BICOM_OFF);
	complete(-ETIMEDOUT, NULL, NULL);
	assert_string_equal(find(BASE "/error")->payload,
			    "Error: Bicom 0: device did not answer: timeout");
	assert_null(find(BASE "/bicom/0/state"));
	/* refused */
	static const struct {
		const char *topic, *payload, *err;
	} bad[] = {
	    {"bicom/3/set", "MAYBE", "Error: Bicom 3: expected ON or OFF"},
	    {"bicom/3/set", "", "Error: Bicom 3: expected ON or OFF"},
	    {"bicom/248/set", "ON", "Error: bicom/<addr>/set: addr must be 0…247"},
	    {"bicom/x/set", "ON", "Error: bicom/<addr>/set: addr must be 0…247"},
	    {"bicom//set", "ON", "Error: bicom/<addr>/set: addr must be 0…247"},
	    {"bicom/9/set", "ON", "Error: Bicom 9: no Bicom configured at address 9"},
	};
	for (size_t i = 0; i < N(bad); i++) {
		pubs_clear();
		assert_true(hadisc_command(&mq, &link1, bad[i].topic, bad[i].payload,
					   strlen(bad[i].payload)));
		assert_int_equal(npubs, 1);
		assert_string_equal(pubs[0].topic, BASE "/error");
		assert_string_equal(pubs[0].payload, bad[i].err);
		assert_int_equal(pend.kind, OP_NONE);
	}
}

/* ---- src/dev/devop.c ---- */

static void test_devop(void **state)
{
	struct bus_txn t;
	long v[3] = {1, 0, 1};
	char buf[128];
	json_t *j;
	char *s;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(devop_mb_read(&t, 30001, 125), 0);
	assert_int_equal(t.fc, 4);
	assert_int_equal(devop_mb_read(&t, 30001, 126), -ERANGE);
	assert_int_equal(devop_mb_read(&t, 1, 2000), 0);
	assert_int_equal(t.fc, 1);
	assert_int_equal(devop_mb_read(&t, 1, 2001), -ERANGE);
	assert_int_equal(devop_mb_read(&t, 465536, 1), 0);
	assert_int_equal(t.addr, 65535);
	assert_int_equal(devop_mb_read(&t, 465536, 2), -ERANGE);
	assert_int_equal(devop_mb_read(&t, 25000, 1), -EINVAL);
	assert_int_equal(devop_mb_write(&t, 30001, v, 1, false), -EINVAL);
	assert_int_equal(devop_mb_write(&t, 10001, v, 1, false), -EINVAL);
	assert_int_equal(devop_mb_write(&t, 1, v, 3, false), 0);
	assert_int_equal(t.fc, 15);
	assert_int_equal(t.bits[2], 1);
	assert_int_equal(devop_mb_write(&t, 1, v, 1, false), 0);
	assert_int_equal(t.fc, 5);
	assert_int_equal(t.val[0], 1);
	assert_int_equal(devop_mb_write(&t, 40001, v, 1, true), 0);
	assert_int_equal(t.fc, 16);
	v[1] = 2;
	assert_int_equal(devop_mb_write(&t, 1, v, 2, false), -EINVAL);
	v[1] = 70000;
	assert_int_equal(devop_mb_write(&t, 40001, v, 2, false), -EINVAL);
	/* values */
	memset(&t, 0, sizeof(t));
	t.fc = 3;
	t.count = 2;
	t.regs[0] = 0xFFFF;
	t.regs[1] = 0x00a0;
	j = devop_mb_values(&t);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "[\"0xFFFF\",\"0x00A0\"]");
	free(s);
	json_decref(j);
	/* errors */
	assert_int_equal(devop_classify(-ETIMEDOUT), DEVOP_NO_ANSWER);
	assert_int_equal(devop_classify(-(BUS_EXCEPTION_BASE + 2)), DEVOP_EXCEPTION);
	assert_int_equal(devop_classify(-EBUSY), DEVOP_BUSY);
	assert_int_equal(devop_classify(-ECANCELED), DEVOP_STOPPED);
	assert_string_equal(devop_err_text(-ETIMEDOUT, NULL, buf, sizeof(buf)),
			    "device did not answer: timeout");
	assert_string_equal(devop_err_text(-(BUS_EXCEPTION_BASE + 2), NULL, buf, sizeof(buf)),
			    "exception 2 (illegal data address)");
	assert_null(devop_unreadable(&devs[0], buf, sizeof(buf)));
	devs[0].health = DEV_IDENTIFYING;
	assert_string_equal(devop_unreadable(&devs[0], buf, sizeof(buf)),
			    "Left IR: device not identified yet (identifying)");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, each_setup, each_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_parse),	     T(test_bad_commands),    T(test_hello),
	    T(test_get_settings),    T(test_tariffs),	      T(test_settings_changes),
	    T(test_set_settings),    T(test_reboot),	      T(test_readings),
	    T(test_bicom),	     T(test_detect),	      T(test_modbus_read),
	    T(test_modbus_bad),	     T(test_modbus_write),    T(test_modbus_many_values),
	    T(test_write_cert),	     T(test_write_cert_size), T(test_upgrade),
	    T(test_hadisc_meter),    T(test_hadisc_units),    T(test_hadisc_bicom_and_gateway),
	    T(test_hadisc_announce), T(test_hadisc_command),  T(test_devop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
