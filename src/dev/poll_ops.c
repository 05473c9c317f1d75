/* On-demand operations: Bicom switching, raw Modbus transactions, RS485 scan
 * and set-parameters. They queue at high priority, so they overtake
 * background polling on their bus. */
#include "poll_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/log.h"
#include "sg/sched.h"

enum op_kind { OP_BICOM, OP_MODBUS, OP_SCAN, OP_SETPARAM };

struct op {
	struct op *next;
	struct poll *p;
	enum op_kind kind;
	struct bus_txn txn;
	struct bus_txn *user; /* OP_MODBUS: the caller's transaction */
	struct bus *bus;
	poll_result_cb cb;
	void *arg;
	int step;
	/* Bicom */
	int slot;
	enum bicom_op bop;
	const struct desc *d;
	/* scan */
	int cur, last;
	bool retry; /* cur is being asked a second time */
	struct bus_params line;
	json_t *found;
	struct desc_block probe;
	/* set-parameters */
	int addr, new_addr, baud_code, parity, stop_code;
	struct desc_block comm;
};

static void op_link(struct poll *p, struct op *o)
{
	o->next = p->ops;
	p->ops = o;
}

static void op_finish(struct op *o, int err, const char *msg, json_t *res)
{
	struct op **pp = &o->p->ops;

	while (*pp && *pp != o)
		pp = &(*pp)->next;
	if (*pp)
		*pp = o->next;
	o->cb(err, msg, res, o->arg);
	json_decref(o->found);
	free(o);
}

static void op_fail_txn(struct op *o, int err)
{
	char buf[96], msg[160];

	snprintf(msg, sizeof(msg), "device at address %u: %s", o->txn.unit,
		 bus_strerror(err, buf, sizeof(buf)));
	op_finish(o, err, msg, NULL);
}

static int op_submit(struct op *o, bus_done_cb done)
{
	o->txn.done = done;
	o->txn.arg = o;
	return bus_submit(o->bus, &o->txn, BUS_PRIO_HIGH);
}

static void txn_setup(struct bus_txn *t, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count)
{
	memset(t, 0, offsetof(struct bus_txn, regs));
	t->unit = unit;
	t->fc = fc;
	t->addr = addr;
	t->count = count;
}

void poll_ops_quiesce(struct poll *p)
{
	(void)p; /* operations finish through bus_stop()'s cancellations */
}

/* ---- Bicom ---- */

static void bicom_read(struct op *o);

static void bicom_reply(struct op *o)
{
	struct pslot *s = &o->p->slot[o->slot];
	int addr = o->slot == DEV_SLOT_RIGHT_IR ? 0 : s->dev->addr;

	op_finish(o, 0, NULL,
		  json_pack("{s:i, s:s}", "bicom", addr, "state", s->dev->relay ? "on" : "off"));
}

static void bicom_written(struct bus_txn *t, void *arg)
{
	struct op *o = arg;

	if (t->err)
		op_fail_txn(o, t->err);
	else
		bicom_read(o); /* read back: report what the relay really did */
}

static void bicom_write(struct op *o, bool on)
{
	const struct desc_field *f = &o->d->relay;
	uint16_t v = on ? o->d->relay_on : o->d->relay_off;
	int r;

	txn_setup(&o->txn, o->p->slot[o->slot].dev->addr, f->space == SPACE_COIL ? 5 : 6, f->reg,
		  1);
	o->txn.val[0] = v;
	o->step = 2;
	r = op_submit(o, bicom_written);
	if (r < 0)
		op_finish(o, r, "bus queue full", NULL);
}

static void bicom_state_read(struct bus_txn *t, void *arg)
{
	struct op *o = arg;
	struct pslot *s = &o->p->slot[o->slot];
	uint16_t v = o->d->relay.space == SPACE_COIL ? t->bits[0] : t->regs[0];

	if (t->err) {
		op_fail_txn(o, t->err);
		return;
	}
	s->dev->relay = v == o->d->relay_on ? 1 : 0;
	if (o->step == 0 && o->bop == BICOM_TOGGLE)
		bicom_write(o, !s->dev->relay);
	else
		bicom_reply(o);
}

