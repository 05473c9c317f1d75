/* Static files of the web UI. The URL arrives %-decoded from MHD, so ".."
 * and friends are refused on the decoded text; the file is then opened
 * beneath the web root with openat2(RESOLVE_BENEATH) where the kernel has it,
 * and with symlinks refused otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http_int.h"

#define PATH_LEN 256

static const struct {
	const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".csv", "text/csv; charset=utf-8"},
    {".woff2", "font/woff2"},
};

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* A relative path of plain segments: no "", ".", ".." or hidden segment, no
 * backslash or control character. */
static bool safe_path(const char *rel)
{
	const char *seg = rel;

	if (!*rel)
		return false;
	for (const char *p = rel;; p++) {
		if (*p == '/' || !*p) {
			size_t n = (size_t)(p - seg);

			if (!n || seg[0] == '.')
				return false;
			if (!*p)
				return true;
			seg = p + 1;
		} else if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) {
			return false;
		}
	}
}

static int open_beneath(int dirfd, const char *rel)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
			       .resolve =
				   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return (int)fd;
	/* No openat2 (old kernel, seccomp): segments were checked; refuse a final symlink. */
	return openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
}

void http_static(struct http_req *r, int www_fd, const char *url, const char *method)
{
	char rel[PATH_LEN];
	struct stat st;
	int fd;

	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		http_reply_error(r, 405, "method %s not allowed on %s", method, url);
		return;
	}
	if (url[0] != '/' || strlen(url) >= PATH_LEN - 16) {
		http_reply_error(r, 400, "bad path");
		return;
	}
	snprintf(rel, sizeof(rel), "%s%s", url + 1,
		 url[strlen(url) - 1] == '/' ? "index.html" : "");
	if (!safe_path(rel)) {
		http_reply_error(r, 400, "bad path");
		return;
	}
	if (www_fd < 0) {
		http_reply_error(r, 404, "the web UI is not installed");
		return;
	}
	fd = open_beneath(www_fd, rel);
	if (fd < 0) {
		http_reply_error(r, 404, "not found: %s", url);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		http_reply_error(r, 404, "not found: %s", url);
		return;
	}
	http_reply_fd(r, 200, content_type(rel), fd, (uint64_t)st.st_size);
}
