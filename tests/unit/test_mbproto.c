/* Modbus application protocol: MBAP framing of a TCP stream (partial, bad and
 * back-to-back frames), every request function parsed into a transaction at
 * and beyond its limits, every response and exception PDU byte for byte, the
 * gateway's error mapping, and whole request/response round trips. Requests
 * are parsed from heap copies of exactly their length so that ASan catches
 * a read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/bus.h"
#include "sg/mbproto.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__})
#define NBYTES(...) sizeof((const uint8_t[]){__VA_ARGS__})
/* Parse a literal PDU into t. */
#define PARSE(t, ...) parse(BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__), t)

static void dummy_done(struct bus_txn *t, void *arg)
{
	(void)t;
	(void)arg;
}

/* A transaction whose non-request fields carry recognisable values. */
static void prime(struct bus_txn *t)
{
	memset(t, 0xA5, sizeof(*t));
	t->node.next = NULL;
	t->unit = 0x42;
	t->timeout_ms = 1234;
	t->err = -77;
	for (size_t i = 0; i < BUS_REGS_MAX; i++)
		t->regs[i] = (uint16_t)(0xC000 + i);
	t->latency_ms = 987654321;
	t->done = dummy_done;
	t->arg = t;
}

static void assert_untouched(const struct bus_txn *t)
{
	assert_null(t->node.next);
	assert_int_equal(t->unit, 0x42);
	assert_int_equal(t->timeout_ms, 1234);
	assert_int_equal(t->err, -77);
	for (size_t i = 0; i < BUS_REGS_MAX; i++)
		if (t->regs[i] != 0xC000 + i)
			fail_msg("regs[%zu] changed to 0x%04x", i, t->regs[i]);
	assert_int_equal(t->latency_ms, 987654321);
	assert_ptr_equal(t->done, dummy_done);
	assert_ptr_equal(t->arg, t);
}

/* mbpdu_to_txn on an exact-length heap copy of pdu; on success the request
 * must also pass the bus's own check, and nothing else in t may change. */
static int parse(const uint8_t *pdu, size_t len, struct bus_txn *t)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, pdu, len);
	prime(t);
	r = mbpdu_to_txn(copy, len, t);
	free(copy);
	assert_untouched(t);
	if (r == 0)
		assert_int_equal(bus_txn_check(t), 0);
	return r;
}

/* fc addr count */
static size_t mk_read(uint8_t *p, uint8_t fc, uint16_t addr, uint16_t count)
{
	p[0] = fc;
	p[1] = (uint8_t)(addr >> 8);
	p[2] = (uint8_t)addr;
	p[3] = (uint8_t)(count >> 8);
	p[4] = (uint8_t)count;
	return 5;
}

/* fc 15: coil i set when i % 3 == 0; the byte count and the number of data
 * bytes actually present are given separately to build broken requests. */
static size_t mk_wbits(uint8_t *p, uint16_t addr, uint16_t count, uint8_t bc, size_t ndata)
{
	mk_read(p, 15, addr, count);
	p[5] = bc;
	memset(p + 6, 0, ndata);
	for (size_t i = 0; i < ndata * 8; i++)
		if (i % 3 == 0)
			p[6 + i / 8] |= (uint8_t)(1u << (i % 8));
	return 6 + ndata;
}

/* fc 16: register i holds 0x1000 + i. */
static size_t mk_wregs(uint8_t *p, uint16_t addr, uint16_t count, uint8_t bc, size_t nregs)
{
	mk_read(p, 16, addr, count);
	p[5] = bc;
	for (size_t i = 0; i < nregs; i++) {
		p[6 + 2 * i] = (uint8_t)((0x1000 + i) >> 8);
		p[7 + 2 * i] = (uint8_t)(0x1000 + i);
	}
	return 6 + 2 * nregs;
}

/* fc 23: written register i holds 0x2000 + i. */
static size_t mk_rw(uint8_t *p, uint16_t raddr, uint16_t rcount, uint16_t waddr, uint16_t wcount,
		    uint8_t bc, size_t nregs)
{
	mk_read(p, 23, raddr, rcount);
	p[5] = (uint8_t)(waddr >> 8);
	p[6] = (uint8_t)waddr;
	p[7] = (uint8_t)(wcount >> 8);
	p[8] = (uint8_t)wcount;
	p[9] = bc;
	for (size_t i = 0; i < nregs; i++) {
		p[10 + 2 * i] = (uint8_t)((0x2000 + i) >> 8);
		p[11 + 2 * i] = (uint8_t)(0x2000 + i);
	}
	return 10 + 2 * nregs;
}

