/* Control socket protocol between sgd and sgctl: one JSON object per line.
 * Request:  {"argv": ["measurements", "0"]}
 * Reply:    {"ok": true, "data": <json>}  or  {"ok": false, "error": "one line"} */
#ifndef SG_CTL_H
#define SG_CTL_H

#define CTL_LINE_MAX (1024 * 1024)
#define CTL_ARGS_MAX 64

#endif
