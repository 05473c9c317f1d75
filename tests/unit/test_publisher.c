/* Publisher (src/mqtt/publisher.c) against fake links, an in-memory outbox,
 * fake devices, a fake poller (its cycle notifications) and a fake loop whose
 * timers run on virtual time (no real-time waits), with the real settings:
 * live publications equal the REST JSON; a due push goes out when the
 * device's poll cycle completes (the measurements at a measurement update,
 * the counters at that cycle's counter update), never before it is due, and
 * at the next due time when no cycle completed; while a link is down they are buffered and
 * replayed in order in batches of 100 once acknowledged; publications made
 * during a replay, or after a paused one, queue behind it; not-responding
 * errors once per transition; Bicom states retained and never buffered;
 * timers kept across unrelated settings changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/mqtt/mqtt_int.h"
#include "sg/clock.h"
#include "sg/dev.h"
#include "sg/hist.h"
#include "sg/loop.h"
#include "sg/reading.h"
#include "sg/registry.h"
#include "sg/settings.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fakes ---- */

#define MAXPUB 4096

struct pubrec {
	char sub[64];
	char *payload;
	int qos;
	bool retain;
	int mid;
};

struct mqtt_link {
	int n;
	bool up;
	int next_mid;
	struct pubrec pub[MAXPUB];
	int npub;
	int refuse_at; /* > 0: publications beyond this many fail (-EIO), as a full queue */
	/* per-device availability, kept apart so the reading tests count readings */
	char av_sub[64][64], av_payload[64][16];
	bool av_retain[64];
	int nav;
};

int link_publish(struct mqtt_link *l, const char *subtopic, const void *payload, size_t len,
		 int qos, bool retain)
{
	struct pubrec *r;

	if (!l->up)
		return -ENOTCONN;
	if (l->refuse_at > 0 && l->npub >= l->refuse_at)
		return -EIO;
	if (strstr(subtopic, "/availability")) {
		assert_true(l->nav < 64);
		snprintf(l->av_sub[l->nav], sizeof(l->av_sub[0]), "%s", subtopic);
		snprintf(l->av_payload[l->nav], sizeof(l->av_payload[0]), "%.*s", (int)len,
			 (const char *)payload);
		l->av_retain[l->nav++] = retain;
		return qos ? ++l->next_mid : 0;
	}
	assert_true(l->npub < MAXPUB);
	r = &l->pub[l->npub++];
	snprintf(r->sub, sizeof(r->sub), "%s", subtopic);
	r->payload = strndup(payload, len);
	r->qos = qos;
	r->retain = retain;
	r->mid = qos ? ++l->next_mid : 0;
	return r->mid;
}

bool link_connected(const struct mqtt_link *l)
{
	return l->up;
}

int link_number(const struct mqtt_link *l)
{
	return l->n;
}

#define OBMAX 1000

struct outbox {
	struct outbox_msg m[MQTT_LINKS + 1][OBMAX];
	unsigned n[MQTT_LINKS + 1];
	int64_t next_id;
};

int outbox_push(struct outbox *o, int link, int64_t ts_ms, const char *subtopic,
		const char *payload, size_t len)
{
	struct outbox_msg *m;

	assert_true(o->n[link] < OBMAX);
	m = &o->m[link][o->n[link]++];
	m->id = ++o->next_id;
	m->ts_ms = ts_ms;
	m->subtopic = strdup(subtopic);
	m->payload = strndup(payload, len);
	m->len = len;
	return 0;
}

int outbox_peek(struct outbox *o, int link, unsigned max, struct outbox_msg *out, unsigned *n)
{
	unsigned k = o->n[link] < max ? o->n[link] : max;

	for (unsigned i = 0; i < k; i++) {
		out[i] = o->m[link][i];
		out[i].subtopic = strdup(o->m[link][i].subtopic);
		out[i].payload = strdup(o->m[link][i].payload);
	}
	*n = k;
	return 0;
}

void outbox_msgs_free(struct outbox_msg *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(v[i].subtopic);
		free(v[i].payload);
	}
}

