/* Standard TCP push (src/mqtt/stdtcp.c): the XML of devices built from the
 * real descriptions in etc/devices (well-formed, every value of the REST JSON
 * present and equal, escaping), and the push itself over real sockets on
 * 127.0.0.1 driven by the real loop: answered, never answered, refused,
 * several queued, a host name, disabled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../src/mqtt/mqtt_int.h"
#include "sg/clock.h"
#include "sg/decode.h"
#include "sg/desc.h"
#include "sg/dev.h"
#include "sg/loop.h"
#include "sg/settings.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static struct desc_set set;
static uint16_t img[4][65536]; /* register image per space */

static int setup(void **state)
{
	char err[256] = "";
	int r;

	(void)state;
	r = desc_load_dir("etc/devices", &set, err, sizeof(err));
	if (r < 0)
		printf("desc_load_dir: %d %s\n", r, err);
	return r < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	desc_set_free(&set);
	return 0;
}

/* ---- devices: encode a value into every field, apply the read blocks ---- */

static void encode_field(const struct desc_field *f, double v)
{
	uint16_t *w = &img[f->space][f->reg];

	if (f->type == DEC_UINT16 || f->type == DEC_INT16 || f->type == DEC_UINT32 ||
	    f->type == DEC_INT32)
		v = round(v / (f->scale != 0 ? f->scale : 1));
	else
		v = v / (f->scale != 0 ? f->scale : 1);
	assert_int_equal(dec_encode_number(f->type, v, w), 0);
}

static void fill(const struct desc *ds)
{
	memset(img, 0, sizeof(img));
	for (unsigned i = 0; i < ds->nmeas; i++) {
		const struct desc_meas *m = &ds->meas[i];

		if (m->f.type == DEC_T7) {
			struct dec_pf pf = {.pf = 0.95 - 0.01 * m->phase,
					    .capacitive = m->phase == 2};

			dec_encode_t7(&pf, &img[m->f.space][m->f.reg]);
		} else {
			encode_field(&m->f, 10.5 + i); /* fits every type and scale */
		}
	}
	for (unsigned k = 0; k < ds->nctr; k++) {
		const struct desc_counter *c = &ds->ctr[k];

		encode_field(&c->value, 1234 + 2 * k);
		if (c->exponent.present)
			encode_field(&c->exponent, k % 2 ? 1 : 0);
		if (c->unit.present)
			encode_field(&c->unit, 1); /* Wh */
		if (c->quadrants.present)
			encode_field(&c->quadrants, k % 2 ? 3 : 6); /* export / import */
	}
}

static void apply_blocks(struct dev *d, const struct desc_block *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		dev_apply_block(d, b[i].space, b[i].start, b[i].count,
				&img[b[i].space][b[i].start]);
}

static void make_dev(struct dev *d, const struct desc *ds, int slot)
{
	dev_reset(d, slot);
	d->d = ds;
	d->cls = ds->cls;
	d->health = DEV_OK;
	d->addr = 33;
	fill(ds);
	apply_blocks(d, ds->meas_blocks, ds->nmeas_blocks);
	apply_blocks(d, ds->ctr_blocks, ds->nctr_blocks);
	apply_blocks(d, ds->cfg_blocks, ds->ncfg_blocks);
	snprintf(d->model, sizeof(d->model), "%.16s", ds->name);
	snprintf(d->serial, sizeof(d->serial), "12345678");
	d->meas_ms = 1795255199123; /* 2026-11-21T09:59:59.123Z */
	d->ctr_ms = 1795255198870;
}

/* ---- a tiny XML reader: well-formedness plus a flat list of elements ---- */

#define XMAX_ATTR 12
#define XMAX_EL 256

struct xel {
	char tag[16];
	char an[XMAX_ATTR][32];
	char av[XMAX_ATTR][128];
	int nattr;
	char text[64];
};

struct xdoc {
	struct xel el[XMAX_EL];
	int n;
};

