/* Internals shared by the REST route files: rest.c (route table, GET
 * handlers, /get_command) and rest_ops.c (POST and bus operations). */
#ifndef SG_API_REST_INT_H
#define SG_API_REST_INT_H

#include <jansson.h>

#include "sg/dev.h"
#include "sg/http.h"
#include "sg/ops.h"

#define REST_CLIP_LEN 36

/* Client text made safe to quote in an error message: at most
 * REST_CLIP_LEN-1 bytes, anything but printable ASCII as '?' (a cut UTF-8
 * sequence would make the JSON reply invalid). Returns buf. */
const char *rest_clip(const char *s, char buf[REST_CLIP_LEN]);
/* The device at an HA index text (0 Left IR, 1…16 RS485) whose data can be
 * shown; else NULL after replying 400 (not a number), 404 (no such index or
 * nothing configured) or 503 (not answering / not identified). */
const struct dev *rest_dev_arg(struct http_req *r, const char *index);
/* Check an HA index text for routes that do not read the device yet: true,
 * or false after replying 400/404. */
bool rest_index_ok(struct http_req *r, const char *index);
/* A REST request running an operation (src/ops/): how it is answered. */
struct rest_call;
typedef void (*rest_reply_fn)(struct rest_call *rc, enum ops_status st, const char *msg,
			      json_t *res);
struct rest_call {
	struct http_req *r;
	rest_reply_fn reply; /* NULL: rest_ops_reply */
	bool in_run, finished;
	/* GET measurement / counter: where the document is cached */
	unsigned key;
	uint64_t tag;
	bool cache;
	int slot;
};
/* REST's status of an operation's outcome: ops_http_status, except a rule's
 * refusal, which is 409 (403 means "log in" to clients, CONTRACTS §1).
 * Inline so unit tests of the operations check it without the HTTP server. */
static inline unsigned rest_ops_status(enum ops_status st)
{
	return st == OPS_FORBIDDEN ? 409 : ops_http_status(st);
}
/* 200 with the result ({"result": "ok"} when none), else the error reply. */
void rest_ops_reply(struct http_req *r, enum ops_status st, const char *msg, json_t *res);
/* Run the command name with args (stolen; "cmd" is set) for r; the request
 * is deferred only when the operation finishes later. how: NULL, or the
 * route's reply and cache data (copied). */
void rest_ops_run(struct http_req *r, const char *name, json_t *args, const struct rest_call *how);

/* rest_ops.c */
void rest_post_auth(struct http_req *r, const char *param);
void rest_post_settings(struct http_req *r, const char *param);
void rest_post_bicom(struct http_req *r, const char *param);
void rest_get_scan(struct http_req *r, const char *param);
void rest_post_set_parameters(struct http_req *r, const char *param);

/* rest_hist.c */
void rest_get_load_profile(struct http_req *r, const char *param);
void rest_post_load_profile(struct http_req *r, const char *param);
void rest_get_recorders(struct http_req *r, const char *param);
void rest_get_recorder(struct http_req *r, const char *param);
void rest_post_recorder(struct http_req *r, const char *param);
void rest_get_tariffs(struct http_req *r, const char *param);
void rest_post_tariffs(struct http_req *r, const char *param);
void rest_get_calculate(struct http_req *r, const char *param);

#endif
