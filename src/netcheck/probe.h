/* SPDX-License-Identifier: MIT */
/*
 * The probe engine of NAT behaviour discovery, on lib/evloop: runs a batch of
 * probes (STUN Binding requests, or opaque datagrams for hairpinning), each
 * sent through a socket its caller owns and retransmitted on a schedule
 * until answered or out of time, and calls back once every probe of the
 * batch has settled.
 *
 * Sockets are the caller's: a socket is an int that the engine hands back to
 * ops->send (default: sendto() on it as a file descriptor).  Answers reach
 * the engine through nc_engine_input(), either from the caller (knitd's
 * shared UDP socket, whose STUN answers come off the data path) or from a
 * descriptor the caller asked the engine to watch (nc_engine_watch_fd()).
 *
 * A probe whose first send finds no route (ENETUNREACH, EAFNOSUPPORT,
 * EADDRNOTAVAIL) fails at once: waiting out its tries cannot help.
 *
 * Every try of a STUN probe carries its own transaction id (the last byte
 * counts the try), so a round trip is measured from the try that was
 * answered, not from the first.  Answers are untrusted: parsed by the
 * bounds-checked codec, matched on the transaction id, the socket they
 * arrived on and, when the probe says so, their source address (a server
 * that ignored CHANGE-REQUEST must not pass for an open NAT).
 */
#ifndef KNIT_NETCHECK_PROBE_H
#define KNIT_NETCHECK_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"
#include "lib/evloop.h"
#include "stun/stun.h"

#define NC_MAX_TRIES	 8
#define NC_MAX_PROBES	 64
#define NC_MAX_WATCHED	 32
#define NC_HAIRPIN_MAGIC "knit-nc-hairpin!" /* 16 bytes, then a 16-byte nonce */
#define NC_HAIRPIN_LEN	 32

enum nc_probe_state { NC_P_WAITING, NC_P_RUNNING, NC_P_DONE, NC_P_FAILED };

struct nc_probe {
	/* Set by nc_probe_stun() / nc_probe_datagram(). */
	const char *what; /* for messages: "mapping test to A2:P1" */
	int sock;	  /* sent from */
	int recv_sock;	  /* where the answer arrives */
	union sockaddr_inet dst;
	union sockaddr_inet expect_from; /* STUN: family 0 = any source */
	bool is_stun;
	uint32_t change; /* CHANGE-REQUEST flags */
	int after;	 /* index in the batch of a probe that must be done first, -1 */
	uint8_t msg[STUN_BUF_LEN];
	size_t len;

	/* Results. */
	enum nc_probe_state state;
	int tries;
	int sent;	/* sends that succeeded */
	int send_err;	/* the last failed send's errno */
	int error_code; /* a STUN error response's code */
	uint64_t start_ns, next_ns;
	uint64_t sent_ns[NC_MAX_TRIES];
	uint64_t rtt_ns; /* from the try that was answered */
	struct stun_msg resp;
	union sockaddr_inet from; /* the answer's source */
};

struct nc_engine;

struct nc_engine_ops {
	/* Sends len bytes from socket sock; 0 or -errno.  NULL: sendto(). */
	int (*send)(void *arg, int sock, const union sockaddr_inet *dst, const void *buf,
		    size_t len);
	/* Every probe of the batch has settled (nc_engine_start). */
	void (*done)(void *arg, struct nc_probe *probes, size_t n);
};

/* Each try of a probe is sent timeout_ms / NC_MAX_TRIES apart, and a probe
 * fails timeout_ms after its first try. */
int nc_engine_new(struct nc_engine **out, struct evloop *loop, unsigned timeout_ms,
		  const struct nc_engine_ops *ops, void *arg);
/* Stops watching every descriptor and cancels the batch (no done call). */
void nc_engine_free(struct nc_engine *e);

/* Reads fd on the loop and feeds each datagram to nc_engine_input(e, fd, ...).
 * The engine never closes it; nc_engine_unwatch_fd() or _free() stop it. */
int nc_engine_watch_fd(struct nc_engine *e, int fd);
void nc_engine_unwatch_fd(struct nc_engine *e, int fd);

/*
 * Runs probes[0..n) (the engine keeps the pointer: the array must live until
 * done is called or the batch is cancelled).  -EBUSY while a batch runs,
 * -EINVAL for a bad batch.  done is called from the loop, never from here.
 */
int nc_engine_start(struct nc_engine *e, struct nc_probe *probes, size_t n);
bool nc_engine_busy(const struct nc_engine *e);
/* Drops the running batch without calling done. */
void nc_engine_cancel(struct nc_engine *e);

/* A datagram that arrived on socket sock: true when it answered a probe of
 * the running batch (and was consumed). */
bool nc_engine_input(struct nc_engine *e, int sock, const uint8_t *buf, size_t len,
		     const union sockaddr_inet *from);

/* A STUN Binding request (CHANGE-REQUEST flags when change != 0) from sock to
 * dst, answered on the same socket; expect_from NULL accepts any source. */
void nc_probe_stun(struct nc_probe *p, const char *what, int sock, const union sockaddr_inet *dst,
		   uint32_t change, const union sockaddr_inet *expect_from);
/* An opaque datagram from sock to dst that must arrive, unchanged, on
 * recv_sock (hairpinning). */
void nc_probe_datagram(struct nc_probe *p, const char *what, int sock, int recv_sock,
		       const union sockaddr_inet *dst);

/* The mapped address of a done STUN probe, unmapped from ::ffff:a.b.c.d. */
void nc_probe_mapped(const struct nc_probe *p, union sockaddr_inet *out);

/* A non-blocking UDP socket of family bound to addr (NULL: the wildcard) and
 * port; IPv6 sockets are IPv6-only.  Returns the descriptor or -errno. */
int nc_udp_socket(int family, const union sockaddr_inet *addr, unsigned port);
/* Between the codec's sockaddr_storage and lib/addr's endpoints. */
void nc_ep_to_ss(struct sockaddr_storage *ss, const union sockaddr_inet *ep);
void nc_ss_to_ep(union sockaddr_inet *ep, const struct sockaddr_storage *ss);
uint16_t nc_ep_port(const union sockaddr_inet *ep);
void nc_ep_set_port(union sockaddr_inet *ep, uint16_t port);

#endif
