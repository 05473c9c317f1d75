/* REST handlers that change state or need the bus: the credentials check,
 * and the translation of routes, bodies and query strings into commands of
 * the operations table (settings changes, Bicom switching, RS485 scan,
 * set-parameters), whose validation, rules and messages are the table's.
 * An operation that finishes later answers its deferred request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest_int.h"
#include "sg/auth.h"
#include "sg/devop.h"
#include "sg/legacy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- operations ---- */

void rest_ops_reply(struct http_req *r, enum ops_status st, const char *msg, json_t *res)
{
	if (st == OPS_OK)
		http_reply_json(r, 200, res ? res : json_pack("{s:s}", "result", "ok"));
	else
		http_reply_error(r, rest_ops_status(st), "%s", msg);
}

/* ops_done_cb of every route: a completion inside ops_run answers at once
 * (no suspended connection); a later one answers the deferred request. */
static void ops_done(enum ops_status st, const char *msg, json_t *res, void *arg)
{
	struct rest_call *rc = arg;

	if (rc->reply)
		rc->reply(rc, st, msg, res);
	else
		rest_ops_reply(rc->r, st, msg, res);
	rc->finished = true;
	if (!rc->in_run)
		free(rc);
}

void rest_ops_run(struct http_req *r, const char *name, json_t *args, const struct rest_call *how)
{
	struct rest_call *rc = calloc(1, sizeof(*rc));

	if (!rc || !args || json_object_set_new(args, "cmd", json_string(name)) < 0) {
		free(rc);
		json_decref(args);
		http_reply_error(r, 500, "out of memory");
		return;
	}
	if (how)
		*rc = *how;
	rc->r = r;
	rc->in_run = true;
	ops_run(http_req_env(r)->ops, args, OPS_FROM_REST, ops_done, rc);
	json_decref(args);
	rc->in_run = false;
	if (rc->finished)
		free(rc);
	else
		http_req_defer(r); /* the completion comes from the loop, after we return */
}

/* ---- body helpers ---- */

/* Refuse members other than names[] (NULL-terminated): a misspelt optional
 * member must not be silently ignored. */
static bool only_members(struct http_req *r, json_t *body, const char *const *names,
			 const char *help)
{
	char clip[REST_CLIP_LEN];
	const char *key;
	json_t *v;

	json_object_foreach(body, key, v)
	{
		size_t i = 0;

		while (names[i] && strcmp(key, names[i]))
			i++;
		if (!names[i]) {
			http_reply_error(r, 400, "unknown member '%s' (%s)", rest_clip(key, clip),
					 help);
			return false;
		}
	}
	return true;
}

/* The first of several accepted names of one member. */
static json_t *member(json_t *body, const char *const *names)
{
	json_t *v = NULL;

	for (size_t i = 0; names[i] && !v; i++)
		v = json_object_get(body, names[i]);
	return v;
}

/* ---- POST /api/auth ---- */

/* One credential string of the login body: 0, -ENOENT absent, -EINVAL bad. */
static int body_field(json_t *v, char out[AUTH_FIELD_MAX])
{
	size_t n = json_string_length(v);

	if (!v)
		return -ENOENT;
	if (!json_is_string(v) || n >= AUTH_FIELD_MAX || strlen(json_string_value(v)) != n)
		return -EINVAL;
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

int rest_body_credentials(const char *body, size_t len, char *user, char *pass)
{
	json_t *doc;
	int ru, rp;

	if (!body || !len)
		return -ENOENT;
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return -EINVAL;
	}
	ru = body_field(json_object_get(doc, "username"), user);
	rp = body_field(json_object_get(doc, "password"), pass);
	json_decref(doc);
	if (ru == -ENOENT && rp == -ENOENT)
		return -ENOENT;
	return ru || rp ? -EINVAL : 0;
}

/* RFC 4648 base64 of len bytes into out (4 * ceil(len / 3) + 1 bytes). */
static void base64(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		v |= i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0;
		v |= i + 2 < len ? in[i + 2] : 0;
		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*out++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*out = '\0';
}

/* The cookie the web UI and Home Assistant send back (CONTRACTS §1). The
 * gate has just checked that the request's credentials are the configured
 * ones, so those are what it holds. */
