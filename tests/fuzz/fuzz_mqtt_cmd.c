/* MQTT commands (src/mqtt/cmds.c mqtt_cmd_run): the input is the payload of
 * a message on <root>/<sub topic>, run against a whole daemon (app.c)
 * on link 1; the link is not connected, so replies go nowhere. */
#include "../../src/mqtt/mqtt_int.h"
#include "fuzz.h"
#include "sg/app.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct app *a = fuzz_app();

	mqtt_cmd_run(a->mqtt, a->mqtt->link[0], data, size);
	fuzz_app_turn(); /* operations that finish on the loop */
	fuzz_app_restore();
	return 0;
}
