/* Background polling of the device slots. Each slot runs a chain of block
 * reads with at most one transaction in flight; a chain is an identification
 * (generic ident layout, then the matched model's config registers) or a
 * poll cycle (measurements, and counters when due). */
#include "poll_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/clock.h"
#include "sg/log.h"
#include "sg/sched.h"

static void start_chain(struct poll *p, struct pslot *s);
static bool slot_paused(const struct poll *p, const struct pslot *s);
static void schedule(struct poll *p, struct pslot *s, int64_t delay_ms);

static void add_block(struct pslot *s, enum desc_space space, uint16_t start, uint16_t count)
{
	if (s->nchain < CHAIN_MAX)
		s->chain[s->nchain++] = (struct desc_block){space, start, count};
}

/* Blocks covering a list of fields, merged when adjacent in one space. */
static void add_field_blocks(struct pslot *s, const struct desc_field *const *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned w;
		struct desc_block *last = s->nchain ? &s->chain[s->nchain - 1] : NULL;

		if (!f[i]->present)
			continue;
		w = f[i]->type == DEC_STRING ? f[i]->words : dec_type_words(f[i]->type);
		if (last && last->space == f[i]->space && f[i]->reg >= last->start &&
		    f[i]->reg <= last->start + last->count && f[i]->reg + w - last->start <= 125) {
			if (f[i]->reg + w > last->start + last->count)
				last->count = (uint16_t)(f[i]->reg + w - last->start);
			continue;
		}
		add_block(s, f[i]->space, f[i]->reg, (uint16_t)w);
	}
}

static void build_ident_chain(struct poll *p, struct pslot *s)
{
	const struct desc *g = p->generic;
	const struct desc_field *f[] = {&g->id_model, &g->id_serial, &g->id_sw_version,
					&g->id_description, &g->id_location};

	s->nchain = s->pos = 0;
	s->kind = CHAIN_IDENT;
	add_field_blocks(s, f, 5);
}

static void build_cycle_chain(struct poll *p, struct pslot *s, bool counters)
{
	const struct desc *d = s->dev->d;
	const struct desc_field *relay[] = {&d->relay};

	(void)p;
	s->nchain = s->pos = 0;
	s->kind = CHAIN_CYCLE;
	memset(s->staged, 0, sizeof(s->staged));
	s->meas_told = false;
	for (unsigned i = 0; i < d->nmeas_blocks; i++)
		add_block(s, d->meas_blocks[i].space, d->meas_blocks[i].start,
			  d->meas_blocks[i].count);
	add_field_blocks(s, relay, 1);
	s->nmeas_chain = s->nchain;
	s->ctr_in_cycle = counters && d->nctr_blocks > 0;
	for (unsigned i = 0; s->ctr_in_cycle && i < d->nctr_blocks; i++)
		add_block(s, d->ctr_blocks[i].space, d->ctr_blocks[i].start,
			  d->ctr_blocks[i].count);
}

static void build_cfg_chain(struct pslot *s)
{
	const struct desc *d = s->dev->d;
	const struct desc_field *rev[] = {&d->reverse};

	s->nchain = s->pos = 0;
	s->kind = CHAIN_CFG;
	for (unsigned i = 0; i < d->ncfg_blocks; i++)
		add_block(s, d->cfg_blocks[i].space, d->cfg_blocks[i].start,
			  d->cfg_blocks[i].count);
	add_field_blocks(s, rev, 1);
}

static uint8_t read_fc(enum desc_space space)
{
	static const uint8_t fc[] = {
	    [SPACE_COIL] = 1, [SPACE_DISCRETE] = 2, [SPACE_INPUT] = 4, [SPACE_HOLDING] = 3};

	return fc[space];
}

static uint8_t slot_unit(const struct pslot *s)
{
	return s->dev->addr;
}

