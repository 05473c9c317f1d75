/* Device descriptions: one JSON file per model family under etc/devices/
 * (installed to /etc/sg/devices/). The daemon polls from them and the
 * simulator serves from them, so a new model is a new file. Format: see
 * etc/devices/README.md. */
#ifndef SG_DESC_H
#define SG_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sg/decode.h"

#define DESC_NAME_MAX 32
#define DESC_MATCH_MAX 16
#define DESC_MEAS_MAX 96
#define DESC_CTR_MAX 24
#define DESC_BLOCK_MAX 16
#define DESC_PHASES_MAX 3
#define DESC_LP_CH_MAX 10 /* one per load-profile channel (enum lp_ch order) */
#define DESC_CONST_MAX 16

enum desc_space { SPACE_COIL, SPACE_DISCRETE, SPACE_INPUT, SPACE_HOLDING };

/* Device classes (also the slot "type" codes of rs485_type_N settings). */
enum desc_class {
	CLASS_NONE = 0,	   /* not connected */
	CLASS_METER = 1,   /* energy meter */
	CLASS_BICOM = 2,   /* Bicom relay */
	CLASS_GENERIC = 3, /* generic Modbus device */
	CLASS_PQ = 4,	   /* power-quality analyser */
};

/* Where a value lives: PDU address (0-based on the wire) in a space. */
struct desc_field {
	bool present;
	enum desc_space space;
	uint16_t reg;
	enum dec_type type;
	uint16_t words; /* registers occupied; for strings the length */
	double scale;	/* multiply the decoded number (default 1) */
};

/* Measurement quantities of the normalised model (CONTRACTS §1 names). */
enum desc_qty {
	QTY_U,	    /* phase voltage, V */
	QTY_UPP,    /* phase-to-phase voltage, V (phase 1 = U12, 2 = U23, 3 = U31) */
	QTY_I,	    /* A */
	QTY_P,	    /* W */
	QTY_Q,	    /* var */
	QTY_S,	    /* VA */
	QTY_PF,	    /* "" */
	QTY_PA,	    /* degrees */
	QTY_THDU,   /* % */
	QTY_THDI,   /* % */
	QTY_FREQ,   /* Hz, phase 0 */
	QTY_TEMP,   /* internal temperature °C, phase 0 */
	QTY_TARIFF, /* active tariff, phase 0 */
	QTY_COUNT
};

struct desc_meas {
	enum desc_qty qty;
	uint8_t phase; /* 0 = total / not per phase, 1..3 = phase */
	struct desc_field f;
};

enum desc_dir { DIR_IMPORT, DIR_EXPORT, DIR_BIDIR };
enum desc_unit { UNIT_WH, UNIT_VARH, UNIT_VAH, UNIT_UNKNOWN };

struct desc_counter {
	char name[DESC_NAME_MAX];
	bool resettable;
	struct desc_field value;    /* in the base unit, times 10^exponent */
	struct desc_field exponent; /* optional: int16 decimal exponent register */
	struct desc_field unit; /* optional: unit code register (bits 1-0: 1 Wh, 2 varh, 3 VAh) */
	struct desc_field
	    quadrants;		   /* optional: quadrant mask (6/12 import, 3/9 export, 15 bidir) */
	enum desc_unit fixed_unit; /* used when unit register is absent */
	enum desc_dir fixed_dir;   /* used when quadrants register is absent */
	uint8_t phase;		   /* 0 = total */
	bool phase_set;		   /* phase was given by the description (else unknown) */
	/* optional (R-A8): the tariffs the counter counts in, bit t = tariff t+1 */
	struct desc_field tariff_mask;
	/* optional (R-A8): the phase it counts, 0 = total, 1…3 = L1…L3 */
	struct desc_field phase_code;
};

/* A contiguous read the poller issues (built from the fields by the loader). */
struct desc_block {
	enum desc_space space;
	uint16_t start;
	uint16_t count; /* <= 125 registers / 2000 bits */
};

/* One channel of a meter's own load profile: a cumulative counter captured
 * with each entry, in Wh / varh after scale. channel is the index of
 * enum lp_ch (0 ai, 1 ae, 2 ri, 3 re, 4-6 ai1-3, 7-9 ae1-3). */
struct desc_lp_channel {
	uint8_t channel;
	uint16_t offset;    /* register offset within an entry */
	enum dec_type type; /* uint16, int16, uint32, int32 or float32 */
	double scale;	    /* multiply the decoded number (default 1) */
};

/* A meter's own load profile as a ring of fixed-size entries in one register
 * space, entry 0 the newest: entry i occupies base + i*stride … +stride-1.
 * Each entry is the capture instant (UTC epoch seconds, uint32; 0 = empty)
 * and the cumulative counters at that instant, so interval energy is the
 * difference of two entries interval_s apart. */
struct desc_lprofile {
	bool present;
	enum desc_space space;	 /* input or holding */
	struct desc_field count; /* optional: number of valid entries (uint16) */
	uint16_t base;		 /* first register of entry 0 */
	uint16_t stride;	 /* registers per entry, 1…125 */
	uint16_t entries;	 /* ring depth, 1…4096 */
	uint32_t interval_s;	 /* seconds between captures: 900 */
	uint16_t time_offset;	 /* capture time (uint32, 2 registers) within an entry */
	struct desc_lp_channel ch[DESC_LP_CH_MAX];
	unsigned nch;
};

