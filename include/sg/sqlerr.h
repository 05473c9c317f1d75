/* SQLite result codes in the -errno convention the rest of sgd uses, shared
 * by the settings/event store and history.db. */
#ifndef SG_SQLERR_H
#define SG_SQLERR_H

#include <sqlite3.h>

/* 0 for OK/ROW/DONE; -ENOMEM, -EBUSY, -EACCES, -ENOSPC, the system errno of a
 * failed open, -EBADMSG for a damaged file, else -EIO. */
int sqlite_errno(sqlite3 *db, int rc);

#endif
