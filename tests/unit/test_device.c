// SPDX-License-Identifier: MIT
/*
 * A detached device (no TUN) with a real UDP socket on loopback, fed
 * handshake messages as its receiving thread would: it answers an initiation
 * with a response, and under load demands a cookie first (whitepaper 5.3).
 * Relayed data messages are batched and written to the TUN (here a
 * SOCK_SEQPACKET socket, one message per write) coalesced.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "wg/device.h"
#include "wg/offload.h"
#include "wg/tun.h"

struct fixture {
	struct evloop *loop;
	struct wg_device *dev;
	int client_fd;
	union sockaddr_inet client_addr; /* as the device's socket sees it */
	struct noise_static_identity client;
	struct noise_handshake hs; /* the client's, with the device */
	struct cookie_maker maker; /* the client's, for the device */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct wg_config cfg;
	char err[WGCONFIG_ERR_LEN];
	socklen_t len = sizeof(f->client_addr);
	union sockaddr_inet local = {.in.sin_family = AF_INET};

	log_set_level(LOG_LEVEL_ERROR);
	assert_int_equal(evloop_new(&f->loop), 0);
	assert_int_equal(device_new(&f->dev, f->loop, NULL, 1), 0);
	x25519_generate(f->client.static_private);
	x25519_public(f->client.static_public, f->client.static_private);
	f->client.has_identity = true;

	wg_config_init(&cfg);
	cfg.has_private_key = true;
	x25519_generate(cfg.private_key);
	cfg.listen_port = 0;
	cfg.peers = calloc(1, sizeof(*cfg.peers));
	cfg.n_peers = cfg.cap_peers = 1;
	memcpy(cfg.peers[0].public_key, f->client.static_public, 32);
	cfg.peers[0].persistent_keepalive = -1;
	/* The client's inner packets come from 10.0.0.1. */
	cfg.peers[0].allowed_ips = calloc(1, sizeof(*cfg.peers[0].allowed_ips));
	cfg.peers[0].n_allowed_ips = cfg.peers[0].cap_allowed_ips = 1;
	cfg.peers[0].allowed_ips[0].family = AF_INET;
	cfg.peers[0].allowed_ips[0].bits = 32;
	cfg.peers[0].allowed_ips[0].addr.v4.s_addr = htonl(0x0a000001);
	assert_int_equal(device_apply(f->dev, &cfg, err, sizeof(err)), 0);
	wg_config_free(&cfg);

	f->client_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	local.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->client_fd, &local.sa, sizeof(local.in)), 0);
	getsockname(f->client_fd, &f->client_addr.sa, &len);
	endpoint_to_v6(&f->client_addr, &f->client_addr);
	noise_handshake_init(&f->hs, &f->client, f->dev->identity.static_public, NULL);
	cookie_maker_init(&f->maker, f->dev->identity.static_public);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->client_fd);
	device_free(f->dev);
	evloop_free(f->loop);
	free(f);
	return 0;
}

/* Hands one initiation from the client to the device, as the rx thread does. */
static void deliver_initiation(struct fixture *f, uint32_t index)
{
	struct message_handshake_initiation m;
	struct rx_batch b;
	uint8_t *plain;

	assert_int_equal(noise_handshake_create_initiation(&m, &f->hs, &f->client, index), 0);
	cookie_add_macs(&f->maker, &m, sizeof(m));
	receive_batch_begin(&b, NULL, clock_mono_ns());
	pthread_rwlock_rdlock(&f->dev->lock);
	assert_int_equal(
		receive_datagram(f->dev, &b, (uint8_t *)&m, sizeof(m), &f->client_addr, &plain), 0);
	b.wake = false;
	receive_batch_end(f->dev, &b);
	pthread_rwlock_unlock(&f->dev->lock);
}

/* Reads what the device sent back: counts per message type, keeps the last
 * of each. */
struct replies {
	unsigned cookies, responses;
	struct message_handshake_cookie cookie;
	struct message_handshake_response response;
};

static void collect(struct fixture *f, struct replies *r)
{
	uint8_t buf[256];
	struct pollfd p = {.fd = f->client_fd, .events = POLLIN};

	while (poll(&p, 1, 200) > 0) {
		ssize_t n = recv(f->client_fd, buf, sizeof(buf), 0);
		if (n == sizeof(r->cookie) && buf[0] == MESSAGE_HANDSHAKE_COOKIE) {
			memcpy(&r->cookie, buf, sizeof(r->cookie));
			r->cookies++;
		} else if (n == sizeof(r->response) && buf[0] == MESSAGE_HANDSHAKE_RESPONSE) {
			memcpy(&r->response, buf, sizeof(r->response));
			r->responses++;
		}
	}
}

