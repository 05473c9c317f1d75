/* Authentication: Basic header and cookie parsing (table-driven), the
 * constant-time comparison's results, and the failure throttle's schedule,
 * per-address keys, forgetting and table-full reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct parse_case {
	const char *in;
	int rc;
	const char *user, *pass;
};

/* base64("admin:iskra") = YWRtaW46aXNrcmE= */
static const struct parse_case basic_cases[] = {
    {"Basic YWRtaW46aXNrcmE=", 0, "admin", "iskra"},
    {"basic YWRtaW46aXNrcmE=", 0, "admin", "iskra"},
    {"BASIC YWRtaW46aXNrcmE=", 0, "admin", "iskra"},
    {"  Basic \t YWRtaW46aXNrcmE=  ", 0, "admin", "iskra"},
    /* "a:b:c": the password keeps its colon */
    {"Basic YTpiOmM=", 0, "a", "b:c"},
    /* "user:" empty password is allowed */
    {"Basic dXNlcjo=", 0, "user", ""},
    /* "ab:cd" needs no padding */
    {"Basic YWI6Y2Q=", 0, "ab", "cd"},
    /* "abc:def" */
    {"Basic YWJjOmRlZg==", 0, "abc", "def"},
    {NULL, -ENOENT, NULL, NULL},
    {"", -ENOENT, NULL, NULL},
    {"   ", -ENOENT, NULL, NULL},
    {"Bearer YWRtaW46aXNrcmE=", -EINVAL, NULL, NULL},
    {"Basically YWRtaW46aXNrcmE=", -EINVAL, NULL, NULL},
    {"BasicYWRtaW46aXNrcmE=", -EINVAL, NULL, NULL},
    {"Basic", -EINVAL, NULL, NULL},
    {"Basic ", -EINVAL, NULL, NULL},
    {"Basic YWRtaW46aXNrcmE= extra", -EINVAL, NULL, NULL},
    /* bad base64: missing padding, junk characters, padding inside, too much padding */
    {"Basic YWRtaW46aXNrcmE", -EINVAL, NULL, NULL},
    {"Basic YWRtaW46aXNrc*E=", -EINVAL, NULL, NULL},
    {"Basic YW=taW46aXNrcmE=", -EINVAL, NULL, NULL},
    {"Basic YWRtaW46aXNrc===", -EINVAL, NULL, NULL},
    {"Basic ====", -EINVAL, NULL, NULL},
    {"Basic YWRtaW46aXNrcmF=", -EINVAL, NULL, NULL}, /* non-zero bits under '=' */
    {"Basic YWRtaW46-_==", -EINVAL, NULL, NULL},     /* URL-safe alphabet */
    /* "adminiskra": no colon */
    {"Basic YWRtaW5pc2tyYQ==", -EINVAL, NULL, NULL},
    /* ":iskra": empty user */
    {"Basic Omlza3Jh", -EINVAL, NULL, NULL},
    /* "a\0:b": an embedded NUL */
    {"Basic YQA6Yg==", -EINVAL, NULL, NULL},
};

static void check_case(const struct parse_case *c, int rc, const char *user, const char *pass)
{
	if (rc != c->rc)
		fail_msg("'%s': rc %d, want %d", c->in ? c->in : "(null)", rc, c->rc);
	if (c->rc == 0) {
		assert_string_equal(user, c->user);
		assert_string_equal(pass, c->pass);
	} else {
		/* Output untouched on failure. */
		assert_string_equal(user, "x");
		assert_string_equal(pass, "y");
	}
}

static void test_parse_basic(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(basic_cases) / sizeof(basic_cases[0]); i++) {
		char user[AUTH_FIELD_MAX] = "x", pass[AUTH_FIELD_MAX] = "y";
		int rc = auth_parse_basic(basic_cases[i].in, user, pass);

		check_case(&basic_cases[i], rc, user, pass);
	}
}

