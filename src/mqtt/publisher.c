/* Periodic publications (R-A1…A3, R-C4) and the disk-buffer replay.
 *
 * Each slot has a push-link mask (0 none, 1 link 1, 2 link 2, 3 both) and an
 * interval: leftir_pushlink/intv (slot 0), ir_relay_pushlink/intv (slot 1,
 * the Right IR Bicom), rs485_pushlnkN/pushintN (slot 1+N). One loop timer per
 * slot fires every interval. Publish when fresh: once the interval has passed,
 * a device that is ok is published at its next poll cycle's updates (the
 * registry's notifications): the measurements when the cycle's measurement
 * part is read, the counters when its counter part is (both at once when the
 * cycle tells one update), so a reading reaches the broker milliseconds after
 * it was read instead of waiting for the next tick or for the counter
 * reads. A device that is not ok has no cycle to wait for: its error is said
 * at the due time, as before; and a due time that no completed cycle answered by the next one is
 * published then with what there is (a device polled less often than it is
 * pushed still gets one push per interval). At each publication every link
 * of the mask gets:
 *
 *   meter / PQ analyser with a reading   device/<index>/measurements and
 *                                        device/<index>/counters, the REST
 *                                        documents byte for byte (QoS 1)
 *                                        — or one XML push per document pair
 *                                        on a Standard TCP link
 *   Bicom with a known relay state       bicom/<addr>/state "ON"/"OFF"
 *                                        (QoS 1, retained, never buffered)
 *   device not responding                error "Error: <ifname> <class>
 *                                        not responding", once per transition,
 *                                        only while connected
 *   device read error (answers, but      error "Error: <ifname> <class> read
 *   its reads fail)                      error (<last error>)", the same way
 *
 * Ordering and the buffer: a reading goes straight to the broker only while
 * the link is connected, its buffer is empty and no replay runs; otherwise it
 * is appended to the outbox (with the time it was made; the payload carries
 * its own read time), so nothing made while the broker is away is lost and
 * order holds. When a link comes up its outbox is replayed in batches of 100:
 * a batch is deleted once the broker has acknowledged every message of it,
 * then the next one, until the outbox is empty and live publishing resumes.
 * Delivery is at least once: if the link drops in the middle of a batch, the
 * whole batch is sent again after the reconnect, so a message may arrive
 * twice. */
#include "mqtt_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg/clock.h"
#include "sg/dev.h"
#include "sg/log.h"
#include "sg/poll.h"
#include "sg/reading.h"

#define BATCH 100
#define AVAIL_CHECK_MS 1000 /* how often device health is compared with what links were told */

/* Per-device availability last told to a link. */
enum avail { AV_UNSENT = 0, AV_ONLINE, AV_OFFLINE };

struct pslot {
	struct publisher *p;
	int idx;    /* slot 0 … DEV_SLOTS-1 */
	int links;  /* bit 0 link 1, bit 1 link 2 */
	int intv_s; /* interval the timer runs at */
	int64_t timer;
	bool due;	/* the interval passed: publish at the next poll cycle's updates */
	bool meas_sent; /* …and the measurements went out at that cycle's measurement
			 * update: the counters follow at its counter update */
	bool down;	/* not responding at the last due time */
	bool err_sent[MQTT_LINKS];
};

/* The batch of the outbox being replayed on one link. */
struct replay {
	bool active;
	int mids[BATCH]; /* message ids still waiting for PUBACK; 0 = acknowledged */
	unsigned n, pending;
	int64_t last_id;
};

struct publisher {
	struct mqtt *m;
	struct pslot slot[DEV_SLOTS];
	struct replay rp[MQTT_LINKS];
	enum avail avail[MQTT_LINKS][DEV_SLOTS];
	int64_t sent_ms[MQTT_LINKS][DEV_SLOTS]; /* read time of the last reading handed to a link */
	int64_t avail_timer;
	bool on_tick; /* bench reference only: publish at the due time, never wait for a cycle */
};

static struct loop *loop_of(const struct publisher *p)
{
	return p->m ? p->m->env.loop : NULL;
}

static const struct settings *settings_of(const struct publisher *p)
{
	return p->m ? p->m->env.settings : NULL;
}

static struct mqtt_link *link_of(const struct publisher *p, int n)
{
	return p->m ? p->m->link[n - 1] : NULL;
}

