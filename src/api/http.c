/* The HTTP server: libmicrohttpd without threads, its epoll fd watched by our
 * loop and its timeout kept in one loop timer. Every request gets a struct
 * http_req that lives until MHD reports the request complete (or until a
 * deferred reply arrives, whichever is later), so asynchronous handlers never
 * hold a dangling pointer. Slow clients cannot starve the others: one address
 * holds at most CONN_PER_ADDR connections, and a request's header block must
 * arrive within HEADER_MS of the connection (KEEPALIVE_MS of the previous
 * reply), a total that a byte now and then does not renew; MHD's own timeout
 * is only one of inactivity. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_int.h"
#include "sg/auth.h"
#include "sg/clock.h"
#include "sg/conf.h"
#include "sg/dev.h"
#include "sg/http.h"
#include "sg/log.h"
#include "sg/loop.h"
#include "sg/netsock.h"
#include "sg/settings.h"

#define CONN_LIMIT 256
#define CONN_PER_ADDR 64   /* connections of one client address at once */
#define CONN_TIMEOUT_S 30  /* inactivity, once the headers are in */
#define HEADER_MS 5000	   /* from the connection to the end of the first header block */
#define KEEPALIVE_MS 15000 /* from a reply to the end of the next header block */
#define SWEEP_MS 500
#define REBIND_DELAY_MS 200 /* lets the reply to the request that moved the port leave */
#define HDR_MAX 4

enum req_state {
	REQ_NEW,      /* headers read, body may follow */
	REQ_WAIT,     /* suspended by the auth throttle */
	REQ_DEFERRED, /* suspended until the handler's reply */
	REQ_READY,    /* deferred reply waiting to be queued */
	REQ_DONE,     /* a response is queued */
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_req *prev, *next; /* srv->reqs: every live request */
	enum req_state state;
	bool suspended, in_handler;
	bool held;   /* already held once by the auth throttle */
	bool owed;   /* deferred: the handler still owes its reply */
	bool orphan; /* MHD is done with it; freed when the owed reply comes */
	char *body;
	size_t body_len;
	bool too_big;
	json_t *json;
	struct MHD_Response *resp; /* a deferred reply not yet queued */
	unsigned resp_status;
	char *hdr_name[HDR_MAX], *hdr_value[HDR_MAX];
	unsigned nhdr;
	int64_t timer;
	char peer[INET6_ADDRSTRLEN];
	struct sockaddr_storage peer_sa;
};

/* One TCP connection (MHD's socket context), for the header deadline. */
struct http_conn {
	struct http_server *srv;
	struct http_conn *prev, *next;
	int fd;
	int64_t deadline; /* the header block must be complete by then; 0 = none */
};

struct cache_entry {
	struct MHD_Response *resp; /* one reference held by the cache */
	uint64_t tag;
};

struct http_server {
	struct http_env env;
	struct cache_entry cache[HTTP_CACHE_KEYS];
	struct MHD_Daemon *mhd;
	int epfd, port, www_fd;
	int64_t timer, timer_due, rebind_timer;
	struct http_req *reqs;
	struct http_conn *conns;
	int64_t sweep_timer;
	struct auth_throttle throttle;
};

/* ---- the MHD event source ---- */

static void mhd_step(struct http_server *s);

static void on_mhd_timer(void *arg)
{
	struct http_server *s = arg;

	s->timer = 0;
	mhd_step(s);
}

/* MHD must run within ms. A pending timer that fires no later is kept: an
 * early run is harmless, and re-arming on every event would cost syscalls. */
static void arm_timer(struct http_server *s, int64_t ms)
{
	int64_t due = clock_mono_ms() + ms;

	if (s->timer && s->timer_due <= due)
		return;
	if (s->timer)
		loop_timer_cancel(s->env.loop, s->timer);
	s->timer = loop_timer_add(s->env.loop, ms, on_mhd_timer, s);
	if (s->timer < 0)
		s->timer = 0;
	s->timer_due = due;
}

static void mhd_step(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (!s->mhd)
		return;
	MHD_run(s->mhd);
	if (MHD_get_timeout(s->mhd, &t) == MHD_YES)
		arm_timer(s, t > 60000 ? 60000 : (int64_t)t);
}

static void on_mhd_fd(int fd, uint32_t events, void *arg)
{
	(void)fd, (void)events;
	mhd_step(arg);
}

