/* The main thread's epoll loop: fds, timers and deferred work all run here. */
#ifndef SG_LOOP_H
#define SG_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
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

#endif
