/* Commands about the gateway's own state: settings (get, set, factory
 * reset), the file folder (certificates), reboot and firmware upgrade. */
#include "ops_int.h"

#define FILE_HELP "a plain file name ([A-Za-z0-9._-], not starting with '.', at most 63 characters)"

static void not_yet(struct ops_call *c, json_t *args)
{
	(void)args;
	ops_fail(c, OPS_NOT_IMPLEMENTED, "%s is not moved to ops yet", ops_call_name(c));
}

/* set_settings: {"<key>": value, …} or the get_settings shape
 * {"settings": {…}}; every key is checked by settings_set_json. */
static const struct ops_arg set_settings_args[] = {
    {"settings", OPS_T_OBJECT, 0, 0, 0, "an object of settings"},
    {NULL},
};

/* factory_reset erases every setting: the caller confirms. */
static const struct ops_arg factory_args[] = {
    {"confirm", OPS_T_BOOL, OPS_REQUIRED, 0, 0, "true: every setting is erased"},
    {NULL},
};

static const struct ops_arg cert_args[] = {
    {"name", OPS_T_STR, OPS_REQUIRED, 1, 63, FILE_HELP " ending in .pem, .crt or .key"},
    {"cert", OPS_T_STR, OPS_REQUIRED, 1, 16384, "PEM text of at most 16384 bytes"},
    {NULL},
};

static const struct ops_arg upgrade_args[] = {
    {"uri", OPS_T_STR, OPS_REQUIRED, 1, 512, "an https:// URI of the image"},
    {"cert", OPS_T_STR, OPS_REQUIRED, 1, 63, FILE_HELP},
    {NULL},
};

const struct ops_def ops_settings_defs[] = {
    {"get_settings", NULL, 0, not_yet},
    {"set_settings", set_settings_args, OPS_ARGS_OPEN, not_yet},
    {"factory_reset", factory_args, 0, not_yet},
    {"reboot", NULL, 0, not_yet},
    {"write_cert", cert_args, 0, not_yet},
    {"upgrade_app", upgrade_args, 0, not_yet},
    {NULL},
};
