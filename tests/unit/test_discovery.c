/* UDP discovery: the reply layout byte by byte as CONTRACTS §3 and pyiskra
 * read it, cutting of long and UTF-8 strings, request recognition, and one
 * round trip over a real socket in the loop (plus switching it off and on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sg/conf.h"
#include "sg/discovery.h"
#include "sg/loop.h"
#include "sg/settings.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t request[4] = {0x00, 0x00, 0x00, 0x1A};

static struct disc_info sample(void)
{
	struct disc_info in;

	memset(&in, 0, sizeof(in));
	strcpy(in.ssid, "homenet");
	memcpy(in.mac, "\xF0\x08\xD1\x84\x58\x3C", 6);
	in.modbus_tcp = true;
	strcpy(in.model, "SG-W1A");
	strcpy(in.serial, "IS000966");
	in.sw_ver_x100 = 208;
	in.hw_ver = 'D';
	strcpy(in.description, "R&D lab");
	strcpy(in.location, "Kranj");
	in.modbus_addr = 34;
	return in;
}

/* The field [off, off+n) holds s followed only by pad bytes. */
static void assert_padded(const uint8_t *buf, size_t off, size_t n, const char *s, uint8_t pad)
{
	size_t len = strlen(s);

	assert_true(len <= n);
	assert_memory_equal(buf + off, s, len);
	for (size_t i = len; i < n; i++)
		if (buf[off + i] != pad)
			fail_msg("byte %zu after '%s' is 0x%02x, expected 0x%02x", off + i, s,
				 buf[off + i], pad);
}

/* The SSID: NUL padded (trailing spaces may belong to a network name). */
static void assert_ssid(const uint8_t *buf, const char *s)
{
	assert_padded(buf, 8, 12, s, 0);
}

/* Identification fields: space padded as on the real gateway, since Iskra
 * clients strip spaces only. */
static void assert_field(const uint8_t *buf, size_t off, size_t n, const char *s)
{
	assert_padded(buf, off, n, s, ' ');
}

/* Every byte not covered by a field is zero (except the marker). */
static void assert_gaps_zero(const uint8_t *buf)
{
	static const size_t gaps[] = {0,  1,  2,  4,   5,   6,	 7,   27, 42,
				      51, 53, 94, 134, 135, 137, 138, 139};

	for (size_t i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++)
		if (buf[gaps[i]] != 0)
			fail_msg("gap byte %zu is 0x%02x", gaps[i], buf[gaps[i]]);
}

static void test_layout(void **state)
{
	struct disc_info in = sample();
	uint8_t buf[DISC_REPLY_LEN + 10];

	(void)state;
	memset(buf, 0xEE, sizeof(buf));
	assert_int_equal(disc_build_reply(&in, buf, sizeof(buf)), DISC_REPLY_LEN);
	assert_true(DISC_REPLY_LEN >= 137);
	assert_int_equal(buf[3], 0x1B);
	assert_ssid(buf, "homenet");		  /* ssid = buf[8:20] */
	assert_memory_equal(buf + 20, in.mac, 6); /* mac = buf[20:26] */
	assert_int_equal(buf[26], 1);		  /* tcp */
	assert_field(buf, 28, 14, "SG-W1A");	  /* model = buf[28:42] */
	assert_field(buf, 43, 8, "IS000966");	  /* serial = buf[43:51] */
	assert_int_equal(buf[52], 208);		  /* sw = 2.08 */
	assert_int_equal(buf[54], 'D');		  /* hw */
	assert_field(buf, 55, 39, "R&D lab");	  /* description = buf[55:94] */
	assert_field(buf, 95, 39, "Kranj");	  /* location = buf[95:134] */
	assert_int_equal(buf[136], 34);		  /* modbus address */
	assert_gaps_zero(buf);
	/* Nothing written past the reply. */
	for (size_t i = DISC_REPLY_LEN; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xEE);

	/* Too small a buffer: nothing. */
	assert_int_equal(disc_build_reply(&in, buf, DISC_REPLY_LEN - 1), 0);
}

static void test_flags_and_clamps(void **state)
{
	struct disc_info in = sample();
	uint8_t buf[DISC_REPLY_LEN];

	(void)state;
	in.modbus_tcp = false;
	in.sw_ver_x100 = 300;
	in.modbus_addr = 247;
	disc_build_reply(&in, buf, sizeof(buf));
	assert_int_equal(buf[26], 0);
	assert_int_equal(buf[52], 255);
	assert_int_equal(buf[136], 247);
	in.sw_ver_x100 = -5;
	disc_build_reply(&in, buf, sizeof(buf));
	assert_int_equal(buf[52], 0);
	in.ssid[0] = '\0';
	disc_build_reply(&in, buf, sizeof(buf));
	assert_ssid(buf, "");
}