static void bicom_read(struct op *o)
{
	const struct desc_field *f = &o->d->relay;
	int r;

	txn_setup(&o->txn, o->p->slot[o->slot].dev->addr, f->space == SPACE_COIL ? 1 : 3, f->reg,
		  1);
	r = op_submit(o, bicom_state_read);
	if (r < 0)
		op_finish(o, r, "bus queue full", NULL);
}

static int bicom_check(struct poll *p, int slot, const struct desc **d)
{
	const struct dev *dv;

	dv = reg_dev(p->reg, slot);
	if (!dv || dv->cls != CLASS_BICOM)
		return -ENOENT;
	*d = dv->d ? dv->d : desc_find(p->descs, "Bicom");
	if (!*d || !(*d)->relay.present)
		return -ENOTSUP;
	if (!p->buses[dv->bus])
		return -ENODEV;
	return 0;
}

int poll_bicom(struct poll *p, int slot, enum bicom_op op, poll_result_cb cb, void *arg)
{
	const struct desc *d;
	struct op *o;
	int r = bicom_check(p, slot, &d);

	if (r < 0)
		return r;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (struct op){.p = p,
			 .kind = OP_BICOM,
			 .cb = cb,
			 .arg = arg,
			 .slot = slot,
			 .bop = op,
			 .d = d,
			 .bus = p->buses[p->slot[slot].dev->bus]};
	op_link(p, o);
	if (op == BICOM_ON || op == BICOM_OFF)
		bicom_write(o, op == BICOM_ON);
	else
		bicom_read(o);
	return 0;
}

/* ---- raw Modbus ---- */

static void modbus_done(struct bus_txn *t, void *arg)
{
	struct op *o = arg;
	char buf[96];

	o->user->err = t->err;
	if (t->err)
		op_finish(o, t->err, bus_strerror(t->err, buf, sizeof(buf)), NULL);
	else
		op_finish(o, 0, NULL, NULL);
}

/* Which bus a Modbus address means: 0 is the Left IR device; an enabled RS485
 * slot's address is RS485; else the Left IR device if it has that address;
 * anything else goes to RS485 (devices found by a scan but not added). */
static struct bus *route(struct poll *p, int addr, uint8_t *unit)
{
	const struct dev *ir = reg_dev(p->reg, DEV_SLOT_LEFT_IR);

	*unit = (uint8_t)addr;
	if (addr == 0) {
		*unit = (uint8_t)p->left_ir_addr;
		return p->buses[CONF_BUS_LEFT_IR];
	}
	for (int n = 1; n <= 16; n++) {
		const struct dev *d = reg_dev(p->reg, DEV_SLOT_RS485(n));

		if (d->cls != CLASS_NONE && d->addr == addr)
			return p->buses[CONF_BUS_RS485];
	}
	if (ir->cls != CLASS_NONE && ir->addr == addr)
		return p->buses[CONF_BUS_LEFT_IR];
	return p->buses[CONF_BUS_RS485];
}

int poll_modbus(struct poll *p, int addr, struct bus_txn *t, poll_result_cb cb, void *arg)
{
	struct op *o;
	uint8_t unit;
	struct bus *b;
	int r;

	if (addr < 0 || addr > 247)
		return -EINVAL;
	if (reg_bus_busy(p->reg, CONF_BUS_RS485))
		return -EBUSY;
	b = route(p, addr, &unit);
	if (!b)
		return -ENODEV;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (struct op){.p = p, .kind = OP_MODBUS, .cb = cb, .arg = arg, .user = t, .bus = b};
	t->unit = unit;
	t->done = modbus_done;
	t->arg = o;
	r = bus_submit(b, t, BUS_PRIO_HIGH);
	if (r < 0) {
		free(o);
		return r;
	}
	op_link(p, o);
	return 0;
}

/* ---- RS485 scan ---- */

/* The register span covering the present fields in space; a field elsewhere
 * is skipped, or refused when strict. */
