/* Modbus application protocol: MBAP framing, request PDUs into bus
 * transactions, response and exception PDUs. Every length comes from the
 * network, so each is checked before the bytes it covers are read. */
#include "sg/mbproto.h"

#include <errno.h>
#include <string.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int mbap_parse(const uint8_t *buf, size_t n, struct mbap *h)
{
	uint16_t len;

	/* Judge the header before the body arrives: a peer that sent a bad
	 * length may never send enough bytes to complete the frame. */
	if (n < 6)
		return 0;
	len = get16(buf + 4);
	if (get16(buf + 2) != 0 || len < 2 || len > MBAP_LEN_MAX)
		return -1;
	if (n < 6 + (size_t)len)
		return 0;
	h->tid = get16(buf);
	h->pid = 0;
	h->len = len;
	h->unit = buf[6];
	return 6 + len;
}

size_t mbap_build(uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t pdulen, uint8_t *out)
{
	put16(out, tid);
	put16(out + 2, 0);
	put16(out + 4, (uint16_t)(pdulen + 1));
	out[6] = unit;
	memcpy(out + MBAP_HDR, pdu, pdulen);
	return MBAP_HDR + pdulen;
}

static int bad_count(uint16_t count, uint16_t max)
{
	return count < 1 || count > max;
}

static int past_end(uint16_t addr, uint16_t count)
{
	return (uint32_t)addr + count > 65536;
}

int mbpdu_to_txn(const uint8_t *pdu, size_t len, struct bus_txn *t)
{
	uint16_t addr, count, value, waddr = 0, wcount = 0;

	if (len == 0)
		return MB_EX_ILLEGAL_FUNCTION;
	switch (pdu[0]) {
	case 1:
	case 2:
	case 3:
	case 4:
	case 5:
	case 6:
	case 15:
	case 16:
	case 23:
		break;
	default:
		return MB_EX_ILLEGAL_FUNCTION;
	}
	/* Every function starts with fc, address and a 16-bit quantity/value. */
	if (len < 5)
		return MB_EX_ILLEGAL_VALUE;
	addr = get16(pdu + 1);
	count = get16(pdu + 3);

	/* The spec's order: quantity and byte count before address, so a bad
	 * count is a value error even when it would also run past 65535. */
	switch (pdu[0]) {
	case 1:
	case 2:
		if (len != 5 || bad_count(count, BUS_BITS_MAX))
			return MB_EX_ILLEGAL_VALUE;
		break;
	case 3:
	case 4:
		if (len != 5 || bad_count(count, BUS_REGS_MAX))
			return MB_EX_ILLEGAL_VALUE;
		break;
	case 5:
		if (len != 5 || (count != 0x0000 && count != 0xFF00))
			return MB_EX_ILLEGAL_VALUE;
		break;
	case 6:
		if (len != 5)
			return MB_EX_ILLEGAL_VALUE;
		break;
	case 15:
		if (len < 6 || bad_count(count, 1968) || pdu[5] != (count + 7) / 8 ||
		    len != 6u + pdu[5])
			return MB_EX_ILLEGAL_VALUE;
		break;
	case 16:
		if (len < 6 || bad_count(count, 123) || pdu[5] != 2 * count || len != 6u + pdu[5])
			return MB_EX_ILLEGAL_VALUE;
		break;
	case 23:
		if (len < 10)
			return MB_EX_ILLEGAL_VALUE;
		waddr = get16(pdu + 5);
		wcount = get16(pdu + 7);
		if (bad_count(count, BUS_REGS_MAX) || bad_count(wcount, 121) ||
		    pdu[9] != 2 * wcount || len != 10u + pdu[9])
			return MB_EX_ILLEGAL_VALUE;
		if (past_end(waddr, wcount))
			return MB_EX_ILLEGAL_ADDRESS;
		break;
	}
	/* fc 5 and 6 carry a value where the others carry a count. */
	value = count;
	if (pdu[0] == 5 || pdu[0] == 6)
		count = 1;
	if (past_end(addr, count))
		return MB_EX_ILLEGAL_ADDRESS;

	/* Valid: only now touch t, so a refused request leaves it as it was. */
	if (pdu[0] == 5)
		t->val[0] = value != 0;
	else if (pdu[0] == 6)
		t->val[0] = value;
	else if (pdu[0] == 15)
		for (size_t i = 0; i < count; i++)
			t->bits[i] = (pdu[6 + i / 8] >> (i % 8)) & 1;
	else if (pdu[0] == 16)
		for (size_t i = 0; i < count; i++)
			t->val[i] = get16(pdu + 6 + 2 * i);
	else if (pdu[0] == 23)
		for (size_t i = 0; i < wcount; i++)
			t->val[i] = get16(pdu + 10 + 2 * i);
	t->fc = pdu[0];
	t->addr = addr;
	t->count = count;
	t->waddr = waddr;
	t->wcount = wcount;
	return 0;
}

size_t mbpdu_response(const struct bus_txn *t, uint8_t *out)
{
	size_t n;

	out[0] = t->fc;
	switch (t->fc) {
	case 1:
	case 2:
		/* t is trusted only as far as the arrays it indexes reach. */
		if (t->count < 1 || t->count > BUS_BITS_MAX)
			break;
		n = (t->count + 7u) / 8;
		out[1] = (uint8_t)n;
		memset(out + 2, 0, n);
		for (size_t i = 0; i < t->count; i++)
			if (t->bits[i])
				out[2 + i / 8] |= (uint8_t)(1u << (i % 8));
		return 2 + n;
	case 3:
	case 4:
	case 23:
		if (t->count < 1 || t->count > BUS_REGS_MAX)
			break;
		out[1] = (uint8_t)(2 * t->count);
		for (size_t i = 0; i < t->count; i++)
			put16(out + 2 + 2 * i, t->regs[i]);
		return 2 + 2 * (size_t)t->count;
	case 5:
		put16(out + 1, t->addr);
		put16(out + 3, t->val[0] ? 0xFF00 : 0x0000);
		return 5;
	case 6:
		put16(out + 1, t->addr);
		put16(out + 3, t->val[0]);
		return 5;
	case 15:
	case 16:
		put16(out + 1, t->addr);
		put16(out + 3, t->count);
		return 5;
	default:
		return mbpdu_exception(t->fc, MB_EX_ILLEGAL_FUNCTION, out);
	}
	return mbpdu_exception(t->fc, MB_EX_DEVICE_FAILURE, out);
}

size_t mbpdu_exception(uint8_t fc, uint8_t code, uint8_t *out)
{
	out[0] = fc | 0x80;
	out[1] = code;
	return 2;
}

uint8_t mbpdu_err_code(int err)
{
	if (err <= -(BUS_EXCEPTION_BASE + 1)) {
		/* Negate after adding the base so INT_MIN cannot overflow. */
		int code = -(err + BUS_EXCEPTION_BASE);

		return code > 255 ? 255 : (uint8_t)code;
	}
	switch (err) {
	case -EBUSY:
		return MB_EX_BUSY;
	case -ENODEV:
	case -ENOENT:
	case -ENXIO:
		return MB_EX_GW_PATH;
	default:
		/* -ETIMEDOUT, -EBADMSG, -EIO …: the device did not answer usefully. */
		return MB_EX_GW_TARGET;
	}
}
