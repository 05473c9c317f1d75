/* UDP discovery (R-C7, CONTRACTS §3): answers the 4-byte request 00 00 00 1A
 * with one device-info datagram laid out as Iskra's tools and pyiskra parse
 * it. Socket in the main loop; on/off with the udp_discovery setting. */
#ifndef SG_DISCOVERY_H
#define SG_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct discovery;
struct loop;
struct settings;

/* What discovery uses; every handle outlives it. */
struct disc_env {
	struct loop *loop;
	struct settings *settings; /* udp_discovery; the reply's settings */
	const struct conf *conf;   /* http_bind, discovery_port, identity */
};

#define DISC_PORT 33333
#define DISC_REPLY_LEN 140 /* ≥ 137 as the contract requires */

struct disc_info {
	char ssid[33];
	uint8_t mac[6];
	bool modbus_tcp;
	char model[16];
	char serial[16];
	int sw_ver_x100; /* clamped to 0…255 in the reply */
	char hw_ver;	 /* letter */
	char description[64];
	char location[64];
	int modbus_addr;
};

/* True for a discovery request datagram. */
bool disc_is_request(const uint8_t *buf, size_t len);
/* Lay out the reply in buf (len ≥ DISC_REPLY_LEN, zero-filled first); returns
 * DISC_REPLY_LEN. Strings are cut to their fields; model, serial,
 * description and location are space padded, the SSID NUL padded. */
size_t disc_build_reply(const struct disc_info *in, uint8_t *buf, size_t len);
/* Fill info from settings, board configuration and network. */
void disc_info_fill(const struct disc_env *env, struct disc_info *out);

/* Create; listens on conf.http_bind : conf.discovery_port while the
 * udp_discovery setting is 1, following it by a settings subscription (a
 * failed bind is retried when udp_discovery is set again). 0 or -errno. */
int disc_init(const struct disc_env *env, struct discovery **out);
/* Close. */
void disc_fini(struct discovery *d);

#endif
