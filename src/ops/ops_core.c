/* Commands about the gateway itself. */
#include "ops_int.h"
#include "sg/version.h"

/* {"version", "serial_number", "model_type", "hw_ver"}: what sgctl version and
 * MQTT's hello tell. */
static void run_version(struct ops_call *c, json_t *args)
{
	const struct conf *cf = ops_call_env(c)->conf;

	(void)args;
	ops_reply(c, json_pack("{s:s, s:s, s:s, s:s}", "version", SGD_VERSION, "serial_number",
			       cf->serial_number, "model_type", cf->model_type, "hw_ver",
			       cf->hw_version));
}

const struct ops_def ops_core_defs[] = {
    {"version", NULL, 0, run_version},
    {NULL},
};
