/* epoll loop with one timerfd armed at the earliest deadline of a timer heap:
 * every fd and timer callback runs on the main thread, so state needs no locks. */
#include "sg/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/log.h"

struct fd_slot {
	loop_fd_cb cb;
	void *arg;
	bool used;
};

struct timer {
	int64_t id;
	int64_t due_ms;
	loop_timer_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	int tfd;
	bool quit;
	struct fd_slot *fds;
	int nfds;
	struct timer *heap;
	size_t nheap, capheap;
	int64_t next_id;
	int64_t armed_ms; /* deadline the timerfd is armed for; INT64_MAX = disarmed */
	struct loop_hist turns;
};

/* Bucket b >= 4 covers [(4 + b % 4) << (b / 4 - 1), (5 + b % 4) << (b / 4 - 1)):
 * the top bit of the value picks the power of two, the next two bits the
 * quarter. Values 0…3 have a bucket each. */
unsigned loop_hist_bucket(uint64_t us)
{
	unsigned e, b;

	if (us < 4)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us); /* 2 <= e <= 63 */
	b = 4 * (e - 1) + (unsigned)((us >> (e - 2)) & 3);
	return b < LOOP_HIST_BUCKETS ? b : LOOP_HIST_BUCKETS - 1;
}

uint64_t loop_hist_upper(unsigned bucket)
{
	if (bucket < 4)
		return bucket;
	if (bucket >= LOOP_HIST_BUCKETS - 1)
		return UINT64_MAX;
	return ((uint64_t)(5 + bucket % 4) << (bucket / 4 - 1)) - 1;
}

void loop_hist_add(struct loop_hist *h, uint64_t us)
{
	h->n[loop_hist_bucket(us)]++;
	h->count++;
	h->slow += us > LOOP_SLOW_US;
	h->stalls += us > LOOP_STALL_US;
	if (us > h->max_us)
		h->max_us = us;
}

uint64_t loop_hist_quantile(const struct loop_hist *h, unsigned permille)
{
	/* The rank of the quantile, rounded up (p99 of 100 turns is the 99th,
	 * of 101 the 100th), in integers so no rounding error moves it. */
	uint64_t rank = (h->count * permille + 999) / 1000, seen = 0;

	if (!h->count)
		return 0;
	if (rank < 1)
		rank = 1;
	for (unsigned b = 0; b < LOOP_HIST_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= rank) {
			uint64_t up = loop_hist_upper(b);

			return up < h->max_us ? up : h->max_us;
		}
	}
	return h->max_us;
}

static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct timer t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
}

static bool heap_less(const struct loop *l, size_t a, size_t b)
{
	if (l->heap[a].due_ms != l->heap[b].due_ms)
		return l->heap[a].due_ms < l->heap[b].due_ms;
	return l->heap[a].id < l->heap[b].id; /* FIFO among equal deadlines */
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0 && heap_less(l, i, (i - 1) / 2)) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t m = i, c1 = 2 * i + 1, c2 = 2 * i + 2;

		if (c1 < l->nheap && heap_less(l, c1, m))
			m = c1;
		if (c2 < l->nheap && heap_less(l, c2, m))
			m = c2;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove_at(struct loop *l, size_t i)
{
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	heap_up(l, i);
	heap_down(l, i);
}

static void arm_timerfd(struct loop *l)
{
	struct itimerspec its = {0};

	l->armed_ms = l->nheap ? l->heap[0].due_ms : INT64_MAX;
	if (l->nheap) {
		int64_t delay = l->heap[0].due_ms - clock_mono_ms();

		if (delay < 1)
			delay = 1; /* 0 would disarm */
		its.it_value.tv_sec = delay / 1000;
		its.it_value.tv_nsec = (delay % 1000) * 1000000;
	}
	timerfd_settime(l->tfd, 0, &its, NULL);
}

