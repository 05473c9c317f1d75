/* Forwarding Modbus TCP requests to the devices on the lines. Each line has a
 * FIFO of waiting requests and at most MB_BUS_DEPTH of them in the bus queue
 * at once (high priority, ahead of background polling). Every client has at
 * most one request here at a time, so the FIFO serves clients in turn: a
 * client that pipelines many requests cannot starve another. Reads that a
 * recent background poll (or forwarded read) already answered come from the
 * device's register cache when the slot's freshness limit allows. A read
 * identical to one still waiting for its line rides along with it: the bus
 * read happens after both arrived, so even freshness 0 ("always the bus")
 * holds, and several masters reading the same registers cost one transaction. */
#include "modbus_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sg/clock.h"
#include "sg/log.h"

static bool is_write(uint8_t fc)
{
	return fc == 5 || fc == 6 || fc == 15 || fc == 16 || fc == 23;
}

static void answer_exc(struct mbconn *c, uint16_t tid, uint8_t unit, uint8_t fc, uint8_t code)
{
	uint8_t pdu[2];

	c->m->n.exceptions++;
	mb_conn_reply(c, tid, unit, pdu, mbpdu_exception(fc, code, pdu));
}

static bool from_cache(struct modbus *m, struct mbconn *c, struct gwreq *r)
{
	const struct dev *d = reg_dev(m->ctx.reg, r->slot);
	int ms = m->cache_ms[r->slot];
	uint8_t pdu[MB_PDU_MAX];

	if (ms <= 0 || (r->fc != 3 && r->fc != 4))
		return false;
	if (!regcache_get(&d->cache, r->fc == 3 ? SPACE_HOLDING : SPACE_INPUT, r->txn.addr,
			  r->txn.count, clock_mono_ms() - ms, r->txn.regs))
		return false;
	m->n.cache_hits++;
	mb_conn_reply(c, r->tid, r->unit, pdu, mbpdu_response(&r->txn, pdu));
	return true;
}

static void on_done(struct bus_txn *t, void *arg);

static void free_req(struct gwreq *r)
{
	for (struct gwreq *f = r->followers, *next; f; f = next) {
		next = f->next;
		free(f);
	}
	free(r);
}

/* Answer r's followers like r (t carries the result) and free them. */
static void answer_followers(struct gwreq *r, const struct bus_txn *t)
{
	uint8_t pdu[MB_PDU_MAX];

	for (struct gwreq *f = r->followers, *next; f; f = next) {
		struct mbconn *c = f->conn;

		next = f->next;
		if (c) {
			if (t->err == 0)
				mb_conn_reply(c, f->tid, f->unit, pdu, mbpdu_response(t, pdu));
			else
				answer_exc(c, f->tid, f->unit, f->fc, mbpdu_err_code(t->err));
			c->req = NULL;
		}
		free(f);
		if (c)
			mb_conn_resume(c);
	}
	r->followers = NULL;
}

static bool is_read(uint8_t fc)
{
	return fc >= 1 && fc <= 4;
}

/* A waiting read of the same registers that r can ride along with. */
static struct gwreq *leader_for(struct modbus *m, const struct gwreq *r)
{
	if (!is_read(r->fc))
		return NULL;
	for (struct gwreq *w = m->line[r->bus].head; w; w = w->next)
		if (w->unit == r->unit && w->fc == r->fc && w->txn.addr == r->txn.addr &&
		    w->txn.count == r->txn.count)
			return w;
	return NULL;
}

/* Move waiting requests of a line into its bus queue. */
static void dispatch(struct modbus *m, int bus)
{
	struct bus *b = m->ctx.buses[bus];

	while (m->line[bus].head && m->line[bus].inflight < MB_BUS_DEPTH) {
		struct gwreq *r = m->line[bus].head;
		int err;

		m->line[bus].head = r->next;
		if (!m->line[bus].head)
			m->line[bus].tail = NULL;
		r->next = NULL;
		if (!r->conn && !r->followers) { /* the client left while it waited */
			free(r);
			continue;
		}
		r->txn.done = on_done;
		r->txn.arg = r;
		err = bus_submit(b, &r->txn, BUS_PRIO_HIGH);
		if (err == 0) {
			m->line[bus].inflight++;
			r->next = m->running;
			m->running = r;
			continue;
		}
		r->txn.err = err;
		answer_followers(r, &r->txn);
		if (r->conn) {
			answer_exc(r->conn, r->tid, r->unit, r->fc, mbpdu_err_code(err));
			r->conn->req = NULL;
			mb_conn_resume(r->conn);
		}
		free(r);
	}
}

