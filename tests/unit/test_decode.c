/* Register decoders and encoders against hand-computed register words, plus
 * encode/decode round trips over many values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/decode.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static double num(enum dec_type t, uint16_t w0, uint16_t w1)
{
	uint16_t w[2] = {w0, w1};
	double v = -12345;

	assert_int_equal(dec_number(t, w, &v), 0);
	return v;
}

static void test_type_names(void **state)
{
	static const char *const names[] = {"uint16", "int16", "uint32", "int32", "float32",
					    "t5",     "t6",    "t7",	 "string"};
	enum dec_type t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(dec_type_parse(names[i], &t), 0);
		assert_string_equal(dec_type_name(t), names[i]);
	}
	assert_int_equal(dec_type_parse("t9", &t), -EINVAL);
	assert_int_equal(dec_type_parse("", &t), -EINVAL);
	assert_int_equal(dec_type_parse("float", &t), -EINVAL);
	assert_int_equal(dec_type_parse(NULL, &t), -EINVAL);
	assert_int_equal(dec_type_words(DEC_UINT16), 1);
	assert_int_equal(dec_type_words(DEC_INT16), 1);
	assert_int_equal(dec_type_words(DEC_UINT32), 2);
	assert_int_equal(dec_type_words(DEC_FLOAT32), 2);
	assert_int_equal(dec_type_words(DEC_T5), 2);
	assert_int_equal(dec_type_words(DEC_T7), 2);
	assert_int_equal(dec_type_words(DEC_STRING), 0);
}

static void test_ints(void **state)
{
	(void)state;
	/* 0xFF9C = 65436 unsigned, 65436 - 65536 = -100 signed */
	assert_true(num(DEC_UINT16, 0xFF9C, 0) == 65436);
	assert_true(num(DEC_INT16, 0xFF9C, 0) == -100);
	/* 0x0001_0000 = 65536 */
	assert_true(num(DEC_UINT32, 0x0001, 0x0000) == 65536);
	/* 0xFFFF_FFFE = 4294967294 unsigned, -2 signed */
	assert_true(num(DEC_UINT32, 0xFFFF, 0xFFFE) == 4294967294.0);
	assert_true(num(DEC_INT32, 0xFFFF, 0xFFFE) == -2);
	/* high word first: 0x0012_D687 = 1234567 */
	assert_true(num(DEC_INT32, 0x0012, 0xD687) == 1234567);
}

static void test_t5(void **state)
{
	(void)state;
	/* 0xFD 0x0382BC: exponent 0xFD = -3; mantissa 0x0382BC = 3·65536 +
	 * 0x82BC (33468) = 230076 → 230076 × 10^-3 = 230.076 */
	assert_true(num(DEC_T5, 0xFD03, 0x82BC) == 230.076);
	/* 0x02 0x000064: 100 × 10^2 = 10000 */
	assert_true(num(DEC_T5, 0x0200, 0x0064) == 10000);
	/* 0x00 0xFFFFFF: mantissa is unsigned, 16777215 × 10^0 */
	assert_true(num(DEC_T5, 0x00FF, 0xFFFF) == 16777215);
	/* 0xFC 0x231D10: 0x231D10 = 35·65536 + 7440 = 2301200 → 230.12 */
	assert_true(num(DEC_T5, 0xFC23, 0x1D10) == 230.12);
	/* 0x80 0x000001: exponent -128 → 1e-128 */
	assert_true(fabs(num(DEC_T5, 0x8000, 0x0001) - 1e-128) < 1e-140);
}

static void test_t6(void **state)
{
	(void)state;
	/* 0xFE 0xFFF830: 0x1000000 - 0xFFF830 = 0x7D0 = 2000, so the mantissa
	 * is -2000 → -2000 × 10^-2 = -20 */
	assert_true(num(DEC_T6, 0xFEFF, 0xF830) == -20);
	/* 0xFF 0x0004D2: 1234 × 10^-1 = 123.4 */
	assert_true(num(DEC_T6, 0xFF00, 0x04D2) == 123.4);
	/* 0x00 0x800000: most negative mantissa -8388608 */
	assert_true(num(DEC_T6, 0x0080, 0x0000) == -8388608);
	/* 0x00 0x7FFFFF: most positive 8388607 */
	assert_true(num(DEC_T6, 0x007F, 0xFFFF) == 8388607);
	/* 0x01 0xFFFFFF: mantissa -1 × 10^1 = -10 */
	assert_true(num(DEC_T6, 0x01FF, 0xFFFF) == -10);
}

