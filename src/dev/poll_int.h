/* Internals shared by the poller's files (poll.c, poll_cfg.c, poll_ops.c). */
#ifndef SG_POLL_INT_H
#define SG_POLL_INT_H

#include "sg/poll.h"
#include "sg/registry.h"

#define CHAIN_MAX (3 * DESC_BLOCK_MAX + 8)

enum chain_kind { CHAIN_IDENT, CHAIN_CFG, CHAIN_CYCLE };

struct poll;

/* One block of the poll cycle, kept from cycle to cycle: a cycle chain is
 * always built in the same order for a description (measurement blocks, the
 * relay, then counter blocks when due), so the position in the chain names
 * the block. */
struct pblock {
	struct desc_block b; /* registers, for messages */
	int64_t read_ms;     /* wall-clock time of the last good read; 0 = never */
	unsigned fails;	     /* consecutive failed reads, whatever the error */
	int err;	     /* the last failure (bus error code) */
};

struct pslot {
	struct poll *poll;
	struct dev *dev;    /* the slot's write handle in the registry */
	struct bus_txn txn; /* the slot's one background transaction */
	bool busy;	    /* txn is queued or running */
	unsigned gen, txn_gen;
	int64_t timer;
	enum chain_kind kind;
	struct desc_block chain[CHAIN_MAX];
	unsigned nchain, pos;
	/* A poll cycle's block results, applied to dev together when the cycle
	 * completes: a reading rendered meanwhile (REST, MQTT) never mixes new
	 * values with the previous read time. */
	uint16_t stage[CHAIN_MAX][BUS_REGS_MAX];
	bool staged[CHAIN_MAX];
	int64_t stage_ms[CHAIN_MAX]; /* when each staged block was read */
	struct pblock blk[CHAIN_MAX];
	unsigned nmeas_chain; /* cycle chain blocks before the counter blocks */
	bool meas_told;	      /* this cycle's measurement part was applied and told */
	bool need_ident;      /* (re-)identify before the next cycle (after an outage) */
	bool ctr_in_cycle;
	int64_t cycle_start, last_ctr_mono;
};

struct slot_cfg {
	enum desc_class cls;
	int addr;
	char description[48];
};

struct scan;
struct op;

struct poll {
	struct loop *loop;
	struct reg *reg; /* where the slots' devices live */
	struct bus *buses[CONF_BUS_COUNT];
	const struct desc_set *descs;
	const struct desc *generic; /* identification layout common to Iskra devices */
	struct store *store;
	int right_ir_addr;
	int left_ir_addr;
	struct pslot slot[DEV_SLOTS];
	int64_t meas_interval_ms, ctr_interval_ms;
	bool stopping;
	struct bus_params rs485_line; /* the configured line, restored after a scan */
	struct op *ops;		      /* on-demand operations in flight */
};

/* Slot configuration from settings. */
void poll_settings_to_cfg(struct poll *p, const struct settings *st, struct slot_cfg *cfg);
/* Apply RS485 line settings (baud/parity/stop) to the bus. */
void poll_apply_rs485_line(struct poll *p, const struct settings *st);
/* Forget on-demand operations' callers (shutdown). */
void poll_ops_quiesce(struct poll *p);

#endif