static void b64(const char *in, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

/* "Basic " + base64 of ulen 'u's, ':', plen 'p's. */
static void make_header(char *hdr, int ulen, int plen)
{
	char cred[3 * AUTH_FIELD_MAX];

	memset(cred, 'u', (size_t)ulen);
	cred[ulen] = ':';
	memset(cred + ulen + 1, 'p', (size_t)plen);
	cred[ulen + 1 + plen] = '\0';
	strcpy(hdr, "Basic ");
	b64(cred, hdr + 6);
}

/* Fields of AUTH_FIELD_MAX-1 bytes pass, one more is refused. */
static void test_parse_lengths(void **state)
{
	char hdr[4 * AUTH_FIELD_MAX + 16], user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX];
	const int m = AUTH_FIELD_MAX - 1;
	char big[1024];

	(void)state;
	make_header(hdr, m, m);
	assert_int_equal(auth_parse_basic(hdr, user, pass), 0);
	assert_int_equal(strlen(user), m);
	assert_int_equal(strlen(pass), m);
	make_header(hdr, m + 1, 1);
	assert_int_equal(auth_parse_basic(hdr, user, pass), -EINVAL);
	make_header(hdr, 1, m + 1);
	assert_int_equal(auth_parse_basic(hdr, user, pass), -EINVAL);
	make_header(hdr, m + 1, m + 1);
	assert_int_equal(auth_parse_basic(hdr, user, pass), -EINVAL);

	/* Far too long: refused before decoding. */
	memset(big, 'A', sizeof(big));
	memcpy(big, "Basic ", 6);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(auth_parse_basic(big, user, pass), -EINVAL);
}

static const struct parse_case cookie_cases[] = {
    {"Authorization=Basic YWRtaW46aXNrcmE=", 0, "admin", "iskra"},
    {"a=b; Authorization=Basic YWRtaW46aXNrcmE=; c=d", 0, "admin", "iskra"},
    {"a=b;Authorization=Basic YWRtaW46aXNrcmE=", 0, "admin", "iskra"},
    {"  Authorization = Basic YWRtaW46aXNrcmE=  ;", 0, "admin", "iskra"},
    {"Authorization=\"Basic YWRtaW46aXNrcmE=\"", 0, "admin", "iskra"},
    {"x=1; Authorization=\"Basic YWRtaW46aXNrcmE=\"; y=2", 0, "admin", "iskra"},
    {"Authorization=Basic%20YWRtaW46aXNrcmE%3D", 0, "admin", "iskra"},
    {"Authorization=Basic%20YWRtaW46aXNrcmE%3d", 0, "admin", "iskra"},
    /* a value containing '=' before the Authorization cookie */
    {"tok=a=b==; Authorization=Basic YWRtaW46aXNrcmE=", 0, "admin", "iskra"},
    /* the first Authorization cookie counts */
    {"Authorization=Basic YWRtaW46aXNrcmE=; Authorization=Basic YTpiOmM=", 0, "admin", "iskra"},
    {NULL, -ENOENT, NULL, NULL},
    {"", -ENOENT, NULL, NULL},
    {"a=b; c=d", -ENOENT, NULL, NULL},
    {"authorization=Basic YWRtaW46aXNrcmE=", -ENOENT, NULL, NULL},
    {"XAuthorization=Basic YWRtaW46aXNrcmE=", -ENOENT, NULL, NULL},
    {"Authorization", -ENOENT, NULL, NULL},
    {"Authorization=", -ENOENT, NULL, NULL},
    {"Authorization=Bearer abc", -EINVAL, NULL, NULL},
    {"Authorization=Basic%2", -EINVAL, NULL, NULL},
    {"Authorization=Basic%zzYWRtaW46aXNrcmE=", -EINVAL, NULL, NULL},
    {"Authorization=Basic%00YWRtaW46aXNrcmE=", -EINVAL, NULL, NULL},
    {"Authorization=Basic YWRtaW46aXNrcmE", -EINVAL, NULL, NULL},
};

