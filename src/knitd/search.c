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
#include "wg/device.h"

#define MS		1000000ULL
#define TICK_MS		25 /* the spray goes out in small bursts */
#define REOPEN_MS	2000
#define SPRAY_DELAY_MS	300 /* let the opener's mappings exist first */
#define SEARCH_SIDE_MAX 4

struct search {
	struct peer_paths *pp;
	bool opener;
	bool running;
	struct plan plan; /* the role and the ports aimed at, when it started */
	union sockaddr_inet target;
	uint8_t txid[DISCO_TXID_LEN];
	int fds[PLAN_SEARCH_SOCKETS];
	unsigned n_fds;
	int winner; /* the first socket that carried the path */
	/* The sockets the device has taken as side sockets (the winner, and
	 * any other the peer's WireGuard came to: a sprayer that hit two of
	 * ours may use either): kept, and read by the device, until the end. */
	struct {
		int fd, slot;
	} side[SEARCH_SIDE_MAX];
	unsigned n_side;
	bool hit; /* the path manager has a direct path: probing is over */
	/* In on_socket, whose callees may end the search (a call-me-maybe
	 * that starts another): search_free then only marks it dead. */
	bool busy, dead;
	unsigned sent;
	uint64_t started_ns, next_open_ns;
	struct ev_timer tick;
};

static struct evloop *loop_of(const struct search *s)
{
	return s->pp->owner->loop;
}

static const char *role_name(enum search_role r)
{
	static const char *const names[] = {"open", "spray", "sweep", "open-sweep"};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* fd's side-socket slot, or 0 when the device does not have it. */
static int side_slot(const struct search *s, int fd)
{
	for (unsigned i = 0; i < s->n_side; i++)
		if (s->side[i].fd == fd)
			return s->side[i].slot;
	return 0;
}

/* A socket of ours that the peer's authenticated disco came through: the
 * peer may have taken a path there. */
static bool peer_came_through(const struct search *s, int fd)
{
	for (unsigned i = 0; i < s->pp->n_cands; i++)
		if (s->pp->cands[i].fd == fd)
			return true;
	return false;
}

/* Closes the sockets no path uses, keeping up to SEARCH_SIDE_MAX that the
 * peer reached besides the winner: a sprayer that hit two may take either. */
static void close_losers(struct search *s)
{
	unsigned kept = s->n_side;

	for (unsigned i = 0; i < s->n_fds; i++) {
		if (s->fds[i] < 0 || s->fds[i] == s->winner || side_slot(s, s->fds[i]))
			continue;
		if (kept < SEARCH_SIDE_MAX && peer_came_through(s, s->fds[i])) {
			kept++;
			continue;
		}
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
		 role_name(s->plan.role), how, s->n_fds, s->sent,
		 (unsigned long long)((clock_mono_ns() - s->started_ns) / MS));
}

static struct wg_device *device_of(const struct search *s)
{
	return s->pp->owner->dev;
}

struct side_read {
	struct search *s;
	int fd;
};

/* What the device reads on a side socket that is not WireGuard: disco. */
static void on_side_other(void *arg, const uint8_t *pkt, size_t len, const union sockaddr_inet *src)
{
	struct side_read *r = arg;

	if (!r->s->dead)
		paths_aux_input(r->s->pp, r->fd, pkt, len, src);
}

/* A datagram on one of the opener's sockets: disco from the peer, or, once
 * the path is up, WireGuard (the device reads the winner in batches). */
static void on_socket(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct search *s = arg;
	struct side_read r = {s, fd};
	int slot = side_slot(s, fd);

	s->busy = true;
	if (slot) {
		device_side_read(device_of(s), (unsigned)slot, on_side_other, &r);
	} else {
		for (int n = 0; n < 64 && !s->dead; n++) {
			uint8_t pkt[2048];
			union sockaddr_inet src;
			socklen_t slen = sizeof(src);
			ssize_t len = recvfrom(fd, pkt, sizeof(pkt), MSG_DONTWAIT, &src.sa, &slen);
			if (len <= 0)
				break;
			if (paths_aux_input(s->pp, fd, pkt, (size_t)len, &src) && !s->dead &&
			    s->winner < 0) {
				s->winner = fd;
				stop(s, "found");
			}
		}
	}
	s->busy = false;
	if (s->dead)
		free(s);
}

/* Socket number i of ours, opened when first needed; -1 when no more can
 * be (fewer sockets, lower odds: still worth it). */
static int own_socket(struct search *s, unsigned i)
{
	struct sockaddr_in any = {.sin_family = AF_INET};
	int fd;

	if (i < s->n_fds)
		return s->fds[i];
	if (i != s->n_fds || i >= PLAN_SEARCH_SOCKETS)
		return -1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0 ||
	    evloop_add_fd(loop_of(s), fd, EPOLLIN, on_socket, s) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	s->fds[s->n_fds++] = fd;
	return fd;
}

static void open_mappings(struct search *s)
{
	uint8_t pkt[DISCO_MAX_PACKET];

	for (unsigned i = 0; i < s->plan.sockets; i++) {
		int n, fd = own_socket(s, i);
		if (fd < 0)
			return;
		n = paths_seal_ping(s->pp, pkt, sizeof(pkt), s->txid);
		if (n > 0)
			sendto(fd, pkt, (size_t)n, 0, &s->target.sa, sizeof(s->target.in));
	}
}

/* The probes due by now (rate a second since spraying began), aimed as the
 * plan says (traversal/plan.h's search_probe): from the node's socket, or
 * from sockets of our own for SEARCH_OPEN_SWEEP. */
static void spray(struct search *s, uint64_t since_ns)
{
	uint8_t pkt[DISCO_MAX_PACKET];
	union sockaddr_inet to = s->target;
	uint64_t due = (uint64_t)s->plan.rate * (since_ns / MS) / 1000 + 1;
	int n = paths_seal_ping(s->pp, pkt, sizeof(pkt), s->txid);

	for (; n > 0 && s->sent < due && s->sent < s->plan.probes; s->sent++) {
		unsigned sock;
		to.in.sin_port = htons(search_probe(&s->plan, s->sent, random_u32(), &sock));
		if (s->plan.role != SEARCH_OPEN_SWEEP) {
			paths_send_aside(s->pp, &to, pkt, (size_t)n);
			continue;
		}
		int fd = own_socket(s, sock);
		if (fd < 0 && s->n_fds)
			fd = s->fds[sock % s->n_fds];
		if (fd >= 0)
			sendto(fd, pkt, (size_t)n, 0, &to.sa, sizeof(to.in));
	}
}

/* The path manager found a direct path (a pong to our probes, or a ping
 * that got in): the socket it uses becomes the winner if it is ours.  On
 * the node's socket, our sockets stay open until the budget ends, as they
 * always did (candidates learnt on them still name them). */
static bool found(struct search *s)
{
	const struct peer_paths *pp = s->pp;
	char who[64];

	if (pp->best < 0)
		return false;
	for (unsigned i = 0; i < s->n_fds && s->winner < 0; i++)
		if (s->fds[i] >= 0 && s->fds[i] == pp->cands[pp->best].fd)
			s->winner = s->fds[i];
	if (s->winner < 0 && !s->hit) {
		snprintf(who, sizeof(who), "%s", pp->name);
		log_info("birthday search hit peer=%s role=%s probes=%u ms=%llu", who,
			 role_name(s->plan.role), s->sent,
			 (unsigned long long)((clock_mono_ns() - s->started_ns) / MS));
	}
	s->hit = true;
	return true;
}

/* What the role sends by now. */
static void send_due(struct search *s, uint64_t now)
{
	if (s->plan.role == SEARCH_OPEN && now >= s->next_open_ns) {
		open_mappings(s); /* again now and then: keep the mappings alive */
		s->next_open_ns = now + REOPEN_MS * MS;
	} else if (s->plan.role == SEARCH_SPRAY && now - s->started_ns >= SPRAY_DELAY_MS * MS) {
		/* Classic: the opener's mappings exist first. */
		spray(s, now - s->started_ns - SPRAY_DELAY_MS * MS);
	} else if (s->plan.role == SEARCH_SWEEP || s->plan.role == SEARCH_OPEN_SWEEP) {
		spray(s, now - s->started_ns);
	}
}

static void tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct search *s = arg;
	uint64_t now = clock_mono_ns();

	if (found(s) && s->winner >= 0) {
		stop(s, "found");
		return;
	}
	if (now - s->started_ns > PLAN_SEARCH_SECONDS * 1000 * MS) {
		stop(s, s->hit ? "found" : "nothing within the budget");
		return;
	}
	if (!s->hit) /* else no more probes: the path is there */
		send_due(s, now);
	evloop_timer_arm(loop, t, now + TICK_MS * MS);
}