/* Decode one reference at *p ("&amp;" …) into *out; false if not a valid one. */
static bool xref(const char **p, char *out)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {
	    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		if (!strncmp(*p, ents[i].name, strlen(ents[i].name))) {
			*out = ents[i].c;
			*p += strlen(ents[i].name);
			return true;
		}
	}
	if (strncmp(*p, "&#", 2))
		return false;
	v = strtol(*p + 2, &end, 10);
	if (end == *p + 2 || *end != ';' || v <= 0 || v > 127)
		return false;
	*out = (char)v;
	*p = end + 1;
	return true;
}

/* Text up to stop (not included); no raw '<', every '&' a valid reference. */
static bool xtext(const char **p, char stop, char *out, size_t len)
{
	size_t n = 0;
	char c;

	while (**p && **p != stop) {
		if (**p == '<')
			return false;
		if (**p == '&') {
			if (!xref(p, &c))
				return false;
		} else {
			c = *(*p)++;
		}
		if (n + 1 < len)
			out[n++] = c;
	}
	out[n] = '\0';
	return **p == stop;
}

static bool xname(const char **p, char *out, size_t len)
{
	size_t n = 0;

	if (!(**p == '_' || (**p >= 'a' && **p <= 'z') || (**p >= 'A' && **p <= 'Z')))
		return false;
	while (**p == '_' || **p == '-' || (**p >= 'a' && **p <= 'z') ||
	       (**p >= 'A' && **p <= 'Z') || (**p >= '0' && **p <= '9')) {
		if (n + 1 >= len)
			return false;
		out[n++] = *(*p)++;
	}
	out[n] = '\0';
	return true;
}

static bool xattrs(const char **p, struct xel *e)
{
	for (;;) {
		bool space = false;

		while (**p == ' ' || **p == '\n') {
			(*p)++;
			space = true;
		}
		if (**p == '>' || **p == '/')
			return true;
		if (!space || e->nattr == XMAX_ATTR || !xname(p, e->an[e->nattr], 32))
			return false;
		for (int i = 0; i < e->nattr; i++)
			if (!strcmp(e->an[i], e->an[e->nattr]))
				return false; /* duplicate attribute */
		if (strncmp(*p, "=\"", 2))
			return false;
		*p += 2;
		if (!xtext(p, '"', e->av[e->nattr], 128))
			return false;
		(*p)++;
		e->nattr++;
	}
}

/* Parse a whole document; false when it is not well-formed. */
static bool xparse(const char *s, struct xdoc *x)
{
	const char *p = s;
	char stack[8][16], junk[4096];
	int depth = 0, roots = 0;
	struct xel *cur = NULL;

	x->n = 0;
	if (strncmp(p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38))
		return false;
	p += 38;
	while (*p) {
		if (*p != '<') {
			if (!xtext(&p, '<', cur ? cur->text : junk, cur ? 64 : sizeof(junk)))
				return *p == '\0' && depth == 0 && roots == 1;
			if (!depth &&
			    strspn(cur ? cur->text : junk, " \n") != strlen(cur ? cur->text : junk))
				return false; /* text outside the root */
			continue;
		}
		p++;
		if (*p == '/') {
			char name[16];

			p++;
			if (!depth || !xname(&p, name, sizeof(name)) || *p != '>' ||
			    strcmp(name, stack[depth - 1]))
				return false;
			depth--;
			p++;
			cur = NULL;
			continue;
		}
		if (x->n == XMAX_EL || depth == 8)
			return false;
		cur = &x->el[x->n++];
		memset(cur, 0, sizeof(*cur));
		if (!xname(&p, cur->tag, sizeof(cur->tag)) || !xattrs(&p, cur))
			return false;
		roots += depth == 0;
		if (*p == '/') {
			if (p[1] != '>')
				return false;
			p += 2;
			cur = NULL;
			continue;
		}
		snprintf(stack[depth++], 16, "%s", cur->tag);
		p++;
	}
	return depth == 0 && roots == 1;
}

static const char *xattr(const struct xel *e, const char *name)
{
	for (int i = 0; i < e->nattr; i++)
		if (!strcmp(e->an[i], name))
			return e->av[i];
	return NULL;
}