static void log_event(struct poll *p, struct pslot *s, const char *kind, const char *msg)
{
	if (p->store)
		store_event_add(p->store, clock_wall_ms(), s->dev->slot, kind, msg);
}

/* The update of the slot is complete: the registry tells its subscribers
 * what it covers (upd). */
static void notify(struct poll *p, struct pslot *s, enum dev_upd upd)
{
	s->dev->upd = upd;
	reg_updated(p->reg, s->dev->slot);
	s->dev->upd = DEV_UPD_ALL;
}

/* "exception 4 (slave device failure) on input 105–190": the error and the
 * registers of the block, numbered as the descriptions number them. */
static void block_error_text(const struct desc_block *b, int err, char *buf, size_t len)
{
	static const char *const space[] = {[SPACE_COIL] = "coil",
					    [SPACE_DISCRETE] = "discrete input",
					    [SPACE_INPUT] = "input",
					    [SPACE_HOLDING] = "holding"};
	char e[80];

	bus_strerror(err, e, sizeof(e));
	if (b->count > 1)
		snprintf(buf, len, "%s on %s %u–%u", e, space[b->space], b->start,
			 b->start + b->count - 1u);
	else
		snprintf(buf, len, "%s on %s %u", e, space[b->space], b->start);
}

/* Not answering: re-identified when it answers again (the meter may have been
 * swapped), and "ok" only after a cycle whose every block was read. */
static void mark_down(struct poll *p, struct pslot *s)
{
	char msg[192];

	s->need_ident = true;
	if (s->dev->health == DEV_NOT_RESPONDING)
		return;
	s->dev->health = DEV_NOT_RESPONDING;
	snprintf(msg, sizeof(msg), "%s %s not responding (%s)", s->dev->ifname,
		 dev_class_name(s->dev->cls), s->dev->last_error);
	log_warn("%s", msg);
	log_event(p, s, "error", msg);
}

/* Cycle blocks (measurements, relay, counters) that failed their last
 * SCHED_FAILS_DOWN reads; *first gets the first of them. */
static unsigned failing_blocks(const struct pslot *s, unsigned *first)
{
	unsigned n = s->nmeas_chain + (s->dev->d ? s->dev->d->nctr_blocks : 0), bad = 0;

	for (unsigned i = 0; i < n && i < CHAIN_MAX; i++)
		if (s->blk[i].fails >= SCHED_FAILS_DOWN && !bad++)
			*first = i;
	return bad;
}

/* Answering, but some blocks of the cycle failed SCHED_FAILS_DOWN reads in a
 * row: their values are old, so the device is not "ok". The error names the
 * first of them: "exception 4 (…) on input 105–112 and 3 more blocks". */
static void mark_read_error(struct poll *p, struct pslot *s)
{
	char msg[192];
	unsigned i = 0, bad = failing_blocks(s, &i);
	size_t n;

	block_error_text(&s->blk[i].b, s->blk[i].err, s->dev->last_error,
			 sizeof(s->dev->last_error));
	n = strlen(s->dev->last_error);
	if (bad > 1)
		snprintf(s->dev->last_error + n, sizeof(s->dev->last_error) - n,
			 " and %u more block%s", bad - 1, bad > 2 ? "s" : "");
	if (s->dev->health == DEV_READ_ERROR)
		return;
	s->dev->health = DEV_READ_ERROR;
	snprintf(msg, sizeof(msg), "%s %s read error (%s)", s->dev->ifname,
		 dev_class_name(s->dev->cls), s->dev->last_error);
	log_warn("%s", msg);
	log_event(p, s, "error", msg);
}

static void mark_up(struct poll *p, struct pslot *s)
{
	char msg[192];
	enum dev_health was = s->dev->health;

	s->dev->health = DEV_OK;
	s->dev->fails = 0;
	if (was != DEV_NOT_RESPONDING && was != DEV_READ_ERROR)
		return;
	snprintf(msg, sizeof(msg), "%s %s %s again", s->dev->ifname, dev_class_name(s->dev->cls),
		 was == DEV_NOT_RESPONDING ? "responding" : "read without errors");
	log_notice("%s", msg);
	log_event(p, s, "recovered", msg);
}

