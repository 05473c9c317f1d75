/* Local validation of sgctl commands. It only catches what is certainly wrong
 * (unknown command, argument count, malformed numbers) so that typos fail fast
 * without a round trip; sgd remains the authority on values and ranges. */
#include "cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Decimal, or hexadecimal with 0x; base 0 is avoided because "010" would be octal. */
static bool parse_num(const char *s, long min, long max, long *out)
{
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	char *end;
	long v;

	/* strtol would accept leading blanks and signs; none are meaningful here. */
	if (!*s || *s == '-' || *s == '+' || *s == ' ' || *s == '\t')
		return false;
	errno = 0;
	v = strtol(s, &end, hex ? 16 : 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "sgctl: invalid %s '%s'\n", what, arg);
	return -EINVAL;
}

static int need_num(const char *what, const char *s, long min, long max)
{
	long v;

	return parse_num(s, min, max, &v) ? 0 : bad(what, s);
}

static int check_none(int argc, char *const argv[])
{
	(void)argv;
	return argc == 1 ? 0 : -EINVAL;
}

/* Device slot numbers: the daemon knows how many there are. */
static int check_index(int argc, char *const argv[])
{
	if (argc != 2)
		return -EINVAL;
	return need_num("device index", argv[1], 0, 9999);
}

static int check_bicom(int argc, char *const argv[])
{
	static const char *const actions[] = {"on", "off", "toggle", "state"};

	if (argc != 3)
		return -EINVAL;
	if (need_num("bicom number", argv[1], 0, 9999))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(argv[2], actions[i]))
			return 0;
	return bad("bicom action (on|off|toggle|state)", argv[2]);
}

static int check_settings(int argc, char *const argv[])
{
	(void)argv;
	return argc <= 2 ? 0 : -EINVAL;
}

static int check_set(int argc, char *const argv[])
{
	if (argc < 2)
		return -EINVAL;
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i])
			return bad("KEY=VALUE", argv[i]);
	}
	return 0;
}

static int check_scan_opt(const char *opt, const char *val)
{
	if (!strcmp(opt, "--baud"))
		return *val ? 0 : bad("baud rate", val);
	if (!strcmp(opt, "--stop-bits"))
		return !strcmp(val, "1") || !strcmp(val, "2") ? 0 : bad("stop bits (1|2)", val);
	if (!strcmp(opt, "--parity"))
		return !strcmp(val, "none") || !strcmp(val, "odd") || !strcmp(val, "even")
			   ? 0
			   : bad("parity (none|odd|even)", val);
	if (!strcmp(opt, "--from") || !strcmp(opt, "--to"))
		return need_num("Modbus address", val, 1, 247);
	fprintf(stderr, "sgctl: unknown scan option '%s'\n", opt);
	return -EINVAL;
}

static int check_scan(int argc, char *const argv[])
{
	int i = 1;

	while (i < argc) {
		if (!strcmp(argv[i], "--add-all")) {
			i++;
			continue;
		}
		if (i + 1 >= argc || check_scan_opt(argv[i], argv[i + 1]))
			return -EINVAL;
		i += 2;
	}
	return 0;
}

static int check_modbus_write(int argc, char *const argv[])
{
	/* 123 registers: the most one Write Multiple Registers request carries. */
	if (argc < 5 || argc > 4 + 123)
		return -EINVAL;
	for (int i = 4; i < argc; i++)
		if (need_num("register value", argv[i], 0, 65535))
			return -EINVAL;
	return 0;
}

static int check_modbus(int argc, char *const argv[])
{
	bool rd = argc >= 2 && !strcmp(argv[1], "read");

	if (argc < 2 || (!rd && strcmp(argv[1], "write")))
		return -EINVAL;
	if (argc < 4)
		return -EINVAL;
	if (need_num("Modbus address", argv[2], 0, 247) || need_num("register", argv[3], 0, 65535))
		return -EINVAL;
	if (!rd)
		return check_modbus_write(argc, argv);
	if (argc > 5)
		return -EINVAL;
	return argc == 5 ? need_num("register count", argv[4], 1, 125) : 0;
}

