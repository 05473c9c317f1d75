/* Bus status JSON (sgctl status and GET /api show the same members). */
#include "sg/busjson.h"

static const char *parity_name(char p)
{
	return p == 'E' ? "even" : p == 'O' ? "odd" : "none";
}

json_t *busjson_status(const char *name, struct bus *b)
{
	struct bus_stats st = {0};
	const struct bus_params *bp;

	if (!b)
		return json_pack("{s:s, s:s, s:s}", "name", name, "device", "", "state", "absent");
	bus_get_stats(b, &st);
	bp = bus_params(b);
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:I, s:I, s:I, s:i, s:s}", "name", name,
			 "device", bp->device, "state", st.open ? "open" : "closed", "baud",
			 bp->baud, "parity", parity_name(bp->parity), "stop_bits", bp->stop_bits,
			 "transactions", (json_int_t)st.transactions, "errors",
			 (json_int_t)st.errors, "timeouts", (json_int_t)st.timeouts, "queue",
			 (int)(st.queued_high + st.queued_low), "last_error", st.last_error);
}
