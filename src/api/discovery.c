/* UDP discovery (CONTRACTS §3): one non-blocking datagram socket in the main
 * loop answering 00 00 00 1A with the device-info layout Iskra's tools and
 * pyiskra parse. */
#include "sg/discovery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sg/clock.h"
#include "sg/conf.h"
#include "sg/log.h"
#include "sg/loop.h"
#include "sg/netinfo.h"
#include "sg/settings.h"
#include "sg/version.h"

/* Datagrams read per wake-up, so a flood cannot keep the loop here. */
#define DISC_BATCH 64
/* Replies per second at most: a 4-byte request earns a 140-byte reply, so an
 * unbounded responder would be a traffic amplifier for spoofed senders. */
#define DISC_REPLIES_PER_S 50

/* Reply layout: offset and size of each field. */
#define OFF_MARK 3
#define OFF_SSID 8
#define LEN_SSID 12
#define OFF_MAC 20
#define OFF_TCP 26
#define OFF_MODEL 28
#define LEN_MODEL 14
#define OFF_SERIAL 43
#define LEN_SERIAL 8
#define OFF_SW 52
#define OFF_HW 54
#define OFF_DESC 55
#define LEN_DESC 39
#define OFF_LOC 95
#define LEN_LOC 39
#define OFF_MBADDR 136

struct discovery {
	struct disc_env env;
	int fd;		   /* -1 while udp_discovery is off (or the bind failed) */
	int64_t window_ms; /* start of the current one-second reply budget */
	unsigned replies;  /* replies sent in that second */
};

bool disc_is_request(const uint8_t *buf, size_t len)
{
	static const uint8_t req[4] = {0x00, 0x00, 0x00, 0x1A};

	return buf && len == sizeof(req) && !memcmp(buf, req, sizeof(req));
}

/* Padding of the identification fields (model, serial, description,
 * location): spaces, as the real gateway pads its identification (Iskra
 * clients strip spaces; pyiskra's discovery also drops NULs, so both read
 * alike). The SSID stays NUL padded: trailing spaces can be part of a network
 * name, and the bytes between the fields stay 0, as CONTRACTS §3 lays out. */
#define ID_PAD ' '

/* Copy s into a field of size n, padded with pad. A cut backs up to the
 * start of the UTF-8 character it would split, since readers decode the
 * fields as UTF-8. */
