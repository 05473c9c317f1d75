/* bench_bus: how close one bus gets to the Modbus RTU wire limit.
 *
 * Starts a loop and a bus (the daemon's own code: worker thread, libmodbus,
 * queue, eventfd hand-off) on --link at --baud, builds the block reads the
 * poller issues in a poll cycle with counters due for each --dev MODEL:ADDR
 * (measurement blocks, the relay register, counter blocks, as
 * src/dev/poll.c does), and keeps the bus busy back to back for --seconds.
 * The reference is the wire time of exactly the transactions that completed:
 * request 8 bytes + reply 5 + 2*count bytes, each frame followed by a
 * 3.5-character gap, 10 bits per character (8N1). Figures are printed as
 * ratios; nothing here asserts a target. See bench/README.md. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/bus.h"
#include "sg/clock.h"
#include "sg/desc.h"
#include "sg/loop.h"
#include "sg/sched.h"

#define MAX_DEVS 32
#define MAX_REQS 512
#define MAX_INFLIGHT 8
#define BITS_PER_CHAR 10 /* 8N1 */

struct req {
	uint8_t unit, fc;
	uint16_t addr, count;
	char model[DESC_NAME_MAX];
};

enum phase { PH_WARMUP, PH_MEASURE, PH_DRAIN };

struct bench {
	struct loop *loop;
	struct bus *bus;
	struct req req[MAX_REQS];
	unsigned nreq, next;
	struct bus_txn txn[MAX_INFLIGHT];
	unsigned txn_req[MAX_INFLIGHT]; /* request index each transaction slot carries */
	unsigned inflight;
	int baud;

	/* warm-up: one pass over the mix (opens the line), then measure, then drain */
	enum phase phase;
	unsigned warm_left, warm_errors;
	int64_t t0_ms, t1_ms;
	uint64_t done, errors, timeouts;
	double wire_us; /* 3.5-character gap after both frames: the reference */
	double spec_us; /* literal 3.5-character gaps even above 19200 baud (reference) */
	double sim_us;	/* what sgsim --pace holds each reply back: request + 3.5 chars + reply */
	int64_t latency_ms; /* sum of the worker's per-transaction latency */
	int64_t measure_ms;
	char last_err[96];
};

static unsigned reply_bytes(const struct req *r)
{
	/* address + fc + byte count + data + CRC */
	if (r->fc == 1 || r->fc == 2)
		return 5u + (r->count + 7u) / 8u;
	return 5u + 2u * r->count;
}

static double chars_us(double chars, int baud)
{
	return chars * BITS_PER_CHAR * 1e6 / baud;
}

/* The wire limit: both frames plus their silent interval t3.5, which the
 * Modbus RTU spec fixes at 1750 us above 19200 baud (3.5 characters below). */
static double req_wire_us(const struct req *r, int baud)
{
	return (double)sched_rtu_frame_us(8, baud, BITS_PER_CHAR) +
	       (double)sched_rtu_frame_us(reply_bytes(r), baud, BITS_PER_CHAR);
}

static double cycle_us(const struct bench *b)
{
	double us = 0;

	for (unsigned i = 0; i < b->nreq; i++)
		us += req_wire_us(&b->req[i], b->baud);
	return us;
}

static void account(struct bench *b, const struct req *r)
{
	unsigned rep = reply_bytes(r);

	b->wire_us += req_wire_us(r, b->baud);
	b->spec_us += chars_us(8 + 3.5, b->baud) + chars_us(rep + 3.5, b->baud);
	b->sim_us +=
	    chars_us(8 + rep, b->baud) + (double)sched_rtu_frame_us(0, b->baud, BITS_PER_CHAR);
}

static void on_done(struct bus_txn *t, void *arg);
static void on_deadline(void *arg);

