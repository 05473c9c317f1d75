/* Filling load-profile gaps from a meter's own load profile: pure decoding,
 * interval building and read planning, then the per-slot reader that runs
 * them over the bus on the main loop. */
#include "sg/mprofile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/clock.h"
#include "sg/dev.h"
#include "sg/log.h"
#include "sg/lpstore.h"

#define IV MPROF_INTERVAL_S
#define ENTRIES_MAX 4096

static int64_t pmod(int64_t a, int64_t m)
{
	int64_t r = a % m;

	return r < 0 ? r + m : r;
}

static int64_t floor_iv(int64_t t)
{
	return t - pmod(t, IV);
}

static int64_t ceil_iv(int64_t t)
{
	return pmod(t, IV) ? floor_iv(t) + IV : t;
}

/* ---- pure part ---- */

static bool value_type(enum dec_type t)
{
	return dec_type_words(t) > 0 && t != DEC_T7;
}

int mprof_check(const struct desc_lprofile *lp)
{
	uint16_t seen = 0;

	if (!lp->present || (lp->space != SPACE_INPUT && lp->space != SPACE_HOLDING) ||
	    lp->interval_s != IV || lp->stride < 1 || lp->stride > BUS_REGS_MAX ||
	    lp->entries < 1 || lp->entries > ENTRIES_MAX || lp->nch > DESC_LP_CH_MAX ||
	    (uint32_t)lp->time_offset + 2 > lp->stride ||
	    (uint32_t)lp->base + (uint32_t)lp->entries * lp->stride > 0x10000)
		return -EINVAL;
	if (lp->count.present &&
	    (!value_type(lp->count.type) ||
	     (lp->count.space != SPACE_INPUT && lp->count.space != SPACE_HOLDING)))
		return -EINVAL;
	for (unsigned i = 0; i < lp->nch; i++) {
		const struct desc_lp_channel *c = &lp->ch[i];

		if (c->channel >= LP_NCH || (seen & (1u << c->channel)) || !value_type(c->type) ||
		    (uint32_t)c->offset + dec_type_words(c->type) > lp->stride)
			return -EINVAL;
		seen |= (uint16_t)(1u << c->channel);
	}
	return 0;
}

/* A meter wired in reverse calls export what the grid side calls import. */
static int rev_ch(int ch)
{
	switch (ch) {
	case LP_AI:
		return LP_AE;
	case LP_AE:
		return LP_AI;
	case LP_RI:
		return LP_RE;
	case LP_RE:
		return LP_RI;
	case LP_AI1:
	case LP_AI2:
	case LP_AI3:
		return ch - LP_AI1 + LP_AE1;
	case LP_AE1:
	case LP_AE2:
	case LP_AE3:
		return ch - LP_AE1 + LP_AI1;
	default:
		return ch;
	}
}

uint16_t mprof_channels(const struct desc_lprofile *lp, bool reverse)
{
	uint16_t m = 0;

	for (unsigned i = 0; i < lp->nch && i < DESC_LP_CH_MAX; i++)
		if (lp->ch[i].channel < LP_NCH)
			m |= (uint16_t)(1u << (reverse ? rev_ch(lp->ch[i].channel)
						       : lp->ch[i].channel));
	return m;
}

size_t mprof_decode(const struct desc_lprofile *lp, const uint16_t *regs, size_t n, bool reverse,
		    struct mprof_snap *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const uint16_t *e = regs + i * lp->stride;
		struct mprof_snap *s = &out[k];
		double t;

		if (dec_number(DEC_UINT32, e + lp->time_offset, &t) < 0 || t == 0)
			continue;
		memset(s, 0, sizeof(*s));
		s->t = (int64_t)t;
		for (unsigned j = 0; j < lp->nch && j < DESC_LP_CH_MAX; j++) {
			const struct desc_lp_channel *c = &lp->ch[j];
			/* 0 is no scale at all: the loader's default is 1 */
			double v, scale = c->scale != 0 ? c->scale : 1;
			int ch;

			if (c->channel >= LP_NCH)
				continue;
			ch = reverse ? rev_ch(c->channel) : c->channel;
			if (dec_number(c->type, e + c->offset, &v) < 0 || !isfinite(v * scale))
				continue;
			s->v[ch] = v * scale;
			s->ok |= (uint16_t)(1u << ch);
		}
		k++;
	}
	return k;
}