/* ---- connections: the header deadline ---- */

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;

	return ci ? ci->socket_context : NULL;
}

static void conn_deadline(struct MHD_Connection *conn, int64_t ms)
{
	struct http_conn *hc = conn_of(conn);

	if (hc)
		hc->deadline = ms ? clock_mono_ms() + ms : 0;
}

/* Cut connections whose header block is late: MHD sees the end of the stream
 * at its next run and closes them. */
static void on_sweep(void *arg)
{
	struct http_server *s = arg;
	int64_t now = clock_mono_ms();

	s->sweep_timer = 0;
	for (struct http_conn *hc = s->conns; hc; hc = hc->next) {
		if (hc->deadline && now >= hc->deadline) {
			hc->deadline = 0;
			shutdown(hc->fd, SHUT_RDWR);
		}
	}
	if (s->conns) {
		s->sweep_timer = loop_timer_add(s->env.loop, SWEEP_MS, on_sweep, s);
		if (s->sweep_timer < 0)
			s->sweep_timer = 0;
	}
}

static void conn_unlink(struct http_conn *hc)
{
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		hc->srv->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	free(hc);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct http_conn *hc;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (*socket_context)
			conn_unlink(*socket_context);
		*socket_context = NULL;
		return;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	hc = ci ? calloc(1, sizeof(*hc)) : NULL;
	*socket_context = hc;
	if (!hc)
		return; /* no deadline then: MHD's inactivity timeout still applies */
	hc->srv = s;
	hc->fd = ci->connect_fd;
	hc->deadline = clock_mono_ms() + HEADER_MS;
	hc->next = s->conns;
	if (s->conns)
		s->conns->prev = hc;
	s->conns = hc;
	if (!s->sweep_timer) {
		s->sweep_timer = loop_timer_add(s->env.loop, SWEEP_MS, on_sweep, s);
		if (s->sweep_timer < 0)
			s->sweep_timer = 0;
	}
}

/* ---- requests ---- */

static void req_unlink(struct http_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		r->srv->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static void req_free(struct http_req *r)
{
	if (r->timer)
		loop_timer_cancel(r->srv->env.loop, r->timer);
	if (r->resp)
		MHD_destroy_response(r->resp);
	for (unsigned i = 0; i < r->nhdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	json_decref(r->json);
	free(r->body);
	req_unlink(r);
	free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_req *r = *con_cls;

	(void)cls, (void)toe;
	conn_deadline(conn, KEEPALIVE_MS); /* for the next request on this connection */
	if (!r)
		return;
	*con_cls = NULL;
	if (r->owed) {
		/* A handler still owes the reply; it frees the request then. */
		r->orphan = true;
		r->conn = NULL;
		return;
	}
	req_free(r);
}

static struct http_req *req_new(struct http_server *s, struct MHD_Connection *conn)
{
	struct http_req *r = calloc(1, sizeof(*r));
	const union MHD_ConnectionInfo *ci;

	if (!r)
		return NULL;
	r->srv = s;
	r->conn = conn;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							  : sizeof(struct sockaddr_in);

		memcpy(&r->peer_sa, sa, len);
		if (getnameinfo(sa, len, r->peer, sizeof(r->peer), NULL, 0, NI_NUMERICHOST))
			snprintf(r->peer, sizeof(r->peer), "?");
	}
	r->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = r;
	s->reqs = r;
	return r;
}

static void resp_headers(struct http_req *r, struct MHD_Response *resp, const char *ctype)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (unsigned i = 0; i < r->nhdr; i++)
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
}

/* Queue now when MHD is calling us; otherwise keep it and resume the connection. */
static void req_respond(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
	bool answered = r->state == REQ_DONE || r->state == REQ_READY;

	if (r->owed) { /* the deferred reply */
		r->owed = false;
		if (r->orphan || answered) { /* the client left, or the server restarted */
			MHD_destroy_response(resp);
			if (r->orphan)
				req_free(r);
			return;
		}
	} else if (answered) {
		log_err("http: second reply to one request (bug)");
		MHD_destroy_response(resp);
		return;
	}
	if (r->in_handler && !r->suspended) {
		MHD_queue_response(r->conn, status, resp);
		MHD_destroy_response(resp);
		r->state = REQ_DONE;
		return;
	}
	r->resp = resp;
	r->resp_status = status;
	r->state = REQ_READY;
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->conn);
		arm_timer(r->srv, 0);
	}
}