static const struct xel *xfind(const struct xdoc *x, const char *tag, const char *name,
			       const char *phase)
{
	for (int i = 0; i < x->n; i++) {
		const struct xel *e = &x->el[i];
		const char *ph = xattr(e, "phase");

		if (strcmp(e->tag, tag) || strcmp(xattr(e, "name") ? xattr(e, "name") : "", name))
			continue;
		if ((!phase && !ph) || (phase && ph && !strcmp(ph, phase)))
			return e;
	}
	return NULL;
}

static int xcount(const struct xdoc *x, const char *tag)
{
	int n = 0;

	for (int i = 0; i < x->n; i++)
		n += !strcmp(x->el[i].tag, tag);
	return n;
}

static struct xdoc xd;

/* The checker itself refuses what is not well-formed. */
static void test_checker(void **state)
{
	static const char *const bad[] = {
	    "<a></a>",							   /* no prolog */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a><b></a></b>",  /* crossed */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>&</a>",	   /* bare & */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>&foo;</a>",	   /* unknown entity */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a></a><b></b>",  /* two roots */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=1></a>",	   /* unquoted */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"<\"></a>", /* < in value */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"1\" x=\"2\"></a>",
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a><b></a>", /* unclosed */
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>",
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\ntext<a></a>",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (xparse(bad[i], &xd))
			fail_msg("accepted %s", bad[i]);
	assert_true(
	    xparse("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"&lt;\"><b/>t</a>\n", &xd));
	assert_string_equal(xattr(&xd.el[0], "x"), "<");
}

/* ---- the XML against the JSON ---- */

static void check_num(const struct xel *e, const json_t *v)
{
	char *end;
	double got = strtod(e->text, &end);

	assert_true(end != e->text && *end == '\0');
	if (got != json_number_value(v))
		fail_msg("%s %s: XML %s, JSON %.17g", e->tag, xattr(e, "name"), e->text,
			 json_number_value(v));
}

/* One JSON quantity; returns how many XML <m> it accounts for. */
static int check_m(const struct xdoc *x, const char *name, const char *phase, const json_t *v)
{
	const struct xel *e = xfind(x, "m", name, phase);

	if (!e)
		fail_msg("no <m name=\"%s\" phase=\"%s\">", name, phase ? phase : "(none)");
	if (json_is_object(v)) {
		const json_t *load = json_object_get(v, "load");

		check_num(e, json_object_get(v, "value"));
		assert_string_equal(xattr(e, "unit"),
				    json_string_value(json_object_get(v, "unit")));
		if (load)
			assert_string_equal(xattr(e, "load"), json_string_value(load));
		else
			assert_null(xattr(e, "load"));
	} else {
		check_num(e, v);
	}
	return 1;
}

static int check_object(const struct xdoc *x, json_t *o, const char *phase)
{
	const char *key;
	json_t *v;
	int n = 0;

	json_object_foreach(o, key, v)
	{
		n += check_m(x, key, phase, v);
	}
	return n;
}

static int check_phases(const struct xdoc *x, const json_t *arr, const char *const *labels)
{
	json_t *o;
	size_t i;
	int n = 0;
	char ph[16];

	json_array_foreach(arr, i, o)
	{
		if (labels)
			snprintf(ph, sizeof(ph), "%s", labels[i]);
		else
			snprintf(ph, sizeof(ph), "%d", (int)i + 1);
		n += check_object(x, o, ph);
	}
	return n;
}

static int check_measurements(const struct xdoc *x, json_t *m)
{
	static const char *const ppv[] = {"12", "23", "31"};
	const char *key;
	json_t *v;
	int n = 0;

	json_object_foreach(m, key, v)
	{
		if (!strcmp(key, "Phases"))
			n += check_phases(x, v, NULL);
		else if (!strcmp(key, "PhaseToPhase"))
			n += check_phases(x, v, ppv);
		else if (!strcmp(key, "Total"))
			n += check_object(x, v, "0");
		else
			n += check_m(x, key, NULL, v);
	}
	return n;
}

static int check_counters(const struct xdoc *x, json_t *c, const char *group, const char *res)
{
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(c, group), i, o)
	{
		const char *name = json_string_value(json_object_get(o, "name"));
		const struct xel *e = xfind(x, "c", name, NULL);

		if (!e)
			fail_msg("no <c name=\"%s\">", name);
		check_num(e, json_object_get(o, "value"));
		assert_string_equal(xattr(e, "unit"),
				    json_string_value(json_object_get(o, "unit")));
		assert_string_equal(xattr(e, "direction"),
				    json_string_value(json_object_get(o, "direction")));
		assert_string_equal(xattr(e, "resettable"), res);
	}
	return (int)json_array_size(json_object_get(c, group));
}

