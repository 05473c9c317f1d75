/* One MQTT link: libmosquitto without its threads, driven from sgd's loop.
 *
 * The socket is watched by the loop (EPOLLIN always, EPOLLOUT while the TCP
 * connect is in progress or libmosquitto has bytes to send) and a 1 s timer
 * runs mosquitto_loop_misc for keepalive pings. Reconnecting, its back-off
 * (1, 2, 4 … 60 s) and the connect timeout are ours; libmosquitto's own
 * reconnect logic lives in mosquitto_loop_forever, which we never call.
 *
 * Names: mosquitto_connect_async would resolve the server name with a
 * blocking getaddrinfo() before its non-blocking connect, and a DNS server
 * that does not answer would stall the whole loop. A name is resolved off
 * the loop first (core/resolve.c, bounded by push<n>_resp_time) and
 * libmosquitto is given the first numeric address. TLS must still check the
 * certificate against the name and send it as SNI (cloud brokers route on
 * it), while libmosquitto would use the address for both: such a link gets
 * a TLS context of ours (libmosquitto still loads the CA and client
 * certificate into it) that has OpenSSL check the certificate against the
 * name, and whose info callback, when each handshake starts, puts the name
 * into SNI and makes OpenSSL's verdict final in place of libmosquitto's
 * check (which would compare the address). A certificate for another name,
 * or of another CA, still fails. A numeric server goes to libmosquitto as is.
 *
 * One mosquitto object per configuration: created when this link's settings
 * change and reused across reconnects (mosquitto_reconnect_async), so that
 * QoS 1 messages in flight when a connection dies are re-sent by libmosquitto
 * after the next CONNACK instead of being lost.
 *
 * Re-entrancy: libmosquitto calls us (on_connect, on_message, …) from inside
 * mosquitto_loop_read and friends, and those callbacks reach mqtt.c, which
 * may change settings and so call link_configure. The mosquitto object must
 * never be destroyed or reconnected from inside its own callback, so
 * link_configure only schedules the work (0 ms loop timer) and failures seen
 * in a callback only stop watching the socket and arm the retry timer.
 *
 * Protocol: MQTT v5, so that the CONNECT can announce the largest packet we
 * take (IN_PACKET_MAX): libmosquitto reads a whole packet into memory before
 * we see it, and a v5 broker drops larger messages for us instead of sending
 * them. A broker that refuses v5 gets 3.1.1 from the next attempt on (no
 * limit announced then), until the link's settings change. */
#include <errno.h>
#include <limits.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mqtt_int.h"
#include "sg/files.h"
#include "sg/log.h"
#include "sg/resolve.h"

#define KEEPALIVE_S 30
#define TICK_MS 1000
#define BACKOFF_MAX_S 60
#define FILTERS_MAX 16
#define TOPIC_MAX 65535
#define PAYLOAD_MAX 268435455 /* the MQTT remaining-length limit */
/* Commands are at most CMD_PAYLOAD_MAX (64 KiB); up to this size a larger one
 * is still read and refused with an error reply, beyond it the broker drops it. */
#define IN_PACKET_MAX (256 * 1024)
#define OS_CA_DIR "/etc/ssl/certs"
#define STR_MAX 256 /* longer than any string setting of a link */
#define WHY_MAX 256 /* a failure reason */
#define STATUS_MAX (WHY_MAX + 16)
#define FP_MAX 4096

enum lstate {
	LS_OFF,	       /* disabled, or being torn down: callbacks are ignored */
	LS_HALT,       /* a settings problem; nothing is tried until they change */
	LS_WAIT,       /* waiting for the back-off timer */
	LS_RESOLVING,  /* the server name is being looked up off the loop */
	LS_CONNECTING, /* socket in the loop, no CONNACK yet */
	LS_UP,	       /* CONNACK accepted */
};

/* This link's settings, as read when it was last configured. */
struct cfg {
	long proto, resp_time, port, tls;
	char server[STR_MAX], ca[STR_MAX], cert[STR_MAX], key[STR_MAX];
	char user[STR_MAX], pass[STR_MAX], root[STR_MAX], sub[STR_MAX], pub[STR_MAX];
};

struct mqtt_link {
	struct mqtt *m;
	struct loop *loop;
	int n;
	enum lstate state;
	struct cfg cfg;
	char fp[FP_MAX]; /* fingerprint of cfg and the TLS files it names */
	int loglevel;	 /* libmosquitto lines up to this syslog level are logged */
	struct mosquitto *mosq;
	bool started;	/* connect_async done once: later attempts use reconnect_async */
	bool v311;	/* the broker refused MQTT v5: use 3.1.1 until the settings change */
	bool mosq_v311; /* the protocol mosq was created with */
	bool by_name;	/* the server is a name: resolved by us, libmosquitto gets an address */
	struct resolve *lookup;
	int fd; /* the socket as registered in the loop, or -1 */
	uint32_t events;
	bool tcp_up; /* the socket reported writable: the TCP connect is over */
	int in_lib;  /* libmosquitto calls on the stack (callbacks may run) */
	int64_t cfg_timer, retry_timer, connect_timer, tick_timer;
	int backoff_s;
	bool had_error; /* since configured: keep showing the last error while retrying */
	char status[STATUS_MAX];
	char base[2 * STR_MAX + 2];
	char liberr[WHY_MAX - 16]; /* first MOSQ_LOG_ERR line of this attempt */
	char refused[128];	   /* CONNACK refusal of this attempt */
	/* QoS 1 messages not yet acknowledged, by message id. Kept across a
	 * reconnect of the same mosquitto object: libmosquitto re-sends its
	 * in-flight messages after CONNACK and their PUBACKs then arrive with
	 * the original ids. Cleared when the object is destroyed. */
	uint8_t unacked[65536 / 8];
	unsigned pending;
	char *filters[FILTERS_MAX]; /* link_subscribe_abs, re-subscribed on every connect */
	unsigned nfilters;
};

