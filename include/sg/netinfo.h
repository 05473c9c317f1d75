/* What the gateway knows of its own network attachment (status page, UDP
 * discovery): the primary interface — the first one that is up, not loopback
 * and has an IPv4 address — its name, IPv4 address and MAC. */
#ifndef SG_NETINFO_H
#define SG_NETINFO_H

#include <stdbool.h>
#include <stdint.h>

struct netinfo {
	char ifname[32];
	char ip[48];	   /* "" when none */
	uint8_t mac[6];	   /* zeros when unknown */
	char mac_text[18]; /* "AA:BB:CC:DD:EE:FF" */
	bool wifi;	   /* the interface is wireless (/sys/class/net/IF/wireless) */
};

/* Fill out; 0, or -ENODEV when no interface qualifies (out then holds empty
 * strings and a zero MAC), or -errno. */
int netinfo_primary(struct netinfo *out);

#endif
