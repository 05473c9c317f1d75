/* Authentication for the REST API (R-C3): HTTP Basic credentials taken from an
 * Authorization header or from the cookie "Authorization=Basic …" that Home
 * Assistant sends, compared in constant time, and a per-address throttle that
 * slows down repeated failures. Pure logic: the HTTP server calls it. */
#ifndef SG_AUTH_H
#define SG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTH_FIELD_MAX 64 /* longest user name / password accepted */

/* Parse "Basic <base64(user:pass)>" (scheme case-insensitive, blanks
 * tolerated). 0, -ENOENT when value is NULL/empty, -EINVAL when malformed or a
 * field is longer than AUTH_FIELD_MAX-1. */
int auth_parse_basic(const char *value, char user[AUTH_FIELD_MAX], char pass[AUTH_FIELD_MAX]);
/* Find the cookie "Authorization" in a Cookie header ("a=b; Authorization=Basic
 * …"; the value may be double-quoted or %-encoded as browsers store it) and
 * parse it as above. Same returns. */
int auth_parse_cookie(const char *cookie, char user[AUTH_FIELD_MAX], char pass[AUTH_FIELD_MAX]);
/* Equality whose running time does not depend on where a and b differ
 * (only on the length of the expected string b). */
bool auth_equal(const char *given, const char *expected);
/* Both user name and password equal the expected ones (both compared, always). */
bool auth_check(const char *user, const char *pass, const char *want_user, const char *want_pass);

/* Failed attempts per client address; the oldest entry is reused when full. */
#define AUTH_THROTTLE_SLOTS 64
#define AUTH_FREE_FAILS 3      /* after this many failures, the next attempt waits */
#define AUTH_DELAY_MIN_MS 500  /* first delay, doubled per further failure */
#define AUTH_DELAY_MAX_MS 4000 /* delay cap: a held request still beats a 10 s client timeout */
#define AUTH_FORGET_MS (15 * 60000) /* an address with no failure for this long starts over */

struct auth_entry {
	struct sockaddr_storage addr; /* port ignored */
	unsigned fails;
	int64_t last_fail_ms;
	int64_t next_ms; /* no attempt is checked before this */
};
struct auth_throttle {
	struct auth_entry e[AUTH_THROTTLE_SLOTS];
};

/* Empty throttle. */
void auth_throttle_init(struct auth_throttle *t);
/* Milliseconds the address must still wait before its credentials are checked (0 = now). */
int64_t auth_throttle_wait(const struct auth_throttle *t, const struct sockaddr *sa,
			   int64_t now_ms);
/* Record a failure (wrong credentials) from sa. */
void auth_throttle_fail(struct auth_throttle *t, const struct sockaddr *sa, int64_t now_ms);
/* Record a success: the address starts over. */
void auth_throttle_ok(struct auth_throttle *t, const struct sockaddr *sa);

#endif