static struct outbox *outbox_of(const struct publisher *p)
{
	return p->m ? p->m->outbox : NULL;
}

static int protocol_of(const struct publisher *p, int n)
{
	const struct settings *s = settings_of(p);
	char key[32];

	snprintf(key, sizeof(key), "push%d_protocol", n);
	return s ? (int)settings_int(s, key) : PROTO_NONE;
}

/* ---- replay ---- */

static void replay_reset(struct replay *r)
{
	memset(r, 0, sizeof(*r));
}

/* Publish one batch; false when it could not (link down, nothing left). */
static bool replay_batch(struct publisher *p, int n)
{
	struct replay *r = &p->rp[n - 1];
	struct mqtt_link *l = link_of(p, n);
	struct outbox_msg v[BATCH];
	unsigned cnt = 0;

	if (!l || outbox_peek(outbox_of(p), n, BATCH, v, &cnt) < 0 || !cnt)
		return false;
	r->n = r->pending = 0;
	for (unsigned i = 0; i < cnt; i++) {
		int mid = link_publish(l, v[i].subtopic, v[i].payload, v[i].len, 1, false);

		if (mid < 0) {
			/* The rows stay: the next link_up sends them again. */
			log_info("MQTT link %d: replay paused: %s", n, strerror(-mid));
			outbox_msgs_free(v, cnt);
			return false;
		}
		r->mids[r->n++] = mid;
		r->pending += mid > 0;
	}
	r->last_id = v[cnt - 1].id;
	outbox_msgs_free(v, cnt);
	return true;
}

/* Send batches until one waits for acknowledgements or the outbox is empty. */
static void replay_run(struct publisher *p, int n)
{
	struct replay *r = &p->rp[n - 1];

	while (r->active) {
		if (!replay_batch(p, n)) {
			replay_reset(r);
			return;
		}
		if (r->pending)
			return;
		outbox_delete_upto(outbox_of(p), n, r->last_id);
	}
}

void publisher_link_up(struct publisher *p, int n)
{
	if (!p || n < 1 || n > MQTT_LINKS)
		return;
	/* A new session: say every device's availability again. */
	memset(p->avail[n - 1], 0, sizeof(p->avail[n - 1]));
	if (!outbox_of(p))
		return;
	/* A batch of an earlier connection is forgotten: its rows are still there. */
	replay_reset(&p->rp[n - 1]);
	if (!outbox_count(outbox_of(p), n))
		return;
	log_info("MQTT link %d: replaying %u buffered message(s)", n,
		 outbox_count(outbox_of(p), n));
	p->rp[n - 1].active = true;
	replay_run(p, n);
}

void publisher_acked(struct publisher *p, int n, int mid)
{
	struct replay *r;

	if (!p || n < 1 || n > MQTT_LINKS || mid <= 0)
		return;
	r = &p->rp[n - 1];
	for (unsigned i = 0; r->active && i < r->n; i++) {
		if (r->mids[i] != mid)
			continue;
		r->mids[i] = 0;
		if (--r->pending == 0) {
			outbox_delete_upto(outbox_of(p), n, r->last_id);
			replay_run(p, n);
		}
		return;
	}
}

/* ---- delivery ---- */

static void buffer_msg(struct publisher *p, int n, const char *sub, const char *payload)
{
	int r = outbox_push(outbox_of(p), n, clock_wall_ms(), sub, payload, strlen(payload));

	if (r < 0)
		log_errno(LOG_WARNING, -r, "MQTT link %d: cannot buffer %s", n, sub);
}

/* Live when nothing older is waiting, else behind the buffered ones. */
static void deliver(struct publisher *p, int n, const char *sub, const char *payload)
{
	struct mqtt_link *l = link_of(p, n);
	struct outbox *o = outbox_of(p);
	bool up = l && link_connected(l), replaying = p->rp[n - 1].active;

	if (!l)
		return;
	if (up && !replaying && (!o || !outbox_count(o, n)) &&
	    link_publish(l, sub, payload, strlen(payload), 1, false) >= 0)
		return;
	if (!o)
		return; /* no buffer (no state dir): lost, as on the hardware gateway */
	buffer_msg(p, n, sub, payload);
	/* Rows left over by a paused replay must not block live publishing. */
	if (up && !replaying)
		publisher_link_up(p, n);
}

static bool readable(const struct dev *d)
{
	return d->health == DEV_OK && d->d && d->meas_ms != 0;
}

