/* HTTP Basic credentials (header or cookie), constant-time comparison and the
 * per-address failure throttle. No I/O: the HTTP server feeds it strings,
 * addresses and the monotonic time. */
#include "sg/auth.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* "user:pass" with both fields at their longest. */
#define CRED_MAX (2 * (AUTH_FIELD_MAX - 1) + 1)
/* Base64 text of CRED_MAX bytes; anything longer is refused before decoding. */
#define B64_MAX (4 * ((CRED_MAX + 2) / 3))
/* A cookie value holding "Basic " + B64_MAX, %-encoded at worst 3 bytes each. */
#define COOKIE_VAL_MAX (3 * (6 + B64_MAX))

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *s)
{
	while (is_blank(*s))
		s++;
	return s;
}

/* Value of one base64 character, or -1 outside the standard alphabet. */
static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode one 4-character group; pads = trailing '=' (0…2, only allowed in the
 * last group). Unused bits under the padding must be zero, so each credential
 * has exactly one accepted encoding. Returns bytes written or -EINVAL. */
static int b64_group(const char *in, int pads, uint8_t *out)
{
	int v[4] = {0, 0, 0, 0};

	for (int i = 0; i < 4 - pads; i++) {
		v[i] = b64_val((unsigned char)in[i]);
		if (v[i] < 0)
			return -EINVAL;
	}
	uint32_t w =
	    (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];

	if ((pads == 1 && (w & 0xff)) || (pads == 2 && (w & 0xffff)))
		return -EINVAL;
	out[0] = (uint8_t)(w >> 16);
	out[1] = (uint8_t)(w >> 8);
	out[2] = (uint8_t)w;
	return 3 - pads;
}

/* Strict base64 (RFC 4648 §4, padded) of len characters into out (room for
 * outmax bytes). Returns the decoded length or -EINVAL. */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t outmax)
{
	size_t n = 0;

	if (len == 0 || len % 4 || len > B64_MAX || len / 4 * 3 > outmax)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pads = 0;

		if (last)
			pads = (in[i + 3] == '=') + (in[i + 3] == '=' && in[i + 2] == '=');
		int k = b64_group(in + i, pads, out + n);

		if (k < 0)
			return k;
		n += (size_t)k;
	}
	return (int)n;
}

/* Split decoded "user:pass" at the first ':' into the two fields. */
static int split_cred(const uint8_t *cred, size_t len, char user[AUTH_FIELD_MAX],
		      char pass[AUTH_FIELD_MAX])
{
	const uint8_t *colon = memchr(cred, ':', len);
	size_t ulen, plen;

	if (!colon || memchr(cred, '\0', len))
		return -EINVAL; /* a NUL would silently cut the string later */
	ulen = (size_t)(colon - cred);
	plen = len - ulen - 1;
	if (ulen == 0 || ulen >= AUTH_FIELD_MAX || plen >= AUTH_FIELD_MAX)
		return -EINVAL;
	memcpy(user, cred, ulen);
	user[ulen] = '\0';
	memcpy(pass, colon + 1, plen);
	pass[plen] = '\0';
	return 0;
}

int auth_parse_basic(const char *value, char user[AUTH_FIELD_MAX], char pass[AUTH_FIELD_MAX])
{
	uint8_t cred[CRED_MAX + 3];
	const char *p, *tok;
	size_t toklen;
	int n;

	if (!value)
		return -ENOENT;
	p = skip_blanks(value);
	if (!*p)
		return -ENOENT;
	if (strncasecmp(p, "Basic", 5) || !is_blank(p[5]))
		return -EINVAL;
	tok = skip_blanks(p + 5);
	toklen = strcspn(tok, " \t");
	if (*skip_blanks(tok + toklen))
		return -EINVAL; /* a second token */
	n = b64_decode(tok, toklen, cred, sizeof(cred));
	if (n < 0)
		return n;
	return split_cred(cred, (size_t)n, user, pass);
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy the cookie value [v, v+len) into out, without surrounding double quotes
 * and with %XX decoded. -EINVAL on a broken escape, a NUL or overflow. */
static int cookie_value(const char *v, size_t len, char *out, size_t outmax)
{
	size_t n = 0;

	if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
		v++;
		len -= 2;
	}
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)v[i];

		if (c == '%') {
			int hi = i + 2 < len ? hex_val(v[i + 1]) : -1;
			int lo = hi >= 0 ? hex_val(v[i + 2]) : -1;

			if (lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == 0 || n + 1 >= outmax)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* Trim blanks from both ends of [*s, *s+*len). */
static void trim(const char **s, size_t *len)
{
	while (*len && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && is_blank((*s)[*len - 1]))
		(*len)--;
}

/* Whether the cookie pair [p, p+len) ("name = value", blanks around both) is
 * named Authorization (exactly: cookie names are case-sensitive); if so its
 * trimmed value is returned in *v, *vlen. */
static bool is_auth_pair(const char *p, size_t len, const char **v, size_t *vlen)
{
	static const char name[] = "Authorization";
	const char *eq = memchr(p, '=', len);
	size_t klen;

	if (!eq)
		return false;
	klen = (size_t)(eq - p);
	*v = eq + 1;
	*vlen = len - klen - 1;
	trim(&p, &klen);
	trim(v, vlen);
	return klen == sizeof(name) - 1 && !memcmp(p, name, klen);
}

int auth_parse_cookie(const char *cookie, char user[AUTH_FIELD_MAX], char pass[AUTH_FIELD_MAX])
{
	const char *p = cookie;

	if (!p)
		return -ENOENT;
	while (*p) {
		size_t len = strcspn(p, ";"), vlen;
		const char *next = p + len + (p[len] == ';'), *v;

		if (is_auth_pair(p, len, &v, &vlen)) {
			char val[COOKIE_VAL_MAX];
			int rc = cookie_value(v, vlen, val, sizeof(val));

			return rc ? rc : auth_parse_basic(val, user, pass);
		}
		p = next;
	}
	return -ENOENT;
}

bool auth_equal(const char *given, const char *expected)
{
	size_t n = strlen(expected), gi = 0;
	unsigned diff = 0;

	if (!given)
		given = "";
	/* Walk the expected length whatever given holds; once given ends, its
	 * index stays on the NUL so nothing past it is read, and the NUL differs
	 * from every remaining expected byte. */
	for (size_t i = 0; i < n; i++) {
		unsigned char g = (unsigned char)given[gi];

		diff |= g ^ (unsigned char)expected[i];
		gi += g != 0;
	}
	/* given longer than expected: the byte after the compared part is not NUL. */
	diff |= (unsigned char)given[gi];
	return diff == 0;
}

bool auth_check(const char *user, const char *pass, const char *want_user, const char *want_pass)
{
	bool u = auth_equal(user, want_user);
	bool p = auth_equal(pass, want_pass);

	return u & p; /* no short circuit: both comparisons always run */
}

/* --- throttle --- */

/* The address part of sa as the throttle keys it: port zeroed, IPv4-mapped
 * IPv6 turned into IPv4 so one client is one entry whichever socket it used. */
static void addr_key(const struct sockaddr *sa, struct sockaddr_storage *key)
{
	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *k = (struct sockaddr_in *)key;

		k->sin_family = AF_INET;
		k->sin_addr = ((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			struct sockaddr_in *k = (struct sockaddr_in *)key;

			k->sin_family = AF_INET;
			memcpy(&k->sin_addr, &a6->s6_addr[12], 4);
		} else {
			struct sockaddr_in6 *k = (struct sockaddr_in6 *)key;

			k->sin6_family = AF_INET6;
			k->sin6_addr = *a6;
		}
	} else {
		/* Other families carry no comparable address: they share one entry. */
		key->ss_family = sa->sa_family;
	}
}

static bool key_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			       &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr));
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return true;
}

