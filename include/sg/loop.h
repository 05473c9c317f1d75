/* The main thread's epoll loop: fds, timers and deferred work all run here. */
#ifndef SG_LOOP_H
#define SG_LOOP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;

/* Durations in microseconds on logarithmic buckets: four per power of two
 * (at most 25 % wide), so adding one costs a few instructions and p99 needs
 * no sort. Values of about two minutes and more share the last bucket. */
#define LOOP_HIST_BUCKETS 104
/* The targets of a turn (p99 under 5 ms, none over 50 ms): turns beyond
 * each are counted exactly, so a reader comparing two snapshots knows how a
 * time window did without the histogram. */
#define LOOP_SLOW_US 5000
#define LOOP_STALL_US 50000
struct loop_hist {
	uint64_t count;
	uint64_t max_us;
	uint64_t slow, stalls; /* durations > LOOP_SLOW_US, > LOOP_STALL_US */
	uint64_t n[LOOP_HIST_BUCKETS];
};

/* How long the loop's turns took (one turn: from epoll_wait returning to
 * the next call of it, i.e. the callbacks it ran). */
struct loop_stats {
	uint64_t turns;
	uint64_t p99_us; /* upper bound of the bucket the 99th percentile lies in, <= max */
	uint64_t max_us;
	uint64_t slow;	 /* turns over LOOP_SLOW_US */
	uint64_t stalls; /* turns over LOOP_STALL_US */
};

/* Count one duration of us microseconds. */
void loop_hist_add(struct loop_hist *h, uint64_t us);
/* The quantile of permille/1000 (1…1000; 990 = p99) as the upper bound of
 * its bucket, never above the largest value seen; 0 when empty. */
uint64_t loop_hist_quantile(const struct loop_hist *h, unsigned permille);
/* The bucket a duration of us falls in. */
unsigned loop_hist_bucket(uint64_t us);
/* The largest duration bucket holds (UINT64_MAX for the last one). */
uint64_t loop_hist_upper(unsigned bucket);
/* Called when fd is ready; events are EPOLLIN/EPOLLOUT/... */
typedef void (*loop_fd_cb)(int fd, uint32_t events, void *arg);
/* Called when a timer fires. */
typedef void (*loop_timer_cb)(void *arg);

/* Create the loop; 0 or -errno. */
int loop_init(struct loop **out);
/* Close the loop; fds added to it are not closed. */
void loop_fini(struct loop *l);
/* Watch fd for events; 0 or -errno. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg);
/* Change the events watched on fd. */
int loop_mod_fd(struct loop *l, int fd, uint32_t events);
/* Stop watching fd (does not close it). */
void loop_del_fd(struct loop *l, int fd);
/* One-shot timer after delay_ms; returns an id > 0 or -errno. */
int64_t loop_timer_add(struct loop *l, int64_t delay_ms, loop_timer_cb cb, void *arg);
/* Cancel a pending timer (no-op if it already fired). */
void loop_timer_cancel(struct loop *l, int64_t id);
/* Run until loop_quit(); 0 or -errno. */
int loop_run(struct loop *l);
/* Make loop_run return after the current iteration. */
void loop_quit(struct loop *l);
/* Turns measured since loop_init, with their p99 and maximum duration. */
void loop_stats(const struct loop *l, struct loop_stats *out);
/* The same as the document GET /api and sgctl status show: {"turns",
 * "turn_p99_ms", "turn_max_ms", "turns_over_5ms", "turns_over_50ms"}. */
json_t *loop_stats_json(const struct loop *l);

#endif