/* ---- MBAP ---- */

static void test_mbap_parse_frame(void **state)
{
	static const uint8_t f[] = {0x12, 0x34, 0x00, 0x00, 0x00, 0x06,
				    0x11, 0x03, 0x00, 0x6B, 0x00, 0x03};
	struct mbap h;

	(void)state;
	memset(&h, 0xEE, sizeof(h));
	assert_int_equal(mbap_parse(f, sizeof(f), &h), 12);
	assert_int_equal(h.tid, 0x1234);
	assert_int_equal(h.pid, 0);
	assert_int_equal(h.len, 6);
	assert_int_equal(h.unit, 0x11);

	/* Partial header and partial body: wait. */
	for (size_t n = 0; n < sizeof(f); n++)
		if (mbap_parse(f, n, &h) != 0)
			fail_msg("%zu of %zu bytes not reported as incomplete", n, sizeof(f));
}

static void test_mbap_parse_bad_header(void **state)
{
	uint8_t f[MB_ADU_TCP_MAX + 64];
	struct mbap h;

	(void)state;
	memset(f, 0, sizeof(f));
	/* Protocol id != 0: rejected as soon as the length field is in. */
	f[2] = 0x00;
	f[3] = 0x01;
	f[5] = 6;
	assert_int_equal(mbap_parse(f, 6, &h), -1);
	assert_int_equal(mbap_parse(f, 12, &h), -1);
	f[2] = 0x80;
	f[3] = 0x00;
	assert_int_equal(mbap_parse(f, 12, &h), -1);
	f[2] = 0;

	/* len 0 and 1 cannot hold unit + function code. */
	f[5] = 0;
	assert_int_equal(mbap_parse(f, 6, &h), -1);
	assert_int_equal(mbap_parse(f, 7, &h), -1);
	f[5] = 1;
	assert_int_equal(mbap_parse(f, 6, &h), -1);
	assert_int_equal(mbap_parse(f, 7, &h), -1);

	/* len 255 and 300 exceed unit + the largest PDU; judged without the body. */
	f[5] = 255;
	assert_int_equal(mbap_parse(f, 6, &h), -1);
	assert_int_equal(mbap_parse(f, sizeof(f), &h), -1);
	f[4] = 0x01;
	f[5] = 0x2C; /* 300 */
	assert_int_equal(mbap_parse(f, 6, &h), -1);
	assert_int_equal(mbap_parse(f, sizeof(f), &h), -1);
	f[4] = 0xFF;
	f[5] = 0xFF;
	assert_int_equal(mbap_parse(f, 6, &h), -1);
}

static void test_mbap_parse_limits(void **state)
{
	uint8_t f[MB_ADU_TCP_MAX + 1];
	struct mbap h;

	(void)state;
	memset(f, 0, sizeof(f));
	f[0] = 0xFF;
	f[1] = 0xFE;
	/* Smallest: unit + function code. */
	f[5] = 2;
	f[6] = 0xF7;
	f[7] = 0x07;
	assert_int_equal(mbap_parse(f, 7, &h), 0);
	assert_int_equal(mbap_parse(f, 8, &h), 8);
	assert_int_equal(h.tid, 0xFFFE);
	assert_int_equal(h.len, 2);
	assert_int_equal(h.unit, 0xF7);

	/* Largest: 254 = unit + 253-byte PDU, a 260-byte frame. */
	f[5] = MBAP_LEN_MAX;
	assert_int_equal(mbap_parse(f, MB_ADU_TCP_MAX - 1, &h), 0);
	assert_int_equal(mbap_parse(f, MB_ADU_TCP_MAX, &h), MB_ADU_TCP_MAX);
	assert_int_equal(mbap_parse(f, sizeof(f), &h), MB_ADU_TCP_MAX);
	assert_int_equal(h.len, MBAP_LEN_MAX);
}

static void test_mbap_back_to_back(void **state)
{
	static const uint8_t s[] = {
	    /* tid 1: read 2 holding registers at 0 */
	    0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x02,
	    /* tid 2: write coil 0x00AC on, unit 0xFF */
	    0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0xFF, 0x05, 0x00, 0xAC, 0xFF, 0x00,
	    /* tid 3: first 4 bytes of the next header */
	    0x00, 0x03, 0x00, 0x00};
	struct mbap h;
	int r1, r2;

	(void)state;
	r1 = mbap_parse(s, sizeof(s), &h);
	assert_int_equal(r1, 12);
	assert_int_equal(h.tid, 1);
	assert_int_equal(h.unit, 1);
	r2 = mbap_parse(s + r1, sizeof(s) - (size_t)r1, &h);
	assert_int_equal(r2, 12);
	assert_int_equal(h.tid, 2);
	assert_int_equal(h.unit, 0xFF);
	assert_int_equal(s[r1 + MBAP_HDR], 0x05);
	assert_int_equal(mbap_parse(s + r1 + r2, sizeof(s) - (size_t)(r1 + r2), &h), 0);
}

