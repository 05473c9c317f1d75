/* Control commands of the simulator: one text line in, one JSON line out.
 * Tests use them to read what the devices serve, pin values and inject
 * faults. */
#include "sim.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ARGS 8
#define NOISE_MAX 65536

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT), *line = NULL;

	json_decref(j);
	if (s && asprintf(&line, "%s\n", s) < 0)
		line = NULL;
	free(s);
	return line;
}

static char *error(const char *msg)
{
	return dump(json_pack("{s:s}", "error", msg));
}

static char *ok(void)
{
	return dump(json_pack("{s:b}", "ok", 1));
}

/* Any device at addr, present or not (the control side sees them all). */
static struct sim_dev *find_dev(struct sim_bus *b, const char *arg)
{
	long addr;
	unsigned i;

	if (sim_parse_long(arg, 1, 247, &addr) < 0)
		return NULL;
	for (i = 0; i < b->ndev; i++)
		if (b->dev[i].addr == addr)
			return &b->dev[i];
	return NULL;
}

static json_t *relay_json(const struct sim_dev *dv)
{
	int st = sim_relay_state(dv);

	return st < 0 ? json_null() : json_string(st ? "on" : "off");
}

static json_t *meas_json(const struct sim_dev *dv)
{
	json_t *a = json_array();
	const struct desc_meas *m;
	unsigned i;
	double v;

	for (i = 0; i < dv->d->nmeas; i++) {
		m = &dv->d->meas[i];
		if (sim_meas_value(dv, i, &v) < 0)
			continue;
		json_array_append_new(a, json_pack("{s:s,s:i,s:f}", "qty", desc_qty_name(m->qty),
						   "phase", m->phase, "value", v));
	}
	return a;
}

/* The tariffs a counter's mask register holds, [1, …]; null without one. */
static json_t *ctr_tariffs(const struct sim_dev *dv, const struct desc_counter *c)
{
	json_t *a;
	double m;

	if (!c->tariff_mask.present || sim_field_number(dv, &c->tariff_mask, &m) < 0)
		return json_null();
	a = json_array();
	for (int t = 0; t < 16; t++)
		if ((unsigned)m & (1u << t))
			json_array_append_new(a, json_integer(t + 1));
	return a;
}

static json_t *ctr_json(const struct sim_dev *dv)
{
	json_t *a = json_array();
	const struct desc_counter *c;
	enum desc_unit u;
	enum desc_dir d;
	unsigned k;
	double v;

	for (k = 0; k < dv->d->nctr; k++) {
		c = &dv->d->ctr[k];
		if (sim_ctr_value(dv, k, &v, &u, &d) < 0)
			continue;
		json_array_append_new(a, json_pack("{s:i,s:s,s:b,s:f,s:s,s:s,s:i,s:o}", "index", k,
						   "name", c->name, "resettable", c->resettable,
						   "value", v, "unit", desc_unit_name(u),
						   "direction", desc_dir_name(d), "phase", c->phase,
						   "tariffs", ctr_tariffs(dv, c)));
	}
	return a;
}

static char *cmd_values(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 2 ? find_dev(b, av[1]) : NULL;
	char desc[64], loc[64], serial[32], model[32];
	double sw = 0;

	if (!dv)
		return error("usage: values ADDR (existing device)");
	sim_field_string(dv, &dv->d->id_model, model, sizeof(model));
	sim_field_string(dv, &dv->d->id_serial, serial, sizeof(serial));
	sim_field_string(dv, &dv->d->id_description, desc, sizeof(desc));
	sim_field_string(dv, &dv->d->id_location, loc, sizeof(loc));
	sim_field_number(dv, &dv->d->id_sw_version, &sw);
	return dump(json_pack("{s:i,s:s,s:s,s:s,s:i,s:s,s:s,s:b,s:o,s:o,s:o}", "address", dv->addr,
			      "model", model, "description_file", dv->d->name, "serial", serial,
			      "sw_version", (int)sw, "description", desc, "location", loc,
			      "present", dv->present, "relay", relay_json(dv), "measurements",
			      meas_json(dv), "counters", ctr_json(dv)));
}

static char *cmd_freeze(struct sim_bus *b, char **av, int ac)
{
	long v;

	if (ac != 2 || sim_parse_long(av[1], 0, 1, &v) < 0)
		return error("usage: freeze 1|0");
	b->frozen = v;
	return ok();
}

static int parse_qty(const char *s, enum desc_qty *out)
{
	int q;

	for (q = 0; q < QTY_COUNT; q++) {
		if (strcasecmp(s, desc_qty_name((enum desc_qty)q)) == 0) {
			*out = (enum desc_qty)q;
			return 0;
		}
	}
	return -EINVAL;
}

