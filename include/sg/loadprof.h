/* Load profile: 15-minute interval energy derived from a device's counters.
 *
 * The engine is pure (no SQLite, no clock): it takes counter samples of one
 * device in time order and emits completed intervals. Boundaries are the
 * quarter hours of LOCAL time (offset callback, so DST and +05:45 zones
 * work; the local day has 92 / 96 / 100 intervals). The counter value at a
 * boundary is interpolated linearly between the samples on either side when
 * they are at most max_gap_s apart and the step between them is plausible
 * (not backwards, not more than max_step per interval); otherwise the
 * boundary is unknown and the intervals on both sides are emitted missing
 * (present bit 0), never as zero. With every boundary known, the intervals
 * telescope: their sum is the counter difference. A channel missing from a
 * sample (read failed) is skipped: the next good value pairs with the last
 * good one, but a boundary passed while it was failing stays unknown for it.
 *
 * Storage of intervals and of the engine state is lpstore (sg/lpstore.h). */
#ifndef SG_LOADPROF_H
#define SG_LOADPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct dev;

/* Channels; active in Wh, reactive in varh. */
enum lp_ch {
	LP_AI,	/* active import, total */
	LP_AE,	/* active export, total */
	LP_RI,	/* reactive import, total */
	LP_RE,	/* reactive export, total */
	LP_AI1, /* active import, phase 1…3 */
	LP_AI2,
	LP_AI3,
	LP_AE1, /* active export, phase 1…3 */
	LP_AE2,
	LP_AE3,
	LP_NCH
};

#define LP_INTERVAL_S 900
#define LP_ALL_CH ((1u << LP_NCH) - 1)

/* Local offset from UTC in seconds at utc (e.g. +3600 CET, +7200 CEST). */
typedef int (*lp_offset_fn)(time_t utc, void *arg);

/* Counter readings of one device at one instant. */
struct lp_sample {
	int64_t ms;	  /* UTC, milliseconds */
	double v[LP_NCH]; /* counter values, Wh / varh */
	uint16_t ok;	  /* bit ch: v[ch] valid */
};

/* One completed 15-minute interval. */
struct lp_interval {
	int64_t start;	  /* UTC seconds of the interval start (a local quarter hour) */
	double e[LP_NCH]; /* energy; meaningful only where present has the bit */
	uint16_t present; /* bit ch: e[ch] known; 0 = the interval is missing */
};

struct lp_params {
	lp_offset_fn offset_s; /* NULL = UTC */
	void *offset_arg;
	int max_gap_s;	 /* samples further apart do not interpolate (default 900) */
	double max_step; /* plausible increase per 15 minutes, Wh / varh (default 1e6) */
	int max_missing; /* a longer gap emits only its last max_missing intervals (default 38400)
			  */
};

/* The engine state of one device: plain data, saved and restored by lpstore. */
struct lp_engine {
	bool have_prev;
	int64_t last_ms;       /* newest sample */
	int64_t ch_ms[LP_NCH]; /* last good value of each channel (where ch_ok) */
	double ch_v[LP_NCH];
	uint16_t ch_ok;
	int64_t cur_start;    /* start (UTC s) of the interval the newest sample falls in */
	double cur_v[LP_NCH]; /* counter value at cur_start, where cur_known */
	uint16_t cur_known;
	uint16_t cur_broken; /* an implausible step inside the current interval */
};

typedef void (*lp_emit_fn)(const struct lp_interval *iv, void *arg);

/* Defaults for the fields left 0 (max_gap_s, max_step, max_missing). */
void lp_params_default(struct lp_params *p);
/* Column / JSON name of a channel ("ai", "ae", "ri", "re", "ai1", …). */
const char *lp_ch_name(enum lp_ch ch);
/* Unit of a channel ("Wh", "varh"). */
const char *lp_ch_unit(enum lp_ch ch);

/* Map the counters of d (its description, unit and direction as read, a
 * reversed connection swapping import and export, the counter's phase) to a
 * sample at d->ctr_ms. Each channel takes the first non-resettable counter
 * of its unit, direction and phase, else the first resettable one; the choice
 * depends on the description only, so a channel never switches counters
 * between polls. Bidirectional and VAh counters feed no channel. Returns the
 * mask of channels the device supports (s->ok: those read successfully). */
uint16_t lp_from_dev(const struct dev *d, struct lp_sample *s);

/* A fresh engine (no sample yet). */
void lp_engine_init(struct lp_engine *e);
/* Feed one sample; completed intervals go to emit in time order. A sample not
 * newer than the previous one is ignored (returns 0) unless it is more than
 * max_gap_s older (the wall clock was set back): then the engine restarts from
 * it. Returns the number of intervals emitted. */
int lp_engine_push(struct lp_engine *e, const struct lp_params *p, const struct lp_sample *s,
		   lp_emit_fn emit, void *arg);

/* Local quarter-hour boundaries: the first one after utc, and the last one at
 * or before utc. */
int64_t lp_next_boundary(const struct lp_params *p, int64_t utc);
int64_t lp_prev_boundary(const struct lp_params *p, int64_t utc);
/* Local day number (days since 1970-01-01 in local time) of utc. */
int64_t lp_local_day(const struct lp_params *p, int64_t utc);
/* UTC of the start of local day (its first instant; local midnight or, when
 * midnight is skipped by a DST change, the change). */
int64_t lp_day_start(const struct lp_params *p, int64_t day);
/* Intervals in [from, to) (boundaries from .. before to; 96 on a normal day). */
int lp_count_intervals(const struct lp_params *p, int64_t from, int64_t to);

#endif