void http_reply_data(struct http_req *r, unsigned status, const char *content_type,
		     const void *data, size_t len)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);

	if (!resp) {
		log_err("http: out of memory for a response");
		return;
	}
	resp_headers(r, resp, content_type);
	req_respond(r, status, resp);
}

/* Length of the strict UTF-8 sequence at s (as jansson takes it: no
 * overlongs, surrogates or code points above U+10FFFF), 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0; /* also stops at the terminating NUL */
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	for (; *p; p += n)
		if (!(n = utf8_len(p)))
			return false;
	return true;
}

/* Replace each byte that starts no valid sequence by '?' (a message quoting
 * the request, or cut mid-character by truncation, stays a JSON string). */
static void utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;

	for (; *p; p += n)
		if (!(n = utf8_len(p))) {
			*p = '?';
			n = 1;
		}
}

/* The response for body (stolen), or NULL (no memory). */
static struct MHD_Response *json_response(struct http_req *r, json_t *body)
{
	char *txt = body ? json_dumps(body, SG_JSON_FLAGS) : NULL;
	struct MHD_Response *resp;

	json_decref(body);
	if (!txt)
		return NULL;
	resp = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(txt);
		return NULL;
	}
	resp_headers(r, resp, "application/json");
	return resp;
}

static void reply_oom(struct http_req *r)
{
	static const char oom[] = "{\"error\":\"out of memory\",\"status\":500}";

	log_err("http: out of memory for a response");
	http_reply_data(r, 500, "application/json", oom, sizeof(oom) - 1);
}

void http_reply_json(struct http_req *r, unsigned status, json_t *body)
{
	struct MHD_Response *resp = json_response(r, body);

	if (resp)
		req_respond(r, status, resp);
	else
		reply_oom(r);
}

/* Only synchronous replies without extra headers share cached responses. */
static bool cacheable(const struct http_req *r, unsigned key)
{
	return key < HTTP_CACHE_KEYS && r->in_handler && !r->suspended && !r->nhdr &&
	       r->state == REQ_NEW;
}

bool http_reply_cached(struct http_req *r, unsigned key, uint64_t tag)
{
	struct cache_entry *e = &r->srv->cache[key < HTTP_CACHE_KEYS ? key : 0];

	if (!cacheable(r, key) || !e->resp || e->tag != tag)
		return false;
	/* MHD takes its own reference; the cache keeps ours. */
	MHD_queue_response(r->conn, 200, e->resp);
	r->state = REQ_DONE;
	return true;
}

void http_reply_json_cache(struct http_req *r, unsigned key, uint64_t tag, json_t *body)
{
	struct MHD_Response *resp;
	struct cache_entry *e;

	if (!cacheable(r, key)) {
		http_reply_json(r, 200, body);
		return;
	}
	resp = json_response(r, body);
	if (!resp) {
		reply_oom(r);
		return;
	}
	e = &r->srv->cache[key];
	if (e->resp)
		MHD_destroy_response(e->resp); /* connections still sending it keep theirs */
	e->resp = resp;
	e->tag = tag;
	MHD_queue_response(r->conn, 200, resp);
	r->state = REQ_DONE;
}

void http_reply_error(struct http_req *r, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_scrub(msg);
	http_reply_json(r, status, json_pack("{s:s, s:i}", "error", msg, "status", (int)status));
}

const struct http_env *http_req_env(struct http_req *r)
{
	return &r->srv->env;
}

const char *http_req_query(struct http_req *r, const char *key)
{
	return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key) : NULL;
}

json_t *http_req_body(struct http_req *r)
{
	return r->json;
}

const char *http_req_peer(struct http_req *r)
{
	return r->peer;
}

void http_req_add_header(struct http_req *r, const char *name, const char *value)
{
	if (r->nhdr == HDR_MAX) {
		log_err("http: too many extra headers (bug)");
		return;
	}
	r->hdr_name[r->nhdr] = strdup(name);
	r->hdr_value[r->nhdr] = strdup(value);
	if (!r->hdr_name[r->nhdr] || !r->hdr_value[r->nhdr]) {
		free(r->hdr_name[r->nhdr]);
		free(r->hdr_value[r->nhdr]);
		return;
	}
	r->nhdr++;
}

