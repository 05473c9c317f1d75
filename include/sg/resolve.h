/* Host names resolved off the loop thread, for every outgoing connection
 * (the MQTT link, Standard TCP push): a DNS server that is slow or never
 * answers must not stall the loop. */
#ifndef SG_RESOLVE_H
#define SG_RESOLVE_H

#include <netdb.h>
#include <stdbool.h>

#include "sg/loop.h"

struct resolve;
/* The end of a lookup, on the loop thread: err 0 and the addresses (the
 * callee owns them: freeaddrinfo), or an EAI_* code and NULL. */
typedef void (*resolve_cb)(int err, struct addrinfo *ai, void *arg);

/* Look up host (a name or a numeric address) and port for a TCP connect.
 * cb runs exactly once, from the loop and never from inside this call,
 * unless resolve_cancel() comes first. A numeric address needs no lookup
 * and is answered on the next turn. 0 with *out set, or -errno. */
int resolve_start(struct loop *loop, const char *host, int port, resolve_cb cb, void *arg,
		  struct resolve **out);
/* Abandon a lookup without waiting for it: cb will not run. NULL: no-op. */
void resolve_cancel(struct resolve *r);
/* True when host is a numeric IPv4 or IPv6 address (no lookup needed). */
bool resolve_is_numeric(const char *host);

#endif
