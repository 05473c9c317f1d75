/* REST handlers that change state or need the bus: the credentials check,
 * settings changes, Bicom switching, RS485 scan and set-parameters.
 * Validation and messages follow sgctl's (src/ctl/cmds*.c). A bus operation
 * defers its request and answers from rest_op_done. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rest_int.h"
#include "sg/auth.h"
#include "sg/devop.h"
#include "sg/legacy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- completion of bus operations ---- */

unsigned rest_err_status(int err)
{
	static const unsigned status[] = {
	    [DEVOP_NO_ANSWER] = 504,   /* no (usable) answer: the port or the device is gone */
	    [DEVOP_EXCEPTION] = 502,   /* the device answered, with a Modbus exception */
	    [DEVOP_STOPPED] = 503,     /* the bus stopped (shutdown, restart) */
	    [DEVOP_BUSY] = 409,	       /* a scan holds the bus, or the queue is full */
	    [DEVOP_BAD_REQUEST] = 400, /* the request itself was refused */
	    [DEVOP_INTERNAL] = 500,    /* the gateway's own trouble */
	};

	return status[devop_classify(err)];
}

void rest_op_done(int err, const char *msg, json_t *res, void *arg)
{
	struct http_req *r = arg;
	char buf[160];

	if (!err) {
		http_reply_json(r, 200, res ? res : json_pack("{s:s}", "result", "ok"));
		return;
	}
	json_decref(res);
	http_reply_error(r, rest_err_status(err), "%s", devop_err_text(err, msg, buf, sizeof(buf)));
}

/* An operation that could not start. The request is deferred already (the
 * poller may finish an operation before returning), so this is its reply. */
static void start_failed(struct http_req *r, int err, const char *what)
{
	struct app *a = http_req_app(r);

	if (err == -EBUSY)
		http_reply_error(r, 409, "%s: %s", what,
				 poll_scanning(a->poll) ? "an RS485 scan is in progress"
							: "the bus queue is full, try again");
	else if (err == -ENODEV)
		http_reply_error(r, 503, "%s: this board has no serial port for that bus", what);
	else
		http_reply_error(r, rest_err_status(err), "%s: %s", what, strerror(-err));
}

/* ---- body and query helpers ---- */

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

/* An integer member in lo…hi: 0; -ENOENT when absent (nothing replied);
 * -EINVAL after replying 400. */
static int int_member(struct http_req *r, json_t *v, const char *name, long lo, long hi, long *out)
{
	if (!v)
		return -ENOENT;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		http_reply_error(r, 400, "%s: expected an integer %ld…%ld", name, lo, hi);
		return -EINVAL;
	}
	*out = (long)json_integer_value(v);
	return 0;
}

/* The first of several accepted names of one member. */
static json_t *member(json_t *body, const char *const *names)
{
	json_t *v = NULL;

	for (size_t i = 0; names[i] && !v; i++)
		v = json_object_get(body, names[i]);
	return v;
}

