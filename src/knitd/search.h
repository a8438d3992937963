/* SPDX-License-Identifier: MIT */
/*
 * The birthday search, for the NAT pairs plain punching cannot open
 * (traversal/plan.h).  The plan gives each side a role:
 *   - SEARCH_OPEN: PLAN_SEARCH_SOCKETS sockets of our own each send a disco
 *     ping to the peer's known address (again every 2 s);
 *   - SEARCH_SPRAY: the node's socket sends disco pings to ports of the
 *     peer's public address: the peer's window when it has one, else random
 *     ports of the whole range;
 *   - SEARCH_SWEEP: the node's socket pings every port of the peer's
 *     window, over and over;
 *   - SEARCH_OPEN_SWEEP: sockets of our own each ping every port of the
 *     peer's window in turn (every one a fresh mapping of ours).
 * Probes go at the plan's rate, up to its count (search_probe aims them).
 * A probe that lands is answered from where it landed; a socket of ours
 * that wins then carries the peer's traffic: the device takes it as a side
 * socket (wg/device.h), sends on it from its tx thread and reads it in
 * batches.  Bounded: 256 sockets,
 * 15 s, then the sockets close and the peer stays on its relay until a
 * later try.
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
/* The device's side-socket slot for our socket fd (lib/addr.h's
 * AF_KNIT_SIDE), handing it to the device first if need be (the first
 * becomes the winner; at most 4 a search: a sprayer may hit more than one
 * of ours and use any); -1 for a socket not ours (one already closed) or
 * when no slot is left.  The device closes them when the search ends. */
int search_side_slot(struct search *s, int fd);
#endif