static void test_answers_an_initiation(void **state)
{
	struct fixture *f = *state;
	struct replies r = {0};
	struct noise_session_keys keys;

	deliver_initiation(f, 77);
	receive_handshakes(f->dev);
	collect(f, &r);
	assert_int_equal(r.responses, 1);
	assert_int_equal(r.cookies, 0);
	assert_int_equal(noise_handshake_consume_response(&r.response, &f->hs, &f->client), 0);
	assert_int_equal(noise_handshake_begin_session(&f->hs, &keys), 0);
	assert_int_equal(keys.remote_index, le32toh(r.response.sender_index));
}

static void test_under_load_demands_cookie(void **state)
{
	struct fixture *f = *state;
	struct replies r = {0};

	/* A burst deeper than 1/8 of the queue puts the device under load:
	 * every initiation without a valid mac2 gets a cookie reply, none
	 * gets the work of a response. */
	for (unsigned i = 0; i < 200; i++)
		deliver_initiation(f, i);
	receive_handshakes(f->dev);
	collect(f, &r);
	assert_int_equal(r.cookies, 200);
	assert_int_equal(r.responses, 0);
	/* The client takes the cookie (for its last initiation) and retries
	 * with mac2: still under load, but now it is answered. */
	assert_int_equal(cookie_message_consume(&f->maker, &r.cookie), 0);
	usleep(20000); /* a newer TAI64N timestamp */
	deliver_initiation(f, 1000);
	receive_handshakes(f->dev);
	memset(&r, 0, sizeof(r));
	collect(f, &r);
	assert_int_equal(r.cookies, 0);
	assert_int_equal(r.responses, 1);
	assert_int_equal(noise_handshake_consume_response(&r.response, &f->hs, &f->client), 0);
}

static void test_keys_zeroed_after_three_reject_times(void **state)
{
	struct fixture *f = *state;
	struct replies r = {0};
	struct wg_peer *peer = f->dev->peers;

	deliver_initiation(f, 5);
	receive_handshakes(f->dev);
	collect(f, &r);
	assert_int_equal(r.responses, 1);
	assert_non_null(peer->keypairs.next);
	assert_int_equal(f->dev->index.used, 1);
	/* Nothing happens before the deadline... */
	peer->session_derived_ns =
		clock_mono_ns() - 3 * f->dev->timers.reject_after_ns + NSEC_PER_SEC;
	timers_tick(f->loop, &f->dev->tick, f->dev);
	assert_non_null(peer->keypairs.next);
	/* ...and after it every key and index is gone. */
	peer->session_derived_ns = clock_mono_ns() - 3 * f->dev->timers.reject_after_ns - 1;
	timers_tick(f->loop, &f->dev->tick, f->dev);
	assert_null(peer->keypairs.current);
	assert_null(peer->keypairs.previous);
	assert_null(peer->keypairs.next);
	assert_int_equal(f->dev->index.used, 0);
	assert_int_equal(peer->handshake.state, HANDSHAKE_ZEROED);
	evloop_timer_cancel(f->loop, &f->dev->tick);
}

/* The client's session with the device: the client initiates. */
static void establish(struct fixture *f, struct noise_session_keys *keys)
{
	struct replies r = {0};

	deliver_initiation(f, 9);
	receive_handshakes(f->dev);
	collect(f, &r);
	assert_int_equal(r.responses, 1);
	assert_int_equal(noise_handshake_consume_response(&r.response, &f->hs, &f->client), 0);
	assert_int_equal(noise_handshake_begin_session(&f->hs, keys), 0);
}

/* A data message from the client: an IPv4 TCP segment (ACK only) of
 * `payload` bytes at seq, 10.0.0.1:5000 -> 10.0.0.2:80.  Returns its length. */