static void put_str(uint8_t *field, size_t n, const char *s, uint8_t pad)
{
	size_t len = strlen(s);

	if (len > n) {
		len = n;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(field, s, len);
	memset(field + len, pad, n - len);
}

static uint8_t clamp_byte(int v)
{
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

size_t disc_build_reply(const struct disc_info *in, uint8_t *buf, size_t len)
{
	if (len < DISC_REPLY_LEN)
		return 0;
	memset(buf, 0, DISC_REPLY_LEN);
	buf[OFF_MARK] = 0x1B;
	put_str(buf + OFF_SSID, LEN_SSID, in->ssid, 0);
	memcpy(buf + OFF_MAC, in->mac, sizeof(in->mac));
	buf[OFF_TCP] = in->modbus_tcp ? 1 : 0;
	put_str(buf + OFF_MODEL, LEN_MODEL, in->model, ID_PAD);
	put_str(buf + OFF_SERIAL, LEN_SERIAL, in->serial, ID_PAD);
	buf[OFF_SW] = clamp_byte(in->sw_ver_x100);
	buf[OFF_HW] = (uint8_t)in->hw_ver;
	put_str(buf + OFF_DESC, LEN_DESC, in->description, ID_PAD);
	put_str(buf + OFF_LOC, LEN_LOC, in->location, ID_PAD);
	buf[OFF_MBADDR] = clamp_byte(in->modbus_addr);
	return DISC_REPLY_LEN;
}

/* snprintf-like copy that never fails the build with -Wformat-truncation. */
static void copy_str(char *dst, size_t n, const char *src)
{
	size_t len = src ? strnlen(src, n - 1) : 0;

	memcpy(dst, src ? src : "", len);
	dst[len] = '\0';
}

void disc_info_fill(const struct disc_env *env, struct disc_info *out)
{
	struct netinfo ni;
	const struct settings *s = env->settings;

	memset(out, 0, sizeof(*out));
	if (netinfo_primary(&ni) == 0) {
		memcpy(out->mac, ni.mac, sizeof(out->mac));
		/* The SSID means something only while Wi-Fi carries the traffic. */
		if (ni.wifi)
			copy_str(out->ssid, sizeof(out->ssid), settings_str(s, "wifi_ssid"));
	}
	out->modbus_tcp = settings_int(s, "modbus_tcp_enabled") == 1;
	copy_str(out->model, sizeof(out->model), env->conf->model_type);
	copy_str(out->serial, sizeof(out->serial), env->conf->serial_number);
	out->sw_ver_x100 = SGD_VERSION_X100;
	out->hw_ver = env->conf->hw_version[0];
	copy_str(out->description, sizeof(out->description), settings_str(s, "description"));
	copy_str(out->location, sizeof(out->location), settings_str(s, "location"));
	out->modbus_addr = (int)settings_int(s, "sg_modbus_addr");
}

/* Budget check for one more reply in the current second. */
static bool may_reply(struct discovery *d)
{
	int64_t now = clock_mono_ms();

	if (now - d->window_ms >= 1000) {
		d->window_ms = now;
		d->replies = 0;
	}
	if (d->replies >= DISC_REPLIES_PER_S)
		return false;
	d->replies++;
	return true;
}

/* Answer one request; the reply is built once per wake-up (*have). */
static void answer(struct discovery *d, const struct sockaddr_storage *from, socklen_t fromlen,
		   uint8_t *reply, bool *have)
{
	if (!may_reply(d)) {
		log_debug("discovery: reply budget spent, request dropped");
		return;
	}
	if (!*have) {
		struct disc_info info;

		disc_info_fill(&d->env, &info);
		disc_build_reply(&info, reply, DISC_REPLY_LEN);
		*have = true;
	}
	if (sendto(d->fd, reply, DISC_REPLY_LEN, MSG_DONTWAIT | MSG_NOSIGNAL,
		   (const struct sockaddr *)from, fromlen) < 0)
		log_debug("discovery: reply not sent: %s", strerror(errno));
}

static void on_readable(int fd, uint32_t events, void *arg)
{
	struct discovery *d = arg;
	uint8_t reply[DISC_REPLY_LEN];
	bool have = false;

	(void)events;
	for (int i = 0; i < DISC_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		uint8_t buf[8];
		/* MSG_TRUNC: the real length, so a longer datagram is not taken
		 * for a request by its first four bytes. */
		ssize_t n =
		    recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from, &fromlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_debug("discovery: recvfrom: %s", strerror(errno));
			return;
		}
		if (disc_is_request(buf, (size_t)n))
			answer(d, &from, fromlen, reply, &have);
		else
			log_debug("discovery: ignored a %zd-byte datagram", n);
	}
}

/* conf.http_bind as a socket address with the discovery port. */
static int bind_addr(const struct conf *c, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, c->http_bind, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)c->discovery_port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, c->http_bind, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)c->discovery_port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static int open_socket(struct discovery *d)
{
	const struct conf *c = d->env.conf;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int one = 1, fd, rc;

	if (bind_addr(c, &ss, &sslen) < 0) {
		log_err("discovery: http_bind '%s' is not an IP address", c->http_bind);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		log_errno(LOG_ERR, -rc, "discovery: socket");
		return rc;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		rc = -errno;
		log_errno(LOG_ERR, -rc, "discovery: bind %s port %d", c->http_bind,
			  c->discovery_port);
		goto out_close_fd;
	}
	rc = loop_add_fd(d->env.loop, fd, EPOLLIN, on_readable, d);
	if (rc < 0) {
		log_errno(LOG_ERR, -rc, "discovery: loop_add_fd");
		goto out_close_fd;
	}
	d->fd = fd;
	log_info("discovery: listening on %s port %d", c->http_bind, c->discovery_port);
	return 0;

out_close_fd:
	close(fd);
	return rc;
}

static void close_socket(struct discovery *d)
{
	loop_del_fd(d->env.loop, d->fd);
	close(d->fd);
	d->fd = -1;
	log_info("discovery: stopped");
}

/* Follow the udp_discovery setting (open/close the socket). */
static void disc_configure(const struct settings *s, void *arg)
{
	struct discovery *d = arg;
	bool want = settings_int(s, "udp_discovery") == 1;

	if (want && d->fd < 0)
		open_socket(d); /* failure logged; discovery stays off, the daemon runs */
	else if (!want && d->fd >= 0)
		close_socket(d);
}

int disc_init(const struct disc_env *env, struct discovery **out)
{
	static const char *const keys[] = {"udp_discovery", NULL};
	struct discovery *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->env = *env;
	d->fd = -1;
	d->window_ms = clock_mono_ms();
	rc = settings_subscribe(env->settings, keys, disc_configure, d);
	if (rc < 0) {
		free(d);
		return rc;
	}
	disc_configure(env->settings, d);
	*out = d;
	return 0;
}

void disc_fini(struct discovery *d)
{
	if (!d)
		return;
	settings_unsubscribe(d->env.settings, disc_configure, d);
	if (d->fd >= 0) {
		loop_del_fd(d->env.loop, d->fd);
		close(d->fd);
	}
	free(d);
}
