/* SPDX-License-Identifier: MIT */
/*
 * UPnP-IGD through miniupnpc, whose HTTP calls block: one worker thread
 * takes one command at a time and reports its result through an eventfd
 * the owner's event loop watches.
 *
 * Discovery is our own unicast SSDP search sent to the gateway (not
 * miniupnpc's multicast upnpDiscover), and every URL miniupnpc would fetch
 * must name the gateway's literal address: nothing else is ever contacted.
 */
#ifndef KNIT_PORTMAP_UPNP_H
#define KNIT_PORTMAP_UPNP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSDP_PORT    1900
#define SSDP_MSG_MAX 1500
#define UPNP_URL_MAX 256

/* "M-SEARCH * HTTP/1.1" for InternetGatewayDevice:version, unicast to gw.
 * Returns the length or -ENOSPC. */
int ssdp_build_msearch(char *buf, size_t len, struct in_addr gw, int version);
/* The LOCATION header of an SSDP answer (at most url_len - 1 bytes).
 * Returns 0, -ENOENT (none) or -EBADMSG (too long, not text). */
int ssdp_parse_location(const char *buf, size_t len, char *url, size_t url_len);
/* True when url is "http://A.B.C.D[:port]/..." with A.B.C.D == gw. */
bool upnp_url_on_host(const char *url, struct in_addr gw);

enum upnp_cmd {
	UPNP_CMD_PROBE = 1, /* search, description, external address */
	UPNP_CMD_MAP,	    /* add (or renew) the mapping */
};

struct upnp_request {
	enum upnp_cmd cmd;
	struct in_addr gw, local;
	uint16_t internal_port;
	uint32_t lifetime;
};

struct upnp_result {
	enum upnp_cmd cmd;
	int err; /* 0 or -errno (-EHOSTUNREACH: no IGD; -EPROTO: refused) */
	char why[128];
	struct in_addr external_addr;
	uint16_t external_port;
	uint32_t lifetime; /* the lease granted; 0: permanent */
};

struct upnp_worker;

/* Starts the thread; *event_fd becomes readable when a result is ready. */
int upnp_worker_new(struct upnp_worker **out, int *event_fd);
/* Queues a command: 0, or -EBUSY while one is in flight. */
int upnp_worker_submit(struct upnp_worker *w, const struct upnp_request *req);
/* Takes the finished command's result (after event_fd was readable). */
bool upnp_worker_result(struct upnp_worker *w, struct upnp_result *out);
/* Deletes the worker's mapping if it made one, then ends it: waits until
 * deadline_ns (clock_mono_ns) at most; a thread still blocked in miniupnpc
 * then finishes and frees itself on its own. */
void upnp_worker_stop(struct upnp_worker *w, uint64_t deadline_ns);

#endif
