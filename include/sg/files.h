/* The file-manager folder (R-F6): <state_dir>/files. Certificates, keys,
 * automation.json and tariffs.json live there; settings and commands name a
 * file by its plain name, never by a path. */
#ifndef SG_FILES_H
#define SG_FILES_H

#include <stddef.h>

#define FILES_NAME_MAX 64

/* True for a plain file name: 1…FILES_NAME_MAX-1 chars of [A-Za-z0-9._-], not starting with '.'. */
int files_name_ok(const char *name);
/* "<state_dir>/files/<name>" for a valid name; 0, -EINVAL (bad name) or -ENAMETOOLONG. */
int files_path(const char *state_dir, const char *name, char *out, size_t len);
/* Create the folder if missing (0750); 0 or -errno. */
int files_dir_ensure(const char *state_dir);
/* Write data to name atomically (temp file, fsync, rename), mode 0640; 0 or -errno. */
int files_write(const char *state_dir, const char *name, const void *data, size_t len);

#endif
