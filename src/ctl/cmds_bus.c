/* sgctl commands that talk to devices: scan, set-parameters, raw Modbus. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "sg/ctlsrv.h"
#include "sg/regnum.h"

static int num(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

struct scan_opts {
	int baud, stop;
	char parity;
	long first, last;
	bool add_all;
};

struct scan_add {
	struct app *app;
	struct ctl_client *c;
};

static int free_slot(json_t *pending, struct app *a, long addr)
{
	char key[32];
	int free_n = 0;

	for (int n = 16; n >= 1; n--) {
		const struct dev *d = poll_dev(a->poll, DEV_SLOT_RS485(n));

		snprintf(key, sizeof(key), "rs485_type_%d", n);
		if (d->cls != CLASS_NONE && d->addr == addr)
			return 0; /* already configured */
		if (d->cls == CLASS_NONE && !json_object_get(pending, key))
			free_n = n;
	}
	return free_n > 0 ? free_n : -ENOSPC;
}

/* "Add all" (R-A5): every found device not yet configured goes into a free
 * RS485 slot with its class from its description; the line settings become
 * those the scan found them at. One settings change, all or nothing. */
static json_t *plan_add_all(struct app *a, json_t *found, json_t *added)
{
	json_t *set = json_object(), *d;
	char key[32], desc[48];
	size_t i;

	json_array_foreach(found, i, d)
	{
		long addr = (long)json_integer_value(json_object_get(d, "address"));
		const char *model = json_string_value(json_object_get(d, "model"));
		const struct desc *ds = desc_match(&a->descs, model ? model : "");
		int n = free_slot(set, a, addr);

		if (n <= 0)
			continue;
		snprintf(key, sizeof(key), "rs485_type_%d", n);
		json_object_set_new(set, key, json_integer(ds ? ds->cls : CLASS_GENERIC));
		snprintf(key, sizeof(key), "rs485_addr_%d", n);
		json_object_set_new(set, key, json_integer(addr));
		snprintf(key, sizeof(key), "rs485_desc_%d", n);
		snprintf(desc, sizeof(desc), "%s %s", model && *model ? model : "Device",
			 json_string_value(json_object_get(d, "serial")));
		json_object_set_new(set, key, json_string(desc));
		json_array_append_new(added,
				      json_pack("{s:i, s:i, s:s}", "rs485_slot", n, "address",
						(int)addr, "model", model ? model : ""));
	}
	return set;
}

static void set_line_from_scan(json_t *set, json_t *found)
{
	json_t *d = json_array_get(found, 0);
	const char *par = json_string_value(json_object_get(d, "parity"));
	long baud = (long)json_integer_value(json_object_get(d, "baud"));

	for (long code = 0; d && code <= 7; code++)
		if (bus_baud_from_code(code) == baud)
			json_object_set_new(set, "rs485_baud_rate", json_integer(code));
	if (par)
		json_object_set_new(set, "rs485_parity",
				    json_integer(!strcmp(par, "odd")	? 1
						 : !strcmp(par, "even") ? 2
									: 0));
	if (d)
		json_object_set_new(
		    set, "rs485_stop_bits",
		    json_integer(json_integer_value(json_object_get(d, "stop_bits")) == 2));
}

static void scan_add_done(int err, const char *msg, json_t *res, void *arg)
{
	struct scan_add *sa = arg;
	json_t *found = json_object_get(res, "devices"), *added = json_array(), *set;
	char emsg[256];

	if (err) {
		ctl_reply_err(sa->c, "%s", msg ? msg : strerror(-err));
		json_decref(added);
		free(sa);
		return;
	}
	set = plan_add_all(sa->app, found, added);
	if (json_array_size(added))
		set_line_from_scan(set, found);
	if (json_object_size(set) &&
	    settings_set_json(sa->app->settings, set, emsg, sizeof(emsg)) < 0) {
		ctl_reply_err(sa->c, "add all: %s", emsg);
		json_decref(added);
	} else {
		json_object_set_new(res, "added", added);
		ctl_reply_ok(sa->c, json_incref(res));
	}
	json_decref(set);
	json_decref(res);
	free(sa);
}

