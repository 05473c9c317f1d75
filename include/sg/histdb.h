/* history.db: the long-lived history database in the state directory (load
 * profile, recorders, tariff counters). One connection owned by the daemon's
 * main thread; WAL with synchronous=FULL, so every commit that returned is on
 * disk (kill -9, power loss). Each module keeps its own schema version in the
 * schema_modules table and brings its tables up to date with histdb_schema. */
#ifndef SG_HISTDB_H
#define SG_HISTDB_H

#include <sqlite3.h>
#include <stddef.h>

#include "sg/sqlerr.h"

struct histdb;

/* Open (create) the database at path. A file that is not a database or fails
 * PRAGMA quick_check is renamed to PATH.bad (its WAL to PATH.bad-wal), logged,
 * and a new empty database is created in its place. 0 or -errno with a message
 * in err. */
int histdb_open(const char *path, struct histdb **out, char *err, size_t len);
/* The connection, for the modules' own statements. */
sqlite3 *histdb_sqlite(struct histdb *h);
/* Apply migrations[version…n-1] of module, each in its own transaction that
 * also records the new version; an interrupted upgrade resumes where it
 * stopped. -EPROTONOSUPPORT when the file has a newer version of module than
 * n (written by a newer sgd); other failures -errno. Errors are logged. */
int histdb_schema(struct histdb *h, const char *module, const char *const *migrations, int n);
/* Schema version of module (0 = never created, <0 -errno). */
int histdb_version(struct histdb *h, const char *module);
/* True when the last histdb_open set a damaged file aside. */
int histdb_recovered(struct histdb *h);
/* Close (NULL is fine); the last close checkpoints the WAL. */
void histdb_close(struct histdb *h);

#endif