/* A register of the real device that clients read but sgd does not use
 * (e.g. nominal voltage, a meter's configuration): only the simulator serves
 * it, with value (the decoded number, after scale). */
struct desc_const {
	struct desc_field f;
	double value;
};

struct desc {
	char name[DESC_NAME_MAX];		   /* e.g. "IE38" */
	char match[DESC_MATCH_MAX][DESC_NAME_MAX]; /* model-string prefixes this file serves */
	unsigned nmatch;
	enum desc_class cls;
	unsigned phases;
	char path[256]; /* file it came from */

	/* identification (strings; sw_version is a number ×100) */
	struct desc_field id_model, id_serial, id_sw_version, id_description, id_location;
	struct desc_field
	    reverse; /* optional: holding register whose bit 1 = connected in reverse */

	struct desc_meas meas[DESC_MEAS_MAX];
	unsigned nmeas;
	struct desc_counter ctr[DESC_CTR_MAX];
	unsigned nctr;

	/* relay (Bicom): state register and the values meaning on/off */
	struct desc_field relay;
	uint16_t relay_on, relay_off;

	/* RS485 comm parameter registers (holding, uint16), for set-parameters */
	struct desc_field comm_baud, comm_stop, comm_parity, comm_data;
	struct desc_field comm_addr; /* optional: the device's Modbus address register */

	/* optional: the meter's own 15-minute load profile */
	struct desc_lprofile lprof;

	/* optional: fixed registers served by the simulator only */
	struct desc_const consts[DESC_CONST_MAX];
	unsigned nconsts;

	/* reads that cover the fields, built by the loader */
	struct desc_block meas_blocks[DESC_BLOCK_MAX];
	unsigned nmeas_blocks;
	struct desc_block ctr_blocks[DESC_BLOCK_MAX]; /* counter values + exponents */
	unsigned nctr_blocks;
	struct desc_block cfg_blocks[DESC_BLOCK_MAX]; /* unit/quadrant/reverse registers */
	unsigned ncfg_blocks;
};

#define DESC_ERRORS_MAX 32

/* A description file desc_load_dir_lenient() skipped. */
struct desc_error {
	char file[64];	 /* name within the directory */
	char member[96]; /* member path ("measurements[2].reg"), "" for the whole file */
	char reason[256];
	/* Model prefixes the file names under "match", when it parsed that far,
	 * so a device of that model can say which file it lacks. */
	char match[DESC_MATCH_MAX][DESC_NAME_MAX];
	unsigned nmatch;
};

struct desc_set {
	struct desc **v;
	unsigned n;
	struct desc_error *errs; /* the first DESC_ERRORS_MAX broken files */
	unsigned nerr;
	unsigned nbroken; /* every broken file, >= nerr */
};

/* Parse one description file; on error writes "FILE:LINE: message" to err and
 * returns -EINVAL (or -errno when the file cannot be read). */
int desc_load_file(const char *path, struct desc **out, char *err, size_t errlen);
/* Load every *.json in dir (sorted by name); any broken file fails the whole
 * load with its message, leaving out untouched. */
int desc_load_dir(const char *dir, struct desc_set *out, char *err, size_t errlen);
/* Load every good *.json in dir (sorted by name); each broken file, or one
 * repeating an earlier file's name or match prefix, is skipped and recorded
 * in out->errs (err holds nothing then). 0, or -errno when dir cannot be
 * read or memory runs out (out untouched). */
int desc_load_dir_lenient(const char *dir, struct desc_set *out, char *err, size_t errlen);
/* The skipped file whose match prefix fits model better (longer) than any of
 * d's (d may be NULL), or NULL: then d, if any, is the description meant. */
const struct desc_error *desc_broken_for(const struct desc_set *set, const char *model,
					 const struct desc *d);
/* [{"file", "path" (member path, "" for the whole file), "reason"}] of the
 * skipped files (GET /api, sgctl status). */
json_t *desc_errors_json(const struct desc_set *set);
/* Free a set (and its descriptions). */
void desc_set_free(struct desc_set *set);
/* Free one description. */
void desc_free(struct desc *d);
/* The description whose match prefix fits model (longest prefix wins), or NULL. */
const struct desc *desc_match(const struct desc_set *set, const char *model);
/* The description named name (case-insensitive), or NULL. */
const struct desc *desc_find(const struct desc_set *set, const char *name);
/* Name of a quantity as used in JSON ("U", "UPP", "I", …, "Frequency"). */
const char *desc_qty_name(enum desc_qty q);
/* Unit of a quantity ("V", "A", "W", "var", "VA", "", "°", "%", "Hz", "°C"). */
const char *desc_qty_unit(enum desc_qty q);
/* Unit name for a unit code ("Wh", "varh", "VAh"). */
const char *desc_unit_name(enum desc_unit u);
/* Direction name ("import", "export", "bidirectional"). */
const char *desc_dir_name(enum desc_dir d);
/* Map a unit code register value (bits 1-0) to a unit. */
enum desc_unit desc_unit_from_code(uint16_t code);
/* Map a quadrant mask to a direction (6/12 import, 3/9 export, else bidir). */
enum desc_dir desc_dir_from_mask(uint16_t mask);

#endif
