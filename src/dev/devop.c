/* On-demand operations, validated and reported the same way by every
 * interface: raw Modbus requests in Iskra numbering, error classes and texts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sg/devop.h"
#include "sg/regnum.h"

enum devop_fail devop_classify(int err)
{
	if (err <= -BUS_EXCEPTION_BASE)
		return DEVOP_EXCEPTION;
	switch (-err) {
	case ETIMEDOUT:
	case EIO:
	case ENXIO:
	case EBADF:
	case ENODEV:
	case ENOENT:
	case EBADMSG:
		return DEVOP_NO_ANSWER;
	case ECANCELED:
	case ESHUTDOWN:
		return DEVOP_STOPPED;
	case EBUSY:
		return DEVOP_BUSY;
	case EINVAL:
	case ERANGE:
		return DEVOP_BAD_REQUEST;
	case ENOMEM:
	case ENOTSUP:
		return DEVOP_INTERNAL;
	default:
		return DEVOP_EXCEPTION; /* an answer we could not use */
	}
}

const char *devop_err_text(int err, const char *msg, char *buf, size_t len)
{
	char detail[96];

	if (!msg)
		msg = bus_strerror(err, detail, sizeof(detail));
	if (devop_classify(err) == DEVOP_NO_ANSWER)
		snprintf(buf, len, "device did not answer: %s", msg);
	else
		snprintf(buf, len, "%s", msg);
	return buf;
}

/* Old values of a device that stopped answering must never pass for current ones. */
const char *devop_unreadable(const struct dev *d, char *buf, size_t len)
{
	const char *why = d->last_error[0] ? d->last_error : dev_health_name(d->health);

	if (d->health == DEV_OK && d->d)
		return NULL;
	if (d->health == DEV_DISABLED)
		snprintf(buf, len, "%s: no device configured", d->ifname);
	else if (d->health == DEV_NOT_RESPONDING)
		snprintf(buf, len, "%s: device not responding (%s)", d->ifname, why);
	else if (d->health == DEV_READ_ERROR)
		snprintf(buf, len, "%s: device read error (%s)", d->ifname, why);
	else if (d->health == DEV_UNKNOWN_MODEL)
		snprintf(buf, len, "%s: unknown device model (%s)", d->ifname, why);
	else
		snprintf(buf, len, "%s: device not identified yet (%s)", d->ifname, why);
	return buf;
}

int devop_mb_read(struct bus_txn *t, long reg, long count)
{
	static const uint8_t fc[] = {
	    [SPACE_COIL] = 1, [SPACE_DISCRETE] = 2, [SPACE_INPUT] = 4, [SPACE_HOLDING] = 3};
	enum desc_space space;
	uint16_t pdu;
	long max;

	if (regnum_from_long(reg, &space, &pdu) < 0)
		return -EINVAL;
	max = space <= SPACE_DISCRETE ? BUS_BITS_MAX : BUS_REGS_MAX;
	if (count < 1 || count > max || pdu + count > 65536)
		return -ERANGE;
	t->fc = fc[space];
	t->addr = pdu;
	t->count = (uint16_t)count;
	return 0;
}

int devop_mb_write(struct bus_txn *t, long reg, const long *vals, unsigned n, bool multi)
{
	enum desc_space space;
	uint16_t pdu;
	bool coil;

	if (regnum_from_long(reg, &space, &pdu) < 0)
		return -EINVAL;
	if (space != SPACE_HOLDING && space != SPACE_COIL)
		return -EINVAL; /* input registers and discrete inputs are read-only */
	coil = space == SPACE_COIL;
	if (n < 1 || n > (coil ? 1968u : 123u) || pdu + n > 65536)
		return -ERANGE;
	for (unsigned i = 0; i < n; i++)
		if (vals[i] < 0 || vals[i] > (coil ? 1 : 65535))
			return -EINVAL;
	/* fc 5/6 take val[0], fc 15 bits[], fc 16 val[]. */
	for (unsigned i = 0; i < n; i++) {
		if (coil)
			t->bits[i] = (uint8_t)vals[i];
		if (!coil || i == 0)
			t->val[i] = (uint16_t)vals[i];
	}
	multi = multi || n > 1;
	t->fc = coil ? (multi ? 15 : 5) : (multi ? 16 : 6);
	t->addr = pdu;
	t->count = (uint16_t)n;
	return 0;
}

json_t *devop_mb_values(const struct bus_txn *t)
{
	json_t *vals = json_array();
	char hex[8];

	for (unsigned i = 0; vals && i < t->count; i++) {
		unsigned v = t->fc <= 2 ? t->bits[i] : t->regs[i];

		snprintf(hex, sizeof(hex), "0x%04X", v);
		json_array_append_new(vals, json_string(hex));
	}
	return vals;
}
