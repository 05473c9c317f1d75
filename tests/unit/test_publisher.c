/* Publisher (src/mqtt/publisher.c) against fake links, an in-memory outbox
 * and fake devices, driven by the real loop and settings: live publications
 * equal the REST JSON; while a link is down they are buffered and replayed in
 * order in batches of 100 once acknowledged; publications made during a
 * replay queue behind it; not-responding errors once per transition; Bicom
 * states retained and never buffered; timers kept across unrelated settings
 * changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/mqtt/mqtt_int.h"
#include "sg/clock.h"
#include "sg/dev.h"
#include "sg/hist.h"
#include "sg/loop.h"
#include "sg/poll.h"
#include "sg/reading.h"
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

const struct dev *poll_dev(const struct poll *p, int slot)
{
	(void)p;
	return &devs[slot];
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
	struct app a;
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
	f->a.poll = (struct poll *)f; /* only passed to the fake poll_dev */
	f->o = calloc(1, sizeof(*f->o));
	f->m.app = &f->a;
	f->m.outbox = f->o;
	for (int i = 0; i < MQTT_LINKS; i++) {
		f->l[i].n = i + 1;
		f->m.link[i] = &f->l[i];
	}
	memset(devs, 0, sizeof(devs));
	for (int i = 0; i < DEV_SLOTS; i++)
		dev_reset(&devs[i], i);
	tcp_pushes = 0;
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

static void on_quit(void *arg)
{
	loop_quit(arg);
}

static void run_ms(struct fx *f, int ms)
{
	loop_timer_add(f->a.loop, ms, on_quit, f->a.loop);
	assert_int_equal(loop_run(f->a.loop), 0);
}

/* Run the loop in short pumps until cond holds (a macro, so a timeout names
 * the caller's line): waits for what the push timers do, not for a span of
 * real time, so a stalled machine neither misses nor adds a cycle. Each
 * timer re-arms itself a full interval after it ran, so a pump sees at most
 * one cycle of it. */
#define RUN_UNTIL_MS 20000
#define run_until(f, cond)                                                                         \
	do {                                                                                       \
		int64_t end_ = clock_mono_ms() + RUN_UNTIL_MS;                                     \
		while (!(cond) && clock_mono_ms() < end_)                                          \
			run_ms(f, 5);                                                              \
		if (!(cond))                                                                       \
			fail_msg("no %s within %d ms", #cond, RUN_UNTIL_MS);                       \
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
