// SPDX-License-Identifier: MIT
/*
 * UPnP-IGD on a worker thread.  The loop hands it one command at a time
 * (upnp_worker_submit); the thread runs it with miniupnpc, whose calls
 * block, stores the result and writes to an eventfd the loop watches.
 * The struct is shared by the loop and the thread and freed by whichever
 * lets go last, so portmap_free() never has to wait longer than its budget.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "portmap/upnp.h"

#define SSDP_TRIES	   2
#define SSDP_WAIT_MS	   750 /* per try: MX is 1 s, a unicast answer comes at once */
#define UPNP_DESCRIPTION   "knit"
#define UPNP_RANDOM_TRIES  3
#define UPNP_ERR_CONFLICT  718 /* ConflictInMappingEntry */
#define UPNP_ERR_PERMANENT 725 /* OnlyPermanentLeasesSupported */

struct upnp_worker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs; /* the loop's and the thread's */
	int efd;
	/* Under mu: */
	bool has_req, busy, has_res, stopping, done;
	struct upnp_request req;
	struct upnp_result res;
	/* The thread's own: */
	struct UPNPUrls urls;
	struct IGDdatas data;
	bool have_igd;
	struct in_addr igd_gw;
	uint16_t mapped_port; /* external port we hold at the gateway, 0: none */
};

/* --- SSDP and URLs: pure helpers --------------------------------------- */