static void test_parse_cookie(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cookie_cases) / sizeof(cookie_cases[0]); i++) {
		char user[AUTH_FIELD_MAX] = "x", pass[AUTH_FIELD_MAX] = "y";
		int rc = auth_parse_cookie(cookie_cases[i].in, user, pass);

		check_case(&cookie_cases[i], rc, user, pass);
	}
}

static void test_equal(void **state)
{
	(void)state;
	assert_true(auth_equal("iskra", "iskra"));
	assert_true(auth_equal("", ""));
	assert_false(auth_equal("iskr", "iskra"));   /* prefix */
	assert_false(auth_equal("iskraa", "iskra")); /* longer */
	assert_false(auth_equal("", "iskra"));
	assert_false(auth_equal("iskra", ""));
	assert_false(auth_equal("Iskra", "iskra"));
	assert_false(auth_equal("iskrb", "iskra"));
	assert_false(auth_equal(NULL, "iskra"));
	assert_true(auth_equal(NULL, ""));

	assert_true(auth_check("admin", "iskra", "admin", "iskra"));
	assert_false(auth_check("admin", "x", "admin", "iskra"));
	assert_false(auth_check("x", "iskra", "admin", "iskra"));
	assert_false(auth_check("iskra", "admin", "admin", "iskra"));
}

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 a;

	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

static struct auth_throttle t; /* 64 entries: too big to want on the stack twice */

static void test_throttle_schedule(void **state)
{
	/* Capped at 4 s: Home Assistant gives up after 10 s, so a held right
	 * password must still be checked well within that. */
	static const int64_t want[] = {0, 0, 500, 1000, 2000, 4000, 4000, 4000, 4000, 4000};
	struct sockaddr_in a = v4("192.0.2.1", 1000);
	int64_t now = 1000000;

	(void)state;
	auth_throttle_init(&t);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		auth_throttle_fail(&t, SA(a), now);
		assert_int_equal(auth_throttle_wait(&t, SA(a), now), want[i]);
		if (want[i]) {
			/* Counts down and is over exactly at the deadline. */
			assert_int_equal(auth_throttle_wait(&t, SA(a), now + want[i] - 1), 1);
			assert_int_equal(auth_throttle_wait(&t, SA(a), now + want[i]), 0);
		}
		now += want[i];
	}
	/* Many more failures: still capped, no overflow in the shift. */
	for (int i = 0; i < 200; i++) {
		auth_throttle_fail(&t, SA(a), now);
		assert_int_equal(auth_throttle_wait(&t, SA(a), now), AUTH_DELAY_MAX_MS);
		assert_true(auth_throttle_wait(&t, SA(a), now) < 5000);
		now += AUTH_DELAY_MAX_MS;
	}
	/* Success starts over. */
	auth_throttle_ok(&t, SA(a));
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 0);
	for (int i = 0; i < AUTH_FREE_FAILS - 1; i++)
		auth_throttle_fail(&t, SA(a), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 0);
	auth_throttle_fail(&t, SA(a), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), AUTH_DELAY_MIN_MS);
}

static void test_throttle_isolation(void **state)
{
	struct sockaddr_in a = v4("192.0.2.1", 1000), a2 = v4("192.0.2.1", 2000),
			   b = v4("192.0.2.2", 1000);
	struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1", 3000), c = v6("2001:db8::1", 1),
			    c2 = v6("2001:db8::1", 2), d = v6("2001:db8::2", 1);
	int64_t now = 5000;

	(void)state;
	auth_throttle_init(&t);
	for (int i = 0; i < 4; i++)
		auth_throttle_fail(&t, SA(a), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 1000);
	/* Port ignored, IPv4-mapped IPv6 is the same client. */
	assert_int_equal(auth_throttle_wait(&t, SA(a2), now), 1000);
	assert_int_equal(auth_throttle_wait(&t, SA(mapped), now), 1000);
	auth_throttle_fail(&t, SA(mapped), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 2000);
	/* Another address is unaffected. */
	assert_int_equal(auth_throttle_wait(&t, SA(b), now), 0);
	/* IPv6 by address, port ignored. */
	for (int i = 0; i < 3; i++)
		auth_throttle_fail(&t, SA(c), now);
	assert_int_equal(auth_throttle_wait(&t, SA(c2), now), 500);
	assert_int_equal(auth_throttle_wait(&t, SA(d), now), 0);
	/* ok for one address leaves the other alone. */
	auth_throttle_ok(&t, SA(mapped));
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 0);
	assert_int_equal(auth_throttle_wait(&t, SA(c), now), 500);
}

