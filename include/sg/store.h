/* The SQLite store (WAL): schema version table, migrations, device event log,
 * pulse counter. History tables arrive with the history feature. */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Open (create) the database at path and migrate it to the current schema;
 * 0 or -errno with a message in err. */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
/* Close. */
void store_close(struct store *st);
/* Schema version currently applied. */
int store_schema_version(struct store *st);
/* Append an event (kind: "error", "recovered", "info", …) for a slot (-1 = gateway). */
int store_event_add(struct store *st, int64_t ts_ms, int slot, const char *kind, const char *msg);
/* The newest limit events, newest first, as a JSON array of
 * {"ts": ms, "slot": n, "kind": "...", "msg": "..."}; NULL on error. */
json_t *store_events_json(struct store *st, int limit);
/* Persisted pulse count (0 when never stored). */
int store_pulse_get(struct store *st, uint64_t *pulses);
/* Persist the pulse count. */
int store_pulse_set(struct store *st, uint64_t pulses);

#endif
