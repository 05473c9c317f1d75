/* Internals shared by the REST route files: rest.c (route table, GET
 * handlers, /get_command) and rest_ops.c (POST and bus operations). */
#ifndef SG_API_REST_INT_H
#define SG_API_REST_INT_H

#include <jansson.h>

#include "sg/app.h"
#include "sg/dev.h"
#include "sg/http.h"

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
/* HTTP status for an on-demand operation that failed with err (< 0): the one
 * mapping every asynchronous route uses. */
unsigned rest_err_status(int err);
/* poll_result_cb of deferred requests (arg = the struct http_req): 200 with
 * the result, else rest_err_status(err) with the message. */
void rest_op_done(int err, const char *msg, json_t *res, void *arg);

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
