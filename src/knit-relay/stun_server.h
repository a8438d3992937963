/* SPDX-License-Identifier: MIT */
/*
 * The relay's STUN responder: RFC 8489 Binding requests on one UDP socket
 * answered with XOR-MAPPED-ADDRESS (the request's source) and FINGERPRINT.
 * On [::] the socket is dual-stack; on any other address, that family only.
 */
#ifndef KNIT_RELAY_STUN_SERVER_H
#define KNIT_RELAY_STUN_SERVER_H

#include <stdint.h>

#include "knit-relay/relay.h"
#include "lib/addr.h"
#include "lib/evloop.h"

struct stun_server;

/* Counts into stats->stun_requests and stats->stun_invalid.  0 or -errno
 * (logged with the address). */
int stun_server_new(struct stun_server **out, struct evloop *loop, const union sockaddr_inet *addr,
		    struct relay_stats *stats);
void stun_server_free(struct stun_server *s);
uint16_t stun_server_port(const struct stun_server *s);

#endif