static int field_span(const struct desc_field *const *f, unsigned n, enum desc_space space,
		      bool strict, struct desc_block *out)
{
	unsigned lo = 65535, hi = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned w = f[i]->type == DEC_STRING ? f[i]->words : dec_type_words(f[i]->type);

		if (!f[i]->present)
			continue;
		if (f[i]->space != space) {
			if (strict)
				return -ENOTSUP;
			continue;
		}
		lo = f[i]->reg < lo ? f[i]->reg : lo;
		hi = f[i]->reg + w > hi ? f[i]->reg + w : hi;
	}
	if (hi == 0 || hi - lo > 123)
		return -ENOTSUP;
	*out = (struct desc_block){space, (uint16_t)lo, (uint16_t)(hi - lo)};
	return 0;
}

/* A scan probe reads model, serial and SW version in one request. */
static int probe_block(const struct desc *g, struct desc_block *b)
{
	const struct desc_field *f[] = {&g->id_model, &g->id_serial, &g->id_sw_version};

	return field_span(f, 3, g->id_model.space, false, b);
}

static void scan_next(struct op *o);

static void scan_end(struct op *o)
{
	struct poll *p = o->p;
	json_t *res = json_pack("{s:O}", "devices", o->found);

	reg_bus_release(p->reg, CONF_BUS_RS485);
	bus_set_params(o->bus, &p->rs485_line);
	op_finish(o, 0, NULL, res);
}

static json_t *scan_entry(struct op *o, const struct bus_txn *t)
{
	static const char *const par[] = {"none", "odd", "even"};
	struct dev tmp;

	dev_reset(&tmp, DEV_SLOT_RS485(1));
	dev_apply_ident(&tmp, o->p->generic, o->probe.space, o->probe.start, o->probe.count,
			t->regs);
	return json_pack("{s:i, s:s, s:s, s:i, s:i, s:s, s:i}", "address", t->unit, "model",
			 tmp.model, "serial", tmp.serial, "sw_ver", tmp.sw_ver, "baud",
			 o->line.baud, "parity",
			 par[o->line.parity == 'O'   ? 1
			     : o->line.parity == 'E' ? 2
						     : 0],
			 "stop_bits", o->line.stop_bits);
}

static void scan_probed(struct bus_txn *t, void *arg)
{
	struct op *o = arg;

	if (t->err == -ECANCELED) {
		reg_bus_release(o->p->reg, CONF_BUS_RS485);
		op_finish(o, -ECANCELED, "cancelled", NULL);
		return;
	}
	if ((t->err == -ETIMEDOUT || t->err == -EBADMSG) && !o->retry) {
		/* silence or a mangled reply may be noise on the line or a
		 * device busy for a moment: ask once more before calling the
		 * address empty */
		o->retry = true;
		scan_next(o);
		return;
	}
	if (t->err == 0)
		json_array_append_new(o->found, scan_entry(o, t));
	else if (t->err <= -BUS_EXCEPTION_BASE) /* answered, but not an Iskra layout */
		json_array_append_new(o->found, json_pack("{s:i, s:s, s:s}", "address", t->unit,
							  "model", "", "serial", ""));
	o->cur++;
	o->retry = false;
	scan_next(o);
}

static void scan_next(struct op *o)
{
	int r;

	if (o->cur > o->last) {
		scan_end(o);
		return;
	}
	txn_setup(&o->txn, (uint8_t)o->cur, o->probe.space == SPACE_HOLDING ? 3 : 4, o->probe.start,
		  o->probe.count);
	o->txn.timeout_ms = sched_scan_timeout_ms(o->line.baud);
	r = op_submit(o, scan_probed);
	if (r < 0) {
		reg_bus_release(o->p->reg, CONF_BUS_RS485);
		bus_set_params(o->bus, &o->p->rs485_line);
		op_finish(o, r, "bus queue full", NULL);
	}
}