int outbox_delete_upto(struct outbox *o, int link, int64_t id)
{
	unsigned k = 0;

	while (k < o->n[link] && o->m[link][k].id <= id)
		k++;
	outbox_msgs_free(o->m[link], k);
	memmove(o->m[link], o->m[link] + k, (o->n[link] - k) * sizeof(struct outbox_msg));
	o->n[link] -= k;
	return 0;
}

unsigned outbox_count(struct outbox *o, int link)
{
	return o->n[link];
}

static int tcp_pushes;

void stdtcp_push(struct stdtcp *t, const struct dev *d)
{
	(void)t;
	(void)d;
	tcp_pushes++;
}

static struct dev devs[DEV_SLOTS];

const struct dev *reg_dev(const struct reg *r, int slot)
{
	(void)r;
	return &devs[slot];
}

/* ---- fake registry: the cycle notifications the publisher subscribes to ---- */

static reg_notify_cb notify_cb;
static void *notify_arg;
static bool stalled[DEV_SLOTS]; /* this device's cycles never complete */
static bool manual_cycles;	/* no periodic cycles: the test calls cycle() */

int reg_subscribe(struct reg *r, reg_notify_cb cb, void *arg)
{
	(void)r;
	assert_null(notify_cb);
	notify_cb = cb;
	notify_arg = arg;
	return 0;
}

void reg_unsubscribe(struct reg *r, reg_notify_cb cb, void *arg)
{
	(void)r;
	assert_ptr_equal(cb, notify_cb);
	assert_ptr_equal(arg, notify_arg);
	notify_cb = NULL;
}

/* A completed poll cycle of slot's device. */
static void cycle(int slot)
{
	if (notify_cb)
		notify_cb(&devs[slot], notify_arg);
}

/* ---- fake loop: timers on virtual time (all the publisher uses) ---- */

#define TIMERS 256

struct ftimer {
	int64_t id, due_ms;
	loop_timer_cb cb;
	void *arg;
};

struct loop {
	int64_t now_ms; /* virtual milliseconds since loop_init */
	int64_t next_id;
	struct ftimer t[TIMERS];
	int n;
};

int loop_init(struct loop **out)
{
	*out = calloc(1, sizeof(**out));
	assert_non_null(*out);
	(*out)->next_id = 1;
	return 0;
}

void loop_fini(struct loop *l)
{
	free(l);
}

int64_t loop_timer_add(struct loop *l, int64_t delay_ms, loop_timer_cb cb, void *arg)
{
	assert_true(l->n < TIMERS);
	l->t[l->n++] = (struct ftimer){l->next_id, l->now_ms + delay_ms, cb, arg};
	return l->next_id++;
}

void loop_timer_cancel(struct loop *l, int64_t id)
{
	for (int i = 0; i < l->n; i++)
		if (l->t[i].id == id) {
			l->t[i] = l->t[--l->n];
			return;
		}
}

/* Run the earliest timer due by until_ms (first added first among equal
 * due times, as the real loop), moving virtual time to it; false if none. */
static bool loop_step(struct loop *l, int64_t until_ms)
{
	int b = -1;
	struct ftimer t;

	for (int i = 0; i < l->n; i++)
		if (l->t[i].due_ms <= until_ms &&
		    (b < 0 || l->t[i].due_ms < l->t[b].due_ms ||
		     (l->t[i].due_ms == l->t[b].due_ms && l->t[i].id < l->t[b].id)))
			b = i;
	if (b < 0)
		return false;
	t = l->t[b];
	l->t[b] = l->t[--l->n];
	if (t.due_ms > l->now_ms)
		l->now_ms = t.due_ms;
	t.cb(t.arg);
	return true;
}

/* The poller's cycles: every second, 50 ms after each whole second, every
 * device that answers (ok or read error) completes one, unless stalled. */
#define CYCLE_MS 1000
#define CYCLE_PHASE_MS 50

static void on_fake_cycles(void *arg)
{
	struct loop *l = arg;

	loop_timer_add(l, CYCLE_MS, on_fake_cycles, l);
	for (int i = 0; i < DEV_SLOTS && !manual_cycles; i++)
		if (!stalled[i] && (devs[i].health == DEV_OK || devs[i].health == DEV_READ_ERROR))
			cycle(i);
}

/* No history here: the documents carry "active_tariff": null. */
int hist_active_tariff(struct hist *h)
{
	(void)h;
	return -1;
}