static void run_due_timers(struct loop *l)
{
	int64_t now = clock_mono_ms();
	uint64_t expirations;

	if (read(l->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARNING, errno, "timerfd read");
	while (l->nheap && l->heap[0].due_ms <= now) {
		struct timer t = l->heap[0];

		heap_remove_at(l, 0);
		t.cb(t.arg);
	}
	arm_timerfd(l);
}

int loop_init(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		r = -errno;
		goto out_free;
	}
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->tfd < 0) {
		r = -errno;
		goto out_close_ep;
	}
	l->next_id = 1;
	l->armed_ms = INT64_MAX;
	*out = l;
	return 0;

out_close_ep:
	close(l->epfd);
out_free:
	free(l);
	return r;
}

void loop_fini(struct loop *l)
{
	if (!l)
		return;
	close(l->tfd);
	close(l->epfd);
	free(l->fds);
	free(l->heap);
	free(l);
}

static int grow_fds(struct loop *l, int fd)
{
	int n = l->nfds ? l->nfds : 64;
	struct fd_slot *v;

	while (n <= fd)
		n *= 2;
	v = realloc(l->fds, (size_t)n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(v + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*v));
	l->fds = v;
	l->nfds = n;
	return 0;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	int r;

	if (fd < 0)
		return -EBADF;
	if (fd >= l->nfds && (r = grow_fds(l, fd)) < 0)
		return r;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->fds[fd] = (struct fd_slot){.cb = cb, .arg = arg, .used = true};
	return 0;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_del_fd(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].used = false;
}

int64_t loop_timer_add(struct loop *l, int64_t delay_ms, loop_timer_cb cb, void *arg)
{
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct timer *h = realloc(l->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->capheap = cap;
	}
	l->heap[l->nheap] = (struct timer){
	    .id = l->next_id++, .due_ms = clock_mono_ms() + delay_ms, .cb = cb, .arg = arg};
	heap_up(l, l->nheap++);
	/* Only a new earliest deadline needs the syscall. */
	if (l->heap[0].due_ms < l->armed_ms)
		arm_timerfd(l);
	return l->next_id - 1;
}

void loop_timer_cancel(struct loop *l, int64_t id)
{
	for (size_t i = 0; i < l->nheap; i++) {
		if (l->heap[i].id == id) {
			/* The timerfd may stay armed earlier: that wake-up finds nothing due. */
			heap_remove_at(l, i);
			return;
		}
	}
}

static void dispatch(struct loop *l, const struct epoll_event *ev)
{
	int fd = ev->data.fd;

	if (fd == l->tfd) {
		run_due_timers(l);
		return;
	}
	/* A callback earlier in this batch may have removed this fd. */
	if (fd < l->nfds && l->fds[fd].used)
		l->fds[fd].cb(fd, ev->events, l->fds[fd].arg);
}

int loop_run(struct loop *l)
{
	struct epoll_event tev = {.events = EPOLLIN, .data.fd = l->tfd};
	struct epoll_event evs[32];

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &tev) < 0 && errno != EEXIST)
		return -errno;
	l->quit = false;
	while (!l->quit) {
		int n = epoll_wait(l->epfd, evs, 32, -1);
		int64_t t0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		t0 = clock_mono_us();
		for (int i = 0; i < n && !l->quit; i++)
			dispatch(l, &evs[i]);
		/* Two clock reads and a bucket increment: cheap enough for every turn. */
		loop_hist_add(&l->turns, (uint64_t)(clock_mono_us() - t0));
	}
	return 0;
}

void loop_quit(struct loop *l)
{
	l->quit = true;
}

void loop_stats(const struct loop *l, struct loop_stats *out)
{
	out->turns = l->turns.count;
	out->max_us = l->turns.max_us;
	out->slow = l->turns.slow;
	out->stalls = l->turns.stalls;
	out->p99_us = loop_hist_quantile(&l->turns, 990);
}

json_t *loop_stats_json(const struct loop *l)
{
	struct loop_stats st;

	loop_stats(l, &st);
	return json_pack("{s:I, s:f, s:f, s:I, s:I}", "turns", (json_int_t)st.turns, "turn_p99_ms",
			 (double)st.p99_us / 1000.0, "turn_max_ms", (double)st.max_us / 1000.0,
			 "turns_over_5ms", (json_int_t)st.slow, "turns_over_50ms",
			 (json_int_t)st.stalls);
}