static size_t seal_segment(struct aead_ctx *ctx, const struct noise_session_keys *k,
			   uint64_t counter, uint32_t seq, size_t payload, uint8_t *out)
{
	uint8_t *p = out + MESSAGE_DATA_HEADER_LEN, *t = p + 20, nonce[AEAD_NONCE_LEN];
	size_t len = 40 + payload, padded = (len + 15) & ~(size_t)15;
	uint32_t v32;
	uint64_t v64;

	memset(p, 0, padded);
	p[0] = 0x45, p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
	p[6] = 0x40, p[8] = 64, p[9] = 6;
	p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
	t[0] = 0x13, t[1] = 0x88, t[3] = 80;
	t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8);
	t[7] = (uint8_t)seq;
	t[8] = 0xaa, t[12] = 0x50, t[13] = 0x10, t[14] = 0xff;
	for (size_t i = 0; i < payload; i++)
		t[20 + i] = (uint8_t)(seq + i);
	v32 = htole32(MESSAGE_DATA);
	memcpy(out, &v32, 4);
	v32 = htole32(k->remote_index);
	memcpy(out + 4, &v32, 4);
	v64 = htole64(counter);
	memcpy(out + 8, &v64, 8);
	aead_nonce_from_counter(nonce, counter);
	assert_int_equal(aead_seal(ctx, k->sending, nonce, NULL, 0, p, padded, p), 0);
	return MESSAGE_DATA_HEADER_LEN + padded + NOISE_AUTHTAG_LEN;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* One TUN write: a TCPv4 GSO packet of segs segments of 1000 bytes. */
static void expect_coalesced(int fd, unsigned segs)
{
	static uint8_t buf[70000];
	struct vnet_hdr h;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	assert_int_equal(n, VNET_HDR_LEN + 40 + segs * 1000);
	vnet_hdr_read(buf, &h);
	assert_int_equal(h.gso_type, VNET_HDR_GSO_TCPV4);
	assert_int_equal(h.gso_size, 1000);
	/* The payload is the segments' bytes, in order. */
	for (size_t i = 0; i < segs * 1000; i += 997)
		assert_int_equal(buf[VNET_HDR_LEN + 40 + i], (uint8_t)(1 + i));
}

static void test_relayed_packets_batched_and_coalesced(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[1200];
	struct noise_session_keys keys;
	struct aead_ctx *ctx;
	uint64_t counter = 0;
	uint32_t seq = 1;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	f->dev->tun_fd = sv[0]; /* closed by device_free */
	f->dev->tun_offloads =
		TUN_OFFLOAD_VNET_HDR | TUN_OFFLOAD_CSUM | TUN_OFFLOAD_TSO4 | TUN_OFFLOAD_TSO6;
	establish(f, &keys);
	assert_int_equal(aead_ctx_new(&ctx), 0);

	/* Eight segments wait for the flush, then go as one GSO write. */
	for (unsigned i = 0; i < 8; i++, seq += 1000)
		device_relayed_add(f->dev, 1, msg,
				   seal_segment(ctx, &keys, counter++, seq, 1000, msg));
	assert_false(readable(sv[1]));
	device_relayed_flush(f->dev);
	expect_coalesced(sv[1], 8);
	assert_false(readable(sv[1]));

	/* A full batch (64) goes at once, without waiting for the loop. */
	for (unsigned i = 0; i < 64; i++, seq += 1000) {
		assert_false(readable(sv[1]));
		device_relayed_add(f->dev, 1, msg,
				   seal_segment(ctx, &keys, counter++, seq, 1000, msg));
	}
	assert_true(readable(sv[1]));
	recv(sv[1], msg, 0, MSG_TRUNC); /* its payload starts at seq 8001 */
	assert_false(readable(sv[1]));

	/* A forged message in the batch is dropped, the others still go. */
	seal_segment(ctx, &keys, counter++, seq, 1000, msg);
	seq += 1000;
	msg[100] ^= 1;
	device_relayed_add(f->dev, 1, msg, 16 + 1040 + 16);
	device_receive_relayed(f->dev, 1, msg, seal_segment(ctx, &keys, counter++, seq, 1000, msg));
	assert_true(readable(sv[1]));
	assert_int_equal(recv(sv[1], msg, sizeof(msg), 0), VNET_HDR_LEN + 40 + 1000);
	assert_int_equal(atomic_load(&f->dev->stats.rx_invalid), 1);
	aead_ctx_free(ctx);
}

static struct noise_handshake *lookup_device(void *arg, const uint8_t pub[NOISE_PUBLIC_KEY_LEN])
{
	struct fixture *f = arg;

	return memcmp(pub, f->dev->identity.static_public, 32) ? NULL : &f->hs;
}

/* One initiation from the device on fd within 300 ms, consumed by the client
 * as the device's peer would: 0, or the consumer's error (-EALREADY: the
 * timestamp is not newer; -EAGAIN: too soon after the last), or -ETIMEDOUT. */
