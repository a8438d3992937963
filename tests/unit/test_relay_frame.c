// SPDX-License-Identifier: MIT
/* src/relay/frame.c: relay frames, the client-info proof, buffers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "lib/encoding.h"
#include "relay/frame.h"

static void hex(uint8_t *out, const char *s)
{
	assert_int_equal(key_from_hex(out, s), 0);
}

static void test_header(void **state)
{
	uint8_t h[RELAY_HEADER_LEN], type = 0;
	uint32_t len = 0;

	relay_frame_header_write(h, RELAY_FRAME_SEND_PACKET, 0x01020304);
	assert_memory_equal(h, "\x04\x01\x02\x03\x04", 5);
	for (size_t i = 0; i < RELAY_HEADER_LEN; i++)
		assert_int_equal(relay_frame_header_parse(h, i, &type, &len), 0);
	/* 0x01020304 is over the limit. */
	assert_int_equal(relay_frame_header_parse(h, 5, &type, &len), -EMSGSIZE);
	relay_frame_header_write(h, RELAY_FRAME_SEND_PACKET, RELAY_MAX_PAYLOAD);
	assert_int_equal(relay_frame_header_parse(h, 5, &type, &len), RELAY_HEADER_LEN);
	assert_int_equal(type, RELAY_FRAME_SEND_PACKET);
	assert_int_equal(len, 65600);
	relay_frame_header_write(h, RELAY_FRAME_SEND_PACKET, RELAY_MAX_PAYLOAD + 1);
	assert_int_equal(relay_frame_header_parse(h, 5, &type, &len), -EMSGSIZE);
	relay_frame_header_write(h, 0, 0);
	assert_int_equal(relay_frame_header_parse(h, 5, &type, &len), -EPROTO);
	relay_frame_header_write(h, 11, 0);
	assert_int_equal(relay_frame_header_parse(h, 5, &type, &len), -EPROTO);
	relay_frame_header_write(h, RELAY_FRAME_CLOSE, 3);
	assert_int_equal(relay_frame_header_parse(h, 5, &type, &len), RELAY_HEADER_LEN);
	assert_string_equal(relay_frame_name(RELAY_FRAME_CLOSE), "close");
	assert_string_equal(relay_frame_name(200), "unknown");
}

static void test_build(void **state)
{
	uint8_t out[64], key[32];

	memset(key, 0xab, sizeof(key));
	assert_int_equal(
		relay_frame_build(out, sizeof(out), RELAY_FRAME_SEND_PACKET, key, 32, "hi", 2), 39);
	assert_memory_equal(out, "\x04\x00\x00\x00\x22", 5);
	assert_memory_equal(out + 5, key, 32);
	assert_memory_equal(out + 37, "hi", 2);
	assert_int_equal(
		relay_frame_build(out, sizeof(out), RELAY_FRAME_KEEPALIVE, NULL, 0, NULL, 0), 5);
	assert_int_equal(relay_frame_build(out, 38, RELAY_FRAME_SEND_PACKET, key, 32, "hi", 2),
			 -ENOSPC);
	assert_int_equal(relay_frame_build(out, sizeof(out), RELAY_FRAME_SEND_PACKET, key, 32, out,
					   RELAY_MAX_PACKET + 1),
			 -EMSGSIZE);
	assert_int_equal(relay_frame_build(out, sizeof(out), 4, key, SIZE_MAX, key, SIZE_MAX),
			 -EMSGSIZE);
}

static void test_payload_sizes(void **state)
{
	uint8_t p[RELAY_CLOSE_MAX + 1] = {0};

	assert_int_equal(relay_payload_check(RELAY_FRAME_SERVER_KEY, p, 72), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_SERVER_KEY, p, 71), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_CLIENT_INFO, p, 104), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_CLIENT_INFO, p, 105), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_SERVER_INFO, p, 0), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_SERVER_INFO, p, 1), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_SEND_PACKET, p, 32), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_SEND_PACKET, p, 33), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_RECV_PACKET, p, 31), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_KEEPALIVE, p, 0), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_PING, p, 8), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_PING, p, 9), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_PONG, p, 7), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_PEER_GONE, p, 33), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_PEER_GONE, p, 32), -EBADMSG);
	assert_int_equal(relay_payload_check(RELAY_FRAME_CLOSE, p, 256), 0);
	assert_int_equal(relay_payload_check(RELAY_FRAME_CLOSE, p, 257), -EBADMSG);
	assert_int_equal(relay_payload_check(0, p, 0), -EBADMSG);
}