static bool is_exception(int err)
{
	return err <= -BUS_EXCEPTION_BASE;
}

/* The chain stopped because the device did not answer. What the cycle read
 * before and has not applied (its counter part; its measurement part too when
 * that was not complete) is dropped: those blocks keep their old read times. */
static void chain_failed(struct poll *p, struct pslot *s)
{
	int64_t interval = s->kind == CHAIN_CYCLE ? p->meas_interval_ms : 1000;
	enum dev_health was = s->dev->health;
	unsigned first;

	if (s->kind == CHAIN_CYCLE)
		memset(s->staged, 0, sizeof(s->staged));
	if (!slot_paused(p, s))
		s->dev->fails++;
	if (s->dev->fails >= SCHED_FAILS_DOWN)
		mark_down(p, s);
	else if (s->kind == CHAIN_CYCLE && failing_blocks(s, &first))
		mark_read_error(p, s); /* e.g. timeouts between exceptions */
	if (s->dev->health != was)
		notify(p, s, DEV_UPD_ALL);
	schedule(p, s, sched_next_delay(interval, s->dev->fails));
}

static void identified(struct poll *p, struct pslot *s)
{
	const struct desc *d = desc_match(p->descs, s->dev->model);
	/* The file meant for this model failed to load (GET /api descriptions
	 * says why): no description, rather than a less specific one's layout. */
	const struct desc_error *bad = desc_broken_for(p->descs, s->dev->model, d);
	char msg[160];

	if (bad)
		d = NULL;
	else if (!d && s->dev->cls == CLASS_GENERIC)
		d = p->generic;
	if (!d) {
		if (bad)
			snprintf(s->dev->last_error, sizeof(s->dev->last_error),
				 "no description for model '%s': %.40s is broken", s->dev->model,
				 bad->file);
		else
			snprintf(s->dev->last_error, sizeof(s->dev->last_error),
				 "no description for model '%s'", s->dev->model);
		if (s->dev->health != DEV_UNKNOWN_MODEL) {
			snprintf(msg, sizeof(msg), "%s: %s", s->dev->ifname, s->dev->last_error);
			log_warn("%s", msg);
			log_event(p, s, "error", msg);
		}
		s->dev->health = DEV_UNKNOWN_MODEL;
		schedule(p, s, 60000);
		return;
	}
	if (s->dev->d != d) { /* another model: nothing read before applies */
		memset(s->blk, 0, sizeof(s->blk));
		memset(s->dev->meas_ok, 0, sizeof(s->dev->meas_ok));
		memset(s->dev->ctr_ok, 0, sizeof(s->dev->ctr_ok));
		s->dev->meas_ms = s->dev->ctr_ms = 0;
		s->dev->meas_seq = reg_next_seq(p->reg);
		s->dev->ctr_seq = reg_next_seq(p->reg);
	}
	s->dev->d = d;
	log_info("%s: %s serial %s at address %u (%s)", s->dev->ifname, s->dev->model,
		 s->dev->serial, s->dev->addr, d->name);
	build_cfg_chain(s);
	start_chain(p, s);
}

/* Oldest read time of cycle blocks first…end-1; 0 when none was read. */
static int64_t oldest_read(const struct pslot *s, unsigned first, unsigned end)
{
	int64_t ms = 0;

	for (unsigned i = first; i < end && i < CHAIN_MAX; i++)
		if (s->blk[i].read_ms && (!ms || s->blk[i].read_ms < ms))
			ms = s->blk[i].read_ms;
	return ms;
}

/* Apply the read results staged for cycle blocks first…end-1, each block
 * with the time it was read. */