void http_req_defer(struct http_req *r)
{
	if (r->state != REQ_NEW)
		return;
	r->state = REQ_DEFERRED;
	r->owed = true;
	r->suspended = true;
	MHD_suspend_connection(r->conn);
}

/* ---- routing ---- */

/* The route for path and method; *param gets the "{}" segment. Sets
 * *path_known when some route has this path with another method. */
static const struct http_route *route_find(const char *path, const char *method, const char **param,
					   bool *path_known)
{
	*path_known = false;
	for (size_t i = 0; i < rest_route_count; i++) {
		const struct http_route *rt = &rest_routes[i];
		size_t n = strlen(rt->path);
		const char *p = NULL;

		if (n > 3 && !strcmp(rt->path + n - 2, "{}")) {
			/* "/x/{}" takes any last segment; "/x{}" (the manual's
			 * /api/load_profile{id}) only digits glued to the name. */
			if (strncmp(path, rt->path, n - 2) || !path[n - 2] ||
			    strchr(path + n - 2, '/') ||
			    (rt->path[n - 3] != '/' && !strchr("0123456789", path[n - 2])))
				continue;
			p = path + n - 2;
		} else if (strcmp(path, rt->path)) {
			continue;
		}
		*path_known = true;
		if (!strcmp(method, rt->method) ||
		    (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"))) {
			*param = p;
			return rt;
		}
	}
	return NULL;
}

static bool is_api_path(const char *path)
{
	return !strcmp(path, "/api") || !strncmp(path, "/api/", 5) || !strcmp(path, "/get_command");
}

/* ---- authentication ---- */

static void on_throttle_done(void *arg)
{
	struct http_req *r = arg;

	r->timer = 0;
	r->state = REQ_NEW;
	r->suspended = false;
	MHD_resume_connection(r->conn);
	arm_timer(r->srv, 0);
}

static int credentials(struct http_req *r, const struct http_route *rt, char *user, char *pass)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	int e;

	if (h && *h)
		return auth_parse_basic(h, user, pass);
	h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Cookie");
	e = auth_parse_cookie(h, user, pass);
	if (e == -ENOENT && rt->body_auth)
		e = rest_body_credentials(r->body, r->body_len, user, pass);
	return e;
}

/* True when the request may go on; otherwise it was answered or suspended. */
static bool auth_gate(struct http_req *r, const struct http_route *rt)
{
	struct http_server *s = r->srv;
	const struct settings *st = s->env.settings;
	char user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX];
	const struct sockaddr *sa = (const struct sockaddr *)&r->peer_sa;
	int64_t now = clock_mono_ms(), wait;
	int e;

	if (!settings_int(st, "auth_enabled"))
		return true;
	e = credentials(r, rt, user, pass);
	if (e == -ENOENT) {
		http_reply_error(r, 403, "authentication required");
		return false;
	}
	wait = auth_throttle_wait(&s->throttle, sa, now);
	if (wait > 0 && r->held) {
		/* Another attempt from the address took the check while this one
		 * waited: refuse unchecked rather than hold again, so no request
		 * is held longer than one delay (clients give up after ~10 s) and
		 * parallel attempts still get one check per delay. */
		http_reply_error(r, 403, "too many failed attempts; try again in %lld s",
				 (long long)(wait + 999) / 1000);
		return false;
	}
	if (wait > 0) {
		/* Checked only after the wait, so guessing is slow even with many connections. */
		r->held = true;
		r->state = REQ_WAIT;
		r->suspended = true;
		MHD_suspend_connection(r->conn);
		r->timer = loop_timer_add(s->env.loop, wait, on_throttle_done, r);
		return false;
	}
	if (e == 0 && auth_check(user, pass, settings_str(st, "auth_username"),
				 settings_str(st, "auth_password"))) {
		auth_throttle_ok(&s->throttle, sa);
		return true;
	}
	auth_throttle_fail(&s->throttle, sa, now);
	log_warn("http: failed authentication from %s", r->peer);
	http_reply_error(r, 403, "wrong user name or password");
	return false;
}

/* ---- API requests ---- */