static void submit_next(struct bench *b, struct bus_txn *t)
{
	unsigned slot = (unsigned)(t - b->txn);
	const struct req *r = &b->req[b->next];
	int rc;

	b->txn_req[slot] = b->next;
	b->next = (b->next + 1) % b->nreq;
	memset(t, 0, sizeof(*t));
	t->unit = r->unit;
	t->fc = r->fc;
	t->addr = r->addr;
	t->count = r->count;
	t->done = on_done;
	t->arg = b;
	rc = bus_submit(b->bus, t, BUS_PRIO_LOW);
	if (rc < 0) {
		fprintf(stderr, "bench_bus: submit: %s\n", strerror(-rc));
		loop_quit(b->loop);
		return;
	}
	b->inflight++;
}

static void on_done(struct bus_txn *t, void *arg)
{
	struct bench *b = arg;
	const struct req *r = &b->req[b->txn_req[t - b->txn]];

	b->inflight--;
	if (t->err == -ECANCELED)
		return;
	if (t->err)
		bus_strerror(t->err, b->last_err, sizeof(b->last_err));
	if (b->phase == PH_WARMUP) {
		b->warm_errors += t->err != 0;
		if (--b->warm_left == 0 && b->warm_errors == b->nreq) {
			fprintf(stderr, "bench_bus: no read succeeded during warm-up (%s)\n",
				b->last_err);
			b->phase = PH_DRAIN;
			b->t0_ms = b->t1_ms = clock_mono_ms();
		} else if (b->warm_left == 0) {
			b->phase = PH_MEASURE;
			b->t0_ms = clock_mono_ms();
			loop_timer_add(b->loop, b->measure_ms, on_deadline, b);
		}
	} else if (b->phase == PH_MEASURE) {
		b->done++;
		b->latency_ms += t->latency_ms;
		account(b, r);
		if (t->err) {
			b->errors++;
			if (t->err == -ETIMEDOUT)
				b->timeouts++;
		}
	}
	if (b->phase == PH_DRAIN) {
		if (b->inflight == 0)
			loop_quit(b->loop);
		return;
	}
	submit_next(b, t);
}

static void on_deadline(void *arg)
{
	struct bench *b = arg;

	b->t1_ms = clock_mono_ms();
	b->phase = PH_DRAIN;
	if (b->inflight == 0)
		loop_quit(b->loop);
}

static void on_warmup_cap(void *arg)
{
	struct bench *b = arg;

	if (b->phase != PH_WARMUP)
		return;
	fprintf(stderr, "bench_bus: warm-up did not finish (%s)\n",
		b->last_err[0] ? b->last_err : "no answers");
	b->t0_ms = b->t1_ms = clock_mono_ms();
	b->phase = PH_DRAIN;
	if (b->inflight == 0)
		loop_quit(b->loop);
}

static int add_block(struct bench *b, const char *model, uint8_t unit, enum desc_space sp,
		     uint16_t start, uint16_t count)
{
	static const uint8_t fc[] = {
	    [SPACE_COIL] = 1, [SPACE_DISCRETE] = 2, [SPACE_INPUT] = 4, [SPACE_HOLDING] = 3};
	struct req *r;

	if (b->nreq >= MAX_REQS)
		return -ENOSPC;
	r = &b->req[b->nreq++];
	r->unit = unit;
	r->fc = fc[sp];
	r->addr = start;
	r->count = count;
	snprintf(r->model, sizeof(r->model), "%s", model);
	return 0;
}