static void attempt(struct mqtt_link *l);

/* ---- small helpers ---- */

static void set_status(struct mqtt_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_status(struct mqtt_link *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->status, sizeof(l->status), fmt, ap);
	va_end(ap);
}

static void key_of(const struct mqtt_link *l, const char *prefix, const char *name, char *buf,
		   size_t len)
{
	snprintf(buf, len, "%s%d_%s", prefix, l->n, name);
}

static long get_int(const struct mqtt_link *l, const char *prefix, const char *name)
{
	char key[48];

	key_of(l, prefix, name, key, sizeof(key));
	return settings_int(l->m->env.settings, key);
}

static void get_str(const struct mqtt_link *l, const char *name, char *out)
{
	char key[48];
	const char *v;

	key_of(l, "mqtt", name, key, sizeof(key));
	v = settings_str(l->m->env.settings, key);
	snprintf(out, STR_MAX, "%s", v ? v : "");
}

static bool topic_ok(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n <= TOPIC_MAX && mosquitto_pub_topic_check2(t, n) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(t, (int)n) == MOSQ_ERR_SUCCESS;
}

static void timer_stop(struct mqtt_link *l, int64_t *id)
{
	if (*id > 0)
		loop_timer_cancel(l->loop, *id);
	*id = 0;
}

static int64_t timer_start(struct mqtt_link *l, int64_t ms, loop_timer_cb cb)
{
	int64_t id = loop_timer_add(l->loop, ms, cb, l);

	if (id < 0)
		log_err("mqtt%d: cannot arm a timer: %s", l->n, strerror((int)-id));
	return id > 0 ? id : 0;
}

static void unacked_clear(struct mqtt_link *l)
{
	memset(l->unacked, 0, sizeof(l->unacked));
	l->pending = 0;
}

static bool unacked_take(struct mqtt_link *l, int mid)
{
	uint8_t bit;

	if (mid <= 0 || mid > 65535)
		return false;
	bit = (uint8_t)(1u << (mid & 7));
	if (!(l->unacked[mid >> 3] & bit))
		return false;
	l->unacked[mid >> 3] &= (uint8_t)~bit;
	if (l->pending)
		l->pending--;
	return true;
}

static void unacked_add(struct mqtt_link *l, int mid)
{
	if (mid <= 0 || mid > 65535 || (l->unacked[mid >> 3] & (1u << (mid & 7))))
		return;
	l->unacked[mid >> 3] |= (uint8_t)(1u << (mid & 7));
	l->pending++;
}

/* ---- the socket in the loop ---- */

static bool active(const struct mqtt_link *l)
{
	return l->state == LS_CONNECTING || l->state == LS_UP;
}

/* While the TCP connect runs, writability says it finished. During the TLS
 * handshake libmosquitto's want_write can stay set from the first attempt
 * (made before the socket was connected) and would make the loop spin;
 * the handshake is driven by reads (and the tick) instead, and the CONNECT
 * packet goes out from the write that follows every read in that phase. */
static uint32_t wanted(struct mqtt_link *l)
{
	if (!l->tcp_up)
		return EPOLLIN | EPOLLOUT;
	if (l->state == LS_CONNECTING && l->cfg.tls)
		return EPOLLIN;
	return EPOLLIN | (mosquitto_want_write(l->mosq) ? EPOLLOUT : 0);
}

static void update_interest(struct mqtt_link *l)
{
	uint32_t ev;

	if (l->fd < 0 || !active(l))
		return;
	ev = wanted(l);
	if (ev != l->events && loop_mod_fd(l->loop, l->fd, ev) == 0)
		l->events = ev;
}

static void stop_io(struct mqtt_link *l)
{
	resolve_cancel(l->lookup); /* never waits for a DNS server */
	l->lookup = NULL;
	if (l->fd >= 0)
		loop_del_fd(l->loop, l->fd);
	l->fd = -1;
	l->events = 0;
	timer_stop(l, &l->tick_timer);
	timer_stop(l, &l->connect_timer);
}

/* ---- failure and retry ---- */

static void on_retry(void *arg)
{
	struct mqtt_link *l = arg;

	l->retry_timer = 0;
	if (l->state == LS_WAIT)
		attempt(l);
}

/* Stop this attempt or connection and come back after the back-off. Safe
 * inside a libmosquitto callback: the object itself is left alone. */
