/* Iskra MiSmart "Standard TCP" push (R-C5): the alternative protocol of a push
 * link (push<n>_protocol = 2). Each due publication of a device becomes one
 * XML document sent over its own short TCP connection to mqtt<n>_server :
 * mqtt<n>_port (the same server/port fields the web UI shows for MQTT):
 *
 *   connect → write the whole document → wait for the server's answer.
 *
 * The answer is any bytes followed by EOF, or the first line (up to 4 KiB);
 * bytes without either by the deadline count too. Its content is not
 * interpreted. Connecting and waiting for the answer are each bounded by
 * push<n>_resp_time seconds. The gateway never half-closes
 * (some servers drop a half-closed connection); a server finds the end of the
 * document at the closing </push> tag. A failed push is not retried: Standard
 * TCP carries periodic readings and the next interval brings a fresh one.
 * Pushes due while one is in flight wait in a queue of 64 documents; beyond
 * that the oldest is dropped (counted and logged).
 *
 * The document (UTF-8, one device per document):
 *
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   <push gateway="SG000123" model="SG-E1" time="2026-11-21T10:00:00Z">
 *    <device index="0" interface="Left IR" model="IE38" serial="12345678"
 *            address="33" description="Main feeder" status="ok"
 *            read="2026-11-21T09:59:59.123Z" counters_read="2026-11-21T09:59:58.870Z">
 *     <m name="U" phase="1" unit="V">231.1</m>
 *     <m name="PF" phase="0" unit="" load="cap">0.9321</m>
 *     <m name="U" phase="12" unit="V">400.2</m>
 *     <m name="Frequency" unit="Hz">49.98</m>
 *     <m name="Tariff">1</m>
 *     <c name="Counter 1 NR" unit="Wh" direction="import" resettable="0">123456.7</c>
 *    </device>
 *   </push>
 *
 * - push: gateway = serial number, model = model type, time = when the
 *   document was made (UTC).
 * - device: index is the REST/HA device index (0 Left IR, 1…16 RS485);
 *   address the Modbus address; status the device health ("ok", …); read and
 *   counters_read the wall-clock times (UTC, milliseconds) of the
 *   measurement and counter reads (absent when never read).
 * - m: one per quantity of the REST measurements document, in its order:
 *   per-phase values (phase 1…3), totals (phase "0"), phase-to-phase voltages
 *   (phase "12", "23", "31"), then the values without a phase (Frequency,
 *   Temperature, Tariff). unit as in REST ("" for PF); load ("ind"/"cap")
 *   only on power factors.
 * - c: one per counter of the REST counters document: non-resettable first,
 *   then resettable; unit "Wh"/"varh"/"VAh", direction
 *   "import"/"export"/"bidirectional".
 * - Numbers have up to 15 significant digits and a '.' decimal point whatever
 *   the locale; every text and attribute value escapes & < > " '.
 *
 * The XML is rendered from dev_reading_json(), the document REST serves, so
 * the two cannot disagree.
 *
 * Status (stdtcp_status): "Disabled"; "Waiting for the first push";
 * "Connecting" (first push in flight); "Connected (last push OK at
 * <UTC time>)"; "Error: <reason>" with reason one of "no server configured",
 * "resolve <host>: <why>", "connect: <strerror>", "write: <strerror>",
 * "no answer within N s", "connection closed without an answer",
 * "read: <strerror>", "out of memory". */
#include "mqtt_int.h"

#include <errno.h>
#include <locale.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/dev.h"
#include "sg/log.h"
#include "sg/resolve.h"

#define QUEUE_MAX 64
#define ANSWER_MAX 4096
#define STATUS_LEN 256
#define HOST_MAX 256

#define ST_DISABLED "Disabled"
#define ST_WAITING "Waiting for the first push"
#define ST_CONNECTING "Connecting"

enum phase { PH_IDLE, PH_RESOLVE, PH_CONNECT, PH_WRITE, PH_READ };

struct stdtcp {
	struct mqtt *m;
	int n;

	/* settings in force */
	bool enabled;
	char host[HOST_MAX];
	int port;
	int resp_s;

	/* documents waiting: a ring */
	char *q[QUEUE_MAX];
	unsigned qhead, qlen;
	uint64_t dropped;

	/* the push in flight */
	enum phase ph;
	char *doc;
	size_t len, off;
	int fd;
	int64_t timer;
	struct resolve *lookup;	    /* the name lookup of the push in flight */
	struct addrinfo *ai, *next; /* addresses of the server; next to try */
	int last_err;
	char ans[ANSWER_MAX];
	size_t alen;

