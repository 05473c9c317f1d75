/* The control socket (src/ctl/server.c framing, src/ctl/cmds*.c dispatch):
 * the input is what a local client writes on a connection, one JSON request
 * per line, against a whole daemon (app.c). */
#include "fuzz.h"
#include "sg/app.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct app *a = fuzz_app();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(a->conf.ctl_socket) >= sizeof(sa.sun_path))
		abort(); /* app.c makes it short */
	memcpy(sa.sun_path, a->conf.ctl_socket, strlen(a->conf.ctl_socket) + 1);
	fd = fuzz_app_connect((struct sockaddr *)&sa, sizeof(sa));
	if (fd < 0)
		abort();
	fuzz_app_send(fd, data, size);
	(void)fuzz_app_exchange(fd, 2000, NULL);
	close(fd);
	fuzz_app_turn(); /* the daemon notices the close */
	fuzz_app_restore();
	return 0;
}
