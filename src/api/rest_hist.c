/* History routes: load profile (JSON or CSV), recorders (views, CSV, clear)
 * and the tariff calendar with the tariff counters. Each route translates
 * its path, query and body into a command of the operations table
 * (src/ops/ops_hist.c) and its completion into the HTTP reply. */
#include "rest_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sg/legacy.h"
#include "sg/ops.h"

/* rest_reply_fn: a "csv" result is the body as text/csv, any other the JSON. */
static void hist_reply(struct rest_call *rc, enum ops_status st, const char *msg, json_t *res)
{
	json_t *csv = json_object_get(res, "csv");

	if (st != OPS_OK)
		http_reply_error(rc->r, ops_http_status(st), "%s", msg);
	else if (json_is_string(csv))
		http_reply_data(rc->r, 200, "text/csv; charset=utf-8", json_string_value(csv),
				json_string_length(csv));
	else
		http_reply_json(rc->r, 200, json_incref(res));
	json_decref(res);
}

/* Run cmd ({"cmd": name, …}, stolen; NULL: out of memory) for r. */
static void run(struct http_req *r, json_t *cmd)
{
	static const struct rest_call how = {.reply = hist_reply};

	rest_ops_run(r, json_string_value(json_object_get(cmd, "cmd")), cmd, &how);
}

/* ?format=json|csv as the command's "csv"; false after replying 400. */
static bool format_arg(struct http_req *r, json_t *cmd)
{
	const char *f = http_req_query(r, "format");
	char clip[REST_CLIP_LEN];

	if (!f || !strcmp(f, "csv") || !strcmp(f, "json")) {
		json_object_set_new(cmd, "csv", json_boolean(f && !strcmp(f, "csv")));
		return true;
	}
	http_reply_error(r, 400, "format '%s': expected json or csv", rest_clip(f, clip));
	json_decref(cmd);
	return false;
}

/* ?from=…&to=…[&view=…] as the command's members. */
static json_t *query_args(struct http_req *r, json_t *cmd, bool view)
{
	static const char *const keys[] = {"from", "to", "view"};

	for (size_t i = 0; cmd && i < (view ? 3 : 2); i++) {
		const char *v = http_req_query(r, keys[i]);

		if (v)
			json_object_set_new(cmd, keys[i], json_string(v));
	}
	return cmd;
}

/* A number in the path (recorder, equation): its value, or -1 after 400.
 * Whether it names anything is the command's to say (404). */
static long num_of(struct http_req *r, const char *what, const char *param)
{
	char clip[REST_CLIP_LEN];
	long i;

	if (legacy_parse_index(param, LONG_MAX, &i) == -EINVAL) {
		http_reply_error(r, 400, "%s '%s': expected a number", what,
				 rest_clip(param, clip));
		return -1;
	}
	return i;
}

/* {"action": "clear"} */
static bool clear_body(struct http_req *r)
{
	json_t *b = http_req_body(r), *a = json_object_get(b, "action");

	if (json_object_size(b) != 1 || !json_is_string(a) ||
	    strcmp(json_string_value(a), "clear")) {
		http_reply_error(r, 400, "body: expected {\"action\": \"clear\"}");
		return false;
	}
	return true;
}

/* ---- load profile ---- */

void rest_get_load_profile(struct http_req *r, const char *param)
{
	json_t *cmd;

	if (!rest_index_ok(r, param))
		return;
	cmd = json_pack("{s:s, s:i}", "cmd", "load_profile", "index", atoi(param));
	if (cmd && !format_arg(r, cmd))
		return;
	run(r, query_args(r, cmd, false));
}

void rest_post_load_profile(struct http_req *r, const char *param)
{
	if (rest_index_ok(r, param) && clear_body(r))
		run(r, json_pack("{s:s, s:i}", "cmd", "load_profile_clear", "index", atoi(param)));
}

/* ---- recorders: /api/recorder/{1…8} ---- */

void rest_get_recorders(struct http_req *r, const char *param)
{
	(void)param;
	run(r, json_pack("{s:s}", "cmd", "recorder_list"));
}

/* GET of a numbered history view (recorder, equation): the command name
 * with the number as member, ?format and the range (and ?view). */
static void get_numbered(struct http_req *r, const char *param, const char *what, const char *name,
			 const char *member, bool view)
{
	long n = num_of(r, what, param);
	json_t *cmd;

	if (n < 0)
		return;
	cmd = json_pack("{s:s, s:I}", "cmd", name, member, (json_int_t)n);
	if (cmd && !format_arg(r, cmd))
		return;
	run(r, query_args(r, cmd, view));
}

void rest_get_recorder(struct http_req *r, const char *param)
{
	get_numbered(r, param, "recorder index", "recorder_show", "recorder", true);
}

void rest_post_recorder(struct http_req *r, const char *param)
{
	long n = num_of(r, "recorder index", param);

	if (n >= 0 && clear_body(r))
		run(r, json_pack("{s:s, s:I}", "cmd", "recorder_clear", "recorder", (json_int_t)n));
}

/* ---- tariffs ---- */

void rest_get_tariffs(struct http_req *r, const char *param)
{
	(void)param;
	run(r, json_pack("{s:s}", "cmd", "get_tariffs"));
}

void rest_post_tariffs(struct http_req *r, const char *param)
{
	(void)param;
	run(r, json_pack("{s:s, s:O}", "cmd", "set_tariffs", "tariffs", http_req_body(r)));
}

/* ---- calculate equations: /api/calculate/{1…4} ---- */

void rest_get_calculate(struct http_req *r, const char *param)
{
	get_numbered(r, param, "equation", "calculate", "equation", false);
}
