/* SPDX-License-Identifier: MIT */
/*
 * The relay's STUN responder: RFC 8489 Binding requests on UDP answered with
 * XOR-MAPPED-ADDRESS (the request's source) and FINGERPRINT.  On [::] the
 * socket is dual-stack; on any other address, that family only.
 *
 * With an alternate address and port (--stun-alt A2:P2), it is an RFC 5780
 * server as the lab's natprobe is: four sockets A1:P1 (the primary), A1:P2,
 * A2:P1, A2:P2; every answer carries OTHER-ADDRESS (the opposite corner) and
 * RESPONSE-ORIGIN, and CHANGE-REQUEST is honoured (the answer leaves from the
 * other address and/or port), so that nodes can classify their NAT's
 * filtering against a relay.  Without one, a CHANGE-REQUEST that asks for a
 * change is answered with 420 (RFC 5780 section 6.1: no alternate address).
 */
#ifndef KNIT_RELAY_STUN_SERVER_H
#define KNIT_RELAY_STUN_SERVER_H

#include <stdint.h>

#include "knit-relay/relay.h"
#include "lib/addr.h"
#include "lib/evloop.h"

struct stun_server;

/*
 * alt: NULL or family 0 for none; else of addr's family, with an address and
 * a port that both differ from addr's, and addr must not be a wildcard (an
 * answer's source must be known).  Counts into stats->stun_requests and
 * stats->stun_invalid.  0 or -errno (logged with the address).
 */
int stun_server_new(struct stun_server **out, struct evloop *loop, const union sockaddr_inet *addr,
		    const union sockaddr_inet *alt, struct relay_stats *stats);
void stun_server_free(struct stun_server *s);
uint16_t stun_server_port(const struct stun_server *s);
/* -EINVAL with why set when alt cannot go with addr (see above). */
int stun_server_check_alt(const union sockaddr_inet *addr, const union sockaddr_inet *alt,
			  const char **why);

#endif