/* ---- fixture ---- */

struct fx {
	char dir[64];
	struct mqtt_env a;
	struct mqtt m;
	struct mqtt_link l[MQTT_LINKS];
	struct outbox *o;
	struct publisher *p;
};

static void setting(struct fx *f, const char *kv)
{
	char err[256];
	char *args[1] = {(char *)kv};

	if (settings_set_kv(f->a.settings, args, 1, err, sizeof(err)))
		fail_msg("%s: %s", kv, err);
}

static void meter(int slot, double u)
{
	static struct desc ds; /* an identified device needs a description */
	struct dev *d = &devs[slot];

	dev_reset(d, slot);
	d->cls = CLASS_METER;
	d->health = DEV_OK;
	d->d = &ds;
	d->meas_ms = clock_wall_ms();
	d->ctr_ms = d->meas_ms;
	d->meas[0] = u;
	snprintf(d->model, sizeof(d->model), "IE38");
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/sgd-test-pub-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->a.loop), 0);
	assert_int_equal(settings_init(&f->a.settings, f->dir, "SG123456", "SG-E1"), 0);
	f->a.reg = (struct reg *)f; /* only passed to the fake reg_* */
	f->o = calloc(1, sizeof(*f->o));
	f->m.env = f->a;
	f->m.outbox = f->o;
	for (int i = 0; i < MQTT_LINKS; i++) {
		f->l[i].n = i + 1;
		f->m.link[i] = &f->l[i];
	}
	memset(devs, 0, sizeof(devs));
	for (int i = 0; i < DEV_SLOTS; i++)
		dev_reset(&devs[i], i);
	tcp_pushes = 0;
	notify_cb = NULL;
	memset(stalled, 0, sizeof(stalled));
	manual_cycles = false;
	loop_timer_add(f->a.loop, CYCLE_PHASE_MS, on_fake_cycles, f->a.loop);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[512];

	publisher_fini(f->p);
	for (int i = 0; i < MQTT_LINKS; i++)
		for (int k = 0; k < f->l[i].npub; k++)
			free(f->l[i].pub[k].payload);
	for (int i = 0; i <= MQTT_LINKS; i++)
		outbox_msgs_free(f->o->m[i], f->o->n[i]);
	free(f->o);
	settings_fini(f->a.settings);
	loop_fini(f->a.loop);
	snprintf(path, sizeof(path), "%s/settings.json", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Let ms of virtual time pass, running every timer due in it. */
static void run_ms(struct fx *f, int ms)
{
	int64_t until = f->a.loop->now_ms + ms;

	while (loop_step(f->a.loop, until))
		;
	f->a.loop->now_ms = until;
}

/* Run timers one at a time until cond holds (a macro, so a timeout names the
 * caller's line): stops right after the timer that made it true. */
#define RUN_UNTIL_MS 20000
#define run_until(f, cond)                                                                         \
	do {                                                                                       \
		int64_t end_ = (f)->a.loop->now_ms + RUN_UNTIL_MS;                                 \
		while (!(cond) && loop_step((f)->a.loop, end_))                                    \
			;                                                                          \
		if (!(cond))                                                                       \
			fail_msg("no %s within %d virtual ms", #cond, RUN_UNTIL_MS);               \
	} while (0)

/* The REST document of slot, in the zone of f's settings. */
static char *rest(struct fx *f, int slot, bool counters)
{
	json_t *j = reading_json(NULL, f->a.settings, &devs[slot], counters);
	char *s = json_dumps(j, SG_JSON_FLAGS);

	json_decref(j);
	return s;
}

/* Acknowledge what was published from index from up to now. */
static void ack_all(struct fx *f, int n, int from)
{
	int to = f->l[n - 1].npub;

	for (int k = from; k < to; k++)
		if (f->l[n - 1].pub[k].mid > 0)
			publisher_acked(f->p, n, f->l[n - 1].pub[k].mid);
}

/* ---- tests ---- */

/* Per-device availability: told at once, again only on a change of health,
 * only for slots the link publishes; the state right after an announcement. */
static void test_device_availability(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];

	l->up = true;
	meter(DEV_SLOT_RS485(2), 230.5);
	meter(DEV_SLOT_RS485(3), 231.5); /* not pushed on any link */
	setting(f, "rs485_pushlnk2=1");
	setting(f, "rs485_pushint2=600");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	assert_int_equal(l->nav, 1);
	assert_string_equal(l->av_sub[0], "device/2/availability");
	assert_string_equal(l->av_payload[0], "online");
	assert_true(l->av_retain[0]);
	run_ms(f, 2100);
	assert_int_equal(l->nav, 1); /* unchanged: not repeated */
	devs[DEV_SLOT_RS485(2)].health = DEV_NOT_RESPONDING;
	run_ms(f, 1100);
	assert_int_equal(l->nav, 2);
	assert_string_equal(l->av_payload[1], "offline");
	devs[DEV_SLOT_RS485(2)].health = DEV_OK;
	run_ms(f, 1100);
	assert_int_equal(l->nav, 3);
	assert_string_equal(l->av_payload[2], "online");
	/* the interval is 10 min: no reading yet; an announcement sends it now */
	assert_int_equal(l->npub, 0);
	publisher_state_now(f->p, 1, false);
	assert_int_equal(l->npub, 2);
	assert_string_equal(l->pub[0].sub, "device/2/measurements");
	assert_string_equal(l->pub[1].sub, "device/2/counters");
	assert_int_equal(l->nav, 4); /* availability told again with it */
	/* the link has that reading: another announcement does not repeat it,
	 * HA's birth message (force) does */
	publisher_state_now(f->p, 1, false);
	assert_int_equal(l->npub, 2);
	publisher_state_now(f->p, 1, true);
	assert_int_equal(l->npub, 4);
	/* link 2 publishes nothing: told nothing */
	f->l[1].up = true;
	publisher_state_now(f->p, 2, true);
	assert_int_equal(f->l[1].npub, 0);
	assert_int_equal(f->l[1].nav, 0);
}

static void test_live(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	char *m, *c;

	f->l[0].up = true;
	meter(DEV_SLOT_RS485(2), 230.5);
	setting(f, "rs485_pushlnk2=1");
	setting(f, "rs485_pushint2=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1100);
	assert_int_equal(l->npub, 2);
	m = rest(f, DEV_SLOT_RS485(2), false);
	c = rest(f, DEV_SLOT_RS485(2), true);
	assert_string_equal(l->pub[0].sub, "device/2/measurements");
	assert_string_equal(l->pub[0].payload, m);
	assert_string_equal(l->pub[1].sub, "device/2/counters");
	assert_string_equal(l->pub[1].payload, c);
	assert_int_equal(l->pub[0].qos, 1);
	assert_false(l->pub[0].retain);
	assert_int_equal(f->l[1].npub, 0);
	assert_int_equal(f->o->n[1], 0);
	free(m);
	free(c);
}

static void test_outage_replay(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	char *first;

	meter(DEV_SLOT_LEFT_IR, 1);
	setting(f, "leftir_pushlink=3"); /* both links */
	setting(f, "leftir_pushintv=1");
	setting(f, "push2_protocol=2");	  /* link 2 is Standard TCP */
	f->m.tcp[1] = (struct stdtcp *)f; /* only passed to the fake stdtcp_push */
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	/* one push cycle: the pair buffered for link 1, one TCP push on link 2 */
	run_until(f, f->o->n[1] >= 2 && tcp_pushes >= 1);
	assert_int_equal(f->o->n[1], 2);
	assert_int_equal(tcp_pushes, 1);
	first = rest(f, DEV_SLOT_LEFT_IR, false);
	meter(DEV_SLOT_LEFT_IR, 2);
	run_until(f, f->o->n[1] >= 4 && tcp_pushes >= 2);
	assert_int_equal(l->npub, 0);
	assert_int_equal(f->o->n[1], 4);
	assert_int_equal(f->o->n[2], 0);
	assert_int_equal(tcp_pushes, 2);

	/* the broker returns: replay in order; live ones queue behind */
	l->up = true;
	publisher_link_up(f->p, 1);
	assert_int_equal(l->npub, 4);
	assert_string_equal(l->pub[0].payload, first);
	assert_string_equal(l->pub[0].sub, "device/0/measurements");
	assert_string_equal(l->pub[1].sub, "device/0/counters");
	meter(DEV_SLOT_LEFT_IR, 3);
	run_until(f, f->o->n[1] >= 6 || l->npub > 4);
	assert_int_equal(l->npub, 4); /* behind the replay */
	assert_int_equal(f->o->n[1], 6);
	ack_all(f, 1, 0);
	/* batch 1 deleted, batch 2 (the two made during the replay) sent */
	assert_int_equal(l->npub, 6);
	assert_int_equal(f->o->n[1], 2);
	ack_all(f, 1, 4);
	assert_int_equal(f->o->n[1], 0);
	/* live again */
	run_until(f, l->npub >= 8 || f->o->n[1] > 0);
	assert_int_equal(l->npub, 8);
	assert_int_equal(f->o->n[1], 0);
	free(first);
}

static void test_batches(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	char p[16];

	for (int i = 0; i < 250; i++) {
		snprintf(p, sizeof(p), "%d", i);
		outbox_push(f->o, 1, i, "device/0/measurements", p, strlen(p));
	}
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	l->up = true;
	publisher_link_up(f->p, 1);
	assert_int_equal(l->npub, 100);
	ack_all(f, 1, 0);
	assert_int_equal(l->npub, 200);
	assert_int_equal(f->o->n[1], 150);
	/* the link drops during batch 2; after the reconnect batch 2 comes again */
	ack_all(f, 1, 150); /* half of it acknowledged before the drop */
	l->up = false;
	l->up = true;
	publisher_link_up(f->p, 1);
	assert_int_equal(l->npub, 300);
	assert_string_equal(l->pub[200].payload, "100");
	ack_all(f, 1, 200);
	ack_all(f, 1, 300);
	assert_int_equal(f->o->n[1], 0);
	for (int i = 0; i < 250; i++) {
		snprintf(p, sizeof(p), "%d", i);
		assert_string_equal(l->pub[i < 100 ? i : i < 200 ? i : i + 100].payload, p);
	}
	assert_int_equal(l->npub, 350);
}

static void test_error_once(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];

	l->up = true;
	dev_reset(&devs[DEV_SLOT_RS485(5)], DEV_SLOT_RS485(5));
	devs[DEV_SLOT_RS485(5)].cls = CLASS_PQ;
	devs[DEV_SLOT_RS485(5)].health = DEV_NOT_RESPONDING;
	setting(f, "rs485_pushlnk5=1");
	setting(f, "rs485_pushint5=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 2100);
	assert_int_equal(l->npub, 1);
	assert_string_equal(l->pub[0].sub, "error");
	assert_string_equal(l->pub[0].payload,
			    "Error: RS485 5 Power-quality analyser not responding");
	meter(DEV_SLOT_RS485(5), 1);
	run_ms(f, 1000);
	assert_int_equal(l->npub, 3);
	devs[DEV_SLOT_RS485(5)].health = DEV_NOT_RESPONDING;
	run_ms(f, 1000);
	assert_int_equal(l->npub, 4);
	assert_string_equal(l->pub[3].sub, "error");
	assert_int_equal(f->o->n[1], 0);
}

/* The text of the manual (001 §4.7.2), capital E included. */
static void test_manual_error_text(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];

	l->up = true;
	meter(DEV_SLOT_LEFT_IR, 230.0);
	devs[DEV_SLOT_LEFT_IR].health = DEV_NOT_RESPONDING;
	setting(f, "leftir_pushlink=1");
	setting(f, "leftir_pushintv=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1100);
	assert_int_equal(l->npub, 1);
	assert_string_equal(l->pub[0].payload, "Error: Left IR Energy meter not responding");
}

/* A meter that answers with exceptions: its old reading is not published,
 * an error naming the failure is, once per transition, like "not responding". */
static void test_read_error_once(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	struct dev *d = &devs[DEV_SLOT_LEFT_IR];

	l->up = true;
	meter(DEV_SLOT_LEFT_IR, 111.1);
	d->health = DEV_READ_ERROR;
	snprintf(d->last_error, sizeof(d->last_error),
		 "exception 4 (slave device failure) on input 105–190");
	setting(f, "leftir_pushlink=1");
	setting(f, "leftir_pushintv=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 2100);
	assert_int_equal(l->npub, 1);
	assert_string_equal(l->pub[0].sub, "error");
	assert_string_equal(l->pub[0].payload,
			    "Error: Left IR Energy meter read error (exception 4 "
			    "(slave device failure) on input 105–190)");
	d->health = DEV_OK;
	run_ms(f, 1000);
	assert_int_equal(l->npub, 3); /* the reading again */
	assert_int_equal(f->o->n[1], 0);
}

static void test_bicom(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	struct dev *b = &devs[DEV_SLOT_RIGHT_IR], *r = &devs[DEV_SLOT_RS485(3)];

	b->cls = r->cls = CLASS_BICOM;
	b->health = r->health = DEV_OK;
	b->relay = 1;
	r->relay = 0;
	r->addr = 7;
	setting(f, "ir_relay_pushlink=1");
	setting(f, "ir_relay_pushintv=1");
	setting(f, "rs485_pushlnk3=1");
	setting(f, "rs485_pushint3=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1100); /* down: nothing, nothing buffered */
	assert_int_equal(f->o->n[1], 0);
	l->up = true;
	run_ms(f, 1000);
	assert_int_equal(l->npub, 2);
	assert_string_equal(l->pub[0].sub, "bicom/0/state");
	assert_string_equal(l->pub[0].payload, "ON");
	assert_true(l->pub[0].retain);
	assert_string_equal(l->pub[1].sub, "bicom/7/state");
	assert_string_equal(l->pub[1].payload, "OFF");
}

/* An unrelated settings change keeps the due time. */
static void test_keep_timer(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];

	l->up = true;
	meter(DEV_SLOT_LEFT_IR, 1);
	setting(f, "leftir_pushlink=1");
	setting(f, "leftir_pushintv=2");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1000);
	setting(f, "rs485_pushlnk1=1");
	publisher_configure(f->p);
	run_ms(f, 1100);
	assert_int_equal(l->npub, 2);
	setting(f, "leftir_pushlink=0");
	publisher_configure(f->p);
	run_ms(f, 2100);
	assert_int_equal(l->npub, 2);
}

/* No outbox, no links, no poll: nothing crashes. */
static void test_null(void **state)
{
	struct fx *f = *state;

	f->m.outbox = NULL;
	f->m.link[0] = NULL;
	setting(f, "leftir_pushlink=3");
	setting(f, "leftir_pushintv=1");
	meter(DEV_SLOT_LEFT_IR, 1);
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	publisher_link_up(f->p, 1);
	publisher_acked(f->p, 1, 5);
	run_ms(f, 1100);
	assert_int_equal(f->l[1].npub, 0);
	publisher_link_up(NULL, 1);
	publisher_configure(NULL);
}

/* ---- publish when fresh ---- */

/* A due push goes out the moment the device's poll cycle completes, with the
 * values that cycle read; cycles before the due time publish nothing. */
static void test_fresh_at_cycle(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	struct dev *d = &devs[DEV_SLOT_RS485(4)];
	char *m;

	manual_cycles = true;
	l->up = true;
	meter(DEV_SLOT_RS485(4), 230.0);
	setting(f, "rs485_pushlnk4=1");
	setting(f, "rs485_pushint4=2");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1000);
	cycle(DEV_SLOT_RS485(4)); /* not due yet */
	run_ms(f, 999);
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 0);
	run_ms(f, 1); /* due at 2 s: waits for the cycle */
	assert_int_equal(l->npub, 0);
	run_ms(f, 300);
	assert_int_equal(l->npub, 0);
	meter(DEV_SLOT_RS485(4), 240.0); /* what the cycle read */
	d->meas_ms = d->ctr_ms = 1700000000123;
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 2);
	m = rest(f, DEV_SLOT_RS485(4), false);
	assert_string_equal(l->pub[0].sub, "device/4/measurements");
	assert_string_equal(l->pub[0].payload, m);
	free(m);
	assert_non_null(strstr(l->pub[0].payload, "\"read_at_ms\":1700000000123"));
	/* once per due time: the next cycles wait for the next one (4 s) */
	cycle(DEV_SLOT_RS485(4));
	run_ms(f, 1000);
	cycle(DEV_SLOT_RS485(4));
	run_ms(f, 600); /* 3.9 s */
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 2);
	run_ms(f, 150); /* 4.05 s */
	assert_int_equal(l->npub, 2);
	d->health = DEV_READ_ERROR; /* a cycle that read with errors: the error, not the reading */
	snprintf(d->last_error, sizeof(d->last_error), "timeout on input 1");
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 3);
	assert_string_equal(l->pub[2].sub, "error");
	assert_string_equal(l->pub[2].payload,
			    "Error: RS485 4 Energy meter read error (timeout on input 1)");
}

