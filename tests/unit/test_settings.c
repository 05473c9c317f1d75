/* Unit tests of the settings store: table, validation, persistence, CRC. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg/settings.h"

#define SERIAL "SG000013"

// clang-format off
/* Every key of 000 §4.2.1 get_settings, OCR fixed to underscore names. */
static const char *const keys_000[] = {
	"locked", "description", "location", "wifi_ssid", "wifi_password",
	"ntp_server1", "ntp_server2", "ntp_server3",
	"push1_protocol", "push1_resp_time", "mqtt1_server", "mqtt1_port", "mqtt1_cert_file",
	"mqtt1_key_file", "mqtt1_roottopic", "mqtt1_sub_topic", "mqtt1_pub_topic",
	"mqtt1_username", "mqtt1_password", "mqtt1_tls",
	"push2_protocol", "push2_resp_time", "mqtt2_server", "mqtt2_port", "mqtt2_cert_file",
	"mqtt2_key_file", "mqtt2_roottopic", "mqtt2_sub_topic", "mqtt2_pub_topic",
	"mqtt2_username", "mqtt2_password", "mqtt2_tls",
	"connection_mode", "wifi_max_retry", "sg_modbus_addr", "tcp_port", "http_port",
	"timezone", "time_sync_src",
	"left_ir_enabled", "ir_counter_addr", "leftir_pushlink", "leftir_pushintv",
	"ir_ext_rel_mode", "ir_relay_desc",
	"rs485_baud_rate", "rs485_stop_bits", "rs485_parity", "rs485_data_bits",
	"log_disable1", "log_disable2", "mqtt1_loglevel", "mqtt2_loglevel", "pcnt_threshold",
	"serial_number", "model_type", "debug_console",
};

/* Newer keys (001). */
static const char *const keys_001[] = {
	"auth_enabled", "auth_username", "auth_password", "pulse_enabled", "pulse_per_kwh",
	"temp_enabled", "automation_enabled", "udp_discovery", "modbus_tcp_enabled",
	"ntp_enabled", "time_sync_period", "dst_auto", "ip_mode", "static_ip", "static_netmask",
	"static_gateway", "static_dns1", "static_dns2", "wifi_ap_fallback", "leftir_timesync",
	"leftir_tariffs", "ir_relay_pushlink", "ir_relay_pushintv", "mqtt1_ca_file",
	"mqtt2_ca_file", "ha_discovery", "poll_meas_interval", "poll_counter_interval",
	"leftir_cache_ms", "ir_relay_cache_ms",
	"rec1_name", "rec1_source", "rec1_device", "rec1_counter",
	"rec2_name", "rec2_source", "rec2_device", "rec2_counter",
	"rec3_name", "rec3_source", "rec3_device", "rec3_counter",
	"rec4_name", "rec4_source", "rec4_device", "rec4_counter",
	"rec5_name", "rec5_source", "rec5_device", "rec5_counter",
	"rec6_name", "rec6_source", "rec6_device", "rec6_counter",
	"rec7_name", "rec7_source", "rec7_device", "rec7_counter",
	"rec8_name", "rec8_source", "rec8_device", "rec8_counter",
	"calc1_name", "calc1_expr", "calc2_name", "calc2_expr",
	"calc3_name", "calc3_expr", "calc4_name", "calc4_expr",
};

/* rs485_*_1..16 */
static const char *const slot_prefix[] = {"rs485_type_", "rs485_addr_", "rs485_desc_",
					  "rs485_pushlnk", "rs485_pushint", "rs485_cache_ms_"};
// clang-format on

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
	char dir[64];
	struct settings *s;
	char err[256];
};

static void path_in(const struct fx *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
}

static bool exists(const struct fx *f, const char *name)
{
	char p[PATH_MAX];

	path_in(f, name, p, sizeof(p));
	return access(p, F_OK) == 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_settings.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(settings_init(&f->s, f->dir, SERIAL, "SG-W1"), 0);
	*state = f;
	return 0;
}

