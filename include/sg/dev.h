/* Normalised device model: what the gateway knows about the device in one
 * slot (identification, measurements, counters, relay, health), filled from
 * bus results through the device's description, rendered as JSON for every
 * interface (ctl, REST, MQTT share these shapes). */
#ifndef SG_DEV_H
#define SG_DEV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sg/conf.h"
#include "sg/desc.h"
#include "sg/regcache.h"

#define DEV_SLOTS 18 /* 0 Left IR, 1 Right IR, 2…17 RS485 1…16 */
#define DEV_SLOT_LEFT_IR 0
#define DEV_SLOT_RIGHT_IR 1
#define DEV_SLOT_RS485(n) (1 + (n)) /* n = 1…16 */

enum dev_health {
	DEV_DISABLED,	    /* slot not configured */
	DEV_IDENTIFYING,    /* configured, identification not yet read */
	DEV_OK,		    /* answering */
	DEV_NOT_RESPONDING, /* stopped answering; polled with back-off */
	DEV_UNKNOWN_MODEL,  /* answers, but no description matches its model */
	DEV_READ_ERROR,	    /* answers, but a measurement, relay or counter block has failed
			     * (exception, timeout, bad frame) in 3 reads in a row */
};

struct dev {
	int slot;
	char ifname[16]; /* "Left IR", "Right IR", "RS485 3" */
	enum conf_bus bus;
	enum desc_class cls; /* configured type */
	uint8_t addr;
	char cfg_description[48]; /* description from settings (Right IR, RS485) */
	enum dev_health health;
	const struct desc *d; /* matched description, once identified */

	char model[17], serial[9], description[41], location[41];
	int sw_ver; /* ×100 */
	bool reverse;

	double meas[DESC_MEAS_MAX];
	bool meas_ok[DESC_MEAS_MAX];
	struct dec_pf pf[DESC_MEAS_MAX];
	/* Read times (wall-clock ms) of the values shown: the oldest of the last
	 * good reads of the blocks holding them (a failed block keeps its values
	 * and its old read time); 0 = nothing read yet. */
	int64_t meas_ms;

	double ctr[DESC_CTR_MAX];
	bool ctr_ok[DESC_CTR_MAX];
	enum desc_unit ctr_unit[DESC_CTR_MAX];
	enum desc_dir ctr_dir[DESC_CTR_MAX];
	int16_t ctr_exp[DESC_CTR_MAX];
	int32_t ctr_tariffs[DESC_CTR_MAX]; /* tariff mask read (tariff_mask), -1 not read */
	int8_t ctr_phase[DESC_CTR_MAX];	   /* phase read (phase_code), -1 not read */
	int64_t ctr_ms;
	/* Change whenever the measurement / counter values change, to values never
	 * used before by any slot (cache tags: a partial read changes values
	 * without changing the oldest read time). */
	uint64_t meas_seq, ctr_seq;
	/* What the update being told (reg_updated) covers: a reader that reads
	 * its measurements before its counters tells them apart, so a
	 * measurements push need not wait for the counter reads. */
	enum dev_upd {
		DEV_UPD_ALL,  /* a whole cycle, or a change of health */
		DEV_UPD_MEAS, /* a cycle's measurements, relay and meas_ms only: its
			       * counters follow with a DEV_UPD_CTR update */
		DEV_UPD_CTR,  /* the rest of that cycle: counters, ctr_ms, health */
	} upd;

	int relay; /* -1 unknown, 0 off, 1 on */

	char last_error[128];
	int64_t latency_ms; /* of the last successful transaction */
	unsigned fails;	    /* consecutive failed poll cycles */
	uint64_t txns, errors;

	struct regcache cache; /* raw registers of recent reads (Modbus TCP gateway) */
};

/* json_dumps flags of every document sgd sends (REST, MQTT): compact, and
 * numbers with 15 significant digits (not %.17g's 49.975760000000001). */
#define SG_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Reset d to an empty slot. */
void dev_reset(struct dev *d, int slot);
/* HA index (legacy number) of a slot: 0 Left IR, 1…16 RS485; -1 for Right IR. */
int dev_ha_index(int slot);
/* Slot of an HA index, or -1. */
int dev_slot_of_index(int index);
/* Text for health ("ok", "not responding", "read error", …). */
const char *dev_health_name(enum dev_health h);
/* Text for a class ("Energy meter", "Bicom", …), as the manual's messages
 * print it ("Left IR Energy meter not responding"). */
const char *dev_class_name(enum desc_class c);
/* Store the registers of a block read (space/start/count) into the fields of d->d they cover. */
void dev_apply_block(struct dev *d, enum desc_space space, uint16_t start, uint16_t count,
		     const uint16_t *regs);
/* Store identification strings from an identification block read with the
 * layout of desc id (input registers). */
void dev_apply_ident(struct dev *d, const struct desc *id, enum desc_space space, uint16_t start,
		     uint16_t count, const uint16_t *regs);
/* Tariff mask of counter k (bit t = tariff t+1) as read from the meter;
 * -1 when its description names no register or it was not read (yet). */
int dev_ctr_tariffs(const struct dev *d, unsigned k);
/* Phase of counter k (0 total, 1…3): read from the meter, else the one its
 * description states; -1 when neither says. */
int dev_ctr_phase(const struct dev *d, unsigned k);
/* /api/devices entry. */
json_t *dev_device_json(const struct dev *d);
/* {"Phases": [...], "Total": {...}, "Frequency": M, "Temperature": M, ...}. */
json_t *dev_measurements_json(const struct dev *d);
/* {"non_resettable": [...], "resettable": [...]}. */
json_t *dev_counters_json(const struct dev *d);
/* The reading document without the gateway's context: {"measurements"|
 * "counters": …, "header": {index, interface, model, serial, status,
 * read_at_ms}}; it depends only on that reading. read_at_ms is meas_ms /
 * ctr_ms: the oldest block shown, never newer than a value. reading_json
 * (sg/reading.h) adds the local read_time and the active tariff. */
json_t *dev_reading_json(const struct dev *d, bool counters);

#endif
