/* The control socket sgctl talks to (protocol in sg/ctl.h): a front-end of
 * the operations table, it hands each request object to ops_run. */
#ifndef SG_CTLSRV_H
#define SG_CTLSRV_H

struct ctl_server;
struct loop;
struct ops;

/* Listen on path (a stale socket file is replaced), serving in loop the
 * commands of ops (both outlive the server); 0 or -errno. */
int ctl_server_init(struct loop *loop, struct ops *ops, const char *path, struct ctl_server **out);
/* Close the listener and every client; removes the socket file. */
void ctl_server_fini(struct ctl_server *s);

#endif