/* RFC 7748 section 6.1's keys; the expected value computed independently
 * (Python's hashlib.blake2s(shared, key=b"knit relay v1")). */
static void test_box_key_vector(void **state)
{
	uint8_t alice[32], bob_pub[32], key[32], want[32];

	hex(alice, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	hex(bob_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	hex(want, "48042176fa00479eff94b499b8d0febe7e94d603de53e8c3ff64fe7a6223ff8d");
	assert_int_equal(relay_box_key(key, alice, bob_pub), 0);
	assert_memory_equal(key, want, 32);
	/* A low-order point gives an all-zero secret: refused. */
	memset(bob_pub, 0, sizeof(bob_pub));
	assert_int_equal(relay_box_key(key, alice, bob_pub), -EINVAL);
}

static void test_server_key(void **state)
{
	uint8_t pub[32], ch[32], p[RELAY_SERVER_KEY_LEN], pub2[32], ch2[32];

	random_bytes(pub, 32);
	random_bytes(ch, 32);
	relay_server_key_payload(p, pub, ch);
	assert_memory_equal(p, "KNITRLY1", 8);
	assert_int_equal(relay_server_key_parse(p, sizeof(p), pub2, ch2), 0);
	assert_memory_equal(pub2, pub, 32);
	assert_memory_equal(ch2, ch, 32);
	assert_int_equal(relay_server_key_parse(p, sizeof(p) - 1, pub2, ch2), -EBADMSG);
	p[7] = '2';
	assert_int_equal(relay_server_key_parse(p, sizeof(p), pub2, ch2), -EBADMSG);
}

static void test_client_info(void **state)
{
	uint8_t relay_priv[32], relay_pub[32], node_priv[32], node_pub[32], other_priv[32];
	uint8_t ch[32], ch_other[32], info[RELAY_CLIENT_INFO_LEN], got[32],
		bad[RELAY_CLIENT_INFO_LEN];

	x25519_generate(relay_priv);
	x25519_public(relay_pub, relay_priv);
	x25519_generate(node_priv);
	x25519_public(node_pub, node_priv);
	x25519_generate(other_priv);
	random_bytes(ch, 32);
	memcpy(ch_other, ch, 32);
	ch_other[31] ^= 1;

	assert_int_equal(relay_client_info_seal(info, node_priv, relay_pub, ch), 0);
	assert_memory_equal(info, node_pub, 32);
	assert_int_equal(relay_client_info_open(info, sizeof(info), relay_priv, ch, got), 0);
	assert_memory_equal(got, node_pub, 32);

	/* Another connection's challenge: a replayed proof is refused. */
	assert_int_equal(relay_client_info_open(info, sizeof(info), relay_priv, ch_other, got),
			 -EACCES);
	/* Another relay's key. */
	assert_int_equal(relay_client_info_open(info, sizeof(info), other_priv, ch, got), -EACCES);
	/* Claiming someone else's key with one's own box. */
	memcpy(bad, info, sizeof(bad));
	x25519_public(bad, other_priv);
	assert_int_equal(relay_client_info_open(bad, sizeof(bad), relay_priv, ch, got), -EACCES);
	/* Any flipped bit. */
	for (size_t i = 0; i < sizeof(info); i++) {
		memcpy(bad, info, sizeof(bad));
		bad[i] ^= 0x10;
		if (relay_client_info_open(bad, sizeof(bad), relay_priv, ch, got) != -EACCES)
			fail_msg("flipped byte %zu accepted", i);
	}
	/* A low-order node key. */
	memset(bad, 0, sizeof(bad));
	assert_int_equal(relay_client_info_open(bad, sizeof(bad), relay_priv, ch, got), -EACCES);
	assert_int_equal(relay_client_info_open(info, sizeof(info) - 1, relay_priv, ch, got),
			 -EBADMSG);
}

static void test_close_reason(void **state)
{
	char out[RELAY_CLOSE_MAX + 1];
	uint8_t big[300];

	relay_close_reason((const uint8_t *)"bye\n\xc3\xa9", 6, out);
	assert_string_equal(out, "bye???");
	memset(big, 'x', sizeof(big));
	relay_close_reason(big, sizeof(big), out);
	assert_int_equal(strlen(out), RELAY_CLOSE_MAX);
}

/* Frames arrive in pieces of every size, and several at once. */
static void test_rxbuf_split(void **state)
{
	uint8_t stream[4096], key[32];
	size_t n = 0;
	struct relay_rxbuf rb;

	memset(key, 7, sizeof(key));
	for (int i = 0; i < 20; i++) {
		char pkt[64];
		int len = snprintf(pkt, sizeof(pkt), "packet %d", i);
		n += relay_frame_build(stream + n, sizeof(stream) - n, RELAY_FRAME_SEND_PACKET, key,
				       32, pkt, (size_t)len);
	}
	n += relay_frame_build(stream + n, sizeof(stream) - n, RELAY_FRAME_KEEPALIVE, NULL, 0, NULL,
			       0);
	for (size_t chunk = 1; chunk <= 64; chunk *= 3) {
		int got = 0, keepalive = 0;
		relay_rxbuf_init(&rb);
		for (size_t off = 0; off < n; off += chunk) {
			uint8_t type;
			const uint8_t *p;
			uint32_t len;
			assert_int_equal(relay_rxbuf_append(&rb, stream + off,
							    off + chunk > n ? n - off : chunk),
					 0);
			while (relay_rxbuf_next(&rb, &type, &p, &len) == 1) {
				char want[64];
				if (type == RELAY_FRAME_KEEPALIVE) {
					keepalive++;
					assert_int_equal(len, 0);
					continue;
				}
				assert_int_equal(type, RELAY_FRAME_SEND_PACKET);
				snprintf(want, sizeof(want), "packet %d", got++);
				assert_int_equal(len, 32 + strlen(want));
				assert_memory_equal(p + 32, want, strlen(want));
			}
		}
		assert_int_equal(got, 20);
		assert_int_equal(keepalive, 1);
		relay_rxbuf_free(&rb);
	}
}

static void test_rxbuf_limits(void **state)
{
	struct relay_rxbuf rb;
	uint8_t *big = malloc(RELAY_MAX_FRAME + 10), type;
	const uint8_t *p;
	uint32_t len;
	size_t space;

	/* The largest frame passes, in one piece. */
	memset(big, 0x5a, RELAY_MAX_FRAME + 10);
	relay_frame_header_write(big, RELAY_FRAME_RECV_PACKET, RELAY_MAX_PAYLOAD);
	relay_rxbuf_init(&rb);
	assert_int_equal(relay_rxbuf_append(&rb, big, RELAY_MAX_FRAME), 0);
	assert_int_equal(relay_rxbuf_next(&rb, &type, &p, &len), 1);
	assert_int_equal(len, RELAY_MAX_PAYLOAD);
	assert_int_equal(p[RELAY_MAX_PAYLOAD - 1], 0x5a);
	assert_int_equal(relay_rxbuf_next(&rb, &type, &p, &len), 0);
	assert_non_null(relay_rxbuf_space(&rb, &space));
	assert_true(space > 0);
	relay_rxbuf_free(&rb);

	/* One byte more is refused from the header alone. */
	relay_frame_header_write(big, RELAY_FRAME_RECV_PACKET, RELAY_MAX_PAYLOAD + 1);
	relay_rxbuf_init(&rb);
	assert_int_equal(relay_rxbuf_append(&rb, big, 5), 0);
	assert_int_equal(relay_rxbuf_next(&rb, &type, &p, &len), -EMSGSIZE);
	relay_rxbuf_free(&rb);

	/* An idle connection's buffer stays small until a big frame comes. */
	relay_rxbuf_init(&rb);
	assert_non_null(relay_rxbuf_space(&rb, &space));
	assert_true(space <= 4096);
	relay_rxbuf_free(&rb);
	free(big);
}

/* Frames keep going in while earlier ones go out: the queue wraps around
 * its ring (never moving what is queued) and the stream stays whole and in
 * order. */
static void test_txq_ring_wraps(void **state)
{
	enum { PKT = 1000, FRAME = RELAY_HEADER_LEN + 32 + PKT, MAX = 10 * FRAME };
	struct relay_txq q;
	struct relay_rxbuf rb;
	uint8_t key[32] = {0}, pkt[PKT], type;
	const uint8_t *p;
	uint32_t len, queued = 0, parsed = 0;
	int sv[2], small = 4096;
	bool wrapped = false;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	relay_txq_init(&q, MAX);
	relay_rxbuf_init(&rb);
	while (parsed < 200) {
		size_t space;
		uint8_t *dst;
		ssize_t r;

		/* Fill what room there is: the tail wraps past the ring's end. */
		while (queued < 200) {
			memset(pkt, (uint8_t)queued, sizeof(pkt));
			if (relay_txq_frame(&q, RELAY_FRAME_RECV_PACKET, key, 32, pkt,
					    sizeof(pkt)) < 0)
				break;
			queued++;
		}
		assert_true(q.cap <= MAX);
		wrapped |= q.head + q.len > q.cap;
		assert_true(relay_txq_flush(&q, sv[0]) == 0 || !relay_txq_empty(&q));
		dst = relay_rxbuf_space(&rb, &space);
		assert_non_null(dst);
		r = recv(sv[1], dst, space, MSG_DONTWAIT);
		if (r <= 0)
			continue;
		relay_rxbuf_commit(&rb, (size_t)r);
		while (relay_rxbuf_next(&rb, &type, &p, &len) == 1) {
			assert_int_equal(type, RELAY_FRAME_RECV_PACKET);
			assert_int_equal(len, 32 + PKT);
			assert_int_equal(p[32], (uint8_t)parsed);
			assert_int_equal(p[32 + PKT - 1], (uint8_t)parsed);
			parsed++;
		}
	}
	assert_int_equal(queued, 200);
	assert_true(wrapped);
	assert_true(relay_txq_empty(&q));
	relay_rxbuf_free(&rb);
	relay_txq_free(&q);
	close(sv[0]);
	close(sv[1]);
}

/* A connection's reads over a socket that always has more waiting: the
 * first read is small, and once one fills its room the buffer offers the
 * bulk size, so that one recv takes dozens of MTU-sized frames. */
static void test_rxbuf_bulk_reads(void **state)
{
	enum { FRAME = RELAY_HEADER_LEN + 32 + 1420, FRAMES = 400 };
	uint8_t *stream = malloc((size_t)FRAME * FRAMES), type;
	struct relay_rxbuf rb;
	const uint8_t *p;
	size_t off = 0, space, reads = 0, most = 0, got = 0;
	uint32_t len;

	for (size_t i = 0; i < FRAMES; i++) {
		uint8_t *f = stream + i * FRAME;
		relay_frame_header_write(f, RELAY_FRAME_RECV_PACKET, 32 + 1420);
		memset(f + RELAY_HEADER_LEN, (uint8_t)i, 32 + 1420);
	}
	relay_rxbuf_init(&rb);
	while (off < (size_t)FRAME * FRAMES) {
		uint8_t *dst = relay_rxbuf_space(&rb, &space);
		size_t n = (size_t)FRAME * FRAMES - off, frames = 0;

		assert_non_null(dst);
		if (reads == 0)
			assert_true(space <= 4096); /* a new connection starts small */
		n = n < space ? n : space;
		memcpy(dst, stream + off, n);
		relay_rxbuf_commit(&rb, n);
		off += n;
		reads++;
		while (relay_rxbuf_next(&rb, &type, &p, &len) == 1) {
			assert_int_equal(len, 32 + 1420);
			assert_int_equal(p[1419], (uint8_t)got); /* in order, whole */
			got++;
			frames++;
		}
		most = frames > most ? frames : most;
	}
	assert_int_equal(got, FRAMES);
	assert_true(most >= RELAY_RXBUF_BULK / FRAME - 1);
	assert_true(reads <= 2 + (size_t)FRAME * FRAMES / (RELAY_RXBUF_BULK - FRAME));
	relay_rxbuf_free(&rb);

	/* Reads that never fill their room (a quiet connection) stay small. */
	relay_rxbuf_init(&rb);
	for (int i = 0; i < 50; i++) {
		uint8_t *dst = relay_rxbuf_space(&rb, &space);
		assert_non_null(dst);
		assert_true(space <= 4096);
		memcpy(dst, stream, RELAY_HEADER_LEN); /* a keepalive-sized read */
		relay_frame_header_write(dst, RELAY_FRAME_KEEPALIVE, 0);
		relay_rxbuf_commit(&rb, RELAY_HEADER_LEN);
		assert_int_equal(relay_rxbuf_next(&rb, &type, &p, &len), 1);
	}
	relay_rxbuf_free(&rb);
	free(stream);
}

static void test_txq(void **state)
{
	struct relay_txq q;
	uint8_t key[32], pkt[1000], got[200000];
	int sv[2], queued = 0;
	size_t total = 0, n = 0;

	memset(key, 1, sizeof(key));
	memset(pkt, 2, sizeof(pkt));
	relay_txq_init(&q, 100000);
	assert_true(relay_txq_empty(&q));
	while (relay_txq_frame(&q, RELAY_FRAME_RECV_PACKET, key, 32, pkt, sizeof(pkt)) == 0)
		queued++;
	/* Whole frames only: 96 frames of 1037 bytes fit in 100000. */
	assert_int_equal(queued, 100000 / 1037);
	assert_int_equal(q.len, queued * 1037);
	assert_int_equal(relay_txq_frame(&q, RELAY_FRAME_RECV_PACKET, key, 32, pkt, sizeof(pkt)),
			 -ENOBUFS);

	/* Flushing through a small socket buffer in several goes. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	while (relay_txq_flush(&q, sv[0]) == -EAGAIN) {
		ssize_t r = read(sv[1], got + total, sizeof(got) - total);
		assert_true(r > 0);
		total += (size_t)r;
		/* The queue takes new frames again once part is sent. */
		if (!n && q.len + 5 <= q.max && ++n)
			assert_int_equal(
				relay_txq_frame(&q, RELAY_FRAME_KEEPALIVE, NULL, 0, NULL, 0), 0);
	}
	assert_true(relay_txq_empty(&q));
	assert_int_equal(n, 1);
	for (;;) {
		ssize_t r = recv(sv[1], got + total, sizeof(got) - total, MSG_DONTWAIT);
		if (r <= 0)
			break;
		total += (size_t)r;
	}
	assert_int_equal(total, queued * 1037 + 5);
	/* The stream parses back into the same frames, the keepalive last. */
	struct relay_rxbuf rb;
	uint8_t type;
	const uint8_t *p;
	uint32_t len;
	int frames = 0;
	relay_rxbuf_init(&rb);
	for (size_t off = 0; off < total; off += 1000) {
		assert_int_equal(
			relay_rxbuf_append(&rb, got + off, total - off < 1000 ? total - off : 1000),
			0);
		while (relay_rxbuf_next(&rb, &type, &p, &len) == 1) {
			if (frames++ < queued) {
				assert_int_equal(type, RELAY_FRAME_RECV_PACKET);
				assert_memory_equal(p + 32, pkt, sizeof(pkt));
			} else {
				assert_int_equal(type, RELAY_FRAME_KEEPALIVE);
			}
		}
	}
	assert_int_equal(frames, queued + 1);
	relay_rxbuf_free(&rb);
	relay_txq_free(&q);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),		 cmocka_unit_test(test_build),
		cmocka_unit_test(test_payload_sizes),	 cmocka_unit_test(test_box_key_vector),
		cmocka_unit_test(test_server_key),	 cmocka_unit_test(test_client_info),
		cmocka_unit_test(test_close_reason),	 cmocka_unit_test(test_rxbuf_split),
		cmocka_unit_test(test_rxbuf_limits),	 cmocka_unit_test(test_txq),
		cmocka_unit_test(test_rxbuf_bulk_reads), cmocka_unit_test(test_txq_ring_wraps),
	};
	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
