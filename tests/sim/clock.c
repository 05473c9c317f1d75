/* Simulated wall clock of sgsim. By default it is the real clock and the
 * 100 ms tick drives the physics. With --clock-file the daemon under test
 * publishes its own (simulated) wall time in a shared 8-byte file; once that
 * is non-zero it alone moves the model, one step per change, so that a test
 * running weeks of simulated time in seconds sees counters and profile
 * captures exactly where its clock says they are. */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg/log.h"

int sim_clock_open(struct sim_bus *b, const char *path)
{
	struct stat st;
	void *m;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != (off_t)sizeof(int64_t)) {
		close(fd);
		return -EINVAL;
	}
	m = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
	e = errno;
	close(fd);
	if (m == MAP_FAILED)
		return -e;
	b->clock_file = m;
	return 0;
}

/* The writer stores all 8 bytes at once; an atomic load never sees half. */
static int64_t file_ms(const struct sim_bus *b)
{
	return b->clock_file ? __atomic_load_n(b->clock_file, __ATOMIC_ACQUIRE) : 0;
}

void sim_clock_start(struct sim_bus *b)
{
	int64_t f = file_ms(b);

	b->clock_driven = f != 0;
	b->wall_ms = f != 0 ? f : sim_real_wall_ms();
}

/* Time passes: dt seconds of physics while the wall goes to w1. Frozen, the
 * wall moves on but nothing else does, so the registers stay bit-identical
 * and the capture instants passed meanwhile are never recorded. */
static void advance(struct sim_bus *b, double dt, int64_t w1)
{
	int64_t w0 = b->wall_ms;
	unsigned i;

	if (w1 < w0)
		w1 = w0;
	b->wall_ms = w1;
	if (b->frozen)
		return;
	b->t += dt;
	for (i = 0; i < b->ndev; i++)
		sim_dev_step(&b->dev[i], b->t, dt, w0, w1);
}

/* The first non-zero value is a clock set, not time passing: the wall jumps
 * there and the counters do not integrate the jump. From then on the file
 * alone moves time. A 0 afterwards holds time rather than returning to the
 * real clock: the daemon writes 0 for a moment whenever it re-arms its
 * lock-step clock, and a real-time tick in between would integrate energy
 * and capture instants the test never asked for. */
void sim_clock_sync(struct sim_bus *b)
{
	int64_t f = file_ms(b);

	if (f == 0)
		return;
	if (!b->clock_driven) {
		log_info("sgsim: wall clock set to %lld ms by the clock file", (long long)f);
		b->clock_driven = true;
		b->wall_ms = f;
		return;
	}
	if (f < b->wall_ms && !b->clock_back_logged) {
		log_warn("sgsim: clock file went back from %lld to %lld ms: ignored",
			 (long long)b->wall_ms, (long long)f);
		b->clock_back_logged = true;
	}
	if (f > b->wall_ms)
		advance(b, (double)(f - b->wall_ms) / 1000.0, f);
}

void sim_clock_tick(struct sim_bus *b, uint64_t n)
{
	sim_clock_sync(b);
	if (b->clock_driven || n == 0)
		return;
	advance(b, (double)n * SIM_TICK_MS / 1000.0, sim_real_wall_ms());
}
