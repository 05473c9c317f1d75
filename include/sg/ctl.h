/* Control socket protocol between sgd and sgctl: one JSON object per line.
 * Request:  an operations command (sg/ops.h), the same object an MQTT
 *           command's "data" carries: {"cmd": "measurements", "index": 0}
 * Reply:    {"ok": true, "data": <json>}
 *           or {"ok": false, "error": "one line", "status": "bad_request"}
 *           (status: ops_status_name of the failure).
 * The old {"argv": […]} requests are refused with an error reply. */
#ifndef SG_CTL_H
#define SG_CTL_H

#define CTL_LINE_MAX (1024 * 1024)

#endif