static void test_mbap_build(void **state)
{
	static const uint8_t pdu[] = {0x03, 0x00, 0x00, 0x00, 0x0A};
	static const uint8_t want[] = {0xBE, 0xEF, 0x00, 0x00, 0x00, 0x06,
				       0x07, 0x03, 0x00, 0x00, 0x00, 0x0A};
	uint8_t out[MB_ADU_TCP_MAX + 1], big[MB_PDU_MAX];
	struct mbap h;

	(void)state;
	memset(out, 0xEE, sizeof(out));
	assert_int_equal(mbap_build(0xBEEF, 7, pdu, sizeof(pdu), out), sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(out[sizeof(want)], 0xEE);

	/* The largest PDU makes the largest frame, and it parses back. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	assert_int_equal(mbap_build(0x0102, 0x33, big, sizeof(big), out), MB_ADU_TCP_MAX);
	assert_int_equal(out[MB_ADU_TCP_MAX], 0xEE);
	assert_int_equal(mbap_parse(out, MB_ADU_TCP_MAX, &h), MB_ADU_TCP_MAX);
	assert_int_equal(h.tid, 0x0102);
	assert_int_equal(h.len, MBAP_LEN_MAX);
	assert_int_equal(h.unit, 0x33);
	assert_memory_equal(out + MBAP_HDR, big, sizeof(big));
}

/* ---- request parsing ---- */

static void test_parse_reads(void **state)
{
	static const uint16_t max[5] = {0, 2000, 2000, 125, 125};
	struct bus_txn t;
	uint8_t p[8];

	(void)state;
	assert_int_equal(PARSE(&t, 0x03, 0x00, 0x6B, 0x00, 0x03), 0);
	assert_int_equal(t.fc, 3);
	assert_int_equal(t.addr, 0x6B);
	assert_int_equal(t.count, 3);

	for (uint8_t fc = 1; fc <= 4; fc++) {
		mk_read(p, fc, 0x1234, 1);
		assert_int_equal(parse(p, 5, &t), 0);
		assert_int_equal(t.fc, fc);
		assert_int_equal(t.addr, 0x1234);
		assert_int_equal(t.count, 1);

		mk_read(p, fc, 0, max[fc]);
		assert_int_equal(parse(p, 5, &t), 0);
		assert_int_equal(t.count, max[fc]);

		mk_read(p, fc, 0, 0);
		assert_int_equal(parse(p, 5, &t), MB_EX_ILLEGAL_VALUE);
		mk_read(p, fc, 0, (uint16_t)(max[fc] + 1));
		assert_int_equal(parse(p, 5, &t), MB_EX_ILLEGAL_VALUE);
		mk_read(p, fc, 0, 0xFFFF);
		assert_int_equal(parse(p, 5, &t), MB_EX_ILLEGAL_VALUE);

		/* Up to the last address, not past it. */
		mk_read(p, fc, (uint16_t)(65536 - max[fc]), max[fc]);
		assert_int_equal(parse(p, 5, &t), 0);
		mk_read(p, fc, (uint16_t)(65537 - max[fc]), max[fc]);
		assert_int_equal(parse(p, 5, &t), MB_EX_ILLEGAL_ADDRESS);
		mk_read(p, fc, 0xFFFF, 1);
		assert_int_equal(parse(p, 5, &t), 0);
		mk_read(p, fc, 0xFFFF, 2);
		assert_int_equal(parse(p, 5, &t), MB_EX_ILLEGAL_ADDRESS);

		/* Truncated and over-long. */
		mk_read(p, fc, 0, 1);
		for (size_t n = 1; n < 5; n++)
			assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
		p[5] = 0;
		assert_int_equal(parse(p, 6, &t), MB_EX_ILLEGAL_VALUE);
	}
}

static void test_parse_write_coil(void **state)
{
	struct bus_txn t;

	(void)state;
	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0xFF, 0x00), 0);
	assert_int_equal(t.fc, 5);
	assert_int_equal(t.addr, 0xAC);
	assert_int_equal(t.count, 1);
	assert_int_equal(t.val[0], 1);
	assert_int_equal(PARSE(&t, 0x05, 0xFF, 0xFF, 0x00, 0x00), 0);
	assert_int_equal(t.addr, 0xFFFF);
	assert_int_equal(t.val[0], 0);

	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0x00, 0x01), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0x00, 0xFF), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0xFF, 0xFF), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0x01, 0x00), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0xFF), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x05, 0x00, 0xAC, 0xFF, 0x00, 0x00), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x05), MB_EX_ILLEGAL_VALUE);
}