static void apply_staged(struct poll *p, struct pslot *s, unsigned first, unsigned end)
{
	for (unsigned i = first; i < end && i < s->nchain; i++) {
		if (!s->staged[i])
			continue;
		dev_apply_block(s->dev, s->chain[i].space, s->chain[i].start, s->chain[i].count,
				s->stage[i]);
		s->blk[i].read_ms = s->stage_ms[i];
		s->blk[i].fails = 0;
		if (i < s->nmeas_chain)
			s->dev->meas_seq = reg_next_seq(p->reg);
		else
			s->dev->ctr_seq = reg_next_seq(p->reg);
		s->staged[i] = false;
	}
}

/* The measurement part of a cycle (measurement blocks and relay) was
 * answered and counter blocks follow: its values and meas_ms apply together
 * now and subscribers hear of them (a due measurements push need not wait for
 * the counter reads). Failed blocks keep their values and read times; fails
 * and health are judged when the whole cycle ends, by cycle_done. */
static void meas_done(struct poll *p, struct pslot *s)
{
	apply_staged(p, s, 0, s->nmeas_chain);
	s->dev->meas_ms = oldest_read(s, 0, s->nmeas_chain);
	s->meas_told = true;
	notify(p, s, DEV_UPD_MEAS);
}

/* Every block was answered (data or exception). A block read applies its
 * values with the time it was read; a failed one keeps its values and read
 * time, and after SCHED_FAILS_DOWN failures in a row makes the device a
 * "read error": an answer is not a reading. */
static void cycle_done(struct poll *p, struct pslot *s)
{
	bool ctr_all = s->ctr_in_cycle;
	unsigned first;

	for (unsigned i = s->nmeas_chain; i < s->nchain; i++)
		ctr_all &= s->staged[i];
	/* the measurement part, unless meas_done applied it already */
	apply_staged(p, s, 0, s->nchain);
	s->dev->meas_ms = oldest_read(s, 0, s->nmeas_chain);
	s->dev->ctr_ms = oldest_read(s, s->nmeas_chain, s->nmeas_chain + s->dev->d->nctr_blocks);
	/* counters that failed are asked again next cycle, not an interval later */
	if (ctr_all)
		s->last_ctr_mono = s->cycle_start;
	s->dev->fails = 0; /* it answered */
	if (failing_blocks(s, &first))
		mark_read_error(p, s);
	else
		mark_up(p, s);
	notify(p, s, s->meas_told ? DEV_UPD_CTR : DEV_UPD_ALL);
	/* lock-step tests: the next reading is one step later */
	if (s->ctr_in_cycle)
		clock_lockstep_advance();
	schedule(p, s, p->meas_interval_ms - (clock_mono_ms() - s->cycle_start));
}

static void chain_complete(struct poll *p, struct pslot *s)
{
	switch (s->kind) {
	case CHAIN_IDENT:
		identified(p, s);
		break;
	case CHAIN_CFG:
		s->need_ident = false;
		/* after an outage, "ok" waits for a cycle that reads */
		if (s->dev->health != DEV_NOT_RESPONDING && s->dev->health != DEV_READ_ERROR)
			mark_up(p, s);
		s->last_ctr_mono = 0;
		schedule(p, s, 0);
		break;
	case CHAIN_CYCLE:
		cycle_done(p, s);
		break;
	}
}

static void store_result(struct poll *p, struct pslot *s, const struct desc_block *b,
			 const struct bus_txn *t)
{
	if (s->kind == CHAIN_IDENT) {
		dev_apply_ident(s->dev, p->generic, b->space, b->start, b->count, t->regs);
	} else if (s->kind == CHAIN_CYCLE) {
		memcpy(s->stage[s->pos], t->regs, b->count * sizeof(t->regs[0]));
		s->staged[s->pos] = true;
		s->stage_ms[s->pos] = clock_wall_ms();
	} else {
		dev_apply_block(s->dev, b->space, b->start, b->count, t->regs);
	}
	regcache_put(&s->dev->cache, b->space, b->start, b->count, t->regs, clock_mono_ms());
}