/* Render d, parse it, and compare every value with dev_reading_json. */
static void check_xml(const struct dev *d, struct xdoc *x)
{
	char *xml = stdtcp_xml(NULL, d);
	json_t *m = dev_reading_json(d, false), *c = dev_reading_json(d, true);
	json_t *mm = json_object_get(m, "measurements"), *cc = json_object_get(c, "counters");
	int nm, nc;

	assert_non_null(xml);
	if (!xparse(xml, x))
		fail_msg("not well-formed:\n%s", xml);
	nm = check_measurements(x, mm);
	nc =
	    check_counters(x, cc, "non_resettable", "0") + check_counters(x, cc, "resettable", "1");
	assert_int_equal(xcount(x, "m"), nm);
	assert_int_equal(xcount(x, "c"), nc);
	assert_int_equal(xcount(x, "push"), 1);
	assert_int_equal(xcount(x, "device"), 1);
	json_decref(m);
	json_decref(c);
	free(xml);
}

/* ---- XML tests ---- */

static void test_xml_ie38(void **state)
{
	static struct dev d;
	const struct xel *dev, *push, *pf;
	char dir[] = "/tmp/sgd-test-stdtcp-XXXXXX";
	struct mqtt_env a;
	char *xml;

	(void)state;
	make_dev(&d, desc_find(&set, "IE38"), DEV_SLOT_RS485(3));
	d.addr = 3;
	check_xml(&d, &xd);
	assert_int_equal(xcount(&xd, "m"), 34); /* 3 × 9 per phase, 5 totals, f, T */
	assert_int_equal(xcount(&xd, "c"), 20);
	dev = &xd.el[1];
	assert_string_equal(dev->tag, "device");
	assert_string_equal(xattr(dev, "index"), "3");
	assert_string_equal(xattr(dev, "interface"), "RS485 3");
	assert_string_equal(xattr(dev, "model"), "IE38");
	assert_string_equal(xattr(dev, "serial"), "12345678");
	assert_string_equal(xattr(dev, "address"), "3");
	assert_string_equal(xattr(dev, "status"), "ok");
	assert_string_equal(xattr(dev, "read"), "2026-11-21T09:59:59.123Z");
	assert_string_equal(xattr(dev, "counters_read"), "2026-11-21T09:59:58.870Z");
	pf = xfind(&xd, "m", "PF", "2");
	assert_non_null(pf);
	assert_string_equal(xattr(pf, "load"), "cap");
	assert_string_equal(xattr(pf, "unit"), "");
	assert_null(xattr(xfind(&xd, "m", "Frequency", NULL), "phase"));

	/* with settings: the gateway's identity from the settings */
	memset(&a, 0, sizeof(a));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(settings_init(&a.settings, dir, "SG123456", "SG-E1"), 0);
	xml = stdtcp_xml(a.settings, &d);
	assert_non_null(xml);
	assert_true(xparse(xml, &xd));
	push = &xd.el[0];
	assert_string_equal(push->tag, "push");
	assert_string_equal(xattr(push, "gateway"), "SG123456");
	assert_string_equal(xattr(push, "model"), "SG-E1");
	assert_int_equal(strlen(xattr(push, "time")), 20); /* 2026-11-21T10:00:00Z */
	free(xml);
	settings_fini(a.settings);
	assert_int_equal(rmdir(dir), 0);
}

