/* Modbus application protocol pieces shared by the TCP server, the gateway,
 * the gateway's own unit and the RS485 slave role: MBAP framing, request PDU
 * parsing into a bus transaction, response and exception PDUs. Pure functions
 * over byte buffers; nothing here trusts a length it was sent. */
#ifndef SG_MBPROTO_H
#define SG_MBPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "sg/bus.h"

#define MB_PDU_MAX 253		      /* function code + data */
#define MB_ADU_TCP_MAX 260	      /* 7-byte MBAP header + PDU */
#define MBAP_HDR 7		      /* tid(2) pid(2) len(2) unit(1) */
#define MBAP_LEN_MAX (1 + MB_PDU_MAX) /* the length field counts unit + PDU */

/* Exception codes. */
enum mb_exc {
	MB_EX_ILLEGAL_FUNCTION = 0x01,
	MB_EX_ILLEGAL_ADDRESS = 0x02,
	MB_EX_ILLEGAL_VALUE = 0x03,
	MB_EX_DEVICE_FAILURE = 0x04,
	MB_EX_BUSY = 0x06,
	MB_EX_GW_PATH = 0x0A,	/* gateway path unavailable: no such device */
	MB_EX_GW_TARGET = 0x0B, /* gateway target device failed to respond */
};

struct mbap {
	uint16_t tid; /* transaction id, echoed in the answer */
	uint16_t pid; /* protocol id, 0 for Modbus */
	uint16_t len; /* unit + PDU bytes */
	uint8_t unit;
};

/* Look at the start of a TCP stream buffer. Returns the length of the whole
 * frame (MBAP + PDU) when buf holds one, 0 when more bytes are needed, -1 when
 * the header is malformed (protocol id != 0, length < 2 or > MBAP_LEN_MAX):
 * the stream cannot be resynchronised and the connection must be dropped. */
int mbap_parse(const uint8_t *buf, size_t n, struct mbap *h);
/* Write MBAP header + pdu into out (>= MBAP_HDR + pdulen bytes); returns the
 * frame length. */
size_t mbap_build(uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t pdulen, uint8_t *out);

/* Parse a request PDU (function code first) into t's request fields (fc,
 * addr, count, waddr, wcount, val, bits); results and callbacks untouched.
 * 0, or an exception code: MB_EX_ILLEGAL_FUNCTION for a function other than
 * 1–6, 15, 16, 23, MB_EX_ILLEGAL_VALUE for a bad length, count or byte count. */
int mbpdu_to_txn(const uint8_t *pdu, size_t len, struct bus_txn *t);
/* The normal response PDU for t completed with t->err == 0 (reads return
 * t->regs / t->bits; writes echo address and count/value); returns its length. */
size_t mbpdu_response(const struct bus_txn *t, uint8_t *out);
/* An exception response PDU (fc | 0x80, code); returns 2. */
size_t mbpdu_exception(uint8_t fc, uint8_t code, uint8_t *out);
/* The exception code a gateway answers for a failed transaction: the device's
 * own exception code, MB_EX_GW_TARGET for a timeout or bad frame,
 * MB_EX_BUSY when the queue is full or the line is busy (scan), MB_EX_GW_PATH
 * when the line is not there. */
uint8_t mbpdu_err_code(int err);

#endif