static void test_parse_write_register(void **state)
{
	struct bus_txn t;

	(void)state;
	assert_int_equal(PARSE(&t, 0x06, 0x00, 0x01, 0x00, 0x03), 0);
	assert_int_equal(t.fc, 6);
	assert_int_equal(t.addr, 1);
	assert_int_equal(t.count, 1);
	assert_int_equal(t.val[0], 3);
	/* Any value is legal, at any address. */
	assert_int_equal(PARSE(&t, 0x06, 0xFF, 0xFF, 0xAB, 0xCD), 0);
	assert_int_equal(t.addr, 0xFFFF);
	assert_int_equal(t.val[0], 0xABCD);
	assert_int_equal(PARSE(&t, 0x06, 0x00, 0x00, 0x00, 0x00), 0);
	assert_int_equal(t.val[0], 0);

	assert_int_equal(PARSE(&t, 0x06, 0x00, 0x01, 0x00), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(PARSE(&t, 0x06, 0x00, 0x01, 0x00, 0x03, 0x00), MB_EX_ILLEGAL_VALUE);
}

static void test_parse_write_coils(void **state)
{
	/* The spec's example: coils 20…29 = 1011 0011 10. */
	static const uint8_t want[10] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
	struct bus_txn t;
	uint8_t p[MB_PDU_MAX + 8];
	size_t n;

	(void)state;
	assert_int_equal(PARSE(&t, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01), 0);
	assert_int_equal(t.fc, 15);
	assert_int_equal(t.addr, 0x13);
	assert_int_equal(t.count, 10);
	assert_memory_equal(t.bits, want, sizeof(want));

	/* Unused high bits of the last byte are ignored. */
	assert_int_equal(PARSE(&t, 0x0F, 0x00, 0x00, 0x00, 0x03, 0x01, 0xFA), 0);
	assert_int_equal(t.count, 3);
	assert_memory_equal(t.bits, BYTES(0, 1, 0), 3);

	/* 1 and 1968 coils. */
	n = mk_wbits(p, 7, 1, 1, 1);
	assert_int_equal(parse(p, n, &t), 0);
	assert_int_equal(t.count, 1);
	assert_int_equal(t.bits[0], 1);
	n = mk_wbits(p, 0, 1968, 246, 246);
	assert_int_equal(n, 252);
	assert_int_equal(parse(p, n, &t), 0);
	assert_int_equal(t.count, 1968);
	for (size_t i = 0; i < 1968; i++)
		if (t.bits[i] != (i % 3 == 0))
			fail_msg("coil %zu is %u", i, t.bits[i]);

	/* 0 and 1969 coils, each with a byte count that matches. */
	n = mk_wbits(p, 0, 0, 0, 0);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wbits(p, 0, 1969, 247, 247);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);

	/* Byte count not (count + 7) / 8, with the data present to match it. */
	n = mk_wbits(p, 0, 10, 1, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wbits(p, 0, 10, 3, 3);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wbits(p, 0, 8, 2, 2);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);

	/* Data shorter or longer than the byte count says; header cut short. */
	n = mk_wbits(p, 0, 10, 2, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wbits(p, 0, 10, 2, 3);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wbits(p, 0, 10, 2, 2);
	for (size_t k = 1; k < n; k++)
		assert_int_equal(parse(p, k, &t), MB_EX_ILLEGAL_VALUE);

	/* Past the end of the address space. */
	n = mk_wbits(p, 0xFFF6, 10, 2, 2);
	assert_int_equal(parse(p, n, &t), 0);
	n = mk_wbits(p, 0xFFF7, 10, 2, 2);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_ADDRESS);
}

