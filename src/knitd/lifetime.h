/* SPDX-License-Identifier: MIT */
/*
 * How long our NAT keeps an idle UDP mapping, so that direct paths are kept
 * alive just often enough (RFC 5780 section 4.6, binding lifetime).
 *
 * Socket X asks a STUN server for its mapping twice, 2.5 s apart (a mapping
 * that has seen replies for a while is what a direct path has: conntrack
 * gives it its longer "stream" timeout).  Then X stays silent for each
 * interval of a ladder in turn, and at the end of each a second socket Y
 * asks the server to answer to X's mapped port (RESPONSE-PORT).  The answer
 * reaches X only if the mapping outlived the silence; it also refreshes the
 * mapping, so the next, longer interval starts from it.  Every filtering
 * behaviour lets it in: X sent to exactly that server address and port.
 */
#ifndef KNIT_KNITD_LIFETIME_H
#define KNIT_KNITD_LIFETIME_H
#include <stdbool.h>

#include "lib/addr.h"
#include "lib/evloop.h"
#include "traversal/plan.h"

#define LIFETIME_MAX_STEPS 16

struct lifetime_result {
	bool valid;	    /* the server answered at all (and knows RESPONSE-PORT) */
	unsigned idle_ms;   /* the longest silence the mapping survived, 0: none */
	bool at_least;	    /* it survived every step: maybe much longer */
	unsigned failed_ms; /* the silence it did not survive (when !at_least) */
	char why[96];	    /* when !valid */
};

struct lifetime_ops {
	void (*done)(void *arg, const struct lifetime_result *r);
};

struct lifetime;

/* ladder_ms: the silences to try, increasing (at most LIFETIME_MAX_STEPS);
 * NULL for the default, 2 s to 120 s. */
int lifetime_new(struct lifetime **out, struct evloop *loop, const unsigned *ladder_ms, unsigned n,
		 const struct lifetime_ops *ops, void *arg);
/* (Re)starts a measurement against this STUN server, dropping any running. */
int lifetime_start(struct lifetime *lt, const union sockaddr_inet *stun);
bool lifetime_running(const struct lifetime *lt);
void lifetime_free(struct lifetime *lt);

/*
 * Whether to measure (again), after each netcheck: once; again when the NAT
 * in front of us is another (the node moved); after a failed measurement
 * (a server that does not know RESPONSE-PORT, or never answered) only for
 * another NAT or server, or LIFETIME_RETRY_MS later, not at every netcheck
 * (two sockets and three requests each time, for the same answer).
 */
#define LIFETIME_RETRY_MS (30 * 60 * 1000)
struct lifetime_memo {
	bool started, ended, valid;
	enum nat_mapping mapping;
	enum nat_filtering filtering;
	union sockaddr_inet stun;
	uint64_t ended_ns;
};
bool lifetime_due(const struct lifetime_memo *m, const struct nat_class *nat,
		  const union sockaddr_inet *stun, uint64_t now_ns);
#endif
