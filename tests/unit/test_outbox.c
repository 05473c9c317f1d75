/* Outbox: order, deletion, the per-link bound with its persisted drop counter,
 * independence of the two links, persistence across reopen, recovery from a
 * damaged file, and byte-exact payloads (large, binary with NULs, empty). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/mqtt/mqtt_int.h"

struct fx {
	char dir[64];
	char path[96];
	char err[512];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_outbox.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/outbox.db", f->dir);
	*state = f;
	return 0;
}

/* Files in the fixture's directory whose name starts with prefix. */
static int count_prefix(const struct fx *f, const char *prefix, bool remove)
{
	struct dirent *e;
	char p[PATH_MAX];
	DIR *d = opendir(f->dir);
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		n++;
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		if (remove)
			unlink(p);
	}
	closedir(d);
	return n;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	count_prefix(f, "", true);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct outbox *open_ok(struct fx *f, unsigned max_rows)
{
	struct outbox *o = NULL;
	int ret = outbox_open(f->path, max_rows, &o, f->err, sizeof(f->err));

	if (ret)
		fail_msg("outbox_open: %d: %s", ret, f->err);
	assert_non_null(o);
	return o;
}

static void push_str(struct outbox *o, int link, int64_t ts, const char *sub, const char *p)
{
	assert_int_equal(outbox_push(o, link, ts, sub, p, strlen(p)), 0);
}

/* Peek up to max and check the payloads are exactly want[0..nwant). */
static void expect_payloads(struct outbox *o, int link, unsigned max, const char *const *want,
			    unsigned nwant)
{
	struct outbox_msg v[16];
	unsigned n = 99;

	assert_true(max <= 16);
	assert_int_equal(outbox_peek(o, link, max, v, &n), 0);
	assert_int_equal(n, nwant);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(v[i].len, strlen(want[i]));
		assert_memory_equal(v[i].payload, want[i], v[i].len);
		if (i)
			assert_true(v[i].id > v[i - 1].id);
	}
	outbox_msgs_free(v, n);
}

static void test_push_peek_order(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 100);
	static const char *const want[] = {"a", "b", "c"};
	struct outbox_msg v[4];
	unsigned n;

	push_str(o, 1, 1000, "dev/1", "a");
	push_str(o, 1, 2000, NULL, "b");
	push_str(o, 1, 3000, "dev/3", "c");
	assert_int_equal(outbox_count(o, 1), 3);
	expect_payloads(o, 1, 10, want, 3);
	/* A smaller window gives the oldest. */
	expect_payloads(o, 1, 2, want, 2);
	assert_int_equal(outbox_peek(o, 1, 4, v, &n), 0);
	assert_int_equal(v[0].ts_ms, 1000);
	assert_string_equal(v[0].subtopic, "dev/1");
	assert_null(v[1].subtopic); /* NULL = the base topic itself */
	assert_int_equal(v[2].ts_ms, 3000);
	assert_string_equal(v[2].payload, "c"); /* NUL-terminated copy */
	outbox_msgs_free(v, n);
	/* Peeking does not consume. */
	assert_int_equal(outbox_count(o, 1), 3);
	outbox_close(o);
}

static void test_delete_upto(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 100);
	static const char *const rest[] = {"c", "d"};
	struct outbox_msg v[4];
	unsigned n;

	push_str(o, 1, 1, "t", "a");
	push_str(o, 1, 2, "t", "b");
	push_str(o, 1, 3, "t", "c");
	push_str(o, 1, 4, "t", "d");
	assert_int_equal(outbox_peek(o, 1, 2, v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(outbox_delete_upto(o, 1, v[1].id), 0);
	outbox_msgs_free(v, n);
	assert_int_equal(outbox_count(o, 1), 2);
	expect_payloads(o, 1, 10, rest, 2);
	/* Deleting again, or below what is left, changes nothing. */
	assert_int_equal(outbox_delete_upto(o, 1, 0), 0);
	assert_int_equal(outbox_count(o, 1), 2);
	assert_int_equal(outbox_peek(o, 1, 4, v, &n), 0);
	assert_int_equal(outbox_delete_upto(o, 1, v[n - 1].id), 0);
	outbox_msgs_free(v, n);
	assert_int_equal(outbox_count(o, 1), 0);
	assert_int_equal(outbox_peek(o, 1, 4, v, &n), 0);
	assert_int_equal(n, 0);
	/* Ids keep growing after everything was deleted (AUTOINCREMENT). */
	push_str(o, 1, 5, "t", "e");
	assert_int_equal(outbox_peek(o, 1, 4, v, &n), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].id > 4);
	outbox_msgs_free(v, n);
	outbox_close(o);
}

