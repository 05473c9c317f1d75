/* Unit tests of the quarantine of damaged state files: time-stamped names,
 * no copy overwritten, siblings kept together, bounded count. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg/clock.h"
#include "sg/quarantine.h"

/* 2026-12-03 19:45:01 UTC */
#define T0_MS 1796327101000LL
#define STAMP0 "20261203T194501Z"

struct fx {
	char dir[64];
	char path[96];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_quarantine.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	/* Time stands still: every copy of a test lands in the same second. */
	assert_int_equal(clock_lockstep(T0_MS, 0, 0, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct dirent *e;
	char p[PATH_MAX];
	DIR *d = opendir(f->dir);

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	assert_int_equal(rmdir(f->dir), 0);
	clock_simulate(0, 1);
	clock_set_offset(0);
	free(f);
	return 0;
}

static void put(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void put_in(const struct fx *f, const char *name, const char *text)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", f->dir, name);
	put(p, text);
}

/* The content of dir/name, "" when missing. */
static const char *get_in(const struct fx *f, const char *name)
{
	static char buf[256];
	char p[PATH_MAX];
	FILE *fp;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", f->dir, name);
	buf[0] = '\0';
	fp = fopen(p, "r");
	if (!fp)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static int entries(const struct fx *f)
{
	struct dirent *e;
	DIR *d = opendir(f->dir);
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Two damaged files in the same second: both kept, neither overwritten. */
static void test_same_second_no_overwrite(void **state)
{
	struct fx *f = *state;
	char to[PATH_MAX];

	put(f->path, "first");
	assert_int_equal(quarantine_file(f->path, NULL, QUARANTINE_KEEP, to, sizeof(to)), 0);
	assert_non_null(strstr(to, "/state.db.bad-" STAMP0));
	put(f->path, "second");
	assert_int_equal(quarantine_file(f->path, NULL, QUARANTINE_KEEP, to, sizeof(to)), 0);
	assert_non_null(strstr(to, "/state.db.bad-" STAMP0 "-2"));
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0), "first");
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-2"), "second");
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(entries(f), 2);
}

/* An SQLite file's WAL and SHM go with it, under the same name. */
static void test_siblings_together(void **state)
{
	static const char *const sib[] = {"-wal", "-shm", NULL};
	struct fx *f = *state;

	put_in(f, "state.db", "db1");
	put_in(f, "state.db-wal", "wal1");
	put_in(f, "state.db-shm", "shm1");
	assert_int_equal(quarantine_file(f->path, sib, QUARANTINE_KEEP, NULL, 0), 0);
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0), "db1");
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-wal"), "wal1");
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-shm"), "shm1");
	/* A name whose WAL is taken is not free either: no WAL joins another file. */
	put_in(f, "state.db.bad-" STAMP0 "-2-wal", "stray");
	put_in(f, "state.db", "db2");
	assert_int_equal(quarantine_file(f->path, sib, QUARANTINE_KEEP, NULL, 0), 0);
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-3"), "db2");
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-2-wal"), "stray");
	assert_int_equal(entries(f), 5);
}

/* Only the newest copies stay, siblings with them; other files are left alone. */
static void test_bounded(void **state)
{
	static const char *const sib[] = {"-wal", NULL};
	struct fx *f = *state;
	char name[64];

	put_in(f, "state.db.bad", "legacy");
	put_in(f, "state.db.bad-notastamp", "x");
	put_in(f, "other.db.bad-" STAMP0, "other");
	for (int i = 0; i < 8; i++) {
		/* one a minute */
		assert_int_equal(clock_lockstep(T0_MS + i * 60000LL, 0, 0, NULL), 0);
		snprintf(name, sizeof(name), "db%d", i);
		put(f->path, name);
		put_in(f, "state.db-wal", name);
		assert_int_equal(quarantine_file(f->path, sib, 5, NULL, 0), 0);
	}
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0), "");
	assert_string_equal(get_in(f, "state.db.bad-20261203T194601Z"), "");
	assert_string_equal(get_in(f, "state.db.bad-20261203T194701Z-wal"), "");
	assert_string_equal(get_in(f, "state.db.bad-20261203T194801Z"), "db3");
	assert_string_equal(get_in(f, "state.db.bad-20261203T194801Z-wal"), "db3");
	assert_string_equal(get_in(f, "state.db.bad-20261203T195201Z"), "db7");
	assert_string_equal(get_in(f, "state.db.bad"), "legacy");
	assert_string_equal(get_in(f, "state.db.bad-notastamp"), "x");
	assert_string_equal(get_in(f, "other.db.bad-" STAMP0), "other");
	assert_int_equal(entries(f), 5 * 2 + 3);
}

/* Within one second the counter orders copies numerically (-10 after -9). */
static void test_bounded_same_second(void **state)
{
	struct fx *f = *state;
	char name[64];

	for (int i = 1; i <= 12; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		put(f->path, name);
		assert_int_equal(quarantine_file(f->path, NULL, 3, NULL, 0), 0);
	}
	assert_int_equal(entries(f), 3);
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-10"), "c10");
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-12"), "c12");
	assert_string_equal(get_in(f, "state.db.bad-" STAMP0 "-9"), "");
}

static void test_missing(void **state)
{
	struct fx *f = *state;

	assert_int_equal(quarantine_file(f->path, NULL, QUARANTINE_KEEP, NULL, 0), -ENOENT);
	assert_int_equal(entries(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_same_second_no_overwrite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_siblings_together, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounded_same_second, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
