/* Translate user settings into slot configurations and RS485 line settings. */
#include "poll_int.h"

#include <stdio.h>
#include <string.h>

static void cfg_left_ir(struct poll *p, const struct settings *st, struct slot_cfg *c)
{
	c->cls = settings_int(st, "left_ir_enabled") ? CLASS_METER : CLASS_NONE;
	c->addr = (int)settings_int(st, "ir_counter_addr");
	p->left_ir_addr = c->addr;
	c->description[0] = '\0';
}

static void cfg_right_ir(struct poll *p, const struct settings *st, struct slot_cfg *c)
{
	/* ir_ext_rel_mode: 0 not connected, 1 controlled by SG, 2 by the IR counter */
	c->cls = settings_int(st, "ir_ext_rel_mode") ? CLASS_BICOM : CLASS_NONE;
	c->addr = p->right_ir_addr;
	snprintf(c->description, sizeof(c->description), "%s", settings_str(st, "ir_relay_desc"));
}

static void cfg_rs485(const struct settings *st, int n, struct slot_cfg *c)
{
	char key[32];

	snprintf(key, sizeof(key), "rs485_type_%d", n);
	c->cls = (enum desc_class)settings_int(st, key);
	snprintf(key, sizeof(key), "rs485_addr_%d", n);
	c->addr = (int)settings_int(st, key);
	snprintf(key, sizeof(key), "rs485_desc_%d", n);
	snprintf(c->description, sizeof(c->description), "%s", settings_str(st, key));
}

void poll_settings_to_cfg(struct poll *p, const struct settings *st, struct slot_cfg *cfg)
{
	cfg_left_ir(p, st, &cfg[DEV_SLOT_LEFT_IR]);
	cfg_right_ir(p, st, &cfg[DEV_SLOT_RIGHT_IR]);
	for (int n = 1; n <= 16; n++)
		cfg_rs485(st, n, &cfg[DEV_SLOT_RS485(n)]);
}

void poll_apply_rs485_line(struct poll *p, const struct settings *st)
{
	static const char parity[] = {'N', 'O', 'E'};
	struct bus *b = p->buses[CONF_BUS_RS485];
	struct bus_params bp;
	int baud = bus_baud_from_code(settings_int(st, "rs485_baud_rate"));
	long par = settings_int(st, "rs485_parity");

	if (!b)
		return;
	bp = *bus_params(b);
	if (baud > 0)
		bp.baud = baud;
	bp.parity = par >= 0 && par <= 2 ? parity[par] : 'N';
	bp.stop_bits = settings_int(st, "rs485_stop_bits") ? 2 : 1;
	p->rs485_line = bp;
	if (reg_bus_busy(p->reg, CONF_BUS_RS485))
		return; /* the scan restores p->rs485_line when it ends */
	if (bp.baud != bus_params(b)->baud || bp.parity != bus_params(b)->parity ||
	    bp.stop_bits != bus_params(b)->stop_bits)
		bus_set_params(b, &bp);
}
