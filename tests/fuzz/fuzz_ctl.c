/* The control socket (src/ctl/server.c framing, then ops_run of src/ops/):
 * the input is what a local client writes on a connection, one JSON command
 * object per line, against a whole daemon (app.c). Every reply line must be
 * {"ok": true, "data": …} or {"ok": false, "error": "…"}, and a request in
 * the old {"argv": […]} form must be refused. */
#include "fuzz.h"
#include "sg/app.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static const uint8_t *input;
static size_t input_len;

/* The n-th newline-terminated request line (as the server cuts it at its
 * first NUL), or NULL when there are fewer. */
static json_t *request(size_t n)
{
	const uint8_t *p = input, *end = input + input_len, *nl;

	for (;; n--) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return NULL;
		if (!n)
			return json_loadb((const char *)p,
					  strnlen((const char *)p, (size_t)(nl - p)), 0, NULL);
		p = nl + 1;
	}
}

/* Check every whole reply line so far; never "complete": the daemon closes. */
static int check_replies(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;

	for (size_t n = 0; (nl = memchr(p, '\n', (size_t)(end - p))); n++, p = nl + 1) {
		json_t *r = json_loadb(p, (size_t)(nl - p), 0, NULL),
		       *ok = json_object_get(r, "ok");
		json_t *req = request(n);
		const char *err = json_string_value(json_object_get(r, "error"));

		if (!json_is_boolean(ok) || (json_is_false(ok) && (!err || !*err)) ||
		    (json_is_true(ok) && !json_object_get(r, "data")))
			abort(); /* not a reply of the protocol */
		if (json_is_object(req) && json_object_get(req, "argv") && !json_is_false(ok))
			abort(); /* the old form must be refused */
		json_decref(req);
		json_decref(r);
	}
	return 0;
}

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
	input = data;
	input_len = size;
	fuzz_app_send(fd, data, size);
	(void)fuzz_app_exchange(fd, 2000, check_replies);
	close(fd);
	fuzz_app_turn(); /* the daemon notices the close */
	fuzz_app_restore();
	return 0;
}