static void set_auth_cookie(struct http_req *r, const struct settings *s)
{
	char plain[2 * AUTH_FIELD_MAX + 2], b64[(sizeof(plain) + 2) / 3 * 4 + 1];
	char cookie[sizeof(b64) + 80];
	int n = snprintf(plain, sizeof(plain), "%s:%s", settings_str(s, "auth_username"),
			 settings_str(s, "auth_password"));

	if (n < 0 || (size_t)n >= sizeof(plain))
		return;
	base64((const unsigned char *)plain, (size_t)n, b64);
	snprintf(cookie, sizeof(cookie),
		 "Authorization=Basic %s; Path=/; HttpOnly; SameSite=Strict", b64);
	http_req_add_header(r, "Set-Cookie", cookie);
}

/* Only reached with valid credentials (Basic header, cookie or the JSON body
 * {"username", "password"}) or with authentication off: the HTTP server's
 * gate answers 403 otherwise. */
void rest_post_auth(struct http_req *r, const char *param)
{
	const struct http_env *a = http_req_env(r);
	bool on = settings_int(a->settings, "auth_enabled") != 0;

	(void)param;
	if (on)
		set_auth_cookie(r, a->settings);
	http_reply_json(r, 200, json_pack("{s:s, s:b}", "result", "ok", "auth_enabled", on));
}

/* ---- POST /api/settings ---- */

/* {"key": value, …}, or the get shape {"settings": {…}}. */
static json_t *settings_changes(json_t *body)
{
	json_t *inner = json_object_get(body, "settings");

	return json_object_size(body) == 1 && json_is_object(inner) ? inner : body;
}

/* All or nothing: one bad key changes nothing. */
void rest_post_settings(struct http_req *r, const char *param)
{
	(void)param;
	rest_ops_run(r, "set_settings",
		     json_pack("{s:O}", "settings", settings_changes(http_req_body(r))), NULL);
}

/* ---- POST /api/bicom ---- */

/* {"addr"|"address": N, "val"|"action"|"state": "on"|"off"|"toggle"|"state"}. */
void rest_post_bicom(struct http_req *r, const char *param)
{
	static const char *const members[] = {"addr", "address", "val", "action", "state", NULL};
	static const char *const addr_names[] = {"addr", "address", NULL};
	static const char *const val_names[] = {"val", "action", "state", NULL};
	json_t *body = http_req_body(r), *args = json_object(), *v;

	(void)param;
	if (!only_members(r, body, members, "addr, val")) {
		json_decref(args);
		return;
	}
	if ((v = member(body, addr_names)))
		json_object_set(args, "addr", v);
	if ((v = member(body, val_names)))
		json_object_set(args, "val", v);
	rest_ops_run(r, "bicom", args, NULL);
}

/* ---- GET /api/rs485/scan-devices ---- */

/* ?baud=RATE|CODE&parity=none|odd|even&stop_bits=1|2&from=A&to=B, all optional. */
void rest_get_scan(struct http_req *r, const char *param)
{
	static const char *const text[] = {"baud", "baud_rate", "parity", "parity"};
	static const char *const num[] = {"stop_bits", "from", "to"};
	json_t *args = json_object();
	const char *v;
	long n;

	(void)param;
	for (size_t i = 0; i < N(text); i += 2)
		if ((v = http_req_query(r, text[i])))
			json_object_set_new(args, text[i + 1], json_string(v));
	for (size_t i = 0; i < N(num); i++) {
		if (!(v = http_req_query(r, num[i])))
			continue;
		if (legacy_parse_index(v, 100000, &n) < 0) {
			json_decref(args);
			http_reply_error(r, 400, "%s: expected a number", num[i]);
			return;
		}
		json_object_set_new(args, num[i], json_integer(n));
	}
	rest_ops_run(r, "detect_485_devices", args, NULL);
}

/* ---- POST /api/rs485/set-parameters ---- */

/* The body is the command: address, model, new_address, baud_rate, parity,
 * stop_bits (as sgctl set-parameters). */
void rest_post_set_parameters(struct http_req *r, const char *param)
{
	json_t *body = http_req_body(r);

	(void)param;
	if (json_object_get(body, "cmd")) {
		http_reply_error(r, 400, "unknown member 'cmd'");
		return;
	}
	rest_ops_run(r, "set_parameters", json_copy(body), NULL);
}