static void on_txn_done(struct bus_txn *t, void *arg)
{
	struct pslot *s = arg;
	struct poll *p = s->poll;
	const struct desc_block *b = &s->chain[s->pos];

	s->busy = false;
	if (t->err == -ECANCELED || p->stopping)
		return;
	if (s->txn_gen != s->gen) { /* reconfigured while in flight */
		start_chain(p, s);
		return;
	}
	s->dev->txns++;
	if (t->err == 0) {
		s->dev->latency_ms = t->latency_ms;
		store_result(p, s, b, t);
	} else {
		s->dev->errors++;
		block_error_text(b, t->err, s->dev->last_error, sizeof(s->dev->last_error));
		/* a scan holding the bus is not the device's fault (as in chain_failed) */
		if (s->kind == CHAIN_CYCLE && !slot_paused(p, s)) {
			s->blk[s->pos].b = *b;
			s->blk[s->pos].err = t->err;
			s->blk[s->pos].fails++;
		}
		/* An exception is an answer: the chain goes on with the other
		 * blocks (the failed one counted above); only the model read of an
		 * identification is required. */
		if (!is_exception(t->err) || (s->kind == CHAIN_IDENT && s->pos == 0)) {
			chain_failed(p, s);
			return;
		}
	}
	s->pos++;
	if (s->pos >= s->nchain) {
		chain_complete(p, s);
		return;
	}
	start_chain(p, s);
	/* The first counter block is on its way: tell the measurements meanwhile.
	 * Not before the counters were ever read: the first update of a device
	 * (which announces it to Home Assistant) carries both documents. */
	if (s->kind == CHAIN_CYCLE && s->pos == s->nmeas_chain && s->dev->ctr_ms && !p->stopping)
		meas_done(p, s);
}

/* Submit the chain's current block. */
static void start_chain(struct poll *p, struct pslot *s)
{
	struct bus *b = p->buses[s->dev->bus];
	const struct desc_block *blk;
	int r;

	if (p->stopping || s->busy || s->dev->health == DEV_DISABLED)
		return;
	if (!b) {
		snprintf(s->dev->last_error, sizeof(s->dev->last_error),
			 "no serial port configured");
		s->dev->health = DEV_NOT_RESPONDING;
		return;
	}
	if (s->pos >= s->nchain) {
		chain_complete(p, s);
		return;
	}
	blk = &s->chain[s->pos];
	memset(&s->txn, 0, offsetof(struct bus_txn, regs));
	s->txn.unit = slot_unit(s);
	s->txn.fc = read_fc(blk->space);
	s->txn.addr = blk->start;
	s->txn.count = blk->count;
	s->txn.done = on_txn_done;
	s->txn.arg = s;
	s->txn_gen = s->gen;
	/* A started chain goes on before the next device's begins: its blocks
	 * are read close together, so its values reach subscribers fresh. */
	r = s->pos > 0 ? bus_submit_next(b, &s->txn) : bus_submit(b, &s->txn, BUS_PRIO_LOW);
	if (r < 0) {
		log_warn("%s: cannot queue poll: %s", s->dev->ifname, strerror(-r));
		schedule(p, s, 1000);
		return;
	}
	s->busy = true;
}

static void on_timer(void *arg)
{
	struct pslot *s = arg;
	struct poll *p = s->poll;
	int64_t now = clock_mono_ms();

	s->timer = 0;
	if (p->stopping || s->busy || s->dev->health == DEV_DISABLED)
		return;
	if (slot_paused(p, s)) {
		schedule(p, s, 500);
		return;
	}
	/* Identify first; re-identify after an outage (the meter may have been swapped). */
	if (!s->dev->d || s->need_ident || s->dev->health == DEV_UNKNOWN_MODEL)
		build_ident_chain(p, s);
	else
		build_cycle_chain(p, s,
				  sched_counters_due(now, s->last_ctr_mono, p->ctr_interval_ms));
	s->cycle_start = now;
	start_chain(p, s);
}