static bool bad_arg(struct http_req *r, const char *name, const char *want)
{
	http_reply_error(r, 400, "%s: expected %s", name, want);
	return false;
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
	struct app *a = http_req_app(r);
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

void rest_post_settings(struct http_req *r, const char *param)
{
	struct app *a = http_req_app(r);
	json_t *obj = settings_changes(http_req_body(r)), *changed, *v;
	char err[256] = "";
	const char *key;
	int rc;

	(void)param;
	if (!json_object_size(obj)) {
		http_reply_error(r, 400, "no settings given: send {\"key\": value, …}");
		return;
	}
	changed = json_array();
	json_object_foreach(obj, key, v)
	{
		json_array_append_new(changed, json_string(key));
	}
	/* All or nothing: one bad key changes nothing. */
	rc = settings_set_json(a->settings, obj, err, sizeof(err));
	if (rc < 0) {
		json_decref(changed);
		http_reply_error(r, rc == -EINVAL ? 400 : 500, "%s", err[0] ? err : strerror(-rc));
		return;
	}
	http_reply_json(r, 200, json_pack("{s:s, s:o}", "result", "ok", "changed", changed));
}

/* ---- POST /api/bicom ---- */

void rest_post_bicom(struct http_req *r, const char *param)
{
	static const char *const members[] = {"addr", "address", "val", "action", "state", NULL};
	static const char *const addr_names[] = {"addr", "address", NULL};
	static const char *const val_names[] = {"val", "action", "state", NULL};
	static const char *const ops[] = {"state", "on", "off", "toggle"}; /* enum bicom_op */
	struct app *a = http_req_app(r);
	json_t *body = http_req_body(r), *jaddr, *jval;
	int op = -1, slot, rc;
	long addr;

	(void)param;
	if (!only_members(r, body, members, "addr, val"))
		return;
	jaddr = member(body, addr_names);
	jval = member(body, val_names);
	if (!jaddr) {
		http_reply_error(r, 400,
				 "addr: missing (0 = Right IR Bicom, else its RS485 address)");
		return;
	}
	if (int_member(r, jaddr, "addr", 0, 247, &addr) < 0)
		return;
	for (size_t i = 0; i < N(ops); i++)
		if (json_is_string(jval) && !strcmp(json_string_value(jval), ops[i]))
			op = (int)i;
	if (op < 0) {
		http_reply_error(r, 400, "val: expected \"on\", \"off\", \"toggle\" or \"state\"");
		return;
	}
	slot = poll_bicom_slot(a->poll, (int)addr);
	if (slot < 0) {
		http_reply_error(r, 404, "no Bicom configured at address %ld", addr);
		return;
	}
	if (op != BICOM_STATE && slot == DEV_SLOT_RIGHT_IR &&
	    settings_int(a->settings, "ir_ext_rel_mode") == 2) {
		http_reply_error(
		    r, 409, "Right IR Bicom is controlled by the IR counter, not by the gateway");
		return;
	}
	http_req_defer(r);
	rc = poll_bicom(a->poll, slot, (enum bicom_op)op, rest_op_done, r);
	if (rc < 0)
		start_failed(r, rc, "bicom");
}

/* ---- GET /api/rs485/scan-devices ---- */

struct scan_args {
	int baud, stop; /* 0 = the configured line */
	char parity;	/* 0 = the configured line */
	long first, last;
};

static char parity_code(const char *s)
{
	return !strcmp(s, "none") ? 'N' : !strcmp(s, "odd") ? 'O' : !strcmp(s, "even") ? 'E' : 0;
}

/* Optional query arguments; false after a 400 naming the bad one. */
static bool scan_query(struct http_req *r, struct scan_args *o)
{
	const char *v;
	long n;

	if ((v = http_req_query(r, "baud")) && bus_baud_parse(v, &o->baud) < 0)
		return bad_arg(r, "baud", "a rate 1200…115200 or a code 0…7");
	if ((v = http_req_query(r, "parity")) && !(o->parity = parity_code(v)))
		return bad_arg(r, "parity", "none, odd or even");
	if ((v = http_req_query(r, "stop_bits"))) {
		if (legacy_parse_index(v, 2, &n) < 0 || n < 1)
			return bad_arg(r, "stop_bits", "1 or 2");
		o->stop = (int)n;
	}
	if ((v = http_req_query(r, "from")) &&
	    (legacy_parse_index(v, 247, &o->first) < 0 || o->first < 1))
		return bad_arg(r, "from", "an address 1…247");
	if ((v = http_req_query(r, "to")) &&
	    (legacy_parse_index(v, 247, &o->last) < 0 || o->last < 1))
		return bad_arg(r, "to", "an address 1…247");
	if (o->first > o->last) {
		http_reply_error(r, 400, "from %ld is after to %ld", o->first, o->last);
		return false;
	}
	return true;
}

/* Result as sgctl scan: {"devices": [{"address", "model", "serial", …}]}. */
void rest_get_scan(struct http_req *r, const char *param)
{
	struct app *a = http_req_app(r);
	struct scan_args o = {.first = 1, .last = 247};
	int rc;

	(void)param;
	if (!scan_query(r, &o))
		return;
	if (poll_scanning(a->poll)) {
		http_reply_error(r, 409, "a scan is already running");
		return;
	}
	http_req_defer(r);
	rc = poll_scan(a->poll, o.baud, o.parity, o.stop, (int)o.first, (int)o.last, rest_op_done,
		       r);
	if (rc == -ENODEV)
		http_reply_error(r, 503, "this board has no RS485 port configured");
	else if (rc < 0)
		start_failed(r, rc, "scan");
}

/* ---- POST /api/rs485/set-parameters ---- */

struct setparam {
	long addr, new_addr, baud, parity, stop; /* -1 = keep */
	const char *model;
};

/* Members as sgctl set-parameters ADDR MODEL [address=] [baud=] [parity=]
 * [stop_bits=]; false after a 400 naming the bad one. */
static bool setparam_body(struct http_req *r, json_t *body, struct setparam *p)
{
	static const char *const members[] = {"address", "model",     "new_address", "baud_rate",
					      "parity",	 "stop_bits", NULL};
	static const struct {
		const char *name;
		long lo, hi;
	} opt[] = {
	    {"new_address", 1, 247}, {"baud_rate", 0, 7}, {"parity", 0, 2}, {"stop_bits", 0, 1}};
	long *dst[] = {&p->new_addr, &p->baud, &p->parity, &p->stop};
	json_t *model = json_object_get(body, "model");
	int rc;

	if (!only_members(r, body, members,
			  "address, model, new_address, baud_rate, parity, stop_bits"))
		return false;
	rc = int_member(r, json_object_get(body, "address"), "address", 1, 247, &p->addr);
	if (rc == -ENOENT)
		http_reply_error(r, 400, "address: missing (the device's Modbus address, 1…247)");
	if (rc < 0)
		return false;
	if (!json_is_string(model) || !json_string_length(model)) {
		http_reply_error(r, 400,
				 "model: expected the model the scan reported (\"WM3M4C\")");
		return false;
	}
	p->model = json_string_value(model);
	for (size_t i = 0; i < N(opt); i++) {
		*dst[i] = -1;
		if (int_member(r, json_object_get(body, opt[i].name), opt[i].name, opt[i].lo,
			       opt[i].hi, dst[i]) == -EINVAL)
			return false;
	}
	return true;
}

/* The model must have a description with the registers asked for; checked
 * here to name the problem before the bus is touched. */
static bool setparam_model_ok(struct http_req *r, struct app *a, const struct setparam *p)
{
	const struct desc *ds = desc_match(&a->descs, p->model);
	char clip[REST_CLIP_LEN];

	if (!ds)
		http_reply_error(r, 400, "model '%s': no device description matches it",
				 rest_clip(p->model, clip));
	else if (p->new_addr >= 0 && !ds->comm_addr.present)
		http_reply_error(r, 400, "model '%s' cannot change its Modbus address over the bus",
				 rest_clip(p->model, clip));
	return ds && (p->new_addr < 0 || ds->comm_addr.present);
}

void rest_post_set_parameters(struct http_req *r, const char *param)
{
	struct app *a = http_req_app(r);
	char clip[REST_CLIP_LEN];
	struct setparam p;
	int rc;

	(void)param;
	if (!setparam_body(r, http_req_body(r), &p) || !setparam_model_ok(r, a, &p))
		return;
	http_req_defer(r);
	rc = poll_set_parameters(a->poll, (int)p.addr, p.model, (int)p.new_addr, (int)p.baud,
				 (int)p.parity, (int)p.stop, rest_op_done, r);
	if (rc == -ENOTSUP)
		http_reply_error(r, 400, "model '%s' has no writable communication registers",
				 rest_clip(p.model, clip));
	else if (rc == -ENODEV)
		http_reply_error(r, 503, "this board has no RS485 port configured");
	else if (rc < 0)
		start_failed(r, rc, "set-parameters");
}
