/* RTU framing on the slave side. A pty delivers bytes without inter-character
 * timing, so frames are found by the length their function code implies and
 * confirmed by the CRC; anything else is dropped byte by byte until the
 * stream lines up again. Replies go out at once or, when pacing or a slow
 * fault asks for it, at a deadline the main loop waits for. */
#include "sim.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define SILENCE_US 50000 /* a partial frame older than this is never completed */
#define ADDR_MAX 247

uint16_t sim_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xFFFF;
	size_t i;
	int b;

	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (b = 0; b < 8; b++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

static bool crc_ok(const uint8_t *f, size_t len)
{
	uint16_t crc = sim_crc16(f, len - 2);

	return f[len - 2] == (crc & 0xFF) && f[len - 1] == (crc >> 8);
}

static double wire_us(const struct sim_bus *b, double nchars)
{
	return nchars * b->bits_per_char * 1e6 / b->baud;
}

/* A slave sees the end of a request only after t3.5 of silence, which the
 * Modbus RTU spec fixes at 1750 us above 19200 baud. */
static double t35_us(const struct sim_bus *b)
{
	return b->baud > 19200 ? 1750.0 : wire_us(b, 3.5);
}

void sim_bus_set_baud(struct sim_bus *b, unsigned baud)
{
	if (baud > 0)
		b->baud = baud;
}

struct sim_dev *sim_bus_dev(struct sim_bus *b, unsigned addr)
{
	unsigned i;

	for (i = 0; i < b->ndev; i++)
		if (b->dev[i].present && b->dev[i].addr == addr)
			return &b->dev[i];
	return NULL;
}

/* Frame length implied by the head of the buffer: 0 with *need set, -EAGAIN
 * when more bytes are needed to tell, -EBADMSG when impossible (drop a byte),
 * -ENOTSUP for a function we cannot frame (drop everything). */
static int frame_need(const uint8_t *p, size_t len, size_t *need)
{
	if (p[0] > ADDR_MAX)
		return -EBADMSG;
	switch (p[1]) {
	case 1 ... 6:
		*need = 8;
		return 0;
	case 15:
	case 16:
		if (len < 7)
			return -EAGAIN;
		*need = 9 + (size_t)p[6];
		return p[6] == 0 || *need > SIM_ADU_MAX ? -EBADMSG : 0;
	case 23:
		if (len < 11)
			return -EAGAIN;
		*need = 13 + (size_t)p[10];
		return p[10] == 0 || *need > SIM_ADU_MAX ? -EBADMSG : 0;
	default:
		return -ENOTSUP;
	}
}

static void drop(struct sim_bus *b, size_t n)
{
	if (n > b->rxlen)
		n = b->rxlen;
	memmove(b->rx, b->rx + n, b->rxlen - n);
	b->rxlen -= n;
	b->dropped += n;
}

static void consume(struct sim_bus *b, size_t n)
{
	memmove(b->rx, b->rx + n, b->rxlen - n);
	b->rxlen -= n;
}

/* Address, baud and framing written over Modbus switch after the reply, as on
 * the real devices (the reply still goes out the old way). */
static void apply_pending(struct sim_bus *b)
{
	unsigned i;

	for (i = 0; i < b->ndev; i++) {
		if (b->dev[i].pend_addr >= 0)
			b->dev[i].addr = (uint8_t)b->dev[i].pend_addr;
		b->dev[i].pend_addr = -1;
	}
	if (b->pend_baud > 0)
		b->baud = (unsigned)b->pend_baud;
	if (b->pend_bits > 0)
		b->bits_per_char = (unsigned)b->pend_bits;
	b->pend_baud = -1;
	b->pend_bits = -1;
}

static void write_all(struct sim_bus *b, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(b->master, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/* nobody drains the line: the bytes are lost, as on a wire */
			b->dropped += n;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void send_tx(struct sim_bus *b)
{
	write_all(b, b->tx, b->txlen);
	b->replies++;
	b->txlen = 0;
	b->tx_pending = false;
	apply_pending(b);
}

static void fill_random(struct sim_bus *b, uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(sim_rand(&b->rng) >> 56);
}

/* Whether registers first…first+count-1 of space meet the device's fault range. */
static bool range_hit(const struct sim_dev *dv, enum desc_space space, unsigned first,
		      unsigned count)
{
	return count > 0 && space == dv->fault_space && first <= dv->fault_last &&
	       first + count - 1 >= dv->fault_first;
}

/* The fault that applies to request pdu (n bytes): the device's, unless it is
 * limited to a register range the request does not touch. */
static enum sim_fault fault_for(const struct sim_dev *dv, const uint8_t *pdu, size_t n)
{
	unsigned a, c;

	if (!dv->fault_ranged || dv->fault == FAULT_NONE)
		return dv->fault;
	if (n < 5)
		return FAULT_NONE;
	a = (unsigned)pdu[1] << 8 | pdu[2];
	c = (unsigned)pdu[3] << 8 | pdu[4];
	switch (pdu[0]) {
	case 1:
	case 15:
		return range_hit(dv, SPACE_COIL, a, c) ? dv->fault : FAULT_NONE;
	case 2:
		return range_hit(dv, SPACE_DISCRETE, a, c) ? dv->fault : FAULT_NONE;
	case 4:
		return range_hit(dv, SPACE_INPUT, a, c) ? dv->fault : FAULT_NONE;
	case 3:
	case 16:
		return range_hit(dv, SPACE_HOLDING, a, c) ? dv->fault : FAULT_NONE;
	case 5:
		return range_hit(dv, SPACE_COIL, a, 1) ? dv->fault : FAULT_NONE;
	case 6:
		return range_hit(dv, SPACE_HOLDING, a, 1) ? dv->fault : FAULT_NONE;
	case 23: /* read part, then write part */
		if (n >= 9 && range_hit(dv, SPACE_HOLDING, (unsigned)pdu[5] << 8 | pdu[6],
					(unsigned)pdu[7] << 8 | pdu[8]))
			return dv->fault;
		return range_hit(dv, SPACE_HOLDING, a, c) ? dv->fault : FAULT_NONE;
	default:
		return FAULT_NONE;
	}
}

/* Wrap a reply PDU into the ADU in b->tx, damaged as fault says. */
static void build_tx(struct sim_bus *b, const struct sim_dev *dv, enum sim_fault fault,
		     const uint8_t *pdu, size_t n)
{
	uint16_t crc;

	b->tx[0] = dv->addr;
	memcpy(b->tx + 1, pdu, n);
	crc = sim_crc16(b->tx, n + 1);
	b->tx[n + 1] = (uint8_t)(crc & 0xFF);
	b->tx[n + 2] = (uint8_t)(crc >> 8);
	b->txlen = n + 3;
	if (fault == FAULT_CRC)
		b->tx[n + 2] ^= 0x5A;
	if (fault == FAULT_GARBAGE)
		fill_random(b, b->tx, b->txlen);
}

static void broadcast(struct sim_bus *b, const uint8_t *pdu, size_t n)
{
	uint8_t resp[SIM_ADU_MAX];
	unsigned i;

	/* only writes make sense without a reply */
	if (pdu[0] != 5 && pdu[0] != 6 && pdu[0] != 15 && pdu[0] != 16)
		return;
	for (i = 0; i < b->ndev; i++)
		if (b->dev[i].present && fault_for(&b->dev[i], pdu, n) != FAULT_NOANSWER)
			pdu_handle(b, &b->dev[i], pdu, n, resp);
	apply_pending(b);
}

static void answer(struct sim_bus *b, struct sim_dev *dv, const uint8_t *f, size_t len, int64_t now)
{
	uint8_t resp[SIM_ADU_MAX];
	size_t n;
	double delay = 0;
	enum sim_fault fault = fault_for(dv, f + 1, len - 3);

	dv->requests++;
	if (fault == FAULT_NOANSWER) {
		if (dv->fault_arg > 0 && --dv->fault_arg == 0)
			dv->fault = FAULT_NONE; /* noanswer N: that many ignored */
		return;
	}
	if (fault == FAULT_EXCEPTION) {
		resp[0] = (uint8_t)(f[1] | 0x80);
		resp[1] = (uint8_t)dv->fault_arg;
		n = 2;
	} else {
		n = pdu_handle(b, dv, f + 1, len - 3, resp);
	}
	if (resp[0] & 0x80)
		dv->exceptions++;
	dv->replies++;
	build_tx(b, dv, fault, resp, n);
	b->wire_us += wire_us(b, (double)b->txlen);
	if (b->pace)
		delay = wire_us(b, (double)len) + t35_us(b) + wire_us(b, (double)b->txlen);
	if (fault == FAULT_SLOW)
		delay += dv->fault_arg * 1000.0;
	b->tx_pending = true;
	b->tx_due_us = now + (int64_t)delay;
	if (delay <= 0)
		send_tx(b);
}

static void handle_frame(struct sim_bus *b, const uint8_t *f, size_t len, int64_t now)
{
	struct sim_dev *dv;

	/* the daemon may have moved its clock since the last tick: serve what
	 * the meter shows at the daemon's time */
	sim_clock_sync(b);
	b->frames++;
	b->wire_us += wire_us(b, (double)len);
	if (f[0] == 0) {
		broadcast(b, f + 1, len - 3);
		return;
	}
	dv = sim_bus_dev(b, f[0]);
	if (dv)
		answer(b, dv, f, len, now);
}

/* One step of the framer: true when it made progress and may be called again. */
static bool parse_one(struct sim_bus *b, int64_t now)
{
	uint8_t f[SIM_ADU_MAX];
	size_t need = 0;
	int rc = frame_need(b->rx, b->rxlen, &need);

	if (rc == -EAGAIN || (rc == 0 && b->rxlen < need))
		return false;
	/* an unknown function at a clean start means the request is one we cannot
	 * frame (0x2B …): drop it all; while resyncing it is just a wrong offset */
	if (rc == -ENOTSUP && !b->resyncing) {
		drop(b, b->rxlen);
		return false;
	}
	if (rc < 0 || !crc_ok(b->rx, need)) {
		if (rc == 0 && !b->resyncing)
			b->bad_crc++;
		b->resyncing = true;
		drop(b, 1);
		return true;
	}
	b->resyncing = false;
	memcpy(f, b->rx, need);
	consume(b, need);
	handle_frame(b, f, need, now);
	return true;
}

static void parse(struct sim_bus *b, int64_t now)
{
	/* half duplex: the next request waits until our reply is on the wire */
	while (!b->tx_pending && b->rxlen >= 2 && parse_one(b, now))
		;
}

void rtu_input(struct sim_bus *b, const uint8_t *p, size_t n, int64_t now)
{
	size_t room;

	if (n > SIM_RX_MAX) {
		b->dropped += n - SIM_RX_MAX;
		p += n - SIM_RX_MAX;
		n = SIM_RX_MAX;
	}
	room = SIM_RX_MAX - b->rxlen;
	if (n > room)
		drop(b, n - room);
	memcpy(b->rx + b->rxlen, p, n);
	b->rxlen += n;
	b->last_rx_us = now;
	parse(b, now);
}

void rtu_poll(struct sim_bus *b, int64_t now)
{
	if (b->tx_pending && now >= b->tx_due_us)
		send_tx(b);
	parse(b, now);
	if (!b->tx_pending && b->rxlen > 0 && now - b->last_rx_us >= SILENCE_US) {
		drop(b, b->rxlen);
		b->resyncing = false;
	}
}

int64_t rtu_next_us(const struct sim_bus *b, int64_t now)
{
	int64_t due;

	if (b->tx_pending)
		due = b->tx_due_us;
	else if (b->rxlen > 0)
		due = b->last_rx_us + SILENCE_US;
	else
		return -1;
	return due > now ? due - now : 0;
}

void rtu_noise(struct sim_bus *b, size_t n)
{
	uint8_t buf[256];
	size_t k;

	while (n > 0) {
		k = n < sizeof(buf) ? n : sizeof(buf);
		fill_random(b, buf, k);
		write_all(b, buf, k);
		n -= k;
	}
}
