/* SPDX-License-Identifier: MIT */
/*
 * The birthday search, for the NAT pairs plain punching cannot open
 * (traversal/plan.h).  The opening side makes PLAN_SEARCH_SOCKETS mappings
 * by sending a disco ping from as many sockets of its own to the peer's
 * known address; the spraying side sends disco pings from its one socket to
 * random ports of the opener's public address, at most PLAN_SEARCH_RATE a
 * second and PLAN_SEARCH_PROBES in all.  A probe that lands on one of the
 * mappings is answered from that socket, which then carries the peer's
 * traffic (the data plane reaches it through the relay-path hand-off, relay
 * id 0).  Bounded: 256 sockets, 15 s, then the sockets close and the peer
 * stays on its relay until a later try.
 */
#ifndef KNIT_KNITD_SEARCH_H
#define KNIT_KNITD_SEARCH_H
#include <stdbool.h>
#include <stdint.h>

#include "disco/disco.h"
#include "lib/addr.h"
#include "lib/evloop.h"
#include "traversal/plan.h"

struct peer_paths;
struct search;

/* Starts a search towards target: for an opener, the address to make its
 * mappings towards; for a sprayer, the opener's public address (any port). */
int search_start(struct search **out, struct peer_paths *pp, bool opener,
		 const union sockaddr_inet *target);
void search_free(struct search *s);
bool search_running(const struct search *s);
/* The spray's transaction id: a pong carrying it is a hit. */
const uint8_t *search_txid(const struct search *s);
/* The opener's socket that won (kept after the search), or -1.  It stays
 * open until search_free(). */
int search_winner_fd(const struct search *s);
#endif
