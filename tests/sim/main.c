/* sgsim: simulated Iskra devices on a pseudo-terminal. Usage in README.md.
 * Single-threaded: one epoll loop over the pty master, a 100 ms physics tick,
 * a reply-deadline timer, the control socket and its clients, and signals. */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "sg/log.h"

#define MAX_CLIENTS 16
#define CLIENT_BUF 1024
#define SEND_TIMEOUT_MS 1000

enum tag { TAG_MASTER, TAG_LISTEN, TAG_TICK, TAG_DUE, TAG_SIGNAL, TAG_CLIENT };

struct client {
	int fd; /* -1 when free */
	char buf[CLIENT_BUF];
	size_t len;
};

struct opts {
	const char *link, *dir, *ctl, *clock_file;
	unsigned baud;
	bool pace;
	uint64_t seed;
	char *devs[SIM_MAX_DEV];
	unsigned ndevs;
};

struct sim {
	struct opts o;
	struct sim_bus bus;
	struct desc_set set;
	int ep, listen_fd, tick_fd, due_fd, sig_fd;
	struct client cl[MAX_CLIENTS];
	bool quit;
	bool link_made; /* only ever remove what we created */
};

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: sgsim --link PATH [--devices-dir DIR] [--ctl SOCKPATH] [--baud RATE]\n"
		   "             [--pace] [--seed N] [--clock-file PATH]\n"
		   "             --dev MODEL:ADDR[:SERIAL] [--dev ...]\n");
}

static int opt_number(const char *name, const char *arg, long lo, long hi, long *out)
{
	if (sim_parse_long(arg, lo, hi, out) == 0)
		return 0;
	fprintf(stderr, "sgsim: bad %s '%s' (%ld..%ld)\n", name, arg, lo, hi);
	return -EINVAL;
}

static int opt_one(struct opts *o, int c, const char *arg)
{
	long v;

	switch (c) {
	case 'l':
		o->link = arg;
		return 0;
	case 'd':
		o->dir = arg;
		return 0;
	case 'c':
		o->ctl = arg;
		return 0;
	case 't':
		o->clock_file = arg;
		return 0;
	case 'b':
		if (opt_number("--baud", arg, 300, 4000000, &v) < 0)
			return -EINVAL;
		o->baud = (unsigned)v;
		return 0;
	case 'p':
		o->pace = true;
		return 0;
	case 's':
		if (opt_number("--seed", arg, 0, LONG_MAX, &v) < 0)
			return -EINVAL;
		o->seed = (uint64_t)v;
		return 0;
	case 'D':
		if (o->ndevs == SIM_MAX_DEV) {
			fprintf(stderr, "sgsim: at most %d devices\n", SIM_MAX_DEV);
			return -EINVAL;
		}
		o->devs[o->ndevs++] = (char *)arg;
		return 0;
	}
	return -EINVAL;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"link", required_argument, NULL, 'l'}, {"devices-dir", required_argument, NULL, 'd'},
	    {"ctl", required_argument, NULL, 'c'},  {"baud", required_argument, NULL, 'b'},
	    {"pace", no_argument, NULL, 'p'},	    {"seed", required_argument, NULL, 's'},
	    {"dev", required_argument, NULL, 'D'},  {"clock-file", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct opts){.dir = "etc/devices", .baud = 115200, .seed = 1};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (opt_one(o, c, optarg) < 0)
			return -EINVAL;
	}
	if (optind != argc || !o->link || o->ndevs == 0) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* ---- devices ---- */

/* "MODEL:ADDR[:SERIAL]" → a device on the bus; exit code 2 material on error. */
static int add_dev(struct sim *s, char *spec)
{
	char *model = spec, *addr_s = strchr(spec, ':'), *serial = NULL;
	const struct desc *d;
	long addr;

	if (!addr_s) {
		fprintf(stderr, "sgsim: --dev %s: want MODEL:ADDR[:SERIAL]\n", spec);
		return -EINVAL;
	}
	*addr_s++ = '\0';
	serial = strchr(addr_s, ':');
	if (serial)
		*serial++ = '\0';
	if (opt_number("device address", addr_s, 1, 247, &addr) < 0)
		return -EINVAL;
	if (sim_bus_dev(&s->bus, (unsigned)addr)) {
		fprintf(stderr, "sgsim: address %ld used twice\n", addr);
		return -EINVAL;
	}
	d = desc_match(&s->set, model);
	if (!d)
		d = desc_find(&s->set, model);
	if (!d) {
		fprintf(stderr, "sgsim: unknown model '%s' (no description in %s)\n", model,
			s->o.dir);
		return -ENOENT;
	}
	if (sim_dev_init(&s->bus.dev[s->bus.ndev], d, model, (uint8_t)addr, serial, s->o.seed,
			 s->o.baud) < 0) {
		sim_dev_free(&s->bus.dev[s->bus.ndev]);
		return -ENOMEM;
	}
	s->bus.ndev++;
	return 0;
}