	bool have_result; /* a push has finished since the link was enabled */
	char status[STATUS_LEN];
	char logged[STATUS_LEN]; /* last failure logged: a dead server must not flood the log */
};

static struct loop *loop_of(const struct stdtcp *t)
{
	return t->m ? t->m->env.loop : NULL;
}

static struct settings *settings_of(const struct stdtcp *t)
{
	return t->m ? t->m->env.settings : NULL;
}

/* ---- XML ---- */

static void put_esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c == '\'')
			fputs("&apos;", f);
		else if (c == '\t' || c == '\n' || c == '\r')
			fprintf(f, "&#%u;", c); /* kept through attribute normalisation */
		else if (c < 0x20 || c == 0x7f)
			fputc('?', f); /* not allowed in XML 1.0 */
		else
			fputc(c, f);
	}
}

static void put_attr(FILE *f, const char *name, const char *value)
{
	fprintf(f, " %s=\"", name);
	put_esc(f, value);
	fputc('"', f);
}

/* The caller has switched to the C locale, so %g writes a '.'. */
static void put_num(FILE *f, const json_t *v)
{
	if (json_is_integer(v))
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		fprintf(f, "%.15g", json_number_value(v));
}

/* "2026-11-21T10:00:00Z", or with milliseconds "…:00.123Z". */
static void iso_time(int64_t ms, bool with_ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (with_ms)
		snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
	else
		snprintf(buf + n, len - n, "Z");
}

/* One quantity: {"value": x, "unit": u[, "load": l]} or a bare number (Tariff). */
static void put_m(FILE *f, const char *name, const char *phase, const json_t *v)
{
	const json_t *num = json_is_object(v) ? json_object_get(v, "value") : v;
	const json_t *unit = json_object_get(v, "unit"), *load = json_object_get(v, "load");

	if (!json_is_number(num))
		return;
	fputs("  <m", f);
	put_attr(f, "name", name);
	if (phase)
		put_attr(f, "phase", phase);
	if (json_is_string(unit))
		put_attr(f, "unit", json_string_value(unit));
	if (json_is_string(load))
		put_attr(f, "load", json_string_value(load));
	fputc('>', f);
	put_num(f, num);
	fputs("</m>\n", f);
}

/* An array of per-phase objects; labels names phase i (NULL: "i+1"). */
static void put_phases(FILE *f, const json_t *arr, const char *const *labels, size_t nlabels)
{
	const char *key;
	json_t *o, *v;
	size_t i;
	char ph[24];

	json_array_foreach(arr, i, o)
	{
		if (labels && i < nlabels)
			snprintf(ph, sizeof(ph), "%s", labels[i]);
		else
			snprintf(ph, sizeof(ph), "%zu", i + 1);
		json_object_foreach(o, key, v)
		{
			put_m(f, key, ph, v);
		}
	}
}

static void put_measurements(FILE *f, const json_t *m)
{
	static const char *const ppv[] = {"12", "23", "31"};
	const char *key;
	json_t *v;

	put_phases(f, json_object_get(m, "Phases"), NULL, 0);
	json_object_foreach(json_object_get(m, "Total"), key, v)
	{
		put_m(f, key, "0", v);
	}
	put_phases(f, json_object_get(m, "PhaseToPhase"), ppv, 3);
	json_object_foreach((json_t *)m, key, v)
	{
		if (strcmp(key, "Phases") && strcmp(key, "Total") && strcmp(key, "PhaseToPhase"))
			put_m(f, key, NULL, v);
	}
}

static void put_counters(FILE *f, const json_t *c, const char *group, bool resettable)
{
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(c, group), i, o)
	{
		const json_t *num = json_object_get(o, "value");

		if (!json_is_number(num))
			continue;
		fputs("  <c", f);
		put_attr(f, "name", json_string_value(json_object_get(o, "name")));
		put_attr(f, "unit", json_string_value(json_object_get(o, "unit")));
		put_attr(f, "direction", json_string_value(json_object_get(o, "direction")));
		put_attr(f, "resettable", resettable ? "1" : "0");
		fputc('>', f);
		put_num(f, num);
		fputs("</c>\n", f);
	}
}

static void put_time_attr(FILE *f, const char *name, const json_t *header)
{
	const json_t *ms = json_object_get(header, "read_at_ms");
	char when[40];

	if (!json_is_integer(ms))
		return;
	iso_time(json_integer_value(ms), true, when, sizeof(when));
	put_attr(f, name, when);
}

