/* Listening sockets shared by the HTTP and Modbus TCP servers. */
#include "sg/netsock.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int net_listen_tcp(const char *bind_addr, int port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
	struct addrinfo *ai;
	char ports[8];
	int fd, one = 1, e;

	snprintf(ports, sizeof(ports), "%d", port);
	e = getaddrinfo(bind_addr, ports, &hints, &ai);
	if (e)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = -errno;
		freeaddrinfo(ai);
		return e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		e = -errno;
		close(fd);
		freeaddrinfo(ai);
		return e;
	}
	freeaddrinfo(ai);
	return fd;
}
