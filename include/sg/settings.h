/* User settings: every key of the Iskra gateway's get_settings (000 §4.2.1)
 * plus the newer ones of 001, typed, range-checked, persisted atomically as
 * settings.json under the state directory with a CRC. */
#ifndef SG_SETTINGS_H
#define SG_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum set_type { SET_INT, SET_STR };

struct set_def {
	const char *key;
	enum set_type type;
	long min, max; /* SET_INT: allowed range */
	size_t maxlen; /* SET_STR: longest accepted length in bytes */
	long def_int;
	const char *def_str;
	bool secret;   /* never returned by settings_to_json(..., false) */
	bool readonly; /* shown, not settable (serial_number, model_type) */
};

struct settings;

/* Where the values in use came from (GET /api settings_file, sgctl status). */
enum settings_origin {
	SETTINGS_DEFAULTS,  /* no file yet, or every copy damaged */
	SETTINGS_FROM_FILE, /* settings.json */
	SETTINGS_FROM_PREV, /* settings.json was damaged; its last good copy */
};

#define SETTINGS_ERROR_MAX 640

/* Create settings holding defaults; identity fills serial_number/model_type
 * and the serial-based defaults (MQTT root topics). 0 or -errno. */
int settings_init(struct settings **out, const char *state_dir, const char *serial,
		  const char *model);
/* Free. */
void settings_fini(struct settings *s);
/* Load settings.json from the state dir; a missing file keeps defaults. A
 * broken file or CRC mismatch is set aside (settings.json.bad-<time>, see
 * quarantine.h) and the last good copy settings.json.prev (written with every
 * save) is loaded instead, and written back as settings.json; if that is
 * missing or damaged too, what is in memory stays (the defaults at start).
 * Then -EBADMSG, with what happened in err and in settings_load_error(). */
int settings_load(struct settings *s, char *err, size_t errlen);
/* The definition of key, or NULL if unknown. */
const struct set_def *settings_def(const char *key);
/* Number of keys and the i-th definition (for listing). */
size_t settings_count(void);
const struct set_def *settings_def_at(size_t i);
/* Current value of an integer key (aborts on unknown/str key: programming error). */
long settings_int(const struct settings *s, const char *key);
/* Current value of a string key. */
const char *settings_str(const struct settings *s, const char *key);
/* Validate every member of obj (key → number or string) and, only if all are
 * valid, apply them and persist; else nothing changes and err names the first
 * bad key with the allowed range. 0, -EINVAL (bad input), -EBUSY (called
 * from a subscriber's callback) or -errno (I/O). Subscribers of the keys it
 * names are told (see below). */
int settings_set_json(struct settings *s, json_t *obj, char *err, size_t errlen);
/* Same from "key=value" strings (CLI). */
int settings_set_kv(struct settings *s, char *const *kv, int n, char *err, size_t errlen);
/* All settings as a JSON object; secrets included only if with_secrets. */
json_t *settings_to_json(const struct settings *s, bool with_secrets);
/* CRC-32 of the canonical serialisation (shown on the status page). */
uint32_t settings_crc(const struct settings *s);
/* Restore defaults and persist; every subscriber is told. */
int settings_factory_reset(struct settings *s);
/* Bumped on every successful change, so owners can tell they must re-read. */
unsigned settings_generation(const struct settings *s);
/* ---- subscriptions ----
 * An owner of state that follows settings (the poller, the HTTP and Modbus
 * servers, the push links, history…) names the keys it depends on and is
 * told once per accepted change that touched at least one of them:
 *  - settings_set_json / settings_set_kv: the keys the change names and
 *    applies (a key sent with its current value counts, so re-sending a port
 *    retries a bind that failed; a secret sent as "" or a read-only key sent
 *    with its value is no change and touches nothing);
 *  - settings_factory_reset: every key;
 *  - settings_load (SIGHUP): every key, when values were taken from a file.
 * A refused change (bad input, I/O error) tells nobody. Owners read their
 * first configuration in their own init: the load at start-up runs before
 * anybody subscribes. Subscribers are told in the order they subscribed,
 * synchronously, after the new values are in place and persisted; a
 * subscriber must not change settings from its callback (-EBUSY). */

/* Told with the settings after a change that touched one of its keys. */
typedef void (*settings_cb)(const struct settings *s, void *arg);

#define SETTINGS_SUBSCRIBERS_MAX 32

/* Subscribe cb(arg) to keys: a NULL-terminated list of exact key names, or
 * families written as a prefix followed by '*' ("rs485_type_*" is every
 * rs485_type_N, "mqtt1_*" every key of link 1, "*" every key). A name or a
 * family that matches no key is a programming error: -EINVAL, nothing
 * subscribed. -ENOSPC beyond SETTINGS_SUBSCRIBERS_MAX. 0 on success. */
int settings_subscribe(struct settings *s, const char *const *keys, settings_cb cb, void *arg);
/* Remove the subscription of cb(arg) (call before arg goes away); 0 or -ENOENT. */
int settings_unsubscribe(struct settings *s, settings_cb cb, void *arg);

/* Where the values came from at the last settings_load(). */
enum settings_origin settings_origin(const struct settings *s);
/* "settings.json", "settings.json.prev" or "defaults". */
const char *settings_origin_name(enum settings_origin o);
/* What went wrong at the last settings_load(), "" if nothing. */
const char *settings_load_error(const struct settings *s);

#endif
