/* Modbus PDU handling of one simulated device: reads and writes against its
 * register image, with the exceptions a real Iskra device gives. */
#include "sim.h"

#include <string.h>

#define EXC_FUNCTION 1
#define EXC_ADDRESS 2
#define EXC_VALUE 3

#define READ_BITS_MAX 2000
#define READ_REGS_MAX 125
#define WRITE_BITS_MAX 1968
#define WRITE_REGS_MAX 123
#define RW_WRITE_MAX 121

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)(v & 0xFF);
}

static size_t exc(uint8_t fc, uint8_t code, uint8_t *resp)
{
	resp[0] = (uint8_t)(fc | 0x80);
	resp[1] = code;
	return 2;
}

/* A read is legal when it touches at least one register the device has;
 * the gaps read as zero, as on the real meters. */
static bool any_defined(const struct sim_dev *dv, enum desc_space sp, unsigned start, unsigned n)
{
	unsigned i;

	for (i = start; i < start + n; i++)
		if (sim_defined(dv, sp, i))
			return true;
	return false;
}

/* 0 when [start, start+n) is a legal read of at most max items, else the
 * exception code. */
static uint8_t read_check(const struct sim_dev *dv, enum desc_space sp, unsigned start, unsigned n,
			  unsigned max)
{
	if (n < 1 || n > max)
		return EXC_VALUE;
	if (start + n > SIM_NREGS || !any_defined(dv, sp, start, n))
		return EXC_ADDRESS;
	return 0;
}

static size_t read_bits(const struct sim_dev *dv, enum desc_space sp, const uint8_t *req,
			uint8_t *resp)
{
	unsigned start = get16(req + 1), n = get16(req + 3), i;
	uint8_t code = read_check(dv, sp, start, n, READ_BITS_MAX);

	if (code)
		return exc(req[0], code, resp);
	resp[0] = req[0];
	resp[1] = (uint8_t)((n + 7) / 8);
	memset(resp + 2, 0, resp[1]);
	for (i = 0; i < n; i++)
		if (dv->regs[sp][start + i] & 1)
			resp[2 + i / 8] |= (uint8_t)(1u << (i % 8));
	return 2 + resp[1];
}

static size_t put_regs(const struct sim_dev *dv, enum desc_space sp, unsigned start, unsigned n,
		       uint8_t fc, uint8_t *resp)
{
	unsigned i;

	resp[0] = fc;
	resp[1] = (uint8_t)(2 * n);
	for (i = 0; i < n; i++)
		put16(resp + 2 + 2 * i, dv->regs[sp][start + i]);
	return 2 + 2 * n;
}

static size_t read_regs(const struct sim_dev *dv, enum desc_space sp, const uint8_t *req,
			uint8_t *resp)
{
	unsigned start = get16(req + 1), n = get16(req + 3);
	uint8_t code = read_check(dv, sp, start, n, READ_REGS_MAX);

	if (code)
		return exc(req[0], code, resp);
	return put_regs(dv, sp, start, n, req[0], resp);
}

static bool field_is(const struct desc_field *f, enum desc_space sp, unsigned reg)
{
	return f->present && f->space == sp && f->reg == reg;
}

static bool addr_taken(const struct sim_bus *b, unsigned addr)
{
	unsigned i;

	for (i = 0; i < b->ndev; i++)
		if (b->dev[i].addr == addr || b->dev[i].pend_addr == (int)addr)
			return true;
	return false;
}

/* 0 when val may be written to holding/coil register reg, else the exception. */
static uint8_t write_check(const struct sim_bus *b, const struct sim_dev *dv, enum desc_space sp,
			   unsigned reg, uint16_t val)
{
	const struct desc *d = dv->d;

	if (!sim_defined(dv, sp, reg))
		return EXC_ADDRESS;
	if (field_is(&d->relay, sp, reg) && val != d->relay_on && val != d->relay_off)
		return EXC_VALUE;
	if (field_is(&d->comm_baud, sp, reg) && sim_baud_of_code(val) == 0)
		return EXC_VALUE;
	if (field_is(&d->comm_addr, sp, reg) && val != dv->addr &&
	    (val < 1 || val > 247 || addr_taken(b, val)))
		return EXC_VALUE;
	return 0;
}

/* Framing bits of a character from the device's comm registers. */
static int char_bits(const struct sim_dev *dv)
{
	const struct desc *d = dv->d;
	const uint16_t *h = dv->regs[SPACE_HOLDING];
	int bits = 1 + 8 + 1; /* start, data, stop */

	if (d->comm_data.present && h[d->comm_data.reg] == 7)
		bits--;
	if (d->comm_parity.present && h[d->comm_parity.reg] != 0)
		bits++;
	if (d->comm_stop.present && h[d->comm_stop.reg] == 2)
		bits++;
	return bits;
}

/* Store a checked write; comm changes only take effect after the reply. */
static void write_commit(struct sim_bus *b, struct sim_dev *dv, enum desc_space sp, unsigned reg,
			 uint16_t val)
{
	const struct desc *d = dv->d;

	dv->regs[sp][reg] = val;
	if (field_is(&d->comm_addr, sp, reg))
		dv->pend_addr = val;
	if (field_is(&d->comm_baud, sp, reg))
		b->pend_baud = (int)sim_baud_of_code(val);
	if (field_is(&d->comm_stop, sp, reg) || field_is(&d->comm_parity, sp, reg) ||
	    field_is(&d->comm_data, sp, reg))
		b->pend_bits = char_bits(dv);
}

