/* Modbus TCP requests (src/modbus/proto.c, src/modbus/ownunit.c): the input
 * is what a client sends on a connection. It is cut into frames as
 * src/modbus/server.c does; each request PDU goes to the own unit (answered
 * from real settings) and to the gateway's parser (answered as if the bus
 * returned a pattern), and every answer must fit a PDU. */
#include "fuzz.h"
#include "sg/clock.h"
#include "sg/conf.h"
#include "sg/mbproto.h"
#include "sg/ownunit.h"
#include "sg/settings.h"

#include <stdlib.h>
#include <string.h>

static void on_changed(void *arg)
{
	(void)arg;
}

static void gateway(const uint8_t *pdu, size_t len)
{
	struct bus_txn *t = calloc(1, sizeof(*t));
	uint8_t rsp[MB_PDU_MAX + 64];
	size_t n;

	if (!t)
		abort();
	if (mbpdu_to_txn(pdu, len, t) == 0) {
		for (size_t i = 0; i < BUS_REGS_MAX; i++)
			t->regs[i] = (uint16_t)(i * 257);
		for (size_t i = 0; i < BUS_BITS_MAX; i++)
			t->bits[i] = i & 1;
		n = mbpdu_response(t, rsp);
		if (n > MB_PDU_MAX)
			abort(); /* an answer longer than Modbus allows */
	}
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings *s;
	struct conf conf;
	struct ownunit_env env;
	size_t off = 0;

	if (settings_init(&s, NULL, "SG000001", "SG-E1") < 0)
		return 0;
	conf_defaults(&conf);
	env = (struct ownunit_env){
	    .settings = s, .conf = &conf, .start_mono_ms = clock_mono_ms(), .changed = on_changed};
	for (;;) {
		struct mbap h;
		int n = mbap_parse(data + off, size - off, &h);
		uint8_t rsp[MB_PDU_MAX + 64], frame[MB_ADU_TCP_MAX];
		size_t rlen;

		if (n <= 0)
			break; /* the server waits for more, or drops the connection */
		/* The PDU as its own allocation, so ASan sees reads past it. */
		uint8_t *pdu = malloc(h.len - 1u + 1u);
		if (!pdu)
			abort();
		memcpy(pdu, data + off + MBAP_HDR, h.len - 1u);
		rlen = ownunit_handle(&env, pdu, h.len - 1u, rsp);
		if (rlen < 2 || rlen > MB_PDU_MAX)
			abort(); /* the own unit's answer does not fit a frame */
		(void)mbap_build(h.tid, h.unit, rsp, rlen, frame);
		gateway(pdu, h.len - 1u);
		free(pdu);
		off += (size_t)n;
	}
	settings_fini(s);
	return 0;
}
