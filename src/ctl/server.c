/* Control socket: line-delimited JSON over AF_UNIX, non-blocking, in the
 * loop. Each line is an operations command (sg/ops.h) handed to ops_run;
 * the completion becomes the reply line. A client whose request waits for the bus stays allocated
 * until the reply arrives, even if it hung up meanwhile. Silent clients cannot lock sgctl out: one
 * idle for CTL_IDLE_MS is closed, and when the table is full the one idle the longest makes room
 * for the newcomer. */
#include "sg/ctlsrv.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/ctl.h"
#include "sg/log.h"
#include "sg/loop.h"
#include "sg/ops.h"

#define CLIENTS_MAX 32
#define CTL_IDLE_MS 30000 /* a client without a request in progress, silent this long */
#define CTL_SWEEP_MS 1000

struct ctl_client {
	struct ctl_server *srv;
	struct ctl_client *next;
	int fd;
	char *in;
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool pending;	 /* a request is being served */
	bool gone;	 /* peer closed or error: free once not pending */
	bool in_handler; /* inside client_take_lines: the caller frees */
	int64_t last_active;
};

struct ctl_server {
	struct loop *loop;
	struct ops *ops;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_client *clients;
	unsigned nclients;
	int64_t idle_ms, sweep_timer;
};

static void client_free(struct ctl_client *c)
{
	struct ctl_client **pp = &c->srv->clients;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	c->srv->nclients--;
	ops_forget(c->srv->ops, c); /* a call still in flight (server closing) ends silently */
	if (c->fd >= 0) {
		loop_del_fd(c->srv->loop, c->fd);
		close(c->fd);
	}
	free(c->in);
	free(c->out);
	free(c);
}

static void client_gone(struct ctl_client *c)
{
	c->gone = true;
	if (c->fd >= 0) {
		loop_del_fd(c->srv->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	if (!c->pending && !c->in_handler)
		client_free(c);
}

/* Returns false when c may have been freed. */
static bool client_flush(struct ctl_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			loop_mod_fd(c->srv->loop, c->fd, EPOLLIN | EPOLLOUT);
			return true;
		}
		if (n <= 0) {
			client_gone(c);
			return false;
		}
		c->outoff += (size_t)n;
	}
	c->outlen = c->outoff = 0;
	loop_mod_fd(c->srv->loop, c->fd, EPOLLIN);
	return true;
}

static void client_send(struct ctl_client *c, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
	size_t n = s ? strlen(s) : 0;
	char *buf;

	json_decref(msg);
	c->pending = false;
	c->last_active = clock_mono_ms();
	if (c->gone) {
		free(s);
		if (!c->in_handler)
			client_free(c);
		return;
	}
	buf = s ? realloc(c->out, c->outlen + n + 1) : NULL;
	if (!buf) {
		free(s);
		client_gone(c);
		return;
	}
	memcpy(buf + c->outlen, s, n);
	buf[c->outlen + n] = '\n';
	c->out = buf;
	c->outlen += n + 1;
	free(s);
	client_flush(c);
}

/* The completion of a client's command: its reply line. */
static void on_done(enum ops_status st, const char *msg, json_t *res, void *arg)
{
	struct ctl_client *c = arg;

	if (st == OPS_OK)
		client_send(c, json_pack("{s:b, s:o}", "ok", 1, "data", res ? res : json_object()));
	else
		client_send(c, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "status",
					 ops_status_name(st)));
}

static void handle_line(struct ctl_client *c, const char *line)
{
	json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, NULL);

	c->pending = true;
	if (!json_is_object(req))
		on_done(OPS_BAD_REQUEST,
			"bad request: expected one JSON command object {\"cmd\": …} per line", NULL,
			c);
	else if (json_object_get(req, "argv"))
		on_done(OPS_BAD_REQUEST,
			"bad request: {\"argv\": […]} is no longer understood: send a command "
			"object {\"cmd\": …} (as sgctl does)",
			NULL, c);
	else
		ops_run(c->srv->ops, req, OPS_FROM_CTL, on_done, c);
	json_decref(req);
}

static void client_take_lines(struct ctl_client *c)
{
	char *nl;

	/* One request at a time per client; the rest waits in the buffer. */
	c->in_handler = true;
	while (!c->pending && !c->gone && c->in && (nl = memchr(c->in, '\n', c->inlen))) {
		size_t used = (size_t)(nl - c->in) + 1;

		*nl = '\0';
		handle_line(c, c->in);
		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
	}
	c->in_handler = false;
	if (c->gone && !c->pending)
		client_free(c);
}