static void test_parse_write_registers(void **state)
{
	struct bus_txn t;
	uint8_t p[MB_PDU_MAX + 8];
	size_t n;

	(void)state;
	assert_int_equal(PARSE(&t, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02), 0);
	assert_int_equal(t.fc, 16);
	assert_int_equal(t.addr, 1);
	assert_int_equal(t.count, 2);
	assert_int_equal(t.val[0], 0x000A);
	assert_int_equal(t.val[1], 0x0102);

	n = mk_wregs(p, 0x4000, 1, 2, 1);
	assert_int_equal(parse(p, n, &t), 0);
	assert_int_equal(t.count, 1);
	assert_int_equal(t.val[0], 0x1000);
	n = mk_wregs(p, 0, 123, 246, 123);
	assert_int_equal(n, 252);
	assert_int_equal(parse(p, n, &t), 0);
	assert_int_equal(t.count, 123);
	for (size_t i = 0; i < 123; i++)
		if (t.val[i] != 0x1000 + i)
			fail_msg("val[%zu] is 0x%04x", i, t.val[i]);

	n = mk_wregs(p, 0, 0, 0, 0);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wregs(p, 0, 124, 248, 123); /* 124 would not fit a PDU */
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wregs(p, 0, 124, 248, 124);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);

	/* Byte count mismatch, odd byte count. */
	n = mk_wregs(p, 0, 2, 2, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wregs(p, 0, 2, 6, 3);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_wregs(p, 0, 2, 3, 2);
	assert_int_equal(parse(p, n - 1, &t), MB_EX_ILLEGAL_VALUE);

	/* Truncated anywhere, one byte over. */
	n = mk_wregs(p, 0, 2, 4, 2);
	for (size_t k = 1; k < n; k++)
		assert_int_equal(parse(p, k, &t), MB_EX_ILLEGAL_VALUE);
	p[n] = 0;
	assert_int_equal(parse(p, n + 1, &t), MB_EX_ILLEGAL_VALUE);

	n = mk_wregs(p, 0xFFFE, 2, 4, 2);
	assert_int_equal(parse(p, n, &t), 0);
	n = mk_wregs(p, 0xFFFF, 2, 4, 2);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_ADDRESS);
}