static void test_t7(void **state)
{
	uint16_t w[2];
	struct dec_pf pf;

	(void)state;
	/* 0x01 0x00 0x2328: export, inductive, 9000 / 10000 = 0.9 */
	w[0] = 0x0100;
	w[1] = 0x2328;
	dec_t7(w, &pf);
	assert_true(pf.export);
	assert_false(pf.capacitive);
	assert_true(pf.pf == 0.9);
	assert_true(num(DEC_T7, 0x0100, 0x2328) == 0.9);
	/* 0x00 0x01 0x26AC: import, capacitive, 9900 → 0.99 */
	w[0] = 0x0001;
	w[1] = 0x26AC;
	dec_t7(w, &pf);
	assert_false(pf.export);
	assert_true(pf.capacitive);
	assert_true(pf.pf == 0.99);
	/* 0xFF 0xFF 0x2710: any non-zero flag byte counts; 10000 → 1 */
	w[0] = 0xFFFF;
	w[1] = 0x2710;
	dec_t7(w, &pf);
	assert_true(pf.export && pf.capacitive);
	assert_true(pf.pf == 1.0);

	pf = (struct dec_pf){.pf = 0.9, .export = true, .capacitive = true};
	dec_encode_t7(&pf, w);
	assert_int_equal(w[0], 0x0101);
	assert_int_equal(w[1], 0x2328);
	pf = (struct dec_pf){.pf = 0.85};
	dec_encode_t7(&pf, w);
	assert_int_equal(w[0], 0x0000);
	assert_int_equal(w[1], 8500);
	assert_int_equal(dec_encode_number(DEC_T7, 0.5, w), 0);
	assert_int_equal(w[0], 0);
	assert_int_equal(w[1], 5000);
	assert_int_equal(dec_encode_number(DEC_T7, 1.5, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_T7, -0.5, w), -ERANGE);
}

static void test_float32(void **state)
{
	uint16_t w[2];
	double v;

	(void)state;
	/* 230.5 = 1.80078125 × 2^7: sign 0, exponent 127+7 = 0x86, fraction
	 * 0.80078125 × 2^23 = 0x668000 → 0 10000110 1100110100… = 0x43668000 */
	assert_true(num(DEC_FLOAT32, 0x4366, 0x8000) == 230.5);
	/* -1.0 = 0xBF800000 */
	assert_true(num(DEC_FLOAT32, 0xBF80, 0x0000) == -1.0);
	/* NaN (0x7FC00000), +inf (0x7F800000), -inf (0xFF800000) are refused */
	w[0] = 0x7FC0;
	w[1] = 0x0000;
	assert_int_equal(dec_number(DEC_FLOAT32, w, &v), -EINVAL);
	w[0] = 0x7F80;
	assert_int_equal(dec_number(DEC_FLOAT32, w, &v), -EINVAL);
	w[0] = 0xFF80;
	assert_int_equal(dec_number(DEC_FLOAT32, w, &v), -EINVAL);
	/* a signalling NaN with a low-word payload: 0x7F800001 */
	w[0] = 0x7F80;
	w[1] = 0x0001;
	assert_int_equal(dec_number(DEC_FLOAT32, w, &v), -EINVAL);

	assert_int_equal(dec_encode_number(DEC_FLOAT32, 230.5, w), 0);
	assert_int_equal(w[0], 0x4366);
	assert_int_equal(w[1], 0x8000);
	assert_int_equal(dec_encode_number(DEC_FLOAT32, NAN, w), -EINVAL);
	assert_int_equal(dec_encode_number(DEC_FLOAT32, 1e39, w), -ERANGE);
	assert_int_equal(dec_number(DEC_STRING, w, &v), -EINVAL);
}

