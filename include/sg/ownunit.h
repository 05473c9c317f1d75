/* The gateway's own Modbus unit (settings key sg_modbus_addr, default 34):
 * identification in the Iskra layout (CONTRACTS §4–5), status values and every
 * setting as registers, so Iskra and third-party configuration tools can read
 * and change the gateway over Modbus TCP or as an RTU slave on RS485.
 * The register map is documented in docs/modbus-map.md, which
 * ownunit_map_markdown() generates (a unit test keeps the two equal). */
#ifndef SG_OWNUNIT_H
#define SG_OWNUNIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sg/bus.h"
#include "sg/conf.h"
#include "sg/settings.h"

struct reg;

/* What the own unit reads and changes; every pointer but settings and conf
 * may be NULL (unit tests), the value then reads as 0. */
struct ownunit_env {
	struct settings *settings;
	const struct conf *conf;
	const struct reg *reg;
	struct bus *const *buses; /* CONF_BUS_COUNT entries, may be NULL */
	int64_t start_mono_ms;	  /* for uptime */
	/* Called after settings were changed through a write (main thread). */
	void (*changed)(void *arg);
	void *changed_arg;
};

/* Answer a request PDU (function code first, len bytes) addressed to the
 * gateway itself: fills rsp (>= MB_PDU_MAX bytes) with the response or an
 * exception PDU and returns its length. Writes go through settings_set_json:
 * all registers of one request are applied together or not at all. */
size_t ownunit_handle(const struct ownunit_env *env, const uint8_t *req, size_t len, uint8_t *rsp);
/* Write the register map as Markdown (docs/modbus-map.md). */
void ownunit_map_markdown(FILE *f);

#endif
