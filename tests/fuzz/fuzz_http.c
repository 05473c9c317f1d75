/* HTTP requests with bodies (libmicrohttpd, then src/api/http.c auth, limits
 * and body parsing, the route tables of src/api/rest*.c and legacy.c, and the
 * web root): the input is what a client sends on a connection, against a
 * whole daemon (app.c) listening on loopback. */
#include "fuzz.h"
#include "sg/app.h"
#include "sg/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A whole HTTP response: headers and Content-Length bytes of body. sgd keeps
 * an HTTP/1.1 connection open after answering even when the client has
 * half-closed, so the end of the answer is judged here. A request cut short
 * waits for the guard time (the daemon waits for the rest): 50 ms, enough
 * for the daemon to read and run whatever is complete; the handlers run
 * whether or not the answer is read here. */
static int response_complete(const char *buf, size_t len)
{
	const char *end = strstr(buf, "\r\n\r\n"), *cl;
	unsigned long body;

	if (!end)
		return 0;
	cl = strcasestr(buf, "\r\nContent-Length:");
	if (!cl || cl > end)
		return 0; /* no length: it ends with the connection */
	body = strtoul(cl + 17, NULL, 10);
	return len >= (size_t)(end + 4 - buf) + body;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct app *a = fuzz_app();
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)http_server_port(a->http))};
	int fd;

	if (!sa.sin_port) {
		/* an input moved the port: the rebind is pending */
		fuzz_app_turn();
		return 0;
	}
	fd = fuzz_app_connect((struct sockaddr *)&sa, sizeof(sa));
	if (fd < 0) {
		fuzz_app_turn();
		return 0;
	}
	fuzz_app_send(fd, data, size);
	size_t got = fuzz_app_exchange(fd, 50, response_complete);
	if (getenv("FUZZ_LOG"))
		fprintf(stderr, "fuzz: %zu bytes back\n", got);
	/* A reset, not a FIN: the daemon drops the connection at once instead
	 * of keeping it for its idle timeout (connections would pile up). */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){.l_onoff = 1, .l_linger = 0},
		   sizeof(struct linger));
	close(fd);
	fuzz_app_turn();
	fuzz_app_restore();
	return 0;
}