int poll_scan(struct poll *p, int baud, char parity, int stop_bits, int first, int last,
	      poll_result_cb cb, void *arg)
{
	struct bus *b = p->buses[CONF_BUS_RS485];
	struct op *o;

	if (!b)
		return -ENODEV;
	if (reg_bus_busy(p->reg, CONF_BUS_RS485))
		return -EBUSY;
	if (first < 1 || last > 247 || first > last)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (struct op){.p = p,
			 .kind = OP_SCAN,
			 .cb = cb,
			 .arg = arg,
			 .bus = b,
			 .cur = first,
			 .last = last,
			 .found = json_array()};
	o->line = p->rs485_line.device[0] ? p->rs485_line : *bus_params(b);
	if (baud > 0)
		o->line.baud = baud;
	if (parity)
		o->line.parity = parity;
	if (stop_bits)
		o->line.stop_bits = stop_bits;
	if (!p->rs485_line.device[0])
		p->rs485_line = *bus_params(b);
	if (probe_block(p->generic, &o->probe) < 0) {
		json_decref(o->found);
		free(o);
		return -ENOTSUP;
	}
	if (reg_bus_claim(p->reg, CONF_BUS_RS485) < 0) {
		json_decref(o->found);
		free(o);
		return -EBUSY;
	}
	bus_set_params(b, &o->line);
	op_link(p, o);
	log_info("RS485 scan %d…%d at %d baud", first, last, o->line.baud);
	scan_next(o);
	return 0;
}

/* ---- set-parameters ---- */

static void setparam_written(struct bus_txn *t, void *arg)
{
	struct op *o = arg;

	if (t->err) {
		op_fail_txn(o, t->err);
		return;
	}
	op_finish(o, 0, NULL,
		  json_pack("{s:i, s:i, s:i, s:i}", "address", o->new_addr, "baud_rate",
			    o->baud_code, "parity", o->parity, "stop_bits", o->stop_code));
}

static void put_comm(struct op *o, const struct desc_field *f, int v, int *cur)
{
	if (!f->present)
		return;
	if (v >= 0)
		o->txn.val[f->reg - o->comm.start] = (uint16_t)v;
	*cur = o->txn.val[f->reg - o->comm.start];
}

static void setparam_read(struct bus_txn *t, void *arg)
{
	struct op *o = arg;
	const struct desc *d = o->d;
	int r;

	if (t->err) {
		op_fail_txn(o, t->err);
		return;
	}
	memcpy(o->txn.val, t->regs, o->comm.count * sizeof(uint16_t));
	put_comm(o, &d->comm_addr, o->new_addr, &o->new_addr);
	put_comm(o, &d->comm_baud, o->baud_code, &o->baud_code);
	put_comm(o, &d->comm_parity, o->parity, &o->parity);
	put_comm(o, &d->comm_stop, o->stop_code, &o->stop_code);
	if (!d->comm_addr.present)
		o->new_addr = o->addr;
	/* One multi-register write: the device switches all settings at once. */
	o->txn.fc = 16;
	o->txn.addr = o->comm.start;
	o->txn.count = o->comm.count;
	r = op_submit(o, setparam_written);
	if (r < 0)
		op_finish(o, r, "bus queue full", NULL);
}

static int comm_block(const struct desc *d, struct desc_block *b)
{
	const struct desc_field *f[] = {&d->comm_addr, &d->comm_baud, &d->comm_parity,
					&d->comm_stop, &d->comm_data};

	return field_span(f, 5, SPACE_HOLDING, true, b);
}

int poll_set_parameters(struct poll *p, int addr, const char *model, int new_addr, int baud_code,
			int parity, int stop_code, poll_result_cb cb, void *arg)
{
	const struct desc *d = desc_match(p->descs, model);
	struct bus *b = p->buses[CONF_BUS_RS485];
	struct desc_block blk;
	struct op *o;
	int r;

	if (!b)
		return -ENODEV;
	if (!d || comm_block(d, &blk) < 0 || (new_addr >= 0 && !d->comm_addr.present))
		return -ENOTSUP;
	if (reg_bus_busy(p->reg, CONF_BUS_RS485))
		return -EBUSY;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (struct op){.p = p,
			 .kind = OP_SETPARAM,
			 .cb = cb,
			 .arg = arg,
			 .bus = b,
			 .d = d,
			 .addr = addr,
			 .new_addr = new_addr,
			 .baud_code = baud_code,
			 .parity = parity,
			 .stop_code = stop_code,
			 .comm = blk};
	txn_setup(&o->txn, (uint8_t)addr, 3, blk.start, blk.count);
	r = op_submit(o, setparam_read);
	if (r < 0) {
		free(o);
		return r;
	}
	op_link(p, o);
	return 0;
}