static void test_parse_read_write(void **state)
{
	struct bus_txn t;
	uint8_t p[MB_PDU_MAX + 8];
	size_t n;

	(void)state;
	/* The spec's example: read 6 at 3, write 3 at 14. */
	assert_int_equal(PARSE(&t, 0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00,
			       0xFF, 0x00, 0xFF, 0x00, 0xFF),
			 0);
	assert_int_equal(t.fc, 23);
	assert_int_equal(t.addr, 3);
	assert_int_equal(t.count, 6);
	assert_int_equal(t.waddr, 14);
	assert_int_equal(t.wcount, 3);
	assert_int_equal(t.val[0], 0xFF);
	assert_int_equal(t.val[1], 0xFF);
	assert_int_equal(t.val[2], 0xFF);

	/* Limits of both halves. */
	n = mk_rw(p, 0, 125, 0x100, 121, 242, 121);
	assert_int_equal(n, 252);
	assert_int_equal(parse(p, n, &t), 0);
	assert_int_equal(t.count, 125);
	assert_int_equal(t.waddr, 0x100);
	assert_int_equal(t.wcount, 121);
	for (size_t i = 0; i < 121; i++)
		if (t.val[i] != 0x2000 + i)
			fail_msg("val[%zu] is 0x%04x", i, t.val[i]);
	n = mk_rw(p, 0, 1, 0, 1, 2, 1);
	assert_int_equal(parse(p, n, &t), 0);
	assert_int_equal(t.count, 1);
	assert_int_equal(t.wcount, 1);

	n = mk_rw(p, 0, 0, 0, 1, 2, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_rw(p, 0, 126, 0, 1, 2, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_rw(p, 0, 1, 0, 0, 0, 0);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_rw(p, 0, 1, 0, 122, 244, 122);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);

	/* Byte count mismatch, short and long data, truncated header. */
	n = mk_rw(p, 0, 1, 0, 2, 2, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_rw(p, 0, 1, 0, 2, 4, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_rw(p, 0, 1, 0, 2, 4, 3);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_VALUE);
	n = mk_rw(p, 0, 1, 0, 2, 4, 2);
	for (size_t k = 1; k < n; k++)
		assert_int_equal(parse(p, k, &t), MB_EX_ILLEGAL_VALUE);

	/* Either half past the end of the address space. */
	n = mk_rw(p, 0xFFFF, 1, 0xFFFF, 1, 2, 1);
	assert_int_equal(parse(p, n, &t), 0);
	n = mk_rw(p, 0xFFFF, 2, 0, 1, 2, 1);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_ADDRESS);
	n = mk_rw(p, 0, 1, 0xFFFF, 2, 4, 2);
	assert_int_equal(parse(p, n, &t), MB_EX_ILLEGAL_ADDRESS);
}

static void test_parse_bad_function(void **state)
{
	static const uint8_t fcs[] = {0, 7, 8, 11, 17, 20, 22, 24, 43, 0x83, 0x90, 0xFF};
	struct bus_txn t;
	uint8_t p[5] = {0, 0x00, 0x00, 0x00, 0x01};

	(void)state;
	assert_int_equal(parse(p, 0, &t), MB_EX_ILLEGAL_FUNCTION);
	prime(&t);
	assert_int_equal(mbpdu_to_txn(NULL, 0, &t), MB_EX_ILLEGAL_FUNCTION);
	for (size_t i = 0; i < sizeof(fcs); i++) {
		p[0] = fcs[i];
		assert_int_equal(parse(p, 1, &t), MB_EX_ILLEGAL_FUNCTION);
		assert_int_equal(parse(p, sizeof(p), &t), MB_EX_ILLEGAL_FUNCTION);
	}
	/* A known function alone is too short, not unknown. */
	p[0] = 3;
	assert_int_equal(parse(p, 1, &t), MB_EX_ILLEGAL_VALUE);
}

/* ---- responses ---- */

/* Build t's response into a buffer pre-filled with 0xEE and check its bytes and
 * that nothing past them was written. */
static void check_response(const struct bus_txn *t, const uint8_t *want, size_t n)
{
	uint8_t out[MB_PDU_MAX + 16];

	memset(out, 0xEE, sizeof(out));
	assert_int_equal(mbpdu_response(t, out), n);
	assert_memory_equal(out, want, n);
	assert_int_equal(out[n], 0xEE);
}

#define CHECK_RESPONSE(t, ...) check_response(t, BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__))

static void test_response_bits(void **state)
{
	static const uint8_t coils[19] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1};
	struct bus_txn t;
	uint8_t want[2 + 250];

	(void)state;
	memset(&t, 0, sizeof(t));
	t.fc = 1;
	t.addr = 19;
	t.count = 19;
	memcpy(t.bits, coils, sizeof(coils));
	memset(t.bits + 19, 1, 30); /* past count: must not show */
	/* The spec's example: CD 6B 05. */
	CHECK_RESPONSE(&t, 0x01, 0x03, 0xCD, 0x6B, 0x05);

	t.fc = 2;
	t.count = 8;
	CHECK_RESPONSE(&t, 0x02, 0x01, 0xCD);
	t.count = 1;
	CHECK_RESPONSE(&t, 0x02, 0x01, 0x01);
	t.count = 9;
	CHECK_RESPONSE(&t, 0x02, 0x02, 0xCD, 0x01);

	/* 2000 inputs, every other one set. */
	for (size_t i = 0; i < BUS_BITS_MAX; i++)
		t.bits[i] = i % 2 == 0;
	t.count = BUS_BITS_MAX;
	want[0] = 0x02;
	want[1] = 250;
	memset(want + 2, 0x55, 250);
	check_response(&t, want, sizeof(want));
}

static void test_response_regs(void **state)
{
	struct bus_txn t;
	uint8_t want[2 + 250];

	(void)state;
	memset(&t, 0, sizeof(t));
	t.fc = 3;
	t.addr = 0x6B;
	t.count = 3;
	t.regs[0] = 0x022B;
	t.regs[1] = 0x0000;
	t.regs[2] = 0x0064;
	t.regs[3] = 0xDEAD; /* past count */
	CHECK_RESPONSE(&t, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64);
	t.fc = 4;
	t.count = 1;
	CHECK_RESPONSE(&t, 0x04, 0x02, 0x02, 0x2B);

	/* fc 23 answers the read half. */
	t.fc = 23;
	t.addr = 3;
	t.count = 6;
	t.waddr = 14;
	t.wcount = 3;
	t.regs[0] = 0x00FE;
	t.regs[1] = 0x0ACD;
	t.regs[2] = 0x0001;
	t.regs[3] = 0x0003;
	t.regs[4] = 0x000D;
	t.regs[5] = 0x00FF;
	CHECK_RESPONSE(&t, 0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D,
		       0x00, 0xFF);

	t.fc = 3;
	t.count = BUS_REGS_MAX;
	want[0] = 0x03;
	want[1] = 250;
	for (size_t i = 0; i < BUS_REGS_MAX; i++) {
		t.regs[i] = (uint16_t)(0xA000 + i * 3);
		want[2 + 2 * i] = (uint8_t)(t.regs[i] >> 8);
		want[3 + 2 * i] = (uint8_t)t.regs[i];
	}
	check_response(&t, want, sizeof(want));
}