/* A poller that tells a cycle's measurements before its counters: a due
 * measurements push goes out at the measurement update, the counters at the
 * same cycle's counter update (the Standard TCP pair with them); a due time
 * between the two waits for the next cycle, so a pair stays in order and from
 * one cycle. A Bicom's state goes with its measurement update. */
static void test_parts_at_their_updates(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	struct dev *d = &devs[DEV_SLOT_RS485(4)], *b = &devs[DEV_SLOT_RIGHT_IR];
	char *m, *c;

	manual_cycles = true;
	l->up = true;
	meter(DEV_SLOT_RS485(4), 230.0);
	b->cls = CLASS_BICOM;
	b->health = DEV_OK;
	b->relay = 1;
	setting(f, "rs485_pushlnk4=3");
	setting(f, "rs485_pushint4=1");
	setting(f, "ir_relay_pushlink=1");
	setting(f, "ir_relay_pushintv=1");
	setting(f, "push2_protocol=2");	  /* link 2 is Standard TCP */
	f->m.tcp[1] = (struct stdtcp *)f; /* only passed to the fake stdtcp_push */
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1000); /* due */
	/* the Bicom: its state at its measurement update */
	b->upd = DEV_UPD_MEAS;
	cycle(DEV_SLOT_RIGHT_IR);
	assert_int_equal(l->npub, 1);
	assert_string_equal(l->pub[0].sub, "bicom/0/state");
	meter(DEV_SLOT_RS485(4), 240.0);
	d->meas_ms = 1700000000100;
	d->ctr_ms = 1699999999000; /* the counters of the previous cycle */
	d->upd = DEV_UPD_MEAS;
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 2);
	m = rest(f, DEV_SLOT_RS485(4), false);
	assert_string_equal(l->pub[1].sub, "device/4/measurements");
	assert_string_equal(l->pub[1].payload, m);
	free(m);
	assert_int_equal(tcp_pushes, 0);
	cycle(DEV_SLOT_RS485(4)); /* told again (its counters failed): once is enough */
	assert_int_equal(l->npub, 2);
	d->ctr_ms = 1700000000150;
	d->ctr[0] = 42;
	d->upd = DEV_UPD_CTR;
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 3);
	c = rest(f, DEV_SLOT_RS485(4), true);
	assert_string_equal(l->pub[2].sub, "device/4/counters");
	assert_string_equal(l->pub[2].payload, c);
	free(c);
	assert_int_equal(tcp_pushes, 1);
	cycle(DEV_SLOT_RS485(4)); /* answered: nothing more until the next due time */
	assert_int_equal(l->npub, 3);

	/* due between a measurement update and its counter update */
	run_ms(f, 1000);
	d->upd = DEV_UPD_CTR;
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 3);
	d->upd = DEV_UPD_MEAS;
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 4);
	assert_string_equal(l->pub[3].sub, "device/4/measurements");
	d->upd = DEV_UPD_CTR;
	cycle(DEV_SLOT_RS485(4));
	assert_int_equal(l->npub, 5);
	assert_string_equal(l->pub[4].sub, "device/4/counters");
	assert_int_equal(tcp_pushes, 2);
	assert_int_equal(f->o->n[1], 0);
}

