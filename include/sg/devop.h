/* On-demand device operations as every interface (sgctl, REST, MQTT, later
 * Modbus TCP) validates and reports them: raw Modbus requests addressed by
 * Iskra register numbers (regnum.h), the hex value list of a read, one
 * classification of operation errors, and the text for a device whose data
 * cannot be served. Pure functions: no bus, no poller. */
#ifndef SG_DEVOP_H
#define SG_DEVOP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sg/bus.h"
#include "sg/dev.h"

/* What kind of failure an on-demand operation's err (< 0) is. */
enum devop_fail {
	DEVOP_NO_ANSWER,   /* timeout, bad frame, port gone: no usable answer */
	DEVOP_EXCEPTION,   /* the device answered with a Modbus exception */
	DEVOP_STOPPED,	   /* the bus stopped (shutdown, restart) */
	DEVOP_BUSY,	   /* a scan holds the bus, or the queue is full */
	DEVOP_BAD_REQUEST, /* the request itself was refused */
	DEVOP_INTERNAL,	   /* the gateway's own trouble (memory, unsupported) */
};

/* Classify an operation error (the mapping REST turns into 504/502/503/409/400/500). */
enum devop_fail devop_classify(int err);
/* The message for a failed operation: msg (the poller's) or the bus text for
 * err, prefixed "device did not answer: " when there was no answer. Returns buf. */
const char *devop_err_text(int err, const char *msg, char *buf, size_t len);
/* NULL when d's last reading can be served; else why not, such as
 * "RS485 3: device not responding (timeout)" (written to buf). */
const char *devop_unreadable(const struct dev *d, char *buf, size_t len);

/* Set t up (fc, addr, count; nothing else) to read count registers or bits
 * from Iskra register reg: fc 1 coils, 2 discrete inputs, 4 input, 3 holding.
 * 0; -EINVAL when reg is not a register number; -ERANGE when count is beyond
 * the function's limit (125 registers, 2000 bits) or runs past 65535. */
int devop_mb_read(struct bus_txn *t, long reg, long count);
/* Set t up to write n values to Iskra register reg: a holding register
 * (values 0…65535; fc 6 for one unless multi, else fc 16, ≤ 123) or a coil
 * (0/1; fc 5 for one unless multi, else fc 15, ≤ 1968). 0; -EINVAL for
 * read-only spaces, bad register numbers or values; -ERANGE for counts. */
int devop_mb_write(struct bus_txn *t, long reg, const long *vals, unsigned n, bool multi);
/* The values of a completed read as ["0x0002", …] (4 upper-case hex digits;
 * coils and discrete inputs "0x0001"/"0x0000"). */
json_t *devop_mb_values(const struct bus_txn *t);

#endif
