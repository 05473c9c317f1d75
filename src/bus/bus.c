/* Serial line worker: the only code that touches a libmodbus context. The
 * main thread talks to it through two queues under one mutex and an eventfd.
 *
 * Slave role (R-A4): while a slave address is set and no master transaction
 * is queued, the worker listens on the port itself (poll() on the line's fd
 * and on a wake eventfd), assembles RTU request frames and hands those for
 * its address to the main thread as a single slave job (done eventfd +
 * condition variable); the callback's response PDU goes back on the wire. */
#include "sg/bus.h"

#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/log.h"
#include "sg/rtu.h"
#include "sg/sched.h"

#define QUEUE_HIGH 64
#define QUEUE_LOW 256
#define REOPEN_MIN_MS 1000	    /* don't hammer a missing device node */
#define SLAVE_ANSWER_MS 1000	    /* how long the worker waits for the main thread's answer */
#define SLAVE_WRITE_MS 1000	    /* give up writing a response after this */
#define SLAVE_GAP_MIN_MS 2	    /* shortest end-of-frame silence the listener waits for */
#define PDU_MAX (RTU_FRAME_MAX - 3) /* frame minus address and CRC */

/* The one slave request in flight between the worker and the main thread. */
enum slave_state {
	SJ_IDLE,     /* nothing asked */
	SJ_PENDING,  /* posted by the worker, not yet seen by the main thread */
	SJ_TAKEN,    /* the main thread is running the callback */
	SJ_ANSWERED, /* rsp/rsp_len are valid */
};

struct slave_job {
	enum slave_state state;
	uint64_t id; /* bumped per request, so a late answer is not taken for the next one */
	uint8_t req[PDU_MAX];
	size_t req_len;
	uint8_t rsp[PDU_MAX];
	size_t rsp_len;
};

struct bus {
	struct loop *loop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	int wfd;	    /* wakes the worker out of its slave listen (poll) */
	pthread_cond_t acv; /* slave job answered (CLOCK_MONOTONIC) */
	bool stop;
	bool listening; /* the worker is (about to be) in poll(): writers must poke wfd */
	struct slave_job sjob;
	struct txq q;
	struct txn_list {
		struct bus_txn *head, *tail;
	} done;
	struct bus_params params;  /* main thread's copy */
	struct bus_params pending; /* handed to the worker under mu */
	bool params_changed;
	struct bus_stats stats; /* under mu; slave_addr is set by bus_set_slave() */
	/* main-thread only */
	bus_slave_cb slave_cb;
	void *slave_arg;
	/* worker-only */
	modbus_t *ctx;
	struct bus_params wparams;
	int64_t last_open_try;
	struct timespec quiet_until; /* end of the silent interval after the last frame */
	bool flush_before;	     /* the last transaction failed: drop late bytes first */
};

static void list_push(struct txn_list *l, struct bus_txn *t)
{
	t->node.next = NULL;
	if (l->tail)
		l->tail->node.next = &t->node;
	else
		l->head = t;
	l->tail = t;
}

static struct bus_txn *list_take_all(struct txn_list *l)
{
	struct bus_txn *h = l->head;

	l->head = l->tail = NULL;
	return h;
}

int bus_baud_from_code(long code)
{
	static const int rates[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};

	if (code < 0 || code > 7)
		return -EINVAL;
	return rates[code];
}

int bus_baud_parse(const char *s, int *baud)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > 115200)
		return -EINVAL;
	if (v <= 7) {
		*baud = bus_baud_from_code(v);
		return 0;
	}
	for (long code = 0; code <= 7; code++)
		if (bus_baud_from_code(code) == v) {
			*baud = (int)v;
			return 0;
		}
	return -EINVAL;
}

const char *bus_strerror(int err, char *buf, size_t len)
{
	static const char *const exc[] = {"",
					  "illegal function",
					  "illegal data address",
					  "illegal data value",
					  "slave device failure",
					  "acknowledge",
					  "slave device busy"};
	int code = -err - BUS_EXCEPTION_BASE;

	if (err == 0)
		snprintf(buf, len, "ok");
	else if (code > 0 && code < 7)
		snprintf(buf, len, "exception %d (%s)", code, exc[code]);
	else if (code > 0)
		snprintf(buf, len, "exception %d", code);
	else if (err == -ETIMEDOUT)
		snprintf(buf, len, "timeout");
	else if (err == -EBADMSG)
		snprintf(buf, len, "bad frame (CRC or length)");
	else
		snprintf(buf, len, "%s", strerror(-err));
	return buf;
}

