/* User settings: one static table of every key of the Iskra get_settings
 * (000 §4.2.1) and of the newer 001 keys; values validated all-or-nothing and
 * persisted atomically as settings.json with a CRC-32. */
#include "sg/settings.h"
#include "sg/calcexpr.h"
#include "sg/errbuf.h"
#include "sg/quarantine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETTINGS_FILE "settings.json"
/* The last good copy: the same text as the main file, rewritten after it. */
#define PREV_SUFFIX ".prev"
#define SETTINGS_VERSION 1
/* A settings file is a few KiB; anything far bigger is not ours. */
#define SETTINGS_FILE_MAX (1024 * 1024)

/* One entry per line reads as a table. */
// clang-format off
#define I(k, lo, hi, d) {.key = k, .type = SET_INT, .min = lo, .max = hi, .def_int = d}
#define S(k, len, d) {.key = k, .type = SET_STR, .maxlen = len, .def_str = d}
#define SECRET(k, len, d) {.key = k, .type = SET_STR, .maxlen = len, .def_str = d, .secret = true}
#define RO(k, len, d) {.key = k, .type = SET_STR, .maxlen = len, .def_str = d, .readonly = true}

/* Lengths: meters store 40-character descriptions; SSIDs are at most 32
 * bytes; WPA passphrases at most 63 (64 as hex). */
#define TEXT_LEN 40
#define HOST_LEN 128
#define TOPIC_LEN 128
#define SECRET_LEN 64
#define FILE_LEN 64
#define IP_LEN 15
#define DAY_S 86400
#define CACHE_MS_MAX 60000
#define CACHE_MS_DEF 1000

/* One push link (000 order). Protocol 0 disabled, 1 MQTT, 2 Standard TCP;
 * tls 0 TCP, 1 TLS, 2 TLS with mutual authentication. The root topic's
 * default is the serial number (set at init, see def_str()). */