static void put_device(FILE *f, const struct dev *d, const json_t *meas, const json_t *ctr)
{
	const json_t *h = json_object_get(meas, "header");
	char num[24];

	fputs(" <device", f);
	snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		 json_integer_value(json_object_get(h, "index")));
	put_attr(f, "index", num);
	put_attr(f, "interface", json_string_value(json_object_get(h, "interface")));
	put_attr(f, "model", json_string_value(json_object_get(h, "model")));
	put_attr(f, "serial", json_string_value(json_object_get(h, "serial")));
	snprintf(num, sizeof(num), "%u", d->addr);
	put_attr(f, "address", num);
	put_attr(f, "description", d->description[0] ? d->description : d->cfg_description);
	put_attr(f, "status", json_string_value(json_object_get(h, "status")));
	put_time_attr(f, "read", h);
	put_time_attr(f, "counters_read", json_object_get(ctr, "header"));
	fputs(">\n", f);
	put_measurements(f, json_object_get(meas, "measurements"));
	put_counters(f, json_object_get(ctr, "counters"), "non_resettable", false);
	put_counters(f, json_object_get(ctr, "counters"), "resettable", true);
	fputs(" </device>\n", f);
}

static void put_push(FILE *f, const struct settings *s, const struct dev *d, const json_t *meas,
		     const json_t *ctr)
{
	char now[40];

	iso_time(clock_wall_ms(), false, now, sizeof(now));
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<push", f);
	put_attr(f, "gateway", s ? settings_str(s, "serial_number") : "");
	put_attr(f, "model", s ? settings_str(s, "model_type") : "");
	put_attr(f, "time", now);
	fputs(">\n", f);
	put_device(f, d, meas, ctr);
	fputs("</push>\n", f);
}