/* Strings longer than their fields are cut there and never reach the next field. */
static void test_long_strings(void **state)
{
	struct disc_info in = sample();
	uint8_t buf[DISC_REPLY_LEN];

	(void)state;
	memset(in.ssid, 'S', sizeof(in.ssid) - 1);
	memset(in.model, 'M', sizeof(in.model) - 1);
	memset(in.serial, 'N', sizeof(in.serial) - 1);
	memset(in.description, 'D', sizeof(in.description) - 1);
	memset(in.location, 'L', sizeof(in.location) - 1);
	disc_build_reply(&in, buf, sizeof(buf));
	assert_ssid(buf, "SSSSSSSSSSSS");
	assert_memory_equal(buf + 20, in.mac, 6);
	assert_field(buf, 28, 14, "MMMMMMMMMMMMMM");
	assert_field(buf, 43, 8, "NNNNNNNN");
	assert_int_equal(buf[52], 208);
	assert_int_equal(buf[54], 'D');
	for (int i = 55; i < 94; i++)
		assert_int_equal(buf[i], 'D');
	for (int i = 95; i < 134; i++)
		assert_int_equal(buf[i], 'L');
	assert_int_equal(buf[136], 34);
	assert_gaps_zero(buf);
}

/* A cut never leaves half a UTF-8 character. */
static void test_utf8_cut(void **state)
{
	struct disc_info in = sample();
	uint8_t buf[DISC_REPLY_LEN];

	(void)state;
	/* "ABCDEFGHIJK" + "č" (C4 8D): the 2-byte char would straddle byte 12. */
	strcpy(in.ssid, "ABCDEFGHIJK\xC4\x8D");
	/* 13 ASCII + "€" (E2 82 AC): only one byte of it would fit in 14. */
	strcpy(in.model, "ABCDEFGHIJKLM\xE2\x82\xAC");
	/* 6 ASCII + "😀" (F0 9F 98 80). */
	strcpy(in.serial, "ABCDEF\xF0\x9F\x98\x80");
	/* 12 × "č" = 24 bytes, then "luč" fits: 24 + 4 = 28 ≤ 39 */
	strcpy(in.description, "čččččččččččč luč");
	/* 20 × "č" = 40 bytes: the 20th does not fit, 19 do (38 bytes). */
	strcpy(in.location, "čččččččččččččččččččč");
	disc_build_reply(&in, buf, sizeof(buf));
	assert_ssid(buf, "ABCDEFGHIJK");
	assert_field(buf, 28, 14, "ABCDEFGHIJKLM");
	assert_field(buf, 43, 8, "ABCDEF");
	assert_field(buf, 55, 39, "čččččččččččč luč");
	assert_field(buf, 95, 39, "ččččččččččččččččččč");

	/* An exact fit is kept whole. */
	strcpy(in.ssid, "ABCDEFGHIJ\xC4\x8D");
	disc_build_reply(&in, buf, sizeof(buf));
	assert_ssid(buf, "ABCDEFGHIJ\xC4\x8D");
}

static void test_request(void **state)
{
	static const uint8_t longer[5] = {0x00, 0x00, 0x00, 0x1A, 0x00};
	static const uint8_t reply_mark[4] = {0x00, 0x00, 0x00, 0x1B};
	static const uint8_t wrong[4] = {0x01, 0x00, 0x00, 0x1A};

	(void)state;
	assert_true(disc_is_request(request, 4));
	assert_false(disc_is_request(request, 3));
	assert_false(disc_is_request(longer, 5));
	assert_false(disc_is_request(reply_mark, 4));
	assert_false(disc_is_request(wrong, 4));
	assert_false(disc_is_request(request, 0));
	assert_false(disc_is_request(NULL, 0));
}

/* --- over a real socket --- */

struct client {
	struct loop *loop;
	uint8_t buf[512];
	ssize_t n;
	int replies;
};

static void on_client(int fd, uint32_t events, void *arg)
{
	struct client *c = arg;

	(void)events;
	c->n = recv(fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
	if (c->n > 0)
		c->replies++;
	loop_quit(c->loop);
}

static void on_timeout(void *arg)
{
	loop_quit(arg);
}

static int udp_socket(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static uint16_t free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = udp_socket(0);

	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void send_to(int fd, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)len);
}

/* Run the loop until the client got a datagram or 2 s passed. */
static void run_once(struct client *c)
{
	int64_t t = loop_timer_add(c->loop, 2000, on_timeout, c->loop);

	assert_true(t > 0);
	c->n = -1;
	assert_int_equal(loop_run(c->loop), 0);
	loop_timer_cancel(c->loop, t);
}

