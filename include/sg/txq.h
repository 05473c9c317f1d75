/* Bounded two-priority FIFO of bus transactions. Not thread-safe by itself:
 * the bus wraps it in its mutex. On-demand requests (CLI, REST, MQTT, Modbus
 * TCP) go in BUS_PRIO_HIGH and leave before background polling, except that
 * after TXQ_HIGH_BURST high-priority entries in a row one waiting low-priority
 * entry goes: a Modbus TCP master hammering a line slows polling of the
 * other devices down, it cannot stop it. */
#ifndef SG_TXQ_H
#define SG_TXQ_H

#include <stdbool.h>
#include <stddef.h>

enum bus_prio { BUS_PRIO_HIGH = 0, BUS_PRIO_LOW = 1, BUS_PRIO_COUNT };

struct txq_node {
	struct txq_node *next;
};

#define TXQ_HIGH_BURST 4

struct txq {
	struct txq_node *head[BUS_PRIO_COUNT], *tail[BUS_PRIO_COUNT];
	size_t len[BUS_PRIO_COUNT];
	size_t cap[BUS_PRIO_COUNT];
	unsigned high_run; /* high-priority pops since the last low one */
};

/* Empty queue holding at most cap_high / cap_low entries per priority. */
void txq_init(struct txq *q, size_t cap_high, size_t cap_low);
/* Append n at prio; 0 or -EBUSY when that priority is full. */
int txq_push(struct txq *q, struct txq_node *n, enum bus_prio prio);
/* Put n first at prio (the next block of a started poll cycle: the cycle
 * finishes before the next device's starts, so its values are read close
 * together); 0 or -EBUSY when that priority is full. */
int txq_push_front(struct txq *q, struct txq_node *n, enum bus_prio prio);
/* Remove the next entry: oldest high-priority first (but a waiting low one
 * after TXQ_HIGH_BURST high ones in a row), else oldest low; NULL if empty. */
struct txq_node *txq_pop(struct txq *q);
/* Entries queued at prio. */
size_t txq_len(const struct txq *q, enum bus_prio prio);
/* True when nothing is queued. */
bool txq_empty(const struct txq *q);

#endif