static void test_bound_drops_oldest(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 3);
	static const char *const newest[] = {"3", "4", "5"};
	static const char *const after[] = {"4", "5", "6"};
	char p[16];

	for (int i = 0; i < 6; i++) {
		snprintf(p, sizeof(p), "%d", i);
		push_str(o, 1, i, "t", p);
	}
	assert_int_equal(outbox_count(o, 1), 3);
	assert_int_equal(outbox_dropped(o, 1), 3);
	expect_payloads(o, 1, 10, newest, 3);
	outbox_close(o);
	/* The counter and the rows survive a restart. */
	o = open_ok(f, 3);
	assert_int_equal(outbox_count(o, 1), 3);
	assert_int_equal(outbox_dropped(o, 1), 3);
	push_str(o, 1, 6, "t", "6");
	assert_int_equal(outbox_dropped(o, 1), 4);
	expect_payloads(o, 1, 10, after, 3);
	outbox_close(o);
	/* A smaller bound after a restart trims at the next push. */
	o = open_ok(f, 1);
	push_str(o, 1, 7, "t", "7");
	assert_int_equal(outbox_count(o, 1), 1);
	assert_int_equal(outbox_dropped(o, 1), 7);
	outbox_close(o);
}

static void test_links_independent(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 2);
	static const char *const one[] = {"1b", "1c"};
	static const char *const two[] = {"2a"};
	struct outbox_msg v[4];
	unsigned n;

	push_str(o, 1, 1, "t", "1a");
	push_str(o, 2, 2, "t", "2a");
	push_str(o, 1, 3, "t", "1b");
	push_str(o, 1, 4, "t", "1c");
	assert_int_equal(outbox_count(o, 1), 2);
	assert_int_equal(outbox_count(o, 2), 1);
	assert_int_equal(outbox_dropped(o, 1), 1);
	assert_int_equal(outbox_dropped(o, 2), 0);
	expect_payloads(o, 1, 10, one, 2);
	expect_payloads(o, 2, 10, two, 1);
	/* Deleting link 1 up to a later id leaves link 2 alone. */
	assert_int_equal(outbox_peek(o, 1, 4, v, &n), 0);
	assert_int_equal(outbox_delete_upto(o, 1, v[n - 1].id), 0);
	outbox_msgs_free(v, n);
	assert_int_equal(outbox_count(o, 1), 0);
	expect_payloads(o, 2, 10, two, 1);
	outbox_close(o);
}

static void test_reopen_keeps(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 100);
	static const char *const want[] = {"x", "y"};

	push_str(o, 2, 10, "s", "x");
	push_str(o, 2, 20, "s", "y");
	outbox_close(o);
	o = open_ok(f, 100);
	assert_int_equal(outbox_count(o, 2), 2);
	assert_int_equal(outbox_count(o, 1), 0);
	expect_payloads(o, 2, 10, want, 2);
	outbox_close(o);
}

static void write_file(const char *path, const void *data, size_t len, off_t at)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
	close(fd);
}

static void test_garbage_file_set_aside(void **state)
{
	struct fx *f = *state;
	static const char *const want[] = {"fresh"};
	char junk[8192];
	struct outbox *o;

	memset(junk, 'J', sizeof(junk));
	write_file(f->path, junk, sizeof(junk), 0);
	o = open_ok(f, 10);
	assert_int_equal(count_prefix(f, "outbox.db.bad-", false), 1);
	assert_int_equal(outbox_count(o, 1), 0);
	push_str(o, 1, 1, "t", "fresh");
	expect_payloads(o, 1, 10, want, 1);
	outbox_close(o);
	/* A second damaged file is kept too, not over the first copy. */
	write_file(f->path, junk, sizeof(junk), 0);
	o = open_ok(f, 10);
	assert_int_equal(count_prefix(f, "outbox.db.bad-", false), 2);
	outbox_close(o);
}

/* A valid header with damaged pages behind it: found when a statement reads
 * them, then set aside; the caller never sees a hard failure. */