static void on_done(struct bus_txn *t, void *arg)
{
	struct gwreq *r = arg;
	struct modbus *m = r->m;
	struct mbconn *c = r->conn;
	uint8_t pdu[MB_PDU_MAX];

	(void)t;
	if (r->orphan) {
		free_req(r);
		return;
	}
	m->line[r->bus].inflight--;
	for (struct gwreq **pp = &m->running; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	/* A write may have happened even when the answer was lost. */
	if (is_write(r->fc))
		reg_cache_clear(m->ctx.reg, r->slot);
	if (r->txn.err == 0 && (r->fc == 3 || r->fc == 4))
		reg_cache_put(m->ctx.reg, r->slot, r->fc == 3 ? SPACE_HOLDING : SPACE_INPUT,
			      r->txn.addr, r->txn.count, r->txn.regs);
	answer_followers(r, &r->txn);
	if (c) {
		if (r->txn.err == 0)
			mb_conn_reply(c, r->tid, r->unit, pdu, mbpdu_response(&r->txn, pdu));
		else
			answer_exc(c, r->tid, r->unit, r->fc, mbpdu_err_code(r->txn.err));
		c->req = NULL;
	}
	dispatch(m, r->bus);
	free(r);
	if (c)
		mb_conn_resume(c);
}

bool mb_gateway_request(struct modbus *m, struct mbconn *c, uint16_t tid, uint8_t unit,
			const uint8_t *pdu, size_t len)
{
	uint8_t fc = len ? pdu[0] : 0;
	struct gwreq *r;
	int slot, code, bus;

	slot = unit == 0 ? -1 : reg_slot_of_unit(m->ctx.reg, unit);
	if (slot < 0 || !poll_slot_bus(m->ctx.poll, slot)) {
		answer_exc(c, tid, unit, fc, MB_EX_GW_PATH);
		return true;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		answer_exc(c, tid, unit, fc, MB_EX_BUSY);
		return true;
	}
	code = mbpdu_to_txn(pdu, len, &r->txn);
	if (code) {
		free(r);
		answer_exc(c, tid, unit, fc, (uint8_t)code);
		return true;
	}
	bus = reg_dev(m->ctx.reg, slot)->bus;
	r->m = m;
	r->conn = c;
	r->slot = slot;
	r->bus = bus;
	r->tid = tid;
	r->unit = unit;
	r->fc = fc;
	r->txn.unit = unit;
	if (from_cache(m, c, r)) {
		free(r);
		return true;
	}
	if (reg_bus_busy(m->ctx.reg, (enum conf_bus)bus)) {
		free(r);
		answer_exc(c, tid, unit, fc, MB_EX_BUSY);
		return true;
	}
	c->req = r;
	struct gwreq *lead = leader_for(m, r);

	if (lead) {
		m->n.coalesced++;
		r->next = lead->followers;
		lead->followers = r;
		return false;
	}
	m->n.forwarded++;
	if (m->line[bus].tail)
		m->line[bus].tail->next = r;
	else
		m->line[bus].head = r;
	m->line[bus].tail = r;
	dispatch(m, bus);
	return c->req == NULL;
}

void mb_gateway_forget(struct gwreq *r)
{
	r->conn = NULL;
}

void mb_gateway_fini(struct modbus *m)
{
	for (int bus = 0; bus < CONF_BUS_COUNT; bus++) {
		struct gwreq *r = m->line[bus].head, *next;

		for (; r; r = next) {
			next = r->next;
			free_req(r);
		}
		m->line[bus].head = m->line[bus].tail = NULL;
	}
	for (struct gwreq *r = m->running; r; r = r->next)
		r->orphan = true; /* the bus hands them back when it stops */
	m->running = NULL;
}