char *stdtcp_xml(const struct settings *s, const struct dev *d)
{
	json_t *meas = dev_reading_json(d, false), *ctr = dev_reading_json(d, true);
	/* printf follows the thread's locale: switch to "C" for the '.' point. */
	locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t old = c ? uselocale(c) : (locale_t)0;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = meas && ctr ? open_memstream(&buf, &size) : NULL;
	bool bad = true;

	if (f) {
		put_push(f, s, d, meas, ctr);
		bad = ferror(f) != 0;
		bad = fclose(f) != 0 || bad;
	}
	if (c) {
		uselocale(old);
		freelocale(c);
	}
	json_decref(meas);
	json_decref(ctr);
	if (bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- status ---- */

static void log_failure(struct stdtcp *t)
{
	if (!strcmp(t->logged, t->status))
		return;
	log_warn("Standard TCP link %d: %s", t->n, t->status);
	snprintf(t->logged, sizeof(t->logged), "%s", t->status);
}

static void set_status(struct stdtcp *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_status(struct stdtcp *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->status, sizeof(t->status), fmt, ap);
	va_end(ap);
}

const char *stdtcp_status(const struct stdtcp *t)
{
	return t ? t->status : ST_DISABLED;
}

/* ---- the push in flight ---- */

static void cancel_timer(struct stdtcp *t, int64_t *id)
{
	if (*id > 0 && loop_of(t))
		loop_timer_cancel(loop_of(t), *id);
	*id = 0;
}

static void close_fd(struct stdtcp *t)
{
	if (t->fd < 0)
		return;
	if (loop_of(t))
		loop_del_fd(loop_of(t), t->fd);
	close(t->fd);
	t->fd = -1;
}

/* Release everything of the push in flight; the status is the caller's. */
static void end_push(struct stdtcp *t)
{
	cancel_timer(t, &t->timer);
	resolve_cancel(t->lookup); /* never waits: the lookup may never end */
	t->lookup = NULL;
	close_fd(t);
	if (t->ai)
		freeaddrinfo(t->ai);
	t->ai = t->next = NULL;
	free(t->doc);
	t->doc = NULL;
	t->ph = PH_IDLE;
}

static void fail(struct stdtcp *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct stdtcp *t, const char *fmt, ...)
{
	char why[STATUS_LEN - 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	set_status(t, "Error: %s", why);
	log_failure(t);
	t->have_result = true;
	end_push(t);
}

static void succeed(struct stdtcp *t)
{
	char when[40];
	size_t line = strcspn(t->ans, "\r\n");

	iso_time(clock_wall_ms(), false, when, sizeof(when));
	set_status(t, "Connected (last push OK at %s)", when);
	log_debug("Standard TCP link %d: answer \"%.*s\"", t->n, (int)(line < 80 ? line : 80),
		  t->ans);
	if (t->logged[0])
		log_notice("Standard TCP link %d: pushing again", t->n);
	t->logged[0] = '\0';
	t->have_result = true;
	end_push(t);
}

static void on_timeout(void *arg);

static void arm_timeout(struct stdtcp *t)
{
	int64_t id;

	cancel_timer(t, &t->timer);
	id = loop_timer_add(loop_of(t), (int64_t)t->resp_s * 1000, on_timeout, t);
	t->timer = id > 0 ? id : 0;
}

static void kick(struct stdtcp *t);

static void on_timeout(void *arg)
{
	struct stdtcp *t = arg;
	int s = t->resp_s;

	t->timer = 0;
	if (t->ph == PH_RESOLVE)
		fail(t, "resolve %s: no answer within %d s", t->host, s);
	else if (t->ph == PH_CONNECT)
		fail(t, "connect: %s", strerror(ETIMEDOUT));
	else if (t->ph == PH_WRITE)
		fail(t, "write: %s", strerror(ETIMEDOUT));
	else if (t->ph == PH_READ && t->alen)
		succeed(t); /* answered, just without a line end or close */
	else if (t->ph == PH_READ)
		fail(t, "no answer within %d s", s);
	kick(t);
}

static void do_read(struct stdtcp *t)
{
	for (;;) {
		ssize_t r = recv(t->fd, t->ans + t->alen, ANSWER_MAX - 1 - t->alen, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0 && !t->alen) {
			fail(t, "read: %s", strerror(errno));
			return;
		}
		if (r <= 0 && !t->alen) {
			fail(t, "connection closed without an answer");
			return;
		}
		if (r > 0)
			t->alen += (size_t)r;
		t->ans[t->alen] = '\0';
		/* EOF or reset after an answer, a whole line, or 4 KiB: answered. */
		if (r <= 0 || memchr(t->ans, '\n', t->alen) || t->alen == ANSWER_MAX - 1) {
			succeed(t);
			return;
		}
	}
}

static void do_write(struct stdtcp *t)
{
	while (t->off < t->len) {
		ssize_t r = send(t->fd, t->doc + t->off, t->len - t->off, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings us back */
		if (r < 0) {
			fail(t, "write: %s", strerror(errno));
			return;
		}
		t->off += (size_t)r;
	}
	t->ph = PH_READ;
	if (loop_mod_fd(loop_of(t), t->fd, EPOLLIN) < 0) {
		fail(t, "read: %s", strerror(EIO));
		return;
	}
	arm_timeout(t); /* the answer gets its own resp_time */
	do_read(t);
}

static void try_connect(struct stdtcp *t);

static void on_connected(struct stdtcp *t)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		/* This address failed: the next one of the name, if any. */
		t->last_err = err;
		close_fd(t);
		try_connect(t);
		return;
	}
	t->ph = PH_WRITE;
	do_write(t);
}

static void on_fd(int fd, uint32_t events, void *arg)
{
	struct stdtcp *t = arg;

	(void)fd;
	(void)events;
	if (t->ph == PH_CONNECT)
		on_connected(t);
	else if (t->ph == PH_WRITE)
		do_write(t);
	else if (t->ph == PH_READ)
		do_read(t);
	kick(t);
}

/* Non-blocking connect to t->next, then the following addresses. */
static void try_connect(struct stdtcp *t)
{
	for (; t->next; t->next = t->next->ai_next) {
		const struct addrinfo *a = t->next;
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				a->ai_protocol);

		if (fd < 0) {
			t->last_err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			t->last_err = errno;
			close(fd);
			continue;
		}
		if (loop_add_fd(loop_of(t), fd, EPOLLOUT, on_fd, t) < 0) {
			t->last_err = EIO;
			close(fd);
			continue;
		}
		t->fd = fd;
		t->next = t->next->ai_next;
		t->ph = PH_CONNECT;
		arm_timeout(t);
		return;
	}
	fail(t, "connect: %s", strerror(t->last_err ? t->last_err : EHOSTUNREACH));
}

/* The server's addresses (a name resolved off the loop thread): connect. */
static void on_resolved(int err, struct addrinfo *ai, void *arg)
{
	struct stdtcp *t = arg;

	t->lookup = NULL;
	if (err) {
		fail(t, "resolve %s: %s", t->host, gai_strerror(err));
	} else {
		t->ai = t->next = ai;
		try_connect(t);
	}
	kick(t);
}

/* Start the oldest queued document. */
static void begin(struct stdtcp *t)
{
	int r;

	t->doc = t->q[t->qhead];
	t->qhead = (t->qhead + 1) % QUEUE_MAX;
	t->qlen--;
	t->len = strlen(t->doc);
	t->off = t->alen = 0;
	t->last_err = 0;
	if (!t->have_result)
		set_status(t, ST_CONNECTING);
	if (!t->host[0]) {
		fail(t, "no server configured");
		return;
	}
	r = resolve_start(loop_of(t), t->host, t->port, on_resolved, t, &t->lookup);
	if (r < 0) {
		t->lookup = NULL;
		fail(t, "resolve %s: %s", t->host, strerror(-r));
		return;
	}
	t->ph = PH_RESOLVE;
	arm_timeout(t);
}

/* Start queued documents until one is in flight (failures can be immediate). */
static void kick(struct stdtcp *t)
{
	while (t->ph == PH_IDLE && t->qlen && t->enabled && loop_of(t))
		begin(t);
}

/* ---- queue and settings ---- */

static void drop_queue(struct stdtcp *t)
{
	while (t->qlen) {
		free(t->q[t->qhead]);
		t->q[t->qhead] = NULL;
		t->qhead = (t->qhead + 1) % QUEUE_MAX;
		t->qlen--;
	}
	t->qhead = 0;
}

static void enqueue(struct stdtcp *t, char *doc)
{
	if (t->qlen == QUEUE_MAX) {
		free(t->q[t->qhead]);
		t->qhead = (t->qhead + 1) % QUEUE_MAX;
		t->qlen--;
		/* Log the first drop of a backlog and then every 64th. */
		if (t->dropped++ % QUEUE_MAX == 0)
			log_warn("Standard TCP link %d: server too slow, dropped %llu document(s)",
				 t->n, (unsigned long long)t->dropped);
	}
	t->q[(t->qhead + t->qlen) % QUEUE_MAX] = doc;
	t->qlen++;
}

void stdtcp_push(struct stdtcp *t, const struct dev *d)
{
	char *doc;

	if (!t || !t->enabled || !d)
		return;
	doc = stdtcp_xml(t->m->env.settings, d);
	if (!doc) {
		set_status(t, "Error: out of memory");
		log_failure(t);
		return;
	}
	enqueue(t, doc);
	kick(t);
}

void stdtcp_configure(struct stdtcp *t)
{
	const struct settings *s;
	char key[32], host[HOST_MAX];
	int port;

	if (!t)
		return;
	s = settings_of(t);
	snprintf(key, sizeof(key), "push%d_protocol", t->n);
	if (!s || settings_int(s, key) != PROTO_STDTCP) {
		end_push(t);
		drop_queue(t);
		t->enabled = t->have_result = false;
		t->logged[0] = '\0';
		set_status(t, ST_DISABLED);
		return;
	}
	snprintf(key, sizeof(key), "mqtt%d_server", t->n);
	snprintf(host, sizeof(host), "%s", settings_str(s, key));
	snprintf(key, sizeof(key), "mqtt%d_port", t->n);
	port = (int)settings_int(s, key);
	snprintf(key, sizeof(key), "push%d_resp_time", t->n);
	t->resp_s = (int)settings_int(s, key);
	/* A push to the old server is not finished: the queue goes to the new one. */
	if (t->enabled && (strcmp(host, t->host) || port != t->port) && t->ph != PH_IDLE)
		end_push(t);
	if (!t->enabled || strcmp(host, t->host) || port != t->port) {
		t->have_result = false;
		t->logged[0] = '\0';
		set_status(t, ST_WAITING);
	}
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = port;
	t->enabled = true;
	kick(t);
}

int stdtcp_init(struct mqtt *m, int n, struct stdtcp **out)
{
	struct stdtcp *t;

	if (n < 1 || n > MQTT_LINKS)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->m = m;
	t->n = n;
	t->fd = -1;
	set_status(t, ST_DISABLED);
	stdtcp_configure(t);
	*out = t;
	return 0;
}

void stdtcp_fini(struct stdtcp *t)
{
	if (!t)
		return;
	end_push(t);
	drop_queue(t);
	free(t);
}