static int check_set_parameters(int argc, char *const argv[])
{
	if (argc < 4 || argc > 7 || need_num("Modbus address", argv[1], 1, 247))
		return -EINVAL;
	for (int i = 3; i < argc; i++)
		if (!strchr(argv[i], '='))
			return bad("KEY=VALUE", argv[i]);
	return 0; /* ranges are checked by sgd, which knows the device */
}

static int check_factory(int argc, char *const argv[])
{
	/* "--yes" after the command is the confirmation; sgctl.c accepts it as a
	 * global option too and checks that it was given. */
	return argc == 1 || (argc == 2 && !strcmp(argv[1], "--yes")) ? 0 : -EINVAL;
}

static int check_events(int argc, char *const argv[])
{
	if (argc > 2)
		return -EINVAL;
	return argc == 2 ? need_num("event count", argv[1], 1, 10000) : 0;
}

static int check_range_opts(int argc, char *const argv[])
{
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--csv"))
			continue;
		if ((strcmp(argv[i], "--from") && strcmp(argv[i], "--to")) || i + 1 >= argc)
			return -EINVAL;
		i++;
	}
	return 0;
}

static int check_load_profile(int argc, char *const argv[])
{
	if (argc < 2 || need_num("device index", argv[1], 0, 16))
		return -EINVAL;
	return check_range_opts(argc, argv);
}

static int check_calculate(int argc, char *const argv[])
{
	if (argc < 2 || need_num("equation", argv[1], 1, 4))
		return -EINVAL;
	return check_range_opts(argc, argv);
}

static int check_recorder(int argc, char *const argv[])
{
	if (argc == 2 && !strcmp(argv[1], "list"))
		return 0;
	if (argc < 3 || need_num("recorder", argv[2], 1, 8))
		return -EINVAL;
	if (!strcmp(argv[1], "clear"))
		return argc == 3 ? 0 : -EINVAL;
	if (strcmp(argv[1], "show"))
		return -EINVAL;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--csv"))
			continue;
		if ((strcmp(argv[i], "--from") && strcmp(argv[i], "--to") &&
		     strcmp(argv[i], "--view")) ||
		    i + 1 >= argc)
			return -EINVAL;
		i++;
	}
	return 0;
}

static int check_tariffs(int argc, char *const argv[])
{
	if (argc == 2 && !strcmp(argv[1], "show"))
		return 0;
	return argc == 3 && !strcmp(argv[1], "set") ? 0 : -EINVAL;
}

/* ---- argv → command object (names and members: src/ops/) ---- */

/* A number cmd_check accepted (decimal or 0x hex). */
static json_t *num_of(const char *s)
{
	long v = 0;

	return parse_num(s, 0, LONG_MAX, &v) ? json_integer(v) : NULL;
}

static json_t *named(const char *name)
{
	return json_pack("{s:s}", "cmd", name);
}

/* Set key to v (stolen) in o; false (o freed) when v is NULL. */
static bool put(json_t *o, const char *key, json_t *v)
{
	if (!v) {
		fprintf(stderr, "sgctl: invalid %s\n", key);
		return false;
	}
	json_object_set_new(o, key, v);
	return true;
}

static json_t *build_status(int argc, char *const argv[])
{
	(void)argc, (void)argv;
	return named("status");
}

static json_t *build_devices(int argc, char *const argv[])
{
	(void)argc, (void)argv;
	return named("devices");
}

/* measurements N / counters N */
static json_t *build_reading(int argc, char *const argv[])
{
	(void)argc;
	return json_pack("{s:s, s:o*}", "cmd", argv[0], "index", num_of(argv[1]));
}

static json_t *build_bicom(int argc, char *const argv[])
{
	(void)argc;
	return json_pack("{s:s, s:o*, s:s}", "cmd", "bicom", "addr", num_of(argv[1]), "val",
			 argv[2]);
}

static json_t *build_settings(int argc, char *const argv[])
{
	(void)argc, (void)argv;
	return named("get_settings");
}