static void client_read(struct ctl_client *c)
{
	char buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
	char *in;

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0 || c->inlen + (size_t)n > CTL_LINE_MAX) {
		client_gone(c);
		return;
	}
	in = realloc(c->in, c->inlen + (size_t)n + 1);
	if (!in) {
		client_gone(c);
		return;
	}
	memcpy(in + c->inlen, buf, (size_t)n);
	c->in = in;
	c->inlen += (size_t)n;
	c->last_active = clock_mono_ms();
	client_take_lines(c);
}

static void on_client(int fd, uint32_t events, void *arg)
{
	struct ctl_client *c = arg;

	(void)fd;
	if ((events & EPOLLOUT) && !client_flush(c))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
	else if (!c->gone && !c->pending)
		client_take_lines(c);
}

/* The client silent the longest with no request in progress, or NULL. The
 * list is newest first: among equal times the oldest wins. */
static struct ctl_client *idlest(struct ctl_server *s)
{
	struct ctl_client *best = NULL;

	for (struct ctl_client *c = s->clients; c; c = c->next)
		if (!c->pending && !c->gone && (!best || c->last_active <= best->last_active))
			best = c;
	return best;
}

static void on_sweep(void *arg)
{
	struct ctl_server *s = arg;
	int64_t now = clock_mono_ms();

	s->sweep_timer = loop_timer_add(s->loop, CTL_SWEEP_MS, on_sweep, s);
	for (struct ctl_client *c = s->clients, *n; c; c = n) {
		n = c->next;
		if (!c->pending && !c->gone && now - c->last_active > s->idle_ms)
			client_gone(c);
	}
}

static void on_accept(int fd, uint32_t events, void *arg)
{
	struct ctl_server *s = arg;
	struct ctl_client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	(void)events;
	if (cfd < 0)
		return;
	if (s->nclients >= CLIENTS_MAX && (c = idlest(s)))
		client_gone(c);
	if (s->nclients >= CLIENTS_MAX || !(c = calloc(1, sizeof(*c)))) {
		close(cfd);
		return;
	}
	c->srv = s;
	c->fd = cfd;
	c->last_active = clock_mono_ms();
	if (loop_add_fd(s->loop, cfd, EPOLLIN, on_client, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	c->next = s->clients;
	s->clients = c;
	s->nclients++;
}

/* CTL_IDLE_MS, or $SGD_TEST_CTL_IDLE_MS (100…600000) when SGD_TEST_HOOKS=1. */
static int64_t idle_timeout_ms(void)
{
	const char *hooks = getenv("SGD_TEST_HOOKS"), *v = getenv("SGD_TEST_CTL_IDLE_MS");
	char *end;
	long ms;

	if (!hooks || strcmp(hooks, "1") || !v)
		return CTL_IDLE_MS;
	errno = 0;
	ms = strtol(v, &end, 10);
	return errno || end == v || *end || ms < 100 || ms > 600000 ? CTL_IDLE_MS : ms;
}

int ctl_server_init(struct loop *loop, struct ops *ops, const char *path, struct ctl_server **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_server *s;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->ops = ops;
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0) {
		r = -errno;
		goto out_free;
	}
	unlink(path); /* a stale socket from a crash */
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->fd, 16) < 0) {
		r = -errno;
		goto out_close;
	}
	chmod(path, 0660);
	r = loop_add_fd(loop, s->fd, EPOLLIN, on_accept, s);
	if (r < 0)
		goto out_unlink;
	s->idle_ms = idle_timeout_ms();
	s->sweep_timer = loop_timer_add(loop, CTL_SWEEP_MS, on_sweep, s);
	*out = s;
	return 0;

out_unlink:
	unlink(path);
out_close:
	close(s->fd);
out_free:
	free(s);
	return r;
}

void ctl_server_fini(struct ctl_server *s)
{
	if (!s)
		return;
	if (s->sweep_timer > 0)
		loop_timer_cancel(s->loop, s->sweep_timer);
	while (s->clients) {
		s->clients->pending = false;
		client_free(s->clients);
	}
	loop_del_fd(s->loop, s->fd);
	close(s->fd);
	unlink(s->path);
	free(s);
}