static size_t write_coil(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, uint8_t *resp)
{
	unsigned reg = get16(req + 1), v = get16(req + 3);
	uint8_t code;

	if (v != 0xFF00 && v != 0)
		return exc(req[0], EXC_VALUE, resp);
	code = write_check(b, dv, SPACE_COIL, reg, v ? 1 : 0);
	if (code)
		return exc(req[0], code, resp);
	write_commit(b, dv, SPACE_COIL, reg, v ? 1 : 0);
	memcpy(resp, req, 5);
	return 5;
}

static size_t write_reg(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, uint8_t *resp)
{
	unsigned reg = get16(req + 1);
	uint16_t v = get16(req + 3);
	uint8_t code = write_check(b, dv, SPACE_HOLDING, reg, v);

	if (code)
		return exc(req[0], code, resp);
	write_commit(b, dv, SPACE_HOLDING, reg, v);
	memcpy(resp, req, 5);
	return 5;
}

static uint8_t coil_bit(const uint8_t *data, unsigned i)
{
	return (data[i / 8] >> (i % 8)) & 1;
}

static size_t write_coils(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, uint8_t *resp)
{
	unsigned start = get16(req + 1), n = get16(req + 3), i;
	uint8_t code = 0;

	if (n < 1 || n > WRITE_BITS_MAX || req[5] != (n + 7) / 8)
		return exc(req[0], EXC_VALUE, resp);
	if (start + n > SIM_NREGS)
		return exc(req[0], EXC_ADDRESS, resp);
	for (i = 0; i < n && !code; i++)
		code = write_check(b, dv, SPACE_COIL, start + i, coil_bit(req + 6, i));
	if (code)
		return exc(req[0], code, resp);
	for (i = 0; i < n; i++)
		write_commit(b, dv, SPACE_COIL, start + i, coil_bit(req + 6, i));
	memcpy(resp, req, 5);
	return 5;
}

/* Check then commit n registers from data: a multi-write is all or nothing. */
static uint8_t write_block(struct sim_bus *b, struct sim_dev *dv, unsigned start, unsigned n,
			   const uint8_t *data)
{
	unsigned i;
	uint8_t code;

	if (start + n > SIM_NREGS)
		return EXC_ADDRESS;
	for (i = 0; i < n; i++) {
		code = write_check(b, dv, SPACE_HOLDING, start + i, get16(data + 2 * i));
		if (code)
			return code;
	}
	for (i = 0; i < n; i++)
		write_commit(b, dv, SPACE_HOLDING, start + i, get16(data + 2 * i));
	return 0;
}

static size_t write_regs(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, uint8_t *resp)
{
	unsigned start = get16(req + 1), n = get16(req + 3);
	uint8_t code;

	if (n < 1 || n > WRITE_REGS_MAX || req[5] != 2 * n)
		return exc(req[0], EXC_VALUE, resp);
	code = write_block(b, dv, start, n, req + 6);
	if (code)
		return exc(req[0], code, resp);
	memcpy(resp, req, 5);
	return 5;
}

/* fc 23: the write happens before the read, per the specification. */
static size_t read_write(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, uint8_t *resp)
{
	unsigned rstart = get16(req + 1), rn = get16(req + 3);
	unsigned wstart = get16(req + 5), wn = get16(req + 7);
	uint8_t code;

	if (wn < 1 || wn > RW_WRITE_MAX || req[9] != 2 * wn)
		return exc(req[0], EXC_VALUE, resp);
	code = read_check(dv, SPACE_HOLDING, rstart, rn, READ_REGS_MAX);
	if (!code)
		code = write_block(b, dv, wstart, wn, req + 10);
	if (code)
		return exc(req[0], code, resp);
	return put_regs(dv, SPACE_HOLDING, rstart, rn, req[0], resp);
}

/* The PDU length a function code needs before its handler may index it. */
static size_t pdu_min(uint8_t fc, const uint8_t *req, size_t len)
{
	switch (fc) {
	case 15:
	case 16:
		return len >= 6 ? 6 + (size_t)req[5] : 6;
	case 23:
		return len >= 10 ? 10 + (size_t)req[9] : 10;
	default:
		return 5;
	}
}

size_t pdu_handle(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, size_t len,
		  uint8_t *resp)
{
	uint8_t fc = req[0];

	if (len < pdu_min(fc, req, len))
		return exc(fc, EXC_VALUE, resp);
	switch (fc) {
	case 1:
		return read_bits(dv, SPACE_COIL, req, resp);
	case 2:
		return read_bits(dv, SPACE_DISCRETE, req, resp);
	case 3:
		return read_regs(dv, SPACE_HOLDING, req, resp);
	case 4:
		return read_regs(dv, SPACE_INPUT, req, resp);
	case 5:
		return write_coil(b, dv, req, resp);
	case 6:
		return write_reg(b, dv, req, resp);
	case 15:
		return write_coils(b, dv, req, resp);
	case 16:
		return write_regs(b, dv, req, resp);
	case 23:
		return read_write(b, dv, req, resp);
	default:
		return exc(fc, EXC_FUNCTION, resp);
	}
}
