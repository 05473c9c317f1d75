/* Unit tests of settings subscriptions: who is told, how often, and when not. */
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

#include "sg/settings.h"

#define SERIAL "SG000013"

struct fx {
	char dir[64];
	struct settings *s;
	char err[256];
};

/* One subscriber: how often it was told and what it saw. */
struct rec {
	int n;
	long http_port; /* as the callback read it */
	char name;	/* for the order log */
	struct fx *f;
	int set_rc; /* what a settings change from inside the callback returned */
	bool try_set;
	struct rec *drop; /* unsubscribe this one from inside the callback */
};

static char order[64];
static size_t norder;

static void on_change(const struct settings *s, void *arg)
{
	struct rec *r = arg;

	r->n++;
	r->http_port = settings_int(s, "http_port");
	if (norder < sizeof(order) - 1)
		order[norder++] = r->name;
	if (r->try_set) {
		json_t *obj = json_pack("{s:i}", "http_port", 9999);

		r->set_rc = settings_set_json(r->f->s, obj, r->f->err, sizeof(r->f->err));
		json_decref(obj);
	}
	if (r->drop)
		assert_int_equal(settings_unsubscribe(r->f->s, on_change, r->drop), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_settings_sub.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(settings_init(&f->s, f->dir, SERIAL, "SG-W1"), 0);
	norder = 0;
	memset(order, 0, sizeof(order));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX];

	settings_fini(f->s);
	snprintf(p, sizeof(p), "%s/settings.json", f->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/settings.json.prev", f->dir);
	unlink(p);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* Apply a change given as JSON text; the return code of settings_set_json. */
static int set(struct fx *f, const char *json)
{
	json_t *obj = json_loads(json, 0, NULL);
	int rc;

	assert_non_null(obj);
	f->err[0] = '\0';
	rc = settings_set_json(f->s, obj, f->err, sizeof(f->err));
	json_decref(obj);
	return rc;
}

static void sub(struct fx *f, struct rec *r, const char *const *keys)
{
	assert_int_equal(settings_subscribe(f->s, keys, on_change, r), 0);
}

/* One change naming two of a subscriber's keys tells it once, after the new
 * values are in place. */
static void test_told_once_per_change(void **state)
{
	struct fx *f = *state;
	struct rec a = {.name = 'a'};
	const char *const keys[] = {"http_port", "tcp_port", NULL};

	sub(f, &a, keys);
	assert_int_equal(set(f, "{\"http_port\": 8080, \"tcp_port\": 1502}"), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.http_port, 8080);
	assert_int_equal(set(f, "{\"tcp_port\": 1503}"), 0);
	assert_int_equal(a.n, 2);
	/* settings_set_kv is the same path. */
	char *kv[] = {"http_port=8081", "description=x"};

	assert_int_equal(settings_set_kv(f->s, kv, 2, f->err, sizeof(f->err)), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.http_port, 8081);
}

/* A change of other keys tells nobody subscribed to these. */
static void test_untouched_not_told(void **state)
{
	struct fx *f = *state;
	struct rec a = {.name = 'a'};
	const char *const keys[] = {"http_port", NULL};

	sub(f, &a, keys);
	assert_int_equal(set(f, "{\"description\": \"Attic\", \"tcp_port\": 1502}"), 0);
	assert_int_equal(set(f, "{}"), 0);
	/* A secret sent as "" and a read-only key with its value change nothing. */
	assert_int_equal(set(f, "{\"auth_password\": \"\", \"serial_number\": \"" SERIAL "\"}"), 0);
	assert_int_equal(a.n, 0);
	/* The key re-sent with its current value counts (a failed bind retries). */
	assert_int_equal(set(f, "{\"http_port\": 80}"), 0);
	assert_int_equal(a.n, 1);
}

/* Refused changes tell nobody: a bad value, an unknown key, a read-only key,
 * a failed save. */
static void test_refused_not_told(void **state)
{
	struct fx *f = *state;
	struct rec a = {.name = 'a'};
	const char *const all[] = {"*", NULL};
	struct settings *nodir;
	json_t *obj;

	sub(f, &a, all);
	assert_int_equal(set(f, "{\"http_port\": 8080, \"tcp_port\": 0}"), -EINVAL);
	assert_int_equal(set(f, "{\"http_port\": 8080, \"no_such_key\": 1}"), -EINVAL);
	assert_int_equal(set(f, "{\"http_port\": 8080, \"serial_number\": \"X\"}"), -EINVAL);
	assert_int_equal(set(f, "[1]"), -EINVAL);
	char *kv[] = {"http_port=8080", "broken"};

	assert_int_equal(settings_set_kv(f->s, kv, 2, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(a.n, 0);
	assert_int_equal(settings_int(f->s, "http_port"), 80);

	/* Saving fails: the state directory does not exist. */
	assert_int_equal(settings_init(&nodir, "/nonexistent/sgd-test", SERIAL, "SG-W1"), 0);
	assert_int_equal(settings_subscribe(nodir, all, on_change, &a), 0);
	obj = json_pack("{s:i}", "http_port", 8080);
	assert_true(settings_set_json(nodir, obj, f->err, sizeof(f->err)) < 0);
	assert_int_equal(settings_factory_reset(nodir), -ENOENT);
	json_decref(obj);
	assert_int_equal(a.n, 0);
	settings_fini(nodir);
}

/* Several subscribers: each told once, in the order they subscribed, only
 * for its own keys. */
static void test_several_subscribers(void **state)
{
	struct fx *f = *state;
	struct rec a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'};
	const char *const ka[] = {"http_port", NULL};
	const char *const kb[] = {"description", "location", NULL};
	const char *const kc[] = {"*", NULL};

	sub(f, &a, ka);
	sub(f, &b, kb);
	sub(f, &c, kc);
	assert_int_equal(set(f, "{\"http_port\": 8080}"), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(set(f, "{\"location\": \"Attic\", \"http_port\": 8081}"), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 1);
	assert_int_equal(c.n, 2);
	assert_string_equal(order, "acabc");
	/* Unsubscribed: no longer told; the others still are. */
	assert_int_equal(settings_unsubscribe(f->s, on_change, &a), 0);
	assert_int_equal(settings_unsubscribe(f->s, on_change, &a), -ENOENT);
	assert_int_equal(set(f, "{\"http_port\": 8082, \"description\": \"d\"}"), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 2);
	assert_int_equal(c.n, 3);
}

/* Families: a prefix and '*' names every key that starts with it. */
static void test_families(void **state)
{
	struct fx *f = *state;
	struct rec t = {.name = 't'}, m = {.name = 'm'}, mix = {.name = 'x'};
	const char *const kt[] = {"rs485_type_*", NULL};
	const char *const km[] = {"mqtt1_*", NULL};
	const char *const kx[] = {"tcp_port", "rec*", NULL};

	sub(f, &t, kt);
	sub(f, &m, km);
	sub(f, &mix, kx);
	assert_int_equal(set(f, "{\"rs485_type_16\": 1}"), 0);
	assert_int_equal(set(f, "{\"rs485_type_1\": 1}"), 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(set(f, "{\"rs485_addr_1\": 5, \"rs485_baud_rate\": 3}"), 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(set(f, "{\"mqtt1_server\": \"broker\"}"), 0);
	assert_int_equal(set(f, "{\"mqtt1_tls\": 1}"), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(set(f, "{\"mqtt2_server\": \"other\", \"push1_protocol\": 2}"), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(set(f, "{\"rec8_counter\": 3}"), 0);
	assert_int_equal(set(f, "{\"tcp_port\": 1502}"), 0);
	assert_int_equal(mix.n, 2);
	assert_int_equal(t.n, 2);
	assert_int_equal(m.n, 2);
}

/* Names that match no key are refused whole: nothing is subscribed. */
static void test_subscribe_refused(void **state)
{
	struct fx *f = *state;
	struct rec a = {.name = 'a'};
	const char *const typo[] = {"http_port", "htp_port", NULL};
	const char *const nofamily[] = {"nokey_*", NULL};
	const char *const prefix_only[] = {"rs485_type_", NULL};
	const char *const empty[] = {NULL};
	const char *const ok[] = {"http_port", NULL};

	assert_int_equal(settings_subscribe(f->s, typo, on_change, &a), -EINVAL);
	assert_int_equal(settings_subscribe(f->s, nofamily, on_change, &a), -EINVAL);
	assert_int_equal(settings_subscribe(f->s, prefix_only, on_change, &a), -EINVAL);
	assert_int_equal(settings_subscribe(f->s, empty, on_change, &a), -EINVAL);
	assert_int_equal(settings_subscribe(f->s, NULL, on_change, &a), -EINVAL);
	assert_int_equal(settings_subscribe(f->s, ok, NULL, &a), -EINVAL);
	assert_int_equal(set(f, "{\"http_port\": 8080}"), 0);
	assert_int_equal(a.n, 0);

	/* Bounded. */
	for (int i = 0; i < SETTINGS_SUBSCRIBERS_MAX; i++)
		assert_int_equal(settings_subscribe(f->s, ok, on_change, &a), 0);
	assert_int_equal(settings_subscribe(f->s, ok, on_change, &a), -ENOSPC);
	assert_int_equal(set(f, "{\"http_port\": 8081}"), 0);
	assert_int_equal(a.n, SETTINGS_SUBSCRIBERS_MAX);
	/* An unsubscribed place is free again at once. */
	assert_int_equal(settings_unsubscribe(f->s, on_change, &a), 0);
	assert_int_equal(settings_subscribe(f->s, ok, on_change, &a), 0);
}

/* Factory reset tells everybody once; so does a load that took values from a
 * file (SIGHUP); a load that took nothing tells nobody. */
static void test_reset_and_load(void **state)
{
	struct fx *f = *state;
	struct rec a = {.name = 'a'}, b = {.name = 'b'};
	const char *const ka[] = {"http_port", NULL};
	const char *const kb[] = {"rec1_name", NULL};
	char err[SETTINGS_ERROR_MAX], p[PATH_MAX];
	FILE *fp;

	sub(f, &a, ka);
	sub(f, &b, kb);
	/* No file yet: nothing loaded. */
	assert_int_equal(settings_load(f->s, err, sizeof(err)), 0);
	assert_int_equal(a.n + b.n, 0);
	assert_int_equal(set(f, "{\"http_port\": 8080}"), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(settings_factory_reset(f->s), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 1);
	assert_int_equal(a.http_port, 80);
	/* The file (written by the reset) read back. */
	assert_int_equal(settings_load(f->s, err, sizeof(err)), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(b.n, 2);
	/* Damaged, and its last good copy too: the values in memory stay. */
	snprintf(p, sizeof(p), "%s/settings.json", f->dir);
	assert_non_null(fp = fopen(p, "w"));
	fputs("{", fp);
	fclose(fp);
	snprintf(p, sizeof(p), "%s/settings.json.prev", f->dir);
	unlink(p);
	assert_int_equal(settings_load(f->s, err, sizeof(err)), -EBADMSG);
	assert_int_equal(a.n, 3);
	assert_int_equal(b.n, 2);
	/* Remove the damaged file that was set aside (teardown expects an empty dir). */
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -f %s/settings.json.bad-*", f->dir);
	assert_int_equal(system(cmd), 0);
}

/* A subscriber cannot change settings while being told (-EBUSY, nothing
 * changes), and may unsubscribe another one meanwhile. */
static void test_callback_rules(void **state)
{
	struct fx *f = *state;
	struct rec b = {.name = 'b'}, c = {.name = 'c'};
	struct rec a = {.name = 'a', .f = f, .try_set = true, .drop = &b};
	const char *const keys[] = {"http_port", NULL};
	char err[SETTINGS_ERROR_MAX];

	sub(f, &a, keys);
	sub(f, &b, keys);
	sub(f, &c, keys);
	assert_int_equal(set(f, "{\"http_port\": 8080}"), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.set_rc, -EBUSY);
	assert_int_equal(settings_int(f->s, "http_port"), 8080);
	assert_int_equal(b.n, 0); /* dropped before its turn */
	assert_int_equal(c.n, 1); /* the one after it: told, once */
	assert_string_equal(order, "ac");
	a.drop = NULL;
	assert_int_equal(set(f, "{\"http_port\": 8081}"), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 0);
	/* After the callbacks, changes work again. */
	a.try_set = false;
	assert_int_equal(settings_load(f->s, err, sizeof(err)), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(set(f, "{\"http_port\": 8082}"), 0);
	assert_int_equal(a.n, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_told_once_per_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_untouched_not_told, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_not_told, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_several_subscribers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_families, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscribe_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_and_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_callback_rules, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