static int by_time(const void *a, const void *b)
{
	const struct mprof_snap *x = a, *y = b;

	return (x->t > y->t) - (x->t < y->t);
}

/* Sort and merge captures read more than once. Two reads of one capture
 * that disagree on a channel (the ring moved under a block read and the
 * offsets no longer meant what they did) leave that channel unknown. */
static size_t unique(struct mprof_snap *s, size_t n)
{
	size_t u = 0;

	if (!n)
		return 0;
	qsort(s, n, sizeof(*s), by_time);
	for (size_t i = 0; i < n; i++) {
		if (u && s[u - 1].t == s[i].t) {
			struct mprof_snap *d = &s[u - 1];

			for (int ch = 0; ch < LP_NCH; ch++) {
				uint16_t bit = (uint16_t)(1u << ch);

				if (!(s[i].ok & bit))
					continue;
				if (!(d->ok & bit)) {
					d->v[ch] = s[i].v[ch];
					d->ok |= bit;
				} else if (d->v[ch] != s[i].v[ch]) {
					d->ok &= (uint16_t)~bit;
				}
			}
			continue;
		}
		s[u++] = s[i];
	}
	return u;
}

size_t mprof_intervals(struct mprof_snap *s, size_t n, const struct lp_params *p, int64_t from,
		       int64_t to, struct lp_interval *out, size_t max)
{
	struct lp_params par = *p;
	size_t u, k = 0;

	lp_params_default(&par);
	u = unique(s, n);
	for (size_t i = 1; i < u && k < max; i++) {
		const struct mprof_snap *a = &s[i - 1], *b = &s[i];
		struct lp_interval iv = {.start = a->t};

		if (b->t - a->t != IV || pmod(a->t, IV) || a->t < from || a->t >= to)
			continue;
		/* Local quarter hours match UTC multiples of 900 s only in zones
		 * whose offset is a whole number of quarter hours. */
		if (lp_next_boundary(&par, a->t - 1) != a->t)
			continue;
		for (int ch = 0; ch < LP_NCH; ch++) {
			uint16_t bit = (uint16_t)(1u << ch);
			double d = b->v[ch] - a->v[ch];

			if ((a->ok & b->ok & bit) && d >= 0 && d <= par.max_step) {
				iv.e[ch] = d;
				iv.present |= bit;
			}
		}
		if (iv.present)
			out[k++] = iv;
	}
	return k;
}

int mprof_plan(const struct desc_lprofile *lp, unsigned valid, int64_t newest, int64_t from,
	       int64_t to, unsigned *first, unsigned *last)
{
	int64_t lo = ceil_iv(from), hi = ceil_iv(to), f, l;

	if (valid > lp->entries)
		valid = lp->entries;
	if (hi > floor_iv(newest))
		hi = floor_iv(newest);
	/* captures lo … hi close the intervals lo … hi-900 */
	if (valid < 2 || hi - IV < lo)
		return -ENOENT;
	f = (newest - hi) / IV;
	l = (newest - lo + IV - 1) / IV + 1;
	if (f < 1)
		f = 1;
	if (l > (int64_t)valid - 1)
		l = (int64_t)valid - 1;
	if (f > l)
		return -ENOENT;
	*first = (unsigned)f;
	*last = (unsigned)l;
	return 0;
}

int mprof_plan_newer(unsigned first, int64_t seen, int64_t newest, int64_t to, unsigned *nfirst,
		     unsigned *nlast)
{
	int64_t hi = ceil_iv(to), k;

	if (hi > floor_iv(newest))
		hi = floor_iv(newest);
	if (first <= 1 || seen <= 0 || seen >= hi)
		return -ENOENT;
	/* Entries below first are at least 900 s apart, so the capture at hi
	 * is at most (hi - seen) / 900 entries above first. */
	k = (hi - seen) / IV;
	if (k < 1)
		return -ENOENT;
	*nlast = first - 1;
	*nfirst = (int64_t)first - k < 1 ? 1 : (unsigned)((int64_t)first - k);
	return 0;
}