int ssdp_build_msearch(char *buf, size_t len, struct in_addr gw, int version)
{
	char host[INET_ADDRSTRLEN];
	int n;

	inet_ntop(AF_INET, &gw, host, sizeof(host));
	n = snprintf(buf, len,
		     "M-SEARCH * HTTP/1.1\r\n"
		     "HOST: %s:%d\r\n"
		     "MAN: \"ssdp:discover\"\r\n"
		     "MX: 1\r\n"
		     "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:%d\r\n"
		     "\r\n",
		     host, SSDP_PORT, version);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int ssdp_parse_location(const char *buf, size_t len, char *url, size_t url_len)
{
	static const char key[] = "location:";
	size_t pos = 0;

	if (len > SSDP_MSG_MAX || url_len == 0)
		return -EBADMSG;
	while (pos < len) {
		const char *line = buf + pos;
		const char *end = memchr(line, '\n', len - pos);
		size_t n = end ? (size_t)(end - line) : len - pos, v = sizeof(key) - 1;

		pos += n + 1;
		if (n < v || strncasecmp(line, key, v) != 0)
			continue;
		while (v < n && (line[v] == ' ' || line[v] == '\t'))
			v++;
		while (n > v && isspace((unsigned char)line[n - 1]))
			n--;
		if (n - v == 0)
			return -EBADMSG;
		if (n - v >= url_len)
			return -EBADMSG;
		for (size_t i = v; i < n; i++)
			if (!isgraph((unsigned char)line[i]))
				return -EBADMSG;
		memcpy(url, line + v, n - v);
		url[n - v] = '\0';
		return 0;
	}
	return -ENOENT;
}

bool upnp_url_on_host(const char *url, struct in_addr gw)
{
	static const char scheme[] = "http://";
	char host[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t n;

	if (!url || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return false;
	url += sizeof(scheme) - 1;
	n = strcspn(url, ":/");
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, url, n);
	host[n] = '\0';
	/* A literal address only: a name would need DNS, another host. */
	if (inet_pton(AF_INET, host, &a) != 1 || a.s_addr != gw.s_addr)
		return false;
	url += n;
	if (*url == ':') {
		char *end;
		long port = strtol(url + 1, &end, 10);
		if (end == url + 1 || port < 1 || port > 65535 || (*end != '/' && *end != '\0'))
			return false;
	}
	return true;
}

/* --- the thread's work ------------------------------------------------- */

static void set_why(struct upnp_result *res, int err, const char *fmt, const char *detail)
{
	res->err = err;
	snprintf(res->why, sizeof(res->why), fmt, detail ? detail : "");
}

/* A unicast M-SEARCH to the gateway; the answer's LOCATION, on the gateway. */
static int ssdp_search(struct in_addr gw, char *url, size_t url_len, struct upnp_result *res)
{
	struct sockaddr_in to = {
		.sin_family = AF_INET, .sin_port = htons(SSDP_PORT), .sin_addr = gw};
	char msg[SSDP_MSG_MAX + 1];
	int fd, ret = -EHOSTUNREACH;

	set_why(res, -EHOSTUNREACH, "no SSDP answer from the gateway%s", NULL);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_why(res, -errno, "socket: %s", strerror(errno));
		return res->err;
	}
	for (int t = 0; t < SSDP_TRIES && ret != 0; t++) {
		uint64_t deadline = clock_mono_ns() + SSDP_WAIT_MS * NSEC_PER_MSEC;

		for (int v = 1; v <= 2; v++) {
			int n = ssdp_build_msearch(msg, sizeof(msg), gw, v);
			if (n > 0)
				sendto(fd, msg, n, 0, (struct sockaddr *)&to, sizeof(to));
		}
		while (ret != 0) {
			uint64_t now = clock_mono_ns();
			struct pollfd p = {.fd = fd, .events = POLLIN};
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n;

			if (now >= deadline ||
			    poll(&p, 1, (int)((deadline - now) / NSEC_PER_MSEC) + 1) <= 0)
				break;
			n = recvfrom(fd, msg, sizeof(msg), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fl);
			/* Only the gateway's answers count. */
			if (n <= 0 || n > SSDP_MSG_MAX || from.sin_addr.s_addr != gw.s_addr)
				continue;
			if (ssdp_parse_location(msg, n, url, url_len) != 0)
				continue;
			if (!upnp_url_on_host(url, gw)) {
				set_why(res, -EPERM, "SSDP location is not on the gateway: %.60s",
					url);
				continue;
			}
			ret = 0;
		}
	}
	close(fd);
	return ret == 0 ? 0 : res->err;
}

static void forget_igd(struct upnp_worker *w)
{
	if (w->have_igd)
		FreeUPNPUrls(&w->urls);
	memset(&w->urls, 0, sizeof(w->urls));
	w->have_igd = false;
	w->mapped_port = 0;
}

static int external_address(struct upnp_worker *w, struct upnp_result *res)
{
	char ip[64] = "";
	int r = UPNP_GetExternalIPAddress(w->urls.controlURL, w->data.first.servicetype, ip);

	if (r != UPNPCOMMAND_SUCCESS) {
		set_why(res, -EPROTO, "GetExternalIPAddress: %s", strupnperror(r));
		return res->err;
	}
	if (inet_pton(AF_INET, ip, &res->external_addr) != 1 || res->external_addr.s_addr == 0) {
		set_why(res, -EPROTO, "GetExternalIPAddress: no address (%.40s)", ip);
		return res->err;
	}
	return 0;
}

static int do_probe(struct upnp_worker *w, const struct upnp_request *req, struct upnp_result *res)
{
	char url[UPNP_URL_MAX], lanaddr[64];

	if (w->have_igd && w->igd_gw.s_addr != req->gw.s_addr)
		forget_igd(w);
	if (!w->have_igd) {
		if (ssdp_search(req->gw, url, sizeof(url), res) < 0)
			return res->err;
		if (UPNP_GetIGDFromUrl(url, &w->urls, &w->data, lanaddr, sizeof(lanaddr)) != 1) {
			set_why(res, -EHOSTUNREACH, "no description at %.60s", url);
			return res->err;
		}
		w->have_igd = true;
		w->igd_gw = req->gw;
		if (!w->data.first.servicetype[0] ||
		    !upnp_url_on_host(w->urls.controlURL, req->gw)) {
			set_why(res, -EPERM, "no WAN connection service on the gateway%s", NULL);
			forget_igd(w);
			return res->err;
		}
	}
	return external_address(w, res);
}

static int add_mapping(struct upnp_worker *w, const struct upnp_request *req, uint16_t ext,
		       const char *lease, uint16_t *got)
{
	char ext_s[8], in_s[8], client[INET_ADDRSTRLEN], reserved[8] = "";
	int r;

	snprintf(ext_s, sizeof(ext_s), "%u", ext);
	snprintf(in_s, sizeof(in_s), "%u", req->internal_port);
	inet_ntop(AF_INET, &req->local, client, sizeof(client));
	r = UPNP_AddPortMapping(w->urls.controlURL, w->data.first.servicetype, ext_s, in_s, client,
				UPNP_DESCRIPTION, "UDP", NULL, lease);
	*got = ext;
	if (r == UPNP_ERR_CONFLICT && strstr(w->data.first.servicetype, ":2")) {
		/* IGDv2 picks a free port itself. */
		r = UPNP_AddAnyPortMapping(w->urls.controlURL, w->data.first.servicetype, ext_s,
					   in_s, client, UPNP_DESCRIPTION, "UDP", NULL, lease,
					   reserved);
		if (r == UPNPCOMMAND_SUCCESS) {
			long p = strtol(reserved, NULL, 10);
			if (p < 1 || p > 65535)
				return UPNPCOMMAND_INVALID_RESPONSE;
			*got = (uint16_t)p;
		}
	}
	return r;
}

static int do_map(struct upnp_worker *w, const struct upnp_request *req, struct upnp_result *res)
{
	char lease[16];
	uint16_t ext = w->mapped_port ? w->mapped_port : req->internal_port, got = 0;
	int r;

	if (do_probe(w, req, res) < 0)
		return res->err;
	res->lifetime = req->lifetime;
	snprintf(lease, sizeof(lease), "%u", req->lifetime);
	r = add_mapping(w, req, ext, lease, &got);
	if (r == UPNP_ERR_PERMANENT) {
		/* Old IGDs: a permanent lease, which we delete on exit. */
		res->lifetime = 0;
		r = add_mapping(w, req, ext, "0", &got);
	}
	/* Someone else holds our port: a few random ones. */
	for (int i = 0; r == UPNP_ERR_CONFLICT && !w->mapped_port && i < UPNP_RANDOM_TRIES; i++)
		r = add_mapping(w, req, 1024 + random_u32() % (65536 - 1024),
				res->lifetime ? lease : "0", &got);
	if (r != UPNPCOMMAND_SUCCESS) {
		set_why(res, -EPROTO, "AddPortMapping: %s", strupnperror(r));
		return res->err;
	}
	w->mapped_port = got;
	res->external_port = got;
	return 0;
}

static void delete_mapping(struct upnp_worker *w)
{
	char ext_s[8];
	int r;

	if (!w->have_igd || !w->mapped_port)
		return;
	snprintf(ext_s, sizeof(ext_s), "%u", w->mapped_port);
	r = UPNP_DeletePortMapping(w->urls.controlURL, w->data.first.servicetype, ext_s, "UDP",
				   NULL);
	if (r != UPNPCOMMAND_SUCCESS)
		log_warn("upnp: DeletePortMapping failed port=%u error=\"%s\"", w->mapped_port,
			 strupnperror(r));
	else
		log_info("port mapping deleted protocol=upnp port=%u", w->mapped_port);
	w->mapped_port = 0;
}

static void worker_unref(struct upnp_worker *w)
{
	bool last;

	pthread_mutex_lock(&w->mu);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	close(w->efd);
	free(w);
}

static void *worker_main(void *arg)
{
	struct upnp_worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct upnp_request req;
		struct upnp_result res;

		while (!w->has_req && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->has_req)
			break;
		req = w->req;
		w->has_req = false;
		w->busy = true;
		pthread_mutex_unlock(&w->mu);

		memset(&res, 0, sizeof(res));
		res.cmd = req.cmd;
		res.err =
			req.cmd == UPNP_CMD_PROBE ? do_probe(w, &req, &res) : do_map(w, &req, &res);
		if (res.err == 0)
			res.why[0] = '\0';

		pthread_mutex_lock(&w->mu);
		w->res = res;
		w->has_res = true;
		w->busy = false;
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* Saturated counter: the loop is woken anyway. */
		}
	}
	pthread_mutex_unlock(&w->mu);

	delete_mapping(w);
	forget_igd(w);
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	worker_unref(w);
	return NULL;
}