static void test_encode_t5_t6(void **state)
{
	uint16_t w[2];

	(void)state;
	/* 230.12: the largest mantissa ≤ 0xFFFFFF is 2301200 (×10^-4;
	 * ×10^-5 would be 23012000 > 16777215) = 0x231D10, exponent 0xFC */
	assert_int_equal(dec_encode_number(DEC_T5, 230.12, w), 0);
	assert_int_equal(w[0], 0xFC23);
	assert_int_equal(w[1], 0x1D10);
	/* -20 as T6: |m| ≤ 0x800000 allows -2000000 (×10^-5) = 0xE17B80 in
	 * 24-bit two's complement (0x1000000 - 0x1E8480), exponent 0xFB */
	assert_int_equal(dec_encode_number(DEC_T6, -20, w), 0);
	assert_int_equal(w[0], 0xFBE1);
	assert_int_equal(w[1], 0x7B80);
	/* 16777215 fits with exponent 0; 16777216 needs 1677722 × 10^1 */
	assert_int_equal(dec_encode_number(DEC_T5, 16777215, w), 0);
	assert_int_equal(w[0], 0x00FF);
	assert_int_equal(w[1], 0xFFFF);
	assert_int_equal(dec_encode_number(DEC_T5, 16777216, w), 0);
	assert_int_equal(w[0], 0x0119); /* 1677722 = 0x19999A */
	assert_int_equal(w[1], 0x999A);
	/* 0 → all zero */
	assert_int_equal(dec_encode_number(DEC_T6, 0, w), 0);
	assert_int_equal(w[0], 0);
	assert_int_equal(w[1], 0);
	/* T5 is unsigned; out of range and non-finite values are refused */
	assert_int_equal(dec_encode_number(DEC_T5, -1, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_T5, 1e140, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_T6, -1e140, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_T6, INFINITY, w), -EINVAL);
	assert_int_equal(dec_encode_number(DEC_T5, NAN, w), -EINVAL);
}

static void test_encode_ints(void **state)
{
	uint16_t w[2];

	(void)state;
	assert_int_equal(dec_encode_number(DEC_INT16, -32768, w), 0);
	assert_int_equal(w[0], 0x8000);
	assert_int_equal(dec_encode_number(DEC_INT16, 32768, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_UINT16, 65535, w), 0);
	assert_int_equal(w[0], 0xFFFF);
	assert_int_equal(dec_encode_number(DEC_UINT16, 65536, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_UINT16, -1, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_INT32, -2, w), 0);
	assert_int_equal(w[0], 0xFFFF);
	assert_int_equal(w[1], 0xFFFE);
	assert_int_equal(dec_encode_number(DEC_UINT32, 4294967295.0, w), 0);
	assert_int_equal(w[0], 0xFFFF);
	assert_int_equal(w[1], 0xFFFF);
	assert_int_equal(dec_encode_number(DEC_UINT32, 4294967296.0, w), -ERANGE);
	assert_int_equal(dec_encode_number(DEC_STRING, 1, w), -EINVAL);
}

/* Values with at most 6 significant digits come back bit-exact; anything
 * else within the 24-bit mantissa's resolution. */