static bool parse_body(struct http_req *r)
{
	json_error_t je;

	if (!r->body_len) {
		http_reply_error(r, 400, "request body: a JSON object is required");
		return false;
	}
	r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!r->json) {
		http_reply_error(r, 400, "request body: invalid JSON: %s (line %d, column %d)",
				 je.text, je.line, je.column);
		return false;
	}
	if (!json_is_object(r->json)) {
		http_reply_error(r, 400, "request body must be a JSON object");
		return false;
	}
	return true;
}

static void run_api(struct http_req *r, const char *url, const char *method)
{
	const char *param = NULL;
	bool known;
	const struct http_route *rt = route_find(url, method, &param, &known);

	if (!rt) {
		if (known)
			http_reply_error(r, 405, "method %s not allowed on %s", method, url);
		else
			http_reply_error(r, 404, "no such API path: %s", url);
		return;
	}
	if (!rt->open && !auth_gate(r, rt))
		return;
	if (rt->json_body && !parse_body(r))
		return;
	rt->run(r, param);
	if (r->state == REQ_NEW) {
		log_err("http: handler for %s %s did not reply (bug)", method, url);
		http_reply_error(r, 500, "internal error");
	}
}

/* ---- the access handler ---- */

static bool declared_too_big(struct MHD_Connection *conn)
{
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long n;

	if (!cl)
		return false;
	errno = 0;
	n = strtoull(cl, &end, 10);
	return errno || end == cl || n > HTTP_BODY_MAX;
}

static void take_body(struct http_req *r, const char *data, size_t len)
{
	char *nb;

	if (r->too_big || r->body_len + len > HTTP_BODY_MAX) {
		r->too_big = true;
		return;
	}
	nb = realloc(r->body, r->body_len + len + 1);
	if (!nb) {
		r->too_big = true;
		return;
	}
	memcpy(nb + r->body_len, data, len);
	r->body = nb;
	r->body_len += len;
	r->body[r->body_len] = '\0';
}

/* An HTTP token (RFC 9110 tchar), as a method must be. */
static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

static void dispatch(struct http_req *r, const char *url, const char *method)
{
	if (!is_token(method)) {
		http_reply_error(r, 400, "invalid request method");
		return;
	}
	if (!utf8_valid(url)) {
		http_reply_error(r, 400, "request path is not valid UTF-8");
		return;
	}
	if (r->too_big) {
		http_reply_error(r, 413, "request body larger than %d bytes", HTTP_BODY_MAX);
		return;
	}
	if (is_api_path(url))
		run_api(r, url, method);
	else
		http_static(r, r->srv->www_fd, url, method);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_req *r = *con_cls;

	(void)version;
	if (!r) {
		conn_deadline(conn, 0); /* the header block is complete */
		r = req_new(cls, conn);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		if (declared_too_big(conn)) {
			r->in_handler = true;
			http_reply_error(r, 413, "request body larger than %d bytes",
					 HTTP_BODY_MAX);
			r->in_handler = false;
			return MHD_YES;
		}
		/* Always answer from a later call: a response queued in the first
		 * call makes libmicrohttpd close the connection (no keep-alive). */
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (r->state == REQ_NEW)
			take_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->state == REQ_READY) { /* a deferred reply after the resume */
		MHD_queue_response(conn, r->resp_status, r->resp);
		MHD_destroy_response(r->resp);
		r->resp = NULL;
		r->state = REQ_DONE;
		return MHD_YES;
	}
	if (r->state != REQ_NEW)
		return MHD_YES;
	r->in_handler = true;
	dispatch(r, url, method);
	r->in_handler = false;
	return MHD_YES;
}

/* ---- listener ---- */

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

/* Answer every suspended request (503) so MHD may stop: it must not stop with
 * suspended connections. */
static void drain_suspended(struct http_server *s)
{
	bool any = false;

	for (struct http_req *r = s->reqs, *n; r; r = n) {
		bool owed = r->owed;

		n = r->next;
		if (r->state == REQ_READY)
			any = true; /* a reply queued by a cancelled operation must still leave */
		if (!r->suspended)
			continue;
		if (r->timer) {
			loop_timer_cancel(s->env.loop, r->timer);
			r->timer = 0;
		}
		r->in_handler = false;
		r->owed = false;
		r->state = REQ_NEW;
		http_reply_error(r, 503, "the server is restarting");
		r->owed = owed; /* the handler's late reply is then dropped */
		any = true;
	}
	for (int i = 0; any && i < 4; i++)
		MHD_run(s->mhd);
}