/* Every meter and PQ description: well-formed, every value equal. */
static void test_xml_all_models(void **state)
{
	static struct dev d;
	int n = 0;

	(void)state;
	for (unsigned i = 0; i < set.n; i++) {
		if (set.v[i]->cls != CLASS_METER && set.v[i]->cls != CLASS_PQ)
			continue;
		make_dev(&d, set.v[i], DEV_SLOT_LEFT_IR);
		check_xml(&d, &xd);
		assert_true(xcount(&xd, "m") > 0);
		n++;
	}
	assert_true(n >= 5);
}

static void test_xml_escape(void **state)
{
	static struct dev d;
	const char *nasty = "A<&\"'>B";
	char *xml;

	(void)state;
	make_dev(&d, desc_find(&set, "IE38"), DEV_SLOT_LEFT_IR);
	snprintf(d.description, sizeof(d.description), "%s", nasty);
	snprintf(d.serial, sizeof(d.serial), "<&>");
	xml = stdtcp_xml(NULL, &d);
	assert_non_null(xml);
	assert_non_null(strstr(xml, " description=\"A&lt;&amp;&quot;&apos;&gt;B\""));
	assert_non_null(strstr(xml, " serial=\"&lt;&amp;&gt;\""));
	assert_true(xparse(xml, &xd));
	assert_string_equal(xattr(&xd.el[1], "description"), nasty);
	assert_string_equal(xattr(&xd.el[1], "serial"), "<&>");
	free(xml);

	/* no description from the device: the configured one; tabs survive */
	d.description[0] = '\0';
	snprintf(d.cfg_description, sizeof(d.cfg_description), "Main\tfeeder\x01");
	xml = stdtcp_xml(NULL, &d);
	assert_true(xparse(xml, &xd));
	assert_string_equal(xattr(&xd.el[1], "description"), "Main\tfeeder?");
	free(xml);
}

/* A never-read device: no read times, no values, still well-formed. */
static void test_xml_unread(void **state)
{
	static struct dev d;
	char *xml;

	(void)state;
	dev_reset(&d, DEV_SLOT_LEFT_IR);
	xml = stdtcp_xml(NULL, &d);
	assert_non_null(xml);
	assert_true(xparse(xml, &xd));
	assert_null(xattr(&xd.el[1], "read"));
	assert_int_equal(xcount(&xd, "m"), 0);
	assert_int_equal(xcount(&xd, "c"), 0);
	free(xml);
}

/* ---- the push over real sockets ---- */

#define CONNS 8

struct conn {
	struct srv *s;
	int fd;
	char buf[65536];
	size_t len;
};

struct srv {
	struct loop *l;
	int lfd;
	uint16_t port;
	enum { SILENT, ANSWER, ANSWER_NO_EOL } answer; /* after a whole document */
	struct conn c[CONNS];
	int nconn, docs;
};

struct net {
	char dir[64];
	struct mqtt_env a;
	struct mqtt m;
	struct stdtcp *t;
	struct srv srv;
	bool (*until)(struct net *f);
	int64_t check_timer;
	bool timed_out;
};

static void conn_close(struct conn *c)
{
	loop_del_fd(c->s->l, c->fd);
	close(c->fd);
	c->fd = -1;
}

static void on_data(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	ssize_t r = read(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);

	(void)events;
	if (r <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)r;
	c->buf[c->len] = '\0';
	if (!strstr(c->buf, "</push>\n"))
		return;
	c->s->docs++;
	if (c->s->answer == ANSWER) {
		assert_int_equal(write(fd, "OK\n", 3), 3);
		conn_close(c);
	} else if (c->s->answer == ANSWER_NO_EOL) {
		assert_int_equal(write(fd, "OK", 2), 2); /* and keep the connection */
	}
}

static void on_accept(int fd, uint32_t events, void *arg)
{
	struct srv *s = arg;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	assert_true(c >= 0);
	assert_true(s->nconn < CONNS);
	s->c[s->nconn].s = s;
	s->c[s->nconn].fd = c;
	assert_int_equal(loop_add_fd(s->l, c, EPOLLIN, on_data, &s->c[s->nconn]), 0);
	s->nconn++;
}