static void rm_tree(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

/* The handles discovery is given (what main.c passes in its disc_env). */
struct world {
	struct conf conf;
	struct loop *loop;
	struct settings *settings;
};

static struct disc_env env_of(struct world *w)
{
	return (struct disc_env){.loop = w->loop, .settings = w->settings, .conf = &w->conf};
}

static void set_discovery(struct world *a, const char *kv)
{
	char err[256];
	char *args[1] = {(char *)kv};

	if (settings_set_kv(a->settings, args, 1, err, sizeof(err)))
		fail_msg("%s: %s", kv, err);
}

static void test_socket(void **state)
{
	char dir[] = "/tmp/sgd-test-disc-XXXXXX";
	struct world a;
	struct discovery *d = NULL;
	struct disc_env env;
	struct client c = {0};
	uint16_t port = free_port();
	int fd, probe;

	(void)state;
	memset(&a, 0, sizeof(a));
	conf_defaults(&a.conf);
	strcpy(a.conf.http_bind, "127.0.0.1");
	strcpy(a.conf.model_type, "SG-E1");
	strcpy(a.conf.serial_number, "SG123456");
	a.conf.discovery_port = port;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(loop_init(&a.loop), 0);
	assert_int_equal(settings_init(&a.settings, dir, "SG123456", "SG-E1"), 0);
	env = env_of(&a);
	assert_int_equal(disc_init(&env, &d), 0);

	fd = udp_socket(0);
	assert_true(fd >= 0);
	c.loop = a.loop;
	assert_int_equal(loop_add_fd(a.loop, fd, EPOLLIN, on_client, &c), 0);

	/* Junk first, then a real request: exactly one reply, to our port. */
	send_to(fd, port, "\x00\x00\x00\x1A\x00", 5);
	send_to(fd, port, "hello", 5);
	send_to(fd, port, request, sizeof(request));
	run_once(&c);
	assert_int_equal(c.n, DISC_REPLY_LEN);
	assert_int_equal(c.buf[3], 0x1B);
	assert_field(c.buf, 28, 14, "SG-E1");
	assert_field(c.buf, 43, 8, "SG123456");
	assert_field(c.buf, 55, 39, "SG"); /* default description */
	assert_int_equal(c.buf[26], 1);	   /* modbus_tcp_enabled default */
	assert_int_equal(c.buf[136], 34);  /* sg_modbus_addr default */
	assert_int_equal(c.buf[54], a.conf.hw_version[0]);
	assert_int_equal(recv(fd, c.buf, sizeof(c.buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);

	/* Off: the port is released; on again: answered again. */
	set_discovery(&a, "udp_discovery=0"); /* told through its settings subscription */
	probe = udp_socket(port);
	assert_true(probe >= 0);
	close(probe);
	set_discovery(&a, "udp_discovery=1");
	send_to(fd, port, request, sizeof(request));
	run_once(&c);
	assert_int_equal(c.n, DISC_REPLY_LEN);
	assert_int_equal(c.replies, 2);

	loop_del_fd(a.loop, fd);
	close(fd);
	disc_fini(d);
	settings_fini(a.settings);
	loop_fini(a.loop);
	rm_tree(dir);
}

/* A bind that fails (port taken) is not fatal: init succeeds, nothing listens. */
static void test_bind_failure(void **state)
{
	char dir[] = "/tmp/sgd-test-disc-XXXXXX";
	struct world a;
	struct discovery *d = NULL;
	struct disc_env env;
	int taken = udp_socket(0);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	(void)state;
	assert_true(taken >= 0);
	assert_int_equal(getsockname(taken, (struct sockaddr *)&sin, &len), 0);
	memset(&a, 0, sizeof(a));
	conf_defaults(&a.conf);
	strcpy(a.conf.http_bind, "127.0.0.1");
	a.conf.discovery_port = ntohs(sin.sin_port);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(loop_init(&a.loop), 0);
	assert_int_equal(settings_init(&a.settings, dir, "SG123456", "SG-E1"), 0);
	env = env_of(&a);
	assert_int_equal(disc_init(&env, &d), 0);
	assert_non_null(d);
	disc_fini(d);
	/* Neither is a bind address that is not an IP literal. */
	strcpy(a.conf.http_bind, "localhost");
	env = env_of(&a);
	assert_int_equal(disc_init(&env, &d), 0);
	disc_fini(d);
	close(taken);
	settings_fini(a.settings);
	loop_fini(a.loop);
	rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),	 cmocka_unit_test(test_flags_and_clamps),
	    cmocka_unit_test(test_long_strings), cmocka_unit_test(test_utf8_cut),
	    cmocka_unit_test(test_request),	 cmocka_unit_test(test_socket),
	    cmocka_unit_test(test_bind_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