static void stop_mhd(struct http_server *s)
{
	if (!s->mhd)
		return;
	drain_suspended(s);
	loop_del_fd(s->env.loop, s->epfd);
	MHD_stop_daemon(s->mhd); /* closes the listening socket */
	s->mhd = NULL;
	s->port = 0;
	while (s->conns) /* MHD reports each closed connection; in case it did not */
		conn_unlink(s->conns);
	if (s->sweep_timer) {
		loop_timer_cancel(s->env.loop, s->sweep_timer);
		s->sweep_timer = 0;
	}
	if (s->timer) {
		loop_timer_cancel(s->env.loop, s->timer);
		s->timer = 0;
	}
}

static int start_mhd(struct http_server *s, int port)
{
	const union MHD_DaemonInfo *di;
	int fd = net_listen_tcp(s->env.conf->http_bind, port);

	if (fd < 0) {
		log_errno(LOG_ERR, -fd, "http: cannot listen on %s port %d", s->env.conf->http_bind,
			  port);
		return fd;
	}
	s->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
	    s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONN_PER_ADDR,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_END);
	if (!s->mhd) {
		close(fd);
		log_err("http: libmicrohttpd failed to start");
		return -EIO;
	}
	di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	s->epfd = di ? di->epoll_fd : -1;
	if (s->epfd < 0 || loop_add_fd(s->env.loop, s->epfd, EPOLLIN, on_mhd_fd, s) < 0) {
		MHD_stop_daemon(s->mhd);
		s->mhd = NULL;
		log_err("http: cannot watch the libmicrohttpd epoll fd");
		return -EIO;
	}
	s->port = port;
	log_info("http: listening on %s port %d", s->env.conf->http_bind, port);
	mhd_step(s);
	return 0;
}

static void on_rebind(void *arg)
{
	struct http_server *s = arg;
	int want = (int)settings_int(s->env.settings, "http_port");

	s->rebind_timer = 0;
	if (s->mhd && s->port == want)
		return;
	stop_mhd(s);
	start_mhd(s, want);
}

static void on_settings(const struct settings *st, void *arg)
{
	(void)st;
	http_server_configure(arg);
}

int http_server_init(const struct http_env *env, struct http_server **out)
{
	/* Only the port: authentication is read per request. */
	static const char *const keys[] = {"http_port", NULL};
	int r;
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->env = *env;
	s->epfd = -1;
	auth_throttle_init(&s->throttle);
	s->www_fd = open(env->conf->www_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->www_fd < 0)
		log_warn("http: web root %s: %s (the web UI is not served)", env->conf->www_dir,
			 strerror(errno));
	on_rebind(s);
	r = settings_subscribe(env->settings, keys, on_settings, s);
	if (r < 0) {
		http_server_fini(s);
		return r;
	}
	*out = s;
	return 0;
}

void http_server_configure(struct http_server *s)
{
	int want;

	if (!s)
		return;
	want = (int)settings_int(s->env.settings, "http_port");
	if ((s->mhd && s->port == want) || s->rebind_timer)
		return;
	s->rebind_timer = loop_timer_add(s->env.loop, REBIND_DELAY_MS, on_rebind, s);
	if (s->rebind_timer < 0)
		s->rebind_timer = 0;
}

int http_server_port(const struct http_server *s)
{
	return s ? s->port : 0;
}

void http_server_fini(struct http_server *s)
{
	if (!s)
		return;
	settings_unsubscribe(s->env.settings, on_settings, s);
	if (s->rebind_timer)
		loop_timer_cancel(s->env.loop, s->rebind_timer);
	stop_mhd(s);
	while (s->reqs) /* orphans whose handler never answered */
		req_free(s->reqs);
	for (int i = 0; i < HTTP_CACHE_KEYS; i++)
		if (s->cache[i].resp)
			MHD_destroy_response(s->cache[i].resp);
	if (s->www_fd >= 0)
		close(s->www_fd);
	free(s);
}

/* ---- for the static-file module ---- */

void http_reply_fd(struct http_req *r, unsigned status, const char *content_type, int fd,
		   uint64_t size)
{
	struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);

	if (!resp) {
		close(fd);
		http_reply_error(r, 500, "cannot send the file");
		return;
	}
	resp_headers(r, resp, content_type);
	req_respond(r, status, resp);
}