static char *cmd_set(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 5 ? find_dev(b, av[1]) : NULL;
	enum desc_qty q;
	long ph;
	double v;
	int rc;

	if (!dv || parse_qty(av[2], &q) < 0 || sim_parse_long(av[3], 0, 3, &ph) < 0 ||
	    sim_parse_double(av[4], &v) < 0)
		return error("usage: set ADDR QTY PHASE VALUE");
	rc = sim_dev_pin(dv, q, (unsigned)ph, v, b->t);
	if (rc == -ENOENT)
		return error("the device has no such measurement");
	if (rc < 0)
		return error("value not representable in the register type");
	return ok();
}

static char *cmd_unpin(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 2 ? find_dev(b, av[1]) : NULL;

	if (!dv)
		return error("usage: unpin ADDR");
	sim_dev_unpin(dv, b->t);
	return ok();
}

static const char *const fault_names[] = {
    [FAULT_NONE] = "none",	 [FAULT_NOANSWER] = "noanswer",	  [FAULT_CRC] = "crc",
    [FAULT_GARBAGE] = "garbage", [FAULT_EXCEPTION] = "exception", [FAULT_SLOW] = "slow",
};

/* "SPACE FIRST LAST" (av[0…2]) of a ranged fault. */
static int parse_fault_range(char **av, struct sim_dev *r)
{
	static const char *const spaces[] = {[SPACE_COIL] = "coil",
					     [SPACE_DISCRETE] = "discrete",
					     [SPACE_INPUT] = "input",
					     [SPACE_HOLDING] = "holding"};
	long first, last;
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(av[0], spaces[i]) == 0)
			break;
	if (i == 4 || sim_parse_long(av[1], 0, 65535, &first) < 0 ||
	    sim_parse_long(av[2], first, 65535, &last) < 0)
		return -EINVAL;
	r->fault_ranged = true;
	r->fault_space = (enum desc_space)i;
	r->fault_first = (unsigned)first;
	r->fault_last = (unsigned)last;
	return 0;
}

/* av: fault ADDR KIND [ARG] [SPACE FIRST LAST]; r gets the parsed fault. */
static int parse_fault(char **av, int ac, struct sim_dev *r)
{
	long arg = 0;
	int i, base = 3;

	for (i = 0; i <= FAULT_SLOW; i++)
		if (strcmp(av[2], fault_names[i]) == 0)
			break;
	if (i > FAULT_SLOW)
		return -EINVAL;
	r->fault = (enum sim_fault)i;
	if (r->fault == FAULT_EXCEPTION || r->fault == FAULT_SLOW) {
		if (ac < 4 || sim_parse_long(av[3], r->fault == FAULT_SLOW ? 0 : 1,
					     r->fault == FAULT_SLOW ? 600000 : 255, &arg) < 0)
			return -EINVAL;
		base = 4;
	} else if (r->fault == FAULT_NOANSWER && ac >= 4 &&
		   sim_parse_long(av[3], 1, 1000000, &arg) == 0) {
		base = 4; /* noanswer N: the next N requests only, then none */
	}
	r->fault_arg = (int)arg;
	r->fault_ranged = false;
	if (ac == base)
		return 0;
	if (ac != base + 3 || r->fault == FAULT_NONE)
		return -EINVAL;
	return parse_fault_range(av + base, r);
}

static char *cmd_fault(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac >= 3 ? find_dev(b, av[1]) : NULL;
	struct sim_dev r = {0};

	if (!dv || parse_fault(av, ac, &r) < 0)
		return error(
		    "usage: fault ADDR none|noanswer [N]|crc|garbage|exception CODE|slow MS "
		    "[coil|discrete|input|holding FIRST LAST]");
	dv->fault = r.fault;
	dv->fault_arg = r.fault_arg;
	dv->fault_ranged = r.fault_ranged;
	dv->fault_space = r.fault_space;
	dv->fault_first = r.fault_first;
	dv->fault_last = r.fault_last;
	return ok();
}

static char *cmd_present(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 3 ? find_dev(b, av[1]) : NULL;
	long v;

	if (!dv || sim_parse_long(av[2], 0, 1, &v) < 0)
		return error("usage: present ADDR 0|1");
	dv->present = v;
	return ok();
}

static char *cmd_noise(struct sim_bus *b, char **av, int ac)
{
	long n;

	if (ac != 2 || sim_parse_long(av[1], 0, NOISE_MAX, &n) < 0)
		return error("usage: noise N (0..65536)");
	rtu_noise(b, (size_t)n);
	return ok();
}

static char *cmd_baud(struct sim_bus *b, char **av, int ac)
{
	long v;

	if (ac != 2 || sim_parse_long(av[1], 300, 4000000, &v) < 0)
		return error("usage: baud RATE");
	sim_bus_set_baud(b, (unsigned)v);
	return ok();
}