static void test_response_writes(void **state)
{
	struct bus_txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.fc = 5;
	t.addr = 0x00AC;
	t.count = 1;
	t.val[0] = 1;
	CHECK_RESPONSE(&t, 0x05, 0x00, 0xAC, 0xFF, 0x00);
	t.val[0] = 0;
	CHECK_RESPONSE(&t, 0x05, 0x00, 0xAC, 0x00, 0x00);

	t.fc = 6;
	t.addr = 0xFFFF;
	t.val[0] = 0xABCD;
	CHECK_RESPONSE(&t, 0x06, 0xFF, 0xFF, 0xAB, 0xCD);

	t.fc = 15;
	t.addr = 0x0013;
	t.count = 10;
	CHECK_RESPONSE(&t, 0x0F, 0x00, 0x13, 0x00, 0x0A);

	t.fc = 16;
	t.addr = 0x0001;
	t.count = 123;
	CHECK_RESPONSE(&t, 0x10, 0x00, 0x01, 0x00, 0x7B);
}

/* Not reachable from a parsed request: a transaction that would make the
 * response read past t's arrays, or name no function, answers an exception. */
static void test_response_refused(void **state)
{
	struct bus_txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.fc = 3;
	t.count = 0;
	CHECK_RESPONSE(&t, 0x83, MB_EX_DEVICE_FAILURE);
	t.count = BUS_REGS_MAX + 1;
	CHECK_RESPONSE(&t, 0x83, MB_EX_DEVICE_FAILURE);
	t.fc = 23;
	CHECK_RESPONSE(&t, 0x97, MB_EX_DEVICE_FAILURE);
	t.fc = 1;
	t.count = BUS_BITS_MAX + 1;
	CHECK_RESPONSE(&t, 0x81, MB_EX_DEVICE_FAILURE);
	t.fc = 7;
	t.count = 1;
	CHECK_RESPONSE(&t, 0x87, MB_EX_ILLEGAL_FUNCTION);
}

static void test_exception(void **state)
{
	uint8_t out[4] = {0xEE, 0xEE, 0xEE, 0xEE};

	(void)state;
	assert_int_equal(mbpdu_exception(3, MB_EX_ILLEGAL_ADDRESS, out), 2);
	assert_memory_equal(out, BYTES(0x83, 0x02, 0xEE), 3);
	assert_int_equal(mbpdu_exception(23, MB_EX_GW_TARGET, out), 2);
	assert_memory_equal(out, BYTES(0x97, 0x0B), 2);
	assert_int_equal(mbpdu_exception(0x2B, MB_EX_ILLEGAL_FUNCTION, out), 2);
	assert_memory_equal(out, BYTES(0xAB, 0x01), 2);
}

static void test_err_code(void **state)
{
	(void)state;
	/* The device's own exception passes through. */
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 1)), 1);
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 2)), 2);
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 4)), 4);
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 11)), 11);
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 255)), 255);
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 256)), 255);
	assert_int_equal(mbpdu_err_code(-(BUS_EXCEPTION_BASE + 5000)), 255);
	assert_int_equal(mbpdu_err_code(INT_MIN), 255);

	assert_int_equal(mbpdu_err_code(-ETIMEDOUT), MB_EX_GW_TARGET);
	assert_int_equal(mbpdu_err_code(-EBADMSG), MB_EX_GW_TARGET);
	assert_int_equal(mbpdu_err_code(-EBUSY), MB_EX_BUSY);
	assert_int_equal(mbpdu_err_code(-ENODEV), MB_EX_GW_PATH);
	assert_int_equal(mbpdu_err_code(-ENOENT), MB_EX_GW_PATH);
	assert_int_equal(mbpdu_err_code(-ENXIO), MB_EX_GW_PATH);
	assert_int_equal(mbpdu_err_code(-EIO), MB_EX_GW_TARGET);
	assert_int_equal(mbpdu_err_code(-EPIPE), MB_EX_GW_TARGET);
	assert_int_equal(mbpdu_err_code(-ECANCELED), MB_EX_GW_TARGET);
	/* Exception code 0 does not exist: not a device's answer. */
	assert_int_equal(mbpdu_err_code(-BUS_EXCEPTION_BASE), MB_EX_GW_TARGET);
}

/* ---- round trips ---- */

/* Frame req as a TCP request, take it apart as a server would, let "the
 * device" answer through fill(), and compare the framed response. */
