/* The shared resolver on the real loop: a numeric address answers without a
 * lookup, a name from /etc/hosts through getaddrinfo_a, every answer comes
 * from the loop (never from inside resolve_start), and a cancelled lookup
 * never calls back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/loop.h"
#include "sg/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

struct res {
	struct loop *l;
	int calls;
	int err;
	int port;
	char addr[INET6_ADDRSTRLEN];
	bool quit;
};

static void on_done(int err, struct addrinfo *ai, void *arg)
{
	struct res *r = arg;

	r->calls++;
	r->err = err;
	if (!err) {
		assert_non_null(ai);
		assert_int_equal(ai->ai_socktype, SOCK_STREAM);
		if (ai->ai_family == AF_INET) {
			struct sockaddr_in *sa = (struct sockaddr_in *)ai->ai_addr;

			inet_ntop(AF_INET, &sa->sin_addr, r->addr, sizeof(r->addr));
			r->port = ntohs(sa->sin_port);
		} else {
			struct sockaddr_in6 *sa = (struct sockaddr_in6 *)ai->ai_addr;

			inet_ntop(AF_INET6, &sa->sin6_addr, r->addr, sizeof(r->addr));
			r->port = ntohs(sa->sin6_port);
		}
		freeaddrinfo(ai);
	} else {
		assert_null(ai);
	}
	if (r->quit)
		loop_quit(r->l);
}

static void on_quit(void *arg)
{
	loop_quit(arg);
}

static void on_watchdog(void *arg)
{
	(void)arg;
	fail_msg("no answer within the watchdog's minute");
}

/* Run the loop until on_done quits it. */
static void run(struct res *r)
{
	int64_t wd = loop_timer_add(r->l, 60000, on_watchdog, NULL);

	r->quit = true;
	assert_int_equal(loop_run(r->l), 0);
	loop_timer_cancel(r->l, wd);
}

static void test_numeric(void **state)
{
	struct res r = {0};
	struct resolve *rs;

	(void)state;
	assert_true(resolve_is_numeric("127.0.0.1"));
	assert_true(resolve_is_numeric("::1"));
	assert_false(resolve_is_numeric("localhost"));
	assert_false(resolve_is_numeric("127.0.0.1.example"));
	assert_false(resolve_is_numeric(""));
	assert_false(resolve_is_numeric(NULL));
	assert_int_equal(loop_init(&r.l), 0);
	assert_int_equal(resolve_start(r.l, "127.0.0.1", 1883, on_done, &r, &rs), 0);
	assert_int_equal(r.calls, 0); /* never from inside resolve_start */
	run(&r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.addr, "127.0.0.1");
	assert_int_equal(r.port, 1883);
	assert_int_equal(resolve_start(r.l, "::1", 8883, on_done, &r, &rs), 0);
	run(&r);
	assert_int_equal(r.calls, 2);
	assert_string_equal(r.addr, "::1");
	assert_int_equal(r.port, 8883);
	loop_fini(r.l);
}

static void test_name(void **state)
{
	struct res r = {0};
	struct resolve *rs;

	(void)state;
	assert_int_equal(loop_init(&r.l), 0);
	assert_int_equal(resolve_start(r.l, "localhost", 80, on_done, &r, &rs), 0);
	assert_int_equal(r.calls, 0);
	run(&r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_true(!strcmp(r.addr, "127.0.0.1") || !strcmp(r.addr, "::1"));
	assert_int_equal(r.port, 80);
	/* a name that cannot be: an error code, no addresses */
	assert_int_equal(resolve_start(r.l, "no such host!", 80, on_done, &r, &rs), 0);
	run(&r);
	assert_int_equal(r.calls, 2);
	assert_int_not_equal(r.err, 0);
	loop_fini(r.l);
}

/* Cancelled lookups (a name and a numeric address) never call back, even
 * when glibc finishes one afterwards; later lookups still work. */
static void test_cancel(void **state)
{
	struct res r = {0}, other = {0};
	struct resolve *a, *b;

	(void)state;
	assert_int_equal(loop_init(&r.l), 0);
	other.l = r.l;
	assert_int_equal(resolve_start(r.l, "localhost", 80, on_done, &r, &a), 0);
	assert_int_equal(resolve_start(r.l, "127.0.0.1", 80, on_done, &r, &b), 0);
	resolve_cancel(a);
	resolve_cancel(b);
	resolve_cancel(NULL);
	assert_true(loop_timer_add(r.l, 200, on_quit, r.l) > 0);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.calls, 0);
	assert_int_equal(resolve_start(r.l, "localhost", 81, on_done, &other, &a), 0);
	run(&other);
	assert_int_equal(other.calls, 1);
	assert_int_equal(other.port, 81);
	assert_int_equal(r.calls, 0);
	loop_fini(r.l);
}

static void test_refused(void **state)
{
	struct res r = {0};
	struct resolve *rs;
	char longname[300];

	(void)state;
	assert_int_equal(loop_init(&r.l), 0);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(resolve_start(r.l, longname, 80, on_done, &r, &rs), -EINVAL);
	assert_int_equal(resolve_start(r.l, "localhost", 65536, on_done, &r, &rs), -EINVAL);
	assert_int_equal(resolve_start(r.l, "localhost", -1, on_done, &r, &rs), -EINVAL);
	assert_int_equal(resolve_start(r.l, NULL, 80, on_done, &r, &rs), -EINVAL);
	assert_int_equal(resolve_start(r.l, "localhost", 80, NULL, &r, &rs), -EINVAL);
	assert_int_equal(r.calls, 0);
	loop_fini(r.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numeric),
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