static void fail_why(struct mqtt_link *l, const char *why)
{
	bool was_up = l->state == LS_UP;
	bool same = l->had_error && !strcmp(l->status + strlen("Error: "), why);

	stop_io(l);
	l->state = LS_WAIT;
	if (was_up)
		log_warn("mqtt%d: disconnected: %s; reconnecting in %d s", l->n, why, l->backoff_s);
	else if (!same) /* a broker that stays away logs once, not every minute */
		log_warn("mqtt%d: %s; retrying in %d s", l->n, why, l->backoff_s);
	else
		log_debug("mqtt%d: %s; retrying in %d s", l->n, why, l->backoff_s);
	set_status(l, "Error: %s", why);
	l->had_error = true;
	timer_stop(l, &l->retry_timer);
	l->retry_timer = timer_start(l, (int64_t)l->backoff_s * 1000, on_retry);
	l->backoff_s = l->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : l->backoff_s * 2;
	if (was_up)
		mqtt_on_disconnect(l->m, l);
}

/* libmosquitto prefixes some lines with "Error: "; the status adds its own. */
static const char *strip_error(const char *s)
{
	return strncmp(s, "Error: ", 7) ? s : s + 7;
}

/* TLS on, no CONNACK yet, and the broker went away after TCP was up (on a
 * TLS link only the TLS layer reports EPROTO, even from connect_async). */
static bool closed_in_handshake(const struct mqtt_link *l, int rc, int err)
{
	if (!l->cfg.tls || l->state != LS_CONNECTING)
		return false;
	if (rc == MOSQ_ERR_ERRNO && err == EPROTO)
		return true;
	return l->tcp_up && (rc == MOSQ_ERR_CONN_LOST ||
			     (rc == MOSQ_ERR_ERRNO && (err == ECONNRESET || err == EPIPE)));
}

/* The most specific reason known for rc: a CONNACK refusal, then the
 * library's own error line (TLS failures only say why there), then rc. */
static void reason_of(struct mqtt_link *l, int rc, int err, char *buf, size_t len)
{
	if (l->refused[0])
		snprintf(buf, len, "%s", l->refused);
	else if (l->liberr[0] && l->cfg.tls)
		snprintf(buf, len, "TLS: %s", strip_error(l->liberr));
	else if (l->liberr[0])
		snprintf(buf, len, "%s", strip_error(l->liberr));
	else if (closed_in_handshake(l, rc, err))
		/* A broker rejecting our certificate may just close the socket,
		 * its alert unread: that is the likely cause, not a certainty. */
		snprintf(buf, len,
			 "TLS: connection closed before CONNACK (%s); "
			 "the broker may have rejected the certificate",
			 rc == MOSQ_ERR_ERRNO ? strerror(err) : "connection lost");
	else if (rc == MOSQ_ERR_ERRNO && err)
		snprintf(buf, len, "%s", strerror(err));
	else if (rc == MOSQ_ERR_EAI)
		snprintf(buf, len, "%.128s: %s", l->cfg.server, gai_strerror(err));
	else if (rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_SUCCESS)
		snprintf(buf, len, "connection lost");
	else if (rc == MOSQ_ERR_KEEPALIVE)
		snprintf(buf, len, "keepalive timeout (broker not answering)");
	else
		snprintf(buf, len, "%s", mosquitto_strerror(rc));
}

static void fail(struct mqtt_link *l, int rc, int err)
{
	char why[WHY_MAX];

	if (!active(l))
		return; /* already handled (a callback reported it first) */
	reason_of(l, rc, err, why, sizeof(why));
	fail_why(l, why);
}