static int scan_opt(struct scan_opts *o, const char *k, const char *v)
{
	long n;

	if (!strcmp(k, "--baud"))
		return bus_baud_parse(v, &o->baud);
	if (!strcmp(k, "--stop-bits")) {
		if (num(v, 1, 2, &n) < 0)
			return -EINVAL;
		o->stop = (int)n;
		return 0;
	}
	if (!strcmp(k, "--parity")) {
		o->parity = !strcmp(v, "none")	 ? 'N'
			    : !strcmp(v, "odd")	 ? 'O'
			    : !strcmp(v, "even") ? 'E'
						 : 0;
		return o->parity ? 0 : -EINVAL;
	}
	if (!strcmp(k, "--from"))
		return num(v, 1, 247, &o->first);
	if (!strcmp(k, "--to"))
		return num(v, 1, 247, &o->last);
	return -EINVAL;
}

void ctl_cmd_scan(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	struct scan_opts o = {.first = 1, .last = 247};
	int r;

	struct scan_add *sa;

	for (int i = 1; i < argc; i += 2) {
		if (!strcmp(argv[i], "--add-all")) {
			o.add_all = true;
			i--; /* a flag without a value */
			continue;
		}
		if (i + 1 >= argc || scan_opt(&o, argv[i], argv[i + 1]) < 0) {
			ctl_reply_err(c,
				      "scan: bad option '%s' (--baud 1200…115200 or 0…7, "
				      "--parity none|odd|even, --stop-bits 1|2, --from/--to 1…247)",
				      argv[i]);
			return;
		}
	}
	if (o.first > o.last) {
		ctl_reply_err(c, "scan: --from %ld is after --to %ld", o.first, o.last);
		return;
	}
	sa = o.add_all ? calloc(1, sizeof(*sa)) : NULL;
	if (sa)
		*sa = (struct scan_add){a, c};
	r = poll_scan(a->poll, o.baud, o.parity, o.stop, (int)o.first, (int)o.last,
		      sa ? scan_add_done : ctl_op_done, sa ? (void *)sa : (void *)c);
	if (r < 0)
		free(sa);
	if (r == -EBUSY)
		ctl_reply_err(c, "a scan is already running");
	else if (r == -ENODEV)
		ctl_reply_err(c, "this board has no RS485 port configured");
	else if (r < 0)
		ctl_reply_err(c, "scan: %s", strerror(-r));
}

static int setparam_arg(const char *s, int *addr, int *baud, int *parity, int *stop)
{
	static const struct {
		const char *key;
		long lo, hi;
	} keys[] = {{"address", 1, 247}, {"baud", 0, 7}, {"parity", 0, 2}, {"stop_bits", 0, 1}};
	int *dst[] = {addr, baud, parity, stop};
	const char *eq = strchr(s, '=');
	long v;

	for (int i = 0; eq && i < 4; i++) {
		if (strlen(keys[i].key) != (size_t)(eq - s) ||
		    strncmp(s, keys[i].key, (size_t)(eq - s)))
			continue;
		if (num(eq + 1, keys[i].lo, keys[i].hi, &v) < 0)
			return -ERANGE;
		*dst[i] = (int)v;
		return 0;
	}
	return -EINVAL;
}

/* set-parameters ADDR MODEL [address=N] [baud=CODE] [parity=N] [stop_bits=N] */
void ctl_cmd_set_parameters(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	int naddr = -1, baud = -1, parity = -1, stop = -1, r;
	long addr;

	if (num(argv[1], 1, 247, &addr) < 0 || argc < 4) {
		ctl_reply_err(c, "usage: set-parameters ADDR MODEL [address=1…247] [baud=0…7] "
				 "[parity=0…2] [stop_bits=0|1]");
		return;
	}
	for (int i = 3; i < argc; i++) {
		if (setparam_arg(argv[i], &naddr, &baud, &parity, &stop) < 0) {
			ctl_reply_err(c,
				      "set-parameters: bad argument '%s' (address=1…247, "
				      "baud=0…7, parity=0…2, stop_bits=0|1)",
				      argv[i]);
			return;
		}
	}
	r = poll_set_parameters(a->poll, (int)addr, argv[2], naddr, baud, parity, stop, ctl_op_done,
				c);
	if (r == -ENOTSUP)
		ctl_reply_err(c, "model '%s' has no writable communication registers", argv[2]);
	else if (r < 0)
		ctl_reply_err(c, "set-parameters: %s", strerror(-r));
}

struct mb_req {
	struct ctl_client *c;
	struct bus_txn t;
	enum desc_space space;
	int addr;
	bool write;
};

