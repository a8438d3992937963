// SPDX-License-Identifier: MIT
#include "knitd/search.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "knitd/paths.h"
#include "lib/clock.h"
#include "lib/log.h"

#define MS	  1000000ULL
#define TICK_MS	  25 /* the spray goes out in small bursts */
#define REOPEN_MS 2000
#define SPRAY_DELAY_MS 300 /* let the opener's mappings exist first */

struct search {
	struct peer_paths *pp;
	bool opener;
	bool running;
	union sockaddr_inet target;
	uint8_t txid[DISCO_TXID_LEN];
	int fds[PLAN_SEARCH_SOCKETS];
	unsigned n_fds;
	int winner;
	unsigned sent;
	uint64_t started_ns, next_open_ns;
	struct ev_timer tick;
};

static struct evloop *loop_of(const struct search *s)
{
	return s->pp->owner->loop;
}

static void close_losers(struct search *s)
{
	for (unsigned i = 0; i < s->n_fds; i++) {
		if (s->fds[i] < 0 || s->fds[i] == s->winner)
			continue;
		evloop_del_fd(loop_of(s), s->fds[i]);
		close(s->fds[i]);
		s->fds[i] = -1;
	}
}

static void stop(struct search *s, const char *how)
{
	char who[64];

	if (!s->running)
		return;
	s->running = false;
	evloop_timer_cancel(loop_of(s), &s->tick);
	close_losers(s);
	snprintf(who, sizeof(who), "%s", s->pp->name);
	log_info("birthday search done peer=%s role=%s result=%s sockets=%u probes=%u ms=%llu", who,
		 s->opener ? "open" : "spray", how, s->n_fds, s->sent,
		 (unsigned long long)((clock_mono_ns() - s->started_ns) / MS));
}

/* A datagram on one of the opener's sockets: disco from the peer, or, once
 * the path is up, WireGuard. */
static void on_socket(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct search *s = arg;

	for (int n = 0; n < 64; n++) {
		uint8_t pkt[2048];
		union sockaddr_inet src;
		socklen_t slen = sizeof(src);
		ssize_t len = recvfrom(fd, pkt, sizeof(pkt), MSG_DONTWAIT, &src.sa, &slen);
		if (len <= 0)
			return;
		if (paths_aux_input(s->pp, fd, pkt, (size_t)len, &src) && s->winner < 0) {
			s->winner = fd;
			stop(s, "found");
		}
	}
}

static void open_mappings(struct search *s)
{
	uint8_t pkt[DISCO_MAX_PACKET];

	for (unsigned i = 0; i < PLAN_SEARCH_SOCKETS; i++) {
		int n;
		if (i == s->n_fds) {
			struct sockaddr_in any = {.sin_family = AF_INET};
			int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0 ||
			    evloop_add_fd(loop_of(s), fd, EPOLLIN, on_socket, s) < 0) {
				if (fd >= 0)
					close(fd);
				return; /* fewer sockets, lower odds: still worth it */
			}
			s->fds[s->n_fds++] = fd;
		}
		n = paths_seal_ping(s->pp, pkt, sizeof(pkt), s->txid);
		if (n > 0)
			sendto(s->fds[i], pkt, (size_t)n, 0, &s->target.sa, sizeof(s->target.in));
	}
}

static void spray(struct search *s, unsigned count)
{
	uint8_t pkt[DISCO_MAX_PACKET];
	union sockaddr_inet to = s->target;
	int n = paths_seal_ping(s->pp, pkt, sizeof(pkt), s->txid);

	for (unsigned i = 0; n > 0 && i < count && s->sent < PLAN_SEARCH_PROBES; i++, s->sent++) {
		to.in.sin_port = htons((uint16_t)(1024 + random_u32() % (65536 - 1024)));
		paths_send_aside(s->pp, &to, pkt, (size_t)n);
	}
}

static void tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct search *s = arg;
	uint64_t now = clock_mono_ns();

	if (now - s->started_ns > PLAN_SEARCH_SECONDS * 1000 * MS) {
		stop(s, "nothing within the budget");
		return;
	}
	if (s->opener && now >= s->next_open_ns) {
		open_mappings(s); /* again now and then: keep the mappings alive */
		s->next_open_ns = now + REOPEN_MS * MS;
	} else if (!s->opener && now - s->started_ns >= SPRAY_DELAY_MS * MS) {
		spray(s, PLAN_SEARCH_RATE * TICK_MS / 1000);
	}
	evloop_timer_arm(loop, t, now + TICK_MS * MS);
}

int search_start(struct search **out, struct peer_paths *pp, bool opener,
		 const union sockaddr_inet *target)
{
	struct search *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->pp = pp;
	s->opener = opener;
	s->running = true;
	s->winner = -1;
	endpoint_unmap(target, &s->target);
	if (s->target.sa.sa_family != AF_INET) {
		free(s);
		return -EAFNOSUPPORT; /* IPv6 needs no search: no NAT there */
	}
	random_bytes(s->txid, sizeof(s->txid));
	s->started_ns = clock_mono_ns();
	ev_timer_init(&s->tick, tick, s);
	evloop_timer_arm(loop_of(s), &s->tick, 0);
	*out = s;
	return 0;
}

void search_free(struct search *s)
{
	if (!s)
		return;
	stop(s, "stopped");
	if (s->winner >= 0) {
		evloop_del_fd(loop_of(s), s->winner);
		close(s->winner);
	}
	free(s);
}

bool search_running(const struct search *s)
{
	return s && s->running;
}

const uint8_t *search_txid(const struct search *s)
{
	return s->txid;
}

int search_winner_fd(const struct search *s)
{
	return s ? s->winner : -1;
}