static void test_damaged_pages_set_aside(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 1000);
	char big[2000], junk[4096 * 6];
	struct outbox_msg v[16];
	unsigned n = 0;
	int ret;

	memset(big, 'p', sizeof(big));
	for (int i = 0; i < 200; i++)
		assert_int_equal(outbox_push(o, 1, i, "t", big, sizeof(big)), 0);
	outbox_close(o); /* checkpoints the WAL into the main file */
	memset(junk, 0xA5, sizeof(junk));
	write_file(f->path, junk, sizeof(junk), 4096); /* page 2 onwards */
	o = open_ok(f, 1000);
	ret = outbox_peek(o, 1, 16, v, &n);
	assert_int_equal(ret, 0);
	outbox_msgs_free(v, n);
	assert_int_equal(outbox_push(o, 1, 1, "t", "ok", 2), 0);
	assert_int_equal(count_prefix(f, "outbox.db.bad-", false), 1);
	assert_int_equal(outbox_peek(o, 1, 16, v, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(v[0].payload, "ok", 2);
	outbox_msgs_free(v, n);
	outbox_close(o);
}

static void test_large_payload(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 10);
	size_t len = 64 * 1024;
	char *p = malloc(len);
	struct outbox_msg v[1];
	unsigned n;

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (char)(i * 7 + (i >> 8));
	assert_int_equal(outbox_push(o, 1, 1, "big", p, len), 0);
	outbox_close(o);
	o = open_ok(f, 10);
	assert_int_equal(outbox_peek(o, 1, 1, v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].len, len);
	assert_memory_equal(v[0].payload, p, len);
	outbox_msgs_free(v, n);
	outbox_close(o);
	free(p);
}

static void test_binary_and_empty_payloads(void **state)
{
	struct fx *f = *state;
	struct outbox *o = open_ok(f, 10);
	static const char bin[] = {'a', 0, 'b', 0, 0, (char)0xff, 'c'};
	struct outbox_msg v[2];
	unsigned n;

	assert_int_equal(outbox_push(o, 1, 1, "bin", bin, sizeof(bin)), 0);
	assert_int_equal(outbox_push(o, 1, 2, "empty", NULL, 0), 0);
	assert_int_equal(outbox_peek(o, 1, 2, v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].len, sizeof(bin));
	assert_memory_equal(v[0].payload, bin, sizeof(bin));
	assert_int_equal(v[1].len, 0);
	assert_non_null(v[1].payload);
	outbox_msgs_free(v, n);
	outbox_close(o);
}

static void test_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct outbox *o = NULL;
	struct outbox_msg v[1];
	unsigned n;

	assert_int_equal(outbox_open(NULL, 10, &o, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(outbox_open(f->path, 0, &o, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(outbox_open(f->path, 10, NULL, f->err, sizeof(f->err)), -EINVAL);
	assert_null(o);
	o = open_ok(f, 10);
	assert_int_equal(outbox_push(o, 0, 1, "t", "x", 1), -EINVAL);
	assert_int_equal(outbox_push(o, 3, 1, "t", "x", 1), -EINVAL);
	assert_int_equal(outbox_push(NULL, 1, 1, "t", "x", 1), -EINVAL);
	assert_int_equal(outbox_push(o, 1, 1, "t", NULL, 5), -EINVAL);
	assert_int_equal(outbox_peek(o, 0, 1, v, &n), -EINVAL);
	assert_int_equal(outbox_peek(o, 1, 1, NULL, &n), -EINVAL);
	assert_int_equal(outbox_peek(o, 1, 1, v, NULL), -EINVAL);
	assert_int_equal(outbox_delete_upto(o, 5, 1), -EINVAL);
	assert_int_equal(outbox_delete_upto(NULL, 1, 1), -EINVAL);
	assert_int_equal(outbox_count(o, 9), 0);
	assert_int_equal(outbox_dropped(NULL, 1), 0);
	outbox_close(NULL);
	outbox_msgs_free(NULL, 3);
	outbox_close(o);
}

static void test_unwritable_dir_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct outbox *o = NULL;
	char p[160];

	snprintf(p, sizeof(p), "%s/missing-dir/outbox.db", f->dir);
	assert_true(outbox_open(p, 10, &o, f->err, sizeof(f->err)) < 0);
	assert_null(o);
	assert_true(strlen(f->err) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_push_peek_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_upto, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bound_drops_oldest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_links_independent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_file_set_aside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_pages_set_aside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_payload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary_and_empty_payloads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unwritable_dir_fails_cleanly, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