size_t mprof_blocks(const struct desc_lprofile *lp, unsigned first, unsigned last,
		    struct mprof_read *out, size_t max)
{
	unsigned per = lp->stride ? BUS_REGS_MAX / lp->stride : 0, i = first;
	size_t k = 0;

	if (!per)
		return 0;
	while (i <= last) {
		unsigned n = last - i + 1 < per ? last - i + 1 : per;

		if (k < max)
			out[k] = (struct mprof_read){.space = lp->space,
						     .start = (uint16_t)(lp->base + i * lp->stride),
						     .count = (uint16_t)(n * lp->stride),
						     .first = i,
						     .n = n};
		k++;
		i += n;
	}
	return k;
}

/* ---- reading over the bus ---- */

enum run_state { RUN_COUNT, RUN_HEAD, RUN_BLOCKS };

/* One fill in flight. Heap-allocated so that its transaction outlives the
 * filler: the bus owns the transaction until done() runs. */
struct run {
	struct bus_txn txn;
	struct mprof *m; /* NULL: orphaned, free on done() */
	int slot;
	uint8_t unit;
	const struct desc *desc; /* the device's description when the fill started */
	struct desc_lprofile lp;
	bool reverse;
	int64_t from, to;
	unsigned flags;
	enum run_state st;
	unsigned valid;	     /* valid entries */
	int64_t newest;	     /* entry 0's capture */
	unsigned pass_first; /* lowest entry index of the current pass */
	int64_t seen;	     /* newest capture found in the current pass */
	struct mprof_read *rd;
	size_t nrd, ird;
	struct mprof_snap *snap;
	size_t nsnap, cap;
};

struct mslot {
	struct run *run;
	bool pending;
	int64_t pfrom, pto;
	unsigned pflags;
	bool err_logged;
	struct mprof_stats st;
};

struct mprof {
	struct mprof_io io;
	struct lpstore *store;
	struct lp_params par;
	struct mslot slot[DEV_SLOTS];
};

static void free_run(struct run *r)
{
	free(r->rd);
	free(r->snap);
	free(r);
}

static const char *slot_name(struct mprof *m, int slot, char *buf, size_t len)
{
	const struct dev *d = m->io.dev(m->io.arg, slot);

	if (d && d->ifname[0])
		return d->ifname;
	snprintf(buf, len, "slot %d", slot);
	return buf;
}

static void note_error(struct mprof *m, int slot, int err)
{
	struct mslot *s = &m->slot[slot];
	char name[16];

	s->st.errors++;
	if (err == -ESTALE)
		snprintf(s->st.last_error, sizeof(s->st.last_error), "device changed");
	else
		bus_strerror(err, s->st.last_error, sizeof(s->st.last_error));
	s->st.last_error_s = clock_wall();
	/* once per outage: the re-check retries every 15 minutes */
	if (!s->err_logged)
		log_warn("%s: reading the meter's load profile: %s (retried later)",
			 slot_name(m, slot, name, sizeof(name)), s->st.last_error);
	s->err_logged = true;
}

static bool shutting_down(int err)
{
	return err == -ECANCELED || err == -ESHUTDOWN;
}

static void on_done(struct bus_txn *t, void *arg);
static int start(struct mprof *m, int slot, int64_t from, int64_t to, unsigned flags);

static void finish(struct run *r, int err)
{
	struct mprof *m = r->m;
	struct mslot *s = &m->slot[r->slot];
	int slot = r->slot;
	char name[16];

	s->run = NULL;
	free_run(r);
	if (shutting_down(err)) {
		s->pending = false; /* the bus is going away */
		return;
	}
	if (err)
		note_error(m, slot, err);
	else if (s->err_logged) {
		log_info("%s: the meter's load profile reads again",
			 slot_name(m, slot, name, sizeof(name)));
		s->err_logged = false;
	}
	if (s->pending) {
		s->pending = false;
		start(m, slot, s->pfrom, s->pto, s->pflags);
	}
}

