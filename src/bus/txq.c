/* Two FIFOs with bounds; pop prefers the high-priority one. */
#include "sg/txq.h"

#include <errno.h>
#include <string.h>

void txq_init(struct txq *q, size_t cap_high, size_t cap_low)
{
	memset(q, 0, sizeof(*q));
	q->cap[BUS_PRIO_HIGH] = cap_high;
	q->cap[BUS_PRIO_LOW] = cap_low;
}

int txq_push(struct txq *q, struct txq_node *n, enum bus_prio prio)
{
	if (q->len[prio] >= q->cap[prio])
		return -EBUSY;
	n->next = NULL;
	if (q->tail[prio])
		q->tail[prio]->next = n;
	else
		q->head[prio] = n;
	q->tail[prio] = n;
	q->len[prio]++;
	return 0;
}

int txq_push_front(struct txq *q, struct txq_node *n, enum bus_prio prio)
{
	if (q->len[prio] >= q->cap[prio])
		return -EBUSY;
	n->next = q->head[prio];
	q->head[prio] = n;
	if (!q->tail[prio])
		q->tail[prio] = n;
	q->len[prio]++;
	return 0;
}

struct txq_node *txq_pop(struct txq *q)
{
	int first =
	    q->high_run >= TXQ_HIGH_BURST && q->head[BUS_PRIO_LOW] ? BUS_PRIO_LOW : BUS_PRIO_HIGH;

	for (int p = first; p < BUS_PRIO_COUNT; p++) {
		struct txq_node *n = q->head[p];

		if (!n)
			continue;
		q->high_run = p == BUS_PRIO_HIGH ? q->high_run + 1 : 0;
		q->head[p] = n->next;
		if (!q->head[p])
			q->tail[p] = NULL;
		q->len[p]--;
		n->next = NULL;
		return n;
	}
	return NULL;
}

size_t txq_len(const struct txq *q, enum bus_prio prio)
{
	return q->len[prio];
}

bool txq_empty(const struct txq *q)
{
	return !q->head[BUS_PRIO_HIGH] && !q->head[BUS_PRIO_LOW];
}
