/* Serial line worker: the only code that touches a libmodbus context. The
 * main thread talks to it through two queues under one mutex and an eventfd. */
#include "sg/bus.h"

#include <errno.h>
#include <modbus.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/log.h"
#include "sg/sched.h"

#define QUEUE_HIGH 64
#define QUEUE_LOW 256
#define REOPEN_MIN_MS 1000 /* don't hammer a missing device node */

struct bus {
	struct loop *loop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	bool stop;
	struct txq q;
	struct txn_list {
		struct bus_txn *head, *tail;
	} done;
	struct bus_params params;  /* main thread's copy */
	struct bus_params pending; /* handed to the worker under mu */
	bool params_changed;
	struct bus_stats stats; /* written by the worker under mu */
	/* worker-only */
	modbus_t *ctx;
	struct bus_params wparams;
	int64_t last_open_try;
	struct timespec quiet_until; /* end of the silent interval after the last frame */
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

static void worker_mark_quiet(struct bus *b)
{
	const struct bus_params *p = &b->wparams;
	unsigned bits = 1 + 8 + (p->parity != 'N') + (unsigned)p->stop_bits;
	int64_t gap_ns = sched_rtu_frame_us(0, p->baud, bits) * 1000;

	clock_gettime(CLOCK_MONOTONIC, &b->quiet_until);
	b->quiet_until.tv_nsec += gap_ns;
	while (b->quiet_until.tv_nsec >= 1000000000) {
		b->quiet_until.tv_nsec -= 1000000000;
		b->quiet_until.tv_sec++;
	}
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
		errno = 0;
		if (do_request(b->ctx, t) < 0)
			r = map_modbus_errno(errno);
		worker_mark_quiet(b);
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

static struct bus_txn *worker_wait(struct bus *b)
{
	struct txq_node *n;

	pthread_mutex_lock(&b->mu);
	while (!b->stop && txq_empty(&b->q) && !b->params_changed)
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
	b->stats.queued_high = (unsigned)txq_len(&b->q, BUS_PRIO_HIGH);
	b->stats.queued_low = (unsigned)txq_len(&b->q, BUS_PRIO_LOW);
	pthread_mutex_unlock(&b->mu);
	return (struct bus_txn *)n;
}

static void *worker_main(void *arg)
{
	struct bus *b = arg;
	const uint64_t one = 1;

	for (;;) {
		struct bus_txn *t = worker_wait(b);

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

static void on_done_event(int fd, uint32_t events, void *arg)
{
	struct bus *b = arg;
	struct bus_txn *t;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARNING, errno, "%s: eventfd read", b->params.name);
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
	int r;

	if (!b)
		return -ENOMEM;
	b->loop = l;
	b->params = b->wparams = *p;
	txq_init(&b->q, QUEUE_HIGH, QUEUE_LOW);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		r = -errno;
		goto out_free;
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
out_free:
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
	struct txn_list pending = {0};
	struct txq_node *n;

	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	/* The worker is gone: deliver what it completed (a write that reached
	 * the device must not be reported as cancelled), cancel what never ran. */
	finish_list(list_take_all(&b->done), false);
	while ((n = txq_pop(&b->q)))
		list_push(&pending, (struct bus_txn *)n);
	finish_list(pending.head, true);
	loop_del_fd(b->loop, b->efd);
	close(b->efd);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

int bus_submit(struct bus *b, struct bus_txn *t, enum bus_prio prio)
{
	int r = bus_txn_check(t);

	if (r < 0 || !t->done)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	r = b->stop ? -ESHUTDOWN : txq_push(&b->q, &t->node, prio);
	if (r == 0)
		pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return r;
}

void bus_set_params(struct bus *b, const struct bus_params *p)
{
	b->params = *p;
	pthread_mutex_lock(&b->mu);
	b->pending = *p;
	b->params_changed = true;
	pthread_cond_signal(&b->cv);
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
