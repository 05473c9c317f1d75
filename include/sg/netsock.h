/* Listening sockets for the daemon's servers (HTTP, Modbus TCP). */
#ifndef SG_NETSOCK_H
#define SG_NETSOCK_H

/* A non-blocking, close-on-exec TCP socket listening on bind_addr (numeric
 * IPv4/IPv6) and port, SO_REUSEADDR set; the fd, or -EINVAL for a bad
 * address, or -errno. */
int net_listen_tcp(const char *bind_addr, int port);

#endif
