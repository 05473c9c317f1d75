/* RTU framing for the slave role: the CRC against published vectors, the
 * request length for every function code from as few bytes as possible, and
 * sealing/checking frames (including every single-bit corruption). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/rtu.h"

#include <stdint.h>
#include <string.h>

static void test_crc_vectors(void **state)
{
	static const uint8_t read10[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A};
	static const uint8_t spec[] = {0x11, 0x03, 0x00, 0x6B, 0x00, 0x03};
	static const uint8_t write1[] = {0x01, 0x06, 0x00, 0x01, 0x00, 0x03};

	(void)state;
	/* Wire order is low byte first: C5 CD, 76 87, 98 0B. */
	assert_int_equal(rtu_crc16(read10, sizeof(read10)), 0xCDC5);
	assert_int_equal(rtu_crc16(spec, sizeof(spec)), 0x8776);
	assert_int_equal(rtu_crc16(write1, sizeof(write1)), 0x0B98);
	/* The CRC-16/MODBUS catalogue check value. */
	assert_int_equal(rtu_crc16((const uint8_t *)"123456789", 9), 0x4B37);
	assert_int_equal(rtu_crc16(read10, 0), 0xFFFF);
}

static void test_request_len_fixed(void **state)
{
	uint8_t b[2] = {0x01, 0};

	(void)state;
	assert_int_equal(rtu_request_len(b, 0), 0);
	assert_int_equal(rtu_request_len(b, 1), 0);
	for (int fc = 1; fc <= 6; fc++) {
		b[1] = (uint8_t)fc;
		assert_int_equal(rtu_request_len(b, 2), 8);
	}
	b[1] = 7;
	assert_int_equal(rtu_request_len(b, 2), 4);
	b[1] = 11;
	assert_int_equal(rtu_request_len(b, 2), 4);
	b[1] = 12;
	assert_int_equal(rtu_request_len(b, 2), 4);
	b[1] = 17;
	assert_int_equal(rtu_request_len(b, 2), 4);
}

static void test_request_len_variable(void **state)
{
	/* 01 0F 0013 000A 02 CD 01 + CRC: 11 bytes. */
	uint8_t f15[] = {0x01, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01};
	/* 01 10 0001 0002 04 000A 0102 + CRC: 13 bytes. */
	uint8_t f16[] = {0x01, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02};
	/* 01 17 0003 0006 000E 0003 06 ... + CRC: 19 bytes. */
	uint8_t f23[] = {0x01, 0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06};

	(void)state;
	for (size_t n = 2; n < 7; n++) {
		assert_int_equal(rtu_request_len(f15, n), 0);
		assert_int_equal(rtu_request_len(f16, n), 0);
	}
	assert_int_equal(rtu_request_len(f15, 7), 11);
	assert_int_equal(rtu_request_len(f15, sizeof(f15)), 11);
	assert_int_equal(rtu_request_len(f16, 7), 13);
	f16[6] = 246; /* 123 registers: the largest legal fc 16 frame */
	assert_int_equal(rtu_request_len(f16, 7), 255);

	for (size_t n = 2; n < 11; n++)
		assert_int_equal(rtu_request_len(f23, n), 0);
	assert_int_equal(rtu_request_len(f23, 11), 19);
	f23[10] = 242; /* 121 registers */
	assert_int_equal(rtu_request_len(f23, 11), 255);
}

static void test_request_len_unknown(void **state)
{
	static const uint8_t fcs[] = {0, 8, 9, 10, 13, 14, 18, 20, 21, 22, 24, 43, 0x83, 0xFF};
	uint8_t b[8] = {0x01, 0, 0, 0, 0, 0, 0, 0};

	(void)state;
	for (size_t i = 0; i < sizeof(fcs); i++) {
		b[1] = fcs[i];
		assert_int_equal(rtu_request_len(b, 2), -1);
		assert_int_equal(rtu_request_len(b, sizeof(b)), -1);
	}
}

static void test_seal_and_check(void **state)
{
	uint8_t f[16] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A};
	static const uint8_t wire[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD};

	(void)state;
	memset(f + 6, 0xEE, sizeof(f) - 6);
	assert_int_equal(rtu_seal(f, 6), 8);
	assert_memory_equal(f, wire, sizeof(wire));
	assert_int_equal(f[8], 0xEE); /* nothing past the CRC */
	assert_true(rtu_crc_ok(f, 8));
	assert_false(rtu_crc_ok(f, 7)); /* truncated */
	assert_false(rtu_crc_ok(f, 9)); /* trailing garbage */

	/* CRC bytes in the wrong order. */
	f[6] = 0xCD;
	f[7] = 0xC5;
	assert_false(rtu_crc_ok(f, 8));
	f[6] = 0xC5;
	f[7] = 0xCD;

	/* A CRC-16 catches every single-bit error, CRC bytes included. */
	for (size_t i = 0; i < 8; i++)
		for (int bit = 0; bit < 8; bit++) {
			f[i] ^= (uint8_t)(1u << bit);
			if (rtu_crc_ok(f, 8))
				fail_msg("flip of byte %zu bit %d not detected", i, bit);
			f[i] ^= (uint8_t)(1u << bit);
		}
	assert_true(rtu_crc_ok(f, 8));
}

static void test_seal_round_trip(void **state)
{
	uint8_t f[RTU_FRAME_MAX];

	(void)state;
	/* Every frame size up to the RTU maximum seals into a frame that checks. */
	for (size_t n = 2; n + 2 <= RTU_FRAME_MAX; n++) {
		for (size_t i = 0; i < n; i++)
			f[i] = (uint8_t)(i * 37 + n);
		assert_int_equal(rtu_seal(f, n), n + 2);
		if (!rtu_crc_ok(f, n + 2))
			fail_msg("sealed frame of %zu bytes does not check", n);
		f[n / 2] ^= 0x40;
		assert_false(rtu_crc_ok(f, n + 2));
	}
}

static void test_crc_ok_short(void **state)
{
	uint8_t f[4] = {0x01};

	(void)state;
	/* A 3-byte frame with a correct CRC is still too short to be one. */
	assert_int_equal(rtu_seal(f, 1), 3);
	assert_false(rtu_crc_ok(f, 3));
	assert_false(rtu_crc_ok(f, 2));
	assert_false(rtu_crc_ok(f, 0));
	/* The shortest frame: address, function code, CRC. */
	f[1] = 0x07;
	assert_int_equal(rtu_seal(f, 2), 4);
	assert_true(rtu_crc_ok(f, 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc_vectors),		 cmocka_unit_test(test_request_len_fixed),
	    cmocka_unit_test(test_request_len_variable), cmocka_unit_test(test_request_len_unknown),
	    cmocka_unit_test(test_seal_and_check),	 cmocka_unit_test(test_seal_round_trip),
	    cmocka_unit_test(test_crc_ok_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