/* Number of files in the state dir whose name starts with prefix. */
static int count_prefix(const struct fx *f, const char *prefix, bool remove)
{
	struct dirent *e;
	char p[PATH_MAX];
	DIR *d = opendir(f->dir);
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		n++;
		path_in(f, e->d_name, p, sizeof(p));
		if (remove)
			unlink(p);
	}
	closedir(d);
	return n;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	settings_fini(f->s);
	count_prefix(f, "settings.json", true);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* A fresh settings object reading the same state dir. */
static struct settings *reopen(const struct fx *f, int want_rc, char *err, size_t errlen)
{
	struct settings *s2;

	assert_int_equal(settings_init(&s2, f->dir, SERIAL, "SG-W1"), 0);
	assert_int_equal(settings_load(s2, err, errlen), want_rc);
	return s2;
}

static int set1(struct fx *f, const char *key, json_t *v)
{
	json_t *obj = json_object();
	int rc;

	json_object_set_new(obj, key, v);
	f->err[0] = '\0';
	rc = settings_set_json(f->s, obj, f->err, sizeof(f->err));
	json_decref(obj);
	return rc;
}

/* Bitwise CRC-32/ISO-HDLC, independent of the table-driven one under test. */
static uint32_t ref_crc32(const char *buf)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; buf[i]; i++) {
		c ^= (uint8_t)buf[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

/* Write a settings file whose CRC is right for obj (steals obj). */
static void write_doc(const struct fx *f, json_t *obj)
{
	char *canon = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT), crc[16], p[PATH_MAX];
	json_t *doc;

	snprintf(crc, sizeof(crc), "0x%08x", ref_crc32(canon));
	free(canon);
	doc = json_pack("{s:i, s:s, s:o}", "version", 1, "crc", crc, "settings", obj);
	path_in(f, "settings.json", p, sizeof(p));
	assert_int_equal(json_dump_file(doc, p, 0), 0);
	json_decref(doc);
}

static void test_ref_crc(void **state)
{
	(void)state;
	assert_int_equal(ref_crc32("123456789"), 0xCBF43926u);
}

static void test_all_keys_exist(void **state)
{
	char k[32];

	(void)state;
	for (size_t i = 0; i < N(keys_000); i++) {
		if (!settings_def(keys_000[i]))
			fail_msg("000 key %s missing", keys_000[i]);
	}
	for (size_t i = 0; i < N(keys_001); i++) {
		if (!settings_def(keys_001[i]))
			fail_msg("001 key %s missing", keys_001[i]);
	}
	for (size_t p = 0; p < N(slot_prefix); p++) {
		for (int n = 1; n <= 16; n++) {
			snprintf(k, sizeof(k), "%s%d", slot_prefix[p], n);
			if (!settings_def(k))
				fail_msg("slot key %s missing", k);
		}
	}
	assert_int_equal(settings_count(), N(keys_000) + N(keys_001) + 16 * N(slot_prefix));
	assert_null(settings_def("rs485_type_17"));
	assert_null(settings_def("foo"));
	assert_null(settings_def_at(settings_count()));
}

static void test_defaults(void **state)
{
	struct fx *f = *state;
	json_t *all = settings_to_json(f->s, true);

	for (size_t i = 0; i < settings_count(); i++) {
		const struct set_def *d = settings_def_at(i);
		json_t *v = json_object_get(all, d->key);

		assert_non_null(v);
		if (d->type == SET_INT) {
			assert_true(json_is_integer(v));
			assert_true(d->def_int >= d->min && d->def_int <= d->max);
		} else {
			assert_true(json_is_string(v));
			assert_true(strlen(json_string_value(v)) <= d->maxlen);
		}
	}
	assert_int_equal(json_object_size(all), settings_count());
	json_decref(all);
	assert_int_equal(settings_int(f->s, "sg_modbus_addr"), 34);
	assert_int_equal(settings_int(f->s, "tcp_port"), 10001);
	assert_int_equal(settings_int(f->s, "http_port"), 80);
	assert_int_equal(settings_int(f->s, "timezone"), 60);
	assert_int_equal(settings_int(f->s, "connection_mode"), 2);
	assert_int_equal(settings_int(f->s, "ir_counter_addr"), 33);
	assert_int_equal(settings_int(f->s, "rs485_baud_rate"), 7);
	assert_int_equal(settings_int(f->s, "rs485_addr_12"), 12);
	assert_int_equal(settings_int(f->s, "rs485_pushint16"), 600);
	assert_int_equal(settings_int(f->s, "pulse_per_kwh"), 1000);
	assert_string_equal(settings_str(f->s, "rs485_desc_7"), "RS485 Device 7");
	assert_string_equal(settings_str(f->s, "ir_relay_desc"), "IR Bicom");
	assert_string_equal(settings_str(f->s, "mqtt1_roottopic"), SERIAL);
	assert_string_equal(settings_str(f->s, "mqtt2_roottopic"), SERIAL);
	assert_string_equal(settings_str(f->s, "mqtt1_sub_topic"), "cmd");
	assert_string_equal(settings_str(f->s, "mqtt2_pub_topic"), "publish");
	assert_string_equal(settings_str(f->s, "serial_number"), SERIAL);
	assert_string_equal(settings_str(f->s, "model_type"), "SG-W1");
	assert_string_equal(settings_str(f->s, "auth_username"), "admin");
	assert_string_equal(settings_str(f->s, "auth_password"), "iskra");
	assert_true(settings_def("serial_number")->readonly);
	assert_true(settings_def("mqtt1_password")->secret);
}

/* A refused change leaves values, CRC, generation and the file untouched. */
static void expect_refused(struct fx *f, json_t *obj, const char *want_in_err)
{
	uint32_t crc = settings_crc(f->s);
	unsigned gen = settings_generation(f->s);

	f->err[0] = '\0';
	assert_int_equal(settings_set_json(f->s, obj, f->err, sizeof(f->err)), -EINVAL);
	json_decref(obj);
	if (!strstr(f->err, want_in_err))
		fail_msg("error '%s' does not mention '%s'", f->err, want_in_err);
	assert_int_equal(settings_crc(f->s), crc);
	assert_int_equal(settings_generation(f->s), gen);
	assert_false(exists(f, "settings.json"));
}

/* As expect_refused, once settings.json exists: it keeps its content. */
static void expect_refused_saved(struct fx *f, json_t *obj, const char *want_in_err)
{
	uint32_t crc = settings_crc(f->s);
	unsigned gen = settings_generation(f->s);

	f->err[0] = '\0';
	assert_int_equal(settings_set_json(f->s, obj, f->err, sizeof(f->err)), -EINVAL);
	json_decref(obj);
	if (!strstr(f->err, want_in_err))
		fail_msg("error '%s' does not mention '%s'", f->err, want_in_err);
	assert_int_equal(settings_crc(f->s), crc);
	assert_int_equal(settings_generation(f->s), gen);
}

static void test_refused(void **state)
{
	struct fx *f = *state;
	char long_str[60];

	memset(long_str, 'x', sizeof(long_str) - 1);
	long_str[sizeof(long_str) - 1] = '\0';
	expect_refused(f, json_pack("{s:i}", "rs485_baud_rate", 9),
		       "rs485_baud_rate: 9 is out of range 0…7");
	expect_refused(f, json_pack("{s:i}", "sg_modbus_addr", 0), "sg_modbus_addr");
	expect_refused(f, json_pack("{s:i}", "timezone", 841), "timezone");
	expect_refused(f, json_pack("{s:s}", "http_port", "80x"), "http_port: expected an integer");
	expect_refused(f, json_pack("{s:s}", "http_port", " 80"), "http_port: expected an integer");
	expect_refused(f, json_pack("{s:f}", "http_port", 80.5), "http_port: expected an integer");
	expect_refused(f, json_pack("{s:b}", "locked", 1), "locked: expected an integer");
	expect_refused(f, json_pack("{s:{}}", "tcp_port"), "tcp_port: expected an integer");
	expect_refused(f, json_pack("{s:i}", "description", 5), "description: expected a string");
	expect_refused(f, json_pack("{s:s}", "description", long_str),
		       "description: longer than 40");
	expect_refused(f, json_pack("{s:s}", "location", "a\nb"), "location: control characters");
	expect_refused(f, json_pack("{s:s}", "location", "a\x7f"), "location: control characters");
	expect_refused(f, json_pack("{s:s%}", "location", "a\0b", (size_t)3),
		       "location: control characters");
	expect_refused(f, json_pack("{s:s}", "static_ip", "10.0.0"), "static_ip");
	expect_refused(f, json_pack("{s:s}", "mqtt1_cert_file", "../etc/passwd"),
		       "mqtt1_cert_file");
	expect_refused(f, json_pack("{s:s}", "mqtt1_pub_topic", "a/#"), "mqtt1_pub_topic");
	expect_refused(f, json_pack("{s:i}", "foo", 1), "unknown setting 'foo'");
	expect_refused(f, json_pack("{s:s}", "serial_number", "X"), "serial_number is read-only");
	expect_refused(
	    f,
	    json_pack("{s:i, s:s, s:i}", "http_port", 8080, "description", "ok", "rs485_parity", 3),
	    "rs485_parity");
	expect_refused(f, json_pack("[i]", 1), "object");
	assert_int_equal(settings_int(f->s, "http_port"), 80);
	assert_string_equal(settings_str(f->s, "description"), "SG");
}

static void test_kv_refused(void **state)
{
	struct fx *f = *state;
	char *const bad_int[] = {"http_port=8080", "tcp_port=99999"};
	char *const no_eq[] = {"http_port"};
	char *const bad_utf8[] = {"location=\xc3\x28"};

	assert_int_equal(settings_set_kv(f->s, bad_int, 2, f->err, sizeof(f->err)), -EINVAL);
	assert_non_null(strstr(f->err, "tcp_port: 99999 is out of range 1…65535"));
	assert_int_equal(settings_int(f->s, "http_port"), 80);
	assert_int_equal(settings_set_kv(f->s, no_eq, 1, f->err, sizeof(f->err)), -EINVAL);
	assert_non_null(strstr(f->err, "key=value"));
	assert_int_equal(settings_set_kv(f->s, bad_utf8, 1, f->err, sizeof(f->err)), -EINVAL);
	assert_non_null(strstr(f->err, "location"));
	assert_false(exists(f, "settings.json"));
}

static void test_set_and_round_trip(void **state)
{
	struct fx *f = *state;
	char *const kv[] = {"http_port=8080", "description=Kotlovnica ⚡", "rs485_type_3=4",
			    "timezone=-60", "static_ip=192.168.1.10"};
	unsigned gen = settings_generation(f->s);
	struct settings *s2;
	struct stat st;
	char p[PATH_MAX];

	assert_int_equal(settings_set_kv(f->s, kv, N(kv), f->err, sizeof(f->err)), 0);
	assert_int_equal(set1(f, "mqtt1_password", json_string("s3cret")), 0);
	assert_int_equal(set1(f, "rs485_pushint2", json_string("900")), 0);
	assert_true(settings_generation(f->s) == gen + 3);
	assert_int_equal(settings_int(f->s, "http_port"), 8080);
	assert_int_equal(settings_int(f->s, "timezone"), -60);

	path_in(f, "settings.json", p, sizeof(p));
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_false(exists(f, "settings.json.tmp"));

	s2 = reopen(f, 0, f->err, sizeof(f->err));
	assert_int_equal(settings_int(s2, "http_port"), 8080);
	assert_int_equal(settings_int(s2, "rs485_type_3"), 4);
	assert_int_equal(settings_int(s2, "rs485_pushint2"), 900);
	assert_string_equal(settings_str(s2, "description"), "Kotlovnica ⚡");
	assert_string_equal(settings_str(s2, "mqtt1_password"), "s3cret");
	assert_string_equal(settings_str(s2, "static_ip"), "192.168.1.10");
	assert_int_equal(settings_crc(s2), settings_crc(f->s));
	settings_fini(s2);
}

static void test_crc(void **state)
{
	struct fx *f = *state;
	uint32_t c0 = settings_crc(f->s), c1;

	assert_int_equal(settings_crc(f->s), c0);
	assert_int_equal(set1(f, "location", json_string("Basement")), 0);
	c1 = settings_crc(f->s);
	assert_int_not_equal(c1, c0);
	/* Setting the same value again is not a change. */
	assert_int_equal(set1(f, "location", json_string("Basement")), 0);
	assert_int_equal(settings_crc(f->s), c1);
	assert_int_equal(set1(f, "location", json_string("")), 0);
	assert_int_equal(settings_crc(f->s), c0);
}

/* The file carries every key and the CRC that settings_crc reports, which
 * is the reference CRC-32 of the canonical form. */
static void test_crc_matches_file(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], want[16], *canon;
	json_t *doc, *obj;

	assert_int_equal(set1(f, "locked", json_integer(1)), 0);
	path_in(f, "settings.json", p, sizeof(p));
	doc = json_load_file(p, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
	obj = json_object_get(doc, "settings");
	assert_int_equal(json_object_size(obj), settings_count());
	snprintf(want, sizeof(want), "0x%08x", settings_crc(f->s));
	assert_string_equal(json_string_value(json_object_get(doc, "crc")), want);
	canon = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
	assert_int_equal(ref_crc32(canon), settings_crc(f->s));
	free(canon);
	json_decref(doc);
}

static void write_text(const struct fx *f, const char *name, const char *txt)
{
	char p[PATH_MAX];
	FILE *fp;

	path_in(f, name, p, sizeof(p));
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(txt, fp);
	fclose(fp);
}

static char *read_text(const struct fx *f, const char *name)
{
	char p[PATH_MAX];
	char *buf = calloc(1, 1 << 16);
	FILE *fp;

	path_in(f, name, p, sizeof(p));
	fp = fopen(p, "r");
	assert_non_null(fp);
	assert_true(fread(buf, 1, (1 << 16) - 1, fp) > 0);
	fclose(fp);
	return buf;
}

static void unlink_bad(const struct fx *f)
{
	assert_int_equal(count_prefix(f, "settings.json.bad-", true), 1);
}

static void unlink_prev(const struct fx *f)
{
	char p[PATH_MAX];

	path_in(f, "settings.json.prev", p, sizeof(p));
	unlink(p);
}

/* settings.json is damaged and there is no last good copy: defaults, the
 * damaged file kept under a time-stamped name, the error reported. */
static void expect_bad_file(struct fx *f, const char *want_in_err)
{
	struct settings *s2;
	char err[SETTINGS_ERROR_MAX] = "";

	unlink_prev(f);
	s2 = reopen(f, -EBADMSG, err, sizeof(err));
	if (!strstr(err, want_in_err) || !strstr(err, "factory defaults in use"))
		fail_msg("error '%s' does not mention '%s'", err, want_in_err);
	assert_string_equal(settings_load_error(s2), err);
	assert_int_equal(settings_origin(s2), SETTINGS_DEFAULTS);
	assert_int_equal(settings_int(s2, "http_port"), 80);
	assert_int_equal(settings_crc(s2), settings_crc(f->s));
	assert_int_equal(count_prefix(f, "settings.json.bad-", false), 1);
	assert_false(exists(f, "settings.json"));
	settings_fini(s2);
}

static void test_corrupt_truncated(void **state)
{
	struct fx *f = *state;
	char *txt;

	assert_int_equal(set1(f, "http_port", json_integer(8080)), 0);
	txt = read_text(f, "settings.json");
	/* Back to defaults in memory (this rewrites the file), then cut the file. */
	assert_int_equal(settings_factory_reset(f->s), 0);
	txt[strlen(txt) / 2] = '\0';
	write_text(f, "settings.json", txt);
	free(txt);
	expect_bad_file(f, "settings.json");
}

static void test_corrupt_bitflip(void **state)
{
	struct fx *f = *state;
	char *txt, *p;

	assert_int_equal(set1(f, "http_port", json_integer(8080)), 0);
	txt = read_text(f, "settings.json");
	p = strstr(txt, "8080");
	assert_non_null(p);
	p[0] ^= 0x01; /* '8' -> '9': still valid JSON, wrong CRC */
	assert_int_equal(settings_factory_reset(f->s), 0);
	write_text(f, "settings.json", txt);
	free(txt);
	expect_bad_file(f, "CRC mismatch");
}

static void test_corrupt_invalid_value(void **state)
{
	struct fx *f = *state;

	/* Right CRC, but a value out of range: still refused, naming the key. */
	write_doc(f, json_pack("{s:i, s:i}", "tcp_port", 502, "http_port", 0));
	expect_bad_file(f, "http_port");
	unlink_bad(f);
	write_doc(f, json_pack("{s:s}", "description", "a\tb"));
	expect_bad_file(f, "description");
	unlink_bad(f);
	write_doc(f, json_pack("{s:i}", "description", 1));
	expect_bad_file(f, "description");
}

static void test_truncated_json(void **state)
{
	struct fx *f = *state;

	write_text(f, "settings.json", "{\"version\":1,\"crc\":\"0x0\",\"settin");
	expect_bad_file(f, "settings.json");
}

/* Flip one digit of value in settings.json: valid JSON, wrong CRC. */
static void damage(const struct fx *f, const char *name, const char *value)
{
	char *txt = read_text(f, name), *p = strstr(txt, value);

	assert_non_null(p);
	p[0] ^= 0x01;
	write_text(f, name, txt);
	free(txt);
}

/* Every save leaves settings.json.prev equal to settings.json. */
static void test_prev_written_at_save(void **state)
{
	struct fx *f = *state;
	char *a, *b;

	assert_int_equal(set1(f, "http_port", json_integer(8080)), 0);
	a = read_text(f, "settings.json");
	b = read_text(f, "settings.json.prev");
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_false(exists(f, "settings.json.prev.tmp"));
}

/* A damaged settings.json: the last good copy is loaded (authentication and
 * ports stay as they were), written back, and the error is reported. */
static void test_prev_restores(void **state)
{
	struct fx *f = *state;
	char err[SETTINGS_ERROR_MAX] = "";
	struct settings *s2;

	assert_int_equal(set1(f, "auth_enabled", json_integer(1)), 0);
	assert_int_equal(set1(f, "http_port", json_integer(8080)), 0);
	damage(f, "settings.json", "8080");
	s2 = reopen(f, -EBADMSG, err, sizeof(err));
	if (!strstr(err, "CRC mismatch") || !strstr(err, "restored") ||
	    !strstr(err, "settings.json.prev") || !strstr(err, "settings.json.bad-"))
		fail_msg("error: %s", err);
	assert_int_equal(settings_origin(s2), SETTINGS_FROM_PREV);
	assert_string_equal(settings_origin_name(settings_origin(s2)), "settings.json.prev");
	assert_int_equal(settings_int(s2, "auth_enabled"), 1);
	assert_int_equal(settings_int(s2, "http_port"), 8080);
	assert_int_equal(settings_crc(s2), settings_crc(f->s));
	assert_int_equal(count_prefix(f, "settings.json.bad-", false), 1);
	settings_fini(s2);
	/* settings.json is whole again: the next start is clean. */
	s2 = reopen(f, 0, err, sizeof(err));
	assert_int_equal(settings_origin(s2), SETTINGS_FROM_FILE);
	assert_string_equal(settings_load_error(s2), "");
	assert_int_equal(settings_int(s2, "auth_enabled"), 1);
	settings_fini(s2);
}

/* Both damaged: defaults, both kept, and the error says so. */
static void test_prev_damaged_too(void **state)
{
	struct fx *f = *state;
	char err[SETTINGS_ERROR_MAX] = "";
	struct settings *s2;

	assert_int_equal(set1(f, "http_port", json_integer(8080)), 0);
	damage(f, "settings.json", "8080");
	damage(f, "settings.json.prev", "8080");
	s2 = reopen(f, -EBADMSG, err, sizeof(err));
	if (!strstr(err, "settings.json.prev: CRC mismatch") ||
	    !strstr(err, "factory defaults in use"))
		fail_msg("error: %s", err);
	assert_int_equal(settings_origin(s2), SETTINGS_DEFAULTS);
	assert_int_equal(settings_int(s2, "http_port"), 80);
	assert_int_equal(count_prefix(f, "settings.json.bad-", false), 1);
	assert_int_equal(count_prefix(f, "settings.json.prev.bad-", false), 1);
	settings_fini(s2);
}

/* A second damaged file does not overwrite the copy of the first. */
static void test_two_damaged_both_kept(void **state)
{
	struct fx *f = *state;
	struct settings *s2;

	write_text(f, "settings.json", "first damage");
	s2 = reopen(f, -EBADMSG, f->err, sizeof(f->err));
	settings_fini(s2);
	write_text(f, "settings.json", "second damage");
	s2 = reopen(f, -EBADMSG, f->err, sizeof(f->err));
	settings_fini(s2);
	assert_int_equal(count_prefix(f, "settings.json.bad-", false), 2);
	assert_int_equal(count_prefix(f, "settings.json", false), 2);
}

/* A .prev missing (written by an older sgd) or stale is rewritten at load. */
static void test_prev_refreshed_at_load(void **state)
{
	struct fx *f = *state;
	struct settings *s2;
	char *a, *b;

	assert_int_equal(set1(f, "tcp_port", json_integer(502)), 0);
	unlink_prev(f);
	s2 = reopen(f, 0, f->err, sizeof(f->err));
	settings_fini(s2);
	a = read_text(f, "settings.json");
	b = read_text(f, "settings.json.prev");
	assert_string_equal(a, b);
	free(b);
	write_text(f, "settings.json.prev", "stale");
	s2 = reopen(f, 0, f->err, sizeof(f->err));
	settings_fini(s2);
	b = read_text(f, "settings.json.prev");
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void test_missing_and_tmp(void **state)
{
	struct fx *f = *state;
	struct settings *s2;

	/* No file: defaults, success. A half-written .tmp is ignored and removed. */
	write_text(f, "settings.json.tmp", "{\"version\":1,\"cr");
	s2 = reopen(f, 0, f->err, sizeof(f->err));
	assert_int_equal(settings_crc(s2), settings_crc(f->s));
	assert_false(exists(f, "settings.json.tmp"));
	settings_fini(s2);

	assert_int_equal(set1(f, "tcp_port", json_integer(502)), 0);
	write_text(f, "settings.json.tmp", "garbage");
	s2 = reopen(f, 0, f->err, sizeof(f->err));
	assert_int_equal(settings_int(s2, "tcp_port"), 502);
	assert_false(exists(f, "settings.json.tmp"));
	settings_fini(s2);
}

/* A file from a newer version with extra keys, or an older one with fewer,
 * still loads; identity keys in the file do not override the board's. */
static void test_unknown_keys_in_file(void **state)
{
	struct fx *f = *state;
	struct settings *s2;

	write_doc(f, json_pack("{s:i, s:i, s:s}", "tcp_port", 502, "future_key", 7, "serial_number",
			       "SGFAKE"));
	s2 = reopen(f, 0, f->err, sizeof(f->err));
	assert_int_equal(settings_int(s2, "tcp_port"), 502);
	assert_int_equal(settings_int(s2, "http_port"), 80);
	assert_string_equal(settings_str(s2, "serial_number"), SERIAL);
	settings_fini(s2);
}

static void test_factory_reset(void **state)
{
	struct fx *f = *state;
	uint32_t c0 = settings_crc(f->s);
	unsigned gen;
	struct settings *s2;

	assert_int_equal(set1(f, "mqtt1_server", json_string("broker.local")), 0);
	gen = settings_generation(f->s);
	assert_int_equal(settings_factory_reset(f->s), 0);
	assert_true(settings_generation(f->s) > gen);
	assert_int_equal(settings_crc(f->s), c0);
	assert_string_equal(settings_str(f->s, "mqtt1_server"), "");
	assert_string_equal(settings_str(f->s, "serial_number"), SERIAL);
	s2 = reopen(f, 0, f->err, sizeof(f->err));
	assert_string_equal(settings_str(s2, "mqtt1_server"), "");
	settings_fini(s2);
}

/* A client may post back the whole document it read: GET /api/settings
 * (read-only keys, no secrets) or the legacy get_settings (secrets as ""). */
static void test_post_back_whole_document(void **state)
{
	struct fx *f = *state;
	json_t *doc;
	char *const kv[] = {"serial_number=" SERIAL, "auth_password=", "location=Roof"};

	doc = json_pack("{s:s, s:s}", "auth_password", "s3cret", "mqtt1_password", "m");
	assert_int_equal(settings_set_json(f->s, doc, f->err, sizeof(f->err)), 0);
	json_decref(doc);
	/* The REST read with one change. */
	doc = settings_to_json(f->s, false);
	json_object_set_new(doc, "description", json_string("Cellar"));
	assert_int_equal(settings_set_json(f->s, doc, f->err, sizeof(f->err)), 0);
	json_decref(doc);
	assert_string_equal(settings_str(f->s, "description"), "Cellar");
	/* The legacy read: every secret as "", which keeps it. */
	doc = settings_to_json(f->s, true);
	for (size_t i = 0; i < settings_count(); i++)
		if (settings_def_at(i)->secret)
			json_object_set_new(doc, settings_def_at(i)->key, json_string(""));
	json_object_set_new(doc, "location", json_string("Attic"));
	assert_int_equal(settings_set_json(f->s, doc, f->err, sizeof(f->err)), 0);
	json_decref(doc);
	assert_string_equal(settings_str(f->s, "location"), "Attic");
	assert_string_equal(settings_str(f->s, "auth_password"), "s3cret");
	assert_string_equal(settings_str(f->s, "mqtt1_password"), "m");
	/* The same rule for sgctl set (key=value). */
	assert_int_equal(settings_set_kv(f->s, kv, 3, f->err, sizeof(f->err)), 0);
	assert_string_equal(settings_str(f->s, "location"), "Roof");
	assert_string_equal(settings_str(f->s, "auth_password"), "s3cret");
	/* A read-only key with another value is still refused, whole. */
	expect_refused_saved(f, json_pack("{s:s, s:s}", "location", "X", "serial_number", "SG1"),
			     "serial_number is read-only");
	expect_refused_saved(f, json_pack("{s:s}", "model_type", "SG-X"),
			     "model_type is read-only");
	assert_string_equal(settings_str(f->s, "location"), "Roof");
}

static void test_secrets_hidden(void **state)
{
	struct fx *f = *state;
	json_t *pub = settings_to_json(f->s, false), *all = settings_to_json(f->s, true);

	for (size_t i = 0; i < settings_count(); i++) {
		const struct set_def *d = settings_def_at(i);

		assert_non_null(json_object_get(all, d->key));
		if (d->secret)
			assert_null(json_object_get(pub, d->key));
		else
			assert_non_null(json_object_get(pub, d->key));
	}
	assert_null(json_object_get(pub, "wifi_password"));
	assert_null(json_object_get(pub, "mqtt2_password"));
	assert_null(json_object_get(pub, "auth_password"));
	json_decref(pub);
	json_decref(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_keys_exist),
	    cmocka_unit_test(test_ref_crc),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kv_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_and_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crc_matches_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_bitflip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_invalid_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_and_tmp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prev_written_at_save, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prev_restores, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prev_damaged_too, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_damaged_both_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prev_refreshed_at_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_keys_in_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_factory_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secrets_hidden, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_post_back_whole_document, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