static void halt(struct mqtt_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A settings problem: say so and wait for the settings to change. */
static void halt(struct mqtt_link *l, const char *fmt, ...)
{
	char why[WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	stop_io(l);
	timer_stop(l, &l->retry_timer);
	l->state = LS_HALT;
	set_status(l, "Error: %s", why);
	log_warn("mqtt%d: %s; not connecting until the settings change", l->n, why);
}

/* ---- driving libmosquitto ---- */

static int do_read(struct mqtt_link *l, int *err)
{
	int rc;

	l->in_lib++;
	errno = 0;
	rc = mosquitto_loop_read(l->mosq, 1);
	*err = errno;
	l->in_lib--;
	return rc;
}

static int do_write(struct mqtt_link *l, int *err)
{
	int rc;

	l->in_lib++;
	errno = 0;
	rc = mosquitto_loop_write(l->mosq, 1);
	*err = errno;
	l->in_lib--;
	return rc;
}

/* Read when asked to, then write; during the connect phase both always,
 * since either may be what moves the TLS handshake on. */
static void run_io(struct mqtt_link *l, bool rd, bool wr)
{
	int rc = MOSQ_ERR_SUCCESS, err = 0;

	if (l->state == LS_CONNECTING)
		rd = wr = true;
	if (rd)
		rc = do_read(l, &err);
	/* A callback may have ended this connection (state no longer active). */
	if (rc == MOSQ_ERR_SUCCESS && wr && active(l) && mosquitto_socket(l->mosq) >= 0)
		rc = do_write(l, &err);
	if (rc != MOSQ_ERR_SUCCESS)
		fail(l, rc, err);
	update_interest(l);
}

/* The socket's pending error (a refused or reset connection), or 0. */
static int sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 ? errno : e;
}

/* A failed TCP connect reports EPOLLOUT too, with EPOLLERR/EPOLLHUP. Its
 * error may already be consumed by libmosquitto's first write attempt; a
 * socket that never got a peer still says so. True when it failed. */
static bool never_connected(struct mqtt_link *l, int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	int err = sock_error(fd);

	if (err)
		fail_why(l, strerror(err));
	else if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		fail_why(l, "connection refused or host unreachable");
	else
		return false;
	return true;
}

static void on_sock(int fd, uint32_t events, void *arg)
{
	struct mqtt_link *l = arg;
	int err;

	if (!active(l))
		return;
	if ((events & (EPOLLERR | EPOLLHUP)) && !l->tcp_up && never_connected(l, fd))
		return;
	if (events & EPOLLOUT)
		l->tcp_up = true;
	/* EPOLLERR and EPOLLHUP are reported until the socket is closed, and
	 * libmosquitto does not always notice (during the TLS handshake it
	 * takes a failed SSL_connect for "try again"): decide here, or spin. */
	if ((events & EPOLLERR) && (err = sock_error(fd)) != 0) {
		fail(l, MOSQ_ERR_ERRNO, err);
		return;
	}
	run_io(l, events & (EPOLLIN | EPOLLERR | EPOLLHUP), events & EPOLLOUT);
	if ((events & (EPOLLHUP | EPOLLERR)) && l->state == LS_CONNECTING)
		fail(l, MOSQ_ERR_CONN_LOST, 0);
}

static void on_tick(void *arg)
{
	struct mqtt_link *l = arg;
	int rc;

	l->tick_timer = 0;
	if (!active(l))
		return;
	l->in_lib++;
	rc = mosquitto_loop_misc(l->mosq); /* PINGREQ, keepalive timeout */
	l->in_lib--;
	if (rc != MOSQ_ERR_SUCCESS)
		fail(l, rc, 0);
	else if (l->state == LS_CONNECTING)
		run_io(l, true, true); /* a safety net for the handshake, see wanted() */
	else
		update_interest(l);
	if (active(l))
		l->tick_timer = timer_start(l, TICK_MS, on_tick);
}

static void on_connect_timeout(void *arg)
{
	struct mqtt_link *l = arg;
	int fd = mosquitto_socket(l->mosq);

	l->connect_timer = 0;
	if (l->state != LS_CONNECTING)
		return;
	/* libmosquitto owns the descriptor (it closes it at the next attempt);
	 * shutdown ends the half-open exchange with the broker now. */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	fail_why(l, "connect timeout");
}

static int start_io(struct mqtt_link *l)
{
	int fd = mosquitto_socket(l->mosq), r;

	if (fd < 0)
		return -EBADF;
	r = loop_add_fd(l->loop, fd, EPOLLIN | EPOLLOUT, on_sock, l);
	if (r < 0)
		return r;
	l->fd = fd;
	l->events = EPOLLIN | EPOLLOUT;
	l->tcp_up = false;
	l->state = LS_CONNECTING;
	l->connect_timer = timer_start(l, l->cfg.resp_time * 1000, on_connect_timeout);
	l->tick_timer = timer_start(l, TICK_MS, on_tick);
	return 0;
}

/* ---- libmosquitto callbacks ---- */

static void subscribe_all(struct mqtt_link *l)
{
	char t[2 * STR_MAX + 4];

	/* "cmd/#" also matches "cmd" itself. A v5 broker (mosquitto) sends one
	 * copy per matching subscription, so there it is the only one: with
	 * "cmd" beside it every command would run twice. Overlapping filters
	 * must not be added for the same reason. */
	if (l->mosq_v311) {
		snprintf(t, sizeof(t), "%s/%s", l->cfg.root, l->cfg.sub);
		mosquitto_subscribe(l->mosq, NULL, t, 1);
	}
	snprintf(t, sizeof(t), "%s/%s/#", l->cfg.root, l->cfg.sub);
	mosquitto_subscribe(l->mosq, NULL, t, 1);
	mosquitto_subscribe(l->mosq, NULL, HA_STATUS_TOPIC, 1);
	for (unsigned i = 0; i < l->nfilters; i++)
		mosquitto_subscribe(l->mosq, NULL, l->filters[i], 1);
}

static const char *tls_note(long tls)
{
	return tls == 2 ? " (mutual TLS)" : tls == 1 ? " (TLS)" : "";
}

static void went_up(struct mqtt_link *l)
{
	char avail[sizeof(l->base) + 16];

	timer_stop(l, &l->connect_timer);
	l->state = LS_UP;
	l->backoff_s = 1;
	l->had_error = false;
	set_status(l, "Connected");
	log_notice("mqtt%d: connected to %s:%ld%s", l->n, l->cfg.server, l->cfg.port,
		   tls_note(l->cfg.tls));
	subscribe_all(l);
	snprintf(avail, sizeof(avail), "%s/%s", l->base, SUB_AVAIL);
	mosquitto_publish(l->mosq, NULL, avail, 6, "online", 1, true);
	mqtt_on_connect(l->m, l);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt_link *l = obj;

	(void)mosq;
	if (l->state != LS_CONNECTING)
		return;
	if (rc == 0) {
		went_up(l);
		return;
	}
	if (rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION && !l->v311) {
		l->v311 = true; /* attempt() makes a new client for it */
		log_notice("mqtt%d: the broker does not speak MQTT v5; using 3.1.1 (no maximum "
			   "packet size announced)",
			   l->n);
	}
	/* libmosquitto drops the connection right after; fail() shows this. */
	snprintf(l->refused, sizeof(l->refused), "%s",
		 l->mosq_v311 ? mosquitto_connack_string(rc) : mosquitto_reason_string(rc));
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt_link *l = obj;
	int err = errno;

	(void)mosq;
	/* The library closed the socket: stop watching it before its number
	 * can be reused. */
	fail(l, rc, err);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct mqtt_link *l = obj;

	(void)mosq;
	if (l->state != LS_UP || !msg || !msg->topic || msg->payloadlen < 0)
		return;
	mqtt_on_message(l->m, l, msg->topic, msg->payload ? msg->payload : "",
			(size_t)msg->payloadlen);
}

/* Also called once a QoS 0 message is written; only our QoS 1 ids count. */
static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct mqtt_link *l = obj;

	(void)mosq;
	if (unacked_take(l, mid) && l->state != LS_OFF)
		mqtt_on_published(l->m, l, mid);
}