int bus_txn_check(const struct bus_txn *t)
{
	switch (t->fc) {
	case 1:
	case 2:
		return t->count >= 1 && t->count <= BUS_BITS_MAX ? 0 : -EINVAL;
	case 3:
	case 4:
		return t->count >= 1 && t->count <= BUS_REGS_MAX ? 0 : -EINVAL;
	case 5:
	case 6:
		return 0;
	case 15:
		return t->count >= 1 && t->count <= 1968 ? 0 : -EINVAL;
	case 16:
		return t->count >= 1 && t->count <= 123 ? 0 : -EINVAL;
	case 23:
		return t->count >= 1 && t->count <= 125 && t->wcount >= 1 && t->wcount <= 121
			   ? 0
			   : -EINVAL;
	default:
		return -EINVAL;
	}
}

/* ---- worker side ---- */

static void worker_close(struct bus *b)
{
	if (!b->ctx)
		return;
	modbus_close(b->ctx);
	modbus_free(b->ctx);
	b->ctx = NULL;
}

static int worker_open(struct bus *b)
{
	const struct bus_params *p = &b->wparams;
	int64_t now = clock_mono_ms();

	if (b->ctx)
		return 0;
	if (!p->device[0])
		return -ENODEV;
	if (b->last_open_try && now - b->last_open_try < REOPEN_MIN_MS)
		return -ENODEV;
	b->last_open_try = now;
	b->ctx = modbus_new_rtu(p->device, p->baud, p->parity, 8, p->stop_bits);
	if (!b->ctx)
		return -errno ? -errno : -EINVAL;
	modbus_set_error_recovery(b->ctx, MODBUS_ERROR_RECOVERY_PROTOCOL);
	modbus_set_byte_timeout(b->ctx, 0, 100000);
	if (modbus_connect(b->ctx) < 0) {
		int r = -errno;

		modbus_free(b->ctx);
		b->ctx = NULL;
		return r ? r : -EIO;
	}
	return 0;
}

/* libmodbus reports protocol trouble with its own errno values; fold them
 * into the few errors callers act on. */
static int map_modbus_errno(int e)
{
	if (e >= MODBUS_ENOBASE + 1 && e <= MODBUS_ENOBASE + 11)
		return -(BUS_EXCEPTION_BASE + (e - MODBUS_ENOBASE));
	if (e == EMBBADCRC || e == EMBBADDATA || e == EMBBADSLAVE || e == EMBUNKEXC ||
	    e == EMBMDATA || e == EMBBADEXC)
		return -EBADMSG;
	if (e == ETIMEDOUT || e == 0)
		return -ETIMEDOUT;
	return -e;
}

static int do_bits(modbus_t *ctx, struct bus_txn *t)
{
	int n = t->fc == 1 ? modbus_read_bits(ctx, t->addr, t->count, t->bits)
			   : modbus_read_input_bits(ctx, t->addr, t->count, t->bits);

	return n;
}

static int do_request(modbus_t *ctx, struct bus_txn *t)
{
	switch (t->fc) {
	case 1:
	case 2:
		return do_bits(ctx, t);
	case 3:
		return modbus_read_registers(ctx, t->addr, t->count, t->regs);
	case 4:
		return modbus_read_input_registers(ctx, t->addr, t->count, t->regs);
	case 5:
		return modbus_write_bit(ctx, t->addr, t->val[0] ? 1 : 0);
	case 6:
		return modbus_write_register(ctx, t->addr, t->val[0]);
	case 15:
		return modbus_write_bits(ctx, t->addr, t->count, t->bits);
	case 16:
		return modbus_write_registers(ctx, t->addr, t->count, t->val);
	case 23:
		return modbus_write_and_read_registers(ctx, t->waddr, t->wcount, t->val, t->addr,
						       t->count, t->regs);
	}
	errno = EINVAL;
	return -1;
}

/* RTU frames end with 3.5 characters of silence; a request sent sooner after
 * the last reply runs into it and real slaves drop it. */
static void worker_wait_quiet(struct bus *b)
{
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &b->quiet_until, NULL);
}

static unsigned worker_char_bits(const struct bus *b)
{
	const struct bus_params *p = &b->wparams;

	return 1 + 8 + (p->parity != 'N') + (unsigned)p->stop_bits;
}