/* With the fake poller's cycles every second, a 5 s push goes out at the
 * first cycle after each due time, and only then. */
static void test_not_before_due(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];

	l->up = true;
	meter(DEV_SLOT_LEFT_IR, 230.0);
	setting(f, "leftir_pushlink=1");
	setting(f, "leftir_pushintv=5");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 5000 + CYCLE_PHASE_MS - 1);
	assert_int_equal(l->npub, 0);
	run_ms(f, 1);
	assert_int_equal(l->npub, 2);
	run_ms(f, 5000 - 1);
	assert_int_equal(l->npub, 2);
	run_ms(f, 1);
	assert_int_equal(l->npub, 4);
	assert_int_equal(f->o->n[1], 0);
}

/* A device whose cycles never complete: not responding, its error at the due
 * time; ok but stalled, its reading at the next due time (a whole interval
 * without a cycle), as on every tick before, and fresh again once a cycle
 * completes. */
static void test_cycle_never_completes(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];

	l->up = true;
	meter(DEV_SLOT_RS485(1), 230.0);
	stalled[DEV_SLOT_RS485(1)] = true;
	dev_reset(&devs[DEV_SLOT_RS485(2)], DEV_SLOT_RS485(2));
	devs[DEV_SLOT_RS485(2)].cls = CLASS_METER;
	devs[DEV_SLOT_RS485(2)].health = DEV_NOT_RESPONDING;
	setting(f, "rs485_pushlnk1=1");
	setting(f, "rs485_pushint1=1");
	setting(f, "rs485_pushlnk2=1");
	setting(f, "rs485_pushint2=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	run_ms(f, 1000);
	assert_int_equal(l->npub, 1); /* the error, at the due time */
	assert_string_equal(l->pub[0].payload, "Error: RS485 2 Energy meter not responding");
	run_ms(f, 999);
	assert_int_equal(l->npub, 1); /* slot 1 still waits for its cycle */
	run_ms(f, 1);
	assert_int_equal(l->npub, 3); /* 2 s: no cycle for a whole interval */
	assert_string_equal(l->pub[1].sub, "device/1/measurements");
	run_ms(f, 1000);
	assert_int_equal(l->npub, 5);
	stalled[DEV_SLOT_RS485(1)] = false;
	run_ms(f, CYCLE_PHASE_MS);
	assert_int_equal(l->npub, 7); /* still due: the completed cycle publishes */
	run_ms(f, 1000);
	assert_int_equal(l->npub, 9);
	assert_string_equal(l->pub[8].sub, "device/1/counters");
	assert_int_equal(f->o->n[1], 0);
}