static int syslog_level(int mosq_level)
{
	switch (mosq_level) {
	case MOSQ_LOG_ERR:
		return LOG_ERR;
	case MOSQ_LOG_WARNING:
		return LOG_WARNING;
	case MOSQ_LOG_NOTICE:
		return LOG_NOTICE;
	case MOSQ_LOG_INFO:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	struct mqtt_link *l = obj;

	(void)mosq;
	if (!str)
		return;
	/* The first error line of an attempt is the cause; later ones follow from it. */
	if (level == MOSQ_LOG_ERR && !l->liberr[0])
		snprintf(l->liberr, sizeof(l->liberr), "%s", str);
	if (syslog_level(level) <= l->loglevel)
		log_debug("mqtt%d: libmosquitto: %s", l->n, str);
}

/* ---- creating the client ---- */

/* A file-manager name to a readable path; false with the status set. */
static bool resolve_file(struct mqtt_link *l, const char *name, char *out, size_t len)
{
	int r = files_path(l->m->env.conf->state_dir, name, out, len);

	if (r == -EINVAL) {
		halt(l, "%s: not a valid file name", name);
		return false;
	}
	if (r < 0 || access(out, R_OK) < 0) {
		halt(l, "%s: %s", name, strerror(r < 0 ? -r : errno));
		return false;
	}
	return true;
}

/* OpenSSL would otherwise prompt on the terminal for an encrypted key. */
static int no_password(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf, (void)size, (void)rwflag, (void)userdata;
	return 0;
}

/* OpenSSL's verdict (chain, dates, and the host name set by tls_info) as
 * is. libmosquitto 2.0.11's own callback cannot serve a context it did not
 * create: it finds no client object (its ex_data index is only made with
 * its own contexts) and refuses every certificate. */
static int tls_verify(int ok, X509_STORE_CTX *ctx)
{
	(void)ctx;
	return ok;
}

/* A handshake starts (libmosquitto made the SSL object for the numeric
 * address and set it as SNI): the name goes into SNI instead, and OpenSSL's
 * verdict (with the host check of the context) decides. OpenSSL passes the
 * SSL as const, but this is the moment for client-side settings of the
 * handshake about to be built. */
static void tls_info(const SSL *ssl, int where, int ret)
{
	struct mqtt_link *l = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	SSL *s = (SSL *)ssl;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START) || !l)
		return;
	SSL_set_verify(s, SSL_VERIFY_PEER, tls_verify);
	if (SSL_set_tlsext_host_name(s, l->cfg.server) != 1)
		log_err("mqtt%d: cannot set the TLS server name", l->n);
}

/* For a server given by name: our TLS context (see the top of this file). */
static bool tls_by_name(struct mqtt_link *l)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int rc;

	if (!ctx) {
		halt(l, "TLS setup: cannot create a TLS context");
		return false;
	}
	SSL_CTX_set_app_data(ctx, l);
	SSL_CTX_set_info_callback(ctx, tls_info);
	/* Every SSL object made from this context checks the certificate
	 * against the name (copied at SSL_new, before any handshake). */
	if (X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), l->cfg.server, 0) != 1) {
		SSL_CTX_free(ctx);
		halt(l, "TLS setup: cannot set the host name to verify");
		return false;
	}
	rc = mosquitto_void_option(l->mosq, MOSQ_OPT_SSL_CTX, ctx); /* takes a reference */
	SSL_CTX_free(ctx);
	if (rc != MOSQ_ERR_SUCCESS) {
		halt(l, "TLS setup: %s", mosquitto_strerror(rc));
		return false;
	}
	return true;
}

