/* The gateway's own Modbus unit: request PDUs in, exact response bytes out,
 * against real settings in a temporary state directory; and the generated
 * register map document (docs/modbus-map.md) kept equal to the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/clock.h"
#include "sg/conf.h"
#include "sg/mbproto.h"
#include "sg/ownunit.h"
#include "sg/settings.h"
#include "sg/version.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERIAL "SG004711"
#define MODEL "SG-E1"
#define MAP_PATH "docs/modbus-map.md"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
	char dir[64];
	struct settings *s;
	struct conf conf;
	struct ownunit_env env;
	int changed;
	uint8_t rsp[MB_PDU_MAX];
	size_t rlen;
};

static void on_changed(void *arg)
{
	struct fx *f = arg;

	f->changed++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ownunit.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(settings_init(&f->s, f->dir, SERIAL, MODEL), 0);
	conf_defaults(&f->conf);
	snprintf(f->conf.serial_number, sizeof(f->conf.serial_number), "%s", SERIAL);
	snprintf(f->conf.model_type, sizeof(f->conf.model_type), "%s", MODEL);
	f->env = (struct ownunit_env){
	    .settings = f->s,
	    .conf = &f->conf,
	    .reg = NULL,
	    .buses = NULL,
	    .start_mono_ms = clock_mono_ms(),
	    .changed = on_changed,
	    .changed_arg = f,
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *names[] = {"settings.json", "settings.json.tmp", "settings.json.prev"};
	char p[PATH_MAX];

	settings_fini(f->s);
	for (size_t i = 0; i < N(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static size_t handle(struct fx *f, const uint8_t *pdu, size_t len)
{
	memset(f->rsp, 0xEE, sizeof(f->rsp));
	f->rlen = ownunit_handle(&f->env, pdu, len, f->rsp);
	return f->rlen;
}

static void expect_rsp(const struct fx *f, const uint8_t *want, size_t len)
{
	assert_int_equal(f->rlen, len);
	assert_memory_equal(f->rsp, want, len);
}

static void expect_exc(const struct fx *f, uint8_t fc, uint8_t code)
{
	const uint8_t want[] = {(uint8_t)(fc | 0x80), code};

	expect_rsp(f, want, 2);
}

static size_t rd(struct fx *f, uint8_t fc, unsigned addr, unsigned count)
{
	const uint8_t pdu[] = {fc, (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(count >> 8),
			       (uint8_t)count};

	return handle(f, pdu, sizeof(pdu));
}

/* Read holding/input registers that must succeed; values into regs. */
static void rd_ok(struct fx *f, uint8_t fc, unsigned addr, unsigned count, uint16_t *regs)
{
	rd(f, fc, addr, count);
	assert_int_equal(f->rlen, 2 + 2 * count);
	assert_int_equal(f->rsp[0], fc);
	assert_int_equal(f->rsp[1], 2 * count);
	for (unsigned i = 0; i < count; i++)
		regs[i] = (uint16_t)(f->rsp[2 + 2 * i] << 8 | f->rsp[3 + 2 * i]);
}

static size_t wr16(struct fx *f, unsigned addr, unsigned count, const uint16_t *vals)
{
	uint8_t pdu[MB_PDU_MAX + 8]; /* room for a request one register too long */

	pdu[0] = 16;
	pdu[1] = (uint8_t)(addr >> 8);
	pdu[2] = (uint8_t)addr;
	pdu[3] = (uint8_t)(count >> 8);
	pdu[4] = (uint8_t)count;
	pdu[5] = (uint8_t)(2 * count);
	for (unsigned i = 0; i < count; i++) {
		pdu[6 + 2 * i] = (uint8_t)(vals[i] >> 8);
		pdu[7 + 2 * i] = (uint8_t)vals[i];
	}
	return handle(f, pdu, 6 + 2 * (size_t)count);
}