/* Empty slots have family AF_UNSPEC (0), which no key has. */
static bool slot_used(const struct auth_entry *e)
{
	return e->addr.ss_family != AF_UNSPEC;
}

static bool stale(const struct auth_entry *e, int64_t now_ms)
{
	return now_ms - e->last_fail_ms >= AUTH_FORGET_MS;
}

static int find(const struct auth_throttle *t, const struct sockaddr_storage *key)
{
	for (int i = 0; i < AUTH_THROTTLE_SLOTS; i++)
		if (slot_used(&t->e[i]) && key_equal(&t->e[i].addr, key))
			return i;
	return -1;
}

/* A free slot, else the one whose last failure is oldest. */
static int victim(const struct auth_throttle *t)
{
	int best = 0;

	for (int i = 0; i < AUTH_THROTTLE_SLOTS; i++) {
		if (!slot_used(&t->e[i]))
			return i;
		if (t->e[i].last_fail_ms < t->e[best].last_fail_ms)
			best = i;
	}
	return best;
}

void auth_throttle_init(struct auth_throttle *t)
{
	memset(t, 0, sizeof(*t));
}

int64_t auth_throttle_wait(const struct auth_throttle *t, const struct sockaddr *sa, int64_t now_ms)
{
	struct sockaddr_storage key;
	int i;

	addr_key(sa, &key);
	i = find(t, &key);
	if (i < 0 || stale(&t->e[i], now_ms) || t->e[i].next_ms <= now_ms)
		return 0;
	return t->e[i].next_ms - now_ms;
}

/* Delay after the fails-th failure: none for the free ones, then doubling from
 * the minimum up to the cap. The shift is bounded so it cannot overflow. */
static int64_t delay_ms(unsigned fails)
{
	unsigned k;

	if (fails < AUTH_FREE_FAILS)
		return 0;
	k = fails - AUTH_FREE_FAILS; /* the 3rd failure already earns the first delay */
	if (k >= 32)
		return AUTH_DELAY_MAX_MS;
	int64_t d = (int64_t)AUTH_DELAY_MIN_MS << k;

	return d < AUTH_DELAY_MAX_MS ? d : AUTH_DELAY_MAX_MS;
}

void auth_throttle_fail(struct auth_throttle *t, const struct sockaddr *sa, int64_t now_ms)
{
	struct sockaddr_storage key;
	struct auth_entry *e;
	int i;

	addr_key(sa, &key);
	i = find(t, &key);
	if (i < 0) {
		e = &t->e[victim(t)];
		memset(e, 0, sizeof(*e));
		e->addr = key;
	} else {
		e = &t->e[i];
		if (stale(e, now_ms))
			e->fails = 0;
	}
	if (e->fails < UINT_MAX)
		e->fails++;
	e->last_fail_ms = now_ms;
	e->next_ms = now_ms + delay_ms(e->fails);
}

void auth_throttle_ok(struct auth_throttle *t, const struct sockaddr *sa)
{
	struct sockaddr_storage key;
	int i;

	addr_key(sa, &key);
	i = find(t, &key);
	if (i >= 0)
		memset(&t->e[i], 0, sizeof(t->e[i]));
}