static bool setup_tls(struct mqtt_link *l)
{
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	bool own_ca = l->cfg.ca[0], mutual = l->cfg.tls == 2;
	int rc;

	if (own_ca && !resolve_file(l, l->cfg.ca, ca, sizeof(ca)))
		return false;
	if (mutual && (!l->cfg.cert[0] || !l->cfg.key[0])) {
		halt(l, "mutual TLS needs mqtt%d_cert_file and mqtt%d_key_file", l->n, l->n);
		return false;
	}
	if (mutual && (!resolve_file(l, l->cfg.cert, cert, sizeof(cert)) ||
		       !resolve_file(l, l->cfg.key, key, sizeof(key))))
		return false;
	/* The OS store also by directory: tls_set insists on a CA file or
	 * directory, and libmosquitto 2.0.11 refuses to reuse its TLS context on
	 * a reconnect when MOSQ_OPT_TLS_USE_OS_CERTS is all it was given. */
	if (!own_ca)
		mosquitto_int_option(l->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
	rc = mosquitto_tls_set(l->mosq, own_ca ? ca : NULL, own_ca ? NULL : OS_CA_DIR,
			       mutual ? cert : NULL, mutual ? key : NULL, no_password);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(l->mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		halt(l, "TLS setup: %s", mosquitto_strerror(rc));
		return false;
	}
	return !l->by_name || tls_by_name(l);
}

static void set_callbacks(struct mqtt_link *l)
{
	mosquitto_connect_callback_set(l->mosq, on_connect);
	mosquitto_disconnect_callback_set(l->mosq, on_disconnect);
	mosquitto_message_callback_set(l->mosq, on_message);
	mosquitto_publish_callback_set(l->mosq, on_publish);
	mosquitto_log_callback_set(l->mosq, on_log);
}

/* Have every CONNECT of this client announce IN_PACKET_MAX. libmosquitto 2.0
 * has no non-blocking connect that takes properties, but
 * mosquitto_connect_bind_v5 keeps its properties for every later connect
 * and, given a keepalive it refuses, returns right after storing them, before
 * any network I/O; test_mqtt test_oversized_command checks that it worked. */
static bool announce_max(struct mqtt_link *l)
{
	mosquitto_property *props = NULL;
	int rc = mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, IN_PACKET_MAX);

	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_connect_bind_v5(l->mosq, l->cfg.server, (int)l->cfg.port,
					       1 /* refused: store only */, NULL, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_INVAL) {
		halt(l, "cannot set the MQTT v5 maximum packet size: %s", mosquitto_strerror(rc));
		return false;
	}
	return true;
}

static bool create(struct mqtt_link *l)
{
	char id[64], avail[sizeof(l->base) + 16];

	snprintf(id, sizeof(id), "%s-%d", l->m->env.conf->serial_number, l->n);
	l->mosq = mosquitto_new(id, true, l);
	if (!l->mosq) {
		halt(l, "cannot create the MQTT client: %s", strerror(errno));
		return false;
	}
	l->started = false;
	l->mosq_v311 = l->v311;
	mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION,
			     l->v311 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
	if (!l->v311 && !announce_max(l))
		return false;
	set_callbacks(l);
	if (l->cfg.user[0])
		mosquitto_username_pw_set(l->mosq, l->cfg.user,
					  l->cfg.pass[0] ? l->cfg.pass : NULL);
	snprintf(avail, sizeof(avail), "%s/%s", l->base, SUB_AVAIL);
	mosquitto_will_set(l->mosq, avail, 7, "offline", 1, true);
	return !l->cfg.tls || setup_tls(l);
}

static void destroy(struct mqtt_link *l)
{
	if (!l->mosq)
		return;
	if (l->in_lib)
		log_err("mqtt%d: client destroyed inside its own callback (bug)", l->n);
	mosquitto_destroy(l->mosq);
	l->mosq = NULL;
	l->started = false;
	unacked_clear(l);
}

/* ---- connecting ---- */

/* Connect libmosquitto to host, a numeric address: no blocking lookup. */
static void connect_to(struct mqtt_link *l, const char *host)
{
	int rc, err;

	l->liberr[0] = l->refused[0] = '\0';
	l->in_lib++;
	errno = 0;
	/* A resolved name may have moved: connect_async takes the new address
	 * and, like reconnect_async, keeps the messages in flight. */
	if (l->started && !l->by_name)
		rc = mosquitto_reconnect_async(l->mosq);
	else
		rc = mosquitto_connect_async(l->mosq, host, (int)l->cfg.port, KEEPALIVE_S);
	err = errno;
	l->in_lib--;
	l->started = true;
	if (rc == MOSQ_ERR_SUCCESS && (rc = start_io(l)) == 0) {
		if (!l->had_error)
			set_status(l, "Connecting");
		log_info("mqtt%d: connecting to %s:%ld", l->n, l->cfg.server, l->cfg.port);
		update_interest(l);
		return;
	}
	if (rc < 0) { /* start_io */
		err = -rc;
		rc = MOSQ_ERR_ERRNO;
	}
	l->state = LS_CONNECTING; /* so that fail() takes it */
	fail(l, rc, err);
}

static void on_resolve_timeout(void *arg)
{
	struct mqtt_link *l = arg;
	char why[WHY_MAX];

	l->connect_timer = 0;
	if (l->state != LS_RESOLVING)
		return;
	snprintf(why, sizeof(why), "%.128s: no answer from DNS within %ld s", l->cfg.server,
		 l->cfg.resp_time);
	fail_why(l, why);
}

static void on_resolved(int err, struct addrinfo *ai, void *arg)
{
	struct mqtt_link *l = arg;
	char addr[NI_MAXHOST], why[WHY_MAX];
	int r = EAI_NONAME;

	l->lookup = NULL;
	timer_stop(l, &l->connect_timer);
	/* The first address, as libmosquitto's own non-blocking connect takes. */
	if (!err && ai)
		r = getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
				NI_NUMERICHOST);
	if (ai)
		freeaddrinfo(ai);
	if (l->state != LS_RESOLVING)
		return;
	if (err || r) {
		/* The same words libmosquitto's failed lookup gave (reason_of). */
		snprintf(why, sizeof(why), "%.128s: %s", l->cfg.server,
			 gai_strerror(err ? err : r));
		fail_why(l, why);
		return;
	}
	log_debug("mqtt%d: %s is %s", l->n, l->cfg.server, addr);
	connect_to(l, addr);
}

