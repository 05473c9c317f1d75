/* The primary network interface from getifaddrs(): the first one (in the
 * kernel's order) that is up, not loopback and has an IPv4 address. */
#include "sg/netinfo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool qualifies(const struct ifaddrs *ifa)
{
	return ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET && ifa->ifa_name &&
	       (ifa->ifa_flags & IFF_UP) && !(ifa->ifa_flags & IFF_LOOPBACK);
}

/* The hardware address comes from the interface's AF_PACKET entry, which
 * getifaddrs lists separately from its IP addresses. */
static void find_mac(const struct ifaddrs *list, const char *name, uint8_t mac[6])
{
	for (const struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
		const struct sockaddr_ll *ll = (const struct sockaddr_ll *)ifa->ifa_addr;

		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_PACKET || !ifa->ifa_name ||
		    strcmp(ifa->ifa_name, name) || ll->sll_halen != 6)
			continue;
		memcpy(mac, ll->sll_addr, 6);
		return;
	}
}

static bool is_wireless(const char *ifname)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/class/net/%s/wireless", ifname);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int netinfo_primary(struct netinfo *out)
{
	struct ifaddrs *list;
	const struct ifaddrs *ifa;
	const uint8_t *m;

	memset(out, 0, sizeof(*out));
	if (getifaddrs(&list) < 0)
		return -errno;
	for (ifa = list; ifa && !qualifies(ifa); ifa = ifa->ifa_next)
		;
	if (!ifa) {
		freeifaddrs(list);
		return -ENODEV;
	}
	snprintf(out->ifname, sizeof(out->ifname), "%s", ifa->ifa_name);
	inet_ntop(AF_INET, &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr, out->ip,
		  sizeof(out->ip));
	find_mac(list, ifa->ifa_name, out->mac);
	freeifaddrs(list);
	m = out->mac;
	snprintf(out->mac_text, sizeof(out->mac_text), "%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1],
		 m[2], m[3], m[4], m[5]);
	out->wifi = is_wireless(out->ifname);
	return 0;
}
