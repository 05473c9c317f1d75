/* Damaged state files (settings.json, history.db, outbox.db) are kept for
 * inspection, each under a name of its own with the time it was set aside:
 * "<file>.bad-20261203T194501Z" ("-2", "-3"… for more in the same second).
 * Only the newest few per file are kept so a file damaged at every start
 * cannot fill the disk. */
#ifndef SG_QUARANTINE_H
#define SG_QUARANTINE_H

#include <stddef.h>

/* Copies kept per file by the daemon's callers. */
#define QUARANTINE_KEEP 5

/* Move path to "<path>.bad-<UTC time of clock_wall()>[-N]", never over an
 * earlier copy, and each existing "<path><sibling>" (NULL-terminated list,
 * e.g. "-wal", "-shm"; may be NULL) to the same name plus its suffix, so an
 * SQLite file and its WAL stay together (a sibling that cannot be moved is
 * deleted: it must not join the next file of that name). Then delete all but
 * the newest keep copies. The new name goes to out (may be NULL). 0, or
 * -errno when path itself cannot be moved (-ENOENT if it does not exist).
 * keep 0 deletes nothing. */
int quarantine_file(const char *path, const char *const *siblings, unsigned keep, char *out,
		    size_t outlen);

#endif
