/* Store: migrations, persistence across reopen, event ring, pulse counter,
 * refusal of a newer schema, WAL and integrity as seen by a second connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/sgd.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[128];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store *open_ok(struct fx *f)
{
	struct store *st = NULL;
	int ret = store_open(f->path, &st, f->err, sizeof(f->err));

	if (ret)
		fail_msg("store_open: %d: %s", ret, f->err);
	assert_non_null(st);
	return st;
}

/* A raw second connection, as an operator's sqlite3 shell would see the file. */
static sqlite3 *raw_open(struct fx *f)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	return db;
}

static void raw_text(sqlite3 *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
}

static long long raw_int(sqlite3 *db, const char *sql)
{
	char buf[32];

	raw_text(db, sql, buf, sizeof(buf));
	return strtoll(buf, NULL, 10);
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

static void test_create_migrates(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	sqlite3 *db;

	assert_int_equal(store_schema_version(st), 1);
	db = raw_open(f);
	assert_int_equal(raw_int(db, "SELECT version FROM schema_version"), 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
				     "('events', 'pulse', 'events_ts')"),
			 3);
	sqlite3_close(db);
	store_close(st);
	/* Reopening must not re-run migration 1 (CREATE TABLE would fail). */
	st = open_ok(f);
	assert_int_equal(store_schema_version(st), 1);
	store_close(st);
}

static void expect_event(json_t *ev, long long ts, int slot, const char *kind, const char *msg)
{
	assert_non_null(ev);
	assert_int_equal(json_integer_value(json_object_get(ev, "ts")), ts);
	assert_int_equal(json_integer_value(json_object_get(ev, "slot")), slot);
	assert_string_equal(json_string_value(json_object_get(ev, "kind")), kind);
	assert_string_equal(json_string_value(json_object_get(ev, "msg")), msg);
}

static void test_events_newest_first(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	char msg[32];
	json_t *arr;

	for (int i = 0; i < 5; i++) {
		snprintf(msg, sizeof(msg), "event %d", i);
		assert_int_equal(store_event_add(st, 1000 + i, i - 1, "info", msg), 0);
	}
	arr = store_events_json(st, 3);
	assert_non_null(arr);
	assert_int_equal(json_array_size(arr), 3);
	expect_event(json_array_get(arr, 0), 1004, 3, "info", "event 4");
	expect_event(json_array_get(arr, 2), 1002, 1, "info", "event 2");
	json_decref(arr);
	arr = store_events_json(st, 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	arr = store_events_json(st, 100);
	assert_int_equal(json_array_size(arr), 5);
	expect_event(json_array_get(arr, 4), 1000, -1, "info", "event 0");
	json_decref(arr);
	store_close(st);
}

static void test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	json_t *arr;

	assert_int_equal(store_event_add(st, 42, 2, "error", "no reply \"quoted\" ü"), 0);
	assert_int_equal(store_event_add(st, 43, 2, "recovered", "back"), 0);
	store_close(st);
	st = open_ok(f);
	arr = store_events_json(st, 10);
	assert_int_equal(json_array_size(arr), 2);
	expect_event(json_array_get(arr, 0), 43, 2, "recovered", "back");
	expect_event(json_array_get(arr, 1), 42, 2, "error", "no reply \"quoted\" ü");
	json_decref(arr);
	store_close(st);
}

static void test_events_bounded(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	sqlite3 *db;
	json_t *arr;

	store_close(st);
	/* Bulk-fill past the bound in one transaction (one fsync, not 10050). */
	db = raw_open(f);
	raw_exec(db,
		 "BEGIN;"
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10050)"
		 " INSERT INTO events(ts_ms, slot, kind, msg) SELECT i, 0, 'info', 'old' FROM n;"
		 "COMMIT;");
	st = open_ok(f);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), 10000);
	assert_int_equal(raw_int(db, "SELECT min(ts_ms) FROM events"), 51);
	for (int i = 0; i < 100; i++)
		assert_int_equal(store_event_add(st, 20000 + i, 1, "info", "new"), 0);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), 10000);
	assert_int_equal(raw_int(db, "SELECT min(ts_ms) FROM events"), 151);
	arr = store_events_json(st, 1);
	expect_event(json_array_get(arr, 0), 20099, 1, "info", "new");
	json_decref(arr);
	sqlite3_close(db);
	store_close(st);
}

static void test_pulse_persists(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	uint64_t p = 99;

	assert_int_equal(store_pulse_get(st, &p), 0);
	assert_int_equal(p, 0);
	assert_int_equal(store_pulse_set(st, 12345678901ULL), 0);
	assert_int_equal(store_pulse_set(st, 12345678902ULL), 0);
	store_close(st);
	st = open_ok(f);
	assert_int_equal(store_pulse_get(st, &p), 0);
	assert_int_equal(p, 12345678902ULL);
	/* The full unsigned range survives SQLite's signed integers. */
	assert_int_equal(store_pulse_set(st, UINT64_MAX), 0);
	store_close(st);
	st = open_ok(f);
	assert_int_equal(store_pulse_get(st, &p), 0);
	assert_true(p == UINT64_MAX);
	store_close(st);
}

static void test_future_schema_refused(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	sqlite3 *db;
	int ret;

	store_event_add(st, 1, 0, "info", "keep me");
	store_close(st);
	db = raw_open(f);
	raw_exec(db, "UPDATE schema_version SET version = 99");
	sqlite3_close(db);
	st = (struct store *)0x1;
	f->err[0] = '\0';
	ret = store_open(f->path, &st, f->err, sizeof(f->err));
	assert_int_equal(ret, -EPROTONOSUPPORT);
	assert_null(st);
	assert_non_null(strstr(f->err, "newer"));
	assert_non_null(strstr(f->err, "99"));
	assert_non_null(strstr(f->err, f->path));
	/* Refusing must leave the newer database untouched. */
	db = raw_open(f);
	assert_int_equal(raw_int(db, "SELECT version FROM schema_version"), 99);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), 1);
	sqlite3_close(db);
}

static void test_wal_and_integrity(void **state)
{
	struct fx *f = *state;
	struct store *st = open_ok(f);
	char buf[64];
	sqlite3 *db;

	assert_int_equal(store_event_add(st, 5, 0, "info", "x"), 0);
	db = raw_open(f);
	/* journal_mode=WAL is persistent in the file, so another connection sees it. */
	raw_text(db, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	raw_text(db, "PRAGMA integrity_check", buf, sizeof(buf));
	assert_string_equal(buf, "ok");
	assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), 1);
	sqlite3_close(db);
	store_close(st);
}

static void test_open_bad_path(void **state)
{
	struct fx *f = *state;
	struct store *st = (struct store *)0x1;
	char p[160];
	int ret;

	snprintf(p, sizeof(p), "%s/missing-dir/sgd.db", f->dir);
	f->err[0] = '\0';
	ret = store_open(p, &st, f->err, sizeof(f->err));
	assert_true(ret < 0);
	assert_null(st);
	assert_non_null(strstr(f->err, p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_migrates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_newest_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pulse_persists, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_future_schema_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wal_and_integrity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