static void attempt(struct mqtt_link *l)
{
	int r;

	if (l->mosq && l->mosq_v311 != l->v311)
		destroy(l); /* falling back to 3.1.1: a client of the other protocol */
	if (!l->mosq && !create(l))
		return; /* halt() said why */
	if (!l->by_name) {
		connect_to(l, l->cfg.server);
		return;
	}
	r = resolve_start(l->loop, l->cfg.server, (int)l->cfg.port, on_resolved, l, &l->lookup);
	if (r < 0) {
		l->lookup = NULL;
		fail_why(l, strerror(-r));
		return;
	}
	l->state = LS_RESOLVING;
	if (!l->had_error)
		set_status(l, "Connecting");
	l->connect_timer = timer_start(l, l->cfg.resp_time * 1000, on_resolve_timeout);
}

/* "Disconnect" cleanly: publish "offline" (a clean DISCONNECT suppresses the
 * will), then send what is queued. The callbacks see LS_OFF and stay quiet. */
static void say_goodbye(struct mqtt_link *l)
{
	char avail[sizeof(l->base) + 16];

	snprintf(avail, sizeof(avail), "%s/%s", l->base, SUB_AVAIL);
	mosquitto_publish(l->mosq, NULL, avail, 7, "offline", 1, true);
	mosquitto_disconnect(l->mosq);
	/* The socket is non-blocking: a few rounds cover a full send buffer
	 * without ever waiting; after the DISCONNECT is out the socket is closed. */
	for (int i = 0; i < 5 && mosquitto_socket(l->mosq) >= 0 && mosquitto_want_write(l->mosq);
	     i++)
		mosquitto_loop_write(l->mosq, 1);
}

/* Back to nothing: no socket, no timers (but the configure timer), no client. */
static void teardown(struct mqtt_link *l, bool notify)
{
	bool was_up = l->state == LS_UP;

	timer_stop(l, &l->retry_timer);
	stop_io(l);
	l->state = LS_OFF;
	if (l->mosq && was_up)
		say_goodbye(l);
	destroy(l);
	if (was_up) {
		log_notice("mqtt%d: disconnected", l->n);
		if (notify)
			mqtt_on_disconnect(l->m, l);
	}
}

/* ---- configuration ---- */

static void read_cfg(const struct mqtt_link *l, struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->proto = get_int(l, "push", "protocol");
	c->resp_time = get_int(l, "push", "resp_time");
	c->port = get_int(l, "mqtt", "port");
	c->tls = get_int(l, "mqtt", "tls");
	get_str(l, "server", c->server);
	get_str(l, "username", c->user);
	get_str(l, "password", c->pass);
	get_str(l, "roottopic", c->root);
	get_str(l, "sub_topic", c->sub);
	get_str(l, "pub_topic", c->pub);
	if (c->tls)
		get_str(l, "ca_file", c->ca);
	if (c->tls == 2) {
		get_str(l, "cert_file", c->cert);
		get_str(l, "key_file", c->key);
	}
	if (c->resp_time < 1)
		c->resp_time = 1;
}