/* A TCP socket on 127.0.0.1 with a kernel-chosen port; listening if listen_. */
static int tcp_socket(bool listen_, uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listen_)
		assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void setting(struct net *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void setting(struct net *f, const char *fmt, ...)
{
	char kv[256], err[256];
	char *args[1] = {kv};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(kv, sizeof(kv), fmt, ap);
	va_end(ap);
	if (settings_set_kv(f->a.settings, args, 1, err, sizeof(err)))
		fail_msg("%s: %s", kv, err);
}

static int net_setup(void **state)
{
	struct net *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/sgd-test-stdtcp-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->a.loop), 0);
	assert_int_equal(settings_init(&f->a.settings, f->dir, "SG123456", "SG-E1"), 0);
	f->m.env = f->a;
	f->srv.l = f->a.loop;
	f->srv.answer = ANSWER;
	f->srv.lfd = tcp_socket(true, &f->srv.port);
	assert_int_equal(loop_add_fd(f->a.loop, f->srv.lfd, EPOLLIN, on_accept, &f->srv), 0);
	setting(f, "mqtt1_server=127.0.0.1");
	setting(f, "mqtt1_port=%u", f->srv.port);
	setting(f, "push1_protocol=2");
	*state = f;
	return 0;
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

static int net_teardown(void **state)
{
	struct net *f = *state;

	stdtcp_fini(f->t);
	for (int i = 0; i < f->srv.nconn; i++)
		if (f->srv.c[i].fd >= 0)
			conn_close(&f->srv.c[i]);
	loop_del_fd(f->a.loop, f->srv.lfd);
	close(f->srv.lfd);
	settings_fini(f->a.settings);
	loop_fini(f->a.loop);
	rm_tree(f->dir);
	free(f);
	return 0;
}

static void on_check(void *arg)
{
	struct net *f = arg;

	f->check_timer = 0;
	if (f->until(f)) {
		loop_quit(f->a.loop);
		return;
	}
	f->check_timer = loop_timer_add(f->a.loop, 5, on_check, f);
}

static void on_deadline(void *arg)
{
	struct net *f = arg;

	f->timed_out = true;
	loop_quit(f->a.loop);
}

/* Run the loop until until(f) holds; fail after max_ms. */
static void run_until(struct net *f, bool (*until)(struct net *), int max_ms)
{
	int64_t deadline = loop_timer_add(f->a.loop, max_ms, on_deadline, f);

	f->until = until;
	f->timed_out = false;
	f->check_timer = loop_timer_add(f->a.loop, 0, on_check, f);
	assert_int_equal(loop_run(f->a.loop), 0);
	loop_timer_cancel(f->a.loop, deadline);
	if (f->check_timer > 0)
		loop_timer_cancel(f->a.loop, f->check_timer);
	if (f->timed_out)
		fail_msg("timed out; status \"%s\"", stdtcp_status(f->t));
}

static bool status_is(struct net *f, const char *prefix)
{
	return !strncmp(stdtcp_status(f->t), prefix, strlen(prefix));
}

static bool connected(struct net *f)
{
	return status_is(f, "Connected (last push OK at ");
}

static bool three_docs(struct net *f)
{
	return f->srv.docs == 3 && connected(f);
}

static bool no_answer(struct net *f)
{
	return status_is(f, "Error: no answer within 1 s");
}

static bool refused(struct net *f)
{
	return status_is(f, "Error: connect: Connection refused");
}

static void push_ie38(struct net *f)
{
	static struct dev d;

	make_dev(&d, desc_find(&set, "IE38"), DEV_SLOT_LEFT_IR);
	stdtcp_push(f->t, &d);
}

static void test_push_answered(void **state)
{
	struct net *f = *state;

	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	assert_string_equal(stdtcp_status(f->t), "Waiting for the first push");
	push_ie38(f);
	assert_string_equal(stdtcp_status(f->t), "Connecting");
	run_until(f, connected, 5000);
	assert_int_equal(f->srv.docs, 1);
	assert_true(xparse(f->srv.c[0].buf, &xd));
	assert_string_equal(xattr(&xd.el[0], "gateway"), "SG123456");
	assert_string_equal(xattr(&xd.el[1], "model"), "IE38");
	assert_int_equal(xcount(&xd, "c"), 20);
}