/* The reads of one poll cycle with counters due, in the poller's order. */
static int add_dev(struct bench *b, const struct desc_set *set, const char *spec)
{
	char model[DESC_NAME_MAX];
	const char *colon = strchr(spec, ':');
	const struct desc *d;
	char *end;
	long addr;
	unsigned i, before = b->nreq;
	int rc = 0;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(model)) {
		fprintf(stderr, "bench_bus: --dev %s: want MODEL:ADDR\n", spec);
		return -EINVAL;
	}
	memcpy(model, spec, (size_t)(colon - spec));
	model[colon - spec] = '\0';
	errno = 0;
	addr = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || addr < 1 || addr > 247) {
		fprintf(stderr, "bench_bus: --dev %s: bad address\n", spec);
		return -EINVAL;
	}
	d = desc_match(set, model);
	if (!d)
		d = desc_find(set, model);
	if (!d) {
		fprintf(stderr, "bench_bus: --dev %s: no description matches '%s'\n", spec, model);
		return -ENOENT;
	}
	for (i = 0; rc == 0 && i < d->nmeas_blocks; i++)
		rc = add_block(b, model, (uint8_t)addr, d->meas_blocks[i].space,
			       d->meas_blocks[i].start, d->meas_blocks[i].count);
	if (rc == 0 && d->relay.present)
		rc = add_block(b, model, (uint8_t)addr, d->relay.space, d->relay.reg,
			       (uint16_t)dec_type_words(d->relay.type));
	for (i = 0; rc == 0 && i < d->nctr_blocks; i++)
		rc = add_block(b, model, (uint8_t)addr, d->ctr_blocks[i].space,
			       d->ctr_blocks[i].start, d->ctr_blocks[i].count);
	if (rc < 0) {
		fprintf(stderr, "bench_bus: more than %d reads\n", MAX_REQS);
		return rc;
	}
	if (b->nreq == before) {
		fprintf(stderr, "bench_bus: --dev %s: %s polls nothing\n", spec, d->name);
		return -EINVAL;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_bus --link PATH --baud RATE [--devices-dir DIR] --dev MODEL:ADDR "
		   "[--dev ...]\n"
		   "                 [--seconds S] [--inflight N] [--timeout-ms MS] "
		   "[--list]\n--list prints the reads of one poll cycle and exits\n");
}

struct opts {
	const char *link, *dir;
	const char *devs[MAX_DEVS];
	unsigned ndevs, inflight;
	double seconds;
	int baud, timeout_ms;
	bool list;
};

