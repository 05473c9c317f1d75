/* RTU framing helpers for the slave role. */
#include "sg/rtu.h"

uint16_t rtu_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xFFFF;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

int rtu_request_len(const uint8_t *buf, size_t n)
{
	if (n < 2)
		return 0;
	switch (buf[1]) {
	case 1:
	case 2:
	case 3:
	case 4:
	case 5:
	case 6:
		return 8; /* addr fc a(2) b(2) crc(2) */
	case 7:
	case 11:
	case 12:
	case 17:
		return 4; /* addr fc crc(2) */
	case 15:
	case 16:
		/* addr fc start(2) count(2) bytecount data crc(2) */
		return n < 7 ? 0 : 9 + buf[6];
	case 23:
		/* addr fc raddr(2) rcount(2) waddr(2) wcount(2) bytecount data crc(2) */
		return n < 11 ? 0 : 13 + buf[10];
	default:
		return -1;
	}
}

size_t rtu_seal(uint8_t *frame, size_t n)
{
	uint16_t crc = rtu_crc16(frame, n);

	frame[n] = (uint8_t)(crc & 0xFF);
	frame[n + 1] = (uint8_t)(crc >> 8);
	return n + 2;
}

int rtu_crc_ok(const uint8_t *frame, size_t n)
{
	uint16_t crc;

	if (n < 4)
		return 0;
	crc = rtu_crc16(frame, n - 2);
	return frame[n - 2] == (crc & 0xFF) && frame[n - 1] == (crc >> 8);
}