#define LINK(n, proto)                                                                             \
	I("push" #n "_protocol", 0, 2, proto), I("push" #n "_resp_time", 1, 300, 10),              \
	    S("mqtt" #n "_server", HOST_LEN, ""), I("mqtt" #n "_port", 1, 65535, 1883),            \
	    S("mqtt" #n "_cert_file", FILE_LEN, ""), S("mqtt" #n "_key_file", FILE_LEN, ""),       \
	    S("mqtt" #n "_roottopic", TOPIC_LEN, ""),                                              \
	    S("mqtt" #n "_sub_topic", TOPIC_LEN, "cmd"),                                           \
	    S("mqtt" #n "_pub_topic", TOPIC_LEN, "publish"),                                       \
	    S("mqtt" #n "_username", SECRET_LEN, ""),                                              \
	    SECRET("mqtt" #n "_password", SECRET_LEN, ""), I("mqtt" #n "_tls", 0, 2, 0)

#define REC(n)                                                                                     \
	S("rec" #n "_name", 32, "Recorder " #n), I("rec" #n "_source", 0, 2, 0),                   \
	    I("rec" #n "_device", 0, 16, 0), I("rec" #n "_counter", 0, 23, 0),
#define CALC(n) S("calc" #n "_name", 32, ""), S("calc" #n "_expr", 64, ""),
#define X8(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8)
#define X16(M)                                                                                     \
	M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15) M(16)
/* Slot types are enum desc_class: 0 not connected, 1 energy meter, 2 Bicom,
 * 3 generic Modbus, 4 power-quality analyser. */
#define SLOT_TYPE(n) I("rs485_type_" #n, 0, 4, 0),
#define SLOT_ADDR(n) I("rs485_addr_" #n, 1, 247, n),
#define SLOT_DESC(n) S("rs485_desc_" #n, TEXT_LEN, "RS485 Device " #n),
/* Push link: 0 none, 1 link 1, 2 link 2, 3 both. */
#define SLOT_LINK(n) I("rs485_pushlnk" #n, 0, 3, 0),
#define SLOT_INTV(n) I("rs485_pushint" #n, 1, DAY_S, 600),
/* Modbus TCP gateway: how old (ms) a background read may be to answer a
 * forwarded read from the register cache; 0 = always the bus. */
#define SLOT_CACHE(n) I("rs485_cache_ms_" #n, 0, CACHE_MS_MAX, CACHE_MS_DEF),

static const struct set_def defs[] = {
	/* 000 §4.2.1, in the order get_settings prints them. */
	I("locked", 0, 1, 0),
	S("description", TEXT_LEN, "SG"),
	S("location", TEXT_LEN, ""),
	S("wifi_ssid", 32, ""),
	SECRET("wifi_password", SECRET_LEN, ""),
	S("ntp_server1", HOST_LEN, "0.pool.ntp.org"),
	S("ntp_server2", HOST_LEN, "1.pool.ntp.org"),
	S("ntp_server3", HOST_LEN, "2.pool.ntp.org"),
	LINK(1, 1),
	LINK(2, 0),
	/* 0 Ethernet, 1 Wi-Fi, 2 automatic (Ethernet, else Wi-Fi). */
	I("connection_mode", 0, 2, 2),
	I("wifi_max_retry", 0, 255, 10),
	I("sg_modbus_addr", 1, 247, 34),
	I("tcp_port", 1, 65535, 10001),
	I("http_port", 1, 65535, 80),
	/* Minutes east of UTC. */
	I("timezone", -720, 840, 60),
	/* 0 none, 1 NTP (ntp_server1..3), 2 the host's own clock. */
	I("time_sync_src", 0, 2, 1),
	I("left_ir_enabled", 0, 1, 0),
	I("ir_counter_addr", 1, 247, 33),
	I("leftir_pushlink", 0, 3, 0),
	I("leftir_pushintv", 1, DAY_S, 600),
	/* 0 not connected, 1 controlled by SG, 2 controlled by the IR counter. */
	I("ir_ext_rel_mode", 0, 2, 0),
	S("ir_relay_desc", TEXT_LEN, "IR Bicom"),
	/* 0..7 = 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 baud. */
	I("rs485_baud_rate", 0, 7, 7),
	/* 0 one stop bit, 1 two. */
	I("rs485_stop_bits", 0, 1, 0),
	/* 0 none, 1 odd, 2 even. */
	I("rs485_parity", 0, 2, 0),
	/* 0 = 8 data bits, the only format the meters speak. */
	I("rs485_data_bits", 0, 0, 0),
	X16(SLOT_TYPE) X16(SLOT_ADDR) X16(SLOT_DESC) X16(SLOT_LINK) X16(SLOT_INTV)
	/* Bit masks of suppressed log classes per link. */
	I("log_disable1", 0, 65535, 65535),
	I("log_disable2", 0, 65535, 65535),
	I("mqtt1_loglevel", 0, 7, 3),
	I("mqtt2_loglevel", 0, 7, 0),
	I("pcnt_threshold", 0, 65535, 10),
	RO("serial_number", 16, "SG000000"),
	RO("model_type", 16, "SG-E1"),
	I("debug_console", 0, 1, 0),

	/* Newer keys (001, FW 2.09). */
	I("auth_enabled", 0, 1, 0),
	S("auth_username", SECRET_LEN, "admin"),
	SECRET("auth_password", SECRET_LEN, "iskra"),
	I("pulse_enabled", 0, 1, 0),
	I("pulse_per_kwh", 1, 100000, 1000),
	I("temp_enabled", 0, 1, 0),
	I("automation_enabled", 0, 1, 0),
	I("udp_discovery", 0, 1, 1),
	I("modbus_tcp_enabled", 0, 1, 1),
	I("ntp_enabled", 0, 1, 1),
	/* Hours. */
	I("time_sync_period", 1, 168, 24),
	I("dst_auto", 0, 1, 1),
	/* 0 DHCP, 1 static (static_*). */
	I("ip_mode", 0, 1, 0),
	S("static_ip", IP_LEN, ""),
	S("static_netmask", IP_LEN, ""),
	S("static_gateway", IP_LEN, ""),
	S("static_dns1", IP_LEN, ""),
	S("static_dns2", IP_LEN, ""),
	I("wifi_ap_fallback", 0, 1, 0),
	/* Set the left IR meter's clock; read its tariff counters. */
	I("leftir_timesync", 0, 1, 0),
	I("leftir_tariffs", 0, 1, 1),
	I("ir_relay_pushlink", 0, 3, 0),
	I("ir_relay_pushintv", 1, DAY_S, 600),
	S("mqtt1_ca_file", FILE_LEN, ""),
	S("mqtt2_ca_file", FILE_LEN, ""),
	I("ha_discovery", 0, 1, 1),
	/* Seconds between measurement / counter polls of each device. */
	I("poll_meas_interval", 1, 3600, 1),
	I("poll_counter_interval", 1, DAY_S, 10),

	/* Modbus TCP gateway register cache (sgd). New keys go at the end: the
	 * own unit's settings registers follow this order (docs/modbus-map.md). */
	I("leftir_cache_ms", 0, CACHE_MS_MAX, CACHE_MS_DEF),
	I("ir_relay_cache_ms", 0, CACHE_MS_MAX, CACHE_MS_DEF),
	X16(SLOT_CACHE)

	/* Recorders (R-B3): source 0 off, 1 a device counter, 2 the pulse
	 * counter; device = HA index (0 Left IR, 1…16 RS485 N); counter = the
	 * device's counter number (0-based, as /api/counter lists them). */
	X8(REC)

	/* Load-profile "calculate" equations (R-B2): a name and a signed sum
	 * of HA indexes ("1-0"); empty = unused. */
	CALC(1) CALC(2) CALC(3) CALC(4)
};
// clang-format on

#define NKEYS (sizeof(defs) / sizeof(defs[0]))

/* Values indexed like defs[]; strings are owned. */
struct vals {
	long num[NKEYS];
	char *str[NKEYS];
};

/* One subscription: keys[i] is true when defs[i] is one of its keys. */
struct sub {
	settings_cb cb; /* NULL: unsubscribed while the list was being walked */
	void *arg;
	bool keys[NKEYS];
};

struct settings {
	char *state_dir; /* NULL: nothing is persisted */
	char serial[17];
	char model[17];
	char root_default[32];
	unsigned generation;
	struct vals v;
	enum settings_origin origin;
	char load_error[SETTINGS_ERROR_MAX]; /* "" after a clean load */
	struct sub subs[SETTINGS_SUBSCRIBERS_MAX];
	size_t nsubs;
	bool notifying; /* subscribers are being told: no change may start */
};

/* ---- CRC-32/ISO-HDLC (poly 0xEDB88320 reflected, init/xorout ~0) ---- */

static uint32_t crc_table[256];

static void crc_init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_buf(const char *buf, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;

	/* Built on first use; idempotent, so a race only repeats the work. */
	if (!crc_table[1])
		crc_init_table();
	for (size_t i = 0; i < len; i++)
		c = crc_table[(c ^ (uint8_t)buf[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* The CRC of a settings object's canonical form; false only without memory. */
static bool crc_of_object(json_t *obj, uint32_t *crc)
{
	char *txt = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);

	if (!txt)
		return false;
	*crc = crc32_buf(txt, strlen(txt));
	free(txt);
	return true;
}

/* ---- table ---- */

static long key_index(const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(defs[i].key, key))
			return (long)i;
	return -1;
}

const struct set_def *settings_def(const char *key)
{
	long i = key ? key_index(key) : -1;

	return i < 0 ? NULL : &defs[i];
}

size_t settings_count(void)
{
	return NKEYS;
}

const struct set_def *settings_def_at(size_t i)
{
	return i < NKEYS ? &defs[i] : NULL;
}

/* Defaults that depend on the gateway's identity. */
static const char *def_str(const struct settings *s, size_t i)
{
	const char *k = defs[i].key;

	if (!strcmp(k, "serial_number"))
		return s->serial;
	if (!strcmp(k, "model_type"))
		return s->model;
	if (!strcmp(k, "mqtt1_roottopic") || !strcmp(k, "mqtt2_roottopic"))
		return s->root_default;
	return defs[i].def_str;
}

/* ---- value storage ---- */

static void vals_free(struct vals *v)
{
	for (size_t i = 0; i < NKEYS; i++) {
		free(v->str[i]);
		v->str[i] = NULL;
	}
}

static int vals_defaults(const struct settings *s, struct vals *v)
{
	memset(v, 0, sizeof(*v));
	for (size_t i = 0; i < NKEYS; i++) {
		if (defs[i].type == SET_INT) {
			v->num[i] = defs[i].def_int;
			continue;
		}
		v->str[i] = strdup(def_str(s, i));
		if (!v->str[i]) {
			vals_free(v);
			return -ENOMEM;
		}
	}
	return 0;
}

static int vals_copy(struct vals *dst, const struct vals *src)
{
	memcpy(dst->num, src->num, sizeof(dst->num));
	memset(dst->str, 0, sizeof(dst->str));
	for (size_t i = 0; i < NKEYS; i++) {
		if (!src->str[i])
			continue;
		dst->str[i] = strdup(src->str[i]);
		if (!dst->str[i]) {
			vals_free(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

static bool vals_equal(const struct vals *a, const struct vals *b)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (defs[i].type == SET_INT ? a->num[i] != b->num[i]
					    : strcmp(a->str[i], b->str[i]) != 0)
			return false;
	}
	return true;
}

/* ---- validation ---- */

/* Length of the UTF-8 sequence starting with lead byte c, 0 if c cannot lead. */
static int utf8_seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

/* Decode one well-formed sequence (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_decode(const unsigned char *p, int n, uint32_t *cp)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	uint32_t c = n == 1 ? p[0] : p[0] & (0x7F >> n);

	for (int k = 1; k < n; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return false;
		c = (c << 6) | (p[k] & 0x3F);
	}
	if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return false;
	*cp = c;
	return true;
}

/* NULL if txt is printable UTF-8, else what is wrong with it. */
static const char *text_problem(const char *txt, size_t len)
{
	const unsigned char *p = (const unsigned char *)txt;

	for (size_t i = 0; i < len;) {
		int n = utf8_seq_len(p[i]);
		uint32_t cp;

		if (!n || i + n > len || !utf8_decode(p + i, n, &cp))
			return "invalid UTF-8";
		/* C0, DEL and C1 controls would break logs, MQTT topics and HTML. */
		if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
			return "control characters are not allowed";
		i += n;
	}
	return NULL;
}

static bool is_ipv4_key(const char *key)
{
	return !strncmp(key, "static_", 7);
}

static bool is_file_key(const char *key)
{
	size_t n = strlen(key);

	return n > 5 && !strcmp(key + n - 5, "_file");
}

static bool is_calc_key(const char *key)
{
	return !strncmp(key, "calc", 4) && strstr(key, "_expr");
}

static bool is_topic_key(const char *key)
{
	return strstr(key, "topic") != NULL;
}

/* Key-specific rules on top of length and UTF-8. */
static int check_str_rules(const struct set_def *d, const char *v, char *err, size_t errlen)
{
	struct in_addr a;

	if (is_ipv4_key(d->key) && *v && inet_pton(AF_INET, v, &a) != 1) {
		err_set(err, errlen, "%s: '%s' is not an IPv4 address like 192.168.1.10 (or empty)",
			d->key, v);
		return -EINVAL;
	}
	/* Certificates live in the file manager's folder: a bare name only. */
	if (is_file_key(d->key) && (strchr(v, '/') || v[0] == '.')) {
		err_set(err, errlen, "%s: expected a file name without '/' or leading '.'", d->key);
		return -EINVAL;
	}
	if (is_calc_key(d->key)) {
		struct calc_term t[CALC_TERMS_MAX];
		char why[96];

		if (calc_parse(v, t, why, sizeof(why)) < 0) {
			err_set(err, errlen, "%s: %s (e.g. \"1-0\" or \"0+2+3\", HA indexes)",
				d->key, why);
			return -EINVAL;
		}
	}
	if (is_topic_key(d->key) && strpbrk(v, "+#")) {
		err_set(err, errlen, "%s: MQTT wildcards '+' and '#' are not allowed", d->key);
		return -EINVAL;
	}
	return 0;
}

static int check_str(const struct set_def *d, json_t *jv, char **out, char *err, size_t errlen)
{
	const char *v, *why;
	size_t len;

	if (!json_is_string(jv)) {
		err_set(err, errlen, "%s: expected a string", d->key);
		return -EINVAL;
	}
	v = json_string_value(jv);
	len = json_string_length(jv);
	if (len > d->maxlen) {
		err_set(err, errlen, "%s: longer than %zu bytes", d->key, d->maxlen);
		return -EINVAL;
	}
	/* strlen != len: an embedded NUL (possible via \u0000). */
	why = strlen(v) != len ? "control characters are not allowed" : text_problem(v, len);
	if (why) {
		err_set(err, errlen, "%s: %s", d->key, why);
		return -EINVAL;
	}
	if (check_str_rules(d, v, err, errlen))
		return -EINVAL;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

/* A decimal integer string, whole and without blanks ("5", "-60"). */
static bool parse_long(const char *txt, long long *out)
{
	char *end;
	long long n;

	if (!*txt || !(*txt == '-' || *txt == '+' || (*txt >= '0' && *txt <= '9')))
		return false;
	errno = 0;
	n = strtoll(txt, &end, 10);
	if (errno || *end)
		return false;
	*out = n;
	return true;
}

static int check_int(const struct set_def *d, json_t *jv, long *out, char *err, size_t errlen)
{
	long long n;

	/* Numeric strings too: sgctl and HTML forms send everything as text. */
	if (json_is_integer(jv))
		n = json_integer_value(jv);
	else if (!json_is_string(jv) || !parse_long(json_string_value(jv), &n)) {
		err_set(err, errlen, "%s: expected an integer", d->key);
		return -EINVAL;
	}
	if (n < d->min || n > d->max) {
		err_set(err, errlen, "%s: %lld is out of range %ld…%ld", d->key, n, d->min, d->max);
		return -EINVAL;
	}
	*out = (long)n;
	return 0;
}

/* Validate one value into v (replacing the old value). */
static int check_one(struct vals *v, size_t i, json_t *jv, char *err, size_t errlen)
{
	char *str;
	int rc;

	if (defs[i].type == SET_INT)
		return check_int(&defs[i], jv, &v->num[i], err, errlen);
	rc = check_str(&defs[i], jv, &str, err, errlen);
	if (rc)
		return rc;
	free(v->str[i]);
	v->str[i] = str;
	return 0;
}

/* A member that changes nothing, so a client may post back the whole
 * document it read: a read-only key with its current value, or a secret sent
 * as "" (the legacy get_settings shows secrets as "", never their value). */
static bool unchanged(const struct vals *v, size_t i, json_t *jv)
{
	if (defs[i].type != SET_STR || !json_is_string(jv))
		return false;
	if (defs[i].secret)
		return json_string_length(jv) == 0;
	return defs[i].readonly && !strcmp(json_string_value(jv), v->str[i]);
}

/* Validate a user's change set into v; unknown keys and changes of read-only
 * keys refused. */
static int check_changes(struct vals *v, json_t *obj, bool *touched, char *err, size_t errlen)
{
	const char *key;
	json_t *jv;

	json_object_foreach(obj, key, jv)
	{
		long i = key_index(key);
		int rc;

		if (i < 0) {
			err_set(err, errlen, "unknown setting '%s'", key);
			return -EINVAL;
		}
		if (unchanged(v, (size_t)i, jv))
			continue;
		if (defs[i].readonly) {
			err_set(err, errlen, "%s is read-only", key);
			return -EINVAL;
		}
		rc = check_one(v, (size_t)i, jv, err, errlen);
		if (rc)
			return rc;
		touched[i] = true;
	}
	return 0;
}

/* ---- JSON form ---- */

static json_t *vals_to_json(const struct vals *v, bool with_secrets)
{
	json_t *obj = json_object();

	for (size_t i = 0; obj && i < NKEYS; i++) {
		json_t *jv;

		if (defs[i].secret && !with_secrets)
			continue;
		jv = defs[i].type == SET_INT ? json_integer(v->num[i]) : json_string(v->str[i]);
		if (json_object_set_new(obj, defs[i].key, jv)) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

json_t *settings_to_json(const struct settings *s, bool with_secrets)
{
	return vals_to_json(&s->v, with_secrets);
}

uint32_t settings_crc(const struct settings *s)
{
	json_t *obj = vals_to_json(&s->v, true);
	uint32_t crc = 0;

	if (obj)
		crc_of_object(obj, &crc);
	json_decref(obj);
	return crc;
}

/* ---- persistence ---- */

static void state_path(const struct settings *s, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" SETTINGS_FILE "%s", s->state_dir, suffix);
}

/* The file's text: {"version":1,"crc":"0x…","settings":{…}}. */
static char *render_file(const struct vals *v)
{
	json_t *obj = vals_to_json(v, true), *doc = NULL;
	char crc_txt[16];
	char *txt = NULL;
	uint32_t crc;

	if (!obj || !crc_of_object(obj, &crc))
		goto out;
	snprintf(crc_txt, sizeof(crc_txt), "0x%08x", crc);
	doc = json_pack("{s:i, s:s, s:O}", "version", SETTINGS_VERSION, "crc", crc_txt, "settings",
			obj);
	if (doc)
		txt = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
out:
	json_decref(doc);
	json_decref(obj);
	return txt;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_tmp(const char *path, const char *txt)
{
	/* 0600: the file holds passwords. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc;

	if (fd < 0)
		return -errno;
	rc = write_all(fd, txt, strlen(txt));
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* Make the rename durable. Failure is not reported: the new file is already
 * in place and some filesystems refuse fsync on directories. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	fsync(fd);
	close(fd);
}

/* Write txt as settings.json<suffix> atomically: tmp, fsync, rename, fsync dir. */
static int write_atomic(const struct settings *s, const char *suffix, const char *txt)
{
	char tmp[4096], path[4096], sfx[32];
	int rc;

	snprintf(sfx, sizeof(sfx), "%s.tmp", suffix);
	state_path(s, sfx, tmp, sizeof(tmp));
	state_path(s, suffix, path, sizeof(path));
	rc = write_tmp(tmp, txt);
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	sync_dir(s->state_dir);
	return 0;
}

/* Write v as settings.json, then the same as settings.json.prev. A failed
 * .prev write is not an error of the save: the main file holds the new
 * values, and settings_load() rewrites a .prev that does not match it. */
static int persist(const struct settings *s, const struct vals *v)
{
	char *txt;
	int rc;

	if (!s->state_dir)
		return 0;
	txt = render_file(v);
	if (!txt)
		return -ENOMEM;
	rc = write_atomic(s, "", txt);
	if (!rc)
		(void)write_atomic(s, PREV_SUFFIX, txt);
	free(txt);
	return rc;
}

/* ---- subscriptions ---- */

/* Drop the entries unsubscribed while subscribers were being told. */
static void subs_compact(struct settings *s)
{
	size_t n = 0;

	for (size_t k = 0; k < s->nsubs; k++)
		if (s->subs[k].cb)
			s->subs[n++] = s->subs[k];
	s->nsubs = n;
}

static bool sub_wants(const struct sub *u, const bool *touched)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (touched[i] && u->keys[i])
			return true;
	return false;
}

/* Tell each subscriber of a touched key, once. One added meanwhile waits
 * for the next change; one removed meanwhile is skipped. */
static void notify(struct settings *s, const bool *touched)
{
	size_t n = s->nsubs;

	s->notifying = true;
	for (size_t k = 0; k < n; k++) {
		const struct sub *u = &s->subs[k];

		if (u->cb && sub_wants(u, touched))
			u->cb(s, u->arg);
	}
	s->notifying = false;
	subs_compact(s);
}

static void notify_all(struct settings *s)
{
	bool all[NKEYS];

	memset(all, 1, sizeof(all));
	notify(s, all);
}

/* Mark the keys pattern names in keys[]; false if it names none. */
static bool mark_keys(const char *pattern, bool *keys)
{
	size_t len = strlen(pattern);
	bool any = false;

	if (len && pattern[len - 1] == '*') {
		for (size_t i = 0; i < NKEYS; i++)
			if (!strncmp(defs[i].key, pattern, len - 1))
				keys[i] = any = true;
		return any;
	}
	long i = key_index(pattern);

	if (i >= 0)
		keys[i] = true;
	return i >= 0;
}

int settings_subscribe(struct settings *s, const char *const *keys, settings_cb cb, void *arg)
{
	struct sub *u;

	if (!cb || !keys || !keys[0])
		return -EINVAL;
	if (s->nsubs >= SETTINGS_SUBSCRIBERS_MAX)
		return -ENOSPC;
	u = &s->subs[s->nsubs];
	memset(u, 0, sizeof(*u));
	for (size_t k = 0; keys[k]; k++)
		if (!mark_keys(keys[k], u->keys))
			return -EINVAL;
	u->cb = cb;
	u->arg = arg;
	s->nsubs++;
	return 0;
}

int settings_unsubscribe(struct settings *s, settings_cb cb, void *arg)
{
	for (size_t k = 0; k < s->nsubs; k++) {
		if (s->subs[k].cb != cb || s->subs[k].arg != arg)
			continue;
		s->subs[k].cb = NULL;
		if (!s->notifying)
			subs_compact(s);
		return 0;
	}
	return -ENOENT;
}

/* Validated v becomes current, persisted first so memory never runs ahead of
 * disk; then the subscribers of the touched keys are told. */
static int commit(struct settings *s, struct vals *v, const bool *touched)
{
	int rc;

	if (vals_equal(&s->v, v)) {
		vals_free(v);
		notify(s, touched);
		return 0;
	}
	rc = persist(s, v);
	if (rc) {
		vals_free(v);
		return rc;
	}
	vals_free(&s->v);
	s->v = *v;
	s->generation++;
	notify(s, touched);
	return 0;
}

int settings_set_json(struct settings *s, json_t *obj, char *err, size_t errlen)
{
	bool touched[NKEYS] = {false};
	struct vals v;
	int rc;

	if (s->notifying) {
		err_set(err, errlen, "settings cannot change while owners apply a change");
		return -EBUSY;
	}
	if (!json_is_object(obj)) {
		err_set(err, errlen, "expected a JSON object of settings");
		return -EINVAL;
	}
	rc = vals_copy(&v, &s->v);
	if (rc)
		return rc;
	rc = check_changes(&v, obj, touched, err, errlen);
	if (rc) {
		vals_free(&v);
		return rc;
	}
	rc = commit(s, &v, touched);
	if (rc)
		err_set(err, errlen, "saving settings: %s", strerror(-rc));
	return rc;
}

/* Add "key=value" to obj as strings; settings_set_json parses the ints. */
static int kv_add(json_t *obj, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	char key[64];
	size_t klen;
	json_t *jv;

	klen = eq ? (size_t)(eq - kv) : 0;
	if (!eq || !klen || klen >= sizeof(key)) {
		err_set(err, errlen, "'%s': expected key=value", kv);
		return -EINVAL;
	}
	memcpy(key, kv, klen);
	key[klen] = '\0';
	jv = json_string(eq + 1);
	if (!jv) {
		err_set(err, errlen, "%s: invalid UTF-8", key);
		return -EINVAL;
	}
	return json_object_set_new(obj, key, jv) ? -ENOMEM : 0;
}

int settings_set_kv(struct settings *s, char *const *kv, int n, char *err, size_t errlen)
{
	json_t *obj = json_object();
	int rc = obj ? 0 : -ENOMEM;

	for (int i = 0; !rc && i < n; i++)
		rc = kv_add(obj, kv[i], err, errlen);
	if (!rc)
		rc = settings_set_json(s, obj, err, errlen);
	json_decref(obj);
	return rc;
}

/* ---- load ---- */

static json_t *read_file(const char *path, char *err, size_t errlen, int *rc)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	json_error_t jerr;
	struct stat st;
	json_t *doc;

	if (fd < 0) {
		*rc = errno == ENOENT ? -ENOENT : -EBADMSG;
		err_set(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || st.st_size > SETTINGS_FILE_MAX) {
		err_set(err, errlen, "%s: unreadable or larger than %d bytes", path,
			SETTINGS_FILE_MAX);
		close(fd);
		*rc = -EBADMSG;
		return NULL;
	}
	doc = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!doc) {
		err_set(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
		*rc = -EBADMSG;
	}
	return doc;
}

/* The settings object of a parsed file after checking version and CRC. */
static json_t *file_settings(json_t *doc, const char *name, char *err, size_t errlen)
{
	json_t *obj = json_object_get(doc, "settings");
	json_t *jcrc = json_object_get(doc, "crc");
	char want[16];
	uint32_t crc;

	if (json_integer_value(json_object_get(doc, "version")) != SETTINGS_VERSION ||
	    !json_is_object(obj) || !json_is_string(jcrc)) {
		err_set(err, errlen, "%s: not a version %d settings file", name, SETTINGS_VERSION);
		return NULL;
	}
	if (!crc_of_object(obj, &crc))
		return NULL;
	snprintf(want, sizeof(want), "0x%08x", crc);
	if (strcmp(want, json_string_value(jcrc))) {
		err_set(err, errlen, "%s: CRC mismatch (file says %s, content is %s)", name,
			json_string_value(jcrc), want);
		return NULL;
	}
	return obj;
}

/* File values over defaults. Keys of a newer version are skipped; identity
 * keys come from the board configuration, not from the file. */
static int apply_file(const struct settings *s, json_t *obj, const char *name, struct vals *v,
		      char *err, size_t errlen)
{
	const char *key;
	char why[256];
	json_t *jv;
	int rc;

	rc = vals_defaults(s, v);
	if (rc)
		return rc;
	json_object_foreach(obj, key, jv)
	{
		long i = key_index(key);

		if (i < 0 || defs[i].readonly)
			continue;
		if (check_one(v, (size_t)i, jv, why, sizeof(why))) {
			err_set(err, errlen, "%s: %s", name, why);
			vals_free(v);
			return -EBADMSG;
		}
	}
	return 0;
}

static int load_vals(struct settings *s, const char *path, struct vals *v, char *err, size_t errlen)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	json_t *doc, *obj;
	int rc = 0;

	doc = read_file(path, err, errlen, &rc);
	if (!doc)
		return rc;
	obj = file_settings(doc, name, err, errlen);
	rc = obj ? apply_file(s, obj, name, v, err, errlen) : -EBADMSG;
	json_decref(doc);
	return rc;
}

/* v becomes current (taking its strings). */
static void adopt(struct settings *s, struct vals *v, enum settings_origin origin)
{
	vals_free(&s->v);
	s->v = *v;
	s->origin = origin;
	s->generation++;
}

/* Rewrite .prev unless it already holds v (an sgd before .prev existed, a
 * .prev write that failed, or a damaged .prev). */
static void prev_refresh(struct settings *s, const struct vals *v)
{
	char path[4096], why[256];
	struct vals pv;
	char *txt;

	state_path(s, PREV_SUFFIX, path, sizeof(path));
	if (!load_vals(s, path, &pv, why, sizeof(why))) {
		bool same = vals_equal(&pv, v);

		vals_free(&pv);
		if (same)
			return;
	}
	txt = render_file(v);
	if (txt)
		(void)write_atomic(s, PREV_SUFFIX, txt); /* retried at the next load */
	free(txt);
}

/* Set a damaged file aside under a name of its own; describes where in buf. */
static void set_aside(const char *path, char *buf, size_t len)
{
	char to[4096];
	int rc = quarantine_file(path, NULL, QUARANTINE_KEEP, to, sizeof(to));
	const char *base = strrchr(to, '/');

	if (rc)
		err_set(buf, len, "could not be moved aside: %s", strerror(-rc));
	else
		err_set(buf, len, "kept as %s", base ? base + 1 : to);
}

/* settings.json is damaged: fall back to settings.json.prev, then to what
 * is in memory (the defaults at start), and say so. */
static int recover(struct settings *s, const char *path, const char *why, char *err, size_t errlen)
{
	char prev[4096], why2[256], aside[256], aside2[256];
	struct vals v;
	int rc;

	set_aside(path, aside, sizeof(aside));
	state_path(s, PREV_SUFFIX, prev, sizeof(prev));
	rc = load_vals(s, prev, &v, why2, sizeof(why2));
	if (!rc) {
		adopt(s, &v, SETTINGS_FROM_PREV);
		/* The main file again, so the next start finds it. */
		rc = persist(s, &s->v);
		err_set(s->load_error, sizeof(s->load_error),
			"%s (%s); restored the last good copy " SETTINGS_FILE PREV_SUFFIX "%s%s",
			why, aside, rc ? ", but rewriting " SETTINGS_FILE " failed: " : "",
			rc ? strerror(-rc) : "");
	} else {
		if (rc == -EBADMSG)
			set_aside(prev, aside2, sizeof(aside2));
		s->origin = s->generation ? s->origin : SETTINGS_DEFAULTS;
		err_set(s->load_error, sizeof(s->load_error), "%s (%s); %s%s%s%s; %s", why, aside,
			rc == -ENOENT ? "no " SETTINGS_FILE PREV_SUFFIX : why2,
			rc == -EBADMSG ? " (" : "", rc == -EBADMSG ? aside2 : "",
			rc == -EBADMSG ? ")" : "",
			s->generation ? "the settings in memory stay in use"
				      : "factory defaults in use");
	}
	err_set(err, errlen, "%s", s->load_error);
	return -EBADMSG;
}

static int load(struct settings *s, char *err, size_t errlen)
{
	char path[4096], why[256];
	struct vals v;
	int rc;

	/* A leftover .tmp is a write cut short: the old file is still whole. */
	state_path(s, ".tmp", path, sizeof(path));
	unlink(path);
	state_path(s, PREV_SUFFIX ".tmp", path, sizeof(path));
	unlink(path);
	state_path(s, "", path, sizeof(path));
	rc = load_vals(s, path, &v, why, sizeof(why));
	if (rc == -EBADMSG)
		return recover(s, path, why, err, errlen);
	s->load_error[0] = '\0';
	if (rc == -ENOENT) {
		s->origin = s->generation ? s->origin : SETTINGS_DEFAULTS;
		return 0;
	}
	if (rc) {
		err_set(err, errlen, "%s", why);
		return rc;
	}
	adopt(s, &v, SETTINGS_FROM_FILE);
	prev_refresh(s, &s->v);
	return 0;
}

int settings_load(struct settings *s, char *err, size_t errlen)
{
	unsigned gen = s->generation;
	int rc;

	if (!s->state_dir)
		return 0;
	if (s->notifying) {
		err_set(err, errlen, "settings cannot change while owners apply a change");
		return -EBUSY;
	}
	rc = load(s, err, errlen);
	/* Values were taken from a file (settings.json or its last good copy). */
	if (s->generation != gen)
		notify_all(s);
	return rc;
}

/* ---- lifecycle and access ---- */

int settings_init(struct settings **out, const char *state_dir, const char *serial,
		  const char *model)
{
	struct settings *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	snprintf(s->serial, sizeof(s->serial), "%s", serial && *serial ? serial : "SG000000");
	snprintf(s->model, sizeof(s->model), "%s", model && *model ? model : "SG-E1");
	/* 001 (and its settings screens): the root topic is the serial number.
	 * Stored settings.json files hold every value, the root topics included,
	 * so an installation saved with the earlier default "devices/<serial>"
	 * keeps it: only fresh and factory-reset settings get the new one. */
	snprintf(s->root_default, sizeof(s->root_default), "%s", s->serial);
	if (state_dir && !(s->state_dir = strdup(state_dir))) {
		free(s);
		return -ENOMEM;
	}
	rc = vals_defaults(s, &s->v);
	if (rc) {
		free(s->state_dir);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void settings_fini(struct settings *s)
{
	if (!s)
		return;
	vals_free(&s->v);
	free(s->state_dir);
	free(s);
}

static size_t index_of_type(const char *key, enum set_type type)
{
	long i = key_index(key);

	/* A wrong key name is a programming error, caught by the first test run. */
	if (i < 0 || defs[i].type != type) {
		fprintf(stderr, "settings: no %s setting '%s'\n",
			type == SET_INT ? "integer" : "string", key);
		abort();
	}
	return (size_t)i;
}

long settings_int(const struct settings *s, const char *key)
{
	return s->v.num[index_of_type(key, SET_INT)];
}

const char *settings_str(const struct settings *s, const char *key)
{
	return s->v.str[index_of_type(key, SET_STR)];
}

int settings_factory_reset(struct settings *s)
{
	struct vals v;
	int rc;

	if (s->notifying)
		return -EBUSY;
	rc = vals_defaults(s, &v);
	if (rc)
		return rc;
	rc = persist(s, &v);
	if (rc) {
		vals_free(&v);
		return rc;
	}
	vals_free(&s->v);
	s->v = v;
	s->generation++;
	notify_all(s);
	return 0;
}

unsigned settings_generation(const struct settings *s)
{
	return s->generation;
}

enum settings_origin settings_origin(const struct settings *s)
{
	return s->origin;
}

const char *settings_origin_name(enum settings_origin o)
{
	switch (o) {
	case SETTINGS_FROM_FILE:
		return SETTINGS_FILE;
	case SETTINGS_FROM_PREV:
		return SETTINGS_FILE PREV_SUFFIX;
	case SETTINGS_DEFAULTS:
		break;
	}
	return "defaults";
}

const char *settings_load_error(const struct settings *s)
{
	return s->load_error;
}
