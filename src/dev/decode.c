/* Iskra register data types: decoding for the daemon, encoding for the
 * simulator. All 32-bit values are high word first (w[0] = bits 31-16). */
#include "sg/decode.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define T5_MANT_MAX 0xFFFFFFu /* 24-bit unsigned mantissa */
#define T6_MANT_MAX 0x7FFFFF  /* 24-bit two's complement mantissa */
#define T6_MANT_MIN (-0x800000)
#define T7_SCALE 10000.0

static const char *const type_names[] = {
    [DEC_UINT16] = "uint16", [DEC_INT16] = "int16",	[DEC_UINT32] = "uint32",
    [DEC_INT32] = "int32",   [DEC_FLOAT32] = "float32", [DEC_T5] = "t5",
    [DEC_T6] = "t6",	     [DEC_T7] = "t7",		[DEC_STRING] = "string",
};

#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))

int dec_type_parse(const char *name, enum dec_type *out)
{
	size_t i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < NTYPES; i++) {
		if (strcmp(name, type_names[i]) == 0) {
			*out = (enum dec_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *dec_type_name(enum dec_type t)
{
	if ((size_t)t >= NTYPES)
		return "?";
	return type_names[t];
}

unsigned dec_type_words(enum dec_type t)
{
	switch (t) {
	case DEC_UINT16:
	case DEC_INT16:
		return 1;
	case DEC_UINT32:
	case DEC_INT32:
	case DEC_FLOAT32:
	case DEC_T5:
	case DEC_T6:
	case DEC_T7:
		return 2;
	case DEC_STRING:
		break;
	}
	return 0;
}

static uint32_t u32_of(const uint16_t *w)
{
	return (uint32_t)w[0] << 16 | w[1];
}

static void u32_put(uint32_t v, uint16_t *w)
{
	w[0] = (uint16_t)(v >> 16);
	w[1] = (uint16_t)(v & 0xFFFF);
}

/* Exact powers of ten up to 1e22 are representable, so dividing by one (rather
 * than multiplying by its inexact reciprocal) gives the correctly rounded
 * value: 23012 × 10^-2 decodes to exactly 230.12. */
static double scale10(double m, int e)
{
	if (e >= 0)
		return m * pow(10.0, e);
	return m / pow(10.0, -e);
}

/* Split the exponent byte and 24-bit mantissa of T5/T6. */
static void t56_split(const uint16_t *w, int *exp, uint32_t *mant)
{
	uint32_t v = u32_of(w);

	*exp = (int8_t)(uint8_t)(v >> 24);
	*mant = v & 0xFFFFFFu;
}

static double t5_value(const uint16_t *w)
{
	uint32_t mant;
	int e;

	t56_split(w, &e, &mant);
	return scale10((double)mant, e);
}

static double t6_value(const uint16_t *w)
{
	uint32_t mant;
	int32_t sm;
	int e;

	t56_split(w, &e, &mant);
	/* sign-extend the 24-bit mantissa */
	sm = (mant & 0x800000u) ? (int32_t)mant - 0x1000000 : (int32_t)mant;
	return scale10((double)sm, e);
}

static int float32_value(const uint16_t *w, double *out)
{
	uint32_t bits = u32_of(w);
	float f;

	memcpy(&f, &bits, sizeof(f));
	if (!isfinite(f))
		return -EINVAL;
	*out = f;
	return 0;
}

int dec_number(enum dec_type t, const uint16_t *w, double *out)
{
	switch (t) {
	case DEC_UINT16:
		*out = w[0];
		return 0;
	case DEC_INT16:
		*out = (int16_t)w[0];
		return 0;
	case DEC_UINT32:
		*out = u32_of(w);
		return 0;
	case DEC_INT32:
		*out = (int32_t)u32_of(w);
		return 0;
	case DEC_FLOAT32:
		return float32_value(w, out);
	case DEC_T5:
		*out = t5_value(w);
		return 0;
	case DEC_T6:
		*out = t6_value(w);
		return 0;
	case DEC_T7:
		*out = w[1] / T7_SCALE;
		return 0;
	case DEC_STRING:
		break;
	}
	return -EINVAL;
}

void dec_t7(const uint16_t *w, struct dec_pf *out)
{
	out->pf = w[1] / T7_SCALE;
	out->export = (w[0] >> 8) != 0;
	out->capacitive = (w[0] & 0xFF) != 0;
}

static bool printable(unsigned char c)
{
	return c >= 0x20 && c < 0x7F;
}

void dec_string(const uint16_t *w, unsigned nwords, char *buf, size_t len)
{
	size_t n = 0, i;

	if (len == 0)
		return;
	for (i = 0; i < (size_t)nwords * 2 && n + 1 < len; i++)
		buf[n++] = (char)(i % 2 ? w[i / 2] & 0xFF : w[i / 2] >> 8);
	/* Padding is spaces or NULs depending on the firmware; trim both before
	 * masking so embedded NULs show up as '?' instead of cutting the text. */
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\0'))
		n--;
	buf[n] = '\0';
	for (i = 0; i < n; i++)
		if (!printable((unsigned char)buf[i]))
			buf[i] = '?';
}

/* Find the smallest exponent e for which round(v / 10^e) fits in [lo, hi]:
 * the largest mantissa keeps the most significant digits. */
static int t56_pick(double v, double lo, double hi, int *exp, long *mant)
{
	double a = fabs(v), m;
	int e;

	if (a == 0) {
		*exp = 0;
		*mant = 0;
		return 0;
	}
	/* Start one below the estimate so rounding at the edge is handled by
	 * the upward search. */
	e = (int)floor(log10(a)) - 8;
	if (e < INT8_MIN)
		e = INT8_MIN;
	for (; e <= INT8_MAX; e++) {
		m = nearbyint(scale10(v, -e));
		if (m >= lo && m <= hi) {
			*exp = e;
			*mant = (long)m;
			return 0;
		}
	}
	return -ERANGE;
}

static int t56_encode(double v, bool is_signed, uint16_t *w)
{
	long mant;
	int e, rc;

	if (!isfinite(v))
		return -EINVAL;
	if (is_signed)
		rc = t56_pick(v, T6_MANT_MIN, T6_MANT_MAX, &e, &mant);
	else if (v < 0)
		return -ERANGE;
	else
		rc = t56_pick(v, 0, T5_MANT_MAX, &e, &mant);
	if (rc < 0)
		return rc;
	u32_put((uint32_t)(uint8_t)(int8_t)e << 24 | ((uint32_t)mant & 0xFFFFFFu), w);
	return 0;
}

/* Round v to an integer within [lo, hi]. */
static int int_encode(double v, double lo, double hi, double *out)
{
	double r;

	if (!isfinite(v))
		return -EINVAL;
	r = nearbyint(v);
	if (r < lo || r > hi)
		return -ERANGE;
	*out = r;
	return 0;
}

static int float32_encode(double v, uint16_t *w)
{
	uint32_t bits;
	float f;

	if (!isfinite(v))
		return -EINVAL;
	if (fabs(v) > 3.4028234663852886e38)
		return -ERANGE;
	f = (float)v;
	memcpy(&bits, &f, sizeof(bits));
	u32_put(bits, w);
	return 0;
}

/* dec_encode_number(DEC_T7) takes a plain PF (0..1, import, inductive); the
 * flags go through dec_encode_t7. */
static int t7_encode(double v, uint16_t *w)
{
	struct dec_pf pf = {.pf = v};

	if (!isfinite(v))
		return -EINVAL;
	if (v < 0 || v > 1)
		return -ERANGE;
	dec_encode_t7(&pf, w);
	return 0;
}

int dec_encode_number(enum dec_type t, double v, uint16_t *w)
{
	double r;
	int rc;

	switch (t) {
	case DEC_UINT16:
	case DEC_INT16:
		rc = int_encode(v, t == DEC_INT16 ? INT16_MIN : 0,
				t == DEC_INT16 ? INT16_MAX : UINT16_MAX, &r);
		if (rc == 0)
			w[0] = (uint16_t)(int32_t)r;
		return rc;
	case DEC_UINT32:
	case DEC_INT32:
		rc = int_encode(v, t == DEC_INT32 ? (double)INT32_MIN : 0,
				t == DEC_INT32 ? (double)INT32_MAX : (double)UINT32_MAX, &r);
		if (rc == 0)
			u32_put(t == DEC_INT32 ? (uint32_t)(int32_t)r : (uint32_t)r, w);
		return rc;
	case DEC_FLOAT32:
		return float32_encode(v, w);
	case DEC_T5:
	case DEC_T6:
		return t56_encode(v, t == DEC_T6, w);
	case DEC_T7:
		return t7_encode(v, w);
	case DEC_STRING:
		break;
	}
	return -EINVAL;
}

void dec_encode_t7(const struct dec_pf *pf, uint16_t *w)
{
	double v = pf->pf;

	if (!(v >= 0)) /* also catches NaN */
		v = 0;
	if (v > 1)
		v = 1;
	w[0] = (uint16_t)((pf->export ? 0x0100 : 0) | (pf->capacitive ? 0x0001 : 0));
	w[1] = (uint16_t)lround(v * T7_SCALE);
}

void dec_encode_string(const char *s, uint16_t *w, unsigned nwords)
{
	size_t len = s ? strlen(s) : 0, i;
	unsigned char c;

	for (i = 0; i < (size_t)nwords * 2; i++) {
		/* Space padding, as Iskra devices pad their identification. */
		c = i < len ? (unsigned char)s[i] : ' ';
		if (i % 2)
			w[i / 2] |= c;
		else
			w[i / 2] = (uint16_t)(c << 8);
	}
}