static void test_throttle_forget(void **state)
{
	struct sockaddr_in a = v4("198.51.100.7", 80);
	int64_t now = 0; /* the monotonic clock may start near zero */

	(void)state;
	auth_throttle_init(&t);
	for (int i = 0; i < 9; i++)
		auth_throttle_fail(&t, SA(a), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), AUTH_DELAY_MAX_MS);
	/* Just before the forget time the count still stands. */
	now += AUTH_FORGET_MS - 1;
	auth_throttle_fail(&t, SA(a), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), AUTH_DELAY_MAX_MS);
	/* 15 minutes quiet: a fresh start, three free failures again. */
	now += AUTH_FORGET_MS;
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), 0);
	for (int i = 0; i < AUTH_FREE_FAILS - 1; i++) {
		auth_throttle_fail(&t, SA(a), now);
		assert_int_equal(auth_throttle_wait(&t, SA(a), now), 0);
	}
	auth_throttle_fail(&t, SA(a), now);
	assert_int_equal(auth_throttle_wait(&t, SA(a), now), AUTH_DELAY_MIN_MS);
}

/* A full table reuses the entry whose last failure is oldest. */
static void test_throttle_full(void **state)
{
	struct sockaddr_in addrs[AUTH_THROTTLE_SLOTS + 1];
	char ip[32];
	int64_t now = 100000;

	(void)state;
	auth_throttle_init(&t);
	for (int i = 0; i <= AUTH_THROTTLE_SLOTS; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 200, i % 200 + 1);
		addrs[i] = v4(ip, 1);
	}
	/* Each address fails 4 times (delayed); address 5 is the oldest. */
	for (int i = 0; i < AUTH_THROTTLE_SLOTS; i++) {
		int64_t when = i == 5 ? now - 10 : now + i;

		for (int k = 0; k < 4; k++)
			auth_throttle_fail(&t, SA(addrs[i]), when);
	}
	for (int i = 0; i < AUTH_THROTTLE_SLOTS; i++)
		assert_true(auth_throttle_wait(&t, SA(addrs[i]), now + 100) > 0);
	/* A new address takes address 5's entry, not anyone else's. */
	auth_throttle_fail(&t, SA(addrs[AUTH_THROTTLE_SLOTS]), now + 100);
	assert_int_equal(auth_throttle_wait(&t, SA(addrs[5]), now + 100), 0);
	for (int i = 0; i < AUTH_THROTTLE_SLOTS; i++)
		if (i != 5)
			assert_true(auth_throttle_wait(&t, SA(addrs[i]), now + 100) > 0);
	/* The newcomer started from one failure. */
	auth_throttle_fail(&t, SA(addrs[AUTH_THROTTLE_SLOTS]), now + 100);
	assert_int_equal(auth_throttle_wait(&t, SA(addrs[AUTH_THROTTLE_SLOTS]), now + 100), 0);
	auth_throttle_fail(&t, SA(addrs[AUTH_THROTTLE_SLOTS]), now + 100);
	assert_int_equal(auth_throttle_wait(&t, SA(addrs[AUTH_THROTTLE_SLOTS]), now + 100),
			 AUTH_DELAY_MIN_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_basic),	      cmocka_unit_test(test_parse_lengths),
	    cmocka_unit_test(test_parse_cookie),      cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_throttle_schedule), cmocka_unit_test(test_throttle_isolation),
	    cmocka_unit_test(test_throttle_forget),   cmocka_unit_test(test_throttle_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
