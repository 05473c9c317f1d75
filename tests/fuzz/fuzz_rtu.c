/* Modbus RTU framing of the RS485 slave role (src/bus/rtu.c): the input is
 * the bytes arriving on the line; its first byte says where the t3.5 gaps
 * fall (every 8 bytes of the rest when bit 0 is set) and whether each
 * frame's CRC is corrected first (bit 1), so the fuzzer reaches the request
 * handling too. Frames are assembled as src/bus/bus.c worker_rx_frames does;
 * a frame with a good CRC goes to the own unit. */
#include "fuzz.h"
#include "sg/conf.h"
#include "sg/mbproto.h"
#include "sg/ownunit.h"
#include "sg/rtu.h"
#include "sg/settings.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct rx {
	uint8_t buf[RTU_FRAME_MAX];
	size_t n;
	bool skip;
};

static void handle(const struct ownunit_env *env, const uint8_t *frame, size_t len)
{
	uint8_t rsp[RTU_FRAME_MAX + 64];
	size_t rlen = ownunit_handle(env, frame + 1, len - 3, rsp + 1);

	/* The answer: address, PDU, CRC: it must fit the RTU frame. */
	if (rlen < 2 || rlen + 3 > RTU_FRAME_MAX)
		abort();
	rsp[0] = frame[0];
	if (!rtu_crc_ok(rsp, rtu_seal(rsp, rlen + 1)))
		abort();
}

static void frames(const struct ownunit_env *env, struct rx *rx, bool fix_crc)
{
	while (rx->n && !rx->skip) {
		int len = rtu_request_len(rx->buf, rx->n);

		if (len == 0 || len < 0 || (len <= RTU_FRAME_MAX && (size_t)len > rx->n))
			return;
		if (len > RTU_FRAME_MAX || len < 4) {
			rx->skip = true;
			rx->n = 0;
			return;
		}
		if (fix_crc)
			rtu_seal(rx->buf, (size_t)len - 2);
		if (!rtu_crc_ok(rx->buf, (size_t)len)) {
			rx->skip = true;
			rx->n = 0;
			return;
		}
		handle(env, rx->buf, (size_t)len);
		rx->n -= (size_t)len;
		memmove(rx->buf, rx->buf + len, rx->n);
	}
}

static void gap(const struct ownunit_env *env, struct rx *rx, bool fix_crc)
{
	if (!rx->skip && rx->n >= 4 && rtu_request_len(rx->buf, rx->n) < 0) {
		if (fix_crc)
			rtu_seal(rx->buf, rx->n - 2);
		if (rtu_crc_ok(rx->buf, rx->n))
			handle(env, rx->buf, rx->n);
	}
	rx->n = 0;
	rx->skip = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings *s;
	struct conf conf;
	struct ownunit_env env;
	struct rx rx = {.n = 0};
	bool gaps, fix_crc;

	if (size < 1 || settings_init(&s, NULL, "SG000001", "SG-E1") < 0)
		return 0;
	gaps = data[0] & 1;
	fix_crc = data[0] & 2;
	conf_defaults(&conf);
	env = (struct ownunit_env){.settings = s, .conf = &conf};
	for (size_t i = 1; i < size; i++) {
		if (rx.n < sizeof(rx.buf))
			rx.buf[rx.n++] = data[i];
		else
			rx.skip = true; /* longer than any frame: ends at the gap */
		frames(&env, &rx, fix_crc);
		if (gaps && i % 8 == 0)
			gap(&env, &rx, fix_crc);
	}
	gap(&env, &rx, fix_crc);
	settings_fini(s);
	return 0;
}
