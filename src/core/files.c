/* The file-manager folder: names are validated here once for every user. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg/files.h"

int files_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n >= FILES_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int files_path(const char *state_dir, const char *name, char *out, size_t len)
{
	int n;

	if (!files_name_ok(name))
		return -EINVAL;
	n = snprintf(out, len, "%s/files/%s", state_dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int files_dir_ensure(const char *state_dir)
{
	char dir[512];

	if ((size_t)snprintf(dir, sizeof(dir), "%s/files", state_dir) >= sizeof(dir))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int files_write(const char *state_dir, const char *name, const void *data, size_t len)
{
	char path[512], tmp[520];
	int fd, r;

	if ((r = files_path(state_dir, name, path, sizeof(path))) < 0)
		return r;
	if ((r = files_dir_ensure(state_dir)) < 0)
		return r;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}