static json_t *per_addr_json(const struct sim_bus *b)
{
	json_t *o = json_object();
	char key[8];
	unsigned i;
	const struct sim_dev *dv;

	for (i = 0; i < b->ndev; i++) {
		dv = &b->dev[i];
		snprintf(key, sizeof(key), "%u", dv->addr);
		json_object_set_new(o, key,
				    json_pack("{s:I,s:I,s:I}", "requests", (json_int_t)dv->requests,
					      "replies", (json_int_t)dv->replies, "exceptions",
					      (json_int_t)dv->exceptions));
	}
	return o;
}

static char *cmd_stats(struct sim_bus *b, char **av, int ac)
{
	(void)av;
	if (ac != 1)
		return error("usage: stats");
	return dump(json_pack("{s:I,s:I,s:I,s:I,s:f,s:i,s:i,s:b,s:I,s:s,s:o}", "frames",
			      (json_int_t)b->frames, "replies", (json_int_t)b->replies, "bad_crc",
			      (json_int_t)b->bad_crc, "dropped", (json_int_t)b->dropped, "wire_ms",
			      b->wire_us / 1000.0, "baud", (int)b->baud, "bits_per_char",
			      (int)b->bits_per_char, "frozen", b->frozen, "wall_ms",
			      (json_int_t)b->wall_ms, "clock", b->clock_driven ? "file" : "real",
			      "per_addr", per_addr_json(b)));
}

/* Every valid entry, newest first, decoded back from the served registers. */
static char *cmd_profile(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 2 ? find_dev(b, av[1]) : NULL;
	const struct desc_lprofile *lp;
	double v[DESC_LP_CH_MAX];
	json_t *entries, *vals;
	int64_t t;
	unsigned i, c;

	if (!dv)
		return error("usage: profile ADDR (existing device)");
	lp = &dv->d->lprof;
	if (!lp->present)
		return error("the device has no load profile");
	entries = json_array();
	for (i = 0; sim_lp_entry(dv, i, &t, v) == 0; i++) {
		vals = json_object();
		for (c = 0; c < lp->nch; c++)
			json_object_set_new(vals, sim_lp_channel_name(lp->ch[c].channel),
					    json_real(v[c]));
		json_array_append_new(
		    entries, json_pack("{s:I,s:o}", "time", (json_int_t)t, "values", vals));
	}
	return dump(json_pack("{s:o}", "entries", entries));
}

static char *cmd_counter(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 4 ? find_dev(b, av[1]) : NULL;
	long k;
	double v;
	int rc;

	if (!dv || sim_parse_long(av[2], 0, DESC_CTR_MAX - 1, &k) < 0 ||
	    sim_parse_double(av[3], &v) < 0)
		return error("usage: counter ADDR INDEX VALUE");
	rc = sim_dev_set_counter(dv, (unsigned)k, v);
	if (rc == -ENOENT)
		return error("the device has no such counter");
	if (rc < 0)
		return error("value not representable in the counter's registers");
	return ok();
}

static char *cmd_relay(struct sim_bus *b, char **av, int ac)
{
	struct sim_dev *dv = ac == 2 ? find_dev(b, av[1]) : NULL;

	if (!dv)
		return error("usage: relay ADDR");
	if (sim_relay_state(dv) < 0)
		return error("the device has no relay");
	return dump(json_pack("{s:o}", "relay", relay_json(dv)));
}

struct cmd {
	const char *name;
	char *(*fn)(struct sim_bus *b, char **av, int ac);
};

static const struct cmd cmds[] = {
    {"values", cmd_values}, {"freeze", cmd_freeze},   {"set", cmd_set},
    {"unpin", cmd_unpin},   {"fault", cmd_fault},     {"present", cmd_present},
    {"noise", cmd_noise},   {"baud", cmd_baud},	      {"stats", cmd_stats},
    {"relay", cmd_relay},   {"profile", cmd_profile}, {"counter", cmd_counter},
};

char *ctl_command(struct sim_bus *b, char *line)
{
	char *av[MAX_ARGS + 1], *save = NULL, *tok;
	int ac = 0;
	size_t i;

	for (tok = strtok_r(line, " \t\r\n", &save); tok && ac <= MAX_ARGS;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		av[ac++] = tok;
	/* a command sees the model at the daemon's current time, like a request */
	sim_clock_sync(b);
	if (ac == 0)
		return error("empty command");
	if (ac > MAX_ARGS)
		return error("too many arguments");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(av[0], cmds[i].name) == 0)
			return cmds[i].fn(b, av, ac);
	return error("unknown command");
}
