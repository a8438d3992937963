// SPDX-License-Identifier: MIT
/*
 * A detached device (no TUN) with a real UDP socket on loopback, fed
 * handshake messages as its receiving thread would: it answers an initiation
 * with a response, and under load demands a cookie first (whitepaper 5.3).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "wg/device.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers_an_initiation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_under_load_demands_cookie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_zeroed_after_three_reject_times, setup,
						teardown),
	};

	crypto_init();
	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