/* --- the loop's side ---------------------------------------------------- */

int upnp_worker_new(struct upnp_worker **out, int *event_fd)
{
	struct upnp_worker *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	sigset_t all, old;
	pthread_t t;
	int ret;

	if (!w)
		return -ENOMEM;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		ret = -errno;
		free(w);
		return ret;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->refs = 2;

	/* The thread takes no signals: they belong to the loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&t, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		close(w->efd);
		free(w);
		return ret;
	}
	pthread_detach(t);
	*event_fd = w->efd;
	*out = w;
	return 0;
}

int upnp_worker_submit(struct upnp_worker *w, const struct upnp_request *req)
{
	int ret = 0;

	pthread_mutex_lock(&w->mu);
	if (w->has_req || w->busy || w->has_res || w->stopping) {
		ret = -EBUSY;
	} else {
		w->req = *req;
		w->has_req = true;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return ret;
}

bool upnp_worker_result(struct upnp_worker *w, struct upnp_result *out)
{
	uint64_t v;
	bool got;

	if (read(w->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing new, the flag below decides. */
	}
	pthread_mutex_lock(&w->mu);
	got = w->has_res;
	if (got)
		*out = w->res;
	w->has_res = false;
	pthread_mutex_unlock(&w->mu);
	return got;
}

void upnp_worker_stop(struct upnp_worker *w, uint64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = deadline_ns / NSEC_PER_SEC,
			      .tv_nsec = deadline_ns % NSEC_PER_SEC};

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	w->has_req = false; /* a command not yet started is dropped */
	pthread_cond_broadcast(&w->cv);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
			break;
	if (!w->done)
		log_warn("upnp: worker still busy at exit; it deletes the mapping on its own");
	pthread_mutex_unlock(&w->mu);
	worker_unref(w);
}