static int initiation_on(struct fixture *f, int fd)
{
	struct message_handshake_initiation m;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct noise_handshake *hs;

	if (poll(&p, 1, 300) <= 0 || recv(fd, &m, sizeof(m), 0) != sizeof(m))
		return -ETIMEDOUT;
	return noise_handshake_consume_initiation(&m, &f->client, lookup_device, f, &hs);
}

/* The path changes right after an initiation left (the path manager found a
 * direct path while the first went through the relay): the initiation is
 * sent again on the new path, but not before the peer would take it -- a
 * resend within 20 ms, or with the same rounded timestamp, is refused and
 * costs 5 s. */
static void test_path_change_resends_initiation_when_peer_takes_it(void **state)
{
	struct fixture *f = *state;
	struct wg_peer *peer = device_find_peer(f->dev, f->client.static_public);
	union sockaddr_inet local = {.in.sin_family = AF_INET}, second;
	socklen_t len = sizeof(second);
	int fd2 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	assert_non_null(peer);
	local.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd2, &local.sa, sizeof(local.in)), 0);
	getsockname(fd2, &second.sa, &len);
	endpoint_to_v6(&second, &second);
	assert_true(device_set_peer_endpoint(f->dev, f->client.static_public, &f->client_addr));

	send_handshake_initiation(peer, false);
	/* At once on the new path: too soon, so nothing there yet... */
	assert_true(device_set_peer_endpoint(f->dev, f->client.static_public, &second));
	assert_int_equal(initiation_on(f, f->client_fd), 0);
	assert_int_equal(initiation_on(f, fd2), -ETIMEDOUT);
	/* ...and the first tick after the gap sends it, and the peer takes it. */
	timers_tick(f->loop, &f->dev->tick, f->dev);
	assert_int_equal(initiation_on(f, fd2), 0);

	/* A path change long after the initiation resends at once. */
	usleep(30000);
	assert_true(device_set_peer_endpoint(f->dev, f->client.static_public, &f->client_addr));
	assert_int_equal(initiation_on(f, f->client_fd), 0);
	close(fd2);
}

/* What relay_send saw, and what a timer saw in between. */
struct drain_seen {
	struct evloop *loop;
	unsigned sent, at_timer;
	uint8_t last;
	bool in_order;
};

static struct drain_seen seen;

static void count_relay_send(void *arg, uint16_t relay_id, const uint8_t key[32],
			     const uint8_t *pkt, size_t len)
{
	seen.in_order &= relay_id == 3 && len == 100 && pkt[0] == (uint8_t)seen.sent;
	seen.sent++;
}

static void note_at_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	if (!seen.at_timer)
		seen.at_timer = seen.sent;
}

static void stop_when_done(struct evloop *loop, struct ev_timer *t, void *arg)
{
	if (seen.sent == 3000)
		evloop_stop(loop);
	else
		evloop_timer_arm(loop, t, clock_mono_ns() + NSEC_PER_MSEC);
}

/* A relay_q fuller than one wake-up's share: the loop hands on 1024, runs
 * its timers (where the relay clients send what was framed), then the rest,
 * in order. */
static void test_relay_queue_drained_in_shares(void **state)
{
	struct fixture *f = *state;
	struct ev_timer between, stop;
	union sockaddr_inet path;
	uint8_t pkt[100], key[32] = {0};

	seen = (struct drain_seen){.in_order = true};
	endpoint_set_relay(&path, 3);
	f->dev->relay_send = count_relay_send;
	pktq_lock(&f->dev->relay_q);
	for (unsigned i = 0; i < 3000; i++) {
		pkt[0] = (uint8_t)i;
		assert_true(pktq_push_locked(&f->dev->relay_q, &path, key, pkt, sizeof(pkt)));
	}
	pktq_unlock(&f->dev->relay_q);
	ev_timer_init(&between, note_at_timer, NULL);
	ev_timer_init(&stop, stop_when_done, NULL);
	evloop_timer_arm(f->loop, &between, 0);
	evloop_timer_arm(f->loop, &stop, clock_mono_ns() + NSEC_PER_MSEC);
	ev_wakeup_signal(f->dev->wakeup);
	assert_int_equal(evloop_run(f->loop), 0);
	assert_int_equal(seen.sent, 3000);
	assert_true(seen.in_order);
	assert_int_equal(seen.at_timer, 1024);
	evloop_timer_cancel(f->loop, &between);
	evloop_timer_cancel(f->loop, &stop);
	f->dev->relay_send = NULL;
}

