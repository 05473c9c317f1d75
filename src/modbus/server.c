/* Modbus TCP connections in the main loop. A client's bytes are framed by the
 * MBAP header (whose length is checked before anything else is trusted);
 * a malformed header cannot be resynchronised, so that connection is
 * dropped. Requests of one client are answered in order, one at a time;
 * an incomplete frame may wait MB_PARTIAL_MS before the connection is closed,
 * so byte-by-byte senders hold nothing but their own socket. A new client is
 * never turned away for lack of room: at the per-address cap or the global
 * limit the connection idle the longest (of that address, or of all) is
 * closed, so idle sockets cannot lock the others out. */
#include "modbus_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/log.h"
#include "sg/netsock.h"

static void conn_close(struct mbconn *c)
{
	struct modbus *m = c->m;

	if (c->req)
		mb_gateway_forget(c->req);
	loop_del_fd(m->ctx.loop, c->fd);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->nconns--;
	free(c->out);
	free(c);
}

static void conn_want(struct mbconn *c)
{
	uint32_t ev = 0;

	if (c->outlen > c->outoff)
		ev |= EPOLLOUT;
	/* Stop reading while the input buffer is full or answers pile up. */
	if (c->inlen < sizeof(c->in) && c->outlen - c->outoff < MB_OUT_MAX)
		ev |= EPOLLIN;
	if (ev != c->events && loop_mod_fd(c->m->ctx.loop, c->fd, ev) == 0)
		c->events = ev;
}

static void conn_flush(struct mbconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			c->dead = true;
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
}

void mb_conn_reply(struct mbconn *c, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t len)
{
	size_t need = c->outlen + MBAP_HDR + len;

	if (c->dead)
		return;
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap * 2 : 512;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->dead = true;
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	c->outlen += mbap_build(tid, unit, pdu, len, c->out + c->outlen);
	conn_flush(c);
}

/* Handle the complete frames in the input buffer, until one is forwarded. */
static void conn_process(struct mbconn *c)
{
	struct modbus *m = c->m;
	size_t off = 0;

	c->in_process = true;
	while (!c->req && !c->dead) {
		struct mbap h;
		int n = mbap_parse(c->in + off, c->inlen - off, &h);
		const uint8_t *pdu = c->in + off + MBAP_HDR;
		size_t plen = h.len - 1;

		if (n < 0) {
			m->n.dropped++;
			c->dead = true;
			break;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		m->n.requests++;
		if (h.unit == m->own_unit || h.unit == 255) {
			uint8_t rsp[MB_PDU_MAX];
			size_t rlen = ownunit_handle(&m->env, pdu, plen, rsp);

			m->n.own++;
			if (rlen >= 2 && (rsp[0] & 0x80))
				m->n.exceptions++;
			mb_conn_reply(c, h.tid, h.unit, rsp, rlen);
		} else {
			mb_gateway_request(m, c, h.tid, h.unit, pdu, plen);
		}
	}
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	c->partial_since = c->inlen ? (c->partial_since ? c->partial_since : clock_mono_ms()) : 0;
	c->in_process = false;
}

/* Process, then settle: close a dead connection, else ask for the right events. */
static void conn_run(struct mbconn *c)
{
	if (c->in_process)
		return;
	conn_process(c);
	if (c->dead) {
		conn_close(c);
		return;
	}
	conn_want(c);
}

void mb_conn_resume(struct mbconn *c)
{
	conn_run(c);
}

static void on_conn(int fd, uint32_t events, void *arg)
{
	struct mbconn *c = arg;

	if (events & EPOLLOUT)
		conn_flush(c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = 0;

		if (c->inlen < sizeof(c->in)) {
			n = recv(fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				c->dead = true;
			else if (n > 0)
				c->inlen += (size_t)n;
		}
		c->last_active = clock_mono_ms();
	}
	conn_run(c);
}

/* The client address as 16 bytes, IPv4 mapped into IPv6 so both compare alike. */
static void peer_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	} else if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
}

/* The connection of key (NULL: of anyone) silent the longest, preferring one
 * without a request on the lines; NULL when there is none. The list is newest
 * first, so among equal times (same ms) the oldest connection wins. */
static struct mbconn *idlest(struct modbus *m, const uint8_t *key)
{
	struct mbconn *best = NULL;

	for (struct mbconn *c = m->conns; c; c = c->next) {
		if (key && memcmp(c->peer, key, 16))
			continue;
		if (!best || (!c->req && best->req) ||
		    (!c->req == !best->req && c->last_active <= best->last_active))
			best = c;
	}
	return best;
}

static unsigned count_peer(const struct modbus *m, const uint8_t *key)
{
	unsigned n = 0;

	for (const struct mbconn *c = m->conns; c; c = c->next)
		n += !memcmp(c->peer, key, 16);
	return n;
}

/* Close the idlest connection when a new one from key would exceed a limit. */
static void make_room(struct modbus *m, const uint8_t *key)
{
	struct mbconn *victim = NULL;

	if (count_peer(m, key) >= MB_PER_ADDR_MAX)
		victim = idlest(m, key);
	else if (m->nconns >= MB_CLIENTS_MAX)
		victim = idlest(m, NULL);
	if (victim) {
		m->n.evicted++;
		conn_close(victim);
	}
}

static void on_accept(int fd, uint32_t events, void *arg)
{
	struct modbus *m = arg;

	(void)events;
	for (;;) {
		struct sockaddr_storage ss = {0};
		socklen_t sl = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC),
		    one = 1;
		uint8_t key[16];
		struct mbconn *c;

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_errno(LOG_WARNING, errno, "modbus tcp: accept");
			return;
		}
		peer_key(&ss, key);
		make_room(m, key);
		if (m->nconns >= MB_CLIENTS_MAX || !(c = calloc(1, sizeof(*c)))) {
			m->n.rejected++;
			close(cfd);
			continue;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->m = m;
		c->fd = cfd;
		c->events = EPOLLIN;
		c->last_active = clock_mono_ms();
		memcpy(c->peer, key, 16);
		if (loop_add_fd(m->ctx.loop, cfd, EPOLLIN, on_conn, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = m->conns;
		if (m->conns)
			m->conns->prev = c;
		m->conns = c;
		m->nconns++;
	}
}

void mb_sweep(void *arg)
{
	struct modbus *m = arg;
	int64_t now = clock_mono_ms();

	m->sweep_timer = loop_timer_add(m->ctx.loop, 1000, mb_sweep, m);
	for (struct mbconn *c = m->conns, *next; c; c = next) {
		next = c->next;
		if (c->req)
			continue;
		if ((c->partial_since && now - c->partial_since > MB_PARTIAL_MS) ||
		    now - c->last_active > MB_IDLE_MS) {
			m->n.dropped++;
			conn_close(c);
		}
	}
}

int mb_server_listen(struct modbus *m)
{
	int fd = net_listen_tcp(m->bind, m->port);
	int r;

	if (fd < 0)
		return fd;
	r = loop_add_fd(m->ctx.loop, fd, EPOLLIN, on_accept, m);
	if (r < 0) {
		close(fd);
		return r;
	}
	m->lfd = fd;
	return 0;
}

void mb_server_close(struct modbus *m)
{
	if (m->lfd < 0)
		return;
	loop_del_fd(m->ctx.loop, m->lfd);
	close(m->lfd);
	m->lfd = -1;
}

void mb_server_close_all(struct modbus *m)
{
	while (m->conns)
		conn_close(m->conns);
}