static char *render(struct publisher *p, const struct dev *d, bool counters)
{
	json_t *j = reading_json(p->m ? p->m->env.hist : NULL, settings_of(p), d, counters);
	char *s = j ? json_dumps(j, SG_JSON_FLAGS) : NULL;

	json_decref(j);
	return s;
}

/* What a publication carries: the measurements (with a Bicom's relay state),
 * the counters (with the Standard TCP pair), or both. */
enum part { PART_MEAS = 1, PART_CTR = 2, PART_ALL = 3 };

static void publish_reading(struct publisher *p, const struct pslot *s, const struct dev *d,
			    enum part parts)
{
	char *meas = NULL, *ctr = NULL, sm[48], sc[48];
	int idx = dev_ha_index(s->idx);

	snprintf(sm, sizeof(sm), "device/%d/measurements", idx);
	snprintf(sc, sizeof(sc), "device/%d/counters", idx);
	for (int n = 1; n <= MQTT_LINKS; n++) {
		int proto = s->links & (1 << (n - 1)) ? protocol_of(p, n) : PROTO_NONE;

		/* one XML document pair: once per cycle, when it is complete */
		if (proto == PROTO_STDTCP && p->m->tcp[n - 1] && (parts & PART_CTR))
			stdtcp_push(p->m->tcp[n - 1], d);
		if (proto != PROTO_MQTT)
			continue;
		if (!meas && (parts & PART_MEAS))
			meas = render(p, d, false);
		if (!ctr && (parts & PART_CTR))
			ctr = render(p, d, true);
		if ((meas || !(parts & PART_MEAS)) && (ctr || !(parts & PART_CTR))) {
			if (meas) {
				deliver(p, n, sm, meas);
				p->sent_ms[n - 1][s->idx] = d->meas_ms;
			}
			if (ctr)
				deliver(p, n, sc, ctr);
		}
	}
	free(meas);
	free(ctr);
}

/* A state, not history: only to a connected link, retained. */
static void publish_bicom(struct publisher *p, const struct pslot *s, const struct dev *d)
{
	const char *state = d->relay ? "ON" : "OFF";
	char sub[32];

	if (d->relay < 0)
		return;
	snprintf(sub, sizeof(sub), "bicom/%d/state", s->idx == DEV_SLOT_RIGHT_IR ? 0 : d->addr);
	for (int n = 1; n <= MQTT_LINKS; n++) {
		struct mqtt_link *l = link_of(p, n);

		if ((s->links & (1 << (n - 1))) && protocol_of(p, n) == PROTO_MQTT && l &&
		    link_connected(l))
			link_publish(l, sub, state, strlen(state), 1, true);
	}
}

/* Once per transition into "not responding" or "read error", per link, when
 * it can be said. */
static void report_down(struct publisher *p, struct pslot *s, const struct dev *d)
{
	char text[256];

	if (d->health == DEV_READ_ERROR)
		snprintf(text, sizeof(text), "Error: %s %s read error (%s)", d->ifname,
			 dev_class_name(d->cls), d->last_error);
	else
		snprintf(text, sizeof(text), "Error: %s %s not responding", d->ifname,
			 dev_class_name(d->cls));
	if (!s->down)
		log_warn("push: %s", text + strlen("Error: "));
	s->down = true;
	for (int n = 1; n <= MQTT_LINKS; n++) {
		struct mqtt_link *l = link_of(p, n);

		if (!(s->links & (1 << (n - 1))) || s->err_sent[n - 1] ||
		    protocol_of(p, n) != PROTO_MQTT || !l || !link_connected(l))
			continue;
		if (link_publish(l, SUB_ERROR, text, strlen(text), 1, false) >= 0)
			s->err_sent[n - 1] = true;
	}
}

static void publish_slot(struct publisher *p, struct pslot *s, enum part parts)
{
	const struct dev *d = reg_dev(p->m->env.reg, s->idx);

	if (!d || d->health == DEV_DISABLED)
		return;
	if (d->health == DEV_NOT_RESPONDING || d->health == DEV_READ_ERROR) {
		report_down(p, s, d);
		return;
	}
	/* Identifying or no reading yet: nothing to say (not an error). */
	if (d->health != DEV_OK)
		return;
	s->down = false;
	memset(s->err_sent, 0, sizeof(s->err_sent));
	if (d->cls == CLASS_BICOM) {
		if (parts & PART_MEAS) /* the relay is read with the measurements */
			publish_bicom(p, s, d);
	} else if ((d->cls == CLASS_METER || d->cls == CLASS_PQ) && readable(d)) {
		publish_reading(p, s, d, parts);
	}
}

