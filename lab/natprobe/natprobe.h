/* SPDX-License-Identifier: MIT */
/*
 * natprobe: an RFC 5780 STUN server with two addresses and two ports, and a
 * client that classifies the NAT in front of it (mapping, filtering, port
 * allocation, hairpinning, whether UDP passes at all).  The NAT lab certifies
 * each of its NAT kinds with it.
 */
#ifndef KNIT_LAB_NATPROBE_H
#define KNIT_LAB_NATPROBE_H

#include <stdbool.h>

#include "lib/addr.h"

struct server_opts {
	union sockaddr_inet addr[2]; /* port unset; naddr of them */
	int naddr;
	unsigned port[2];
	int nport;
};

struct client_opts {
	union sockaddr_inet server; /* the primary address A1:P1 */
	bool json;
	unsigned timeout_ms; /* how long to wait for any one answer */
	int sockets;	     /* sockets of the port allocation test */
};

int server_run(const struct server_opts *o);
int client_run(const struct client_opts *o);

/* A UDP socket of family bound to addr (or the wildcard) and port; -errno. */
int udp_socket(int family, const union sockaddr_inet *addr, unsigned port);
/* Between the codec's sockaddr_storage and lib/addr's endpoints. */
void ep_to_ss(struct sockaddr_storage *ss, const union sockaddr_inet *ep);
void ss_to_ep(union sockaddr_inet *ep, const struct sockaddr_storage *ss);

#endif