/* Identity of a TLS file, so replacing it (same name) counts as a change. */
static void file_stamp(const struct mqtt_link *l, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	struct stat st;

	if (!name[0] || files_path(l->m->env.conf->state_dir, name, path, sizeof(path)) < 0 ||
	    stat(path, &st) < 0) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(buf, len, "%lu:%lld:%lld.%ld", (unsigned long)st.st_ino, (long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void fingerprint(const struct mqtt_link *l, const struct cfg *c, char *fp, size_t len)
{
	char ca[96], cert[96], key[96];

	file_stamp(l, c->ca, ca, sizeof(ca));
	file_stamp(l, c->cert, cert, sizeof(cert));
	file_stamp(l, c->key, key, sizeof(key));
	/* Unit separators between strings: no value of a link setting contains one. */
	snprintf(
	    fp, len,
	    "%ld|%ld|%ld|%ld|%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s",
	    c->proto, c->resp_time, c->port, c->tls, c->server, c->ca, ca, c->cert, cert, c->key,
	    key, c->user, c->pass, c->root, c->sub, c->pub);
}

/* Settings that cannot work at all stop here, with the reason shown. */
static bool cfg_usable(struct mqtt_link *l)
{
	char t[2 * STR_MAX + 4];

	if (!l->cfg.server[0]) {
		halt(l, "no server set (mqtt%d_server)", l->n);
		return false;
	}
	if (!topic_ok(l->base)) {
		halt(l, "invalid publish topic \"%s\"", l->base);
		return false;
	}
	snprintf(t, sizeof(t), "%s/%s", l->cfg.root, l->cfg.sub);
	if (!topic_ok(t)) {
		halt(l, "invalid subscribe topic \"%s\"", t);
		return false;
	}
	return true;
}

static void apply(void *arg)
{
	struct mqtt_link *l = arg;
	struct cfg c;
	char fp[FP_MAX];

	l->cfg_timer = 0;
	l->loglevel = (int)get_int(l, "mqtt", "loglevel");
	read_cfg(l, &c);
	if (c.proto != PROTO_MQTT) {
		teardown(l, true);
		l->fp[0] = '\0';
		set_status(l, "Disabled");
		return;
	}
	fingerprint(l, &c, fp, sizeof(fp));
	if (l->state != LS_OFF && !strcmp(fp, l->fp))
		return; /* nothing of this link changed */
	teardown(l, true);
	l->cfg = c;
	snprintf(l->fp, sizeof(l->fp), "%s", fp);
	snprintf(l->base, sizeof(l->base), "%s/%s", c.root, c.pub);
	l->backoff_s = 1;
	l->had_error = false;
	l->v311 = false;
	l->by_name = !resolve_is_numeric(c.server);
	if (cfg_usable(l))
		attempt(l);
}

/* ---- the interface ---- */

int link_init(struct mqtt *m, int n, struct mqtt_link **out)
{
	struct mqtt_link *l;

	if (!m || !m->env.conf || !out || n < 1 || n > MQTT_LINKS)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->m = m;
	l->loop = m->env.loop;
	l->n = n;
	l->fd = -1;
	l->backoff_s = 1;
	l->state = LS_OFF;
	set_status(l, "Disabled");
	*out = l;
	return 0;
}

/* Always deferred: this may run inside a callback of this link's client
 * (a set_settings command arriving on it). Repeated calls coalesce. */
void link_configure(struct mqtt_link *l)
{
	if (!l || l->cfg_timer)
		return;
	l->cfg_timer = timer_start(l, 0, apply);
}

void link_fini(struct mqtt_link *l)
{
	if (!l)
		return;
	timer_stop(l, &l->cfg_timer);
	teardown(l, false);
	for (unsigned i = 0; i < l->nfilters; i++)
		free(l->filters[i]);
	free(l);
}

bool link_connected(const struct mqtt_link *l)
{
	return l && l->state == LS_UP;
}

const char *link_status(const struct mqtt_link *l)
{
	return l ? l->status : "Disabled";
}

const char *link_base(const struct mqtt_link *l)
{
	return l ? l->base : "";
}

int link_number(const struct mqtt_link *l)
{
	return l ? l->n : 0;
}

unsigned link_pending(const struct mqtt_link *l)
{
	return l ? l->pending : 0;
}

static int map_publish_rc(int rc)
{
	switch (rc) {
	case MOSQ_ERR_NO_CONN:
		return -ENOTCONN;
	case MOSQ_ERR_INVAL:
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_MALFORMED_UTF8:
	case MOSQ_ERR_OVERSIZE_PACKET:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* libmosquitto queues a QoS 1 message before writing it: when the write then
 * fails (the broker just died), the message stays queued and goes out after
 * the reconnect. Reporting a failure would make the caller buffer a second
 * copy, and every retry a third. */
static bool queued_anyway(int rc, int qos, int mid)
{
	if (qos != 1 || mid <= 0)
		return false;
	switch (rc) {
	case MOSQ_ERR_INVAL:
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_MALFORMED_UTF8:
	case MOSQ_ERR_OVERSIZE_PACKET:
	case MOSQ_ERR_NOMEM:
		return false;
	default:
		return true;
	}
}

int link_publish_abs(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
		     int qos, bool retain)
{
	int mid = 0, rc;

	if (!l || !topic || (!payload && len) || (qos != 0 && qos != 1) || len > PAYLOAD_MAX ||
	    !topic_ok(topic))
		return -EINVAL;
	if (l->state != LS_UP)
		return -ENOTCONN;
	l->in_lib++;
	rc = mosquitto_publish(l->mosq, &mid, topic, (int)len, payload, qos, retain);
	l->in_lib--;
	if (rc != MOSQ_ERR_SUCCESS && !queued_anyway(rc, qos, mid))
		return map_publish_rc(rc);
	if (qos == 1)
		unacked_add(l, mid);
	update_interest(l); /* queued, not yet written (inside a callback) */
	return qos == 1 ? mid : 0;
}

int link_publish(struct mqtt_link *l, const char *subtopic, const void *payload, size_t len,
		 int qos, bool retain)
{
	size_t n;
	char *topic;
	int r;

	if (!l)
		return -EINVAL;
	n = strlen(l->base) + (subtopic ? strlen(subtopic) + 1 : 0);
	if (n > TOPIC_MAX)
		return -EINVAL;
	topic = malloc(n + 1);
	if (!topic)
		return -ENOMEM;
	if (subtopic)
		snprintf(topic, n + 1, "%s/%s", l->base, subtopic);
	else
		snprintf(topic, n + 1, "%s", l->base);
	r = link_publish_abs(l, topic, payload, len, qos, retain);
	free(topic);
	return r;
}

int link_subscribe_abs(struct mqtt_link *l, const char *filter)
{
	char *copy;

	if (!l || !filter || !*filter || strlen(filter) > TOPIC_MAX ||
	    mosquitto_sub_topic_check2(filter, strlen(filter)) != MOSQ_ERR_SUCCESS ||
	    mosquitto_validate_utf8(filter, (int)strlen(filter)) != MOSQ_ERR_SUCCESS)
		return -EINVAL;
	for (unsigned i = 0; i < l->nfilters; i++)
		if (!strcmp(l->filters[i], filter))
			return 0;
	if (l->nfilters == FILTERS_MAX)
		return -ENOSPC;
	copy = strdup(filter);
	if (!copy)
		return -ENOMEM;
	l->filters[l->nfilters++] = copy;
	if (l->state == LS_UP) {
		mosquitto_subscribe(l->mosq, NULL, copy, 1);
		update_interest(l);
	}
	return 0;
}
