/* Register cache of one device. A hit may be stitched from several blocks
 * (the poller reads in up to 125-register blocks; a client may ask across
 * them); where blocks overlap, the newest read decides. */
#include "sg/regcache.h"

#include <string.h>

void regcache_clear(struct regcache *c)
{
	for (unsigned i = 0; i < REGCACHE_BLOCKS; i++)
		c->b[i].at_ms = 0;
}

void regcache_put(struct regcache *c, enum desc_space space, uint16_t start, uint16_t count,
		  const uint16_t *regs, int64_t now_ms)
{
	struct regcache_block *slot = NULL;

	if ((space != SPACE_INPUT && space != SPACE_HOLDING) || count == 0 ||
	    count > REGCACHE_REGS || (unsigned)start + count > 65536u)
		return;
	for (unsigned i = 0; i < REGCACHE_BLOCKS; i++) {
		struct regcache_block *b = &c->b[i];

		if (b->at_ms && b->space == space && b->start == start && b->count == count) {
			slot = b;
			break;
		}
		if (!slot || b->at_ms < slot->at_ms)
			slot = b;
	}
	slot->space = (uint8_t)space;
	slot->start = start;
	slot->count = count;
	slot->at_ms = now_ms > 0 ? now_ms : 1;
	memcpy(slot->regs, regs, count * sizeof(*regs));
}

bool regcache_get(const struct regcache *c, enum desc_space space, uint16_t start, uint16_t count,
		  int64_t min_ms, uint16_t *out)
{
	int64_t seen[REGCACHE_REGS];

	if (count == 0 || count > REGCACHE_REGS)
		return false;
	for (unsigned k = 0; k < count; k++)
		seen[k] = 0;
	for (unsigned i = 0; i < REGCACHE_BLOCKS; i++) {
		const struct regcache_block *b = &c->b[i];
		unsigned lo, hi;

		if (!b->at_ms || b->at_ms < min_ms || b->space != space)
			continue;
		lo = b->start > start ? b->start : start;
		hi = (unsigned)b->start + b->count < (unsigned)start + count
			 ? (unsigned)b->start + b->count
			 : (unsigned)start + count;
		for (unsigned r = lo; r < hi; r++) {
			if (b->at_ms <= seen[r - start])
				continue;
			seen[r - start] = b->at_ms;
			out[r - start] = b->regs[r - b->start];
		}
	}
	for (unsigned k = 0; k < count; k++)
		if (!seen[k])
			return false;
	return true;
}