/* ---- per-device availability ---- */

static bool link_is_mqtt_up(const struct publisher *p, int n)
{
	struct mqtt_link *l = link_of(p, n);

	return l && protocol_of(p, n) == PROTO_MQTT && link_connected(l);
}

/* Tell link n whether slot's device is ok, when that changed since it was
 * last told (retained, so HA learns it whenever it subscribes). Health the
 * poller calls ok is the only "online"; anything else (not responding,
 * identifying, unknown model) is "offline". */
static void avail_update(struct publisher *p, int n, int idx, bool force)
{
	const struct dev *d = reg_dev(p->m->env.reg, idx);
	enum avail want, *sent = &p->avail[n - 1][idx];
	char sub[64];
	const char *txt;

	if (!d || !d->d || d->health == DEV_DISABLED || !(p->slot[idx].links & (1 << (n - 1))) ||
	    mqtt_avail_sub(d, sub, sizeof(sub)) < 0)
		return;
	want = d->health == DEV_OK ? AV_ONLINE : AV_OFFLINE;
	if (*sent == want && !force)
		return;
	txt = want == AV_ONLINE ? "online" : "offline";
	if (link_publish(link_of(p, n), sub, txt, strlen(txt), 1, true) >= 0)
		*sent = want;
}

static void avail_check_all(struct publisher *p)
{
	for (int n = 1; n <= MQTT_LINKS; n++) {
		if (!link_is_mqtt_up(p, n))
			continue;
		for (int i = 0; i < DEV_SLOTS; i++)
			avail_update(p, n, i, false);
	}
}

static void on_avail_timer(void *arg)
{
	struct publisher *p = arg;
	int64_t id = loop_timer_add(loop_of(p), AVAIL_CHECK_MS, on_avail_timer, p);

	p->avail_timer = id > 0 ? id : 0;
	avail_check_all(p);
}

void publisher_state_now(struct publisher *p, int n, bool force)
{
	if (!p || n < 1 || n > MQTT_LINKS || !p->m->env.reg || !link_is_mqtt_up(p, n))
		return;
	for (int i = 0; i < DEV_SLOTS; i++) {
		struct pslot one = p->slot[i];
		const struct dev *d = reg_dev(p->m->env.reg, i);

		if (!(one.links & (1 << (n - 1))))
			continue;
		avail_update(p, n, i, true);
		/* Bicom states are retained and sent with the announcement. */
		if (!d->d || d->health != DEV_OK || (d->cls != CLASS_METER && d->cls != CLASS_PQ) ||
		    !readable(d))
			continue;
		/* Announcements come in bursts (each newly identified device, a
		 * reconnect): a reading the link already has is not sent again,
		 * except for HA's birth message (HA lost what it had). */
		if (!force && p->sent_ms[n - 1][i] == d->meas_ms)
			continue;
		/* This link only: a copy of the slot with just its bit. */
		one.links = 1 << (n - 1);
		publish_reading(p, &one, d, PART_ALL);
	}
}

int publisher_links(const struct publisher *p, int slot)
{
	return p && slot >= 0 && slot < DEV_SLOTS ? p->slot[slot].links : 0;
}

/* ---- schedule ---- */

static void on_due(void *arg);

/* An update of d (a poll cycle, a part of one, or a change of health): a slot
 * that is due publishes now what the update brought. The measurements go out
 * at a cycle's measurement update, the counters at the same cycle's counter
 * update (or both at a whole-cycle update), so each document is published
 * the moment its values are read and a pair comes from one cycle, in order.
 * A device no longer ok says so at once. */
static void on_cycle(const struct dev *d, void *arg)
{
	struct publisher *p = arg;
	struct pslot *s;
	enum part parts = PART_ALL;

	if (!d || d->slot < 0 || d->slot >= DEV_SLOTS)
		return;
	s = &p->slot[d->slot];
	if (!s->due || !s->links)
		return;
	if (d->health == DEV_OK && d->upd == DEV_UPD_MEAS) {
		/* already sent for this due time (that cycle's counters failed):
		 * the counters are what is missing */
		if (s->meas_sent)
			return;
		s->meas_sent = true;
		publish_slot(p, s, PART_MEAS);
		return;
	}
	/* due since that cycle's measurement update: the next cycle answers */
	if (d->health == DEV_OK && d->upd == DEV_UPD_CTR && !s->meas_sent)
		return;
	if (s->meas_sent)
		parts = PART_CTR;
	s->due = s->meas_sent = false;
	publish_slot(p, s, parts);
}