/* Pushes due while one is in flight go one after the other. */
static void test_push_queued(void **state)
{
	struct net *f = *state;

	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	push_ie38(f);
	push_ie38(f);
	push_ie38(f);
	run_until(f, three_docs, 5000);
	assert_int_equal(f->srv.nconn, 3);
	for (int i = 0; i < 3; i++)
		assert_true(xparse(f->srv.c[i].buf, &xd));
}

static void test_push_no_answer(void **state)
{
	struct net *f = *state;
	int64_t t0;

	f->srv.answer = SILENT;
	setting(f, "push1_resp_time=1");
	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	t0 = clock_mono_ms();
	push_ie38(f);
	run_until(f, no_answer, 5000);
	assert_true(clock_mono_ms() - t0 >= 900);
	assert_string_equal(stdtcp_status(f->t), "Error: no answer within 1 s");
	assert_int_equal(f->srv.docs, 1);
}

/* An answer without a line end on a connection kept open still counts. */
static void test_push_answer_no_eol(void **state)
{
	struct net *f = *state;
	int64_t t0;

	f->srv.answer = ANSWER_NO_EOL;
	setting(f, "push1_resp_time=1");
	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	t0 = clock_mono_ms();
	push_ie38(f);
	run_until(f, connected, 5000);
	assert_true(clock_mono_ms() - t0 >= 900);
}

static void test_push_refused(void **state)
{
	struct net *f = *state;
	uint16_t port;
	int fd = tcp_socket(false, &port); /* bound, not listening: refuses */

	setting(f, "mqtt1_port=%u", port);
	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	push_ie38(f);
	run_until(f, refused, 5000);
	close(fd);
	/* back to a listening server: the next push succeeds */
	setting(f, "mqtt1_port=%u", f->srv.port);
	stdtcp_configure(f->t);
	assert_string_equal(stdtcp_status(f->t), "Waiting for the first push");
	push_ie38(f);
	run_until(f, connected, 5000);
}

/* A host name goes through the asynchronous resolver. */
static void test_push_hostname(void **state)
{
	struct net *f = *state;

	setting(f, "mqtt1_server=localhost");
	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	push_ie38(f);
	run_until(f, connected, 10000);
	assert_int_equal(f->srv.docs, 1);
}

static void test_push_no_server(void **state)
{
	struct net *f = *state;

	setting(f, "mqtt1_server=");
	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	push_ie38(f);
	assert_string_equal(stdtcp_status(f->t), "Error: no server configured");
}

/* Disabled: nothing is sent; disabling drops the push in flight and the queue. */
static void test_push_disabled(void **state)
{
	struct net *f = *state;

	f->srv.answer = SILENT;
	setting(f, "push1_protocol=0");
	assert_int_equal(stdtcp_init(&f->m, 1, &f->t), 0);
	assert_string_equal(stdtcp_status(f->t), "Disabled");
	push_ie38(f);
	assert_string_equal(stdtcp_status(f->t), "Disabled");

	setting(f, "push1_protocol=2");
	stdtcp_configure(f->t);
	assert_string_equal(stdtcp_status(f->t), "Waiting for the first push");
	for (int i = 0; i < 70; i++) /* beyond the queue: the oldest are dropped */
		push_ie38(f);
	setting(f, "push1_protocol=1");
	stdtcp_configure(f->t);
	assert_string_equal(stdtcp_status(f->t), "Disabled");
	assert_string_equal(stdtcp_status(NULL), "Disabled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checker),
	    cmocka_unit_test(test_xml_ie38),
	    cmocka_unit_test(test_xml_all_models),
	    cmocka_unit_test(test_xml_escape),
	    cmocka_unit_test(test_xml_unread),
	    cmocka_unit_test_setup_teardown(test_push_answered, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_queued, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_no_answer, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_answer_no_eol, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_refused, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_hostname, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_no_server, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_push_disabled, net_setup, net_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