static int load_devs(struct sim *s)
{
	char err[512] = "";
	unsigned i;
	int rc;

	rc = desc_load_dir(s->o.dir, &s->set, err, sizeof(err));
	if (rc < 0) {
		if (err[0])
			fprintf(stderr, "sgsim: %s\n", err);
		else
			fprintf(stderr, "sgsim: %s: %s\n", s->o.dir, strerror(-rc));
		return rc;
	}
	for (i = 0; i < s->o.ndevs; i++) {
		rc = add_dev(s, s->o.devs[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A clock file the daemon has not created yet, or of another size, is a
 * mistake in the test's set-up: refuse it rather than run on real time. */
static int open_clock(struct sim *s)
{
	int rc;

	if (!s->o.clock_file)
		return 0;
	rc = sim_clock_open(&s->bus, s->o.clock_file);
	if (rc == -EINVAL)
		fprintf(stderr, "sgsim: --clock-file %s: must be a file of exactly 8 bytes\n",
			s->o.clock_file);
	else if (rc < 0)
		fprintf(stderr, "sgsim: --clock-file %s: %s\n", s->o.clock_file, strerror(-rc));
	return rc;
}

/* ---- pty, link and control socket ---- */

static int make_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

static int open_pty(struct sim_bus *b, char *name, size_t len)
{
	b->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (b->master < 0)
		return -errno;
	if (grantpt(b->master) < 0 || unlockpt(b->master) < 0 || ptsname_r(b->master, name, len))
		return -errno;
	/* our own slave fd keeps the pty up while the daemon closes and reopens */
	b->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (b->slave < 0)
		return -errno;
	if (make_raw(b->slave) < 0 || make_raw(b->master) < 0)
		return -errno;
	if (fcntl(b->master, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Replace a stale symlink, but never a file that is something else. */
static int make_link(const char *target, const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (!S_ISLNK(st.st_mode))
			return -EEXIST;
		if (unlink(path) < 0)
			return -errno;
	}
	return symlink(target, path) < 0 ? -errno : 0;
}

static int listen_ctl(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* ---- event loop plumbing ---- */

static int watch(struct sim *s, int fd, enum tag tag, unsigned idx)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)tag << 32 | idx};

	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int make_timers(struct sim *s)
{
	struct itimerspec tick = {.it_interval = {0, SIM_TICK_MS * 1000000L},
				  .it_value = {0, SIM_TICK_MS * 1000000L}};
	sigset_t set;

	s->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->due_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->tick_fd < 0 || s->due_fd < 0 || timerfd_settime(s->tick_fd, 0, &tick, NULL) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return s->sig_fd < 0 ? -errno : 0;
}

static int setup(struct sim *s)
{
	char name[128];
	int rc;

	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0)
		return -errno;
	rc = open_pty(&s->bus, name, sizeof(name));
	if (rc == 0)
		rc = make_link(name, s->o.link);
	s->link_made = rc == 0;
	if (rc < 0) {
		fprintf(stderr, "sgsim: pty/link %s: %s\n", s->o.link, strerror(-rc));
		return rc;
	}
	if (s->o.ctl) {
		s->listen_fd = listen_ctl(s->o.ctl);
		if (s->listen_fd < 0) {
			fprintf(stderr, "sgsim: %s: %s\n", s->o.ctl, strerror(-s->listen_fd));
			return s->listen_fd;
		}
		rc = watch(s, s->listen_fd, TAG_LISTEN, 0);
	}
	if (rc == 0)
		rc = make_timers(s);
	if (rc == 0)
		rc = watch(s, s->bus.master, TAG_MASTER, 0);
	if (rc == 0)
		rc = watch(s, s->tick_fd, TAG_TICK, 0);
	if (rc == 0)
		rc = watch(s, s->due_fd, TAG_DUE, 0);
	if (rc == 0)
		rc = watch(s, s->sig_fd, TAG_SIGNAL, 0);
	log_info("sgsim: %s -> %s, %u device(s)", s->o.link, name, s->bus.ndev);
	return rc;
}

/* ---- control clients ---- */

static void client_close(struct sim *s, struct client *c)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Replies are small; a client too slow to take one within a second is dropped. */
static int client_send(int fd, const char *p, size_t n)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN && poll(&pfd, 1, SEND_TIMEOUT_MS) > 0)
			continue;
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int client_line(struct sim *s, struct client *c, char *line)
{
	char *reply = ctl_command(&s->bus, line);
	const char *fallback = "{\"error\":\"out of memory\"}\n";
	int rc;

	rc = client_send(c->fd, reply ? reply : fallback, strlen(reply ? reply : fallback));
	free(reply);
	return rc;
}

/* Run every complete line in the buffer; at EOF the unterminated rest too. */
static int client_lines(struct sim *s, struct client *c, bool eof)
{
	char *nl;
	size_t used;

	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = '\0';
		used = (size_t)(nl - c->buf) + 1;
		if (client_line(s, c, c->buf) < 0)
			return -EIO;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf))
		return -E2BIG;
	if (eof && c->len > 0) {
		c->buf[c->len] = '\0';
		c->len = 0;
		return client_line(s, c, c->buf);
	}
	return 0;
}

static void client_read(struct sim *s, struct client *c)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		c->len += (size_t)n;
	/* one byte stays free for the terminating NUL */
	if (c->len == sizeof(c->buf) - 1 && !memchr(c->buf, '\n', c->len)) {
		client_send(c->fd, "{\"error\":\"line too long\"}\n", 26);
		client_close(s, c);
		return;
	}
	if (client_lines(s, c, n <= 0) < 0 || n <= 0)
		client_close(s, c);
}

