/* The HTTP server: libmicrohttpd driven from sgd's own epoll loop (no MHD
 * threads). It owns the listening socket and every connection; it checks
 * authentication, limits and parses request bodies, routes API paths to the
 * handlers of rest.c/legacy.c and serves the web root for everything else.
 * Handlers reply now or later (deferred) through the http_reply_* calls. */
#ifndef SG_HTTP_H
#define SG_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_server;
struct loop;
struct settings;
struct conf;
struct ops;
struct reg;
struct hist;
struct status_env;
struct http_req;

#define HTTP_BODY_MAX (64 * 1024) /* larger request bodies get 413 */

/* One API route. A path ending in "/{}" matches exactly one more non-empty
 * segment, passed to run() as param (else param is NULL). */
struct http_route {
	const char *method; /* "GET" or "POST" */
	const char *path;   /* "/api/devices", "/api/measurement/{}" */
	bool open;	    /* served without authentication (POST /api/auth) */
	bool json_body;	    /* the body must be a JSON object (else 400 before run) */
	void (*run)(struct http_req *r, const char *param);
	/* Without a Basic header or cookie, the credentials may come in the body
	 * as {"username", "password"} (POST /api/auth, as the web UI sends them). */
	bool body_auth;
};

/* The route tables (rest.c, legacy.c). */
extern const struct http_route rest_routes[];
extern const size_t rest_route_count;
/* Credentials from a request body {"username": "…", "password": "…"} (the
 * web UI's login form; body_auth routes): 0, -ENOENT when the body names
 * none, -EINVAL when it is not such an object or a field is too long. */
int rest_body_credentials(const char *body, size_t len, char *user, char *pass);

/* The handles the server and its route handlers use (owned by the caller,
 * outliving the server). */
struct http_env {
	struct loop *loop;
	struct settings *settings;
	const struct conf *conf;
	struct ops *ops;		 /* every command a route runs */
	struct reg *reg;		 /* the devices the routes show */
	struct hist *hist;		 /* NULL when history.db cannot be used */
	const struct status_env *status; /* GET /api */
};

/* Create the server over env (copied); it listens once
 * http_server_configure() has a port. */
int http_server_init(const struct http_env *env, struct http_server **out);
/* (Re)bind to conf.http_bind : settings http_port when the port changed; safe
 * to call from inside a handler (the rebind happens after the reply). A bind
 * failure is logged and leaves the server without a listener. */
void http_server_configure(struct http_server *s);
/* Port listened on, or 0 when not listening. */
int http_server_port(const struct http_server *s);
/* Deferred requests still pending are answered 503; then everything closes. */
void http_server_fini(struct http_server *s);

/* ---- for handlers ---- */
/* The server's handles, for route handlers. */
const struct http_env *http_req_env(struct http_req *r);
/* Query-string argument, or NULL when absent. */
const char *http_req_query(struct http_req *r, const char *key);
/* The parsed body (routes with json_body: always an object); NULL otherwise. Borrowed. */
json_t *http_req_body(struct http_req *r);
/* Client address as text ("127.0.0.1"). */
const char *http_req_peer(struct http_req *r);
/* Add a response header (e.g. Set-Cookie) to the reply that follows. */
void http_req_add_header(struct http_req *r, const char *name, const char *value);
/* Call before returning from run() without replying: the reply comes later
 * from a loop callback. The request stays valid until it is answered. */
void http_req_defer(struct http_req *r);

/* Reply with JSON (steals body). Exactly one reply per request. */
void http_reply_json(struct http_req *r, unsigned status, json_t *body);
/* Reply {"error": "<message>", "status": <status>}. */
void http_reply_error(struct http_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies that depend only on (key, tag) — e.g. a device's readings and the
 * time they were read — are rendered once and the same response is sent to
 * every client until the tag changes. key < HTTP_CACHE_KEYS. */
#define HTTP_CACHE_KEYS 64
/* Reply 200 from the cache when it holds key with this tag; else false (reply yourself). */
bool http_reply_cached(struct http_req *r, unsigned key, uint64_t tag);
/* Reply 200 with body (stolen) and keep the response for key/tag. */
void http_reply_json_cache(struct http_req *r, unsigned key, uint64_t tag, json_t *body);
/* Reply with a copy of data (CSV, text). */
void http_reply_data(struct http_req *r, unsigned status, const char *content_type,
		     const void *data, size_t len);

#endif