/* The line is quiet from the wire time of bytes just written (0: nothing in
 * flight) plus the 3.5-character gap from now. */
static void worker_mark_quiet_after(struct bus *b, unsigned bytes)
{
	int64_t gap_ns = sched_rtu_frame_us(bytes, b->wparams.baud, worker_char_bits(b)) * 1000;

	clock_gettime(CLOCK_MONOTONIC, &b->quiet_until);
	b->quiet_until.tv_nsec += gap_ns;
	while (b->quiet_until.tv_nsec >= 1000000000) {
		b->quiet_until.tv_nsec -= 1000000000;
		b->quiet_until.tv_sec++;
	}
}

static void worker_mark_quiet(struct bus *b)
{
	worker_mark_quiet_after(b, 0);
}

/* After a timeout the slave may still answer. RTU has no transaction ids, so
 * that late reply would pass for the answer to the next request of the same
 * shape: listen for up to one more response timeout and drop whatever comes,
 * until the line is quiet. A reply later than that cannot be told apart. */
static void worker_drop_late_reply(struct bus *b, int timeout_ms)
{
	int fd = modbus_get_socket(b->ctx);
	int gap_ms = (int)(sched_rtu_frame_us(0, b->wparams.baud, worker_char_bits(b)) / 1000) + 2;
	int wait = timeout_ms;
	uint8_t junk[256];

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, wait) <= 0 || read(fd, junk, sizeof(junk)) <= 0)
			break;
		wait = gap_ms;
	}
	worker_mark_quiet(b);
}

static void worker_run_txn(struct bus *b, struct bus_txn *t)
{
	int64_t start = clock_mono_ms();
	int timeout = t->timeout_ms > 0 ? t->timeout_ms : b->wparams.timeout_ms;
	int r = worker_open(b);

	if (r == 0) {
		modbus_set_slave(b->ctx, t->unit);
		modbus_set_response_timeout(b->ctx, (uint32_t)(timeout / 1000),
					    (uint32_t)(timeout % 1000) * 1000);
		worker_wait_quiet(b);
		/* RTU has no transaction ids: a reply that came after its request
		 * timed out would be taken as this request's answer. */
		if (b->flush_before)
			modbus_flush(b->ctx);
		errno = 0;
		if (do_request(b->ctx, t) < 0)
			r = map_modbus_errno(errno);
		b->flush_before = r != 0 && r > -BUS_EXCEPTION_BASE;
		worker_mark_quiet(b);
		if (r == -ETIMEDOUT && t->unit != 0)
			worker_drop_late_reply(b, timeout);
		/* A broadcast gets no answer by design. */
		if (t->unit == 0 && r == -ETIMEDOUT)
			r = 0;
		if (r == -EIO || r == -ENXIO || r == -EBADF)
			worker_close(b); /* adapter unplugged: reopen later */
	}
	t->err = r;
	t->latency_ms = clock_mono_ms() - start;
}

static void worker_note_result(struct bus *b, const struct bus_txn *t)
{
	b->stats.transactions++;
	if (t->err) {
		b->stats.errors++;
		if (t->err == -ETIMEDOUT)
			b->stats.timeouts++;
		bus_strerror(t->err, b->stats.last_error, sizeof(b->stats.last_error));
	}
	b->stats.open = b->ctx != NULL;
}

/* Next transaction to run, or NULL: then *listen says whether to listen as
 * a slave (else the caller checks stop). */
static struct bus_txn *worker_wait(struct bus *b, bool *listen)
{
	struct txq_node *n;

	pthread_mutex_lock(&b->mu);
	while (!b->stop && txq_empty(&b->q) && !b->params_changed && !b->stats.slave_addr)
		pthread_cond_wait(&b->cv, &b->mu);
	if (b->params_changed) {
		b->wparams = b->pending;
		b->params_changed = false;
		b->last_open_try = 0;
		pthread_mutex_unlock(&b->mu);
		worker_close(b); /* reopen with the new line settings */
		pthread_mutex_lock(&b->mu);
	}
	n = b->stop ? NULL : txq_pop(&b->q);
	*listen = !n && !b->stop && b->stats.slave_addr;
	b->stats.queued_high = (unsigned)txq_len(&b->q, BUS_PRIO_HIGH);
	b->stats.queued_low = (unsigned)txq_len(&b->q, BUS_PRIO_LOW);
	pthread_mutex_unlock(&b->mu);
	return (struct bus_txn *)n;
}