/* set KEY=VALUE…: the values as text; sgd parses them by each key's type. */
static json_t *build_set(int argc, char *const argv[])
{
	json_t *set = json_object();

	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		json_object_setn_new(set, argv[i], (size_t)(eq - argv[i]), json_string(eq + 1));
	}
	return json_pack("{s:s, s:o}", "cmd", "set_settings", "settings", set);
}

static json_t *build_scan(int argc, char *const argv[])
{
	json_t *o = named("detect_485_devices");
	bool ok = true;

	for (int i = 1; ok && i < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		long n;

		if (!strcmp(k, "--add-all")) {
			json_object_set_new(o, "add_all", json_true());
			i--;
		} else if (!strcmp(k, "--baud")) {
			/* a rate or a code: a number, else sgd names what is wrong */
			json_object_set_new(o, "baud_rate",
					    parse_num(v, 0, LONG_MAX, &n) ? json_integer(n)
									  : json_string(v));
		} else if (!strcmp(k, "--parity")) {
			json_object_set_new(o, "parity", json_string(v));
		} else {
			ok = put(o,
				 !strcmp(k, "--stop-bits") ? "stop_bits"
				 : !strcmp(k, "--from")	   ? "from"
							   : "to",
				 num_of(v));
		}
	}
	if (!ok)
		json_decref(o);
	return ok ? o : NULL;
}

/* set-parameters ADDR MODEL [address=N] [baud=N] [parity=N] [stop_bits=N] */
static json_t *build_set_parameters(int argc, char *const argv[])
{
	static const char *const keys[][2] = {{"address", "new_address"},
					      {"baud", "baud_rate"},
					      {"parity", "parity"},
					      {"stop_bits", "stop_bits"}};
	json_t *o = json_pack("{s:s, s:o*, s:s}", "cmd", "set_parameters", "address",
			      num_of(argv[1]), "model", argv[2]);

	for (int i = 3; o && i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t k = 0;
		long v;

		while (k < 4 && (strlen(keys[k][0]) != (size_t)(eq - argv[i]) ||
				 strncmp(argv[i], keys[k][0], (size_t)(eq - argv[i]))))
			k++;
		if (k == 4 || !parse_num(eq + 1, 0, LONG_MAX, &v)) {
			fprintf(stderr,
				"sgctl: invalid set-parameters argument '%s' (address=N, baud=N, "
				"parity=N, stop_bits=N)\n",
				argv[i]);
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, keys[k][1], json_integer(v));
	}
	return o;
}

/* modbus read ADDR REG [COUNT] | write ADDR REG VALUE…; REG in Iskra numbering. */
static json_t *build_modbus(int argc, char *const argv[])
{
	bool rd = !strcmp(argv[1], "read");
	const char *name = rd	       ? "modbus_read"
			   : argc == 5 ? "modbus_write_single"
				       : "modbus_write_multi";
	json_t *o = json_pack("{s:s, s:o*, s:o*}", "cmd", name, "modbus_address", num_of(argv[2]),
			      "reg", num_of(argv[3]));
	json_t *words;

	if (!o || (rd && argc < 5))
		return o;
	if (rd || argc == 5) {
		if (!put(o, rd ? "no_regs" : "value", num_of(argv[4])))
			return json_decref(o), NULL;
		return o;
	}
	words = json_array();
	for (int i = 4; i < argc; i++)
		json_array_append_new(words, num_of(argv[i]));
	json_object_set_new(o, "words", words);
	return o;
}

static json_t *build_factory(int argc, char *const argv[])
{
	(void)argc, (void)argv; /* the confirmation was checked before */
	return json_pack("{s:s, s:b}", "cmd", "factory_reset", "confirm", 1);
}

static json_t *build_events(int argc, char *const argv[])
{
	json_t *o = named("events");

	if (argc == 2 && !put(o, "n", num_of(argv[1])))
		return json_decref(o), NULL;
	return o;
}

/* --from X --to Y --view V --csv (cmd_check accepted their order). */
static void range_members(json_t *o, int first, int argc, char *const argv[])
{
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--csv")) {
			json_object_set_new(o, "csv", json_true());
		} else {
			json_object_set_new(o, argv[i] + 2, json_string(argv[i + 1]));
			i++;
		}
	}
}

