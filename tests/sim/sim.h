/* sgsim: simulated Iskra devices answering Modbus RTU on a pseudo-terminal,
 * served from the same description files the daemon polls with. One process
 * simulates one RS485 bus (or IR port). */
#ifndef SG_SIM_H
#define SG_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sg/desc.h"

#define SIM_MAX_DEV 32
#define SIM_NREGS 65536u
#define SIM_MAX_PINS 32
#define SIM_RX_MAX 1024 /* request bytes buffered; more is garbage by definition */
#define SIM_ADU_MAX 256 /* Modbus RTU frame limit */
#define SIM_TICK_MS 100

enum sim_fault {
	FAULT_NONE,
	FAULT_NOANSWER,
	FAULT_CRC,
	FAULT_GARBAGE,
	FAULT_EXCEPTION,
	FAULT_SLOW
};

/* A measurement held at a fixed value by the control socket. */
struct sim_pin {
	enum desc_qty qty;
	uint8_t phase;
	double value;
};

/* One simulated device: its description, register image and physics state. */
struct sim_dev {
	const struct desc *d;
	uint8_t addr;
	int pend_addr; /* address written over Modbus, applied after the reply; -1 none */
	bool present;
	char model[DESC_NAME_MAX];
	char serial[DESC_NAME_MAX];

	enum sim_fault fault;
	int fault_arg; /* exception code, delay in ms, or requests left to ignore */
	/* A fault limited to registers fault_first…fault_last of fault_space hits
	 * only the requests touching them; the others are served normally. */
	bool fault_ranged;
	enum desc_space fault_space;
	unsigned fault_first, fault_last;

	uint16_t *regs[4];   /* per enum desc_space; bits stored one per word for coils */
	uint8_t *defined[4]; /* bitmap per space: registers the description defines */

	double off[16];		      /* per-device phase offsets of the physics, from the seed */
	double ctr_val[DESC_CTR_MAX]; /* true counter values in the base unit */
	int ctr_exp[DESC_CTR_MAX];    /* decimal exponent served for integer counters */
	struct sim_pin pins[SIM_MAX_PINS];
	unsigned npins;

	/* the meter's own load profile (description's lprof): the ring lives in
	 * the register image, these say how much of it is filled */
	unsigned lp_count;    /* valid entries */
	int64_t lp_newest_ms; /* capture instant of entry 0; 0 = none yet */

	uint64_t requests, replies, exceptions;
};

struct sim_bus {
	int master, slave; /* pty; the slave stays open so daemon reopens never hang up */
	bool pace;
	unsigned baud;
	unsigned bits_per_char; /* 10, or 11 with parity or 2 stop bits */

	uint8_t rx[SIM_RX_MAX];
	size_t rxlen;
	int64_t last_rx_us;
	bool resyncing; /* after a bad CRC: count one error, then drop silently */

	uint8_t tx[SIM_ADU_MAX + 16];
	size_t txlen;
	bool tx_pending; /* a reply waits for tx_due_us (pacing or slow fault) */
	int64_t tx_due_us;
	int pend_baud; /* baud written over Modbus, applied after the reply; -1 none */
	int pend_bits; /* bits per char likewise; -1 none */

	struct sim_dev dev[SIM_MAX_DEV];
	unsigned ndev;

	bool frozen;
	double t; /* simulated seconds since start (physics time) */

	/* Simulated wall clock (UTC ms): CLOCK_REALTIME, or the value the daemon
	 * under test publishes in --clock-file once that is non-zero. */
	const int64_t *clock_file; /* read-only shared mapping, or NULL */
	bool clock_driven;	   /* the file's value drives time (for good) */
	bool clock_back_logged;	   /* a backwards value was reported */
	int64_t wall_ms;	   /* wall time the model has reached */
	uint64_t rng;

	uint64_t frames, replies, bad_crc, dropped;
	double wire_us; /* simulated time the bytes took on the wire */
};

/* ---- util.c ---- */
/* Monotonic microseconds. */
int64_t sim_now_us(void);
/* Real wall time (CLOCK_REALTIME), UTC milliseconds. */
int64_t sim_real_wall_ms(void);
/* Parse a whole decimal integer within [lo, hi]; 0 or -EINVAL/-ERANGE. */
int sim_parse_long(const char *s, long lo, long hi, long *out);
/* Parse a finite double; 0 or -EINVAL. */
int sim_parse_double(const char *s, double *out);
/* Seeded PRNG (xorshift64*): the simulation is reproducible from --seed. */
uint64_t sim_rand(uint64_t *state);
/* Uniform double in [0, 1). */
double sim_rand01(uint64_t *state);
/* Baud rate of an Iskra baud code (0 = 1200 … 7 = 115200), or 0. */
unsigned sim_baud_of_code(unsigned code);
/* Iskra baud code of a rate, or -EINVAL. */
int sim_code_of_baud(unsigned baud);

