/* A device's register cache: the last block reads of input and holding
 * registers with the time each was read, so the Modbus TCP gateway can serve
 * several masters from one background poll instead of the bus. Owned by the
 * device model (struct dev); filled by the poller and the gateway. */
#ifndef SG_REGCACHE_H
#define SG_REGCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "sg/desc.h"

#define REGCACHE_BLOCKS 24
#define REGCACHE_REGS 125

struct regcache_block {
	uint8_t space; /* enum desc_space: SPACE_INPUT or SPACE_HOLDING */
	uint16_t start, count;
	int64_t at_ms; /* monotonic ms of the read; 0 = empty */
	uint16_t regs[REGCACHE_REGS];
};

struct regcache {
	struct regcache_block b[REGCACHE_BLOCKS];
};

/* Forget everything (also after a write to the device). */
void regcache_clear(struct regcache *c);
/* Remember a block read at now_ms (count 1…125; other spaces ignored). A block
 * with the same space/start/count is replaced, else the oldest entry. */
void regcache_put(struct regcache *c, enum desc_space space, uint16_t start, uint16_t count,
		  const uint16_t *regs, int64_t now_ms);
/* Copy registers [start, start+count) of space into out when every one of
 * them was read at or after min_ms (from one or several blocks; the newest
 * read wins); true on a hit, false (out unspecified) otherwise. */
bool regcache_get(const struct regcache *c, enum desc_space space, uint16_t start, uint16_t count,
		  int64_t min_ms, uint16_t *out);

#endif