static json_t *build_numbered(const char *name, const char *member, int argc, char *const argv[],
			      int first)
{
	json_t *o = json_pack("{s:s, s:o*}", "cmd", name, member, num_of(argv[first - 1]));

	if (o)
		range_members(o, first, argc, argv);
	return o;
}

static json_t *build_load_profile(int argc, char *const argv[])
{
	return build_numbered("load_profile", "index", argc, argv, 2);
}

static json_t *build_calculate(int argc, char *const argv[])
{
	return build_numbered("calculate", "equation", argc, argv, 2);
}

static json_t *build_recorder(int argc, char *const argv[])
{
	if (!strcmp(argv[1], "list"))
		return named("recorder_list");
	return build_numbered(!strcmp(argv[1], "clear") ? "recorder_clear" : "recorder_show",
			      "recorder", argc, argv, 3);
}

static json_t *build_tariffs(int argc, char *const argv[])
{
	(void)argc;
	return named(!strcmp(argv[1], "show") ? "get_tariffs" : "set_tariffs");
}

static json_t *build_help(int argc, char *const argv[])
{
	(void)argc, (void)argv;
	return NULL; /* sgctl answers help itself */
}

static const struct cmd cmds[] = {
    {"status", "", "gateway identity, uptime and bus statistics", check_none, build_status},
    {"devices", "", "configured devices and their state", check_none, build_devices},
    {"measurements", "N", "latest measurements of device N", check_index, build_reading},
    {"counters", "N", "energy counters of device N", check_index, build_reading},
    {"bicom", "N on|off|toggle|state", "switch or query bistable output N", check_bicom,
     build_bicom},
    {"settings", "[KEY]", "all settings, or the value of one", check_settings, build_settings},
    {"set", "KEY=VALUE...", "change settings", check_set, build_set},
    {"scan",
     "[--baud CODE_OR_RATE] [--parity none|odd|even] [--stop-bits 1|2] [--from A] [--to B] "
     "[--add-all]",
     "search the RS-485 bus; --add-all puts every new device into a free slot", check_scan,
     build_scan},
    {"set-parameters", "ADDR MODEL [address=N] [baud=0..7] [parity=0..2] [stop_bits=0|1]",
     "change a found RS-485 device's address or line settings", check_set_parameters,
     build_set_parameters},
    {"modbus", "read ADDR REG [COUNT] | write ADDR REG VALUE...",
     "raw holding-register access (REG, VALUE: decimal or 0x hex)", check_modbus, build_modbus},
    {"factory-reset", "--yes", "restore factory settings", check_factory, build_factory},
    {"events", "[N]", "device events, newest first (at most N)", check_events, build_events},
    {"load-profile", "N [--from DATE|today|yesterday|last24h] [--to DATE] [--csv]",
     "15-minute load profile of device N with daily totals", check_load_profile,
     build_load_profile},
    {"calculate", "N [--from DATE|today|yesterday|last24h] [--to DATE] [--csv]",
     "load-profile equation N (settings calcN_name, calcN_expr)", check_calculate, build_calculate},
    {"recorder", "list | show N [--view daily|monthly|yearly] [--from] [--to] [--csv] | clear N",
     "recorders: midnight counter readings and consumption", check_recorder, build_recorder},
    {"tariffs", "show | set FILE", "tariff calendar and tariff counters; set checks FILE first",
     check_tariffs, build_tariffs},
    {"help", "", "this text", check_none, build_help},
};

const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

void cmd_print_all(FILE *out)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		fprintf(out, "  %s%s%s\n", cmds[i].name, *cmds[i].args ? " " : "", cmds[i].args);
		fprintf(out, "        %s\n", cmds[i].help);
	}
}

int cmd_check(const struct cmd *c, int argc, char *const argv[])
{
	if (c->check(argc, argv) == 0)
		return 0;
	fprintf(stderr, "sgctl: usage: sgctl [OPTIONS] %s%s%s\n", c->name, *c->args ? " " : "",
		c->args);
	return -EINVAL;
}

json_t *cmd_request(const struct cmd *c, int argc, char *const argv[])
{
	return c->build(argc, argv);
}