/* ---- worker side: slave role ---- */

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

/* Poke the worker out of poll() if it is listening; caller holds mu. */
static void wake_locked(struct bus *b)
{
	const uint64_t one = 1;

	if (b->listening && write(b->wfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_errno(LOG_ERR, errno, "%s: wake eventfd write", b->params.name);
}

/* End-of-frame silence the listener waits for: t3.5 from the line
 * parameters, rounded up to whole ms for poll(), at least 2 ms. */
static int64_t worker_gap_ns(const struct bus *b)
{
	int64_t us = sched_rtu_frame_us(0, b->wparams.baud, worker_char_bits(b));
	int64_t ms = (us + 999) / 1000;

	return (ms < SLAVE_GAP_MIN_MS ? SLAVE_GAP_MIN_MS : ms) * 1000000;
}

/* Hand the request PDU to the main thread and wait for its answer: the
 * response PDU length in rsp (0 = send nothing), or -1 when none came in
 * time or stop was requested. */
static ssize_t worker_ask_main(struct bus *b, const uint8_t *pdu, size_t len, uint8_t *rsp)
{
	const uint64_t one = 1;
	struct timespec dl;
	ssize_t r = -1;

	pthread_mutex_lock(&b->mu);
	if (b->stop) {
		pthread_mutex_unlock(&b->mu);
		return -1;
	}
	b->sjob.id++;
	memcpy(b->sjob.req, pdu, len);
	b->sjob.req_len = len;
	b->sjob.rsp_len = 0;
	b->sjob.state = SJ_PENDING;
	pthread_mutex_unlock(&b->mu);
	if (write(b->efd, &one, sizeof(one)) < 0)
		log_errno(LOG_ERR, errno, "%s: eventfd write", b->wparams.name);

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += SLAVE_ANSWER_MS / 1000;
	dl.tv_nsec += (long)(SLAVE_ANSWER_MS % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_nsec -= 1000000000;
		dl.tv_sec++;
	}
	pthread_mutex_lock(&b->mu);
	while (!b->stop && b->sjob.state != SJ_ANSWERED)
		if (pthread_cond_timedwait(&b->acv, &b->mu, &dl) == ETIMEDOUT)
			break;
	if (!b->stop && b->sjob.state == SJ_ANSWERED) {
		memcpy(rsp, b->sjob.rsp, b->sjob.rsp_len);
		r = (ssize_t)b->sjob.rsp_len;
	} else if (!b->stop) {
		log_msg(LOG_WARNING, "%s: slave request not answered in time, dropped",
			b->wparams.name);
	}
	b->sjob.state = SJ_IDLE; /* a late answer finds the job gone */
	pthread_mutex_unlock(&b->mu);
	return r;
}

/* Write all of p within SLAVE_WRITE_MS (the port is non-blocking); 0 or -errno. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
	int64_t end = clock_mono_ms() + SLAVE_WRITE_MS;

	while (n) {
		ssize_t w = write(fd, p, n);
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int64_t left;

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return -errno;
		left = end - clock_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

/* A complete request frame with a good CRC for our address: ask the main
 * thread and send its answer. 0 or -errno from the write. */
static int worker_slave_request(struct bus *b, int fd, const uint8_t *f, size_t len)
{
	uint8_t out[RTU_FRAME_MAX];
	ssize_t r = worker_ask_main(b, f + 1, len - 3, out + 1);
	size_t n;
	int e;

	if (r <= 0)
		return 0;
	out[0] = f[0];
	n = rtu_seal(out, 1 + (size_t)r);
	worker_wait_quiet(b); /* t3.5 after the request's last byte */
	e = write_all(fd, out, n);
	if (e < 0) {
		log_errno(LOG_WARNING, -e, "%s: slave response", b->wparams.name);
		return e;
	}
	worker_mark_quiet_after(b, (unsigned)n); /* still on the wire after write() */
	pthread_mutex_lock(&b->mu);
	b->stats.slave_requests++;
	pthread_mutex_unlock(&b->mu);
	return 0;
}

/* Frame assembly state of the listener. */
struct rx {
	uint8_t buf[RTU_FRAME_MAX];
	size_t n;
	bool skip;	  /* discarding until the next t3.5 gap */
	int64_t deadline; /* ns: the gap is complete if nothing arrives before it */
};

/* Take the complete frames at the start of rx->buf; a partial one stays.
 * 0 or -errno from a response write. */
static int worker_rx_frames(struct bus *b, int fd, struct rx *rx)
{
	while (rx->n && !rx->skip) {
		int len = rtu_request_len(rx->buf, rx->n);
		uint8_t addr;

		if (len == 0 || (len > 0 && len <= RTU_FRAME_MAX && (size_t)len > rx->n))
			return 0; /* wait for more */
		if (len < 0)
			return 0; /* a function of unknown length ends at the gap */
		if (len > RTU_FRAME_MAX || !rtu_crc_ok(rx->buf, (size_t)len)) {
			/* oversized or bad CRC: the frame (and our sync) ends at
			 * the next gap */
			rx->skip = true;
			rx->n = 0;
			return 0;
		}
		/* the address as of now: a frame that arrived after
		 * bus_set_slave() returned must see the new one */
		pthread_mutex_lock(&b->mu);
		addr = b->stats.slave_addr;
		pthread_mutex_unlock(&b->mu);
		if (addr && rx->buf[0] == addr) {
			int e = worker_slave_request(b, fd, rx->buf, (size_t)len);

			if (e < 0)
				return e;
		}
		/* other addresses and broadcasts: ignored */
		rx->n -= (size_t)len;
		memmove(rx->buf, rx->buf + len, rx->n);
	}
	return 0;
}

/* A t3.5 gap ended what rx holds: a frame whose function has no known length
 * (diagnostics, MEI …) is complete now; it is answered when it is ours, so the
 * master hears "illegal function" rather than nothing. */
static int worker_rx_gap(struct bus *b, int fd, struct rx *rx)
{
	int r = 0;

	if (!rx->skip && rx->n >= 4 && rtu_request_len(rx->buf, rx->n) < 0 &&
	    rtu_crc_ok(rx->buf, rx->n)) {
		uint8_t addr;

		pthread_mutex_lock(&b->mu);
		addr = b->stats.slave_addr;
		pthread_mutex_unlock(&b->mu);
		if (addr && rx->buf[0] == addr)
			r = worker_slave_request(b, fd, rx->buf, rx->n);
	}
	rx->n = 0;
	rx->skip = false;
	return r;
}

/* Why the listener should return now (caller holds mu): stop, new line
 * parameters, or, between frames, master work or the end of the role. */
static bool worker_listen_leave(const struct bus *b, bool in_frame)
{
	if (b->stop || b->params_changed)
		return true;
	return !in_frame && (!txq_empty(&b->q) || !b->stats.slave_addr);
}

/* Listen on the line as a slave until there is something else to do. */
static void worker_listen(struct bus *b)
{
	struct rx rx = {.n = 0};
	int64_t gap_ns;
	int fd;

	if (worker_open(b) < 0) {
		/* no port (yet): retry after REOPEN_MIN_MS unless woken */
		struct pollfd pfd = {.fd = b->wfd, .events = POLLIN};
		bool leave;

		pthread_mutex_lock(&b->mu);
		b->stats.open = false;
		leave = worker_listen_leave(b, false);
		b->listening = !leave;
		pthread_mutex_unlock(&b->mu);
		if (!leave && poll(&pfd, 1, REOPEN_MIN_MS) > 0)
			drain_eventfd(b->wfd);
		goto out;
	}
	fd = modbus_get_socket(b->ctx);
	gap_ns = worker_gap_ns(b);
	for (;;) {
		struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
					{.fd = b->wfd, .events = POLLIN}};
		bool in_frame = rx.n || rx.skip, leave, ended;
		uint8_t tmp[RTU_FRAME_MAX];
		int timeout = -1, r;
		ssize_t got;
		int64_t now;

		pthread_mutex_lock(&b->mu);
		b->stats.open = true;
		leave = worker_listen_leave(b, in_frame);
		ended = !b->stats.slave_addr;
		b->listening = !leave;
		pthread_mutex_unlock(&b->mu);
		if (leave) {
			if (ended)
				tcflush(fd, TCIFLUSH); /* requests nobody will answer now */
			break;
		}
		if (in_frame) {
			int64_t left = rx.deadline - mono_ns();

			timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
		}
		r = poll(pfd, 2, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_errno(LOG_ERR, errno, "%s: poll", b->wparams.name);
			break;
		}
		if (pfd[1].revents)
			drain_eventfd(b->wfd);
		now = mono_ns();
		if (!pfd[0].revents) {
			if (in_frame && now >= rx.deadline)
				r = worker_rx_gap(b, fd, &rx); /* the gap ended the frame */
			if (r == -EIO || r == -ENXIO || r == -EBADF) {
				worker_close(b);
				break;
			}
			continue;
		}
		got = read(fd, tmp, sizeof(tmp));
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			/* adapter unplugged or line hung up: reopen later */
			log_errno(LOG_WARNING, got < 0 ? errno : EIO, "%s: slave read",
				  b->wparams.name);
			worker_close(b);
			break;
		}
		if (in_frame && now >= rx.deadline)
			worker_rx_gap(b, fd, &rx); /* these bytes came after a gap: a new frame */
		rx.deadline = now + gap_ns;
		worker_mark_quiet(b); /* someone is talking: keep master requests off it */
		if (rx.skip)
			continue;
		if (rx.n + (size_t)got > sizeof(rx.buf)) {
			rx.n = 0; /* over 256 bytes: not a frame */
			rx.skip = true;
			continue;
		}
		memcpy(rx.buf + rx.n, tmp, (size_t)got);
		rx.n += (size_t)got;
		r = worker_rx_frames(b, fd, &rx);
		if (r == -EIO || r == -ENXIO || r == -EBADF) {
			worker_close(b);
			break;
		}
	}
out:
	pthread_mutex_lock(&b->mu);
	b->listening = false;
	b->stats.open = b->ctx != NULL;
	pthread_mutex_unlock(&b->mu);
}