struct side_seen {
	unsigned others;
	union sockaddr_inet src;
};

static void note_other(void *arg, const uint8_t *pkt, size_t len, const union sockaddr_inet *src)
{
	struct side_seen *ss = arg;

	(void)pkt, (void)len;
	ss->others++;
	ss->src = *src;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* A socket of the birthday search as a side socket: what it receives is
 * opened and written to the TUN, and moves the peer to that path; what the
 * device sends the peer then leaves from it; disco goes to the caller. */
static void test_side_socket_carries_the_peer(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[1200];
	struct noise_session_keys keys;
	union sockaddr_inet side_addr = {.in.sin_family = AF_INET}, ep, from;
	socklen_t len = sizeof(side_addr);
	struct side_seen ss = {0};
	struct aead_ctx *ctx;
	int sv[2], side, slot;
	size_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	f->dev->tun_fd = sv[0];
	f->dev->tun_offloads = TUN_OFFLOAD_VNET_HDR | TUN_OFFLOAD_CSUM | TUN_OFFLOAD_TSO4;
	establish(f, &keys);
	assert_int_equal(aead_ctx_new(&ctx), 0);
	side = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	side_addr.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(side, &side_addr.sa, sizeof(side_addr.in)), 0);
	getsockname(side, &side_addr.sa, &len);
	slot = device_side_add(f->dev, side);
	assert_true(slot >= 1);

	/* Two data messages and a disco one from the client to the side socket. */
	n = seal_segment(ctx, &keys, 0, 1, 1000, msg);
	assert_int_equal(sendto(f->client_fd, msg, n, 0, &side_addr.sa, sizeof(side_addr.in)), n);
	n = seal_segment(ctx, &keys, 1, 1001, 1000, msg);
	assert_int_equal(sendto(f->client_fd, msg, n, 0, &side_addr.sa, sizeof(side_addr.in)), n);
	assert_int_equal(sendto(f->client_fd, "TS\xf0\x9f\x92\xac disco", 12, 0, &side_addr.sa,
				sizeof(side_addr.in)),
			 12);
	assert_true(poll(&(struct pollfd){.fd = side, .events = POLLIN}, 1, 300) > 0);
	usleep(10000); /* all three */
	device_side_read(f->dev, (unsigned)slot, note_other, &ss);
	expect_coalesced(sv[1], 2);
	assert_int_equal(ss.others, 1);
	assert_true(endpoint_equal(&ss.src, &f->client_addr));
	/* The peer roamed to the side path. */
	assert_true(peer_get_endpoint(f->dev->peers, &ep));
	assert_true(endpoint_is_side(&ep));
	assert_int_equal(endpoint_side_slot(&ep), slot);

	/* The device's keepalive to the peer leaves from the side socket. */
	while (recv(f->client_fd, msg, sizeof(msg), 0) > 0)
		;
	send_keepalive(f->dev->peers);
	len = sizeof(from);
	assert_true(poll(&(struct pollfd){.fd = f->client_fd, .events = POLLIN}, 1, 300) > 0);
	assert_true(recvfrom(f->client_fd, msg, sizeof(msg), 0, &from.sa, &len) > 0);
	assert_int_equal(from.in.sin_port, side_addr.in.sin_port);

	/* Removed (no data-plane threads here: closed at once); the path is
	 * gone, nothing is sent and nothing breaks. */
	device_side_remove(f->dev, (unsigned)slot);
	assert_false(fd_open(side));
	send_keepalive(f->dev->peers);
	assert_false(poll(&(struct pollfd){.fd = f->client_fd, .events = POLLIN}, 1, 50) > 0);
	device_side_read(f->dev, (unsigned)slot, note_other, &ss);
	assert_int_equal(ss.others, 1);
	aead_ctx_free(ctx);
}

/* With the data-plane threads running, a removed side socket stays open
 * (and its slot taken) until the tx thread has begun another batch. */
