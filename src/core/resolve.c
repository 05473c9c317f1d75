/* Asynchronous name lookups: glibc's getaddrinfo_a resolves in a thread of
 * its own and the loop polls for the result with a timer (first after 5 ms,
 * then every 50 ms), so a DNS server that never answers costs the loop a
 * few microseconds per poll instead of the resolver timeout.
 *
 * A running lookup cannot be cancelled (gai_cancel only removes queued
 * ones) and glibc writes its result into our gaicb when it finishes, so an
 * abandoned lookup stays alive on the orphan list until it has finished;
 * finished orphans are freed whenever another lookup starts or polls.
 * Nothing ever waits for one: at exit the list still points to them. */
#include "sg/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HOST_MAX 256
#define POLL_FIRST_MS 5
#define POLL_MS 50

/* What glibc's thread writes into: heap-allocated, outlives a cancelled resolve. */
struct lookup {
	struct gaicb gcb;
	struct addrinfo hints;
	char name[HOST_MAX];
	char service[8];
	struct lookup *next;
};

struct resolve {
	struct loop *loop;
	resolve_cb cb;
	void *arg;
	int64_t timer;
	struct lookup *lk;   /* NULL: a numeric address, answered from ai/err */
	struct addrinfo *ai; /* the answer of a numeric address */
	int err;
};

/* Abandoned lookups glibc may still write into (main thread only). */
static struct lookup *orphans;

static void lookup_free(struct lookup *lk)
{
	if (lk->gcb.ar_result)
		freeaddrinfo(lk->gcb.ar_result);
	free(lk);
}

static void reap_orphans(void)
{
	struct lookup **pp = &orphans;

	while (*pp) {
		struct lookup *lk = *pp;

		if (gai_error(&lk->gcb) == EAI_INPROGRESS) {
			pp = &lk->next;
			continue;
		}
		*pp = lk->next;
		lookup_free(lk);
	}
}

/* Hand the lookup to the orphan list, or free it when it is over. */
static void drop_lookup(struct lookup *lk)
{
	if (!lk)
		return;
	gai_cancel(&lk->gcb);
	if (gai_error(&lk->gcb) == EAI_INPROGRESS) {
		lk->next = orphans;
		orphans = lk;
		return;
	}
	lookup_free(lk);
}

static void finish(struct resolve *r, int err, struct addrinfo *ai)
{
	resolve_cb cb = r->cb;
	void *arg = r->arg;

	drop_lookup(r->lk);
	free(r);
	cb(err, ai, arg);
}

static void on_poll(void *arg)
{
	struct resolve *r = arg;
	struct addrinfo *ai;
	int err;

	r->timer = 0;
	reap_orphans();
	if (!r->lk) {
		finish(r, r->err, r->ai);
		return;
	}
	err = gai_error(&r->lk->gcb);
	if (err == EAI_INPROGRESS) {
		r->timer = loop_timer_add(r->loop, POLL_MS, on_poll, r);
		if (r->timer > 0)
			return;
		r->timer = 0;
		err = EAI_MEMORY; /* no timer: give up rather than hang forever */
	}
	ai = err ? NULL : r->lk->gcb.ar_result;
	if (!err)
		r->lk->gcb.ar_result = NULL;
	finish(r, err, ai);
}

bool resolve_is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return host && (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1);
}

static int start_lookup(struct resolve *r, const char *host, const char *service)
{
	struct lookup *lk = calloc(1, sizeof(*lk));
	struct gaicb *list[1];

	if (!lk)
		return EAI_MEMORY;
	snprintf(lk->name, sizeof(lk->name), "%s", host);
	snprintf(lk->service, sizeof(lk->service), "%s", service);
	lk->hints.ai_family = AF_UNSPEC;
	lk->hints.ai_socktype = SOCK_STREAM;
	lk->hints.ai_flags = AI_NUMERICSERV;
	lk->gcb.ar_name = lk->name;
	lk->gcb.ar_service = lk->service;
	lk->gcb.ar_request = &lk->hints;
	list[0] = &lk->gcb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
		free(lk);
		return EAI_AGAIN; /* glibc could not queue it (no memory or thread) */
	}
	r->lk = lk;
	return 0;
}

int resolve_start(struct loop *loop, const char *host, int port, resolve_cb cb, void *arg,
		  struct resolve **out)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct resolve *r;
	char service[8];

	if (!loop || !host || !cb || !out || port < 0 || port > 65535 || strlen(host) >= HOST_MAX)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->cb = cb;
	r->arg = arg;
	snprintf(service, sizeof(service), "%d", port);
	reap_orphans();
	if (resolve_is_numeric(host))
		r->err = getaddrinfo(host, service, &hints, &r->ai); /* no lookup: never blocks */
	else
		r->err = start_lookup(r, host, service);
	r->timer = loop_timer_add(loop, r->lk ? POLL_FIRST_MS : 0, on_poll, r);
	if (r->timer <= 0) {
		int e = r->timer < 0 ? (int)-r->timer : ENOMEM;

		drop_lookup(r->lk);
		if (r->ai)
			freeaddrinfo(r->ai);
		free(r);
		return -e;
	}
	*out = r;
	return 0;
}

void resolve_cancel(struct resolve *r)
{
	if (!r)
		return;
	if (r->timer > 0)
		loop_timer_cancel(r->loop, r->timer);
	drop_lookup(r->lk);
	if (r->ai)
		freeaddrinfo(r->ai);
	free(r);
}