/* ---- model.c ---- */
/* Set up a device: image, identification, counters; 0 or -errno. */
int sim_dev_init(struct sim_dev *dv, const struct desc *d, const char *model, uint8_t addr,
		 const char *serial, uint64_t seed, unsigned baud);
/* Free the image. */
void sim_dev_free(struct sim_dev *dv);
/* Advance physics by dt seconds to time t and re-encode the image. */
void sim_dev_tick(struct sim_dev *dv, double t, double dt);
/* sim_dev_tick while wall time goes from w0_ms to w1_ms: every profile
 * capture instant in (w0_ms, w1_ms] gets an entry, counters interpolated
 * linearly across the step. */
void sim_dev_step(struct sim_dev *dv, double t, double dt, int64_t w0_ms, int64_t w1_ms);
/* Decode profile entry i (0 newest) from the image: its capture instant (UTC
 * s) and one value per description channel; 0, or -ENOENT when empty or
 * past the ring. */
int sim_lp_entry(const struct sim_dev *dv, unsigned i, int64_t *time_s, double *v);
/* Set counter k (description order) to value in its base unit, as a meter
 * reset or replacement would; 0, -ENOENT (no such counter) or -ERANGE (not
 * encodable in its registers). */
int sim_dev_set_counter(struct sim_dev *dv, unsigned k, double value);
/* Name of load-profile channel ch ("ai" … "ae3"), "?" when out of range. */
const char *sim_lp_channel_name(unsigned ch);
/* Whether the description defines register reg of space sp. */
bool sim_defined(const struct sim_dev *dv, enum desc_space sp, unsigned reg);
/* Pin measurement qty/phase to value; 0, -ENOENT (not in the description) or
 * -ERANGE (not encodable). Re-encodes at time t. */
int sim_dev_pin(struct sim_dev *dv, enum desc_qty qty, unsigned phase, double value, double t);
/* Release all pins. */
void sim_dev_unpin(struct sim_dev *dv, double t);
/* Decode a numeric field from the image (times its scale); 0 or -EINVAL. */
int sim_field_number(const struct sim_dev *dv, const struct desc_field *f, double *out);
/* Decode a string field from the image. */
void sim_field_string(const struct sim_dev *dv, const struct desc_field *f, char *buf, size_t len);
/* Decode measurement i as a client would; 0 or -EINVAL. */
int sim_meas_value(const struct sim_dev *dv, unsigned i, double *out);
/* Decode counter k (base unit) with its unit and direction; 0 or -EINVAL. */
int sim_ctr_value(const struct sim_dev *dv, unsigned k, double *out, enum desc_unit *unit,
		  enum desc_dir *dir);
/* Relay state: 1 on, 0 off, -ENOENT without a relay. */
int sim_relay_state(const struct sim_dev *dv);

/* ---- pdu.c ---- */
/* Handle request PDU req (len bytes, function code first) for dv; writes the
 * reply PDU (possibly an exception) to resp (SIM_ADU_MAX bytes) and returns
 * its length. */
size_t pdu_handle(struct sim_bus *b, struct sim_dev *dv, const uint8_t *req, size_t len,
		  uint8_t *resp);

/* ---- rtu.c ---- */
/* CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF). */
uint16_t sim_crc16(const uint8_t *p, size_t n);
/* Bytes arrived from the master. */
void rtu_input(struct sim_bus *b, const uint8_t *p, size_t n, int64_t now);
/* Periodic housekeeping: drop stale partial frames, send due replies. */
void rtu_poll(struct sim_bus *b, int64_t now);
/* Microseconds until rtu_poll has work, or -1. */
int64_t rtu_next_us(const struct sim_bus *b, int64_t now);
/* Write n bytes of noise onto the line now. */
void rtu_noise(struct sim_bus *b, size_t n);
/* The device answering at addr, or NULL. */
struct sim_dev *sim_bus_dev(struct sim_bus *b, unsigned addr);
/* Set the pacing baud rate. */
void sim_bus_set_baud(struct sim_bus *b, unsigned baud);

/* ---- clock.c ---- */
/* Map the --clock-file (exactly 8 bytes); 0, -errno or -EINVAL (size). */
int sim_clock_open(struct sim_bus *b, const char *path);
/* Start the wall clock: the file's value when non-zero, else real time. */
void sim_clock_start(struct sim_bus *b);
/* n ticks of SIM_TICK_MS passed (real time). */
void sim_clock_tick(struct sim_bus *b, uint64_t n);
/* Catch up with the clock file now (before a request or a command). */
void sim_clock_sync(struct sim_bus *b);

/* ---- ctl.c ---- */
/* Handle one control command line; returns a malloc'd JSON line (with '\n'). */
char *ctl_command(struct sim_bus *b, char *line);

#endif