static void accept_client(struct sim *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	unsigned i;

	if (fd < 0)
		return;
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (s->cl[i].fd < 0 && watch(s, fd, TAG_CLIENT, i) == 0) {
			s->cl[i].fd = fd;
			s->cl[i].len = 0;
			return;
		}
	}
	client_send(fd, "{\"error\":\"too many clients\"}\n", 29);
	close(fd);
}

/* ---- events ---- */

static void on_master(struct sim *s)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = read(s->bus.master, buf, sizeof(buf))) > 0)
		rtu_input(&s->bus, buf, (size_t)n, sim_now_us());
}

static void on_tick(struct sim *s)
{
	uint64_t n = 0;

	if (read(s->tick_fd, &n, sizeof(n)) != sizeof(n))
		return;
	sim_clock_tick(&s->bus, n);
}

static void drain(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return;
}

static void dispatch(struct sim *s, uint64_t data)
{
	enum tag tag = (enum tag)(data >> 32);
	unsigned idx = (unsigned)(data & 0xFFFFFFFF);
	struct signalfd_siginfo si;

	switch (tag) {
	case TAG_MASTER:
		on_master(s);
		break;
	case TAG_LISTEN:
		accept_client(s);
		break;
	case TAG_TICK:
		on_tick(s);
		break;
	case TAG_DUE:
		drain(s->due_fd);
		break;
	case TAG_SIGNAL:
		if (read(s->sig_fd, &si, sizeof(si)) == sizeof(si))
			s->quit = true;
		break;
	case TAG_CLIENT:
		if (idx < MAX_CLIENTS && s->cl[idx].fd >= 0)
			client_read(s, &s->cl[idx]);
		break;
	}
}

/* Arm the one-shot timer for the framer's next deadline (µs precision). */
static void arm_due(struct sim *s)
{
	int64_t us = rtu_next_us(&s->bus, sim_now_us());
	struct itimerspec its = {{0, 0}, {0, 0}};

	if (us >= 0) {
		its.it_value.tv_sec = us / 1000000;
		its.it_value.tv_nsec = (us % 1000000) * 1000 + 1; /* 0 would disarm */
	}
	timerfd_settime(s->due_fd, 0, &its, NULL);
}

static int run(struct sim *s)
{
	struct epoll_event ev[16];
	int i, n;

	while (!s->quit) {
		arm_due(s);
		n = epoll_wait(s->ep, ev, 16, -1);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (i = 0; i < n; i++)
			dispatch(s, ev[i].data.u64);
		rtu_poll(&s->bus, sim_now_us());
	}
	return 0;
}

static void cleanup(struct sim *s)
{
	unsigned i;

	if (s->link_made)
		unlink(s->o.link);
	if (s->o.ctl && s->listen_fd >= 0)
		unlink(s->o.ctl);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (s->cl[i].fd >= 0)
			close(s->cl[i].fd);
	for (i = 0; i < s->bus.ndev; i++)
		sim_dev_free(&s->bus.dev[i]);
	desc_set_free(&s->set);
	if (s->bus.clock_file)
		munmap((void *)s->bus.clock_file, sizeof(int64_t));
}

static void init_state(struct sim *s)
{
	unsigned i;

	memset(s, 0, sizeof(*s));
	s->ep = s->listen_fd = s->tick_fd = s->due_fd = s->sig_fd = -1;
	s->bus.master = s->bus.slave = -1;
	s->bus.pend_baud = s->bus.pend_bits = -1;
	s->bus.bits_per_char = 10;
	for (i = 0; i < MAX_CLIENTS; i++)
		s->cl[i].fd = -1;
}

int main(int argc, char **argv)
{
	static struct sim s; /* large: device images live in it */
	int rc;

	init_state(&s);
	if (parse_opts(&s.o, argc, argv) < 0)
		return 2;
	s.bus.baud = s.o.baud;
	s.bus.pace = s.o.pace;
	s.bus.rng = s.o.seed ^ 0xD1B54A32D192ED03ull;
	if (open_clock(&s) < 0 || load_devs(&s) < 0) {
		cleanup(&s);
		return 2;
	}
	sim_clock_start(&s.bus);
	if (setup(&s) < 0) {
		cleanup(&s);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	rc = run(&s);
	cleanup(&s);
	return rc < 0 ? 1 : 0;
}
