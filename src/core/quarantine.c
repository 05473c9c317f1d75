/* Timestamped quarantine of damaged state files, bounded per file. */
#include "sg/quarantine.h"
#include "sg/clock.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAMP_LEN 16 /* 20261203T194501Z */
/* More copies than this in one second means something loops: give up. */
#define SAME_SECOND_MAX 1000

struct copy {
	char stamp[STAMP_LEN + 1];
	unsigned n; /* 1 for the first of its second */
};

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0 || errno != ENOENT;
}

/* "<path>.bad-STAMP" or "<path>.bad-STAMP-N"; false if it would not fit. */
static bool copy_name(char *buf, size_t len, const char *path, const char *stamp, unsigned n)
{
	int r = n == 1 ? snprintf(buf, len, "%s.bad-%s", path, stamp)
		       : snprintf(buf, len, "%s.bad-%s-%u", path, stamp, n);

	return r > 0 && (size_t)r < len;
}

static bool is_stamp(const char *s)
{
	for (int i = 0; i < STAMP_LEN; i++) {
		char c = s[i];

		if (i == 8 ? c != 'T' : i == 15 ? c != 'Z' : !(c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Parse "STAMP[-N][sibling]" (what follows "<base>.bad-"). */
static bool parse_copy(const char *s, const char *const *sib, struct copy *c)
{
	char *end;

	if (strlen(s) < STAMP_LEN || !is_stamp(s))
		return false;
	memcpy(c->stamp, s, STAMP_LEN);
	c->stamp[STAMP_LEN] = '\0';
	s += STAMP_LEN;
	c->n = 1;
	if (s[0] == '-' && s[1] >= '1' && s[1] <= '9') {
		unsigned long n = strtoul(s + 1, &end, 10);

		if (n > SAME_SECOND_MAX)
			return false;
		c->n = (unsigned)n;
		s = end;
	}
	if (!*s)
		return true;
	for (size_t i = 0; sib && sib[i]; i++)
		if (!strcmp(s, sib[i]))
			return true;
	return false;
}

/* Newest first. */
static int copy_cmp(const void *a, const void *b)
{
	const struct copy *x = a, *y = b;
	int r = strcmp(y->stamp, x->stamp);

	return r ? r : (y->n > x->n) - (y->n < x->n);
}

static bool known(const struct copy *v, size_t n, const struct copy *c)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].stamp, c->stamp) && v[i].n == c->n)
			return true;
	return false;
}

static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash)
		snprintf(dir, len, "%.*s", slash > path ? (int)(slash - path) : 1, path);
	else
		snprintf(dir, len, ".");
}

/* The distinct copies of path in its directory (a file and its siblings
 * are one copy); *out is malloc'd. -errno on failure. */
static int list_copies(const char *dir, const char *base, const char *const *sib, struct copy **out,
		       size_t *count)
{
	size_t blen = strlen(base), n = 0, cap = 0;
	struct copy *v = NULL, c;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, base, blen) || strncmp(e->d_name + blen, ".bad-", 5) ||
		    !parse_copy(e->d_name + blen + 5, sib, &c) || known(v, n, &c))
			continue;
		if (n == cap) {
			struct copy *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		v[n++] = c;
	}
	closedir(d);
	*out = v;
	*count = n;
	return 0;
}

/* A free name newer than every copy of the same second (pruning removes
 * the oldest, so a gap left by it must not be reused): neither it nor any
 * sibling name exists yet. */
static int free_name(const char *path, const char *const *sib, const char *stamp, char *buf,
		     size_t len)
{
	const char *slash = strrchr(path, '/');
	struct copy *v = NULL;
	char s[PATH_MAX], dir[PATH_MAX];
	unsigned first = 1;
	size_t n = 0;

	dir_of(path, dir, sizeof(dir));
	if (list_copies(dir, slash ? slash + 1 : path, sib, &v, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(v[i].stamp, stamp) && v[i].n >= first)
				first = v[i].n + 1;
	free(v);
	for (unsigned k = first; k <= SAME_SECOND_MAX; k++) {
		bool taken;

		if (!copy_name(buf, len, path, stamp, k))
			return -ENAMETOOLONG;
		taken = exists(buf);
		for (size_t i = 0; sib && sib[i] && !taken; i++) {
			snprintf(s, sizeof(s), "%s%s", buf, sib[i]);
			taken = exists(s);
		}
		if (!taken)
			return 0;
	}
	return -EEXIST;
}

static void prune(const char *path, const char *const *sib, unsigned keep)
{
	char dir[PATH_MAX], name[PATH_MAX], s[PATH_MAX + 8];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct copy *v = NULL;
	size_t n = 0;

	dir_of(path, dir, sizeof(dir));
	if (list_copies(dir, base, sib, &v, &n) < 0)
		return;
	qsort(v, n, sizeof(*v), copy_cmp);
	for (size_t i = keep; i < n; i++) {
		if (!copy_name(name, sizeof(name), path, v[i].stamp, v[i].n))
			continue;
		unlink(name);
		for (size_t k = 0; sib && sib[k]; k++) {
			snprintf(s, sizeof(s), "%s%s", name, sib[k]);
			unlink(s);
		}
	}
	free(v);
}

int quarantine_file(const char *path, const char *const *siblings, unsigned keep, char *out,
		    size_t outlen)
{
	char to[PATH_MAX], from[PATH_MAX + 8], sto[PATH_MAX + 8], stamp[STAMP_LEN + 1];
	time_t now = clock_wall();
	struct tm tm;
	int r;

	if (!gmtime_r(&now, &tm) || !strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm))
		return -EINVAL;
	/* Each file has one owner in one process that quarantines it, so
	 * checking for a free name and then renaming does not race. */
	if ((r = free_name(path, siblings, stamp, to, sizeof(to))) < 0)
		return r;
	if (rename(path, to) < 0)
		return -errno;
	for (size_t i = 0; siblings && siblings[i]; i++) {
		snprintf(from, sizeof(from), "%s%s", path, siblings[i]);
		snprintf(sto, sizeof(sto), "%s%s", to, siblings[i]);
		if (rename(from, sto) < 0 && errno != ENOENT)
			unlink(from);
	}
	if (out && outlen)
		snprintf(out, outlen, "%s", to);
	if (keep)
		prune(path, siblings, keep);
	return 0;
}
