/* Filling load-profile gaps from a meter's own load profile.
 *
 * A description may declare the meter's own profile (struct desc_lprofile):
 * a ring of entries, entry 0 the newest, each the capture instant (UTC epoch
 * seconds) and cumulative counters at that instant. Interval energy for
 * [t-900, t) is the difference of the captures at t-900 and t. The gateway
 * stores what it derived from its own readings (loadprof.h); intervals it
 * could not see are stored missing, and this module reads the meter's ring to
 * fill them with lpstore_fill, which never overwrites a stored value.
 *
 * Two parts: pure functions (decode, intervals, planning: no bus, no clock)
 * and a small per-slot state machine that reads the ring over the bus on the
 * main loop (one fill in flight per slot). */
#ifndef SG_MPROFILE_H
#define SG_MPROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sg/bus.h"
#include "sg/desc.h"
#include "sg/loadprof.h"

struct dev;
struct lpstore;

#define MPROF_INTERVAL_S LP_INTERVAL_S
#define MPROF_RECHECK_DEPTH_S (56 * 3600) /* the periodic re-check looks this far back */

/* One entry of the meter's ring. */
struct mprof_snap {
	int64_t t;	  /* capture instant, UTC seconds */
	double v[LP_NCH]; /* cumulative counters, Wh / varh */
	uint16_t ok;	  /* bit ch: v[ch] valid */
};

/* One block read of whole entries. */
struct mprof_read {
	enum desc_space space;
	uint16_t start; /* first register */
	uint16_t count; /* registers, <= BUS_REGS_MAX */
	unsigned first; /* entry index of the first entry read */
	unsigned n;	/* entries read */
};

/* ---- pure part ---- */

/* 0 when lp is a profile this code reads (interval 900 s, input or holding
 * space, the time and every channel inside an entry, known channel indexes,
 * the whole ring inside the 16-bit register space); else -EINVAL. */
int mprof_check(const struct desc_lprofile *lp);
/* Channels the profile provides (bit per enum lp_ch); reverse swaps import
 * and export, as lp_from_dev does for a meter wired in reverse. */
uint16_t mprof_channels(const struct desc_lprofile *lp, bool reverse);
/* Decode n consecutive entries held in regs (n * stride registers) into out
 * (room for n). Empty entries (time 0) are skipped; a value that does not
 * decode (NaN float) leaves its channel's ok bit clear. Returns the number of
 * snapshots written. */
size_t mprof_decode(const struct desc_lprofile *lp, const uint16_t *regs, size_t n, bool reverse,
		    struct mprof_snap *out);
/* Intervals [t-900, t) for which both captures exist among s[0…n-1] (any
 * order; the same capture may appear more than once: reads of it that
 * disagree on a channel leave that channel unknown),
 * with start in [from, to) and on a local quarter hour of p. Captures off the
 * UTC 900 s grid are not used. A channel is present where both captures have
 * it and the difference is plausible (not negative, at most p->max_step);
 * intervals with no channel present are left out. Sorts s in place; writes at
 * most max intervals, oldest first, and returns how many. */
size_t mprof_intervals(struct mprof_snap *s, size_t n, const struct lp_params *p, int64_t from,
		       int64_t to, struct lp_interval *out, size_t max);
/* Entries to read for the intervals starting in [from, to), given the number
 * of valid entries (count register, else the ring depth) and the newest
 * capture (entry 0, already read, so *first >= 1). Entry i is taken to hold
 * newest - i*900; one older entry is added for the left edge (the ring may
 * shift while it is being read). 0 with [*first, *last], or -ENOENT when
 * there is nothing to read. */
int mprof_plan(const struct desc_lprofile *lp, unsigned valid, int64_t newest, int64_t from,
	       int64_t to, unsigned *first, unsigned *last);
/* After reading entries from index first on, with seen the newest capture
 * found among them: when it is older than the captures up to the gap's end
 * (to, at most newest), the meter skipped captures (it was off) and the
 * wanted ones lie at lower indexes. 0 with the range to read next (below
 * first, above entry 0), or -ENOENT. */
int mprof_plan_newer(unsigned first, int64_t seen, int64_t newest, int64_t to, unsigned *nfirst,
		     unsigned *nlast);
/* Block reads covering entries first…last: whole entries, at most
 * BUS_REGS_MAX registers each. Writes at most max, returns how many are
 * needed. */
size_t mprof_blocks(const struct desc_lprofile *lp, unsigned first, unsigned last,
		    struct mprof_read *out, size_t max);

/* ---- reading over the bus ---- */

/* How the state machine reaches the bus and the device (hist.c: the poller's
 * bus of the slot, at background priority). */
struct mprof_io {
	/* Queue t (unit, fc, addr, count, done, arg set) for slot's device;
	 * done() runs later on the main loop, never inside. 0 or -errno. */
	int (*submit)(void *arg, int slot, struct bus_txn *t);
	/* The device in slot now, or NULL. */
	const struct dev *(*dev)(void *arg, int slot);
	void *arg;
};

/* Per slot, for status. */
struct mprof_stats {
	uint64_t fills;	      /* fills started */
	uint64_t filled;      /* intervals written: a channel was missing and the meter had it */
	uint64_t errors;      /* fills that ended in a bus or store error */
	char last_error[96];  /* "" until one happens */
	int64_t last_error_s; /* wall clock of last_error */
	int64_t resolved_to;  /* re-check intervals before this are settled (0 none) */
	bool busy;	      /* a fill is in flight */
};

#define MPROF_RECHECK 1u /* a periodic re-check: on success moves resolved_to on */

struct mprof;

/* A filler over io writing into st, quarter hours and max_step of p (copied). */
int mprof_new(struct mprof **out, const struct mprof_io *io, struct lpstore *st,
	      const struct lp_params *p);
/* Free m. A fill still in flight is orphaned: its transaction stays
 * allocated until the bus hands it back (bus_stop does), then it is freed
 * without touching anything else. */
void mprof_free(struct mprof *m);
/* Fill the intervals of slot starting in [from, to) that the store lacks from
 * the meter's profile. With a fill in flight, the range is merged into one to
 * run after it. 0 (started or queued), -ENOTSUP (no usable profile, device
 * not answering) or the submit error (recorded in the stats). */
int mprof_request(struct mprof *m, int slot, int64_t from, int64_t to, unsigned flags);
/* True while a fill of slot is in flight. */
bool mprof_busy(const struct mprof *m, int slot);
/* The slot's history was cleared: drop what is in flight or queued (its
 * result is not written) and the re-check progress. */
void mprof_forget(struct mprof *m, int slot);
/* Counters of slot. */
void mprof_get_stats(const struct mprof *m, int slot, struct mprof_stats *out);

#endif
