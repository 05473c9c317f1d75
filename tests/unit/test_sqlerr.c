/* The one SQLite-to-errno mapping (store, history, MQTT outbox), and its
 * use by the outbox: a file that cannot be opened fails with an errno. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/sqlerr.h"

#include <errno.h>

static void test_codes(void **state)
{
	(void)state;
	assert_int_equal(sqlite_errno(NULL, SQLITE_OK), 0);
	assert_int_equal(sqlite_errno(NULL, SQLITE_DONE), 0);
	assert_int_equal(sqlite_errno(NULL, SQLITE_ROW), 0);
	assert_int_equal(sqlite_errno(NULL, SQLITE_NOMEM), -ENOMEM);
	assert_int_equal(sqlite_errno(NULL, SQLITE_BUSY), -EBUSY);
	assert_int_equal(sqlite_errno(NULL, SQLITE_LOCKED), -EBUSY);
	assert_int_equal(sqlite_errno(NULL, SQLITE_READONLY), -EACCES);
	assert_int_equal(sqlite_errno(NULL, SQLITE_PERM), -EACCES);
	assert_int_equal(sqlite_errno(NULL, SQLITE_AUTH), -EACCES);
	assert_int_equal(sqlite_errno(NULL, SQLITE_FULL), -ENOSPC);
	assert_int_equal(sqlite_errno(NULL, SQLITE_TOOBIG), -EMSGSIZE);
	assert_int_equal(sqlite_errno(NULL, SQLITE_CANTOPEN), -EACCES);
	assert_int_equal(sqlite_errno(NULL, SQLITE_CORRUPT), -EBADMSG);
	assert_int_equal(sqlite_errno(NULL, SQLITE_NOTADB), -EBADMSG);
	assert_int_equal(sqlite_errno(NULL, SQLITE_IOERR), -EIO);
	assert_int_equal(sqlite_errno(NULL, SQLITE_ERROR), -EIO);
	/* extended codes map like their primary code */
	assert_int_equal(sqlite_errno(NULL, SQLITE_BUSY_SNAPSHOT), -EBUSY);
	assert_int_equal(sqlite_errno(NULL, SQLITE_IOERR_FSYNC), -EIO);
	assert_int_equal(sqlite_errno(NULL, SQLITE_READONLY_DBMOVED), -EACCES);
}

/* A failed open reports the system's reason when SQLite kept it. */
static void test_cantopen_errno(void **state)
{
	sqlite3 *db = NULL;
	int rc;

	(void)state;
	rc = sqlite3_open_v2("/nonexistent-dir-sgd/x.db", &db, SQLITE_OPEN_READWRITE, NULL);
	assert_int_equal(rc & 0xff, SQLITE_CANTOPEN);
	assert_int_equal(sqlite_errno(db, rc), -ENOENT);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_cantopen_errno),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
