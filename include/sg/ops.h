/* The one table of operations every front-end calls: REST, MQTT commands,
 * the control socket (sgctl) and the automation engine build the same JSON
 * command object {"cmd": NAME, ARG: …} and hand it to ops_run. The table
 * holds each command's strict argument schema (unknown, missing or mistyped
 * members are refused by name before the handler runs) and its handler,
 * which holds the business rules once. Every call ends in exactly one
 * completion with one status class that each front-end maps to its own
 * form (HTTP status + JSON, MQTT error reply, sgctl exit code + message).
 *
 * Adding a command: one entry in a table of src/ops/ (struct ops_def with
 * its args) plus its handler; no front-end changes beyond its own syntax. */
#ifndef SG_OPS_H
#define SG_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sg/conf.h"

#define OPS_MSG_MAX 256
#define OPS_NAME_MAX 40

struct ops;
struct ops_call;
struct loop;
struct settings;
struct store;
struct poll;
struct reg;
struct hist;
struct desc_set;
struct bus;

/* How an operation ended; front-ends map it (ops_http_status, ops_exit_code). */
enum ops_status {
	OPS_OK = 0,
	OPS_BAD_REQUEST,     /* the command itself is refused: schema or values */
	OPS_FORBIDDEN,	     /* a rule refuses it (e.g. the Right IR Bicom's relay mode) */
	OPS_NOT_FOUND,	     /* no such device / slot / record */
	OPS_BUSY,	     /* a scan holds the bus, the queue is full, one is running */
	OPS_INTERNAL,	     /* the gateway's own trouble (memory, storage) */
	OPS_NOT_IMPLEMENTED, /* accepted by the schema, not built (yet) */
	OPS_DEVICE_ERROR,    /* the device answered with an exception or unusable data */
	OPS_UNAVAILABLE,     /* device not answering / not identified, bus stopped, no port */
	OPS_NO_ANSWER,	     /* the device did not answer the request */
};

/* Who sends the command: for the few answers whose shape a front-end's
 * published contract fixes (the handler may look; rules never differ). */
enum ops_origin { OPS_FROM_REST, OPS_FROM_MQTT, OPS_FROM_CTL, OPS_FROM_AUTO, OPS_FROM_TEST };

/* The completion: st OPS_OK with result (owned by the callee, may be NULL),
 * else msg (one line, never NULL) and result NULL. Called exactly once per
 * ops_run, possibly before ops_run returns. */
typedef void (*ops_done_cb)(enum ops_status st, const char *msg, json_t *result, void *arg);

/* The handles operations act on; owned by the caller, outliving the ops. */
struct ops_env {
	struct loop *loop;
	struct settings *settings;
	struct store *store; /* event log */
	struct poll *poll;   /* the Modbus reader's on-demand operations */
	struct reg *reg;     /* the devices, the bus ownership (a scan) */
	struct hist *hist;   /* NULL when history.db cannot be used */
	const struct conf *conf;
	const struct desc_set *descs;
	/* appended by ops-b: what the status document shows */
	struct bus *const *buses; /* CONF_BUS_COUNT entries, NULL for a port the board lacks */
	int64_t start_mono_ms;	  /* when the gateway started (uptime) */
};

/* Argument types of a schema. */
enum ops_type {
	OPS_T_INT,    /* JSON integer in lo…hi */
	OPS_T_NUM,    /* JSON number (integer or real) in lo…hi */
	OPS_T_STR,    /* JSON string of lo…hi bytes, no NUL */
	OPS_T_BOOL,   /* true / false */
	OPS_T_OBJECT, /* any JSON object (the handler checks its members) */
	OPS_T_ARRAY,  /* JSON array of lo…hi elements (the handler checks them) */
	OPS_T_ANY,    /* any JSON value (the handler checks it) */
};

#define OPS_REQUIRED 1u

/* One member of a command's arguments. */
struct ops_arg {
	const char *name;
	enum ops_type type;
	unsigned flags;
	long lo, hi;	  /* range (INT, NUM), length (STR), elements (ARRAY) */
	const char *help; /* what is expected, for messages: "Bicom address 0…247" */
};

/* Runs a validated command; it finishes c through ops_reply/ops_fail, now
 * or later from a completion. */
typedef void (*ops_run_fn)(struct ops_call *c, json_t *args);

#define OPS_ARGS_OPEN 1u /* members beyond args are the handler's to check */

/* One command of the table. */
struct ops_def {
	const char *name;
	const struct ops_arg *args; /* terminated by {NULL}; NULL = no arguments */
	unsigned flags;
	ops_run_fn run;
};

/* Create the operations over env (copied). */
int ops_init(struct ops **out, const struct ops_env *env);
/* Free, with the calls still in flight (call after the readers stopped:
 * their completions no longer come). */
void ops_fini(struct ops *o);
/* Run cmd ({"cmd": name, …}; borrowed): done is called exactly once. */
void ops_run(struct ops *o, json_t *cmd, enum ops_origin from, ops_done_cb done, void *arg);
/* The front-end behind arg has gone (client closed): its calls in flight
 * finish without calling done. */
void ops_forget(struct ops *o, void *arg);
/* The definition of a command, or NULL. */
const struct ops_def *ops_find(const char *name);
/* Validate args against def's schema without running: OPS_OK, or
 * OPS_BAD_REQUEST with the reason naming the member in msg. */
enum ops_status ops_check(const struct ops_def *def, json_t *cmd, char *msg, size_t len);

/* ---- for handlers (src/ops/) ---- */

/* The environment of a call. */
const struct ops_env *ops_call_env(const struct ops_call *c);
/* The ops a call runs in. */
struct ops *ops_call_ops(const struct ops_call *c);
/* Where the call came from. */
enum ops_origin ops_call_origin(const struct ops_call *c);
/* The command's name. */
const char *ops_call_name(const struct ops_call *c);
/* Finish with success; result is stolen (may be NULL). Frees c. */
void ops_reply(struct ops_call *c, json_t *result);
/* Finish with a failure and a one-line message. Frees c. */
void ops_fail(struct ops_call *c, enum ops_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Per-call scratch space for a handler's asynchronous state (zeroed, freed with c). */
void *ops_call_data(struct ops_call *c, size_t size);

/* ---- for front-ends ---- */

/* HTTP status of a status class (200 for OPS_OK). */
unsigned ops_http_status(enum ops_status st);
/* sgctl exit code of a status class: 0 ok, 1 any failure (2 is sgctl's own
 * usage error, found before anything is sent). */
int ops_exit_code(enum ops_status st);
/* Short name of a status class ("ok", "bad_request", "busy", …). */
const char *ops_status_name(enum ops_status st);
/* The status class of a bus / reader error (< 0) of an on-demand operation. */
enum ops_status ops_status_of_err(int err);

/* ---- helpers for handlers (appended by ops-a) ---- */

/* Finish with doc (stolen), or with OPS_INTERNAL when it could not be built (NULL). */
void ops_reply_doc(struct ops_call *c, json_t *doc);
/* Client text made safe to quote in one line: printable ASCII, at most len-1 bytes. */
const char *ops_clip(const char *s, char *buf, size_t len);
/* True when s has only printable ASCII and no space (serial numbers, URIs). */
bool ops_printable(const char *s);
/* True when the gateway may switch the Bicom in slot: the Right IR Bicom
 * follows the IR counter in relay mode 2 (the bicom command's rule, for
 * documents that show it, such as GET /api/bicoms' "controllable"). */
bool ops_bicom_switchable(const struct settings *s, int slot);

#endif