/* ---- worker side: thread ---- */

static void *worker_main(void *arg)
{
	struct bus *b = arg;
	const uint64_t one = 1;

	for (;;) {
		bool listen;
		struct bus_txn *t = worker_wait(b, &listen);

		if (!t && listen) {
			worker_listen(b);
			continue;
		}
		if (!t) {
			pthread_mutex_lock(&b->mu);
			bool stop = b->stop;
			pthread_mutex_unlock(&b->mu);
			if (stop)
				break;
			continue;
		}
		worker_run_txn(b, t);
		pthread_mutex_lock(&b->mu);
		worker_note_result(b, t);
		list_push(&b->done, t);
		pthread_mutex_unlock(&b->mu);
		if (write(b->efd, &one, sizeof(one)) < 0)
			log_errno(LOG_ERR, errno, "%s: eventfd write", b->wparams.name);
	}
	worker_close(b);
	return NULL;
}

/* ---- main-thread side ---- */

/* Answer the worker's slave request, if one waits. The callback runs without
 * the mutex on copies, so a worker that gave up (timeout, stop) never shares
 * memory with it; a late answer is dropped by the id check. The callback
 * must not call bus_stop() on this bus. */
static void main_answer_slave(struct bus *b)
{
	uint8_t req[PDU_MAX], rsp[PDU_MAX];
	size_t len, rlen = 0;
	uint64_t id;

	pthread_mutex_lock(&b->mu);
	if (b->sjob.state != SJ_PENDING) {
		pthread_mutex_unlock(&b->mu);
		return;
	}
	b->sjob.state = SJ_TAKEN;
	id = b->sjob.id;
	len = b->sjob.req_len;
	memcpy(req, b->sjob.req, len);
	pthread_mutex_unlock(&b->mu);

	if (b->slave_cb)
		rlen = b->slave_cb(req, len, rsp, b->slave_arg);
	if (rlen > sizeof(rsp)) {
		log_msg(LOG_ERR, "%s: slave response of %zu bytes dropped", b->params.name, rlen);
		rlen = 0;
	}

	pthread_mutex_lock(&b->mu);
	if (b->sjob.state == SJ_TAKEN && b->sjob.id == id) {
		memcpy(b->sjob.rsp, rsp, rlen);
		b->sjob.rsp_len = rlen;
		b->sjob.state = SJ_ANSWERED;
		pthread_cond_signal(&b->acv);
	}
	pthread_mutex_unlock(&b->mu);
}

