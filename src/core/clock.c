/* All time reads go through here. Tests move wall time: an offset, a rate at
 * which simulated time runs from the moment it was set (so days pass in
 * minutes while the daemon keeps polling in real time), or lock-step, where
 * time moves a fixed step per counter poll (so weeks pass in seconds with
 * every reading exactly where the test expects it). */
#include "sg/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t offset_ms;      /* simulated - real at anchor */
static int64_t anchor_real_ms; /* real wall ms when the rate was set */
static int rate = 1;
static bool locked; /* lock-step: wall time is lock_ms */
static int64_t lock_ms, step_ms, until_ms;
static int64_t *mirror; /* shared mapping of the mirror file, or NULL */

int64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	int64_t real = real_wall_ms(), v;

	pthread_mutex_lock(&mu);
	if (locked)
		v = lock_ms;
	else
		v = rate == 1 ? real + offset_ms
			      : anchor_real_ms + offset_ms + (real - anchor_real_ms) * rate;
	pthread_mutex_unlock(&mu);
	return v;
}

time_t clock_wall(void)
{
	return (time_t)(clock_wall_ms() / 1000);
}

/* Leave lock-step (under mu); 0 in the mirror tells a simulator to go back
 * to its own time. */
static void mirror_drop(void)
{
	if (mirror) {
		__atomic_store_n(mirror, 0, __ATOMIC_RELEASE);
		munmap(mirror, sizeof(*mirror));
		mirror = NULL;
	}
	locked = false;
}

void clock_set_offset(int64_t offset_s)
{
	pthread_mutex_lock(&mu);
	mirror_drop();
	offset_ms = offset_s * 1000;
	anchor_real_ms = real_wall_ms();
	rate = 1;
	pthread_mutex_unlock(&mu);
}

void clock_simulate(int64_t wall_ms, int r)
{
	int64_t real = real_wall_ms();

	pthread_mutex_lock(&mu);
	mirror_drop();
	anchor_real_ms = real;
	offset_ms = wall_ms - real;
	rate = r < 1 ? 1 : r;
	pthread_mutex_unlock(&mu);
}

static int64_t *mirror_map(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	void *m;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, sizeof(int64_t)) < 0) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

int clock_lockstep(int64_t wall_ms, int64_t step, int64_t until, const char *mirror_path)
{
	int64_t *m = NULL;

	if (wall_ms <= 0 || step < 0)
		return -EINVAL;
	if (mirror_path && !(m = mirror_map(mirror_path)))
		return -errno;
	pthread_mutex_lock(&mu);
	/* no 0 in between: the simulator must not fall back to its own time */
	if (mirror)
		munmap(mirror, sizeof(*mirror));
	mirror = m;
	locked = true;
	step_ms = step;
	until_ms = until > 0 ? until : INT64_MAX;
	lock_ms = wall_ms;
	if (mirror)
		__atomic_store_n(mirror, lock_ms, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mu);
	return 0;
}

void clock_lockstep_advance(void)
{
	pthread_mutex_lock(&mu);
	if (locked && step_ms > 0 && lock_ms < until_ms) {
		lock_ms = lock_ms + step_ms < until_ms ? lock_ms + step_ms : until_ms;
		if (mirror)
			__atomic_store_n(mirror, lock_ms, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&mu);
}

int clock_poll_second_ms(void)
{
	const char *hooks = getenv("SGD_TEST_HOOKS"), *v = getenv("SGD_TEST_POLL_MS");
	char *end;
	long ms;

	if (!hooks || strcmp(hooks, "1") || !v)
		return 1000;
	ms = strtol(v, &end, 10);
	return *end || ms < 1 || ms > 1000 ? 1000 : (int)ms;
}