/* A replay the link refuses half way (its queue full, still connected)
 * pauses with its rows kept; what is published next queues behind them, and
 * the broker gets everything, each in the order it was made. */
static void test_paused_replay_order(void **state)
{
	struct fx *f = *state;
	struct mqtt_link *l = &f->l[0];
	char p[16];
	int k;

	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "old%d", i);
		outbox_push(f->o, 1, i, "device/0/measurements", p, strlen(p));
	}
	manual_cycles = true;
	meter(DEV_SLOT_LEFT_IR, 230.0);
	setting(f, "leftir_pushlink=1");
	setting(f, "leftir_pushintv=1");
	assert_int_equal(publisher_init(&f->m, &f->p), 0);
	l->up = true;
	l->refuse_at = 3;
	publisher_link_up(f->p, 1); /* old0…old2 go, old3 is refused: paused */
	assert_int_equal(l->npub, 3);
	assert_int_equal(f->o->n[1], 5);
	l->refuse_at = 0;
	run_ms(f, 1000);
	cycle(DEV_SLOT_LEFT_IR); /* a live reading while the rows wait */
	ack_all(f, 1, 0);
	run_ms(f, 1000);
	cycle(DEV_SLOT_LEFT_IR);
	for (k = 0; k < 4 && f->o->n[1]; k++) /* each acknowledged batch sends the next */
		ack_all(f, 1, 0);
	assert_int_equal(f->o->n[1], 0);
	/* after the pause: old0…old4, then the two readings, each pair in order */
	assert_int_equal(l->npub, 3 + 5 + 4);
	for (k = 0; k < 5; k++) {
		snprintf(p, sizeof(p), "old%d", k);
		assert_string_equal(l->pub[3 + k].payload, p);
	}
	assert_string_equal(l->pub[8].sub, "device/0/measurements");
	assert_string_equal(l->pub[9].sub, "device/0/counters");
	assert_string_equal(l->pub[10].sub, "device/0/measurements");
	assert_string_equal(l->pub[11].sub, "device/0/counters");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_device_availability, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outage_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_error_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_manual_error_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bicom, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fresh_at_cycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_before_due, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parts_at_their_updates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cycle_never_completes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paused_replay_order, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