/* Something (a scan) owns the slot's bus: background reads wait. */
static bool slot_paused(const struct poll *p, const struct pslot *s)
{
	return reg_bus_busy(p->reg, s->dev->bus);
}

static void schedule(struct poll *p, struct pslot *s, int64_t delay_ms)
{
	if (s->timer)
		loop_timer_cancel(p->loop, s->timer);
	s->timer = loop_timer_add(p->loop, delay_ms > 0 ? delay_ms : 0, on_timer, s);
	if (s->timer < 0)
		s->timer = 0;
}

int poll_init(struct poll **out, struct loop *l, struct reg *reg, struct bus *const *buses,
	      const struct desc_set *descs, struct store *st, int right_ir_addr)
{
	struct poll *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->generic = desc_find(descs, "Generic");
	if (!p->generic) {
		free(p);
		return -ENOENT;
	}
	p->loop = l;
	p->reg = reg;
	for (int i = 0; i < CONF_BUS_COUNT; i++)
		p->buses[i] = buses[i];
	p->descs = descs;
	p->store = st;
	p->right_ir_addr = right_ir_addr;
	p->meas_interval_ms = 1000;
	p->ctr_interval_ms = 10000;
	for (int i = 0; i < DEV_SLOTS; i++) {
		p->slot[i].poll = p;
		p->slot[i].dev = reg_dev_w(reg, i);
	}
	*out = p;
	return 0;
}

void poll_quiesce(struct poll *p)
{
	p->stopping = true;
	for (int i = 0; i < DEV_SLOTS; i++) {
		if (p->slot[i].timer)
			loop_timer_cancel(p->loop, p->slot[i].timer);
		p->slot[i].timer = 0;
	}
	poll_ops_quiesce(p);
}

void poll_fini(struct poll *p)
{
	if (!p)
		return;
	poll_quiesce(p);
	free(p);
}

struct bus *poll_slot_bus(const struct poll *p, int slot)
{
	return slot >= 0 && slot < DEV_SLOTS ? p->buses[p->slot[slot].dev->bus] : NULL;
}

/* Restart a slot whose configuration changed: forget what was read. */
static void slot_apply(struct poll *p, struct pslot *s, const struct slot_cfg *c)
{
	bool same = s->dev->cls == c->cls && s->dev->addr == c->addr;

	snprintf(s->dev->cfg_description, sizeof(s->dev->cfg_description), "%s", c->description);
	if (same && s->dev->health != DEV_DISABLED)
		return;
	if (same && c->cls == CLASS_NONE)
		return;
	reg_slot_reset(p->reg, s->dev->slot, c->cls, c->addr);
	snprintf(s->dev->cfg_description, sizeof(s->dev->cfg_description), "%s", c->description);
	s->gen++;
	s->last_ctr_mono = 0;
	s->need_ident = false;
	memset(s->blk, 0, sizeof(s->blk));
	if (s->timer)
		loop_timer_cancel(p->loop, s->timer);
	s->timer = 0;
	if (c->cls == CLASS_NONE)
		return;
	if (!s->busy)
		schedule(p, s, 0);
}

void poll_configure(struct poll *p, const struct settings *st)
{
	struct slot_cfg cfg[DEV_SLOTS];

	poll_settings_to_cfg(p, st, cfg);
	p->meas_interval_ms = settings_int(st, "poll_meas_interval") * clock_poll_second_ms();
	p->ctr_interval_ms = settings_int(st, "poll_counter_interval") * clock_poll_second_ms();
	poll_apply_rs485_line(p, st);
	for (int i = 0; i < DEV_SLOTS; i++)
		slot_apply(p, &p->slot[i], &cfg[i]);
}
