/* A serial line (Left IR, Right IR, RS485): one worker thread owns the
 * libmodbus context and runs blocking transactions from a priority queue;
 * results come back to the main loop through an eventfd, where each
 * transaction's done() callback runs. */
#ifndef SG_BUS_H
#define SG_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "sg/loop.h"
#include "sg/txq.h"

#define BUS_REGS_MAX 125
#define BUS_BITS_MAX 2000

/* Errors a transaction can finish with, besides -errno (-ETIMEDOUT …). */
#define BUS_EXCEPTION_BASE 1000 /* -(BUS_EXCEPTION_BASE + code): Modbus exception */

struct bus_txn;
typedef void (*bus_done_cb)(struct bus_txn *t, void *arg);

struct bus_txn {
	struct txq_node node;	    /* first: the queue links through it */
	uint8_t unit;		    /* slave address; 0 = broadcast */
	uint8_t fc;		    /* 1,2,3,4,5,6,15,16,23 */
	uint16_t addr;		    /* PDU address (read address for 23) */
	uint16_t count;		    /* registers/bits to read, or to write for 15/16 */
	uint16_t waddr;		    /* fc 23: write address */
	uint16_t wcount;	    /* fc 23: registers to write */
	uint16_t val[BUS_REGS_MAX]; /* values to write (fc 5/6: val[0]) */
	uint8_t bits[BUS_BITS_MAX]; /* coil values for 15, and results of 1/2 */
	int timeout_ms;		    /* 0 = bus default */
	/* results, valid in done() */
	int err; /* 0, -errno, or -(BUS_EXCEPTION_BASE + exception code) */
	uint16_t regs[BUS_REGS_MAX];
	int64_t latency_ms;
	bus_done_cb done;
	void *arg;
};

struct bus_params {
	char name[16];	  /* "Left IR", "Right IR", "RS485" */
	char device[256]; /* serial device path; "" = not present on this board */
	int baud;	  /* 1200 … 115200 */
	char parity;	  /* 'N', 'O', 'E' */
	int stop_bits;	  /* 1 or 2 */
	int timeout_ms;	  /* default response timeout */
};

struct bus_stats {
	uint64_t transactions, errors, timeouts;
	unsigned queued_high, queued_low;
	bool open;
	uint8_t slave_addr;	 /* 0 = master role */
	uint64_t slave_requests; /* frames answered in the slave role */
	char last_error[96];
};

struct bus;

/* Start the worker for p and hook its eventfd into l; 0 or -errno. */
int bus_start(struct loop *l, const struct bus_params *p, struct bus **out);
/* Stop the worker, finish queued transactions with -ECANCELED, free. */
void bus_stop(struct bus *b);
/* Queue t; done() is called on the main thread later (never from inside this
 * call). 0, -EBUSY (queue full) or -EINVAL (bad request). */
int bus_submit(struct bus *b, struct bus_txn *t, enum bus_prio prio);
/* Queue t at background priority ahead of the other background entries: the
 * next block of a poll cycle already started. Same returns as bus_submit. */
int bus_submit_next(struct bus *b, struct bus_txn *t);
/* Change line parameters; applied by the worker before its next transaction. */
void bus_set_params(struct bus *b, const struct bus_params *p);
/* Current parameters. */
const struct bus_params *bus_params(const struct bus *b);
/* Counters for status. */
void bus_get_stats(struct bus *b, struct bus_stats *out);
/* Human text for a transaction error ("timeout", "exception 2 (illegal data address)", …). */
const char *bus_strerror(int err, char *buf, size_t len);
/* Map a baud code (0…7) to a rate; -EINVAL if out of range. */
int bus_baud_from_code(long code);
/* A rate ("9600") or an Iskra baud code ("0"…"7") as a rate; -EINVAL otherwise. */
int bus_baud_parse(const char *s, int *baud);
/* Validate the shape of a request (fc, counts, limits); 0 or -EINVAL. */
int bus_txn_check(const struct bus_txn *t);

/* Slave role (R-A4). Answer a request frame's PDU (function code first, len
 * bytes) addressed to the slave: fill rsp (>= 253 bytes) and return the
 * response PDU length, or 0 to send nothing. Runs on the main thread. */
typedef size_t (*bus_slave_cb)(const uint8_t *req, size_t len, uint8_t *rsp, void *arg);
/* While addr != 0, the worker listens on the line whenever it has no master
 * transaction to run and answers RTU requests for addr through cb (frames for
 * other addresses, broadcasts and bad CRCs are ignored); queued master work
 * (a scan, raw requests) still runs between frames. addr 0 ends the role. The
 * port stays open across the switch, so no restart is needed either way. */
void bus_set_slave(struct bus *b, uint8_t addr, bus_slave_cb cb, void *arg);

#endif