static void round_trip(const uint8_t *pdu, size_t len, void (*fill)(struct bus_txn *),
		       const uint8_t *want, size_t wantlen)
{
	uint8_t in[MB_ADU_TCP_MAX], out[MB_ADU_TCP_MAX + 1], rsp[MB_PDU_MAX + 1];
	struct bus_txn t;
	struct mbap h;
	size_t flen, rlen;
	int r;

	flen = mbap_build(0x0A0B, 0x21, pdu, len, in);
	assert_int_equal(flen, MBAP_HDR + len);
	r = mbap_parse(in, flen, &h);
	assert_int_equal(r, (int)flen);
	assert_int_equal(h.tid, 0x0A0B);
	assert_int_equal(h.unit, 0x21);
	assert_int_equal(parse(in + MBAP_HDR, h.len - 1u, &t), 0);
	t.unit = h.unit;
	t.err = 0;
	fill(&t);
	rlen = mbpdu_response(&t, rsp);
	memset(out, 0xEE, sizeof(out));
	flen = mbap_build(h.tid, h.unit, rsp, rlen, out);
	assert_int_equal(flen, wantlen);
	assert_memory_equal(out, want, wantlen);
	assert_int_equal(out[flen], 0xEE);
}

static void fill_regs(struct bus_txn *t)
{
	for (size_t i = 0; i < t->count; i++)
		t->regs[i] = (uint16_t)(0x1100 * (i + 1) + t->addr);
}

static void fill_bits(struct bus_txn *t)
{
	for (size_t i = 0; i < t->count; i++)
		t->bits[i] = (i == 0 || i == 4 || i == 9);
}

static void fill_nothing(struct bus_txn *t)
{
	(void)t;
}

static void test_round_trip(void **state)
{
	(void)state;
	/* Read 3 holding registers at 5. */
	round_trip(BYTES(0x03, 0x00, 0x05, 0x00, 0x03), 5, fill_regs,
		   BYTES(0x0A, 0x0B, 0x00, 0x00, 0x00, 0x09, 0x21, 0x03, 0x06, 0x11, 0x05, 0x22,
			 0x05, 0x33, 0x05),
		   15);
	/* Read 10 coils. */
	round_trip(BYTES(0x01, 0x00, 0x00, 0x00, 0x0A), 5, fill_bits,
		   BYTES(0x0A, 0x0B, 0x00, 0x00, 0x00, 0x05, 0x21, 0x01, 0x02, 0x11, 0x02), 11);
	/* Write coil off. */
	round_trip(BYTES(0x05, 0x12, 0x34, 0x00, 0x00), 5, fill_nothing,
		   BYTES(0x0A, 0x0B, 0x00, 0x00, 0x00, 0x06, 0x21, 0x05, 0x12, 0x34, 0x00, 0x00),
		   12);
	/* Write 10 coils: the answer echoes address and count. */
	round_trip(BYTES(0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01), 8, fill_nothing,
		   BYTES(0x0A, 0x0B, 0x00, 0x00, 0x00, 0x06, 0x21, 0x0F, 0x00, 0x13, 0x00, 0x0A),
		   12);
	/* Write 2 registers. */
	round_trip(
	    BYTES(0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02), 10, fill_nothing,
	    BYTES(0x0A, 0x0B, 0x00, 0x00, 0x00, 0x06, 0x21, 0x10, 0x00, 0x01, 0x00, 0x02), 12);
	/* Write 1 at 0x20, read 2 at 0x10. */
	round_trip(
	    BYTES(0x17, 0x00, 0x10, 0x00, 0x02, 0x00, 0x20, 0x00, 0x01, 0x02, 0x55, 0xAA), 12,
	    fill_regs,
	    BYTES(0x0A, 0x0B, 0x00, 0x00, 0x00, 0x07, 0x21, 0x17, 0x04, 0x11, 0x10, 0x22, 0x10),
	    13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mbap_parse_frame),  cmocka_unit_test(test_mbap_parse_bad_header),
	    cmocka_unit_test(test_mbap_parse_limits), cmocka_unit_test(test_mbap_back_to_back),
	    cmocka_unit_test(test_mbap_build),	      cmocka_unit_test(test_parse_reads),
	    cmocka_unit_test(test_parse_write_coil),  cmocka_unit_test(test_parse_write_register),
	    cmocka_unit_test(test_parse_write_coils), cmocka_unit_test(test_parse_write_registers),
	    cmocka_unit_test(test_parse_read_write),  cmocka_unit_test(test_parse_bad_function),
	    cmocka_unit_test(test_response_bits),     cmocka_unit_test(test_response_regs),
	    cmocka_unit_test(test_response_writes),   cmocka_unit_test(test_response_refused),
	    cmocka_unit_test(test_exception),	      cmocka_unit_test(test_err_code),
	    cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