static int parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {{"link", required_argument, NULL, 'l'},
					   {"baud", required_argument, NULL, 'b'},
					   {"devices-dir", required_argument, NULL, 'd'},
					   {"dev", required_argument, NULL, 'D'},
					   {"seconds", required_argument, NULL, 's'},
					   {"inflight", required_argument, NULL, 'i'},
					   {"timeout-ms", required_argument, NULL, 't'},
					   {"list", no_argument, NULL, 'L'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c;

	*o = (struct opts){.dir = "etc/devices", .inflight = 2, .seconds = 5};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->link = optarg;
			break;
		case 'b':
			o->baud = atoi(optarg);
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'D':
			if (o->ndevs >= MAX_DEVS) {
				fprintf(stderr, "bench_bus: at most %d --dev\n", MAX_DEVS);
				return -EINVAL;
			}
			o->devs[o->ndevs++] = optarg;
			break;
		case 's':
			o->seconds = atof(optarg);
			break;
		case 'i':
			o->inflight = (unsigned)atoi(optarg);
			break;
		case 't':
			o->timeout_ms = atoi(optarg);
			break;
		case 'L':
			o->list = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!o->link || o->baud < 300 || o->baud > 4000000 || o->ndevs == 0 || o->seconds <= 0 ||
	    o->inflight < 1 || o->inflight > MAX_INFLIGHT || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static void report(const struct bench *b, unsigned ndevs)
{
	double secs = (double)(b->t1_ms - b->t0_ms) / 1000.0;
	double tps = secs > 0 ? (double)b->done / secs : 0;
	double n = (double)b->done;
	double limit = b->wire_us > 0 ? n / (b->wire_us / 1e6) : 0;
	double spec = b->spec_us > 0 ? n / (b->spec_us / 1e6) : 0;
	double sim = b->sim_us > 0 ? n / (b->sim_us / 1e6) : 0;

	printf("baud            %d\n", b->baud);
	printf("devices         %u\n", ndevs);
	printf("reads per cycle %u\n", b->nreq);
	printf("seconds         %.2f\n", secs);
	printf("transactions    %llu\n", (unsigned long long)b->done);
	printf("errors          %llu (timeouts %llu)%s%s\n", (unsigned long long)b->errors,
	       (unsigned long long)b->timeouts, b->errors ? ", last: " : "",
	       b->errors ? b->last_err : "");
	printf("achieved        %.1f tx/s (%.0f us per transaction)\n", tps,
	       b->done ? secs * 1e6 / n : 0);
	printf("wire limit      %.1f tx/s (%.0f us per transaction)\n", limit,
	       b->done ? b->wire_us / n : 0);
	printf("ratio           %.3f\n", limit > 0 ? tps / limit : 0);
	/* context for reading the ratio */
	printf("3.5-char limit  %.1f tx/s (literal 3.5-character gaps, no 1750 us floor), ratio "
	       "%.3f\n",
	       spec, spec > 0 ? tps / spec : 0);
	printf("sim floor       %.1f tx/s (sgsim --pace holds a reply for request + 3.5 chars + "
	       "reply), ratio %.3f\n",
	       sim, sim > 0 ? tps / sim : 0);
	printf("worker latency  %.2f ms mean (whole-ms clock)\n",
	       b->done ? (double)b->latency_ms / n : 0);
	printf("RESULT baud=%d devices=%u tx=%llu errors=%llu tps=%.1f limit_tps=%.1f ratio=%.3f "
	       "spec_tps=%.1f sim_tps=%.1f\n",
	       b->baud, ndevs, (unsigned long long)b->done, (unsigned long long)b->errors, tps,
	       limit, limit > 0 ? tps / limit : 0, spec, sim);
}

int main(int argc, char **argv)
{
	static struct bench b;
	struct opts o;
	struct desc_set set = {0};
	struct bus_params p = {.name = "RS485", .parity = 'N', .stop_bits = 1};
	char err[512] = "";
	double max_us = 0;
	unsigned i;
	int rc;

	if (parse_opts(&o, argc, argv) < 0)
		return 2;
	b.baud = o.baud;
	rc = desc_load_dir(o.dir, &set, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "bench_bus: %s\n", err[0] ? err : strerror(-rc));
		return 2;
	}
	for (i = 0; i < o.ndevs; i++)
		if (add_dev(&b, &set, o.devs[i]) < 0) {
			desc_set_free(&set);
			return 2;
		}
	desc_set_free(&set);
	for (i = 0; i < b.nreq; i++) {
		double us = req_wire_us(&b.req[i], b.baud);

		if (us > max_us)
			max_us = us;
		if (o.list)
			printf("read %-8s unit %3u fc %u addr %5u count %3u  wire %6.0f us\n",
			       b.req[i].model, b.req[i].unit, b.req[i].fc, b.req[i].addr,
			       b.req[i].count, us);
	}
	if (o.list) {
		printf("reads per cycle %u, wire %.0f us per cycle at %d baud\n", b.nreq,
		       cycle_us(&b), b.baud);
		return 0;
	}

	snprintf(p.device, sizeof(p.device), "%s", o.link);
	p.baud = o.baud;
	/* the reply's first byte may only arrive once the whole frame is "on the wire" */
	p.timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : (int)(2 * max_us / 1000) + 100;
	rc = loop_init(&b.loop);
	if (rc == 0)
		rc = bus_start(b.loop, &p, &b.bus);
	if (rc < 0) {
		fprintf(stderr, "bench_bus: start: %s\n", strerror(-rc));
		return 1;
	}
	b.phase = PH_WARMUP;
	b.warm_left = b.nreq;
	for (i = 0; i < o.inflight; i++)
		submit_next(&b, &b.txn[i]);
	/* warm-up is bounded by every read timing out once */
	b.measure_ms = (int64_t)(o.seconds * 1000);
	loop_timer_add(b.loop, (int64_t)b.nreq * (p.timeout_ms + 50) + 2000, on_warmup_cap, &b);
	rc = loop_run(b.loop);
	bus_stop(b.bus);
	loop_fini(b.loop);
	if (rc < 0) {
		fprintf(stderr, "bench_bus: loop: %s\n", strerror(-rc));
		return 1;
	}
	if (b.done == 0) {
		fprintf(stderr, "bench_bus: nothing measured\n");
		return 1;
	}
	report(&b, o.ndevs);
	return 0;
}