static int submit(struct run *r, enum desc_space space, uint16_t addr, uint16_t count)
{
	memset(&r->txn, 0, offsetof(struct bus_txn, regs));
	r->txn.unit = r->unit;
	r->txn.fc = space == SPACE_INPUT ? 4 : 3;
	r->txn.addr = addr;
	r->txn.count = count;
	r->txn.done = on_done;
	r->txn.arg = r;
	return r->m->io.submit(r->m->io.arg, r->slot, &r->txn);
}

static int add_snaps(struct run *r, const uint16_t *regs, size_t n)
{
	size_t k;

	if (r->nsnap + n > r->cap) {
		size_t cap = r->cap * 2 > r->nsnap + n ? r->cap * 2 : r->nsnap + n + 16;
		struct mprof_snap *v = realloc(r->snap, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->snap = v;
		r->cap = cap;
	}
	k = mprof_decode(&r->lp, regs, n, r->reverse, r->snap + r->nsnap);
	for (size_t i = 0; i < k; i++)
		if (r->snap[r->nsnap + i].t > r->seen)
			r->seen = r->snap[r->nsnap + i].t;
	r->nsnap += k;
	return 0;
}

/* Plan the reads of entries first…last and submit the first (1: none). */
static int start_pass(struct run *r, unsigned first, unsigned last)
{
	size_t n = mprof_blocks(&r->lp, first, last, NULL, 0);

	if (!n)
		return 1;
	free(r->rd);
	r->rd = calloc(n ? n : 1, sizeof(*r->rd));
	if (!r->rd)
		return -ENOMEM;
	r->nrd = mprof_blocks(&r->lp, first, last, r->rd, n);
	r->ird = 0;
	r->pass_first = first;
	r->seen = 0;
	r->st = RUN_BLOCKS;
	return submit(r, r->rd[0].space, r->rd[0].start, r->rd[0].count);
}

/* Everything read: write the intervals the store lacks. */
static int complete(struct run *r)
{
	struct mprof *m = r->m;
	struct mslot *s = &m->slot[r->slot];
	struct lp_interval *iv = calloc(r->nsnap ? r->nsnap : 1, sizeof(*iv));
	size_t n, filled = 0;
	int ret;

	if (!iv)
		return -ENOMEM;
	n = mprof_intervals(r->snap, r->nsnap, &m->par, r->from, r->to, iv, r->nsnap);
	ret = n ? lpstore_fill_count(m->store, r->slot, iv, n, &filled) : 0;
	free(iv);
	if (ret < 0)
		return ret;
	s->st.filled += filled;
	if ((r->flags & MPROF_RECHECK) && r->newest) {
		/* the intervals up to the newest capture are as complete as the
		 * meter can make them */
		int64_t upto = floor_iv(r->newest) < r->to ? floor_iv(r->newest) : r->to;

		if (upto > s->st.resolved_to)
			s->st.resolved_to = upto;
	}
	return 0;
}

static bool same_device(const struct run *r)
{
	const struct dev *d = r->m->io.dev(r->m->io.arg, r->slot);

	return d && d->d == r->desc && d->addr == r->unit;
}

/* Take one transaction's result and move on; 0, 1 when the fill is complete,
 * or -errno. */
static int step(struct run *r, const struct bus_txn *t)
{
	unsigned first, last;
	double v;

	switch (r->st) {
	case RUN_COUNT:
		if (dec_number(r->lp.count.type, t->regs, &v) < 0 || v < 0)
			v = 0;
		r->valid = v < r->lp.entries ? (unsigned)v : r->lp.entries;
		if (!r->valid)
			return 1;
		r->st = RUN_HEAD;
		return submit(r, r->lp.space, r->lp.base, r->lp.stride);
	case RUN_HEAD:
		if (add_snaps(r, t->regs, 1) < 0)
			return -ENOMEM;
		if (!r->nsnap)
			return 1; /* nothing captured yet */
		r->newest = r->snap[0].t;
		if (mprof_plan(&r->lp, r->valid, r->newest, r->from, r->to, &first, &last) < 0)
			return 1;
		return start_pass(r, first, last);
	case RUN_BLOCKS:
		if (add_snaps(r, t->regs, r->rd[r->ird].n) < 0)
			return -ENOMEM;
		if (++r->ird < r->nrd)
			return submit(r, r->rd[r->ird].space, r->rd[r->ird].start,
				      r->rd[r->ird].count);
		if (mprof_plan_newer(r->pass_first, r->seen, r->newest, r->to, &first, &last) == 0)
			return start_pass(r, first, last);
		return 1;
	}
	return -EINVAL;
}

static void on_done(struct bus_txn *t, void *arg)
{
	struct run *r = arg;
	int ret;

	if (!r->m) {
		free_run(r);
		return;
	}
	ret = t->err;
	if (!ret && !same_device(r))
		ret = -ESTALE;
	if (!ret)
		ret = step(r, t);
	if (ret == 1)
		finish(r, complete(r));
	else if (ret < 0)
		finish(r, ret);
	/* else the next read is queued */
}

static int start(struct mprof *m, int slot, int64_t from, int64_t to, unsigned flags)
{
	const struct dev *d = m->io.dev(m->io.arg, slot);
	struct mslot *s = &m->slot[slot];
	struct run *r;
	int ret;

	if (!d || !d->d || d->health != DEV_OK || mprof_check(&d->d->lprof) < 0)
		return -ENOTSUP;
	if (from >= to)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->m = m;
	r->slot = slot;
	r->unit = d->addr;
	r->desc = d->d;
	r->lp = d->d->lprof;
	r->reverse = d->reverse;
	r->from = from;
	r->to = to;
	r->flags = flags;
	r->valid = r->lp.entries;
	s->st.fills++;
	if (r->lp.count.present) {
		r->st = RUN_COUNT;
		ret = submit(r, r->lp.count.space, r->lp.count.reg,
			     (uint16_t)dec_type_words(r->lp.count.type));
	} else {
		r->st = RUN_HEAD;
		ret = submit(r, r->lp.space, r->lp.base, r->lp.stride);
	}
	if (ret < 0) {
		free_run(r);
		if (!shutting_down(ret))
			note_error(m, slot, ret);
		return ret;
	}
	s->run = r;
	return 0;
}

int mprof_new(struct mprof **out, const struct mprof_io *io, struct lpstore *st,
	      const struct lp_params *p)
{
	struct mprof *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->io = *io;
	m->store = st;
	m->par = *p;
	lp_params_default(&m->par);
	*out = m;
	return 0;
}

void mprof_free(struct mprof *m)
{
	if (!m)
		return;
	for (int s = 0; s < DEV_SLOTS; s++)
		if (m->slot[s].run)
			m->slot[s].run->m = NULL;
	free(m);
}

int mprof_request(struct mprof *m, int slot, int64_t from, int64_t to, unsigned flags)
{
	struct mslot *s;

	if (!m || slot < 0 || slot >= DEV_SLOTS)
		return -EINVAL;
	s = &m->slot[slot];
	if (from >= to)
		return 0;
	if (!s->run)
		return start(m, slot, from, to, flags);
	if (!s->pending) {
		s->pfrom = from;
		s->pto = to;
		s->pflags = 0;
	}
	s->pending = true;
	s->pfrom = from < s->pfrom ? from : s->pfrom;
	s->pto = to > s->pto ? to : s->pto;
	s->pflags |= flags;
	return 0;
}

bool mprof_busy(const struct mprof *m, int slot)
{
	return m && slot >= 0 && slot < DEV_SLOTS && m->slot[slot].run;
}

void mprof_forget(struct mprof *m, int slot)
{
	struct mslot *s;

	if (!m || slot < 0 || slot >= DEV_SLOTS)
		return;
	s = &m->slot[slot];
	if (s->run)
		s->run->m = NULL; /* its result belongs to the cleared history */
	s->run = NULL;
	s->pending = false;
	s->st.resolved_to = 0;
}

void mprof_get_stats(const struct mprof *m, int slot, struct mprof_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!m || slot < 0 || slot >= DEV_SLOTS)
		return;
	*out = m->slot[slot].st;
	out->busy = m->slot[slot].run != NULL;
}