static void arm(struct publisher *p, struct pslot *s)
{
	int64_t id = loop_timer_add(loop_of(p), (int64_t)s->intv_s * 1000, on_due, s);

	s->timer = id > 0 ? id : 0;
}

static void disarm(struct publisher *p, struct pslot *s)
{
	if (s->timer > 0 && loop_of(p))
		loop_timer_cancel(loop_of(p), s->timer);
	s->timer = 0;
	s->due = s->meas_sent = false;
}

static void on_due(void *arg)
{
	struct pslot *s = arg;
	struct publisher *p = s->p;
	const struct dev *d = reg_dev(p->m->env.reg, s->idx);

	s->timer = 0;
	arm(p, s); /* first, so the period does not stretch by the publishing time */
	/* Not ok (its error now), or a whole interval without a completed cycle
	 * (what there is, and still due for the next cycle): at the tick. */
	if (p->on_tick || !d || d->health != DEV_OK || s->due) {
		publish_slot(p, s, s->meas_sent ? PART_CTR : PART_ALL);
		s->meas_sent = false;
		return;
	}
	s->due = true;
}

static void slot_keys(int idx, char *lk, char *ik, size_t len)
{
	if (idx == DEV_SLOT_LEFT_IR) {
		snprintf(lk, len, "leftir_pushlink");
		snprintf(ik, len, "leftir_pushintv");
	} else if (idx == DEV_SLOT_RIGHT_IR) {
		snprintf(lk, len, "ir_relay_pushlink");
		snprintf(ik, len, "ir_relay_pushintv");
	} else {
		snprintf(lk, len, "rs485_pushlnk%d", idx - 1);
		snprintf(ik, len, "rs485_pushint%d", idx - 1);
	}
}

void publisher_configure(struct publisher *p)
{
	const struct settings *st;
	char lk[32], ik[32];

	if (!p)
		return;
	st = settings_of(p);
	for (int i = 0; i < DEV_SLOTS; i++) {
		struct pslot *s = &p->slot[i];
		int links = 0, intv = 0;

		if (st) {
			slot_keys(i, lk, ik, sizeof(lk));
			links = (int)settings_int(st, lk);
			intv = (int)settings_int(st, ik);
		}
		s->links = links;
		if (!links || !loop_of(p)) {
			disarm(p, s);
			continue;
		}
		/* An unrelated settings change must not delay this slot's next publication. */
		if (s->timer > 0 && s->intv_s == intv)
			continue;
		disarm(p, s);
		s->intv_s = intv;
		arm(p, s);
	}
}

/* The reference of bench/mqtt.py: the behaviour before publish-when-fresh,
 * selected by SGD_TEST_PUSH_ON_TICK=1 only when sgd runs with
 * SGD_TEST_HOOKS=1. */
static bool bench_on_tick(void)
{
	const char *hooks = getenv("SGD_TEST_HOOKS"), *v = getenv("SGD_TEST_PUSH_ON_TICK");

	return hooks && !strcmp(hooks, "1") && v && !strcmp(v, "1");
}

int publisher_init(struct mqtt *m, struct publisher **out)
{
	struct publisher *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->m = m;
	for (int i = 0; i < DEV_SLOTS; i++) {
		p->slot[i].p = p;
		p->slot[i].idx = i;
	}
	p->on_tick = bench_on_tick();
	if (m->env.reg && (r = reg_subscribe(m->env.reg, on_cycle, p)) < 0) {
		free(p);
		return r;
	}
	publisher_configure(p);
	if (loop_of(p))
		on_avail_timer(p);
	*out = p;
	return 0;
}

void publisher_fini(struct publisher *p)
{
	if (!p)
		return;
	if (p->m && p->m->env.reg)
		reg_unsubscribe(p->m->env.reg, on_cycle, p);
	for (int i = 0; i < DEV_SLOTS; i++)
		disarm(p, &p->slot[i]);
	if (p->avail_timer > 0 && loop_of(p))
		loop_timer_cancel(loop_of(p), p->avail_timer);
	free(p);
}