static void test_round_trip(void **state)
{
	static const double exact[] = {230.12, 0.5,    49.99,  1234.5, 0.001, 400,
				       1e-6,   123456, 99.999, 0.1,    3.3,   50};
	enum dec_type types[] = {DEC_T5, DEC_T6};
	uint16_t w[2];
	double v, d, tol;
	size_t i, t;
	int k;

	(void)state;
	for (t = 0; t < 2; t++) {
		for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
			assert_int_equal(dec_encode_number(types[t], exact[i], w), 0);
			assert_int_equal(dec_number(types[t], w, &d), 0);
			assert_true(d == exact[i]);
		}
	}
	/* a geometric sweep over 40 decades, both signs for T6 */
	for (k = -200; k <= 200; k++) {
		v = 1.2345678901 * pow(10.0, k / 10.0);
		for (t = 0; t < 2; t++) {
			assert_int_equal(dec_encode_number(types[t], v, w), 0);
			assert_int_equal(dec_number(types[t], w, &d), 0);
			tol = fabs(v) * 1e-6;
			assert_true(fabs(d - v) <= tol);
		}
		assert_int_equal(dec_encode_number(DEC_T6, -v, w), 0);
		assert_int_equal(dec_number(DEC_T6, w, &d), 0);
		assert_true(fabs(d + v) <= fabs(v) * 1e-6);
		/* float32 within single precision */
		assert_int_equal(dec_encode_number(DEC_FLOAT32, -v, w), 0);
		assert_int_equal(dec_number(DEC_FLOAT32, w, &d), 0);
		assert_true(fabs(d + v) <= fabs(v) * 1e-7);
	}
	/* integer types are exact */
	for (k = -32768; k <= 32767; k += 257) {
		assert_int_equal(dec_encode_number(DEC_INT16, k, w), 0);
		assert_true(num(DEC_INT16, w[0], 0) == k);
		assert_int_equal(dec_encode_number(DEC_INT32, k * 65535.0, w), 0);
		assert_true(num(DEC_INT32, w[0], w[1]) == k * 65535.0);
	}
}

static void test_string_decode(void **state)
{
	/* "IE38MD" + space padding: 0x4945 'I''E', 0x3338 '3''8', 0x4D44 'M''D' */
	uint16_t model[8] = {0x4945, 0x3338, 0x4D44, 0x2020, 0x2020, 0x2020, 0x2020, 0x2020};
	/* odd length "ABC": the last register holds 'C' and a NUL */
	uint16_t odd[2] = {0x4142, 0x4300};
	/* 0x07 (bell) and an embedded NUL are shown as '?' */
	uint16_t ctl[3] = {0x4107, 0x4200, 0x4320};
	uint16_t empty[2] = {0x2000, 0x0020};
	char buf[32];

	(void)state;
	dec_string(model, 8, buf, sizeof(buf));
	assert_string_equal(buf, "IE38MD");
	dec_string(odd, 2, buf, sizeof(buf));
	assert_string_equal(buf, "ABC");
	dec_string(odd, 1, buf, sizeof(buf));
	assert_string_equal(buf, "AB");
	dec_string(ctl, 3, buf, sizeof(buf));
	assert_string_equal(buf, "A?B?C");
	dec_string(empty, 2, buf, sizeof(buf));
	assert_string_equal(buf, "");
	/* truncated to the buffer: 3 bytes hold 2 chars + NUL */
	dec_string(model, 8, buf, 3);
	assert_string_equal(buf, "IE");
}

static void test_string_encode(void **state)
{
	uint16_t w[4];
	char buf[16];

	(void)state;
	memset(w, 0xAA, sizeof(w));
	dec_encode_string("ABC", w, 3);
	assert_int_equal(w[0], 0x4142);
	assert_int_equal(w[1], 0x4320); /* space padded, as Iskra meters */
	assert_int_equal(w[2], 0x2020);
	assert_int_equal(w[3], 0xAAAA);	       /* untouched past nwords */
	dec_encode_string("ABCDEFGHIJ", w, 2); /* truncated */
	assert_int_equal(w[0], 0x4142);
	assert_int_equal(w[1], 0x4344);
	dec_encode_string("WM3M4C", w, 4);
	dec_string(w, 4, buf, sizeof(buf));
	assert_string_equal(buf, "WM3M4C");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type_names),
	    cmocka_unit_test(test_ints),
	    cmocka_unit_test(test_t5),
	    cmocka_unit_test(test_t6),
	    cmocka_unit_test(test_t7),
	    cmocka_unit_test(test_float32),
	    cmocka_unit_test(test_encode_t5_t6),
	    cmocka_unit_test(test_encode_ints),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_string_decode),
	    cmocka_unit_test(test_string_encode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