int search_start(struct search **out, struct peer_paths *pp, bool opener,
		 const union sockaddr_inet *target)
{
	struct search *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->pp = pp;
	s->plan = pp->plan;
	/* The plan says who opens; a caller's word against it means an older
	 * plan: classic roles then. */
	if (pp->plan.kind != PLAN_SEARCH || pp->plan.i_open != opener) {
		s->plan = (struct plan){.kind = PLAN_SEARCH,
					.i_open = opener,
					.role = opener ? SEARCH_OPEN : SEARCH_SPRAY,
					.lo = 1024,
					.n = 65536 - 1024,
					.sockets = opener ? PLAN_SEARCH_SOCKETS : 0,
					.probes = opener ? 0 : PLAN_SEARCH_PROBES,
					.rate = PLAN_SEARCH_RATE};
	}
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
	/* The device closes its side sockets; the others (the kept ones, a
	 * winner the device never took) close here. */
	for (unsigned i = 0; i < s->n_fds; i++) {
		int slot = s->fds[i] >= 0 ? side_slot(s, s->fds[i]) : 0;
		if (s->fds[i] < 0)
			continue;
		evloop_del_fd(loop_of(s), s->fds[i]);
		if (slot)
			device_side_remove(device_of(s), (unsigned)slot);
		else
			close(s->fds[i]);
		s->fds[i] = -1;
	}
	s->winner = -1;
	s->n_side = 0;
	if (s->busy)
		s->dead = true; /* on_socket frees it on its way out */
	else
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

int search_side_slot(struct search *s, int fd)
{
	bool ours = false;
	int slot;

	if (!s || fd < 0)
		return -1;
	if ((slot = side_slot(s, fd)))
		return slot;
	for (unsigned i = 0; i < s->n_fds; i++)
		ours |= s->fds[i] == fd;
	if (!ours || s->n_side == SEARCH_SIDE_MAX)
		return -1;
	slot = device_side_add(device_of(s), fd);
	if (slot < 0) {
		log_warn("no side socket for a search's path peer=%s error=\"%s\"", s->pp->name,
			 strerror(-slot));
		return -1;
	}
	s->side[s->n_side].fd = fd;
	s->side[s->n_side++].slot = slot;
	if (s->winner < 0)
		s->winner = fd;
	return slot;
}