static json_t *read_result(const struct mb_req *m)
{
	json_t *vals = json_array();
	char hex[8];

	for (unsigned i = 0; i < m->t.count; i++) {
		unsigned v = m->t.fc <= 2 ? m->t.bits[i] : m->t.regs[i];

		snprintf(hex, sizeof(hex), "0x%04X", v);
		json_array_append_new(vals, json_string(hex));
	}
	return json_pack("{s:s, s:i, s:I, s:i, s:o}", "cmd", "modbus_read", "modbus_address",
			 m->addr, "register", (json_int_t)regnum_format(m->space, m->t.addr),
			 "number_of_registers", m->t.count, "values", vals);
}

static void mb_done(int err, const char *msg, json_t *res, void *arg)
{
	struct mb_req *m = arg;

	json_decref(res);
	if (err)
		ctl_reply_err(m->c, "modbus address %d: %s", m->addr, msg);
	else if (m->write)
		ctl_reply_ok(m->c, json_pack("{s:s, s:i, s:I, s:i}", "cmd", "modbus_write",
					     "modbus_address", m->addr, "register",
					     (json_int_t)regnum_format(m->space, m->t.addr),
					     "number_of_registers", m->t.count));
	else
		ctl_reply_ok(m->c, read_result(m));
	free(m);
}

static int mb_setup_read(struct mb_req *m, int argc, const char *const *argv)
{
	static const uint8_t fc[] = {
	    [SPACE_COIL] = 1, [SPACE_DISCRETE] = 2, [SPACE_INPUT] = 4, [SPACE_HOLDING] = 3};
	long n = 1;

	if (argc > 5 ||
	    (argc == 5 && num(argv[4], 1, m->space <= SPACE_DISCRETE ? 2000 : 125, &n) < 0))
		return -EINVAL;
	m->t.fc = fc[m->space];
	m->t.count = (uint16_t)n;
	return (long)m->t.addr + n <= 65536 ? 0 : -ERANGE;
}

static int mb_setup_write(struct mb_req *m, int argc, const char *const *argv)
{
	int nv = argc - 4;
	long v;

	if (m->space != SPACE_HOLDING && m->space != SPACE_COIL)
		return -EINVAL; /* input registers and discrete inputs are read-only */
	if (nv < 1 || nv > 123 || (long)m->t.addr + nv > 65536)
		return -ERANGE;
	for (int i = 0; i < nv; i++) {
		if (num(argv[4 + i], 0, m->space == SPACE_COIL ? 1 : 65535, &v) < 0)
			return -EINVAL;
		m->t.val[i] = (uint16_t)v;
		m->t.bits[i] = (uint8_t)v;
	}
	m->t.count = (uint16_t)nv;
	if (m->space == SPACE_COIL)
		m->t.fc = nv == 1 ? 5 : 15;
	else
		m->t.fc = nv == 1 ? 6 : 16;
	m->write = true;
	return 0;
}

/* modbus read ADDR REG [COUNT] | modbus write ADDR REG VALUE…; REG in Iskra
 * numbering (30001… input, 40001… holding). */
void ctl_cmd_modbus(struct app *a, struct ctl_client *c, int argc, const char *const *argv)
{
	struct mb_req *m = calloc(1, sizeof(*m));
	bool wr = !strcmp(argv[1], "write");
	long addr;
	int r;

	if (!m) {
		ctl_reply_err(c, "out of memory");
		return;
	}
	m->c = c;
	if ((!wr && strcmp(argv[1], "read")) || num(argv[2], 0, 247, &addr) < 0 ||
	    regnum_parse(argv[3], &m->space, &m->t.addr) < 0) {
		free(m);
		ctl_reply_err(c,
			      "usage: modbus read ADDR REG [COUNT] | modbus write ADDR REG VALUE… "
			      "(ADDR 0…247, REG like 30001 or 40101)");
		return;
	}
	m->addr = (int)addr;
	r = wr ? mb_setup_write(m, argc, argv) : mb_setup_read(m, argc, argv);
	if (r == 0)
		r = poll_modbus(a->poll, m->addr, &m->t, mb_done, m);
	if (r < 0) {
		free(m);
		ctl_reply_err(c, "modbus %s: %s", argv[1],
			      r == -EINVAL || r == -ERANGE ? "bad register, count or value"
			      : r == -EBUSY		   ? "RS485 scan in progress"
							   : strerror(-r));
	}
}
