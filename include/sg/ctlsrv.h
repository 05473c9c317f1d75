/* The control socket sgctl talks to (protocol in sg/ctl.h). */
#ifndef SG_CTLSRV_H
#define SG_CTLSRV_H

#include <jansson.h>

#include "sg/app.h"

struct ctl_server;
struct ctl_client;

/* Listen on path (a stale socket file is replaced); 0 or -errno. */
int ctl_server_init(struct app *a, const char *path, struct ctl_server **out);
/* Close the listener and every client; removes the socket file. */
void ctl_server_fini(struct ctl_server *s);
/* Send {"ok":true,"data":data} (steals data) to c and finish the request. */
void ctl_reply_ok(struct ctl_client *c, json_t *data);
/* Send {"ok":false,"error":msg} to c and finish the request. */
void ctl_reply_err(struct ctl_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Run one command (argv from the request); replies now or later. */
void ctl_dispatch(struct app *a, struct ctl_client *c, int argc, const char *const *argv);

#endif