static void on_done_event(int fd, uint32_t events, void *arg)
{
	struct bus *b = arg;
	struct bus_txn *t;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARNING, errno, "%s: eventfd read", b->params.name);
	/* before the done() callbacks: one of them may stop and free the bus */
	main_answer_slave(b);
	pthread_mutex_lock(&b->mu);
	t = list_take_all(&b->done);
	pthread_mutex_unlock(&b->mu);
	while (t) {
		struct bus_txn *next = (struct bus_txn *)t->node.next;

		t->done(t, t->arg); /* may free t */
		t = next;
	}
}

int bus_start(struct loop *l, const struct bus_params *p, struct bus **out)
{
	struct bus *b = calloc(1, sizeof(*b));
	pthread_condattr_t ca;
	int r;

	if (!b)
		return -ENOMEM;
	b->loop = l;
	b->params = b->wparams = *p;
	txq_init(&b->q, QUEUE_HIGH, QUEUE_LOW);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->acv, &ca);
	pthread_condattr_destroy(&ca);
	b->wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->wfd < 0) {
		r = -errno;
		goto out_free;
	}
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		r = -errno;
		goto out_wfd;
	}
	r = loop_add_fd(l, b->efd, EPOLLIN, on_done_event, b);
	if (r < 0)
		goto out_close;
	r = -pthread_create(&b->thread, NULL, worker_main, b);
	if (r < 0)
		goto out_del;
	*out = b;
	return 0;

