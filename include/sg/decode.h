/* Register data types of Iskra devices (T5, T6, T7, float32, ints, strings):
 * decoding for the daemon and encoding for the simulator. 32-bit values are
 * high word first. */
#ifndef SG_DECODE_H
#define SG_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dec_type {
	DEC_UINT16,
	DEC_INT16,
	DEC_UINT32,
	DEC_INT32,
	DEC_FLOAT32,
	DEC_T5,	    /* bits 31-24 signed exponent, 23-0 unsigned mantissa */
	DEC_T6,	    /* bits 31-24 signed exponent, 23-0 signed mantissa */
	DEC_T7,	    /* bits 31-24 import(0)/export, 23-16 ind(0)/cap, 15-0 PF*10000 */
	DEC_STRING, /* 2 ASCII chars per register, high byte first */
};

/* Power-factor detail carried by T7. */
struct dec_pf {
	double pf;	 /* 0 … 1 */
	bool export;	 /* bits 31-24 non-zero */
	bool capacitive; /* bits 23-16 non-zero */
};

/* Parse a type name ("t5", "float32", "string", …); 0 or -EINVAL. */
int dec_type_parse(const char *name, enum dec_type *out);
/* The canonical lower-case name of a type. */
const char *dec_type_name(enum dec_type t);
/* Registers a numeric type occupies (1 or 2); 0 for DEC_STRING. */
unsigned dec_type_words(enum dec_type t);
/* Decode a numeric type from w[] (1 or 2 words); 0 or -EINVAL (NaN/inf too). */
int dec_number(enum dec_type t, const uint16_t *w, double *out);
/* Decode T7 with its flags. */
void dec_t7(const uint16_t *w, struct dec_pf *out);
/* Decode nwords registers of ASCII into buf (NUL-terminated, trailing
 * spaces/NULs trimmed, non-printable bytes replaced by '?'). */
void dec_string(const uint16_t *w, unsigned nwords, char *buf, size_t len);
/* Encode v as type t into w[] (simulator); 0 or -ERANGE/-EINVAL. T5/T6 pick
 * the exponent that keeps the most significant digits. */
int dec_encode_number(enum dec_type t, double v, uint16_t *w);
/* Encode T7 from its parts. */
void dec_encode_t7(const struct dec_pf *pf, uint16_t *w);
/* Encode s into nwords registers, space-padded as Iskra devices do. */
void dec_encode_string(const char *s, uint16_t *w, unsigned nwords);

#endif
