/* The operations table: finds a command, checks its arguments against its
 * schema, runs its handler and delivers exactly one completion to the
 * front-end that asked, unless that front-end has gone meanwhile. */
#include "sg/ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_int.h"
#include "sg/devop.h"
#include "sg/log.h"

#define CLIP_LEN 36

struct ops_call {
	struct ops *ops;
	struct ops_call *next; /* in flight */
	const struct ops_def *def;
	enum ops_origin from;
	ops_done_cb done; /* NULL once the front-end has gone */
	void *arg;
	void *data;
};

struct ops {
	struct ops_env env;
	struct ops_call *calls;
};

/* Every command of every table; a table ends with {NULL}. */
static const struct ops_def *const tables[] = {
    ops_core_defs, ops_dev_defs, ops_settings_defs, ops_hist_defs, ops_gw_defs,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int ops_init(struct ops **out, const struct ops_env *env)
{
	struct ops *o = calloc(1, sizeof(*o));

	if (!o)
		return -ENOMEM;
	o->env = *env;
	*out = o;
	return 0;
}

static void call_free(struct ops_call *c)
{
	free(c->data);
	free(c);
}

void ops_fini(struct ops *o)
{
	if (!o)
		return;
	while (o->calls) {
		struct ops_call *c = o->calls;

		o->calls = c->next;
		call_free(c);
	}
	free(o);
}

void ops_forget(struct ops *o, void *arg)
{
	for (struct ops_call *c = o ? o->calls : NULL; c; c = c->next)
		if (c->arg == arg)
			c->done = NULL;
}

const struct ops_def *ops_find(const char *name)
{
	for (size_t t = 0; t < N(tables); t++)
		for (const struct ops_def *d = tables[t]; d->name; d++)
			if (!strcmp(d->name, name))
				return d;
	return NULL;
}

static enum ops_status bad(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum ops_status bad(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return OPS_BAD_REQUEST;
}

static const struct ops_arg *arg_of(const struct ops_def *def, const char *name)
{
	for (const struct ops_arg *a = def->args; a && a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

static void arg_list(const struct ops_def *def, char *buf, size_t len)
{
	buf[0] = '\0';
	for (const struct ops_arg *a = def->args; a && a->name; a++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", a == def->args ? "" : ", ",
			 a->name);
	if (!buf[0])
		snprintf(buf, len, "no arguments");
}

static bool in_range(const struct ops_arg *a, double v)
{
	return v >= (double)a->lo && v <= (double)a->hi;
}

/* One member against its schema entry. */
static enum ops_status check_value(const struct ops_arg *a, json_t *v, char *msg, size_t len)
{
	const char *help = a->help ? a->help : NULL;
	size_t n;

	switch (a->type) {
	case OPS_T_INT:
		if (json_is_integer(v) && in_range(a, (double)json_integer_value(v)))
			return OPS_OK;
		if (help)
			return bad(msg, len, "%s: expected %s", a->name, help);
		return bad(msg, len, "%s: expected an integer %ld…%ld", a->name, a->lo, a->hi);
	case OPS_T_NUM:
		if (json_is_number(v) && in_range(a, json_number_value(v)))
			return OPS_OK;
		if (help)
			return bad(msg, len, "%s: expected %s", a->name, help);
		return bad(msg, len, "%s: expected a number %ld…%ld", a->name, a->lo, a->hi);
	case OPS_T_STR:
		n = json_string_length(v);
		if (json_is_string(v) && n >= (size_t)a->lo && n <= (size_t)a->hi &&
		    strlen(json_string_value(v)) == n)
			return OPS_OK;
		if (help)
			return bad(msg, len, "%s: expected %s", a->name, help);
		return bad(msg, len, "%s: expected a string of %ld…%ld bytes", a->name, a->lo,
			   a->hi);
	case OPS_T_BOOL:
		if (json_is_boolean(v))
			return OPS_OK;
		return bad(msg, len, "%s: expected %s", a->name, help ? help : "true or false");
	case OPS_T_OBJECT:
		if (json_is_object(v))
			return OPS_OK;
		return bad(msg, len, "%s: expected %s", a->name, help ? help : "an object");
	case OPS_T_ARRAY:
		n = json_array_size(v);
		if (json_is_array(v) && n >= (size_t)a->lo && n <= (size_t)a->hi)
			return OPS_OK;
		if (help)
			return bad(msg, len, "%s: expected %s", a->name, help);
		return bad(msg, len, "%s: expected an array of %ld…%ld elements", a->name, a->lo,
			   a->hi);
	case OPS_T_ANY:
		return OPS_OK;
	}
	return bad(msg, len, "%s: unsupported schema type", a->name);
}

enum ops_status ops_check(const struct ops_def *def, json_t *cmd, char *msg, size_t len)
{
	char list[256], clipped[CLIP_LEN];
	const char *key;
	json_t *v;
	enum ops_status st;

	if (!json_is_object(cmd))
		return bad(msg, len, "a command is a JSON object");
	json_object_foreach(cmd, key, v)
	{
		const struct ops_arg *a = arg_of(def, key);

		if (!strcmp(key, "cmd"))
			continue;
		if (!a && !(def->flags & OPS_ARGS_OPEN)) {
			arg_list(def, list, sizeof(list));
			return bad(msg, len, "unknown member '%s' (%s takes %s)",
				   ops_clip(key, clipped, sizeof(clipped)), def->name, list);
		}
		if (a && (st = check_value(a, v, msg, len)) != OPS_OK)
			return st;
	}
	for (const struct ops_arg *a = def->args; a && a->name; a++)
		if ((a->flags & OPS_REQUIRED) && !json_object_get(cmd, a->name))
			return bad(msg, len, "%s: missing (%s)", a->name,
				   a->help ? a->help : "required");
	return OPS_OK;
}

/* The command's definition, or a refusal naming the known commands. */
static const struct ops_def *find_cmd(json_t *cmd, char *msg, size_t len)
{
	json_t *name = json_object_get(cmd, "cmd");
	char clipped[CLIP_LEN];
	const struct ops_def *def;

	if (!json_is_object(cmd)) {
		bad(msg, len, "a command is a JSON object");
		return NULL;
	}
	if (!json_is_string(name) || !json_string_length(name)) {
		bad(msg, len, "cmd: missing (the name of the command)");
		return NULL;
	}
	def = ops_find(json_string_value(name));
	if (!def)
		bad(msg, len, "unknown command '%s'",
		    ops_clip(json_string_value(name), clipped, sizeof(clipped)));
	return def;
}

void ops_run(struct ops *o, json_t *cmd, enum ops_origin from, ops_done_cb done, void *arg)
{
	char msg[OPS_MSG_MAX];
	const struct ops_def *def = find_cmd(cmd, msg, sizeof(msg));
	enum ops_status st = def ? ops_check(def, cmd, msg, sizeof(msg)) : OPS_BAD_REQUEST;
	struct ops_call *c;

	if (st != OPS_OK) {
		done(st, msg, NULL, arg);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		done(OPS_INTERNAL, "out of memory", NULL, arg);
		return;
	}
	*c = (struct ops_call){.ops = o, .def = def, .from = from, .done = done, .arg = arg};
	c->next = o->calls;
	o->calls = c;
	def->run(c, cmd);
}

/* Unlink c, then tell its front-end (which may start another call). */
static void finish(struct ops_call *c, enum ops_status st, const char *msg, json_t *res)
{
	struct ops_call **pp = &c->ops->calls;
	ops_done_cb done = c->done;
	void *arg = c->arg;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	call_free(c);
	if (done)
		done(st, msg, st == OPS_OK ? res : NULL, arg);
	else
		json_decref(res);
}

void ops_reply(struct ops_call *c, json_t *result)
{
	finish(c, OPS_OK, NULL, result);
}

void ops_fail(struct ops_call *c, enum ops_status st, const char *fmt, ...)
{
	char msg[OPS_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' '; /* one line, whatever a device or client put in it */
	finish(c, st == OPS_OK ? OPS_INTERNAL : st, msg, NULL);
}

void *ops_call_data(struct ops_call *c, size_t size)
{
	if (!c->data)
		c->data = calloc(1, size);
	return c->data;
}

const struct ops_env *ops_call_env(const struct ops_call *c)
{
	return &c->ops->env;
}

struct ops *ops_call_ops(const struct ops_call *c)
{
	return c->ops;
}

enum ops_origin ops_call_origin(const struct ops_call *c)
{
	return c->from;
}

const char *ops_call_name(const struct ops_call *c)
{
	return c->def->name;
}

/* ---- the front-ends' mappings ---- */

unsigned ops_http_status(enum ops_status st)
{
	static const unsigned status[] = {
	    [OPS_OK] = 200,
	    [OPS_BAD_REQUEST] = 400,
	    [OPS_FORBIDDEN] = 403,
	    [OPS_NOT_FOUND] = 404,
	    [OPS_BUSY] = 409,
	    [OPS_INTERNAL] = 500,
	    [OPS_NOT_IMPLEMENTED] = 501,
	    [OPS_DEVICE_ERROR] = 502,
	    [OPS_UNAVAILABLE] = 503,
	    [OPS_NO_ANSWER] = 504,
	};

	return (unsigned)st < N(status) ? status[st] : 500;
}

int ops_exit_code(enum ops_status st)
{
	return st == OPS_OK ? 0 : 1;
}

const char *ops_status_name(enum ops_status st)
{
	static const char *const name[] = {
	    [OPS_OK] = "ok",
	    [OPS_BAD_REQUEST] = "bad_request",
	    [OPS_FORBIDDEN] = "forbidden",
	    [OPS_NOT_FOUND] = "not_found",
	    [OPS_BUSY] = "busy",
	    [OPS_INTERNAL] = "internal",
	    [OPS_NOT_IMPLEMENTED] = "not_implemented",
	    [OPS_DEVICE_ERROR] = "device_error",
	    [OPS_UNAVAILABLE] = "unavailable",
	    [OPS_NO_ANSWER] = "no_answer",
	};

	return (unsigned)st < N(name) ? name[st] : "internal";
}

enum ops_status ops_status_of_err(int err)
{
	static const enum ops_status st[] = {
	    [DEVOP_NO_ANSWER] = OPS_NO_ANSWER,	   [DEVOP_EXCEPTION] = OPS_DEVICE_ERROR,
	    [DEVOP_STOPPED] = OPS_UNAVAILABLE,	   [DEVOP_BUSY] = OPS_BUSY,
	    [DEVOP_BAD_REQUEST] = OPS_BAD_REQUEST, [DEVOP_INTERNAL] = OPS_INTERNAL,
	};

	return st[devop_classify(err)];
}

/* ---- helpers for handlers ---- */

void ops_reply_doc(struct ops_call *c, json_t *doc)
{
	if (doc)
		ops_reply(c, doc);
	else
		ops_fail(c, OPS_INTERNAL, "out of memory");
}

const char *ops_clip(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s && s[i] && i + 1 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

bool ops_printable(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7F)
			return false;
	return true;
}