out_del:
	loop_del_fd(l, b->efd);
out_close:
	close(b->efd);
out_wfd:
	close(b->wfd);
out_free:
	pthread_cond_destroy(&b->acv);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
	return r;
}

/* Run done() for a list; cancel marks transactions that never ran. */
static void finish_list(struct bus_txn *t, bool cancel)
{
	while (t) {
		struct bus_txn *next = (struct bus_txn *)t->node.next;

		if (cancel)
			t->err = -ECANCELED;
		t->done(t, t->arg);
		t = next;
	}
}

void bus_stop(struct bus *b)
{
	const uint64_t one = 1;
	struct txn_list pending = {0};
	struct txq_node *n;

	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->cv);
	pthread_cond_signal(&b->acv); /* not waiting for an answer we won't give */
	pthread_mutex_unlock(&b->mu);
	if (write(b->wfd, &one, sizeof(one)) < 0) /* out of a slave listen */
		log_errno(LOG_ERR, errno, "%s: wake eventfd write", b->params.name);
	pthread_join(b->thread, NULL);
	/* The worker is gone: deliver what it completed (a write that reached
	 * the device must not be reported as cancelled), cancel what never ran. */
	finish_list(list_take_all(&b->done), false);
	while ((n = txq_pop(&b->q)))
		list_push(&pending, (struct bus_txn *)n);
	finish_list(pending.head, true);
	loop_del_fd(b->loop, b->efd);
	close(b->efd);
	close(b->wfd);
	pthread_cond_destroy(&b->acv);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

static int submit(struct bus *b, struct bus_txn *t, enum bus_prio prio, bool first)
{
	int r = bus_txn_check(t);

	if (r < 0 || !t->done)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	if (b->stop)
		r = -ESHUTDOWN;
	else
		r = first ? txq_push_front(&b->q, &t->node, prio) : txq_push(&b->q, &t->node, prio);
	if (r == 0) {
		pthread_cond_signal(&b->cv);
		wake_locked(b);
	}
	pthread_mutex_unlock(&b->mu);
	return r;
}

int bus_submit(struct bus *b, struct bus_txn *t, enum bus_prio prio)
{
	return submit(b, t, prio, false);
}

int bus_submit_next(struct bus *b, struct bus_txn *t)
{
	return submit(b, t, BUS_PRIO_LOW, true);
}

void bus_set_params(struct bus *b, const struct bus_params *p)
{
	b->params = *p;
	pthread_mutex_lock(&b->mu);
	b->pending = *p;
	b->params_changed = true;
	pthread_cond_signal(&b->cv);
	wake_locked(b);
	pthread_mutex_unlock(&b->mu);
}

void bus_set_slave(struct bus *b, uint8_t addr, bus_slave_cb cb, void *arg)
{
	/* the callback is only ever used on this (the main) thread */
	b->slave_cb = addr ? cb : NULL;
	b->slave_arg = addr ? arg : NULL;
	pthread_mutex_lock(&b->mu);
	b->stats.slave_addr = addr;
	pthread_cond_signal(&b->cv);
	wake_locked(b);
	pthread_mutex_unlock(&b->mu);
}

const struct bus_params *bus_params(const struct bus *b)
{
	return &b->params;
}

void bus_get_stats(struct bus *b, struct bus_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->stats;
	pthread_mutex_unlock(&b->mu);
}
