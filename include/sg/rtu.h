/* Modbus RTU framing for the RS485 slave role: CRC and the length of a
 * request frame from its first bytes. */
#ifndef SG_RTU_H
#define SG_RTU_H

#include <stddef.h>
#include <stdint.h>

#define RTU_FRAME_MAX 256

/* Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF); on the wire low byte first. */
uint16_t rtu_crc16(const uint8_t *p, size_t n);
/* Length of the request frame (address … CRC) that buf starts with: > 0 when
 * known (it may exceed n: wait for more), 0 when more bytes are needed to
 * tell, -1 for a function code whose length cannot be known (the frame ends
 * at the next t3.5 gap). */
int rtu_request_len(const uint8_t *buf, size_t n);
/* Append the CRC to frame[0..n) and return n + 2. */
size_t rtu_seal(uint8_t *frame, size_t n);
/* True when frame[0..n) ends with its correct CRC (n >= 4). */
int rtu_crc_ok(const uint8_t *frame, size_t n);

#endif