static void wr16_ok(struct fx *f, unsigned addr, unsigned count, const uint16_t *vals)
{
	const uint8_t want[] = {16, (uint8_t)(addr >> 8), (uint8_t)addr, 0, (uint8_t)count};

	wr16(f, addr, count, vals);
	expect_rsp(f, want, sizeof(want));
}

static size_t wr6(struct fx *f, unsigned addr, unsigned val)
{
	const uint8_t pdu[] = {6, (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(val >> 8),
			       (uint8_t)val};

	return handle(f, pdu, sizeof(pdu));
}

/* Text as registers, 2 chars each, high byte first, NUL padded to n registers. */
static void text_regs_pad(const char *txt, uint16_t *regs, unsigned n, unsigned char pad)
{
	size_t len = strlen(txt);

	for (unsigned i = 0; i < n; i++) {
		unsigned hi = 2 * i < len ? (uint8_t)txt[2 * i] : pad;
		unsigned lo = 2 * i + 1 < len ? (uint8_t)txt[2 * i + 1] : pad;

		regs[i] = (uint16_t)(hi << 8 | lo);
	}
}

static void text_regs(const char *txt, uint16_t *regs, unsigned n)
{
	text_regs_pad(txt, regs, n, 0);
}

static unsigned key_k(const char *key)
{
	for (size_t k = 0; k < settings_count(); k++)
		if (!strcmp(settings_def_at(k)->key, key))
			return (unsigned)k;
	fail_msg("no setting %s", key);
	return 0;
}

static unsigned int_reg(const char *key)
{
	return 1000 + 2 * key_k(key);
}

static unsigned str_reg(const char *key)
{
	return 3000 + 64 * key_k(key);
}

static void set_str(struct fx *f, const char *key, const char *val)
{
	json_t *obj = json_pack("{s:s}", key, val);
	char err[256];

	assert_int_equal(settings_set_json(f->s, obj, err, sizeof(err)), 0);
	json_decref(obj);
}

static void set_int(struct fx *f, const char *key, long val)
{
	json_t *obj = json_pack("{s:I}", key, (json_int_t)val);
	char err[256];

	assert_int_equal(settings_set_json(f->s, obj, err, sizeof(err)), 0);
	json_decref(obj);
}

/* ---- input registers ---- */

static void test_identification(void **state)
{
	struct fx *f = *state;
	// clang-format off
	const uint8_t want[] = {4, 28,
				'S', 'G', '-', 'E', '1', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', /* model: space padded as on Iskra meters */
				'S', 'G', '0', '0', '4', '7', '1', '1',			  /* serial */
				0, SGD_VERSION_X100,					  /* SW */
				0, 'D'};						  /* HW */
	// clang-format on
	const uint8_t want_part[] = {4, 4, '-', 'E', '1', ' '};
	const uint8_t want_sw[] = {4, 2, 0, SGD_VERSION_X100};

	rd(f, 4, 1, 14);
	expect_rsp(f, want, sizeof(want));
	/* Parts of it. */
	rd(f, 4, 2, 2);
	expect_rsp(f, want_part, sizeof(want_part));
	rd(f, 4, 13, 1);
	expect_rsp(f, want_sw, sizeof(want_sw));
	assert_int_equal(f->changed, 0);
}

static void test_long_serial(void **state)
{
	struct fx *f = *state;
	const uint8_t want[] = {4, 8, 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L'};

	snprintf(f->conf.serial_number, sizeof(f->conf.serial_number), "ABCDEFGHIJKL");
	rd(f, 4, 9, 4);
	expect_rsp(f, want, sizeof(want));
}

static void test_status(void **state)
{
	struct fx *f = *state;
	uint16_t r[37];
	uint32_t crc = settings_crc(f->s), wall0, wall;

	f->env.start_mono_ms = clock_mono_ms() - 5000;
	wall0 = (uint32_t)clock_wall();
	rd_ok(f, 4, 30, 37, r);
	wall = (uint32_t)r[2] << 16 | r[3];
	assert_int_equal((uint32_t)r[0] << 16 | r[1], 5);
	assert_true(wall >= wall0 && wall <= wall0 + 1);
	assert_int_equal(r[4], 0); /* enabled: no poller */
	assert_int_equal(r[5], 0); /* answering */
	assert_int_equal(r[6], crc >> 16);
	assert_int_equal(r[7], crc & 0xFFFF);
	for (unsigned i = 8; i < 37; i++)
		assert_int_equal(r[i], 0);

	/* The CRC follows a change. */
	set_str(f, "location", "Cellar");
	crc = settings_crc(f->s);
	rd_ok(f, 4, 36, 2, r);
	assert_int_equal((uint32_t)r[0] << 16 | r[1], crc);
}

static void test_input_outside(void **state)
{
	struct fx *f = *state;
	static const unsigned bad[][2] = {{0, 1},   {0, 14},	{14, 2},     {15, 1}, {29, 1},
					  {29, 2},  {1, 66},	{66, 2},     {67, 1}, {100, 1},
					  {101, 1}, {65535, 1}, {65535, 125}};
	uint16_t r[37];

	for (size_t i = 0; i < N(bad); i++) {
		rd(f, 4, bad[i][0], bad[i][1]);
		expect_exc(f, 4, MB_EX_ILLEGAL_ADDRESS);
	}
	rd_ok(f, 4, 14, 1, r);
	rd_ok(f, 4, 66, 1, r);
	rd_ok(f, 4, 1, 14, r);
	/* 38, 39 and 58, 59 are gaps inside the status area: zeros. */
	rd_ok(f, 4, 38, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 0);
	rd_ok(f, 4, 58, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 0);
}

/* ---- holding registers: identification ---- */

static void test_description_location(void **state)
{
	struct fx *f = *state;
	uint16_t w[40], r[40];
	const uint8_t want_desc[] = {3, 4, 'S', 'G', ' ', ' '};

	/* Defaults: description "SG", location "", space padded. */
	rd(f, 3, 101, 2);
	expect_rsp(f, want_desc, sizeof(want_desc));
	rd_ok(f, 3, 121, 20, r);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(r[i], 0x2020);

	/* Both in one request. */
	text_regs("Main board", w, 20);
	text_regs("Cellar, rack 2", w + 20, 20);
	wr16_ok(f, 101, 40, w);
	assert_string_equal(settings_str(f->s, "description"), "Main board");
	assert_string_equal(settings_str(f->s, "location"), "Cellar, rack 2");
	assert_int_equal(f->changed, 1);
	rd_ok(f, 3, 101, 40, r);
	text_regs_pad("Main board", w, 20, ' ');
	text_regs_pad("Cellar, rack 2", w + 20, 20, ' ');
	assert_memory_equal(r, w, sizeof(w));
	/* Writing back what was read (space padded) keeps the text. */
	wr16_ok(f, 101, 40, r);
	assert_string_equal(settings_str(f->s, "description"), "Main board");
	assert_string_equal(settings_str(f->s, "location"), "Cellar, rack 2");
	assert_int_equal(f->changed, 1); /* nothing changed */

	/* A part overlays the current value; the rest stays. */
	text_regs("ABCD", w, 2);
	wr16_ok(f, 101, 2, w);
	assert_string_equal(settings_str(f->s, "description"), "ABCD board");
	assert_int_equal(f->changed, 2);

	/* A NUL register ends the value; trailing spaces are padding. */
	text_regs("Hall  ", w, 4);
	wr16_ok(f, 121, 4, w);
	assert_string_equal(settings_str(f->s, "location"), "Hall");
	assert_int_equal(f->changed, 3);

	/* 40 characters fill the field exactly. */
	text_regs("0123456789012345678901234567890123456789", w, 20);
	wr16_ok(f, 101, 20, w);
	assert_string_equal(settings_str(f->s, "description"),
			    "0123456789012345678901234567890123456789");

	/* fc 6 on one register of location. */
	const uint8_t echo[] = {6, 0, 121, 'X', 'Y'};

	wr6(f, 121, 'X' << 8 | 'Y');
	expect_rsp(f, echo, sizeof(echo));
	assert_string_equal(settings_str(f->s, "location"), "XYll");
	assert_int_equal(f->changed, 5);
}

/* ---- holding registers: settings ---- */

static void test_int_setting(void **state)
{
	struct fx *f = *state;
	unsigned a = int_reg("tcp_port");
	uint16_t w[2] = {0, 502}, r[4];
	const uint8_t want[] = {3, 4, 0, 0, 0x27, 0x11};

	rd(f, 3, a, 2);
	expect_rsp(f, want, sizeof(want));
	wr16_ok(f, a, 2, w);
	assert_int_equal(settings_int(f->s, "tcp_port"), 502);
	assert_int_equal(f->changed, 1);
	rd_ok(f, 3, a, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 502);

	/* sg_modbus_addr and tcp_port are neighbours: both in one write. */
	assert_int_equal(int_reg("sg_modbus_addr") + 2, a);
	uint16_t w2[4] = {0, 17, 0, 10502};

	wr16_ok(f, a - 2, 4, w2);
	assert_int_equal(settings_int(f->s, "sg_modbus_addr"), 17);
	assert_int_equal(settings_int(f->s, "tcp_port"), 10502);
	assert_int_equal(f->changed, 2);
	rd_ok(f, 3, a - 2, 4, r);
	assert_memory_equal(r, w2, sizeof(w2));

	/* Negative values: int32 two's complement. */
	a = int_reg("timezone");
	rd_ok(f, 3, a, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 60);
	w[0] = 0xFFFF;
	w[1] = 0xFFC4;
	wr16_ok(f, a, 2, w);
	assert_int_equal(settings_int(f->s, "timezone"), -60);
	rd_ok(f, 3, a, 2, r);
	assert_int_equal(r[0], 0xFFFF);
	assert_int_equal(r[1], 0xFFC4);
	assert_int_equal(f->changed, 3);
}

static void test_int_half(void **state)
{
	struct fx *f = *state;
	unsigned a = int_reg("tcp_port");
	uint16_t w[2] = {0, 502};
	uint32_t crc = settings_crc(f->s);

	wr6(f, a, 0);
	expect_exc(f, 6, MB_EX_ILLEGAL_ADDRESS);
	wr6(f, a + 1, 502);
	expect_exc(f, 6, MB_EX_ILLEGAL_ADDRESS);
	/* Second half of tcp_port and first half of the next. */
	wr16(f, a + 1, 2, w);
	expect_exc(f, 16, MB_EX_ILLEGAL_ADDRESS);
	/* A whole pair plus a half. */
	uint16_t w3[3] = {0, 502, 0};

	wr16(f, a, 3, w3);
	expect_exc(f, 16, MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(settings_int(f->s, "tcp_port"), 10001);
	assert_int_equal(settings_crc(f->s), crc);
	assert_int_equal(f->changed, 0);
}

static void test_out_of_range(void **state)
{
	struct fx *f = *state;
	unsigned a = int_reg("sg_modbus_addr");
	uint32_t crc = settings_crc(f->s);
	uint16_t zero[2] = {0, 0}, big[2] = {1, 0x1170}; /* 70000 */
	uint16_t mixed[4] = {0, 20, 0, 0};		 /* valid address, port 0 */
	uint16_t w[21];

	wr16(f, a, 2, zero);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	wr16(f, a + 2, 2, big);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	/* All or nothing: the valid address is not applied either. */
	wr16(f, a, 4, mixed);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	assert_int_equal(settings_int(f->s, "sg_modbus_addr"), 34);
	assert_int_equal(settings_int(f->s, "tcp_port"), 10001);

	/* Description longer than its 40 bytes, in the string slot. */
	text_regs("0123456789012345678901234567890123456789X", w, 21);
	wr16(f, str_reg("description"), 21, w);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	/* Not UTF-8. */
	wr6(f, 121, 0xFFFE);
	expect_exc(f, 6, MB_EX_ILLEGAL_VALUE);
	/* A control character. */
	wr6(f, 121, 0x4101);
	expect_exc(f, 6, MB_EX_ILLEGAL_VALUE);
	/* A key-specific rule (IPv4 address). */
	text_regs("not an ip", w, 5);
	wr16(f, str_reg("static_ip"), 5, w);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);

	assert_int_equal(settings_crc(f->s), crc);
	assert_int_equal(f->changed, 0);
}

static void test_not_writable(void **state)
{
	struct fx *f = *state;
	uint32_t crc = settings_crc(f->s);
	size_t n = settings_count();
	uint16_t w[4];
	const unsigned bad[] = {str_reg("serial_number"),
				str_reg("model_type"),
				str_reg("model_type") + 63,
				int_reg("description"),
				int_reg("location"),
				str_reg("tcp_port"),
				str_reg("tcp_port") + 10,
				100,
				141,
				999,
				(unsigned)(1000 + 2 * n),
				2999,
				(unsigned)(3000 + 64 * n),
				0,
				9,
				65535};

	text_regs("SG999999", w, 4);
	wr16(f, str_reg("serial_number"), 4, w);
	expect_exc(f, 16, MB_EX_ILLEGAL_ADDRESS);
	for (size_t i = 0; i < N(bad); i++) {
		wr6(f, bad[i], 0x4142);
		expect_exc(f, 6, MB_EX_ILLEGAL_ADDRESS);
	}
	/* A write that spills out of the identification area. */
	wr16(f, 139, 3, w);
	expect_exc(f, 16, MB_EX_ILLEGAL_ADDRESS);
	/* Address problems win over refused values. */
	uint16_t w4[4] = {0, 0, 0, 0}; /* sg_modbus_addr 0 (refused), then half of tcp_port */

	wr16(f, int_reg("sg_modbus_addr"), 3, w4);
	expect_exc(f, 16, MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(settings_crc(f->s), crc);
	assert_int_equal(f->changed, 0);
	assert_string_equal(settings_str(f->s, "serial_number"), SERIAL);
}

static void test_holding_map(void **state)
{
	struct fx *f = *state;
	size_t n = settings_count();
	unsigned int_end = (unsigned)(1000 + 2 * n), str_end = (unsigned)(3000 + 64 * n);
	const unsigned bad[][2] = {{0, 1},	     {100, 1},	 {100, 2},  {140, 2},
				   {141, 1},	     {999, 1},	 {999, 2},  {int_end, 1},
				   {int_end - 1, 2}, {2999, 1},	 {2999, 2}, {str_end, 1},
				   {str_end - 1, 2}, {65535, 1}, {139, 125}};
	uint16_t r[125];

	for (size_t i = 0; i < N(bad); i++) {
		rd(f, 3, bad[i][0], bad[i][1]);
		expect_exc(f, 3, MB_EX_ILLEGAL_ADDRESS);
	}
	rd_ok(f, 3, 101, 40, r);
	rd_ok(f, 3, int_end - 1, 1, r);
	rd_ok(f, 3, str_end - 1, 1, r);
	rd_ok(f, 3, 3000, 125, r);

	/* Across string slots in the integer area: zeros between. */
	set_int(f, "locked", 1);
	assert_int_equal(key_k("locked"), 0);
	assert_int_equal(key_k("description"), 1);
	rd_ok(f, 3, 1000, 6, r);
	const uint16_t want[6] = {0, 1, 0, 0, 0, 0};

	assert_memory_equal(r, want, sizeof(want));
	/* And an integer slot in the string area. */
	rd_ok(f, 3, str_reg("tcp_port"), 64, r);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(r[i], 0);
	/* A string slot: the value, then zeros to the end of its 64 registers. */
	rd_ok(f, 3, str_reg("ntp_server1"), 64, r);
	uint16_t t[64];

	text_regs("0.pool.ntp.org", t, 64);
	assert_memory_equal(r, t, sizeof(t));
	/* description's slot mirrors 101–120. */
	uint16_t d[20];

	rd_ok(f, 3, str_reg("description"), 20, r);
	text_regs("SG", d, 20);
	assert_memory_equal(r, d, sizeof(d));
}

static void test_string_setting(void **state)
{
	struct fx *f = *state;
	unsigned a = str_reg("ntp_server1");
	uint16_t w[64], r[64];
	char longest[129];

	/* Every string fits its slot. */
	for (size_t k = 0; k < settings_count(); k++) {
		const struct set_def *d = settings_def_at(k);

		if (d->type == SET_STR)
			assert_true(d->maxlen <= 128);
	}
	text_regs("time.example.org", w, 9);
	wr16_ok(f, a, 9, w);
	assert_string_equal(settings_str(f->s, "ntp_server1"), "time.example.org");
	rd_ok(f, 3, a, 64, r);
	text_regs("time.example.org", w, 64);
	assert_memory_equal(r, w, sizeof(w));

	/* A 128-byte value fills the slot (mqtt1_server: 128 bytes). */
	memset(longest, 'h', 128);
	longest[128] = '\0';
	assert_int_equal(settings_def("mqtt1_server")->maxlen, 128);
	text_regs(longest, w, 64);
	/* 64 registers in two requests; both halves overlay the current value. */
	wr16_ok(f, str_reg("mqtt1_server"), 32, w);
	wr16_ok(f, str_reg("mqtt1_server") + 32, 32, w + 32);
	assert_string_equal(settings_str(f->s, "mqtt1_server"), longest);
	rd_ok(f, 3, str_reg("mqtt1_server"), 64, r);
	assert_memory_equal(r, w, sizeof(w));

	/* Two string settings in one request (ntp_server1 and 2 are neighbours):
	 * zeros in the unused tail of ntp_server1's slot change nothing there. */
	assert_int_equal(str_reg("ntp_server2"), a + 64);
	uint16_t two[5] = {0, 0};

	text_regs("b.ntp", two + 2, 3);
	wr16_ok(f, a + 62, 5, two);
	assert_string_equal(settings_str(f->s, "ntp_server1"), "time.example.org");
	assert_string_equal(settings_str(f->s, "ntp_server2"), "b.ntp");
	assert_int_equal(f->changed, 4);
}

static void test_secret(void **state)
{
	struct fx *f = *state;
	unsigned a = str_reg("wifi_password");
	uint16_t r[64], w[2];

	set_str(f, "wifi_password", "hunter22");
	rd_ok(f, 3, a, 64, r);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(r[i], 0);
	/* Written over an empty value, not over the hidden one. */
	text_regs("abc", w, 2);
	wr16_ok(f, a, 2, w);
	assert_string_equal(settings_str(f->s, "wifi_password"), "abc");
	assert_int_equal(f->changed, 1);
	rd_ok(f, 3, a, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 0);
}

static void test_changed_callback(void **state)
{
	struct fx *f = *state;
	unsigned a = int_reg("http_port");
	uint16_t w[2] = {0, 8080}, bad[2] = {0, 0};

	wr16_ok(f, a, 2, w);
	assert_int_equal(f->changed, 1);
	/* The same value again: accepted, nothing changed, no callback. */
	wr16_ok(f, a, 2, w);
	assert_int_equal(f->changed, 1);
	wr16(f, a, 2, bad);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	assert_int_equal(f->changed, 1);
	/* No callback set: writes still work. */
	f->env.changed = NULL;
	w[1] = 8081;
	wr16_ok(f, a, 2, w);
	assert_int_equal(settings_int(f->s, "http_port"), 8081);
	assert_int_equal(f->changed, 1);
}

static void test_fc23(void **state)
{
	struct fx *f = *state;
	unsigned a = int_reg("tcp_port"), d = 101;
	/* write tcp_port = 1502, read tcp_port and description's first 2 registers. */
	const uint8_t pdu[] = {23,	   (uint8_t)(a >> 8),
			       (uint8_t)a, 0,
			       2,	   (uint8_t)(a >> 8),
			       (uint8_t)a, 0,
			       2,	   4,
			       0,	   0,
			       0x05,	   0xDE};
	const uint8_t want[] = {23, 4, 0, 0, 0x05, 0xDE};
	const uint8_t pdu2[] = {23, 0, (uint8_t)d, 0, 2, 0, (uint8_t)d, 0, 1, 2, 'H', 'i'};
	const uint8_t want2[] = {23, 4, 'H', 'i', ' ', ' '};
	/* Bad read address: nothing is written. */
	const uint8_t pdu3[] = {23, 0, 0, 0, 1, (uint8_t)(a >> 8), (uint8_t)a, 0, 2,
				4,  0, 0, 0, 80};
	/* Bad write: 02, and no read. */
	const uint8_t pdu4[] = {23, 0, (uint8_t)d, 0, 1, 0, 0, 0, 1, 2, 0, 0};

	handle(f, pdu, sizeof(pdu));
	expect_rsp(f, want, sizeof(want));
	assert_int_equal(settings_int(f->s, "tcp_port"), 1502);
	handle(f, pdu2, sizeof(pdu2));
	expect_rsp(f, want2, sizeof(want2));
	assert_string_equal(settings_str(f->s, "description"), "Hi");
	assert_int_equal(f->changed, 2);
	handle(f, pdu3, sizeof(pdu3));
	expect_exc(f, 23, MB_EX_ILLEGAL_ADDRESS);
	handle(f, pdu4, sizeof(pdu4));
	expect_exc(f, 23, MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(settings_int(f->s, "tcp_port"), 1502);
	assert_int_equal(f->changed, 2);
}

/* ---- malformed requests ---- */

static void test_unknown_fc(void **state)
{
	struct fx *f = *state;
	const uint8_t fcs[] = {0, 1, 2, 5, 7, 8, 15, 17, 20, 22, 24, 43, 0x7F, 0x83, 0xFF};

	for (size_t i = 0; i < N(fcs); i++) {
		const uint8_t pdu[] = {fcs[i], 0, 1, 0, 1};

		handle(f, pdu, sizeof(pdu));
		expect_exc(f, fcs[i], MB_EX_ILLEGAL_FUNCTION);
		/* Even with no data at all. */
		handle(f, pdu, 1);
		expect_exc(f, fcs[i], MB_EX_ILLEGAL_FUNCTION);
	}
	assert_int_equal(f->changed, 0);
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	const uint8_t rd3[] = {3, 0, 101, 0, 1, 0};
	const uint8_t w6[] = {6, 0, 101, 0x41, 0x42, 0};
	const uint8_t w16[] = {16, 0, 101, 0, 2, 4, 'A', 'B', 'C', 'D', 0};
	const uint8_t w16_bc[] = {16, 0, 101, 0, 2, 3, 'A', 'B', 'C', 'D'};
	const uint8_t w16_zero[] = {16, 0, 101, 0, 0, 0};
	const uint8_t w23[] = {23, 0, 101, 0, 1, 0, 101, 0, 1, 2, 'A', 'B'};
	const uint8_t w23_r0[] = {23, 0, 101, 0, 0, 0, 101, 0, 1, 2, 'A', 'B'};
	const uint8_t w23_bc[] = {23, 0, 101, 0, 1, 0, 101, 0, 1, 4, 'A', 'B'};
	uint32_t crc = settings_crc(f->s);

	/* The empty PDU: no function code to echo. */
	handle(f, rd3, 0);
	expect_exc(f, 0, MB_EX_ILLEGAL_VALUE);
	for (size_t len = 1; len <= sizeof(rd3); len++) {
		if (len == 5)
			continue;
		handle(f, rd3, len);
		expect_exc(f, 3, MB_EX_ILLEGAL_VALUE);
		handle(f, w6, len);
		expect_exc(f, 6, MB_EX_ILLEGAL_VALUE);
	}
	rd(f, 3, 101, 0);
	expect_exc(f, 3, MB_EX_ILLEGAL_VALUE);
	rd(f, 4, 1, 126);
	expect_exc(f, 4, MB_EX_ILLEGAL_VALUE);
	/* Count checks come before address checks. */
	rd(f, 3, 0, 126);
	expect_exc(f, 3, MB_EX_ILLEGAL_VALUE);
	for (size_t len = 1; len <= sizeof(w16); len++) {
		if (len == 10)
			continue;
		handle(f, w16, len);
		expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	}
	handle(f, w16_bc, sizeof(w16_bc));
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	handle(f, w16_zero, sizeof(w16_zero));
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	/* 124 registers: over the limit of 123. */
	uint16_t many[124] = {0};

	wr16(f, 3000, 124, many);
	expect_exc(f, 16, MB_EX_ILLEGAL_VALUE);
	for (size_t len = 1; len < sizeof(w23); len++) {
		handle(f, w23, len);
		expect_exc(f, 23, MB_EX_ILLEGAL_VALUE);
	}
	handle(f, w23_r0, sizeof(w23_r0));
	expect_exc(f, 23, MB_EX_ILLEGAL_VALUE);
	handle(f, w23_bc, sizeof(w23_bc));
	expect_exc(f, 23, MB_EX_ILLEGAL_VALUE);
	assert_int_equal(settings_crc(f->s), crc);
	assert_int_equal(f->changed, 0);
	/* The well-formed versions work. */
	handle(f, w16, 10);
	assert_int_equal(f->rlen, 5);
	assert_string_equal(settings_str(f->s, "description"), "ABCD");
}

/* ---- the document ---- */

static char *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (!fp)
		return NULL;
	for (;;) {
		if (*len == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t n = fread(buf + *len, 1, cap - *len, fp);

		if (!n)
			break;
		*len += n;
	}
	fclose(fp);
	return buf;
}

static void test_markdown(void **state)
{
	char *gen = NULL, *file;
	size_t glen = 0, flen;
	FILE *mf = open_memstream(&gen, &glen);
	const char *regen = getenv("SG_REGEN");

	(void)state;
	assert_non_null(mf);
	ownunit_map_markdown(mf);
	assert_int_equal(fclose(mf), 0);
	assert_non_null(strstr(gen, "SG_REGEN=1 build/tests/test_ownunit"));
	assert_non_null(strstr(gen, "| `tcp_port` | int32 |"));
	if (regen && !strcmp(regen, "1")) {
		FILE *out = fopen(MAP_PATH, "w");

		assert_non_null(out);
		assert_int_equal(fwrite(gen, 1, glen, out), glen);
		assert_int_equal(fclose(out), 0);
		printf("wrote %s\n", MAP_PATH);
	}
	file = read_all(MAP_PATH, &flen);
	if (!file)
		fail_msg("cannot read %s (run from the repository root)", MAP_PATH);
	if (flen != glen || memcmp(file, gen, glen))
		fail_msg("%s is out of date: run SG_REGEN=1 build/tests/test_ownunit", MAP_PATH);
	free(file);
	free(gen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_identification, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_serial, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_input_outside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_description_location, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_int_setting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_int_half, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_writable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_holding_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_string_setting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secret, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changed_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fc23, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_fc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test(test_markdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