static void test_side_socket_closed_after_tx_batch(void **state)
{
	struct fixture *f = *state;
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	int slot_a, slot_b;

	slot_a = device_side_add(f->dev, a);
	assert_true(slot_a >= 1);
	f->dev->threads_running = true; /* as if: side.c only reads the flag */
	device_side_remove(f->dev, (unsigned)slot_a);
	side_reap(f->dev);
	assert_true(fd_open(a));
	slot_b = device_side_add(f->dev, b);
	assert_true(slot_b >= 1);
	assert_int_not_equal(slot_b, slot_a);
	atomic_fetch_add(&f->dev->side.tx_epoch, 1); /* the tx thread's next batch */
	side_reap(f->dev);
	assert_false(fd_open(a));
	assert_true(fd_open(b));
	assert_int_equal(device_side_add(f->dev, a = socket(AF_INET, SOCK_DGRAM, 0)), slot_a);
	f->dev->threads_running = false;
	/* device_free closes a and b. */
}

struct remover {
	struct wg_device *dev;
	unsigned slot, calls;
};

static void remove_on_first(void *arg, const uint8_t *pkt, size_t len,
			    const union sockaddr_inet *src)
{
	struct remover *r = arg;

	(void)pkt, (void)len, (void)src;
	if (r->calls++ == 0)
		device_side_remove(r->dev, r->slot); /* as ending the search does */
}

/* The caller's handler ends the search (and removes the socket) while the
 * device is reading it: the read stops there, with nothing more handed to a
 * handler whose state is gone. */
static void test_side_socket_removed_while_read(void **state)
{
	struct fixture *f = *state;
	union sockaddr_inet a = {.in.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int side = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct remover r = {.dev = f->dev};

	a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(side, &a.sa, sizeof(a.in)), 0);
	getsockname(side, &a.sa, &len);
	r.slot = (unsigned)device_side_add(f->dev, side);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sendto(f->client_fd, "disco?", 6, 0, &a.sa, sizeof(a.in)), 6);
	assert_true(poll(&(struct pollfd){.fd = side, .events = POLLIN}, 1, 300) > 0);
	usleep(10000);
	device_side_read(f->dev, r.slot, remove_on_first, &r);
	assert_int_equal(r.calls, 1);
	assert_false(fd_open(side));
}

/* What may make a search's socket the peer's path: only the peer's own
 * WireGuard, checked without a trace in the session. */
static void test_datagram_from_peer(void **state)
{
	struct fixture *f = *state;
	static uint8_t msg[1200];
	struct message_handshake_initiation init;
	struct noise_session_keys keys;
	uint8_t other[32];
	struct aead_ctx *ctx;
	size_t n;

	establish(f, &keys);
	assert_int_equal(aead_ctx_new(&ctx), 0);
	n = seal_segment(ctx, &keys, 7, 1, 1000, msg);
	assert_true(device_datagram_from_peer(f->dev, f->client.static_public, msg, n,
					      &f->client_addr));
	memset(other, 0x42, sizeof(other));
	assert_false(device_datagram_from_peer(f->dev, other, msg, n, &f->client_addr));
	assert_false(device_datagram_from_peer(f->dev, f->client.static_public, msg, n - 1,
					       &f->client_addr));
	msg[100] ^= 1;
	assert_false(device_datagram_from_peer(f->dev, f->client.static_public, msg, n,
					       &f->client_addr));
	msg[100] ^= 1;
	/* Checked, not received: counter 7 still opens afterwards. */
	assert_true(device_datagram_from_peer(f->dev, f->client.static_public, msg, n,
					      &f->client_addr));
	assert_int_equal(atomic_load(&f->dev->stats.rx_replayed), 0);
	assert_false(device_datagram_from_peer(f->dev, f->client.static_public,
					       (const uint8_t *)"\x04\0\0\0garbage", 11,
					       &f->client_addr));
	/* A handshake initiation: its MAC1 decides. */
	assert_int_equal(noise_handshake_create_initiation(&init, &f->hs, &f->client, 11), 0);
	cookie_add_macs(&f->maker, &init, sizeof(init));
	assert_true(device_datagram_from_peer(f->dev, f->client.static_public,
					      (const uint8_t *)&init, sizeof(init),
					      &f->client_addr));
	init.macs.mac1[0] ^= 1;
	assert_false(device_datagram_from_peer(f->dev, f->client.static_public,
					       (const uint8_t *)&init, sizeof(init),
					       &f->client_addr));
	aead_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers_an_initiation, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_path_change_resends_initiation_when_peer_takes_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_under_load_demands_cookie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_zeroed_after_three_reject_times, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_relayed_packets_batched_and_coalesced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_relay_queue_drained_in_shares, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_side_socket_carries_the_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_side_socket_closed_after_tx_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_side_socket_removed_while_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_datagram_from_peer, setup, teardown),
	};

	crypto_init();
	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
