/* Internals of the Modbus module: modbus.c owns the state and settings,
 * server.c the listening socket and client connections, gateway.c the
 * forwarding of requests to the lines with the register cache. */
#ifndef SG_MODBUS_INT_H
#define SG_MODBUS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "sg/bus.h"
#include "sg/conf.h"
#include "sg/dev.h"
#include "sg/loop.h"
#include "sg/mbproto.h"
#include "sg/modbus.h"
#include "sg/ownunit.h"
#include "sg/poll.h"
#include "sg/settings.h"

#define MB_CLIENTS_MAX 128
#define MB_PER_ADDR_MAX 32	/* connections of one client address at once */
#define MB_IN_BUF 1024		/* a few pipelined requests */
#define MB_OUT_MAX (64 * 1024)	/* stop reading a client that does not read its answers */
#define MB_PARTIAL_MS 5000	/* an incomplete frame may sit this long (slow-loris) */
#define MB_IDLE_MS (10 * 60000) /* a silent connection is closed after this */
#define MB_BUS_DEPTH 2		/* gateway transactions queued per line at once */

struct mbconn;

/* A forwarded request: waits in its line's FIFO, then runs as txn. */
struct gwreq {
	struct bus_txn txn; /* first: the bus hands it back */
	struct modbus *m;
	struct mbconn *conn; /* NULL once the client has gone */
	struct gwreq *next;
	/* Identical reads that arrived while this one waited: answered with its
	 * result (linked through next). */
	struct gwreq *followers;
	int slot;
	int bus;
	uint16_t tid;
	uint8_t unit;
	uint8_t fc;
	bool orphan; /* the module was torn down: free on completion */
};

struct mbconn {
	struct modbus *m;
	int fd;
	struct mbconn *prev, *next;
	uint8_t in[MB_IN_BUF];
	size_t inlen;
	uint8_t *out;
	size_t outlen, outoff, outcap;
	struct gwreq *req; /* the request being forwarded; one at a time per client */
	uint32_t events;   /* epoll events currently asked for */
	bool in_process;   /* conn_process is on the stack */
	bool dead;	   /* write failed or peer closed: close at a safe point */
	int64_t partial_since, last_active;
	uint8_t peer[16]; /* client address, IPv4 as ::ffff:a.b.c.d */
};

struct mb_counters {
	uint64_t requests, forwarded, cache_hits, coalesced, own, exceptions, dropped, rejected,
	    evicted;
};

struct modbus {
	struct modbus_env ctx; /* the handles it uses */
	int lfd;
	int port;
	char bind[64];
	bool enabled;
	uint8_t own_unit;
	int64_t apply_timer, sweep_timer;
	int cache_ms[DEV_SLOTS];
	struct mbconn *conns;
	unsigned nconns;
	struct {
		struct gwreq *head, *tail;
		unsigned inflight;
	} line[CONF_BUS_COUNT];
	struct gwreq *running; /* in a bus queue, linked through next */
	struct ownunit_env env;
	struct mb_counters n;
};

/* server.c */
int mb_server_listen(struct modbus *m);
void mb_server_close(struct modbus *m);
void mb_server_close_all(struct modbus *m);
/* Queue an answer frame to a client. */
void mb_conn_reply(struct mbconn *c, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t len);
/* The client's forwarded request finished (answer queued): read on. */
void mb_conn_resume(struct mbconn *c);
void mb_sweep(void *arg);

/* gateway.c: answer or forward one request for unit (not the own unit);
 * true when it was answered at once (exception or cache), false when it was
 * queued (c->req set). */
bool mb_gateway_request(struct modbus *m, struct mbconn *c, uint16_t tid, uint8_t unit,
			const uint8_t *pdu, size_t len);
/* The client is gone: its request finishes unseen. */
void mb_gateway_forget(struct gwreq *r);
/* Tear down: waiting requests freed, running ones orphaned. */
void mb_gateway_fini(struct modbus *m);

#endif
