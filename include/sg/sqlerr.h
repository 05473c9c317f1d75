/* SQLite result codes in the -errno convention the rest of sgd uses, shared
 * by the settings/event store, history.db and the MQTT outbox. */
#ifndef SG_SQLERR_H
#define SG_SQLERR_H

#include <sqlite3.h>

/* 0 for OK/ROW/DONE; -ENOMEM, -EBUSY, -EACCES, -ENOSPC, -EMSGSIZE (a value
 * too big), the system errno of a failed open, -EBADMSG for a damaged file,
 * else -EIO. db may be NULL. */
int sqlite_errno(sqlite3 *db, int rc);

#endif
